package results

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/output"
)

// RenderOptions control how a view prints.
type RenderOptions struct {
	Format         output.Format
	Stdout, Stderr bool
}

var statusColor = map[string]string{StatusOK: "32", StatusFailed: "31", StatusReaped: "35", StatusRunning: "33", StatusSkipped: "36"}

// Render prints v in the chosen format.
func Render(s *output.Streams, v *View, o RenderOptions) error {
	w := s.Out
	switch o.Format {
	case output.JSON:
		return output.WriteJSON(w, v)
	case output.YAML:
		return output.WriteYAML(w, v)
	case output.JSONL:
		return output.WriteJSONL(w, v.Results)
	case output.CSV:
		return output.WriteCSV(w, csvHeader, csvRows(v))
	}
	writeSummary(w, &v.Summary)
	fmt.Fprintln(w)
	if len(v.Results) == 0 {
		fmt.Fprintln(w, "No PC has reported yet.")
		return nil
	}
	header := []string{"PC", "STATUS", "EXIT", "DURATION", "FINISHED", "RESULT ID", "OUTPUT"}
	if o.Format == output.Wide {
		header = []string{"PC", "STATUS", "EXIT", "DURATION", "STARTED", "FINISHED", "RECORDED", "RESULT ID", "REQUEST ID", "MANIFEST", "OUTPUT"}
	}
	// Off a terminal the output line is capped so the table keeps one
	// shape; on one the table is fitted to its width below.
	lineLimit := 60
	if s.Width > 0 {
		lineLimit = 0
	}
	var rows [][]string
	var shown []Result // the result behind each row (wide lists a PC's duplicates too)
	for _, r := range v.Results {
		list := []Result{r}
		if o.Format == output.Wide {
			list = r.All
		}
		for i, x := range list {
			pc := x.PCID
			if len(r.OtherResultIDs) > 0 && i == 0 {
				pc += " (+" + strconv.Itoa(len(r.OtherResultIDs)) + ")"
			} else if i > 0 {
				pc = "  ↳ " + x.PCID
			}
			status := s.Color(statusColor[x.Status], x.Status)
			if o.Format == output.Wide {
				rows = append(rows, []string{pc, status, exitText(x.ExitCode), durText(x.DurationMs), x.StartedAt.Format(time.RFC3339),
					timeText(x.FinishedAt), x.RecordedAt.Format(time.RFC3339), x.ResultID, x.RequestID, deref(x.ManifestID), firstLine(x, 0)})
			} else {
				rows = append(rows, []string{pc, status, exitText(x.ExitCode), durText(x.DurationMs), timeText(x.FinishedAt), x.ResultID, firstLine(x, lineLimit)})
			}
			shown = append(shown, x)
		}
	}
	if o.Format != output.Wide {
		// Fit a terminal: the output line gives way; -o wide shows it all.
		rows = output.FitLastColumn(s.Width, header, rows)
	}
	if !o.Stdout && !o.Stderr {
		return output.WriteTable(w, header, rows)
	}
	// With full outputs each row is a block: the row, then its own text.
	for i, r := range shown {
		if err := output.WriteTable(w, header, rows[i:i+1]); err != nil {
			return err
		}
		if o.Stdout {
			fmt.Fprintf(w, "--- stdout\n%s", ensureNL(r.Stdout))
		}
		if o.Stderr {
			fmt.Fprintf(w, "--- stderr\n%s", ensureNL(r.Stderr))
		}
		fmt.Fprintln(w)
	}
	return nil
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
}

var csvHeader = []string{"pc_id", "status", "exit_code", "duration_ms", "started_at", "finished_at", "result_id", "request_id", "exec_id", "manifest_id", "stdout", "stderr"}

