package wire

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSONKind is the type of a JSON value.
type JSONKind uint8

const (
	JSONNull JSONKind = iota
	JSONBool
	JSONNumber
	JSONString
	JSONArray
	JSONObject
)

// numKind is which of serde_json's three number representations holds a
// number: a JSON integer that fits u64 or i64 stays an integer, anything
// else (a fraction, an exponent, a larger integer, -0) is an f64.
type numKind uint8

const (
	numPosInt numKind = iota
	numNegInt
	numFloat
)

// JSONValue is a JSON value as serde_json::Value holds it. The derived
// tables need serde's exact semantics, not Go's: 8 and 8.0 are different
// values (history), objects are re-serialized with their keys sorted and
// duplicates collapsed to the last (BTreeMap), and floats print as ryu
// prints them.
type JSONValue struct {
	Kind    JSONKind
	Bool    bool
	num     numKind
	Str     string
	Items   []JSONValue
	Members []JSONMember // sorted by key, keys unique
	// bits is a number's value as num says: a u64, an i64 or an f64's
	// bits. One word instead of three (and the three small fields side by
	// side) makes a value 80 bytes, not 104: a 20-app inventory allocates
	// about a fifth less to parse.
	bits uint64
}

func (v *JSONValue) u() uint64  { return v.bits }
func (v *JSONValue) i() int64   { return int64(v.bits) }
func (v *JSONValue) f() float64 { return math.Float64frombits(v.bits) }

// JSONMember is one key of an object.
type JSONMember struct {
	Key   string
	Value JSONValue
}

// Get returns an object's member, or nil (for a missing key or a value that
// is not an object, as serde_json's Value::get does).
func (v *JSONValue) Get(key string) *JSONValue {
	if v == nil || v.Kind != JSONObject {
		return nil
	}
	// sort.Search by hand: its closure was a fifth of working out a
	// scan's explode rows.
	lo, hi := 0, len(v.Members)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if v.Members[m].Key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(v.Members) && v.Members[lo].Key == key {
		return &v.Members[lo].Value
	}
	return nil
}

// Clone is a deep copy: a value that outlives the arena it was parsed in.
// Strings are shared (a parse never writes to one).
func (v *JSONValue) Clone() JSONValue {
	out := *v
	if v.Items != nil {
		out.Items = make([]JSONValue, len(v.Items))
		for i := range v.Items {
			out.Items[i] = v.Items[i].Clone()
		}
	}
	if v.Members != nil {
		out.Members = make([]JSONMember, len(v.Members))
		for i := range v.Members {
			out.Members[i] = JSONMember{Key: v.Members[i].Key, Value: v.Members[i].Value.Clone()}
		}
	}
	return out
}

// Equal is serde_json's PartialEq: an integer never equals a float, and
// floats compare as f64 (so -0.0 equals 0.0).
func (v *JSONValue) Equal(o *JSONValue) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case JSONNull:
		return true
	case JSONBool:
		return v.Bool == o.Bool
	case JSONString:
		return v.Str == o.Str
	case JSONNumber:
		if v.num != o.num {
			return false
		}
		switch v.num {
		case numPosInt:
			return v.u() == o.u()
		case numNegInt:
			return v.i() == o.i()
		default:
			return v.f() == o.f() // -0.0 equals 0.0, as serde compares
		}
	case JSONArray:
		if len(v.Items) != len(o.Items) {
			return false
		}
		for i := range v.Items {
			if !v.Items[i].Equal(&o.Items[i]) {
				return false
			}
		}
		return true
	default:
		if len(v.Members) != len(o.Members) {
			return false
		}
		for i := range v.Members {
			if v.Members[i].Key != o.Members[i].Key || !v.Members[i].Value.Equal(&o.Members[i].Value) {
				return false
			}
		}
		return true
	}
}

// Int64 returns an integer number that fits i64.
func (v *JSONValue) Int64() (int64, bool) {
	switch {
	case v.Kind != JSONNumber:
		return 0, false
	case v.num == numNegInt:
		return v.i(), true
	case v.num == numPosInt && v.u() <= math.MaxInt64:
		return int64(v.u()), true
	}
	return 0, false
}

// Float64 returns any number as f64 (serde_json's as_f64).
func (v *JSONValue) Float64() (float64, bool) {
	if v.Kind != JSONNumber {
		return 0, false
	}
	switch v.num {
	case numPosInt:
		return float64(v.u()), true
	case numNegInt:
		return float64(v.i()), true
	}
	return v.f(), true
}

// Compact is serde_json::to_string of the value.
func (v *JSONValue) Compact() string { return string(v.AppendCompact(nil)) }

