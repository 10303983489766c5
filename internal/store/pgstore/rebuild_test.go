package pgstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// The swap takes every lock it needs before it changes anything. It used
// to lock the fixed tables, rename (among others) a live explode table's
// indexes, and only then wait for that table, which an autovacuum held; the
// autovacuum's ANALYZE then waited to update the renamed indexes' catalog
// rows, held by the swap: a deadlock that failed the rebuild at its last
// step (the chaos suite, 2026-12-02). Here a session does what that
// autovacuum did: it holds the live explode table and, once the swap waits
// for it, analyzes the table. With every lock taken first the ANALYZE
// finishes and the swap goes on when the session ends.
func TestSwapLocksBeforeItChangesAnything(t *testing.T) {
	ctx := context.Background()
	st := testutil.PostgresStore(t)
	disks := store.ExplodeTable{Name: "inventory_disks", PrimaryKey: []string{"name"},
		Columns: []store.ExplodeColumn{{Name: "name", Kind: store.ColText}, {Name: "size", Kind: store.ColInteger, Index: true}}}
	if err := st.Project(ctx, false, func(tx store.ProjectionTx) error { return tx.EnsureExplodeTable(ctx, disks) }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateShadow(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.ProjectShadow(ctx, func(tx store.ProjectionTx) error { return tx.EnsureExplodeTable(ctx, disks) }); err != nil {
		t.Fatal(err)
	}

	holder, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx) //nolint:errcheck
	if _, err := holder.Exec(ctx, "LOCK TABLE inventory_disks IN SHARE UPDATE EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	swapped := make(chan error, 1)
	go func() {
		_, err := st.SwapShadow(ctx)
		swapped <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting bool
		if err := st.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the swap never waited for the held explode table")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := holder.Exec(ctx, "SET LOCAL statement_timeout = '5s'; ANALYZE inventory_disks"); err != nil {
		t.Fatalf("ANALYZE of the held table beside the waiting swap: %v", err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-swapped:
		if err != nil {
			t.Fatalf("swap: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the swap did not finish once the lock was free")
	}
}

// A rebuild's shadow tables start with their keys only, get the live
// tables' other indexes before the diff (once, however often asked), and
// the swapped-in tables have every index, key and constraint the live ones
// had.
func TestShadowIndexesAreBuiltBeforeTheDiff(t *testing.T) {
	ctx := context.Background()
	st := testutil.PostgresStore(t)
	// A unique index of the kind another schema may carry, kept from the start.
	if _, err := st.Pool().Exec(ctx, "CREATE UNIQUE INDEX idx_test_unique ON execution_results (request_id, pc_id, result_id)"); err != nil {
		t.Fatal(err)
	}
	// Index and constraint definitions of a table, without their names.
	defs := func(table string) []string {
		t.Helper()
		rows, err := st.Pool().Query(ctx, `SELECT regexp_replace(pg_get_indexdef(indexrelid), '^(CREATE (UNIQUE )?INDEX) \S+ ON \S+', '\1 ON t') FROM pg_index WHERE indrelid = to_regclass($1)
			UNION ALL SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass($1) ORDER BY 1`, table)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := map[string][]string{}
	for _, table := range store.ProjectedTables {
		before[table] = defs(table)
	}
	if len(before["execution_results"]) < 10 {
		t.Fatalf("execution_results has %d indexes and constraints; want upstream's", len(before["execution_results"]))
	}
	if _, err := st.CreateShadow(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	got := defs("kanade_shadow_execution_results")
	want := []string{"CREATE UNIQUE INDEX ON t USING btree (request_id, pc_id, result_id)", "CREATE UNIQUE INDEX ON t USING btree (result_id)", "PRIMARY KEY (result_id)"}
	if !slices.Equal(got, want) {
		t.Errorf("shadow before the diff: %q\nwant the keys only: %q", got, want)
	}
	for range 2 {
		if _, err := st.DiffShadow(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range store.ProjectedTables {
		if got := defs(store.ShadowPrefix + table); !slices.Equal(got, before[table]) {
			t.Errorf("shadow %s after the diff: %q\nwant %q", table, got, before[table])
		}
	}
	if _, err := st.SwapShadow(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range store.ProjectedTables {
		if got := defs(table); !slices.Equal(got, before[table]) {
			t.Errorf("%s after the swap: %q\nwant %q", table, got, before[table])
		}
	}
}

// A swapped-in table keeps the live table's storage parameters (LIKE
// copies none): the facts' fillfactor from the migrations, what a DBA set,
// and an explode table's too, except its fillfactor, which a rebuild
// brings to the current DDL's.
func TestRebuildKeepsStorageParameters(t *testing.T) {
	ctx := context.Background()
	st := testutil.PostgresStore(t)
	disks := store.ExplodeTable{Name: "inventory_disks", PrimaryKey: []string{"name"},
		Columns: []store.ExplodeColumn{{Name: "name", Kind: store.ColText}, {Name: "size", Kind: store.ColInteger}}}
	if err := st.Project(ctx, false, func(tx store.ProjectionTx) error { return tx.EnsureExplodeTable(ctx, disks) }); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE execution_results SET (autovacuum_vacuum_scale_factor = 0.02)",
		"ALTER TABLE inventory_disks SET (fillfactor = 70, autovacuum_enabled = false)",
	} {
		if _, err := st.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	params := func(table string) []string {
		t.Helper()
		var out []string
		if err := st.Pool().QueryRow(ctx, "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = to_regclass($1)", table).Scan(&out); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	if got := params("inventory_facts"); !slices.Equal(got, []string{"fillfactor=50"}) {
		t.Errorf("inventory_facts after the migrations: %q; want fillfactor=50", got)
	}
	if _, err := st.CreateShadow(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.ProjectShadow(ctx, func(tx store.ProjectionTx) error { return tx.EnsureExplodeTable(ctx, disks) }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SwapShadow(ctx); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string][]string{
		"execution_results": {"autovacuum_vacuum_scale_factor=0.02"},
		"inventory_facts":   {"fillfactor=50"},
		"inventory_disks":   {"autovacuum_enabled=false", "fillfactor=50"},
		"executions":        nil,
	} {
		if got := params(table); !slices.Equal(got, want) {
			t.Errorf("%s after a rebuild: storage parameters %q; want %q", table, got, want)
		}
	}
}
