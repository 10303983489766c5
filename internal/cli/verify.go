package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

// VerifyOptions is what `stream verify` runs with.
type VerifyOptions struct {
	Env
	Replay   replay.Options
	Checks   replay.Checks
	Progress string
}

func newVerifyCmd(g *Globals, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
	var f replayFlags
	var limit int
	var only string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Compare a stream window with the tables, writing nothing",
		Long: `verify reads a window of a stream (the same selectors as replay) and checks
each message against the tables: results with no row under their stable id,
rows whose exit code, output or times differ from the message, rows still in
flight although their result is in the stream, messages that replay would
quarantine, and derived rows behind their message (the inventory facts, check
status or feed a message writes, missing or older than it). Memory stays
bounded by --batch. Exit 3 on any difference of the kinds checked; --only
checks some (a scheduled check can leave out would_be_quarantined, which a
payload upstream itself rejects keeps at 3).

Kinds: ` + strings.Join(replay.DiffKinds, ", "),
		Example: `  kanade stream verify --since 24h
  kanade stream verify --from-seq 1000 --to-seq 2000 -o json
  kanade stream verify --only missing_row,row_in_flight,content_differs,derived_row_behind`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd)
			if err != nil {
				return err
			}
			if limit < 1 {
				return usageErrorf(cmd, "--limit must be 1 or more")
			}
			kinds, err := parseOnly(only, replay.DiffKinds)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			return pick(runF, runVerify)(cmd.Context(), &VerifyOptions{Env: g.env(), Replay: o, Checks: replay.Checks{Limit: limit, Only: kinds}, Progress: f.progress})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stream, "stream", streams.Results, "stream to check")
	f.addWindowFlags(fl)
	fl.IntVar(&f.batch, "batch", 5000, "messages read and compared at a time")
	fl.IntVar(&limit, "limit", 20, "differences listed per kind (all are counted)")
	fl.StringVar(&only, "only", "", "only these kinds (comma-separated)")
	f.consumer = replay.DefaultConsumer
	return cmd
}

func runVerify(ctx context.Context, opts *VerifyOptions) error {
	o := opts.Replay
	o.Progress = progressPrinter(opts.IO, opts.Progress)
	js, closeNATS, err := opts.Deps.jetStream()
	if err != nil {
		return err
	}
	defer closeNATS()
	st, err := opts.Deps.open(ctx, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := replay.Verify(ctx, st, js, o, opts.Checks)
	if err != nil {
		return err
	}
	if err := printVerify(opts.IO, opts.Format, rep); err != nil {
		return err
	}
	if rep.Total > 0 {
		return &ExitErr{Code: ExitFindings}
	}
	return nil
}

func printVerify(s *output.Streams, f output.Format, rep *replay.VerifyReport) error {
	type c = output.Column[replay.Difference]
	kind := func(d replay.Difference) string { return d.Kind }
	seq := func(d replay.Difference) string { return strconv.FormatUint(d.Seq, 10) }
	subject := func(d replay.Difference) string { return d.Subject }
	resultID := func(d replay.Difference) string { return d.ResultID }
	pc := func(d replay.Difference) string { return d.PCID }
	detail := func(d replay.Difference) string { return d.Detail }
	return output.PrintList(s, f, output.List[replay.Difference]{
		Columns: []c{
			{Name: "kind", Title: "KIND", Cell: kind, CSV: kind},
			{Name: "seq", Title: "SEQ", Cell: seq, CSV: seq},
			{Name: "subject", Title: "SUBJECT", Wide: true, Cell: subject, CSV: subject},
			{Name: "result_id", Title: "RESULT ID", Cell: resultID, CSV: resultID},
			{Name: "pc_id", Title: "PC", Cell: pc, CSV: pc},
			{Name: "detail", Title: "DETAIL", Fit: true, Cell: detail, CSV: detail},
		},
		Doc:   rep,
		Items: rep.Differences,
		Header: func(w io.Writer) error {
			fmt.Fprintf(w, "Checked %d messages of %s (sequences %d..%d).\n\n", rep.Checked, rep.Plan.Stream, rep.Plan.FromSeq, rep.Plan.ToSeq)
			var counts [][]string
			for _, k := range replay.DiffKinds {
				if n, checked := rep.Counts[k]; checked {
					counts = append(counts, []string{k, strconv.FormatInt(n, 10)})
				}
			}
			if err := output.WriteTable(w, []string{"CHECK", "DIFFERENCES"}, counts); err != nil {
				return err
			}
			_, err := fmt.Fprintln(w)
			return err
		},
		Empty: "The tables match the stream.",
		Footer: func(w io.Writer) error {
			if len(rep.Differences) == 0 {
				return nil
			}
			_, err := io.WriteString(w, repairAdvice(rep))
			return err
		},
	})
}

// repairAdvice says, for each kind of difference found, what mends it:
// a replay of the same window writes what is missing and, by upstream's
// rules, changes nothing that is finished, so it cannot mend the rest.
func repairAdvice(rep *replay.VerifyReport) string {
	p := rep.Plan
	window := fmt.Sprintf("kanade stream replay --stream %s --from-seq %d --to-seq %d", p.Stream, p.FromSeq, p.ToSeq)
	for _, s := range p.Subjects {
		window += " --subject " + shellQuote(s)
	}
	var b strings.Builder
	b.WriteString("\nTo repair:\n")
	if rep.Counts[replay.DiffMissing]+rep.Counts[replay.DiffInFlight]+rep.Counts[replay.DiffDerived] > 0 {
		fmt.Fprintf(&b, "  missing, in-flight and derived rows: %s\n    writes them and leaves every finished row as it is.\n", window)
	}
	if rep.Counts[replay.DiffQuarantined] > 0 {
		fmt.Fprintf(&b, "  messages replay cannot project: a replay keeps them in kanade_quarantine; fix what the detail names\n"+
			"    (a missing overflow object, say), then kanade stream replay --stream %s --only-quarantined.\n"+
			"    A payload upstream itself rejects cannot be projected by either; it stays in the quarantine.\n", p.Stream)
	}
	if rep.Counts[replay.DiffContent] > 0 {
		b.WriteString("  content differences: upstream never overwrites a finished row, so a replay leaves these as they are;\n" +
			"    compare the row (kanade results show --result-id ID) with the message before changing anything.\n")
	}
	return b.String()
}
