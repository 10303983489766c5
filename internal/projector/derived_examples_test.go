package projector_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Spec section 7, examples 14 to 20: the derived tables, on both stores.

// everyHint is a manifest with an inventory hint (history of "ram"), a
// fleet check and two feeds.
func everyHint() *wire.Manifest {
	return &wire.Manifest{ID: "all", Version: "1",
		Inventory: &wire.InventoryHint{Display: []wire.DisplayField{{Field: "ram", Label: "RAM"}}, HistoryScalars: []string{"ram"}},
		Check:     &wire.CheckHint{Name: wire.Str("disk"), Label: wire.Str("Disk space")},
		Feed: []wire.FeedSpec{
			{ID: wire.Str(" kev "), Field: wire.Str("vulns"), PrimaryKey: []string{"vendor", "cveID"}},
			{ID: wire.Str("eol"), Field: wire.Str("eol"), PrimaryKey: []string{"name"}},
		}}
}

func (r *specRun) hinted(id, pc string, code int32, stdout, stderr string, pub time.Time) {
	res := finished(id, "q-"+id, pc, code)
	res.ManifestID, res.Stdout, res.Stderr = wire.Str("all"), stdout, stderr
	r.result(res, pub)
}

func historyOf(tb *store.Tables, pc string) []string {
	var out []string
	for _, h := range tb.History {
		if h.PCID == pc {
			out = append(out, fmt.Sprintf("%s %s %s->%s", h.FieldPath, h.ChangeKind, wire.Deref(h.BeforeJSON), wire.Deref(h.AfterJSON)))
		}
	}
	return out
}

func checkOf(tb *store.Tables, pc string) *store.CheckRow {
	for i := range tb.Checks {
		if tb.Checks[i].PCID == pc {
			return &tb.Checks[i]
		}
	}
	return nil
}

func TestSpecExample14ExitCodes(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"all": everyHint()})
		r.hinted("a", "PC-1", 1, `{"ram":8,"vulns":[{"vendor":"acme","cveID":"C-1"}],"status":"ok"}`, "", t0)
		tb := r.tables()
		if len(tb.Inventory) != 0 || len(tb.History) != 0 || len(tb.Feeds) != 0 || len(tb.FeedMeta) != 0 {
			t.Errorf("exit 1 wrote inventory, history or feeds: %+v", tb)
		}
		c := checkOf(tb, "PC-1")
		if c == nil || c.Status != "unknown" || wire.Deref(c.Detail) != "check script exited 1" || wire.Deref(c.Label) != "Disk space" {
			t.Fatalf("exit 1 check: %+v", c)
		}
		r.hinted("b", "PC-1", 0, `{"ram":8,"vulns":[{"vendor":"acme","cveID":"C-1"}],"status":"ok","detail":"fine"}`, "", t0.Add(time.Minute))
		tb = r.tables()
		if len(tb.Inventory) != 1 || len(tb.History) != 1 || len(tb.Feeds) != 1 || len(tb.FeedMeta) != 2 {
			t.Errorf("exit 0: inventory %d history %d feeds %d feed_meta %d, want 1 1 1 2", len(tb.Inventory), len(tb.History), len(tb.Feeds), len(tb.FeedMeta))
		}
		if c := checkOf(tb, "PC-1"); c.Status != "ok" || wire.Deref(c.Detail) != "fine" || !c.RecordedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("exit 0 check: %+v", c)
		}
	})
}

func TestSpecExample15FactsRecency(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"all": everyHint()})
		r.hinted("new", "PC-1", 0, `{"ram":16}`, "", t0.Add(time.Hour))
		r.hinted("old", "PC-1", 0, `{"ram":8}`, "", t0)
		tb := r.tables()
		if tb.Inventory[0].FactsJSON != `{"ram":16}` || len(tb.History) != 1 {
			t.Fatalf("an older write was not rejected: facts %s, history %v", tb.Inventory[0].FactsJSON, historyOf(tb, "PC-1"))
		}
		r.hinted("same-time", "PC-1", 0, `{"ram":32}`, "", t0.Add(time.Hour))
		tb = r.tables()
		want := []string{`ram added ->{"value":16}`, `ram changed {"value":16}->{"value":32}`}
		if tb.Inventory[0].FactsJSON != `{"ram":32}` || !reflect.DeepEqual(historyOf(tb, "PC-1"), want) {
			t.Errorf("an equally recent write: facts %s, history %v, want %v", tb.Inventory[0].FactsJSON, historyOf(tb, "PC-1"), want)
		}
	})
}

