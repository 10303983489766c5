package output_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/output"
)

type rec struct {
	Name string `json:"name"`
	N    int    `json:"count"`
	Note string `json:"note"`
}

func list(items []rec) output.List[rec] {
	name := func(r rec) string { return r.Name }
	return output.List[rec]{
		Columns: []output.Column[rec]{
			{Name: "name", Title: "NAME", Cell: name, CSV: name, Color: func(rec) string { return "31" }},
			{Name: "n", Title: "N", Wide: true, Cell: func(r rec) string { return strings.Repeat("#", r.N) },
				CSV: func(r rec) string { return string(rune('0' + r.N)) }},
			{Name: "secret", CSV: func(rec) string { return "csv-only" }},
			{Title: "LABEL", Cell: func(r rec) string { return "<" + r.Name + ">" }},
			{Name: "note", Title: "NOTE", Fit: true, Cell: func(r rec) string { return r.Note }, CSV: func(r rec) string { return r.Note }},
		},
		Doc:    map[string]any{"items": items},
		Items:  items,
		Header: func(w io.Writer) error { _, err := io.WriteString(w, "head\n"); return err },
		Empty:  "nothing",
		Footer: func(w io.Writer) error { _, err := io.WriteString(w, "foot\n"); return err },
	}
}

func print(t *testing.T, s *output.Streams, f output.Format, l output.List[rec]) string {
	t.Helper()
	var out bytes.Buffer
	s.Out, s.Err = &out, &out
	if err := output.PrintList(s, f, l); err != nil {
		t.Fatalf("-o %s: %v", f, err)
	}
	return out.String()
}

// One description gives every format: tables take the titled columns
// (wide ones with -o wide only), CSV the named ones in their order, jsonl
// one record per line; colour only on a terminal without NO_COLOR; the
// free-text column gives way to the terminal's width.
func TestPrintListFormats(t *testing.T) {
	items := []rec{{Name: "a", N: 2, Note: "short"}, {Name: "b", N: 3, Note: strings.Repeat("long note ", 10)}}
	plain := &output.Streams{}
	for f, want := range map[output.Format]string{
		output.Table: "head\nNAME   LABEL   NOTE\na      <a>     short\nb      <b>     " + strings.TrimSpace(items[1].Note) + "\nfoot\n",
		output.Wide:  "head\nNAME   N     LABEL   NOTE\na      ##    <a>     short\nb      ###   <b>     " + strings.TrimSpace(items[1].Note) + "\nfoot\n",
		output.CSV:   "name,n,secret,note\na,2,csv-only,short\nb,3,csv-only," + items[1].Note + "\n",
		output.JSONL: `{"name":"a","count":2,"note":"short"}` + "\n" + `{"name":"b","count":3,"note":"` + items[1].Note + `"}` + "\n",
		output.JSON:  "{\n  \"items\": [\n    {\n      \"name\": \"a\",\n      \"count\": 2,\n      \"note\": \"short\"\n    },\n    {\n      \"name\": \"b\",\n      \"count\": 3,\n      \"note\": \"" + items[1].Note + "\"\n    }\n  ]\n}\n",
		output.YAML:  "items:\n  - count: 2\n    name: a\n    note: short\n  - count: 3\n    name: b\n    note: '" + items[1].Note + "'\n",
	} {
		if got := print(t, plain, f, list(items)); got != want {
			t.Errorf("-o %s:\n%s\nwant:\n%s", f, got, want)
		}
	}

	tty := &output.Streams{OutTTY: true, Width: 40}
	got := print(t, tty, output.Table, list(items))
	if !strings.Contains(got, "\x1b[31ma\x1b[0m") {
		t.Errorf("a terminal gets colour:\n%q", got)
	}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		if w := len([]rune(l)) - strings.Count(l, "\x1b[31m")*5 - strings.Count(l, "\x1b[0m")*4; w > 40 {
			t.Errorf("line of %d columns on a 40-column terminal: %q", w, l)
		}
	}
	if !strings.Contains(got, "…") {
		t.Errorf("the free text gives way with an ellipsis:\n%s", got)
	}
	if got := print(t, &output.Streams{OutTTY: true, NoColor: true}, output.Table, list(items)); strings.Contains(got, "\x1b[") {
		t.Errorf("NO_COLOR: %q", got)
	}
	if got := print(t, plain, output.Table, list(nil)); got != "head\nnothing\nfoot\n" {
		t.Errorf("no records: %q", got)
	}
	if got := print(t, plain, output.CSV, list(nil)); got != "name,n,secret,note\n" {
		t.Errorf("no records in CSV keeps the header: %q", got)
	}
	if err := output.PrintList(plain, output.Format("xml"), list(items)); err == nil {
		t.Error("an unknown format must be refused")
	}

	one := list(items)
	one.OneLine = true
	if got := print(t, plain, output.JSONL, one); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, `{"items":[`) {
		t.Errorf("OneLine prints the document on one line: %q", got)
	}
	detail := list(items[:1])
	detail.Detail = func(r rec) string { return "--- " + r.Name + "\n" }
	if got := print(t, plain, output.Table, detail); got != "head\nNAME   LABEL   NOTE\na      <a>     short\n--- a\n\nfoot\n" {
		t.Errorf("Detail follows each row: %q", got)
	}
}

// A document's lines go to the formats they name: a line without a machine
// name is for people only, one without a title for scripts only.
func TestPrintDocument(t *testing.T) {
	d := output.Document{Title: "SUMMARY", Doc: map[string]int{"a": 1, "b": 2}, Fields: []output.Field{
		{Name: "a", Title: "a things", Value: "1"},
		{Title: "a and b", Value: "1 / 2"},
		{Name: "b", Value: "2"},
	}}
	for f, want := range map[output.Format]string{
		output.Table: "SUMMARY\na things   1\na and b    1 / 2\n",
		output.CSV:   "field,value\na,1\nb,2\n",
		output.JSONL: `{"a":1,"b":2}` + "\n",
	} {
		var out bytes.Buffer
		if err := output.PrintDocument(&output.Streams{Out: &out}, f, d); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("-o %s: %q, want %q", f, out.String(), want)
		}
	}
}
