package sqlitestore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// walRestartFrames is the WAL length, in frames, past which a batch waits
// for a checkpoint to finish before the next begins. SQLite rewinds the
// WAL only in a write transaction that starts when every frame has been
// copied back, which a writer that always has its next batch ready never
// sees while a checkpoint runs beside it; the wait bounds the file at about
// this many pages (40 MiB at 4 KiB) and a few batches.
const walRestartFrames = 10000

// checkpointer copies committed pages from the WAL back into the database
// file on a goroutine of its own. Without it SQLite does that in the
// commit that takes the WAL past 1,000 pages (wal_autocheckpoint), on the
// replay's writer, while the next batch waits: about half of a SQLite
// replay's commit time (docs/performance.md). Only batch transactions
// hand their checkpoints to it (their connection, Store.writer, runs with
// wal_autocheckpoint off); every other write keeps SQLite's own.
// What reaches the file, and when it is synced, is what SQLite's own
// checkpoint does (PASSIVE, the mode of wal_autocheckpoint).
type checkpointer struct {
	db    *sql.DB
	runs  chan chan struct{} // a nil reply: run when free, nobody waits
	stop  chan struct{}
	ended chan struct{}
	// frames is the WAL's length after the last checkpoint.
	frames atomic.Int64
	// restart is walRestartFrames (tests make it smaller).
	restart int64
	once    sync.Once
}

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, runs: make(chan chan struct{}, 1), stop: make(chan struct{}), ended: make(chan struct{}), restart: walRestartFrames}
	go c.loop()
	return c
}

func (c *checkpointer) loop() {
	defer close(c.ended)
	// Not the command's context: a checkpoint that has started finishes,
	// and Close waits for it.
	ctx := context.Background()
	for {
		select {
		case <-c.stop:
			return
		case reply := <-c.runs:
			// An error (SQLITE_BUSY beside another checkpointer, say) is
			// what SQLite's own checkpoint after a commit ignores too: the
			// pages stay in the WAL, readable, until the next run.
			var busy, log, done int64
			if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err == nil {
				c.frames.Store(log)
			}
			if reply != nil {
				close(reply)
			}
		}
	}
}

// committed is called after each batch commits: it starts a checkpoint, or
// when the WAL has grown past walRestartFrames runs one and waits for it,
// so that the next batch rewinds the WAL. The batch is committed either
// way, so an interruption ends the wait, not the batch.
func (c *checkpointer) committed(ctx context.Context) {
	if c.frames.Load() < c.restart {
		// With a run already waiting this waits for the one in progress,
		// so the checkpoints stay at most two batches behind and the
		// length they report is never older than that.
		select {
		case c.runs <- nil:
		case <-ctx.Done():
		case <-c.ended:
		}
		return
	}
	reply := make(chan struct{})
	select {
	case c.runs <- reply:
	case <-ctx.Done():
		return
	case <-c.ended:
		return
	}
	select {
	case <-reply:
	case <-ctx.Done():
	}
}

// close waits for a running checkpoint and ends the goroutine.
func (c *checkpointer) close() {
	c.once.Do(func() {
		close(c.stop)
		<-c.ended
	})
}
