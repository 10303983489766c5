package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

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
	batchBytes                               string
	natsTimeout                              time.Duration
	dryRun, plan, resume, onlyQuarantined    bool
}

// ReplayOptions is what `stream replay` runs with.
type ReplayOptions struct {
	Env
	Replay replay.Options
	// Plan prints the resolved window and stops; Rebuild projects into
	// shadow tables and swaps them in when Yes.
	Plan, Rebuild, Yes bool
	Progress           string // auto, json or none
}

func newStreamCmd(g *Globals, r runners) *cobra.Command {
	cmd := &cobra.Command{Use: "stream", Short: "Work with the JetStream streams the results come from"}
	cmd.AddCommand(newReplayCmd(g, r.replay), newVerifyCmd(g, r.verify))
	return cmd
}

func newReplayCmd(g *Globals, runF func(context.Context, *ReplayOptions) error) *cobra.Command {
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
			opts := &ReplayOptions{Env: g.env(), Replay: o, Plan: f.plan, Rebuild: f.rebuild, Yes: f.yes, Progress: f.progress}
			return pick(runF, runReplay)(cmd.Context(), opts)
		},
	}
	fl := replayCmd.Flags()
	fl.StringVar(&f.stream, "stream", streams.Results, "stream to replay")
	f.addWindowFlags(fl)
	fl.IntVar(&f.batch, "batch", 5000, "messages per transaction (one that only repeats derived rows already in it counts half)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "project in a transaction that is rolled back, and report what would change")
	fl.BoolVar(&f.plan, "plan", false, "print the resolved range and exit")
	fl.BoolVar(&f.resume, "resume", false, "continue from this database's checkpoint")
	fl.IntVar(&f.maxErrors, "max-errors", 0, "stop after this many quarantined messages (0: never)")
	fl.BoolVar(&f.onlyQuarantined, "only-quarantined", false, "retry quarantined messages and clear those that now succeed")
	fl.BoolVar(&f.rebuild, "rebuild", false, "project the whole stream into shadow tables (keeping rows the stream no longer holds), show the difference, and swap them in with --yes")
	fl.BoolVar(&f.yes, "yes", false, "with --rebuild: swap the rebuilt tables in (the old ones are kept as kanade_old_<time>_*)")
	fl.BoolVar(&f.follow, "follow", false, "after catching up, keep projecting new messages until Ctrl-C (durable consumer --consumer, acked after commit)")
	fl.StringVar(&f.consumer, "consumer", replay.DefaultConsumer, "durable consumer name for --follow (never upstream's backend_results_projector)")
	return replayCmd
}

// parseTime reads RFC 3339, a date (its midnight in UTC, as the tables'
// times are) or a duration back from now.
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
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, fmt.Errorf("--%s %q is neither RFC 3339 (2026-11-27T08:00:00Z), a date in UTC (2026-11-27) nor a duration (36h)", flag, v)
	}
	return &t, nil
}

// parseWindow reads --since and --until, and refuses a pair with nothing
// between them: --until is exclusive, so an equal pair is as empty as a
// swapped one, and a duration counts back from now, so "--since 1h
// --until 2h" is the swapped pair it looks like. An empty answer would
// look like "nothing happened".
func parseWindow(since, until string, now time.Time) (*time.Time, *time.Time, error) {
	s, err := parseTime("since", since, now)
	if err != nil {
		return nil, nil, err
	}
	u, err := parseTime("until", until, now)
	if err != nil {
		return nil, nil, err
	}
	if s != nil && u != nil && !s.Before(*u) {
		return nil, nil, fmt.Errorf("--since %s is not before --until %s: the window would be empty",
			s.UTC().Format(time.RFC3339), u.UTC().Format(time.RFC3339))
	}
	return s, u, nil
}

