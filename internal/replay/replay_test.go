package replay_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

func fleetServer(t *testing.T, cfg sim.Config) (jetstream.JetStream, *sim.Fleet) {
	t.Helper()
	js := testutil.JetStream(t)
	f := sim.Generate(cfg)
	if err := f.Publish(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	return js, f
}

func replayAll(t *testing.T, st testutil.Store, js jetstream.JetStream, o replay.Options) *replay.Summary {
	t.Helper()
	sum, err := replay.Run(context.Background(), st, js, o)
	if err != nil {
		t.Fatalf("replay %s: %v", o.Stream, err)
	}
	return sum
}

func TestReplayFleet(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 60
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		if err := st.Seed(ctx, f.Executions, nil); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Events, Batch: 64})
		sum := replayAll(t, st, js, replay.Options{Stream: streams.Results, Batch: 137})
		if sum.Stats.Messages != int64(len(f.Results)) {
			t.Fatalf("read %d messages, published %d", sum.Stats.Messages, len(f.Results))
		}
		if sum.Stats.Quarantined != int64(cfg.Undecodable) {
			t.Errorf("quarantined %d, want %d", sum.Stats.Quarantined, cfg.Undecodable)
		}
		if sum.Stats.Unchanged == 0 || sum.Stats.Completed == 0 || sum.Stats.InventoryUpserts == 0 || sum.Stats.CountersMoved == 0 {
			t.Errorf("fleet should exercise duplicates, in-flight completion, inventory and counters: %+v", sum.Stats)
		}
		tables, err := st.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Every result has exactly one row under its stable id.
		ids := map[string]bool{}
		for _, m := range f.Results {
			if r, err := wire.DecodeExecResult(m.Data); err == nil {
				ids[r.StableID()] = true
			}
		}
		finished := 0
		for _, r := range tables.Results {
			if r.FinishedAt != nil {
				finished++
				if !ids[r.ResultID] {
					t.Errorf("finished row %s has no published result", r.ResultID)
				}
			}
			if obj, ok := f.Objects[r.RequestID+"/stdout"]; ok && r.FinishedAt != nil && r.Stdout == "" {
				t.Errorf("row %s: overflowed stdout (%d bytes) was not fetched", r.ResultID, len(obj))
			}
		}
		if finished != len(ids) {
			t.Errorf("%d finished rows, %d distinct results", finished, len(ids))
		}
		for _, e := range tables.Executions {
			var s, fl int64
			for _, r := range tables.Results {
				if r.ExecID != nil && *r.ExecID == e.ExecID && r.FinishedAt != nil {
					if *r.ExitCode == 0 {
						s++
					} else {
						fl++
					}
				}
			}
			if e.SuccessCount != s || e.FailureCount != fl {
				t.Errorf("execution %s counters %d/%d, rows say %d/%d", e.ExecID, e.SuccessCount, e.FailureCount, s, fl)
			}
		}
		q, err := st.ListQuarantine(ctx, streams.Results, 0)
		if err != nil || len(q) != cfg.Undecodable || !strings.Contains(q[0].Error, `"exit_code"`) {
			t.Errorf("quarantine: %+v %v", q, err)
		}

		// A second replay changes nothing.
		again := replayAll(t, st, js, replay.Options{Stream: streams.Results, Batch: 500})
		if again.Stats.Inserted != 0 || again.Stats.Completed != 0 || again.Stats.CountersMoved != 0 {
			t.Errorf("second replay wrote: %+v", again.Stats)
		}
		after, _ := st.Dump(ctx)
		if !reflect.DeepEqual(tables.Results, after.Results) || !reflect.DeepEqual(tables.Executions, after.Executions) {
			t.Error("second replay changed the tables")
		}
	})
}

