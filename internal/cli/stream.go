package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

type replayFlags struct {
	stream, from, to, since, until, progress string
	consumer                                 string
	follow, rebuild, yes                     bool
	subjects                                 []string
	batch, maxErrors                         int
	natsTimeout                              time.Duration
	dryRun, plan, resume, onlyQuarantined    bool
}

func newStreamCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "stream", Short: "Work with the JetStream streams the results come from"}
	var f replayFlags
	replayCmd := &cobra.Command{
		Use:   "replay",
		Short: "Replay a stream through the projector to rebuild the tables",
		Long: `Replay reads a window of a JetStream stream (RESULTS by default) with an
ordered consumer and projects it by upstream's rules into --db. Each batch
that writes commits with a checkpoint (a replay of what is already projected
writes only its final one); --resume continues after a crash or Ctrl-C.
Replay EVENTS before RESULTS to reproduce in-flight rows as live projection did.
It writes execution_results, executions, inventory_facts and the tables
upstream derives beside them: inventory_history (stamped with the message's
publish time, so two replays write the same rows), the explode tables (created
or migrated from the manifests), check_status, feeds and feed_meta, and
--rebuild rebuilds them. A replay never sends a check alert.`,
		Example: `  kanade stream replay --plan
  kanade stream replay --since 36h
  kanade stream replay --stream EVENTS && kanade stream replay
  kanade stream replay --resume
  kanade stream replay --only-quarantined`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd)
			if err != nil {
				return err
			}
			return runReplay(cmd.Context(), g, o, f)
		},
	}
	fl := replayCmd.Flags()
	fl.StringVar(&f.stream, "stream", streams.Results, "stream to replay")
	f.addWindowFlags(fl)
	fl.IntVar(&f.batch, "batch", 5000, "messages per transaction")
	fl.BoolVar(&f.dryRun, "dry-run", false, "project in a transaction that is rolled back, and report what would change")
	fl.BoolVar(&f.plan, "plan", false, "print the resolved range and exit")
	fl.BoolVar(&f.resume, "resume", false, "continue from this database's checkpoint")
	fl.IntVar(&f.maxErrors, "max-errors", 0, "stop after this many quarantined messages (0: never)")
	fl.BoolVar(&f.onlyQuarantined, "only-quarantined", false, "retry quarantined messages and clear those that now succeed")
	fl.BoolVar(&f.rebuild, "rebuild", false, "project the whole stream into shadow tables (keeping rows the stream no longer holds), show the difference, and swap them in with --yes")
	fl.BoolVar(&f.yes, "yes", false, "with --rebuild: swap the rebuilt tables in (the old ones are kept as kanade_old_<time>_*)")
	fl.BoolVar(&f.follow, "follow", false, "after catching up, keep projecting new messages until Ctrl-C (durable consumer --consumer, acked after commit)")
	fl.StringVar(&f.consumer, "consumer", replay.DefaultConsumer, "durable consumer name for --follow (never upstream's backend_results_projector)")
	cmd.AddCommand(replayCmd, newVerifyCmd(g))
	return cmd
}

// parseTime reads RFC 3339 or a duration back from now.
func parseTime(flag, v string, now time.Time) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return nil, fmt.Errorf("--%s %s: give a positive duration (how far back)", flag, v)
		}
		t := now.Add(-d)
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, fmt.Errorf("--%s %q is neither RFC 3339 (2026-11-27T08:00:00Z) nor a duration (36h)", flag, v)
	}
	return &t, nil
}

func parseSeq(flag, v string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("--%s %q: give a stream sequence number (1 or more)", flag, v)
	}
	return n, nil
}

// addWindowFlags registers what replay and verify share: the window of the
// stream, how long to wait for NATS and how to show progress.
func (f *replayFlags) addWindowFlags(fl *pflag.FlagSet) {
	fl.StringSliceVar(&f.subjects, "subject", nil, "only these subjects (repeatable, wildcards allowed)")
	fl.StringVar(&f.from, "from-seq", "", "first sequence")
	fl.StringVar(&f.to, "to-seq", "", "last sequence (default: the last one when the run starts)")
	fl.StringVar(&f.since, "since", "", "start at this time: RFC 3339 or a duration back from now (36h)")
	fl.StringVar(&f.until, "until", "", "stop before this time: RFC 3339 or a duration back from now")
	fl.DurationVar(&f.natsTimeout, "nats-timeout", 2*time.Minute, "stop when NATS has been unreachable this long")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (a bar on a terminal), json (a line per second), none")
}

