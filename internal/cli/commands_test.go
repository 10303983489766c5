package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/output"
)

// runLine runs a command line with r in place of the commands' run
// functions and returns the exit code and stderr.
func runLine(t *testing.T, r runners, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	s := &output.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, NoColor: true}
	return execute(context.Background(), s, BuildInfo{Version: "test"}, args, r), errb.String()
}

// failing are runners that fail the test when a command gets as far as
// running.
func failing(t *testing.T) runners {
	ran := func(name string) {
		t.Helper()
		t.Errorf("%s ran: a usage error must stop before the command runs", name)
	}
	return runners{
		replay:   func(context.Context, *ReplayOptions) error { ran("stream replay"); return nil },
		verify:   func(context.Context, *VerifyOptions) error { ran("stream verify"); return nil },
		show:     func(context.Context, *ShowOptions) error { ran("results show"); return nil },
		list:     func(context.Context, *ListOptions) error { ran("results list"); return nil },
		backfill: func(context.Context, *BackfillOptions) error { ran("results backfill"); return nil },
		audit:    func(context.Context, *AuditOptions) error { ran("results audit"); return nil },
		migrate:  func(context.Context, *DBOptions) error { ran("db migrate"); return nil },
		status:   func(context.Context, *DBOptions) error { ran("db status"); return nil },
		dropOld:  func(context.Context, *DropOldOptions) error { ran("db drop-old"); return nil },
		demo:     func(context.Context, *DemoOptions) error { ran("demo"); return nil },
	}
}

// capture returns runners that record the options each command was given
// (in got, keyed by command) and open nothing.
func capture(got map[string]any) runners {
	keep := func(name string) func(o any) { return func(o any) { got[name] = o } }
	return runners{
		replay:   func(_ context.Context, o *ReplayOptions) error { keep("replay")(o); return nil },
		verify:   func(_ context.Context, o *VerifyOptions) error { keep("verify")(o); return nil },
		show:     func(_ context.Context, o *ShowOptions) error { keep("show")(o); return nil },
		list:     func(_ context.Context, o *ListOptions) error { keep("list")(o); return nil },
		backfill: func(_ context.Context, o *BackfillOptions) error { keep("backfill")(o); return nil },
		audit:    func(_ context.Context, o *AuditOptions) error { keep("audit")(o); return nil },
		migrate:  func(_ context.Context, o *DBOptions) error { keep("migrate")(o); return nil },
		status:   func(_ context.Context, o *DBOptions) error { keep("status")(o); return nil },
		dropOld:  func(_ context.Context, o *DropOldOptions) error { keep("drop-old")(o); return nil },
		demo:     func(_ context.Context, o *DemoOptions) error { keep("demo")(o); return nil },
	}
}

