package projector

import (
	"strings"
	"testing"
	"unsafe"
)

// The ids a projector remembers outlive their batch by two batches; if
// they were slices of the decoded results' strings they would keep every
// result's stdout and stderr alive with them.
func TestRememberedIDsKeepNoBatchStrings(t *testing.T) {
	decoded := strings.Repeat("x", 4096) + "0195f7a2-0000-7000-8000-000000000001" + "0195f7a2-0000-7000-8000-000000000002"
	lo := uintptr(unsafe.Pointer(unsafe.StringData(decoded)))
	hi := lo + uintptr(len(decoded))
	b := &Batch{items: []item{{id: decoded[4096 : 4096+36]}, {id: decoded[4096+36:]}}}
	p := &Projector{}
	p.remember(b)
	if len(p.written[1]) != 2 {
		t.Fatalf("remembered %d ids, want 2", len(p.written[1]))
	}
	for id := range p.written[1] {
		if at := uintptr(unsafe.Pointer(unsafe.StringData(id))); at >= lo && at < hi {
			t.Errorf("remembered id %s points into the batch's decoded strings", id)
		}
		if !p.recentlyWritten(id) {
			t.Errorf("id %s is not recently written", id)
		}
	}
}
