package streams_test

import (
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/streams"
)

func TestCheckFilter(t *testing.T) {
	for _, ok := range []string{"results.>", "results.*", "results.req-1", "events.a.*.c", ">", "*"} {
		if err := streams.CheckFilter(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":            "empty",
		"bad subject": "whitespace",
		"results.":    "empty token",
		".results":    "empty token",
		"a..b":        "empty token",
		"results.>.x": "> before its last token",
		"results.a*":  "wildcard inside a token",
		"results.>>":  "wildcard inside a token",
	} {
		err := streams.CheckFilter(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error saying %q, got %v", bad, want, err)
		}
	}
}