func TestReplayResumeEqualsUninterrupted(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 40
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		whole := testutil.Another(t, st)
		for _, s := range []testutil.Store{st, whole} {
			if err := s.Seed(ctx, f.Executions, nil); err != nil {
				t.Fatal(err)
			}
			replayAll(t, s, js, replay.Options{Stream: streams.Events})
		}
		replayAll(t, whole, js, replay.Options{Stream: streams.Results})
		half := uint64(len(f.Results) / 2)
		first := replayAll(t, st, js, replay.Options{Stream: streams.Results, ToSeq: half, Batch: 50})
		if first.CheckpointSeq != half {
			t.Fatalf("checkpoint at %d, want %d", first.CheckpointSeq, half)
		}
		rest := replayAll(t, st, js, replay.Options{Stream: streams.Results, Resume: true, Batch: 50})
		if !rest.Plan.Resumed || rest.Plan.FromSeq != half+1 {
			t.Fatalf("resume plan: %+v", rest.Plan)
		}
		a, _ := whole.Dump(ctx)
		b, _ := st.Dump(ctx)
		if !reflect.DeepEqual(normalise(a), normalise(b)) {
			t.Fatal("interrupted and resumed replay differs from an uninterrupted one")
		}
	})
}

// normalise drops sub-microsecond digits: PostgreSQL keeps microseconds.
func normalise(t *store.Tables) *store.Tables {
	for i := range t.Results {
		r := &t.Results[i]
		r.StartedAt, r.RecordedAt = r.StartedAt.Truncate(1000), r.RecordedAt.Truncate(1000)
		if r.FinishedAt != nil {
			x := r.FinishedAt.Truncate(1000)
			r.FinishedAt = &x
		}
	}
	for i := range t.Inventory {
		f := &t.Inventory[i]
		f.RecordedAt = f.RecordedAt.Truncate(1000)
		if f.CollectedAt != nil {
			x := f.CollectedAt.Truncate(1000)
			f.CollectedAt = &x
		}
	}
	for i := range t.Executions {
		t.Executions[i].InitiatedAt = t.Executions[i].InitiatedAt.Truncate(1000)
	}
	return t
}

func TestResumeRefusesRecreatedStream(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 10
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	st := testutil.SQLiteStore(t)
	replayAll(t, st, js, replay.Options{Stream: streams.Results, ToSeq: 5})
	if err := js.DeleteStream(ctx, streams.Results); err != nil {
		t.Fatal(err)
	}
	if err := f.Publish(ctx, js); err != nil {
		t.Fatal(err)
	}
	_, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, Resume: true})
	if err == nil || !strings.Contains(err.Error(), "recreated") {
		t.Fatalf("want a refusal naming the recreated stream, got %v", err)
	}
}

// A replay interrupted mid-way (Ctrl-C) and resumed ends in the same tables
// as one that ran through.
func TestReplayInterruptedThenResumed(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 40
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		whole := testutil.Another(t, st)
		for _, s := range []testutil.Store{st, whole} {
			if err := s.Seed(ctx, f.Executions, nil); err != nil {
				t.Fatal(err)
			}
		}
		replayAll(t, whole, js, replay.Options{Stream: streams.Results})
		cctx, cancel := context.WithCancel(ctx)
		batches := 0
		_, err := replay.Run(cctx, st, js, replay.Options{Stream: streams.Results, Batch: 20, Progress: func(replay.Progress) {
			if batches++; batches == 3 {
				cancel()
			}
		}})
		cancel()
		if err == nil {
			t.Fatal("an interrupted replay must report the interruption")
		}
		cp, err := st.LoadCheckpoint(ctx, streams.Results)
		if err != nil || cp == nil || cp.LastSeq < 60 || cp.LastSeq >= uint64(len(f.Results)) {
			t.Fatalf("checkpoint after interruption: %+v %v", cp, err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Results, Resume: true, Batch: 20})
		a, _ := whole.Dump(ctx)
		b, _ := st.Dump(ctx)
		if !reflect.DeepEqual(normalise(a), normalise(b)) {
			t.Fatal("interrupted and resumed replay differs from an uninterrupted one")
		}
	})
}

// --follow catches up, then projects what is published later through its
// own durable consumer, acking after commit.
// seededFleet publishes a fleet of pcs PCs and seeds a SQLite store with
// its executions.
func seededFleet(t *testing.T, pcs int) (jetstream.JetStream, sim.Config, testutil.Store) {
	t.Helper()
	cfg := sim.Defaults()
	cfg.PCs = pcs
	js, f := fleetServer(t, cfg)
	st := testutil.SQLiteStore(t)
	if err := st.Seed(context.Background(), f.Executions, nil); err != nil {
		t.Fatal(err)
	}
	return js, cfg, st
}

