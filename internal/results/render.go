package results

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/output"
)

// RenderOptions control how a view prints.
type RenderOptions struct {
	Format         output.Format
	Stdout, Stderr bool
	// PCs is the --pc filter, for the table's word when no row is left.
	PCs []string
}

var statusColor = map[string]string{StatusOK: "32", StatusFailed: "31", StatusReaped: "35", StatusRunning: "33", StatusSkipped: "36"}

// Render prints v in the chosen format.
func Render(s *output.Streams, v *View, o RenderOptions) error {
	// Off a terminal a plain table caps the output line so the table keeps
	// one shape; on one the printer fits it to the width; -o wide shows it
	// whole.
	lineLimit := 0
	if s.Width == 0 && o.Format != output.Wide {
		lineLimit = 60
	}
	rows := make([]showRow, 0, len(v.Results))
	var wide []showRow
	for _, r := range v.Results {
		pc := r.PCID
		if len(r.OtherResultIDs) > 0 {
			pc += " (+" + strconv.Itoa(len(r.OtherResultIDs)) + ")"
		}
		rows = append(rows, showRow{r, pc})
		// -o wide lists a PC's duplicate rows under it.
		for i, x := range r.All {
			if i == 0 {
				wide = append(wide, showRow{x, pc})
			} else {
				wide = append(wide, showRow{x, "  ↳ " + x.PCID})
			}
		}
	}
	l := output.List[showRow]{
		Columns:   showColumns(lineLimit),
		Doc:       v,
		Items:     rows,
		WideItems: wide,
		Header: func(w io.Writer) error {
			writeSummary(w, &v.Summary)
			_, err := fmt.Fprintln(w)
			return err
		},
		Empty: "No PC has reported yet.",
	}
	if len(o.PCs) > 0 {
		l.Empty = "No result from " + strings.Join(o.PCs, ", ") + " (not reported, or a name not written as its agent writes it)."
	}
	if len(v.absent) > 0 {
		var b strings.Builder
		for _, a := range v.absent {
			fmt.Fprintf(&b, "No result from %s (not reported, or a name not written as its agent writes it", a.name)
			if len(a.sameButCase) > 0 {
				fmt.Fprintf(&b, "; %s has results here: names are matched as written", strings.Join(a.sameButCase, ", "))
			}
			b.WriteString(").\n")
		}
		notes := strings.TrimSuffix(b.String(), "\n")
		if len(v.Results) == 0 {
			l.Empty = notes
		} else {
			l.Footer = func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "\n%s\n", notes)
				return err
			}
		}
	}
	if o.Stdout || o.Stderr {
		// With full outputs each row is a block: the row, then its own text.
		l.Detail = func(r showRow) string {
			var b strings.Builder
			if o.Stdout {
				b.WriteString("--- stdout\n" + ensureNL(r.Stdout))
			}
			if o.Stderr {
				b.WriteString("--- stderr\n" + ensureNL(r.Stderr))
			}
			return b.String()
		}
	}
	return output.PrintList(s, o.Format, l)
}

// showRow is one table row of `results show`: a result and its PC cell
// ("PC (+2)" for a PC with duplicate rows, "  ↳ PC" for a duplicate).
type showRow struct {
	Result
	pc string
}

