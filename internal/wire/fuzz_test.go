package wire

import (
	"github.com/kanadehq/kanade-cli/internal/wire/serdevec"
	"reflect"
	"testing"
	"time"
)

// sameTime is equality of instant and of the leap-second mark.
func sameTime(a, b time.Time) bool { return a.Equal(b) && IsLeapSecond(a) == IsLeapSecond(b) }

// FuzzDecodeExecResult: no payload panics the decoder, and one it accepts
// re-encodes (as an agent would write it) to a payload that decodes to
// the same value.
func FuzzDecodeExecResult(f *testing.F) {
	for _, v := range serdevec.Load(f, vectors("serde_vectors.jsonl")) {
		f.Add(v.Payload())
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeExecResult(payload)
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error %T is not a DecodeError: %v", err, err)
			}
			return
		}
		back, err := DecodeExecResult(r.Encode())
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v\n%s", err, r.Encode())
		}
		if !sameTime(r.StartedAt, back.StartedAt) || !sameTime(r.FinishedAt, back.FinishedAt) {
			t.Fatalf("timestamps changed: %v %v -> %v %v", r.StartedAt, r.FinishedAt, back.StartedAt, back.FinishedAt)
		}
		r.StartedAt, r.FinishedAt, back.StartedAt, back.FinishedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(r, back) {
			t.Fatalf("re-encoding changed the value:\n%+v\n%+v", r, back)
		}
	})
}

// FuzzParseChrono: no text panics the timestamp parser, and an accepted
// one is written back as text that parses to the same time.
func FuzzParseChrono(f *testing.F) {
	for _, s := range []string{"2026-11-20T01:02:03.123Z", "2016-12-31T23:59:60.5Z", "+262142-12-31T23:59:59Z", "-0001-01-01T00:00:00Z",
		"2026-11-20 01:02:03 +09:00", "2026-11-20T01:02:03.123456789123UTC", "26-1-2T3:4:5\u221205:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseChrono(s)
		if err != nil {
			return
		}
		for _, text := range []string{FormatTimestamp(tm), FormatSQLiteTimestamp(tm)} {
			back, err := ParseChrono(text)
			if err != nil || !sameTime(tm, back) {
				t.Fatalf("%q -> %q -> %v, %v; want %v", s, text, back, err, tm)
			}
		}
	})
}

// FuzzParseHumantime: a manifest's execute.timeout never panics the
// projector, and an accepted duration is not negative.
func FuzzParseHumantime(f *testing.F) {
	for _, s := range []string{"10m", "30s", "1h 30m", "2days", "", "10", "1.5h", "99999999999999999999y", "5 m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseHumantime(s); err == nil && d < 0 {
			t.Fatalf("%q parsed as %s", s, d)
		}
	})
}
