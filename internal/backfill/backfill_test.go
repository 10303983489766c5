package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/backfill"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

var t0 = time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)

// history is upstream's past in miniature. Broadcast requests req-00..09
// reach PC-0..PC-3 from pre-v0.29 agents (no result_id); their first PC's
// row survived the v0.29 migration as result_id = request_id, and the
// projector later stored every payload again under its UUIDv5 id. Single-PC
// requests solo-00..09 exist only as migrated rows (their payloads are in
// the stream but were never re-projected). Half the requests belong to a
// deployment whose counters counted both copies.
type history struct {
	msgs     []sim.Message
	migrated []store.ResultRow
	execs    []store.Execution
	replayTo int // messages the projector had seen
}

func makeHistory() *history {
	h := &history{}
	exec := "exec-legacy"
	var counted int64
	for r := 0; r < 10; r++ {
		req := fmt.Sprintf("req-%02d", r)
		for p := 0; p < 4; p++ {
			res := wire.ExecResult{RequestID: req, PCID: fmt.Sprintf("PC-%d", p), ExitCode: int32(p % 2), Stdout: "out " + req,
				StartedAt: t0.Add(time.Duration(r) * time.Minute), FinishedAt: t0.Add(time.Duration(r)*time.Minute + time.Second)}
			if r%2 == 0 {
				res.ExecID = &exec
			}
			h.msgs = append(h.msgs, sim.Message{Subject: "results." + req, Data: res.Encode()})
			if p == 0 {
				code, fin := res.ExitCode, res.FinishedAt
				row := store.ResultRow{ResultID: req, RequestID: req, ExecID: res.ExecID, PCID: res.PCID, ExitCode: &code, Stdout: res.Stdout,
					StartedAt: res.StartedAt, FinishedAt: &fin, RecordedAt: fin.Add(-time.Hour)} // recorded before the re-projection
				if r == 3 {
					row.FinishedAt, row.ExitCode = nil, nil // still in flight when migrated: the later finished copy wins
				}
				h.migrated = append(h.migrated, row)
				if res.ExecID != nil {
					counted++
				}
			}
		}
	}
	h.replayTo = len(h.msgs)
	for s := 0; s < 10; s++ {
		req := fmt.Sprintf("solo-%02d", s)
		res := wire.ExecResult{RequestID: req, PCID: "PC-9", ExitCode: 0, Stdout: "solo", StartedAt: t0, FinishedAt: t0.Add(time.Second)}
		h.msgs = append(h.msgs, sim.Message{Subject: "results." + req, Data: res.Encode()})
		code, fin := res.ExitCode, res.FinishedAt
		h.migrated = append(h.migrated, store.ResultRow{ResultID: req, RequestID: req, PCID: "PC-9", ExitCode: &code, Stdout: "solo",
			StartedAt: t0, FinishedAt: &fin, RecordedAt: fin})
	}
	// A redelivery: the same legacy payload twice in the stream.
	h.msgs = append(h.msgs, h.msgs[5])
	// The deployment's counters: every counted copy (replay adds its own).
	h.execs = []store.Execution{{ExecID: exec, JobID: "install-app", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 20,
		SuccessCount: 0, FailureCount: counted, Status: "running"}}
	return h
}

