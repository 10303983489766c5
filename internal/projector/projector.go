// Package projector turns JetStream messages into table rows by upstream's
// rules (spec section 4). It is the only code that writes results: stream
// replay, its --follow mode and the demo all go through it.
//
// A batch is projected in one transaction with a few set-based statements.
// The rules are applied in Go, in stream order: first as if every id were
// new (planned while the previous batch is written), then again for the
// ids that turn out to exist, against their state read under a row lock.
// So the batch leaves exactly the tables upstream's one-message-at-a-time
// projector would (docs/concepts.md, "How a batch is applied").
package projector

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Message is one JetStream message.
type Message struct {
	Stream    string
	Seq       uint64
	Subject   string
	Published time.Time // becomes recorded_at
	Data      []byte
}

// ErrNotFound is what an OutputSource returns for a missing object.
var ErrNotFound = errors.New("not found")

// OutputSource reads overflowed stdout/stderr (object store result_output).
type OutputSource interface {
	Output(ctx context.Context, key string) ([]byte, error)
}

// ManifestSource looks manifests up by id (KV bucket jobs); nil, nil when
// there is no such manifest.
type ManifestSource interface {
	Manifest(ctx context.Context, id string) (*wire.Manifest, error)
}

// Projector prepares and applies batches. It is not safe for concurrent
// Prepare calls (it caches manifests), but Prepare of one batch may run
// while Apply of the previous one does, and ApplyClaimed of a batch while
// that of the batch ahead of it does (batches are claimed one at a time).
type Projector struct {
	store     store.Projecting
	outputs   OutputSource
	manifests ManifestSource
	cache     map[string]*wire.Manifest
	// inventory holds each cached inventory manifest's display and summary
	// texts, encoded once rather than for every result (for a three-field
	// display, 1.5 µs and 12 allocations each: a third of decoding the
	// result).
	inventory map[*wire.Manifest]*inventoryText
	explode   map[*wire.Manifest][]*explodeSpec // each cached manifest's valid explode specs
	warnings  []string
	now       func() time.Time
	// written holds the ids of the last two applied batches. A redelivery
	// usually lands a batch or two after the original; naming those ids
	// as existing up front keeps a batch of otherwise new ids on the
	// store's fastest insert path; an id in it that does not exist is
	// simply inserted later in the batch. It also keeps a batch that
	// begins before the one ahead of it has committed (ApplyClaimed) from
	// inserting what that one may be inserting. Keyed as the store keeps
	// ids; writtenBy are the batches they came from (Batch.id: a pointer
	// would keep two decoded batches alive, 7 MB of a SQLite replay's peak).
	written   [2]map[string]struct{}
	writtenBy [2]uint64
	batches   uint64 // batches made, numbering them (NewBatch)
	// memo is what the last committed batch left in the explode tables;
	// staged is what the batch being applied will leave, kept by Apply
	// once it commits. Only the writer touches them.
	memo, staged *explodeMemo
	checkMemo    bool // tests: read what the memo holds too, and compare
	// lastSteps is each history chain's last step in the last batch
	// sealed, for the next batch's plan (derivedPlan.before). Only the
	// preparer touches it; noCarry (tests) leaves it empty.
	lastSteps map[store.FactsKey]*historyStep
	noCarry   bool
	// facts is where the preparer parses a changed inventory: its value
	// is read while that scan is planned and only its history scalars are
	// kept (slimFacts clones them), so one arena serves every scan.
	facts wire.JSONArena
}

// New returns a projector writing to st. outputs and manifests may be nil
// when the stream has no overflow and no inventory jobs (a payload that
// needs them is then quarantined, never silently dropped).
func New(st store.Projecting, outputs OutputSource, manifests ManifestSource) *Projector {
	return &Projector{store: st, outputs: outputs, manifests: manifests, cache: map[string]*wire.Manifest{},
		inventory: map[*wire.Manifest]*inventoryText{}, explode: map[*wire.Manifest][]*explodeSpec{}, now: time.Now}
}

type itemKind int

const (
	kindResult itemKind = iota
	kindStarted
)

