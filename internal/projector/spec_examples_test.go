package projector_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Spec section 7, the examples of the core projection, one test each on
// both stores. Examples 8-20 (derived tables) belong to the derived-tables
// work.

var t0 = time.Date(2026, 11, 20, 1, 2, 3, 0, time.UTC)

type specRun struct {
	t    *testing.T
	st   testutil.Store
	p    *projector.Projector
	seq  uint64
	last projector.Stats
}

func newSpecRun(t *testing.T, st testutil.Store, manifests mapManifests) *specRun {
	return &specRun{t: t, st: st, p: projector.New(st, nil, manifests)}
}

// send projects one message published at pub.
func (r *specRun) send(subject string, data []byte, pub time.Time) {
	r.t.Helper()
	r.seq++
	ctx := context.Background()
	b, err := r.p.Prepare(ctx, []projector.Message{{Stream: "RESULTS", Seq: r.seq, Subject: subject, Published: pub, Data: data}})
	if err != nil {
		r.t.Fatal(err)
	}
	if r.last, err = r.p.Apply(ctx, b, projector.ApplyOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *specRun) result(res wire.ExecResult, pub time.Time) {
	r.send("results."+res.RequestID, res.Encode(), pub)
}

func (r *specRun) tables() *store.Tables {
	r.t.Helper()
	tb, err := r.st.Dump(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return tb
}

func (r *specRun) row(id string) store.ResultRow {
	r.t.Helper()
	for _, x := range r.tables().Results {
		if x.ResultID == id {
			return x
		}
	}
	r.t.Fatalf("no row %s", id)
	return store.ResultRow{}
}

func (r *specRun) exec(id string) store.Execution {
	r.t.Helper()
	for _, e := range r.tables().Executions {
		if e.ExecID == id {
			return e
		}
	}
	r.t.Fatalf("no execution %s", id)
	return store.Execution{}
}

func deployment(id, status string, target int64) store.Execution {
	return store.Execution{ExecID: id, JobID: "job", Version: "1", InitiatedBy: "ops", InitiatedAt: t0.Add(-time.Hour), TargetCount: target, Status: status}
}

func seed(t *testing.T, st testutil.Store, execs []store.Execution, rows []store.ResultRow) {
	t.Helper()
	if err := st.Seed(context.Background(), execs, rows); err != nil {
		t.Fatal(err)
	}
}

func finished(id, req, pc string, code int32) wire.ExecResult {
	return wire.ExecResult{ResultID: id, RequestID: req, PCID: pc, ExitCode: code, StartedAt: t0, FinishedAt: t0.Add(time.Second)}
}

func TestSpecExample1LegacyID(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, nil)
		r.result(finished("", "r", "x", 0), t0)
		r.row("0fa0310d-c039-5679-ac84-9f227050a1bb")
	})
}

func TestSpecExample2SignatureRefusal(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		seed(t, st, []store.Execution{deployment("e", "running", 2)}, nil)
		r := newSpecRun(t, st, nil)
		res := finished("2cfbc51f-e407-5248-85b1-f7cc65b33f1f", "req-1", "PC1", 123)
		res.Skipped, res.ExecID = wire.Bool(false), wire.Str("e")
		if !res.IsSignatureRefusal() {
			t.Fatal("exit 123 with the derived id is a signature refusal")
		}
		r.result(res, t0)
		if e := r.exec("e"); e.SuccessCount != 0 || e.FailureCount != 1 {
			t.Fatalf("a refusal is a failure: %+v", e)
		}
		other := res
		other.ResultID = "another-id"
		if other.IsSignatureRefusal() {
			t.Fatal("exit 123 with any other id is a script's own exit code")
		}
	})
}

func TestSpecExample3RedeliveryCountsOnce(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		seed(t, st, []store.Execution{deployment("e", "running", 5)}, nil)
		r := newSpecRun(t, st, nil)
		res := finished("id-3", "q", "PC1", 0)
		res.ExecID = wire.Str("e")
		r.result(res, t0)
		before := r.tables()
		res.Stdout = "a redelivery must not overwrite a finished row"
		r.result(res, t0.Add(time.Minute))
		if r.last.Unchanged != 1 || r.last.CountersMoved != 0 {
			t.Fatalf("second delivery: %+v", r.last)
		}
		after := r.tables()
		if !reflect.DeepEqual(after, before) {
			t.Fatalf("second delivery changed something:\n%+v\n%+v", before, after)
		}
	})
}

