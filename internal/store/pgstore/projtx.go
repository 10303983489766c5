package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kanadehq/kanade-cli/internal/store"
)

type projTx struct {
	tx pgx.Tx
	// direct says the transaction began with the savepoint for one COPY
	// straight into the table (one, never a pile of them in a dry run's
	// single transaction); gate hears how it went.
	gate   *copyGate
	direct bool
	// final holds the ids (as stored) that InsertNew found finished and
	// not reaped: such a row is final, so LoadResultStates need not read
	// it again (a replay of what is projected then reads each id once).
	final map[string]bool
}

const directSavepoint = "kanade_copy_direct"

// copyGate decides whether InsertNew tries COPY straight into
// execution_results. The COPY fails on the first id that exists, and its
// work is rolled back, so after a failure the gate stays shut for a
// doubling number of batches: a stream of new ids (a replay into new or
// rebuilt tables) gets the fast path, a stream of known ids does not
// pay for it more than about once in 64 batches.
type copyGate struct {
	mu      sync.Mutex
	skip    int  // batches left to skip
	backoff int  // batches to skip after the next failure
	always  bool // never shut (tests drive the fallback with it)
}

func (g *copyGate) allow() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.skip > 0 && !g.always {
		g.skip--
		return false
	}
	return true
}

func (g *copyGate) record(ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ok {
		g.backoff = 0
		return
	}
	g.backoff = min(max(1, 2*g.backoff), 64)
	g.skip = g.backoff
}

// pgText makes text storable: PostgreSQL rejects U+0000 in text columns,
// so each NUL becomes U+FFFD, the smallest change that keeps every other
// byte (documented in docs/concepts.md).
func pgText(s string) string { return store.Postgres.StoredText(s) }

func pgTextPtr(p *string) *string {
	if p == nil || strings.IndexByte(*p, 0) < 0 {
		return p
	}
	v := pgText(*p)
	return &v
}

func (t *projTx) LoadResultStates(ctx context.Context, ids []string) (map[string]store.RowState, error) {
	out := make(map[string]store.RowState, len(ids))
	clean := make([]string, 0, len(ids))
	byStored := make(map[string]string, len(ids))
	for _, id := range ids {
		stored := pgText(id)
		if t.final[stored] {
			out[id] = store.RowState{Finished: true}
			continue
		}
		clean = append(clean, stored)
		byStored[stored] = id
	}
	if len(clean) == 0 {
		return out, nil
	}
	read := func(q string, ids []string) ([]string, error) {
		rows, err := t.tx.Query(ctx, q, ids)
		if err != nil {
			return nil, fmt.Errorf("load row states: %w", err)
		}
		defer rows.Close()
		var open []string
		for rows.Next() {
			var id string
			var st store.RowState
			if err := rows.Scan(&id, &st.Finished, &st.Reaped); err != nil {
				return nil, err
			}
			out[byStored[id]] = st
			if !st.Finished || st.Reaped {
				open = append(open, id)
			}
		}
		return open, rows.Err()
	}
	// A finished row that is not a reaped placeholder is final: no writer
	// changes it again, so it needs no lock (and taking one would write to
	// every row a re-replay reads). The others are locked and read again.
	open, err := read(`SELECT result_id, finished_at IS NOT NULL, reaped FROM execution_results WHERE result_id = ANY($1)`, clean)
	if err != nil || len(open) == 0 {
		return out, err
	}
	// ORDER BY gives every writer the same lock order, so two batches that
	// share rows wait for each other instead of deadlocking.
	_, err = read(`SELECT result_id, finished_at IS NOT NULL, reaped FROM execution_results
		WHERE result_id = ANY($1) ORDER BY result_id FOR UPDATE`, open)
	return out, err
}

var resultColNames = []string{"result_id", "request_id", "exec_id", "pc_id", "exit_code", "stdout", "stderr", "started_at",
	"finished_at", "job_id", "parent_result_id", "recorded_at", "version", "expires_at", "skipped", "reaped"}

