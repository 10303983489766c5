// Package sqlitestore is the embedded SQLite store (modernc.org/sqlite, no
// cgo) in upstream's own layout: TEXT timestamps in chrono's "+00:00" form
// and INTEGER flags, so it reads and writes a real upstream backend.db.
package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// backfillTablesSQL is the migration that creates the backfill's tables;
// a dry run on a file without them makes TEMP copies from it.
//
//go:embed migrations/0003_backfill.sql
var backfillTablesSQL string

// Store is an SQLite database file.
type Store struct {
	db       *sql.DB
	path     string
	upstream bool
	// cols is the set of execution_results columns present: old upstream
	// files lack the later optional ones, and this store adapts rather
	// than alter upstream's tables.
	cols map[string]bool
	// derived is the set of derived tables present (an older upstream file
	// lacks the later ones, and its backend never wrote them), with
	// "check_status.label" when that later column is there.
	derived map[string]bool
	// ckpt takes batch transactions' checkpoints off the writer; nil
	// unless the file is in WAL mode and open for writing.
	ckpt *checkpointer
	// writer is the one connection batch transactions run on when ckpt is
	// set, kept for the store's life, so that what PRAGMA data_version
	// reports on it covers every other connection's commits (Generation);
	// writerSeq counts the transactions begun on it.
	writerMu  sync.Mutex
	writer    *sql.Conn
	writerSeq int64
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string) (*Store, error) { return open(ctx, path, false) }

// OpenReadOnly opens an existing file for reading only: nothing is created
// or written (not even the journal mode), so it works on a file the user
// may only read and never changes one it may write.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) { return open(ctx, path, true) }

// DSN names the database file at path, with the driver's and SQLite's
// parameters q, for sql.Open("sqlite", ...). The driver hands SQLite a URI,
// in which '?' starts the parameters, '#' a fragment and '%' an escape, so
// a path holding one of them named another file: --db 'fleet#2/backend.db'
// opened, or created, "fleet". Those are escaped, and a path that starts
// with "//" gets an empty authority, which SQLite would otherwise read
// from it.
func DSN(path string, q url.Values) string {
	p := uriPathEscaper.Replace(path)
	if strings.HasPrefix(p, "//") {
		p = "//" + p
	}
	if len(q) == 0 {
		return "file:" + p
	}
	return "file:" + p + "?" + q.Encode()
}

var uriPathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func open(ctx context.Context, path string, readOnly bool) (*Store, error) {
	if strings.IndexByte(path, 0) >= 0 {
		// SQLite would read the name only up to it: another file.
		return nil, fmt.Errorf("SQLite database path %q holds a NUL byte; check --db (or db in the config file)", path)
	}
	fi, statErr := os.Stat(path)
	if statErr == nil && fi.IsDir() {
		// SQLite says only "unable to open database file" or "disk I/O error".
		return nil, fmt.Errorf("--db %s is a directory: give the database file in it, such as %s", path, filepath.Join(path, "backend.db"))
	}
	isNew := errors.Is(statErr, os.ErrNotExist)
	if isNew && readOnly {
		return nil, fmt.Errorf("no SQLite database at %s (check --db; `kanade db migrate` creates one): %w", path, store.ErrNoDatabase)
	}
	if !readOnly {
		reservePageCache()
	}
	q := url.Values{}
	if readOnly {
		q.Set("mode", "ro")
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(0)")
	// A setting of this connection only, safe beside a running upstream
	// backend (docs/performance.md measures it): a 14 MiB page cache,
	// against SQLite's 2 MiB, holds a 5,000-row batch's pages so they are
	// not spilled to the WAL mid-transaction (a writer's pages come from
	// the pool in pagecache.go; 16 MiB was no faster and 2 MB larger).
	// Temporary files stay files: in memory they would hold an audit's
	// sorts of a large table.
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
	q.Set("_txlock", "immediate") // writers queue at BEGIN instead of failing at COMMIT
	db, err := sql.Open("sqlite", DSN(path, q))
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &Store{db: db, path: path}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w (check --db: it must name an SQLite file, or a new one)", path, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("open SQLite database %s: not a readable SQLite file: %w", path, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'").Scan(&n); err != nil {
		db.Close()
		return nil, err
	}
	s.upstream = n > 0
	if !readOnly && (isNew || n == 0) {
		// Only a database this tool owns gets WAL switched on: the journal
		// mode is stored in the file, and upstream's is upstream's choice.
		if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
			db.Close()
			return nil, fmt.Errorf("enable WAL on %s: %w", path, err)
		}
	}
	if !readOnly {
		// In WAL mode synchronous=NORMAL cannot corrupt the file; a power
		// cut may lose the last commits, which a replay or backfill redoes
		// from its checkpoint, committed with them. In any other journal
		// mode NORMAL is not crash-safe, so the file keeps SQLite's FULL.
		var mode string
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			db.Close()
			return nil, fmt.Errorf("read the journal mode of %s: %w", path, err)
		}
		if strings.EqualFold(mode, "wal") {
			db.Close()
			q.Add("_pragma", "synchronous(NORMAL)")
			if db, err = sql.Open("sqlite", DSN(path, q)); err != nil {
				return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
			}
			db.SetMaxOpenConns(4)
			s.db = db
			s.ckpt = newCheckpointer(db)
		}
	}
	if err := s.loadColumns(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) loadColumns(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "SELECT name FROM pragma_table_info('execution_results')")
	if err != nil {
		return fmt.Errorf("read execution_results columns: %w", err)
	}
	defer rows.Close()
	s.cols = map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		s.cols[name] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('inventory_history', 'check_status', 'feeds', 'feed_meta')
		UNION ALL SELECT 'check_status.' || name FROM pragma_table_info('check_status') WHERE name = 'label'`)
	if err != nil {
		return fmt.Errorf("read the derived tables: %w", err)
	}
	defer rows.Close()
	s.derived = map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		s.derived[name] = true
	}
	return rows.Err()
}

func (s *Store) Kind() store.Kind { return store.SQLite }
func (s *Store) Location() string { return s.path }
func (s *Store) Upstream() bool   { return s.upstream }

// Close waits for a running checkpoint, then closes the database.
func (s *Store) Close() {
	if s.ckpt != nil {
		s.ckpt.close()
	}
	s.writerMu.Lock()
	s.dropWriter()
	s.writerMu.Unlock()
	s.db.Close()
}

// DB exposes the handle for tests that must lay out a file by hand.
func (s *Store) DB() *sql.DB { return s.db }

// Migrate applies the embedded migrations. In an upstream database the
// table migration is recorded but not run: its tables are upstream's.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	migs, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS kanade_schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: create kanade_schema_migrations: %w", err)
	}
	current, err := s.schemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	var found []string // upstream's own tables are expected in its file
	if current == 0 && !s.upstream {
		if found, _, err = s.tables(ctx, store.SchemaTables()); err != nil {
			return nil, err
		}
	}
	var applied []string
	for _, m := range migs {
		if m.Version <= current {
			continue
		}
		name := m.Name
		skip := s.upstream && m.UpstreamTables
		if skip {
			_, missing, err := s.tables(ctx, store.CoreTables)
			if err != nil {
				return applied, err
			}
			if len(missing) > 0 {
				return applied, fmt.Errorf("upstream database %s lacks table(s) %s: it is too old or damaged; let upstream's backend migrate it first", s.path, strings.Join(missing, ", "))
			}
			name += " (upstream's tables, left as they are)"
		}
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if !skip {
				if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO kanade_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.Version, name, wire.FormatSQLiteTimestamp(time.Now()))
			return err
		})
		if err != nil {
			return applied, store.MigrationFailed(s.path, m, found, err)
		}
		applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, name))
	}
	return applied, s.loadColumns(ctx)
}

// tables splits names into the tables the file has and those it lacks.
func (s *Store) tables(ctx context.Context, names []string) (have, missing []string, err error) {
	for _, t := range names {
		ok, err := s.tableExists(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			have = append(have, t)
		} else {
			missing = append(missing, t)
		}
	}
	return have, missing, nil
}

func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name).Scan(&n); err != nil {
		return false, fmt.Errorf("look for table %s in %s: %w", name, s.path, err)
	}
	return n > 0, nil
}

func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	if ok, err := s.tableExists(ctx, "kanade_schema_migrations"); err != nil || !ok {
		return 0, err
	}
	var v int
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM kanade_schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	err := func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	}()
	return interrupted(ctx, err)
}

// interrupted reports a transaction's failure as the interruption when
// its context ended: database/sql rolls the transaction back then, and
// the next statement fails with "transaction has already been committed
// or rolled back", which hides what happened.
func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func (s *Store) Status(ctx context.Context) (*store.Status, error) {
	migs, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	st := &store.Status{Kind: store.SQLite, Location: s.path, Upstream: s.upstream, LatestVersion: len(migs)}
	if st.SchemaVersion, err = s.schemaVersion(ctx); err != nil {
		return nil, err
	}
	for _, name := range slices.Concat(store.ProjectedTables, store.AppendOnlyTables, store.BookkeepingTables) {
		ts := store.TableStatus{Name: name}
		if ts.Exists, err = s.tableExists(ctx, name); err != nil {
			return nil, err
		}
		if ts.Exists {
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM "`+name+`"`).Scan(&ts.Rows); err != nil {
				return nil, fmt.Errorf("count %s: %w", name, err)
			}
		}
		st.Tables = append(st.Tables, ts)
	}
	if st.OldTables, err = s.OldTables(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

func (s *Store) requireSchema(ctx context.Context) error {
	v, err := s.schemaVersion(ctx)
	if err != nil {
		return err
	}
	if v == 0 {
		return fmt.Errorf("%w in %s: run `kanade db migrate` first", store.ErrNotMigrated, s.path)
	}
	return nil
}

// Lock records the holder in kanade_locks. SQLite has no session locks,
// so a row left by a crashed process on this host is taken over once its
// pid is gone; one from another host must be cleared by hand.
func (s *Store) Lock(ctx context.Context, holder string) (func(), error) {
	if err := s.requireSchema(ctx); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	pid := os.Getpid()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var li store.LockInfo
		var at string
		err := tx.QueryRowContext(ctx, "SELECT holder, pid, host, acquired_at FROM kanade_locks WHERE name = 'writer'").Scan(&li.Holder, &li.PID, &li.Host, &at)
		if err == nil {
			if li.Host != host || processAlive(li.PID) {
				return fmt.Errorf("%w: %q, pid %d on %s, since %s (if that process is gone, delete the row: DELETE FROM kanade_locks WHERE name = 'writer')",
					store.ErrLocked, li.Holder, li.PID, li.Host, at)
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO kanade_locks (name, holder, pid, host, acquired_at) VALUES ('writer', ?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host, acquired_at = excluded.acquired_at`,
			holder, pid, host, wire.FormatSQLiteTimestamp(time.Now()))
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, err
		}
		return nil, fmt.Errorf("take writer lock: %w", err)
	}
	return func() {
		s.db.ExecContext(context.WithoutCancel(ctx), "DELETE FROM kanade_locks WHERE name = 'writer' AND pid = ? AND host = ?", pid, host) //nolint:errcheck
	}, nil
}

func (s *Store) Project(ctx context.Context, rollback bool, fn func(store.ProjectionTx) error) error {
	return s.batchTx(ctx, rollback, "projection", func(t *projTx) error { return fn(t) })
}

// dropWriter closes the writer connection rather than giving it back to
// the pool, where it would keep its checkpoints off. Callers hold writerMu.
func (s *Store) dropWriter() {
	if s.writer == nil {
		return
	}
	s.writer.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // the error is the point
	s.writer.Close()
	s.writer = nil
}

// batchTx runs fn in one IMMEDIATE transaction (the DSN's _txlock), rolled
// back instead of committed when rollback is set (dry runs).
func (s *Store) batchTx(ctx context.Context, rollback bool, what string, fn func(*projTx) error) error {
	run := func(begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), writer *sql.Conn, seq int64) error {
		tx, err := begin(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin %s transaction: %w", what, err)
		}
		defer tx.Rollback() //nolint:errcheck
		if err := fn(&projTx{tx: tx, s: s, writer: writer, seq: seq}); err != nil {
			return err
		}
		if rollback {
			return tx.Rollback()
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %s transaction: %w", what, err)
		}
		return nil
	}
	if s.ckpt == nil {
		return interrupted(ctx, run(s.db.BeginTx, nil, 0))
	}
	s.writerMu.Lock()
	defer s.writerMu.Unlock()
	if s.writer == nil {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return interrupted(ctx, fmt.Errorf("begin %s transaction: %w", what, err))
		}
		if _, err := conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
			conn.Close()
			return interrupted(ctx, fmt.Errorf("hand the checkpoint to the checkpointer: %w", err))
		}
		s.writer = conn
	}
	s.writerSeq++
	err := run(s.writer.BeginTx, s.writer, s.writerSeq)
	if err != nil {
		// The connection may be in any state (interrupted, say): the next
		// batch gets a new one.
		s.dropWriter()
	} else if !rollback {
		s.ckpt.committed(ctx)
	}
	return interrupted(ctx, err)
}

func (s *Store) LoadCheckpoint(ctx context.Context, name string) (*store.Checkpoint, error) {
	if ok, err := s.tableExists(ctx, "kanade_checkpoints"); err != nil || !ok {
		return nil, err
	}
	cp := store.Checkpoint{Name: name}
	var created, updated string
	var seq int64
	err := s.db.QueryRowContext(ctx, "SELECT stream, stream_created, last_seq, updated_at FROM kanade_checkpoints WHERE name = ?", name).
		Scan(&cp.Stream, &created, &seq, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	cp.LastSeq = uint64(seq)
	if cp.StreamCreated, err = wire.ParseTimestamp(created); err != nil {
		return nil, fmt.Errorf("checkpoint %s: stream_created: %w", name, err)
	}
	if cp.UpdatedAt, err = storedTime("kanade_checkpoints", name, "updated_at", updated); err != nil {
		return nil, err
	}
	return &cp, nil
}

// storedTime reads a timestamp column of one row; a value that is not one
// is an error naming the row, never a zero time.
func storedTime(table, row, column, text string) (time.Time, error) {
	t, err := wire.ParseTimestamp(text)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s row %s: column %s: %w", table, row, column, err)
	}
	return t, nil
}

func (s *Store) QuarantinedAt(ctx context.Context, stream string, seqs []uint64) (map[uint64]time.Time, error) {
	out := map[uint64]time.Time{}
	if len(seqs) == 0 {
		return out, nil
	}
	if ok, err := s.tableExists(ctx, "kanade_quarantine"); err != nil || !ok {
		return out, err
	}
	// In chunks: SQLite bounds a statement's parameters.
	for chunk := range slices.Chunk(seqs, 500) {
		args := []any{stream}
		for _, q := range chunk {
			args = append(args, int64(q))
		}
		rows, err := s.db.QueryContext(ctx, "SELECT seq, quarantined_at FROM kanade_quarantine WHERE stream = ? AND seq IN ("+placeholders(len(chunk))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("read kanade_quarantine in %s: %w", s.path, err)
		}
		for rows.Next() {
			var seq int64
			var at string
			if err := rows.Scan(&seq, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read kanade_quarantine in %s: %w", s.path, err)
			}
			t, err := storedTime("kanade_quarantine", fmt.Sprintf("%s/%d", stream, seq), "quarantined_at", at)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[uint64(seq)] = t
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read kanade_quarantine in %s: %w", s.path, err)
		}
	}
	return out, nil
}

func (s *Store) ListQuarantine(ctx context.Context, stream string, limit int) ([]store.QuarantineEntry, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.db.QueryContext(ctx, `SELECT stream, seq, subject, published_at, error, payload, quarantined_at
		FROM kanade_quarantine WHERE stream = ? ORDER BY seq LIMIT ?`, stream, limit)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	defer rows.Close()
	var out []store.QuarantineEntry
	for rows.Next() {
		var q store.QuarantineEntry
		var seq int64
		var pub, at string
		if err := rows.Scan(&q.Stream, &seq, &q.Subject, &pub, &q.Error, &q.Payload, &at); err != nil {
			return nil, err
		}
		q.Seq = uint64(seq)
		row := fmt.Sprintf("%s/%d", q.Stream, seq)
		var err error
		if q.PublishedAt, err = storedTime("kanade_quarantine", row, "published_at", pub); err != nil {
			return nil, err
		}
		if q.QuarantinedAt, err = storedTime("kanade_quarantine", row, "quarantined_at", at); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

func (s *Store) Ready(ctx context.Context) error {
	ok, err := s.tableExists(ctx, "execution_results")
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w in %s (no execution_results table): run `kanade db migrate`, or point --db at the right file", store.ErrNotMigrated, s.path)
	}
	return nil
}

// hasColumn reports whether execution_results has the column (old
// upstream files lack the later optional ones).
func (s *Store) hasColumn(name string) bool { return s.cols[name] }
