package cli

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseTime: --since / --until never panic, and an error is one line.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "24h", "2026-11-27T08:00:00Z", "-5h", "1e9h", "2026-13-01T00:00:00Z", "yesterday", "\x00"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		tm, err := parseTime("since", v, now)
		switch {
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Fatalf("a flag error must be one line: %q", err)
		case err == nil && v != "" && tm == nil:
			t.Fatalf("%q accepted without a time", v)
		}
	})
}

// FuzzParseSeq: --from-seq / --to-seq never panic; accepted means 1 or more.
func FuzzParseSeq(f *testing.F) {
	for _, s := range []string{"", "1", "0", "-1", "18446744073709551616", "0x10", " 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := parseSeq("from-seq", v)
		if err == nil && v != "" && n == 0 {
			t.Fatalf("%q accepted as sequence 0", v)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("a flag error must be one line: %q", err)
		}
	})
}

// --since / --until take a time, a date (midnight UTC, as the tables'
// times are) or a duration back from now.
func TestParseTimeForms(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Time{
		"2026-11-20":                time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		"2026-11-20T09:30:00+09:00": time.Date(2026, 11, 20, 0, 30, 0, 0, time.UTC),
		"36h":                       now.Add(-36 * time.Hour),
	} {
		got, err := parseTime("since", v, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"2026-11-31", "2026/11/20", "yesterday"} {
		if _, err := parseTime("since", v, now); err == nil || !strings.Contains(err.Error(), "a date in UTC (2026-11-27)") {
			t.Errorf("parseTime(%q): %v", v, err)
		}
	}
}
