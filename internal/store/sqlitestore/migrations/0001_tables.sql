-- kanade:upstream-tables
-- Upstream's projected tables exactly as upstream's SQLite backend lays
-- them out (TEXT timestamps, INTEGER flags), so a database this tool
-- creates is one upstream's backend could open, and the other way round.
-- Not applied to an upstream database: those tables are upstream's.
CREATE TABLE IF NOT EXISTS execution_results (
    result_id    TEXT PRIMARY KEY,
    request_id   TEXT NOT NULL,
    exec_id      TEXT,
    pc_id        TEXT NOT NULL,
    exit_code    INTEGER,
    stdout       TEXT NOT NULL DEFAULT '',
    stderr       TEXT NOT NULL DEFAULT '',
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    recorded_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    job_id       TEXT,
    version      TEXT,
    reaped       INTEGER NOT NULL DEFAULT 0,
    expires_at   TIMESTAMP,
    parent_result_id TEXT,
    skipped      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_execution_results_request ON execution_results(request_id);
CREATE INDEX IF NOT EXISTS idx_execution_results_exec ON execution_results(exec_id, recorded_at DESC) WHERE exec_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_execution_results_pc ON execution_results(pc_id, recorded_at DESC);
CREATE INDEX IF NOT EXISTS idx_execution_results_job ON execution_results(job_id, pc_id, finished_at DESC) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_execution_results_recorded_at ON execution_results(recorded_at);
CREATE INDEX IF NOT EXISTS idx_execution_results_started_at ON execution_results(started_at DESC, result_id DESC);
CREATE INDEX IF NOT EXISTS idx_execution_results_inflight ON execution_results(started_at DESC) WHERE finished_at IS NULL;

CREATE TABLE IF NOT EXISTS executions (
    exec_id       TEXT PRIMARY KEY,
    job_id        TEXT NOT NULL,
    version       TEXT NOT NULL,
    initiated_by  TEXT NOT NULL,
    initiated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    target_count  INTEGER NOT NULL,
    success_count INTEGER NOT NULL DEFAULT 0,
    failure_count INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS idx_executions_job ON executions(job_id, initiated_at DESC);

CREATE TABLE IF NOT EXISTS inventory_facts (
    pc_id        TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    facts_json   TEXT NOT NULL,
    display_json TEXT,
    summary_json TEXT,
    collected_at TIMESTAMP,
    recorded_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (pc_id, job_id)
);
CREATE INDEX IF NOT EXISTS idx_inventory_facts_job ON inventory_facts(job_id);
CREATE INDEX IF NOT EXISTS idx_inventory_facts_pc ON inventory_facts(pc_id);
