// Package backfill gives legacy execution_results rows their stable
// result_id in place (spec section 6): rows the v0.29 migration kept with
// result_id = request_id, and rows with an empty or NULL id. Until they are
// rewritten, replaying the stream inserts a second copy of each.
//
// Keep rule when two rows claim the same stable id: a finished row beats a
// reaped placeholder, which beats one still in flight; then the earliest
// recorded_at wins; then the row already under the stable id. Every row
// removed is first copied whole into kanade_backfill_conflicts.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kanadehq/kanade-cli/internal/retry"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Options control a run.
type Options struct {
	BatchSize int
	MaxRate   float64 // rows per second; 0 = unthrottled
	DryRun    bool
	Samples   int // how many old -> new pairs to report
	Progress  func(Progress)
	// RetryAttempts and RetryBase govern retries of a batch that hit a lock
	// or statement timeout.
	RetryAttempts int
	RetryBase     time.Duration
	// StopAfterBatches ends the run early (tests simulate a kill with it).
	StopAfterBatches int
	// Workers run batches in parallel (PostgreSQL only; 0 = 2 there, 1 on
	// SQLite, whose single writer would only make them queue).
	Workers int
}

// Progress is reported after every batch.
type Progress struct {
	Scanned, Rewritten int64
	Elapsed            time.Duration
}

// Sample is one rewrite, or one row archived and removed: a dry run
// must show what would be deleted, not only what would be renamed.
type Sample struct {
	Action    string `json:"action"` // SampleRewrite or SampleArchive
	OldID     string `json:"old_id"` // the row's result_id ("" for NULL)
	NewID     string `json:"new_id"` // its stable id; for an archived row, the id of the row kept
	RequestID string `json:"request_id"`
	PCID      string `json:"pc_id"`
	Reason    string `json:"reason"` // why an archived row lost ("" for a rewrite)
}

// Sample actions.
const (
	SampleRewrite = "rewrite"
	SampleArchive = "archive"
)

// Summary is what a run did (or, with DryRun, would do).
type Summary struct {
	Scanned           int64         `json:"scanned"`
	Rewritten         int64         `json:"rewritten"`
	Collisions        int64         `json:"collisions"`
	ConflictsArchived int64         `json:"conflicts_archived"`
	CountersCorrected int64         `json:"counters_corrected"`
	Batches           int64         `json:"batches"`
	Resumed           bool          `json:"resumed"`
	DryRun            bool          `json:"dry_run"`
	Samples           []Sample      `json:"samples"`
	Elapsed           time.Duration `json:"-"`
	ElapsedSeconds    float64       `json:"elapsed_seconds"`
	RatePerSecond     float64       `json:"rate_per_second"`
	Complete          bool          `json:"complete"`
}

// Run rewrites every legacy row, batch by batch; on PostgreSQL two workers
// take alternate rows (by a hash of the id) in parallel.
// Backfilling is what a backfill needs of a store.
type Backfilling interface {
	store.Locker
	store.Backfiller
}

