package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Backfill runs one batch in an IMMEDIATE transaction; the 10 s busy
// timeout bounds how long it waits for, or holds up, another writer.
func (s *Store) Backfill(ctx context.Context, rollback bool, fn func(store.BackfillTx) error) error {
	return s.batchTx(ctx, rollback, "backfill", func(t *projTx) error {
		if rollback {
			if err := s.dryRunBookkeeping(ctx, t); err != nil {
				return err
			}
		}
		return fn(t)
	})
}

// dryRunBookkeeping lets a dry run work on a file that has no kanade_*
// tables yet (an upstream backend.db before `db migrate`): it creates the
// backfill's own tables as TEMP tables, which live outside the file and
// go with the rolled-back transaction.
func (s *Store) dryRunBookkeeping(ctx context.Context, t *projTx) error {
	ok, err := s.tableExists(ctx, "kanade_backfill_conflicts")
	if err != nil || ok {
		return err
	}
	ddl := strings.ReplaceAll(backfillTablesSQL, "CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS")
	if _, err := t.tx.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("dry run: prepare temporary backfill tables: %w", err)
	}
	return nil
}

// Rows are addressed by rowid here: SQLite lets a TEXT primary key be
// NULL, and such rows have nothing else to be found by.
const legacySelect = `SELECT rowid, result_id, request_id, pc_id, exec_id, exit_code, finished_at IS NOT NULL, reaped, CAST(recorded_at AS TEXT) FROM execution_results`

const sqlLegacyCandidates = legacySelect + `
	WHERE (result_id IS NULL OR result_id = '' OR result_id = request_id) AND (result_id IS NULL OR result_id >= ?)
	ORDER BY result_id LIMIT ?`

// BackfillStatements lists a batch's statements, in order (multi-row
// VALUES lists shown with one row).
func (s *Store) BackfillStatements() []string {
	return []string{"BEGIN IMMEDIATE (busy_timeout 10000 ms)", sqlLegacyCandidates,
		legacySelect + " WHERE result_id IN (?, ...)",
		`WITH v(k, reason, kept) AS (VALUES (?,?,?), ...) INSERT INTO kanade_backfill_conflicts (result_id, request_id, pc_id, reason, kept_result_id, row_json, archived_at)
	SELECT result_id, request_id, pc_id, v.reason, v.kept, ` + s.rowJSON() + `, ? FROM execution_results JOIN v ON execution_results.rowid = v.k`,
		"DELETE FROM execution_results WHERE rowid IN (?, ...)",
		"WITH r(k, n) AS (VALUES (?,?), ...) UPDATE execution_results SET result_id = r.n FROM r WHERE execution_results.rowid = r.k",
		`WITH d(exec_id, s, f) AS (VALUES (?,?,?), ...) UPDATE executions SET success_count = success_count + d.s, failure_count = failure_count + d.f,
	status = ` + sqliteBumpStatus + `
	FROM d WHERE executions.exec_id = d.exec_id RETURNING executions.exec_id`,
		"INSERT INTO kanade_backfill_state (name, cursor, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
		"COMMIT"}
}

func scanLegacyRows(rows *sql.Rows) ([]store.LegacyRow, error) {
	defer rows.Close()
	var out []store.LegacyRow
	for rows.Next() {
		var x store.LegacyRow
		var rowid int64
		var id sql.NullString
		var exit sql.NullInt64
		var fin, reaped int
		var rec string
		if err := rows.Scan(&rowid, &id, &x.RequestID, &x.PCID, &x.ExecID, &exit, &fin, &reaped, &rec); err != nil {
			return nil, err
		}
		x.Key, x.ResultID, x.Finished, x.Reaped = rowid, id.String, fin != 0, reaped != 0
		if exit.Valid {
			c := int32(exit.Int64)
			x.ExitCode = &c
		}
		t, err := wire.ParseTimestamp(rec)
		if err != nil {
			return nil, fmt.Errorf("row %s: recorded_at: %w", x.ResultID, err)
		}
		x.RecordedAt = t
		out = append(out, x)
	}
	return out, rows.Err()
}

// LegacyCandidates ignores part: SQLite has one writer, so one worker.
func (t *projTx) LegacyCandidates(ctx context.Context, after string, limit int, _ store.Part) ([]store.LegacyRow, error) {
	rows, err := t.tx.QueryContext(ctx, sqlLegacyCandidates, after, limit)
	if err != nil {
		return nil, fmt.Errorf("find legacy rows: %w", err)
	}
	return scanLegacyRows(rows)
}

