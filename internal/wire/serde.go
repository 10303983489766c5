package wire

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"
)

// This file decodes upstream's payloads the way serde_json decodes them into
// a struct with #[derive(Deserialize)] (serde 1.0.228, serde_json 1.0.150):
// the verdict on every payload is serde's, which testdata/serde_vectors.jsonl
// checks case by case. The rules that differ from encoding/json:
//   - keys match case-sensitively and after unescaping; a known key that
//     appears twice is an error (null counts as an appearance);
//   - the values of unknown keys are skipped as serde's IgnoredAny skips
//     them: their strings may hold invalid UTF-8 and lone surrogates, their
//     numbers may be of any size, and nesting has no depth limit; only the
//     JSON grammar (escapes, control characters, number syntax) is checked;
//   - a known string must be valid UTF-8 without lone surrogate escapes;
//   - only ' ', '\t', '\n' and '\r' are white space;
//   - a struct may also come as a JSON array, decoded by position, whose
//     trailing #[serde(default)] fields may be left out.
// It reads one string made from the payload and slices every unescaped
// string out of it, so a decode costs one copy of the payload.

type fieldKind uint8

const (
	kString    fieldKind = iota // String: a string, never null
	kOptString                  // Option<String>: a string or null
	kInt32                      // i32: an integer literal in range
	kOptBool                    // Option<bool>: true, false or null
	kTime                       // DateTime<Utc>: a string chrono parses
)

type fieldSpec struct {
	name string
	kind fieldKind
	// optional is serde's #[serde(default)] (Option fields are optional in
	// an object without it, but in an array only with it).
	optional bool
}

type fieldValue struct {
	set  bool // the key appeared (with null, too)
	null bool
	str  string
	i32  int32
	b    bool
	t    time.Time
}

// decodeStruct decodes data into vals, one per field of fields, or returns
// a *DecodeError that says where and why serde would have refused it.
func decodeStruct(data []byte, fields []fieldSpec, vals []fieldValue) (err error) {
	// The payload is read in place, not copied: own gives what the values
	// keep of it memory of their own, so the caller may reuse data.
	d := decoder{s: unsafe.String(unsafe.SliceData(data), len(data)), fields: fields}
	defer func() {
		if e, ok := err.(*DecodeError); ok {
			e.Field = strings.Clone(e.Field) // a duplicate key's name is a slice of data
		}
	}()
	d.ws()
	if d.i >= len(d.s) {
		if len(d.s) == 0 {
			return &DecodeError{Reason: "the payload is empty"}
		}
		return &DecodeError{Reason: "the payload is only white space"}
	}
	switch d.s[d.i] {
	case '{':
		err = d.object(vals)
	case '[':
		err = d.array(vals)
	case '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return d.errAt("", "the payload is %s, not a JSON object", d.describe())
	default:
		return d.errAt("", "the payload does not start with JSON (byte %#02x; a byte-order mark or comment is not allowed)", d.s[d.i])
	}
	if err != nil {
		return err
	}
	d.ws()
	if d.i < len(d.s) {
		return d.errAt("", "the payload has more after its closing bracket (byte %#x)", d.s[d.i])
	}
	for k, f := range fields {
		if !vals[k].set && !f.optional && f.kind != kOptString && f.kind != kOptBool {
			return d.missing(f.name)
		}
	}
	d.own(vals)
	return nil
}

// own gives the strings sliced from the payload memory of their own: one
// buffer of just those strings when they are a small part of the payload,
// else one copy of the payload. The keys and punctuation are garbage once
// decoded, and an escaped string (stdout, as a rule) is a copy already;
// without this a decoded value would keep its whole payload alive, and a
// replay holds two batches of decoded values at once.
func (d *decoder) own(vals []fieldValue) {
	base := uintptr(unsafe.Pointer(unsafe.StringData(d.s)))
	inPayload := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return len(s) > 0 && p >= base && p < base+uintptr(len(d.s))
	}
	n := 0
	for i := range vals {
		if vals[i].str == "" {
			vals[i].str = "" // an empty slice of the payload still points into it
		} else if inPayload(vals[i].str) {
			n += len(vals[i].str)
		}
	}
	if n == 0 {
		return
	}
	if 4*n > 3*len(d.s) { // most of the payload: one copy, re-sliced
		own := strings.Clone(d.s)
		for i := range vals {
			if s := vals[i].str; inPayload(s) {
				at := uintptr(unsafe.Pointer(unsafe.StringData(s))) - base
				vals[i].str = own[at : at+uintptr(len(s))]
			}
		}
		return
	}
	buf := make([]byte, 0, n)
	for i := range vals {
		if s := vals[i].str; inPayload(s) {
			start := len(buf)
			buf = append(buf, s...)
			// buf is never written again after the copies.
			vals[i].str = unsafe.String(unsafe.SliceData(buf[start:]), len(s))
		}
	}
}