func TestFollow(t *testing.T) {
	js, cfg, st := seededFleet(t, 30)
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	var lastSeq uint64
	committed := make(chan uint64, 100)
	go func() {
		_, err := replay.Run(cctx, st, js, replay.Options{Stream: streams.Results, Follow: true, Batch: 100,
			OnFollowBatch: func(_ projector.Stats, seq uint64) { committed <- seq }})
		done <- err
	}()
	late := wire.ExecResult{ResultID: "late-1", RequestID: "late-req", PCID: "PC-0001", ExitCode: 0, Stdout: "late",
		StartedAt: cfg.Start, FinishedAt: cfg.Start.Add(time.Second)}
	// Publish after the catch-up began; follow must pick it up.
	time.Sleep(200 * time.Millisecond)
	ack, err := js.Publish(ctx, "results.late-req", late.Encode())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for lastSeq < ack.Sequence {
		select {
		case lastSeq = <-committed:
		case <-deadline:
			t.Fatalf("follow did not project sequence %d", ack.Sequence)
		}
	}
	rows, err := st.FindResults(ctx, store.ResultFilter{ResultID: "late-1"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("late result not projected: %v %v", rows, err)
	}
	s, _ := js.Stream(ctx, streams.Results)
	c, err := s.Consumer(ctx, replay.DefaultConsumer)
	if err != nil {
		t.Fatalf("durable %s: %v", replay.DefaultConsumer, err)
	}
	info, _ := c.Info(ctx)
	if info.AckFloor.Stream != ack.Sequence {
		t.Errorf("ack floor %d, want %d (acked after commit)", info.AckFloor.Stream, ack.Sequence)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("follow ended with %v", err)
	}
}

// A --from-seq past the stream's next sequence is refused (most often a
// number from before the stream was recreated); the next sequence itself
// is an empty window, as a script resuming from its own bookkeeping
// asks for when nothing is new.
func TestFromSeqPastTheEnd(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 5
	js, _ := fleetServer(t, cfg)
	ctx := context.Background()
	s, err := js.Stream(ctx, streams.Results)
	if err != nil {
		t.Fatal(err)
	}
	last := s.CachedInfo().State.LastSeq
	p, err := replay.Resolve(ctx, js, nil, replay.Options{Stream: streams.Results, FromSeq: last + 1})
	if err != nil || p.Messages != 0 || p.FromSeq != last+1 || p.ToSeq != last {
		t.Fatalf("--from-seq last+1: want an empty window %d..%d, got %+v, %v", last+1, last, p, err)
	}
	_, err = replay.Resolve(ctx, js, nil, replay.Options{Stream: streams.Results, FromSeq: last + 2})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("--from-seq %d is past the end of stream RESULTS, whose last sequence is %d", last+2, last)) {
		t.Fatalf("--from-seq last+2: want a refusal naming the last sequence, got %v", err)
	}
	st := testutil.SQLiteStore(t)
	if _, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, FromSeq: last + 100}); err == nil {
		t.Fatal("replay --from-seq past the end: want the refusal, got none")
	}
}

