package sqlitestore

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// pageCacheInUse reports how many of the pool's slots hold pages now and
// at most since the process started (SQLITE_STATUS_PAGECACHE_USED).
func pageCacheInUse(t *testing.T) (now, highest int64) {
	tls := libc.NewTLS()
	defer tls.Close()
	p := libc.Xmalloc(tls, 16)
	if p == 0 {
		t.Fatal("out of memory")
	}
	defer libc.Xfree(tls, p)
	if rc := sqlite3.Xsqlite3_status64(tls, sqlite3.SQLITE_STATUS_PAGECACHE_USED, p, p+8, 0); rc != sqlite3.SQLITE_OK {
		t.Fatalf("sqlite3_status64: %d", rc)
	}
	return libc.AtomicLoadPInt64(p), libc.AtomicLoadPInt64(p + 8)
}

// A writer's pages come from the pool, and what it wrote reads back intact.
// SQLite takes the pool only before its first connection in a process, so
// the test runs again in a process of its own.
func TestWritersUseThePageCachePool(t *testing.T) {
	dir := os.Getenv("KANADE_TEST_PAGECACHE_DIR")
	if dir == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWritersUseThePageCachePool$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "KANADE_TEST_PAGECACHE_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestWritersUseThePageCachePool") {
			t.Fatalf("in its own process: %v\n%s", err, out)
		}
		return
	}
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(dir, "kanade.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if pool.slots != cacheKiB<<10/4096 {
		t.Fatalf("pool of %d slots, want %d", pool.slots, cacheKiB<<10/4096)
	}
	// About 3 MB of pages: more than SQLite's own default cache, less than
	// the pool.
	if _, err := st.db.ExecContext(ctx, `CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
		INSERT INTO t SELECT printf('%08d', i * 7919 % 20000), hex(randomblob(64)) FROM n`); err != nil {
		t.Fatal(err)
	}
	now, highest := pageCacheInUse(t)
	if highest < 500 {
		t.Errorf("the pool held at most %d pages (now %d); want the table's 700 or so", highest, now)
	}
	checkIntact(t, st, 20000)

	// A file with larger pages than the pool's slots (upstream's could have
	// them) takes its pages from malloc, as without the pool.
	big := filepath.Join(dir, "backend.db")
	raw, err := sql.Open("sqlite", DSN(big, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, "PRAGMA page_size = 16384; CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	st2, err := Open(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := st2.db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
		INSERT INTO t SELECT printf('%08d', i * 7919 % 20000), hex(randomblob(64)) FROM n`); err != nil {
		t.Fatal(err)
	}
	var pageSize int
	if err := st2.db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if pageSize != 16384 {
		t.Errorf("page size %d; want 16384", pageSize)
	}
	checkIntact(t, st2, 20000)
}

// checkIntact checks that table t of st has want rows and the file passes
// SQLite's integrity check.
func checkIntact(t *testing.T, st *Store, want int) {
	t.Helper()
	ctx := context.Background()
	var count int
	var check string
	if err := st.db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&count); err != nil {
		t.Fatal(err)
	}
	if err := st.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil {
		t.Fatal(err)
	}
	if count != want || check != "ok" {
		t.Errorf("%d rows, integrity_check %q; want %d, ok", count, check, want)
	}
}
