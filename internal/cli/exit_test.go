package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/cli"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/dial"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

func execute(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Execute(ctx, &output.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, NoColor: true}, cli.BuildInfo{Version: "test"}, args)
	return code, errb.String()
}

// Usage errors in global flags and addresses exit 2 with one line that
// names the problem, before any service is dialled; nothing here needs
// PostgreSQL or NATS. Each command's own flag checks are in
// TestEveryUsageBranch.
func TestUsageErrorsExit2(t *testing.T) {
	cli.Isolate(t)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--nope"}, "unknown flag"},
		{[]string{"-o", "xml", "version"}, "xml"},
		{[]string{"--nats-url", "mysql://db:3306", "stream", "replay", "--plan"}, "not NATS"},
		{[]string{"--db", "postgres://u:secret@host:5x/db", "db", "status"}, "not a valid URL"},
		{[]string{"--db", "mysql://db", "db", "status"}, "not supported"},
		{[]string{"stream", "verify", "--only", "missing_row,bogus"}, `--only "bogus": unknown kind; use missing_row, content_differs`},
		{[]string{"db", "drop-old"}, "pass --yes"},
		{[]string{"db", "drop-old", "--keep", "-1", "--yes"}, "--keep must be 0 or more"},
		{[]string{"db", "drop-old", "--prefix", "execution_results", "--yes"}, "give a set's prefix"},
		{[]string{"db", "drop-old", "--prefix", "kanade_old_1_", "--keep", "1", "--yes"}, "does not combine"},
	} {
		code, stderr := execute(t, context.Background(), c.args...)
		if code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, cli.ExitUsage, stderr)
			continue
		}
		if !strings.Contains(stderr, c.says) || strings.Contains(stderr, "secret") || strings.Contains(stderr, "goroutine") {
			t.Errorf("%v: stderr should name %q (and never a secret or a trace):\n%s", c.args, c.says, stderr)
		}
	}
}

