package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/store"
)

var factsQuery = store.ExecutionFactsSQL("e.initiated_at", "max(finished_at)", store.AllColumns)

func scanFacts(r pgx.CollectableRow) (store.ExecutionFacts, error) {
	var f store.ExecutionFacts
	err := r.Scan(&f.ExecID, &f.JobID, &f.Version, &f.InitiatedBy, &f.InitiatedAt, &f.TargetCount, &f.SuccessCount, &f.FailureCount, &f.Status,
		&f.RowsSuccess, &f.RowsFailure, &f.TaggedPCs, &f.ReportedPCs, &f.LastFinished)
	return f, err
}

func (s *Store) ExecutionFacts(ctx context.Context) ([]store.ExecutionFacts, error) {
	rows, err := s.pool.Query(ctx, factsQuery)
	if err != nil {
		return nil, fmt.Errorf("audit executions: %w", err)
	}
	return pgx.CollectRows(rows, scanFacts)
}

const refCols = `result_id, request_id, exec_id, pc_id, started_at, expires_at`

func scanRef(r pgx.CollectableRow) (store.ResultRef, error) {
	var x store.ResultRef
	err := r.Scan(&x.ResultID, &x.RequestID, &x.ExecID, &x.PCID, &x.StartedAt, &x.ExpiresAt)
	return x, err
}

// refs lists rows matching where (with args) and counts them all.
func (s *Store) refs(ctx context.Context, what, where string, limit int, args ...any) ([]store.ResultRef, int64, error) {
	var total int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM execution_results r WHERE "+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("audit %s: %w", what, err)
	}
	if total == 0 || limit <= 0 {
		return nil, total, nil
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf("SELECT %s FROM execution_results r WHERE %s ORDER BY result_id LIMIT %d", refCols, where, limit), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("audit %s: %w", what, err)
	}
	list, err := pgx.CollectRows(rows, scanRef)
	return list, total, err
}

func (s *Store) LegacyRows(ctx context.Context, limit int) ([]store.ResultRef, int64, error) {
	return s.refs(ctx, "legacy rows", "(result_id = request_id OR result_id = '')", limit)
}

func (s *Store) OrphanResults(ctx context.Context, limit int) ([]store.ResultRef, int64, error) {
	return s.refs(ctx, "orphan results", "exec_id IS NOT NULL AND exec_id <> '' AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.exec_id = r.exec_id)", limit)
}

func (s *Store) UnreapedInFlight(ctx context.Context, now, cutoff time.Time, limit int) ([]store.ResultRef, int64, error) {
	return s.refs(ctx, "in-flight rows", `finished_at IS NULL AND NOT reaped
		AND ((expires_at IS NOT NULL AND expires_at < $1) OR (expires_at IS NULL AND started_at < $2))`, limit, now, cutoff)
}

func (s *Store) DuplicatePairs(ctx context.Context, limit int) ([]store.DuplicatePair, int64, error) {
	const groups = `SELECT request_id, pc_id, array_agg(result_id ORDER BY result_id) AS ids FROM execution_results
		GROUP BY request_id, pc_id HAVING count(*) > 1`
	var total int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM ("+groups+") g").Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("audit duplicates: %w", err)
	}
	if total == 0 || limit <= 0 {
		return nil, total, nil
	}
	rows, err := s.pool.Query(ctx, groups+" ORDER BY request_id, pc_id LIMIT $1", limit)
	if err != nil {
		return nil, 0, fmt.Errorf("audit duplicates: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DuplicatePair, error) {
		var d store.DuplicatePair
		err := r.Scan(&d.RequestID, &d.PCID, &d.ResultIDs)
		return d, err
	})
	return list, total, err
}

func (s *Store) FixCounters(ctx context.Context, decide func(store.ExecutionFacts) (store.Execution, bool)) ([]store.ExecutionFacts, error) {
	var changed []store.ExecutionFacts
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE executions IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock executions: %w", err)
		}
		rows, err := tx.Query(ctx, factsQuery)
		if err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
		facts, err := pgx.CollectRows(rows, scanFacts)
		if err != nil {
			return err
		}
		changed, err = store.ApplyCounterFixes(facts, decide, func(args ...any) error {
			_, err := tx.Exec(ctx, store.FixCountersSQL, args...)
			return err
		})
		return err
	})
	return changed, err
}

func (s *Store) ResultsByID(ctx context.Context, ids []string) (map[string]store.ResultRow, error) {
	out := make(map[string]store.ResultRow, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT "+resultCols+" FROM execution_results WHERE result_id = ANY($1)", ids)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanResult)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	for _, r := range list {
		out[r.ResultID] = r
	}
	return out, nil
}
