package replay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/retry"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

// Run replays the window o selects into st.
func Run(ctx context.Context, st Replaying, js jetstream.JetStream, o Options) (*Summary, error) {
	o = o.withDefaults()
	if !o.DryRun {
		release, err := st.Lock(ctx, "stream replay")
		if err != nil {
			return nil, err
		}
		defer release()
	}
	proj := projector.New(st, streams.NewOutputs(js), streams.NewManifests(js))
	if o.OnlyQuarantined {
		return retryQuarantined(ctx, st, proj, o)
	}
	plan, err := Resolve(ctx, js, st, o)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Plan: plan, DryRun: o.DryRun, CheckpointSeq: plan.FromSeq - 1}
	start := time.Now()
	defer func() {
		sum.Warnings = proj.Warnings()
		sum.Elapsed = time.Since(start)
		sum.ElapsedSeconds = sum.Elapsed.Seconds()
		if s := sum.Elapsed.Seconds(); s > 0 {
			sum.RatePerSecond = float64(sum.Stats.Messages) / s
		}
	}()
	if plan.Messages == 0 {
		return sum, followIfAsked(ctx, st, js, proj, o, plan, sum)
	}
	s, err := js.Stream(ctx, o.Stream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", o.Stream, err)
	}
	parent := ctx
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()
	var committed atomic.Uint64 // sum.CheckpointSeq, for the watchdog's message
	committed.Store(sum.CheckpointSeq)
	go watchNATS(ctx, js, o.natsTimeout(), func() string { return resumeHint(committed.Load(), plan.FromSeq) }, cancelCause)
	ov, overlap := st.(store.BatchOverlapper)
	overlap = overlap && ov.OverlapsBatches() && !o.DryRun
	d := decode(ctx, cancel, s, js.Conn().MaxPayload(), proj, plan, o, overlap)

	// A batch that writes nothing does not move the checkpoint either (a
	// crash only redoes such batches); the last one is saved at the end.
	var pending *store.Checkpoint
	// record counts a batch that committed (or, in a dry run, was applied).
	record := func(b *projector.Batch, cp *store.Checkpoint, stats projector.Stats) error {
		sum.Stats.Add(stats)
		if stats.Wrote() || o.DryRun {
			sum.CheckpointSeq, pending = b.LastSeq, nil
			committed.Store(b.LastSeq)
		} else {
			pending = cp
		}
		if o.Progress != nil {
			o.Progress(Progress{Done: uint64(sum.Stats.Messages), Total: plan.Messages, LastSeq: b.LastSeq, Elapsed: time.Since(start), Quarantined: sum.Stats.Quarantined})
		}
		if o.MaxErrors > 0 && sum.Stats.Quarantined >= int64(o.MaxErrors) {
			sum.StoppedEarly, sum.StopReason = true, fmt.Sprintf("--max-errors %d reached at sequence %d", o.MaxErrors, b.LastSeq)
			return ErrTooManyErrors
		}
		return nil
	}
	checkpoint := func(b *projector.Batch) *store.Checkpoint {
		return &store.Checkpoint{Name: CheckpointName(o.Stream, o.Subjects), Stream: o.Stream, StreamCreated: plan.StreamCreated,
			LastSeq: b.LastSeq, UpdatedAt: time.Now().UTC()}
	}
	if o.DryRun {
		// One transaction for the whole window, rolled back: later batches
		// must see what earlier ones would have written.
		err = st.Project(ctx, true, func(tx store.ProjectionTx) error {
			for b := range d.prepared {
				cp := checkpoint(b)
				stats, err := proj.ApplyTx(ctx, tx, b, projector.ApplyOptions{Checkpoint: cp, Began: d.began})
				if err != nil {
					return err
				}
				if err := record(b, cp, stats); err != nil {
					return err
				}
			}
			return nil
		})
	} else {
		err = write(ctx, proj, d, o, overlap, checkpoint, record)
		if err == nil && pending != nil && parent.Err() == nil && context.Cause(ctx) == nil {
			err = st.Project(ctx, false, func(tx store.ProjectionTx) error { return tx.SaveCheckpoint(ctx, *pending) })
			if err == nil {
				sum.CheckpointSeq = pending.LastSeq
				committed.Store(pending.LastSeq)
			}
		}
	}
	cancel()
	if cause := context.Cause(ctx); errors.Is(cause, ErrNATSUnreachable) {
		return sum, cause
	}
	if err != nil {
		if errors.Is(err, ErrTooManyErrors) {
			return sum, err
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// A reader or preparer failure cancelled the pipeline: report
			// that cause rather than the cancellation.
			if rerr := d.failure(); rerr != nil {
				return sum, rerr
			}
		}
		if ex := (*retry.ExhaustedError)(nil); errors.As(err, &ex) {
			// A batch that failed for good: whether --resume continues
			// depends on what this run committed before it.
			return sum, fmt.Errorf("%w; %s", err, resumeHint(sum.CheckpointSeq, plan.FromSeq))
		}
		return sum, err
	}
	if rerr := d.failure(); rerr != nil {
		return sum, rerr
	}
	// Interrupted, or NATS stayed away: the pipeline may have drained
	// without an error (the reader and preparer stop quietly), but the run
	// did not finish. The checkpoint is at the last committed batch.
	if err := parent.Err(); err != nil {
		return sum, err
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrNATSUnreachable) {
		return sum, cause
	}
	return sum, followIfAsked(parent, st, js, proj, o, plan, sum)
}

