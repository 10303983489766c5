package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every usage-error branch of every command, each reached by one case, and
// none reaches the command's run function (every runner fails the test):
// flag checks need no database or NATS. The addresses point nowhere too.
func TestEveryUsageBranch(t *testing.T) {
	dir := isolate(t)
	base := []string{"--db", filepath.Join(dir, "absent", "k.db"), "--nats-url", "nats://127.0.0.1:1"}
	for _, c := range []struct {
		args []string
		says string
	}{
		// stream replay: replayFlags.options
		{[]string{"stream", "replay", "--from-seq", "abc"}, "--from-seq"},
		{[]string{"stream", "replay", "--to-seq", "-1"}, "--to-seq"},
		{[]string{"stream", "replay", "--since", "yesterday"}, "--since"},
		{[]string{"stream", "replay", "--until", "later"}, "--until"},
		{[]string{"stream", "replay", "--from-seq", "5", "--since", "1h"}, "both set the start"},
		{[]string{"stream", "replay", "--to-seq", "5", "--until", "1h"}, "both set the end"},
		{[]string{"stream", "replay", "--resume", "--from-seq", "5"}, "--resume starts at the checkpoint"},
		{[]string{"stream", "replay", "--resume", "--since", "2h"}, "--resume starts at the checkpoint"},
		{[]string{"stream", "replay", "--batch", "0"}, "--batch 0: give 1 to 100000"},
		{[]string{"stream", "replay", "--batch", "100001"}, "--batch 100001"},
		{[]string{"stream", "replay", "--batch-bytes", "16"}, `--batch-bytes "16": give a size from 64KiB to 1GiB`},
		{[]string{"stream", "verify", "--batch-bytes", "lots"}, `--batch-bytes "lots"`},
		{[]string{"stream", "replay", "--nats-timeout", "0s"}, "--nats-timeout 0s"},
		{[]string{"stream", "replay", "--nats-timeout", "-1m"}, "--nats-timeout -1m0s"},
		{[]string{"stream", "replay", "--max-errors", "-1"}, "--max-errors"},
		{[]string{"stream", "replay", "--follow", "--dry-run"}, "--follow runs until Ctrl-C"},
		{[]string{"stream", "replay", "--follow", "--only-quarantined"}, "--follow runs until Ctrl-C"},
		{[]string{"stream", "replay", "--follow", "--to-seq", "9"}, "--follow runs until Ctrl-C"},
		{[]string{"stream", "replay", "--follow", "--until", "1h"}, "--follow runs until Ctrl-C"},
		{[]string{"stream", "replay", "--rebuild", "--follow"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--rebuild", "--dry-run"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--rebuild", "--resume"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--rebuild", "--only-quarantined"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--rebuild", "--from-seq", "3"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--rebuild", "--since", "1h"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--rebuild", "--to-seq", "3"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--rebuild", "--until", "1h"}, "--rebuild replays the whole stream"},
		{[]string{"stream", "replay", "--yes"}, "--yes only confirms --rebuild"},
		{[]string{"stream", "replay", "--consumer", "backend_results_projector"}, "upstream's projector"},
		{[]string{"stream", "replay", "--progress", "bar"}, `--progress "bar"`},
		{[]string{"stream", "replay", "--from-seq", "9", "--to-seq", "3"}, "--from-seq 9 is after --to-seq 3"},
		{[]string{"stream", "replay", "--since", "2026-12-04", "--until", "2026-12-01"}, "--since 2026-12-04T00:00:00Z is not before --until 2026-12-01T00:00:00Z"},
		{[]string{"stream", "replay", "--since", "2026-12-01", "--until", "2026-12-01"}, "is not before --until"},
		{[]string{"stream", "replay", "--since", "1h", "--until", "2h"}, "is not before --until"},
		{[]string{"stream", "verify", "--since", "1h", "--until", "2h"}, "is not before --until"},
		{[]string{"results", "list", "--since", "2026-12-04", "--until", "2026-12-01"}, "is not before --until"},
		{[]string{"stream", "replay", "--subject", "bad subject"}, `--subject: subject "bad subject" has whitespace in it`},
		{[]string{"stream", "replay", "--subject", "results."}, "empty token"},
		{[]string{"stream", "replay", "--subject", ""}, "--subject is empty"},
		{[]string{"stream", "verify", "--subject", "results.>.x"}, "> before its last token"},
		// stream verify shares the parser and adds --limit.
		{[]string{"stream", "verify", "--limit", "0"}, "--limit must be 1 or more"},
		{[]string{"stream", "verify", "--nats-timeout", "0s"}, "--nats-timeout 0s"},
		{[]string{"stream", "verify", "--from-seq", "9", "--to-seq", "3"}, "is after"},
		{[]string{"stream", "verify", "--progress", "bar"}, `--progress "bar"`},
		// results show
		{[]string{"results", "show"}, "exactly one of --exec-id"},
		{[]string{"results", "show", "--exec-id", "a", "--result-id", "b"}, "exactly one of --exec-id"},
		{[]string{"results", "show", "--exec-id", "a", "--sort", "size"}, `--sort "size"`},
		{[]string{"results", "show", "--exec-id", "a", "--fail-on", "bogus"}, "unknown category"},
		{[]string{"results", "show", "--exec-id", "a", "--timeout", "-1s"}, "--timeout must be positive"},
		// results list
		{[]string{"results", "list", "--since", "yesterday"}, "--since"},
		{[]string{"results", "list", "--until", "soon"}, "--until"},
		{[]string{"results", "list", "--limit", "0"}, "--limit 0: give 1 to 10000"},
		{[]string{"results", "list", "--limit", "10001"}, "--limit 10001"},
		{[]string{"results", "list", "--status", "weird"}, `--status "weird"`},
		{[]string{"results", "list", "--after", "not-a-cursor"}, "--after"},
		// results backfill
		{[]string{"results", "backfill", "--batch-size", "0"}, "--batch-size 0"},
		{[]string{"results", "backfill", "--max-rate", "-1"}, "--max-rate"},
		{[]string{"results", "backfill", "--progress", "bar"}, `--progress "bar"`},
		{[]string{"results", "backfill"}, "pass --yes"},
		// results audit
		{[]string{"results", "audit", "--only", "bogus"}, "bogus"},
		{[]string{"results", "audit", "--fix", "everything"}, "the only repair is counters"},
		{[]string{"results", "audit", "--fix", "counters"}, "add --yes"},
		{[]string{"results", "audit", "--limit", "0"}, "--limit must be 1 or more"},
		{[]string{"results", "audit", "--stale-after", "0s"}, "positive durations"},
		{[]string{"results", "audit", "--in-flight-ttl", "-5h"}, "positive durations"},
		// demo, version
		{[]string{"demo", "--pcs", "0"}, "--pcs 0: give 1 to 20000"},
		{[]string{"demo", "--pcs", "20001"}, "--pcs 20001"},
		{[]string{"-o", "toml", "version"}, `-o "toml" is not a known format`},
	} {
		args := append(append([]string{}, base...), c.args...)
		code, stderr := runLine(t, failing(t), args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, ExitUsage, stderr)
			continue
		}
		if !strings.Contains(stderr, c.says) {
			t.Errorf("%v: stderr should name %q:\n%s", c.args, c.says, stderr)
		}
		if !strings.Contains(stderr, "Usage: kanade") {
			t.Errorf("%v: a usage error shows the usage line:\n%s", c.args, stderr)
		}
	}
}
