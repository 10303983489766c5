package replay

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Difference kinds reported by Verify.
const (
	DiffMissing     = "missing_row"          // no row under the message's stable id
	DiffContent     = "content_differs"      // exit code, output or times differ
	DiffInFlight    = "row_in_flight"        // the row was never completed by the result
	DiffQuarantined = "would_be_quarantined" // the message cannot be projected
	DiffDerived     = "derived_row_behind"   // a derived table holds neither this message's row nor a newer one
)

// DiffKinds lists the kinds in report order.
var DiffKinds = []string{DiffMissing, DiffContent, DiffInFlight, DiffQuarantined, DiffDerived}

// Difference is one message that the tables do not reflect.
type Difference struct {
	Kind     string `json:"kind"`
	Seq      uint64 `json:"seq"`
	Subject  string `json:"subject"`
	ResultID string `json:"result_id"`
	PCID     string `json:"pc_id"`
	Detail   string `json:"detail"`
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Plan        *Plan            `json:"plan"`
	Checked     int64            `json:"checked"`
	Counts      map[string]int64 `json:"counts"`
	Total       int64            `json:"total"`
	Differences []Difference     `json:"differences"`
}

// Verify compares a stream window with the tables without writing: it
// streams the window batch by batch (memory bounded by the batch) through
// the projector's own decoding and looks each message's row up.
// Checks says which differences a verify looks for and lists.
type Checks struct {
	Limit int      // differences listed per kind (all are counted); 20 when 0
	Only  []string // kinds to check, of DiffKinds; empty = all
}

func (c Checks) want(kind string) bool { return len(c.Only) == 0 || slices.Contains(c.Only, kind) }

func Verify(ctx context.Context, st Verifying, js jetstream.JetStream, o Options, c Checks) (*VerifyReport, error) {
	o = o.withDefaults()
	limit := c.Limit
	if limit <= 0 {
		limit = 20
	}
	o.Resume = false
	plan, err := Resolve(ctx, js, st, o)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Plan: plan, Counts: map[string]int64{}, Differences: []Difference{}}
	for _, k := range DiffKinds {
		if c.want(k) {
			rep.Counts[k] = 0
		}
	}
	if plan.Messages == 0 {
		return rep, nil
	}
	s, err := js.Stream(ctx, o.Stream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", o.Stream, err)
	}
	proj := projector.New(st, streams.NewOutputs(js), streams.NewManifests(js))
	add := func(d Difference) {
		if !c.want(d.Kind) {
			return
		}
		rep.Counts[d.Kind]++
		rep.Total++
		if rep.Counts[d.Kind] <= int64(limit) {
			rep.Differences = append(rep.Differences, d)
		}
	}
	// A verify that did not read its whole range must not report a clean
	// comparison: the reason it stopped wins over what it found so far.
	ctx, stopped, cancel := watched(ctx, js, o, "nothing was written, run the verify again when NATS is back")
	defer cancel()
	raw := make(chan chunk, chunksPerBatch(o.Batch)) // the reader runs a batch ahead, as it did before chunks
	rerr := make(chan error, 1)
	go func() { rerr <- read(ctx, s, js.Conn().MaxPayload(), plan, o, raw) }()
	kind := st.Kind()
	start := time.Now()
	batches := newBatcher(proj, raw, o)
	for {
		b, err := batches.next(ctx)
		if err != nil {
			return rep, stopped(err)
		}
		if b == nil {
			break
		}
		rep.Checked += b.Messages
		var seqs []uint64
		for _, q := range b.Quarantined() {
			if c.want(DiffQuarantined) {
				seqs = append(seqs, q.Seq)
			}
		}
		kept, err := st.QuarantinedAt(ctx, o.Stream, seqs)
		if err != nil {
			return rep, stopped(err)
		}
		for _, q := range b.Quarantined() {
			detail := q.Error + " (not in kanade_quarantine yet: a replay keeps it there)"
			if at, ok := kept[q.Seq]; ok {
				detail = q.Error + " (kept in kanade_quarantine since " + at.UTC().Format(time.RFC3339) + ")"
			}
			add(Difference{Kind: DiffQuarantined, Seq: q.Seq, Subject: q.Subject, Detail: detail})
		}
		prepared := b.Prepared()
		if c.want(DiffMissing) || c.want(DiffContent) || c.want(DiffInFlight) {
			if err := verifyRows(ctx, st, kind, prepared, add); err != nil {
				return rep, stopped(err)
			}
		}
		if c.want(DiffDerived) {
			if err := verifyDerived(ctx, st, prepared, add); err != nil {
				return rep, stopped(err)
			}
		}
		if o.Progress != nil {
			o.Progress(Progress{Done: uint64(rep.Checked), Total: plan.Messages, LastSeq: b.LastSeq,
				Elapsed: time.Since(start), Quarantined: rep.Counts[DiffQuarantined]})
		}
	}
	if err := <-rerr; err != nil {
		return rep, stopped(err)
	}
	return rep, stopped(nil)
}