type decoder struct {
	s       string
	i       int
	fields  []fieldSpec
	unknown []string // the first unknown keys, to name a near miss
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) errAt(field, format string, args ...any) *DecodeError {
	return &DecodeError{Field: field, Offset: d.i, Reason: fmt.Sprintf(format, args...) + fmt.Sprintf(" (at byte %d)", d.i)}
}

func (d *decoder) missing(name string) error {
	for _, k := range d.unknown {
		if strings.EqualFold(k, name) || strings.EqualFold(strings.ReplaceAll(k, "_", ""), strings.ReplaceAll(name, "_", "")) {
			return &DecodeError{Field: name, Offset: -1, Reason: fmt.Sprintf("missing; the payload has %q, but keys match case-sensitively", k)}
		}
	}
	return &DecodeError{Field: name, Offset: -1, Reason: "missing (upstream requires it)"}
}

// describe names the JSON value that starts at d.i, for type errors.
func (d *decoder) describe() string {
	if d.i >= len(d.s) {
		return "cut off"
	}
	switch c := d.s[d.i]; {
	case c == '"':
		return "a JSON string"
	case c == '{':
		return "a JSON object"
	case c == '[':
		return "a JSON array"
	case c == 't' || c == 'f':
		return "a JSON boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a JSON number"
	default:
		return fmt.Sprintf("not JSON (byte %#x)", c)
	}
}

func (d *decoder) lookup(key string) int {
	for k := range d.fields {
		if d.fields[k].name == key {
			return k
		}
	}
	return -1
}

func (d *decoder) object(vals []fieldValue) error {
	d.i++
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		if d.i >= len(d.s) {
			return d.errAt("", "the object is cut off")
		}
		if d.s[d.i] != '"' {
			return d.errAt("", "a key must be a string in double quotes")
		}
		key, err := d.str("")
		if err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return d.errAt("", "expected ':' after the key %q", key)
		}
		d.i++
		d.ws()
		if k := d.lookup(key); k < 0 {
			if len(d.unknown) < 16 {
				d.unknown = append(d.unknown, key)
			}
			if err := d.skip(); err != nil {
				return err
			}
		} else {
			if vals[k].set {
				return d.errAt(key, "appears twice; upstream rejects a payload with a duplicate key")
			}
			if err := d.value(k, &vals[k]); err != nil {
				return err
			}
		}
		d.ws()
		if d.i >= len(d.s) {
			return d.errAt("", "the object is cut off")
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.ws()
			if d.i < len(d.s) && d.s[d.i] == '}' {
				return d.errAt("", "a comma before '}' (trailing commas are not JSON)")
			}
		case '}':
			d.i++
			return nil
		default:
			return d.errAt("", "expected ',' or '}' after the value of %q", key)
		}
	}
}

// array decodes the struct by position, as serde's visit_seq does.
func (d *decoder) array(vals []fieldValue) error {
	d.i++
	ended := false
	for k, f := range d.fields {
		if !ended {
			d.ws()
			if d.i >= len(d.s) {
				return d.errAt("", "the array is cut off")
			}
			switch {
			case d.s[d.i] == ']':
				ended = true
			case k == 0:
			case d.s[d.i] == ',':
				d.i++
				d.ws()
				if d.i < len(d.s) && d.s[d.i] == ']' {
					return d.errAt("", "a comma before ']' (trailing commas are not JSON)")
				}
			default:
				return d.errAt("", "expected ',' or ']' in the array")
			}
		}
		if ended {
			if !f.optional {
				return d.errAt(f.name, "missing: the payload is a JSON array of %d elements, and upstream reads it by position (%d or more needed)", k, d.minElements())
			}
			continue
		}
		if err := d.value(k, &vals[k]); err != nil {
			return err
		}
	}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != ']' {
		return d.errAt("", "the payload is a JSON array of more than %d elements", len(d.fields))
	}
	d.i++
	return nil
}

func (d *decoder) minElements() int {
	n := 0
	for k, f := range d.fields {
		if !f.optional {
			n = k + 1
		}
	}
	return n
}

