package sqlitestore_test

import (
	"testing"

	"github.com/kanadehq/kanade-cli/internal/store/storetest"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// The store contract, on SQLite.
func TestStoreContract(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) testutil.Store { return testutil.SQLiteStore(t) })
}