func TestSpecExample16HistoryScalars(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"all": everyHint()})
		for i, stdout := range []string{`{"ram":8}`, `{"ram":8}`, `{"ram":8.0}`, `{"cpu":4}`, `{"ram":8.00}`} {
			r.hinted(fmt.Sprintf("r%d", i), "PC-1", 0, stdout, "", t0.Add(time.Duration(i)*time.Minute))
		}
		tb := r.tables()
		want := []string{`ram added ->{"value":8}`, `ram changed {"value":8}->{"value":8.0}`, `ram added ->{"value":8.0}`}
		if got := historyOf(tb, "PC-1"); !reflect.DeepEqual(got, want) {
			t.Errorf("history %v, want %v", got, want)
		}
		if h := tb.History[0]; h.IdentityJSON != nil || !h.ObservedAt.Equal(t0) || h.JobID != "all" {
			t.Errorf("history row: %+v (observed_at must be the publish time)", h)
		}
		// A redelivery of everything changes nothing.
		before := r.tables()
		for i, stdout := range []string{`{"ram":8}`, `{"ram":8}`, `{"ram":8.0}`, `{"cpu":4}`, `{"ram":8.00}`} {
			r.hinted(fmt.Sprintf("r%d", i), "PC-1", 0, stdout, "", t0.Add(time.Duration(i)*time.Minute))
		}
		if after := r.tables(); !reflect.DeepEqual(before, after) {
			t.Errorf("a redelivery changed the tables:\n%s", diffTables(before, after))
		}
	})
}

func TestSpecExample19CheckStatus(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"all": everyHint()})
		long := strings.Repeat("é", 250)
		for i, c := range []struct {
			code           int32
			stdout, stderr string
			status, detail string
		}{
			{0, `{"status":"green"}`, "", "unknown", "`status` = \"green\" is not one of ok/warn/fail/unknown"},
			{1, "", "  boom ", "unknown", "check script exited 1: boom"},
			{0, "noise\n#KANADE-CHECK-BEGIN\n{\"status\":\"fail\",\"detail\":[\"C:\",\"D:\"]}\n#KANADE-CHECK-END\n", "", "fail", `["C:","D:"]`},
			{0, `{"status":"warn","detail":12.50}`, "", "warn", "12.5"},
			{0, `{"status":"ok","detail":""}`, "", "ok", ""},
			{0, `not json`, "", "unknown", "check stdout was not JSON: expected ident at line 1 column 2"},
			{0, `[1]`, "", "unknown", "check stdout was not a JSON object"},
			{0, `{"detail":"x"}`, "", "unknown", "stdout has no `status` field"},
			{0, "#KANADE-INVENTORY-BEGIN\n{}\n", "", "unknown", "check stdout was not JSON: EOF while parsing a value at line 1 column 0"},
			{2, "", long, "unknown", "check script exited 2: " + strings.Repeat("é", 200)},
		} {
			pc := fmt.Sprintf("PC-%d", i)
			r.hinted("c"+pc, pc, c.code, c.stdout, c.stderr, t0)
			got := checkOf(r.tables(), pc)
			if got == nil || got.Status != c.status || wire.Deref(got.Detail) != c.detail || (c.detail == "") != (got.Detail == nil) {
				t.Errorf("exit %d stdout %q stderr %q: %+v, want %s %q", c.code, c.stdout, c.stderr, got, c.status, c.detail)
			}
		}
		// A skip and a signature refusal say nothing about the check; an
		// older agent's skip is known by its reserved code.
		refusal := finished(wire.SignatureRefusalID("q-s", "PC-s"), "q-s", "PC-s", 123)
		refusal.ManifestID, refusal.Skipped = wire.Str("all"), new(bool)
		r.result(refusal, t0)
		skip := finished("skip", "q-k", "PC-k", 0)
		yes := true
		skip.ManifestID, skip.Skipped = wire.Str("all"), &yes
		r.result(skip, t0)
		old := finished("old", "q-o", "PC-o", 125)
		old.ManifestID = wire.Str("all")
		r.result(old, t0)
		real := finished("real", "q-r", "PC-r", 125)
		real.ManifestID, real.Skipped = wire.Str("all"), new(bool)
		r.result(real, t0)
		tb := r.tables()
		for _, pc := range []string{"PC-s", "PC-k", "PC-o"} {
			if c := checkOf(tb, pc); c != nil {
				t.Errorf("%s: a skip or refusal wrote %+v", pc, c)
			}
		}
		if c := checkOf(tb, "PC-r"); c == nil || wire.Deref(c.Detail) != "check script exited 125" {
			t.Errorf("a real exit 125 (skipped: false): %+v", c)
		}
		// fleet: false keeps the check off the fleet's table.
		off := everyHint()
		off.Check.Fleet = new(bool)
		r2 := newSpecRun(t, st, mapManifests{"all": off})
		r2.hinted("f", "PC-f", 0, `{"status":"ok"}`, "", t0)
		if c := checkOf(r2.tables(), "PC-f"); c != nil {
			t.Errorf("fleet: false wrote %+v", c)
		}
	})
}