func (d *decoder) value(k int, v *fieldValue) error {
	f := &d.fields[k]
	v.set = true
	if d.i >= len(d.s) {
		return d.errAt(f.name, "the value is cut off")
	}
	c := d.s[d.i]
	if c == 'n' && (f.kind == kOptString || f.kind == kOptBool) {
		v.null = true
		return d.literal(f.name, "null")
	}
	switch f.kind {
	case kString, kOptString, kTime:
		if c != '"' {
			return d.errAt(f.name, "is %s; upstream requires a string", d.describe())
		}
		s, err := d.str(f.name)
		if err != nil {
			return err
		}
		if f.kind != kTime {
			v.str = s
			return nil
		}
		t, err := ParseChrono(s)
		if err != nil {
			return &DecodeError{Field: f.name, Offset: d.i, Reason: err.Error()}
		}
		v.t = t
	case kOptBool:
		switch c {
		case 't':
			v.b = true
			return d.literal(f.name, "true")
		case 'f':
			return d.literal(f.name, "false")
		default:
			return d.errAt(f.name, "is %s; upstream requires true, false or null", d.describe())
		}
	case kInt32:
		return d.int32(f.name, &v.i32)
	}
	return nil
}

func (d *decoder) literal(field, word string) error {
	if !strings.HasPrefix(d.s[d.i:], word) {
		return d.errAt(field, "is not valid JSON (expected %s)", word)
	}
	d.i += len(word)
	return nil
}

// int32 reads an integer as serde_json does for an i32: no fraction, no
// exponent (1.0 and 1e2 are floats), no leading zero, and -0 is a float.
func (d *decoder) int32(field string, dst *int32) error {
	start := d.i
	c := d.s[d.i]
	if c != '-' && (c < '0' || c > '9') {
		return d.errAt(field, "is %s; upstream requires an integer", d.describe())
	}
	if err := d.skipNumber(); err != nil {
		err.Field = field
		return err
	}
	text := d.s[start:d.i]
	if strings.ContainsAny(text, ".eE") || text == "-0" {
		return &DecodeError{Field: field, Offset: start, Reason: fmt.Sprintf("is %s, a floating-point number; upstream requires an integer (at byte %d)", text, start)}
	}
	n, err := strconv.ParseInt(text, 10, 32)
	if err != nil {
		return &DecodeError{Field: field, Offset: start, Reason: fmt.Sprintf("is %s, outside the 32-bit integer range (at byte %d)", text, start)}
	}
	*dst = int32(n)
	return nil
}

// plain marks the bytes a string's fast loop passes over: printable ASCII
// other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string strictly (serde's parse_str): valid UTF-8, valid
// escapes, paired surrogates, no raw control characters. Without escapes
// the result is a slice of the payload's string, not a copy.
func (d *decoder) str(field string) (string, error) {
	d.i++ // the opening quote
	start, run := d.i, d.i
	var buf []byte // nil until the first escape
	var scratch *[]byte
	ascii := true
	for {
		for d.i < len(d.s) && plain[d.s[d.i]] {
			d.i++
		}
		if d.i >= len(d.s) {
			return "", d.errAt(field, "a string is cut off")
		}
		switch c := d.s[d.i]; {
		case c == '"':
			// Escapes are ASCII, so the raw text is valid UTF-8 exactly
			// when every unescaped run is.
			if !ascii && !utf8.ValidString(d.s[start:d.i]) {
				return "", d.invalidUTF8(field, start)
			}
			var s string
			if buf == nil {
				s = d.s[start:d.i]
			} else {
				buf = append(buf, d.s[run:d.i]...)
				s = string(buf)
				*scratch = buf
				unescaped.Put(scratch)
			}
			d.i++
			return s, nil
		case c >= 0x80:
			ascii = false
			d.i++
		case c < 0x20:
			return "", d.errAt(field, "has a raw control character %#02x in a string (JSON requires it escaped)", c)
		default: // a backslash
			if buf == nil {
				scratch = unescaped.Get().(*[]byte)
				buf = (*scratch)[:0]
			}
			buf = append(buf, d.s[run:d.i]...)
			var err error
			if buf, err = d.escape(field, buf); err != nil {
				return "", err
			}
			run = d.i
		}
	}
}

// unescaped lends the buffers escaped strings are built in: one grows to
// the longest string once, and each string is then copied out at its size
// (a 2 KB escaped stdout grew a buffer of its own nine times).
var unescaped = sync.Pool{New: func() any { return new([]byte) }}

