package results_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"

	"github.com/kanadehq/kanade-cli/internal/audit"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/results"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func at(sec int) *time.Time { t := t0.Add(time.Duration(sec) * time.Second); return &t }
func code(c int32) *int32   { return &c }

// fixture is a database as upstream's history leaves it: a deployment with
// every status (and a PC that never reported), and a broadcast with a
// legacy duplicate (result_id = request_id beside the stable id row).
func fixture(t *testing.T, st testutil.Store) {
	exec := "exec-1"
	execs := []store.Execution{{ExecID: exec, JobID: "install-app", Version: "3.1.0", InitiatedBy: "ops@example.com", InitiatedAt: t0,
		TargetCount: 5, SuccessCount: 1, FailureCount: 2, Status: "running"}}
	row := func(id, req, pc string, ex *string, c *int32, fin *time.Time, stdout, stderr string) store.ResultRow {
		return store.ResultRow{ResultID: id, RequestID: req, ExecID: ex, PCID: pc, ExitCode: c, Stdout: stdout, Stderr: stderr,
			StartedAt: *at(1), FinishedAt: fin, RecordedAt: *at(100), JobID: wire.Str("install-app")}
	}
	reaped := row("r-4", "req-d", "PC-04", &exec, code(-1), at(86400), "", "[backend: reaped after 24h]")
	reaped.Reaped = true
	skipped := row("r-9", "req-b", "PC-03", nil, code(125), at(2), "", "skipped: starting deadline expired")
	skipped.Skipped = true
	rows := []store.ResultRow{
		row("r-1", "req-d", "PC-01", &exec, code(0), at(12), "Installed 3.1.0\r\nDone.\r\n", ""),
		row("r-2", "req-d", "PC-02", &exec, code(1), at(4), "Installing\r\n", "Access is denied.\r\n"),
		row("r-3", "req-d", "PC-03", &exec, nil, nil, "", ""),
		reaped,
		// the broadcast: PC-01 twice (legacy row kept by the v0.29 migration
		// and the stable-id row written later), PC-02 ok, PC-03 skipped.
		row("req-b", "req-b", "PC-01", nil, code(0), at(3), "hello from the old row\n", ""),
		row(wire.LegacyResultID("req-b", "PC-01"), "req-b", "PC-01", nil, code(0), at(5), "hello\n", ""),
		row(wire.LegacyResultID("req-b", "PC-02"), "req-b", "PC-02", nil, code(0), at(6), "hello\n", ""),
		skipped,
	}
	rows[4].RecordedAt = *at(50)
	for i := 4; i < len(rows); i++ {
		rows[i].JobID = wire.Str("adhoc-run")
		rows[i].RecordedAt = rows[i].RecordedAt.Add(time.Hour)
	}
	if err := st.Seed(context.Background(), execs, rows); err != nil {
		t.Fatal(err)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/results -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func render(t *testing.T, tty bool, fn func(*output.Streams) error) []byte {
	var out, errb bytes.Buffer
	s := &output.Streams{Out: &out, Err: &errb, OutTTY: tty}
	if err := fn(s); err != nil {
		t.Fatal(err)
	}
	return append(out.Bytes(), errb.Bytes()...)
}

func TestShowGolden(t *testing.T) {
	t.Setenv("RUNEWIDTH_EASTASIAN", "0")
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		fixture(t, st)
		cases := []struct {
			name string
			opts results.ShowOptions
			ro   results.RenderOptions
			tty  bool
		}{
			{"show_exec_table.txt", results.ShowOptions{ExecID: "exec-1", Sort: "pc"}, results.RenderOptions{Format: output.Table}, false},
			{"show_exec_tty.txt", results.ShowOptions{ExecID: "exec-1", Sort: "status"}, results.RenderOptions{Format: output.Table}, true},
			{"show_exec.json", results.ShowOptions{ExecID: "exec-1", Sort: "pc"}, results.RenderOptions{Format: output.JSON}, false},
			{"show_exec.yaml", results.ShowOptions{ExecID: "exec-1", Sort: "pc"}, results.RenderOptions{Format: output.YAML}, false},
			{"show_exec.jsonl", results.ShowOptions{ExecID: "exec-1", Sort: "pc"}, results.RenderOptions{Format: output.JSONL}, false},
			{"show_exec.csv", results.ShowOptions{ExecID: "exec-1", Sort: "pc"}, results.RenderOptions{Format: output.CSV}, false},
			{"show_exec_wide.txt", results.ShowOptions{ExecID: "exec-1", Sort: "pc"}, results.RenderOptions{Format: output.Wide}, true},
			{"show_broadcast_table.txt", results.ShowOptions{RequestID: "req-b", Sort: "pc"}, results.RenderOptions{Format: output.Table}, false},
			{"show_broadcast.json", results.ShowOptions{RequestID: "req-b", Sort: "pc"}, results.RenderOptions{Format: output.JSON}, false},
			{"show_broadcast.yaml", results.ShowOptions{RequestID: "req-b", Sort: "pc"}, results.RenderOptions{Format: output.YAML}, false},
			{"show_broadcast_wide.txt", results.ShowOptions{RequestID: "req-b", Sort: "pc"}, results.RenderOptions{Format: output.Wide}, false},
			{"show_broadcast.jsonl", results.ShowOptions{RequestID: "req-b", Sort: "pc"}, results.RenderOptions{Format: output.JSONL}, false},
			{"show_broadcast.csv", results.ShowOptions{RequestID: "req-b", Sort: "pc"}, results.RenderOptions{Format: output.CSV}, false},
			{"show_broadcast_stdout.txt", results.ShowOptions{RequestID: "req-b", Sort: "pc", PCs: []string{"PC-01"}}, results.RenderOptions{Format: output.Table, Stdout: true}, false},
			// Wide lists a PC's duplicate rows; each row's block shows its own output.
			{"show_broadcast_wide_stdout.txt", results.ShowOptions{RequestID: "req-b", Sort: "pc"}, results.RenderOptions{Format: output.Wide, Stdout: true}, false},
		}
		for _, c := range cases {
			v, err := results.Show(ctx, st, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, render(t, c.tty, func(s *output.Streams) error { return results.Render(s, v, c.ro) }))
		}
	})
}