func TestSpecExample20Feeds(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"all": everyHint()})
		r.hinted("f1", "CTRL", 0, `{"vulns":[{"vendor":"acme","cveID":"CVE-2024-1","n":1},{"vendor":"acme","cveID":"CVE-2024-1","n":2},
			{"cveID":"no-vendor"},{"vendor":"x","cveID":7,"z":{"b":1,"a":2}}],"eol":[{"name":"w7"}]}`, "", t0)
		tb := r.tables()
		var got []string
		for _, f := range tb.Feeds {
			got = append(got, f.FeedID+" "+f.ItemID+" "+f.Data)
		}
		want := []string{`eol w7 {"name":"w7"}`, `kev 1:x1:7 {"cveID":7,"vendor":"x","z":{"a":2,"b":1}}`, `kev 4:acme10:CVE-2024-1 {"cveID":"CVE-2024-1","n":2,"vendor":"acme"}`}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("feeds %q, want %q", got, want)
		}
		if m := tb.FeedMeta[1]; m.FeedID != "kev" || m.ItemCount != 3 || !m.RecordedAt.Equal(t0) || m.FetchedAt == nil {
			t.Errorf("feed_meta %+v: item_count counts every element with an id", m)
		}
		// Not newer than the watermark: skipped. Newer without the field:
		// emptied. A field that is not an array: the feed stays.
		r.hinted("f2", "CTRL", 0, `{"vulns":[]}`, "", t0)
		if tb := r.tables(); len(tb.Feeds) != 3 {
			t.Errorf("an equally recent refresh replaced the feed: %+v", tb.Feeds)
		}
		r.hinted("f3", "CTRL", 0, `{"eol":{"not":"an array"}}`, "", t0.Add(time.Minute))
		tb = r.tables()
		if len(tb.Feeds) != 1 || tb.Feeds[0].FeedID != "eol" || tb.FeedMeta[1].ItemCount != 0 || !tb.FeedMeta[0].RecordedAt.Equal(t0) {
			t.Errorf("after a refresh without vulns and a bad eol: feeds %+v meta %+v", tb.Feeds, tb.FeedMeta)
		}
	})
}

// Several messages for the same keys in one batch leave what one message
// per batch leaves.
func TestDerivedBatchEqualsSerial(t *testing.T) {
	var msgs []projector.Message
	stdouts := []string{`{"ram":8,"vulns":[{"vendor":"a","cveID":"1"}],"status":"ok"}`, `{"ram":16,"status":"warn"}`, `{"ram":8.0}`, `{"ram":4,"eol":[{"name":"x"}],"status":"fail"}`}
	pubs := []time.Duration{2, 1, 2, 3}
	for i := range 12 {
		res := finished(fmt.Sprintf("b%d", i), "q", fmt.Sprintf("PC-%d", i%3), int32(i%5/4))
		res.ManifestID, res.Stdout = wire.Str("all"), stdouts[i%4]
		msgs = append(msgs, projector.Message{Stream: "RESULTS", Seq: uint64(i + 1), Subject: "results.q", Published: t0.Add(pubs[i%4] * time.Minute), Data: res.Encode()})
	}
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		man := mapManifests{"all": everyHint()}
		want, got := applySerial(t, testutil.Another(t, st), man, msgs), applyBatches(t, st, man, msgs)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("one batch differs from one message at a time:\n%s", diffTables(want, got))
		}
		for _, n := range []int{1, 2, 5} {
			if got := applyBatches(t, testutil.Another(t, st), man, inBatchesOf(msgs, n)...); !reflect.DeepEqual(want, got) {
				t.Errorf("batches of %d, each planned against the one before, differ from one message at a time:\n%s", n, diffTables(want, got))
			}
		}
		if len(got.History) < 6 || len(got.Checks) != 3 || len(got.Feeds) == 0 {
			t.Errorf("the workload wrote too little to prove anything: %d history rows, %d checks, %d feed rows", len(got.History), len(got.Checks), len(got.Feeds))
		}
	})
}