type item struct {
	kind itemKind
	// The message's header, not the message: the raw payload (the bulk
	// of a batch's memory) is garbage once decoded.
	seq       uint64
	subject   string
	published time.Time
	id        string
	result    *wire.ExecResult
	started   *wire.EventStarted
	inventory *inventoryText // an exit-0 result of a manifest with an inventory hint
	// facts is the inventory payload when it is one JSON value (spec
	// 4b.1); nil with inventory set means the payload is not JSON.
	facts     *string
	expiresAt *time.Time     // a started event's reap deadline, when its manifest gives one
	derived   []DerivedWrite // the current-state derived rows the message writes
}

// Batch is a prepared run of messages: decoded, overflow fetched,
// manifests resolved. Nothing has touched the database yet.
type Batch struct {
	id         uint64 // the projector's number for it, from 1
	items      []item
	fresh      *plan // the plan if every id is new, made while the previous batch is written
	derived    derivedPlan
	prec       time.Duration // the finest time the store keeps
	quarantine []store.QuarantineEntry
	ignored    int64
	Stream     string
	LastSeq    uint64
	Messages   int64
	Bytes      int64
	// merged counts the messages whose every derived write goes to a row
	// an earlier message of the batch writes too; written holds those rows.
	merged  int64
	written map[derivedKey]struct{}
}

// derivedKey is the row a DerivedWrite names.
type derivedKey struct{ table, pcID, name string }

// Full says whether b holds size messages, or payloads of maxBytes (when
// more than 0). A message whose derived writes all merge into rows the
// batch already writes counts half: it adds its result row (and any
// history it makes) but no row of a current-state table, since the batch
// writes only each row's last state. So a batch of repeated scans (a
// fleet's inventory every few minutes) grows to at most twice size before
// its per-PC writes (explode rows restamped, facts upserted, rows read
// back) are paid again. Its payloads count whole, so maxBytes bounds its
// memory as for any batch.
func (b *Batch) Full(size int, maxBytes int64) bool {
	return 2*b.Messages-b.merged >= 2*int64(size) || (maxBytes > 0 && b.Bytes >= maxBytes)
}

// noteDerived counts it as merged when the batch already writes every row
// it writes.
func (b *Batch) noteDerived(it *item) {
	if len(it.derived) == 0 {
		return
	}
	if b.written == nil {
		b.written = make(map[derivedKey]struct{})
	}
	merges := true
	for _, w := range it.derived {
		k := derivedKey{w.Table, w.PCID, w.Name}
		if _, ok := b.written[k]; !ok {
			merges = false
			b.written[k] = struct{}{}
		}
	}
	if merges {
		b.merged++
	}
}

// Prepare decodes msgs (in stream order) into one batch: NewBatch, Add
// and Seal in one call, for callers that hold the whole batch anyway.
func (p *Projector) Prepare(ctx context.Context, msgs []Message) (*Batch, error) {
	b := p.NewBatch(len(msgs))
	if err := p.Add(ctx, b, msgs); err != nil {
		return nil, err
	}
	return p.Seal(b), nil
}

// NewBatch starts an empty batch that Add fills; capacity is the number
// of messages it is expected to hold.
func (p *Projector) NewBatch(capacity int) *Batch {
	p.batches++
	return &Batch{id: p.batches, items: make([]item, 0, capacity), prec: p.store.Kind().TimePrecision(),
		derived: derivedPlan{before: p.lastSteps}}
}

// Add decodes msgs (in stream order, after the ones already added) into
// b. A message that cannot be decoded or completed goes to the batch's
// quarantine list with the reason; only a context or connection failure
// is an error. The batch keeps no reference to msgs or their payloads
// (except a quarantined one's), so a reader can hand messages over in
// small chunks and the raw bytes of a whole batch are never held at once.
func (p *Projector) Add(ctx context.Context, b *Batch, msgs []Message) error {
	for i := range msgs {
		m := &msgs[i]
		b.Messages++
		b.Stream = m.Stream
		b.Bytes += int64(len(m.Data))
		if m.Seq > b.LastSeq {
			b.LastSeq = m.Seq
		}
		it, reason, err := p.prepareOne(ctx, m, &b.derived)
		if err != nil {
			return err
		}
		switch {
		case reason != "":
			b.quarantine = append(b.quarantine, store.QuarantineEntry{Stream: m.Stream, Seq: m.Seq, Subject: m.Subject,
				PublishedAt: m.Published, Error: reason, Payload: m.Data, QuarantinedAt: p.now().UTC()})
		case it == nil:
			b.ignored++
		default:
			b.noteDerived(it)
			b.items = append(b.items, *it)
		}
	}
	return nil
}

