package replay_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// outageServer is an embedded server that a test can stop and start again
// on the same port and store, with a client that reconnects as the CLI's
// does.
type outageServer struct {
	t    *testing.T
	dir  string
	port int
	mu   sync.Mutex
	srv  *natsserver.Server
	js   jetstream.JetStream
}

func newOutageServer(t *testing.T, f *sim.Fleet) *outageServer {
	o := &outageServer{t: t, dir: t.TempDir()}
	srv, err := natsconn.StartEmbedded(o.dir)
	if err != nil {
		t.Fatal(err)
	}
	o.srv, o.port = srv, srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { o.mu.Lock(); o.srv.Shutdown(); o.mu.Unlock() })
	nc, err := natsconn.Connect(natsconn.Options{URL: srv.ClientURL()}, "outage test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if o.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if err := f.Publish(context.Background(), o.js); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *outageServer) stop() { o.mu.Lock(); o.srv.Shutdown(); o.mu.Unlock() }

func (o *outageServer) start() {
	srv, err := natsconn.StartEmbeddedOn(o.dir, o.port)
	if err != nil {
		o.t.Error(err)
		return
	}
	o.mu.Lock()
	o.srv = srv
	o.mu.Unlock()
}

// F1: a replay survives the server going away mid-run and coming back; the
// tables equal those of a run without the outage.
func TestReplaySurvivesNATSOutage(t *testing.T) {
	f := fleetOf(120)
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		ctx := context.Background()
		srv := newOutageServer(t, f)
		ref := testutil.Another(t, st)
		for _, s := range []testutil.Store{st, ref} {
			if err := s.Seed(ctx, f.Executions, nil); err != nil {
				t.Fatal(err)
			}
		}
		replayAll(t, ref, srv.js, replay.Options{Stream: streams.Results})
		var once sync.Once
		sum, err := replay.Run(ctx, st, srv.js, replay.Options{Stream: streams.Results, Batch: 50, NATSTimeout: time.Minute,
			Progress: func(replay.Progress) {
				once.Do(func() {
					srv.stop()
					time.AfterFunc(3*time.Second, srv.start)
				})
			}})
		if err != nil {
			t.Fatalf("replay across an outage: %v", err)
		}
		if sum.Stats.Messages != int64(len(f.Results)) {
			t.Fatalf("read %d of %d messages", sum.Stats.Messages, len(f.Results))
		}
		want, _ := ref.Dump(ctx)
		got, _ := st.Dump(ctx)
		if !reflect.DeepEqual(normalise(want), normalise(got)) {
			t.Fatal("tables after the outage differ from an uninterrupted replay")
		}
	})
}

// F1: when the server does not come back, a replay stops within its bound
// and says where it stopped and what to do; the checkpoint is the last
// committed batch.
func TestReplayStopsWhenNATSStaysAway(t *testing.T) {
	f := fleetOf(120)
	st := testutil.SQLiteStore(t)
	srv := newOutageServer(t, f)
	var once sync.Once
	start := time.Now()
	sum, err := replay.Run(context.Background(), st, srv.js, replay.Options{Stream: streams.Results, Batch: 50, NATSTimeout: 2 * time.Second,
		Progress: func(replay.Progress) { once.Do(srv.stop) }})
	if !errors.Is(err, replay.ErrNATSUnreachable) || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("want a clear NATS error, got %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("took %s to give up on a 2s bound", took)
	}
	cp, err := st.LoadCheckpoint(context.Background(), replay.CheckpointName(streams.Results, nil))
	if err != nil || cp == nil || cp.LastSeq != sum.CheckpointSeq || cp.LastSeq == 0 {
		t.Fatalf("checkpoint %+v (%v), summary says %d", cp, err, sum.CheckpointSeq)
	}
}