// verifyRows checks that each message's row is there, finished, and as the
// message has it.
func verifyRows(ctx context.Context, st Verifying, kind store.Kind, prepared []projector.Prepared, add func(Difference)) error {
	ids := make([]string, len(prepared))
	for i, p := range prepared {
		ids[i] = p.ID
	}
	rows, err := st.ResultsByID(ctx, ids)
	if err != nil {
		return err
	}
	for _, p := range prepared {
		row, ok := rows[p.ID]
		if !ok {
			add(Difference{Kind: DiffMissing, Seq: p.Seq, Subject: p.Subject, ResultID: p.ID, PCID: pcOf(p), Detail: "no row under this result_id"})
			continue
		}
		if p.Result == nil {
			continue // a started event: the row exists, in whatever state
		}
		if row.FinishedAt == nil {
			add(Difference{Kind: DiffInFlight, Seq: p.Seq, Subject: p.Subject, ResultID: p.ID, PCID: p.Result.PCID,
				Detail: "the row is still in flight although its result is in the stream"})
			continue
		}
		if d := compare(kind, p.Result, row); d != "" {
			add(Difference{Kind: DiffContent, Seq: p.Seq, Subject: p.Subject, ResultID: p.ID, PCID: p.Result.PCID, Detail: d})
		}
	}
	return nil
}

// verifyDerived checks that each current-state derived row a message
// writes (inventory facts, check status, a feed) is in its table, as this
// message left it or newer. A table the database lacks is not checked.
func verifyDerived(ctx context.Context, st Verifying, prepared []projector.Prepared, add func(Difference)) error {
	var keys store.DerivedKeys
	for _, p := range prepared {
		for _, w := range p.Derived {
			switch w.Table {
			case projector.DerivedFacts:
				keys.Facts = append(keys.Facts, store.FactsKey{PCID: w.PCID, JobID: w.Name})
			case projector.DerivedCheck:
				keys.Checks = append(keys.Checks, store.CheckKey{PCID: w.PCID, CheckName: w.Name})
			case projector.DerivedFeed:
				keys.Feeds = append(keys.Feeds, w.Name)
			}
		}
	}
	if len(keys.Facts)+len(keys.Checks)+len(keys.Feeds) == 0 {
		return nil
	}
	stamps, err := st.DerivedStamps(ctx, keys)
	if err != nil {
		return err
	}
	prec := st.Kind().TimePrecision()
	for _, p := range prepared {
		for _, w := range p.Derived {
			var at time.Time
			var ok bool
			var what string
			switch w.Table {
			case projector.DerivedFacts:
				if stamps.Facts == nil {
					continue
				}
				at, ok = stamps.Facts[store.FactsKey{PCID: w.PCID, JobID: w.Name}]
				what = fmt.Sprintf("inventory_facts (%s, %s)", w.PCID, w.Name)
			case projector.DerivedCheck:
				if stamps.Checks == nil {
					continue
				}
				at, ok = stamps.Checks[store.CheckKey{PCID: w.PCID, CheckName: w.Name}]
				what = fmt.Sprintf("check_status (%s, %s)", w.PCID, w.Name)
			case projector.DerivedFeed:
				if stamps.Feeds == nil {
					continue
				}
				at, ok = stamps.Feeds[w.Name]
				what = fmt.Sprintf("feed %q", w.Name)
			}
			d := Difference{Kind: DiffDerived, Seq: p.Seq, Subject: p.Subject, ResultID: p.ID, PCID: p.Result.PCID}
			switch {
			case !ok:
				d.Detail = "no " + what + " row"
				add(d)
			case at.Truncate(prec).Before(w.At.Truncate(prec)):
				d.Detail = fmt.Sprintf("%s was recorded at %s, before this message (%s)", what, wire.FormatTimestamp(at), wire.FormatTimestamp(w.At))
				add(d)
			}
		}
	}
	return nil
}

func pcOf(p projector.Prepared) string {
	if p.Result != nil {
		return p.Result.PCID
	}
	return p.Started.PCID
}

// compare reports the first field in which the row differs from the
// message, as the store would have kept the message.
func compare(k store.Kind, r *wire.ExecResult, row store.ResultRow) string {
	prec := k.TimePrecision()
	same := func(a, b time.Time) bool { return a.Truncate(prec).Equal(b.Truncate(prec)) }
	switch {
	case row.ExitCode == nil || *row.ExitCode != r.ExitCode:
		return fmt.Sprintf("exit_code: row %s, message %d", exitText(row.ExitCode), r.ExitCode)
	case row.Stdout != k.StoredText(r.Stdout):
		return fmt.Sprintf("stdout: row has %d bytes, message %d", len(row.Stdout), len(r.Stdout))
	case row.Stderr != k.StoredText(r.Stderr):
		return fmt.Sprintf("stderr: row has %d bytes, message %d", len(row.Stderr), len(r.Stderr))
	case !same(row.StartedAt, r.StartedAt):
		return fmt.Sprintf("started_at: row %s, message %s", wire.FormatTimestamp(row.StartedAt), wire.FormatTimestamp(r.StartedAt))
	case !same(*row.FinishedAt, r.FinishedAt):
		return fmt.Sprintf("finished_at: row %s, message %s", wire.FormatTimestamp(*row.FinishedAt), wire.FormatTimestamp(r.FinishedAt))
	}
	return ""
}

func exitText(c *int32) string {
	if c == nil {
		return "NULL"
	}
	return fmt.Sprint(*c)
}
