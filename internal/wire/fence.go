package wire

import (
	"strings"
	"unicode"
)

// Hints whose payload a script's stdout may fence.
const (
	HintInventory = "INVENTORY"
	HintCheck     = "CHECK"
	HintCollect   = "COLLECT"
	HintFeed      = "FEED"
)

var fenceHints = []string{HintInventory, HintCheck, HintCollect, HintFeed}

// FencedPayload is the text a hint reads from a script's stdout (spec
// 4b.1). Lines that begin, in column 0, with #KANADE-<HINT>-BEGIN and
// #KANADE-<HINT>-END fence it: the payload runs from after the first own
// BEGIN marker to the next own END marker at a line start, or to the end of
// stdout when there is none. Without an own fence but with another hint's
// BEGIN at a line start the payload is empty (ok is false: nothing for this
// hint). Without any fence it is all of stdout. It is then trimmed of
// Unicode white space (\r included); the caller checks that it is JSON.
func FencedPayload(stdout, hint string) (payload string, ok bool) {
	begin, end := "#KANADE-"+hint+"-BEGIN", "#KANADE-"+hint+"-END"
	if i := markerAt(stdout, begin, 0); i >= 0 {
		body := stdout[i+len(begin):]
		if j := markerAt(body, end, 1); j >= 0 {
			body = body[:j]
		}
		return strings.TrimFunc(body, unicode.IsSpace), true
	}
	for _, other := range fenceHints {
		if other != hint && markerAt(stdout, "#KANADE-"+other+"-BEGIN", 0) >= 0 {
			return "", false
		}
	}
	return strings.TrimFunc(stdout, unicode.IsSpace), true
}

// markerAt is the index of the first marker that starts a line of s (from
// byte from on; at 0 only when from is 0), or -1.
func markerAt(s, marker string, from int) int {
	for i := from; i <= len(s)-len(marker); {
		j := strings.Index(s[i:], marker)
		if j < 0 {
			return -1
		}
		at := i + j
		if at == 0 || s[at-1] == '\n' {
			return at
		}
		i = at + 1
	}
	return -1
}
