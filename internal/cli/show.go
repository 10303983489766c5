package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/results"
	"github.com/kanadehq/kanade-cli/internal/store"
)

func newResultsCmd(g *Globals, r runners) *cobra.Command {
	cmd := &cobra.Command{Use: "results", Short: "Query execution results"}
	cmd.AddCommand(newShowCmd(g, r.show), newListCmd(g, r.list), newBackfillCmd(g, r.backfill), newAuditCmd(g, r.audit))
	return cmd
}

// ShowOptions is what `results show` runs with.
type ShowOptions struct {
	Env
	Show           results.ShowOptions
	FailOn         []string // exit 3 when any of these categories is non-empty
	Stdout, Stderr bool     // print each PC's full output
	Watch          bool
	Timeout        time.Duration // with Watch: give up after this long (0: never)
}

type showFlags struct {
	opts           results.ShowOptions
	failOn         string
	stdout, stderr bool
	watch          bool
	timeout        time.Duration
}

func newShowCmd(g *Globals, runF func(context.Context, *ShowOptions) error) *cobra.Command {
	var f showFlags
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show every PC's result for a deployment, a broadcast or one run",
		Example: `  kanade results show --exec-id 3f0e6a52-...
  kanade results show --request-id 7d1c1a9e-... --sort status
  kanade results show --exec-id 3f0e6a52-... --fail-on failed,missing -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.opts.RequestIDSet = cmd.Flags().Changed("request-id")
			if f.opts.Selectors() != 1 {
				return usageErrorf(cmd, "give exactly one of --exec-id, --request-id or --result-id")
			}
			switch f.opts.Sort {
			case "pc", "status", "duration", "finished":
			default:
				return usageErrorf(cmd, "--sort %q: use pc, status, duration or finished", f.opts.Sort)
			}
			failOn, err := results.ParseFailOn(f.failOn)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if f.timeout < 0 {
				return usageErrorf(cmd, "--timeout must be positive")
			}
			opts := &ShowOptions{Env: g.env(), Show: f.opts, FailOn: failOn, Stdout: f.stdout, Stderr: f.stderr, Watch: f.watch, Timeout: f.timeout}
			return pick(runF, runShow)(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.opts.ExecID, "exec-id", "", "a deployment's exec_id")
	fl.StringVar(&f.opts.RequestID, "request-id", "", "a request_id (every PC of a broadcast shares one)")
	fl.StringVar(&f.opts.ResultID, "result-id", "", "one run's result_id")
	fl.StringArrayVar(&f.opts.PCs, "pc", nil, "only this PC (repeat for several; the name is taken as written, commas and quotes included)")
	fl.StringVar(&f.opts.Sort, "sort", "pc", "order: pc, status, duration or finished")
	fl.StringVar(&f.failOn, "fail-on", "", "exit 3 when any of these is non-empty: "+strings.Join(results.FailOnCategories, ","))
	fl.BoolVar(&f.stdout, "stdout", false, "print each PC's full stdout")
	fl.BoolVar(&f.stderr, "stderr", false, "print each PC's full stderr")
	fl.BoolVar(&f.watch, "watch", false, "follow results.<request_id> on NATS and update the view as results arrive, until every target reported")
	fl.DurationVar(&f.timeout, "timeout", 0, "with --watch: give up after this long (exit 1)")
	return cmd
}

func runShow(ctx context.Context, opts *ShowOptions) error {
	st, err := opts.Deps.open(ctx, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	if opts.Watch {
		return runWatch(ctx, opts, st)
	}
	v, err := results.Show(ctx, st, opts.Show)
	if err != nil {
		return err
	}
	if err := results.Render(opts.IO, v, results.RenderOptions{Format: opts.Format, Stdout: opts.Stdout, Stderr: opts.Stderr, PCs: opts.Show.PCs}); err != nil {
		return err
	}
	return failOn(v, opts.FailOn)
}

// failOn is exit 3 when a --fail-on category is non-empty.
func failOn(v *results.View, categories []string) error {
	if hit := v.FailOn(categories); len(hit) > 0 {
		return &ExitErr{Code: ExitFindings, Err: fmt.Errorf("--fail-on: %s", strings.Join(hit, ", "))}
	}
	return nil
}

func runWatch(ctx context.Context, opts *ShowOptions, st store.ResultQueries) error {
	rows, exec, err := results.Load(ctx, st, opts.Show)
	if err != nil {
		return err
	}
	if len(rows) == 0 && exec == nil {
		// A watch waits for a selection's first result; it must not wait
		// for ever on an id that only differs from a stored one in case.
		if id := results.LowerCaseMatch(ctx, st, opts.Show); id != "" {
			return fmt.Errorf("nothing to watch yet under that id; ids are matched exactly, and %s (the same in lower case) exists: use that", id)
		}
	}
	// One request's results share a subject; anything wider (a deployment
	// not yet seen, one run) listens to all results and filters.
	subject := "results.>"
	if opts.Show.RequestID != "" {
		subject = "results." + opts.Show.RequestID
	} else if len(rows) > 0 && opts.Show.ResultID == "" {
		if v := results.Build(rows, exec, opts.Show); v.Summary.RequestID != nil && *v.Summary.RequestID != "" {
			subject = "results." + *v.Summary.RequestID
		}
	}
	js, closeNATS, err := opts.Deps.jetStream()
	if err != nil {
		return err
	}
	defer closeNATS()
	nc := js.Conn()
	payloads := make(chan []byte, 1024)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		select {
		case payloads <- m.Data:
		default: // a redraw cannot keep up; the next full view catches up
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	format, s := opts.Format, opts.IO
	w := &results.Watcher{Streams: s, Opts: opts.Show, Render: results.RenderOptions{Format: format, Stdout: opts.Stdout, Stderr: opts.Stderr, PCs: opts.Show.PCs},
		Rows: rows, Exec: exec}
	if !s.OutTTY && !format.IsMachine() {
		fmt.Fprintf(s.Err, "Watching %s; one line per result.\n", subject)
	}
	v, werr := w.Run(ctx, payloads, opts.Timeout)
	if v != nil && !(s.OutTTY && !format.IsMachine()) && werr == nil && !format.IsMachine() {
		fmt.Fprintln(s.Out)
		if err := results.Render(s, v, results.RenderOptions{Format: format, PCs: opts.Show.PCs}); err != nil {
			return err
		}
	}
	if werr != nil {
		return werr
	}
	return failOn(v, opts.FailOn)
}
