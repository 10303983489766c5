// Package results answers "what happened on every PC for this deployment,
// this broadcast, this run?": the fan-out view behind `results show`.
package results

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// Row statuses, as printed and as in JSON.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
	StatusRunning = "running"
	StatusReaped  = "reaped"
)

// FailOnCategories are the values --fail-on accepts.
var FailOnCategories = []string{"failed", "missing", "in_flight", "reaped", "skipped"}

// ShowOptions select and order the view.
type ShowOptions struct {
	ExecID    string
	RequestID string
	// RequestIDSet says --request-id was given, "" included: a stored row
	// may have an empty request_id.
	RequestIDSet bool
	ResultID     string
	PCs          []string
	Sort         string // pc (default), status, duration, finished
}

func (o ShowOptions) byRequest() bool { return o.RequestID != "" || o.RequestIDSet }

// Selectors counts the selections given: exactly one is allowed.
func (o ShowOptions) Selectors() int {
	n := 0
	for _, set := range []bool{o.ExecID != "", o.byRequest(), o.ResultID != ""} {
		if set {
			n++
		}
	}
	return n
}

// Summary is the head of the view. Field names are a stable interface
// (docs/output-schemas.md).
type Summary struct {
	ExecID      *string    `json:"exec_id"`
	RequestID   *string    `json:"request_id"`
	ResultID    *string    `json:"result_id"`
	ManifestID  *string    `json:"manifest_id"`
	Version     *string    `json:"version"`
	InitiatedBy *string    `json:"initiated_by"`
	InitiatedAt *time.Time `json:"initiated_at"`
	Status      *string    `json:"status"`
	// SuccessCount and FailureCount are the executions row's own counters,
	// which upstream's projector bumps only for results that carry the
	// exec_id: they and Status can lag what the rows show.
	SuccessCount *int64 `json:"success_count"`
	FailureCount *int64 `json:"failure_count"`
	Target       *int64 `json:"target"`
	Reported     int64  `json:"reported"`
	Succeeded    int64  `json:"succeeded"`
	Failed       int64  `json:"failed"`
	Skipped      int64  `json:"skipped"`
	InFlight     int64  `json:"in_flight"`
	Reaped       int64  `json:"reaped"`
	Missing      *int64 `json:"missing"`
	DuplicatePCs int64  `json:"duplicate_pcs"`
	// untagged counts the PCs of a deployment's view whose row carries no
	// exec_id (agents older than v0.29), which its counters leave out.
	untagged int64
}

// Result is one PC's row in the fan-out view.
type Result struct {
	ResultID       string     `json:"result_id"`
	RequestID      string     `json:"request_id"`
	ExecID         *string    `json:"exec_id"`
	PCID           string     `json:"pc_id"`
	Status         string     `json:"status"`
	ExitCode       *int32     `json:"exit_code"`
	StartedAt      time.Time  `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at"`
	DurationMs     *int64     `json:"duration_ms"`
	Stdout         string     `json:"stdout"`
	Stderr         string     `json:"stderr"`
	ManifestID     *string    `json:"manifest_id"`
	RecordedAt     time.Time  `json:"recorded_at"`
	Legacy         bool       `json:"legacy"`
	OtherResultIDs []string   `json:"other_result_ids"` // [] when the PC has one row
	// All holds every row of this PC (itself first), for -o wide.
	All []Result `json:"-"`
}

// View is what `results show` prints.
type View struct {
	Summary Summary  `json:"summary"`
	Results []Result `json:"results"`
	// absent lists the --pc names with no row in the view, each with the
	// selection's PCs whose names differ from it only in case.
	absent []absentPC
}

type absentPC struct {
	name        string
	sameButCase []string
}

// ErrNotFound is returned when the selector matches nothing at all.
var ErrNotFound = errors.New("not found")

