package replay_test

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/audit"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// One rule for counters and status: on a database with the edge cases,
// `results audit --fix counters` and `stream replay --rebuild --yes` leave
// identical executions, and an audit then finds nothing to say about them.
func TestFixAndRebuildAgree(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 12
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	later := old.Add(time.Minute)
	exec := func(id, status string, target, s, fl int64) store.Execution {
		return store.Execution{ExecID: id, JobID: "job", Version: "1", InitiatedBy: "ops", InitiatedAt: old,
			TargetCount: target, SuccessCount: s, FailureCount: fl, Status: status}
	}
	row := func(id, execID string, code *int32, reaped, skipped bool) store.ResultRow {
		r := store.ResultRow{ResultID: id, RequestID: "req-" + id, ExecID: &execID, PCID: "PC-" + id, StartedAt: old, RecordedAt: old,
			ExitCode: code, Reaped: reaped, Skipped: skipped}
		if code != nil {
			r.FinishedAt = &later
		}
		return r
	}
	zero, one, minus := int32(0), int32(1), int32(-1)
	edgeExecs := []store.Execution{
		exec("expired-with-results", "expired", 3, 0, 0),
		exec("running-no-rows", "running", 2, 0, 0),
		exec("only-in-flight", "running", 2, 0, 0),
		exec("pending-in-flight", "pending", 2, 0, 0),
		exec("reaped", "running", 1, 0, 0),
		exec("over-counted", "completed", 2, 5, 5),
		exec("skip-with-exit-0", "pending", 1, 1, 0),
		exec("completed-no-rows", "completed", 1, 0, 0),
	}
	edgeRows := []store.ResultRow{
		row("a1", "expired-with-results", &zero, false, false),
		row("a2", "expired-with-results", &one, false, false),
		row("b1", "only-in-flight", nil, false, false),
		row("b2", "only-in-flight", nil, false, false),
		row("b3", "pending-in-flight", nil, false, false),
		row("c1", "reaped", &minus, true, false),
		row("d1", "over-counted", &zero, false, false),
		row("e1", "skip-with-exit-0", &zero, false, true),
	}
	build := func(t *testing.T, st testutil.Store) {
		if err := st.Seed(ctx, append(append([]store.Execution{}, f.Executions...), edgeExecs...), edgeRows); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Events})
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
	}
	findings := func(t *testing.T, st testutil.Store) int64 {
		rep, err := audit.Run(ctx, st, audit.Options{Only: []string{audit.CounterDrift, audit.StatusMismatch}, Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Findings {
			t.Logf("finding: %+v", f)
		}
		return rep.Total
	}
	testutil.EachStore(t, func(t *testing.T, fixed testutil.Store) {
		rebuilt := testutil.Another(t, fixed)
		build(t, fixed)
		build(t, rebuilt)
		if findings(t, fixed) == 0 {
			t.Fatal("the edge cases should need fixing before --fix")
		}
		if _, err := audit.FixCounters(ctx, fixed); err != nil {
			t.Fatal(err)
		}
		if _, err := replay.Rebuild(ctx, rebuilt, js, replay.Options{Stream: streams.Results}, true); err != nil {
			t.Fatal(err)
		}
		a, _ := fixed.Dump(ctx)
		b, _ := rebuilt.Dump(ctx)
		if !reflect.DeepEqual(a.Executions, b.Executions) {
			for i := range a.Executions {
				if !reflect.DeepEqual(a.Executions[i], b.Executions[i]) {
					t.Errorf("after --fix %+v\nafter --rebuild %+v", a.Executions[i], b.Executions[i])
				}
			}
			t.Fatal("audit --fix and --rebuild leave different executions")
		}
		want := map[string]string{"expired-with-results": "running 1/1", "running-no-rows": "running 0/0", "only-in-flight": "running 0/0",
			"pending-in-flight": "pending 0/0", "reaped": "completed 0/1", "over-counted": "running 1/0", "skip-with-exit-0": "completed 0/1",
			"completed-no-rows": "running 0/0"}
		for _, e := range a.Executions {
			if w, ok := want[e.ExecID]; ok {
				if got := e.Status + " " + itoa(e.SuccessCount) + "/" + itoa(e.FailureCount); got != w {
					t.Errorf("%s: %s, want %s", e.ExecID, got, w)
				}
			}
		}
		for name, st := range map[string]testutil.Store{"--fix": fixed, "--rebuild": rebuilt} {
			if n := findings(t, st); n != 0 {
				t.Errorf("after %s the audit still finds %d counter or status problems", name, n)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
