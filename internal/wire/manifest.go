package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
)

// Manifest is the part of a KV "jobs" entry the projector needs. Other keys
// exist upstream and are ignored.
type Manifest struct {
	ID        string         `json:"id"`
	Version   string         `json:"version"`
	Inventory *InventoryHint `json:"inventory,omitempty"`
	Execute   *ExecuteHint   `json:"execute,omitempty"`
	Check     *CheckHint     `json:"check,omitempty"`
	Feed      []FeedSpec     `json:"feed,omitempty"`
}

// ExecuteHint is the part of a manifest's execute block the projector
// reads: the run's timeout, from which an in-flight row's deadline follows.
type ExecuteHint struct {
	Timeout *string `json:"timeout,omitempty"` // a humantime duration: "30s", "10m", "1h 30m"
}

// RunTimeout is the manifest's execute.timeout, or false when it has none
// or upstream could not parse it (the deadline is then unknown).
func (m *Manifest) RunTimeout() (time.Duration, bool) {
	if m == nil || m.Execute == nil || m.Execute.Timeout == nil {
		return 0, false
	}
	d, err := ParseHumantime(*m.Execute.Timeout)
	return d, err == nil
}

// ReapDeadline is upstream's expires_at for a run started (published) at
// published under a manifest with this timeout: published + timeout +
// max(2 min, timeout / 2). ok is false when the timeout is unknown.
func (m *Manifest) ReapDeadline(published time.Time) (time.Time, bool) {
	timeout, ok := m.RunTimeout()
	if !ok {
		return time.Time{}, false
	}
	return published.Add(timeout + max(2*time.Minute, timeout/2)), true
}

// humantimeUnits are the units of the humantime crate upstream parses
// durations with; months and years are its fixed 30.44 and 365.25 days.
var humantimeUnits = map[string]time.Duration{
	"nanos": time.Nanosecond, "nsec": time.Nanosecond, "ns": time.Nanosecond,
	"usec": time.Microsecond, "us": time.Microsecond,
	"millis": time.Millisecond, "msec": time.Millisecond, "ms": time.Millisecond,
	"seconds": time.Second, "second": time.Second, "secs": time.Second, "sec": time.Second, "s": time.Second,
	"minutes": time.Minute, "minute": time.Minute, "min": time.Minute, "mins": time.Minute, "m": time.Minute,
	"hours": time.Hour, "hour": time.Hour, "hr": time.Hour, "hrs": time.Hour, "h": time.Hour,
	"days": 24 * time.Hour, "day": 24 * time.Hour, "d": 24 * time.Hour,
	"weeks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "wk": 7 * 24 * time.Hour, "wks": 7 * 24 * time.Hour, "w": 7 * 24 * time.Hour,
	"months": 2_630_016 * time.Second, "month": 2_630_016 * time.Second, "M": 2_630_016 * time.Second,
	"years": 31_557_600 * time.Second, "year": 31_557_600 * time.Second, "yr": 31_557_600 * time.Second,
	"yrs": 31_557_600 * time.Second, "y": 31_557_600 * time.Second,
}

// ParseHumantime parses a duration as the humantime crate does: one or
// more <digits><unit> pairs ("1h 30m", "2days", "90s"), white space
// allowed between and inside pairs, units case-sensitive, no fractions,
// and at least one pair.
func ParseHumantime(s string) (time.Duration, error) {
	var total time.Duration
	rs := []rune(s)
	i, pairs := 0, 0
	for {
		for i < len(rs) && unicode.IsSpace(rs[i]) {
			i++
		}
		if i == len(rs) {
			break
		}
		if rs[i] < '0' || rs[i] > '9' {
			return 0, fmt.Errorf("duration %q: expected a number at %d", s, i)
		}
		var n int64
		for i < len(rs) && (rs[i] >= '0' && rs[i] <= '9' || unicode.IsSpace(rs[i])) {
			if !unicode.IsSpace(rs[i]) {
				if n > (1<<62)/10 {
					return 0, fmt.Errorf("duration %q: number too large", s)
				}
				n = n*10 + int64(rs[i]-'0')
			}
			i++
		}
		start := i
		for i < len(rs) && (rs[i] >= 'a' && rs[i] <= 'z' || rs[i] >= 'A' && rs[i] <= 'Z') {
			i++
		}
		unit, ok := humantimeUnits[string(rs[start:i])]
		if !ok {
			return 0, fmt.Errorf("duration %q: unknown unit %q", s, string(rs[start:i]))
		}
		if i < len(rs) && !unicode.IsSpace(rs[i]) && (rs[i] < '0' || rs[i] > '9') {
			return 0, fmt.Errorf("duration %q: unexpected %q", s, rs[i])
		}
		if n > int64((1<<63-1)/unit) || total > (1<<63-1)-time.Duration(n)*unit {
			return 0, errors.New("duration " + s + " overflows")
		}
		total += time.Duration(n) * unit
		pairs++
	}
	if pairs == 0 {
		return 0, fmt.Errorf("duration %q is empty", s)
	}
	return total, nil
}