// chunk is a run of messages from the reader. Messages travel in chunks
// much smaller than a batch, so the raw
// payloads held at once are a chunk's and the consumer's pull buffer's,
// not a whole batch's waiting beside the one being decoded: at 200k
// messages the raw bytes were 10 MB of a 25 MB live heap.
type chunk struct {
	msgs []projector.Message
}

const (
	chunkSize = 256
	// The ordered consumer buffers up to 1,000 messages ahead of the
	// reader, asked for in pull requests of at most pullRequestBytes bytes (never
	// less than one of the server's largest messages, or it would stall).
	// Without the byte limit, 1,000 results of 64 KiB were asked for at
	// once, and the server, with 66 MB pending for the client, closed the
	// connection. The count stays bounded as well: with PullMaxBytes alone
	// nats.go asks for up to a million messages per pull (with the
	// Messages iterator it also sized a channel for them: 12 MB more
	// peak RSS).
	pullRequestBytes = 1 << 20
)

// read sends the window in chunks of at most chunkSize messages (fewer
// for a smaller o.Batch), where batches end is the batcher's to say. It
// closes out when done. maxPayload is the server's largest message: each
// pull request has room for one.
//
// The messages come through the ordered consumer's Consume, not its
// Messages iterator. The iterator's channel holds exactly one pull's count
// and also carries the server's status messages, so when the reader was off
// the CPU while a whole pull arrived, the status that closes each
// byte-limited pull was a 1,001st item, and nats.go dropped an item and
// reported a slow consumer (about one SQLite replay of 500k in four;
// docs/performance.md, "Slow consumers, again"). Consume queues messages in
// the subscription instead, and asks for more only as the handler returns,
// so a handler that waits for the preparer holds back the pulls without
// dropping anything: at most two pulls' messages wait (nats.go asks for the
// next when half of the last is handled): 2,000 messages, or two pulls'
// byte limit.
func read(ctx context.Context, s jetstream.Stream, maxPayload int64, plan *Plan, o Options, out chan<- chunk) error {
	defer close(out)
	if plan.Messages == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: o.Subjects,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: plan.FromSeq})
	if err != nil {
		return fmt.Errorf("create ordered consumer on %s: %w", o.Stream, err)
	}
	size := min(o.Batch, chunkSize)
	w := &windowReader{ctx: ctx, plan: plan, o: o, out: out, size: size,
		msgs: make([]projector.Message, 0, size), done: make(chan struct{}), failed: make(chan error, 1)}
	cc, err := c.Consume(w.handle,
		jetstream.PullMaxMessagesWithBytesLimit(min(o.Batch, 1000), int(pullLimit(pullRequestBytes, maxPayload))),
		jetstream.ConsumeErrHandler(w.consumeError))
	if err != nil {
		return fmt.Errorf("read %s: %w", o.Stream, err)
	}
	var rerr error
	select {
	case <-w.done:
	case <-ctx.Done():
		rerr = ctx.Err()
	case err := <-w.failed:
		rerr = err
	}
	cc.Stop()
	// The handler may be waiting to hand over a chunk: it gives up when
	// the context ends or takes the lock's turn after this, and either way
	// sends nothing once the reader is over, so out can be closed.
	w.mu.Lock()
	defer w.mu.Unlock()
	w.over = true
	if rerr != nil && ctx.Err() == nil {
		return fmt.Errorf("read %s after %d messages: %w", o.Stream, w.seen, rerr)
	}
	return rerr
}

