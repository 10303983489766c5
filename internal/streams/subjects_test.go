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

func TestOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"results.>", "results.>", true},
		{"results.req-1", "results.>", true},
		{"results.*", "results.>", true},
		{"results.a.b", "results.*", false},
		{"results.a", "results.*", true},
		{"events.>", "results.>", false},
		{"results", "results.>", false},
		{">", "results.>", true},
		{"*.a", "results.*", true},
		{"*.a", "results.b", false},
	} {
		if got := streams.Overlap(c.a, c.b); got != c.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := streams.Overlap(c.b, c.a); got != c.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}