// AppendCompact appends the compact serialization.
func (v *JSONValue) AppendCompact(b []byte) []byte {
	switch v.Kind {
	case JSONNull:
		return append(b, "null"...)
	case JSONBool:
		return strconv.AppendBool(b, v.Bool)
	case JSONString:
		return AppendJSONString(b, v.Str)
	case JSONNumber:
		return v.appendNumber(b)
	case JSONArray:
		b = append(b, '[')
		for i := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.Items[i].AppendCompact(b)
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i := range v.Members {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, v.Members[i].Key)
			b = append(b, ':')
			b = v.Members[i].Value.AppendCompact(b)
		}
		return append(b, '}')
	}
}

// NumberText is the number as serde_json prints it (Number's Display).
func (v *JSONValue) appendNumber(b []byte) []byte {
	switch v.num {
	case numPosInt:
		return strconv.AppendUint(b, v.u(), 10)
	case numNegInt:
		return strconv.AppendInt(b, v.i(), 10)
	}
	return AppendRyu(b, v.f())
}

// AppendRyu appends a finite f64 as the ryu crate (and so serde_json)
// prints it: the shortest digits that round-trip, in decimal notation
// when the decimal exponent is small enough and scientific otherwise, a
// whole number always with ".0" ("8.0", "1e16", "1.5e-7", "0.001").
func AppendRyu(b []byte, f float64) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// Shortest round-trip digits: "d.ddddde±XX".
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	length := len(digits)
	k := x - (length - 1) // value = digits × 10^k
	kk := length + k      // 10^(kk-1) <= value < 10^kk
	switch {
	case k >= 0 && kk <= 16:
		b = append(b, digits...)
		for i := 0; i < k; i++ {
			b = append(b, '0')
		}
		return append(b, ".0"...)
	case kk > 0 && kk <= 16:
		b = append(b, digits[:kk]...)
		b = append(b, '.')
		return append(b, digits[kk:]...)
	case kk > -5 && kk <= 0:
		b = append(b, "0."...)
		for i := 0; i < -kk; i++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	case length == 1:
		b = append(b, digits...)
		b = append(b, 'e')
		return strconv.AppendInt(b, int64(kk-1), 10)
	default:
		b = append(b, digits[0], '.')
		b = append(b, digits[1:]...)
		b = append(b, 'e')
		return strconv.AppendInt(b, int64(kk-1), 10)
	}
}

// JSONSyntaxError is serde_json's error for text that is not one JSON
// value; Error() is serde's message, "<reason> at line L column C".
type JSONSyntaxError struct {
	Reason       string
	Line, Column int
}

func (e *JSONSyntaxError) Error() string {
	return fmt.Sprintf("%s at line %d column %d", e.Reason, e.Line, e.Column)
}

// serde_json's error codes, as it prints them.
const (
	errEOFValue      = "EOF while parsing a value"
	errEOFList       = "EOF while parsing a list"
	errEOFObject     = "EOF while parsing an object"
	errEOFString     = "EOF while parsing a string"
	errColon         = "expected `:`"
	errListComma     = "expected `,` or `]`"
	errObjectComma   = "expected `,` or `}`"
	errIdent         = "expected ident"
	errValue         = "expected value"
	errEscape        = "invalid escape"
	errNumber        = "invalid number"
	errRange         = "number out of range"
	errControl       = "control character (\\u0000-\\u001F) found while parsing a string"
	errKeyString     = "key must be a string"
	errLoneSurrogate = "lone leading surrogate in hex escape"
	errTrailingComma = "trailing comma"
	errTrailing      = "trailing characters"
	errHexEnd        = "unexpected end of hex escape"
	errRecursion     = "recursion limit exceeded"
)

// ParseJSON is serde_json::from_str::<Value>: one JSON value with optional
// white space around it, nesting below serde's recursion limit of 128, and
// strings whose \u escapes pair their surrogates. An error is serde's.
func ParseJSON(s string) (JSONValue, error) { return (&jsonParser{s: s, depth: 128}).document() }

// document parses the whole text: one value and white space around it.
func (p *jsonParser) document() (JSONValue, error) {
	v, err := p.value()
	if err != nil {
		return JSONValue{}, err
	}
	if _, ok := p.ws(); ok {
		return JSONValue{}, p.peekErr(errTrailing)
	}
	return v, nil
}

