package projector

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// explodeSpec is a manifest's explode spec, validated, as the store and
// the planner use it.
type explodeSpec struct {
	table store.ExplodeTable
	field string
	track bool
	keyAt []int // the primary key's columns, by index
	// byName and keyByName are the columns and the key's columns in name
	// order: the order serde_json's map writes their JSON in.
	byName, keyByName []int
}

// explodeSpecs returns a hint's valid specs; upstream skips an invalid one
// (it cannot create its table) and so does the projector.
func explodeSpecs(h *wire.InventoryHint) (out []*explodeSpec, invalid []string) {
	for i := range h.Explode {
		s := &h.Explode[i]
		if err := s.Validate(); err != nil {
			invalid = append(invalid, fmt.Sprintf("explode spec %d (table %q) skipped: %v", i, s.TableName(), err))
			continue
		}
		x := &explodeSpec{field: s.FieldName(), track: s.TrackHistory,
			table: store.ExplodeTable{Name: s.TableName(), PrimaryKey: s.PrimaryKey}}
		for j := range s.Columns {
			c := &s.Columns[j]
			x.table.Columns = append(x.table.Columns, store.ExplodeColumn{Name: c.Name(), Kind: c.Kind(), Index: c.Index})
		}
		for _, k := range s.PrimaryKey {
			for j, c := range x.table.Columns {
				if c.Name == k {
					x.keyAt = append(x.keyAt, j)
					break
				}
			}
		}
		byName := func(idx []int) []int {
			out := slices.Clone(idx)
			sort.SliceStable(out, func(a, b int) bool { return x.table.Columns[out[a]].Name < x.table.Columns[out[b]].Name })
			return out
		}
		all := make([]int, len(x.table.Columns))
		for j := range all {
			all[j] = j
		}
		x.byName, x.keyByName = byName(all), byName(x.keyAt)
		out = append(out, x)
	}
	return out, invalid
}

// explodeCell is the value an element's field takes in a column of kind:
// what upstream binds (its bind_column: a number to an integer column only
// when it is an integer, to a real one as a float, anything else as text,
// numbers and booleans written out, objects and arrays as compact JSON),
// as SQLite's column affinity then stores it.
func explodeCell(kind string, v *wire.JSONValue) store.Cell {
	if v == nil || v.Kind == wire.JSONNull {
		return store.Cell{}
	}
	var text string
	switch {
	case kind == store.ColInteger && v.Kind == wire.JSONNumber:
		if i, ok := v.Int64(); ok {
			return store.Cell{Kind: store.CellInt, Int: i}
		}
		return store.Cell{} // 1.5 or beyond i64: upstream binds None
	case kind == store.ColReal && v.Kind == wire.JSONNumber:
		f, _ := v.Float64()
		return store.Cell{Kind: store.CellReal, Real: f}
	case v.Kind == wire.JSONString:
		text = v.Str
	default:
		text = v.Compact() // numbers, booleans, objects and arrays
	}
	return affinity(kind, text)
}