func TestSpecExample4InFlightCompleted(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		exp := t0.Add(15 * time.Minute)
		seed(t, st, nil, []store.ResultRow{{ResultID: "id-4", RequestID: "q-old", PCID: "PC1", StartedAt: t0, RecordedAt: t0.Add(time.Second),
			JobID: wire.Str("inventory-hw"), Version: wire.Str("1.2.0"), ExpiresAt: &exp}})
		r := newSpecRun(t, st, nil)
		res := finished("id-4", "q-new", "PC1", 0)
		res.StartedAt = t0.Add(5 * time.Second) // differs: the row's must stay
		r.result(res, t0.Add(time.Hour))
		got := r.row("id-4")
		if !got.RecordedAt.Equal(t0.Add(time.Second)) || !got.StartedAt.Equal(t0) || wire.Deref(got.Version) != "1.2.0" ||
			got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) {
			t.Fatalf("kept columns changed: %+v", got)
		}
		if wire.Deref(got.JobID) != "inventory-hw" || got.RequestID != "q-new" || got.ExitCode == nil || *got.ExitCode != 0 {
			t.Fatalf("job_id must be COALESCE(new, old), request_id the new one: %+v", got)
		}
	})
}

func TestSpecExample5LateResultOverReaped(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		e := deployment("e", "completed", 1)
		e.FailureCount = 1 // the reaper counted it
		minus, fin := int32(-1), t0.Add(time.Hour)
		seed(t, st, []store.Execution{e}, []store.ResultRow{{ResultID: "id-5", RequestID: "q", ExecID: wire.Str("e"), PCID: "PC1",
			ExitCode: &minus, FinishedAt: &fin, Reaped: true, StartedAt: t0, RecordedAt: t0, Stderr: "[backend: reaped — no ExecResult before the run's deadline"}})
		r := newSpecRun(t, st, nil)
		res := finished("id-5", "q", "PC1", 0)
		res.ExecID = wire.Str("e")
		r.result(res, t0.Add(2*time.Hour))
		got := r.row("id-5")
		if got.ExitCode == nil || *got.ExitCode != 0 || got.Reaped {
			t.Fatalf("the late result must replace the placeholder: %+v", got)
		}
		if x := r.exec("e"); x.SuccessCount != 0 || x.FailureCount != 1 || x.Status != "completed" {
			t.Fatalf("counters must not move again: %+v", x)
		}
	})
}

func TestSpecExample6ExpiredCompletes(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		e := deployment("e", "expired", 2)
		e.SuccessCount = 1
		seed(t, st, []store.Execution{e}, nil)
		r := newSpecRun(t, st, nil)
		res := finished("id-6", "q", "PC2", 7)
		res.ExecID = wire.Str("e")
		r.result(res, t0)
		if x := r.exec("e"); x.Status != "completed" || x.FailureCount != 1 {
			t.Fatalf("exit 7 reaching the target completes an expired execution: %+v", x)
		}
	})
}

func TestSpecExample7Skipped(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		seed(t, st, []store.Execution{deployment("e", "running", 9)}, nil)
		r := newSpecRun(t, st, nil)
		for id, sk := range map[string]*bool{"absent": nil, "true": wire.Bool(true), "false": wire.Bool(false)} {
			res := finished(id, "q", "PC-"+id, 0)
			res.Skipped, res.ExecID = sk, wire.Str("e")
			r.result(res, t0)
		}
		for id, want := range map[string]bool{"absent": false, "true": true, "false": false} {
			if got := r.row(id).Skipped; got != want {
				t.Errorf("skipped %s stored as %v", id, got)
			}
		}
		if x := r.exec("e"); x.SuccessCount != 2 || x.FailureCount != 1 {
			t.Errorf("a skip counts as a failure, even with exit 0: %+v", x)
		}
	})
}