// parseBatchBytes reads a size such as 16MiB, 64MB or 1048576.
func parseBatchBytes(v string) (int64, error) {
	n, err := humanize.ParseBytes(v)
	if err != nil || n < 64<<10 || n > 1<<30 {
		return 0, fmt.Errorf("--batch-bytes %q: give a size from 64KiB to 1GiB, such as 16MiB or 64MB", v)
	}
	return int64(n), nil
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
	fl.StringVar(&f.since, "since", "", "start at this time: RFC 3339, a date in UTC (2026-11-27) or a duration back from now (36h)")
	fl.StringVar(&f.until, "until", "", "stop before this time: RFC 3339, a date in UTC or a duration back from now")
	fl.StringVar(&f.batchBytes, "batch-bytes", "16MiB", "also end a batch once its payloads reach this size, such as 4MiB (a replay's memory grows with it)")
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
	if o.Since, o.Until, err = parseWindow(f.since, f.until, now); err != nil {
		return o, usageErrorf(cmd, "%v", err)
	}
	if cmd.Flags().Changed("subject") && len(o.Subjects) == 0 {
		return o, usageErrorf(cmd, "--subject is empty: give a subject such as results.<request_id> or results.>")
	}
	for _, subject := range o.Subjects {
		if err := streams.CheckFilter(subject); err != nil {
			return o, usageErrorf(cmd, "--subject: %v", err)
		}
	}
	var batchBytesErr error
	o.BatchBytes, batchBytesErr = parseBatchBytes(f.batchBytes)
	switch {
	case o.FromSeq > 0 && o.Since != nil:
		return o, usageErrorf(cmd, "--from-seq and --since both set the start: give one")
	case o.ToSeq > 0 && o.Until != nil:
		return o, usageErrorf(cmd, "--to-seq and --until both set the end: give one")
	case f.resume && (o.FromSeq > 0 || o.Since != nil):
		return o, usageErrorf(cmd, "--resume starts at the checkpoint: drop --from-seq/--since")
	case f.batch < 1 || f.batch > 100000:
		return o, usageErrorf(cmd, "--batch %d: give 1 to 100000", f.batch)
	case batchBytesErr != nil:
		return o, usageErrorf(cmd, "%v", batchBytesErr)
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

func (g *Globals) jetStream() (jetstream.JetStream, func(), error) {
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
func runPlan(ctx context.Context, opts *ReplayOptions, js jetstream.JetStream) error {
	var st store.Store
	if opts.Replay.Resume {
		var err error
		if st, err = opts.Deps.open(ctx, readOnly); err != nil {
			return err
		}
		defer st.Close()
	}
	plan, err := replay.Resolve(ctx, js, st, opts.Replay)
	if err != nil {
		return err
	}
	return printPlan(opts.IO, plan, opts.Format)
}

func runReplay(ctx context.Context, opts *ReplayOptions) error {
	o := opts.Replay
	js, closeNATS, err := opts.Deps.jetStream()
	if err != nil {
		return err
	}
	defer closeNATS()
	if opts.Plan {
		return runPlan(ctx, opts, js)
	}
	// A dry run writes nothing, so it needs the tables to exist; a replay
	// creates them on first use.
	st, err := opts.Deps.open(ctx, writeMode(o.DryRun))
	if err != nil {
		return err
	}
	defer st.Close()
	defer lowerGCTarget(os.LookupEnv, replayGCPercent(st.Kind()))()
	s := opts.IO
	if opts.Rebuild {
		return runRebuild(ctx, opts, st, js)
	}
	if st.Upstream() && !o.DryRun {
		fmt.Fprintln(s.Err, "Note: this is upstream's backend.db. Stop the upstream backend first: two projectors writing one SQLite file wait on each other's locks.")
	}
	o.Progress = progressPrinter(s, opts.Progress)
	o.OnRetry = retryPrinter(s)
	if o.Follow {
		o.OnFollowBatch = func(st projector.Stats, seq uint64) {
			if opts.Progress == "none" {
				return
			}
			fmt.Fprintf(s.Err, "%s  +%d messages (inserted %d, completed %d, quarantined %d), checkpoint %d\n",
				time.Now().UTC().Format(time.RFC3339), st.Messages, st.Inserted, st.Completed, st.Quarantined, seq)
		}
	}
	name := replay.CheckpointName(o.Stream, o.Subjects)
	before, err := st.LoadCheckpoint(ctx, name)
	if err != nil {
		return fmt.Errorf("read the checkpoint of %s: %w", name, err)
	}
	sum, err := replay.Run(ctx, st, js, o)
	if sum != nil && (err == nil || errors.Is(err, replay.ErrTooManyErrors) || ctx.Err() != nil) {
		if perr := printSummary(s, sum, opts.Format); perr != nil {
			return perr
		}
	}
	if err == nil && before != nil {
		if nerr := noteRewind(ctx, s, st, name, before); nerr != nil {
			return nerr
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w; wait for it to finish", err)
		}
		if ctx.Err() != nil && sum != nil {
			fmt.Fprintf(s.Err, "Stopped: %s.\n", sum.ResumeHint())
		}
		return err
	}
	return nil
}

// noteRewind says so when a window that ended before the checkpoint the
// run found moved the checkpoint back (each batch saves its own last
// sequence): --resume then replays what follows again, which changes
// nothing already projected but takes the time, and an operator who ran a
// small window to repair a few rows would not expect that.
func noteRewind(ctx context.Context, s *output.Streams, st store.Store, name string, before *store.Checkpoint) error {
	after, err := st.LoadCheckpoint(ctx, name)
	if err != nil {
		return fmt.Errorf("read the checkpoint of %s: %w", name, err)
	}
	if after == nil || after.LastSeq >= before.LastSeq || !after.StreamCreated.Equal(before.StreamCreated) {
		return nil
	}
	fmt.Fprintf(s.Err, "Note: this window moved the checkpoint of %s back from %d to %d; --resume will replay %d..%d again (changing nothing already projected, but taking the time).\n",
		name, before.LastSeq, after.LastSeq, after.LastSeq+1, before.LastSeq)
	return nil
}

// replayGCPercent is Go's garbage collector target while a replay writes
// to a store of kind k: the Go heap is the part of a replay's memory that
// can give. SQLite's engine and its page cache live in this process: at 40
// its peak stays under 64 MB for up to a tenth of the rate
// (docs/performance.md, "Replay memory, fourth pass"). A PostgreSQL replay
// writes two batches at once: at 50 it peaks near 55 MB, at Go's default
// of 100 near 62 MB, too close to the 64 MB it must stay under ("Two
// batches at once on PostgreSQL").
func replayGCPercent(k store.Kind) int {
	if k == store.SQLite {
		return 40
	}
	return 50
}

// lowerGCTarget sets the collector's target to percent unless the
// operator chose one with GOGC, and returns what puts the previous target
// back.
func lowerGCTarget(lookupEnv func(string) (string, bool), percent int) (restore func()) {
	if _, set := lookupEnv("GOGC"); set {
		return func() {}
	}
	old := debug.SetGCPercent(percent)
	return func() { debug.SetGCPercent(old) }
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
	return output.PrintDocument(s, f, output.Document{Title: "PLAN", Doc: p, Fields: planFields(p, "")})
}

// planFields describe a plan; prefix is its path in the document that
// holds it.
func planFields(p *replay.Plan, prefix string) []output.Field {
	stamp := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	fields := []output.Field{
		{Name: prefix + "stream", Title: "stream", Value: p.Stream},
		{Title: "subjects", Value: strings.Join(p.Subjects, ",")},
	}
	for _, subject := range p.Subjects {
		fields = append(fields, output.Field{Name: prefix + "subjects[]", Value: subject})
	}
	return append(fields, []output.Field{
		{Title: "stream created", Value: p.StreamCreated.Format(time.RFC3339)},
		{Name: prefix + "stream_created", Value: stamp(&p.StreamCreated)},
		{Title: "sequences", Value: seqRange(p.FromSeq, p.ToSeq)},
		{Name: prefix + "from_seq", Value: strconv.FormatUint(p.FromSeq, 10)},
		{Name: prefix + "to_seq", Value: strconv.FormatUint(p.ToSeq, 10)},
		{Name: prefix + "messages", Title: "messages", Value: strconv.FormatUint(p.Messages, 10)},
		{Name: prefix + "bytes_estimate", Title: "bytes (estimate)", Value: strconv.FormatUint(p.BytesEstimate, 10)},
		{Title: "time span", Value: spanText(p.FirstTime, p.LastTime)},
		{Name: prefix + "first_time", Value: stamp(p.FirstTime)},
		{Name: prefix + "last_time", Value: stamp(p.LastTime)},
		{Name: prefix + "resumed", Title: "resumed from checkpoint", Value: strconv.FormatBool(p.Resumed)},
	}...)
}

// seqRange is a window's sequences for people: an empty window (a
// --since after the last message, an --until before the first) has its
// start after its end, which "199..198" would leave to the reader to
// decode.
func seqRange(from, to uint64) string {
	if from > to {
		return "none"
	}
	return fmt.Sprintf("%d..%d", from, to)
}

func spanText(a, b *time.Time) string {
	if a == nil || b == nil {
		return "-"
	}
	return a.Format(time.RFC3339) + " .. " + b.Format(time.RFC3339)
}

func printSummary(s *output.Streams, sum *replay.Summary, f output.Format) error {
	st := sum.Stats
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	fields := []output.Field{
		{Name: "plan.stream", Value: sum.Plan.Stream},
		{Name: "plan.from_seq", Value: strconv.FormatUint(sum.Plan.FromSeq, 10)},
		{Name: "plan.to_seq", Value: strconv.FormatUint(sum.Plan.ToSeq, 10)},
		{Name: "stats.messages", Title: "messages read", Value: n(st.Messages)},
		{Name: "stats.bytes", Value: n(st.Bytes)},
		{Name: "stats.rows_inserted", Title: "rows inserted", Value: n(st.Inserted)},
		{Name: "stats.in_flight_created", Title: "in-flight rows created", Value: n(st.InFlightCreated)},
		{Name: "stats.in_flight_completed", Title: "in-flight rows completed", Value: n(st.Completed)},
		{Name: "stats.reaped_replaced", Title: "reaped placeholders replaced", Value: n(st.ReapedReplaced)},
		{Name: "stats.unchanged_duplicates", Title: "unchanged duplicates", Value: n(st.Unchanged)},
		{Name: "stats.counters_moved", Title: "counters moved", Value: n(st.CountersMoved)},
		{Name: "stats.inventory_upserts", Title: "inventory upserts", Value: n(st.InventoryUpserts)},
		{Name: "stats.inventory_skipped", Title: "inventory skipped (payload not JSON)", Value: n(st.InventorySkipped)},
		{Name: "stats.inventory_history_rows", Title: "inventory history rows", Value: n(st.HistoryRows)},
		{Name: "stats.explode_rows", Title: "explode rows written", Value: n(st.ExplodeRows)},
		{Name: "stats.check_status_upserts", Title: "check status upserts", Value: n(st.CheckUpserts)},
		{Name: "stats.feeds_replaced", Title: "feeds replaced", Value: n(st.FeedsReplaced)},
		{Name: "stats.quarantined", Title: "quarantined", Value: n(st.Quarantined)},
		{Name: "stats.ignored", Value: n(st.Ignored)},
	}
	fields = append(fields, timing(sum.Elapsed, sum.ElapsedSeconds, sum.RatePerSecond, "msg/s")...)
	fields = append(fields, []output.Field{
		{Name: "checkpoint_seq", Title: "checkpoint", Value: strconv.FormatUint(sum.CheckpointSeq, 10)},
		{Name: "dry_run", Value: strconv.FormatBool(sum.DryRun)},
		{Name: "stopped_early", Value: strconv.FormatBool(sum.StoppedEarly)},
		{Name: "stop_reason", Value: sum.StopReason},
	}...)
	if sum.DryRun {
		fields = append(fields, output.Field{Title: "dry run", Value: "yes: nothing was written"})
	}
	if sum.StoppedEarly {
		fields = append(fields, output.Field{Title: "stopped early", Value: sum.StopReason})
	}
	for _, w := range sum.Warnings {
		fields = append(fields, output.Field{Name: "warnings[]", Value: w})
	}
	err := output.PrintDocument(s, f, output.Document{Title: "REPLAY " + sum.Plan.Stream, Doc: sum, Fields: fields,
		Footer: func(w io.Writer) error {
			var err error
			switch {
			case st.Quarantined > 0 && sum.DryRun:
				_, err = fmt.Fprintf(w, "\n%d message(s) could not be projected; a replay would keep them in kanade_quarantine (this dry run wrote nothing).\n", st.Quarantined)
			case st.Quarantined > 0:
				_, err = fmt.Fprintf(w, "\n%d message(s) could not be projected and were kept in kanade_quarantine; fix the cause, then run `kanade stream replay --only-quarantined --stream %s`.\n", st.Quarantined, sum.Plan.Stream)
			}
			return err
		}})
	if err != nil {
		return err
	}
	// On stderr in every format: a script reading the document gets them
	// in its warnings too.
	for _, w := range sum.Warnings {
		fmt.Fprintf(s.Err, "warning: %s (upstream skips it too; fix the manifest in KV jobs and replay again)\n", w)
	}
	return nil
}

// retryPrinter tells stderr about each failed batch that will be tried
// again.
func retryPrinter(s *output.Streams) func(uint64, int, time.Duration, error) {
	return func(seq uint64, attempt int, wait time.Duration, err error) {
		fmt.Fprintf(s.Err, "%s  batch ending at sequence %d failed (attempt %d): %v; retrying in %s\n",
			time.Now().UTC().Format(time.RFC3339), seq, attempt, err, wait)
	}
}

func runRebuild(ctx context.Context, opts *ReplayOptions, st store.Store, js jetstream.JetStream) error {
	s := opts.IO
	if st.Upstream() && opts.Yes {
		fmt.Fprintln(s.Err, "Note: this is upstream's backend.db. Stop the upstream backend before swapping its tables.")
	}
	o := opts.Replay
	o.Progress, o.OnRetry = progressPrinter(s, opts.Progress), retryPrinter(s)
	rep, err := replay.Rebuild(ctx, st, js, o, opts.Yes)
	if err != nil {
		return err
	}
	return printRebuild(s, opts.Format, rep)
}

// timing describes how long a run took and how fast it went: elapsed and
// rate for people, elapsed_seconds and rate_per_second for scripts.
func timing(elapsed time.Duration, seconds, rate float64, unit string) []output.Field {
	return []output.Field{
		{Title: "elapsed", Value: elapsed.Round(time.Millisecond).String()},
		{Name: "elapsed_seconds", Value: strconv.FormatFloat(seconds, 'f', -1, 64)},
		{Title: "rate", Value: fmt.Sprintf("%.0f %s", rate, unit)},
		{Name: "rate_per_second", Value: strconv.FormatFloat(rate, 'f', -1, 64)},
	}
}

func printRebuild(s *output.Streams, f output.Format, rep *replay.RebuildReport) error {
	d := rep.Diff
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	pair := func(a, b int64) string { return n(a) + " / " + n(b) }
	fields := append([]output.Field{{Name: "plan.stream", Value: rep.Plan.Stream}},
		output.Field{Name: "stats.messages", Title: "messages projected", Value: n(rep.Stats.Messages)},
		output.Field{Name: "carried_over_rows", Title: "rows carried over (older than the streams, in flight, reaped)", Value: n(rep.Carried)},
		output.Field{Title: "rows: live / rebuilt", Value: pair(d.LiveRows, d.ShadowRows)},
		output.Field{Name: "difference.live_rows", Value: n(d.LiveRows)},
		output.Field{Name: "difference.shadow_rows", Value: n(d.ShadowRows)},
		output.Field{Name: "difference.rows_only_live", Title: "rows only in the live tables", Value: n(d.OnlyLive)},
		output.Field{Name: "difference.rows_only_rebuilt", Title: "rows only in the rebuilt tables", Value: n(d.OnlyShadow)},
		output.Field{Name: "difference.rows_that_would_change", Title: "rows that would change", Value: n(d.Changed)},
		output.Field{Name: "difference.executions_with_other_counters", Title: "executions with other counters", Value: n(d.ExecutionsDiff)},
		output.Field{Title: "inventory facts: live / rebuilt", Value: pair(d.InventoryLive, d.InventoryShadow)},
		output.Field{Name: "difference.inventory_live", Value: n(d.InventoryLive)},
		output.Field{Name: "difference.inventory_rebuilt", Value: n(d.InventoryShadow)},
		output.Field{Title: "check status: live / rebuilt", Value: pair(d.ChecksLive, d.ChecksShadow)},
		output.Field{Name: "difference.check_status_live", Value: n(d.ChecksLive)},
		output.Field{Name: "difference.check_status_rebuilt", Value: n(d.ChecksShadow)},
		output.Field{Title: "feed rows: live / rebuilt", Value: pair(d.FeedRowsLive, d.FeedRowsShadow)},
		output.Field{Name: "difference.feed_rows_live", Value: n(d.FeedRowsLive)},
		output.Field{Name: "difference.feed_rows_rebuilt", Value: n(d.FeedRowsShadow)},
		output.Field{Name: "difference.history_rows_to_add", Title: "history rows to add", Value: n(d.HistoryToAdd)},
		output.Field{Name: "difference.explode_tables_rebuilt", Title: "explode tables rebuilt", Value: n(d.ExplodeTables)},
		output.Field{Name: "stats.quarantined", Title: "quarantined", Value: n(rep.Stats.Quarantined)},
		output.Field{Name: "swapped", Title: "swapped", Value: strconv.FormatBool(rep.Swapped)},
		output.Field{Name: "old_tables_prefix", Value: rep.OldPrefix},
		output.Field{Name: "elapsed_seconds", Value: strconv.FormatFloat(rep.Elapsed, 'f', -1, 64)},
	)
	return output.PrintDocument(s, f, output.Document{Title: "REBUILD " + rep.Plan.Stream, Doc: rep, Fields: fields,
		Footer: func(w io.Writer) error {
			if len(d.SampleCounters) > 0 {
				fmt.Fprintln(w)
				var cr [][]string
				for _, c := range d.SampleCounters {
					cr = append(cr, []string{c.ExecID, c.Live, c.Shadow})
				}
				if err := output.WriteTable(w, []string{"EXEC ID", "LIVE (OK/FAILED STATUS)", "REBUILT"}, cr); err != nil {
					return err
				}
			}
			var err error
			if rep.Swapped {
				_, err = fmt.Fprintf(w, "\nSwapped: the rebuilt tables are live. The replaced ones are kept as %s*; `kanade db drop-old` drops them when you are satisfied.\n", rep.OldPrefix)
			} else {
				_, err = fmt.Fprintln(w, "\nNothing was changed. Run again with --yes to swap the rebuilt tables in (the current ones are kept).")
			}
			return err
		}})
}
