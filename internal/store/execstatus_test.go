package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// The status rule exists twice, as Go (audit --fix) and as SQL (the
// projector's and backfill's counter updates, rebuild): both forms must
// give the same status for every status, count and target, on both
// engines.
func TestStatusRuleAgreesWithSQL(t *testing.T) {
	ctx := context.Background()
	for name, st := range map[string]testutil.Store{"postgres": testutil.PostgresStore(t), "sqlite": testutil.SQLiteStore(t)} {
		t.Run(name, func(t *testing.T) {
			for _, cur := range []string{store.StatusPending, store.StatusRunning, store.StatusCompleted, store.StatusExpired} {
				for counted := int64(0); counted <= 3; counted++ {
					for target := int64(0); target <= 3; target++ {
						q := "SELECT " + store.ExecutionStatusSQL("'"+cur+"'", fmt.Sprint(counted), fmt.Sprint(target))
						got, err := queryString(ctx, st, q)
						if err != nil {
							t.Fatalf("%s: %v", q, err)
						}
						if want := store.ExecutionStatus(cur, counted, target); got != want {
							t.Errorf("status %s, %d of %d counted: SQL says %s, Go says %s", cur, counted, target, got, want)
						}
					}
				}
			}
		})
	}
}

// The rule's cases, stated once more as upstream's behaviour.
func TestExecutionStatusCases(t *testing.T) {
	for _, c := range []struct {
		cur             string
		counted, target int64
		want            string
	}{
		{"expired", 1, 3, "running"},   // an expired execution that gets a result runs again
		{"expired", 3, 3, "completed"}, // ... or completes
		{"expired", 0, 3, "expired"},   // nothing counted: the expirer's word stands
		{"running", 0, 3, "running"},   // started, no result yet
		{"pending", 0, 3, "pending"},
		{"completed", 0, 3, "running"}, // completed with nothing counted cannot stand
		{"running", 5, 3, "completed"}, // over-counted is still completed
		{"pending", 1, 0, "completed"},
	} {
		if got := store.ExecutionStatus(c.cur, c.counted, c.target); got != c.want {
			t.Errorf("%s with %d of %d: got %s, want %s", c.cur, c.counted, c.target, got, c.want)
		}
	}
}