// F2: an interrupt at any moment ends the run with the interruption, never
// with a summary that looks complete; the checkpoint is the last commit.
func TestReplayInterruptIsNotSuccess(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 120
	js, _ := fleetServer(t, cfg)
	for _, after := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond} {
		st := testutil.SQLiteStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		sum, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, Batch: 20})
		cancel()
		if err == nil {
			t.Fatalf("interrupted after %s: the run reported success (%+v)", after, sum)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted after %s: %v", after, err)
		}
		cp, _ := st.LoadCheckpoint(context.Background(), replay.CheckpointName(streams.Results, nil))
		if sum != nil && sum.CheckpointSeq > 0 && (cp == nil || cp.LastSeq != sum.CheckpointSeq) {
			t.Fatalf("checkpoint %+v, summary %d", cp, sum.CheckpointSeq)
		}
	}
}

// F2, the way it was found: interrupted while the reader waits for a
// server that went away, the run must end interrupted, not successful.
func TestReplayInterruptDuringOutage(t *testing.T) {
	f := fleetOf(120)
	st := testutil.SQLiteStore(t)
	srv := newOutageServer(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	sum, err := replay.Run(ctx, st, srv.js, replay.Options{Stream: streams.Results, Batch: 50, NATSTimeout: time.Minute,
		Progress: func(replay.Progress) {
			once.Do(func() {
				srv.stop()
				time.AfterFunc(500*time.Millisecond, cancel)
			})
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted during an outage: got %v (summary %+v)", err, sum)
	}
}

// F1 for --follow: it waits through an outage and projects what arrives
// after the server is back.
func TestFollowWaitsThroughOutage(t *testing.T) {
	f := fleetOf(30)
	st := testutil.SQLiteStore(t)
	srv := newOutageServer(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan uint64, 100)
	done := make(chan error, 1)
	go func() {
		_, err := replay.Run(ctx, st, srv.js, replay.Options{Stream: streams.Results, Follow: true,
			OnFollowBatch: func(_ projector.Stats, seq uint64) { seen <- seq }})
		done <- err
	}()
	last := uint64(len(f.Results))
	waitFor := func(what string, ok func() bool) {
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the catch-up", func() bool {
		cp, _ := st.LoadCheckpoint(context.Background(), replay.CheckpointName(streams.Results, nil))
		return cp != nil && cp.LastSeq >= last
	})
	srv.stop()
	time.Sleep(2 * time.Second)
	srv.start()
	late := sim.Generate(sim.Config{Seed: 99, PCs: 1, Broadcasts: 1, Start: sim.Defaults().Start})
	waitFor("a publish after the restart", func() bool {
		_, err := srv.js.Publish(context.Background(), late.Results[0].Subject, late.Results[0].Data)
		return err == nil
	})
	waitFor("the late message to be projected", func() bool {
		select {
		case seq := <-seen:
			return seq > last
		default:
			return false
		}
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v", err)
	}
}

// F4: an empty message is quarantined on SQLite as an empty blob, and
// --only-quarantined retries it (and the others) without failing.
func TestEmptyPayloadQuarantineRetry(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 10
	js, _ := fleetServer(t, cfg)
	ctx := context.Background()
	for _, data := range [][]byte{nil, {}} {
		if _, err := js.Publish(ctx, "results.empty", data); err != nil {
			t.Fatal(err)
		}
	}
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		sum := replayAll(t, st, js, replay.Options{Stream: streams.Results})
		if sum.Stats.Quarantined < 3 { // the fleet's undecodable payload and the two empty ones
			t.Fatalf("quarantined %d", sum.Stats.Quarantined)
		}
		retry, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, OnlyQuarantined: true})
		if err != nil {
			t.Fatalf("--only-quarantined with an empty payload: %v", err)
		}
		if retry.Stats.Quarantined != sum.Stats.Quarantined {
			t.Fatalf("retry quarantined %d, want all %d again", retry.Stats.Quarantined, sum.Stats.Quarantined)
		}
		left, err := st.ListQuarantine(ctx, streams.Results, 0)
		if err != nil || int64(len(left)) != sum.Stats.Quarantined {
			t.Fatalf("quarantine after the retry: %d entries, %v", len(left), err)
		}
	})
}

// flakyStore fails its first projections as a dropped connection would.
type flakyStore struct {
	testutil.Store
	fails int
}

func (f *flakyStore) Project(ctx context.Context, rollback bool, fn func(store.ProjectionTx) error) error {
	if f.fails > 0 {
		f.fails--
		return errors.New("write tcp 127.0.0.1:5432: connection reset by peer")
	}
	return f.Store.Project(ctx, rollback, fn)
}