// setup lays the history into st: executions and migrated rows, then the
// projector's replay of the first replayTo messages.
func setup(t *testing.T, st testutil.Store, js jetstream.JetStream, h *history) {
	ctx := context.Background()
	if err := st.Seed(ctx, h.execs, h.migrated); err != nil {
		t.Fatal(err)
	}
	if _, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, ToSeq: uint64(h.replayTo)}); err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, h *history) jetstream.JetStream {
	nc, err := nats.Connect(testutil.NATSServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if err := streams.EnsureLayout(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := sim.PublishAll(ctx, js, h.msgs); err != nil {
		t.Fatal(err)
	}
	return js
}

func ids(rows []store.ResultRow) map[string]store.ResultRow {
	m := map[string]store.ResultRow{}
	for _, r := range rows {
		m[r.ResultID] = r
	}
	return m
}

func TestBackfillMakesReplayANoOp(t *testing.T) {
	h := makeHistory()
	js := publish(t, h)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		setup(t, st, js, h)
		before, _ := st.Dump(ctx)

		dry, err := backfill.Run(ctx, st, backfill.Options{DryRun: true, BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		after, _ := st.Dump(ctx)
		if !reflect.DeepEqual(before, after) {
			t.Fatal("--dry-run changed the tables")
		}
		if dry.Scanned != 20 || dry.Collisions != 10 || len(dry.Samples) == 0 {
			t.Errorf("dry run: %+v", dry)
		}

		sum, err := backfill.Run(ctx, st, backfill.Options{BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Scanned != 20 || sum.Collisions != 10 || sum.ConflictsArchived != 10 || sum.Rewritten != 19 || !sum.Complete {
			t.Errorf("summary: %+v", sum)
		}
		if sum.CountersCorrected != 5 {
			t.Errorf("counters corrected %d, want 5 (one counted duplicate per deployment request)", sum.CountersCorrected)
		}
		again, err := backfill.Run(ctx, st, backfill.Options{})
		if err != nil || again.Scanned != 0 || !again.Complete {
			t.Errorf("second run: %+v %v", again, err)
		}

		// Every removed row is in the conflicts table, whole.
		fixed, _ := st.Dump(ctx)
		conflicts, err := st.ListConflicts(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(before.Results)-len(fixed.Results) != len(conflicts) {
			t.Fatalf("%d rows removed, %d archived", len(before.Results)-len(fixed.Results), len(conflicts))
		}
		// The dry run showed the rows the run archived: what it deletes,
		// not only what it renames.
		var shown []string
		for _, x := range dry.Samples {
			if x.Action == backfill.SampleArchive {
				shown = append(shown, x.OldID+" -> "+x.NewID+": "+x.Reason)
			}
		}
		var archived []string
		for _, c := range conflicts {
			if c.RowJSON == "" || c.KeptID == "" {
				t.Errorf("conflict not archived whole: %+v", c)
			}
			archived = append(archived, c.ResultID+" -> "+c.KeptID+": "+c.Reason)
		}
		slices.Sort(shown)
		slices.Sort(archived)
		if len(archived) != 10 || !slices.Equal(shown, archived) {
			t.Errorf("the dry run's archive samples are not the rows archived:\n%s\nwant\n%s", strings.Join(shown, "\n"), strings.Join(archived, "\n"))
		}
		// 9 finished migrated rows (recorded earlier) and 10 solo rows are
		// renamed; the in-flight migrated row lost to the finished copy; the finished
		// migrated rows (recorded earlier) won and took the stable id.
		got := ids(fixed.Results)
		inflight := got[wire.LegacyResultID("req-03", "PC-0")]
		if inflight.FinishedAt == nil || inflight.Stdout != "out req-03" {
			t.Errorf("req-03/PC-0 kept the wrong row: %+v", inflight)
		}
		kept := got[wire.LegacyResultID("req-00", "PC-0")]
		if !kept.RecordedAt.Equal(t0.Add(time.Second).Add(-time.Hour)) {
			t.Errorf("req-00/PC-0: the earliest recorded row must be kept, got recorded_at %v", kept.RecordedAt)
		}
		for id, r := range got {
			if id == r.RequestID || id == "" {
				t.Errorf("legacy row left: %+v", r)
			}
		}
		// Counters now match the rows.
		var n int64
		for _, r := range fixed.Results {
			if r.ExecID != nil && r.FinishedAt != nil {
				n++
			}
		}
		e := fixed.Executions[0]
		if e.SuccessCount+e.FailureCount != n {
			t.Errorf("counters %d+%d, rows %d", e.SuccessCount, e.FailureCount, n)
		}

		// Replaying the whole stream now inserts nothing and moves nothing.
		rs, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results})
		if err != nil {
			t.Fatal(err)
		}
		if rs.Stats.Inserted != 0 || rs.Stats.Completed != 0 || rs.Stats.CountersMoved != 0 {
			t.Errorf("replay after backfill wrote: %+v", rs.Stats)
		}
		final, _ := st.Dump(ctx)
		if !reflect.DeepEqual(fixed.Results, final.Results) || !reflect.DeepEqual(fixed.Executions, final.Executions) {
			t.Error("replay after backfill changed the tables")
		}
	})
}

func TestBackfillKilledAndRerunEndsTheSame(t *testing.T) {
	h := makeHistory()
	js := publish(t, h)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		whole := testutil.Another(t, st)
		setup(t, st, js, h)
		setup(t, whole, js, h)
		if _, err := backfill.Run(ctx, whole, backfill.Options{BatchSize: 3}); err != nil {
			t.Fatal(err)
		}
		part, err := backfill.Run(ctx, st, backfill.Options{BatchSize: 3, StopAfterBatches: 2})
		if err != nil || part.Complete {
			t.Fatalf("interrupted run: %+v %v", part, err)
		}
		if c, _ := st.BackfillCursors(ctx); len(c) == 0 {
			t.Fatal("an interrupted run must leave its cursor")
		}
		rest, err := backfill.Run(ctx, st, backfill.Options{BatchSize: 3})
		if err != nil || !rest.Resumed || !rest.Complete {
			t.Fatalf("rerun: %+v %v", rest, err)
		}
		a, _ := whole.Dump(ctx)
		b, _ := st.Dump(ctx)
		if !reflect.DeepEqual(a, b) {
			t.Fatal("a killed and rerun backfill differs from one that ran through")
		}
		ca, _ := whole.ListConflicts(ctx, 0)
		cb, _ := st.ListConflicts(ctx, 0)
		key := func(cs []store.Conflict) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.ResultID+"|"+c.KeptID+"|"+c.Reason)
			}
			sort.Strings(out)
			return out
		}
		if !reflect.DeepEqual(key(ca), key(cb)) {
			t.Errorf("conflicts differ:\n%v\n%v", key(ca), key(cb))
		}
	})
}

