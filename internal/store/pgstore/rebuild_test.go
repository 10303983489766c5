package pgstore_test

import (
	"context"
	"testing"
	"time"

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
