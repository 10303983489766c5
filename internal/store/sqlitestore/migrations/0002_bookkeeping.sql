-- The tool's own tables; every name starts with kanade_, the only tables
-- it ever creates in an upstream backend.db.
CREATE TABLE IF NOT EXISTS kanade_checkpoints (
    name           TEXT PRIMARY KEY,
    stream         TEXT NOT NULL,
    stream_created TEXT NOT NULL,
    last_seq       INTEGER NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS kanade_quarantine (
    stream         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    subject        TEXT NOT NULL,
    published_at   TEXT NOT NULL,
    error          TEXT NOT NULL,
    payload        BLOB NOT NULL,
    quarantined_at TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
);

CREATE TABLE IF NOT EXISTS kanade_locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
