package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FormatTimestamp writes t the way chrono serialises a DateTime<Utc> on the
// wire: UTC with "Z", and a fraction of 0, 3, 6 or 9 digits (the fewest that
// represent the nanoseconds exactly). Go's RFC3339Nano trims zeros one by one
// and so writes different text.
func FormatTimestamp(t time.Time) string {
	return string(appendChrono(make([]byte, 0, 32), t, "Z"))
}

// FormatSQLiteTimestamp writes t the way sqlx binds a DateTime<Utc> into
// upstream's SQLite TEXT columns: the same digits, offset "+00:00".
func FormatSQLiteTimestamp(t time.Time) string {
	return string(appendChrono(make([]byte, 0, 38), t, "+00:00"))
}

// AppendTimestamp appends the wire form of t to b.
func AppendTimestamp(b []byte, t time.Time) []byte { return appendChrono(b, t, "Z") }

func appendChrono(b []byte, t time.Time, zone string) []byte {
	t = t.UTC()
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	ns := t.Nanosecond()
	switch {
	case ns == 0:
	case ns%1_000_000 == 0:
		b = append(b, '.')
		b = appendPadded(b, ns/1_000_000, 3)
	case ns%1_000 == 0:
		b = append(b, '.')
		b = appendPadded(b, ns/1_000, 6)
	default:
		b = append(b, '.')
		b = appendPadded(b, ns, 9)
	}
	return append(b, zone...)
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// ParseTimestamp accepts any RFC 3339 text (as chrono does) and, for rows
// that very old upstream versions wrote through SQLite's CURRENT_TIMESTAMP,
// "YYYY-MM-DD HH:MM:SS" with an optional fraction, read as UTC.
func ParseTimestamp(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	// RFC 3339 allows a lower-case t/z and a space separator; Go's parser
	// does not, so normalise before the second attempt.
	if len(s) >= 19 && (s[10] == ' ' || s[10] == 't') {
		n := s[:10] + "T" + s[11:]
		n = strings.Replace(n, "z", "Z", 1)
		if t, err := time.Parse(time.RFC3339Nano, n); err == nil {
			return t.UTC(), nil
		}
		if t, err := time.Parse("2006-01-02T15:04:05.999999999", n); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 timestamp", s)
}