// stage COPYs rows into a per-session temporary table: COPY is the
// fastest way into PostgreSQL, and the INSERT ... SELECT that follows
// applies upstream's conflict rule to the whole batch at once.
func (t *projTx) stage(ctx context.Context, rows []store.ResultRow) error {
	if _, err := t.tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS kanade_stage_results (
		result_id text, request_id text, exec_id text, pc_id text, exit_code integer, stdout text, stderr text,
		started_at timestamptz, finished_at timestamptz, job_id text, parent_result_id text, recorded_at timestamptz,
		version text, expires_at timestamptz, skipped boolean, reaped boolean) ON COMMIT DELETE ROWS`); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	if _, err := t.tx.Exec(ctx, "TRUNCATE kanade_stage_results"); err != nil {
		return fmt.Errorf("clear staging table: %w", err)
	}
	if _, err := copyResults(ctx, t.tx, "kanade_stage_results", rows); err != nil {
		return fmt.Errorf("copy batch into staging table: %w", err)
	}
	return nil
}

// copyDirect COPYs rows straight into execution_results under the
// savepoint the transaction began with: it saves writing and reading the
// staging table, and reports false, with nothing written, when an id
// already exists. On success the savepoint is left to the commit (one
// round trip fewer).
func (t *projTx) copyDirect(ctx context.Context, rows []store.ResultRow) (bool, error) {
	_, err := copyResults(ctx, t.tx, "execution_results", rows)
	if err == nil {
		return true, nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" { // unique_violation
		return false, fmt.Errorf("copy new rows into execution_results: %w", err)
	}
	if _, err := t.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+directSavepoint); err != nil {
		return false, fmt.Errorf("insert new rows: %w", err)
	}
	return false, nil
}

var insertFromStage = "INSERT INTO execution_results (" + strings.Join(resultColNames, ", ") + ") SELECT " +
	strings.Join(resultColNames, ", ") + " FROM kanade_stage_results"

// InsertNew returns only the skipped ids (computed in the server against
// what the INSERT returned): on a replay into new tables that is none, so
// the batch needs no separate row-state read.
func (t *projTx) InsertNew(ctx context.Context, rows []store.ResultRow) ([]string, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	if t.direct {
		t.direct = false
		ok, err := t.copyDirect(ctx, rows)
		if err != nil {
			return nil, err
		}
		t.gate.record(ok)
		if ok {
			return nil, nil
		}
	}
	// Ids that exist are skipped without staging their rows: a replay of
	// what is projected (all of them exist) then moves no row data at all.
	ids := make([]string, len(rows))
	for i := range rows {
		ids[i] = pgText(rows[i].ResultID)
	}
	res, err := t.tx.Query(ctx, `SELECT result_id, finished_at IS NOT NULL AND NOT reaped FROM execution_results WHERE result_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("insert new rows: %w", err)
	}
	var have []string
	var id string
	var final bool
	_, err = pgx.ForEachRow(res, []any{&id, &final}, func() error {
		have = append(have, id)
		if final {
			if t.final == nil {
				t.final = map[string]bool{}
			}
			t.final[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert new rows: %w", err)
	}
	skipped := unstoredIDs(have, rows)
	if len(have) > 0 {
		exists := make(map[string]bool, len(have))
		for _, id := range have {
			exists[id] = true
		}
		var rest []store.ResultRow
		for i := range rows {
			if !exists[ids[i]] {
				rest = append(rest, rows[i])
			}
		}
		if rows = rest; len(rows) == 0 {
			return skipped, nil
		}
	}
	if err := t.stage(ctx, rows); err != nil {
		return nil, err
	}
	res, err = t.tx.Query(ctx, `WITH ins AS (`+insertFromStage+` ON CONFLICT (result_id) DO NOTHING RETURNING result_id)
		SELECT s.result_id FROM kanade_stage_results s WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.result_id = s.result_id)`)
	if err != nil {
		return nil, fmt.Errorf("insert new rows: %w", err)
	}
	stored, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert new rows: %w", err)
	}
	return append(skipped, unstoredIDs(stored, rows)...), nil
}

// unstoredIDs maps ids as stored (NUL replaced) back to the callers' ids.
func unstoredIDs(stored []string, rows []store.ResultRow) []string {
	if len(stored) == 0 {
		return nil
	}
	byStored := make(map[string]string, len(rows))
	for i := range rows {
		byStored[pgText(rows[i].ResultID)] = rows[i].ResultID
	}
	out := make([]string, len(stored))
	for i, id := range stored {
		out[i] = byStored[id]
	}
	return out
}

func (t *projTx) InsertInFlight(ctx context.Context, rows []store.ResultRow) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	if err := t.stage(ctx, rows); err != nil {
		return 0, err
	}
	tag, err := t.tx.Exec(ctx, insertFromStage+` ON CONFLICT (result_id) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("insert in-flight rows: %w", err)
	}
	return tag.RowsAffected(), nil
}

// UpsertResults is upstream's statement (spec section 4.5), fed from the
// staged batch.
func (t *projTx) UpsertResults(ctx context.Context, rows []store.ResultRow) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	if err := t.stage(ctx, rows); err != nil {
		return 0, err
	}
	tag, err := t.tx.Exec(ctx, insertFromStage+`
ON CONFLICT (result_id) DO UPDATE SET
	exit_code   = excluded.exit_code,
	stdout      = excluded.stdout,
	stderr      = excluded.stderr,
	finished_at = excluded.finished_at,
	reaped      = false,
	skipped     = excluded.skipped,
	job_id      = COALESCE(excluded.job_id, execution_results.job_id),
	request_id  = excluded.request_id
WHERE execution_results.finished_at IS NULL OR execution_results.reaped`)
	if err != nil {
		return 0, fmt.Errorf("upsert results: %w", err)
	}
	return tag.RowsAffected(), nil
}

// sqlBumpExecutions is upstream's counter update, for a batch of deltas
// (negative ones too: backfill takes back what it removes).
var sqlBumpExecutions = `UPDATE executions e SET
	success_count = e.success_count + d.s,
	failure_count = e.failure_count + d.f,
	status = ` + store.ExecutionStatusSQL("e.status", "e.success_count + d.s + e.failure_count + d.f", "e.target_count") + `
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(exec_id, s, f)
WHERE e.exec_id = d.exec_id
RETURNING e.exec_id`

func (t *projTx) StartExecutions(ctx context.Context, execIDs []string) error {
	if len(execIDs) == 0 {
		return nil
	}
	ids := make([]string, len(execIDs))
	for i, id := range execIDs {
		ids[i] = pgText(id)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE executions SET status = 'running' WHERE exec_id = ANY($1) AND status = 'pending'`, ids); err != nil {
		return fmt.Errorf("mark started executions running: %w", err)
	}
	return nil
}

