package projector

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// The ids a projector remembers outlive their batch by two batches; if
// they were slices of the decoded results' strings they would keep every
// result's stdout and stderr alive with them.
func TestRememberedIDsKeepNoBatchStrings(t *testing.T) {
	decoded := strings.Repeat("x", 4096) + "0195f7a2-0000-7000-8000-000000000001" + "0195f7a2-0000-7000-8000-000000000002"
	lo := uintptr(unsafe.Pointer(unsafe.StringData(decoded)))
	hi := lo + uintptr(len(decoded))
	b := &Batch{id: 1, items: []item{{id: decoded[4096 : 4096+36]}, {id: decoded[4096+36:]}}}
	p := &Projector{store: kindOnly(store.Postgres)}
	p.remember(b)
	if len(p.written[1]) != 2 {
		t.Fatalf("remembered %d ids, want 2", len(p.written[1]))
	}
	for id := range p.written[1] {
		if at := uintptr(unsafe.Pointer(unsafe.StringData(id))); at >= lo && at < hi {
			t.Errorf("remembered id %s points into the batch's decoded strings", id)
		}
		if !p.recentlyWritten(&Batch{id: 2}, id) {
			t.Errorf("id %s is not recently written", id)
		}
	}
}

// kindOnly is a store that only says what it is.
type kindOnly store.Kind

func (k kindOnly) Kind() store.Kind { return store.Kind(k) }
func (kindOnly) Project(context.Context, bool, func(store.ProjectionTx) error) error {
	panic("not a store")
}

// A batch claimed while the one before it may still be inserting must
// not insert any id that one holds, as PostgreSQL stores it: two ids that
// differ only in a NUL and a U+FFFD are one row there, and the second
// insert would wait for the first batch, which waits for the second.
// Claiming a batch again (a retry) must not push out the batch before it.
func TestClaimLeavesOutWhatTheBatchesAheadHold(t *testing.T) {
	p := &Projector{store: kindOnly(store.Postgres)}
	first := &Batch{id: 1, items: []item{{id: "a\x00"}, {id: "b"}}}
	second := &Batch{id: 2, items: []item{{id: "c"}}}
	p.remember(first)
	p.remember(second)
	p.remember(first) // a retry of the first
	if p.writtenBy != [2]uint64{first.id, second.id} {
		t.Fatalf("claiming the first batch again moved what is remembered: %v", p.writtenBy)
	}
	next := &Batch{id: 3}
	for _, id := range []string{"a\uFFFD", "a\x00", "b", "c"} {
		if !p.recentlyWritten(next, id) {
			t.Errorf("%q is not left out of the next batch's new rows", id)
		}
	}
	if p.recentlyWritten(first, "b") {
		t.Error("a retried batch leaves out its own ids")
	}
	if p.recentlyWritten(next, "d") {
		t.Error("an id no batch holds is left out")
	}
	q := &Projector{store: kindOnly(store.SQLite)}
	q.remember(first)
	if q.recentlyWritten(next, "a\uFFFD") {
		t.Error("on SQLite, which keeps NUL, a U+FFFD id is taken for a NUL one")
	}
}

