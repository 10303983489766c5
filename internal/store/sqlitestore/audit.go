package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
)

func (s *Store) factsQuery() string {
	return store.ExecutionFactsSQL("CAST(e.initiated_at AS TEXT)", "CAST(max(finished_at) AS TEXT)", s.hasColumn)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readFacts(ctx context.Context, q querier, query string) ([]store.ExecutionFacts, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("audit executions: %w", err)
	}
	defer rows.Close()
	var out []store.ExecutionFacts
	for rows.Next() {
		var f store.ExecutionFacts
		var at string
		var last sql.NullString
		if err := rows.Scan(&f.ExecID, &f.JobID, &f.Version, &f.InitiatedBy, &at, &f.TargetCount, &f.SuccessCount, &f.FailureCount, &f.Status,
			&f.RowsSuccess, &f.RowsFailure, &f.TaggedPCs, &f.ReportedPCs, &last); err != nil {
			return nil, err
		}
		if f.InitiatedAt, err = storedTime("executions", f.ExecID, "initiated_at", at); err != nil {
			return nil, err
		}
		if f.LastFinished, err = nullTime(last); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (s *Store) ExecutionFacts(ctx context.Context) ([]store.ExecutionFacts, error) {
	return readFacts(ctx, s.db, s.factsQuery())
}

func (s *Store) refs(ctx context.Context, what, where string, limit int, args ...any) ([]store.ResultRef, int64, error) {
	var total int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM execution_results r WHERE "+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("audit %s: %w", what, err)
	}
	if total == 0 || limit <= 0 {
		return nil, total, nil
	}
	exp := "CAST(expires_at AS TEXT)"
	if !s.cols["expires_at"] {
		exp = "NULL"
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT COALESCE(result_id, ''), request_id, exec_id, pc_id, CAST(started_at AS TEXT), %s FROM execution_results r WHERE %s ORDER BY result_id LIMIT %d", exp, where, limit), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("audit %s: %w", what, err)
	}
	defer rows.Close()
	var out []store.ResultRef
	for rows.Next() {
		var x store.ResultRef
		var started string
		var expires sql.NullString
		if err := rows.Scan(&x.ResultID, &x.RequestID, &x.ExecID, &x.PCID, &started, &expires); err != nil {
			return nil, 0, err
		}
		if x.StartedAt, err = storedTime("execution_results", x.ResultID, "started_at", started); err != nil {
			return nil, 0, err
		}
		if x.ExpiresAt, err = nullTime(expires); err != nil {
			return nil, 0, err
		}
		out = append(out, x)
	}
	return out, total, rows.Err()
}

func (s *Store) LegacyRows(ctx context.Context, limit int) ([]store.ResultRef, int64, error) {
	return s.refs(ctx, "legacy rows", "(result_id IS NULL OR result_id = '' OR result_id = request_id)", limit)
}

func (s *Store) OrphanResults(ctx context.Context, limit int) ([]store.ResultRef, int64, error) {
	return s.refs(ctx, "orphan results", "exec_id IS NOT NULL AND exec_id <> '' AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.exec_id = r.exec_id)", limit)
}

// UnreapedInFlight compares timestamps as text, as upstream does: its
// chrono shape sorts chronologically.
func (s *Store) UnreapedInFlight(ctx context.Context, now, cutoff time.Time, limit int) ([]store.ResultRef, int64, error) {
	where := "finished_at IS NULL AND reaped = 0 AND ((expires_at IS NOT NULL AND expires_at < ?) OR (expires_at IS NULL AND started_at < ?))"
	args := []any{ts(now), ts(cutoff)}
	if !s.cols["expires_at"] {
		where, args = "finished_at IS NULL AND reaped = 0 AND started_at < ?", []any{ts(cutoff)}
	}
	return s.refs(ctx, "in-flight rows", where, limit, args...)
}

func (s *Store) DuplicatePairs(ctx context.Context, limit int) ([]store.DuplicatePair, int64, error) {
	const groups = `SELECT request_id, pc_id, group_concat(COALESCE(result_id, ''), char(31)) FROM
		(SELECT request_id, pc_id, result_id FROM execution_results ORDER BY result_id)
		GROUP BY request_id, pc_id HAVING count(*) > 1`
	var total int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM ("+groups+")").Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("audit duplicates: %w", err)
	}
	if total == 0 || limit <= 0 {
		return nil, total, nil
	}
	rows, err := s.db.QueryContext(ctx, groups+" ORDER BY request_id, pc_id LIMIT ?", limit)
	if err != nil {
		return nil, 0, fmt.Errorf("audit duplicates: %w", err)
	}
	defer rows.Close()
	var out []store.DuplicatePair
	for rows.Next() {
		var d store.DuplicatePair
		var ids string
		if err := rows.Scan(&d.RequestID, &d.PCID, &ids); err != nil {
			return nil, 0, err
		}
		d.ResultIDs = strings.Split(ids, "\x1f")
		out = append(out, d)
	}
	return out, total, rows.Err()
}

func (s *Store) FixCounters(ctx context.Context, decide func(store.ExecutionFacts) (store.Execution, bool)) ([]store.ExecutionFacts, error) {
	var changed []store.ExecutionFacts
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		facts, err := readFacts(ctx, tx, s.factsQuery())
		if err != nil {
			return err
		}
		changed, err = store.ApplyCounterFixes(facts, decide, func(args ...any) error {
			// SQLite's $N placeholders bind by number, as PostgreSQL's do.
			_, err := tx.ExecContext(ctx, store.FixCountersSQL, args...)
			return err
		})
		return err
	})
	return changed, err
}

func (s *Store) ResultsByID(ctx context.Context, ids []string) (map[string]store.ResultRow, error) {
	out := make(map[string]store.ResultRow, len(ids))
	err := inChunks(ids, func(in string, args []any) error {
		rows, err := s.queryResults(ctx, "SELECT "+s.selectCols()+" FROM execution_results WHERE result_id IN "+in, args...)
		if err != nil {
			return fmt.Errorf("read rows: %w", err)
		}
		for _, r := range rows {
			out[r.ResultID] = r
		}
		return nil
	})
	return out, err
}
