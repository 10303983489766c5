// Package retry runs a step that may fail for a while (a restarting
// server, a busy file, a dropped connection) again with backoff: the one
// way every command that writes waits out an outage.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// MaxWait caps the backoff: a server back after a minute is found within
// ten seconds of it.
const MaxWait = 10 * time.Second

// Policy is how often and how long.
type Policy struct {
	// Attempts is the most attempts in all (at least one is made).
	Attempts int
	// Base is the first wait; each one after is twice the one before, at
	// most MaxWait.
	Base time.Duration
	// Again, when set, says an error is retried at once, without a wait
	// (the replay's projector.ErrRace: another writer moved rows, and the
	// batch is planned again against them).
	Again func(error) bool
	// OnRetry, when set, hears each failure that will be retried after a
	// wait, before the wait.
	OnRetry func(attempt int, wait time.Duration, err error)
}

// ExhaustedError is the error of a step whose every attempt failed.
type ExhaustedError struct {
	Attempts int
	Last     error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("failed %d times, last: %v", e.Attempts, e.Last)
}

func (e *ExhaustedError) Unwrap() error { return e.Last }

// Do runs step, given the attempt's number from 1, until it succeeds. It
// stops at once when ctx ends, with ctx's error, and on an error no wait
// can mend: a writer lock lost to, or held by, another writer, beside
// which nothing may be written. After the last attempt it returns an
// *ExhaustedError.
func Do(ctx context.Context, p Policy, step func(attempt int) error) error {
	wait := p.Base
	for attempt := 1; ; attempt++ {
		err := step(attempt)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, store.ErrLockLost), errors.Is(err, store.ErrLocked):
			return err
		case attempt >= p.Attempts:
			return &ExhaustedError{Attempts: attempt, Last: err}
		case p.Again != nil && p.Again(err):
			continue
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, wait, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, MaxWait)
	}
}
