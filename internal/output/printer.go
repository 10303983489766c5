package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
)

// Column describes one field of a command's records once; every -o format
// is drawn from the description.
//
// A column is in tables when it has a Title (with -o wide only when Wide
// is set) and in CSV when it has a CSV cell, under its Name. Where a table
// and the CSV schema want a field at different places, or written
// differently for people, two columns say so: one with a Title only and
// one with a Name and CSV only.
type Column[T any] struct {
	// Name is the field's machine name: the CSV header, as in the JSON.
	Name string
	// Title is the table header; empty leaves the column out of tables.
	Title string
	// Wide puts the column in -o wide tables only.
	Wide bool
	// Cell is the table cell, written for people ("-" for nothing).
	Cell func(T) string
	// CSV is the CSV cell (an empty cell for nothing); nil leaves the
	// column out of CSV.
	CSV func(T) string
	// Color is the ANSI colour code of a table cell ("" for none); it is
	// used only on a terminal and without NO_COLOR.
	Color func(T) string
	// Fit marks the free-text column that gives way so a table fits the
	// terminal (cut cells end in "…"); at most one column has it.
	Fit bool
}

// List is what a command that prints records hands the printer: the
// document, its records and how to describe them.
//
// json and yaml print Doc; jsonl prints one record per line (Doc on one
// line when OneLine is set, for a document whose list is a detail); csv
// prints a header of column names and one row per record; table and wide
// print Header, then the table (or Empty when there are no records), then
// Footer.
type List[T any] struct {
	Columns []Column[T]
	Doc     any
	Items   []T
	OneLine bool
	// WideItems, when set, are the records of a wide table (one per row,
	// where wide shows more rows than there are records).
	WideItems []T
	Header    func(w io.Writer) error
	Empty     string
	Footer    func(w io.Writer) error
	// Detail, when set, follows each table row with its own text (the
	// row then prints as a table of its own).
	Detail func(T) string
}

// PrintList prints l in format f on s.Out.
func PrintList[T any](s *Streams, f Format, l List[T]) error {
	w := s.Out
	switch f {
	case JSON:
		return WriteJSON(w, l.Doc)
	case YAML:
		return WriteYAML(w, l.Doc)
	case JSONL:
		if l.OneLine {
			return WriteJSONL(w, []any{l.Doc})
		}
		return WriteJSONL(w, l.Items)
	case CSV:
		var header []string
		for _, c := range l.Columns {
			if c.CSV != nil {
				header = append(header, c.Name)
			}
		}
		rows := make([][]string, 0, len(l.Items))
		for _, it := range l.Items {
			row := make([]string, 0, len(header))
			for _, c := range l.Columns {
				if c.CSV != nil {
					row = append(row, c.CSV(it))
				}
			}
			rows = append(rows, row)
		}
		return WriteCSV(w, header, rows)
	case Table, Wide:
		return printTable(s, f == Wide, l)
	}
	return fmt.Errorf("-o %q is not a known format: use one of %s", f, strings.Join(Formats, ", "))
}

func printTable[T any](s *Streams, wide bool, l List[T]) error {
	w := s.Out
	if l.Header != nil {
		if err := l.Header(w); err != nil {
			return err
		}
	}
	items := l.Items
	if wide && l.WideItems != nil {
		items = l.WideItems
	}
	if len(items) == 0 {
		if l.Empty != "" {
			if _, err := fmt.Fprintln(w, l.Empty); err != nil {
				return err
			}
		}
	} else if err := writeRows(s, wide, l, items); err != nil {
		return err
	}
	if l.Footer != nil {
		return l.Footer(w)
	}
	return nil
}

func writeRows[T any](s *Streams, wide bool, l List[T], items []T) error {
	var cols []Column[T]
	fit := -1
	for _, c := range l.Columns {
		if c.Title == "" || (c.Wide && !wide) {
			continue
		}
		if c.Fit {
			fit = len(cols)
		}
		cols = append(cols, c)
	}
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.Title
	}
	rows := make([][]string, len(items))
	for r, it := range items {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.Cell(it)
			if c.Color != nil {
				row[i] = s.Color(c.Color(it), row[i])
			}
		}
		rows[r] = row
	}
	// -o wide shows everything; a plain table gives way to the terminal.
	if fit >= 0 && !wide {
		rows = fitColumn(s.Width, header, rows, fit)
	}
	if l.Detail == nil {
		return WriteTable(s.Out, header, rows)
	}
	for r, it := range items {
		if err := WriteTable(s.Out, header, rows[r:r+1]); err != nil {
			return err
		}
		if _, err := fmt.Fprintln(s.Out, l.Detail(it)); err != nil {
			return err
		}
	}
	return nil
}

// Field is one line of a summary document.
type Field struct {
	// Name is the machine name (the CSV "field" cell): the field's path in
	// the JSON document, such as stats.messages. Empty leaves the line out
	// of CSV (a table line that joins two fields for people).
	Name string
	// Title is what a table calls it; empty leaves the line out of tables.
	Title string
	Value string
}

// Document is what a command that prints one summary hands the printer.
// json and yaml print Doc, jsonl prints it on one line, csv prints its
// fields as field,value rows, and table and wide print a two-column table
// headed by Title, then Footer.
type Document struct {
	Title  string
	Doc    any
	Fields []Field
	Footer func(w io.Writer) error
}

// PrintDocument prints d in format f on s.Out.
func PrintDocument(s *Streams, f Format, d Document) error {
	cols := []Column[Field]{
		{Name: "field", CSV: func(x Field) string { return x.Name }},
		{Title: d.Title, Cell: func(x Field) string { return x.Title }},
		{Name: "value", Title: " ", Cell: func(x Field) string { return x.Value }, CSV: func(x Field) string { return x.Value }},
	}
	var fields []Field
	for _, x := range d.Fields {
		if (f == CSV && x.Name != "") || (f != CSV && x.Title != "") {
			fields = append(fields, x)
		}
	}
	return PrintList(s, f, List[Field]{Columns: cols, Doc: d.Doc, Items: fields, OneLine: true, Footer: d.Footer})
}

// fitColumn shortens column col (a table's free text: an output line, a
// detail) so that the table fits width columns, ending cut cells in "…".
// It leaves the rows as they are when width is 0 (not a terminal) or when
// even the other columns do not fit.
func fitColumn(width int, header []string, rows [][]string, col int) [][]string {
	if width <= 0 || col < 0 || col >= len(header) {
		return rows
	}
	widths := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], displayWidth(c))
		}
	}
	used := 0
	for i, w := range widths {
		if i != col {
			used += w
		}
		if i < len(widths)-1 {
			used += columnGap
		}
	}
	room := width - used
	if widths[col] <= room || room < 8 {
		return rows
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = r
		if displayWidth(r[col]) > room {
			out[i] = append([]string(nil), r...)
			out[i][col] = runewidth.Truncate(r[col], room, "…")
		}
	}
	return out
}
