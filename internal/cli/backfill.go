package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/backfill"
	"github.com/kanadehq/kanade-cli/internal/output"
)

type backfillFlags struct {
	opts         backfill.Options
	yes, showSQL bool
	progress     string
}

// BackfillOptions is what `results backfill` runs with.
type BackfillOptions struct {
	Env
	Backfill backfill.Options
	// Yes skips the confirmation; ShowSQL prints a batch's statements.
	Yes, ShowSQL bool
	Progress     string
}

func newBackfillCmd(g *Globals, runF func(context.Context, *BackfillOptions) error) *cobra.Command {
	var f backfillFlags
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Give legacy rows (result_id = request_id, or empty) their stable result_id, in place",
		Long: `backfill rewrites rows that upstream's v0.29 migration kept with
result_id = request_id (and rows with an empty or NULL id) to the stable UUIDv5
id a replay would give them, so replaying the stream no longer inserts second
copies. Where two rows claim one id, it keeps a finished row over a reaped or
in-flight one, then the earliest recorded; every removed row is first copied
whole into kanade_backfill_conflicts and the executions counters it had moved
are corrected in the same transaction. An interrupted run continues where it
stopped.`,
		Example: `  kanade results backfill --dry-run
  kanade results backfill --yes
  kanade results backfill --yes --max-rate 2000 --batch-size 1000
  kanade --db /var/lib/kanade/backend.db results backfill --dry-run --show-sql`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.opts.BatchSize < 1 || f.opts.BatchSize > 100000 {
				return usageErrorf(cmd, "--batch-size %d: give 1 to 100000", f.opts.BatchSize)
			}
			if f.opts.MaxRate < 0 {
				return usageErrorf(cmd, "--max-rate must be 0 (no limit) or more")
			}
			if f.progress != "auto" && f.progress != "json" && f.progress != "none" {
				return usageErrorf(cmd, "--progress %q: use auto, json or none", f.progress)
			}
			if !f.opts.DryRun && !f.yes && !g.streams.InTTY {
				return usageErrorf(cmd, "backfill rewrites rows: pass --yes to run it without a terminal (or --dry-run to see what it would do)")
			}
			opts := &BackfillOptions{Env: g.env(), Backfill: f.opts, Yes: f.yes, ShowSQL: f.showSQL, Progress: f.progress}
			return pick(runF, runBackfill)(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.opts.BatchSize, "batch-size", 5000, "rows per transaction")
	fl.Float64Var(&f.opts.MaxRate, "max-rate", 0, "at most this many rows per second (0: no limit)")
	fl.BoolVar(&f.opts.DryRun, "dry-run", false, "change nothing; report what would be rewritten, the collisions and a sample")
	fl.BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	fl.BoolVar(&f.showSQL, "show-sql", false, "print the statements of a batch on stderr")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (on a terminal), json (a line per batch), none")
	return cmd
}

func runBackfill(ctx context.Context, opts *BackfillOptions) error {
	st, err := opts.Deps.open(ctx, writeMode(opts.Backfill.DryRun))
	if err != nil {
		return err
	}
	defer st.Close()
	s, format, f := opts.IO, opts.Format, opts.Backfill
	if opts.ShowSQL {
		fmt.Fprintln(s.Err, "-- statements of one backfill batch:")
		for _, q := range st.BackfillStatements() {
			fmt.Fprintf(s.Err, "%s;\n", q)
		}
	}
	if st.Upstream() && !f.DryRun {
		fmt.Fprintln(s.Err, "Note: this is upstream's backend.db. Stop the upstream backend and copy the file aside before backfilling it.")
	}
	if !f.DryRun && !opts.Yes {
		fmt.Fprintf(s.Err, "Rewrite legacy rows in %s? Removed duplicates are archived in kanade_backfill_conflicts. [y/N] ", st.Location())
		answer, _ := bufio.NewReader(s.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return &ExitErr{Code: ExitError, Err: errors.New("not confirmed; nothing was changed")}
		}
	}
	switch {
	case opts.Progress == "json":
		f.Progress = func(p backfill.Progress) {
			fmt.Fprintf(s.Err, `{"scanned":%d,"rewritten":%d,"elapsed_seconds":%.1f}`+"\n", p.Scanned, p.Rewritten, p.Elapsed.Seconds())
		}
	case opts.Progress == "auto" && s.ErrTTY:
		f.Progress = func(p backfill.Progress) {
			fmt.Fprintf(s.Err, "\rscanned %d  rewritten %d  %.0f rows/s ", p.Scanned, p.Rewritten, float64(p.Scanned)/max(p.Elapsed.Seconds(), 1e-9))
		}
	}
	sum, err := backfill.Run(ctx, st, f)
	if f.Progress != nil && opts.Progress == "auto" {
		fmt.Fprintln(s.Err)
	}
	if sum != nil && (err == nil || ctx.Err() != nil) {
		if perr := printBackfill(s, sum, format); perr != nil {
			return perr
		}
	}
	return err
}

func printBackfill(s *output.Streams, sum *backfill.Summary, f output.Format) error {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	rewritten, archived, corrected := "rewritten", "conflicts archived", "counters corrected"
	if sum.DryRun {
		rewritten, archived, corrected = "would be rewritten", "conflicts to archive", "counters to correct"
	}
	fields := []output.Field{
		{Name: "scanned", Title: "scanned", Value: n(sum.Scanned)},
		{Name: "rewritten", Title: rewritten, Value: n(sum.Rewritten)},
		{Name: "collisions", Title: "collisions", Value: n(sum.Collisions)},
		{Name: "conflicts_archived", Title: archived, Value: n(sum.ConflictsArchived)},
		{Name: "counters_corrected", Title: corrected, Value: n(sum.CountersCorrected)},
		{Name: "batches", Value: n(sum.Batches)},
	}
	fields = append(fields, timing(sum.Elapsed, sum.ElapsedSeconds, sum.RatePerSecond, "rows/s")...)
	fields = append(fields, []output.Field{
		{Name: "dry_run", Value: strconv.FormatBool(sum.DryRun)},
		{Name: "resumed", Value: strconv.FormatBool(sum.Resumed)},
		{Name: "complete", Value: strconv.FormatBool(sum.Complete)},
	}...)
	if sum.DryRun {
		fields = append(fields, output.Field{Title: "dry run", Value: "yes: nothing was changed"})
	}
	if sum.Resumed {
		fields = append(fields, output.Field{Title: "resumed", Value: "yes: continued where an interrupted run stopped"})
	}
	if sum.Complete && sum.Scanned == 0 && !sum.Resumed && !f.IsMachine() {
		// Nothing to report but that: a table of zeros says less.
		_, err := fmt.Fprintln(s.Out, "Nothing to do: no legacy rows (result_id = request_id, empty or NULL).")
		return err
	}
	return output.PrintDocument(s, f, output.Document{Title: "BACKFILL", Doc: sum, Fields: fields,
		Footer: func(w io.Writer) error {
			if len(sum.Samples) == 0 {
				return nil
			}
			fmt.Fprintln(w)
			var sample [][]string
			for _, x := range sum.Samples {
				old := x.OldID
				if old == "" {
					old = "(NULL)"
				}
				sample = append(sample, []string{x.Action, old, x.NewID, x.RequestID, x.PCID, x.Reason})
			}
			return output.WriteTable(w, []string{"ACTION", "OLD ID", "NEW OR KEPT ID", "REQUEST ID", "PC", "REASON"}, sample)
		}})
}
