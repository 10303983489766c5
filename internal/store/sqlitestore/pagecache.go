package sqlitestore

import (
	"sync"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// cacheKiB is the page cache of each connection (PRAGMA cache_size(-N)).
// docs/performance.md measures the sizes against a replay's rate and memory.
const cacheKiB = 14336

// The page cache pool. SQLite's pcache1 takes every page it caches (4,096
// bytes and a 272-byte header) from malloc, and modernc.org/memory serves a
// request of that size from its 8 KiB size class, so a full 16 MiB cache
// held about 32 MB of RSS. A pool handed to SQLite before it initializes
// (SQLITE_CONFIG_PAGECACHE) keeps each page at its own size: a 200k replay
// peaked at 71 MB instead of 87 MB, at the same rate.
//
// The setting is SQLite's and so the process's, which is why it lives in
// package state: SQLite reads it once, when the first connection
// initializes the library. SQLite links every slot of the pool into a free
// list at that moment, so the pool is resident from then on; only a writable
// open, whose command fills a cache, reserves it. Pages that do not fit
// (a larger page size, or more connections' caches than the pool holds)
// come from malloc as before.
var pool struct {
	once  sync.Once
	slots int // 0 when the pool could not be set up
}

// reservePageCache sets up the pool, once per process. It is a memory
// layout only: when SQLite was already initialized (a read-only open came
// first) or the memory is not there, SQLite allocates pages as it would
// without it.
func reservePageCache() {
	pool.once.Do(func() {
		tls := libc.NewTLS()
		defer tls.Close()
		args := libc.Xmalloc(tls, 3*8)
		if args == 0 {
			return
		}
		defer libc.Xfree(tls, args)
		// The header size is SQLite's own, so ask rather than assume.
		hdr := libc.Xmalloc(tls, 8)
		if hdr == 0 {
			return
		}
		defer libc.Xfree(tls, hdr)
		if sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PCACHE_HDRSZ, libc.VaList(args, hdr)) != sqlite3.SQLITE_OK {
			return
		}
		const pageSize = 4096 // SQLite's default, and upstream's backend.db's
		slot := (pageSize + int(libc.AtomicLoadPInt32(hdr)) + 7) &^ 7
		slots := cacheKiB << 10 / pageSize
		buf := libc.Xmalloc(tls, uint64(slot*slots))
		if buf == 0 {
			return
		}
		if sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PAGECACHE, libc.VaList(args, buf, int32(slot), int32(slots))) != sqlite3.SQLITE_OK {
			libc.Xfree(tls, buf)
			return
		}
		// SQLite keeps using buf until the process ends; it is never freed.
		pool.slots = slots
	})
}