// windowReader is read's message handler and its state. nats.go calls
// the handler from one goroutine per subscription, but the ordered
// consumer starts a new subscription when it resets, so the state is
// guarded anyway.
type windowReader struct {
	ctx  context.Context
	plan *Plan
	o    Options
	out  chan<- chunk
	size int // messages per chunk

	mu     sync.Mutex
	over   bool // the window is read, or the reader gave up
	msgs   []projector.Message
	seen   uint64
	done   chan struct{} // closed when the window is read and sent
	failed chan error    // a failure nats.go does not recover from
}

func (w *windowReader) handle(m jetstream.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.over {
		return
	}
	meta, err := m.Metadata()
	if err != nil {
		w.fail(fmt.Errorf("message metadata: %w", err))
		return
	}
	seq := meta.Sequence.Stream
	if seq > w.plan.ToSeq {
		w.finish()
		return
	}
	w.seen++
	w.msgs = append(w.msgs, projector.Message{Stream: w.o.Stream, Seq: seq, Subject: m.Subject(), Published: meta.Timestamp.UTC(), Data: m.Data()})
	if len(w.msgs) == w.size && !w.flush() {
		return
	}
	if w.seen >= w.plan.Messages || seq == w.plan.ToSeq || meta.NumPending == 0 {
		w.finish()
	}
}

// finish sends what is left and tells read the window is done.
func (w *windowReader) finish() {
	if w.flush() {
		w.over = true
		close(w.done)
	}
}

// flush hands the chunk on; false when the context ended first (the
// reader is then over).
func (w *windowReader) flush() bool {
	if len(w.msgs) == 0 {
		return true
	}
	select {
	case w.out <- chunk{msgs: w.msgs}:
		w.msgs = make([]projector.Message, 0, w.size)
		return true
	case <-w.ctx.Done():
		w.over = true
		return false
	}
}

// fail ends the read with err; the caller holds the lock.
func (w *windowReader) fail(err error) {
	w.over = true
	w.report(err)
}

// report hands read the first failure; later ones are dropped.
func (w *windowReader) report(err error) {
	select {
	case w.failed <- err:
	default:
	}
}

// consumeError hears what nats.go reports while it reads. The ordered
// consumer recovers by itself from a missed heartbeat, a deleted consumer
// or a gap (it starts again after the last message delivered), and the
// server's notices need nothing; a closed connection and a request the
// server refuses end the read, since nothing would come after them (a
// connection that is down but not closed is watchNATS's to judge). It
// takes no lock: nats.go may call it while the handler waits to hand a
// chunk on.
func (w *windowReader) consumeError(_ jetstream.ConsumeContext, err error) {
	if errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, jetstream.ErrBadRequest) {
		w.report(err)
	}
}

