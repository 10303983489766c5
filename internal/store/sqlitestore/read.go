package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// selectCols reads execution_results in ResultRow order. Timestamps are
// CAST to TEXT so the driver hands back upstream's exact text rather than
// its own parse, and absent optional columns read as their defaults.
func (s *Store) selectCols() string {
	type col struct{ name, typ string }
	var out []string
	for _, c := range []col{{"result_id", ""}, {"request_id", ""}, {"exec_id", ""}, {"pc_id", ""}, {"exit_code", ""}, {"stdout", ""},
		{"stderr", ""}, {"started_at", "ts"}, {"finished_at", "ts"}, {"recorded_at", "ts"}, {"job_id", ""}, {"version", ""},
		{"reaped", "flag"}, {"expires_at", "ts"}, {"parent_result_id", ""}, {"skipped", "flag"}} {
		switch {
		case !s.cols[c.name] && c.typ == "flag":
			out = append(out, "0")
		case !s.cols[c.name]:
			out = append(out, "NULL")
		case c.typ == "ts":
			out = append(out, "CAST("+c.name+" AS TEXT)")
		default:
			out = append(out, c.name)
		}
	}
	return strings.Join(out, ", ")
}

type scanner interface{ Scan(dest ...any) error }

func scanResult(r scanner) (store.ResultRow, error) {
	var x store.ResultRow
	var exit sql.NullInt64
	var started, recorded string
	var finished, expires sql.NullString
	var reaped, skipped int64
	err := r.Scan(&x.ResultID, &x.RequestID, &x.ExecID, &x.PCID, &exit, &x.Stdout, &x.Stderr, &started, &finished,
		&recorded, &x.JobID, &x.Version, &reaped, &expires, &x.ParentResultID, &skipped)
	if err != nil {
		return x, err
	}
	if exit.Valid {
		v := int32(exit.Int64)
		x.ExitCode = &v
	}
	x.Reaped, x.Skipped = reaped != 0, skipped != 0
	if x.StartedAt, err = wire.ParseTimestamp(started); err != nil {
		return x, fmt.Errorf("row %s: started_at: %w", x.ResultID, err)
	}
	if x.RecordedAt, err = wire.ParseTimestamp(recorded); err != nil {
		return x, fmt.Errorf("row %s: recorded_at: %w", x.ResultID, err)
	}
	if x.FinishedAt, err = nullTime(finished); err != nil {
		return x, fmt.Errorf("row %s: finished_at: %w", x.ResultID, err)
	}
	if x.ExpiresAt, err = nullTime(expires); err != nil {
		return x, fmt.Errorf("row %s: expires_at: %w", x.ResultID, err)
	}
	return x, nil
}