type jsonParser struct {
	s       string
	i       int
	depth   int
	discard bool // check the grammar only: build no values
	// only, when set, builds only these members of a top-level object
	// (the rest is checked, not built).
	only []string
	// items and members are stacks the open arrays and objects collect
	// their elements on; each gets an exactly sized copy when it closes.
	// Growing every array's own slice from empty copied its elements
	// again and again: a sixth of a hint-heavy replay's CPU.
	items   []JSONValue
	members []JSONMember
	// arena, when set, holds the closed arrays and objects instead of
	// exactly sized copies of their own (JSONArena).
	arena *JSONArena
}

// JSONArena parses one document after another into memory it reuses: the
// value Parse returns, and every array and object in it, is valid only
// until the next Parse with the same arena. It is for a caller that reads
// each value and keeps nothing of it (Clone keeps a part): a hint-heavy
// replay parses each changed inventory, 20 apps of 4 fields, only to
// work out its rows and history, and ParseJSON allocated 17 KB for each,
// a third of that replay's allocation. Not safe for concurrent use.
type JSONArena struct {
	p       jsonParser
	items   []JSONValue  // the arrays' elements, one after another
	members []JSONMember // the objects' members, likewise
}

// arenaKeep is the most values an arena keeps between parses, of each of
// its four kinds of memory (about 6 MB of members): one huge document
// must not hold its memory for the rest of a replay.
const arenaKeep = 1 << 16

// Parse is ParseJSON into the arena's memory.
func (a *JSONArena) Parse(s string) (JSONValue, error) {
	// Cleared rather than only cut: what is left in them would keep the
	// last document's strings alive.
	clear(a.items)
	clear(a.members)
	a.items, a.members = keep(a.items), keep(a.members)
	a.p = jsonParser{s: s, depth: 128, items: keep(a.p.items), members: keep(a.p.members), arena: a}
	return a.p.document()
}

// keep is an arena's slice emptied for the next parse, or nil when it
// grew past arenaKeep.
func keep[E any](s []E) []E {
	if cap(s) > arenaKeep {
		return nil
	}
	return s[:0]
}

// closeArray is an array's elements, the open stack's top n, as the
// value keeps them: in the arena when there is one.
func (p *jsonParser) closeArray(n int) []JSONValue {
	top := p.items[len(p.items)-n:]
	p.items = p.items[:len(p.items)-n]
	var out []JSONValue
	if p.arena == nil {
		out = make([]JSONValue, n)
	} else {
		out = arenaSlot(&p.arena.items, n)
	}
	copy(out, top)
	return out
}

// arenaSlot takes the next n elements of an arena's block, starting a new
// block when the current one has no room (the values already closed keep
// the old one).
func arenaSlot[E any](block *[]E, n int) []E {
	if cap(*block)-len(*block) < n {
		*block = make([]E, 0, max(2*cap(*block), n, 256))
	}
	at := len(*block)
	*block = (*block)[:at+n]
	return (*block)[at : at+n : at+n]
}

// closeObject is likewise an object's members, the stack's top n, sorted
// by key with a repeated key's last value kept, as serde's BTreeMap keeps
// them. Their indexes are sorted and each member copied once into place:
// sorting the 96-byte members themselves moved each several times.
func (p *jsonParser) closeObject(n int) []JSONMember {
	top := p.members[len(p.members)-n:]
	var small [16]int
	idx := small[:0]
	if n > len(small) {
		idx = make([]int, 0, n)
	}
	for i := range n {
		idx = append(idx, i)
	}
	if n <= len(small) {
		for i := 1; i < n; i++ { // a stable insertion sort: most objects are small
			for j := i; j > 0 && top[idx[j-1]].Key > top[idx[j]].Key; j-- {
				idx[j-1], idx[j] = idx[j], idx[j-1]
			}
		}
	} else {
		slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(top[a].Key, top[b].Key) })
	}
	unique := n
	for i := 1; i < n; i++ {
		if top[idx[i]].Key == top[idx[i-1]].Key {
			unique--
		}
	}
	var out []JSONMember
	if p.arena == nil {
		out = make([]JSONMember, unique)
	} else {
		out = arenaSlot(&p.arena.members, unique)
	}
	k := 0
	for i, j := range idx {
		if i+1 < n && top[idx[i+1]].Key == top[j].Key {
			continue // the stable sort put the later value of this key next
		}
		out[k] = top[j]
		k++
	}
	p.members = p.members[:len(p.members)-n]
	return out
}

// ParseJSONMembers is ParseJSON for a caller that reads only some members
// of a top-level object: the whole text is checked as ParseJSON checks it,
// and the value holds only those members (any other value whole).
func ParseJSONMembers(s string, members []string) (JSONValue, error) {
	return (&jsonParser{s: s, depth: 128, only: members}).document()
}