// numericText is SQLite's well-formed numeric text (spaces around allowed).
var numericText = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`)

// affinity applies SQLite's column affinity to text bound to a column of
// kind: an INTEGER column stores numeric text as an integer when its value
// is one (and small enough to be exact), otherwise as a real; a REAL column
// as a real; other text stays text.
func affinity(kind, text string) store.Cell {
	if kind == store.ColText {
		return store.Cell{Kind: store.CellText, Text: text}
	}
	t := strings.Trim(text, " \t\n\v\f\r")
	if !numericText.MatchString(t) {
		return store.Cell{Kind: store.CellText, Text: text}
	}
	if kind == store.ColInteger {
		if i, err := strconv.ParseInt(strings.TrimPrefix(t, "+"), 10, 64); err == nil {
			return store.Cell{Kind: store.CellInt, Int: i}
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(f, 0) {
		return store.Cell{Kind: store.CellText, Text: text}
	}
	// SQLite keeps a real as an integer only when it is one and within
	// ±2^51 (sqlite3RealSameAsInt).
	if kind == store.ColInteger && f == math.Trunc(f) && math.Abs(f) < 1<<51 {
		return store.Cell{Kind: store.CellInt, Int: int64(f)}
	}
	return store.Cell{Kind: store.CellReal, Real: f}
}

// cellJSON is a stored value as JSON: an integer, a float, a string or null.
func cellJSON(b []byte, c store.Cell) []byte {
	switch c.Kind {
	case store.CellInt:
		return strconv.AppendInt(b, c.Int, 10)
	case store.CellReal:
		if math.IsInf(c.Real, 0) || math.IsNaN(c.Real) {
			return append(b, "null"...)
		}
		return wire.AppendRyu(b, c.Real)
	case store.CellText:
		return wire.AppendJSONString(b, c.Text)
	}
	return append(b, "null"...)
}

// cellKey is a cell as part of a row's identity; NULL is "null", as in
// upstream's identity strings.
func cellKey(b []byte, c store.Cell) []byte {
	switch c.Kind {
	case store.CellInt:
		return strconv.AppendInt(append(b, 'i'), c.Int, 10)
	case store.CellReal:
		return strconv.AppendFloat(append(b, 'r'), c.Real, 'g', -1, 64)
	case store.CellText:
		return append(strconv.AppendInt(append(b, 't'), int64(len(c.Text)), 10), c.Text...)
	}
	return append(b, "null"...)
}

func (x *explodeSpec) identity(cells []store.Cell) (key string, hasNull bool) {
	b, hasNull := x.appendIdentity(nil, cells)
	return string(b), hasNull
}

func (x *explodeSpec) appendIdentity(b []byte, cells []store.Cell) ([]byte, bool) {
	hasNull := false
	for _, i := range x.keyAt {
		b = cellKey(append(b, '|'), cells[i])
		hasNull = hasNull || cells[i].Kind == store.CellNull
	}
	return b, hasNull
}

// explodeRow is one element as a row: its cells, its identity (see
// identity) and where the element is. Not the element itself: a parsed
// inventory is ten times its text, and a batch would hold every one of
// them until it commits (historyStep.elements gives it back).
type explodeRow struct {
	cells []store.Cell
	key   string
	null  bool // a key column is NULL
	elem  int  // 1 + the element's index in the facts' array; 0 for a row read from the table
}

func (x *explodeSpec) row(cells []store.Cell, elem int) explodeRow {
	key, null := x.identity(cells)
	return explodeRow{cells: cells, key: key, null: null, elem: elem}
}

// rowsOf is what an accepted facts write puts in the table: a row per
// element of the field's array (none when it is missing or not an array),
// the first of two elements with one key kept, as upstream's insert keeps
// it. Rows with a NULL key column are all kept where the store can hold
// them (SQLite's key tells NULLs apart) and dropped where it cannot.
func (x *explodeSpec) rowsOf(facts *wire.JSONValue, kind store.Kind) []explodeRow {
	arr := facts.Get(x.field)
	if arr == nil || arr.Kind != wire.JSONArray {
		return nil
	}
	// One block holds every row's cells and one string every identity: a
	// 20-app scan made some eighty allocations here, a tenth of a
	// hint-heavy replay's planning.
	n, width := len(arr.Items), len(x.table.Columns)
	block := make([]store.Cell, n*width)
	rows, ends := make([]explodeRow, n), make([]int, n)
	var ids []byte
	unique := 0 // the rows with no NULL key column
	for i := range arr.Items {
		el := &arr.Items[i]
		cells := block[i*width : (i+1)*width : (i+1)*width]
		for j, c := range x.table.Columns {
			cells[j] = kind.StoredCell(c.Kind, explodeCell(c.Kind, el.Get(c.Name)))
		}
		rows[i].cells, rows[i].elem = cells, i+1
		ids, rows[i].null = x.appendIdentity(ids, cells)
		ends[i] = len(ids)
		if !rows[i].null {
			unique++
		}
	}
	all := string(ids)
	var seen map[string]bool
	if unique > 32 {
		seen = make(map[string]bool, unique)
	}
	out, start := rows[:0], 0
	for i := range rows {
		r := rows[i]
		r.key, start = all[start:ends[i]], ends[i]
		if r.null && !kind.NullKeys() {
			continue
		}
		if !r.null {
			if seen != nil {
				if seen[r.key] {
					continue
				}
				seen[r.key] = true
			} else if slices.ContainsFunc(out, func(o explodeRow) bool { return !o.null && o.key == r.key }) {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// rowJSON is a stored row as JSON, its columns (those of cols, in name
// order) as keys.
func (x *explodeSpec) rowJSON(cells []store.Cell, cols []int) string {
	b := []byte{'{'}
	for i, j := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(wire.AppendJSONString(b, x.table.Columns[j].Name), ':')
		b = cellJSON(b, cells[j])
	}
	return string(append(b, '}'))
}

// elementIdentity is upstream's identity_json of a new element: its key
// fields as they are in the element (null when missing).
func (x *explodeSpec) elementIdentity(el *wire.JSONValue) string {
	b := []byte{'{'}
	for i, j := range x.keyByName {
		if i > 0 {
			b = append(b, ',')
		}
		name := x.table.Columns[j].Name
		b = append(wire.AppendJSONString(b, name), ':')
		if v := el.Get(name); v != nil {
			b = v.AppendCompact(b)
		} else {
			b = append(b, "null"...)
		}
	}
	return string(append(b, '}'))
}

// diff is upstream's track_history diff of a PC's rows: new elements in
// order, "added" or (when a column differs) "changed", then the rows that
// are gone, "removed". Rows compare as stored, each element coerced to the
// column types, so an unchanged element never writes history (upstream
// compares the raw element with the typed row, and a number in a text
// column reads as changed on every scan: a deliberate difference).
//
// elements gives the array next's rows were worked out from; it is asked
// only when a row is added or changed.
func (x *explodeSpec) diff(key store.FactsKey, prior, next []explodeRow, elements func() []wire.JSONValue, observed time.Time) []store.HistoryRow {
	// find is the last prior row with identity k (as upstream's map keeps
	// the last of two), or -1; inNext whether one of next's first upTo
	// rows has identity k. A PC's 20 apps are searched in place: the maps
	// they were put in were a third of this function's time; past 32 rows
	// the maps are back (seen is filled as next is walked).
	var byKey map[string]int
	var seen map[string]bool
	if len(prior) > 32 || len(next) > 32 {
		byKey, seen = make(map[string]int, len(prior)), make(map[string]bool, len(next))
		for i, r := range prior {
			byKey[r.key] = i
		}
	}
	find := func(k string) int {
		if byKey != nil {
			if i, ok := byKey[k]; ok {
				return i
			}
			return -1
		}
		for i := len(prior) - 1; i >= 0; i-- {
			if prior[i].key == k {
				return i
			}
		}
		return -1
	}
	inNext := func(k string, upTo int) bool {
		if seen != nil {
			return seen[k]
		}
		return slices.ContainsFunc(next[:upTo], func(r explodeRow) bool { return r.key == k })
	}
	var out []store.HistoryRow
	row := func(kind string, ident string, before, after *string) {
		out = append(out, store.HistoryRow{PCID: key.PCID, JobID: key.JobID, FieldPath: x.field, IdentityJSON: &ident,
			ChangeKind: kind, BeforeJSON: before, AfterJSON: after, ObservedAt: observed})
	}
	for j, r := range next {
		if inNext(r.key, j) {
			continue
		}
		if seen != nil {
			seen[r.key] = true
		}
		i := find(r.key)
		switch {
		case i < 0:
			el := &elements()[r.elem-1]
			after := el.Compact()
			row("added", x.elementIdentity(el), nil, &after)
		case !cellsEqual(prior[i].cells, r.cells):
			el := &elements()[r.elem-1]
			after := el.Compact()
			before := x.rowJSON(prior[i].cells, x.byName)
			row("changed", x.elementIdentity(el), &before, &after)
		}
	}
	// The rows that are gone, each identity once, in identity order.
	var gone []int
	for i, r := range prior {
		if !inNext(r.key, len(next)) && find(r.key) == i {
			gone = append(gone, i)
		}
	}
	slices.SortFunc(gone, func(a, b int) int { return strings.Compare(prior[a].key, prior[b].key) })
	for _, i := range gone {
		p := prior[i]
		before := x.rowJSON(p.cells, x.byName)
		row("removed", x.rowJSON(p.cells, x.keyByName), &before, nil)
	}
	return out
}

func cellsEqual(a, b []store.Cell) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// explodeState is a (PC, job)'s rows of one table as the batch has them,
// and as the table held them before it.
type explodeState struct {
	spec          *explodeSpec
	key           store.FactsKey
	rows          []explodeRow
	collected     *time.Time
	orig          []explodeRow
	origCollected *time.Time
}

// change is the least that turns the stored rows into the batch's: the
// rows that are gone or differ are deleted, the new or different ones
// inserted, and the rest restamped when collected_at moved; rows that
// cannot be addressed by their key (a NULL in it) make it a replacement
// of all of them. ok is false when the table already holds the rows.
func (es *explodeState) change(at func(time.Time) time.Time) (store.ExplodeChange, bool) {
	c := store.ExplodeChange{Key: es.key, CollectedAt: es.collected}
	byKey := func(rows []explodeRow) (map[string][]store.Cell, bool) {
		m := make(map[string][]store.Cell, len(rows))
		for _, r := range rows {
			if r.null {
				return nil, false
			}
			m[r.key] = r.cells
		}
		return m, true
	}
	orig, ok1 := byKey(es.orig)
	next, ok2 := byKey(es.rows)
	if !ok1 || !ok2 {
		if len(es.orig) == 0 && len(es.rows) == 0 {
			return c, false
		}
		c.All = true
		for _, r := range es.rows {
			c.Insert = append(c.Insert, r.cells)
		}
		return c, true
	}
	kept := 0
	for _, r := range es.orig {
		if n, ok := next[r.key]; ok && cellsEqual(n, r.cells) {
			kept++
		} else {
			c.Delete = append(c.Delete, r.cells)
		}
	}
	for _, r := range es.rows {
		if o, ok := orig[r.key]; !ok || !cellsEqual(o, r.cells) {
			c.Insert = append(c.Insert, r.cells)
		}
	}
	moved := (es.collected == nil) != (es.origCollected == nil) ||
		(es.collected != nil && es.origCollected != nil && !at(*es.collected).Equal(at(*es.origCollected)))
	c.Restamp = kept > 0 && moved
	return c, c.Restamp || len(c.Delete) > 0 || len(c.Insert) > 0
}

// storedRows are a (PC, job)'s rows of one explode table as the table
// holds them: as read (cells), or as a memo keeps them (rows).
type storedRows struct {
	cells     [][]store.Cell
	rows      []explodeRow
	collected *time.Time
}

// of is the rows with their identities under x.
func (s storedRows) of(x *explodeSpec) []explodeRow {
	if s.rows != nil || s.cells == nil {
		return s.rows
	}
	out := make([]explodeRow, len(s.cells))
	for i, cells := range s.cells {
		out[i] = x.row(cells, 0)
	}
	return out
}

// explodeMemo is what the explode tables hold after a committed batch, for
// the keys that batch and the ones before it read, so that the next batch
// need not read them back: on the hint-heavy workload of
// docs/performance.md reading them was a fifth of the writer's time. It is
// trusted only when the store vouches that nothing else committed since
// (store.Generation), and it holds at most memoRows rows, the latest
// batch's first: it pays when a PC scans again before a memo's worth of
// other PCs have, and a larger fleet would otherwise make it hold rows for
// nothing.
type explodeMemo struct {
	gen    store.Generation
	tables map[string]*memoTable
	rows   int
	// prev is the memo the batch began with, when the store vouched for
	// it: what the batch did not touch in it is still what the tables hold.
	prev *explodeMemo
}

// memoTable is one table's rows per key, for the one spec that every
// step of the batch wrote it with (so every row's identity is that spec's).
type memoTable struct {
	spec *explodeSpec
	keys map[store.FactsKey]storedRows
	read []store.FactsKey // the keys the batch read: carry must not bring back their old rows
}

const memoRows = 25000

// keep records key's rows of a table as the batch leaves them. Rows with a
// NULL key column are not kept: their order, which the table gives by
// rowid, decides which of two equal identities a diff reports.
func (m *explodeMemo) keep(name string, key store.FactsKey, rows []explodeRow, collected *time.Time) {
	mt := m.tables[name]
	if mt == nil || m.rows+len(rows) > memoRows {
		return
	}
	if slices.ContainsFunc(rows, func(r explodeRow) bool { return r.null }) {
		return
	}
	kept := rows
	if slices.ContainsFunc(rows, func(r explodeRow) bool { return r.elem != 0 }) {
		kept = ownRows(rows)
	} // else they were read, or kept before: their memory is their own
	if collected != nil {
		t := *collected
		collected = &t
	}
	// The key's strings too: they are slices of a decoded result's, and
	// would keep all of them.
	key = store.FactsKey{PCID: strings.Clone(key.PCID), JobID: strings.Clone(key.JobID)}
	mt.keys[key] = storedRows{rows: kept, collected: collected}
	m.rows += len(kept)
}

// carry fills what room is left with what the previous memo holds of keys
// the batch did not read, and lets the previous memo go.
func (m *explodeMemo) carry() {
	prev := m.prev
	m.prev = nil
	read := map[string]map[store.FactsKey]bool{}
	for name, mt := range m.tables {
		if mt == nil {
			continue
		}
		read[name] = make(map[store.FactsKey]bool, len(mt.read))
		for _, k := range mt.read {
			read[name][k] = true
		}
		mt.read = nil // the batch's keys are slices of its results
	}
	if prev == nil {
		return
	}
	for name, old := range prev.tables {
		mt := m.tables[name]
		if mt == nil {
			if _, written := m.tables[name]; written {
				continue // the batch wrote it with more than one spec
			}
			mt = &memoTable{spec: old.spec, keys: map[store.FactsKey]storedRows{}}
			m.tables[name] = mt
		} else if !sameTable(mt.spec.table, old.spec.table) {
			continue
		}
		for k, s := range old.keys {
			if read[name][k] {
				continue
			}
			if m.rows+len(s.rows) > memoRows {
				return
			}
			mt.keys[k] = s
			m.rows += len(s.rows)
		}
	}
}

// ownRows copies rows worked out from a payload, whose texts are slices of
// it, into memory of their own: one block of cells and one of text for
// the lot, and no element.
func ownRows(rows []explodeRow) []explodeRow {
	n, size := 0, 0
	for _, r := range rows {
		n += len(r.cells)
		for _, c := range r.cells {
			size += len(c.Text)
		}
	}
	var text strings.Builder
	text.Grow(size)
	for _, r := range rows {
		for _, c := range r.cells {
			text.WriteString(c.Text)
		}
	}
	all, cells := text.String(), make([]store.Cell, 0, n)
	out := make([]explodeRow, len(rows))
	for i, r := range rows {
		start := len(cells)
		for _, c := range r.cells {
			c.Text, all = all[:len(c.Text)], all[len(c.Text):]
			cells = append(cells, c)
		}
		out[i] = explodeRow{cells: cells[start:len(cells):len(cells)], key: r.key}
	}
	return out
}

func sameTable(a, b store.ExplodeTable) bool {
	return a.Name == b.Name && slices.Equal(a.Columns, b.Columns) && slices.Equal(a.PrimaryKey, b.PrimaryKey)
}

// loadExplode ensures every table the chains write and returns their rows
// for every key that writes them (an empty storedRows for a key without
// any): from memo where it holds them and the store vouches for it, else
// read. It also returns the memo the batch fills with what it leaves (nil
// when the store cannot vouch). With check set, rows taken from the memo
// are read as well and must be the same (tests).
func (d *derivedPlan) loadExplode(ctx context.Context, tx store.ProjectionTx, at func(time.Time) time.Time, memo *explodeMemo, check bool) (map[string]map[store.FactsKey]storedRows, *explodeMemo, error) {
	byTable := map[string]*explodeSpec{}
	uniform := map[string]bool{} // every step writes the table with one spec
	keys := map[string][]store.FactsKey{}
	for _, ch := range d.history {
		for _, st := range ch.steps {
			for _, x := range st.explode {
				if y, ok := byTable[x.table.Name]; !ok {
					byTable[x.table.Name], uniform[x.table.Name] = x, true
				} else if y != x && !sameTable(y.table, x.table) {
					uniform[x.table.Name] = false
				}
				if n := len(keys[x.table.Name]); n == 0 || keys[x.table.Name][n-1] != ch.key {
					keys[x.table.Name] = append(keys[x.table.Name], ch.key)
				}
			}
		}
	}
	if len(byTable) == 0 {
		return nil, nil, nil
	}
	gen, ok, err := tx.Generation(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !ok || memo == nil || memo.gen != gen {
		memo = nil
	}
	var next *explodeMemo
	if ok {
		next = &explodeMemo{gen: gen.Next(), tables: map[string]*memoTable{}, prev: memo}
	}
	out := map[string]map[store.FactsKey]storedRows{}
	names := make([]string, 0, len(byTable))
	for n := range byTable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		x := byTable[n]
		if err := tx.EnsureExplodeTable(ctx, x.table); err != nil {
			return nil, nil, err
		}
		if next != nil {
			next.tables[n] = nil // written: carry leaves it alone unless it is uniform
			if uniform[n] {
				next.tables[n] = &memoTable{spec: x, keys: map[store.FactsKey]storedRows{}, read: keys[n]}
			}
		}
		rows := make(map[store.FactsKey]storedRows, len(keys[n]))
		read := keys[n]
		if memo != nil && uniform[n] && memo.tables[n] != nil && sameTable(memo.tables[n].spec.table, x.table) {
			kept := memo.tables[n]
			read = nil
			for _, k := range keys[n] {
				if s, ok := kept.keys[k]; ok {
					rows[k] = s
					if !check {
						continue
					}
				}
				read = append(read, k)
			}
		}
		stored, err := tx.LoadExplodeRows(ctx, x.table, read)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range read {
			var s storedRows
			if set := stored[k]; set != nil {
				s.cells, s.collected = set.Rows, set.CollectedAt
			}
			if m, ok := rows[k]; ok { // checking the memo
				if err := sameRows(m, s.of(x), s.collected, at); err != nil {
					return nil, nil, fmt.Errorf("explode table %s, %s/%s: the rows kept from the last batch are not the table's: %w", n, k.PCID, k.JobID, err)
				}
				continue
			}
			rows[k] = s
		}
		out[n] = rows
	}
	return out, next, nil
}

// sameRows compares kept rows with the rows read, by identity (no row a
// memo keeps has a NULL key column), and their collected_at as stored.
func sameRows(kept storedRows, read []explodeRow, collected *time.Time, at func(time.Time) time.Time) error {
	if len(kept.rows) != len(read) {
		return fmt.Errorf("%d rows, the table's %d", len(kept.rows), len(read))
	}
	if len(read) == 0 {
		return nil
	}
	if (kept.collected == nil) != (collected == nil) || (collected != nil && !at(*kept.collected).Equal(at(*collected))) {
		return fmt.Errorf("collected_at %v, the table's %v", kept.collected, collected)
	}
	byKey := make(map[string][]store.Cell, len(read))
	for _, r := range read {
		byKey[r.key] = r.cells
	}
	for _, r := range kept.rows {
		if c, ok := byKey[r.key]; !ok || !cellsEqual(c, r.cells) {
			return fmt.Errorf("row %s: %v, the table's %v", r.key, r.cells, c)
		}
	}
	return nil
}

// explodeSpecs returns a manifest's valid explode specs, worked out once.
func (p *Projector) explodeSpecs(m *wire.Manifest) []*explodeSpec {
	specs, ok := p.explode[m]
	if !ok {
		var invalid []string
		specs, invalid = explodeSpecs(m.Inventory)
		p.explode[m] = specs
		for _, w := range invalid {
			p.warnings = append(p.warnings, fmt.Sprintf("manifest %q: %s", m.ID, w))
		}
	}
	return specs
}

// Warnings are what the projector skipped in the manifests it read, as
// upstream skips it (an explode spec upstream cannot create a table for),
// once each, in the order met.
func (p *Projector) Warnings() []string { return append([]string{}, p.warnings...) }

// writeExplode replaces the rows of each table, tables in name order.
func writeExplode(ctx context.Context, tx store.ProjectionTx, writes map[*explodeSpec][]store.ExplodeChange) (int64, error) {
	specs := make([]*explodeSpec, 0, len(writes))
	for x := range writes {
		specs = append(specs, x)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].table.Name < specs[j].table.Name })
	var total int64
	for _, x := range specs {
		n, err := tx.ChangeExplodeRows(ctx, x.table, writes[x])
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