func TestShowSummaryAndFailOn(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		fixture(t, st)
		v, err := results.Show(ctx, st, results.ShowOptions{ExecID: "exec-1"})
		if err != nil {
			t.Fatal(err)
		}
		s := v.Summary
		if *s.Target != 5 || s.Reported != 4 || s.Succeeded != 1 || s.Failed != 1 || s.InFlight != 1 || s.Reaped != 1 || *s.Missing != 1 {
			t.Errorf("summary: %+v", s)
		}
		if got := v.FailOn([]string{"failed", "missing", "skipped"}); len(got) != 2 {
			t.Errorf("fail-on: %v", got)
		}
		b, err := results.Show(ctx, st, results.ShowOptions{RequestID: "req-b"})
		if err != nil {
			t.Fatal(err)
		}
		if b.Summary.DuplicatePCs != 1 || b.Summary.Reported != 3 || b.Summary.Skipped != 1 || b.Summary.Target != nil || b.Summary.Missing != nil {
			t.Errorf("broadcast summary: %+v", b.Summary)
		}
		if len(b.FailOn([]string{"failed", "missing", "in_flight", "reaped"})) != 0 {
			t.Error("a clean broadcast must not trip --fail-on")
		}
		if _, err := results.Show(ctx, st, results.ShowOptions{RequestID: "nope"}); err == nil {
			t.Error("unknown request id must be an error")
		}
	})
}

