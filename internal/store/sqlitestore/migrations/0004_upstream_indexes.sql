-- kanade:upstream-tables
-- The indexes upstream's later migrations added to its tables (spec
-- section 5), so databases this tool created match them. An upstream
-- backend.db has them from upstream's own migrations and is not touched.
CREATE INDEX IF NOT EXISTS idx_execution_results_finished_at ON execution_results(finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_execution_results_expires ON execution_results(expires_at) WHERE finished_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_execution_results_parent ON execution_results(parent_result_id) WHERE parent_result_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_executions_initiated_at ON executions(initiated_at);
CREATE INDEX IF NOT EXISTS idx_executions_live ON executions(status, job_id) WHERE status IN ('running', 'pending');
CREATE INDEX IF NOT EXISTS idx_inventory_facts_job_pc ON inventory_facts(job_id, pc_id);
