-- Backfill bookkeeping: where an interrupted run stopped, and every row a
-- backfill removed, kept whole (row_json holds each column's stored value,
-- timestamps as their exact text).
CREATE TABLE IF NOT EXISTS kanade_backfill_state (
    name       TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS kanade_backfill_conflicts (
    id             INTEGER PRIMARY KEY, -- no AUTOINCREMENT: it would add sqlite_sequence to upstream files
    result_id      TEXT,
    request_id     TEXT NOT NULL,
    pc_id          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    kept_result_id TEXT NOT NULL,
    row_json       TEXT NOT NULL,
    archived_at    TEXT NOT NULL
);