// CheckJSON is ParseJSON's verdict without the value: nil when s is one
// JSON value as serde_json reads one, else serde's error. It allocates
// nothing for a valid text without escapes.
func CheckJSON(s string) error {
	_, err := (&jsonParser{s: s, depth: 128, discard: true}).document()
	return err
}

// errAt is serde's position of byte index i: lines counted by '\n', the
// column the bytes since the last one.
func (p *jsonParser) errAt(reason string, i int) error {
	start := strings.LastIndexByte(p.s[:i], '\n') + 1
	return &JSONSyntaxError{Reason: reason, Line: 1 + strings.Count(p.s[:start], "\n"), Column: i - start}
}

// err reports at the current index, peekErr at the byte after it (serde's
// error and peek_error).
func (p *jsonParser) err(reason string) error { return p.errAt(reason, p.i) }
func (p *jsonParser) peekErr(reason string) error {
	return p.errAt(reason, min(len(p.s), p.i+1))
}

func (p *jsonParser) ws() (byte, bool) {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case ' ', '\n', '\t', '\r':
			p.i++
		default:
			return c, true
		}
	}
	return 0, false
}

func (p *jsonParser) value() (JSONValue, error) {
	c, ok := p.ws()
	if !ok {
		return JSONValue{}, p.peekErr(errEOFValue)
	}
	switch {
	case c == 'n':
		p.i++
		return JSONValue{}, p.ident("ull")
	case c == 't':
		p.i++
		return JSONValue{Kind: JSONBool, Bool: true}, p.ident("rue")
	case c == 'f':
		p.i++
		return JSONValue{Kind: JSONBool}, p.ident("alse")
	case c == '-':
		p.i++
		return p.number(false)
	case c >= '0' && c <= '9':
		return p.number(true)
	case c == '"':
		p.i++
		s, err := p.str()
		return JSONValue{Kind: JSONString, Str: s}, err
	case c == '[':
		if p.depth--; p.depth == 0 {
			return JSONValue{}, p.peekErr(errRecursion)
		}
		p.i++
		v, err := p.array()
		p.depth++
		return v, err
	case c == '{':
		if p.depth--; p.depth == 0 {
			return JSONValue{}, p.peekErr(errRecursion)
		}
		p.i++
		v, err := p.object()
		p.depth++
		return v, err
	}
	return JSONValue{}, p.peekErr(errValue)
}

func (p *jsonParser) ident(rest string) error {
	for j := 0; j < len(rest); j++ {
		if p.i >= len(p.s) {
			return p.err(errEOFValue)
		}
		c := p.s[p.i]
		p.i++
		if c != rest[j] {
			return p.err(errIdent)
		}
	}
	return nil
}

func (p *jsonParser) array() (JSONValue, error) {
	v := JSONValue{Kind: JSONArray}
	base := len(p.items)
	for first := true; ; first = false {
		c, ok := p.ws()
		if !ok {
			return v, p.peekErr(errEOFList)
		}
		if c == ']' {
			p.i++
			if !p.discard {
				v.Items = p.closeArray(len(p.items) - base)
			}
			return v, nil
		}
		if !first {
			if c != ',' {
				return v, p.peekErr(errListComma)
			}
			p.i++
			if c, ok = p.ws(); !ok {
				return v, p.peekErr(errEOFValue)
			}
			if c == ']' {
				return v, p.peekErr(errTrailingComma)
			}
		}
		item, err := p.value()
		if err != nil {
			return v, err
		}
		if !p.discard {
			p.items = append(p.items, item)
		}
	}
}

func (p *jsonParser) object() (JSONValue, error) {
	v := JSONValue{Kind: JSONObject}
	base := len(p.members)
	for first := true; ; first = false {
		c, ok := p.ws()
		if !ok {
			return v, p.peekErr(errEOFObject)
		}
		if c == '}' {
			p.i++
			if !p.discard {
				v.Members = p.closeObject(len(p.members) - base)
			}
			return v, nil
		}
		if !first {
			if c != ',' {
				return v, p.peekErr(errObjectComma)
			}
			p.i++
			if c, ok = p.ws(); !ok {
				return v, p.peekErr(errEOFValue)
			}
		}
		switch {
		case c == '}':
			return v, p.peekErr(errTrailingComma)
		case c != '"':
			return v, p.peekErr(errKeyString)
		}
		p.i++
		key, err := p.str()
		if err != nil {
			return v, err
		}
		if c, ok = p.ws(); !ok {
			return v, p.peekErr(errEOFObject)
		} else if c != ':' {
			return v, p.peekErr(errColon)
		}
		p.i++
		skip := p.only != nil && p.depth == 127 && !slices.Contains(p.only, key)
		if skip {
			p.discard = true
		}
		val, err := p.value()
		if skip {
			p.discard = false
		}
		if err != nil {
			return v, err
		}
		if !p.discard && !skip {
			p.members = append(p.members, JSONMember{Key: key, Value: val})
		}
	}
}

