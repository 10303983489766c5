package store_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// Kept tables group by their swap's prefix, oldest first; names that only
// look like them are left out.
func TestGroupOldTables(t *testing.T) {
	rows := map[string]int64{"kanade_old_200_execution_results": 3, "kanade_old_200_executions": 1, "kanade_old_100_feeds": 2}
	count := func(n string) (int64, error) { return rows[n], nil }
	names := []string{"kanade_old_200_executions", "kanade_old_100_feeds", "kanade_old_200_execution_results",
		"kanade_old_x_feeds", "kanade_old_300_", "kanade_old_", "execution_results", "kanade_shadow_feeds"}
	got, err := store.GroupOldTables(names, count)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.OldTableSet{
		{Prefix: "kanade_old_100_", SwappedAt: time.Unix(100, 0).UTC(), Tables: []string{"kanade_old_100_feeds"}, Rows: 2},
		{Prefix: "kanade_old_200_", SwappedAt: time.Unix(200, 0).UTC(), Tables: []string{"kanade_old_200_execution_results", "kanade_old_200_executions"}, Rows: 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if none, err := store.GroupOldTables(nil, count); err != nil || none == nil || len(none) != 0 {
		t.Errorf("no kept tables: %#v %v (want [], for JSON)", none, err)
	}
	if _, err := store.GroupOldTables(names, func(string) (int64, error) { return 0, errors.New("gone") }); err == nil {
		t.Error("a failed count must be an error")
	}
}
