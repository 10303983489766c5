package pgstore_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// The current schema is read once, at open: migrating, which holds one
// connection while it scopes its advisory lock, opens no second one.
func TestMigrateUsesOneConnection(t *testing.T) {
	ctx := context.Background()
	st, err := pgstore.Open(ctx, testutil.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.Pool().Stat().TotalConns(); n != 1 {
		t.Errorf("opening and migrating took %d connections, want 1", n)
	}
}

// A search_path that names no schema of the database leaves no schema to
// scope the advisory locks to: the writer is told what to fix instead of
// being handed a scan error.
func TestOpenWithoutACurrentSchema(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testutil.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "kanade_no_such_schema")
	u.RawQuery = q.Encode()
	st, err := pgstore.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "search_path names no schema that exists") {
		t.Fatalf("Migrate with search_path at a missing schema: %v", err)
	}
}