// showColumns describes `results show`'s records; lineLimit caps the
// output line in runes (0: whole).
func showColumns(lineLimit int) []output.Column[showRow] {
	type c = output.Column[showRow]
	nano := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	return []c{
		{Name: "pc_id", Title: "PC", Cell: func(r showRow) string { return r.pc }, CSV: func(r showRow) string { return r.PCID }},
		{Name: "status", Title: "STATUS", Cell: func(r showRow) string { return r.Status }, CSV: func(r showRow) string { return r.Status },
			Color: func(r showRow) string { return statusColor[r.Status] }},
		{Name: "exit_code", Title: "EXIT", Cell: func(r showRow) string { return exitText(r.ExitCode) }, CSV: func(r showRow) string {
			if r.ExitCode == nil {
				return ""
			}
			return strconv.Itoa(int(*r.ExitCode))
		}},
		{Name: "duration_ms", Title: "DURATION", Cell: func(r showRow) string { return durText(r.DurationMs) }, CSV: func(r showRow) string {
			if r.DurationMs == nil {
				return ""
			}
			return strconv.FormatInt(*r.DurationMs, 10)
		}},
		{Name: "started_at", Title: "STARTED", Wide: true, Cell: func(r showRow) string { return r.StartedAt.Format(time.RFC3339) },
			CSV: func(r showRow) string { return nano(r.StartedAt) }},
		{Name: "finished_at", Title: "FINISHED", Cell: func(r showRow) string { return timeText(r.FinishedAt) }, CSV: func(r showRow) string {
			if r.FinishedAt == nil {
				return ""
			}
			return nano(*r.FinishedAt)
		}},
		{Name: "recorded_at", Title: "RECORDED", Wide: true, Cell: func(r showRow) string { return r.RecordedAt.Format(time.RFC3339) }},
		{Name: "result_id", Title: "RESULT ID", Cell: func(r showRow) string { return r.ResultID }, CSV: func(r showRow) string { return r.ResultID }},
		{Name: "request_id", Title: "REQUEST ID", Wide: true, Cell: func(r showRow) string { return r.RequestID }, CSV: func(r showRow) string { return r.RequestID }},
		{Name: "exec_id", CSV: func(r showRow) string { return deref(r.ExecID) }},
		{Name: "manifest_id", Title: "MANIFEST", Wide: true, Cell: func(r showRow) string { return deref(r.ManifestID) },
			CSV: func(r showRow) string { return deref(r.ManifestID) }},
		{Name: "output", Title: "OUTPUT", Fit: true, Cell: func(r showRow) string { return firstLine(r.Result, lineLimit) }},
		{Name: "stdout", CSV: func(r showRow) string { return r.Stdout }},
		{Name: "stderr", CSV: func(r showRow) string { return r.Stderr }},
	}
}