func TestListGoldenAndPaging(t *testing.T) {
	t.Setenv("RUNEWIDTH_EASTASIAN", "0")
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		fixture(t, st)
		page, err := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		for name, f := range map[string]output.Format{"list.json": output.JSON, "list_table.txt": output.Table, "list_wide.txt": output.Wide,
			"list.jsonl": output.JSONL, "list.csv": output.CSV, "list.yaml": output.YAML} {
			golden(t, name, render(t, false, func(s *output.Streams) error { return results.RenderList(s, page, f) }))
		}
		golden(t, "list_tty.txt", render(t, true, func(s *output.Streams) error { return results.RenderList(s, page, output.Table) }))
		first, err := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Limit: 1}})
		if err != nil || len(first.Items) != 1 || first.NextAfter == "" {
			t.Fatalf("first page: %+v %v", first, err)
		}
		second, err := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Limit: 1}, After: first.NextAfter})
		if err != nil || len(second.Items) != 1 || second.Items[0].RequestID == first.Items[0].RequestID {
			t.Fatalf("second page: %+v %v", second, err)
		}
		failed, _ := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Limit: 10, Failed: true}})
		if len(failed.Items) != 1 || failed.Items[0].Kind != "deployment" {
			t.Errorf("--failed: %+v", failed.Items)
		}
		running, _ := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Limit: 10}, Status: "running"})
		if len(running.Items) != 1 {
			t.Errorf("--status running: %+v", running.Items)
		}
	})
}

// An ad-hoc run's started event stores exec_id "" (as upstream does);
// every view reads it as "no execution".
func TestAdHocEmptyExecIDIsNoExecution(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		empty := ""
		t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		if err := st.Seed(ctx, nil, []store.ResultRow{{ResultID: "adhoc-1", RequestID: "req-adhoc", ExecID: &empty, PCID: "PC-1",
			StartedAt: t0, RecordedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		v, err := results.Show(ctx, st, results.ShowOptions{RequestID: "req-adhoc"})
		if err != nil {
			t.Fatal(err)
		}
		if v.Summary.ExecID != nil || len(v.Results) != 1 || v.Results[0].ExecID != nil {
			t.Fatalf("show: %+v", v)
		}
		page, err := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].Kind != "adhoc" || page.Items[0].ExecID != nil {
			t.Fatalf("list: %+v", page.Items)
		}
		rep, err := audit.Run(ctx, st, audit.Options{Only: []string{audit.OrphanResult}})
		if err != nil || rep.Total != 0 {
			t.Fatalf("an ad-hoc row is no orphan: %+v %v", rep, err)
		}
	})
}

// finishedRow is a finished, exit-0 result for seedDeployment; tagged
// rows carry the deployment's exec_id, the others answer as a pre-v0.29
// agent does.
type finishedRow struct {
	resultID, requestID, pcID string
	tagged                    bool
}

// seedDeployment seeds the running deployment dep-1 (target 2) and rows,
// and returns its exec_id.
func seedDeployment(t *testing.T, ctx context.Context, st testutil.Store, rows ...finishedRow) string {
	t.Helper()
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	exec, code := "dep-1", int32(0)
	fin := t0.Add(time.Minute)
	var seeded []store.ResultRow
	for _, r := range rows {
		row := store.ResultRow{ResultID: r.resultID, RequestID: r.requestID, PCID: r.pcID, ExitCode: &code, StartedAt: t0, FinishedAt: &fin, RecordedAt: fin}
		if r.tagged {
			row.ExecID = &exec
		}
		seeded = append(seeded, row)
	}
	if err := st.Seed(ctx, []store.Execution{{ExecID: exec, JobID: "job", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 2, Status: "running"}}, seeded); err != nil {
		t.Fatal(err)
	}
	return exec
}

// Narrowing a deployment to a PC that answered as a pre-v0.29 agent (no
// exec_id) keeps that PC's row: narrowing never loses a row the whole
// view shows.
func TestShowExecNarrowedToLegacyPC(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		exec := seedDeployment(t, ctx, st, finishedRow{"tagged", "req-1", "PC-NEW", true}, finishedRow{"legacy", "req-1", "PC-OLD", false})
		all, err := results.Show(ctx, st, results.ShowOptions{ExecID: exec})
		if err != nil || len(all.Results) != 2 {
			t.Fatalf("whole deployment: %+v %v", all, err)
		}
		for _, pcs := range [][]string{{"PC-OLD"}, {"PC-OLD", "PC-NEW"}} {
			v, err := results.Show(ctx, st, results.ShowOptions{ExecID: exec, PCs: pcs})
			if err != nil || len(v.Results) != len(pcs) {
				t.Fatalf("--pc %v: %+v %v", pcs, v, err)
			}
		}
	})
}

