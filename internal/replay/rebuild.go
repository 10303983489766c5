package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/retry"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

// shadowing is a rebuilding store seen by the projector: its projection
// transactions write the shadow tables, so a rebuild projects with the
// replay's own pipeline, retries and overlap, and saves no checkpoint.
type shadowing struct{ Rebuilding }

func (s shadowing) Project(ctx context.Context, rollback bool, fn func(store.ProjectionTx) error) error {
	if rollback {
		// A rebuild that is not swapped drops its shadow tables; it never
		// rolls a batch of them back.
		return errors.New("a rebuild's projection is never rolled back")
	}
	return s.ProjectShadow(ctx, fn)
}

func (s shadowing) OverlapsBatches() bool {
	ov, ok := s.Rebuilding.(store.BatchOverlapper)
	return ok && ov.OverlapsBatches()
}

// projectShadow projects one stream window into the shadow tables, as Run
// projects into the live ones; proj writes through shadowing.
func projectShadow(ctx context.Context, st shadowing, js jetstream.JetStream, proj *projector.Projector, plan *Plan, o Options, start time.Time) (projector.Stats, error) {
	var total projector.Stats
	if plan.Messages == 0 {
		return total, nil
	}
	s, err := js.Stream(ctx, o.Stream)
	if err != nil {
		return total, fmt.Errorf("open stream %s: %w", o.Stream, err)
	}
	const untouched = "the live tables are untouched, run the rebuild again"
	o.failed = untouched
	ctx, stopped, cancel := watched(ctx, js, o, untouched+" when NATS is back")
	defer cancel()
	overlap := st.OverlapsBatches()
	d := decode(ctx, cancel, s, js.Conn().MaxPayload(), proj, plan, o, overlap)
	noCheckpoint := func(*projector.Batch) *store.Checkpoint { return nil }
	err = write(ctx, proj, d, o, overlap, noCheckpoint, func(b *projector.Batch, _ *store.Checkpoint, stats projector.Stats) error {
		total.Add(stats)
		if o.Progress != nil {
			o.Progress(Progress{Done: uint64(total.Messages), Total: plan.Messages, LastSeq: b.LastSeq, Elapsed: time.Since(start), Quarantined: total.Quarantined})
		}
		return nil
	})
	cancel()
	if err == nil || errors.Is(err, context.Canceled) {
		if derr := d.failure(); derr != nil {
			err = derr
		}
	}
	// The reader stops quietly when the context ends: a drained pipeline
	// is not a finished one.
	return total, stopped(err)
}

// RebuildReport is what --rebuild did.
type RebuildReport struct {
	Plan      *Plan             `json:"plan"`
	Stats     projector.Stats   `json:"stats"`
	Carried   int64             `json:"carried_over_rows"`
	Diff      *store.ShadowDiff `json:"difference"`
	Swapped   bool              `json:"swapped"`
	OldPrefix string            `json:"old_tables_prefix"` // "" until swapped
	Elapsed   float64           `json:"elapsed_seconds"`
}

// Rebuild projects the whole stream into shadow tables, with what the
// stream can no longer produce carried over, and compares them with the
// live tables. With swap it makes them live in one transaction, keeping
// the old tables; without, it drops the shadow. Nothing is lost either way.
// Rebuilding is what a rebuild needs of a store.
type Rebuilding interface {
	store.Projecting
	store.Locker
	store.Checkpoints
	store.Rebuilder
}

