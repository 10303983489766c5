package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
)

// The connection settings: every connection of a writer gets the larger
// page cache, temporary files stay on disk; synchronous=NORMAL only on a
// file in WAL mode (where it cannot corrupt the file), FULL on a file in
// another journal mode (upstream's file is upstream's choice), and the
// file's journal mode is never changed on upstream's file.
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	pragmas := func(db *sql.DB) (sync, temp, cache int64, journal string) {
		t.Helper()
		// Several at once, so that more than one pooled connection answers.
		conns := make([]*sql.Conn, 3)
		for i := range conns {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		for i, c := range conns {
			var s, tm, cs int64
			var j string
			for _, p := range []struct {
				q   string
				dst any
			}{{"PRAGMA synchronous", &s}, {"PRAGMA temp_store", &tm}, {"PRAGMA cache_size", &cs}, {"PRAGMA journal_mode", &j}} {
				if err := c.QueryRowContext(ctx, p.q).Scan(p.dst); err != nil {
					t.Fatal(err)
				}
			}
			if i > 0 && (s != sync || tm != temp || cs != cache) {
				t.Errorf("connections differ: %d %d %d against %d %d %d", s, tm, cs, sync, temp, cache)
			}
			sync, temp, cache, journal = s, tm, cs, j
		}
		for _, c := range conns {
			c.Close()
		}
		return
	}

	own := filepath.Join(t.TempDir(), "kanade.db")
	st, err := sqlitestore.Open(ctx, own)
	if err != nil {
		t.Fatal(err)
	}
	if s, tm, cs, j := pragmas(st.DB()); s != 1 || tm != 0 || cs != -14336 || j != "wal" {
		t.Errorf("kanade's own file: synchronous %d, temp_store %d, cache_size %d, journal %s; want 1 (NORMAL), 0 (DEFAULT), -14336, wal", s, tm, cs, j)
	}
	st.Close()

	// Upstream's file in the rollback journal: it stays so, and FULL.
	path := filepath.Join(t.TempDir(), "backend.db")
	raw, err := sql.Open("sqlite", sqlitestore.DSN(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, upstreamSchema); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if st, err = sqlitestore.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s, _, _, j := pragmas(st.DB()); s != 2 || j != "delete" {
		t.Errorf("upstream's file in journal mode delete: synchronous %d, journal %s; want 2 (FULL), delete", s, j)
	}
}
