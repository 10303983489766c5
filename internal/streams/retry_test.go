package streams

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// A request retried because the server did not answer, and interrupted
// while it waits to retry, reports the interruption: the replay then says
// it was interrupted rather than that a manifest lookup failed (CI once
// saw "look up manifest: no responders" end a run interrupted during an
// outage). The last failure stays in the message.
func TestRetryInterruptedReportsInterruption(t *testing.T) {
	js := testutil.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	tries := 0
	err := whileReconnecting(ctx, js, func() error { tries++; return nats.ErrNoResponders })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("got %v after %d tries, want the interruption wrapping the last failure", err, tries)
	}

	// Not interrupted, a server that stays up and keeps failing is given up
	// on with its own error.
	err = whileReconnecting(context.Background(), js, func() error { return nats.ErrNoResponders })
	if !errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.Canceled) {
		t.Fatalf("a connected server that keeps failing: %v", err)
	}
}
