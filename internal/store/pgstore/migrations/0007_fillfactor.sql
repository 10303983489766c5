-- Every accepted inventory scan rewrites its PC's facts row (collected_at
-- and recorded_at move even when the facts do not). Rows of about 1.5 KB
-- fill a page at the default fillfactor, so each rewrite was a new row
-- version on another page and a new index entry; with half of each page
-- free they are heap-only updates, pruned in place (docs/performance.md,
-- eleventh session). Pages already full get room as their rows move.
ALTER TABLE inventory_facts SET (fillfactor = 50);
