package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/cli"
	"github.com/kanadehq/kanade-cli/internal/output"
)

func execute(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Execute(ctx, &output.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, NoColor: true}, cli.BuildInfo{Version: "test"}, args)
	return code, errb.String()
}

// isolate keeps a test from the machine's settings: no config file, no
// KANADE_* or NATS_* variables, a database under the test's own directory.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	for _, v := range []string{"KANADE_DB", "KANADE_NATS_URL", "NATS_URL", "KANADE_OUTPUT", "KANADE_CONFIG", "KANADE_NATS_CONTEXT", "NATS_CONTEXT"} {
		t.Setenv(v, "")
	}
	return dir
}

// Usage errors exit 2 with one line that names the problem, before any
// service is dialled; nothing here needs PostgreSQL or NATS.
func TestUsageErrorsExit2(t *testing.T) {
	isolate(t)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--nope"}, "unknown flag"},
		{[]string{"-o", "xml", "version"}, "xml"},
		{[]string{"results", "show"}, "exec-id"},
		{[]string{"results", "list", "--limit", "0"}, "--limit"},
		{[]string{"results", "list", "--since", "yesterday"}, "--since"},
		{[]string{"results", "list", "--after", "not-a-cursor"}, "--after"},
		{[]string{"results", "backfill"}, "--yes"},
		{[]string{"results", "audit", "--fix", "counters"}, "--yes"},
		{[]string{"results", "audit", "--in-flight-ttl", "-5h"}, "positive"},
		{[]string{"stream", "replay", "--from-seq", "abc"}, "--from-seq"},
		{[]string{"demo", "--pcs", "0"}, "--pcs"},
		{[]string{"--nats-url", "mysql://db:3306", "stream", "replay", "--plan"}, "not NATS"},
		{[]string{"--db", "postgres://u:secret@host:5x/db", "db", "status"}, "not a valid URL"},
		{[]string{"--db", "mysql://db", "db", "status"}, "not supported"},
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
	dir := isolate(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, stderr := execute(t, ctx, "--db", filepath.Join(dir, "k.db"), "--nats-url", "nats://127.0.0.1:1", "stream", "replay", "--plan")
	if code != cli.ExitInterrupted {
		t.Fatalf("exit %d, want %d (%s)", code, cli.ExitInterrupted, stderr)
	}
}