func csvRows(v *View) [][]string {
	var rows [][]string
	for _, r := range v.Results {
		dur := ""
		if r.DurationMs != nil {
			dur = strconv.FormatInt(*r.DurationMs, 10)
		}
		fin := ""
		if r.FinishedAt != nil {
			fin = r.FinishedAt.Format(time.RFC3339Nano)
		}
		code := "" // CSV writes every missing value as an empty cell
		if r.ExitCode != nil {
			code = strconv.FormatInt(int64(*r.ExitCode), 10)
		}
		rows = append(rows, []string{r.PCID, r.Status, code, dur, r.StartedAt.Format(time.RFC3339Nano), fin, r.ResultID, r.RequestID,
			deref(r.ExecID), deref(r.ManifestID), r.Stdout, r.Stderr})
	}
	return rows
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

var listCSVHeader = []string{"kind", "exec_id", "request_id", "manifest_id", "version", "initiated_by", "initiated_at", "status", "started_at",
	"last_recorded_at", "target", "reported", "succeeded", "failed", "skipped", "in_flight", "reaped", "missing"}

// RenderList prints a page of `results list`.
func RenderList(s *output.Streams, p *Page, f output.Format) error {
	w := s.Out
	switch f {
	case output.JSON:
		return output.WriteJSON(w, p)
	case output.YAML:
		return output.WriteYAML(w, p)
	case output.JSONL:
		return output.WriteJSONL(w, p.Items)
	}
	opt := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatInt(*v, 10)
	}
	var rows [][]string
	for _, it := range p.Items {
		id := it.RequestID
		if it.ExecID != nil {
			id = *it.ExecID
		}
		n := strconv.FormatInt
		if f == output.CSV {
			// One empty form in CSV: a missing value is an empty cell.
			cell := func(v *int64) string {
				if v == nil {
					return ""
				}
				return strconv.FormatInt(*v, 10)
			}
			at := ""
			if it.InitiatedAt != nil {
				at = it.InitiatedAt.Format(time.RFC3339Nano)
			}
			rows = append(rows, []string{it.Kind, deref(it.ExecID), it.RequestID, deref(it.ManifestID), deref(it.Version), deref(it.InitiatedBy), at,
				it.Status, it.StartedAt.Format(time.RFC3339Nano), it.LastAt.Format(time.RFC3339Nano), cell(it.Target), n(it.Reported, 10),
				n(it.Succeeded, 10), n(it.Failed, 10), n(it.Skipped, 10), n(it.InFlight, 10), n(it.Reaped, 10), cell(it.Missing)})
			continue
		}
		row := []string{id, it.Kind, deref(it.ManifestID), s.Color(listStatusColor[it.Status], it.Status), it.StartedAt.Format(time.RFC3339),
			opt(it.Target), n(it.Reported, 10), n(it.Succeeded, 10), n(it.Failed, 10), n(it.Skipped, 10), n(it.InFlight, 10), n(it.Reaped, 10), opt(it.Missing)}
		if f == output.Wide {
			row = append(row, it.RequestID, it.LastAt.Format(time.RFC3339), deref(it.InitiatedBy))
		}
		rows = append(rows, row)
	}
	if f == output.CSV {
		return output.WriteCSV(w, listCSVHeader, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "No executions or requests match.")
		return nil
	}
	header := []string{"ID", "KIND", "MANIFEST", "STATUS", "STARTED", "TARGET", "REPORTED", "OK", "FAILED", "SKIPPED", "RUNNING", "REAPED", "MISSING"}
	if f == output.Wide {
		header = append(header, "REQUEST ID", "LAST RESULT", "BY")
	}
	if err := output.WriteTable(w, header, rows); err != nil {
		return err
	}
	if p.NextAfter != "" {
		next := p.NextCommand
		if next == "" {
			next = "kanade results list --after " + p.NextAfter
		}
		fmt.Fprintf(s.Err, "More: %s\n", next)
	}
	return nil
}

var listStatusColor = map[string]string{"completed": "32", "running": "33", "pending": "36", "expired": "35"}
