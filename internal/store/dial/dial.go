// Package dial turns a --db value into an open store: postgres:// and
// postgresql:// URLs (and key=value DSNs) go to PostgreSQL, sqlite:// URLs
// and plain paths to SQLite.
package dial

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/kanadehq/kanade-cli/internal/secret"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
)

// Target is a parsed --db value.
type Target struct {
	Kind store.Kind
	DSN  string // for PostgreSQL the DSN, for SQLite the file path
}

// Parse classifies dsn without connecting. An empty dsn is an error: the
// caller resolves the default first.
func Parse(dsn string) (Target, error) {
	switch {
	case dsn == "":
		return Target{}, fmt.Errorf("--db is empty: give a postgres:// URL or an SQLite file path")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if err := secret.CheckUserinfo("--db", dsn); err != nil {
			return Target{}, err
		}
		if _, err := url.Parse(dsn); err != nil {
			return Target{}, fmt.Errorf("--db %s is not a valid URL: %s", secret.URL(dsn), secret.Scrub(err.Error(), dsn))
		}
		return Target{Kind: store.Postgres, DSN: dsn}, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		path, err := sqlitePath(dsn)
		if err != nil {
			return Target{}, err
		}
		return Target{Kind: store.SQLite, DSN: path}, nil
	case strings.Contains(dsn, "://"):
		scheme := dsn[:strings.Index(dsn, "://")]
		return Target{}, fmt.Errorf("--db scheme %q is not supported: use postgres://, postgresql://, sqlite:// or a file path", scheme)
	case strings.Contains(dsn, "=") && (strings.Contains(dsn, "host=") || strings.Contains(dsn, "dbname=") || strings.Contains(dsn, "user=")):
		return Target{Kind: store.Postgres, DSN: dsn}, nil
	default:
		return Target{Kind: store.SQLite, DSN: dsn}, nil
	}
}

// sqlitePath is the file a sqlite: URL names, read as sqlx (upstream's
// SQLite layer) reads one: sqlite://relative/path or sqlite:///absolute,
// percent-encoded, with options after a '?'. Those options are refused
// rather than taken as part of the file name: "sqlite://backend.db?mode=rwc",
// the form sqlx's own examples use, once opened and created a new file
// named "backend.db?mode=rwc" beside upstream's. A plain path needs none
// of this and is taken as it is.
func sqlitePath(dsn string) (string, error) {
	raw := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
	raw, query, hasQuery := strings.Cut(raw, "?")
	if hasQuery {
		return "", fmt.Errorf("--db %s: kanade takes no SQLite URL options (%s), it sets its own: give sqlite://%s or the file's plain path", dsn, query, raw)
	}
	path, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("--db %s is not a valid sqlite: URL (%v): write a '%%' in a file name as %%25, or give the file's plain path", dsn, err)
	}
	if path == "" {
		return "", fmt.Errorf("--db %s needs a path, e.g. sqlite:///var/lib/kanade/backend.db", dsn)
	}
	return path, nil
}

// Open connects to the database dsn names, creating an SQLite file that
// does not exist yet.
func Open(ctx context.Context, dsn string) (store.Store, error) { return open(ctx, dsn, false) }

// OpenReadOnly connects for reading only: it creates nothing, and neither
// the connection nor the file can be written through it.
func OpenReadOnly(ctx context.Context, dsn string) (store.Store, error) { return open(ctx, dsn, true) }

func open(ctx context.Context, dsn string, readOnly bool) (store.Store, error) {
	t, err := Parse(dsn)
	if err != nil {
		return nil, err
	}
	switch t.Kind {
	case store.Postgres:
		if readOnly {
			return pgstore.OpenReadOnly(ctx, t.DSN)
		}
		return pgstore.Open(ctx, t.DSN)
	default:
		// A '~' reaches kanade unexpanded from a config file, an env file
		// or a quoted flag; said here, not as a missing directory "~".
		if first, _, dir := strings.Cut(filepath.ToSlash(t.DSN), "/"); dir && strings.HasPrefix(first, "~") {
			if _, err := os.Stat(first); err != nil {
				return nil, fmt.Errorf("SQLite database %s: kanade does not expand '~' as a shell does; give the full path (check --db, KANADE_DB or db in the config file)", t.DSN)
			}
		}
		if readOnly {
			return sqlitestore.OpenReadOnly(ctx, t.DSN) // says when there is no file
		}
		if dir := filepath.Dir(t.DSN); dir != "" {
			if _, err := os.Stat(dir); err != nil {
				return nil, fmt.Errorf("open SQLite database %s: directory %s does not exist", t.DSN, dir)
			}
		}
		return sqlitestore.Open(ctx, t.DSN)
	}
}
