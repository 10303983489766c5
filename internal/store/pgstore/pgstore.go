// Package pgstore is the PostgreSQL store (pgx/v5): upstream's tables with
// native types, written set-based with unnest() so a batch of thousands of
// results costs a handful of statements.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kanadehq/kanade-cli/internal/secret"
	"github.com/kanadehq/kanade-cli/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is a PostgreSQL database.
type Store struct {
	pool     *pgxpool.Pool
	location string
	schema   string   // current_schema(), read once at open
	direct   copyGate // shared by this store's projection batches

	lockMu sync.Mutex
	lock   *writerLock // held by this store's writer, nil otherwise
}

// writerLock is a session advisory lock and the kanade_locks row that
// names its holder. The lock lives as long as conn's session does.
type writerLock struct {
	conn     *pgxpool.Conn
	key      int64
	holder   string
	acquired time.Time // the row's acquired_at: which row is this holder's
}

var _ store.Store = (*Store)(nil)

// Open connects and checks the server answers. The standard PG* variables
// fill in whatever the DSN leaves out (pgx reads them).
func Open(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, false) }

// OpenReadOnly connects with every transaction read-only, so the server
// itself refuses any write a reading command might attempt.
func OpenReadOnly(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, true) }

func open(ctx context.Context, dsn string, readOnly bool) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse PostgreSQL DSN %s: %s", secret.URL(dsn), secret.Scrub(err.Error(), dsn))
	}
	if readOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if cfg.MaxConns < 4 {
		cfg.MaxConns = 4
	}
	loc := fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if sp, ok := cfg.ConnConfig.RuntimeParams["search_path"]; ok {
		loc += "?search_path=" + sp
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", loc, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The ping reads the session's current schema, which the advisory
	// locks are scoped to (lockKey); a DSN's search_path fixes it for every
	// connection. It is NULL when search_path names no schema that exists,
	// where no table can be read or created: said here, by its cause.
	var schema *string
	if err := pool.QueryRow(pctx, "SELECT current_schema()").Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %s (%s)", loc, secret.Scrub(err.Error(), dsn, cfg.ConnConfig.Password), connectHint(err, cfg.ConnConfig.Database))
	}
	if schema == nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: search_path names no schema that exists in database %s: create it (CREATE SCHEMA) or fix search_path in --db", loc, cfg.ConnConfig.Database)
	}
	return &Store{pool: pool, location: loc, schema: *schema}, nil
}

// connectHint says what to check when the server could not be reached or
// refused the connection, by what it answered: pgx's message names the
// failure, not the part of --db to fix.
func connectHint(err error, database string) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return "is PostgreSQL running at that host and port?"
	}
	switch pgErr.Code {
	case "3D000": // invalid_catalog_name
		return fmt.Sprintf("create the database (CREATE DATABASE %s) or fix its name in --db", pgx.Identifier{database}.Sanitize())
	case "28000", "28P01": // invalid_authorization_specification, invalid_password
		return "the server refused this user or password: check them in --db, PGPASSWORD or ~/.pgpass"
	}
	return "are the host, user and database in --db right?"
}

func (s *Store) Kind() store.Kind    { return store.Postgres }
func (s *Store) Location() string    { return s.location }
func (s *Store) Upstream() bool      { return false }
func (s *Store) Close()              { s.pool.Close() }
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Migrate applies the embedded migrations not yet recorded, each in its
// own transaction, under an advisory lock so two processes cannot race.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	migs, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	key := s.lockKey("migrate")
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS kanade_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: create kanade_schema_migrations: %w", err)
	}
	current, err := s.schemaVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	var found []string
	if current == 0 {
		rows, err := conn.Query(ctx, "SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL", store.SchemaTables())
		if err != nil {
			return nil, fmt.Errorf("migrate: look for existing tables: %w", err)
		}
		if found, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, fmt.Errorf("migrate: look for existing tables: %w", err)
		}
	}
	var applied []string
	for _, m := range migs {
		if m.Version <= current {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO kanade_schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, store.MigrationFailed(s.location, m, found, err)
		}
		applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	return applied, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM kanade_schema_migrations").Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// lockKey scopes advisory locks to the current schema, so databases that
// hold several schemas (tests, staging copies) do not block each other.
func (s *Store) lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("kanade:" + name + ":" + s.schema))
	return int64(h.Sum64())
}

