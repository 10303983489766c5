package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// Backfill runs one batch with short lock and statement timeouts, so a
// live projector waiting on the same rows is held up for seconds at most;
// a timeout fails the batch, which the caller retries.
func (s *Store) Backfill(ctx context.Context, rollback bool, fn func(store.BackfillTx) error) error {
	// synchronous_commit on, as for projection batches: a batch lost in a
	// server crash would be behind the cursor the running backfill goes on
	// from, and its rows would stay legacy. No hash or merge joins: a
	// batch touches thousands of rows by primary key, and a plan that
	// scans the whole table for each batch makes a backfill quadratic.
	return s.batchTx(ctx, rollback, "backfill", sqlBackfillSession, func(t *projTx) error { return fn(t) })
}

const legacyCols = `result_id, request_id, pc_id, exec_id, exit_code, finished_at IS NOT NULL, reaped, recorded_at`

// The statements of a backfill batch (printed by --show-sql).
const (
	sqlBackfillSession = `SET LOCAL lock_timeout = '2s'; SET LOCAL statement_timeout = '60s'; SET LOCAL synchronous_commit = on;
	SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off`
	// >= rather than >: the cursor row itself was renamed or removed in
	// the batch that saved it, so it cannot match again. No row lock: no
	// projector writes a legacy id (it writes stable or agent ids), and a
	// second backfill is kept out by the writer lock.
	sqlLegacyCandidates = `SELECT ` + legacyCols + ` FROM execution_results
	WHERE (result_id = request_id OR result_id = '') AND result_id >= $1
	ORDER BY result_id LIMIT $2`
	sqlLegacyCandidatesPart = `SELECT ` + legacyCols + ` FROM execution_results
	WHERE (result_id = request_id OR result_id = '') AND result_id >= $1 AND abs(hashtext(result_id) % $3) = $4
	ORDER BY result_id LIMIT $2`
	sqlRowsByID         = `SELECT ` + legacyCols + ` FROM execution_results WHERE result_id = ANY($1) ORDER BY result_id FOR UPDATE`
	sqlArchiveAndDelete = `WITH v(key, reason, kept) AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[])),
	moved AS (DELETE FROM execution_results e USING v WHERE e.result_id = v.key RETURNING e.*)
INSERT INTO kanade_backfill_conflicts (result_id, request_id, pc_id, reason, kept_result_id, row_json)
SELECT m.result_id, m.request_id, m.pc_id, v.reason, v.kept, row_to_json(m)::text FROM moved m JOIN v ON v.key = m.result_id`
	sqlRename = `UPDATE execution_results e SET result_id = r.new
	FROM unnest($1::text[], $2::text[]) AS r(old, new) WHERE e.result_id = r.old`
	sqlBackfillCursor = `INSERT INTO kanade_backfill_state (name, cursor, updated_at) VALUES ($1, $2, now())
	ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`
)

// BackfillStatements lists a batch's statements, in order.
func (s *Store) BackfillStatements() []string {
	return []string{"BEGIN", sqlBackfillSession, sqlLegacyCandidates, sqlRowsByID,
		sqlArchiveAndDelete, sqlRename, sqlBumpExecutions, sqlBackfillCursor, "COMMIT"}
}

func scanLegacy(r pgx.CollectableRow) (store.LegacyRow, error) {
	var x store.LegacyRow
	err := r.Scan(&x.ResultID, &x.RequestID, &x.PCID, &x.ExecID, &x.ExitCode, &x.Finished, &x.Reaped, &x.RecordedAt)
	x.Key = x.ResultID
	return x, err
}

func (t *projTx) LegacyCandidates(ctx context.Context, after string, limit int, part store.Part) ([]store.LegacyRow, error) {
	q, args := sqlLegacyCandidates, []any{after, limit}
	if part.Of > 1 {
		q, args = sqlLegacyCandidatesPart, append(args, part.Of, part.Index)
	}
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find legacy rows: %w", err)
	}
	return pgx.CollectRows(rows, scanLegacy)
}

func (t *projTx) RowsByID(ctx context.Context, ids []string) (map[string]store.LegacyRow, error) {
	rows, err := t.tx.Query(ctx, sqlRowsByID, ids)
	if err != nil {
		return nil, fmt.Errorf("look up stable ids: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanLegacy)
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.LegacyRow, len(list))
	for _, r := range list {
		out[r.ResultID] = r
	}
	return out, nil
}

func (t *projTx) ArchiveAndDelete(ctx context.Context, victims []store.Victim) (int64, error) {
	if len(victims) == 0 {
		return 0, nil
	}
	keys, reasons, kept := make([]string, len(victims)), make([]string, len(victims)), make([]string, len(victims))
	for i, v := range victims {
		keys[i], reasons[i], kept[i] = v.Key.(string), v.Reason, v.KeptID
	}
	tag, err := t.tx.Exec(ctx, sqlArchiveAndDelete, keys, reasons, kept)
	if err != nil {
		return 0, fmt.Errorf("archive and remove duplicate rows: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (t *projTx) RenameResults(ctx context.Context, renames []store.Rename) (int64, error) {
	if len(renames) == 0 {
		return 0, nil
	}
	olds, news := make([]string, len(renames)), make([]string, len(renames))
	for i, r := range renames {
		olds[i], news[i] = r.Key.(string), r.NewID
	}
	tag, err := t.tx.Exec(ctx, sqlRename, olds, news)
	if err != nil {
		return 0, fmt.Errorf("rewrite result ids: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (t *projTx) SaveBackfillCursor(ctx context.Context, name, cursor string) error {
	_, err := t.tx.Exec(ctx, sqlBackfillCursor, name, cursor)
	if err != nil {
		return fmt.Errorf("save backfill cursor: %w", err)
	}
	return nil
}

func (t *projTx) ClearBackfillCursor(ctx context.Context, name string) error {
	if _, err := t.tx.Exec(ctx, "DELETE FROM kanade_backfill_state WHERE name = $1", name); err != nil {
		return fmt.Errorf("clear backfill cursor: %w", err)
	}
	return nil
}

func (s *Store) BackfillCursors(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, store.BackfillCursorsQuery)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read backfill cursors: %w", err)
	}
	defer rows.Close()
	return store.ScanCursors(rows)
}

func (s *Store) BackfillParallel() bool { return true }

func (s *Store) ListConflicts(ctx context.Context, limit int) ([]store.Conflict, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.pool.Query(ctx, `SELECT COALESCE(result_id, ''), request_id, pc_id, reason, kept_result_id, row_json, archived_at
		FROM kanade_backfill_conflicts ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list backfill conflicts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Conflict, error) {
		var c store.Conflict
		var at time.Time
		err := r.Scan(&c.ResultID, &c.RequestID, &c.PCID, &c.Reason, &c.KeptID, &c.RowJSON, &at)
		c.ArchivedAt = at
		return c, err
	})
}
