package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/audit"
	"github.com/kanadehq/kanade-cli/internal/backfill"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// printers are every command's printer, each with a fixed record: a golden
// file per command and format keeps the machine schemas (and the tables
// people read) from changing unnoticed.
func printers() map[string]func(*output.Streams, output.Format) error {
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	first := t0.Add(-time.Hour)
	plan := &replay.Plan{Stream: "RESULTS", Subjects: []string{"results.req-a", "results.req-b"}, StreamCreated: t0.Add(-48*time.Hour + 123456789), FromSeq: 1, ToSeq: 1200,
		Messages: 1200, BytesEstimate: 614400, FirstTime: &first, LastTime: &t0}
	stats := projector.Stats{Messages: 1200, Bytes: 614400, Inserted: 1100, Completed: 40, ReapedReplaced: 2, InFlightCreated: 5, Unchanged: 50,
		CountersMoved: 30, InventoryUpserts: 90, InventorySkipped: 1, HistoryRows: 180, ExplodeRows: 600, CheckUpserts: 90, FeedsReplaced: 3, Quarantined: 3}
	summary := &replay.Summary{Plan: plan, Stats: stats, Elapsed: 1500 * time.Millisecond, ElapsedSeconds: 1.5, RatePerSecond: 800,
		StoppedEarly: true, StopReason: "--max-errors 3 reached at sequence 1200", CheckpointSeq: 1200,
		Warnings: []string{`manifest "inventory-disks": explode "disks": no primary key`}}
	dry := *summary
	dry.DryRun, dry.StoppedEarly, dry.StopReason, dry.Warnings = true, false, "", []string{}
	rebuild := &replay.RebuildReport{Plan: plan, Stats: stats, Carried: 12, Elapsed: 2.5,
		Diff: &store.ShadowDiff{LiveRows: 1110, ShadowRows: 1112, Carried: 12, OnlyLive: 1, OnlyShadow: 3, Changed: 4,
			SampleChanged: []string{"r-1"}, SampleOnlyLive: []string{"r-9"}, ExecutionsDiff: 1,
			SampleCounters: []store.CounterPair{{ExecID: "exec-1", Live: "3/1 running", Shadow: "4/1 completed"}},
			InventoryLive:  90, InventoryShadow: 91, ChecksLive: 88, ChecksShadow: 90, FeedRowsLive: 10, FeedRowsShadow: 12, HistoryToAdd: 7, ExplodeTables: 1}}
	swapped := *rebuild
	swapped.Swapped, swapped.OldPrefix = true, "kanade_old_20261120090000_"
	bf := &backfill.Summary{Scanned: 500, Rewritten: 480, Collisions: 20, ConflictsArchived: 20, CountersCorrected: 2, Batches: 1,
		Samples: []backfill.Sample{{Action: backfill.SampleRewrite, OldID: "req-b", NewID: "4f1c…", RequestID: "req-b", PCID: "PC-01"},
			{Action: backfill.SampleArchive, OldID: "req-c", NewID: "9a2e…", RequestID: "req-c", PCID: "PC-02", Reason: "the stable result_id already exists"}},
		Elapsed: 250 * time.Millisecond, ElapsedSeconds: 0.25, RatePerSecond: 2000, Complete: true}
	bfNone := &backfill.Summary{Samples: []backfill.Sample{}, Complete: true}
	findings := &audit.Report{Counts: map[string]int64{audit.CounterDrift: 1, audit.LegacyRow: 2}, Total: 3, Findings: []audit.Finding{
		{Kind: audit.CounterDrift, ExecID: "exec-1", Detail: "success_count 3, rows say 4", Fix: "kanade results audit --fix counters --yes"},
		{Kind: audit.LegacyRow, RequestID: "req-b", PCID: "PC-01", ResultID: "req-b", Detail: "result_id equals request_id", Fix: "kanade results backfill --yes"},
	}}
	clean := &audit.Report{Counts: map[string]int64{audit.CounterDrift: 0}, Findings: []audit.Finding{}}
	diffs := &replay.VerifyReport{Plan: plan, Checked: 1200, Counts: map[string]int64{replay.DiffMissing: 1, replay.DiffContent: 1, replay.DiffInFlight: 0, replay.DiffQuarantined: 1, replay.DiffDerived: 0}, Total: 3,
		Differences: []replay.Difference{
			{Kind: replay.DiffMissing, Seq: 17, Subject: "results.req-a", ResultID: "r-17", PCID: "PC-17", Detail: "no row with this result_id"},
			{Kind: replay.DiffContent, Seq: 40, Subject: "results.req-b", ResultID: "r-40", PCID: "PC-40", Detail: "exit_code: row 1, message 0"},
			{Kind: replay.DiffQuarantined, Seq: 41, Subject: "results.req-c", Detail: "decode: field \"exit_code\" is a JSON string (kept in kanade_quarantine since 2026-11-20T09:00:00Z)"},
		}}
	// A window after the stream's last message (--since in the future).
	emptyPlan := replay.Plan{Stream: "RESULTS", Subjects: []string{}, StreamCreated: plan.StreamCreated, FromSeq: 1201, ToSeq: 1200}
	// Every kind checked has a count, 0 or more (--only leaves the others out).
	same := &replay.VerifyReport{Plan: plan, Checked: 1200, Differences: []replay.Difference{}, Counts: map[string]int64{
		replay.DiffMissing: 0, replay.DiffContent: 0, replay.DiffInFlight: 0, replay.DiffQuarantined: 0, replay.DiffDerived: 0}}
	status := &store.Status{Kind: store.SQLite, Location: "/data/backend.db", Upstream: true, SchemaVersion: 5, LatestVersion: 6,
		Tables: []store.TableStatus{{Name: "execution_results", Exists: true, Rows: 1200}, {Name: "feeds", Exists: false}},
		OldTables: []store.OldTableSet{{Prefix: "kanade_old_1763629200_", SwappedAt: time.Unix(1763629200, 0).UTC(),
			Tables: []string{"kanade_old_1763629200_execution_results", "kanade_old_1763629200_executions"}, Rows: 1190}}}
	version := versionInfo{Version: "v1.2.3", Commit: "abc1234", Date: "2026-11-20T09:00:00Z", GoVersion: "go1.25.0", Platform: "linux/amd64"}
	return map[string]func(*output.Streams, output.Format) error{
		"plan":          func(s *output.Streams, f output.Format) error { return printPlan(s, plan, f) },
		"plan_empty":    func(s *output.Streams, f output.Format) error { return printPlan(s, &emptyPlan, f) },
		"replay":        func(s *output.Streams, f output.Format) error { return printSummary(s, summary, f) },
		"replay_dry":    func(s *output.Streams, f output.Format) error { return printSummary(s, &dry, f) },
		"rebuild":       func(s *output.Streams, f output.Format) error { return printRebuild(s, f, rebuild) },
		"rebuild_swap":  func(s *output.Streams, f output.Format) error { return printRebuild(s, f, &swapped) },
		"backfill":      func(s *output.Streams, f output.Format) error { return printBackfill(s, bf, f) },
		"backfill_none": func(s *output.Streams, f output.Format) error { return printBackfill(s, bfNone, f) },
		"audit":         func(s *output.Streams, f output.Format) error { return renderAudit(s, findings, f) },
		"audit_clean":   func(s *output.Streams, f output.Format) error { return renderAudit(s, clean, f) },
		"verify":        func(s *output.Streams, f output.Format) error { return printVerify(s, f, diffs) },
		"verify_clean":  func(s *output.Streams, f output.Format) error { return printVerify(s, f, same) },
		"status":        func(s *output.Streams, f output.Format) error { return printStatus(s, f, status) },
		"drop_old": func(s *output.Streams, f output.Format) error {
			return printDropOld(s, f, DropOldReport{Location: "/data/backend.db", Dropped: status.OldTables, Kept: []store.OldTableSet{}})
		},
		"drop_old_none": func(s *output.Streams, f output.Format) error {
			return printDropOld(s, f, DropOldReport{Location: "/data/backend.db", Dropped: []store.OldTableSet{}, Kept: []store.OldTableSet{}})
		},
		"migrate": func(s *output.Streams, f output.Format) error {
			return printMigrate(s, f, MigrateReport{Location: "/data/k.db", Applied: []string{"0001_core", "0002_bookkeeping"}, SchemaVersion: 2})
		},
		"migrate_none": func(s *output.Streams, f output.Format) error {
			return printMigrate(s, f, MigrateReport{Location: "/data/k.db", Applied: []string{}, SchemaVersion: 6})
		},
		"version": func(s *output.Streams, f output.Format) error {
			return printVersion(&cobra.Command{Use: "version"}, s, string(f), version)
		},
	}
}

