-- kanade:upstream-tables
-- The tables upstream's projector derives from results (spec 4b and
-- section 5), laid out as upstream's migrations lay them out: history of
-- inventory changes, the fleet's check status (label was added to it by a
-- later ALTER TABLE, so it comes last), and the global feeds with their
-- watermarks. An upstream backend.db has them from its own migrations.
CREATE TABLE IF NOT EXISTS inventory_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    pc_id         TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    field_path    TEXT NOT NULL,
    identity_json TEXT,
    change_kind   TEXT NOT NULL
        CHECK (change_kind IN ('added', 'removed', 'changed')),
    before_json   TEXT,
    after_json    TEXT,
    observed_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_inventory_history_field ON inventory_history(job_id, field_path, observed_at DESC);
CREATE INDEX IF NOT EXISTS idx_inventory_history_identity ON inventory_history(job_id, field_path, identity_json);
CREATE INDEX IF NOT EXISTS idx_inventory_history_observed_at ON inventory_history(observed_at);
CREATE INDEX IF NOT EXISTS idx_inventory_history_pc ON inventory_history(pc_id, observed_at DESC);

CREATE TABLE IF NOT EXISTS check_status (
    pc_id       TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT,
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    label       TEXT,
    PRIMARY KEY (pc_id, check_name)
);
CREATE INDEX IF NOT EXISTS idx_check_status_name ON check_status(check_name);

CREATE TABLE IF NOT EXISTS feeds (
    feed_id     TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    data        TEXT NOT NULL,
    fetched_at  TIMESTAMP,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (feed_id, item_id)
);
CREATE TABLE IF NOT EXISTS feed_meta (
    feed_id     TEXT PRIMARY KEY,
    recorded_at TIMESTAMP NOT NULL,
    fetched_at  TIMESTAMP,
    item_count  INTEGER NOT NULL
);