// appsHint explodes "apps" into inv_apps, keyed by name, with history.
func appsHint(track bool) *wire.Manifest {
	col := func(name, kind string, index bool) wire.ExplodeColumn {
		c := wire.ExplodeColumn{Field: wire.Str(name), Index: index}
		if kind != "" {
			c.Type = wire.Str(kind)
		}
		return c
	}
	return &wire.Manifest{ID: "apps", Version: "1", Inventory: &wire.InventoryHint{Display: []wire.DisplayField{{Field: "apps", Label: "Apps"}},
		Explode: []wire.ExplodeSpec{{Field: wire.Str("apps"), Table: wire.Str("inv_apps"), PrimaryKey: []string{"name"}, TrackHistory: track,
			Columns: []wire.ExplodeColumn{col("name", "", true), col("version", "text", false), col("size", "integer", false), col("ratio", "real", false)}}}}}
}

func (r *specRun) apps(id, pc, stdout string, pub time.Time) {
	res := finished(id, "q-"+id, pc, 0)
	res.ManifestID, res.Stdout = wire.Str("apps"), stdout
	r.result(res, pub)
}

// rowsOf renders an explode table's rows without pc_id/job_id/collected_at.
func appRows(t *testing.T, st testutil.Store) []string {
	var out []string
	for _, r := range testutil.TableRows(t, st, "inv_apps") {
		parts := strings.SplitN(r, " | ", 4)
		out = append(out, parts[3])
	}
	return out
}

func TestSpecExamples17And18Explode(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"apps": appsHint(false)})
		r.apps("e1", "PC-1", `{"apps":[{"name":"A","version":"1","size":1.5,"ratio":2},{"name":"A","version":"2"},`+
			`{"name":"B","version":120,"size":"42","ratio":"0.5"},{"name":"C","version":true,"size":7,"ratio":1.25}]}`, t0)
		want := []string{
			`"A" | "1" | NULL | 2`,    // example 17: the first A; example 18: integer 1.5 is NULL
			`"B" | "120" | 42 | 0.5`,  // example 18: 120 in a text column is '120'; numeric text takes the column's type
			`"C" | "true" | 7 | 1.25`, // example 18: true in a text column is 'true'
		}
		if got := appRows(t, st); !reflect.DeepEqual(got, want) {
			t.Errorf("rows\n%q\nwant\n%q", got, want)
		}
		// The PC's rows are replaced; a missing field empties them; another
		// PC's rows stay.
		r.apps("e2", "PC-2", `{"apps":[{"name":"Z"}]}`, t0)
		r.apps("e3", "PC-1", `{"apps":[{"name":"D"}]}`, t0.Add(time.Minute))
		if got := appRows(t, st); !reflect.DeepEqual(got, []string{`"D" | NULL | NULL | NULL`, `"Z" | NULL | NULL | NULL`}) {
			t.Errorf("after a replace: %q", got)
		}
		// An older facts write changes no explode row (example 15).
		r.apps("e4", "PC-1", `{"apps":[{"name":"OLD"}]}`, t0)
		r.apps("e5", "PC-1", `{"other":1}`, t0.Add(2*time.Minute))
		if got := appRows(t, st); !reflect.DeepEqual(got, []string{`"Z" | NULL | NULL | NULL`}) {
			t.Errorf("after an older write and a missing field: %q", got)
		}
	})
}