// Show builds the fan-out view.
func Show(ctx context.Context, q store.ResultQueries, o ShowOptions) (*View, error) {
	if o.Selectors() != 1 {
		return nil, fmt.Errorf("give exactly one of --exec-id, --request-id, --result-id")
	}
	rows, exec, err := Load(ctx, q, o)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 && exec == nil && len(o.PCs) > 0 {
		// The PCs have no row here, which is an answer (they have not
		// reported) if the selection itself has rows, and only a typo in
		// the id if it has none. The whole selection is read only on this
		// path, for its execution.
		whole := o
		whole.PCs = nil
		all, wexec, err := Load(ctx, q, whole)
		if err != nil {
			return nil, err
		}
		if len(all) > 0 || wexec != nil {
			v := Build(nil, wexec, o)
			v.absent = absentPCs(o.PCs, v.Results, all)
			return v, nil
		}
	}
	if len(rows) == 0 && exec == nil {
		var err error
		switch {
		case o.ExecID != "":
			err = fmt.Errorf("%w: no execution and no results with exec_id %q", ErrNotFound, o.ExecID)
		case o.byRequest():
			err = fmt.Errorf("%w: no results with request_id %q", ErrNotFound, o.RequestID)
		default:
			err = fmt.Errorf("%w: no result with result_id %q", ErrNotFound, o.ResultID)
		}
		if id := LowerCaseMatch(ctx, q, o); id != "" {
			err = fmt.Errorf("%w; ids are matched exactly, and %s (the same in lower case) exists: use that", err, id)
		}
		return nil, err
	}
	v := Build(rows, exec, o)
	if len(o.PCs) > len(v.Results) {
		// Some --pc names have no row: name them, and the PCs they
		// differ from only in case (Windows names are typed either way).
		whole := o
		whole.PCs = nil
		all, _, err := Load(ctx, q, whole)
		if err != nil {
			return nil, err
		}
		v.absent = absentPCs(o.PCs, v.Results, all)
	}
	return v, nil
}

// absentPCs returns the names of pcs that have no result in shown, each with
// the PCs of all whose names differ from it only in case.
func absentPCs(pcs []string, shown []Result, all []store.ResultRow) []absentPC {
	have := map[string]bool{}
	for _, r := range shown {
		have[r.PCID] = true
	}
	var out []absentPC
	for _, pc := range pcs {
		if have[pc] {
			continue
		}
		a := absentPC{name: pc}
		for _, r := range all {
			if r.PCID != pc && strings.EqualFold(r.PCID, pc) && !slices.Contains(a.sameButCase, r.PCID) {
				a.sameButCase = append(a.sameButCase, r.PCID)
			}
		}
		out = append(out, a)
	}
	return out
}

// LowerCaseMatch returns the selection's id in lower case when that one
// has an execution or results and the id as given differs from it: ids are
// compared as stored (lower-case UUIDs), and an id copied from a tool that
// prints UUIDs in upper case would otherwise look absent.
func LowerCaseMatch(ctx context.Context, q store.ResultQueries, o ShowOptions) string {
	lower := o
	lower.ExecID, lower.RequestID, lower.ResultID = strings.ToLower(o.ExecID), strings.ToLower(o.RequestID), strings.ToLower(o.ResultID)
	lower.PCs = nil
	if lower.ExecID == o.ExecID && lower.RequestID == o.RequestID && lower.ResultID == o.ResultID {
		return ""
	}
	rows, exec, err := Load(ctx, q, lower)
	if err != nil || (len(rows) == 0 && exec == nil) {
		return ""
	}
	return lower.ExecID + lower.RequestID + lower.ResultID // the one that was set
}

