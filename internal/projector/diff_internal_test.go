package projector

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// rowsOf and diff search small sets in place and large ones through maps.
// Both give what the map-only versions they replaced gave (refRowsOf and
// refDiff below, kept as they were), for arrays from empty to past the
// threshold, with repeated identities and NULL key columns, on both
// stores' rules.
func TestRowsAndDiffAgreeWithMapVersions(t *testing.T) {
	man := &wire.Manifest{ID: "inv", Version: "1", Inventory: &wire.InventoryHint{Explode: []wire.ExplodeSpec{{
		Field: wire.Str("apps"), Table: wire.Str("inv_apps"), PrimaryKey: []string{"name", "arch"}, TrackHistory: true,
		Columns: []wire.ExplodeColumn{{Field: wire.Str("name"), Type: wire.Str("text")}, {Field: wire.Str("arch"), Type: wire.Str("text")},
			{Field: wire.Str("v"), Type: wire.Str("integer")}}}}}}
	specs, invalid := explodeSpecs(man.Inventory)
	if len(specs) != 1 || len(invalid) > 0 {
		t.Fatalf("spec: %v", invalid)
	}
	x := specs[0]
	rng := rand.New(rand.NewPCG(3, 4))
	doc := func(n, names int) string {
		var b strings.Builder
		b.WriteString(`{"apps":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			name := fmt.Sprintf(`"a%d"`, rng.IntN(names))
			if rng.IntN(20) == 0 {
				name = "null"
			}
			fmt.Fprintf(&b, `{"name":%s,"arch":"x%d","v":%d}`, name, rng.IntN(2), rng.IntN(3))
		}
		b.WriteString(`]}`)
		return b.String()
	}
	at := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	key := store.FactsKey{PCID: "PC-1", JobID: "inv"}
	cases := 0
	for _, kind := range []store.Kind{store.SQLite, store.Postgres} {
		for _, n := range []int{0, 1, 2, 5, 20, 31, 32, 33, 40, 80} {
			for range 30 {
				names := max(1, n/2+rng.IntN(n+1))
				a, b := doc(n, names), doc(n+rng.IntN(3)-1, names)
				va, err := wire.ParseJSON(a)
				if err != nil {
					t.Fatal(err)
				}
				vb, err := wire.ParseJSON(b)
				if err != nil {
					t.Fatal(err)
				}
				prior, next := x.rowsOf(&va, kind), x.rowsOf(&vb, kind)
				if want := refRowsOf(x, &va, kind); !reflect.DeepEqual(prior, want) {
					t.Fatalf("%s, %s: rowsOf %v, want %v", kind, a, prior, want)
				}
				elements := func() []wire.JSONValue { return itemsOf(&vb, x) }
				got, want := x.diff(key, prior, next, elements, at), refDiff(x, key, prior, next, elements, at)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: diff of %s after %s:\n%v\nwant\n%v", kind, b, a, got, want)
				}
				cases++
			}
		}
	}
	t.Logf("%d cases", cases)
}

func refRowsOf(x *explodeSpec, facts *wire.JSONValue, kind store.Kind) []explodeRow {
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
		r := x.row(cells, i+1)
		if r.null && !kind.NullKeys() {
			continue
		}
		if !r.null {
			if seen[r.key] {
				continue
			}
			seen[r.key] = true
		}
		out = append(out, r)
	}
	return out
}
func refDiff(x *explodeSpec, key store.FactsKey, prior, next []explodeRow, elements func() []wire.JSONValue, observed time.Time) []store.HistoryRow {
	byKey := make(map[string]int, len(prior))
	var order []string
	for i, r := range prior {
		if _, ok := byKey[r.key]; !ok {
			order = append(order, r.key)
		}
		byKey[r.key] = i // the last of two rows with one identity, as upstream's map keeps it
	}
	var out []store.HistoryRow
	row := func(kind string, ident string, before, after *string) {
		out = append(out, store.HistoryRow{PCID: key.PCID, JobID: key.JobID, FieldPath: x.field, IdentityJSON: &ident,
			ChangeKind: kind, BeforeJSON: before, AfterJSON: after, ObservedAt: observed})
	}
	seen := make(map[string]bool, len(next))
	for _, r := range next {
		if seen[r.key] {
			continue
		}
		seen[r.key] = true
		i, ok := byKey[r.key]
		switch {
		case !ok:
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
	sort.Strings(order)
	for _, k := range order {
		if seen[k] {
			continue
		}
		p := prior[byKey[k]]
		before := x.rowJSON(p.cells, x.byName)
		row("removed", x.rowJSON(p.cells, x.keyByName), &before, nil)
	}
	return out
}
