package sqlitestore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// Batch transactions leave their checkpoints to the checkpointer. The WAL
// stays bounded although every batch begins while the last one's
// checkpoint runs, only the writer's connection runs without SQLite's own
// autocheckpoint, and every row is in the file after Close.
func TestCheckpointerKeepsTheWALBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kanade.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	if st.ckpt == nil {
		t.Fatal("no checkpointer on a file in WAL mode")
	}
	const restart, batches, rows = 200, 60, 500
	st.ckpt.restart = restart
	if _, err := st.db.ExecContext(ctx, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		t.Fatal(err)
	}
	var largest int64
	for range batches {
		// About 130 pages a batch: 60 of them would make a 32 MB WAL if it
		// never rewound.
		err := st.batchTx(ctx, false, "test", func(p *projTx) error {
			_, err := p.tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
				INSERT INTO t (v) SELECT randomblob(1000) FROM n`, rows)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	t.Logf("largest WAL: %d bytes", largest)
	// The checkpoints run at most two batches behind, and the batch after
	// the wait rewinds the WAL.
	if limit := int64(restart+6*150) * 4200; largest > limit {
		t.Errorf("the WAL grew to %d bytes; want at most %d (%d frames and a few batches)", largest, limit, restart)
	}

	// SQLite's default, which every connection but the writer keeps.
	const sqliteAutoCheckpoint = 1000
	var writer int
	if err := st.writer.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if writer != 0 {
		t.Errorf("the writer connection has wal_autocheckpoint %d; want 0 (the checkpointer's)", writer)
	}
	// The pool's other three connections (it holds four).
	conns := make([]*sql.Conn, 0, 3)
	for range 3 {
		c, err := st.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var n int
		if err := c.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != sqliteAutoCheckpoint {
			t.Errorf("a pooled connection has wal_autocheckpoint %d; want SQLite's 1000", n)
		}
	}
	for _, c := range conns {
		c.Close()
	}

	st.Close()
	if st, err = OpenReadOnly(ctx, path); err != nil {
		t.Fatal(err)
	}
	checkIntact(t, st, batches*rows)
}