var extension = map[output.Format]string{output.Table: "txt", output.Wide: "wide.txt", output.JSON: "json", output.JSONL: "jsonl", output.CSV: "csv", output.YAML: "yaml"}

func TestPrintersGolden(t *testing.T) {
	t.Setenv("RUNEWIDTH_EASTASIAN", "0")
	for name, print := range printers() {
		for _, f := range output.Formats {
			file := filepath.Join("testdata", "print", name+"."+extension[output.Format(f)])
			var out, errb bytes.Buffer
			s := &output.Streams{Out: &out, Err: &errb}
			if err := print(s, output.Format(f)); err != nil {
				t.Errorf("%s -o %s: %v", name, f, err)
				continue
			}
			got := out.Bytes()
			if errb.Len() > 0 {
				got = append(append(got, "--- stderr\n"...), errb.Bytes()...)
			}
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test ./internal/cli -run TestPrintersGolden -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s -o %s differs from %s:\n--- got\n%s\n--- want\n%s", name, f, file, got, want)
			}
		}
	}
}

// A summary's CSV names each value by its path in the JSON document
// (stats.messages, warnings[] for each element of a list), and the value is
// the one the JSON holds: a script may switch formats and keep its names.
func TestSummaryCSVFollowsJSON(t *testing.T) {
	for name, print := range printers() {
		render := func(f output.Format) []byte {
			var out bytes.Buffer
			if err := print(&output.Streams{Out: &out, Err: io.Discard}, f); err != nil {
				t.Fatalf("%s -o %s: %v", name, f, err)
			}
			return out.Bytes()
		}
		rows, err := csv.NewReader(bytes.NewReader(render(output.CSV))).ReadAll()
		if err != nil {
			t.Fatalf("%s -o csv: %v", name, err)
		}
		if len(rows) == 0 || strings.Join(rows[0], ",") != "field,value" {
			continue // a list: its header is checked against docs/output-schemas.md
		}
		var doc any
		if err := json.Unmarshal(render(output.JSON), &doc); err != nil {
			t.Fatalf("%s -o json: %v", name, err)
		}
		for _, r := range rows[1:] {
			values := lookup(doc, strings.Split(r[0], "."))
			if len(values) == 0 {
				t.Errorf("%s -o csv: field %q is not in the JSON document", name, r[0])
				continue
			}
			if !slices.Contains(values, r[1]) {
				t.Errorf("%s -o csv: %s is %q, the JSON says %q", name, r[0], r[1], values)
			}
		}
	}
}

