package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// The machine formats are documented in docs/output-schemas.md, each in a
// fenced block:
//
//	```fields results show -o json
//	summary.exec_id        string null
//	results[].exit_code    number null
//	```
//
// (a path and the JSON types it may have), or for CSV the header row:
//
//	```csv results show -o csv
//	pc_id,status,...
//	```
//
// `schema NAME` checks the last command's stdout against block NAME:
// every field the output has is documented with its type, and every
// documented field appears. For jsonl every line is checked.

type schemaBlock struct {
	kind   string              // fields or csv
	fields map[string][]string // path -> allowed types
	header []string
}

func loadSchemas() (map[string]schemaBlock, error) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "output-schemas.md"))
	if err != nil {
		return nil, err
	}
	out := map[string]schemaBlock{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var cur *schemaBlock
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && (strings.HasPrefix(line, "```fields ") || strings.HasPrefix(line, "```csv ")):
			kind, n, _ := strings.Cut(strings.TrimPrefix(line, "```"), " ")
			cur, name = &schemaBlock{kind: kind, fields: map[string][]string{}}, strings.TrimSpace(n)
		case cur != nil && strings.HasPrefix(line, "```"):
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("output-schemas.md: block %q twice", name)
			}
			out[name] = *cur
			cur = nil
		case cur != nil && cur.kind == "csv" && strings.TrimSpace(line) != "":
			cur.header = strings.Split(strings.TrimSpace(line), ",")
		case cur != nil && strings.TrimSpace(line) != "":
			f := strings.Fields(line)
			if len(f) < 2 {
				return nil, fmt.Errorf("output-schemas.md %q: %q needs a path and its types", name, line)
			}
			cur.fields[f[0]] = f[1:]
		}
	}
	return out, sc.Err()
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	default:
		return "object"
	}
}

// walk records every path of v with the types seen there.
func walk(path string, v any, seen map[string]map[string]bool) {
	if path != "" {
		if seen[path] == nil {
			seen[path] = map[string]bool{}
		}
		seen[path][jsonType(v)] = true
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walk(p, e, seen)
		}
	case []any:
		for _, e := range x {
			walk(path+"[]", e, seen)
		}
	}
}

func checkSchema(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: schema 'NAME' (a block of docs/output-schemas.md)")
	}
	blocks, err := loadSchemas()
	ts.Check(err)
	b, ok := blocks[args[0]]
	if !ok {
		ts.Fatalf("docs/output-schemas.md has no block %q", args[0])
	}
	out := ts.ReadFile("stdout")
	if b.kind == "csv" {
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) == 0 {
			ts.Fatalf("stdout is not CSV with a header: %v", err)
		}
		if !slices.Equal(rows[0], b.header) {
			ts.Fatalf("CSV header\n got  %s\n docs %s", strings.Join(rows[0], ","), strings.Join(b.header, ","))
		}
		return
	}
	seen := map[string]map[string]bool{}
	docs := []string{out}
	if strings.Contains(args[0], "jsonl") {
		docs = strings.Split(strings.TrimRight(out, "\n"), "\n")
	}
	for _, d := range docs {
		dec := json.NewDecoder(strings.NewReader(d))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			ts.Fatalf("stdout is not JSON: %v\n%s", err, d)
		}
		if dec.More() {
			ts.Fatalf("more than one JSON document where one was expected:\n%s", d)
		}
		walk("", v, seen)
	}
	var problems []string
	for path, types := range seen {
		allowed, ok := b.fields[path]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is in the output but not documented", path))
			continue
		}
		for t := range types {
			if !slices.Contains(allowed, t) {
				problems = append(problems, fmt.Sprintf("%s is %s; the docs allow %s", path, t, strings.Join(allowed, " ")))
			}
		}
	}
	for path := range b.fields {
		if seen[path] == nil && !strings.Contains(path, "[]") {
			problems = append(problems, fmt.Sprintf("%s is documented but not in the output", path))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		ts.Fatalf("output differs from docs/output-schemas.md %q:\n  %s", args[0], strings.Join(problems, "\n  "))
	}
}
