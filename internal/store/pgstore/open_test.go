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

// A search_path that names no schema of the database leaves nowhere to
// read or create a table: the store refuses to open and says why, instead
// of "run kanade db migrate" (readers) or a scan error (writers).
func TestOpenWithoutACurrentSchema(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testutil.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "kanade_no_such_schema")
	u.RawQuery = q.Encode()
	for name, open := range map[string]func(context.Context, string) (*pgstore.Store, error){
		"writer": pgstore.Open, "reader": pgstore.OpenReadOnly} {
		st, err := open(ctx, u.String())
		if err == nil {
			st.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "search_path names no schema that exists") {
			t.Errorf("%s with search_path at a missing schema: %v", name, err)
		}
	}
}