// A batch that fails is retried, and each retry is reported (the CLI
// prints it on stderr) rather than silent.
func TestRetriesAreReported(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 10
	js, _ := fleetServer(t, cfg)
	st := &flakyStore{Store: testutil.SQLiteStore(t), fails: 2}
	var told []string
	_, err := replay.Run(context.Background(), st, js, replay.Options{Stream: streams.Results, RetryBase: time.Millisecond,
		OnRetry: func(seq uint64, attempt int, _ time.Duration, err error) {
			told = append(told, fmt.Sprintf("%d:%d:%v", seq, attempt, err))
		}})
	if err != nil {
		t.Fatalf("two failures then success: %v", err)
	}
	if len(told) != 2 || !strings.Contains(told[0], "connection reset") {
		t.Fatalf("retries reported: %q", told)
	}
}

// F1 for verify: a server restart mid-verify changes nothing in the
// verdict, and one that stays away ends the verify with an error, never a
// clean report over the part it read.
func TestVerifyAcrossNATSOutage(t *testing.T) {
	st, srv := projectedOutageFleet(t)
	ctx := context.Background()
	clean, err := replay.Verify(ctx, st, srv.js, replay.Options{Stream: streams.Results, Batch: 50}, replay.Checks{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}

	var once sync.Once
	rep, err := replay.Verify(ctx, st, srv.js, replay.Options{Stream: streams.Results, Batch: 50, NATSTimeout: time.Minute,
		Progress: func(replay.Progress) {
			once.Do(func() {
				srv.stop()
				time.AfterFunc(3*time.Second, srv.start)
			})
		}}, replay.Checks{Limit: 5})
	if err != nil {
		t.Fatalf("verify across an outage: %v", err)
	}
	if rep.Checked != clean.Checked || !reflect.DeepEqual(rep.Counts, clean.Counts) {
		t.Fatalf("verify across an outage checked %d, counts %v; without one %d, %v", rep.Checked, rep.Counts, clean.Checked, clean.Counts)
	}

	once = sync.Once{}
	start := time.Now()
	rep, err = replay.Verify(ctx, st, srv.js, replay.Options{Stream: streams.Results, Batch: 50, NATSTimeout: 2 * time.Second,
		Progress: func(replay.Progress) { once.Do(srv.stop) }}, replay.Checks{Limit: 5})
	if !errors.Is(err, replay.ErrNATSUnreachable) || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("want a clear NATS error, got %v (report %+v)", err, rep)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("took %s to give up on a 2s bound", took)
	}
}

// F1 for --rebuild: a server that stays away stops the rebuild with the
// live tables as they were.
func TestRebuildStopsWhenNATSStaysAway(t *testing.T) {
	st, srv := projectedOutageFleet(t)
	ctx := context.Background()
	before, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	start := time.Now()
	_, err = replay.Rebuild(ctx, st, srv.js, replay.Options{Stream: streams.Results, Batch: 50, NATSTimeout: 2 * time.Second,
		Progress: func(replay.Progress) { once.Do(srv.stop) }}, true)
	if !errors.Is(err, replay.ErrNATSUnreachable) || !strings.Contains(err.Error(), "live tables are untouched") {
		t.Fatalf("want a clear NATS error, got %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("took %s to give up on a 2s bound", took)
	}
	after, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatal("a rebuild stopped by an outage changed the live tables")
	}
}

// projectedOutageFleet is a 120-PC fleet on a server a test can stop,
// already replayed into a SQLite store.
func projectedOutageFleet(t *testing.T) (testutil.Store, *outageServer) {
	f := fleetOf(120)
	st := testutil.SQLiteStore(t)
	srv := newOutageServer(t, f)
	if err := st.Seed(context.Background(), f.Executions, nil); err != nil {
		t.Fatal(err)
	}
	replayAll(t, st, srv.js, replay.Options{Stream: streams.Results})
	return st, srv
}

// fleetOf is the simulator's default fleet with pcs PCs.
func fleetOf(pcs int) *sim.Fleet {
	cfg := sim.Defaults()
	cfg.PCs = pcs
	return sim.Generate(cfg)
}