// Load reads the rows and execution a selection names; unlike Show, an
// empty selection is not an error (a watch waits for its first result).
func Load(ctx context.Context, q store.ResultQueries, o ShowOptions) ([]store.ResultRow, *store.Execution, error) {
	rows, err := q.FindResults(ctx, store.ResultFilter{ExecID: o.ExecID, RequestID: o.RequestID, RequestIDSet: o.byRequest(), ResultID: o.ResultID, PCs: o.PCs})
	if err != nil {
		return nil, nil, err
	}
	execID := o.ExecID
	if execID == "" {
		// Any row's exec_id, not the first's: rows come by pc_id, and the
		// first PC may be a pre-v0.29 agent that answered without it.
		for _, r := range rows {
			if store.HasExec(r.ExecID) {
				execID = *r.ExecID
				break
			}
		}
	}
	var exec *store.Execution
	if execID != "" {
		if exec, err = q.GetExecution(ctx, execID); err != nil {
			return nil, nil, err
		}
	}
	if o.ExecID != "" {
		// Agents older than v0.29 answer a deployment's command without its
		// exec_id; they share its request_id, so they belong to it too. The
		// deployment's requests come from all its tagged rows, not only the
		// --pc ones: narrowing must not lose a legacy answer.
		tagged := rows
		if len(o.PCs) > 0 {
			if tagged, err = q.FindResults(ctx, store.ResultFilter{ExecID: o.ExecID}); err != nil {
				return nil, nil, err
			}
		}
		seen := map[string]bool{}
		for _, r := range tagged {
			if seen[r.RequestID] {
				continue
			}
			seen[r.RequestID] = true
			more, err := q.FindResults(ctx, store.ResultFilter{RequestID: r.RequestID, RequestIDSet: true, PCs: o.PCs})
			if err != nil {
				return nil, nil, err
			}
			for _, m := range more {
				if !store.HasExec(m.ExecID) {
					rows = append(rows, m)
				}
			}
		}
	}
	return rows, exec, nil
}

// Build makes the view from rows and their execution (nil for ad-hoc).
func Build(rows []store.ResultRow, exec *store.Execution, o ShowOptions) *View {
	v := &View{Results: []Result{}}
	execID := o.ExecID
	if exec != nil {
		execID = exec.ExecID
	}
	s := &v.Summary
	if o.ExecID != "" || exec != nil {
		s.ExecID = &execID
	}
	if o.byRequest() {
		s.RequestID = &o.RequestID
	} else if len(rows) > 0 && sameRequest(rows) {
		s.RequestID = &rows[0].RequestID
	}
	if o.ResultID != "" {
		s.ResultID = &o.ResultID
	}
	if exec != nil {
		s.ManifestID, s.Version, s.InitiatedBy, s.InitiatedAt, s.Status = &exec.JobID, &exec.Version, &exec.InitiatedBy, &exec.InitiatedAt, &exec.Status
		s.SuccessCount, s.FailureCount = &exec.SuccessCount, &exec.FailureCount
		if o.ResultID == "" && len(o.PCs) == 0 {
			s.Target = &exec.TargetCount
		}
	} else if len(rows) > 0 {
		s.ManifestID = rows[0].JobID
	}

	byPC := map[string][]store.ResultRow{}
	var pcs []string
	for _, r := range rows {
		if _, ok := byPC[r.PCID]; !ok {
			pcs = append(pcs, r.PCID)
		}
		byPC[r.PCID] = append(byPC[r.PCID], r)
	}
	for _, pc := range pcs {
		group := byPC[pc]
		sort.SliceStable(group, func(i, j int) bool { return better(group[i], group[j]) })
		res := toResult(group[0])
		res.All = []Result{res}
		for _, other := range group[1:] {
			res.OtherResultIDs = append(res.OtherResultIDs, other.ResultID)
			res.All = append(res.All, toResult(other))
		}
		if len(group) > 1 {
			s.DuplicatePCs++
		}
		if exec != nil && !store.HasExec(res.ExecID) {
			s.untagged++
		}
		switch res.Status {
		case StatusOK:
			s.Succeeded++
		case StatusFailed:
			s.Failed++
		case StatusSkipped:
			s.Skipped++
		case StatusRunning:
			s.InFlight++
		case StatusReaped:
			s.Reaped++
		}
		v.Results = append(v.Results, res)
	}
	s.Reported = int64(len(pcs))
	if s.Target != nil {
		m := max(*s.Target-s.Reported, 0)
		s.Missing = &m
	}
	sortResults(v.Results, o.Sort)
	return v
}

