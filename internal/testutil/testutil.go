// Package testutil gives tests real services: a fresh PostgreSQL schema per
// test, a temporary SQLite file, and an embedded NATS server with JetStream.
package testutil

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/dial"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
)

// DefaultPostgresURL is the local server .ci/run starts.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL is the server tests use: KANADE_TEST_DATABASE_URL or the
// local default.
func PostgresURL() string {
	if u := os.Getenv("KANADE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// PostgresDSN creates a fresh schema, dropped when the test ends, and
// returns a DSN whose search_path points at it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base := PostgresURL()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s is required for this test (set KANADE_TEST_DATABASE_URL): %v", base, err)
	}
	schema := fmt.Sprintf("kt_%d_%08x", time.Now().UnixNano()%1e9, rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") //nolint:errcheck
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresStore opens a migrated store in a fresh schema.
func PostgresStore(t testing.TB) *pgstore.Store {
	return migrated(t, func(ctx context.Context) (*pgstore.Store, error) { return pgstore.Open(ctx, PostgresDSN(t)) })
}

// SQLitePath is a fresh database path in the test's temp dir.
func SQLitePath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "kanade.db")
}

// SQLiteStore opens a migrated store in a temporary file.
func SQLiteStore(t testing.TB) *sqlitestore.Store {
	return migrated(t, func(ctx context.Context) (*sqlitestore.Store, error) { return sqlitestore.Open(ctx, SQLitePath(t)) })
}

func migrated[S store.Store](t testing.TB, open func(context.Context) (S, error)) S {
	t.Helper()
	st, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// Store is a store with the fixtures tests lay databases out with.
type Store interface {
	store.Store
	store.Fixtures
}

// Dial opens dsn as dial.Open does, with the fixtures.
func Dial(ctx context.Context, dsn string) (Store, error) {
	st, err := dial.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	fx, ok := st.(Store)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("the %s store has no fixtures", st.Kind())
	}
	return fx, nil
}

// EachStore runs fn once per store kind, as subtests.
func EachStore(t *testing.T, fn func(t *testing.T, st Store)) {
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresStore(t)) })
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteStore(t)) })
}

// NATSServer starts an in-process NATS server with JetStream on a random
// loopback port, storing in a temp dir, and returns its URL.
func NATSServer(t testing.TB) string {
	t.Helper()
	srv, err := natsconn.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// Another opens a second fresh store of the same kind as st, for tests
// that compare two runs.
func Another(t *testing.T, st store.Store) Store {
	if st.Kind() == store.Postgres {
		return PostgresStore(t)
	}
	return SQLiteStore(t)
}

// TableRows returns every row of table as text (columns separated by
// " | ", NULL as "NULL", numbers as the engine returns them), sorted, or
// nil when there is no such table: for tests of tables the store creates
// at run time (explode tables).
func TableRows(t testing.TB, st store.Store, table string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	render := func(vals []any) string {
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = string(v)
			case time.Time:
				parts[i] = v.UTC().Format(time.RFC3339Nano)
			case string:
				parts[i] = strconv.Quote(v)
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		return strings.Join(parts, " | ")
	}
	switch s := st.(type) {
	case *pgstore.Store:
		var ok bool
		if err := s.Pool().QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil || !ok {
			return nil
		}
		rows, err := s.Pool().Query(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, render(vals))
		}
	case *sqlitestore.Store:
		rows, err := s.DB().QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			return nil
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, render(vals))
		}
	}
	sort.Strings(out)
	return out
}

// JetStream connects to a new in-process NATS server (NATSServer) and
// returns its JetStream; both end with the test. opts configure the
// connection (an error handler, say).
func JetStream(t testing.TB, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	return JetStreamAt(t, NATSServer(t), opts...)
}

// JetStreamAt connects to the NATS server at url, closing the connection
// when the test ends.
func JetStreamAt(t testing.TB, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