// InventoryHint tells the projector that a manifest's stdout is inventory.
type InventoryHint struct {
	Display []DisplayField `json:"display"`
	Summary []DisplayField `json:"summary,omitempty"`
	// HistoryScalars are top-level payload fields whose changes are
	// written to inventory_history.
	HistoryScalars []string      `json:"history_scalars,omitempty"`
	Explode        []ExplodeSpec `json:"explode,omitempty"`
}

// DisplayField is one column an inventory view shows. A field of type
// "table" shows an array of objects with Columns, themselves display
// fields (upstream's Option<Vec<DisplayField>>: [] is kept, absent or null
// is left out).
type DisplayField struct {
	Field   string          `json:"field"`
	Label   string          `json:"label"`
	Type    *string         `json:"type,omitempty"`
	Columns *[]DisplayField `json:"columns,omitempty"`
}

// DecodeManifest decodes a KV jobs value.
func DecodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", jsonError(err))
	}
	if m.ID == "" {
		return nil, fmt.Errorf("manifest: %w", &DecodeError{Field: "id", Reason: "missing or empty"})
	}
	// Fields serde requires: without them upstream cannot decode the
	// manifest at all, and projects none of its hints.
	if m.Check != nil && m.Check.Name == nil {
		return nil, fmt.Errorf("manifest: %w", &DecodeError{Field: "check.name", Reason: "missing"})
	}
	if m.Inventory != nil {
		for i, x := range m.Inventory.Explode {
			ok := x.Field != nil && x.Table != nil && x.PrimaryKey != nil && x.Columns != nil
			for _, c := range x.Columns {
				ok = ok && c.Field != nil
			}
			if !ok {
				return nil, fmt.Errorf("manifest: %w", &DecodeError{Field: fmt.Sprintf("inventory.explode[%d]", i), Reason: "needs field, table, primary_key and columns, each column a field"})
			}
		}
	}
	for i, f := range m.Feed {
		if f.ID == nil || f.Field == nil || f.PrimaryKey == nil {
			return nil, fmt.Errorf("manifest: %w", &DecodeError{Field: fmt.Sprintf("feed[%d]", i), Reason: "needs id, field and primary_key"})
		}
	}
	return &m, nil
}

// DisplayJSON and SummaryJSON are the texts upstream stores in
// inventory_facts: serde's re-serialisation of the hint, not the raw KV text.
func (h *InventoryHint) DisplayJSON() string { return encodeFields(h.Display) }

// SummaryJSON is nil when the hint has no summary.
func (h *InventoryHint) SummaryJSON() *string {
	if h.Summary == nil {
		return nil
	}
	s := encodeFields(h.Summary)
	return &s
}

func encodeFields(fs []DisplayField) string {
	b := []byte{'['}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		first := true
		b = append(b, '{')
		b = appendKeyString(b, &first, "field", f.Field)
		b = appendKeyString(b, &first, "label", f.Label)
		b = appendOptString(b, &first, "type", f.Type)
		if f.Columns != nil {
			b = appendKey(b, &first, "columns")
			b = append(b, encodeFields(*f.Columns)...)
		}
		b = append(b, '}')
	}
	return string(append(b, ']'))
}