func TestExplodeTrackHistory(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := newSpecRun(t, st, mapManifests{"apps": appsHint(true)})
		scans := []string{
			`{"apps":[{"name":"A","version":"1","size":10},{"name":"B","version":2}]}`,
			`{"apps":[{"name":"A","version":"1","size":10},{"name":"B","version":"2"}]}`, // B's 2 and "2" are the same text: no change
			`{"apps":[{"name":"A","version":"1.1","size":10}]}`,
		}
		for i, s := range scans {
			r.apps(fmt.Sprintf("h%d", i), "PC-1", s, t0.Add(time.Duration(i)*time.Minute))
		}
		var got []string
		for _, h := range r.tables().History {
			got = append(got, fmt.Sprintf("%s %s %s %s->%s", h.FieldPath, h.ChangeKind, wire.Deref(h.IdentityJSON), wire.Deref(h.BeforeJSON), wire.Deref(h.AfterJSON)))
		}
		want := []string{
			`apps added {"name":"A"} ->{"name":"A","size":10,"version":"1"}`,
			`apps added {"name":"B"} ->{"name":"B","version":2}`,
			`apps changed {"name":"A"} {"name":"A","ratio":null,"size":10,"version":"1"}->{"name":"A","size":10,"version":"1.1"}`,
			`apps removed {"name":"B"} {"name":"B","ratio":null,"size":null,"version":"2"}->`,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("history\n%q\nwant\n%q", got, want)
		}
		// A redelivery of every scan writes nothing at all.
		before := r.tables()
		for i, s := range scans {
			r.apps(fmt.Sprintf("h%d", i), "PC-1", s, t0.Add(time.Duration(i)*time.Minute))
			if r.last.ExplodeRows != 0 || r.last.HistoryRows != 0 {
				t.Errorf("redelivery %d wrote %d explode and %d history rows", i, r.last.ExplodeRows, r.last.HistoryRows)
			}
		}
		if after := r.tables(); !reflect.DeepEqual(before, after) {
			t.Errorf("a redelivery changed the tables:\n%s", diffTables(before, after))
		}
	})
}

// A spec that changes migrates its table: a new column is added, a new
// key rebuilds it, keeping what the new key allows.
func TestExplodeTableMigrates(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		m := appsHint(false)
		r := newSpecRun(t, st, mapManifests{"apps": m})
		r.apps("m1", "PC-1", `{"apps":[{"name":"A","version":"1"},{"name":"B","version":"1"}]}`, t0)
		spec := &m.Inventory.Explode[0]
		spec.Columns = append(spec.Columns, wire.ExplodeColumn{Field: wire.Str("vendor"), Index: true})
		r2 := newSpecRun(t, st, mapManifests{"apps": m})
		r2.apps("m2", "PC-2", `{"apps":[{"name":"A","vendor":"acme"}]}`, t0)
		rows := testutil.TableRows(t, st, "inv_apps")
		if len(rows) != 3 || !strings.HasSuffix(rows[2], `"A" | NULL | NULL | NULL | "acme"`) {
			t.Fatalf("after adding a column: %q", rows)
		}
		spec.PrimaryKey = []string{"version"}
		r3 := newSpecRun(t, st, mapManifests{"apps": m})
		r3.apps("m3", "PC-3", `{"apps":[{"name":"X","version":"9"}]}`, t0)
		// PC-1's A and B share version 1 under the new key: one is kept.
		// PC-2's A has no version: SQLite keeps a NULL key, PostgreSQL cannot.
		want := 3
		if st.Kind() == store.Postgres {
			want = 2
		}
		if rows := testutil.TableRows(t, st, "inv_apps"); len(rows) != want {
			t.Errorf("after a key change: %q", rows)
		}
	})
}

// An explode spec upstream cannot create a table for is skipped, as
// upstream skips it, and named once in the projector's warnings; the
// manifest's other specs are written.
func TestInvalidExplodeSpecIsSkippedAndReported(t *testing.T) {
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		m := appsHint(false)
		m.Inventory.Explode = append(m.Inventory.Explode, wire.ExplodeSpec{Field: wire.Str("apps"), Table: wire.Str("drop;table"),
			PrimaryKey: []string{"name"}, Columns: []wire.ExplodeColumn{{Field: wire.Str("name")}}})
		r := newSpecRun(t, st, mapManifests{"apps": m})
		r.apps("w1", "PC-1", `{"apps":[{"name":"A"}]}`, t0)
		r.apps("w2", "PC-2", `{"apps":[{"name":"B"}]}`, t0)
		if got := appRows(t, st); len(got) != 2 {
			t.Errorf("the valid spec's rows: %q", got)
		}
		w := r.p.Warnings()
		if len(w) != 1 || !strings.Contains(w[0], `manifest "apps": explode spec 1 (table "drop;table") skipped: identifier "drop;table" contains invalid character ';'`) {
			t.Errorf("warnings %q", w)
		}
	})
}

