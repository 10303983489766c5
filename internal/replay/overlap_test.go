package replay_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// failingPG is a PostgreSQL store, so a replay overlaps its batches, whose
// transaction for the batch ending at seq fails after all its statements
// ran, as a commit lost with its connection would: times times, or every
// time when times is negative. It fails only once another transaction is
// open beside it, so the batch behind it has begun and inserted its rows.
type failingPG struct {
	*pgstore.Store
	seq    uint64
	mu     sync.Mutex
	times  int
	open   atomic.Int32
	beside []int32 // transactions open when each failure was injected
}

// seqTap tells which batch a transaction is: the checkpoint it saves.
type seqTap struct {
	store.ProjectionTx
	seq *uint64
}

func (t seqTap) SaveCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	*t.seq = cp.LastSeq
	return t.ProjectionTx.SaveCheckpoint(ctx, cp)
}

func (f *failingPG) Project(ctx context.Context, rollback bool, fn func(store.ProjectionTx) error) error {
	f.open.Add(1)
	defer f.open.Add(-1)
	return f.Store.Project(ctx, rollback, func(tx store.ProjectionTx) error {
		var seq uint64
		if err := fn(seqTap{tx, &seq}); err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if seq != f.seq || f.times == 0 {
			return nil
		}
		f.times--
		for deadline := time.Now().Add(5 * time.Second); f.open.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		f.beside = append(f.beside, f.open.Load())
		return errors.New("write tcp 127.0.0.1:5432: connection reset by peer")
	})
}

// overlapFleet is a fleet whose stream makes batches of 50 or a little
// more (Batch.Full) that all write,
// with redeliveries and completions across their boundaries, and a way to
// open a fresh PostgreSQL store seeded with its executions.
func overlapFleet(t *testing.T) (jetstream.JetStream, *sim.Fleet, func() *failingPG) {
	cfg := sim.Defaults()
	cfg.PCs = 40
	js, f := fleetServer(t, cfg)
	return js, f, func() *failingPG {
		st := testutil.PostgresStore(t)
		if err := st.Seed(context.Background(), f.Executions, nil); err != nil {
			t.Fatal(err)
		}
		return &failingPG{Store: st}
	}
}

// A batch that fails while the batch behind it has begun on another
// connection: the one behind waits, the failed one is retried, and the
// tables are those of a replay that never failed.
func TestOverlappedBatchRetried(t *testing.T) {
	js, f, open := overlapFleet(t)
	ctx := context.Background()
	o := replay.Options{Stream: streams.Results, Batch: 50, RetryBase: time.Millisecond}
	want, ends := referenceRun(t, open(), js, o)

	st := open()
	st.seq, st.times = ends[1], 1
	var told []string
	o.OnRetry = func(seq uint64, attempt int, _ time.Duration, err error) {
		told = append(told, fmt.Sprintf("%d:%d:%v", seq, attempt, err))
	}
	sum := replayAll(t, st, js, o)
	if len(told) != 1 || !strings.HasPrefix(told[0], fmt.Sprintf("%d:1:", ends[1])) || !strings.Contains(told[0], "connection reset") {
		t.Errorf("retries reported: %q; want the overlapped attempt's failure, once", told)
	}
	if len(st.beside) != 1 || st.beside[0] < 2 {
		t.Fatalf("failures injected with %v transactions open; want one, beside the next batch's", st.beside)
	}
	got, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatal("after a retried batch the tables differ from a replay that never failed")
	}
	if sum.CheckpointSeq != uint64(len(f.Results)) {
		t.Errorf("checkpoint %d, want %d", sum.CheckpointSeq, len(f.Results))
	}
}

// A batch that keeps failing stops the replay with nothing after the
// batch before it written: the batch behind it, begun beside it, is rolled
// back. A resumed replay then ends where an uninterrupted one does.
func TestOverlappedBatchFailureWritesNothingAfterIt(t *testing.T) {
	js, _, open := overlapFleet(t)
	ctx := context.Background()
	dump := func(st *failingPG) *store.Tables {
		tables, err := st.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tables
	}
	o := replay.Options{Stream: streams.Results, Batch: 50, RetryBase: time.Millisecond, RetryAttempts: 2}
	all := open()
	_, ends := referenceRun(t, all, js, o)
	first := open()
	replayAll(t, first, js, replay.Options{Stream: streams.Results, Batch: 50, ToSeq: ends[0]})

	st := open()
	st.seq, st.times = ends[1], -1
	sum, err := replay.Run(ctx, st, js, o)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("batch ending at sequence %d failed 2 times", ends[1])) {
		t.Fatalf("replay with a batch that always fails: %v", err)
	}
	if want := fmt.Sprintf("everything up to sequence %d is committed: run again with --resume", ends[0]); !strings.Contains(err.Error(), want) {
		t.Errorf("the failure does not say %q: %v", want, err)
	}
	if len(st.beside) == 0 || st.beside[0] < 2 {
		t.Fatalf("failures injected with %v transactions open; want the next batch's beside the first", st.beside)
	}
	if sum.CheckpointSeq != ends[0] {
		t.Errorf("checkpoint %d, want %d", sum.CheckpointSeq, ends[0])
	}
	if cp, err := st.LoadCheckpoint(ctx, replay.CheckpointName(streams.Results, nil)); err != nil || cp == nil || cp.LastSeq != ends[0] {
		t.Fatalf("stored checkpoint %+v (%v), want %d", cp, err, ends[0])
	}
	if !reflect.DeepEqual(dump(first), dump(st)) {
		t.Fatal("a failed batch left the tables other than the batch before it did")
	}

	st.mu.Lock()
	st.times = 0
	st.mu.Unlock()
	o.Resume = true
	replayAll(t, st, js, o)
	if !reflect.DeepEqual(dump(all), dump(st)) {
		t.Fatal("the resumed replay differs from an uninterrupted one")
	}

	// The run's first batch failing leaves no checkpoint on a new database,
	// where --resume is refused: the advice is the same command again.
	o.Resume = false
	fresh := open()
	fresh.seq, fresh.times = ends[0], -1
	if _, err := replay.Run(ctx, fresh, js, o); err == nil || !strings.Contains(err.Error(), "it stopped before its first batch committed: run the same command again") {
		t.Fatalf("a first batch that always fails: %v", err)
	}
}

