package projector

import (
	"context"
	"slices"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// derivedPlan is what a batch writes to the tables upstream derives from
// results (spec 4b). None of it depends on the result rows' state:
// upstream runs these writes on every delivery, and only their recency
// guards make a redelivery change nothing. So they are planned once, in
// Prepare, and applied against what the tables hold.
type derivedPlan struct {
	// checks holds each (PC, check)'s newest status in the batch; of two
	// equally new, the later one, as the >= guard leaves it.
	checks   []store.CheckRow
	checkIdx map[[2]string]int
	// feeds holds each feed's first newest refresh in the batch: upstream
	// replaces a feed only when strictly newer than its watermark, so of
	// a run of refreshes the first of the newest is the one that stays.
	feeds   []store.Feed
	feedIdx map[string]int
	// history holds, per (PC, job) whose manifest lists history_scalars
	// or explode specs, every facts write in stream order: each accepted
	// one is diffed against the one before it, and replaces its explode
	// rows.
	history []historyChain
	histIdx map[store.FactsKey]int
	steps   int // history steps planned, numbering them in stream order
	// before holds each chain's last step of the batch prepared before
	// this one (Projector.lastSteps), while this one is prepared: a PC's
	// first scan in a batch usually repeats its last scan in the batch
	// before, so its value, rows and diffs can be worked out against that
	// step, off the transaction's clock, and the transaction only checks
	// that the tables hold what that step wrote.
	before map[store.FactsKey]*historyStep
}

type historyChain struct {
	key   store.FactsKey
	steps []historyStep
}

type historyStep struct {
	ord  int // the step's place in the batch: history rows are numbered in stream order
	text string
	// facts is the value of text, once planned only its history scalars
	// (slimFacts): what the transaction reads of it. The explode rows say
	// where their elements are, and a diff in the transaction parses text
	// again for the few rows it writes (elements).
	facts     wire.JSONValue
	scalars   []string
	explode   []*explodeSpec
	rows      [][]explodeRow // each explode spec's rows, worked out in Prepare (off the transaction's clock)
	collected time.Time
	published time.Time
	// follows is whether the history rows below were worked out, in
	// Prepare, against the step before this one in its chain: they are
	// this step's rows whenever that step is the last one accepted before
	// it, as it is unless stored facts or publish times interleave. Only
	// a chain's first accepted step is then diffed on the transaction's
	// clock, against what the tables hold.
	follows bool
	// prev is, for a chain's first step, the last step of its chain in
	// the batch prepared before, when follows was worked out against it:
	// the transaction takes this step's diffs only when the tables hold
	// what prev wrote (storedAs).
	prev        *historyStep
	nullKeys    bool // an explode row has a NULL key column: its diff is not empty when its facts are unchanged
	scalarsHist []store.HistoryRow
	explodeHist [][]store.HistoryRow // per explode spec; nil for one without track_history, all nil for a repeated scan
}

// planDerived plans a result's derived writes under its manifest.
func (p *Projector) planDerived(d *derivedPlan, it *item, man *wire.Manifest) {
	r := it.result
	if r.ExitCode == 0 && man.Inventory != nil {
		it.inventory = p.inventoryText(man)
		// The facts are the fenced, trimmed payload, stored as written,
		// when it is one JSON value as serde_json reads one (spec 4b.1).
		if payload, ok := wire.FencedPayload(r.Stdout, wire.HintInventory); ok {
			// The value itself is needed only for history and explode.
			if specs := p.explodeSpecs(man); len(man.Inventory.HistoryScalars) > 0 || len(specs) > 0 {
				key := store.FactsKey{PCID: r.PCID, JobID: *r.ManifestID}
				st := historyStep{text: payload, scalars: man.Inventory.HistoryScalars, explode: specs, collected: r.FinishedAt, published: it.published}
				if prev, across := d.same(key, &st); prev != nil {
					// Most scans repeat the one before: its value, rows and
					// (empty) diffs are this one's.
					it.facts = &payload
					st.facts, st.rows, st.follows = prev.facts, prev.rows, true
					if across {
						st.prev = prev
					}
					d.addHistory(key, st, false)
				} else if v, err := p.facts.Parse(payload); err == nil {
					it.facts = &payload
					st.facts = v
					for _, x := range specs {
						rows := x.rowsOf(&st.facts, p.store.Kind())
						st.rows = append(st.rows, rows)
						st.nullKeys = st.nullKeys || slices.ContainsFunc(rows, func(r explodeRow) bool { return r.null })
					}
					d.addHistory(key, st, true)
				}
			} else if wire.CheckJSON(payload) == nil {
				it.facts = &payload
			}
		}
	}
	if it.facts != nil {
		it.derived = append(it.derived, DerivedWrite{Table: DerivedFacts, PCID: r.PCID, Name: *r.ManifestID, At: it.published})
	}
	if r.ExitCode == 0 && len(man.Feed) > 0 {
		for _, f := range feedsOf(man, r, it.published) {
			d.addFeed(f, p.store.Kind().TimePrecision())
			it.derived = append(it.derived, DerivedWrite{Table: DerivedFeed, Name: f.Meta.FeedID, At: it.published})
		}
	}
	if man.Check != nil && man.Check.Projected() && !r.SkipsChecks() {
		status, detail := man.Check.Evaluate(r.ExitCode, r.Stdout, r.Stderr)
		d.addCheck(store.CheckRow{PCID: r.PCID, CheckName: *man.Check.Name, Label: man.Check.Label,
			Status: status, Detail: detail, RecordedAt: it.published}, p.store.Kind().TimePrecision())
		it.derived = append(it.derived, DerivedWrite{Table: DerivedCheck, PCID: r.PCID, Name: *man.Check.Name, At: it.published})
	}
}

func (d *derivedPlan) addCheck(c store.CheckRow, prec time.Duration) {
	key := [2]string{c.PCID, c.CheckName}
	if d.checkIdx == nil {
		d.checkIdx = map[[2]string]int{}
	}
	if i, ok := d.checkIdx[key]; ok {
		if !c.RecordedAt.Truncate(prec).Before(d.checks[i].RecordedAt.Truncate(prec)) {
			d.checks[i] = c
		}
		return
	}
	d.checkIdx[key] = len(d.checks)
	d.checks = append(d.checks, c)
}

func (d *derivedPlan) addFeed(f store.Feed, prec time.Duration) {
	if d.feedIdx == nil {
		d.feedIdx = map[string]int{}
	}
	if i, ok := d.feedIdx[f.Meta.FeedID]; ok {
		if f.Meta.RecordedAt.Truncate(prec).After(d.feeds[i].Meta.RecordedAt.Truncate(prec)) {
			d.feeds[i] = f
		}
		return
	}
	d.feedIdx[f.Meta.FeedID] = len(d.feeds)
	d.feeds = append(d.feeds, f)
}

// addHistory appends s to its chain, diffed against the step before it
// (in the batch, or the chain's last in the batch before). A parsed step's
// value is then cut to its history scalars (slimFacts); a repeat shares
// the value of the step it repeats, already cut.
func (d *derivedPlan) addHistory(key store.FactsKey, s historyStep, parsed bool) {
	if d.histIdx == nil {
		d.histIdx = map[store.FactsKey]int{}
	}
	i, ok := d.histIdx[key]
	if !ok {
		i = len(d.history)
		d.histIdx[key] = i
		d.history = append(d.history, historyChain{key: key})
	}
	s.ord = d.steps
	d.steps++
	if n := len(d.history[i].steps); n > 0 && !s.follows {
		s.diffAfter(key, &d.history[i].steps[n-1])
	} else if n == 0 && !s.follows {
		if p := d.before[key]; p != nil && p.sameSpecs(&s) {
			if s.diffAfter(key, p); s.follows {
				s.prev = p
			}
		}
	}
	if parsed {
		s.facts = slimFacts(&s.facts, s.scalars)
	}
	d.history[i].steps = append(d.history[i].steps, s)
}

// same is the step before s in its chain when s repeats it: the same
// facts text, so the same value and rows, and no history between them
// (unless a NULL key makes its rows ambiguous, or two specs write one
// table). A chain's steps share one manifest: the projector reads a
// job's manifest once. For a chain's first step it is the chain's last
// step in the batch before (across), whose manifest may have been
// another.
func (d *derivedPlan) same(key store.FactsKey, s *historyStep) (p *historyStep, across bool) {
	if i, ok := d.histIdx[key]; ok {
		steps := d.history[i].steps
		p = &steps[len(steps)-1]
	} else if p = d.before[key]; p == nil || !p.sameSpecs(s) {
		return nil, false
	} else {
		across = true
	}
	if p.text == s.text && !p.nullKeys && oneTableEach(s.explode) {
		return p, across
	}
	return nil, false
}

// sameSpecs is whether p and s diff and explode under one manifest's
// hints (the projector keeps each manifest's specs, so one manifest
// gives the same pointers).
func (p *historyStep) sameSpecs(s *historyStep) bool {
	return slices.Equal(p.scalars, s.scalars) && slices.Equal(p.explode, s.explode)
}

// lastSteps is each chain's last step, for the batch after this one
// (derivedPlan.before): a copy that keeps what a later diff reads, and
// not the step's own history or the step before it.
func (d *derivedPlan) lastSteps() map[store.FactsKey]*historyStep {
	if len(d.history) == 0 {
		return nil
	}
	out := make(map[store.FactsKey]*historyStep, len(d.history))
	for _, ch := range d.history {
		last := ch.steps[len(ch.steps)-1]
		if last.nullKeys || !oneTableEach(last.explode) {
			continue // never the step before across batches: see same and storedAs
		}
		out[ch.key] = &historyStep{text: last.text, facts: last.facts, scalars: last.scalars, explode: last.explode,
			rows: last.rows, published: last.published}
	}
	return out
}

// oneTableEach is whether no two specs write one table. When two do, a
// step's rows of one are diffed against the other's, not against the
// step before.
func oneTableEach(specs []*explodeSpec) bool {
	for i, x := range specs {
		for _, y := range specs[:i] {
			if y.table.Name == x.table.Name {
				return false
			}
		}
	}
	return true
}

// diffAfter works out s's history rows as if p, the step before it in its
// chain, were the last one accepted before it.
func (s *historyStep) diffAfter(key store.FactsKey, p *historyStep) {
	if !oneTableEach(s.explode) {
		return
	}
	s.follows = true
	s.scalarsHist = diffScalars(key, &p.facts, &s.facts, s.scalars, s.published)
	s.explodeHist = make([][]store.HistoryRow, len(s.explode))
	for i, x := range s.explode {
		if x.track {
			s.explodeHist[i] = x.diff(key, p.rows[i], s.rows[i], func() []wire.JSONValue { return itemsOf(&s.facts, x) }, s.published)
		}
	}
}

// slimFacts is what a planned step keeps of its facts: the history
// scalars' members of an object (the rest of a value, its explode arrays
// above all, is most of a batch's memory), and only the kind of anything
// else, of which Get finds nothing. The members are cloned out of the
// arena the value was parsed in.
func slimFacts(v *wire.JSONValue, scalars []string) wire.JSONValue {
	out := wire.JSONValue{Kind: v.Kind}
	if v.Kind != wire.JSONObject {
		return out
	}
	for _, m := range v.Members {
		if slices.Contains(scalars, m.Key) {
			out.Members = append(out.Members, wire.JSONMember{Key: m.Key, Value: m.Value.Clone()}) // in v's order, which is Get's
		}
	}
	return out
}

// itemsOf is the array of x's field in a parsed value (nil when there is
// none).
func itemsOf(v *wire.JSONValue, x *explodeSpec) []wire.JSONValue {
	if arr := v.Get(x.field); arr != nil {
		return arr.Items
	}
	return nil
}

// elements gives the array of x's field in st's facts, parsed again from
// its text the first time it is asked: the step kept only its scalars.
// The text parsed when the step was planned, so it parses the same.
func (st *historyStep) elements(x *explodeSpec) func() []wire.JSONValue {
	var items []wire.JSONValue
	parsed := false
	return func() []wire.JSONValue {
		if !parsed {
			parsed = true
			if v, err := wire.ParseJSON(st.text); err == nil {
				items = itemsOf(&v, x)
			}
		}
		return items
	}
}

// feedsOf is what an exit-0 result of a feed manifest refreshes: for each
// feed spec, the items of its field in the FEED payload, keyed by their
// ids (the last of two equal ids wins). A payload that is not a JSON
// object refreshes nothing; a field that is there but not an array leaves
// that feed as it is; a missing field empties it.
func feedsOf(man *wire.Manifest, r *wire.ExecResult, published time.Time) []store.Feed {
	payload, _ := wire.FencedPayload(r.Stdout, wire.HintFeed)
	v, err := wire.ParseJSON(payload)
	if err != nil || v.Kind != wire.JSONObject {
		return nil
	}
	var out []store.Feed
	for i := range man.Feed {
		spec := &man.Feed[i]
		arr := v.Get(spec.FieldName())
		if arr != nil && arr.Kind != wire.JSONArray {
			continue
		}
		fetched := r.FinishedAt
		f := store.Feed{Meta: store.FeedMeta{FeedID: spec.FeedID(), RecordedAt: published, FetchedAt: &fetched}}
		if arr != nil {
			seen := map[string]int{}
			for j := range arr.Items {
				id, ok := spec.ItemID(&arr.Items[j])
				if !ok {
					continue
				}
				f.Meta.ItemCount++
				data := arr.Items[j].Compact()
				if k, dup := seen[id]; dup {
					f.Items[k].Data = data
					continue
				}
				seen[id] = len(f.Items)
				f.Items = append(f.Items, store.FeedItem{ItemID: id, Data: data})
			}
		}
		out = append(out, f)
	}
	return out
}

// inventoryWrites replays each chain's facts writes against the stored
// facts with the >= guard upstream's upsert has: an accepted write is
// diffed with the facts (and explode rows) before it, and its explode rows
// replace the ones before them; a rejected one does nothing. It returns
// the history rows in stream order and the explode rows to write: those
// that differ from what the tables hold.
//
// memo is what the last batch left in the explode tables (see
// explodeMemo); the memo of what this batch leaves is returned, for the
// caller to keep once the batch is committed.
func (d *derivedPlan) inventoryWrites(ctx context.Context, tx store.ProjectionTx, at func(time.Time) time.Time, memo *explodeMemo, check bool) ([]store.HistoryRow, map[*explodeSpec][]store.ExplodeChange, *explodeMemo, error) {
	if len(d.history) == 0 {
		return nil, nil, nil, nil
	}
	keys := make([]store.FactsKey, len(d.history))
	for i, ch := range d.history {
		keys[i] = ch.key
	}
	stored, err := tx.LoadFacts(ctx, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	tables, next, err := d.loadExplode(ctx, tx, at, memo, check)
	if err != nil {
		return nil, nil, nil, err
	}
	type numbered struct {
		ord int
		row store.HistoryRow
	}
	var rows []numbered
	writes := map[*explodeSpec][]store.ExplodeChange{}
	for _, ch := range d.history {
		var prior *wire.JSONValue
		var priorAt time.Time
		var storedText string
		have, readable := false, true
		if s, ok := stored[ch.key]; ok {
			have, priorAt, storedText = true, at(s.RecordedAt), s.FactsJSON
		}
		states := map[string]*explodeState{}
		var stateOrder []*explodeState
		state := func(x *explodeSpec) *explodeState {
			es := states[x.table.Name]
			if es == nil {
				es = &explodeState{spec: x, key: ch.key}
				s := tables[x.table.Name][ch.key]
				es.rows, es.collected = s.of(x), s.collected
				es.orig, es.origCollected = es.rows, es.collected
				states[x.table.Name] = es
				stateOrder = append(stateOrder, es)
			}
			return es
		}
		last := -1 // the last step accepted
		for i := range ch.steps {
			st := &ch.steps[i]
			if have && at(st.published).Before(priorAt) {
				continue
			}
			ahead := st.follows && last == i-1
			if last == -1 {
				// The first step accepted diffs against the stored facts:
				// as its prev left them, or read.
				if ahead = ahead && st.prev != nil && have && storedText == st.prev.text && storedAs(st.prev, tables != nil, state); ahead {
					prior = &st.prev.facts
				} else if have {
					// Only the history scalars of the stored facts are read
					// (the whole text is still checked: upstream's diff
					// fails on facts that do not parse, and writes no
					// history then).
					if scalars := ch.steps[0].scalars; len(scalars) > 0 {
						if v, err := wire.ParseJSONMembers(storedText, scalars); err == nil {
							prior = &v
						} else {
							readable = false
						}
					}
				}
			}
			last = i
			if readable {
				scalars := st.scalarsHist
				if !ahead {
					scalars = diffScalars(ch.key, prior, &st.facts, st.scalars, st.published)
				}
				for _, r := range scalars {
					rows = append(rows, numbered{st.ord, r})
				}
			}
			prior, priorAt, have, readable = &st.facts, at(st.published), true, true
			if tables == nil {
				continue
			}
			for xi, x := range st.explode {
				es := state(x)
				next := st.rows[xi]
				if len(next) == 0 && len(es.rows) == 0 {
					continue // upstream's short cut: nothing to remove, nothing to write
				}
				if x.track {
					var hist []store.HistoryRow
					if ahead {
						if st.explodeHist != nil { // nil: the step repeats the one before
							hist = st.explodeHist[xi] // es.rows are the step before's
						}
					} else {
						hist = x.diff(ch.key, es.rows, next, st.elements(x), st.published)
					}
					for _, r := range hist {
						rows = append(rows, numbered{st.ord, r})
					}
				}
				collected := st.collected
				es.rows, es.collected = next, &collected
			}
		}
		for _, es := range stateOrder {
			if c, ok := es.change(at); ok {
				writes[es.spec] = append(writes[es.spec], c)
			}
		}
		if next != nil {
			for n, mt := range next.tables {
				if mt == nil {
					continue
				}
				if es := states[n]; es != nil {
					next.keep(n, ch.key, es.rows, es.collected)
				} else if s, ok := tables[n][ch.key]; ok {
					next.keep(n, ch.key, s.of(mt.spec), s.collected)
				}
			}
		}
	}
	if next != nil {
		next.carry()
	}
	// Into stream order: a counting sort by step number, which keeps a
	// step's rows in the order they were made (ord < d.steps).
	slot := make([]int, d.steps+1)
	for _, r := range rows {
		slot[r.ord+1]++
	}
	for i := 1; i < len(slot); i++ {
		slot[i] += slot[i-1]
	}
	out := make([]store.HistoryRow, len(rows))
	for _, r := range rows {
		out[slot[r.ord]] = r.row
		slot[r.ord]++
	}
	return out, writes, next, nil
}

// storedAs is whether the explode tables hold, for a chain's key, the
// rows prev (the chain's last step in the batch before) left there; state
// gives the rows the tables hold. With no explode tables there is
// nothing to compare.
func storedAs(prev *historyStep, tables bool, state func(*explodeSpec) *explodeState) bool {
	if !tables {
		return len(prev.explode) == 0
	}
	for xi, x := range prev.explode {
		if !sameRowSet(state(x).orig, prev.rows[xi]) {
			return false
		}
	}
	return true
}

// sameRowSet is whether two sets of rows without a NULL key column hold
// the same rows, in any order (a diff reads them by identity).
func sameRowSet(a, b []explodeRow) bool {
	if len(a) != len(b) {
		return false
	}
	inOrder := true
	for i := range a {
		if a[i].null || b[i].null {
			return false
		}
		inOrder = inOrder && a[i].key == b[i].key && cellsEqual(a[i].cells, b[i].cells)
	}
	if inOrder {
		return true
	}
	byKey := make(map[string][]store.Cell, len(a))
	for _, r := range a {
		byKey[r.key] = r.cells
	}
	if len(byKey) != len(a) {
		return false
	}
	for _, r := range b {
		if c, ok := byKey[r.key]; !ok || !cellsEqual(c, r.cells) {
			return false
		}
	}
	return true
}

// diffScalars is upstream's scalar history: for each listed field present
// in the new facts, "added" when the prior facts lack it, "changed" when
// the two values differ as serde_json compares them (8 and 8.0 differ).
// A field that went missing writes nothing.
func diffScalars(key store.FactsKey, prior, next *wire.JSONValue, scalars []string, observed time.Time) []store.HistoryRow {
	var out []store.HistoryRow
	wrap := func(v *wire.JSONValue) *string {
		s := `{"value":` + v.Compact() + `}`
		return &s
	}
	for _, field := range scalars {
		nv := next.Get(field)
		if nv == nil {
			continue
		}
		pv := prior.Get(field)
		switch {
		case pv == nil:
			out = append(out, store.HistoryRow{PCID: key.PCID, JobID: key.JobID, FieldPath: field, ChangeKind: "added",
				AfterJSON: wrap(nv), ObservedAt: observed})
		case !pv.Equal(nv):
			out = append(out, store.HistoryRow{PCID: key.PCID, JobID: key.JobID, FieldPath: field, ChangeKind: "changed",
				BeforeJSON: wrap(pv), AfterJSON: wrap(nv), ObservedAt: observed})
		}
	}
	return out
}

// replaceFeeds writes each planned refresh that is newer than its feed's
// watermark, and returns how many it wrote.
func (d *derivedPlan) replaceFeeds(ctx context.Context, tx store.ProjectionTx, at func(time.Time) time.Time) (int64, error) {
	if len(d.feeds) == 0 {
		return 0, nil
	}
	ids := make([]string, len(d.feeds))
	for i, f := range d.feeds {
		ids[i] = f.Meta.FeedID
	}
	marks, err := tx.FeedWatermarks(ctx, ids)
	if err != nil {
		return 0, err
	}
	var newer []store.Feed
	for _, f := range d.feeds {
		if mark, ok := marks[f.Meta.FeedID]; !ok || at(f.Meta.RecordedAt).After(at(mark)) {
			newer = append(newer, f)
		}
	}
	if err := tx.ReplaceFeeds(ctx, newer); err != nil {
		return 0, err
	}
	return int64(len(newer)), nil
}
