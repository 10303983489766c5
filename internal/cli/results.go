package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/results"
	"github.com/kanadehq/kanade-cli/internal/secret"
	"github.com/kanadehq/kanade-cli/internal/store"
)

func newResultsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "results", Short: "Query execution results"}
	cmd.AddCommand(newResultsShowCmd(g), newResultsListCmd(g), newBackfillCmd(g), newAuditCmd(g))
	return cmd
}

type showFlags struct {
	opts           results.ShowOptions
	failOn         string
	stdout, stderr bool
	watch          bool
	timeout        time.Duration
}

func newResultsShowCmd(g *Globals) *cobra.Command {
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
			st, err := g.openReader(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if f.watch {
				return runWatch(cmd.Context(), g, st, f, failOn)
			}
			return runShow(cmd.Context(), g.streams, st, f, failOn, g.format())
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

func runWatch(ctx context.Context, g *Globals, st store.Store, f showFlags, failOn []string) error {
	rows, exec, err := results.Load(ctx, st, f.opts)
	if err != nil {
		return err
	}
	// One request's results share a subject; anything wider (a deployment
	// not yet seen, one run) listens to all results and filters.
	subject := "results.>"
	if f.opts.RequestID != "" {
		subject = "results." + f.opts.RequestID
	} else if len(rows) > 0 && f.opts.ResultID == "" {
		if v := results.Build(rows, exec, f.opts); v.Summary.RequestID != nil && *v.Summary.RequestID != "" {
			subject = "results." + *v.Summary.RequestID
		}
	}
	o := g.NATS
	o.Notify = g.streams.Err
	nc, err := natsconn.Connect(o, "kanade results show --watch")
	if err != nil {
		return err
	}
	defer nc.Close()
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
	format := g.format()
	w := &results.Watcher{Streams: g.streams, Opts: f.opts, Render: results.RenderOptions{Format: format, Stdout: f.stdout, Stderr: f.stderr},
		Rows: rows, Exec: exec}
	if !g.streams.OutTTY && !format.IsMachine() {
		fmt.Fprintf(g.streams.Err, "Watching %s; one line per result.\n", subject)
	}
	v, werr := w.Run(ctx, payloads, f.timeout)
	if v != nil && !(g.streams.OutTTY && !format.IsMachine()) && werr == nil && !format.IsMachine() {
		fmt.Fprintln(g.streams.Out)
		if err := results.Render(g.streams, v, results.RenderOptions{Format: format}); err != nil {
			return err
		}
	}
	if werr != nil {
		return werr
	}
	if hit := v.FailOn(failOn); len(hit) > 0 {
		return &ExitErr{Code: ExitFindings, Err: fmt.Errorf("--fail-on: %s", strings.Join(hit, ", "))}
	}
	return nil
}

func runShow(ctx context.Context, s *output.Streams, st store.ResultQueries, f showFlags, failOn []string, format output.Format) error {
	v, err := results.Show(ctx, st, f.opts)
	if err != nil {
		return err
	}
	if err := results.Render(s, v, results.RenderOptions{Format: format, Stdout: f.stdout, Stderr: f.stderr}); err != nil {
		return err
	}
	if hit := v.FailOn(failOn); len(hit) > 0 {
		return &ExitErr{Code: ExitFindings, Err: fmt.Errorf("--fail-on: %s", strings.Join(hit, ", "))}
	}
	return nil
}

type listFlags struct {
	opts         results.ListOptions
	since, until string
}

func newResultsListCmd(g *Globals) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recent executions and ad-hoc requests, newest first, with their counts",
		Example: `  kanade results list
  kanade results list --failed --since 24h
  kanade results list --manifest inventory-hw --pc PC-0042 -o json
  kanade results list --limit 20 --after <cursor printed by the previous page>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if f.opts.Filter.Since, err = parseTime("since", f.since, now); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if f.opts.Filter.Until, err = parseTime("until", f.until, now); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if f.opts.Filter.Limit < 1 || f.opts.Filter.Limit > 10000 {
				return usageErrorf(cmd, "--limit %d: give 1 to 10000", f.opts.Filter.Limit)
			}
			if f.opts.Status != "" && !slices.Contains(results.ListStatuses, f.opts.Status) {
				return usageErrorf(cmd, "--status %q: use one of %s", f.opts.Status, strings.Join(results.ListStatuses, ", "))
			}
			if f.opts.After != "" {
				if _, err := results.DecodeCursor(f.opts.After); err != nil {
					return usageErrorf(cmd, "%v", err)
				}
			}
			st, err := g.openReader(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			page, err := results.List(cmd.Context(), st, f.opts)
			if err != nil {
				return err
			}
			if page.NextAfter != "" {
				page.NextCommand = nextListCommand(cmd, f, page.NextAfter)
			}
			return results.RenderList(g.streams, page, g.format())
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.opts.Filter.PCs, "pc", nil, "only runs on this PC (repeat for several; the name is taken as written)")
	fl.StringVar(&f.opts.Filter.Manifest, "manifest", "", "only this manifest id")
	fl.StringVar(&f.since, "since", "", "only those with a result recorded at or after this (RFC 3339 or a duration, 24h); their counts cover all their results")
	fl.StringVar(&f.until, "until", "", "only those with a result recorded before this (RFC 3339 or a duration); counts cover all their results")
	fl.StringVar(&f.opts.Status, "status", "", "only this status: "+strings.Join(results.ListStatuses, ", "))
	fl.BoolVar(&f.opts.Filter.Failed, "failed", false, "only those with at least one failed run")
	fl.IntVar(&f.opts.Filter.Limit, "limit", 50, "rows per page")
	fl.StringVar(&f.opts.After, "after", "", "continue after this cursor (printed at the end of a page)")
	return cmd
}

// nextListCommand is the command for the page after this one: every flag
// this one was given, with --since and --until pinned to the instants this
// page used (so "24h" does not move between pages), and the new --after.
func nextListCommand(cmd *cobra.Command, f listFlags, after string) string {
	args := []string{"kanade"}
	var local []*pflag.Flag
	inherited := cmd.InheritedFlags()
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if inherited.Lookup(fl.Name) == nil {
			local = append(local, fl)
			return
		}
		switch fl.Name {
		case "password", "token", "nkey", "creds":
			return // secrets are not printed; the environment or config supplies them
		case "db", "nats-url", "server":
			args = append(args, "--"+fl.Name, shellQuote(secret.URL(fl.Value.String())))
		default:
			args = append(args, "--"+fl.Name, shellQuote(fl.Value.String()))
		}
	})
	args = append(args, "results", "list")
	for _, fl := range local {
		switch fl.Name {
		case "after":
		case "since":
			args = append(args, "--since", f.opts.Filter.Since.UTC().Format(time.RFC3339Nano))
		case "until":
			args = append(args, "--until", f.opts.Filter.Until.UTC().Format(time.RFC3339Nano))
		case "pc":
			for _, pc := range f.opts.Filter.PCs {
				args = append(args, "--pc", shellQuote(pc))
			}
		default:
			if fl.Value.Type() == "bool" {
				args = append(args, "--"+fl.Name)
			} else {
				args = append(args, "--"+fl.Name, shellQuote(fl.Value.String()))
			}
		}
	}
	return strings.Join(append(args, "--after", after), " ")
}

// shellQuote quotes v for a POSIX shell when it needs quoting.
func shellQuote(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == '=' || r == '@' || r == ',' || r == '+' ||
			(r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'))
	}) < 0 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
