package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// Spec section 7, examples 8 to 13: what an inventory hint reads.
func TestFencedPayloadSpecExamples(t *testing.T) {
	for _, c := range []struct {
		name, stdout, want string
		ok, valid          bool
	}{
		{"8 trimmed, CRLF", "  {\"a\":1}\r\n", `{"a":1}`, true, true},
		{"9 fenced between other text", "hi\n#KANADE-INVENTORY-BEGIN\r\n{\"a\":1}\r\n#KANADE-INVENTORY-END\nbye", `{"a":1}`, true, true},
		{"10 indented marker is no fence", "  #KANADE-INVENTORY-BEGIN\n{}\n", "#KANADE-INVENTORY-BEGIN\n{}", true, false},
		{"11 no END runs to the end", "#KANADE-INVENTORY-BEGIN\n{\"a\":1}\n", `{"a":1}`, true, true},
		{"12 only another hint's fence", "#KANADE-CHECK-BEGIN\n{\"status\":\"ok\"}\n#KANADE-CHECK-END\n", "", false, false},
		{"13 an array", "[1,2]\n", "[1,2]", true, true},
		{"13 a string", "\"x\"", `"x"`, true, true},
		{"first own fence wins", "#KANADE-INVENTORY-BEGIN\n1\n#KANADE-INVENTORY-END\n#KANADE-INVENTORY-BEGIN\n2\n", "1", true, true},
		{"END only at a line start", "#KANADE-INVENTORY-BEGIN\n{\"a\":\"x #KANADE-INVENTORY-END\"}\n", `{"a":"x #KANADE-INVENTORY-END"}`, true, true},
		{"own fence beside another", "#KANADE-CHECK-BEGIN\n{}\n#KANADE-CHECK-END\n#KANADE-INVENTORY-BEGIN\n[3]\n", "[3]", true, true},
		{"Unicode space trimmed", "\u00a0{\"a\":1}\u2003\n", `{"a":1}`, true, true},
	} {
		got, ok := FencedPayload(c.stdout, HintInventory)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
		if ok && json.Valid([]byte(got)) != c.valid {
			t.Errorf("%s: %q valid JSON = %v", c.name, got, !c.valid)
		}
	}
}

// FuzzFencedPayload: any stdout, no panic; the payload is trimmed text
// that stdout contains.
func FuzzFencedPayload(f *testing.F) {
	for _, s := range []string{"{}", "#KANADE-INVENTORY-BEGIN\n{}\n#KANADE-INVENTORY-END", "#KANADE-FEED-BEGIN\n", "x\n#KANADE-INVENTORY-BEGIN", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stdout string) {
		for _, hint := range fenceHints {
			p, ok := FencedPayload(stdout, hint)
			if !ok && p != "" {
				t.Fatalf("nothing for %s but a payload %q", hint, p)
			}
			if !strings.Contains(stdout, p) || strings.TrimFunc(p, unicode.IsSpace) != p {
				t.Fatalf("%s: payload %q is not trimmed text of %q", hint, p, stdout)
			}
		}
	})
}