// A batch that holds a PC's scans in a row, most repeating the one before,
// leaves what one scan per batch leaves: with NULL key columns (SQLite
// keeps such rows, and two of them with one identity diff as "changed" on
// every scan, repeated or not), and with two explode specs writing one
// table (each step sees the other's rows).
func TestDerivedRepeatsEqualSerial(t *testing.T) {
	col := func(name, kind string) wire.ExplodeColumn {
		return wire.ExplodeColumn{Field: wire.Str(name), Type: wire.Str(kind)}
	}
	cols := []wire.ExplodeColumn{col("name", "text"), col("v", "integer")}
	apps := wire.ExplodeSpec{Field: wire.Str("apps"), Table: wire.Str("inv_t"), PrimaryKey: []string{"name"}, TrackHistory: true, Columns: cols}
	more := wire.ExplodeSpec{Field: wire.Str("more"), Table: wire.Str("inv_t"), PrimaryKey: []string{"name"}, TrackHistory: true, Columns: cols}
	vulns := wire.ExplodeSpec{Field: wire.Str("vulns"), Table: wire.Str("inv_v"), PrimaryKey: []string{"vendor"}, TrackHistory: true,
		Columns: []wire.ExplodeColumn{col("vendor", "text"), col("id", "integer"), col("n", "real")}}
	// Each PC's facts differ, and two of the history scalars are an object
	// and an array: a value kept from one PC's scan must not change when
	// the next one is parsed (the projector parses them all in one arena).
	p1 := `{"ram":8,"os":{"name":"w","build":%[1]d},"tags":["t%[1]d"],"apps":[{"name":"a","v":1},{"name":"b","v":2}],"more":[{"name":"a","v":5}],"vulns":[{"id":1,"n":1},{"id":1,"n":2}]}`
	p2 := `{"ram":16,"os":{"name":"w","build":%[1]d},"tags":["t%[1]d",{"x":[%[1]d]}],"apps":[{"name":"a","v":1},{"name":"c","v":3}],"more":[{"name":"c","v":4}],"vulns":[{"vendor":"x","id":2}]}`
	for _, tc := range []struct {
		name  string
		specs []wire.ExplodeSpec
	}{{"null keys", []wire.ExplodeSpec{apps, vulns}}, {"two specs one table", []wire.ExplodeSpec{apps, more, vulns}}} {
		t.Run(tc.name, func(t *testing.T) {
			man := &wire.Manifest{ID: "rep", Version: "1", Inventory: &wire.InventoryHint{HistoryScalars: []string{"ram", "os", "tags"}, Explode: tc.specs}}
			var msgs []projector.Message
			for i, stdout := range []string{p1, p1, p1, p2, p2, p1, p1, p2} {
				for pc := range 2 {
					n := 2*i + pc
					res := finished(fmt.Sprintf("r%d", n), "q", fmt.Sprintf("PC-%d", pc), 0)
					res.ManifestID, res.Stdout = wire.Str("rep"), fmt.Sprintf(stdout, pc)
					msgs = append(msgs, projector.Message{Stream: "RESULTS", Seq: uint64(n + 1), Subject: "results.q",
						Published: t0.Add(time.Duration(i) * time.Minute), Data: res.Encode()})
				}
			}
			testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
				serial := testutil.Another(t, st)
				explodeRows := func(s testutil.Store) []string {
					return append(testutil.TableRows(t, s, "inv_t"), testutil.TableRows(t, s, "inv_v")...)
				}
				want := applySerial(t, serial, mapManifests{"rep": man}, msgs)
				got := applyBatches(t, st, mapManifests{"rep": man}, msgs)
				for _, n := range []int{1, 2, 3} {
					other := testutil.Another(t, st)
					if carried := applyBatches(t, other, mapManifests{"rep": man}, inBatchesOf(msgs, n)...); !reflect.DeepEqual(want, carried) {
						t.Errorf("batches of %d, each planned against the one before, differ from one message at a time:\n%s", n, diffTables(want, carried))
					} else if rows := explodeRows(other); !reflect.DeepEqual(explodeRows(serial), rows) {
						t.Errorf("explode rows, batches of %d: %q, one message at a time %q", n, rows, explodeRows(serial))
					}
				}
				wantRows, gotRows := explodeRows(serial), explodeRows(st)
				if !reflect.DeepEqual(want, got) {
					t.Errorf("one batch differs from one message at a time:\n%s", diffTables(want, got))
				}
				if !reflect.DeepEqual(wantRows, gotRows) {
					t.Errorf("explode rows: one batch %q, one message at a time %q", gotRows, wantRows)
				}
				if len(got.History) < 12 {
					t.Errorf("the workload wrote too little to prove anything: %d history rows", len(got.History))
				}
			})
		})
	}
}