// shortEscape is the byte a one-letter JSON escape stands for.
func shortEscape(c byte) (byte, bool) {
	switch c {
	case '"', '\\', '/':
		return c, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

func (d *decoder) escape(field string, buf []byte) ([]byte, error) {
	d.i++ // the backslash
	if d.i >= len(d.s) {
		return nil, d.errAt(field, "a string is cut off")
	}
	c := d.s[d.i]
	d.i++
	if b, ok := shortEscape(c); ok {
		return append(buf, b), nil
	}
	switch c {
	case 'u':
		r, err := d.hex4(field)
		if err != nil {
			return nil, err
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return nil, d.errAt(field, "has a lone UTF-16 low surrogate escape \\u%04x (not a character)", r)
		case r >= 0xD800 && r <= 0xDBFF:
			if !strings.HasPrefix(d.s[d.i:], `\u`) {
				return nil, d.errAt(field, "has a lone UTF-16 high surrogate escape \\u%04x (not a character)", r)
			}
			d.i += 2
			lo, err := d.hex4(field)
			if err != nil {
				return nil, err
			}
			if lo < 0xDC00 || lo > 0xDFFF {
				return nil, d.errAt(field, "has a UTF-16 high surrogate escape \\u%04x not followed by a low one", r)
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
		}
		return utf8.AppendRune(buf, r), nil
	default:
		d.i--
		return nil, d.errAt(field, "has an invalid escape \\%c in a string", c)
	}
}

func (d *decoder) hex4(field string) (rune, error) {
	if d.i+4 > len(d.s) {
		return 0, d.errAt(field, "has a \\u escape without four hex digits")
	}
	var r rune
	for _, c := range []byte(d.s[d.i : d.i+4]) {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, d.errAt(field, "has a \\u escape without four hex digits")
		}
	}
	d.i += 4
	return r, nil
}

func (d *decoder) invalidUTF8(field string, start int) error {
	for i := start; i < len(d.s); {
		r, size := utf8.DecodeRuneInString(d.s[i:])
		if r == utf8.RuneError && size == 1 {
			d.i = i
			return d.errAt(field, "has a byte %#02x that is not valid UTF-8", d.s[i])
		}
		i += size
	}
	return d.errAt(field, "is not valid UTF-8")
}

// skip passes over the value of an unknown key as serde's IgnoredAny
// does: the JSON grammar is checked, the content is not, and nesting is
// followed with a stack rather than recursion, so depth has no limit.
func (d *decoder) skip() error {
	var stack []byte
	for {
		// A value.
		d.ws()
		if d.i >= len(d.s) {
			return d.errAt("", "a value is cut off")
		}
		switch c := d.s[d.i]; {
		case c == '"':
			if err := d.skipString(); err != nil {
				return err
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if err := d.skipNumber(); err != nil {
				return err
			}
		case c == 't':
			if err := d.literal("", "true"); err != nil {
				return err
			}
		case c == 'f':
			if err := d.literal("", "false"); err != nil {
				return err
			}
		case c == 'n':
			if err := d.literal("", "null"); err != nil {
				return err
			}
		case c == '[' || c == '{':
			d.i++
			d.ws()
			if d.i < len(d.s) && d.s[d.i] == c+2 { // ']' or '}'
				d.i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if err := d.skipKey(); err != nil {
					return err
				}
			}
			continue
		default:
			return d.errAt("", "expected a JSON value, found byte %#02x", c)
		}
		// After a value: close what ends here, or go on to the next one.
		for {
			if len(stack) == 0 {
				return nil
			}
			d.ws()
			if d.i >= len(d.s) {
				return d.errAt("", "a value is cut off")
			}
			top := stack[len(stack)-1]
			c := d.s[d.i]
			if c == top+2 {
				d.i++
				stack = stack[:len(stack)-1]
				continue
			}
			if c != ',' {
				return d.errAt("", "expected ',' or %q", top+2)
			}
			d.i++
			d.ws()
			if d.i < len(d.s) && d.s[d.i] == top+2 {
				return d.errAt("", "a comma before %q (trailing commas are not JSON)", top+2)
			}
			if top == '{' {
				if err := d.skipKey(); err != nil {
					return err
				}
			}
			break
		}
	}
}

func (d *decoder) skipKey() error {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return d.errAt("", "a key must be a string in double quotes")
	}
	if err := d.skipString(); err != nil {
		return err
	}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != ':' {
		return d.errAt("", "expected ':' after a key")
	}
	d.i++
	return nil
}

// skipString is serde_json's ignore_str: escapes must be well formed and
// control characters escaped, but UTF-8 and surrogates are not checked.
func (d *decoder) skipString() error {
	d.i++
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return nil
		case c == '\\':
			d.i++
			if d.i >= len(d.s) {
				return d.errAt("", "a string is cut off")
			}
			switch d.s[d.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i++
			case 'u':
				d.i++
				if _, err := d.hex4(""); err != nil {
					return err
				}
			default:
				return d.errAt("", "has an invalid escape \\%c in a string", d.s[d.i])
			}
		case c < 0x20:
			return d.errAt("", "has a raw control character %#02x in a string (JSON requires it escaped)", c)
		default:
			d.i++
		}
	}
	return d.errAt("", "a string is cut off")
}

// skipNumber checks JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) skipNumber() *DecodeError {
	digits := func() int {
		n := 0
		for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
		if d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
			return d.errAt("", "a number has a leading zero")
		}
	case digits() == 0:
		return d.errAt("", "a number has no digits")
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return d.errAt("", "a number has no digits after its '.'")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return d.errAt("", "a number has no digits in its exponent")
		}
	}
	return nil
}