// Each command's flags parse into its options, with nothing opened: no
// database or NATS is needed to test what a command line means.
func TestFlagsParseIntoOptions(t *testing.T) {
	dir := isolate(t)
	near := func(got *time.Time, ago time.Duration) bool {
		return got != nil && time.Since(*got) > ago-time.Minute && time.Since(*got) < ago+time.Minute
	}
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		args  []string
		cmd   string
		check func(o any) bool
	}{
		{[]string{"stream", "replay"}, "replay", func(o any) bool {
			r := o.(*ReplayOptions)
			return r.Replay.Stream == "RESULTS" && r.Replay.Batch == 5000 && r.Replay.BatchBytes == 16<<20 && r.Replay.NATSTimeout == 2*time.Minute && r.Progress == "auto" &&
				!r.Plan && !r.Rebuild && r.Format == output.Table && r.Deps != nil
		}},
		{[]string{"-o", "json", "stream", "replay", "--stream", "EVENTS", "--since", "36h", "--to-seq", "90", "--subject", "events.a", "--subject", "events.b",
			"--batch", "100", "--max-errors", "3", "--dry-run", "--progress", "json", "--nats-timeout", "30s"}, "replay", func(o any) bool {
			r := o.(*ReplayOptions).Replay
			return o.(*ReplayOptions).Format == output.JSON && r.Stream == "EVENTS" && near(r.Since, 36*time.Hour) && r.ToSeq == 90 &&
				reflect.DeepEqual(r.Subjects, []string{"events.a", "events.b"}) && r.Batch == 100 && r.MaxErrors == 3 && r.DryRun &&
				o.(*ReplayOptions).Progress == "json" && r.NATSTimeout == 30*time.Second
		}},
		{[]string{"stream", "replay", "--from-seq", "5", "--until", "2026-11-27T08:00:00Z"}, "replay", func(o any) bool {
			r := o.(*ReplayOptions).Replay
			return r.FromSeq == 5 && r.Until != nil && r.Until.Equal(at)
		}},
		{[]string{"stream", "replay", "--plan", "--resume"}, "replay", func(o any) bool {
			return o.(*ReplayOptions).Plan && o.(*ReplayOptions).Replay.Resume
		}},
		{[]string{"stream", "replay", "--rebuild", "--yes"}, "replay", func(o any) bool {
			return o.(*ReplayOptions).Rebuild && o.(*ReplayOptions).Yes
		}},
		{[]string{"stream", "replay", "--follow", "--consumer", "mine"}, "replay", func(o any) bool {
			r := o.(*ReplayOptions).Replay
			return r.Follow && r.Consumer == "mine"
		}},
		{[]string{"stream", "replay", "--only-quarantined"}, "replay", func(o any) bool { return o.(*ReplayOptions).Replay.OnlyQuarantined }},
		{[]string{"stream", "verify", "--from-seq", "2", "--limit", "5", "--batch", "10", "--batch-bytes", "64MB"}, "verify", func(o any) bool {
			v := o.(*VerifyOptions)
			return v.Replay.FromSeq == 2 && v.Checks.Limit == 5 && v.Checks.Only == nil && v.Replay.Batch == 10 && v.Replay.BatchBytes == 64_000_000 && v.Replay.Stream == "RESULTS"
		}},
		{[]string{"db", "drop-old", "--keep", "2", "--yes"}, "drop-old", func(o any) bool {
			d := o.(*DropOldOptions)
			return d.Keep == 2 && d.Yes && d.Prefix == ""
		}},
		{[]string{"stream", "verify", "--only", "missing_row, derived_row_behind"}, "verify", func(o any) bool {
			return reflect.DeepEqual(o.(*VerifyOptions).Checks.Only, []string{"missing_row", "derived_row_behind"})
		}},
		{[]string{"stream", "replay", "--batch-bytes", "4MiB"}, "replay", func(o any) bool { return o.(*ReplayOptions).Replay.BatchBytes == 4<<20 }},
		{[]string{"results", "show", "--exec-id", "e-1", "--pc", "a", "--pc", "b,c", "--sort", "status", "--fail-on", "failed,missing", "--stdout"}, "show",
			func(o any) bool {
				s := o.(*ShowOptions)
				return s.Show.ExecID == "e-1" && reflect.DeepEqual(s.Show.PCs, []string{"a", "b,c"}) && s.Show.Sort == "status" &&
					reflect.DeepEqual(s.FailOn, []string{"failed", "missing"}) && s.Stdout && !s.Stderr && !s.Watch
			}},
		{[]string{"results", "show", "--request-id", ""}, "show", func(o any) bool {
			s := o.(*ShowOptions).Show
			return s.RequestIDSet && s.RequestID == ""
		}},
		{[]string{"-o", "jsonl", "results", "show", "--request-id", "r-1", "--watch", "--timeout", "5s"}, "show", func(o any) bool {
			s := o.(*ShowOptions)
			return s.Watch && s.Timeout == 5*time.Second && s.Format == output.JSONL && s.Show.RequestID == "r-1"
		}},
		{[]string{"results", "list", "--since", "24h", "--limit", "20", "--status", "running", "--failed", "--manifest", "m", "--pc", "x"}, "list",
			func(o any) bool {
				l := o.(*ListOptions)
				f := l.List.Filter
				return near(f.Since, 24*time.Hour) && f.Limit == 20 && l.List.Status == "running" && f.Failed && f.Manifest == "m" &&
					reflect.DeepEqual(f.PCs, []string{"x"}) && l.Next != nil && strings.Contains(l.Next("CUR"), "--after CUR")
			}},
		{[]string{"results", "backfill", "--dry-run", "--batch-size", "10", "--max-rate", "5", "--show-sql", "--progress", "none"}, "backfill",
			func(o any) bool {
				b := o.(*BackfillOptions)
				return b.Backfill.DryRun && b.Backfill.BatchSize == 10 && b.Backfill.MaxRate == 5 && b.ShowSQL && b.Progress == "none" && !b.Yes
			}},
		{[]string{"results", "backfill", "--yes"}, "backfill", func(o any) bool {
			b := o.(*BackfillOptions)
			return b.Yes && !b.Backfill.DryRun && b.Backfill.BatchSize == 5000
		}},
		{[]string{"results", "audit", "--only", "counter_drift,legacy_row", "--fix", "counters", "--yes", "--limit", "3", "--stale-after", "2h",
			"--in-flight-ttl", "48h"}, "audit", func(o any) bool {
			a := o.(*AuditOptions)
			return a.FixCounters && reflect.DeepEqual(a.Audit.Only, []string{"counter_drift", "legacy_row"}) && a.Audit.Limit == 3 &&
				a.Audit.StaleAfter == 2*time.Hour && a.Audit.InFlightTTL == 48*time.Hour
		}},
		{[]string{"results", "audit"}, "audit", func(o any) bool { return !o.(*AuditOptions).FixCounters }},
		{[]string{"-o", "yaml", "db", "migrate"}, "migrate", func(o any) bool { return o.(*DBOptions).Format == output.YAML }},
		{[]string{"-o", "wide", "db", "status"}, "status", func(o any) bool { return o.(*DBOptions).Format == output.Wide }},
		{[]string{"demo", "--pcs", "5", "--keep"}, "demo", func(o any) bool {
			d := o.(*DemoOptions)
			return d.PCs == 5 && d.Keep && d.DB == ""
		}},
		{[]string{"--db", filepath.Join(dir, "demo.db"), "demo"}, "demo", func(o any) bool {
			d := o.(*DemoOptions)
			return d.PCs == 200 && d.DB == filepath.Join(dir, "demo.db")
		}},
	} {
		got := map[string]any{}
		code, stderr := runLine(t, capture(got), c.args...)
		if code != ExitOK {
			t.Errorf("%v: exit %d (%s)", c.args, code, stderr)
			continue
		}
		o, ok := got[c.cmd]
		if !ok || len(got) != 1 {
			t.Errorf("%v: ran %v, want %s", c.args, got, c.cmd)
			continue
		}
		if !c.check(o) {
			t.Errorf("%v: options %+v", c.args, o)
		}
	}
}

// The environment and config file fill what the command line leaves out;
// the demo alone ignores KANADE_DB (it writes simulated rows).
func TestEnvironmentFillsOptions(t *testing.T) {
	dir := isolate(t)
	t.Setenv("KANADE_OUTPUT", "csv")
	t.Setenv("KANADE_DB", filepath.Join(dir, "env.db"))
	got := map[string]any{}
	if code, stderr := runLine(t, capture(got), "results", "audit"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if f := got["audit"].(*AuditOptions).Format; f != output.CSV {
		t.Errorf("KANADE_OUTPUT=csv gave -o %s", f)
	}
	if code, stderr := runLine(t, capture(got), "demo"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if db := got["demo"].(*DemoOptions).DB; db != "" {
		t.Errorf("the demo took KANADE_DB %q", db)
	}
}