// Seal ends b: it plans the batch as if every id were new, so that this
// work is done while the previous batch is written. A batch is applied
// only after Seal.
func (p *Projector) Seal(b *Batch) *Batch {
	b.fresh = planBatch(b, nil)
	b.derived.before = nil
	if !p.noCarry {
		p.lastSteps = b.derived.lastSteps()
	}
	return b
}

// prepareOne returns the item, or a quarantine reason, or (nil, "") for a
// message the projector does not handle (other events.* subjects).
func (p *Projector) prepareOne(ctx context.Context, m *Message, d *derivedPlan) (*item, string, error) {
	switch {
	case strings.HasPrefix(m.Subject, "results."):
		r, err := wire.DecodeExecResult(m.Data)
		if err != nil {
			return nil, err.Error(), nil
		}
		if reason := p.unstorable("started_at", r.StartedAt) + p.unstorable("finished_at", r.FinishedAt); reason != "" {
			return nil, reason, nil
		}
		if reason, err := p.fetchOverflow(ctx, r); err != nil || reason != "" {
			return nil, reason, err
		}
		it := &item{kind: kindResult, seq: m.Seq, subject: m.Subject, published: m.Published, id: r.StableID(), result: r}
		if r.ManifestID != nil {
			man, err := p.manifest(ctx, *r.ManifestID)
			if err != nil {
				return nil, "", err
			}
			if man != nil {
				p.planDerived(d, it, man)
			}
		}
		return it, "", nil
	case strings.HasPrefix(m.Subject, "events.started."):
		e, err := wire.DecodeEventStarted(m.Data)
		if err != nil {
			return nil, err.Error(), nil
		}
		if e.ResultID == "" {
			return nil, `started event has no result_id (an agent before v0.30): it cannot be tied to its result`, nil
		}
		if reason := p.unstorable("started_at", e.StartedAt); reason != "" {
			return nil, reason, nil
		}
		it := &item{kind: kindStarted, seq: m.Seq, subject: m.Subject, published: m.Published, id: e.ResultID, started: e}
		man, err := p.manifest(ctx, e.ManifestID)
		if err != nil {
			return nil, "", err
		}
		if t, ok := man.ReapDeadline(m.Published); ok {
			it.expiresAt = &t
		}
		return it, "", nil
	default:
		return nil, "", nil
	}
}

// unstorable says why the store cannot hold t in column, or "" when it can.
func (p *Projector) unstorable(column string, t time.Time) string {
	if err := p.store.Kind().CheckTime(t); err != nil {
		return fmt.Sprintf("decode: field %q %v", column, err)
	}
	return ""
}

func (p *Projector) fetchOverflow(ctx context.Context, r *wire.ExecResult) (string, error) {
	for _, f := range []struct {
		key *string
		dst *string
	}{{r.StdoutObject, &r.Stdout}, {r.StderrObject, &r.Stderr}} {
		if f.key == nil {
			continue
		}
		if p.outputs == nil {
			return fmt.Sprintf("overflow object %q: no object store to read it from", *f.key), nil
		}
		data, err := p.outputs.Output(ctx, *f.key)
		if errors.Is(err, ErrNotFound) {
			return fmt.Sprintf("overflow object %q is missing from bucket result_output", *f.key), nil
		}
		if err != nil {
			return "", fmt.Errorf("read overflow object %q: %w", *f.key, err)
		}
		*f.dst = LossyUTF8(data)
	}
	return "", nil
}

// inventoryText is what an inventory hint writes beside the facts.
type inventoryText struct {
	display string
	summary *string
}

func (p *Projector) inventoryText(m *wire.Manifest) *inventoryText {
	t, ok := p.inventory[m]
	if !ok {
		t = &inventoryText{display: m.Inventory.DisplayJSON(), summary: m.Inventory.SummaryJSON()}
		p.inventory[m] = t
	}
	return t
}