// A --subject none of the stream's subjects can match (the other stream's,
// most often) is refused with the stream's subjects, not replayed as an
// empty window; one inside them is a window of its own.
func TestSubjectOutsideTheStream(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 5
	js, _ := fleetServer(t, cfg)
	ctx := context.Background()
	_, err := replay.Resolve(ctx, js, nil, replay.Options{Stream: streams.Results, Subjects: []string{"events.>"}})
	if err == nil || !strings.Contains(err.Error(), "--subject events.> matches none of stream RESULTS's subjects (results.>)") {
		t.Fatalf("want a refusal naming the stream's subjects, got %v", err)
	}
	p, err := replay.Resolve(ctx, js, nil, replay.Options{Stream: streams.Results, Subjects: []string{"results.*"}})
	if err != nil || p.Messages == 0 {
		t.Fatalf("results.* on RESULTS: %+v, %v", p, err)
	}
	// A mirror has no subjects of its own and holds RESULTS's.
	mirror, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RESULTS_COPY", Mirror: &jetstream.StreamSource{Name: streams.Results}})
	if err != nil {
		t.Fatal(err)
	}
	want := p.Messages
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := mirror.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= want || time.Now().After(deadline) {
			break
		}
	}
	p, err = replay.Resolve(ctx, js, nil, replay.Options{Stream: "RESULTS_COPY", Subjects: []string{"results.*"}})
	if err != nil || p.Messages != want {
		t.Fatalf("results.* on a mirror of RESULTS: %+v, %v; want %d messages", p, err, want)
	}
}

// An interrupted run says --resume only once it has committed a batch of
// its own: before that, a new database has no checkpoint and --resume is
// refused, so the advice is to run the same command again.
func TestResumeHint(t *testing.T) {
	for _, c := range []struct {
		from, committed uint64
		want            string
	}{
		{1, 0, "it stopped before its first batch committed: run the same command again"},
		{50, 49, "before its first batch committed"},
		{1, 118, "everything up to sequence 118 is committed: run again with --resume to continue"},
		{50, 50, "everything up to sequence 50 is committed"},
	} {
		sum := &replay.Summary{Plan: &replay.Plan{FromSeq: c.from}, CheckpointSeq: c.committed}
		if got := sum.ResumeHint(); !strings.Contains(got, c.want) {
			t.Errorf("window from %d, committed %d: %q, want %q", c.from, c.committed, got, c.want)
		}
	}
}

// --resume refuses a stream purged past the checkpoint.
func TestResumeRefusesPurgedStream(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 10
	js, _ := fleetServer(t, cfg)
	ctx := context.Background()
	st := testutil.SQLiteStore(t)
	replayAll(t, st, js, replay.Options{Stream: streams.Results, ToSeq: 5})
	s, _ := js.Stream(ctx, streams.Results)
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(20)); err != nil {
		t.Fatal(err)
	}
	_, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, Resume: true})
	if err == nil || !strings.Contains(err.Error(), "purged") {
		t.Fatalf("want a refusal naming the purge, got %v", err)
	}
}

// A dry run reports what would change and changes nothing; --max-errors
// stops at the limit; --only-quarantined retries and clears what now works.
func TestDryRunMaxErrorsAndQuarantineRetry(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs, cfg.Undecodable = 10, 3
	js, _ := fleetServer(t, cfg)
	ctx := context.Background()
	st := testutil.SQLiteStore(t)
	dry, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, DryRun: true, Batch: 7})
	if err != nil || dry.Stats.Inserted == 0 || !dry.DryRun {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if tables, _ := st.Dump(ctx); len(tables.Results) != 0 {
		t.Fatal("a dry run wrote rows")
	}
	stopped, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, MaxErrors: 1, Batch: 1000})
	if !errors.Is(err, replay.ErrTooManyErrors) || !stopped.StoppedEarly || stopped.StopReason == "" {
		t.Fatalf("--max-errors 1: %+v %v", stopped, err)
	}
	replayAll(t, st, js, replay.Options{Stream: streams.Results, Resume: true})
	q, _ := st.ListQuarantine(ctx, streams.Results, 0)
	if len(q) != 3 {
		t.Fatalf("quarantined %d, want 3", len(q))
	}
	// "Fix the cause": here, the payloads are replaced by decodable ones.
	for _, e := range q {
		fixed := wire.ExecResult{RequestID: "fixed-" + fmt.Sprint(e.Seq), PCID: "PC-9999", Stdout: "fixed", StartedAt: cfg.Start, FinishedAt: cfg.Start}
		execSQL(t, st, "", "UPDATE kanade_quarantine SET payload = ? WHERE seq = ?", fixed.Encode(), e.Seq)
	}
	sum, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, OnlyQuarantined: true})
	if err != nil || sum.Stats.Inserted != 3 {
		t.Fatalf("--only-quarantined: %+v %v", sum, err)
	}
	if q, _ := st.ListQuarantine(ctx, streams.Results, 0); len(q) != 0 {
		t.Errorf("quarantine not cleared: %d left", len(q))
	}
}