// Status reports the schema version, tables and row counts.
func (s *Store) Status(ctx context.Context) (*store.Status, error) {
	migs, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	st := &store.Status{Kind: store.Postgres, Location: s.location, LatestVersion: len(migs)}
	if st.SchemaVersion, err = s.schemaVersion(ctx, s.pool); err != nil {
		return nil, err
	}
	for _, name := range slices.Concat(store.ProjectedTables, store.AppendOnlyTables, store.BookkeepingTables) {
		ts := store.TableStatus{Name: name}
		var reg *string
		if err := s.pool.QueryRow(ctx, "SELECT to_regclass($1)::text", name).Scan(&reg); err != nil {
			return nil, fmt.Errorf("status of %s: %w", name, err)
		}
		if reg != nil {
			ts.Exists = true
			if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{name}.Sanitize()).Scan(&ts.Rows); err != nil {
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

// Lock takes a session advisory lock on a dedicated connection (released
// by PostgreSQL if the process dies) and records the holder in
// kanade_locks so a second writer can say who is in the way.
func (s *Store) Lock(ctx context.Context, holder string) (func(), error) {
	if err := s.requireSchema(ctx); err != nil {
		return nil, err
	}
	key := s.lockKey("writer")
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("take writer lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take writer lock: %w", err)
	}
	if !ok {
		conn.Release()
		var li store.LockInfo
		err := s.pool.QueryRow(ctx, "SELECT holder, pid, host, acquired_at FROM kanade_locks WHERE name = 'writer'").
			Scan(&li.Holder, &li.PID, &li.Host, &li.AcquiredAt)
		if err != nil {
			return nil, fmt.Errorf("%w (holder unknown)", store.ErrLocked)
		}
		return nil, fmt.Errorf("%w: %q, pid %d on %s, since %s", store.ErrLocked, li.Holder, li.PID, li.Host, li.AcquiredAt.UTC().Format(time.RFC3339))
	}
	l := &writerLock{conn: conn, key: key, holder: holder}
	if err := l.record(ctx); err != nil {
		conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key) //nolint:errcheck
		conn.Release()
		return nil, err
	}
	s.lockMu.Lock()
	s.lock = l
	s.lockMu.Unlock()
	return func() {
		s.lockMu.Lock()
		defer s.lockMu.Unlock()
		s.lock = nil
		bg := context.WithoutCancel(ctx)
		// Only this holder's row: another writer that took the lock after
		// this one lost it has a row of its own.
		host, _ := os.Hostname()
		const own = "DELETE FROM kanade_locks WHERE name = 'writer' AND pid = $1 AND host = $2 AND acquired_at = $3"
		if l.conn == nil { // lost, and not taken back
			s.pool.Exec(bg, own, os.Getpid(), host, l.acquired) //nolint:errcheck
			return
		}
		l.conn.Exec(bg, own, os.Getpid(), host, l.acquired)     //nolint:errcheck
		l.conn.Exec(bg, "SELECT pg_advisory_unlock($1)", l.key) //nolint:errcheck
		l.conn.Release()
	}, nil
}

// record writes the kanade_locks row naming this holder.
func (l *writerLock) record(ctx context.Context) error {
	host, _ := os.Hostname()
	err := l.conn.QueryRow(ctx, `INSERT INTO kanade_locks (name, holder, pid, host, acquired_at) VALUES ('writer', $1, $2, $3, now())
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host, acquired_at = excluded.acquired_at
		RETURNING acquired_at`, l.holder, os.Getpid(), host).Scan(&l.acquired)
	if err != nil {
		return fmt.Errorf("record writer lock holder: %w", err)
	}
	return nil
}

// lockPingTimeout bounds checkLock's ping of the lock's session: a server
// that does not answer in this long is treated as one that dropped it.
const lockPingTimeout = 10 * time.Second

// checkLock makes sure this store's writer still holds its lock before a
// batch writes. The advisory lock lives in one session: when the server
// restarts or drops it, the lock is gone and another writer may take it.
// Then the lock is taken again on a new session, or the write stops.
func (s *Store) checkLock(ctx context.Context) error {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	l := s.lock
	if l == nil {
		return nil
	}
	// Not the caller's context: pgx closes a connection whose query a
	// cancelled context cuts short, and this one holds the lock. A replay
	// interrupted while a batch pinged here ended the lock's session; its
	// release then failed on the closed connection, and the next writer of
	// the same process could find the lock still held until the server
	// noticed (TestReplayInterruptedThenResumed, once in a loaded run).
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockPingTimeout)
	defer cancel()
	if l.conn != nil && l.conn.Ping(pctx) == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		// The run is over: the batch fails with its cancellation, and the
		// release ends what is left of the session.
		return err
	}
	if l.conn != nil {
		// Its session is gone, and the lock with it. Closed rather than
		// given back to the pool: a session that was alive after all would
		// keep the lock in an idle connection, and every later writer,
		// this store's too, would find it taken.
		l.conn.Hijack().Close(context.WithoutCancel(ctx)) //nolint:errcheck
		l.conn = nil
	}
	// The database being unreachable (restarting) is not final: the batch
	// fails, its retry comes back here, and takes the lock when it can.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("the writer lock went with its database session; taking it again: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&ok); err != nil {
		conn.Release()
		return fmt.Errorf("the writer lock went with its database session; taking it again: %w", err)
	}
	if !ok {
		conn.Release()
		var li store.LockInfo
		who := "another writer"
		if s.pool.QueryRow(ctx, "SELECT holder, pid, host FROM kanade_locks WHERE name = 'writer'").Scan(&li.Holder, &li.PID, &li.Host) == nil {
			who = fmt.Sprintf("%q (pid %d on %s)", li.Holder, li.PID, li.Host)
		}
		return fmt.Errorf("%w with its database session (a restart or a dropped connection), and %s took it since: stopping so two writers do not write at once; everything before this batch is committed", store.ErrLockLost, who)
	}
	l.conn = conn
	return l.record(ctx)
}