// str parses a string after its opening quote.
func (p *jsonParser) str() (string, error) {
	var buf []byte
	start := p.i
	for {
		for p.i < len(p.s) && p.s[p.i] != '"' && p.s[p.i] != '\\' && p.s[p.i] >= 0x20 {
			p.i++
		}
		if p.i >= len(p.s) {
			return "", p.err(errEOFString)
		}
		switch p.s[p.i] {
		case '"':
			var s string
			if buf == nil || p.discard {
				s = p.s[start:p.i]
			} else {
				s = string(append(buf, p.s[start:p.i]...))
			}
			p.i++
			return s, nil
		case '\\':
			buf = append(buf, p.s[start:p.i]...)
			p.i++
			var err error
			if buf, err = p.escape(buf); err != nil {
				return "", err
			}
			start = p.i
		default:
			p.i++
			return "", p.err(errControl)
		}
	}
}

func (p *jsonParser) escape(buf []byte) ([]byte, error) {
	if p.i >= len(p.s) {
		return nil, p.err(errEOFString)
	}
	c := p.s[p.i]
	p.i++
	if b, ok := shortEscape(c); ok {
		return append(buf, b), nil
	}
	if c != 'u' {
		return nil, p.err(errEscape)
	}
	n, err := p.hex4()
	if err != nil {
		return nil, err
	}
	switch {
	case n >= 0xDC00 && n <= 0xDFFF:
		return nil, p.err(errLoneSurrogate)
	case n >= 0xD800 && n <= 0xDBFF:
		for _, want := range []byte{'\\', 'u'} {
			if p.i >= len(p.s) {
				return nil, p.err(errEOFString)
			}
			got := p.s[p.i]
			p.i++
			if got != want {
				return nil, p.err(errHexEnd)
			}
		}
		n2, err := p.hex4()
		if err != nil {
			return nil, err
		}
		if n2 < 0xDC00 || n2 > 0xDFFF {
			return nil, p.err(errLoneSurrogate)
		}
		n = 0x10000 + (n-0xD800)<<10 + (n2 - 0xDC00)
	}
	return utf8.AppendRune(buf, rune(n)), nil
}

func (p *jsonParser) hex4() (uint32, error) {
	if len(p.s)-p.i < 4 {
		p.i = len(p.s)
		return 0, p.err(errEOFString)
	}
	var n uint32
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			p.i += 4
			return 0, p.err(errEscape)
		}
		n = n<<4 | uint32(d)
	}
	p.i += 4
	return n, nil
}

// number parses after an optional '-' (positive is false when there was
// one), by serde's grammar and its choice of representation.
func (p *jsonParser) number(positive bool) (JSONValue, error) {
	start := p.i
	if !positive {
		start--
	}
	if p.i >= len(p.s) {
		return JSONValue{}, p.err(errEOFValue)
	}
	c := p.s[p.i]
	p.i++
	switch {
	case c == '0':
		if p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			return JSONValue{}, p.peekErr(errNumber)
		}
	case c >= '1' && c <= '9':
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
	default:
		return JSONValue{}, p.err(errNumber)
	}
	float := false
	if p.i < len(p.s) && p.s[p.i] == '.' {
		float = true
		p.i++
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		if n == 0 {
			if p.i < len(p.s) {
				return JSONValue{}, p.peekErr(errNumber)
			}
			return JSONValue{}, p.peekErr(errEOFValue)
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		float = true
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.i >= len(p.s) {
			return JSONValue{}, p.err(errEOFValue)
		}
		c := p.s[p.i]
		p.i++
		if c < '0' || c > '9' {
			return JSONValue{}, p.err(errNumber)
		}
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
	}
	text := p.s[start:p.i]
	if !float {
		if positive {
			if u, err := strconv.ParseUint(text, 10, 64); err == nil {
				return JSONValue{Kind: JSONNumber, num: numPosInt, bits: u}, nil
			}
		} else if n, err := strconv.ParseInt(text, 10, 64); err == nil && n != 0 {
			return JSONValue{Kind: JSONNumber, num: numNegInt, bits: uint64(n)}, nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return JSONValue{}, p.err(errRange)
	}
	return JSONValue{Kind: JSONNumber, num: numFloat, bits: math.Float64bits(f)}, nil
}