// --max-errors stops a replay whose batches overlap after the batch that
// reached the limit, as it stops one whose batches do not: the batch
// behind it, begun beside it, is rolled back.
func TestOverlappedMaxErrorsStopsAtItsBatch(t *testing.T) {
	// Two fleets, one after the other on the stream: the first ends with
	// an undecodable payload, the second brings new ids after it.
	ctx := context.Background()
	js := testutil.JetStream(t)
	var fleets []*sim.Fleet
	var total int
	for seed := range uint64(2) {
		cfg := sim.Defaults()
		cfg.Seed, cfg.PCs, cfg.Undecodable = 1+seed, 40, 1-int(seed)
		f := sim.Generate(cfg)
		if err := f.Publish(ctx, js); err != nil {
			t.Fatal(err)
		}
		fleets, total = append(fleets, f), total+len(f.Results)
	}
	open := func() *pgstore.Store {
		st := testutil.PostgresStore(t)
		for _, f := range fleets {
			if err := st.Seed(ctx, f.Executions, nil); err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	st := open()
	stopped, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, Batch: 50, MaxErrors: 1})
	if !errors.Is(err, replay.ErrTooManyErrors) || !stopped.StoppedEarly {
		t.Fatalf("--max-errors 1: %+v %v", stopped, err)
	}
	last := stopped.CheckpointSeq
	if last == 0 || last+50 >= uint64(total) {
		t.Fatalf("stopped with the checkpoint at %d of %d: the test needs a stop with a batch of new ids after it", last, total)
	}
	if cp, err := st.LoadCheckpoint(ctx, replay.CheckpointName(streams.Results, nil)); err != nil || cp == nil || cp.LastSeq != last {
		t.Fatalf("stored checkpoint %+v (%v), want %d", cp, err, last)
	}
	ref := open()
	replayAll(t, ref, js, replay.Options{Stream: streams.Results, Batch: 50, ToSeq: last})
	want, err := ref.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatal("the tables hold more than the batches up to the one that reached --max-errors")
	}
}

// beginFailingPG is a PostgreSQL store whose projection transaction number
// failAt fails before it begins, as a BEGIN does while the server restarts.
type beginFailingPG struct {
	*pgstore.Store
	failAt int32
	calls  atomic.Int32
}

func (f *beginFailingPG) Project(ctx context.Context, rollback bool, fn func(store.ProjectionTx) error) error {
	if f.calls.Add(1) == f.failAt {
		return errors.New("begin projection transaction: dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return f.Store.Project(ctx, rollback, fn)
}

// A batch whose transaction fails before it begins has not told the
// decoder to go on, and the writer settles it only once the next batch is
// decoded: the replay must not wait for itself (it did, with no connection
// open, after a PostgreSQL restart in the chaos suite). It is retried, and
// the tables are those of a replay that never failed.
func TestOverlappedBatchFailingAtBeginRetried(t *testing.T) {
	js, _, open := overlapFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := replay.Options{Stream: streams.Results, Batch: 50, RetryBase: time.Millisecond}
	want := referenceTables(t, open(), js, o)
	st := &beginFailingPG{Store: open().Store, failAt: 3}
	done := make(chan error, 1)
	go func() {
		_, err := replay.Run(ctx, st, js, o)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the replay waits for itself after a batch failed before it began")
	}
	got, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatal("after a batch that failed at its begin the tables differ from a replay that never failed")
	}
}

// referenceTables are the tables a replay that never failed leaves in st.
func referenceTables(t *testing.T, st testutil.Store, js jetstream.JetStream, o replay.Options) *store.Tables {
	want, _ := referenceRun(t, st, js, o)
	return want
}

// referenceRun is referenceTables and the sequence each batch ended at
// (where batches end depends on which messages merge; Batch.Full).
func referenceRun(t *testing.T, st testutil.Store, js jetstream.JetStream, o replay.Options) (*store.Tables, []uint64) {
	var ends []uint64
	o.Progress = func(p replay.Progress) { ends = append(ends, p.LastSeq) }
	replayAll(t, st, js, o)
	want, err := st.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) < 3 {
		t.Fatalf("the reference replay made %d batches; the test needs 3 or more", len(ends))
	}
	return want, ends
}
