package streams_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

// An overflow object read while the server restarts waits for it, even
// when the outage is longer than one request's five-second timeout (the
// way `make test` once failed a replay); a missing object is reported at
// once, not retried.
func TestOutputWaitsThroughOutage(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsconn.StartEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Addr().(*net.TCPAddr).Port
	nc, err := natsconn.Connect(natsconn.Options{URL: srv.ClientURL()}, "streams test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// No deadline, as in a replay: the client's own per-request timeout
	// applies.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := streams.EnsureLayout(ctx, js); err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, streams.OutputBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "r1/stdout", []byte("long output")); err != nil {
		t.Fatal(err)
	}
	out := streams.NewOutputs(js)
	if _, err := out.Output(ctx, "absent"); !errors.Is(err, projector.ErrNotFound) {
		t.Fatalf("a missing object: %v, want ErrNotFound", err)
	}

	srv.Shutdown()
	restarted := make(chan error, 1)
	time.AfterFunc(7*time.Second, func() {
		s, err := natsconn.StartEmbeddedOn(dir, port)
		if err == nil {
			t.Cleanup(s.Shutdown)
		}
		restarted <- err
	})
	watchdog := time.AfterFunc(45*time.Second, cancel)
	defer watchdog.Stop()
	start := time.Now()
	data, err := out.Output(ctx, "r1/stdout")
	if err != nil {
		t.Fatalf("read across a %s outage: %v", time.Since(start).Round(time.Second), err)
	}
	if string(data) != "long output" {
		t.Fatalf("read %q", data)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
}
