package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// The one-row statements of a batch do not watch the context, so the
// loop stops between rows when it ends, and the transaction leaves nothing.
func TestInsertValuesStopsBetweenRows(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "kanade.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.db.ExecContext(ctx, "CREATE TABLE t (k INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	built := 0
	err = st.batchTx(ctx, false, "test", func(p *projTx) error {
		_, err := insertValues(ctx, p.tx, make([]int, 1000), 1, func(args []any, _ *int) []any {
			if built++; built == 10 {
				cancel()
			}
			return append(args, built)
		}, "INSERT INTO t (k) VALUES %s", "test rows", nil)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v; want the cancellation", err)
	}
	if built != 10 {
		t.Errorf("%d rows built; want the loop to stop after the 10th", built)
	}
	checkIntact(t, st, 0)
}
