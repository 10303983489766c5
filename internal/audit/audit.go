// Package audit checks the projected tables for what upstream's own
// pipeline leaves wrong, read-only: counters that drifted from the rows,
// legacy rows and duplicates, orphans, executions stuck in "running", and
// in-flight rows nobody reaped. Each finding names the ids and a fix.
package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// Finding kinds, stable for scripts.
const (
	CounterDrift     = "counter_drift"
	StatusMismatch   = "status_mismatch"
	LegacyRow        = "legacy_row"
	DuplicateRows    = "duplicate_rows"
	OrphanResult     = "orphan_result"
	StaleRunning     = "stale_running"
	UnreapedInFlight = "unreaped_in_flight"
)

// Kinds lists every kind, in report order.
var Kinds = []string{CounterDrift, StatusMismatch, LegacyRow, DuplicateRows, OrphanResult, StaleRunning, UnreapedInFlight}

// Options select and bound the checks.
type Options struct {
	Only        []string      // kinds to run; empty = all
	Limit       int           // findings listed per kind (all are counted)
	Now         time.Time     // zero = time.Now()
	StaleAfter  time.Duration // "running" this long after the last target reported is stale
	InFlightTTL time.Duration // in flight this long with no expires_at is unreaped
}

// Finding is one problem. Field names are stable (docs/output-schemas.md).
type Finding struct {
	Kind      string `json:"kind"`
	ExecID    string `json:"exec_id"`
	RequestID string `json:"request_id"`
	PCID      string `json:"pc_id"`
	ResultID  string `json:"result_id"` // "" where the finding is not about one row
	Detail    string `json:"detail"`
	Fix       string `json:"suggested_fix"`
}

// Report is the whole audit.
type Report struct {
	Counts   map[string]int64 `json:"counts"`
	Total    int64            `json:"total"`
	Findings []Finding        `json:"findings"`
}

// Expected is what upstream's rules say an execution's counters are: the
// projector counts finished rows by exit code, the reaper counts a reaped
// row as a failure.
func Expected(f store.ExecutionFacts) (success, failure int64) { return f.RowsSuccess, f.RowsFailure }

