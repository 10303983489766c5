package pgstore

import "testing"

// After a failed direct COPY the gate stays shut for 1, 2, 4 ... 64
// batches, and one success opens it for every batch again.
func TestCopyGateBacksOff(t *testing.T) {
	var g copyGate
	shutFor := func() int {
		n := 0
		for !g.allow() {
			n++
		}
		return n
	}
	if !g.allow() {
		t.Fatal("a new gate is shut")
	}
	for _, want := range []int{1, 2, 4, 8, 16, 32, 64, 64} {
		g.record(false)
		if got := shutFor(); got != want {
			t.Fatalf("shut for %d batches, want %d", got, want)
		}
	}
	g.record(true)
	g.record(false)
	if got := shutFor(); got != 1 {
		t.Fatalf("after a success the backoff restarts: shut for %d, want 1", got)
	}
	g.always = true
	g.record(false)
	if !g.allow() {
		t.Fatal("an always-open gate shut")
	}
}