func TestSpecExample21StartedEventDeadline(t *testing.T) {
	man := func(timeout string) *wire.Manifest {
		return &wire.Manifest{ID: "m-" + timeout, Version: "1", Execute: &wire.ExecuteHint{Timeout: &timeout}}
	}
	manifests := mapManifests{"m-10m": man("10m"), "m-30s": man("30s"), "m-1h 30m": man("1h 30m")}
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		seed(t, st, []store.Execution{deployment("e", "pending", 4), deployment("x", "expired", 1)}, nil)
		r := newSpecRun(t, st, manifests)
		pub := t0.Add(3 * time.Second)
		for id, m := range map[string]string{"a": "m-10m", "b": "m-30s", "c": "unknown-manifest", "d": "m-1h 30m"} {
			ev := wire.EventStarted{ResultID: id, RequestID: "q", ExecID: "e", PCID: "PC-" + id, StartedAt: t0, ManifestID: m, Version: "1"}
			r.send("events.started.e.PC-"+id, ev.Encode(), pub)
		}
		for id, want := range map[string]time.Duration{"a": 15 * time.Minute, "b": 2*time.Minute + 30*time.Second, "d": 135 * time.Minute} {
			if got := r.row(id).ExpiresAt; got == nil || !got.Equal(pub.Add(want)) {
				t.Errorf("%s: expires_at %v, want publish time + %v", id, got, want)
			}
		}
		if got := r.row("c").ExpiresAt; got != nil {
			t.Errorf("an unknown manifest gives no deadline, got %v", got)
		}
		if x := r.exec("e"); x.Status != "running" {
			t.Errorf("a started event makes a pending execution running: %+v", x)
		}
		// Only pending moves: an expired execution stays expired.
		ev := wire.EventStarted{ResultID: "y", RequestID: "q", ExecID: "x", PCID: "PC-y", StartedAt: t0, ManifestID: "m-10m", Version: "1"}
		r.send("events.started.x.PC-y", ev.Encode(), pub)
		if x := r.exec("x"); x.Status != "expired" {
			t.Errorf("a started event must not revive an expired execution: %+v", x)
		}
		// An ad-hoc run's event carries exec_id "": stored as upstream stores it.
		adhoc := wire.EventStarted{ResultID: "z", RequestID: "q2", ExecID: "", PCID: "PC-z", StartedAt: t0, ManifestID: "adhoc-run", Version: "1"}
		r.send("events.started..PC-z", adhoc.Encode(), pub)
		if got := r.row("z"); got.ExecID == nil || *got.ExecID != "" {
			t.Errorf("ad-hoc started event: exec_id %v, want \"\"", got.ExecID)
		}
	})
}

// Spec section 7, examples 8 to 13, as the projector stores them: the
// inventory facts are the fenced, trimmed payload, as written.
func TestSpecExamples8To13InventoryPayload(t *testing.T) {
	inv := &wire.Manifest{ID: "inv", Version: "1", Inventory: &wire.InventoryHint{Display: []wire.DisplayField{{Field: "a", Label: "A"}}}}
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"inv": inv})
		for i, c := range []struct{ stdout, want string }{
			{"  {\"a\":1}\r\n", `{"a":1}`},
			{"hi\n#KANADE-INVENTORY-BEGIN\r\n{\"a\":1}\r\n#KANADE-INVENTORY-END\nbye", `{"a":1}`},
			{"  #KANADE-INVENTORY-BEGIN\n{}\n", ""},
			{"#KANADE-INVENTORY-BEGIN\n{\"a\":1}\n", `{"a":1}`},
			{"#KANADE-CHECK-BEGIN\n{\"status\":\"ok\"}\n#KANADE-CHECK-END\n", ""},
			{"[1, 2]\n", "[1, 2]"},
		} {
			res := finished(fmt.Sprintf("id-%d", i), "q", fmt.Sprintf("PC-%d", i), 0)
			res.ManifestID, res.Stdout = wire.Str("inv"), c.stdout
			r.result(res, t0)
			var got string
			for _, f := range r.tables().Inventory {
				if f.PCID == res.PCID {
					got = f.FactsJSON
				}
			}
			if got != c.want {
				t.Errorf("stdout %q: facts %q, want %q", c.stdout, got, c.want)
			}
		}
	})
}