// Run performs the checks.
func Run(ctx context.Context, st store.Auditor, o Options) (*Report, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = time.Hour
	}
	if o.InFlightTTL == 0 {
		o.InFlightTTL = 24 * time.Hour
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	want := func(k string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, k) }
	r := &Report{Counts: map[string]int64{}, Findings: []Finding{}}
	for _, k := range Kinds {
		if want(k) {
			r.Counts[k] = 0
		}
	}
	add := func(f Finding) {
		r.Counts[f.Kind]++
		if r.Counts[f.Kind] <= int64(o.Limit) {
			r.Findings = append(r.Findings, f)
		}
	}
	if want(CounterDrift) || want(StatusMismatch) || want(StaleRunning) {
		facts, err := st.ExecutionFacts(ctx)
		if err != nil {
			return nil, err
		}
		for _, f := range facts {
			s, fl := Expected(f)
			if want(CounterDrift) && (s != f.SuccessCount || fl != f.FailureCount) {
				add(Finding{Kind: CounterDrift, ExecID: f.ExecID,
					Detail: fmt.Sprintf("counters say %d succeeded / %d failed, the rows say %d / %d", f.SuccessCount, f.FailureCount, s, fl),
					Fix:    "kanade results audit --fix counters --yes"})
			}
			counted := f.SuccessCount + f.FailureCount
			if want(StatusMismatch) {
				if ws := store.ExecutionStatus(f.Status, counted, f.TargetCount); ws != f.Status {
					add(Finding{Kind: StatusMismatch, ExecID: f.ExecID,
						Detail: fmt.Sprintf("status %s with %d of %d targets counted; the counters make it %s", f.Status, counted, f.TargetCount, ws),
						Fix:    "kanade results audit --fix counters --yes (recomputes counters and status)"})
				}
			}
			if want(StaleRunning) && f.Status == "running" && f.ReportedPCs >= f.TargetCount && f.LastFinished != nil &&
				o.Now.Sub(*f.LastFinished) > o.StaleAfter {
				finding := Finding{Kind: StaleRunning, ExecID: f.ExecID,
					Detail: fmt.Sprintf("running, but all %d targets reported by %s", f.TargetCount, f.LastFinished.UTC().Format(time.RFC3339)),
					Fix:    "kanade results audit --fix counters --yes; if it stays running, check the counters' source rows"}
				if n := f.UntaggedPCs(); n > 0 && counted+n >= f.TargetCount {
					// No repair of the counters can complete it: upstream's
					// rules never count these answers.
					finding.Detail += fmt.Sprintf("; %d of them answered without the exec_id (agents older than v0.29), which upstream's counters never count, so it stays running", n)
					finding.Fix = fmt.Sprintf("none in the counters (upstream counts only answers with the exec_id); kanade results show --exec-id %s lists every PC's answer", f.ExecID)
				}
				add(finding)
			}
		}
	}
	refs := func(kind string, list []store.ResultRef, total int64, detail func(store.ResultRef) string, fix string) {
		for _, x := range list {
			add(Finding{Kind: kind, ExecID: deref(x.ExecID), RequestID: x.RequestID, PCID: x.PCID, ResultID: x.ResultID, Detail: detail(x), Fix: fix})
		}
		r.Counts[kind] = total
	}
	if want(LegacyRow) {
		list, total, err := st.LegacyRows(ctx, o.Limit)
		if err != nil {
			return nil, err
		}
		refs(LegacyRow, list, total, func(store.ResultRef) string {
			return "result_id is the request_id (or empty): replaying its payload inserts a second row"
		},
			"kanade results backfill --dry-run, then --yes")
	}
	if want(DuplicateRows) {
		list, total, err := st.DuplicatePairs(ctx, o.Limit)
		if err != nil {
			return nil, err
		}
		for _, d := range list {
			add(Finding{Kind: DuplicateRows, RequestID: d.RequestID, PCID: d.PCID, ResultID: strings.Join(d.ResultIDs, ","),
				Detail: fmt.Sprintf("%d rows for one request on one PC", len(d.ResultIDs)),
				Fix:    "kanade results backfill (legacy copies); otherwise the agent re-ran the command, which is not an error"})
		}
		r.Counts[DuplicateRows] = total
	}
	if want(OrphanResult) {
		list, total, err := st.OrphanResults(ctx, o.Limit)
		if err != nil {
			return nil, err
		}
		refs(OrphanResult, list, total, func(x store.ResultRef) string { return "exec_id " + deref(x.ExecID) + " names no execution" },
			"restore the executions row from a backup, or ignore: results of deleted deployments")
	}
	if want(UnreapedInFlight) {
		list, total, err := st.UnreapedInFlight(ctx, o.Now, o.Now.Add(-o.InFlightTTL), o.Limit)
		if err != nil {
			return nil, err
		}
		refs(UnreapedInFlight, list, total, func(x store.ResultRef) string {
			if x.ExpiresAt != nil {
				return "in flight past expires_at " + x.ExpiresAt.UTC().Format(time.RFC3339)
			}
			return "in flight since " + x.StartedAt.UTC().Format(time.RFC3339) + " with no expires_at"
		}, "check upstream's reaper is running; the PC may be offline")
	}
	for _, n := range r.Counts {
		r.Total += n
	}
	return r, nil
}

// Change is one execution --fix counters rewrote.
type Change struct {
	ExecID        string `json:"exec_id"`
	SuccessBefore int64  `json:"success_before"`
	FailureBefore int64  `json:"failure_before"`
	StatusBefore  string `json:"status_before"`
	SuccessAfter  int64  `json:"success_after"`
	FailureAfter  int64  `json:"failure_after"`
	StatusAfter   string `json:"status_after"`
}

// next is an execution's counters and status recomputed from its rows, as
// the projector would have left them.
func next(f store.ExecutionFacts) store.Execution {
	e := f.Execution
	e.SuccessCount, e.FailureCount = Expected(f)
	e.Status = store.ExecutionStatus(e.Status, e.SuccessCount+e.FailureCount, e.TargetCount)
	return e
}

// FixCounters recomputes counters and status from the rows in one
// transaction and returns what changed.
// Fixing is what FixCounters needs of a store: its writer lock and the
// audit's repair.
type Fixing interface {
	store.Locker
	store.Auditor
}

func FixCounters(ctx context.Context, st Fixing) ([]Change, error) {
	release, err := st.Lock(ctx, "results audit --fix counters")
	if err != nil {
		return nil, err
	}
	defer release()
	var changes []Change
	_, err = st.FixCounters(ctx, func(f store.ExecutionFacts) (store.Execution, bool) {
		n := next(f)
		if n.SuccessCount == f.SuccessCount && n.FailureCount == f.FailureCount && n.Status == f.Status {
			return n, false
		}
		changes = append(changes, Change{ExecID: f.ExecID, SuccessBefore: f.SuccessCount, FailureBefore: f.FailureCount, StatusBefore: f.Status,
			SuccessAfter: n.SuccessCount, FailureAfter: n.FailureCount, StatusAfter: n.Status})
		return n, true
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