func (f *replayFlags) options(cmd *cobra.Command) (replay.Options, error) {
	o := replay.Options{Stream: f.stream, Subjects: f.subjects, Batch: f.batch, DryRun: f.dryRun, Resume: f.resume,
		MaxErrors: f.maxErrors, OnlyQuarantined: f.onlyQuarantined, Follow: f.follow, Consumer: f.consumer, NATSTimeout: f.natsTimeout}
	var err error
	now := time.Now()
	if o.FromSeq, err = parseSeq("from-seq", f.from); err != nil {
		return o, usageErrorf(cmd, "%v", err)
	}
	if o.ToSeq, err = parseSeq("to-seq", f.to); err != nil {
		return o, usageErrorf(cmd, "%v", err)
	}
	if o.Since, err = parseTime("since", f.since, now); err != nil {
		return o, usageErrorf(cmd, "%v", err)
	}
	if o.Until, err = parseTime("until", f.until, now); err != nil {
		return o, usageErrorf(cmd, "%v", err)
	}
	switch {
	case o.FromSeq > 0 && o.Since != nil:
		return o, usageErrorf(cmd, "--from-seq and --since both set the start: give one")
	case o.ToSeq > 0 && o.Until != nil:
		return o, usageErrorf(cmd, "--to-seq and --until both set the end: give one")
	case f.resume && (o.FromSeq > 0 || o.Since != nil):
		return o, usageErrorf(cmd, "--resume starts at the checkpoint: drop --from-seq/--since")
	case f.batch < 1 || f.batch > 100000:
		return o, usageErrorf(cmd, "--batch %d: give 1 to 100000", f.batch)
	case f.natsTimeout <= 0:
		return o, usageErrorf(cmd, "--nats-timeout %s: give a positive duration such as 30s or 5m", f.natsTimeout)
	case f.maxErrors < 0:
		return o, usageErrorf(cmd, "--max-errors must be 0 or more")
	case f.follow && (f.dryRun || f.onlyQuarantined || o.ToSeq > 0 || o.Until != nil):
		return o, usageErrorf(cmd, "--follow runs until Ctrl-C: it does not combine with --dry-run, --only-quarantined, --to-seq or --until")
	case f.rebuild && (f.follow || f.dryRun || f.resume || f.onlyQuarantined || o.FromSeq > 0 || o.Since != nil || o.ToSeq > 0 || o.Until != nil):
		return o, usageErrorf(cmd, "--rebuild replays the whole stream: it does not combine with --follow, --dry-run, --resume, --only-quarantined or a window")
	case f.yes && !f.rebuild:
		return o, usageErrorf(cmd, "--yes only confirms --rebuild")
	case f.consumer == streams.UpstreamConsumer:
		return o, usageErrorf(cmd, "--consumer backend_results_projector is upstream's projector; taking its messages would starve it. Use a name of your own")
	case f.progress != "auto" && f.progress != "json" && f.progress != "none":
		return o, usageErrorf(cmd, "--progress %q: use auto, json or none", f.progress)
	case o.FromSeq > 0 && o.ToSeq > 0 && o.FromSeq > o.ToSeq:
		return o, usageErrorf(cmd, "--from-seq %d is after --to-seq %d", o.FromSeq, o.ToSeq)
	}
	return o, nil
}

func connectJS(g *Globals) (jetstream.JetStream, func(), error) {
	o := g.NATS
	o.Notify = g.streams.Err
	nc, err := natsconn.Connect(o, "kanade")
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	return js, nc.Close, nil
}

// runPlan says what a replay would read. It reads the stream, and the
// database only for --resume's checkpoint (read-only, creating nothing).
func runPlan(ctx context.Context, g *Globals, js jetstream.JetStream, o replay.Options) error {
	var st store.Store
	if o.Resume {
		var err error
		if st, err = g.openReader(ctx); err != nil {
			return err
		}
		defer st.Close()
	}
	plan, err := replay.Resolve(ctx, js, st, o)
	if err != nil {
		return err
	}
	return printPlan(g.streams, plan, g.format())
}