func (t *projTx) BumpExecutions(ctx context.Context, deltas []store.CounterDelta) ([]string, error) {
	if len(deltas) == 0 {
		return nil, nil
	}
	ids := make([]string, len(deltas))
	succ := make([]int64, len(deltas))
	fail := make([]int64, len(deltas))
	for i, d := range deltas {
		ids[i], succ[i], fail[i] = pgText(d.ExecID), d.Success, d.Failure
	}
	rows, err := t.tx.Query(ctx, sqlBumpExecutions, ids, succ, fail)
	if err != nil {
		return nil, fmt.Errorf("bump execution counters: %w", err)
	}
	moved, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("bump execution counters: %w", err)
	}
	return moved, nil
}

func (t *projTx) UpsertInventory(ctx context.Context, facts []store.InventoryFact) (int64, error) {
	if len(facts) == 0 {
		return 0, nil
	}
	n := len(facts)
	pc, job, fj := make([]string, n), make([]string, n), make([]string, n)
	disp, summ := make([]*string, n), make([]*string, n)
	coll, rec := make([]*time.Time, n), make([]time.Time, n)
	for i, f := range facts {
		pc[i], job[i], fj[i] = pgText(f.PCID), pgText(f.JobID), pgText(f.FactsJSON)
		disp[i], summ[i], coll[i], rec[i] = pgTextPtr(f.DisplayJSON), pgTextPtr(f.SummaryJSON), f.CollectedAt, f.RecordedAt
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO inventory_facts (pc_id, job_id, facts_json, display_json, summary_json, collected_at, recorded_at)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
	ON CONFLICT (pc_id, job_id) DO UPDATE SET
		facts_json = excluded.facts_json, display_json = excluded.display_json, summary_json = excluded.summary_json,
		collected_at = excluded.collected_at, recorded_at = excluded.recorded_at
	WHERE excluded.recorded_at >= inventory_facts.recorded_at
		AND (inventory_facts.facts_json, inventory_facts.display_json, inventory_facts.summary_json, inventory_facts.collected_at, inventory_facts.recorded_at)
			IS DISTINCT FROM (excluded.facts_json, excluded.display_json, excluded.summary_json, excluded.collected_at, excluded.recorded_at)`, pc, job, fj, disp, summ, coll, rec)
	if err != nil {
		return 0, fmt.Errorf("upsert inventory facts: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (t *projTx) SaveCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO kanade_checkpoints (name, stream, stream_created, last_seq, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET stream = excluded.stream, stream_created = excluded.stream_created,
			last_seq = excluded.last_seq, updated_at = excluded.updated_at`,
		cp.Name, cp.Stream, cp.StreamCreated, int64(cp.LastSeq), cp.UpdatedAt)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", cp.Name, err)
	}
	return nil
}

func (t *projTx) AddQuarantine(ctx context.Context, entries []store.QuarantineEntry) error {
	for _, q := range entries {
		_, err := t.tx.Exec(ctx, `INSERT INTO kanade_quarantine (stream, seq, subject, published_at, error, payload, quarantined_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (stream, seq) DO UPDATE SET error = excluded.error, quarantined_at = excluded.quarantined_at
			WHERE kanade_quarantine.error IS DISTINCT FROM excluded.error`,
			q.Stream, int64(q.Seq), pgText(q.Subject), q.PublishedAt, pgText(q.Error), q.Payload, q.QuarantinedAt)
		if err != nil {
			return fmt.Errorf("quarantine %s seq %d: %w", q.Stream, q.Seq, err)
		}
	}
	return nil
}

func (t *projTx) DeleteQuarantine(ctx context.Context, stream string, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	s := make([]int64, len(seqs))
	for i, v := range seqs {
		s[i] = int64(v)
	}
	if _, err := t.tx.Exec(ctx, "DELETE FROM kanade_quarantine WHERE stream = $1 AND seq = ANY($2)", stream, s); err != nil {
		return fmt.Errorf("clear quarantine: %w", err)
	}
	return nil
}
