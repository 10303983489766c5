package projector_test

import (
	"context"
	"errors"

	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/jackc/pgx/v5"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// reference is a plain serial projector: upstream's own statements, one
// message per transaction, exactly as spec section 4 lists them. The
// batched projector must leave the same tables.
type reference struct {
	exec  func(ctx context.Context, tx any, q string, args ...any) (int64, error)
	query func(ctx context.Context, tx any, q string, args ...any) (*int64, error)
	begin func(ctx context.Context) (tx any, commit func() error, err error)
	ts    func(time.Time) any
	flag  func(bool) any
}

func pgReference(st *pgstore.Store) *reference {
	conv := func(q string) string {
		n := 0
		var b strings.Builder
		for _, c := range q {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return &reference{
		begin: func(ctx context.Context) (any, func() error, error) {
			tx, err := st.Pool().Begin(ctx)
			if err != nil {
				return nil, nil, err
			}
			return tx, func() error { return tx.Commit(ctx) }, nil
		},
		exec: func(ctx context.Context, tx any, q string, args ...any) (int64, error) {
			tag, err := tx.(pgx.Tx).Exec(ctx, conv(q), args...)
			if err != nil {
				return 0, err
			}
			return tag.RowsAffected(), nil
		},
		query: func(ctx context.Context, tx any, q string, args ...any) (*int64, error) {
			var v *int64
			err := tx.(pgx.Tx).QueryRow(ctx, conv(q), args...).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, nil
			}
			return v, err
		},
		ts:   func(t time.Time) any { return t },
		flag: func(b bool) any { return b },
	}
}

func sqliteReference(st *sqlitestore.Store) *reference {
	return &reference{
		begin: func(ctx context.Context) (any, func() error, error) {
			tx, err := st.DB().BeginTx(ctx, nil)
			if err != nil {
				return nil, nil, err
			}
			return tx, tx.Commit, nil
		},
		exec: func(ctx context.Context, tx any, q string, args ...any) (int64, error) {
			res, err := tx.(*sql.Tx).ExecContext(ctx, q, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
		query: func(ctx context.Context, tx any, q string, args ...any) (*int64, error) {
			var v sql.NullInt64
			err := tx.(*sql.Tx).QueryRowContext(ctx, q, args...).Scan(&v)
			if err == sql.ErrNoRows {
				return nil, nil
			}
			if !v.Valid {
				return nil, err
			}
			return &v.Int64, err
		},
		ts:   func(t time.Time) any { return wire.FormatSQLiteTimestamp(t) },
		flag: func(b bool) any { return map[bool]int{false: 0, true: 1}[b] },
	}
}

func optTS(ref *reference, t *time.Time) any {
	if t == nil {
		return nil
	}
	return ref.ts(*t)
}

// project applies one message the way upstream's projector does.
func (ref *reference) project(ctx context.Context, m projector.Message, objects map[string][]byte, manifests map[string]*wire.Manifest) error {
	tx, commit, err := ref.begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if r, ok := tx.(interface{ Rollback() error }); ok {
			r.Rollback() //nolint:errcheck
		} else if r, ok := tx.(interface{ Rollback(context.Context) error }); ok {
			r.Rollback(ctx) //nolint:errcheck
		}
	}()
	switch {
	case strings.HasPrefix(m.Subject, "events.started."):
		e, err := wire.DecodeEventStarted(m.Data)
		if err != nil {
			return nil
		}
		_, err = ref.exec(ctx, tx, `INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, started_at, version, job_id, recorded_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(result_id) DO NOTHING`,
			e.ResultID, e.RequestID, e.ExecID, e.PCID, ref.ts(e.StartedAt), e.Version, e.ManifestID, ref.ts(m.Published), optTS(ref, e.ExpiresAt))
		if err != nil {
			return err
		}
		return commit()
	case strings.HasPrefix(m.Subject, "results."):
	default:
		return nil
	}
	r, err := wire.DecodeExecResult(m.Data)
	if err != nil {
		return nil // quarantined by kanade; upstream loses it; no table row either way
	}
	for _, f := range []struct{ key, dst *string }{{r.StdoutObject, &r.Stdout}, {r.StderrObject, &r.Stderr}} {
		if f.key != nil {
			data, ok := objects[*f.key]
			if !ok {
				return nil // quarantined
			}
			*f.dst = projector.LossyUTF8(data)
		}
	}
	id := r.StableID()
	wasReaped, err := ref.query(ctx, tx, "SELECT CASE WHEN reaped THEN 1 ELSE 0 END FROM execution_results WHERE result_id = ?", id)
	if err != nil {
		return fmt.Errorf("was_reaped: %w", err)
	}
	n, err := ref.exec(ctx, tx, `INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, exit_code, stdout, stderr,
			started_at, finished_at, job_id, parent_result_id, recorded_at, skipped)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(result_id) DO UPDATE SET
			exit_code = excluded.exit_code, stdout = excluded.stdout, stderr = excluded.stderr, finished_at = excluded.finished_at,
			reaped = ?, skipped = excluded.skipped, job_id = COALESCE(excluded.job_id, execution_results.job_id), request_id = excluded.request_id
		WHERE execution_results.finished_at IS NULL OR execution_results.reaped = ?`,
		id, r.RequestID, r.ExecID, r.PCID, r.ExitCode, r.Stdout, r.Stderr, ref.ts(r.StartedAt), ref.ts(r.FinishedAt), r.ManifestID,
		r.ParentResultID, ref.ts(m.Published), ref.flag(r.Skipped), ref.flag(false), ref.flag(true))
	if err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	if n > 0 && (wasReaped == nil || *wasReaped != 1) && r.ExecID != nil {
		s, f := 0, 1
		if r.ExitCode == 0 {
			s, f = 1, 0
		}
		if _, err := ref.exec(ctx, tx, `UPDATE executions SET success_count = success_count + ?, failure_count = failure_count + ?,
			status = CASE WHEN (success_count + ?) + (failure_count + ?) >= target_count THEN 'completed' ELSE 'running' END
			WHERE exec_id = ?`, s, f, s, f, *r.ExecID); err != nil {
			return fmt.Errorf("bump: %w", err)
		}
	}
	if err := commit(); err != nil {
		return err
	}
	if r.ExitCode == 0 && r.ManifestID != nil {
		if man := manifests[*r.ManifestID]; man != nil && man.Inventory != nil && json.Valid([]byte(r.Stdout)) {
			tx, commit, err := ref.begin(ctx)
			if err != nil {
				return err
			}
			_, err = ref.exec(ctx, tx, `INSERT INTO inventory_facts (pc_id, job_id, facts_json, display_json, summary_json, collected_at, recorded_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT(pc_id, job_id) DO UPDATE SET facts_json = excluded.facts_json, display_json = excluded.display_json,
					summary_json = excluded.summary_json, collected_at = excluded.collected_at, recorded_at = excluded.recorded_at
				WHERE excluded.recorded_at >= inventory_facts.recorded_at`,
				r.PCID, *r.ManifestID, r.Stdout, man.Inventory.DisplayJSON(), man.Inventory.SummaryJSON(), ref.ts(r.FinishedAt), ref.ts(m.Published))
			if err != nil {
				return fmt.Errorf("inventory: %w", err)
			}
			return commit()
		}
	}
	return nil
}

type mapOutputs map[string][]byte

func (m mapOutputs) Output(_ context.Context, key string) ([]byte, error) {
	if b, ok := m[key]; ok {
		return b, nil
	}
	return nil, projector.ErrNotFound
}

type mapManifests map[string]*wire.Manifest

func (m mapManifests) Manifest(_ context.Context, id string) (*wire.Manifest, error) {
	return m[id], nil
}

// workload is one random history: a database as upstream's past left it
// and the messages that arrive next.
type workload struct {
	execs    []store.Execution
	seed     []store.ResultRow
	msgs     []projector.Message
	objects  map[string][]byte
	manifest map[string]*wire.Manifest
}

func genWorkload(rng *rand.Rand) *workload {
	base := time.Date(2026, 5, 16, 0, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time {
		return base.Add(time.Duration(sec) * time.Second).Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
	}
	pcs := []string{"PC-01", "PC-02", "PC-03", "PC-04"}
	reqs := []string{"req-a", "req-b", "req-c"}
	execIDs := []string{"exec-1", "exec-2", "exec-3"}
	inv := &wire.Manifest{ID: "inventory-hw", Version: "1.0.0", Inventory: &wire.InventoryHint{Display: []wire.DisplayField{{Field: "cpu", Label: "CPU"}}}}
	w := &workload{objects: map[string][]byte{}, manifest: map[string]*wire.Manifest{"inventory-hw": inv, "plain": {ID: "plain", Version: "1"}}}
	for i, e := range execIDs[:2] {
		target := int64(1 + rng.IntN(5))
		s, f := int64(rng.IntN(2)), int64(rng.IntN(2))
		w.execs = append(w.execs, store.Execution{ExecID: e, JobID: "inventory-hw", Version: "1.0.0", InitiatedBy: "ops", InitiatedAt: at(i),
			TargetCount: target, SuccessCount: s, FailureCount: f, Status: []string{"pending", "running", "completed", "expired"}[rng.IntN(4)]})
	}
	// result ids the agents will use: v0.29 ids, and legacy (stable) ids.
	type run struct{ resultID, req, pc, exec string }
	var runs []run
	for i := 0; i < 6; i++ {
		r := run{req: reqs[rng.IntN(len(reqs))], pc: pcs[rng.IntN(len(pcs))]}
		if rng.IntN(3) > 0 {
			r.resultID = fmt.Sprintf("rid-%d", i)
		}
		if rng.IntN(4) > 0 {
			r.exec = execIDs[rng.IntN(len(execIDs))]
		}
		runs = append(runs, r)
	}
	ptr := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	// Pre-existing rows: in flight, reaped, or finished.
	seeded := map[string]bool{}
	for _, r := range runs {
		id := wire.StableResultID(r.resultID, r.req, r.pc)
		if rng.IntN(3) != 0 || seeded[id] {
			continue
		}
		seeded[id] = true
		row := store.ResultRow{ResultID: id, RequestID: r.req, ExecID: ptr(r.exec), PCID: r.pc, StartedAt: at(1), RecordedAt: at(2), Version: ptr("0.9")}
		switch rng.IntN(3) {
		case 1: // reaped placeholder
			code, fin := int32(-1), at(3)
			row.ExitCode, row.FinishedAt, row.Reaped, row.Stderr = &code, &fin, true, "[backend: reaped]"
		case 2: // finished
			code, fin := int32(rng.IntN(2)), at(3)
			row.ExitCode, row.FinishedAt, row.Stdout = &code, &fin, "old"
		}
		w.seed = append(w.seed, row)
	}
	seq := uint64(0)
	pub := 100
	add := func(subject string, data []byte) {
		seq++
		if rng.IntN(5) > 0 {
			pub++
		}
		w.msgs = append(w.msgs, projector.Message{Stream: "RESULTS", Seq: seq, Subject: subject, Published: base.Add(time.Duration(pub) * time.Second), Data: data})
	}
	n := 5 + rng.IntN(30)
	for i := 0; i < n; i++ {
		r := runs[rng.IntN(len(runs))]
		switch k := rng.IntN(12); {
		case k < 2: // started event (needs a result id and an exec id)
			if r.resultID == "" || r.exec == "" {
				continue
			}
			e := wire.EventStarted{ResultID: r.resultID, RequestID: r.req, ExecID: r.exec, PCID: r.pc, StartedAt: at(10), ManifestID: "inventory-hw", Version: "1.0.0"}
			add("events.started."+r.exec+"."+r.pc, e.Encode())
		case k < 3 && len(w.msgs) > 0: // redelivery of an earlier message
			old := w.msgs[rng.IntN(len(w.msgs))]
			add(old.Subject, old.Data)
		case k < 4: // undecodable
			add("results."+r.req, []byte(`{"request_id":"`+r.req+`","pc_id":3}`))
		default:
			res := wire.ExecResult{ResultID: r.resultID, RequestID: r.req, ExecID: ptr(r.exec), PCID: r.pc, ExitCode: int32(rng.IntN(3) - 1),
				Stdout: fmt.Sprintf(`{"cpu":"x%d"}`, rng.IntN(9)), Stderr: "e", StartedAt: at(10), FinishedAt: at(20)}
			if rng.IntN(2) == 0 {
				res.ExitCode = 0
			}
			switch rng.IntN(4) {
			case 0:
				res.ManifestID = ptr("inventory-hw")
			case 1:
				res.ManifestID = ptr("plain")
			case 2:
				res.ManifestID = ptr("inventory-hw")
				res.Stdout = "not json"
			}
			if rng.IntN(8) == 0 {
				res.Skipped = true
				res.ExitCode = 125
			}
			if rng.IntN(8) == 0 {
				key := r.req + "/stdout"
				res.StdoutObject, res.Stdout = &key, ""
				if rng.IntN(2) == 0 {
					w.objects[key] = []byte("big \xe2\x82 output")
				}
			}
			add("results."+r.req, res.Encode())
		}
	}
	return w
}

func reset(ctx context.Context, t *testing.T, st store.Store, ex func(string) error) {
	for _, tbl := range []string{"execution_results", "executions", "inventory_facts", "kanade_quarantine"} {
		if err := ex("DELETE FROM " + tbl); err != nil {
			t.Fatal(err)
		}
	}
}

func workloadCount(t *testing.T) int {
	if v := os.Getenv("KANADE_EQUIV_WORKLOADS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if testing.Short() {
		return 100
	}
	return 1000
}

// TestBatchedEqualsSerial is the proof the issue asks for: on many random
// workloads, with random batch boundaries, the batched projector leaves
// the tables the serial reference leaves, on both stores.
func TestBatchedEqualsSerial(t *testing.T) {
	ctx := context.Background()
	type pair struct {
		ref, bat  store.Store
		reference *reference
		exRef     func(string) error
		exBat     func(string) error
	}
	pgRef, pgBat := testutil.PostgresStore(t), testutil.PostgresStore(t)
	slRef, slBat := testutil.SQLiteStore(t), testutil.SQLiteStore(t)
	pgEx := func(s *pgstore.Store) func(string) error {
		return func(q string) error { _, err := s.Pool().Exec(ctx, q); return err }
	}
	slEx := func(s *sqlitestore.Store) func(string) error {
		return func(q string) error { _, err := s.DB().ExecContext(ctx, q); return err }
	}
	pairs := map[string]pair{
		"postgres": {pgRef, pgBat, pgReference(pgRef), pgEx(pgRef), pgEx(pgBat)},
		"sqlite":   {slRef, slBat, sqliteReference(slRef), slEx(slRef), slEx(slBat)},
	}
	n := workloadCount(t)
	for name, p := range pairs {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < n; i++ {
				rng := rand.New(rand.NewPCG(uint64(i), 19))
				w := genWorkload(rng)
				reset(ctx, t, p.ref, p.exRef)
				reset(ctx, t, p.bat, p.exBat)
				for _, st := range []store.Store{p.ref, p.bat} {
					if err := st.Seed(ctx, w.execs, w.seed); err != nil {
						t.Fatal(err)
					}
				}
				for _, m := range w.msgs {
					if err := p.reference.project(ctx, m, w.objects, w.manifest); err != nil {
						t.Fatalf("workload %d: reference: %v", i, err)
					}
				}
				proj := projector.New(p.bat, mapOutputs(w.objects), mapManifests(w.manifest))
				for start := 0; start < len(w.msgs); {
					end := min(len(w.msgs), start+1+rng.IntN(12))
					b, err := proj.Prepare(ctx, w.msgs[start:end])
					if err != nil {
						t.Fatal(err)
					}
					if _, err := proj.Apply(ctx, b, projector.ApplyOptions{}); err != nil {
						t.Fatalf("workload %d: batch %d..%d: %v", i, start, end, err)
					}
					start = end
				}
				want, err := p.ref.Dump(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got, err := p.bat.Dump(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(want, got) {
					t.Fatalf("workload %d: batched tables differ from the serial reference\n%s", i, diffTables(want, got))
				}
			}
		})
	}
}

func diffTables(want, got *store.Tables) string {
	var b strings.Builder
	j := func(v any) string { s, _ := json.Marshal(v); return string(s) }
	fmt.Fprintf(&b, "results: want %d rows, got %d\n", len(want.Results), len(got.Results))
	for i := 0; i < max(len(want.Results), len(got.Results)); i++ {
		var w, g any
		if i < len(want.Results) {
			w = want.Results[i]
		}
		if i < len(got.Results) {
			g = got.Results[i]
		}
		if !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "  want %s\n  got  %s\n", j(w), j(g))
		}
	}
	if !reflect.DeepEqual(want.Executions, got.Executions) {
		fmt.Fprintf(&b, "executions:\n  want %s\n  got  %s\n", j(want.Executions), j(got.Executions))
	}
	if !reflect.DeepEqual(want.Inventory, got.Inventory) {
		fmt.Fprintf(&b, "inventory:\n  want %s\n  got  %s\n", j(want.Inventory), j(got.Inventory))
	}
	return b.String()
}