// A deployment whose PCs all answered, some as pre-v0.29 agents, still
// reads "running": upstream counted only the tagged results. The view says
// why, and gives the stored counters to scripts.
func TestShowDeploymentNamesUntaggedResults(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		// PC-A, first by name, answered without the exec_id.
		exec := seedDeployment(t, ctx, st, finishedRow{"tagged", "req-1", "PC-NEW", true}, finishedRow{"legacy", "req-1", "PC-A", false})
		for _, c := range []struct {
			pcs  []string
			note bool
		}{{nil, true}, {[]string{"PC-A"}, true}, {[]string{"PC-NEW"}, false}} {
			v, err := results.Show(ctx, st, results.ShowOptions{ExecID: exec, PCs: c.pcs})
			if err != nil {
				t.Fatal(err)
			}
			if s := v.Summary; s.SuccessCount == nil || *s.SuccessCount != 0 || s.FailureCount == nil || *s.FailureCount != 0 {
				t.Errorf("--pc %v: the stored counters are %v/%v, want 0/0", c.pcs, s.SuccessCount, s.FailureCount)
			}
			out := render(t, false, func(s *output.Streams) error {
				return results.Render(s, v, results.RenderOptions{Format: output.Table})
			})
			const want = "1 of these results carries no exec_id (agents older than v0.29): upstream's counters (success 0, failure 0) and its status leave them out"
			if got := bytes.Contains(out, []byte(want)); got != c.note {
				t.Errorf("--pc %v: note shown %v, want %v:\n%s", c.pcs, got, c.note, out)
			}
		}
		v, err := results.Show(ctx, st, results.ShowOptions{RequestID: "req-1"})
		if err != nil {
			t.Fatal(err)
		}
		// By request the view has the execution too, and the same note.
		if v.Summary.ExecID == nil || *v.Summary.ExecID != exec || v.Summary.Target == nil || *v.Summary.Missing != 0 {
			t.Errorf("by request_id: the view lost its deployment: %+v", v.Summary)
		}
		out := render(t, false, func(s *output.Streams) error {
			return results.Render(s, v, results.RenderOptions{Format: output.Table})
		})
		if !bytes.Contains(out, []byte("1 of these results carries no exec_id")) {
			t.Errorf("by request_id: no note:\n%s", out)
		}
	})
}

// Ids are matched exactly; one that differs from a stored id only in case
// is not found, and the error names the stored one.
func TestShowNamesTheLowerCaseID(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		exec := seedDeployment(t, ctx, st, finishedRow{"ab-1", "req-1", "PC-1", true})
		for _, o := range []results.ShowOptions{{ExecID: "DEP-1"}, {RequestID: "REQ-1"}, {ResultID: "AB-1"}, {ResultID: "Ab-1", PCs: []string{"PC-1"}}} {
			_, err := results.Show(ctx, st, o)
			want := strings.ToLower(o.ExecID + o.RequestID + o.ResultID)
			if !errors.Is(err, results.ErrNotFound) || err == nil || !strings.Contains(err.Error(), "and "+want+" (the same in lower case) exists: use that") {
				t.Errorf("%+v: %v", o, err)
			}
		}
		if _, err := results.Show(ctx, st, results.ShowOptions{ExecID: "DEP-2"}); err == nil || strings.Contains(err.Error(), "lower case") {
			t.Errorf("an id absent in every case: %v", err)
		}
		if got := results.LowerCaseMatch(ctx, st, results.ShowOptions{ExecID: exec}); got != "" {
			t.Errorf("an id already in lower case has no other match: %q", got)
		}
	})
}

// The list marks a deployment whose PCs include pre-v0.29 answers: its
// stored "running" can stand beside every PC reported.
func TestListMarksUntaggedAnswers(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		seedDeployment(t, ctx, st, finishedRow{"tagged", "req-1", "PC-NEW", true}, finishedRow{"legacy", "req-1", "PC-OLD", false})
		if err := st.Seed(ctx, nil, []store.ResultRow{{ResultID: "adhoc-1", RequestID: "req-adhoc", PCID: "PC-1", StartedAt: t0, RecordedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		page, err := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Limit: 10}})
		if err != nil || len(page.Items) != 2 {
			t.Fatalf("list: %+v %v", page, err)
		}
		for _, it := range page.Items {
			if want := map[string]int64{"deployment": 1, "adhoc": 0}[it.Kind]; it.Untagged != want {
				t.Errorf("%s %s: untagged %d, want %d", it.Kind, it.RequestID, it.Untagged, want)
			}
		}
		out := string(render(t, false, func(s *output.Streams) error { return results.RenderList(s, page, output.Table) }))
		if !strings.Contains(out, "running*") || !strings.Contains(out, "*: some PCs answered without the exec_id") {
			t.Errorf("table:\n%s", out)
		}
	})
}

