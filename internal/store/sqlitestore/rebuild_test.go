package sqlitestore_test

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// A rebuild's shadow tables get only the live tables' unique indexes (the
// projection's conflicts need them; the others were built row by row and
// then dropped by the swap), and the swap gives the swapped-in tables
// every index the live ones had, under the same names with the same
// definitions.
func TestShadowIndexesAreBuiltAtTheSwap(t *testing.T) {
	ctx := context.Background()
	st := testutil.SQLiteStore(t)
	db := st.DB()
	// A unique index of the kind an upstream file may carry.
	if _, err := db.ExecContext(ctx, "CREATE UNIQUE INDEX idx_test_unique ON execution_results(request_id, pc_id, result_id)"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	fin := t0.Add(time.Second)
	if err := st.Seed(ctx, nil, []store.ResultRow{{ResultID: "r1", RequestID: "q1", PCID: "PC", StartedAt: t0, FinishedAt: &fin, RecordedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	indexes := func(table string) map[string]string {
		t.Helper()
		rows, err := db.QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var name string
			var ddl sql.NullString
			if err := rows.Scan(&name, &ddl); err != nil {
				t.Fatal(err)
			}
			out[name] = ddl.String
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := map[string]map[string]string{}
	for _, table := range []string{"execution_results", "executions", "inventory_facts"} {
		before[table] = indexes(table)
		if len(before[table]) == 0 {
			t.Fatalf("%s has no indexes to check", table)
		}
	}
	if _, err := st.CreateShadow(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(indexes("kanade_shadow_execution_results"))); !slices.Equal(got, []string{"kanade_shadow_idx_test_unique"}) {
		t.Errorf("shadow execution_results indexes %v, want only the unique one", got)
	}
	if got := indexes("kanade_shadow_executions"); len(got) != 0 {
		t.Errorf("shadow executions indexes %v, want none", slices.Sorted(maps.Keys(got)))
	}
	if _, err := st.SwapShadow(ctx); err != nil {
		t.Fatal(err)
	}
	for table, want := range before {
		if got := indexes(table); !maps.Equal(got, want) {
			t.Errorf("%s after the swap: indexes %v\nwant %v", table, got, want)
		}
	}
}
