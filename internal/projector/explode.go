package projector

import (
	"context"
	"math"
	"regexp"
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
}

// explodeSpecs returns a hint's valid specs; upstream skips an invalid one
// (it cannot create its table) and so does the projector.
func explodeSpecs(h *wire.InventoryHint) []*explodeSpec {
	var out []*explodeSpec
	for i := range h.Explode {
		s := &h.Explode[i]
		if s.Validate() != nil {
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
		out = append(out, x)
	}
	return out
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
	var b []byte
	for _, i := range x.keyAt {
		b = cellKey(append(b, '|'), cells[i])
		hasNull = hasNull || cells[i].Kind == store.CellNull
	}
	return string(b), hasNull
}

// explodeRow is one element as a row: its cells and the element itself.
type explodeRow struct {
	cells []store.Cell
	el    *wire.JSONValue // nil for a row read from the table
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
	seen := map[string]bool{}
	out := make([]explodeRow, 0, len(arr.Items))
	for i := range arr.Items {
		el := &arr.Items[i]
		cells := make([]store.Cell, len(x.table.Columns))
		for j, c := range x.table.Columns {
			cells[j] = kind.StoredCell(c.Kind, explodeCell(c.Kind, el.Get(c.Name)))
		}
		key, null := x.identity(cells)
		if null && !kind.NullKeys() {
			continue
		}
		if !null {
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		out = append(out, explodeRow{cells: cells, el: el})
	}
	return out
}

// rowJSON is a stored row as JSON, its columns' keys sorted.
func (x *explodeSpec) rowJSON(cells []store.Cell, only []int) string {
	type kv struct {
		name string
		c    store.Cell
	}
	var cols []kv
	if only == nil {
		for i, c := range x.table.Columns {
			cols = append(cols, kv{c.Name, cells[i]})
		}
	} else {
		for _, i := range only {
			cols = append(cols, kv{x.table.Columns[i].Name, cells[i]})
		}
	}
	sort.Slice(cols, func(i, j int) bool { return cols[i].name < cols[j].name })
	b := []byte{'{'}
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(wire.AppendJSONString(b, c.name), ':')
		b = cellJSON(b, c.c)
	}
	return string(append(b, '}'))
}

// elementIdentity is upstream's identity_json of a new element: its key
// fields as they are in the element (null when missing).
func (x *explodeSpec) elementIdentity(el *wire.JSONValue) string {
	var ms []wire.JSONMember
	for _, k := range x.table.PrimaryKey {
		v := el.Get(k)
		if v == nil {
			v = &wire.JSONValue{}
		}
		ms = append(ms, wire.JSONMember{Key: k, Value: *v})
	}
	o := wire.JSONObjectOf(ms...)
	return o.Compact()
}

// diff is upstream's track_history diff of a PC's rows: new elements in
// order, "added" or (when a column differs) "changed", then the rows that
// are gone, "removed". Rows compare as stored, each element coerced to the
// column types, so an unchanged element never writes history (upstream
// compares the raw element with the typed row, and a number in a text
// column reads as changed on every scan: a deliberate difference).
func (x *explodeSpec) diff(key store.FactsKey, prior, next []explodeRow, observed time.Time) []store.HistoryRow {
	byKey := map[string]int{}
	var order []string
	for i, r := range prior {
		k, _ := x.identity(r.cells)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = i // the last of two rows with one identity, as upstream's map keeps it
	}
	var out []store.HistoryRow
	row := func(kind string, ident string, before, after *string) {
		out = append(out, store.HistoryRow{PCID: key.PCID, JobID: key.JobID, FieldPath: x.field, IdentityJSON: &ident,
			ChangeKind: kind, BeforeJSON: before, AfterJSON: after, ObservedAt: observed})
	}
	seen := map[string]bool{}
	for _, r := range next {
		k, _ := x.identity(r.cells)
		if seen[k] {
			continue
		}
		seen[k] = true
		after := r.el.Compact()
		i, ok := byKey[k]
		switch {
		case !ok:
			row("added", x.elementIdentity(r.el), nil, &after)
		case !cellsEqual(prior[i].cells, r.cells):
			before := x.rowJSON(prior[i].cells, nil)
			row("changed", x.elementIdentity(r.el), &before, &after)
		}
	}
	sort.Strings(order)
	for _, k := range order {
		if seen[k] {
			continue
		}
		p := prior[byKey[k]]
		before := x.rowJSON(p.cells, nil)
		row("removed", x.rowJSON(p.cells, x.keyAt), &before, nil)
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

// explodeState is a (PC, job)'s rows of one table as the batch has them.
type explodeState struct {
	spec      *explodeSpec
	key       store.FactsKey
	rows      []explodeRow
	collected *time.Time
	stored    bool // rows and collected are what the table holds
}

// loadExplode ensures every table the chains write and reads their rows.
func (d *derivedPlan) loadExplode(ctx context.Context, tx store.ProjectionTx) (map[string]map[store.FactsKey]*store.ExplodeRows, error) {
	byTable := map[string]*explodeSpec{}
	keys := map[string][]store.FactsKey{}
	for _, ch := range d.history {
		for _, st := range ch.steps {
			for _, x := range st.explode {
				if _, ok := byTable[x.table.Name]; !ok {
					byTable[x.table.Name] = x
				}
				if n := len(keys[x.table.Name]); n == 0 || keys[x.table.Name][n-1] != ch.key {
					keys[x.table.Name] = append(keys[x.table.Name], ch.key)
				}
			}
		}
	}
	out := map[string]map[store.FactsKey]*store.ExplodeRows{}
	names := make([]string, 0, len(byTable))
	for n := range byTable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tx.EnsureExplodeTable(ctx, byTable[n].table); err != nil {
			return nil, err
		}
		rows, err := tx.LoadExplodeRows(ctx, byTable[n].table, keys[n])
		if err != nil {
			return nil, err
		}
		out[n] = rows
	}
	return out, nil
}

// explodeSpecs returns a manifest's valid explode specs, worked out once.
func (p *Projector) explodeSpecs(m *wire.Manifest) []*explodeSpec {
	specs, ok := p.explode[m]
	if !ok {
		specs = explodeSpecs(m.Inventory)
		p.explode[m] = specs
	}
	return specs
}

// writeExplode replaces the rows of each table, tables in name order.
func writeExplode(ctx context.Context, tx store.ProjectionTx, writes map[*explodeSpec][]store.ExplodeRows) (int64, error) {
	specs := make([]*explodeSpec, 0, len(writes))
	for x := range writes {
		specs = append(specs, x)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].table.Name < specs[j].table.Name })
	var total int64
	for _, x := range specs {
		n, err := tx.ReplaceExplodeRows(ctx, x.table, writes[x])
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
