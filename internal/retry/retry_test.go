package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/retry"
	"github.com/kanadehq/kanade-cli/internal/store"
)

var errDown = errors.New("connection refused")

func TestDoWaitsOutFailures(t *testing.T) {
	var waits []time.Duration
	p := retry.Policy{Attempts: 5, Base: time.Millisecond, OnRetry: func(attempt int, wait time.Duration, err error) {
		if attempt != len(waits)+1 || !errors.Is(err, errDown) {
			t.Errorf("OnRetry(%d, %v, %v)", attempt, wait, err)
		}
		waits = append(waits, wait)
	}}
	calls := 0
	err := retry.Do(context.Background(), p, func(attempt int) error {
		calls++
		if attempt != calls {
			t.Errorf("attempt %d on call %d", attempt, calls)
		}
		if attempt < 4 {
			return errDown
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("Do: %v after %d calls; want success on the fourth", err, calls)
	}
	if want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}; fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

func TestDoGivesUp(t *testing.T) {
	calls := 0
	err := retry.Do(context.Background(), retry.Policy{Attempts: 3, Base: time.Microsecond}, func(int) error { calls++; return errDown })
	var ex *retry.ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 3 || !errors.Is(err, errDown) || calls != 3 {
		t.Fatalf("Do: %v after %d calls; want exhausted after 3, wrapping the last error", err, calls)
	}
	if err.Error() != "failed 3 times, last: connection refused" {
		t.Errorf("message %q", err)
	}
}

// A lock another writer has is final: no wait gives it back, and nothing
// may be written beside it.
func TestDoStopsOnTheWriterLock(t *testing.T) {
	for _, final := range []error{store.ErrLockLost, store.ErrLocked} {
		calls := 0
		err := retry.Do(context.Background(), retry.Policy{Attempts: 5, Base: time.Hour}, func(int) error {
			calls++
			return fmt.Errorf("batch: %w", final)
		})
		if !errors.Is(err, final) || calls != 1 {
			t.Errorf("Do: %v after %d calls; want %v at once", err, calls, final)
		}
	}
}

func TestDoStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := retry.Do(ctx, retry.Policy{Attempts: 5, Base: time.Hour}, func(int) error {
		calls++
		cancel()
		return errDown // what a statement cut short says, not ctx's own error
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("Do: %v after %d calls; want the context's end at once", err, calls)
	}
	// And during a wait.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = retry.Do(ctx, retry.Policy{Attempts: 5, Base: time.Hour}, func(int) error { return errDown })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Minute {
		t.Errorf("Do: %v after %v; want the context's end during the wait", err, time.Since(start))
	}
}

// Again retries at once, counting the attempt, without OnRetry.
func TestDoAgainAtOnce(t *testing.T) {
	errRace := errors.New("race")
	calls, heard := 0, 0
	p := retry.Policy{Attempts: 3, Base: time.Hour, Again: func(err error) bool { return errors.Is(err, errRace) },
		OnRetry: func(int, time.Duration, error) { heard++ }}
	start := time.Now()
	err := retry.Do(context.Background(), p, func(int) error { calls++; return errRace })
	var ex *retry.ExhaustedError
	if !errors.As(err, &ex) || calls != 3 || heard != 0 || time.Since(start) > time.Minute {
		t.Fatalf("Do: %v after %d calls, %d heard, %v; want three attempts at once", err, calls, heard, time.Since(start))
	}
}
