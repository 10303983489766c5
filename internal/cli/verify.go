package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

func newVerifyCmd(g *Globals) *cobra.Command {
	var f replayFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Compare a stream window with the tables, writing nothing",
		Long: `verify reads a window of a stream (the same selectors as replay) and checks
each message against the tables: results with no row under their stable id,
rows whose exit code, output or times differ from the message, rows still in
flight although their result is in the stream, messages that replay would
quarantine, and derived rows behind their message (the inventory facts, check
status or feed a message writes, missing or older than it). Memory stays
bounded by --batch. Exit 3 on any difference.`,
		Example: `  kanade stream verify --since 24h
  kanade stream verify --from-seq 1000 --to-seq 2000 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd)
			if err != nil {
				return err
			}
			if limit < 1 {
				return usageErrorf(cmd, "--limit must be 1 or more")
			}
			o.Progress = progressPrinter(g.streams, f.progress)
			return runVerify(cmd.Context(), g, o, limit)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stream, "stream", streams.Results, "stream to check")
	f.addWindowFlags(fl)
	fl.IntVar(&f.batch, "batch", 5000, "messages read and compared at a time")
	fl.IntVar(&limit, "limit", 20, "differences listed per kind (all are counted)")
	f.consumer = replay.DefaultConsumer
	return cmd
}

func runVerify(ctx context.Context, g *Globals, o replay.Options, limit int) error {
	js, closeNATS, err := connectJS(g)
	if err != nil {
		return err
	}
	defer closeNATS()
	st, err := g.openReader(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := replay.Verify(ctx, st, js, o, limit)
	if err != nil {
		return err
	}
	s := g.streams
	switch g.format() {
	case output.JSON:
		err = output.WriteJSON(s.Out, rep)
	case output.YAML:
		err = output.WriteYAML(s.Out, rep)
	case output.JSONL:
		err = output.WriteJSONL(s.Out, rep.Differences)
	case output.CSV:
		var rows [][]string
		for _, d := range rep.Differences {
			rows = append(rows, []string{d.Kind, strconv.FormatUint(d.Seq, 10), d.Subject, d.ResultID, d.PCID, d.Detail})
		}
		err = output.WriteCSV(s.Out, []string{"kind", "seq", "subject", "result_id", "pc_id", "detail"}, rows)
	default:
		fmt.Fprintf(s.Out, "Checked %d messages of %s (sequences %d..%d).\n\n", rep.Checked, rep.Plan.Stream, rep.Plan.FromSeq, rep.Plan.ToSeq)
		var counts [][]string
		for _, k := range replay.DiffKinds {
			counts = append(counts, []string{k, strconv.FormatInt(rep.Counts[k], 10)})
		}
		if err = output.WriteTable(s.Out, []string{"CHECK", "DIFFERENCES"}, counts); err != nil {
			return err
		}
		if rep.Total == 0 {
			fmt.Fprintln(s.Out, "\nThe tables match the stream.")
			break
		}
		var rows [][]string
		for _, d := range rep.Differences {
			rows = append(rows, []string{d.Kind, strconv.FormatUint(d.Seq, 10), d.ResultID, d.PCID, d.Detail})
		}
		fmt.Fprintln(s.Out)
		err = output.WriteTable(s.Out, []string{"KIND", "SEQ", "RESULT ID", "PC", "DETAIL"}, rows)
		if err == nil {
			fmt.Fprintln(s.Out, "\nTo repair: kanade stream replay (missing rows, in-flight rows); content differences need a look first.")
		}
	}
	if err != nil {
		return err
	}
	if rep.Total > 0 {
		return &ExitErr{Code: ExitFindings}
	}
	return nil
}