// With two workers (PostgreSQL), a run killed after one worker's first
// commit and before the other's must still leave the other's share to the
// rerun, which must leave no legacy row behind. The second worker is held
// on its rows (a session locks them) until the first has committed, and
// the run is then cancelled, as a kill would end it.
func TestBackfillRerunFinishesEveryWorkersShare(t *testing.T) {
	h := makeHistory()
	js := publish(t, h)
	ctx := context.Background()
	st := testutil.PostgresStore(t)
	whole := testutil.Another(t, st)
	setup(t, st, js, h)
	setup(t, whole, js, h)
	if _, err := backfill.Run(ctx, whole, backfill.Options{BatchSize: 1, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	hold, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx) //nolint:errcheck
	tag, err := hold.Exec(ctx, `SELECT 1 FROM execution_results WHERE (result_id = request_id OR result_id = '')
		AND abs(hashtext(result_id) % 2) = 0 FOR UPDATE`)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("lock worker 0's legacy rows: %v (%d rows)", err, tag.RowsAffected())
	}
	killed, kill := context.WithCancel(ctx)
	_, err = backfill.Run(killed, st, backfill.Options{BatchSize: 1, Workers: 2, Progress: func(backfill.Progress) { kill() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.BackfillCursors(ctx); len(c) != 2 {
		t.Fatalf("after a run killed before worker 0's first commit the cursors are %v; want both workers'", c)
	}
	if _, err := backfill.Run(ctx, st, backfill.Options{BatchSize: 1, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	a, _ := whole.Dump(ctx)
	b, _ := st.Dump(ctx)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("a killed and rerun backfill of two workers differs from one that ran through")
	}
}

// SQLite lets upstream's TEXT primary key be NULL; such rows are legacy too.
func TestBackfillNullIDsInSQLite(t *testing.T) {
	ctx := context.Background()
	st := testutil.SQLiteStore(t)
	ins := `INSERT INTO execution_results (result_id, request_id, pc_id, exit_code, stdout, started_at, finished_at, recorded_at)
		VALUES (?, ?, ?, 0, ?, '2026-04-01 08:00:00', '2026-04-01 08:00:01', ?)`
	for _, r := range [][]any{
		{nil, "req-n", "PC-1", "null id, recorded first", "2026-04-01 08:00:02"},
		{nil, "req-n", "PC-2", "null id, alone", "2026-04-01 08:00:02"},
		{wire.LegacyResultID("req-n", "PC-1"), "req-n", "PC-1", "stable copy", "2026-04-01T09:00:00+00:00"},
	} {
		if _, err := st.DB().ExecContext(ctx, ins, r...); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := backfill.Run(ctx, st, backfill.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scanned != 2 || sum.Rewritten != 2 || sum.ConflictsArchived != 1 {
		t.Errorf("summary: %+v", sum)
	}
	tables, _ := st.Dump(ctx)
	got := ids(tables.Results)
	if len(got) != 2 || got[wire.LegacyResultID("req-n", "PC-1")].Stdout != "null id, recorded first" || got[wire.LegacyResultID("req-n", "PC-2")].Stdout != "null id, alone" {
		t.Errorf("rows: %+v", tables.Results)
	}
	// The kept row's old-style text timestamps are untouched, byte for byte.
	var rec string
	st.DB().QueryRowContext(ctx, "SELECT CAST(recorded_at AS TEXT) FROM execution_results WHERE result_id = ?", wire.LegacyResultID("req-n", "PC-1")).Scan(&rec) //nolint:errcheck
	if rec != "2026-04-01 08:00:02" {
		t.Errorf("recorded_at rewritten to %q", rec)
	}
}