func Rebuild(ctx context.Context, st Rebuilding, js jetstream.JetStream, o Options, swap bool) (*RebuildReport, error) {
	o = o.withDefaults()
	start := time.Now()
	release, err := st.Lock(ctx, "stream replay --rebuild")
	if err != nil {
		return nil, err
	}
	defer release()
	o.Resume, o.FromSeq, o.Since = false, 0, nil
	// Live projection made in-flight rows from EVENTS before RESULTS
	// completed them; a rebuild of RESULTS replays EVENTS first so rows
	// keep the version and recorded_at that came from their started event.
	var plans []*Plan
	if o.Stream == streams.Results && len(o.Subjects) == 0 {
		ev := o
		ev.Stream = streams.Events
		ep, err := Resolve(ctx, js, st, ev)
		if err == nil {
			plans = append(plans, ep)
		} else if !errors.Is(err, errNoStream) {
			return nil, err
		}
	}
	plan, err := Resolve(ctx, js, st, o)
	if err != nil {
		return nil, err
	}
	plans = append(plans, plan)
	rep := &RebuildReport{Plan: plan}
	// What no stream can produce any more is carried over: rows recorded
	// before the newest of the streams' first messages.
	carryBefore := time.Time{}
	for _, p := range plans {
		if p.FirstTime != nil && p.FirstTime.After(carryBefore) {
			carryBefore = *p.FirstTime
		}
	}
	if carryBefore.IsZero() {
		carryBefore = time.Now().Add(24 * time.Hour) // empty streams produce nothing: keep every row
	}
	// The shadow tables are made again from scratch and the diff only
	// reads, so both are retried as a batch is; so is the swap, below.
	err = retried(ctx, o, func() (err error) {
		rep.Carried, err = st.CreateShadow(ctx, carryBefore)
		return err
	})
	if err != nil {
		return nil, err
	}
	dropOnError := func(err error) (*RebuildReport, error) {
		if derr := st.DropShadow(context.WithoutCancel(ctx)); derr != nil {
			return rep, fmt.Errorf("%w (and dropping the shadow tables failed: %v)", err, derr)
		}
		return rep, err
	}
	sh := shadowing{st}
	proj := projector.New(sh, streams.NewOutputs(js), streams.NewManifests(js))
	for _, p := range plans {
		po := o
		po.Stream = p.Stream
		stats, err := projectShadow(ctx, sh, js, proj, p, po, start)
		if p == plan {
			rep.Stats = stats
		}
		if err != nil {
			return dropOnError(err)
		}
	}
	if err = retried(ctx, o, func() (err error) { rep.Diff, err = st.DiffShadow(ctx, 10); return err }); err != nil {
		return dropOnError(err)
	}
	rep.Diff.Carried = rep.Carried
	// Lists are [] when empty, never null: scripts index them.
	rep.Diff.SampleChanged = nonNil(rep.Diff.SampleChanged)
	rep.Diff.SampleOnlyLive = nonNil(rep.Diff.SampleOnlyLive)
	rep.Diff.SampleCounters = nonNil(rep.Diff.SampleCounters)
	rep.Elapsed = time.Since(start).Seconds()
	if !swap {
		return rep, st.DropShadow(ctx)
	}
	if rep.OldPrefix, err = swapShadow(ctx, st, o); err != nil {
		return dropOnError(err)
	}
	rep.Swapped = true
	rep.Elapsed = time.Since(start).Seconds()
	return rep, nil
}

// swapShadow swaps the rebuilt tables in, retried as the other steps are.
// A swap whose commit was lost with its connection (a server restart in
// the commit) may have happened; before each retry the store says whether
// the last attempt's old tables stand, and if they do, that attempt is the
// swap. Without that check a retry would swap twice (the rebuilt tables out
// again, had they been kept), and without a retry a restart in the last
// step threw away the whole rebuild.
func swapShadow(ctx context.Context, st Rebuilding, o Options) (string, error) {
	var prefix string
	err := retried(ctx, o, func() error {
		if prefix != "" {
			done, err := st.Swapped(ctx, prefix)
			if err != nil || done {
				return err
			}
		}
		var err error
		prefix, err = st.SwapShadow(ctx)
		return err
	})
	if err != nil && prefix != "" {
		// The last attempt chose its name and failed: it may have
		// committed all the same. Asked even after Ctrl-C, briefly: the
		// answer decides what the operator is told.
		askCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if done, serr := st.Swapped(askCtx, prefix); serr != nil {
			return "", fmt.Errorf("%w; whether the swap committed could not be told (%v): if tables named %s* exist, the rebuilt tables are live and the old ones kept under that prefix; if not, the live tables are untouched", err, serr, prefix)
		} else if done {
			return prefix, nil
		}
		return "", fmt.Errorf("%w; the swap did not commit: the live tables are untouched", err)
	}
	return prefix, err
}

// retried runs a rebuild step that can run again from the start, with the
// batches' retries and backoff: a restarting server or a busy file is
// waited out; a lost writer lock or the run's end is not.
func retried(ctx context.Context, o Options, step func() error) error {
	return retry.Do(ctx, retry.Policy{Attempts: o.RetryAttempts, Base: o.RetryBase}, func(int) error { return step() })
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
