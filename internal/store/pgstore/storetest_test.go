package pgstore_test

import (
	"testing"

	"github.com/kanadehq/kanade-cli/internal/store/storetest"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// The store contract, on PostgreSQL.
func TestStoreContract(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) testutil.Store { return testutil.PostgresStore(t) })
}