// What a projector remembers of a batch must not keep the batch: two
// decoded batches held that way raised a SQLite replay's peak from 62 to
// 69 MB.
func TestRememberKeepsNoBatch(t *testing.T) {
	p := &Projector{store: kindOnly(store.Postgres)}
	freed := make(chan struct{})
	func() {
		b := p.NewBatch(1)
		b.items = append(b.items, item{id: "x"})
		runtime.SetFinalizer(b, func(*Batch) { close(freed) })
		p.remember(b)
	}()
	for range 20 {
		runtime.GC()
		select {
		case <-freed:
			if !p.recentlyWritten(p.NewBatch(1), "x") {
				t.Fatal("the batch's id is not remembered")
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("a remembered batch is kept alive")
}

// The explode memo outlives its batch too: neither its keys nor its cells
// may be slices of a payload or of a decoded result.
func TestExplodeMemoKeepsNoBatchStrings(t *testing.T) {
	specs, _ := explodeSpecs(&wire.InventoryHint{Explode: []wire.ExplodeSpec{{Field: wire.Str("apps"), Table: wire.Str("t"),
		PrimaryKey: []string{"name"}, Columns: []wire.ExplodeColumn{{Field: wire.Str("name")}, {Field: wire.Str("v")}}}}})
	x := specs[0]
	decoded := `PC-1inv{"apps":[{"name":"a","v":"one"},{"name":"b","v":"two"}]}`
	lo := uintptr(unsafe.Pointer(unsafe.StringData(decoded)))
	hi := lo + uintptr(len(decoded))
	inside := func(s string) bool {
		at := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return len(s) > 0 && at >= lo && at < hi
	}
	facts, err := wire.ParseJSON(decoded[7:])
	if err != nil {
		t.Fatal(err)
	}
	rows := x.rowsOf(&facts, store.SQLite)
	if !inside(rows[0].cells[1].Text) {
		t.Fatal("the test means nothing: the parsed cells are not slices of the payload")
	}
	m := &explodeMemo{tables: map[string]*memoTable{"t": {spec: x, keys: map[store.FactsKey]storedRows{}}}}
	m.keep("t", store.FactsKey{PCID: decoded[:4], JobID: decoded[4:7]}, rows, nil)
	m.carry()
	if len(m.tables["t"].keys) != 1 {
		t.Fatalf("the memo keeps %d keys, want 1", len(m.tables["t"].keys))
	}
	for k, s := range m.tables["t"].keys {
		if inside(k.PCID) || inside(k.JobID) {
			t.Errorf("the memo's key %v points into the batch's strings", k)
		}
		for _, r := range s.rows {
			for _, c := range r.cells {
				if inside(c.Text) {
					t.Errorf("the memo's cell %q points into the payload", c.Text)
				}
			}
			if r.elem != 0 {
				t.Error("the memo's row still says it was worked out from a payload")
			}
		}
	}
}

type oneManifest struct{ m *wire.Manifest }

func (o oneManifest) Manifest(context.Context, string) (*wire.Manifest, error) { return o.m, nil }

// A planned inventory step keeps, of its parsed facts, only the history
// scalars: a batch holds its steps until it commits, and a parsed
// inventory is ten times its text (a 10,000-PC replay peaked at 581 MB
// with the whole values kept). Its explode rows say where their elements
// are instead.
func TestPlannedStepsKeepOnlyTheirScalars(t *testing.T) {
	man := &wire.Manifest{ID: "inv", Version: "1", Inventory: &wire.InventoryHint{HistoryScalars: []string{"ram", "os"},
		Explode: []wire.ExplodeSpec{{Field: wire.Str("apps"), Table: wire.Str("inv_apps"), PrimaryKey: []string{"name"},
			TrackHistory: true, Columns: []wire.ExplodeColumn{{Field: wire.Str("name")}, {Field: wire.Str("v")}}}}}}
	res := wire.ExecResult{ResultID: "r1", RequestID: "q", PCID: "PC-1", ManifestID: wire.Str("inv"), StartedAt: time.Now(), FinishedAt: time.Now(),
		Stdout: `{"ram":8,"host":"h","apps":[{"name":"a","v":1},{"name":"a","v":2},{"name":"b","v":3}],"os":"w"}`}
	p := New(kindOnly(store.SQLite), nil, oneManifest{man})
	b, err := p.Prepare(context.Background(), []Message{{Stream: "RESULTS", Seq: 1, Subject: "results.q", Published: time.Now(), Data: res.Encode()}})
	if err != nil {
		t.Fatal(err)
	}
	st := b.derived.history[0].steps[0]
	var keys []string
	for _, m := range st.facts.Members {
		keys = append(keys, m.Key)
	}
	if strings.Join(keys, ",") != "os,ram" {
		t.Errorf("the planned step keeps the members %q of its facts; want only the history scalars os,ram", keys)
	}
	var elems []int
	for _, r := range st.rows[0] {
		elems = append(elems, r.elem)
	}
	if len(elems) != 2 || elems[0] != 1 || elems[1] != 3 {
		t.Errorf("the rows' elements are %v; want 1 and 3 (the second \"a\" is dropped)", elems)
	}
	if got := itemsOf(&st.facts, st.explode[0]); got != nil {
		t.Errorf("the planned step still holds the apps array: %d items", len(got))
	}
	if items := st.elements(st.explode[0])(); len(items) != 3 || items[2].Get("v").Compact() != "3" {
		t.Errorf("the elements parsed again from the text: %d items", len(items))
	}
}

// A message whose derived writes all go to rows the batch already writes
// counts half toward the batch's size; one with no derived write (here,
// facts that are not JSON) or a new row counts whole; bytes count whole.
func TestRepeatedScansCountHalf(t *testing.T) {
	man := &wire.Manifest{ID: "inv", Version: "1", Inventory: &wire.InventoryHint{}}
	p := New(kindOnly(store.SQLite), nil, oneManifest{man})
	b := p.NewBatch(8)
	for i, tc := range []struct {
		pc, stdout string
		full4      bool // Full(4, 0) after it
	}{
		{"PC-1", `{"ram":8}`, false},  // 1
		{"PC-1", `{"ram":16}`, false}, // 1.5
		{"PC-1", `not json`, false},   // 2.5
		{"PC-2", `{"ram":8}`, false},  // 3.5: four messages, not yet full
		{"PC-2", `{"ram":8}`, true},   // 4
		{"PC-1", `{"ram":32}`, true},  // 4.5
	} {
		res := wire.ExecResult{ResultID: fmt.Sprintf("r%d", i), RequestID: "q", PCID: tc.pc, ManifestID: wire.Str("inv"),
			StartedAt: time.Now(), FinishedAt: time.Now(), Stdout: tc.stdout}
		if err := p.Add(context.Background(), b, []Message{{Stream: "RESULTS", Seq: uint64(i + 1), Subject: "results.q", Published: time.Now(), Data: res.Encode()}}); err != nil {
			t.Fatal(err)
		}
		if got := b.Full(4, 0); got != tc.full4 {
			t.Fatalf("after message %d (%s %s): Full(4) = %v, want %v", i+1, tc.pc, tc.stdout, got, tc.full4)
		}
		if !b.Full(100, b.Bytes) {
			t.Fatalf("after message %d: a batch whose payloads reach the byte limit is not full", i+1)
		}
	}
	if b.Full(5, 0) {
		t.Fatal("six messages, three of them merged, are full at 5; want 4.5 of 5")
	}
}
