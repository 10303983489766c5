package natsconn_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// lockedBuffer is a command's stderr that the NATS client's callback
// goroutine writes to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A subscription that falls behind makes the client drop messages; the
// command says so in its own words on its stderr, not with the library's
// default line (an inbox name and a connection number) on the process's.
func TestSlowConsumerIsReportedInTheCommandsWords(t *testing.T) {
	var stderr lockedBuffer
	nc, err := natsconn.Connect(natsconn.Options{URL: testutil.NATSServer(t), Notify: &stderr}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	block := make(chan struct{})
	defer close(block)
	sub, err := nc.Subscribe("slow", func(*nats.Msg) { <-block })
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(1, -1); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := nc.Publish("slow", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "NATS dropped messages") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := stderr.String()
	if !strings.Contains(got, "NATS dropped messages that came faster than this command took them (slow consumer)") {
		t.Fatalf("stderr %q: no report of the dropped messages", got)
	}
	if strings.Contains(got, "on connection [") || strings.Contains(got, "_INBOX") {
		t.Errorf("stderr %q: the library's own line", got)
	}
}

// A refused connection says what to check, in the command's flags: no
// server at the address, or credentials the server refuses.
func TestConnectFailuresSayWhatToCheck(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, Username: "ops", Password: "right", NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("NATS did not start")
	}
	nc, err := natsconn.Connect(natsconn.Options{URL: srv.ClientURL(), User: "ops", Password: "right"}, "test")
	if err != nil {
		t.Fatalf("the right credentials: %v", err)
	}
	nc.Close()
	_, err = natsconn.Connect(natsconn.Options{URL: srv.ClientURL(), User: "ops", Password: "wrong"}, "test")
	if err == nil || !strings.Contains(err.Error(), "check --user/--password") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: want the credentials hint and no password, got %v", err)
	}
	addr := srv.Addr().String()
	srv.Shutdown()
	_, err = natsconn.Connect(natsconn.Options{URL: "nats://" + addr}, "test")
	if err == nil || !strings.Contains(err.Error(), "is NATS running there? Give its address with --nats-url") {
		t.Errorf("no server: want the address hint, got %v", err)
	}
}
