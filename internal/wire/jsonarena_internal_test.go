package wire

import (
	"strings"
	"testing"
)

// An arena gives back the memory of a document far larger than the
// usual ones at its next parse, and keeps the memory of usual ones.
func TestJSONArenaDropsHugeBlocks(t *testing.T) {
	var a JSONArena
	huge := "[" + strings.Repeat(`{"a":1,"b":[2]},`, 3*arenaKeep) + "{}]"
	if _, err := a.Parse(huge); err != nil {
		t.Fatal(err)
	}
	if cap(a.items) <= arenaKeep || cap(a.members) <= arenaKeep || cap(a.p.items) <= arenaKeep {
		t.Fatalf("the huge document did not fill the arena: %d items, %d members, %d on the stack", cap(a.items), cap(a.members), cap(a.p.items))
	}
	if _, err := a.Parse(`{"apps":[{"name":"x"}]}`); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]int{"items": cap(a.items), "members": cap(a.members), "item stack": cap(a.p.items), "member stack": cap(a.p.members)} {
		if c > arenaKeep {
			t.Errorf("%s kept %d values after a small document", name, c)
		}
	}
	small := cap(a.members)
	if _, err := a.Parse(`{"apps":[{"name":"y"}]}`); err != nil {
		t.Fatal(err)
	}
	if small == 0 || cap(a.members) != small {
		t.Errorf("a small document's members were not reused: %d, then %d", small, cap(a.members))
	}
}