func (t *projTx) RowsByID(ctx context.Context, ids []string) (map[string]store.LegacyRow, error) {
	out := map[string]store.LegacyRow{}
	err := inChunks(ids, func(in string, args []any) error {
		rows, err := t.tx.QueryContext(ctx, legacySelect+" WHERE result_id IN "+in, args...)
		if err != nil {
			return fmt.Errorf("look up stable ids: %w", err)
		}
		list, err := scanLegacyRows(rows)
		if err != nil {
			return err
		}
		for _, r := range list {
			out[r.ResultID] = r
		}
		return nil
	})
	return out, err
}

// rowJSON builds the archived copy in SQL, so each value is kept as it is
// stored (timestamps as their exact text).
func (s *Store) rowJSON() string {
	var parts []string
	for _, c := range []string{"result_id", "request_id", "exec_id", "pc_id", "exit_code", "stdout", "stderr", "started_at", "finished_at",
		"recorded_at", "job_id", "version", "reaped", "expires_at", "parent_result_id", "skipped"} {
		if s.cols[c] {
			parts = append(parts, "'"+c+"', "+c)
		}
	}
	return "json_object(" + strings.Join(parts, ", ") + ")"
}

func (t *projTx) ArchiveAndDelete(ctx context.Context, victims []store.Victim) (int64, error) {
	var n int64
	now := ts(time.Now())
	add := func(args []any, v *store.Victim) []any { return append(args, v.Key, v.Reason, v.KeptID) }
	err := inValues(victims, 3, add, func(chunk []store.Victim, values string, args []any) error {
		res, err := t.tx.ExecContext(ctx, `WITH v(k, reason, kept) AS (VALUES `+values+`)
			INSERT INTO kanade_backfill_conflicts (result_id, request_id, pc_id, reason, kept_result_id, row_json, archived_at)
			SELECT result_id, request_id, pc_id, v.reason, v.kept, `+t.s.rowJSON()+`, ? FROM execution_results JOIN v ON execution_results.rowid = v.k`, append(args, now)...)
		if err != nil {
			return fmt.Errorf("archive duplicate rows: %w", err)
		}
		archived, _ := res.RowsAffected()
		if archived != int64(len(chunk)) {
			return fmt.Errorf("archive duplicate rows: %d of %d rows are gone", int64(len(chunk))-archived, len(chunk))
		}
		keys := make([]any, len(chunk))
		for i, v := range chunk {
			keys[i] = v.Key
		}
		if _, err := t.tx.ExecContext(ctx, "DELETE FROM execution_results WHERE rowid IN ("+placeholders(len(keys))+")", keys...); err != nil {
			return fmt.Errorf("remove duplicate rows: %w", err)
		}
		n += archived
		return nil
	})
	return n, err
}

func (t *projTx) RenameResults(ctx context.Context, renames []store.Rename) (int64, error) {
	add := func(args []any, r *store.Rename) []any { return append(args, r.Key, r.NewID) }
	return execValues(ctx, t.tx, renames, 2, add, `WITH r(k, n) AS (VALUES %s)
		UPDATE execution_results SET result_id = r.n FROM r WHERE execution_results.rowid = r.k`, "rewrite result ids")
}

func (t *projTx) SaveBackfillCursor(ctx context.Context, name, cursor string) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO kanade_backfill_state (name, cursor, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`, name, cursor, ts(time.Now()))
	if err != nil {
		return fmt.Errorf("save backfill cursor: %w", err)
	}
	return nil
}

func (t *projTx) ClearBackfillCursor(ctx context.Context, name string) error {
	if _, err := t.tx.ExecContext(ctx, "DELETE FROM kanade_backfill_state WHERE name = ?", name); err != nil {
		return fmt.Errorf("clear backfill cursor: %w", err)
	}
	return nil
}

func (s *Store) BackfillCursors(ctx context.Context) (map[string]string, error) {
	if ok, err := s.tableExists(ctx, "kanade_backfill_state"); err != nil || !ok {
		return map[string]string{}, err
	}
	rows, err := s.db.QueryContext(ctx, store.BackfillCursorsQuery)
	if err != nil {
		return nil, fmt.Errorf("read backfill cursors: %w", err)
	}
	defer rows.Close()
	return store.ScanCursors(rows)
}

func (s *Store) BackfillParallel() bool { return false }

func (s *Store) ListConflicts(ctx context.Context, limit int) ([]store.Conflict, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.db.QueryContext(ctx, `SELECT COALESCE(result_id, ''), request_id, pc_id, reason, kept_result_id, row_json, archived_at
		FROM kanade_backfill_conflicts ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list backfill conflicts: %w", err)
	}
	defer rows.Close()
	var out []store.Conflict
	for rows.Next() {
		var c store.Conflict
		var at string
		if err := rows.Scan(&c.ResultID, &c.RequestID, &c.PCID, &c.Reason, &c.KeptID, &c.RowJSON, &at); err != nil {
			return nil, err
		}
		var err error
		if c.ArchivedAt, err = storedTime("kanade_backfill_conflicts", c.ResultID, "archived_at", at); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
