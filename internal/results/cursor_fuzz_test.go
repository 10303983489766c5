package results_test

import (
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/results"
	"github.com/kanadehq/kanade-cli/internal/store"
)

// FuzzDecodeCursor: --after never panics, and a cursor it accepts is one
// that encodes back to the same position.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(results.EncodeCursor(store.ListCursor{LastRecorded: time.Date(2026, 11, 30, 1, 2, 3, 4, time.UTC), Key: "req-1"}))
	f.Add("not-a-cursor")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := results.DecodeCursor(s)
		if err != nil {
			return
		}
		back, err := results.DecodeCursor(results.EncodeCursor(*c))
		if err != nil || !back.LastRecorded.Equal(c.LastRecorded) || back.Key != c.Key {
			t.Fatalf("%q: decoded %+v, which does not round-trip (%+v, %v)", s, c, back, err)
		}
	})
}