func (p *Projector) manifest(ctx context.Context, id string) (*wire.Manifest, error) {
	if m, ok := p.cache[id]; ok {
		return m, nil
	}
	if p.manifests == nil || id == "" {
		return nil, nil
	}
	m, err := p.manifests.Manifest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("look up manifest %q: %w", id, err)
	}
	p.cache[id] = m
	return m, nil
}

// Stats counts what batches did.
type Stats struct {
	Messages         int64 `json:"messages"`
	Bytes            int64 `json:"bytes"`
	Inserted         int64 `json:"rows_inserted"`
	Completed        int64 `json:"in_flight_completed"`
	ReapedReplaced   int64 `json:"reaped_replaced"`
	InFlightCreated  int64 `json:"in_flight_created"`
	Unchanged        int64 `json:"unchanged_duplicates"`
	CountersMoved    int64 `json:"counters_moved"`
	InventoryUpserts int64 `json:"inventory_upserts"`
	InventorySkipped int64 `json:"inventory_skipped"`
	HistoryRows      int64 `json:"inventory_history_rows"`
	ExplodeRows      int64 `json:"explode_rows"`
	CheckUpserts     int64 `json:"check_status_upserts"`
	FeedsReplaced    int64 `json:"feeds_replaced"`
	Quarantined      int64 `json:"quarantined"`
	Ignored          int64 `json:"ignored"`
}

// Wrote reports whether the batch changed a row of the projected tables.
// (A started event's promotion of a pending execution is not counted: a
// caller that skips work on false may only skip what is safe to redo.)
func (s Stats) Wrote() bool {
	return s.Inserted+s.Completed+s.ReapedReplaced+s.InFlightCreated+s.CountersMoved+s.InventoryUpserts+
		s.HistoryRows+s.ExplodeRows+s.CheckUpserts+s.FeedsReplaced > 0
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Messages += o.Messages
	s.Bytes += o.Bytes
	s.Inserted += o.Inserted
	s.Completed += o.Completed
	s.ReapedReplaced += o.ReapedReplaced
	s.InFlightCreated += o.InFlightCreated
	s.Unchanged += o.Unchanged
	s.CountersMoved += o.CountersMoved
	s.InventoryUpserts += o.InventoryUpserts
	s.InventorySkipped += o.InventorySkipped
	s.HistoryRows += o.HistoryRows
	s.ExplodeRows += o.ExplodeRows
	s.CheckUpserts += o.CheckUpserts
	s.FeedsReplaced += o.FeedsReplaced
	s.Quarantined += o.Quarantined
	s.Ignored += o.Ignored
}

// ErrRace means another writer changed rows between this batch's read and
// its write; the transaction was rolled back and the batch can be retried.
var ErrRace = errors.New("rows changed under the batch by a concurrent writer")

// ApplyOptions control one Apply.
type ApplyOptions struct {
	DryRun     bool              // roll back instead of committing
	Checkpoint *store.Checkpoint // saved in the same transaction
	// ClearQuarantine lists quarantined sequences this batch re-projected;
	// they are removed in the same transaction.
	ClearQuarantine []uint64
	// Began, when set, is called once the batch's transaction is open
	// (again on a retry).
	Began func()
	// CheckpointOnlyIfWritten saves the checkpoint only when the batch
	// wrote a row: a replay of what is already projected then writes
	// nothing but its final checkpoint (the caller saves that one).
	CheckpointOnlyIfWritten bool
}

type vstate int

const (
	stNone vstate = iota
	stInFlight
	stReaped
	stFinished
)

