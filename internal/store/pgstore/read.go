package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/store"
)

const resultCols = `result_id, request_id, exec_id, pc_id, exit_code, stdout, stderr, started_at, finished_at,
	recorded_at, job_id, version, reaped, expires_at, parent_result_id, skipped`

func scanResult(r pgx.CollectableRow) (store.ResultRow, error) {
	var x store.ResultRow
	err := r.Scan(&x.ResultID, &x.RequestID, &x.ExecID, &x.PCID, &x.ExitCode, &x.Stdout, &x.Stderr, &x.StartedAt,
		&x.FinishedAt, &x.RecordedAt, &x.JobID, &x.Version, &x.Reaped, &x.ExpiresAt, &x.ParentResultID, &x.Skipped)
	return x, err
}

const execCols = `exec_id, job_id, version, initiated_by, initiated_at, target_count, success_count, failure_count, status`

func scanExecution(r pgx.Row) (store.Execution, error) {
	var e store.Execution
	err := r.Scan(&e.ExecID, &e.JobID, &e.Version, &e.InitiatedBy, &e.InitiatedAt, &e.TargetCount, &e.SuccessCount, &e.FailureCount, &e.Status)
	return e, err
}

func (s *Store) Dump(ctx context.Context) (*store.Tables, error) {
	t := &store.Tables{}
	rows, err := s.pool.Query(ctx, "SELECT "+resultCols+" FROM execution_results ORDER BY result_id")
	if err != nil {
		return nil, fmt.Errorf("dump execution_results: %w", err)
	}
	if t.Results, err = pgx.CollectRows(rows, scanResult); err != nil {
		return nil, fmt.Errorf("dump execution_results: %w", err)
	}
	rows, err = s.pool.Query(ctx, "SELECT "+execCols+" FROM executions ORDER BY exec_id")
	if err != nil {
		return nil, fmt.Errorf("dump executions: %w", err)
	}
	if t.Executions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Execution, error) { return scanExecution(r) }); err != nil {
		return nil, fmt.Errorf("dump executions: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT pc_id, job_id, facts_json, display_json, summary_json, collected_at, recorded_at
		FROM inventory_facts ORDER BY pc_id, job_id`)
	if err != nil {
		return nil, fmt.Errorf("dump inventory_facts: %w", err)
	}
	t.Inventory, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.InventoryFact, error) {
		var f store.InventoryFact
		err := r.Scan(&f.PCID, &f.JobID, &f.FactsJSON, &f.DisplayJSON, &f.SummaryJSON, &f.CollectedAt, &f.RecordedAt)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("dump inventory_facts: %w", err)
	}
	return t, s.dumpDerived(ctx, t)
}

// Seed writes rows verbatim with COPY: the fastest way to lay out large
// fixtures, and the only one that can write states (legacy ids, reaped
// rows) the projector itself would never produce.
func (s *Store) Seed(ctx context.Context, execs []store.Execution, rows []store.ResultRow) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(execs) > 0 {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"executions"}, strings.Split(strings.ReplaceAll(execCols, " ", ""), ","),
				pgx.CopyFromSlice(len(execs), func(i int) ([]any, error) {
					e := execs[i]
					status := e.Status
					if status == "" {
						status = "pending"
					}
					return []any{e.ExecID, e.JobID, e.Version, e.InitiatedBy, e.InitiatedAt, e.TargetCount, e.SuccessCount, e.FailureCount, status}, nil
				}))
			if err != nil {
				return fmt.Errorf("seed executions: %w", err)
			}
		}
		if len(rows) > 0 {
			if _, err := copyResults(ctx, tx, "execution_results", rows); err != nil {
				return fmt.Errorf("seed execution_results: %w", err)
			}
		}
		return nil
	})
}

func findResultsQuery(f store.ResultFilter) (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.ExecID != "" {
		add("exec_id = $%d", f.ExecID)
	}
	if f.RequestID != "" || f.RequestIDSet {
		add("request_id = $%d", f.RequestID)
	}
	if f.ResultID != "" {
		add("result_id = $%d", f.ResultID)
	}
	if len(f.PCs) > 0 {
		add("pc_id = ANY($%d)", f.PCs)
	}
	if len(where) == 0 {
		return "", nil, errors.New("find results: no selector")
	}
	return "SELECT " + resultCols + " FROM execution_results WHERE " + strings.Join(where, " AND ") +
		" ORDER BY pc_id, started_at, result_id", args, nil
}

func (s *Store) FindResults(ctx context.Context, f store.ResultFilter) ([]store.ResultRow, error) {
	q, args, err := findResultsQuery(f)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find results: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanResult)
	if err != nil {
		return nil, fmt.Errorf("find results: %w", err)
	}
	return out, nil
}

// ExplainFindResults returns PostgreSQL's plan for FindResults(f), so tests
// (and an operator chasing a slow `results show`) can see the indexes used.
func (s *Store) ExplainFindResults(ctx context.Context, f store.ResultFilter) (string, error) {
	q, args, err := findResultsQuery(f)
	if err != nil {
		return "", err
	}
	rows, err := s.pool.Query(ctx, "EXPLAIN "+q, args...)
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

func (s *Store) GetExecution(ctx context.Context, execID string) (*store.Execution, error) {
	e, err := scanExecution(s.pool.QueryRow(ctx, "SELECT "+execCols+" FROM executions WHERE exec_id = $1", execID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get execution %s: %w", execID, err)
	}
	return &e, nil
}

func (s *Store) ListGroups(ctx context.Context, f store.ListFilter) ([]store.ListRow, error) {
	var where, having []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if len(f.PCs) > 0 {
		where = append(where, "pc_id = ANY("+arg(f.PCs)+")")
	}
	if f.Manifest != "" {
		where = append(where, "job_id = "+arg(f.Manifest))
	}
	// The window selects groups (any result recorded in it); their counts
	// cover all their rows, so a deployment is not cut in two.
	var window []string
	if f.Since != nil {
		window = append(window, "recorded_at >= "+arg(*f.Since))
	}
	if f.Until != nil {
		window = append(window, "recorded_at < "+arg(*f.Until))
	}
	if len(window) > 0 {
		where = append(where, "request_id IN (SELECT request_id FROM execution_results WHERE "+strings.Join(window, " AND ")+")")
	}
	if f.Failed {
		having = append(having, "count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND NOT reaped AND NOT skipped AND exit_code <> 0) > 0")
	}
	if f.After != nil {
		having = append(having, "(max(recorded_at), request_id) < ("+arg(f.After.LastRecorded)+"::timestamptz, "+arg(f.After.Key)+"::text)")
	}
	q := `SELECT request_id AS key, max(NULLIF(exec_id, '')), request_id, max(job_id), min(started_at), max(recorded_at),
		count(*),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND NOT reaped AND NOT skipped AND exit_code = 0),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND NOT reaped AND NOT skipped AND exit_code <> 0),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND NOT reaped AND skipped),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NULL AND NOT reaped),
		count(DISTINCT pc_id) FILTER (WHERE reaped),
		count(DISTINCT pc_id) FILTER (WHERE exec_id IS NULL OR exec_id = ''),
		count(DISTINCT pc_id)
	FROM execution_results`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " GROUP BY request_id"
	if len(having) > 0 {
		q += " HAVING " + strings.Join(having, " AND ")
	}
	q += " ORDER BY max(recorded_at) DESC, key DESC LIMIT " + arg(f.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list results: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ListRow, error) {
		var l store.ListRow
		err := r.Scan(&l.Key, &l.ExecID, &l.RequestID, &l.JobID, &l.FirstStarted, &l.LastRecorded, &l.Reported,
			&l.Succeeded, &l.Failed, &l.Skipped, &l.InFlight, &l.Reaped, &l.Untagged, &l.PCs)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list results: %w", err)
	}
	for i := range out {
		if out[i].ExecID != nil {
			if out[i].Execution, err = s.GetExecution(ctx, *out[i].ExecID); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