func writeSummary(w io.Writer, s *Summary) {
	switch {
	case s.ExecID != nil:
		fmt.Fprintf(w, "Execution %s", *s.ExecID)
		if s.ManifestID != nil && s.Version != nil {
			fmt.Fprintf(w, ": %s %s", *s.ManifestID, *s.Version)
		}
		if s.InitiatedBy != nil {
			fmt.Fprintf(w, ", started by %s at %s", *s.InitiatedBy, s.InitiatedAt.UTC().Format(time.RFC3339))
		}
		if s.Status != nil {
			fmt.Fprintf(w, ", status %s", *s.Status)
		}
		fmt.Fprintln(w)
	case s.RequestID != nil:
		fmt.Fprintf(w, "Request %s", *s.RequestID)
		if s.ManifestID != nil {
			fmt.Fprintf(w, ": %s", *s.ManifestID)
		}
		fmt.Fprintln(w)
	case s.ResultID != nil:
		fmt.Fprintf(w, "Result %s\n", *s.ResultID)
	}
	target, missing := "?", "?"
	if s.Target != nil {
		target = strconv.FormatInt(*s.Target, 10)
	}
	if s.Missing != nil {
		missing = strconv.FormatInt(*s.Missing, 10)
	}
	fmt.Fprintf(w, "target %s  reported %d  ok %d  failed %d  skipped %d  running %d  reaped %d  missing %s",
		target, s.Reported, s.Succeeded, s.Failed, s.Skipped, s.InFlight, s.Reaped, missing)
	if s.DuplicatePCs > 0 {
		fmt.Fprintf(w, "  (%d PCs with more than one row: legacy duplicates, see `kanade results backfill`)", s.DuplicatePCs)
	}
	fmt.Fprintln(w)
	if s.untagged > 0 && s.SuccessCount != nil && s.FailureCount != nil {
		// Without this a deployment whose PCs all answered can read
		// "status running": upstream counts only results with its exec_id.
		what := "of these results carry"
		if s.untagged == 1 {
			what = "of these results carries"
		}
		fmt.Fprintf(w, "%d %s no exec_id (agents older than v0.29): upstream's counters (success %d, failure %d) and its status leave them out\n",
			s.untagged, what, *s.SuccessCount, *s.FailureCount)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func exitText(c *int32) string {
	if c == nil {
		return "-"
	}
	return strconv.Itoa(int(*c))
}

func durText(ms *int64) string {
	if ms == nil {
		return "-"
	}
	d := time.Duration(*ms) * time.Millisecond
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return d.Round(time.Second).String()
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// firstLine is the first non-empty line of stdout, or of stderr for a run
// that did not succeed, shortened for a table cell.
// firstLine is the line of output a table shows for a result: the first
// non-blank line of stdout (of stderr when the run did not succeed). limit
// caps it in runes (0: whole), for tables with no terminal to fit.
func firstLine(r Result, limit int) string {
	text := r.Stdout
	if r.Status != StatusOK && strings.TrimSpace(r.Stderr) != "" {
		text = r.Stderr
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line != "" {
			if limit > 0 && len([]rune(line)) > limit {
				line = string([]rune(line)[:limit-1]) + "…"
			}
			return line
		}
	}
	return ""
}

func ensureNL(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// RenderList prints a page of `results list`.
func RenderList(s *output.Streams, p *Page, f output.Format) error {
	return output.PrintList(s, f, output.List[Item]{
		Columns: listColumns(),
		Doc:     p,
		Items:   p.Items,
		Empty:   "No executions or requests match.",
		Footer: func(w io.Writer) error {
			if slices.ContainsFunc(p.Items, func(it Item) bool { return it.Untagged > 0 }) {
				fmt.Fprintln(w, "\n*: some PCs answered without the exec_id (agents older than v0.29); upstream's counters and status leave them out.")
			}
			if p.NextAfter == "" {
				return nil
			}
			next := p.NextCommand
			if next == "" {
				next = "kanade results list --after " + p.NextAfter
			}
			_, err := fmt.Fprintf(s.Err, "More: %s\n", next)
			return err
		},
	})
}

func listColumns() []output.Column[Item] {
	type c = output.Column[Item]
	// In a table a missing number is "-"; in CSV, an empty cell.
	dash := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatInt(*v, 10)
	}
	cell := func(v *int64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatInt(*v, 10)
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	nano := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	str := func(get func(Item) *string) func(Item) string {
		return func(it Item) string { return deref(get(it)) }
	}
	count := func(name, title string, get func(Item) int64) c {
		return c{Name: name, Title: title, Cell: func(it Item) string { return n(get(it)) }, CSV: func(it Item) string { return n(get(it)) }}
	}
	return []c{
		{Title: "ID", Cell: func(it Item) string {
			if it.ExecID != nil {
				return *it.ExecID
			}
			return it.RequestID
		}},
		{Name: "kind", Title: "KIND", Cell: func(it Item) string { return it.Kind }, CSV: func(it Item) string { return it.Kind }},
		{Name: "exec_id", CSV: str(func(it Item) *string { return it.ExecID })},
		{Name: "request_id", CSV: func(it Item) string { return it.RequestID }},
		{Name: "manifest_id", Title: "MANIFEST", Cell: str(func(it Item) *string { return it.ManifestID }),
			CSV: str(func(it Item) *string { return it.ManifestID })},
		{Name: "version", CSV: str(func(it Item) *string { return it.Version })},
		{Name: "initiated_by", CSV: str(func(it Item) *string { return it.InitiatedBy })},
		{Name: "initiated_at", CSV: func(it Item) string {
			if it.InitiatedAt == nil {
				return ""
			}
			return nano(*it.InitiatedAt)
		}},
		{Name: "status", Title: "STATUS", Cell: func(it Item) string {
			if it.Untagged > 0 {
				return it.Status + "*" // the footer says why
			}
			return it.Status
		}, CSV: func(it Item) string { return it.Status }, Color: func(it Item) string { return listStatusColor[it.Status] }},
		{Name: "started_at", Title: "STARTED", Cell: func(it Item) string { return it.StartedAt.Format(time.RFC3339) },
			CSV: func(it Item) string { return nano(it.StartedAt) }},
		{Name: "last_recorded_at", CSV: func(it Item) string { return nano(it.LastAt) }},
		{Name: "target", Title: "TARGET", Cell: func(it Item) string { return dash(it.Target) }, CSV: func(it Item) string { return cell(it.Target) }},
		count("reported", "REPORTED", func(it Item) int64 { return it.Reported }),
		count("succeeded", "OK", func(it Item) int64 { return it.Succeeded }),
		count("failed", "FAILED", func(it Item) int64 { return it.Failed }),
		count("skipped", "SKIPPED", func(it Item) int64 { return it.Skipped }),
		count("in_flight", "RUNNING", func(it Item) int64 { return it.InFlight }),
		count("reaped", "REAPED", func(it Item) int64 { return it.Reaped }),
		{Name: "missing", Title: "MISSING", Cell: func(it Item) string { return dash(it.Missing) }, CSV: func(it Item) string { return cell(it.Missing) }},
		{Name: "untagged", CSV: func(it Item) string { return n(it.Untagged) }},
		{Title: "REQUEST ID", Wide: true, Cell: func(it Item) string { return it.RequestID }},
		{Title: "LAST RESULT", Wide: true, Cell: func(it Item) string { return it.LastAt.Format(time.RFC3339) }},
		{Title: "BY", Wide: true, Cell: str(func(it Item) *string { return it.InitiatedBy })},
	}
}

var listStatusColor = map[string]string{"completed": "32", "running": "33", "pending": "36", "expired": "35"}