func nullTime(ns sql.NullString) (*time.Time, error) {
	if !ns.Valid {
		return nil, nil
	}
	t, err := wire.ParseTimestamp(ns.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

const execSelect = `SELECT exec_id, job_id, version, initiated_by, CAST(initiated_at AS TEXT), target_count, success_count, failure_count, status FROM executions`

func scanExecution(r scanner) (store.Execution, error) {
	var e store.Execution
	var at string
	if err := r.Scan(&e.ExecID, &e.JobID, &e.Version, &e.InitiatedBy, &at, &e.TargetCount, &e.SuccessCount, &e.FailureCount, &e.Status); err != nil {
		return e, err
	}
	t, err := wire.ParseTimestamp(at)
	if err != nil {
		return e, fmt.Errorf("execution %s: initiated_at: %w", e.ExecID, err)
	}
	e.InitiatedAt = t
	return e, nil
}

func (s *Store) queryResults(ctx context.Context, q string, args ...any) ([]store.ResultRow, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ResultRow
	for rows.Next() {
		r, err := scanResult(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Store) Dump(ctx context.Context) (*store.Tables, error) {
	t := &store.Tables{}
	var err error
	if t.Results, err = s.queryResults(ctx, "SELECT "+s.selectCols()+" FROM execution_results ORDER BY result_id"); err != nil {
		return nil, fmt.Errorf("dump execution_results: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, execSelect+" ORDER BY exec_id")
	if err != nil {
		return nil, fmt.Errorf("dump executions: %w", err)
	}
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		t.Executions = append(t.Executions, e)
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT pc_id, job_id, facts_json, display_json, summary_json, CAST(collected_at AS TEXT), CAST(recorded_at AS TEXT)
		FROM inventory_facts ORDER BY pc_id, job_id`)
	if err != nil {
		return nil, fmt.Errorf("dump inventory_facts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f store.InventoryFact
		var coll sql.NullString
		var rec string
		if err := rows.Scan(&f.PCID, &f.JobID, &f.FactsJSON, &f.DisplayJSON, &f.SummaryJSON, &coll, &rec); err != nil {
			return nil, err
		}
		if f.CollectedAt, err = nullTime(coll); err != nil {
			return nil, err
		}
		if f.RecordedAt, err = wire.ParseTimestamp(rec); err != nil {
			return nil, err
		}
		t.Inventory = append(t.Inventory, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return t, s.dumpDerived(ctx, t)
}

func (s *Store) Seed(ctx context.Context, execs []store.Execution, rows []store.ResultRow) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range execs {
			status := e.Status
			if status == "" {
				status = "pending"
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at, target_count, success_count, failure_count, status)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ExecID, e.JobID, e.Version, e.InitiatedBy, ts(e.InitiatedAt), e.TargetCount, e.SuccessCount, e.FailureCount, status)
			if err != nil {
				return fmt.Errorf("seed executions: %w", err)
			}
		}
		if _, err := s.insertEach(ctx, tx, rows, "", nil); err != nil {
			return fmt.Errorf("seed execution_results: %w", err)
		}
		return nil
	})
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func (s *Store) findResultsQuery(f store.ResultFilter) (string, []any, error) {
	var where []string
	var args []any
	if f.ExecID != "" {
		where, args = append(where, "exec_id = ?"), append(args, f.ExecID)
	}
	if f.RequestID != "" || f.RequestIDSet {
		where, args = append(where, "request_id = ?"), append(args, f.RequestID)
	}
	if f.ResultID != "" {
		where, args = append(where, "result_id = ?"), append(args, f.ResultID)
	}
	if len(f.PCs) > 0 {
		where = append(where, "pc_id IN ("+placeholders(len(f.PCs))+")")
		for _, p := range f.PCs {
			args = append(args, p)
		}
	}
	if len(where) == 0 {
		return "", nil, errors.New("find results: no selector")
	}
	return "SELECT " + s.selectCols() + " FROM execution_results WHERE " + strings.Join(where, " AND ") +
		" ORDER BY pc_id, started_at, result_id", args, nil
}

func (s *Store) FindResults(ctx context.Context, f store.ResultFilter) ([]store.ResultRow, error) {
	q, args, err := s.findResultsQuery(f)
	if err != nil {
		return nil, err
	}
	out, err := s.queryResults(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find results: %w", err)
	}
	return out, nil
}

// ExplainFindResults returns SQLite's query plan for FindResults(f).
func (s *Store) ExplainFindResults(ctx context.Context, f store.ResultFilter) (string, error) {
	q, args, err := s.findResultsQuery(f)
	if err != nil {
		return "", err
	}
	rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return "", err
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n"), rows.Err()
}

func (s *Store) GetExecution(ctx context.Context, execID string) (*store.Execution, error) {
	e, err := scanExecution(s.db.QueryRowContext(ctx, execSelect+" WHERE exec_id = ?", execID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get execution %s: %w", execID, err)
	}
	return &e, nil
}

func (s *Store) ListGroups(ctx context.Context, f store.ListFilter) ([]store.ListRow, error) {
	var where, having []string
	var args, hargs []any
	if len(f.PCs) > 0 {
		where = append(where, "pc_id IN ("+placeholders(len(f.PCs))+")")
		for _, p := range f.PCs {
			args = append(args, p)
		}
	}
	if f.Manifest != "" {
		where, args = append(where, "job_id = ?"), append(args, f.Manifest)
	}
	// The window selects groups (any result recorded in it); their counts
	// cover all their rows, so a deployment is not cut in two.
	var window []string
	if f.Since != nil {
		window, args = append(window, "recorded_at >= ?"), append(args, ts(*f.Since))
	}
	if f.Until != nil {
		window, args = append(window, "recorded_at < ?"), append(args, ts(*f.Until))
	}
	if len(window) > 0 {
		where = append(where, "request_id IN (SELECT request_id FROM execution_results WHERE "+strings.Join(window, " AND ")+")")
	}
	if f.Failed {
		having = append(having, "count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND reaped = 0 AND skipped = 0 AND exit_code <> 0) > 0")
	}
	if f.After != nil {
		having = append(having, "(max(recorded_at) < ? OR (max(recorded_at) = ? AND request_id < ?))")
		at := ts(f.After.LastRecorded)
		hargs = append(hargs, at, at, f.After.Key)
	}
	q := `SELECT request_id AS key, max(NULLIF(exec_id, '')), request_id, max(job_id), CAST(min(started_at) AS TEXT), CAST(max(recorded_at) AS TEXT),
		count(*),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND reaped = 0 AND skipped = 0 AND exit_code = 0),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND reaped = 0 AND skipped = 0 AND exit_code <> 0),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NOT NULL AND reaped = 0 AND skipped <> 0),
		count(DISTINCT pc_id) FILTER (WHERE finished_at IS NULL AND reaped = 0),
		count(DISTINCT pc_id) FILTER (WHERE reaped <> 0),
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
	q += " ORDER BY max(recorded_at) DESC, key DESC LIMIT ?"
	args = append(append(args, hargs...), f.Limit)
	if !s.cols["skipped"] {
		q = strings.NewReplacer("skipped = 0", "1 = 1", "skipped <> 0", "1 = 0").Replace(q)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list results: %w", err)
	}
	var out []store.ListRow
	for rows.Next() {
		var l store.ListRow
		var first, last string
		if err := rows.Scan(&l.Key, &l.ExecID, &l.RequestID, &l.JobID, &first, &last, &l.Reported, &l.Succeeded, &l.Failed,
			&l.Skipped, &l.InFlight, &l.Reaped, &l.Untagged, &l.PCs); err != nil {
			rows.Close()
			return nil, err
		}
		var err error
		if l.FirstStarted, err = storedTime("execution_results", "of request "+l.RequestID, "started_at", first); err != nil {
			rows.Close()
			return nil, err
		}
		if l.LastRecorded, err = storedTime("execution_results", "of request "+l.RequestID, "recorded_at", last); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