// lookup returns the scalar values at path in a decoded JSON document, as
// CSV writes them ("" for null); "name[]" takes each element of a list.
func lookup(v any, path []string) []string {
	if len(path) == 0 {
		switch x := v.(type) {
		case nil:
			return []string{""}
		case string:
			return []string{x}
		case bool:
			return []string{strconv.FormatBool(x)}
		case float64:
			return []string{strconv.FormatFloat(x, 'f', -1, 64)}
		}
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	key, each := strings.CutSuffix(path[0], "[]")
	child, ok := obj[key]
	if !ok {
		return nil
	}
	if !each {
		return lookup(child, path[1:])
	}
	var out []string
	list, _ := child.([]any)
	for _, el := range list {
		out = append(out, lookup(el, path[1:])...)
	}
	return out
}

// The repair advice names only what was found, and its replay command is
// one an operator can paste: a subject's wildcards are quoted.
func TestVerifyRepairAdvice(t *testing.T) {
	plan := &replay.Plan{Stream: "RESULTS", Subjects: []string{"results.>"}, FromSeq: 5, ToSeq: 90}
	only := func(kind string) string {
		return repairAdvice(&replay.VerifyReport{Plan: plan, Counts: map[string]int64{kind: 2}, Total: 2})
	}
	if got := only(replay.DiffInFlight); !strings.Contains(got, "kanade stream replay --stream RESULTS --from-seq 5 --to-seq 90 --subject 'results.>'\n") ||
		strings.Contains(got, "--only-quarantined") || strings.Contains(got, "content differences") {
		t.Errorf("in-flight rows:\n%s", got)
	}
	if got := only(replay.DiffQuarantined); !strings.Contains(got, "kanade stream replay --stream RESULTS --only-quarantined") || strings.Contains(got, "--from-seq") {
		t.Errorf("quarantined messages:\n%s", got)
	}
	if got := only(replay.DiffContent); !strings.Contains(got, "upstream never overwrites a finished row") || strings.Contains(got, "kanade stream replay") {
		t.Errorf("content differences:\n%s", got)
	}
}
