package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/audit"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func row(id, req, pc string, exec *string, code *int32, fin *time.Time) store.ResultRow {
	started := now.Add(-48 * time.Hour)
	rec := started
	if fin != nil {
		rec = *fin
	}
	return store.ResultRow{ResultID: id, RequestID: req, ExecID: exec, PCID: pc, ExitCode: code, StartedAt: started, FinishedAt: fin, RecordedAt: rec}
}

// seedFindings plants one of each finding, and a clean execution.
func seedFindings(t *testing.T, st testutil.Store) {
	done := ptr(now.Add(-47 * time.Hour))
	execs := []store.Execution{
		// clean: 2 targets, 1 ok + 1 failed, completed
		{ExecID: "exec-clean", JobID: "m", Version: "1", InitiatedBy: "ops", InitiatedAt: now.Add(-48 * time.Hour), TargetCount: 2, SuccessCount: 1, FailureCount: 1, Status: "completed"},
		// drifted: counted twice, so also "completed" with 2 of 3 by rows
		{ExecID: "exec-drift", JobID: "m", Version: "1", InitiatedBy: "ops", InitiatedAt: now.Add(-48 * time.Hour), TargetCount: 3, SuccessCount: 2, FailureCount: 0, Status: "running"},
		// stale: every target reported long ago, still running
		{ExecID: "exec-stale", JobID: "m", Version: "1", InitiatedBy: "ops", InitiatedAt: now.Add(-48 * time.Hour), TargetCount: 1, SuccessCount: 0, FailureCount: 0, Status: "running"},
	}
	rows := []store.ResultRow{
		row("c1", "rc", "PC-1", ptr("exec-clean"), ptr[int32](0), done),
		row("c2", "rc", "PC-2", ptr("exec-clean"), ptr[int32](2), done),
		row("d1", "rd", "PC-1", ptr("exec-drift"), ptr[int32](0), done),
		row("s1", "rs", "PC-1", ptr("exec-stale"), ptr[int32](0), done),
		// legacy row (and its duplicate under the stable id)
		row("req-legacy", "req-legacy", "PC-7", nil, ptr[int32](0), done),
		row(wire.LegacyResultID("req-legacy", "PC-7"), "req-legacy", "PC-7", nil, ptr[int32](0), done),
		// orphan: names an execution that does not exist
		row("o1", "ro", "PC-1", ptr("exec-gone"), ptr[int32](0), done),
		// in flight for 48 h with no expires_at; and one past its expires_at
		row("f1", "rf", "PC-1", nil, nil, nil),
		// in flight but recent: not a finding
		{ResultID: "f3", RequestID: "rf", PCID: "PC-3", StartedAt: now.Add(-time.Hour), RecordedAt: now.Add(-time.Hour)},
	}
	expired := row("f2", "rf", "PC-2", nil, nil, nil)
	expired.StartedAt, expired.RecordedAt, expired.ExpiresAt = now.Add(-2*time.Hour), now.Add(-2*time.Hour), ptr(now.Add(-time.Hour))
	rows = append(rows, expired)
	if err := st.Seed(context.Background(), execs, rows); err != nil {
		t.Fatal(err)
	}
}

func TestAuditFindsEachKind(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		clean, err := audit.Run(ctx, st, audit.Options{Now: now})
		if err != nil || clean.Total != 0 {
			t.Fatalf("empty database: %+v %v", clean, err)
		}
		seedFindings(t, st)
		r, err := audit.Run(ctx, st, audit.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{audit.CounterDrift: 2, audit.StatusMismatch: 0, audit.LegacyRow: 1, audit.DuplicateRows: 1,
			audit.OrphanResult: 1, audit.StaleRunning: 1, audit.UnreapedInFlight: 2}
		for k, n := range want {
			if r.Counts[k] != n {
				t.Errorf("%s: %d findings, want %d (%+v)", k, r.Counts[k], n, r.Findings)
			}
		}
		byKind := map[string][]audit.Finding{}
		for _, f := range r.Findings {
			byKind[f.Kind] = append(byKind[f.Kind], f)
		}
		if f := byKind[audit.StaleRunning]; len(f) != 1 || f[0].ExecID != "exec-stale" {
			t.Errorf("stale: %+v", f)
		}
		if f := byKind[audit.OrphanResult]; len(f) != 1 || f[0].ResultID != "o1" || f[0].ExecID != "exec-gone" {
			t.Errorf("orphan: %+v", f)
		}
		if f := byKind[audit.LegacyRow]; len(f) != 1 || f[0].ResultID != "req-legacy" || f[0].Fix == "" {
			t.Errorf("legacy: %+v", f)
		}
		if f := byKind[audit.UnreapedInFlight]; len(f) != 2 || f[0].ResultID != "f1" || f[1].ResultID != "f2" {
			t.Errorf("in flight: %+v", f)
		}
		only, _ := audit.Run(ctx, st, audit.Options{Now: now, Only: []string{audit.OrphanResult}})
		if only.Total != 1 || len(only.Counts) != 1 {
			t.Errorf("--only: %+v", only)
		}

		// --fix counters makes the counters agree with the rows.
		changes, err := audit.FixCounters(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 2 {
			t.Errorf("changes: %+v", changes)
		}
		after, _ := audit.Run(ctx, st, audit.Options{Now: now, Only: []string{audit.CounterDrift, audit.StatusMismatch, audit.StaleRunning}})
		if after.Total != 0 {
			t.Errorf("after --fix: %+v", after)
		}
	})
}

// A deployment whose every PC answered, some as pre-v0.29 agents without
// the exec_id, stays "running" for ever: upstream's counters never count
// those answers. It is stale, and the finding says no repair of the
// counters ends it; one with a PC still to answer is not stale.
func TestStaleRunningWithUntaggedAnswers(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		done := ptr(now.Add(-47 * time.Hour))
		execs := []store.Execution{
			{ExecID: "exec-old", JobID: "m", Version: "1", InitiatedBy: "ops", InitiatedAt: now.Add(-48 * time.Hour), TargetCount: 2, SuccessCount: 1, Status: "running"},
			{ExecID: "exec-waiting", JobID: "m", Version: "1", InitiatedBy: "ops", InitiatedAt: now.Add(-48 * time.Hour), TargetCount: 3, SuccessCount: 1, Status: "running"},
		}
		rows := []store.ResultRow{
			row("t1", "r-old", "PC-1", ptr("exec-old"), ptr[int32](0), done),
			row("u1", "r-old", "PC-2", nil, ptr[int32](0), done),
			row("t2", "r-wait", "PC-1", ptr("exec-waiting"), ptr[int32](0), done),
			row("u2", "r-wait", "PC-2", nil, ptr[int32](0), done),
		}
		if err := st.Seed(ctx, execs, rows); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Run(ctx, st, audit.Options{Now: now, Only: []string{audit.StaleRunning, audit.CounterDrift, audit.StatusMismatch}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total != 1 || len(rep.Findings) != 1 || rep.Findings[0].ExecID != "exec-old" {
			t.Fatalf("findings: %+v", rep.Findings)
		}
		f := rep.Findings[0]
		if !strings.Contains(f.Detail, "1 of them answered without the exec_id") || !strings.HasPrefix(f.Fix, "none in the counters") {
			t.Errorf("finding: %+v", f)
		}
	})
}
