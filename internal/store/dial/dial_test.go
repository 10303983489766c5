package dial

import (
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/store"
)

func TestParse(t *testing.T) {
	cases := map[string]store.Kind{
		"postgres://u@h/db": store.Postgres, "postgresql://u@h/db": store.Postgres, "host=h dbname=d": store.Postgres,
		"sqlite:///var/lib/backend.db": store.SQLite, "./backend.db": store.SQLite, "/tmp/x.db": store.SQLite,
	}
	for dsn, want := range cases {
		got, err := Parse(dsn)
		if err != nil || got.Kind != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", dsn, got, err, want)
		}
	}
	for _, bad := range []string{"", "mysql://x", "sqlite://"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// A sqlite: URL names the file sqlx (upstream's SQLite layer) would open:
// percent-encoded, relative after two slashes and absolute after three.
// Options after '?' are refused, not made part of the file's name (which
// once created "backend.db?mode=rwc"); a plain path is taken as it is.
func TestSQLiteURLs(t *testing.T) {
	for dsn, want := range map[string]string{
		"sqlite:///var/lib/backend.db":                   "/var/lib/backend.db",
		"sqlite://backend.db":                            "backend.db",
		"sqlite:backend.db":                              "backend.db",
		"sqlite:///tmp/sp%20ace%23%3F.db":                "/tmp/sp ace#?.db",
		"sqlite://C:/ProgramData/Kanade/data/backend.db": "C:/ProgramData/Kanade/data/backend.db",
		"./what?%20.db":                                  "./what?%20.db",
		"C:\\ProgramData\\Kanade\\data\\backend.db":      "C:\\ProgramData\\Kanade\\data\\backend.db",
	} {
		got, err := Parse(dsn)
		if err != nil || got.Kind != store.SQLite || got.DSN != want {
			t.Errorf("Parse(%q) = %+v, %v; want the file %q", dsn, got, err, want)
		}
	}
	for dsn, says := range map[string]string{
		"sqlite://backend.db?mode=rwc": "give sqlite://backend.db or the file's plain path",
		"sqlite:///tmp/100%.db":        "write a '%' in a file name as %25",
		"sqlite:":                      "needs a path",
		"sqlite:///?mode=ro":           "no SQLite URL options (mode=ro)",
	} {
		_, err := Parse(dsn)
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("Parse(%q) = %v; want an error saying %q", dsn, err, says)
		}
	}
}
