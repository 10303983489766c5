package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// F3: a restart (here: the lock's session terminated) drops the advisory
// lock. The writer notices before its next write: it takes the lock back
// when it is free, and stops when another writer took it; a release then
// removes only its own kanade_locks row.
func TestWriterLockLostWithItsSession(t *testing.T) {
	ctx := context.Background()
	a, b := twoStores(t)
	holder := func() string {
		var h string
		if err := b.Pool().QueryRow(ctx, "SELECT holder FROM kanade_locks WHERE name = 'writer'").Scan(&h); err != nil {
			return "(none)"
		}
		return h
	}
	dropSession := func() {
		pid := pgstore.LockSessionPID(a)
		if pid == 0 {
			t.Fatal("no lock session")
		}
		if _, err := b.Pool().Exec(ctx, "SELECT pg_terminate_backend($1)", int32(pid)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	write := func() error { return a.Project(ctx, false, func(store.ProjectionTx) error { return nil }) }

	releaseA, err := a.Lock(ctx, "stream replay --follow")
	if err != nil {
		t.Fatal(err)
	}
	// Lost while nobody else wanted it: taken back, and the write goes on.
	dropSession()
	if err := write(); err != nil {
		t.Fatalf("the lock was free to take back: %v", err)
	}
	if h := holder(); h != "stream replay --follow" {
		t.Fatalf("holder after taking the lock back: %s", h)
	}
	// Lost, and another writer took it: the first one stops.
	dropSession()
	releaseB, err := b.Lock(ctx, "results backfill")
	if err != nil {
		t.Fatalf("the dropped lock should be free: %v", err)
	}
	err = write()
	if !errors.Is(err, store.ErrLockLost) || !strings.Contains(err.Error(), "results backfill") {
		t.Fatalf("want the lost lock named with its new holder, got %v", err)
	}
	// A rebuild's own writes stop the same way: its shadow tables are not
	// made, nor swapped in, beside the new holder.
	if _, err := a.CreateShadow(ctx, time.Now()); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("CreateShadow after the lock was lost: %v", err)
	}
	if _, err := a.SwapShadow(ctx); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("SwapShadow after the lock was lost: %v", err)
	}
	releaseA()
	if h := holder(); h != "results backfill" {
		t.Fatalf("releasing the lost lock removed the new holder's row: holder now %s", h)
	}
	releaseB()
	if h := holder(); h != "(none)" {
		t.Fatalf("after both releases the row is still there: %s", h)
	}
}

// A write that begins after its run was cancelled (a killed replay's last
// batch, an interrupted backfill's next one) fails with the cancellation
// and leaves the lock to be released: it used to take the cut-short ping
// for a lost session and give the session, lock and all, back to the pool,
// where the next writer found the database locked by nobody it knew.
func TestCancelledWriteKeepsTheLockReleasable(t *testing.T) {
	ctx := context.Background()
	a, b := twoStores(t)
	release, err := a.Lock(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = a.Project(cancelled, false, func(store.ProjectionTx) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled write: %v, want the cancellation", err)
	}
	release()
	// Another process's writer (its own pool) must find the lock free.
	next, err := b.Lock(ctx, "next writer")
	if err != nil {
		t.Fatalf("after a cancelled write and its release: %v", err)
	}
	next()
}

// A run cancelled while a batch pings the lock's session (an interrupted
// replay's overlapped batch) keeps that session: pgx closes a connection
// whose query a cancelled context cuts short, and the lock's closed
// session then lingered, held, until the server noticed, while its
// release failed (TestReplayInterruptedThenResumed failed so once).
func TestCancelDuringLockPingKeepsTheSession(t *testing.T) {
	ctx := context.Background()
	a, b := twoStores(t)
	release, err := a.Lock(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	pid := pgstore.LockSessionPID(a)
	// Cancellations at offsets across a local round trip: some land while
	// the ping is on the wire.
	for i := range 300 {
		cctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(time.Duration(i%60)*5*time.Microsecond, cancel)
		a.Project(cctx, false, func(store.ProjectionTx) error { return nil }) //nolint:errcheck // cancelled or not, by design
		timer.Stop()
		cancel()
		if now := pgstore.LockSessionPID(a); now != pid {
			t.Fatalf("after %d cancelled writes the lock is held by session %d, not %d: a cancellation ended its session", i+1, now, pid)
		}
	}
	release()
	next, err := b.Lock(ctx, "next writer")
	if err != nil {
		t.Fatalf("after cancelled writes and their release: %v", err)
	}
	next()
}

// twoStores opens one migrated schema twice, as two processes would: each
// store has its own pool, so its sessions and its writer lock are its own.
func twoStores(t *testing.T) (*pgstore.Store, *pgstore.Store) {
	ctx := context.Background()
	dsn := testutil.PostgresDSN(t)
	open := func() *pgstore.Store {
		s, err := pgstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	a, b := open(), open()
	if _, err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return a, b
}