func (s *Store) requireSchema(ctx context.Context) error {
	v, err := s.schemaVersion(ctx, s.pool)
	if err != nil {
		return err
	}
	if v == 0 {
		return fmt.Errorf("%w at %s: run `kanade db migrate` first", store.ErrNotMigrated, s.location)
	}
	return nil
}

// AlwaysTryDirectCopy makes every projection batch try COPY straight into
// execution_results first, whatever earlier batches met, so a test can
// drive the fallback on every batch that meets an existing id.
func (s *Store) AlwaysTryDirectCopy(on bool) {
	s.direct.mu.Lock()
	s.direct.always = on
	s.direct.mu.Unlock()
}

// OverlapsBatches: each projection transaction has a pool connection, and
// so a server process, of its own.
func (s *Store) OverlapsBatches() bool { return true }

// Project runs fn in a READ COMMITTED transaction; the row locks taken by
// LoadResultStates and the conditional upserts keep it correct beside
// upstream's own projector.
func (s *Store) Project(ctx context.Context, rollback bool, fn func(store.ProjectionTx) error) error {
	return s.project(ctx, rollback, false, fn)
}

// project runs a projection batch against the live tables, or the
// shadow tables of a rebuild.
func (s *Store) project(ctx context.Context, rollback, shadow bool, fn func(store.ProjectionTx) error) error {
	// A batch waits for its WAL flush (synchronous_commit on, whatever the
	// server's default). With it off, a server crash lost the last batches
	// the replay had seen committed, with their checkpoints; but the
	// replay, which outlives the server, went on after them, so they were
	// missing until a full replay, and the history rows that one then wrote
	// came in another order and against other facts (the chaos suite's
	// PostgreSQL restarts, which failed with it off). It costs nothing
	// measurable at 5,000 messages a batch (docs/performance.md).
	settings := "SET LOCAL synchronous_commit = on"
	direct := s.direct.allow()
	if direct {
		settings += "; SAVEPOINT " + directSavepoint
	}
	return s.batchTx(ctx, rollback, "projection", settings, func(t *projTx) error {
		t.gate, t.direct = &s.direct, direct
		if shadow {
			t.tx = shadowTx{t.tx}
		}
		return fn(t)
	})
}

