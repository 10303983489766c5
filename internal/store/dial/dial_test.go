package dial

import (
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
