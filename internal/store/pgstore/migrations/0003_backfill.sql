-- Backfill bookkeeping: where an interrupted run stopped, and every row a
-- backfill removed, kept whole (row_json is the row as it was).
CREATE TABLE IF NOT EXISTS kanade_backfill_state (
    name       text PRIMARY KEY,
    cursor     text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS kanade_backfill_conflicts (
    id             bigserial PRIMARY KEY,
    result_id      text,
    request_id     text NOT NULL,
    pc_id          text NOT NULL,
    reason         text NOT NULL,
    kept_result_id text NOT NULL,
    row_json       text NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now()
);
