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

// maxParams keeps one statement under SQLite's default limit of 32766
// bound parameters.
const maxParams = 30000

// inChunks calls fn with an IN list of placeholders and its arguments, for
// at most maxParams of ids at a time.
func inChunks(ids []string, fn func(in string, args []any) error) error {
	for start := 0; start < len(ids); start += maxParams {
		chunk := ids[start:min(start+maxParams, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if err := fn("("+placeholders(len(chunk))+")", args); err != nil {
			return err
		}
	}
	return nil
}

// inValues calls fn for rows a chunk at a time, each chunk small enough
// to keep one statement under maxParams: values is the chunk's VALUES list,
// "(?,…),(?,…)", width placeholders a row, and args its arguments, which
// add appends for one row.
func inValues[T any](rows []T, width int, add func(args []any, r *T) []any, fn func(chunk []T, values string, args []any) error) error {
	per := maxParams / width
	tuple := "(" + placeholders(width) + "),"
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		args := make([]any, 0, width*len(chunk))
		for i := range chunk {
			args = add(args, &chunk[i])
		}
		if err := fn(chunk, strings.TrimSuffix(strings.Repeat(tuple, len(chunk)), ","), args); err != nil {
			return err
		}
	}
	return nil
}

// execValues runs stmt, whose %s is a VALUES list, over rows with
// inValues, and returns the rows affected; what names the work in an error.
func execValues[T any](ctx context.Context, tx execer, rows []T, width int, add func([]any, *T) []any, stmt, what string) (int64, error) {
	var total int64
	err := inValues(rows, width, add, func(_ []T, values string, args []any) error {
		res, err := tx.ExecContext(ctx, strings.Replace(stmt, "%s", values, 1), args...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		n, _ := res.RowsAffected()
		total += n
		return nil
	})
	return total, err
}

// insertValues runs stmt, an INSERT whose %s is its VALUES list, once per
// row through one prepared single-row statement, tells changed (when not
// nil) whether each row was written, and returns how many were; what names
// the work in an error ("" for none). One row per statement spares SQLite
// the statement journal that a multi-row INSERT keeps (a copy of every
// page the statement changes, so that it alone can be rolled back):
// measured, that journal was a fifth of a replay's writer time.
func insertValues[T any](ctx context.Context, ex execer, rows []T, width int, add func([]any, *T) []any, stmt, what string,
	changed func(i int, written bool)) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	wrap := func(err error) error {
		if what == "" {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	ps, err := ex.PrepareContext(ctx, strings.Replace(stmt, "%s", "("+placeholders(width)+")", 1))
	if err != nil {
		return 0, wrap(err)
	}
	defer ps.Close()
	// Every caller runs in an IMMEDIATE transaction, which holds the write
	// lock, so a one-row statement never waits and runs for microseconds.
	// The context is checked between rows rather than watched during each:
	// the driver watches a cancellable one with a goroutine per statement,
	// about 5 % of a replay's writer (docs/performance.md).
	rowCtx := context.WithoutCancel(ctx)
	var total int64
	args := make([]any, 0, width)
	for i := range rows {
		if err := ctx.Err(); err != nil {
			return total, wrap(err)
		}
		args = add(args[:0], &rows[i])
		res, err := ps.ExecContext(rowCtx, args...)
		if err != nil {
			return total, wrap(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, wrap(err)
		}
		total += n
		if changed != nil {
			changed(i, n > 0)
		}
	}
	return total, nil
}

type projTx struct {
	tx execer
	s  *Store
	// writer and seq are the connection the transaction runs on and its
	// number there (Store.writer); nil when the store has no writer
	// connection of its own.
	writer *sql.Conn
	seq    int64
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func ts(t time.Time) string { return wire.FormatSQLiteTimestamp(t) }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

func strPtr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeCols is execution_results' column list in write order, limited to
// the columns this file has.
func (s *Store) writeCols() []string {
	var cols []string
	for _, c := range []string{"result_id", "request_id", "exec_id", "pc_id", "exit_code", "stdout", "stderr", "started_at",
		"finished_at", "job_id", "parent_result_id", "recorded_at", "version", "expires_at", "skipped", "reaped"} {
		if s.cols[c] {
			cols = append(cols, c)
		}
	}
	return cols
}

func rowValue(r *store.ResultRow, col string) any {
	switch col {
	case "result_id":
		return r.ResultID
	case "request_id":
		return r.RequestID
	case "exec_id":
		return strPtr(r.ExecID)
	case "pc_id":
		return r.PCID
	case "exit_code":
		if r.ExitCode == nil {
			return nil
		}
		return int64(*r.ExitCode)
	case "stdout":
		return r.Stdout
	case "stderr":
		return r.Stderr
	case "started_at":
		return ts(r.StartedAt)
	case "finished_at":
		return tsPtr(r.FinishedAt)
	case "job_id":
		return strPtr(r.JobID)
	case "parent_result_id":
		return strPtr(r.ParentResultID)
	case "recorded_at":
		return ts(r.RecordedAt)
	case "version":
		return strPtr(r.Version)
	case "expires_at":
		return tsPtr(r.ExpiresAt)
	case "skipped":
		return b2i(r.Skipped)
	case "reaped":
		return b2i(r.Reaped)
	}
	panic("unknown column " + col)
}

// insertEach writes rows with one prepared single-row statement (see
// insertValues), suffix being the conflict clause, tells changed (when not
// nil) whether each row was written, and returns how many were.
func (s *Store) insertEach(ctx context.Context, ex execer, rows []store.ResultRow, suffix string, changed func(i int, written bool)) (int64, error) {
	cols := s.writeCols()
	add := func(args []any, r *store.ResultRow) []any {
		for _, c := range cols {
			args = append(args, rowValue(r, c))
		}
		return args
	}
	return insertValues(ctx, ex, rows, len(cols), add, "INSERT INTO execution_results ("+strings.Join(cols, ", ")+") VALUES %s "+suffix, "", changed)
}

func (t *projTx) LoadResultStates(ctx context.Context, ids []string) (map[string]store.RowState, error) {
	out := make(map[string]store.RowState, len(ids))
	err := inChunks(ids, func(in string, args []any) error {
		rows, err := t.tx.QueryContext(ctx, "SELECT result_id, finished_at IS NOT NULL, reaped FROM execution_results WHERE result_id IN "+in, args...)
		if err != nil {
			return fmt.Errorf("load row states: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var fin, reaped int
			if err := rows.Scan(&id, &fin, &reaped); err != nil {
				return err
			}
			out[id] = store.RowState{Finished: fin != 0, Reaped: reaped != 0}
		}
		return rows.Err()
	})
	return out, err
}

func (t *projTx) InsertNew(ctx context.Context, rows []store.ResultRow) ([]string, error) {
	var skipped []string
	_, err := t.s.insertEach(ctx, t.tx, rows, "ON CONFLICT(result_id) DO NOTHING", func(i int, written bool) {
		if !written {
			skipped = append(skipped, rows[i].ResultID)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("insert new rows: %w", err)
	}
	return skipped, nil
}

func (t *projTx) InsertInFlight(ctx context.Context, rows []store.ResultRow) (int64, error) {
	n, err := t.s.insertEach(ctx, t.tx, rows, "ON CONFLICT(result_id) DO NOTHING", nil)
	if err != nil {
		return n, fmt.Errorf("insert in-flight rows: %w", err)
	}
	return n, nil
}

// UpsertResults is upstream's own statement (spec section 4.5), batched.
func (t *projTx) UpsertResults(ctx context.Context, rows []store.ResultRow) (int64, error) {
	set := `exit_code = excluded.exit_code, stdout = excluded.stdout, stderr = excluded.stderr, finished_at = excluded.finished_at,
		reaped = 0, job_id = COALESCE(excluded.job_id, execution_results.job_id), request_id = excluded.request_id`
	if t.s.cols["skipped"] {
		set += ", skipped = excluded.skipped"
	}
	n, err := t.s.insertEach(ctx, t.tx, rows, "ON CONFLICT(result_id) DO UPDATE SET "+set+
		" WHERE execution_results.finished_at IS NULL OR execution_results.reaped = 1", nil)
	if err != nil {
		return n, fmt.Errorf("upsert results: %w", err)
	}
	return n, nil
}

func (t *projTx) StartExecutions(ctx context.Context, execIDs []string) error {
	return inChunks(execIDs, func(in string, args []any) error {
		if _, err := t.tx.ExecContext(ctx, "UPDATE executions SET status = 'running' WHERE status = 'pending' AND exec_id IN "+in, args...); err != nil {
			return fmt.Errorf("mark started executions running: %w", err)
		}
		return nil
	})
}

// sqliteBumpStatus is the status rule for a counter update by d.
var sqliteBumpStatus = store.ExecutionStatusSQL("status", "success_count + d.s + failure_count + d.f", "target_count")

func (t *projTx) BumpExecutions(ctx context.Context, deltas []store.CounterDelta) ([]string, error) {
	var moved []string
	add := func(args []any, d *store.CounterDelta) []any { return append(args, d.ExecID, d.Success, d.Failure) }
	err := inValues(deltas, 3, add, func(_ []store.CounterDelta, values string, args []any) error {
		rows, err := t.tx.QueryContext(ctx, `WITH d(exec_id, s, f) AS (VALUES `+values+`)
			UPDATE executions SET
				success_count = success_count + d.s,
				failure_count = failure_count + d.f,
				status = `+sqliteBumpStatus+`
			FROM d WHERE executions.exec_id = d.exec_id
			RETURNING executions.exec_id`, args...)
		if err != nil {
			return fmt.Errorf("bump execution counters: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			moved = append(moved, id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("bump execution counters: %w", err)
		}
		return nil
	})
	return moved, err
}

func (t *projTx) UpsertInventory(ctx context.Context, facts []store.InventoryFact) (int64, error) {
	add := func(args []any, f *store.InventoryFact) []any {
		return append(args, f.PCID, f.JobID, f.FactsJSON, strPtr(f.DisplayJSON), strPtr(f.SummaryJSON), tsPtr(f.CollectedAt), ts(f.RecordedAt))
	}
	// recorded_at is compared as text, as upstream does: chrono's shape
	// sorts chronologically, which is why every writer must keep it. A row
	// that would not change is not rewritten (a redelivery writes nothing).
	return insertValues(ctx, t.tx, facts, 7, add, `INSERT INTO inventory_facts (pc_id, job_id, facts_json, display_json, summary_json, collected_at, recorded_at)
		VALUES %s
		ON CONFLICT(pc_id, job_id) DO UPDATE SET
			facts_json = excluded.facts_json, display_json = excluded.display_json, summary_json = excluded.summary_json,
			collected_at = excluded.collected_at, recorded_at = excluded.recorded_at
		WHERE excluded.recorded_at >= inventory_facts.recorded_at
			AND (excluded.facts_json IS NOT inventory_facts.facts_json OR excluded.display_json IS NOT inventory_facts.display_json
				OR excluded.summary_json IS NOT inventory_facts.summary_json OR excluded.collected_at IS NOT inventory_facts.collected_at
				OR excluded.recorded_at IS NOT inventory_facts.recorded_at)`, "upsert inventory facts", nil)
}

func (t *projTx) SaveCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO kanade_checkpoints (name, stream, stream_created, last_seq, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET stream = excluded.stream, stream_created = excluded.stream_created,
			last_seq = excluded.last_seq, updated_at = excluded.updated_at`,
		cp.Name, cp.Stream, ts(cp.StreamCreated), int64(cp.LastSeq), ts(cp.UpdatedAt))
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", cp.Name, err)
	}
	return nil
}

func (t *projTx) AddQuarantine(ctx context.Context, entries []store.QuarantineEntry) error {
	for _, q := range entries {
		if q.Payload == nil {
			q.Payload = []byte{} // an empty message (read back as nil) is an empty blob, not NULL
		}
		_, err := t.tx.ExecContext(ctx, `INSERT INTO kanade_quarantine (stream, seq, subject, published_at, error, payload, quarantined_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(stream, seq) DO UPDATE SET error = excluded.error, quarantined_at = excluded.quarantined_at
			WHERE kanade_quarantine.error IS NOT excluded.error`,
			q.Stream, int64(q.Seq), q.Subject, ts(q.PublishedAt), q.Error, q.Payload, ts(q.QuarantinedAt))
		if err != nil {
			return fmt.Errorf("quarantine %s seq %d: %w", q.Stream, q.Seq, err)
		}
	}
	return nil
}

func (t *projTx) DeleteQuarantine(ctx context.Context, stream string, seqs []uint64) error {
	for _, seq := range seqs {
		if _, err := t.tx.ExecContext(ctx, "DELETE FROM kanade_quarantine WHERE stream = ? AND seq = ?", stream, int64(seq)); err != nil {
			return fmt.Errorf("clear quarantine: %w", err)
		}
	}
	return nil
}