// pullLimit is limit raised, where it must be, to what one message of the
// server's largest (maxPayload) needs with its subject and headers: a pull
// with less room than a message never delivers it, and the reader stalls.
func pullLimit(limit, maxPayload int64) int64 { return max(limit, maxPayload+64<<10) }

// chunksPerBatch is how many chunks make one batch: a channel buffer of
// that many lets a reader run one batch ahead of a consumer that prepares
// and writes in turn.
func chunksPerBatch(batch int) int { return (batch + chunkSize - 1) / chunkSize }

// batcher cuts the reader's chunks into batches: a batch is full at
// o.Batch messages (those whose derived writes all merge into an earlier
// one's count half, projector.Batch.Full) or at the message that brings its
// payloads to o.BatchBytes. The reader cannot tell where a batch ends, since
// only decoding shows which messages merge, so a chunk may be split between
// two batches.
type batcher struct {
	proj     *projector.Projector
	raw      <-chan chunk
	size     int
	maxBytes int64
	rest     []projector.Message // the part of a chunk the last batch left
}

func newBatcher(proj *projector.Projector, raw <-chan chunk, o Options) *batcher {
	return &batcher{proj: proj, raw: raw, size: o.Batch, maxBytes: o.batchBytes()}
}

// next prepares the next batch; nil at the end of the window (the reader
// closes raw, also when the context ends).
func (bt *batcher) next(ctx context.Context) (*projector.Batch, error) {
	var b *projector.Batch
	for {
		if len(bt.rest) == 0 {
			c, ok := <-bt.raw
			if !ok {
				break
			}
			bt.rest = c.msgs
		}
		if b == nil {
			b = bt.proj.NewBatch(bt.size)
		}
		for len(bt.rest) > 0 {
			m := bt.rest[:1]
			bt.rest = bt.rest[1:]
			if err := bt.proj.Add(ctx, b, m); err != nil {
				return nil, err
			}
			if b.Full(bt.size, bt.maxBytes) {
				return bt.proj.Seal(b), nil
			}
		}
	}
	if b == nil {
		return nil, nil
	}
	return bt.proj.Seal(b), nil
}

// decoding is a window's reader and decoder, running ahead of the writer.
type decoding struct {
	prepared <-chan *projector.Batch
	// began is the writer's word that it has begun a batch, so the decoder
	// may take the next (projector.ApplyOptions.Began).
	began   func()
	readErr chan error // what the reader returned, once it has
	prepErr chan error // the decoder's failure, if it failed
}

