package projector_test

import (
	"context"

	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/projector/serialref"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

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

func genWorkload(rng *rand.Rand, explode bool) *workload {
	base := time.Date(2026, 5, 16, 0, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time {
		return base.Add(time.Duration(sec) * time.Second).Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
	}
	pcs := []string{"PC-01", "PC-02", "PC-03", "PC-04"}
	reqs := []string{"req-a", "req-b", "req-c"}
	execIDs := []string{"exec-1", "exec-2", "exec-3"}
	inv := &wire.Manifest{ID: "inventory-hw", Version: "1.0.0", Inventory: &wire.InventoryHint{Display: []wire.DisplayField{{Field: "cpu", Label: "CPU"}},
		HistoryScalars: []string{"cpu", "ram"}},
		Check: &wire.CheckHint{Name: wire.Str("disk"), Label: wire.Str("Disk")},
		Feed:  []wire.FeedSpec{{ID: wire.Str("kev"), Field: wire.Str("vulns"), PrimaryKey: []string{"vendor", "id"}}, {ID: wire.Str("kev"), Field: wire.Str("other"), PrimaryKey: []string{"id"}}}}
	if explode {
		col := func(name, kind string) wire.ExplodeColumn {
			c := wire.ExplodeColumn{Field: wire.Str(name)}
			if kind != "" {
				c.Type = wire.Str(kind)
			}
			return c
		}
		inv.Inventory.Explode = []wire.ExplodeSpec{{Field: wire.Str("vulns"), Table: wire.Str("inv_vulns"), PrimaryKey: []string{"vendor", "id"},
			TrackHistory: rng.IntN(2) == 0, Columns: []wire.ExplodeColumn{col("vendor", ""), col("id", "integer"), col("n", "real")}}}
	}
	// Only inventory-hw has an execute.timeout: started events of the
	// others get no deadline.
	inv.Execute = &wire.ExecuteHint{Timeout: wire.Str([]string{"10m", "30s", "1h 30m", "bogus"}[rng.IntN(4)])}
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
		switch k := rng.IntN(10); {
		case k == 0:
			// Out of order: a message stored later than one published
			// after it (the recency guards reject what it would change).
			pub -= 1 + rng.IntN(3)
		case k > 1:
			pub++
		}
		w.msgs = append(w.msgs, projector.Message{Stream: "RESULTS", Seq: seq, Subject: subject, Published: base.Add(time.Duration(pub) * time.Second), Data: data})
	}
	n := 5 + rng.IntN(30)
	for i := 0; i < n; i++ {
		r := runs[rng.IntN(len(runs))]
		switch k := rng.IntN(12); {
		case k < 2: // started event (ad-hoc runs carry exec_id "")
			e := wire.EventStarted{ResultID: r.resultID, RequestID: r.req, ExecID: r.exec, PCID: r.pc, StartedAt: at(10),
				ManifestID: []string{"inventory-hw", "plain", "unknown"}[rng.IntN(3)], Version: "1.0.0"}
			add("events.started."+r.exec+"."+r.pc, e.Encode())
		case k < 3 && len(w.msgs) > 0: // redelivery of an earlier message
			old := w.msgs[rng.IntN(len(w.msgs))]
			add(old.Subject, old.Data)
		case k < 4: // undecodable
			add("results."+r.req, []byte(`{"request_id":"`+r.req+`","pc_id":3}`))
		default:
			res := wire.ExecResult{ResultID: r.resultID, RequestID: r.req, ExecID: ptr(r.exec), PCID: r.pc, ExitCode: int32(rng.IntN(3) - 1),
				Stdout: fmt.Sprintf(`{"cpu":"x%d","ram":%s,"status":"%s","vulns":[{"vendor":"a","id":%d,"n":%d},{"vendor":"a","id":%d,"n":0},{"id":1}]}`,
					rng.IntN(9), []string{"8", "8.0", "16", "null"}[rng.IntN(4)], []string{"ok", "warn", "fail", "green"}[rng.IntN(4)],
					rng.IntN(3), rng.IntN(3), rng.IntN(3)), Stderr: "e", StartedAt: at(10), FinishedAt: at(20)}
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
				res.Stdout = []string{"not json", "log line\n#KANADE-INVENTORY-BEGIN\r\n{\"cpu\":\"f\"}\r\n#KANADE-INVENTORY-END\n",
					"  {\"cpu\":\"crlf\"}\r\n", "#KANADE-CHECK-BEGIN\n{}\n", "#KANADE-INVENTORY-BEGIN\n[1,2]",
					"#KANADE-FEED-BEGIN\n{\"vulns\":[],\"other\":[{\"id\":\"o\"}]}\n#KANADE-FEED-END\n#KANADE-CHECK-BEGIN\n{\"status\":\"ok\",\"detail\":{\"b\":1,\"a\":[2]}}\n",
					`{"vulns":{"not":"an array"},"ram":8}`}[rng.IntN(7)]
			}
			switch rng.IntN(8) {
			case 0:
				res.Skipped, res.ExitCode = wire.Bool(true), 125
			case 1: // a skip counts as a failure whatever its exit code
				res.Skipped, res.ExitCode = wire.Bool(true), 0
			case 2:
				res.Skipped = wire.Bool(false)
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

func reset(ctx context.Context, t *testing.T, st testutil.Store, ex func(string) error) {
	for _, tbl := range []string{"execution_results", "executions", "inventory_facts", "check_status", "feeds", "feed_meta", "inventory_history", "kanade_quarantine"} {
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
		ref, bat  testutil.Store
		reference *serialref.Reference
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
		"postgres": {pgRef, pgBat, serialref.New(pgRef), pgEx(pgRef), pgEx(pgBat)},
		"sqlite":   {slRef, slBat, serialref.New(slRef), slEx(slRef), slEx(slBat)},
	}
	n := workloadCount(t)
	for name, p := range pairs {
		t.Run(name, func(t *testing.T) {
			var history, changed, checks, feeds int
			defer func() {
				// The workloads must exercise the derived tables, or the
				// equality proves nothing about them.
				if !t.Failed() && (history < n || changed < n/10 || checks < n || feeds < n/4) {
					t.Errorf("over %d workloads: %d history rows (%d changed), %d check rows, %d feed rows: too few", n, history, changed, checks, feeds)
				}
			}()
			for i := 0; i < n; i++ {
				rng := rand.New(rand.NewPCG(uint64(i), 19))
				w := genWorkload(rng, false)
				reset(ctx, t, p.ref, p.exRef)
				reset(ctx, t, p.bat, p.exBat)
				for _, st := range []testutil.Store{p.ref, p.bat} {
					if err := st.Seed(ctx, w.execs, w.seed); err != nil {
						t.Fatal(err)
					}
				}
				for _, m := range w.msgs {
					if err := p.reference.Project(ctx, m, w.objects, w.manifest); err != nil {
						t.Fatalf("workload %d: reference: %v", i, err)
					}
				}
				if pg, ok := p.bat.(*pgstore.Store); ok {
					// Half the workloads try the direct COPY on every batch,
					// so its fallback meets every kind of existing row.
					pg.AlwaysTryDirectCopy(i%2 == 1)
				}
				proj := projector.New(p.bat, mapOutputs(w.objects), mapManifests(w.manifest))
				// On PostgreSQL half the workloads apply their batches two
				// at a time, as a replay there does: each begins while the
				// one ahead of it finishes.
				_, overlap := p.bat.(store.BatchOverlapper)
				overlap = overlap && i%4 >= 2
				var ahead *overlapped
				for start := 0; start < len(w.msgs); {
					end := min(len(w.msgs), start+1+rng.IntN(12))
					b, err := proj.Prepare(ctx, w.msgs[start:end])
					if err != nil {
						t.Fatal(err)
					}
					if overlap {
						next := beginOverlapped(ctx, proj, b)
						if err := ahead.settle(next); err != nil {
							t.Fatalf("workload %d: batch before %d: %v", i, start, err)
						}
						ahead = next
					} else if _, err := proj.Apply(ctx, b, projector.ApplyOptions{}); err != nil {
						t.Fatalf("workload %d: batch %d..%d: %v", i, start, end, err)
					}
					start = end
				}
				if err := ahead.settle(nil); err != nil {
					t.Fatalf("workload %d: last batch: %v", i, err)
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
				history, checks, feeds = history+len(got.History), checks+len(got.Checks), feeds+len(got.Feeds)
				for _, h := range got.History {
					if h.ChangeKind == "changed" {
						changed++
					}
				}
			}
		})
	}
}

// overlapped is a batch applied as a replay on PostgreSQL applies it:
// claimed in order and begun at once, the rest waiting for the batch
// ahead (replay's overlapped, without its retries).
type overlapped struct {
	ahead chan error
	done  chan error
}

func beginOverlapped(ctx context.Context, proj *projector.Projector, b *projector.Batch) *overlapped {
	o := &overlapped{ahead: make(chan error, 1), done: make(chan error, 1)}
	c := proj.Claim(b)
	go func() {
		_, err := proj.ApplyClaimed(ctx, c, projector.ApplyOptions{}, func(context.Context) error { return <-o.ahead })
		o.done <- err
	}()
	return o
}

// settle waits for o, then lets next (if any) go on, or stops it.
func (o *overlapped) settle(next *overlapped) error {
	var err error
	if o != nil {
		err = <-o.done
	}
	if next != nil {
		next.ahead <- err
		if err != nil {
			<-next.done
		}
	}
	return err
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
	for _, t := range []struct {
		name      string
		want, got any
	}{
		{"inventory", want.Inventory, got.Inventory}, {"check_status", want.Checks, got.Checks},
		{"feeds", want.Feeds, got.Feeds}, {"feed_meta", want.FeedMeta, got.FeedMeta}, {"inventory_history", want.History, got.History},
	} {
		if !reflect.DeepEqual(t.want, t.got) {
			fmt.Fprintf(&b, "%s:\n  want %s\n  got  %s\n", t.name, j(t.want), j(t.got))
		}
	}
	return b.String()
}

// TestBatchedEqualsOneByOne covers what the serial reference does not
// model, explode tables and their history: random batches leave what one
// message per batch leaves, explode rows and history included.
func TestBatchedEqualsOneByOne(t *testing.T) {
	ctx := context.Background()
	n := workloadCount(t) / 8
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		dbs := []testutil.Store{st, testutil.Another(t, st)}
		exec := func(s testutil.Store) func(string) error {
			switch s := s.(type) {
			case *pgstore.Store:
				return func(q string) error { _, err := s.Pool().Exec(ctx, q); return err }
			case *sqlitestore.Store:
				return func(q string) error { _, err := s.DB().ExecContext(ctx, q); return err }
			}
			panic("unknown store")
		}
		var rows, history int
		for i := 0; i < n; i++ {
			rng := rand.New(rand.NewPCG(uint64(i), 23))
			w := genWorkload(rng, true)
			run := func(s testutil.Store, batch func() int) *store.Tables {
				if err := s.Seed(ctx, w.execs, w.seed); err != nil {
					t.Fatal(err)
				}
				proj := projector.New(s, mapOutputs(w.objects), mapManifests(w.manifest))
				projector.CheckMemo(proj) // explode rows kept across batches must be the table's
				if s == dbs[0] {
					projector.NoCarry(proj) // the reference plans each message on its own
				}
				for start := 0; start < len(w.msgs); {
					end := min(len(w.msgs), start+batch())
					b, err := proj.Prepare(ctx, w.msgs[start:end])
					if err != nil {
						t.Fatal(err)
					}
					if _, err := proj.Apply(ctx, b, projector.ApplyOptions{}); err != nil {
						t.Fatalf("workload %d: %v", i, err)
					}
					start = end
				}
				tb, err := s.Dump(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return tb
			}
			for _, db := range dbs {
				reset(ctx, t, db, exec(db))
				if err := exec(db)("DROP TABLE IF EXISTS inv_vulns"); err != nil {
					t.Fatal(err)
				}
			}
			want := run(dbs[0], func() int { return 1 })
			got := run(dbs[1], func() int { return 1 + rng.IntN(12) })
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("workload %d: batched tables differ from one message at a time\n%s", i, diffTables(want, got))
			}
			wr, gr := testutil.TableRows(t, dbs[0], "inv_vulns"), testutil.TableRows(t, dbs[1], "inv_vulns")
			if !reflect.DeepEqual(wr, gr) {
				t.Fatalf("workload %d: inv_vulns\nwant %q\ngot  %q", i, wr, gr)
			}
			rows, history = rows+len(gr), history+len(got.History)
		}
		if rows < n || history < n {
			t.Errorf("over %d workloads: %d explode rows, %d history rows: too few to prove anything", n, rows, history)
		}
	})
}