// Apply projects b in one transaction of its own.
func (p *Projector) Apply(ctx context.Context, b *Batch, opts ApplyOptions) (Stats, error) {
	var st Stats
	err := p.store.Project(ctx, opts.DryRun, func(tx store.ProjectionTx) error {
		var err error
		st, err = p.ApplyTx(ctx, tx, b, opts)
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	if !opts.DryRun {
		p.memo, p.staged = p.staged, nil
	}
	return st, nil
}

// ApplyTx projects b inside tx, so a caller can put several batches in one
// transaction (a dry run that must see its own earlier batches).
func (p *Projector) ApplyTx(ctx context.Context, tx store.ProjectionTx, b *Batch, opts ApplyOptions) (Stats, error) {
	c := p.Claim(b)
	ins, err := c.insert(ctx, tx, opts)
	if err != nil {
		return Stats{}, err
	}
	return p.finish(ctx, tx, c, ins, opts)
}

// ErrAheadFailed is what ApplyClaimed returns when the batch ahead of it
// did not commit: the batch was rolled back, and must be applied again
// after that one.
var ErrAheadFailed = errors.New("the batch ahead did not commit")

// ApplyClaimed is Apply for a claimed batch that may begin before the
// batch ahead of it (claimed earlier) has committed on another connection:
// its new rows, whose ids the batches ahead do not hold, are inserted at
// once, so that two batches' inserts run at the same time; the rest, which
// reads what the batch ahead wrote, waits for ahead. ahead returns nil once
// the batch ahead has committed and its Apply returned; anything else
// rolls this batch back and is returned wrapped in ErrAheadFailed.
func (p *Projector) ApplyClaimed(ctx context.Context, c *Claimed, opts ApplyOptions, ahead func(context.Context) error) (Stats, error) {
	var st Stats
	err := p.store.Project(ctx, false, func(tx store.ProjectionTx) error {
		ins, err := c.insert(ctx, tx, opts)
		if aerr := ahead(ctx); aerr != nil {
			return fmt.Errorf("%w: %w", ErrAheadFailed, aerr)
		}
		if err != nil {
			return err
		}
		st, err = p.finish(ctx, tx, c, ins, opts)
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	p.memo, p.staged = p.staged, nil
	return st, nil
}

// Claimed is a batch planned as if every id were new, its ids named as
// written (Claim).
type Claimed struct {
	b       *Batch
	fresh   []store.ResultRow // inserted first, as new rows
	recheck map[string]bool   // ids the last batches wrote: their state is read
}

// Claim plans b as if every id were new, and names its ids as written, so
// that the batch after it does not insert them as new: whatever the batch
// after it inserts first, b neither writes nor waits for. Batches are
// claimed in stream order, and claiming one again (a retry) changes
// nothing.
func (p *Projector) Claim(b *Batch) *Claimed {
	if b.fresh == nil {
		// Its preparer did not plan it ahead. Not Seal: that is the
		// preparer's, and would race with its next batch.
		b.fresh = planBatch(b, nil)
	}
	// Most ids of a replay are new. So the batch is planned as if every id
	// were, and inserted; only the ids that turn out to exist (or were
	// written by the last batches) have their state read (and locked) and
	// are planned again. An id's outcome depends on nothing but its own
	// state and messages, so the new ids' rows are already what the real
	// plan would write.
	plan := b.fresh
	c := &Claimed{b: b, recheck: map[string]bool{}}
	// As a rule every row is new: the plan's own slice is inserted, and
	// a batch's rows are not held twice.
	c.fresh = plan.upserts
	if len(plan.inFlight) > 0 || slices.ContainsFunc(plan.upserts, func(r store.ResultRow) bool { return p.recentlyWritten(b, r.ResultID) }) {
		c.fresh = make([]store.ResultRow, 0, len(plan.upserts)+len(plan.inFlight))
		for _, rows := range [][]store.ResultRow{plan.upserts, plan.inFlight} {
			for _, r := range rows {
				if p.recentlyWritten(b, r.ResultID) {
					c.recheck[r.ResultID] = true
				} else {
					c.fresh = append(c.fresh, r)
				}
			}
		}
	}
	p.remember(b)
	return c
}

// insert is a claimed batch's first statement: its new rows.
func (c *Claimed) insert(ctx context.Context, tx store.ProjectionTx, opts ApplyOptions) ([]string, error) {
	if opts.Began != nil {
		opts.Began()
	}
	return tx.InsertNew(ctx, c.fresh)
}

// finish is the rest of a batch after insert, which returned skipped: the
// ids that exist, and those the last batches wrote, are planned against
// their state; then the counters, the derived tables, the quarantine and
// the checkpoint.
func (p *Projector) finish(ctx context.Context, tx store.ProjectionTx, c *Claimed, skipped []string, opts ApplyOptions) (Stats, error) {
	b := c.b
	// The memo outlives this transaction only through Apply's commit.
	memo := p.memo
	p.memo, p.staged = nil, nil
	st := Stats{Messages: b.Messages, Bytes: b.Bytes, Quarantined: int64(len(b.quarantine)), Ignored: b.ignored}
	plan := b.fresh
	recheck := c.recheck
	if len(skipped) > 0 {
		recheck = maps.Clone(recheck) // the claim stays as it was made
		for _, id := range skipped {
			recheck[id] = true
		}
	}
	if len(recheck) > 0 {
		ids := make([]string, 0, len(recheck))
		for id := range recheck {
			ids = append(ids, id)
		}
		existing, err := tx.LoadResultStates(ctx, ids)
		if err != nil {
			return st, err
		}
		for _, id := range skipped {
			if _, ok := existing[id]; !ok {
				return st, ErrRace // a row went away between the insert and the read
			}
		}
		plan = planBatch(b, existing)
		inFlight, upserts := onlyIDs(plan.inFlight, recheck), onlyIDs(plan.upserts, recheck)
		if n, err := tx.InsertInFlight(ctx, inFlight); err != nil {
			return st, err
		} else if n != int64(len(inFlight)) {
			return st, ErrRace
		}
		if n, err := tx.UpsertResults(ctx, upserts); err != nil {
			return st, err
		} else if n != int64(len(upserts)) {
			return st, ErrRace
		}
	}
	st.Inserted, st.Completed, st.ReapedReplaced = plan.inserted, plan.completed, plan.reapedReplaced
	st.InFlightCreated, st.Unchanged, st.InventorySkipped = plan.inFlightCreated, plan.unchanged, plan.inventorySkipped
	if err := tx.StartExecutions(ctx, plan.starts); err != nil {
		return st, err
	}
	moved, err := tx.BumpExecutions(ctx, plan.deltas)
	if err != nil {
		return st, err
	}
	for _, id := range moved {
		d := plan.deltaOf[id]
		st.CountersMoved += d.Success + d.Failure
	}
	// History is the difference from the facts stored before this batch,
	// so it is read before the facts are written.
	history, explode, staged, err := b.derived.inventoryWrites(ctx, tx, b.at, memo, p.checkMemo)
	if err != nil {
		return st, err
	}
	if st.InventoryUpserts, err = tx.UpsertInventory(ctx, plan.facts); err != nil {
		return st, err
	}
	if st.HistoryRows, err = tx.AddHistory(ctx, history); err != nil {
		return st, err
	}
	if st.ExplodeRows, err = writeExplode(ctx, tx, explode); err != nil {
		return st, err
	}
	if st.CheckUpserts, err = tx.UpsertChecks(ctx, b.derived.checks); err != nil {
		return st, err
	}
	if st.FeedsReplaced, err = b.derived.replaceFeeds(ctx, tx, b.at); err != nil {
		return st, err
	}
	if err := tx.AddQuarantine(ctx, b.quarantine); err != nil {
		return st, err
	}
	if err := tx.DeleteQuarantine(ctx, b.Stream, opts.ClearQuarantine); err != nil {
		return st, err
	}
	if opts.Checkpoint != nil && (st.Wrote() || !opts.CheckpointOnlyIfWritten) {
		if err := tx.SaveCheckpoint(ctx, *opts.Checkpoint); err != nil {
			return st, err
		}
	}
	p.staged = staged
	return st, nil
}

// recentlyWritten is whether one of the last two batches claimed before
// b holds id, as the store keeps it: a batch claimed after another must
// not insert, as new, a row the other may be inserting (with two stored
// the same way, the second insert would wait for the first transaction,
// which may be waiting for the second).
func (p *Projector) recentlyWritten(b *Batch, id string) bool {
	id = p.store.Kind().StoredText(id)
	for i, w := range p.written {
		if _, ok := w[id]; ok && p.writtenBy[i] != b.id {
			return true
		}
	}
	return false
}

func (p *Projector) remember(b *Batch) {
	if p.writtenBy[0] == b.id || p.writtenBy[1] == b.id {
		return // a retry
	}
	ids := make(map[string]struct{}, len(b.items))
	for _, it := range b.items {
		// A copy: an id is usually a slice of its result's decoded
		// strings, and keeping it would keep them all for two more
		// batches (about 1 MB of a replay's 9–14 MB live heap, measured).
		ids[strings.Clone(p.store.Kind().StoredText(it.id))] = struct{}{}
	}
	p.written[0], p.written[1] = p.written[1], ids
	p.writtenBy[0], p.writtenBy[1] = p.writtenBy[1], b.id
}

// at is t as the store keeps it: recency guards compare stored times, so
// the plan must compare what will be stored.
func (b *Batch) at(t time.Time) time.Time { return t.Truncate(b.prec) }

// Quarantined lists the batch's quarantined sequences.
func (b *Batch) Quarantined() []store.QuarantineEntry { return b.quarantine }

type plan struct {
	inFlight, upserts []store.ResultRow
	deltas            []store.CounterDelta
	deltaOf           map[string]store.CounterDelta
	starts            []string // executions started events promote from pending to running
	facts             []store.InventoryFact

	inserted, completed, reapedReplaced, inFlightCreated, unchanged, inventorySkipped int64
}

// onlyIDs keeps the rows whose id is in ids.
func onlyIDs(rows []store.ResultRow, ids map[string]bool) []store.ResultRow {
	var out []store.ResultRow
	for _, r := range rows {
		if _, ok := ids[r.ResultID]; ok {
			out = append(out, r)
		}
	}
	return out
}

// planBatch replays upstream's per-message rules over the batch in order,
// given the state of the ids that exist (every other id is new).
func planBatch(b *Batch, existing map[string]store.RowState) *plan {
	state := make(map[string]vstate, len(existing))
	for id, s := range existing {
		switch {
		case s.Reaped:
			state[id] = stReaped
		case s.Finished:
			state[id] = stFinished
		default:
			state[id] = stInFlight
		}
	}
	// images holds the row each touched id will be written as. A row a
	// started event creates and a later result completes in the same
	// batch is written once, as the result upsert.
	type image struct {
		row      store.ResultRow
		isResult bool
	}
	// One slice of images, indexed by id: a batch's rows are allocated
	// once, not one by one, and the upserts are copied out exactly sized.
	images := make([]image, 0, len(b.items))
	imageOf := make(map[string]int, len(b.items))
	pl := &plan{deltaOf: map[string]store.CounterDelta{}}
	var deltaOrder []string
	factIdx := map[[2]string]int{}
	started := map[string]bool{}

	for _, it := range b.items {
		switch it.kind {
		case kindStarted:
			e := it.started
			// Every delivery promotes (a no-op unless pending); doing it
			// before the batch's counter updates leaves what upstream's
			// one-at-a-time order leaves, since a counted result sets the
			// status whatever it was.
			if e.ExecID != "" && !started[e.ExecID] {
				started[e.ExecID] = true
				pl.starts = append(pl.starts, e.ExecID)
			}
			if state[it.id] != stNone {
				continue // ON CONFLICT DO NOTHING
			}
			imageOf[it.id] = len(images)
			images = append(images, image{row: store.ResultRow{ResultID: e.ResultID, RequestID: e.RequestID, ExecID: wire.Str(e.ExecID), PCID: e.PCID,
				StartedAt: e.StartedAt, RecordedAt: it.published, JobID: wire.Str(e.ManifestID), Version: wire.Str(e.Version), ExpiresAt: it.expiresAt}})
			state[it.id] = stInFlight
			pl.inFlightCreated++
		case kindResult:
			r := it.result
			prior := state[it.id]
			if prior == stFinished {
				pl.unchanged++
			} else {
				// The row points at the decoded result's fields, which
				// nothing changes after decoding.
				exit, fin := &r.ExitCode, &r.FinishedAt
				if i, ok := imageOf[it.id]; ok {
					img := &images[i]
					// Created earlier in this batch by a started event:
					// the upsert's DO UPDATE branch, applied to that image.
					img.row.ExitCode, img.row.Stdout, img.row.Stderr, img.row.FinishedAt = exit, r.Stdout, r.Stderr, fin
					img.row.Reaped, img.row.Skipped, img.row.RequestID = false, r.IsSkipped(), r.RequestID
					if r.ManifestID != nil {
						img.row.JobID = r.ManifestID
					}
					img.isResult = true
				} else {
					imageOf[it.id] = len(images)
					images = append(images, image{isResult: true, row: store.ResultRow{ResultID: it.id, RequestID: r.RequestID, ExecID: r.ExecID,
						PCID: r.PCID, ExitCode: exit, Stdout: r.Stdout, Stderr: r.Stderr, StartedAt: r.StartedAt, FinishedAt: fin,
						RecordedAt: it.published, JobID: r.ManifestID, ParentResultID: r.ParentResultID, Skipped: r.IsSkipped()}})
				}
				switch prior {
				case stNone:
					pl.inserted++
				case stInFlight:
					pl.completed++
				case stReaped:
					pl.reapedReplaced++
				}
				state[it.id] = stFinished
				// A reaped placeholder was already counted by the reaper.
				if prior != stReaped && r.ExecID != nil {
					d, ok := pl.deltaOf[*r.ExecID]
					if !ok {
						deltaOrder = append(deltaOrder, *r.ExecID)
						d.ExecID = *r.ExecID
					}
					if r.ExitCode == 0 && !r.IsSkipped() { // skips and refusals are failures
						d.Success++
					} else {
						d.Failure++
					}
					pl.deltaOf[*r.ExecID] = d
				}
			}
			// Upstream projects inventory for every exit-0 result, fresh or
			// not; the recorded_at guard keeps the newest.
			if it.inventory != nil {
				if it.facts == nil {
					pl.inventorySkipped++
					continue
				}
				f := store.InventoryFact{PCID: r.PCID, JobID: *r.ManifestID, FactsJSON: *it.facts,
					DisplayJSON: wire.Str(it.inventory.display), SummaryJSON: it.inventory.summary,
					CollectedAt: &r.FinishedAt, RecordedAt: it.published}
				key := [2]string{f.PCID, f.JobID}
				if i, ok := factIdx[key]; ok {
					if !b.at(f.RecordedAt).Before(b.at(pl.facts[i].RecordedAt)) {
						pl.facts[i] = f
					}
				} else {
					factIdx[key] = len(pl.facts)
					pl.facts = append(pl.facts, f)
				}
			}
		}
	}
	results := 0
	for i := range images {
		if images[i].isResult {
			results++
		}
	}
	pl.upserts = make([]store.ResultRow, 0, results)
	pl.inFlight = make([]store.ResultRow, 0, len(images)-results)
	for i := range images {
		if images[i].isResult {
			pl.upserts = append(pl.upserts, images[i].row)
		} else {
			pl.inFlight = append(pl.inFlight, images[i].row)
		}
	}
	for _, id := range deltaOrder {
		pl.deltas = append(pl.deltas, pl.deltaOf[id])
	}
	return pl
}

// Prepared is one decoded message of a batch, for read-only comparisons
// (stream verify): the stable id and, for a result, the payload with its
// overflowed output already read back.
type Prepared struct {
	Seq     uint64
	Subject string
	ID      string
	Result  *wire.ExecResult   // nil for a started event
	Started *wire.EventStarted // nil for a result
	Derived []DerivedWrite     // the current-state derived rows it writes
}

// Derived tables a DerivedWrite names.
const (
	DerivedFacts = "inventory_facts"
	DerivedCheck = "check_status"
	DerivedFeed  = "feed_meta"
)

// DerivedWrite is a current-state derived row a message writes, unless the
// table holds a newer one: inventory facts (PCID, Name = the job), a check
// status (PCID, Name = the check) or a feed (Name = the feed id).
type DerivedWrite struct {
	Table      string
	PCID, Name string
	At         time.Time // the message's publish time, the row's recorded_at
}

// Prepared lists the batch's decodable messages in stream order.
func (b *Batch) Prepared() []Prepared {
	out := make([]Prepared, len(b.items))
	for i, it := range b.items {
		out[i] = Prepared{Seq: it.seq, Subject: it.subject, ID: it.id, Result: it.result, Started: it.started, Derived: it.derived}
	}
	return out
}
