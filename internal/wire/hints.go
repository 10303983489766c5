package wire

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// CheckHint marks a manifest as a health check (upstream's CheckHint; the
// fields the projector reads).
type CheckHint struct {
	Name        *string `json:"name"` // required
	Label       *string `json:"label,omitempty"`
	StatusField *string `json:"status_field,omitempty"` // default "status"
	DetailField *string `json:"detail_field,omitempty"` // default "detail"
	Fleet       *bool   `json:"fleet,omitempty"`        // default true
}

// Projected reports whether the check is written to check_status: unless
// the manifest opts out with fleet: false.
func (h *CheckHint) Projected() bool { return h.Fleet == nil || *h.Fleet }

func orDefault(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// Check statuses upstream stores.
const (
	CheckOK      = "ok"
	CheckWarn    = "warn"
	CheckFail    = "fail"
	CheckUnknown = "unknown"
)

// Evaluate is upstream's check_eval: the status and detail a run gives.
// An exit-0 run reports through its CHECK payload, a JSON object whose
// status_field is ok, warn, fail or unknown and whose detail_field is the
// detail; anything else is "unknown" with a detail saying why. A run that
// exited non-zero is "unknown", detailed by its exit code and the first
// 200 characters of its trimmed stderr.
func (h *CheckHint) Evaluate(exitCode int32, stdout, stderr string) (status string, detail *string) {
	if exitCode != 0 {
		snippet := []rune(strings.TrimFunc(stderr, unicode.IsSpace))
		d := fmt.Sprintf("check script exited %d", exitCode)
		if len(snippet) > 200 {
			snippet = snippet[:200]
		}
		if len(snippet) > 0 {
			d += ": " + string(snippet)
		}
		return CheckUnknown, &d
	}
	unknown := func(format string, args ...any) (string, *string) {
		d := fmt.Sprintf(format, args...)
		return CheckUnknown, &d
	}
	field, detailField := orDefault(h.StatusField, "status"), orDefault(h.DetailField, "detail")
	payload, _ := FencedPayload(stdout, HintCheck)
	// The whole payload is checked; only the two fields read are built.
	v, err := ParseJSONMembers(payload, []string{field, detailField})
	if err != nil {
		return unknown("check stdout was not JSON: %v", err)
	}
	if v.Kind != JSONObject {
		return unknown("check stdout was not a JSON object")
	}
	s := v.Get(field)
	if s == nil {
		return unknown("stdout has no `%s` field", field)
	}
	switch {
	case s.Kind == JSONString && (s.Str == CheckOK || s.Str == CheckWarn || s.Str == CheckFail || s.Str == CheckUnknown):
		status = s.Str
	default:
		return unknown("`%s` = %s is not one of ok/warn/fail/unknown", field, s.Compact())
	}
	return status, DetailText(v.Get(detailField))
}

// DetailText is upstream's json_to_detail: a string as it is, any other
// value as compact JSON, and null, "" or a missing field as no detail.
func DetailText(v *JSONValue) *string {
	if v == nil || v.Kind == JSONNull || (v.Kind == JSONString && v.Str == "") {
		return nil
	}
	if v.Kind == JSONString {
		return &v.Str
	}
	s := v.Compact()
	return &s
}

// SkipsChecks reports whether a result says nothing about its check: a
// skip (the script never ran) or a signature refusal. An agent that sends
// no skipped flag marks a skip only by the reserved codes 122 to 127.
func (r *ExecResult) SkipsChecks() bool {
	if r.IsSkipped() || r.IsSignatureRefusal() {
		return true
	}
	return r.Skipped == nil && r.ExitCode >= 122 && r.ExitCode <= 127
}

// FeedSpec is one feed a manifest's result refreshes (upstream's FeedSpec).
type FeedSpec struct {
	ID         *string  `json:"id"`
	Field      *string  `json:"field"`
	PrimaryKey []string `json:"primary_key"`
}

// FeedID is the id rows are stored under: the manifest's, trimmed.
func (f *FeedSpec) FeedID() string { return strings.TrimFunc(orDefault(f.ID, ""), unicode.IsSpace) }

// FieldName is the payload field holding the feed's items.
func (f *FeedSpec) FieldName() string { return orDefault(f.Field, "") }

// ItemID is an element's id: its one key value as it is, or for several
// keys each value prefixed by its byte length and a colon, so no two key
// tuples share an id. A string key is used as it is, any other value as
// compact JSON. ok is false when a key is missing or null (the element is
// skipped) or the spec names no key.
func (f *FeedSpec) ItemID(el *JSONValue) (id string, ok bool) {
	if len(f.PrimaryKey) == 0 {
		return "", false
	}
	parts := make([]string, 0, len(f.PrimaryKey))
	for _, k := range f.PrimaryKey {
		v := el.Get(k)
		switch {
		case v == nil || v.Kind == JSONNull:
			return "", false
		case v.Kind == JSONString:
			parts = append(parts, v.Str)
		default:
			parts = append(parts, v.Compact())
		}
	}
	if len(parts) == 1 {
		return parts[0], true
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String(), true
}
