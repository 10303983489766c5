-- Upstream's projected tables (spec section 5) with PostgreSQL's native
-- types: timestamptz for TIMESTAMP, boolean for the 0/1 flags.
CREATE TABLE IF NOT EXISTS execution_results (
    result_id        text PRIMARY KEY,
    request_id       text NOT NULL,
    exec_id          text,
    pc_id            text NOT NULL,
    exit_code        integer,
    stdout           text NOT NULL DEFAULT '',
    stderr           text NOT NULL DEFAULT '',
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    job_id           text,
    version          text,
    reaped           boolean NOT NULL DEFAULT false,
    expires_at       timestamptz,
    parent_result_id text,
    skipped          boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS idx_execution_results_request ON execution_results (request_id, pc_id);
CREATE INDEX IF NOT EXISTS idx_execution_results_exec ON execution_results (exec_id, recorded_at DESC) WHERE exec_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_execution_results_pc ON execution_results (pc_id, recorded_at DESC);
CREATE INDEX IF NOT EXISTS idx_execution_results_job ON execution_results (job_id, pc_id, finished_at DESC) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_execution_results_recorded ON execution_results (recorded_at);
CREATE INDEX IF NOT EXISTS idx_execution_results_started ON execution_results (started_at DESC, result_id DESC);
CREATE INDEX IF NOT EXISTS idx_execution_results_inflight ON execution_results (started_at DESC) WHERE finished_at IS NULL;

CREATE TABLE IF NOT EXISTS executions (
    exec_id       text PRIMARY KEY,
    job_id        text NOT NULL,
    version       text NOT NULL,
    initiated_by  text NOT NULL,
    initiated_at  timestamptz NOT NULL DEFAULT now(),
    target_count  integer NOT NULL,
    success_count bigint NOT NULL DEFAULT 0,
    failure_count bigint NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS idx_executions_job ON executions (job_id, initiated_at DESC);

CREATE TABLE IF NOT EXISTS inventory_facts (
    pc_id        text NOT NULL,
    job_id       text NOT NULL,
    facts_json   text NOT NULL,
    display_json text,
    summary_json text,
    collected_at timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pc_id, job_id)
);
CREATE INDEX IF NOT EXISTS idx_inventory_facts_job ON inventory_facts (job_id);