// countingStore counts the checkpoints a replay saves.
type countingStore struct {
	testutil.Store
	saves *int
}

type countingTx struct {
	store.ProjectionTx
	saves *int
}

func (c countingTx) SaveCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	*c.saves++
	return c.ProjectionTx.SaveCheckpoint(ctx, cp)
}

func (c countingStore) Project(ctx context.Context, rollback bool, fn func(store.ProjectionTx) error) error {
	return c.Store.Project(ctx, rollback, func(tx store.ProjectionTx) error { return fn(countingTx{tx, c.saves}) })
}

// A replay of a stream that is already projected writes nothing: no row,
// no counter, no derived row, no quarantine entry, and one checkpoint.
func TestReReplayWritesNothing(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 40
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		if err := st.Seed(ctx, f.Executions, nil); err != nil {
			t.Fatal(err)
		}
		var saves int
		cs := countingStore{st, &saves}
		first := replayAll(t, cs, js, replay.Options{Stream: streams.Results, Batch: 40})
		if saves < 3 || !first.Stats.Wrote() || first.Stats.Quarantined == 0 {
			t.Fatalf("first replay: %d checkpoints, stats %+v", saves, first.Stats)
		}
		before, _ := st.Dump(ctx)
		qBefore, _ := st.ListQuarantine(ctx, streams.Results, 0)
		saves = 0
		again := replayAll(t, cs, js, replay.Options{Stream: streams.Results, Batch: 40})
		after, _ := st.Dump(ctx)
		qAfter, _ := st.ListQuarantine(ctx, streams.Results, 0)
		if again.Stats.Wrote() || saves != 1 || again.CheckpointSeq != first.CheckpointSeq {
			t.Errorf("re-replay: stats %+v, %d checkpoints saved (want 1), checkpoint %d (want %d)", again.Stats, saves, again.CheckpointSeq, first.CheckpointSeq)
		}
		if !reflect.DeepEqual(before, after) || !reflect.DeepEqual(qBefore, qAfter) {
			t.Error("a re-replay changed the tables or the quarantine")
		}
		cp, err := st.LoadCheckpoint(ctx, replay.CheckpointName(streams.Results, nil))
		if err != nil || cp == nil || cp.LastSeq != first.CheckpointSeq {
			t.Errorf("checkpoint %+v %v", cp, err)
		}
	})
}

// TestBatchBoundaries: the reader hands messages over in chunks smaller
// than a batch (so a batch's raw payloads are never all held), and every
// batch still ends where the rule says: at --batch messages, a message
// whose derived writes all go to rows an earlier message of the batch
// writes counting half, or at the message that brings its payloads to
// --batch-bytes, the last batch the rest.
func TestBatchBoundaries(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 300
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	const batch = 300 // more than one chunk, not a multiple of one
	// Each message's derived writes, from the projector itself; the rule
	// below is the test's own statement of how they merge.
	msgs := make([]projector.Message, len(f.Results))
	for i, m := range f.Results {
		msgs[i] = projector.Message{Stream: streams.Results, Seq: uint64(i + 1), Subject: m.Subject, Data: m.Data, Published: cfg.Start}
	}
	all, err := projector.New(testutil.SQLiteStore(t), streams.NewOutputs(js), streams.NewManifests(js)).Prepare(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	derived := map[uint64][]projector.DerivedWrite{}
	for _, p := range all.Prepared() {
		derived[p.Seq] = p.Derived
	}
	boundaries := func(limit int) (out []uint64, merged int) {
		var n, half, bytes int
		rows := map[projector.DerivedWrite]bool{}
		// The stream holds the payloads in publish order.
		for i, m := range f.Results {
			n, bytes = n+1, bytes+len(m.Data)
			if ws := derived[uint64(i+1)]; len(ws) > 0 {
				merges := true
				for _, w := range ws {
					w.At = time.Time{}
					merges = merges && rows[w]
					rows[w] = true
				}
				if merges {
					half++
				}
			}
			if 2*n-half >= 2*batch || bytes >= limit || i == len(f.Results)-1 {
				out = append(out, uint64(i+1))
				merged += half
				n, half, bytes = 0, 0, 0
				clear(rows)
			}
		}
		return out, merged
	}
	for _, tc := range []struct {
		name  string
		bytes int64 // --batch-bytes; 0 is the default, which this fleet never reaches
	}{{"count", 0}, {"bytes", 64 << 10}} {
		want, merged := boundaries(int(cmp.Or(tc.bytes, replay.DefaultBatchBytes)))
		if len(want) < 3 || (tc.bytes > 0) == (want[0] > batch) || (tc.bytes == 0 && merged == 0) {
			t.Fatalf("%s: the fleet's payloads do not exercise the limit: %v (%d merged)", tc.name, want, merged)
		}
		t.Run(tc.name, func(t *testing.T) {
			testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
				if err := st.Seed(ctx, f.Executions, nil); err != nil {
					t.Fatal(err)
				}
				var done []uint64
				replayAll(t, st, js, replay.Options{Stream: streams.Results, Batch: batch, BatchBytes: tc.bytes,
					Progress: func(p replay.Progress) { done = append(done, p.Done) }})
				if !reflect.DeepEqual(done, want) {
					t.Fatalf("batches ended after %v messages, want %v", done, want)
				}
			})
		})
	}
}