// decode starts the reader and the decoder of plan's window; the decoder
// cancels the run when it fails. overlap says the writer applies two
// batches at once.
func decode(ctx context.Context, cancel func(), s jetstream.Stream, maxPayload int64, proj *projector.Projector, plan *Plan, o Options, overlap bool) *decoding {
	// Unbuffered: a chunk or batch waiting to be taken is held by the
	// goroutine that made it, which then makes no other. Buffers of one
	// batch held a third decoded batch and a second raw one for no gain
	// in rate (a peak RSS of 110 MB against 91 MB at 200k messages), and
	// chunks instead of raw batches took it to 55 MB.
	raw := make(chan chunk)
	prepared := make(chan *projector.Batch)
	d := &decoding{prepared: prepared, readErr: make(chan error, 1), prepErr: make(chan error, 1)}
	// The decoder takes the next batch when the writer has begun one, not
	// when the writer picks its batch up: its burst of CPU then overlaps a
	// batch's COPY instead of delaying the BEGIN round trip (on two cores
	// that wait was 5 % of a replay). Two credits to start: one batch
	// being written, one ready. With batches overlapped two are written
	// at once, so one credit: the batch being decoded is the third, as
	// before.
	credits := make(chan struct{}, 2)
	credits <- struct{}{}
	if !overlap {
		credits <- struct{}{}
	}
	d.began = func() {
		select {
		case credits <- struct{}{}:
		default: // a retried batch begins twice; never block the writer
		}
	}
	go func() { d.readErr <- read(ctx, s, maxPayload, plan, o, raw) }()
	batches := newBatcher(proj, raw, o)
	go func() {
		defer close(prepared)
		for {
			select {
			case <-credits:
			case <-ctx.Done():
				return
			}
			b, err := batches.next(ctx)
			if err != nil {
				d.prepErr <- err
				cancel()
				return
			}
			if b == nil {
				return
			}
			select {
			case prepared <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return d
}

// failure waits for the reader to return and gives its failure or the
// decoder's, unless it is the run's own cancellation. Call it once, after
// the writer has drained prepared or the run's context was cancelled: the
// reader then returns promptly. It must be waited for: a reader that fails
// closes its channel first, so the decoder hands on the part of a batch it
// read and ends as if the window were done.
func (d *decoding) failure() error {
	real := func(err error) bool { return err != nil && !errors.Is(err, context.Canceled) }
	rerr := <-d.readErr
	select {
	case err := <-d.prepErr:
		if real(err) {
			return err
		}
	default:
	}
	if real(rerr) {
		return rerr
	}
	return nil
}

// write applies the decoded batches in stream order, each retried as
// applyWithRetry does, two at a time when overlap is set, and counts each
// through record once it committed. checkpoint gives a batch's checkpoint
// (nil: none).
func write(ctx context.Context, proj *projector.Projector, d *decoding, o Options, overlap bool,
	checkpoint func(*projector.Batch) *store.Checkpoint, record func(*projector.Batch, *store.Checkpoint, projector.Stats) error) error {
	if overlap {
		return overlapped(ctx, proj, d.prepared, o, checkpoint, d.began, record)
	}
	for b := range d.prepared {
		cp := checkpoint(b)
		stats, err := applyWithRetry(ctx, proj, b, projector.ApplyOptions{Checkpoint: cp, Began: d.began, CheckpointOnlyIfWritten: true}, o, nil)
		if err != nil {
			return err
		}
		if err := record(b, cp, stats); err != nil {
			return err
		}
	}
	return nil
}

// flight is a batch applied on a goroutine of its own.
type flight struct {
	b     *projector.Batch
	cp    *store.Checkpoint
	ao    projector.ApplyOptions
	ahead chan error // the writer's word on the batch ahead: nil once it committed and was counted
	done  chan struct{}
	stats projector.Stats
	err   error
}

// overlapped applies the batches two at a time on a store that allows it:
// each batch begins, and inserts its new rows, while the batch ahead of it
// finishes and commits on another connection. The database's work is
// mostly those inserts, and on PostgreSQL each transaction's is done by a
// server process of its own, so the two run on two cores (1.4 to 1.8 times
// the rows a second of one connection's batched COPY, measured:
// docs/performance.md).
// Everything else in a batch, and its commit, waits for the batch ahead,
// so batches commit one at a time in stream order, each with its
// checkpoint, exactly as one after the other. A batch that fails is
// applied again, with retries, while the batch behind it waits; if it
// cannot be, the batch behind it is rolled back and the run stops there.
func overlapped(ctx context.Context, proj *projector.Projector, prepared <-chan *projector.Batch, o Options,
	checkpoint func(*projector.Batch) *store.Checkpoint, began func(), record func(*projector.Batch, *store.Checkpoint, projector.Stats) error) error {
	start := func(b *projector.Batch) *flight {
		f := &flight{b: b, cp: checkpoint(b), ahead: make(chan error, 1), done: make(chan struct{})}
		begun := false // by the first attempt, on its goroutine
		f.ao = projector.ApplyOptions{Checkpoint: f.cp, Began: func() { begun = true; began() }, CheckpointOnlyIfWritten: true}
		// Claimed here, in stream order, before the next batch is.
		c := proj.Claim(b)
		go func() {
			defer close(f.done)
			f.stats, f.err = proj.ApplyClaimed(ctx, c, f.ao,
				func(ctx context.Context) error {
					select {
					case err := <-f.ahead:
						return err
					case <-ctx.Done():
						return ctx.Err()
					}
				})
			if f.err != nil && !begun {
				// Failed before its transaction began (a server restarting):
				// the decoder still gets its word, or it would wait for this
				// batch while the writer, to settle this batch, waits for
				// the next one from the decoder.
				began()
			}
		}()
		return f
	}
	// settle waits for f and counts it. A batch that failed is applied
	// again, its first attempt counted as one of the retries, while the
	// batch behind it, if any, waits.
	settle := func(f *flight) error {
		<-f.done
		if f.err != nil {
			if f.stats, f.err = applyWithRetry(ctx, proj, f.b, f.ao, o, f.err); f.err != nil {
				return f.err
			}
		}
		return record(f.b, f.cp, f.stats)
	}
	var cur *flight
	for b := range prepared {
		next := start(b)
		if cur == nil {
			next.ahead <- nil
		} else if err := settle(cur); err != nil {
			next.ahead <- err
			<-next.done
			return err
		} else {
			next.ahead <- nil
		}
		cur = next
	}
	if cur == nil {
		return nil
	}
	return settle(cur)
}

// applyWithRetry retries database failures with backoff. A batch is never
// skipped: after the last attempt the run stops and the checkpoint stays
// at the last committed batch. failed, when not nil, is how a first
// attempt made elsewhere failed.
func applyWithRetry(ctx context.Context, proj *projector.Projector, b *projector.Batch, ao projector.ApplyOptions, o Options, failed error) (projector.Stats, error) {
	var st projector.Stats
	p := retry.Policy{Attempts: o.RetryAttempts, Base: o.RetryBase,
		// Another writer moved rows: plan again at once.
		Again: func(err error) bool { return errors.Is(err, projector.ErrRace) }}
	if o.OnRetry != nil {
		p.OnRetry = func(attempt int, wait time.Duration, err error) { o.OnRetry(b.LastSeq, attempt, wait, err) }
	}
	err := retry.Do(ctx, p, func(attempt int) (err error) {
		if attempt == 1 && failed != nil {
			return failed
		}
		st, err = proj.Apply(ctx, b, ao)
		return err
	})
	if ex := (*retry.ExhaustedError)(nil); errors.As(err, &ex) {
		return projector.Stats{}, fmt.Errorf("batch ending at sequence %d %w; %s", b.LastSeq, err, o.failedState())
	}
	return st, err
}

// retryQuarantined re-projects quarantined messages and clears the ones
// that now succeed.
func retryQuarantined(ctx context.Context, st Replaying, proj *projector.Projector, o Options) (*Summary, error) {
	start := time.Now()
	entries, err := st.ListQuarantine(ctx, o.Stream, 0)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Plan: &Plan{Stream: o.Stream, Subjects: []string{}, Messages: uint64(len(entries))}, DryRun: o.DryRun, Warnings: []string{}}
	// A retry moves no stream position: report the checkpoint as it stands.
	if cp, err := st.LoadCheckpoint(ctx, CheckpointName(o.Stream, nil)); err != nil {
		return nil, err
	} else if cp != nil {
		sum.CheckpointSeq = cp.LastSeq
	}
	for startIdx := 0; startIdx < len(entries); startIdx += o.Batch {
		chunk := entries[startIdx:min(startIdx+o.Batch, len(entries))]
		msgs := make([]projector.Message, len(chunk))
		for i, q := range chunk {
			msgs[i] = projector.Message{Stream: q.Stream, Seq: q.Seq, Subject: q.Subject, Published: q.PublishedAt, Data: q.Payload}
		}
		b, err := proj.Prepare(ctx, msgs)
		if err != nil {
			return sum, err
		}
		still := map[uint64]bool{}
		for _, q := range b.Quarantined() {
			still[q.Seq] = true
		}
		var clear []uint64
		for _, q := range chunk {
			if !still[q.Seq] {
				clear = append(clear, q.Seq)
			}
		}
		stats, err := applyWithRetry(ctx, proj, b, projector.ApplyOptions{DryRun: o.DryRun, ClearQuarantine: clear}, o, nil)
		if err != nil {
			return sum, err
		}
		sum.Stats.Add(stats)
	}
	sum.Elapsed = time.Since(start)
	sum.ElapsedSeconds = sum.Elapsed.Seconds()
	if s := sum.ElapsedSeconds; s > 0 {
		sum.RatePerSecond = float64(sum.Stats.Messages) / s
	}
	sum.Warnings = proj.Warnings()
	return sum, nil
}

// ErrNATSUnreachable stops a replay whose NATS server stayed away.
var ErrNATSUnreachable = errors.New("NATS unreachable")

func (o Options) batchBytes() int64 {
	if o.BatchBytes > 0 {
		return o.BatchBytes
	}
	return DefaultBatchBytes
}

// withDefaults fills in what o leaves unset.
func (o Options) withDefaults() Options {
	if o.Batch <= 0 {
		o.Batch = 5000
	}
	if o.RetryAttempts <= 0 {
		o.RetryAttempts = 8
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 200 * time.Millisecond
	}
	return o
}

// failedState says what a batch that failed for good leaves behind, and
// what to do.
func (o Options) failedState() string {
	if o.failed != "" {
		return o.failed
	}
	return "nothing after the previous batch was written"
}

func (o Options) natsTimeout() time.Duration {
	if o.NATSTimeout > 0 {
		return o.NATSTimeout
	}
	return 2 * time.Minute
}

// watched derives the context of a run that reads a stream window in one
// go (verify, rebuild): watchNATS cancels it when NATS stays away, and
// stopped turns the error a stopped pipeline happens to return (or none,
// as the reader ends quietly) into the reason the run stopped. state says
// what the stopped run leaves behind.
func watched(ctx context.Context, js jetstream.JetStream, o Options, state string) (context.Context, func(error) error, context.CancelFunc) {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	go watchNATS(ctx, js, o.natsTimeout(), func() string { return state }, cancel)
	stopped := func(err error) error {
		if cause := context.Cause(ctx); errors.Is(cause, ErrNATSUnreachable) {
			return cause
		}
		if perr := parent.Err(); perr != nil {
			return perr
		}
		return err
	}
	return ctx, stopped, func() { cancel(nil) }
}

// resumeHint is what to do after a run stopped with committed the last
// sequence it committed and from its window's first: --resume continues
// from a checkpoint, but before the run's first commit there is none of
// its own (on a new database, none at all, and --resume is refused).
func resumeHint(committed, from uint64) string {
	if committed < from {
		return "it stopped before its first batch committed: run the same command again"
	}
	return fmt.Sprintf("everything up to sequence %d is committed: run again with --resume to continue", committed)
}

// ResumeHint is resumeHint for a run that was interrupted.
func (s *Summary) ResumeHint() string { return resumeHint(s.CheckpointSeq, s.Plan.FromSeq) }

// watchNATS stops a run (through cancel) when the connection has been down
// for longer than limit: the client reconnects without end, and the ordered
// consumer resumes where it was when the server comes back, but a run must
// not wait forever for one that does not. state says what the stopped run
// leaves behind and what to do.
func watchNATS(ctx context.Context, js jetstream.JetStream, limit time.Duration, state func() string, cancel context.CancelCauseFunc) {
	nc := js.Conn()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var down time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch {
		case nc.IsConnected():
			down = time.Time{}
		case down.IsZero():
			down = time.Now()
		case nc.IsClosed() || time.Since(down) > limit:
			cancel(fmt.Errorf("%w for %s: stopped; %s", ErrNATSUnreachable, time.Since(down).Round(time.Second), state()))
			return
		}
	}
}
