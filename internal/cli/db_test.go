package cli

import (
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// `db status` calls a database kanade's only when kanade's schema record
// is there: an empty PostgreSQL database, or another application's, once
// read as "created by kanade".
func TestStatusOwner(t *testing.T) {
	tables := func(exists bool) []store.TableStatus {
		return []store.TableStatus{{Name: "execution_results", Exists: exists}, {Name: "executions"}}
	}
	for _, c := range []struct {
		status store.Status
		want   string
	}{
		{store.Status{Upstream: true, Tables: tables(true)}, "upstream's backend.db"},
		{store.Status{SchemaVersion: 3, Tables: tables(true)}, "created by kanade"},
		{store.Status{Tables: tables(true)}, "unknown: tables of kanade's names"},
		{store.Status{Tables: tables(false)}, "none yet"},
	} {
		if got := owner(&c.status); !strings.HasPrefix(got, c.want) {
			t.Errorf("owner(%+v) = %q, want %q...", c.status, got, c.want)
		}
	}
}
