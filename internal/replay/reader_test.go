package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// TestReadSurvivesAStalledPipeline holds the reader back after every
// batch's worth of chunks for longer than the server takes to deliver a
// whole pull, so the pulled messages wait in nats.go while the handler
// waits for the pipeline. The window must arrive whole, once and in order, and nats.go
// must report no slow consumer. (The drops the Messages iterator made
// needed the reader off the CPU in the millisecond after it asked for a
// pull, which a test cannot arrange; this one guards the handler's own
// waiting.)
func TestReadSurvivesAStalledPipeline(t *testing.T) {
	ctx := context.Background()
	var slow atomic.Int64
	js := testutil.JetStream(t, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			slow.Add(1)
		}
	}))
	nc := js.Conn()
	const n, batch = 1200, 100
	s := filledStream(t, js, n)
	plan := &Plan{Stream: "RESULTS", FromSeq: 1, ToSeq: n, Messages: n}
	out := make(chan chunk)
	errc := make(chan error, 1)
	go func() { errc <- read(ctx, s, nc.MaxPayload(), plan, Options{Stream: "RESULTS", Batch: batch}, out) }()
	var want uint64 = 1
	for c := range out {
		for _, m := range c.msgs {
			if m.Seq != want {
				t.Fatalf("got sequence %d, want %d", m.Seq, want)
			}
			want++
		}
		if (want-1)%batch == 0 {
			time.Sleep(30 * time.Millisecond)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if want != n+1 {
		t.Fatalf("read %d messages, want %d", want-1, n)
	}
	if got := slow.Load(); got != 0 {
		t.Fatalf("nats.go reported %d slow consumers", got)
	}
}

// filledStream makes a stream of n small messages.
func filledStream(t *testing.T, js jetstream.JetStream, n int) jetstream.Stream {
	t.Helper()
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RESULTS", Subjects: []string{"results.>"}})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 512)
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("results.pc%d", i%7), payload); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestReadStopsWhileHandingOn ends the context while the handler waits to
// hand a chunk on, then closes the connection while it waits: read must
// return each time (no hang, no send on the closed channel) and say why.
func TestReadStopsWhileHandingOn(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		js := testutil.JetStream(t)
		s := filledStream(t, js, 500)
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan chunk)
		errc := make(chan error, 1)
		plan := &Plan{Stream: "RESULTS", FromSeq: 1, ToSeq: 500, Messages: 500}
		go func() {
			errc <- read(ctx, s, js.Conn().MaxPayload(), plan, Options{Stream: "RESULTS", Batch: 100}, out)
		}()
		<-out // the handler now waits with the next chunk
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("read returned %v, want the cancellation", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("read did not return after the context ended")
		}
		for range out { // closed, and nothing more after the cancellation but what was already handed on
		}
	})
	t.Run("connection closed", func(t *testing.T) {
		js := testutil.JetStream(t)
		s := filledStream(t, js, 5000)
		out := make(chan chunk)
		errc := make(chan error, 1)
		plan := &Plan{Stream: "RESULTS", FromSeq: 1, ToSeq: 5000, Messages: 5000}
		go func() {
			errc <- read(context.Background(), s, js.Conn().MaxPayload(), plan, Options{Stream: "RESULTS", Batch: 100}, out)
		}()
		<-out
		js.Conn().Close()
		// Drain beside the wait, so a read that never returns fails the
		// test instead of hanging it.
		gotc := make(chan int, 1)
		go func() {
			got := 100
			for c := range out {
				got += len(c.msgs)
			}
			gotc <- got
		}()
		select {
		case err := <-errc:
			if !errors.Is(err, jetstream.ErrConnectionClosed) || !strings.Contains(err.Error(), "read RESULTS after") {
				t.Fatalf("read returned %v, want the closed connection", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("read did not return after the connection closed")
		}
		if got := <-gotc; got >= 5000 {
			t.Fatalf("read all %d messages over a closed connection", got)
		}
	})
}

// A reader that fails closes its channel before it returns, so the decoder
// hands on what it read and ends as if the window were done, and the
// writer may finish before the reader's error arrives: failure must wait
// for it, or the run would end as complete.
func TestDecodingFailureWaitsForTheReader(t *testing.T) {
	d := &decoding{readErr: make(chan error, 1), prepErr: make(chan error, 1)}
	lost := errors.New("read RESULTS after 100 messages: nats: connection closed")
	go func() {
		time.Sleep(50 * time.Millisecond)
		d.readErr <- lost
	}()
	if err := d.failure(); !errors.Is(err, lost) {
		t.Fatalf("failure() = %v, want the reader's late error", err)
	}
	d.readErr <- context.Canceled
	if err := d.failure(); err != nil {
		t.Fatalf("failure() = %v after the run's own cancellation, want nil", err)
	}
}

// The whole pipeline over a connection that closes mid-window: the batches
// end early, and the reader's failure is what the run hears.
func TestDecodeReportsAClosedConnection(t *testing.T) {
	js := testutil.JetStream(t)
	s := filledStream(t, js, 5000)
	plan := &Plan{Stream: "RESULTS", FromSeq: 1, ToSeq: 5000, Messages: 5000}
	proj := projector.New(testutil.SQLiteStore(t), streams.NewOutputs(js), streams.NewManifests(js))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := decode(ctx, cancel, s, js.Conn().MaxPayload(), proj, plan, Options{Stream: "RESULTS", Batch: 100}, false)
	got := 0
	for b := range d.prepared {
		if got == 0 {
			js.Conn().Close()
		}
		got += len(b.Prepared())
		d.began()
	}
	if err := d.failure(); !errors.Is(err, jetstream.ErrConnectionClosed) {
		t.Fatalf("failure() = %v after %d messages, want the closed connection", err, got)
	}
}
