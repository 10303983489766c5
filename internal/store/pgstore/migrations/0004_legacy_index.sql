-- Legacy rows (result_id = request_id, or empty) are what backfill and the
-- audit look for. A partial index holds only them, so finding the next
-- batch reads no other row; once backfilled it is empty.
CREATE INDEX IF NOT EXISTS idx_execution_results_legacy ON execution_results (result_id)
    WHERE result_id = request_id OR result_id = '';
