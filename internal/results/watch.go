package results

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Merge applies a result that just arrived to rows the way the projector
// will apply it to the table: a new id adds a row, an in-flight or reaped
// row under that id is completed, a finished row stays as it is. It lets
// --watch show results before (or without) any projector writing them.
func Merge(rows []store.ResultRow, r *wire.ExecResult, at time.Time) ([]store.ResultRow, bool) {
	id := r.StableID()
	exit, fin := r.ExitCode, r.FinishedAt
	for i := range rows {
		if rows[i].ResultID != id {
			continue
		}
		if rows[i].FinishedAt != nil && !rows[i].Reaped {
			return rows, false
		}
		rows[i].ExitCode, rows[i].FinishedAt, rows[i].Stdout, rows[i].Stderr = &exit, &fin, r.Stdout, r.Stderr
		rows[i].Reaped, rows[i].Skipped, rows[i].RequestID = false, r.IsSkipped(), r.RequestID
		if r.ManifestID != nil {
			rows[i].JobID = r.ManifestID
		}
		return rows, true
	}
	return append(rows, store.ResultRow{ResultID: id, RequestID: r.RequestID, ExecID: r.ExecID, PCID: r.PCID, ExitCode: &exit,
		Stdout: r.Stdout, Stderr: r.Stderr, StartedAt: r.StartedAt, FinishedAt: &fin, RecordedAt: at, JobID: r.ManifestID,
		ParentResultID: r.ParentResultID, Skipped: r.IsSkipped()}), true
}

// Selects reports whether an arriving result belongs to the selection;
// requests are the request ids already seen for it (a pre-v0.29 agent's
// answer to a deployment carries its request_id but no exec_id).
func (o ShowOptions) Selects(r *wire.ExecResult, requests map[string]bool) bool {
	switch {
	case o.ExecID != "" && wire.Deref(r.ExecID) != o.ExecID && !(!store.HasExec(r.ExecID) && requests[r.RequestID]):
		return false
	case o.byRequest() && r.RequestID != o.RequestID:
		return false
	case o.ResultID != "" && r.StableID() != o.ResultID:
		return false
	case len(o.PCs) > 0 && !slices.Contains(o.PCs, r.PCID):
		return false
	}
	return true
}

// Finished counts the PCs whose run is over: a result, or reaped.
func (s *Summary) Finished() int64 { return s.Succeeded + s.Failed + s.Skipped + s.Reaped }

// Complete reports whether as many PCs as the deployment targets have
// finished: the natural end of a watch. A PC still running beyond that
// (one the deployment did not count) does not hold it open.
func (v *View) Complete() bool {
	s := v.Summary
	return s.Target != nil && s.Finished() >= *s.Target
}

// Watcher redraws a view as results arrive.
type Watcher struct {
	Streams *output.Streams
	Opts    ShowOptions
	Render  RenderOptions
	Rows    []store.ResultRow
	Exec    *store.Execution
}

// Run consumes arriving payloads until the view is complete, timeout
// passes (0: never) or ctx ends, and returns the final view. On a terminal
// it redraws the whole view; elsewhere it prints one line per result.
func (w *Watcher) Run(ctx context.Context, payloads <-chan []byte, timeout time.Duration) (*View, error) {
	v := Build(w.Rows, w.Exec, w.Opts)
	tty := w.Streams.OutTTY && !w.Render.Format.IsMachine()
	if tty {
		if err := w.redraw(v, ""); err != nil {
			return v, err
		}
	} else {
		// Piped: what is already stored comes first, a line each, so a
		// script sees every PC whether it reported before or during.
		for _, res := range v.Results {
			if err := w.line(v, res); err != nil {
				return v, err
			}
		}
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		deadline = time.After(timeout)
	}
	for !v.Complete() {
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-deadline:
			return v, fmt.Errorf("--timeout %s passed: %d of %s PCs finished, %d still running", timeout, v.Summary.Finished(),
				targetText(v.Summary.Target), v.Summary.InFlight)
		case data, ok := <-payloads:
			if !ok {
				return v, fmt.Errorf("the NATS subscription ended")
			}
			r, err := wire.DecodeExecResult(data)
			if err != nil {
				fmt.Fprintf(w.Streams.Err, "skipping a payload no agent version could have written: %v\n", err)
				continue
			}
			requests := map[string]bool{}
			for _, x := range w.Rows {
				if store.HasExec(x.ExecID) {
					requests[x.RequestID] = true
				}
			}
			if !w.Opts.Selects(r, requests) {
				continue
			}
			var changed bool
			if w.Rows, changed = Merge(w.Rows, r, time.Now().UTC()); !changed {
				continue
			}
			v = Build(w.Rows, w.Exec, w.Opts)
			if tty {
				if err := w.redraw(v, r.PCID); err != nil {
					return v, err
				}
			} else if err := w.line(v, resultOf(v, r.PCID)); err != nil {
				return v, err
			}
		}
	}
	if !tty && !w.Render.Format.IsMachine() {
		s := v.Summary
		fmt.Fprintf(w.Streams.Out, "%s  complete: %d of %s PCs finished\n", time.Now().UTC().Format(time.RFC3339), s.Finished(), targetText(s.Target))
	}
	return v, nil
}

func resultOf(v *View, pc string) Result {
	for _, x := range v.Results {
		if x.PCID == pc {
			return x
		}
	}
	return Result{PCID: pc}
}

func targetText(t *int64) string {
	if t == nil {
		return "?"
	}
	return fmt.Sprint(*t)
}

func (w *Watcher) redraw(v *View, last string) error {
	fmt.Fprint(w.Streams.Out, "\x1b[H\x1b[2J")
	if err := Render(w.Streams, v, w.Render); err != nil {
		return err
	}
	if last != "" {
		fmt.Fprintf(w.Streams.Out, "\nLast: %s at %s. Waiting for results (Ctrl-C to stop)...\n", last, time.Now().Format(time.TimeOnly))
	}
	return nil
}

// line prints one result: a JSON object for machine formats, a text line
// otherwise.
func (w *Watcher) line(v *View, res Result) error {
	if w.Render.Format.IsMachine() {
		return output.WriteJSONL(w.Streams.Out, []Result{res})
	}
	s := v.Summary
	_, err := fmt.Fprintf(w.Streams.Out, "%s  %-12s %-8s exit %-4s %s  (reported %d of %s)\n", time.Now().UTC().Format(time.RFC3339), res.PCID,
		res.Status, exitText(res.ExitCode), strings.TrimSpace(firstLine(res, 80)), s.Reported, targetText(s.Target))
	return err
}