// A --pc that has no row in a selection that has rows is an answer (the
// PC has not reported), not the "not found" of an id that matches
// nothing: the view is empty, with the selection's execution, for a
// deployment, a broadcast's request and one result alike.
func TestShowPCWithoutRows(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		exec := seedDeployment(t, ctx, st, finishedRow{"r-1", "req-1", "PC-1", true}, finishedRow{"r-2", "req-2", "PC-1", false})
		for _, o := range []results.ShowOptions{{ExecID: exec}, {RequestID: "req-1"}, {RequestID: "req-2"}, {ResultID: "r-1"}} {
			o.PCs = []string{"PC-9"}
			v, err := results.Show(ctx, st, o)
			if err != nil || len(v.Results) != 0 || v.Summary.Reported != 0 {
				t.Fatalf("%+v: want an empty view, got %+v, %v", o, v, err)
			}
			if (o.ExecID != "" || o.RequestID == "req-1" || o.ResultID != "") != (v.Summary.ExecID != nil && *v.Summary.ExecID == exec) {
				t.Errorf("%+v: the view's execution is %v", o, v.Summary.ExecID)
			}
			out := render(t, false, func(s *output.Streams) error {
				return results.Render(s, v, results.RenderOptions{Format: output.Table, PCs: o.PCs})
			})
			if !bytes.Contains(out, []byte("No result from PC-9 (")) {
				t.Errorf("%+v: the table does not say which PC has no result:\n%s", o, out)
			}
		}
		if _, err := results.Show(ctx, st, results.ShowOptions{RequestID: "req-9", PCs: []string{"PC-1"}}); !errors.Is(err, results.ErrNotFound) {
			t.Fatalf("an unknown request with --pc: want not found, got %v", err)
		}
	})
}

// A --pc name with no row is named under the table, also when other
// --pc names have rows, with the selection's PCs that differ from it only
// in case (Windows names are typed either way).
func TestShowNamesAbsentPCs(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		exec := seedDeployment(t, ctx, st, finishedRow{"r-1", "req-1", "PC-1", true}, finishedRow{"r-2", "req-1", "PC-2", true})
		table := func(pcs ...string) string {
			v, err := results.Show(ctx, st, results.ShowOptions{ExecID: exec, PCs: pcs})
			if err != nil {
				t.Fatal(err)
			}
			return string(render(t, false, func(s *output.Streams) error {
				return results.Render(s, v, results.RenderOptions{Format: output.Table, PCs: pcs})
			}))
		}
		got := table("PC-1", "pc-2", "PC-9")
		for _, want := range []string{"PC-1 ", "No result from pc-2 (not reported, or a name not written as its agent writes it; PC-2 has results here: names are matched as written).",
			"No result from PC-9 (not reported, or a name not written as its agent writes it)."} {
			if !strings.Contains(got, want) {
				t.Errorf("partial view: no %q in\n%s", want, got)
			}
		}
		if got := table("pc-1"); !strings.Contains(got, "No result from pc-1 (not reported, or a name not written as its agent writes it; PC-1 has results here") {
			t.Errorf("empty view:\n%s", got)
		}
		if got := table("PC-1", "PC-2"); strings.Contains(got, "No result") {
			t.Errorf("every --pc has a row:\n%s", got)
		}
	})
}

