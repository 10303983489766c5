// Package storetest is the store contract as one conformance suite, in the
// spirit of River's riverdrivertest: every store implementation calls
// Exercise from its own tests, and a new engine is done when it passes.
// It states what each projection-transaction method must do, edge cases
// included (empty inputs, inputs larger than one statement can carry, the
// recency guards, NULLs), so the stores' own code can change underneath.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Open returns a fresh, migrated, empty store; the test owns it.
type Open func(t *testing.T) testutil.Store

var t0 = time.Date(2026, 11, 20, 1, 2, 3, 0, time.UTC)

func project(t *testing.T, st testutil.Store, fn func(tx store.ProjectionTx) error) {
	t.Helper()
	if err := st.Project(context.Background(), false, fn); err != nil {
		t.Fatal(err)
	}
}

func dump(t *testing.T, st testutil.Store) *store.Tables {
	t.Helper()
	tb, err := st.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func finished(id, pc string, code int32, at time.Time) store.ResultRow {
	fin := at.Add(time.Second)
	return store.ResultRow{ResultID: id, RequestID: "q-" + id, PCID: pc, ExitCode: &code, Stdout: "out " + id, StartedAt: at, FinishedAt: &fin, RecordedAt: at.Add(2 * time.Second)}
}

// Exercise runs the whole contract against stores from open.
func Exercise(t *testing.T, open Open) {
	t.Run("ResultRows", func(t *testing.T) { resultRows(t, open(t)) })
	t.Run("ManyRows", func(t *testing.T) { manyRows(t, open(t)) })
	t.Run("Executions", func(t *testing.T) { executions(t, open(t)) })
	t.Run("InventoryAndHistory", func(t *testing.T) { inventoryAndHistory(t, open(t)) })
	t.Run("ChecksAndFeeds", func(t *testing.T) { checksAndFeeds(t, open(t)) })
	t.Run("ExplodeTables", func(t *testing.T) { explodeTables(t, open(t)) })
	t.Run("Bookkeeping", func(t *testing.T) { bookkeeping(t, open(t)) })
	t.Run("DryRun", func(t *testing.T) { dryRun(t, open(t)) })
	t.Run("Rebuild", func(t *testing.T) { rebuild(t, open(t)) })
	t.Run("Backfill", func(t *testing.T) { backfill(t, open(t)) })
	t.Run("AuditAndQueries", func(t *testing.T) { auditAndQueries(t, open(t)) })
	t.Run("ListGroups", func(t *testing.T) { listGroups(t, open(t)) })
	t.Run("Lifecycle", func(t *testing.T) { lifecycle(t, open(t)) })
	t.Run("Locks", func(t *testing.T) { locks(t, open(t)) })
	t.Run("Generation", func(t *testing.T) { generation(t, open(t)) })
	t.Run("OverlappedBatches", func(t *testing.T) { overlappedBatches(t, open(t)) })
}

// overlappedBatches: a store that says two projection transactions may
// run at once lets a second one begin, insert and commit while the first
// is still open (a replay's batch behind waits for the batch ahead in Go,
// so a store that serialized them would hang it), and each commits its own
// rows.
func overlappedBatches(t *testing.T, st testutil.Store) {
	ov, ok := st.(store.BatchOverlapper)
	if !ok || !ov.OverlapsBatches() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := make(chan error, 1)
	err := st.Project(ctx, false, func(tx store.ProjectionTx) error {
		if _, err := tx.InsertNew(ctx, []store.ResultRow{finished("first", "PC-1", 0, t0)}); err != nil {
			return err
		}
		go func() {
			second <- st.Project(ctx, false, func(tx store.ProjectionTx) error {
				_, err := tx.InsertNew(ctx, []store.ResultRow{finished("second", "PC-2", 0, t0)})
				return err
			})
		}()
		select {
		case err := <-second:
			return err
		case <-ctx.Done():
			return fmt.Errorf("the second transaction did not finish while the first was open: %w", ctx.Err())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	tables, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables.Results) != 2 {
		t.Fatalf("%d result rows after two overlapped transactions, want 2", len(tables.Results))
	}
}

// generation: a store that reports generations reports, after a committed
// batch transaction, the Next of its generation when nothing else was
// committed, and another one when something was (here Seed, which writes
// outside batch transactions); a rebuild's shadow transactions report
// none. A store that cannot vouch reports none at all.
func generation(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	type seen struct {
		g  store.Generation
		ok bool
	}
	next := func(projectOn func(context.Context, func(store.ProjectionTx) error) error) seen {
		t.Helper()
		var s seen
		err := projectOn(ctx, func(tx store.ProjectionTx) error {
			var err error
			s.g, s.ok, err = tx.Generation(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	batch := func(ctx context.Context, fn func(store.ProjectionTx) error) error { return st.Project(ctx, false, fn) }
	first, second := next(batch), next(batch)
	if !first.ok {
		if second.ok {
			t.Error("a store reported a generation after reporting none")
		}
		return
	}
	if second.g != first.g.Next() {
		t.Errorf("after a committed batch and nothing else, generation %+v; want %+v", second.g, first.g.Next())
	}
	if err := st.Seed(ctx, nil, []store.ResultRow{finished("seeded", "PC", 0, t0)}); err != nil {
		t.Fatal(err)
	}
	if third := next(batch); third.ok && third.g == second.g.Next() {
		t.Errorf("a commit outside batch transactions left the generation at %+v", third.g)
	}
	if _, err := st.CreateShadow(ctx, t0); err != nil {
		t.Fatal(err)
	}
	defer st.DropShadow(ctx) //nolint:errcheck
	if shadow := next(st.ProjectShadow); shadow.ok {
		t.Errorf("a shadow transaction reported generation %+v; the tables it writes are not the live ones", shadow.g)
	}
}

// listGroups: `results list` reads requests newest first with their
// counts; the filters select whole groups, and a cursor pages on.
func listGroups(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	exec := store.Execution{ExecID: "e", JobID: "deploy", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 3, Status: "running"}
	ok, bad := finished("ok", "PC-1", 0, t0), finished("bad", "PC-2", 3, t0)
	for _, r := range []*store.ResultRow{&ok, &bad} {
		r.RequestID, r.ExecID, r.JobID = "q-deploy", &exec.ExecID, wire.Str("deploy")
	}
	running := store.ResultRow{ResultID: "run", RequestID: "q-deploy", ExecID: &exec.ExecID, PCID: "PC-3", StartedAt: t0, RecordedAt: t0.Add(time.Minute),
		JobID: wire.Str("deploy")}
	adhoc := finished("adhoc", "PC-1", 0, t0.Add(time.Hour)) // a later, ad-hoc request
	adhoc.JobID = wire.Str("inventory")
	if err := st.Seed(ctx, []store.Execution{exec}, []store.ResultRow{ok, bad, running, adhoc}); err != nil {
		t.Fatal(err)
	}
	list := func(f store.ListFilter) []store.ListRow {
		t.Helper()
		if f.Limit == 0 {
			f.Limit = 10
		}
		rows, err := st.ListGroups(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	keys := func(rows []store.ListRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.Key)
		}
		return out
	}
	all := list(store.ListFilter{})
	if !slices.Equal(keys(all), []string{"q-adhoc", "q-deploy"}) {
		t.Fatalf("newest first: %v", keys(all))
	}
	d := all[1]
	if d.ExecID == nil || *d.ExecID != "e" || d.Execution == nil || d.Execution.TargetCount != 3 || d.Reported != 3 || d.Succeeded != 1 ||
		d.Failed != 1 || d.InFlight != 1 || d.Reaped != 0 || d.PCs != 3 || !d.FirstStarted.Equal(t0) || !d.LastRecorded.Equal(t0.Add(time.Minute)) {
		t.Errorf("the deployment's group: %+v", d)
	}
	if a := all[0]; a.ExecID != nil || a.Execution != nil || a.Succeeded != 1 || a.JobID == nil || *a.JobID != "inventory" {
		t.Errorf("the ad-hoc group: %+v", a)
	}
	for name, c := range map[string]struct {
		f    store.ListFilter
		want []string
	}{
		"failed":   {store.ListFilter{Failed: true}, []string{"q-deploy"}},
		"manifest": {store.ListFilter{Manifest: "inventory"}, []string{"q-adhoc"}},
		"pc":       {store.ListFilter{PCs: []string{"PC-2", "PC-9"}}, []string{"q-deploy"}},
		"since":    {store.ListFilter{Since: ptr(t0.Add(30 * time.Minute))}, []string{"q-adhoc"}},
		"until":    {store.ListFilter{Until: ptr(t0.Add(30 * time.Minute))}, []string{"q-deploy"}},
		"limit":    {store.ListFilter{Limit: 1}, []string{"q-adhoc"}},
		"after":    {store.ListFilter{After: &store.ListCursor{LastRecorded: all[0].LastRecorded, Key: all[0].Key}}, []string{"q-deploy"}},
		"nothing":  {store.ListFilter{Manifest: "absent"}, nil},
	} {
		if got := keys(list(c.f)); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
	// A group selected by its window counts all its rows.
	if w := list(store.ListFilter{Since: ptr(t0.Add(30 * time.Second)), Until: ptr(t0.Add(30 * time.Minute))}); len(w) != 1 || w[0].Reported != 3 {
		t.Errorf("a window selects whole groups: %+v", w)
	}
}

func ptr[T any](v T) *T { return &v }

// lifecycle: a migrated store is ready, migrating again applies nothing,
// and its status names every table with its rows.
func lifecycle(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	if err := st.Ready(ctx); err != nil {
		t.Fatalf("a migrated store is ready: %v", err)
	}
	if applied, err := st.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Errorf("a second migration applied %v (%v)", applied, err)
	}
	if err := st.Seed(ctx, nil, []store.ResultRow{finished("a", "PC-1", 0, t0), finished("b", "PC-2", 0, t0)}); err != nil {
		t.Fatal(err)
	}
	status, err := st.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.Kind != st.Kind() || status.SchemaVersion != status.LatestVersion || status.SchemaVersion < 1 || status.Upstream || st.Upstream() ||
		status.Location != st.Location() || status.Location == "" {
		t.Errorf("status %+v (kind %s, location %s)", status, st.Kind(), st.Location())
	}
	tables := map[string]store.TableStatus{}
	for _, tb := range status.Tables {
		tables[tb.Name] = tb
	}
	for _, name := range store.CoreTables {
		if !tables[name].Exists {
			t.Errorf("status does not show %s: %+v", name, status.Tables)
		}
	}
	if r := tables["execution_results"]; r.Rows != 2 {
		t.Errorf("execution_results has 2 rows, status says %+v", r)
	}
}

// locks: one writer at a time, named to the next; released, it is free.
func locks(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	release, err := st.Lock(ctx, "stream replay")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lock(ctx, "results backfill"); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "stream replay") {
		t.Errorf("a second writer: %v, want ErrLocked naming the holder", err)
	}
	release()
	again, err := st.Lock(ctx, "results backfill")
	if err != nil {
		t.Fatalf("a released lock is free: %v", err)
	}
	again()
}

func resultRows(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	fin := finished("done", "PC-1", 0, t0)
	reaped := finished("reaped", "PC-1", -1, t0)
	reaped.Reaped = true
	if err := st.Seed(ctx, nil, []store.ResultRow{fin, reaped}); err != nil {
		t.Fatal(err)
	}
	project(t, st, func(tx store.ProjectionTx) error {
		// Empty inputs are no-ops.
		if skipped, err := tx.InsertNew(ctx, nil); err != nil || len(skipped) != 0 {
			return fmt.Errorf("InsertNew(nil): %v %v", skipped, err)
		}
		if states, err := tx.LoadResultStates(ctx, nil); err != nil || len(states) != 0 {
			return fmt.Errorf("LoadResultStates(nil): %v %v", states, err)
		}
		if n, err := tx.UpsertResults(ctx, nil); err != nil || n != 0 {
			return fmt.Errorf("UpsertResults(nil): %d %v", n, err)
		}
		if n, err := tx.InsertInFlight(ctx, nil); err != nil || n != 0 {
			return fmt.Errorf("InsertInFlight(nil): %d %v", n, err)
		}
		// InsertNew first: it must be a transaction's first write.
		skipped, err := tx.InsertNew(ctx, []store.ResultRow{finished("new", "PC-3", 1, t0), finished("done", "PC-1", 5, t0)})
		if err != nil || !reflect.DeepEqual(skipped, []string{"done"}) {
			return fmt.Errorf("InsertNew: skipped %v %v, want [done]", skipped, err)
		}
		flight := store.ResultRow{ResultID: "flight", RequestID: "q", PCID: "PC-2", StartedAt: t0, RecordedAt: t0, Version: wire.Str("1.0"), ExpiresAt: &t0}
		if n, err := tx.InsertInFlight(ctx, []store.ResultRow{flight, {ResultID: "done", RequestID: "q", PCID: "PC-9", StartedAt: t0, RecordedAt: t0}}); err != nil || n != 1 {
			return fmt.Errorf("InsertInFlight: %d %v (an existing row is left alone)", n, err)
		}
		states, err := tx.LoadResultStates(ctx, []string{"done", "reaped", "flight", "new", "absent"})
		if err != nil {
			return err
		}
		want := map[string]store.RowState{"done": {Finished: true}, "reaped": {Finished: true, Reaped: true}, "flight": {}, "new": {Finished: true}}
		if !reflect.DeepEqual(states, want) {
			return fmt.Errorf("LoadResultStates: %+v, want %+v", states, want)
		}
		// The upsert completes a row in flight or reaped and never touches a
		// finished one.
		up := []store.ResultRow{finished("flight", "PC-2", 0, t0.Add(time.Hour)), finished("reaped", "PC-1", 0, t0.Add(time.Hour)), finished("done", "PC-1", 7, t0.Add(time.Hour))}
		up[0].JobID = wire.Str("job")
		n, err := tx.UpsertResults(ctx, up)
		if err != nil || n != 2 {
			return fmt.Errorf("UpsertResults: %d %v, want 2", n, err)
		}
		return nil
	})
	rows := map[string]store.ResultRow{}
	for _, r := range dump(t, st).Results {
		rows[r.ResultID] = r
	}
	if r := rows["flight"]; r.ExitCode == nil || *r.ExitCode != 0 || r.Version == nil || *r.Version != "1.0" || r.ExpiresAt == nil || !r.RecordedAt.Equal(t0) || r.JobID == nil {
		t.Errorf("a completed in-flight row keeps version, expires_at and recorded_at: %+v", r)
	}
	if r := rows["reaped"]; r.Reaped || *r.ExitCode != 0 {
		t.Errorf("a reaped row replaced: %+v", r)
	}
	if r := rows["done"]; *r.ExitCode != 0 || r.Stdout != "out done" {
		t.Errorf("a finished row was touched: %+v", r)
	}
}

// manyRows passes more rows than one SQLite statement can bind.
func manyRows(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	const n = 4000 // 16 columns a row: more than 30,000 parameters
	rows := make([]store.ResultRow, n)
	ids := make([]string, 0, 31000)
	for i := range rows {
		rows[i] = finished(fmt.Sprintf("r%05d", i), "PC", int32(i%3), t0)
		ids = append(ids, rows[i].ResultID)
	}
	for i := len(ids); i < cap(ids); i++ {
		ids = append(ids, fmt.Sprintf("absent-%d", i))
	}
	project(t, st, func(tx store.ProjectionTx) error {
		if skipped, err := tx.InsertNew(ctx, rows); err != nil || len(skipped) != 0 {
			return fmt.Errorf("InsertNew of %d: %v %v", n, len(skipped), err)
		}
		skipped, err := tx.InsertNew(ctx, rows)
		if err != nil || len(skipped) != n {
			return fmt.Errorf("InsertNew again: %d skipped %v, want %d", len(skipped), err, n)
		}
		states, err := tx.LoadResultStates(ctx, ids)
		if err != nil || len(states) != n {
			return fmt.Errorf("LoadResultStates of %d ids: %d %v", len(ids), len(states), err)
		}
		facts := make([]store.InventoryFact, n)
		for i := range facts {
			facts[i] = store.InventoryFact{PCID: fmt.Sprint(i), JobID: "j", FactsJSON: "{}", RecordedAt: t0}
		}
		if m, err := tx.UpsertInventory(ctx, facts); err != nil || m != n {
			return fmt.Errorf("UpsertInventory of %d: %d %v", n, m, err)
		}
		return nil
	})
	if got := len(dump(t, st).Results); got != n {
		t.Errorf("%d rows, want %d", got, n)
	}
}

func executions(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	execs := []store.Execution{
		{ExecID: "e1", JobID: "j", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 2, Status: "pending"},
		{ExecID: "e2", JobID: "j", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 1, Status: "expired"},
		{ExecID: "e3", JobID: "j", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 5, Status: "completed"},
	}
	if err := st.Seed(ctx, execs, nil); err != nil {
		t.Fatal(err)
	}
	project(t, st, func(tx store.ProjectionTx) error {
		if err := tx.StartExecutions(ctx, []string{"e1", "e2", "e3", "absent"}); err != nil {
			return err
		}
		moved, err := tx.BumpExecutions(ctx, []store.CounterDelta{{ExecID: "e2", Success: 1}, {ExecID: "absent", Failure: 1}})
		if err != nil || !reflect.DeepEqual(moved, []string{"e2"}) {
			return fmt.Errorf("BumpExecutions: %v %v, want [e2]", moved, err)
		}
		if moved, err := tx.BumpExecutions(ctx, nil); err != nil || len(moved) != 0 {
			return fmt.Errorf("BumpExecutions(nil): %v %v", moved, err)
		}
		return nil
	})
	status := map[string]string{}
	for _, e := range dump(t, st).Executions {
		status[e.ExecID] = fmt.Sprintf("%s %d/%d", e.Status, e.SuccessCount, e.FailureCount)
	}
	want := map[string]string{"e1": "running 0/0", "e2": "completed 1/0", "e3": "completed 0/0"}
	if !reflect.DeepEqual(status, want) {
		t.Errorf("executions %v, want %v (a start promotes only pending; a counted result sets the status)", status, want)
	}
}

func inventoryAndHistory(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	fact := func(facts string, at time.Time) store.InventoryFact {
		return store.InventoryFact{PCID: "PC", JobID: "j", FactsJSON: facts, DisplayJSON: wire.Str("[]"), CollectedAt: &at, RecordedAt: at}
	}
	project(t, st, func(tx store.ProjectionTx) error {
		for i, c := range []struct {
			f    store.InventoryFact
			want int64
		}{
			{fact(`{"a":1}`, t0.Add(time.Hour)), 1},
			{fact(`{"a":0}`, t0), 0},                // older: rejected
			{fact(`{"a":1}`, t0.Add(time.Hour)), 0}, // identical: not rewritten
			{fact(`{"a":2}`, t0.Add(time.Hour)), 1}, // equally recent: accepted
		} {
			if n, err := tx.UpsertInventory(ctx, []store.InventoryFact{c.f}); err != nil || n != c.want {
				return fmt.Errorf("upsert %d: %d %v, want %d", i, n, err, c.want)
			}
		}
		stored, err := tx.LoadFacts(ctx, []store.FactsKey{{PCID: "PC", JobID: "j"}, {PCID: "PC", JobID: "absent"}})
		if err != nil || len(stored) != 1 || stored[store.FactsKey{PCID: "PC", JobID: "j"}].FactsJSON != `{"a":2}` ||
			!stored[store.FactsKey{PCID: "PC", JobID: "j"}].RecordedAt.Equal(t0.Add(time.Hour)) {
			return fmt.Errorf("LoadFacts: %+v %v", stored, err)
		}
		var hist []store.HistoryRow
		for i := range 3 {
			hist = append(hist, store.HistoryRow{PCID: "PC", JobID: "j", FieldPath: fmt.Sprint(i), ChangeKind: "added", AfterJSON: wire.Str("{}"), ObservedAt: t0})
		}
		if n, err := tx.AddHistory(ctx, hist); err != nil || n != 3 {
			return fmt.Errorf("AddHistory: %d %v", n, err)
		}
		return nil
	})
	var paths []string
	for _, h := range dump(t, st).History {
		paths = append(paths, h.FieldPath)
	}
	if !slices.Equal(paths, []string{"0", "1", "2"}) {
		t.Errorf("history in id order: %v (rows must be numbered in the order given)", paths)
	}
}

func checksAndFeeds(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	check := func(status string, at time.Time) store.CheckRow {
		return store.CheckRow{PCID: "PC", CheckName: "disk", Label: wire.Str("Disk"), Status: status, RecordedAt: at}
	}
	project(t, st, func(tx store.ProjectionTx) error {
		for i, c := range []struct {
			r    store.CheckRow
			want int64
		}{{check("ok", t0.Add(time.Hour)), 1}, {check("fail", t0), 0}, {check("ok", t0.Add(time.Hour)), 0}, {check("warn", t0.Add(time.Hour)), 1}} {
			if n, err := tx.UpsertChecks(ctx, []store.CheckRow{c.r}); err != nil || n != c.want {
				return fmt.Errorf("check %d: %d %v, want %d", i, n, err, c.want)
			}
		}
		if marks, err := tx.FeedWatermarks(ctx, []string{"kev"}); err != nil || len(marks) != 0 {
			return fmt.Errorf("FeedWatermarks before any feed: %v %v", marks, err)
		}
		feed := store.Feed{Meta: store.FeedMeta{FeedID: "kev", RecordedAt: t0, FetchedAt: &t0, ItemCount: 3},
			Items: []store.FeedItem{{ItemID: "a", Data: "1"}, {ItemID: "b", Data: "2"}}}
		if err := tx.ReplaceFeeds(ctx, []store.Feed{feed}); err != nil {
			return err
		}
		feed.Items, feed.Meta.RecordedAt = []store.FeedItem{{ItemID: "c", Data: "3"}}, t0.Add(time.Hour)
		if err := tx.ReplaceFeeds(ctx, []store.Feed{feed}); err != nil {
			return err
		}
		marks, err := tx.FeedWatermarks(ctx, []string{"kev", "absent"})
		if err != nil || len(marks) != 1 || !marks["kev"].Equal(t0.Add(time.Hour)) {
			return fmt.Errorf("FeedWatermarks: %v %v", marks, err)
		}
		return nil
	})
	tb := dump(t, st)
	if len(tb.Checks) != 1 || tb.Checks[0].Status != "warn" {
		t.Errorf("checks %+v", tb.Checks)
	}
	if len(tb.Feeds) != 1 || tb.Feeds[0].ItemID != "c" || len(tb.FeedMeta) != 1 || tb.FeedMeta[0].ItemCount != 3 {
		t.Errorf("a feed's rows are replaced whole: %+v %+v", tb.Feeds, tb.FeedMeta)
	}
}

func explodeTables(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	x := store.ExplodeTable{Name: "order", PrimaryKey: []string{"name"}, // a reserved word: identifiers are quoted
		Columns: []store.ExplodeColumn{{Name: "name", Kind: store.ColText, Index: true}, {Name: "n", Kind: store.ColInteger}}}
	key := store.FactsKey{PCID: "PC", JobID: "j"}
	text := func(s string) store.Cell { return store.Cell{Kind: store.CellText, Text: s} }
	num := func(i int64) store.Cell { return store.Cell{Kind: store.CellInt, Int: i} }
	t1, t2 := t0, t0.Add(time.Hour)
	load := func(tx store.ProjectionTx) (*store.ExplodeRows, error) {
		rows, err := tx.LoadExplodeRows(ctx, x, []store.FactsKey{key, {PCID: "other", JobID: "j"}})
		if err != nil {
			return nil, err
		}
		if len(rows) > 1 {
			return nil, fmt.Errorf("rows for keys that have none: %v", rows)
		}
		return rows[key], nil
	}
	project(t, st, func(tx store.ProjectionTx) error {
		for range 2 { // creating is idempotent
			if err := tx.EnsureExplodeTable(ctx, x); err != nil {
				return err
			}
		}
		if set, err := load(tx); err != nil || set != nil {
			return fmt.Errorf("an empty table: %+v %v", set, err)
		}
		// The first of two rows with one key stays.
		c := store.ExplodeChange{Key: key, CollectedAt: &t1, All: true, Insert: [][]store.Cell{{text("a"), num(1)}, {text("b"), num(2)}, {text("a"), num(9)}}}
		if _, err := tx.ChangeExplodeRows(ctx, x, []store.ExplodeChange{c}); err != nil {
			return err
		}
		// Delete b, add c, restamp a.
		c = store.ExplodeChange{Key: key, CollectedAt: &t2, Restamp: true, Delete: [][]store.Cell{{text("b"), num(2)}}, Insert: [][]store.Cell{{text("c"), {}}}}
		if _, err := tx.ChangeExplodeRows(ctx, x, []store.ExplodeChange{c}); err != nil {
			return err
		}
		set, err := load(tx)
		if err != nil {
			return err
		}
		got := map[string]store.Cell{}
		for _, r := range set.Rows {
			got[r[0].Text] = r[1]
		}
		if !reflect.DeepEqual(got, map[string]store.Cell{"a": num(1), "c": {}}) || set.CollectedAt == nil || !set.CollectedAt.Equal(t2) {
			return fmt.Errorf("rows %+v collected %v", got, set.CollectedAt)
		}
		// A new column is added and the rows stay.
		x.Columns = append(x.Columns, store.ExplodeColumn{Name: "extra", Kind: store.ColReal})
		if err := tx.EnsureExplodeTable(ctx, x); err != nil {
			return err
		}
		if set, err = load(tx); err != nil || len(set.Rows) != 2 || len(set.Rows[0]) != 3 {
			return fmt.Errorf("after adding a column: %+v %v", set, err)
		}
		return nil
	})
}

func bookkeeping(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	cp := store.Checkpoint{Name: "RESULTS", Stream: "RESULTS", StreamCreated: t0, LastSeq: 42, UpdatedAt: t0}
	q := []store.QuarantineEntry{{Stream: "RESULTS", Seq: 7, Subject: "results.x", PublishedAt: t0, Error: "bad", Payload: []byte{0xff, 0}, QuarantinedAt: t0},
		{Stream: "RESULTS", Seq: 8, Subject: "results.y", PublishedAt: t0, Error: "empty", Payload: []byte{}, QuarantinedAt: t0}}
	project(t, st, func(tx store.ProjectionTx) error {
		if err := tx.SaveCheckpoint(ctx, cp); err != nil {
			return err
		}
		if err := tx.AddQuarantine(ctx, q); err != nil {
			return err
		}
		return tx.DeleteQuarantine(ctx, "RESULTS", []uint64{8})
	})
	got, err := st.LoadCheckpoint(ctx, "RESULTS")
	if err != nil || got == nil || got.LastSeq != 42 || !got.StreamCreated.Equal(t0) {
		t.Errorf("checkpoint %+v %v", got, err)
	}
	if none, err := st.LoadCheckpoint(ctx, "absent"); err != nil || none != nil {
		t.Errorf("an absent checkpoint: %+v %v", none, err)
	}
	list, err := st.ListQuarantine(ctx, "RESULTS", 0)
	if err != nil || len(list) != 1 || list[0].Seq != 7 || !slices.Equal(list[0].Payload, []byte{0xff, 0}) {
		t.Errorf("quarantine %+v %v (the payload is kept byte for byte)", list, err)
	}
	kept, err := st.QuarantinedAt(ctx, "RESULTS", []uint64{7, 8, 9})
	if err != nil || len(kept) != 1 || !kept[7].Equal(t0) {
		t.Errorf("QuarantinedAt(7, 8, 9): %v %v, want only 7 (8 was deleted, 9 never kept)", kept, err)
	}
	if other, err := st.QuarantinedAt(ctx, "EVENTS", []uint64{7}); err != nil || len(other) != 0 {
		t.Errorf("QuarantinedAt of another stream: %v %v", other, err)
	}
}

func dryRun(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	err := st.Project(ctx, true, func(tx store.ProjectionTx) error {
		_, err := tx.InsertNew(ctx, []store.ResultRow{finished("x", "PC", 0, t0)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(dump(t, st).Results); n != 0 {
		t.Errorf("a rolled-back projection left %d rows", n)
	}
}

// rebuild: a shadow copy carries what the stream cannot produce, is
// written through ProjectShadow, compared, and swapped in; the live
// tables do not change before the swap, and a dropped shadow leaves none.
func rebuild(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	old := finished("old", "PC", 0, t0.Add(-time.Hour))
	live := finished("live", "PC", 0, t0.Add(time.Hour))
	exec := store.Execution{ExecID: "e", JobID: "j", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 3, Status: "pending"}
	old.ExecID, live.ExecID = &exec.ExecID, &exec.ExecID
	if err := st.Seed(ctx, []store.Execution{exec}, []store.ResultRow{old, live}); err != nil {
		t.Fatal(err)
	}
	project(t, st, func(tx store.ProjectionTx) error {
		_, err := tx.UpsertChecks(ctx, []store.CheckRow{{PCID: "PC", CheckName: "old", Status: "ok", RecordedAt: t0.Add(-time.Hour)},
			{PCID: "PC", CheckName: "new", Status: "ok", RecordedAt: t0.Add(time.Hour)}})
		return err
	})
	before := dump(t, st)
	carried, err := st.CreateShadow(ctx, t0)
	if err != nil || carried != 1 {
		t.Fatalf("CreateShadow: carried %d %v, want the one row recorded before the stream", carried, err)
	}
	err = st.ProjectShadow(ctx, func(tx store.ProjectionTx) error {
		if _, err := tx.InsertNew(ctx, []store.ResultRow{finished("fresh", "PC", 1, t0.Add(time.Hour))}); err != nil {
			return err
		}
		_, err := tx.BumpExecutions(ctx, []store.CounterDelta{{ExecID: "e", Failure: 1}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.DiffShadow(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d.LiveRows != 2 || d.ShadowRows != 2 || d.OnlyLive != 1 || d.OnlyShadow != 1 || d.ChecksLive != 2 || d.ChecksShadow != 1 ||
		!slices.Equal(d.SampleOnlyLive, []string{"live"}) || d.ExecutionsDiff != 1 {
		t.Errorf("DiffShadow: %+v", d)
	}
	if !reflect.DeepEqual(before, dump(t, st)) {
		t.Fatal("the live tables changed before the swap")
	}
	if ok, err := st.Swapped(ctx, "kanade_old_1_"); ok || err != nil {
		t.Fatalf("Swapped before any swap: %v %v", ok, err)
	}
	prefix, err := st.SwapShadow(ctx)
	if err != nil || prefix == "" {
		t.Fatalf("SwapShadow: %q %v", prefix, err)
	}
	if ok, err := st.Swapped(ctx, prefix); !ok || err != nil {
		t.Fatalf("Swapped(%q) after the swap: %v %v", prefix, ok, err)
	}
	after := dump(t, st)
	defer func() {
		// The kept set is listed, by Status too, and dropped whole; the
		// live tables stay.
		sets, err := st.OldTables(ctx)
		if err != nil || len(sets) != 1 || sets[0].Prefix != prefix || !slices.Contains(sets[0].Tables, prefix+"execution_results") || sets[0].Rows < 2 {
			t.Fatalf("OldTables after a swap: %+v %v", sets, err)
		}
		if status, err := st.Status(ctx); err != nil || len(status.OldTables) != 1 {
			t.Errorf("Status lists the kept set: %+v %v", status, err)
		}
		dropped, err := st.DropOldTables(ctx, prefix)
		if err != nil || !slices.Equal(dropped, sets[0].Tables) {
			t.Fatalf("DropOldTables: %v %v", dropped, err)
		}
		if sets, err := st.OldTables(ctx); err != nil || len(sets) != 0 {
			t.Errorf("OldTables after the drop: %+v %v", sets, err)
		}
		if _, err := st.DropOldTables(ctx, prefix); err == nil {
			t.Error("dropping a set twice must be an error")
		}
		if !reflect.DeepEqual(after, dump(t, st)) {
			t.Error("dropping the kept tables changed the live ones")
		}
	}()
	var ids []string
	for _, r := range after.Results {
		ids = append(ids, r.ResultID)
	}
	if !slices.Equal(ids, []string{"fresh", "old"}) || len(after.Checks) != 1 || after.Checks[0].CheckName != "old" ||
		after.Executions[0].SuccessCount != 1 || after.Executions[0].FailureCount != 1 || after.Executions[0].Status != "running" {
		t.Errorf("after the swap: rows %v checks %+v executions %+v", ids, after.Checks, after.Executions)
	}
	// A second rebuild can start over on the swapped tables, and a dropped
	// one leaves the live tables as they are.
	if _, err := st.CreateShadow(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if err := st.DropShadow(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, dump(t, st)) {
		t.Error("a dropped rebuild changed the live tables")
	}
}

// backfill: legacy rows are found by the cursor, renamed, archived and
// counted, in a transaction of their own.
func backfill(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	legacy := finished("q-1", "PC-1", 0, t0) // result_id = request_id
	legacy.RequestID = "q-1"
	dup := finished("q-2", "PC-2", 0, t0)
	dup.RequestID = "q-2"
	kept := finished("stable-2", "PC-2", 0, t0)
	if err := st.Seed(ctx, nil, []store.ResultRow{legacy, dup, kept, finished("ok", "PC-3", 0, t0)}); err != nil {
		t.Fatal(err)
	}
	err := st.Backfill(ctx, false, func(tx store.BackfillTx) error {
		rows, err := tx.LegacyCandidates(ctx, "", 10, store.Part{})
		if err != nil {
			return err
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.ResultID)
		}
		if !slices.Equal(got, []string{"q-1", "q-2"}) {
			return fmt.Errorf("LegacyCandidates: %v, want [q-1 q-2]", got)
		}
		if more, err := tx.LegacyCandidates(ctx, "q-2", 10, store.Part{}); err != nil || len(more) != 1 || more[0].ResultID != "q-2" {
			return fmt.Errorf("from the cursor on (inclusive): %+v %v", more, err)
		}
		byID, err := tx.RowsByID(ctx, []string{"stable-2", "absent"})
		if err != nil || len(byID) != 1 || byID["stable-2"].PCID != "PC-2" {
			return fmt.Errorf("RowsByID: %+v %v", byID, err)
		}
		if n, err := tx.ArchiveAndDelete(ctx, []store.Victim{{Key: rows[1].Key, Reason: "duplicate", KeptID: "stable-2"}}); err != nil || n != 1 {
			return fmt.Errorf("ArchiveAndDelete: %d %v", n, err)
		}
		if n, err := tx.RenameResults(ctx, []store.Rename{{Key: rows[0].Key, NewID: "stable-1"}}); err != nil || n != 1 {
			return fmt.Errorf("RenameResults: %d %v", n, err)
		}
		return tx.SaveBackfillCursor(ctx, "w0", "q-2")
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range dump(t, st).Results {
		ids = append(ids, r.ResultID)
	}
	if !slices.Equal(ids, []string{"ok", "stable-1", "stable-2"}) {
		t.Errorf("rows after the backfill: %v", ids)
	}
	conflicts, err := st.ListConflicts(ctx, 10)
	if err != nil || len(conflicts) != 1 || conflicts[0].ResultID != "q-2" || conflicts[0].KeptID != "stable-2" || conflicts[0].RowJSON == "" {
		t.Errorf("archived: %+v %v", conflicts, err)
	}
	if cursors, err := st.BackfillCursors(ctx); err != nil || cursors["w0"] != "q-2" {
		t.Errorf("cursors %v %v", cursors, err)
	}
}

// auditAndQueries: the audit's lists (limit and total), its facts, its one
// repair, and the read paths of show.
func auditAndQueries(t *testing.T, st testutil.Store) {
	ctx := context.Background()
	exec := store.Execution{ExecID: "e", JobID: "j", Version: "1", InitiatedBy: "ops", InitiatedAt: t0, TargetCount: 2, SuccessCount: 5, Status: "running"}
	ok := finished("ok", "PC-1", 0, t0)
	bad := finished("bad", "PC-2", 3, t0)
	ok.ExecID, bad.ExecID = &exec.ExecID, &exec.ExecID
	legacy := finished("q-l", "PC-3", 0, t0)
	legacy.RequestID = "q-l"
	twin := finished("twin", "PC-3", 0, t0)
	twin.RequestID = "q-l"
	orphan := finished("orphan", "PC-4", 0, t0)
	orphan.ExecID = wire.Str("gone")
	stuck := store.ResultRow{ResultID: "stuck", RequestID: "q-s", PCID: "PC-5", StartedAt: t0, RecordedAt: t0, ExpiresAt: &t0}
	if err := st.Seed(ctx, []store.Execution{exec}, []store.ResultRow{ok, bad, legacy, twin, orphan, stuck}); err != nil {
		t.Fatal(err)
	}
	facts, err := st.ExecutionFacts(ctx)
	if err != nil || len(facts) != 1 || facts[0].RowsSuccess != 1 || facts[0].RowsFailure != 1 || facts[0].ReportedPCs != 2 {
		t.Errorf("ExecutionFacts: %+v %v", facts, err)
	}
	if refs, total, err := st.LegacyRows(ctx, 10); err != nil || total != 1 || len(refs) != 1 || refs[0].ResultID != "q-l" {
		t.Errorf("LegacyRows: %+v %d %v", refs, total, err)
	}
	if pairs, total, err := st.DuplicatePairs(ctx, 10); err != nil || total != 1 || len(pairs) != 1 || len(pairs[0].ResultIDs) != 2 {
		t.Errorf("DuplicatePairs: %+v %d %v", pairs, total, err)
	}
	if refs, total, err := st.OrphanResults(ctx, 0); err != nil || total != 1 || len(refs) != 0 {
		t.Errorf("OrphanResults with limit 0: %+v %d %v (the total counts what the limit leaves out)", refs, total, err)
	}
	if refs, total, err := st.UnreapedInFlight(ctx, t0.Add(time.Minute), t0.Add(-24*time.Hour), 10); err != nil || total != 1 || refs[0].ResultID != "stuck" {
		t.Errorf("UnreapedInFlight: %+v %d %v", refs, total, err)
	}
	changed, err := st.FixCounters(ctx, func(f store.ExecutionFacts) (store.Execution, bool) {
		e := f.Execution
		e.SuccessCount, e.FailureCount, e.Status = f.RowsSuccess, f.RowsFailure, "completed"
		return e, e != f.Execution
	})
	if err != nil || len(changed) != 1 || changed[0].SuccessCount != 5 {
		t.Errorf("FixCounters: %+v %v (returns the facts as they were)", changed, err)
	}
	if e, err := st.GetExecution(ctx, "e"); err != nil || e == nil || e.SuccessCount != 1 || e.FailureCount != 1 || e.Status != "completed" {
		t.Errorf("GetExecution after the fix: %+v %v", e, err)
	}
	if e, err := st.GetExecution(ctx, "absent"); err != nil || e != nil {
		t.Errorf("GetExecution of an absent execution: %+v %v", e, err)
	}
	rows, err := st.FindResults(ctx, store.ResultFilter{ExecID: "e", PCs: []string{"PC-2"}})
	if err != nil || len(rows) != 1 || rows[0].ResultID != "bad" {
		t.Errorf("FindResults by execution and PC: %+v %v", rows, err)
	}
	byID, err := st.ResultsByID(ctx, []string{"ok", "stuck", "absent"})
	if err != nil || len(byID) != 2 || byID["stuck"].FinishedAt != nil {
		t.Errorf("ResultsByID: %+v %v", byID, err)
	}
}
