package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// LeapSecond marks a time.Time that chrono holds as a leap second (second
// 60). Go has no leap seconds, so such a value is stored as the instant
// chrono reports for it (the following second: 23:59:60.5 is 00:00:00.5
// of the next day) in this location. The instant is right for comparisons
// and for PostgreSQL; the formatters below see the location and write
// second 60, as upstream's SQLite file holds it. Any time.Time method that
// returns a new value (UTC, Add, ...) drops the mark, which is what a
// computed time should do.
var LeapSecond = time.FixedZone("UTC (leap second)", 0)

// IsLeapSecond reports whether t carries the leap-second mark.
func IsLeapSecond(t time.Time) bool { return t.Location() == LeapSecond }

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
	leap := IsLeapSecond(t)
	t = t.UTC()
	if leap {
		t = t.Add(-time.Second) // written as second 60 of the minute before
	}
	// chrono writes years outside 0..=9999 with a sign and at least four
	// digits (+10000, -0001); Go's layouts cannot.
	year := t.Year()
	switch {
	case year < 0:
		b = append(b, '-')
		b = appendPadded(b, -year, 4)
	case year > 9999:
		b = append(b, '+')
		b = appendPadded(b, year, 4)
	default:
		b = appendPadded(b, year, 4)
	}
	b = t.AppendFormat(b, "-01-02T15:04:")
	if leap {
		b = append(b, "60"...)
	} else {
		b = appendPadded(b, t.Second(), 2)
	}
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

// ParseChrono parses s exactly as chrono 0.4's DateTime<Utc> deserializer
// (FromStr, its relaxed RFC 3339) does, which is what upstream accepts on
// the wire: 'T', 't' or spaces between date and time; white space around
// the numbers and the separators; signed years of any width, unsigned ones
// of at most four digits; second 60 (a leap second, any minute); any
// number of fraction digits, of which the first nine count; an offset of
// 'Z', 'z', "UTC" in any case, or ±HH[:]MM with '-', '+' or U+2212, and
// nothing after it but white space.
func ParseChrono(s string) (time.Time, error) {
	t, rest, err := parseChrono(s)
	if err != nil {
		return time.Time{}, err
	}
	if strings.TrimLeftFunc(rest, unicode.IsSpace) != "" {
		return time.Time{}, timeErr(s, "has text after the offset")
	}
	return t, nil
}

// ParseTimestamp reads a stored timestamp: anything ParseChrono accepts
// and, for rows that very old upstream versions wrote through SQLite's
// CURRENT_TIMESTAMP, the same text without an offset, read as UTC.
func ParseTimestamp(s string) (time.Time, error) {
	t, err := ParseChrono(s)
	if err == nil {
		return t, nil
	}
	if naive, rest, nerr := parseChronoNaive(s); nerr == nil && strings.TrimLeftFunc(rest, unicode.IsSpace) == "" {
		return naive.finish(s, 0)
	}
	return time.Time{}, err
}

func timeErr(s, why string) error {
	return fmt.Errorf("%q is not a timestamp upstream accepts: it %s", s, why)
}

// naiveTime is a parsed date and time before the offset is applied.
type naiveTime struct {
	year                      int64
	month, day, hour, min, sc int64
	nano                      int64
}

func parseChrono(s string) (time.Time, string, error) {
	n, rest, err := parseChronoNaive(s)
	if err != nil {
		return time.Time{}, "", err
	}
	rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	var offset int64
	if len(rest) >= 3 && strings.EqualFold(rest[:3], "UTC") {
		rest = rest[3:]
	} else if offset, rest, err = chronoOffset(s, rest); err != nil {
		return time.Time{}, "", err
	}
	t, err := n.finish(s, offset)
	return t, rest, err
}

// parseChronoNaive reads the date, the separator and the time (with its
// fraction and trailing white space) and returns what follows.
func parseChronoNaive(s string) (naiveTime, string, error) {
	var n naiveTime
	rest := s
	var err error
	num := func(what string, width int, signed bool) int64 {
		if err != nil {
			return 0
		}
		var v int64
		v, rest, err = chronoNumber(s, rest, what, width, signed)
		return v
	}
	lit := func(c byte) {
		if err != nil {
			return
		}
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		if rest == "" || rest[0] != c {
			err = timeErr(s, fmt.Sprintf("lacks the %q of a date-time", c))
			return
		}
		rest = rest[1:]
	}
	n.year = num("year", 4, true)
	lit('-')
	n.month = num("month", 2, false)
	lit('-')
	n.day = num("day", 2, false)
	if err != nil {
		return n, "", err
	}
	switch {
	case rest == "":
		return n, "", timeErr(s, "has a date but no time")
	case rest[0] == 'T' || rest[0] == 't':
		rest = rest[1:]
	case rest[0] == ' ':
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	default:
		return n, "", timeErr(s, "does not separate date and time with 'T' or a space")
	}
	n.hour = num("hour", 2, false)
	lit(':')
	n.min = num("minute", 2, false)
	lit(':')
	n.sc = num("second", 2, false)
	if err != nil {
		return n, "", err
	}
	if rest != "" && rest[0] == '.' {
		digits := 0
		for digits < len(rest)-1 && rest[1+digits] >= '0' && rest[1+digits] <= '9' {
			digits++
		}
		if digits == 0 {
			return n, "", timeErr(s, "has a '.' with no fraction digits")
		}
		for i := 0; i < 9; i++ {
			n.nano *= 10
			if i < digits {
				n.nano += int64(rest[1+i] - '0')
			}
		}
		rest = rest[1+digits:] // digits past the ninth are read and dropped
	}
	return n, strings.TrimLeftFunc(rest, unicode.IsSpace), nil
}