func sameRequest(rows []store.ResultRow) bool {
	for _, r := range rows[1:] {
		if r.RequestID != rows[0].RequestID {
			return false
		}
	}
	return true
}

// rank orders the rows of one PC: a finished row says more than a reaped
// placeholder, which says more than one still in flight.
func rank(r store.ResultRow) int {
	switch {
	case r.FinishedAt != nil && !r.Reaped:
		return 0
	case r.Reaped:
		return 1
	default:
		return 2
	}
}

func better(a, b store.ResultRow) bool {
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	return a.RecordedAt.After(b.RecordedAt)
}

// StatusOf classifies a row.
func StatusOf(r store.ResultRow) string {
	switch {
	case r.Reaped:
		return StatusReaped
	case r.FinishedAt == nil:
		return StatusRunning
	case r.Skipped:
		return StatusSkipped
	case r.ExitCode != nil && *r.ExitCode == 0:
		return StatusOK
	default:
		return StatusFailed
	}
}

func toResult(r store.ResultRow) Result {
	res := Result{ResultID: r.ResultID, RequestID: r.RequestID, ExecID: r.ExecID, PCID: r.PCID, Status: StatusOf(r), ExitCode: r.ExitCode,
		StartedAt: r.StartedAt.UTC(), Stdout: r.Stdout, Stderr: r.Stderr, ManifestID: r.JobID, RecordedAt: r.RecordedAt.UTC(),
		Legacy: r.ResultID == r.RequestID, OtherResultIDs: []string{}}
	if !store.HasExec(res.ExecID) {
		res.ExecID = nil // an ad-hoc run's in-flight row holds "", not NULL
	}
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC()
		res.FinishedAt = &f
		d := f.Sub(r.StartedAt).Milliseconds()
		res.DurationMs = &d
	}
	return res
}

var statusOrder = map[string]int{StatusFailed: 0, StatusReaped: 1, StatusRunning: 2, StatusSkipped: 3, StatusOK: 4}

func sortResults(rs []Result, by string) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		switch by {
		case "status":
			if statusOrder[a.Status] != statusOrder[b.Status] {
				return statusOrder[a.Status] < statusOrder[b.Status]
			}
		case "duration":
			da, db := int64(-1), int64(-1)
			if a.DurationMs != nil {
				da = *a.DurationMs
			}
			if b.DurationMs != nil {
				db = *b.DurationMs
			}
			if da != db {
				return da > db
			}
		case "finished":
			if (a.FinishedAt == nil) != (b.FinishedAt == nil) {
				return a.FinishedAt == nil
			}
			if a.FinishedAt != nil && !a.FinishedAt.Equal(*b.FinishedAt) {
				return a.FinishedAt.Before(*b.FinishedAt)
			}
		}
		return a.PCID < b.PCID
	})
}

// FailOn reports which of the categories are non-empty.
func (v *View) FailOn(categories []string) []string {
	var hit []string
	for _, c := range categories {
		var n int64
		switch c {
		case "failed":
			n = v.Summary.Failed
		case "missing":
			if v.Summary.Missing != nil {
				n = *v.Summary.Missing
			}
		case "in_flight":
			n = v.Summary.InFlight
		case "reaped":
			n = v.Summary.Reaped
		case "skipped":
			n = v.Summary.Skipped
		}
		if n > 0 {
			hit = append(hit, fmt.Sprintf("%s=%d", c, n))
		}
	}
	return hit
}

// ParseFailOn validates a --fail-on list.
func ParseFailOn(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		ok := false
		for _, k := range FailOnCategories {
			ok = ok || c == k
		}
		if !ok {
			return nil, fmt.Errorf("--fail-on %q: unknown category; use a comma-separated list of %s", c, strings.Join(FailOnCategories, ", "))
		}
		out = append(out, c)
	}
	return out, nil
}