// An interrupted command exits 130 whatever it was doing.
func TestInterruptExits130(t *testing.T) {
	dir := cli.Isolate(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, stderr := execute(t, ctx, "--db", filepath.Join(dir, "k.db"), "--nats-url", "nats://127.0.0.1:1", "stream", "replay", "--plan")
	if code != cli.ExitInterrupted {
		t.Fatalf("exit %d, want %d (%s)", code, cli.ExitInterrupted, stderr)
	}
}

// hostileValues are flag values a script or a person might pass by
// mistake or on purpose.
var hostileValues = []string{
	"'; DROP TABLE execution_results; --", `" OR 1=1 --`, "\x00", "a\x00b", strings.Repeat("x", 100000),
	"../../etc/passwd", "$(rm -rf /)", "\u202egnp.exe", "%s%n%x", " ", "", "-1", "1e9999", "0x10",
	"9999999999999999999999", "2026-02-30T00:00:00Z", "\xff\xfe", "PC-1,PC-2", `"PC-1"`, "*", ">",
}

// Every hostile value of every flag that takes an id, a time, a cursor or a
// number ends in a clear answer: a result, "not found", or one usage line.
// Never a panic, a stack trace or an SQL error, and the tables survive.
func TestHostileFlagValues(t *testing.T) {
	dir := cli.Isolate(t)
	db := filepath.Join(dir, "k.db")
	if code, stderr := execute(t, context.Background(), "--db", db, "db", "migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	commands := [][]string{
		{"results", "show", "--exec-id"}, {"results", "show", "--request-id"}, {"results", "show", "--result-id"},
		{"results", "show", "--request-id", "r", "--pc"}, {"results", "show", "--request-id", "r", "--fail-on"},
		{"results", "show", "--request-id", "r", "--sort"},
		{"results", "list", "--pc"}, {"results", "list", "--manifest"}, {"results", "list", "--since"}, {"results", "list", "--until"},
		{"results", "list", "--after"}, {"results", "list", "--limit"}, {"results", "list", "--status"},
		{"results", "audit", "--only"}, {"results", "audit", "--limit"}, {"results", "audit", "--stale-after"},
		{"results", "backfill", "--dry-run", "--batch-size"},
		{"stream", "replay", "--dry-run", "--from-seq"}, {"stream", "replay", "--dry-run", "--since"}, {"stream", "replay", "--dry-run", "--subject"},
	}
	for _, c := range commands {
		for _, v := range hostileValues {
			args := append([]string{"--db", db, "--nats-url", "nats://127.0.0.1:1"}, append(c, v)...)
			code, stderr := execute(t, context.Background(), args...)
			label := fmt.Sprintf("%v %.40q", c, v)
			if code != 0 && code != cli.ExitError && code != cli.ExitUsage && code != cli.ExitFindings {
				t.Errorf("%s: exit %d", label, code)
			}
			for _, bad := range []string{"panic", "goroutine ", "SQLSTATE", "syntax error", "sql: ", "runtime error"} {
				if strings.Contains(stderr, bad) {
					t.Errorf("%s: stderr shows %q:\n%.400s", label, bad, stderr)
				}
			}
			if code == cli.ExitUsage && strings.Count(strings.TrimSpace(strings.Split(stderr, "Usage:")[0]), "\n") > 0 {
				t.Errorf("%s: a usage error takes one line:\n%.400s", label, stderr)
			}
		}
	}
	st, err := dial.OpenReadOnly(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Ready(context.Background()); err != nil {
		t.Fatalf("the tables did not survive the hostile values: %v", err)
	}
}

// --pc takes a name as written: one with a comma or a quote is selectable.
func TestPCNameTakenLiterally(t *testing.T) {
	name := `PC "7",B`
	db := seededDB(t, finishedRow("r1", "q1", name))
	var out, errb bytes.Buffer
	rc := cli.Execute(context.Background(), &output.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, NoColor: true}, cli.BuildInfo{},
		[]string{"--db", db, "results", "show", "--request-id", "q1", "--pc", name, "-o", "jsonl"})
	if rc != 0 || !strings.Contains(out.String(), `"pc_id":"PC \"7\",B"`) {
		t.Fatalf("exit %d, stdout %s, stderr %s", rc, out.String(), errb.String())
	}
}

// A stored row with an empty request_id can be shown: `--request-id ""` is
// a selection, not a missing flag; without the flag it is a usage error.
func TestShowEmptyRequestID(t *testing.T) {
	db := seededDB(t, finishedRow("r-empty", "", "PC-1"), finishedRow("r-other", "q2", "PC-2"))
	var out, errb bytes.Buffer
	rc := cli.Execute(context.Background(), &output.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, NoColor: true}, cli.BuildInfo{},
		[]string{"--db", db, "results", "show", "--request-id", "", "-o", "jsonl"})
	if rc != 0 || !strings.Contains(out.String(), `"result_id":"r-empty"`) || strings.Contains(out.String(), "r-other") {
		t.Fatalf("exit %d, stdout %s, stderr %s", rc, out.String(), errb.String())
	}
	if rc, _ := execute(t, context.Background(), "--db", db, "results", "show"); rc != cli.ExitUsage {
		t.Fatalf("no selection at all: exit %d", rc)
	}
}

// seededDB is a migrated SQLite file in an isolated environment holding rows.
func seededDB(t *testing.T, rows ...store.ResultRow) string {
	db := filepath.Join(cli.Isolate(t), "k.db")
	if code, stderr := execute(t, context.Background(), "--db", db, "db", "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	st, err := testutil.Dial(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Seed(context.Background(), nil, rows); err != nil {
		t.Fatal(err)
	}
	return db
}

func finishedRow(id, request, pc string) store.ResultRow {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	code := int32(0)
	return store.ResultRow{ResultID: id, RequestID: request, PCID: pc, ExitCode: &code, StartedAt: t0, FinishedAt: &t0, RecordedAt: t0}
}
