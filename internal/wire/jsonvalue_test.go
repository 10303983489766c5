package wire_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kanadehq/kanade-cli/internal/wire"
	"github.com/kanadehq/kanade-cli/internal/wire/serdevec"
)

// syntaxOnly tells serde's syntax errors (the same whether the target is
// a struct or a Value) from the errors its ExecResult struct adds.
func syntaxOnly(msg string) bool {
	for _, s := range []string{"missing field", "invalid type", "duplicate field", "invalid value", "invalid length", "input contains", "premature end", "trailing input", "input is out of range", "no possible date"} {
		if strings.Contains(msg, s) {
			return false
		}
	}
	return true
}

// structOnly names the rejections that come from serde's struct decoder,
// not its grammar: a positional array one element too long, and a control
// character in an unknown key's value, which serde's skipping path reports
// one byte earlier than its string parser (the one a Value uses) does.
func structOnly(name string) bool {
	return strings.HasPrefix(name, "frame/top_array") || name == "unknown/value_raw_control_char"
}

// The serde vectors were decoded by serde_json itself: every syntax error
// it reported must come out of ParseJSON with the same text and position,
// and every payload it accepted must parse (unless the only problem is in
// an unknown key's value, which serde's struct decoder skips unchecked).
func TestParseJSONAgreesWithSerde(t *testing.T) {
	checked := 0
	for _, v := range serdevec.Load(t, "testdata/serde_vectors.jsonl") {
		p := v.Payload()
		if !utf8.Valid(p) {
			continue // from_str takes a Rust &str: a stdout is always valid UTF-8
		}
		_, err := wire.ParseJSON(string(p))
		switch {
		case v.OK && err != nil && !strings.HasPrefix(v.Name, "unknown/"):
			t.Errorf("%s: serde accepted it, ParseJSON says %v", v.Name, err)
		case !v.OK && syntaxOnly(v.Error) && !structOnly(v.Name):
			checked++
			if err == nil || err.Error() != v.Error {
				t.Errorf("%s: serde says %q, ParseJSON %v", v.Name, v.Error, err)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d syntax errors compared", checked)
	}
}

func TestParseJSONSemantics(t *testing.T) {
	for _, c := range []struct{ in, compact string }{
		{`  {"b":1,"a":[true,null,"x"],"b":2} `, `{"a":[true,null,"x"],"b":2}`},
		{`8`, `8`},
		{`8.0`, `8.0`},
		{`8.00`, `8.0`},
		{`1E2`, `100.0`},
		{`-0`, `-0.0`},
		{`-5`, `-5`},
		{`18446744073709551615`, `18446744073709551615`},
		{`18446744073709551616`, `1.8446744073709552e19`},
		{`-9223372036854775809`, `-9.223372036854776e18`},
		{`0.1`, `0.1`},
		{`1e16`, `1e16`},
		{`1e15`, `1000000000000000.0`},
		{`123456789012345678`, `123456789012345678`},
		{`1.5e-7`, `1.5e-7`},
		{`0.0001`, `0.0001`},
		{`0.00001`, `0.00001`},
		{`0.000001`, `1e-6`},
		{`1.25e300`, `1.25e300`},
		{`"a\u00e9\ud83d\ude00\n\u0001/"`, "\"a\u00e9\U0001F600\\n\\u0001/\""},
	} {
		v, err := wire.ParseJSON(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := v.Compact(); got != c.compact {
			t.Errorf("%s: compact %s, want %s", c.in, got, c.compact)
		}
	}
	eq := func(a, b string) bool {
		x, _ := wire.ParseJSON(a)
		y, _ := wire.ParseJSON(b)
		return x.Equal(&y)
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{`8`, `8.0`, false}, {`8.0`, `8.00`, true}, {`-0.0`, `0.0`, true}, {`0`, `-0`, false},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, true}, {`[1,2]`, `[2,1]`, false}, {`"x"`, `"x"`, true},
	} {
		if got := eq(c.a, c.b); got != c.want {
			t.Errorf("%s == %s: %v, want %v", c.a, c.b, got, c.want)
		}
	}
	deep := strings.Repeat("[", 127) + strings.Repeat("]", 127)
	if _, err := wire.ParseJSON(deep); err != nil {
		t.Errorf("127 levels: %v", err)
	}
	if _, err := wire.ParseJSON("[" + deep + "]"); err == nil || !strings.Contains(err.Error(), "recursion limit exceeded") {
		t.Errorf("128 levels: %v", err)
	}
	for in, want := range map[string]string{
		"":            "EOF while parsing a value at line 1 column 0",
		"not json":    "expected ident at line 1 column 2",
		"{} x":        "trailing characters at line 1 column 4",
		"[1,]":        "trailing comma at line 1 column 4",
		"{\n\"a\" 1}": "expected `:` at line 2 column 5",
		"1e400":       "number out of range at line 1 column 5",
	} {
		if _, err := wire.ParseJSON(in); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", in, err, want)
		}
	}
	if b := wire.AppendRyu(nil, math.MaxFloat64); string(b) != "1.7976931348623157e308" {
		t.Errorf("max float: %s", b)
	}
}

// CheckJSON gives ParseJSON's verdict on every serde vector and case.
func TestCheckJSONAgreesWithParseJSON(t *testing.T) {
	ins := []string{"", "not json", "{} x", "[1,]", "{\n\"a\" 1}", "1e400", `{"a":"\ud800"}`, `{"a":[1,{"b":"\u00e9"}],"a":2}`, strings.Repeat("[", 200)}
	for _, v := range serdevec.Load(t, "testdata/serde_vectors.jsonl") {
		if p := v.Payload(); utf8.Valid(p) {
			ins = append(ins, string(p))
		}
	}
	for _, in := range ins {
		_, perr := wire.ParseJSON(in)
		cerr := wire.CheckJSON(in)
		if (perr == nil) != (cerr == nil) || (perr != nil && perr.Error() != cerr.Error()) {
			t.Errorf("%.60q: ParseJSON %v, CheckJSON %v", in, perr, cerr)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = wire.CheckJSON(`{"cpu":"x","disks":[{"n":"C:","gb":256},{"n":"D:","gb":1e3}],"ok":true}`) }); n > 1 {
		t.Errorf("CheckJSON allocates %.0f times", n)
	}
}

// ParseJSONMembers checks what ParseJSON checks and keeps only the named
// members of a top-level object.
func TestParseJSONMembers(t *testing.T) {
	for _, in := range []string{`{"a":1,"b":[1,{"c":2}],"c":"x","a":2}`, `{"b":[1,]}`, `[{"a":1}]`, `{"a":{"a":1,"b":2}}`, ``, `{"b":"\ud800"}`} {
		full, ferr := wire.ParseJSON(in)
		part, perr := wire.ParseJSONMembers(in, []string{"a"})
		if (ferr == nil) != (perr == nil) || (ferr != nil && ferr.Error() != perr.Error()) {
			t.Errorf("%s: ParseJSON %v, ParseJSONMembers %v", in, ferr, perr)
			continue
		}
		if ferr != nil {
			continue
		}
		want := full.Compact()
		if full.Kind == wire.JSONObject {
			want = "{}"
			if a := full.Get("a"); a != nil {
				want = `{"a":` + a.Compact() + `}`
			}
		}
		if got := part.Compact(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// A JSONArena parses every text as ParseJSON does, one after another in
// the same memory (each value read before the next parse), including
// documents that outgrow its blocks mid-parse and objects too large for
// the small-object sort; a Clone outlives the parses after it.
func TestJSONArenaParsesAsParseJSON(t *testing.T) {
	var texts []string
	for _, v := range serdevec.Load(t, "testdata/serde_vectors.jsonl") {
		if p := v.Payload(); utf8.Valid(p) {
			texts = append(texts, string(p))
		}
	}
	var big, wide strings.Builder
	big.WriteString(`{"apps":[`)
	for i := range 3000 {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `{"name":"App %d","version":"1.%d","size":%d,"tags":[%d,{"z":1,"a":[]}],"name":"dup %d"}`, i, i%7, i, i, i)
	}
	big.WriteString(`],"b":[],"a":{}}`)
	wide.WriteByte('{')
	for i := range 40 {
		fmt.Fprintf(&wide, `"k%02d":%d,`, (i*17)%23, i) // 23 keys, most of them twice
	}
	wide.WriteString(`"k00":"last"}`)
	texts = append(texts, big.String(), `{"z":1,"y":2,"z":3,"a":[1,[2,[]],{}]}`, wide.String(), `[]`, `{}`, `[{}]`, `{"a":[],"b":{}}`, big.String())

	var arena wire.JSONArena
	first, err := arena.Parse(`{"keep":[1,{"b":2,"a":"x"}],"also":{"n":null}}`)
	if err != nil {
		t.Fatal(err)
	}
	kept := first.Clone()
	compared := 0
	for _, in := range texts {
		want, werr := wire.ParseJSON(in)
		got, gerr := arena.Parse(in)
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Fatalf("%.80q: ParseJSON %v, arena %v", in, werr, gerr)
		}
		if werr == nil {
			compared++
			if w, g := want.Compact(), got.Compact(); w != g || !want.Equal(&got) {
				t.Fatalf("%.80q: arena gave %.200s, want %.200s", in, g, w)
			}
		}
	}
	if compared < 100 {
		t.Fatalf("only %d values compared", compared)
	}
	if got := kept.Compact(); got != `{"also":{"n":null},"keep":[1,{"a":"x","b":2}]}` {
		t.Errorf("a clone changed with later parses: %s", got)
	}
}
