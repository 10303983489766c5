-- The tool's own tables; every name starts with kanade_.
CREATE TABLE IF NOT EXISTS kanade_checkpoints (
    name           text PRIMARY KEY,
    stream         text NOT NULL,
    stream_created timestamptz NOT NULL,
    last_seq       bigint NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS kanade_quarantine (
    stream         text NOT NULL,
    seq            bigint NOT NULL,
    subject        text NOT NULL,
    published_at   timestamptz NOT NULL,
    error          text NOT NULL,
    payload        bytea NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, seq)
);

CREATE TABLE IF NOT EXISTS kanade_locks (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    pid         integer NOT NULL,
    host        text NOT NULL,
    acquired_at timestamptz NOT NULL
);