// chronoNumber is chrono's numeric item: leading white space, then 1 to
// width ASCII digits, or for a signed item a '+' or '-' and any number.
func chronoNumber(s, rest, what string, width int, signed bool) (int64, string, error) {
	rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	neg := false
	if signed && rest != "" && (rest[0] == '+' || rest[0] == '-') {
		neg = rest[0] == '-'
		rest = rest[1:]
		width = 1 << 30
	}
	i := 0
	var v int64
	for i < len(rest) && i < width && rest[i] >= '0' && rest[i] <= '9' {
		if v > (1<<62)/10 {
			return 0, "", timeErr(s, "has a "+what+" out of range")
		}
		v = v*10 + int64(rest[i]-'0')
		i++
	}
	if i == 0 {
		return 0, "", timeErr(s, "lacks the "+what+" digits")
	}
	if neg {
		v = -v
	}
	return v, rest[i:], nil
}

// chronoOffset is chrono's timezone_offset with zulu, a colon or white
// space between hours and minutes, and U+2212 allowed; minutes required.
func chronoOffset(s, rest string) (int64, string, error) {
	if rest == "" {
		return 0, "", timeErr(s, "has no UTC offset")
	}
	if rest[0] == 'Z' || rest[0] == 'z' {
		return 0, rest[1:], nil
	}
	neg := false
	switch r, size := utf8.DecodeRuneInString(rest); r {
	case '+':
		rest = rest[1:]
	case '-', '\u2212':
		neg = true
		rest = rest[size:]
	default:
		return 0, "", timeErr(s, "has no valid UTC offset (Z, UTC or ±HH:MM)")
	}
	two := func() (int64, bool) {
		if len(rest) < 2 || rest[0] < '0' || rest[0] > '9' || rest[1] < '0' || rest[1] > '9' {
			return 0, false
		}
		v := int64(rest[0]-'0')*10 + int64(rest[1]-'0')
		rest = rest[2:]
		return v, true
	}
	hh, ok := two()
	if !ok {
		return 0, "", timeErr(s, "has an offset without two hour digits")
	}
	rest = strings.TrimLeftFunc(rest, func(r rune) bool { return r == ':' || unicode.IsSpace(r) })
	mm, ok := two()
	if !ok || mm > 59 {
		return 0, "", timeErr(s, "has an offset without valid minutes")
	}
	off := hh*3600 + mm*60
	if off >= 86400 {
		return 0, "", timeErr(s, "has an offset of a day or more")
	}
	if neg {
		off = -off
	}
	return off, rest, nil
}

// chrono's NaiveDate range.
const (
	chronoMinYear = -262143
	chronoMaxYear = 262142
)

func (n naiveTime) finish(s string, offset int64) (time.Time, error) {
	switch {
	case n.year < chronoMinYear || n.year > chronoMaxYear:
		return time.Time{}, timeErr(s, "has a year outside chrono's range")
	case n.month < 1 || n.month > 12:
		return time.Time{}, timeErr(s, "has no such month")
	case n.day < 1 || n.day > int64(daysIn(int(n.year), time.Month(n.month))):
		return time.Time{}, timeErr(s, "has no such day in that month")
	case n.hour > 23 || n.min > 59 || n.sc > 60:
		return time.Time{}, timeErr(s, "has an hour, minute or second out of range")
	}
	leap := n.sc == 60
	sec := n.sc
	if leap {
		sec = 59
	}
	local := time.Date(int(n.year), time.Month(n.month), int(n.day), int(n.hour), int(n.min), int(sec), int(n.nano), time.UTC)
	t := local.Add(-time.Duration(offset) * time.Second)
	if y := t.Year(); y < chronoMinYear || y > chronoMaxYear {
		return time.Time{}, timeErr(s, "is outside chrono's range in UTC")
	}
	if leap {
		return t.Add(time.Second).In(LeapSecond), nil
	}
	return t, nil
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