func Run(ctx context.Context, st Backfilling, o Options) (*Summary, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	if o.Samples == 0 {
		o.Samples = 10
	}
	if o.RetryAttempts <= 0 {
		o.RetryAttempts = 8
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 250 * time.Millisecond
	}
	if o.Workers <= 0 {
		o.Workers = 1
		if st.BackfillParallel() {
			o.Workers = 2
		}
	}
	if o.DryRun || !st.BackfillParallel() {
		o.Workers = 1
	}
	if !o.DryRun {
		release, err := st.Lock(ctx, "results backfill")
		if err != nil {
			return nil, err
		}
		defer release()
	}
	cursors, err := st.BackfillCursors(ctx)
	if err != nil {
		return nil, err
	}
	workers, err := plan(cursors, o.Workers)
	if err != nil {
		return nil, err
	}
	sum := &Summary{DryRun: o.DryRun, Resumed: len(cursors) > 0, Samples: []Sample{}}
	start := time.Now()
	defer func() {
		sum.Elapsed = time.Since(start)
		sum.ElapsedSeconds = sum.Elapsed.Seconds()
		if s := sum.Elapsed.Seconds(); s > 0 {
			sum.RatePerSecond = float64(sum.Scanned) / s
		}
	}()
	var mu sync.Mutex
	add := func(b *batchResult) {
		mu.Lock()
		defer mu.Unlock()
		sum.Scanned += b.scanned
		sum.Rewritten += b.rewritten
		sum.Collisions += b.collisions
		sum.ConflictsArchived += b.archived
		sum.CountersCorrected += b.corrected
		sum.Batches++
		for _, x := range b.samples {
			// Up to o.Samples of each action, so that renames do not
			// hide the deletions and the other way round.
			if n := countAction(sum.Samples, x.Action); n < o.Samples {
				sum.Samples = append(sum.Samples, x)
			}
		}
		report(o, sum, start)
	}
	if o.DryRun {
		// One transaction, rolled back: later batches see earlier renames.
		w := workers[0]
		err := st.Backfill(ctx, true, func(tx store.BackfillTx) error {
			for {
				b, err := batch(ctx, tx, w.cursor, o.BatchSize, w.part)
				if err != nil || b.done {
					return err
				}
				w.cursor = b.cursor
				add(b)
			}
		})
		sum.Complete = err == nil
		return sum, err
	}
	if len(cursors) == 0 && len(workers) > 1 {
		// Every worker's share is recorded before any batch: a resumed run
		// continues the workers it finds, and a worker killed before its
		// first commit would otherwise have left no row, its share never
		// rewritten (the chaos suite: five legacy rows left beside their
		// stable copies). A finished worker deletes its row.
		err := withRetries(ctx, o, func() error {
			return st.Backfill(ctx, false, func(tx store.BackfillTx) error {
				for _, w := range workers {
					if err := tx.SaveBackfillCursor(ctx, w.name, w.cursor); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return sum, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	stopped := make([]bool, len(workers))
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopped[i], errs[i] = runWorker(ctx, st, o, w, sum, &mu, add, start)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			return sum, e
		}
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	sum.Complete = true
	for _, s := range stopped {
		sum.Complete = sum.Complete && !s
	}
	return sum, nil
}

type worker struct {
	name   string
	part   store.Part
	cursor string
}

// plan names the workers: "results" alone, or "results/i/n". A resumed run
// continues the interrupted run's workers, whatever -workers says now.
func plan(cursors map[string]string, n int) ([]*worker, error) {
	if len(cursors) > 0 {
		var ws []*worker
		for name, c := range cursors {
			w := &worker{name: name, cursor: c}
			if name != "results" {
				if _, err := fmt.Sscanf(name, "results/%d/%d", &w.part.Index, &w.part.Of); err != nil {
					return nil, fmt.Errorf("kanade_backfill_state holds an unknown worker %q: delete that row to start over", name)
				}
			}
			ws = append(ws, w)
		}
		return ws, nil
	}
	if n == 1 {
		return []*worker{{name: "results"}}, nil
	}
	ws := make([]*worker, n)
	for i := range ws {
		ws[i] = &worker{name: fmt.Sprintf("results/%d/%d", i, n), part: store.Part{Index: i, Of: n}}
	}
	return ws, nil
}

// runWorker commits batches until its share is done; stopped reports an
// early end by StopAfterBatches.
func runWorker(ctx context.Context, st Backfilling, o Options, w *worker, sum *Summary, mu *sync.Mutex, add func(*batchResult), start time.Time) (bool, error) {
	for {
		mu.Lock()
		batches := sum.Batches
		mu.Unlock()
		if o.StopAfterBatches > 0 && batches >= int64(o.StopAfterBatches) {
			return true, nil
		}
		var b *batchResult
		err := withRetries(ctx, o, func() error {
			return st.Backfill(ctx, false, func(tx store.BackfillTx) error {
				var err error
				if b, err = batch(ctx, tx, w.cursor, o.BatchSize, w.part); err != nil {
					return err
				}
				if b.done {
					return tx.ClearBackfillCursor(ctx, w.name)
				}
				return tx.SaveBackfillCursor(ctx, w.name, b.cursor)
			})
		})
		if err != nil {
			return false, err
		}
		if b.done {
			return false, nil
		}
		w.cursor = b.cursor
		add(b)
		mu.Lock()
		throttle(ctx, o, sum, start)
		mu.Unlock()
	}
}

func report(o Options, sum *Summary, start time.Time) {
	if o.Progress != nil {
		o.Progress(Progress{Scanned: sum.Scanned, Rewritten: sum.Rewritten, Elapsed: time.Since(start)})
	}
}

func throttle(ctx context.Context, o Options, sum *Summary, start time.Time) {
	if o.MaxRate <= 0 {
		return
	}
	due := time.Duration(float64(sum.Scanned) / o.MaxRate * float64(time.Second))
	if wait := due - time.Since(start); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

// withRetries repeats a failed batch (lock or statement timeout, busy
// file, a restarting server) with backoff; nothing of a failed batch was
// committed.
func withRetries(ctx context.Context, o Options, fn func() error) error {
	err := retry.Do(ctx, retry.Policy{Attempts: o.RetryAttempts, Base: o.RetryBase}, func(int) error { return fn() })
	if ex := (*retry.ExhaustedError)(nil); errors.As(err, &ex) {
		return fmt.Errorf("backfill batch %w; committed batches stay, rerun to continue", err)
	}
	return err
}

type batchResult struct {
	done                                                bool
	cursor                                              string
	scanned, rewritten, collisions, archived, corrected int64
	samples                                             []Sample
}

func countAction(samples []Sample, action string) int {
	n := 0
	for _, x := range samples {
		if x.Action == action {
			n++
		}
	}
	return n
}

// rank orders rows claiming one stable id (lower is kept).
func rank(r store.LegacyRow) int {
	switch {
	case r.Finished && !r.Reaped:
		return 0
	case r.Reaped:
		return 1
	default:
		return 2
	}
}

func better(a, b store.LegacyRow, aExisting, bExisting bool) bool {
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	if !a.RecordedAt.Equal(b.RecordedAt) {
		return a.RecordedAt.Before(b.RecordedAt)
	}
	return aExisting && !bExisting
}

func batch(ctx context.Context, tx store.BackfillTx, cursor string, size int, part store.Part) (*batchResult, error) {
	cands, err := tx.LegacyCandidates(ctx, cursor, size, part)
	if err != nil {
		return nil, err
	}
	res := &batchResult{cursor: cursor}
	if len(cands) == 0 {
		res.done = true
		return res, nil
	}
	res.scanned = int64(len(cands))
	res.cursor = cands[len(cands)-1].ResultID
	groups := map[string][]store.LegacyRow{}
	var order, ids []string
	for _, c := range cands {
		id := wire.LegacyResultID(c.RequestID, c.PCID)
		if _, ok := groups[id]; !ok {
			order = append(order, id)
			ids = append(ids, id)
		}
		groups[id] = append(groups[id], c)
	}
	existing, err := tx.RowsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	var victims []store.Victim
	var renames []store.Rename
	deltas := map[string]*store.CounterDelta{}
	var deltaOrder []string
	for _, id := range order {
		group := groups[id]
		ex, hasEx := existing[id]
		winner, winnerExisting := group[0], false
		for _, c := range group[1:] {
			if better(c, winner, false, false) {
				winner = c
			}
		}
		if hasEx && better(ex, winner, true, false) {
			winner, winnerExisting = ex, true
		}
		if len(group) > 1 || hasEx {
			res.collisions++
		}
		lose := func(r store.LegacyRow, reason string) {
			victims = append(victims, store.Victim{Key: r.Key, Reason: reason, KeptID: id})
			res.samples = append(res.samples, Sample{Action: SampleArchive, OldID: r.ResultID, NewID: id, RequestID: r.RequestID, PCID: r.PCID, Reason: reason})
			// The projector (or the reaper) counted a finished row with an
			// exec_id once; removing it must take that count back.
			if r.ExecID != nil && r.Finished {
				d, ok := deltas[*r.ExecID]
				if !ok {
					d = &store.CounterDelta{ExecID: *r.ExecID}
					deltas[*r.ExecID] = d
					deltaOrder = append(deltaOrder, *r.ExecID)
				}
				if r.ExitCode != nil && *r.ExitCode == 0 && !r.Reaped {
					d.Success--
				} else {
					d.Failure--
				}
			}
		}
		for _, c := range group {
			if winnerExisting || c.Key != winner.Key {
				reason := "duplicate legacy row for the same request and PC"
				if hasEx {
					reason = "the stable result_id already exists"
				}
				lose(c, reason)
			}
		}
		if hasEx && !winnerExisting {
			lose(ex, "replaced by the earlier legacy row for the same request and PC")
		}
		if !winnerExisting {
			renames = append(renames, store.Rename{Key: winner.Key, NewID: id})
			res.samples = append(res.samples, Sample{Action: SampleRewrite, OldID: winner.ResultID, NewID: id, RequestID: winner.RequestID, PCID: winner.PCID})
		}
	}
	if res.archived, err = tx.ArchiveAndDelete(ctx, victims); err != nil {
		return nil, err
	}
	if res.archived != int64(len(victims)) {
		return nil, fmt.Errorf("archived %d of %d duplicate rows: rows changed under the batch", res.archived, len(victims))
	}
	if res.rewritten, err = tx.RenameResults(ctx, renames); err != nil {
		return nil, err
	}
	var ds []store.CounterDelta
	for _, e := range deltaOrder {
		ds = append(ds, *deltas[e])
	}
	moved, err := tx.BumpExecutions(ctx, ds)
	if err != nil {
		return nil, err
	}
	for _, e := range moved {
		d := deltas[e]
		res.corrected += -(d.Success + d.Failure)
	}
	return res, nil
}
