package dial_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to make another application's table

	"github.com/kanadehq/kanade-cli/internal/store/dial"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// A --db that names another application's database, whose tables share
// kanade's names but not their columns, is refused with what to check,
// not with a missing column alone, and its rows stay as they were.
func TestMigrateRefusesAnotherApplicationsTables(t *testing.T) {
	ctx := context.Background()
	sqlitePath := filepath.Join(t.TempDir(), "other.db")
	pgDSN := testutil.PostgresDSN(t)
	for _, c := range []struct{ name, dsn, driver, raw string }{
		{"sqlite", sqlitePath, "sqlite", sqlitestore.DSN(sqlitePath, nil)},
		{"postgres", pgDSN, "pgx", pgDSN},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := sql.Open(c.driver, c.raw)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, "CREATE TABLE executions (x integer)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO executions VALUES (7)"); err != nil {
				t.Fatal(err)
			}
			st, err := dial.Open(ctx, c.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			applied, err := st.Migrate(ctx)
			if err == nil || len(applied) > 0 {
				t.Fatalf("migrate applied %v, err %v; want a refusal", applied, err)
			}
			for _, want := range []string{"migration 0001_tables", "already had executions", "check --db", "rolled back"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			var x int
			if err := db.QueryRowContext(ctx, "SELECT x FROM executions").Scan(&x); err != nil || x != 7 {
				t.Fatalf("the other application's row: %d, %v", x, err)
			}
		})
	}
}

// A '~' reaches kanade unexpanded from a config file or a quoted flag: it
// is named as the cause, not reported as a missing directory "~"; a
// directory that is really called "~" still works.
func TestTildeIsNotExpanded(t *testing.T) {
	ctx := context.Background()
	t.Chdir(t.TempDir())
	for _, readOnly := range []bool{false, true} {
		open := dial.Open
		if readOnly {
			open = dial.OpenReadOnly
		}
		if _, err := open(ctx, "~/backend.db"); err == nil || !strings.Contains(err.Error(), "does not expand '~'") {
			t.Fatalf("read-only %v: %v", readOnly, err)
		}
	}
	// A file whose name starts with '~' is only a file name.
	st, err := dial.Open(ctx, "~backend.db")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Mkdir("~", 0o755); err != nil {
		t.Fatal(err)
	}
	st, err = dial.Open(ctx, "~/backend.db")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := os.Stat(filepath.Join("~", "backend.db")); err != nil {
		t.Fatal(err)
	}
}

// A PostgreSQL --db the server refuses says which part of it to fix: the
// database's name, the user, or the host and port.
func TestPostgresConnectFailuresSayWhatToFix(t *testing.T) {
	ctx := context.Background()
	base, err := url.Parse(testutil.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	with := func(change func(u *url.URL)) string {
		u := *base
		change(&u)
		return u.String()
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	for _, c := range []struct{ name, dsn, want string }{
		{"no such database", with(func(u *url.URL) { u.Path = "/kanade_no_such_database" }), `create the database (CREATE DATABASE "kanade_no_such_database") or fix its name in --db`},
		{"no such user", with(func(u *url.URL) { u.User = url.User("kanade_no_such_user") }), "the server refused this user or password"},
		{"nothing listening", with(func(u *url.URL) { u.Host = fmt.Sprintf("127.0.0.1:%d", port) }), "is PostgreSQL running at that host and port?"},
	} {
		st, err := dial.Open(ctx, c.dsn)
		if err == nil {
			st.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q in %v", c.name, c.want, err)
		}
	}
}
