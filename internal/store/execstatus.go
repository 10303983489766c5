package store

import "fmt"

// The one rule for an execution's counters and status (spec sections 4
// and 4a). The projector, rebuild, backfill, audit and its --fix all use
// what this file defines, in SQL or in Go; TestStatusRuleAgreesWithSQL
// holds the two forms to each other on both engines.

// CountRule says which execution_results rows an execution's counters
// count, as two SQL conditions on the row's own columns (the same on both
// engines): a finished result with exit 0 that is not a skip is a success;
// any other finished result (a skip, a signature refusal, a non-zero exit)
// and every reaped placeholder (the reaper counted it) is a failure;
// in-flight rows count nothing. has reports whether the table has a
// column: old upstream files lack reaped and skipped, which then read as
// their default, 0.
func CountRule(has func(column string) bool) (success, failure string) {
	reaped, skipped := "reaped", "skipped"
	if !has("reaped") {
		reaped = "0 <> 0"
	}
	if !has("skipped") {
		skipped = "0 <> 0"
	}
	success = fmt.Sprintf("(finished_at IS NOT NULL AND NOT (%s) AND exit_code = 0 AND NOT (%s))", reaped, skipped)
	failure = fmt.Sprintf("(finished_at IS NOT NULL AND ((%s) OR exit_code <> 0 OR (%s)))", reaped, skipped)
	return success, failure
}

// AllColumns is a CountRule argument for a table with every column.
func AllColumns(string) bool { return true }

// Execution statuses.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusExpired   = "expired"
)

// ExecutionStatus is the status an execution has when counted results
// (success + failure) of target have been counted and its status was
// current. Counting a result sets completed once the target is reached,
// else running, whatever the status was (an expired execution that gets a
// result runs again). While nothing is counted the status is what started
// events (pending to running) and upstream's expirer (pending to expired)
// left, which no row can tell, so it stays; only a completed that no
// counted result backs falls back to running.
func ExecutionStatus(current string, counted, target int64) string {
	switch {
	case counted > 0 && counted >= target:
		return StatusCompleted
	case counted > 0:
		return StatusRunning
	case current == StatusCompleted:
		return StatusRunning
	default:
		return current
	}
}

// ExecutionStatusSQL is ExecutionStatus as an SQL expression over three
// SQL expressions (a column, a sum, a column), for statements that move
// counters in the database.
func ExecutionStatusSQL(current, counted, target string) string {
	return fmt.Sprintf(`CASE WHEN (%[2]s) > 0 AND (%[2]s) >= (%[3]s) THEN 'completed'
		WHEN (%[2]s) > 0 THEN 'running'
		WHEN (%[1]s) = 'completed' THEN 'running'
		ELSE (%[1]s) END`, current, counted, target)
}

// countsByExec is a subquery of each execution's counted rows in results.
func countsByExec(results string, has func(string) bool) string {
	success, failure := CountRule(has)
	return fmt.Sprintf(`SELECT exec_id,
		count(*) FILTER (WHERE %s) AS s,
		count(*) FILTER (WHERE %s) AS f,
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL) AS pcs,
		%%s AS last
	FROM %s WHERE exec_id IS NOT NULL AND exec_id <> '' GROUP BY exec_id`, success, failure, results)
}

// ExecutionFactsSQL selects every execution with what its rows say
// (store.ExecutionFacts, in that column order). initiatedAt and lastFinished
// are the dialect's expressions for e.initiated_at and max(finished_at).
func ExecutionFactsSQL(initiatedAt, lastFinished string, has func(string) bool) string {
	// a: the PCs that answered a running deployment, also those (agents
	// older than v0.29) that answered its requests without the exec_id,
	// which upstream's counters never count. Only running ones: a finished
	// deployment needs no more, and most are finished, so the join stays
	// small (it doubled a full audit's time when it covered all).
	answered := fmt.Sprintf(`SELECT t.exec_id, count(DISTINCT u.pc_id) AS pcs, %s AS last
	FROM (SELECT DISTINCT exec_id, request_id FROM execution_results
		WHERE exec_id IN (SELECT exec_id FROM executions WHERE status = 'running')) t
	JOIN execution_results u ON u.request_id = t.request_id AND u.finished_at IS NOT NULL
		AND (u.exec_id IS NULL OR u.exec_id = '' OR u.exec_id = t.exec_id)
	GROUP BY t.exec_id`, lastFinished)
	return fmt.Sprintf(`SELECT e.exec_id, e.job_id, e.version, e.initiated_by, %s, e.target_count, e.success_count, e.failure_count, e.status,
	COALESCE(r.s, 0), COALESCE(r.f, 0), COALESCE(r.pcs, 0), COALESCE(a.pcs, r.pcs, 0), COALESCE(a.last, r.last)
FROM executions e LEFT JOIN (%s) r ON r.exec_id = e.exec_id LEFT JOIN (%s) a ON a.exec_id = e.exec_id
ORDER BY e.exec_id`, initiatedAt, fmt.Sprintf(countsByExec("execution_results", has), lastFinished), answered)
}

// CountedExecutionsSQL fills into (a copy of executions' shape) every
// execution with the counters and status the rule gives from the rows in
// results: what rebuild starts its shadow executions from.
func CountedExecutionsSQL(into, results string, has func(string) bool) string {
	n := "COALESCE(r.s, 0) + COALESCE(r.f, 0)"
	return fmt.Sprintf(`INSERT INTO %s
	SELECT e.exec_id, e.job_id, e.version, e.initiated_by, e.initiated_at, e.target_count, COALESCE(r.s, 0), COALESCE(r.f, 0), %s
	FROM executions e LEFT JOIN (%s) r ON r.exec_id = e.exec_id`,
		into, ExecutionStatusSQL("e.status", n, "e.target_count"), fmt.Sprintf(countsByExec(results, has), "NULL"))
}
