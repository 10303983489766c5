package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/audit"
	"github.com/kanadehq/kanade-cli/internal/output"
)

type auditFlags struct {
	opts       audit.Options
	only, fix  string
	yes        bool
	stale, ttl time.Duration
}

// AuditOptions is what `results audit` runs with.
type AuditOptions struct {
	Env
	Audit audit.Options
	// FixCounters recomputes executions' counters before the audit.
	FixCounters bool
}

func newAuditCmd(g *Globals, runF func(context.Context, *AuditOptions) error) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the tables (read-only): counter drift, legacy rows, duplicates, orphans, stuck executions, unreaped runs",
		Long: `audit checks the database alone and reports each finding with its kind, the
ids involved and a suggested fix. It writes nothing unless --fix counters --yes
is given. Exit 0 when clean, 3 when there are findings, 1 on error.

Kinds: ` + strings.Join(audit.Kinds, ", "),
		Example: `  kanade results audit
  kanade results audit -o jsonl --only counter_drift,legacy_row
  kanade results audit --fix counters --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.opts.Only, err = parseOnly(f.only, audit.Kinds); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if f.fix != "" && f.fix != "counters" {
				return usageErrorf(cmd, "--fix %q: the only repair is counters", f.fix)
			}
			if f.fix != "" && !f.yes {
				return usageErrorf(cmd, "--fix counters rewrites executions rows: add --yes")
			}
			if f.opts.Limit < 1 {
				return usageErrorf(cmd, "--limit must be 1 or more")
			}
			if f.stale <= 0 || f.ttl <= 0 {
				return usageErrorf(cmd, "--stale-after and --in-flight-ttl must be positive durations (e.g. 1h, 24h)")
			}
			f.opts.StaleAfter, f.opts.InFlightTTL = f.stale, f.ttl
			return pick(runF, runAudit)(cmd.Context(), &AuditOptions{Env: g.env(), Audit: f.opts, FixCounters: f.fix == "counters"})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.only, "only", "", "only these kinds (comma-separated)")
	fl.IntVar(&f.opts.Limit, "limit", 100, "findings listed per kind (all are counted)")
	fl.StringVar(&f.fix, "fix", "", "repair: counters (recompute executions counters and status from the rows, in one transaction)")
	fl.BoolVar(&f.yes, "yes", false, "confirm --fix")
	fl.DurationVar(&f.stale, "stale-after", time.Hour, "an execution still running this long after its last target reported is stale")
	fl.DurationVar(&f.ttl, "in-flight-ttl", 24*time.Hour, "a run in flight this long without expires_at should have been reaped")
	return cmd
}

func runAudit(ctx context.Context, opts *AuditOptions) error {
	// Only a repair writes; an audit alone opens the database read-only.
	mode := readOnly
	if opts.FixCounters {
		mode = existing
	}
	st, err := opts.Deps.open(ctx, mode)
	if err != nil {
		return err
	}
	defer st.Close()
	s, format := opts.IO, opts.Format
	if opts.FixCounters {
		changes, err := audit.FixCounters(ctx, st)
		if err != nil {
			return err
		}
		if format.IsMachine() {
			fmt.Fprintf(s.Err, "--fix counters: %d execution(s) changed\n", len(changes))
		} else if len(changes) == 0 {
			fmt.Fprintln(s.Out, "--fix counters: every execution's counters already match its rows.")
		} else {
			var rows [][]string
			for _, c := range changes {
				rows = append(rows, []string{c.ExecID, fmt.Sprintf("%d/%d %s", c.SuccessBefore, c.FailureBefore, c.StatusBefore),
					fmt.Sprintf("%d/%d %s", c.SuccessAfter, c.FailureAfter, c.StatusAfter)})
			}
			fmt.Fprintf(s.Out, "--fix counters changed %d execution(s):\n", len(changes))
			if err := output.WriteTable(s.Out, []string{"EXEC ID", "BEFORE (OK/FAILED STATUS)", "AFTER"}, rows); err != nil {
				return err
			}
			fmt.Fprintln(s.Out)
		}
	}
	r, err := audit.Run(ctx, st, opts.Audit)
	if err != nil {
		return err
	}
	if err := renderAudit(s, r, format); err != nil {
		return err
	}
	if r.Total > 0 {
		return &ExitErr{Code: ExitFindings}
	}
	return nil
}

func renderAudit(s *output.Streams, r *audit.Report, f output.Format) error {
	type c = output.Column[audit.Finding]
	col := func(name, title string, wide, fit bool, get func(audit.Finding) string) c {
		return c{Name: name, Title: title, Wide: wide, Fit: fit, Cell: get, CSV: get}
	}
	return output.PrintList(s, f, output.List[audit.Finding]{
		Columns: []c{
			col("kind", "KIND", false, false, func(x audit.Finding) string { return x.Kind }),
			col("exec_id", "EXEC ID", false, false, func(x audit.Finding) string { return x.ExecID }),
			col("request_id", "REQUEST ID", false, false, func(x audit.Finding) string { return x.RequestID }),
			col("pc_id", "PC ID", false, false, func(x audit.Finding) string { return x.PCID }),
			col("result_id", "RESULT ID", false, false, func(x audit.Finding) string { return x.ResultID }),
			col("detail", "DETAIL", false, true, func(x audit.Finding) string { return x.Detail }),
			col("suggested_fix", "SUGGESTED FIX", true, false, func(x audit.Finding) string { return x.Fix }),
		},
		Doc:   r,
		Items: r.Findings,
		Header: func(w io.Writer) error {
			var counts [][]string
			for _, k := range audit.Kinds {
				if n, ok := r.Counts[k]; ok {
					counts = append(counts, []string{k, strconv.FormatInt(n, 10)})
				}
			}
			if err := output.WriteTable(w, []string{"CHECK", "FINDINGS"}, counts); err != nil {
				return err
			}
			_, err := fmt.Fprintln(w)
			return err
		},
		Empty: "Clean: no findings.",
		Footer: func(w io.Writer) error {
			if n := int64(len(r.Findings)); n > 0 && n < r.Total {
				_, err := fmt.Fprintf(w, "(%d of %d findings listed; --limit raises the number per kind)\n", n, r.Total)
				return err
			}
			return nil
		},
	})
}

// parseOnly validates an --only list of the kinds a command checks
// (results audit, stream verify).
func parseOnly(value string, kinds []string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	var out []string
	for _, k := range strings.Split(value, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(kinds, k) {
			return nil, fmt.Errorf("--only %q: unknown kind; use %s", k, strings.Join(kinds, ", "))
		}
		out = append(out, k)
	}
	return out, nil
}