func runReplay(ctx context.Context, g *Globals, o replay.Options, f replayFlags) error {
	js, closeNATS, err := connectJS(g)
	if err != nil {
		return err
	}
	defer closeNATS()
	if f.plan {
		return runPlan(ctx, g, js, o)
	}
	// A dry run writes nothing, so it needs the tables to exist; a replay
	// creates them on first use.
	st, err := g.openStore(ctx, !o.DryRun)
	if err != nil {
		return err
	}
	defer st.Close()
	s := g.streams
	if f.rebuild {
		return runRebuild(ctx, g, st, js, o, f)
	}
	if st.Upstream() && !o.DryRun {
		fmt.Fprintln(s.Err, "Note: this is upstream's backend.db. Stop the upstream backend first: two projectors writing one SQLite file wait on each other's locks.")
	}
	o.Progress = progressPrinter(s, f.progress)
	o.OnRetry = func(seq uint64, attempt int, wait time.Duration, err error) {
		fmt.Fprintf(s.Err, "%s  batch ending at sequence %d failed (attempt %d): %v; retrying in %s\n",
			time.Now().UTC().Format(time.RFC3339), seq, attempt, err, wait)
	}
	if f.follow {
		o.OnFollowBatch = func(st projector.Stats, seq uint64) {
			if f.progress == "none" {
				return
			}
			fmt.Fprintf(s.Err, "%s  +%d messages (inserted %d, completed %d, quarantined %d), checkpoint %d\n",
				time.Now().UTC().Format(time.RFC3339), st.Messages, st.Inserted, st.Completed, st.Quarantined, seq)
		}
	}
	sum, err := replay.Run(ctx, st, js, o)
	if sum != nil && (err == nil || errors.Is(err, replay.ErrTooManyErrors) || ctx.Err() != nil) {
		if perr := printSummary(s, sum, g.format()); perr != nil {
			return perr
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w; wait for it to finish", err)
		}
		if ctx.Err() != nil && sum != nil {
			fmt.Fprintf(s.Err, "Stopped at sequence %d; run again with --resume to continue.\n", sum.CheckpointSeq)
		}
		return err
	}
	return nil
}

func progressPrinter(s *output.Streams, mode string) func(replay.Progress) {
	var last time.Time
	switch {
	case mode == "json":
		return func(p replay.Progress) {
			if time.Since(last) < time.Second && p.Done < p.Total {
				return
			}
			last = time.Now()
			rate := float64(p.Done) / max(p.Elapsed.Seconds(), 1e-9)
			fmt.Fprintf(s.Err, `{"done":%d,"total":%d,"last_seq":%d,"rate":%.0f,"quarantined":%d,"elapsed_seconds":%.1f}`+"\n",
				p.Done, p.Total, p.LastSeq, rate, p.Quarantined, p.Elapsed.Seconds())
		}
	case mode == "auto" && s.ErrTTY:
		return func(p replay.Progress) {
			rate := float64(p.Done) / max(p.Elapsed.Seconds(), 1e-9)
			eta := "-"
			if rate > 0 && p.Total >= p.Done {
				eta = (time.Duration(float64(p.Total-p.Done)/rate) * time.Second).Round(time.Second).String()
			}
			width := 30
			filled := 0
			if p.Total > 0 {
				filled = int(float64(width) * float64(p.Done) / float64(p.Total))
			}
			fmt.Fprintf(s.Err, "\r[%s%s] %d/%d  %.0f msg/s  ETA %s  quarantined %d ", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
				p.Done, p.Total, rate, eta, p.Quarantined)
			if p.Done >= p.Total {
				fmt.Fprintln(s.Err)
			}
		}
	default:
		return nil
	}
}

func printPlan(s *output.Streams, p *replay.Plan, f output.Format) error {
	if done, err := output.WriteDocument(s.Out, f, p); done || err != nil {
		return err
	}
	rows := [][]string{
		{"stream", p.Stream},
		{"subjects", strings.Join(p.Subjects, ",")},
		{"stream created", p.StreamCreated.Format(time.RFC3339)},
		{"sequences", fmt.Sprintf("%d..%d", p.FromSeq, p.ToSeq)},
		{"messages", strconv.FormatUint(p.Messages, 10)},
		{"bytes (estimate)", strconv.FormatUint(p.BytesEstimate, 10)},
		{"time span", spanText(p.FirstTime, p.LastTime)},
		{"resumed from checkpoint", strconv.FormatBool(p.Resumed)},
	}
	if f == output.CSV {
		return output.WriteCSV(s.Out, []string{"field", "value"}, rows)
	}
	return output.WriteTable(s.Out, []string{"PLAN", ""}, rows)
}

func spanText(a, b time.Time) string {
	if a.IsZero() {
		return "-"
	}
	return a.Format(time.RFC3339) + " .. " + b.Format(time.RFC3339)
}