// applyBatches projects batches into s, one Prepare and Apply each, and
// dumps its tables.
func applyBatches(t *testing.T, s testutil.Store, manifests mapManifests, batches ...[]projector.Message) *store.Tables {
	t.Helper()
	return apply(t, s, projector.New(s, nil, manifests), batches)
}

// applySerial is the reference the batched plans are held to: msgs
// projected one message per batch, each batch planned on its own.
func applySerial(t *testing.T, s testutil.Store, manifests mapManifests, msgs []projector.Message) *store.Tables {
	t.Helper()
	p := projector.New(s, nil, manifests)
	projector.NoCarry(p)
	return apply(t, s, p, inBatchesOf(msgs, 1))
}

func apply(t *testing.T, s testutil.Store, p *projector.Projector, batches [][]projector.Message) *store.Tables {
	t.Helper()
	ctx := context.Background()
	projector.CheckMemo(p)
	for _, b := range batches {
		pb, err := p.Prepare(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Apply(ctx, pb, projector.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tb, err := s.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// inBatchesOf is msgs as batches of n messages (the last may hold fewer).
func inBatchesOf(msgs []projector.Message, n int) [][]projector.Message {
	var out [][]projector.Message
	for i := 0; i < len(msgs); i += n {
		out = append(out, msgs[i:min(i+n, len(msgs))])
	}
	return out
}

// A scan planned against the batch before's last scan of its PC, which the
// recency guard rejected (the table holds a newer one), is diffed against
// what the table holds, not against that rejected scan, whether that scan
// changed a scalar or an explode row. (The stored facts tell the two
// apart here; TestExplodeMemoSeesOtherWriters covers rows another
// connection changed under facts that did not.)
func TestCarriedScanAfterARejectedOne(t *testing.T) {
	man := appsHint(true)
	man.Inventory.HistoryScalars = []string{"ram"}
	scan := func(n int, stdout string, pub time.Time) projector.Message {
		res := finished(fmt.Sprintf("c%d", n), "q", "PC-0", 0)
		res.ManifestID, res.Stdout = wire.Str("apps"), stdout
		return projector.Message{Stream: "RESULTS", Seq: uint64(n), Subject: "results.q", Published: pub, Data: res.Encode()}
	}
	stored := `{"ram":8,"apps":[{"name":"a","version":"1"}]}`
	for _, tc := range []struct {
		name, rejected string
		want           []string // the history of the scan after the rejected one
	}{
		{"a scalar", `{"ram":16,"apps":[{"name":"a","version":"1"}]}`, []string{"ram changed"}},
		{"explode rows", `{"ram":8,"apps":[{"name":"a","version":"1"},{"name":"b","version":"2"}]}`, []string{"apps added"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := []projector.Message{
				scan(1, stored, t0.Add(10*time.Minute)),
				scan(2, tc.rejected, t0.Add(5*time.Minute)),  // older than the stored facts
				scan(3, tc.rejected, t0.Add(12*time.Minute)), // repeats it: planned against it
			}
			testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
				want := applySerial(t, testutil.Another(t, st), mapManifests{"apps": man}, msgs)
				got := applyBatches(t, st, mapManifests{"apps": man}, inBatchesOf(msgs, 1)...)
				if !reflect.DeepEqual(want, got) {
					t.Errorf("one message per batch, each planned against the one before, differs from each planned on its own:\n%s", diffTables(want, got))
				}
				var last []string
				for _, h := range got.History {
					if h.ObservedAt.Equal(t0.Add(12 * time.Minute)) {
						last = append(last, h.FieldPath+" "+h.ChangeKind)
					}
				}
				if !slices.Equal(last, tc.want) {
					t.Errorf("history of the scan after the rejected one: %q; want %q", last, tc.want)
				}
			})
		})
	}
}