// TestFollowBatchBytes: --follow's fetches stop at --batch-bytes too (or at
// what one of the server's largest messages needs, if more), so a backlog
// of large results is not taken in one batch.
func TestFollowBatchBytes(t *testing.T) {
	js, cfg, st := seededFleet(t, 10)
	ctx := context.Background()
	// The smallest fetch the follow makes: one message of the server's
	// largest, with room for its subject and headers.
	limit := js.Conn().MaxPayload() + 64<<10
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		bytes, msgs int64
		seq         uint64
	}
	batches := make(chan batch, 100)
	hold := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		held := false
		_, err := replay.Run(cctx, st, js, replay.Options{Stream: streams.Results, Follow: true, Batch: 100, BatchBytes: 64 << 10,
			OnFollowBatch: func(s projector.Stats, seq uint64) {
				batches <- batch{s.Bytes, s.Messages, seq}
				if !held {
					held = true
					<-hold // the backlog builds up meanwhile
				}
			}})
		done <- err
	}()
	publish := func(i int, stdout string) uint64 {
		r := wire.ExecResult{ResultID: fmt.Sprintf("big-%d", i), RequestID: "big-req", PCID: "PC-0001", Stdout: stdout,
			StartedAt: cfg.Start, FinishedAt: cfg.Start.Add(time.Second)}
		ack, err := js.Publish(ctx, "results.big-req", r.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	// A message published before the replay resolves its window is caught
	// up, not followed: publish until the follow has a batch.
	var first batch
	for i := 0; first.seq == 0; i++ {
		publish(-1-i, "first")
		select {
		case first = <-batches:
		case <-time.After(100 * time.Millisecond):
		}
	}
	big := strings.Repeat("x", 64<<10)
	var last uint64
	const backlog = 48 // 3 MB: about three of the smallest fetches
	for i := 1; i <= backlog; i++ {
		last = publish(i, big)
	}
	close(hold)
	var got []batch
	deadline := time.After(20 * time.Second)
	for seq := first.seq; seq < last; {
		select {
		case b := <-batches:
			got, seq = append(got, b), b.seq
		case <-deadline:
			t.Fatalf("follow did not reach sequence %d: batches %+v", last, got)
		}
	}
	var msgs int64
	for _, b := range got {
		msgs += b.msgs
		if b.bytes > limit {
			t.Errorf("a follow batch of %d messages holds %d bytes of payload, over %d", b.msgs, b.bytes, limit)
		}
	}
	if msgs < backlog || len(got) < 3 {
		t.Errorf("the backlog of %d came in %d batches holding %d messages: %+v", backlog, len(got), msgs, got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("follow ended with %v", err)
	}
}