func printSummary(s *output.Streams, sum *replay.Summary, f output.Format) error {
	if done, err := output.WriteDocument(s.Out, f, sum); done || err != nil {
		return err
	}
	st := sum.Stats
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	rows := [][]string{
		{"messages read", n(st.Messages)},
		{"rows inserted", n(st.Inserted)},
		{"in-flight rows created", n(st.InFlightCreated)},
		{"in-flight rows completed", n(st.Completed)},
		{"reaped placeholders replaced", n(st.ReapedReplaced)},
		{"unchanged duplicates", n(st.Unchanged)},
		{"counters moved", n(st.CountersMoved)},
		{"inventory upserts", n(st.InventoryUpserts)},
		{"inventory skipped (payload not JSON)", n(st.InventorySkipped)},
		{"inventory history rows", n(st.HistoryRows)},
		{"explode rows written", n(st.ExplodeRows)},
		{"check status upserts", n(st.CheckUpserts)},
		{"feeds replaced", n(st.FeedsReplaced)},
		{"quarantined", n(st.Quarantined)},
		{"elapsed", sum.Elapsed.Round(time.Millisecond).String()},
		{"rate", fmt.Sprintf("%.0f msg/s", sum.RatePerSecond)},
		{"checkpoint", strconv.FormatUint(sum.CheckpointSeq, 10)},
	}
	if sum.DryRun {
		rows = append(rows, []string{"dry run", "yes: nothing was written"})
	}
	if sum.StoppedEarly {
		rows = append(rows, []string{"stopped early", sum.StopReason})
	}
	if f == output.CSV {
		return output.WriteCSV(s.Out, []string{"field", "value"}, rows)
	}
	title := "REPLAY " + sum.Plan.Stream
	if err := output.WriteTable(s.Out, []string{title, ""}, rows); err != nil {
		return err
	}
	switch {
	case st.Quarantined > 0 && sum.DryRun:
		fmt.Fprintf(s.Out, "\n%d message(s) could not be projected; a replay would keep them in kanade_quarantine (this dry run wrote nothing).\n", st.Quarantined)
	case st.Quarantined > 0:
		fmt.Fprintf(s.Out, "\n%d message(s) could not be projected and were kept in kanade_quarantine; fix the cause, then run `kanade stream replay --only-quarantined --stream %s`.\n", st.Quarantined, sum.Plan.Stream)
	}
	for _, w := range sum.Warnings {
		fmt.Fprintf(s.Err, "warning: %s (upstream skips it too; fix the manifest in KV jobs and replay again)\n", w)
	}
	return nil
}

func runRebuild(ctx context.Context, g *Globals, st store.Store, js jetstream.JetStream, o replay.Options, f replayFlags) error {
	s := g.streams
	if st.Upstream() && f.yes {
		fmt.Fprintln(s.Err, "Note: this is upstream's backend.db. Stop the upstream backend before swapping its tables.")
	}
	o.Progress = progressPrinter(s, f.progress)
	rep, err := replay.Rebuild(ctx, st, js, o, f.yes)
	if err != nil {
		return err
	}
	if done, err := output.WriteDocument(s.Out, g.format(), rep); done || err != nil {
		return err
	}
	d := rep.Diff
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	rows := [][]string{
		{"messages projected", n(rep.Stats.Messages)},
		{"rows carried over (older than the streams, in flight, reaped)", n(rep.Carried)},
		{"rows: live / rebuilt", n(d.LiveRows) + " / " + n(d.ShadowRows)},
		{"rows only in the live tables", n(d.OnlyLive)},
		{"rows only in the rebuilt tables", n(d.OnlyShadow)},
		{"rows that would change", n(d.Changed)},
		{"executions with other counters", n(d.ExecutionsDiff)},
		{"inventory facts: live / rebuilt", n(d.InventoryLive) + " / " + n(d.InventoryShadow)},
		{"quarantined", n(rep.Stats.Quarantined)},
		{"swapped", strconv.FormatBool(rep.Swapped)},
	}
	if g.format() == output.CSV {
		return output.WriteCSV(s.Out, []string{"field", "value"}, rows)
	}
	if err := output.WriteTable(s.Out, []string{"REBUILD " + rep.Plan.Stream, ""}, rows); err != nil {
		return err
	}
	if len(d.SampleCounters) > 0 {
		fmt.Fprintln(s.Out)
		var cr [][]string
		for _, c := range d.SampleCounters {
			cr = append(cr, []string{c.ExecID, c.Live, c.Shadow})
		}
		if err := output.WriteTable(s.Out, []string{"EXEC ID", "LIVE (OK/FAILED STATUS)", "REBUILT"}, cr); err != nil {
			return err
		}
	}
	if rep.Swapped {
		fmt.Fprintf(s.Out, "\nSwapped: the rebuilt tables are live. The replaced ones are kept as %s*; drop them when satisfied.\n", rep.OldPrefix)
	} else {
		fmt.Fprintln(s.Out, "\nNothing was changed. Run again with --yes to swap the rebuilt tables in (the current ones are kept).")
	}
	return nil
}