// --since selects deployments with a result in the window; it does not cut
// their counts to the results inside it.
func TestListWindowSelectsWholeGroups(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		exec, ok, bad := "dep-2", int32(0), int32(1)
		early, late := t0.Add(time.Minute), t0.Add(48*time.Hour)
		if err := st.Seed(ctx, []store.Execution{{ExecID: exec, JobID: "job", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 2, Status: "completed"}},
			[]store.ResultRow{
				{ResultID: "a", RequestID: "req-2", ExecID: &exec, PCID: "PC-1", ExitCode: &ok, StartedAt: t0, FinishedAt: &early, RecordedAt: early},
				{ResultID: "b", RequestID: "req-2", ExecID: &exec, PCID: "PC-2", ExitCode: &bad, StartedAt: t0, FinishedAt: &late, RecordedAt: late},
			}); err != nil {
			t.Fatal(err)
		}
		since := t0.Add(24 * time.Hour)
		page, err := results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Since: &since, Failed: true, Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].Reported != 2 || page.Items[0].Succeeded != 1 || page.Items[0].Failed != 1 || *page.Items[0].Missing != 0 {
			t.Fatalf("the window must select the deployment whole: %+v", page.Items)
		}
		after := late.Add(time.Hour)
		if page, err = results.List(ctx, st, results.ListOptions{Filter: store.ListFilter{Since: &after, Limit: 10}}); err != nil || len(page.Items) != 0 {
			t.Fatalf("nothing was recorded after the last result: %+v %v", page.Items, err)
		}
	})
}

// A watch ends when as many PCs as targeted have finished, even if another
// PC's run is still in flight (it would otherwise wait for --timeout).
func TestWatchCompleteIgnoresStrayInFlight(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	fin, code, exec := t0.Add(time.Minute), int32(0), "dep-3"
	rows := []store.ResultRow{
		{ResultID: "a", RequestID: "q", ExecID: &exec, PCID: "PC-1", ExitCode: &code, StartedAt: t0, FinishedAt: &fin, RecordedAt: fin},
		{ResultID: "b", RequestID: "q", ExecID: &exec, PCID: "PC-2", ExitCode: &code, StartedAt: t0, FinishedAt: &fin, RecordedAt: fin},
		{ResultID: "c", RequestID: "q", ExecID: &exec, PCID: "PC-3", StartedAt: t0, RecordedAt: t0},
	}
	e := &store.Execution{ExecID: exec, JobID: "job", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 2, Status: "running"}
	v := results.Build(rows, e, results.ShowOptions{ExecID: exec})
	if !v.Complete() {
		t.Fatalf("2 of 2 targets finished: the watch is complete (%+v)", v.Summary)
	}
	v = results.Build(rows[1:], e, results.ShowOptions{ExecID: exec})
	if v.Complete() {
		t.Fatalf("1 of 2 finished: not complete (%+v)", v.Summary)
	}
}

// On a terminal the table fits its width, the output column giving way;
// -o wide shows everything; no line ends in blanks.
func TestTableFitsTheTerminal(t *testing.T) {
	ctx := context.Background()
	st := testutil.SQLiteStore(t)
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	fin, code := t0.Add(time.Second), int32(1)
	long := strings.Repeat("a very long line of installer output ", 8)
	if err := st.Seed(ctx, nil, []store.ResultRow{{ResultID: "r-1", RequestID: "req-w", PCID: "PC-1", ExitCode: &code, Stdout: long,
		StartedAt: t0, FinishedAt: &fin, RecordedAt: fin}}); err != nil {
		t.Fatal(err)
	}
	v, err := results.Show(ctx, st, results.ShowOptions{RequestID: "req-w"})
	if err != nil {
		t.Fatal(err)
	}
	render := func(f output.Format) string {
		var out bytes.Buffer
		s := &output.Streams{Out: &out, Err: &out, OutTTY: true, NoColor: true, Width: 100}
		if err := results.Render(s, v, results.RenderOptions{Format: f}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	table := render(output.Table)
	for _, l := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if w := runewidth.StringWidth(l); w > 100 {
			t.Errorf("line is %d columns in a 100-column terminal: %q", w, l)
		}
		if strings.HasSuffix(l, " ") {
			t.Errorf("line ends in blanks: %q", l)
		}
	}
	if !strings.Contains(table, "…") {
		t.Errorf("the output column should be shortened:\n%s", table)
	}
	if wide := render(output.Wide); !strings.Contains(wide, strings.TrimSpace(long)) {
		t.Errorf("-o wide must show the whole line:\n%s", wide)
	}
}