// batchTx runs fn in one transaction after the session settings, rolled
// back instead of committed when rollback is set (dry runs).
func (s *Store) batchTx(ctx context.Context, rollback bool, what, settings string, fn func(*projTx) error) error {
	if !rollback {
		if err := s.checkLock(ctx); err != nil {
			return err
		}
	}
	// One round trip: a batch waits for each of its own, and under a busy
	// decoder each can cost more than the statement.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; " + settings})
	if err != nil {
		return fmt.Errorf("begin %s transaction: %w", what, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if err := fn(&projTx{tx: tx}); err != nil {
		return err
	}
	if rollback {
		return tx.Rollback(ctx)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit %s transaction: %w", what, err)
	}
	return nil
}

func (s *Store) LoadCheckpoint(ctx context.Context, name string) (*store.Checkpoint, error) {
	cp := store.Checkpoint{Name: name}
	var seq int64
	err := s.pool.QueryRow(ctx, "SELECT stream, stream_created, last_seq, updated_at FROM kanade_checkpoints WHERE name = $1", name).
		Scan(&cp.Stream, &cp.StreamCreated, &seq, &cp.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	cp.LastSeq = uint64(seq)
	return &cp, nil
}

func (s *Store) QuarantinedAt(ctx context.Context, stream string, seqs []uint64) (map[uint64]time.Time, error) {
	out := map[uint64]time.Time{}
	if len(seqs) == 0 {
		return out, nil
	}
	if ok, err := s.tableExists(ctx, "kanade_quarantine"); err != nil || !ok {
		return out, err
	}
	ints := make([]int64, len(seqs))
	for i, q := range seqs {
		ints[i] = int64(q)
	}
	rows, err := s.pool.Query(ctx, "SELECT seq, quarantined_at FROM kanade_quarantine WHERE stream = $1 AND seq = ANY($2)", stream, ints)
	if err != nil {
		return nil, fmt.Errorf("read kanade_quarantine: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var at time.Time
		if err := rows.Scan(&seq, &at); err != nil {
			return nil, fmt.Errorf("read kanade_quarantine: %w", err)
		}
		out[uint64(seq)] = at
	}
	return out, rows.Err()
}

func (s *Store) ListQuarantine(ctx context.Context, stream string, limit int) ([]store.QuarantineEntry, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.pool.Query(ctx, `SELECT stream, seq, subject, published_at, error, payload, quarantined_at
		FROM kanade_quarantine WHERE stream = $1 ORDER BY seq LIMIT $2`, stream, limit)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.QuarantineEntry, error) {
		var q store.QuarantineEntry
		var seq int64
		err := r.Scan(&q.Stream, &seq, &q.Subject, &q.PublishedAt, &q.Error, &q.Payload, &q.QuarantinedAt)
		q.Seq = uint64(seq)
		return q, err
	})
}

func (s *Store) Ready(ctx context.Context) error {
	var ok bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass('execution_results') IS NOT NULL").Scan(&ok); err != nil {
		return fmt.Errorf("check tables: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w at %s (no execution_results table): run `kanade db migrate`, or point --db at the right database", store.ErrNotMigrated, s.location)
	}
	return nil
}
