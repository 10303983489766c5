package cli

import (
	"runtime/debug"
	"testing"
)

// gcPercent reads the collector's target (SetGCPercent is the only way to
// read it, so it is swapped and swapped back).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestLowerGCTargetUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	restore := lowerGCTarget(func(string) (string, bool) { return "", false }, 40)
	if got := gcPercent(); got != 40 {
		t.Errorf("GC target without GOGC = %d, want 40", got)
	}
	restore()
	if got := gcPercent(); got != 100 {
		t.Errorf("GC target after restore = %d, want 100", got)
	}

	// An operator's GOGC wins, whatever its value (even GOGC=100 or off).
	restore = lowerGCTarget(func(k string) (string, bool) { return "100", k == "GOGC" }, 40)
	if got := gcPercent(); got != 100 {
		t.Errorf("GC target with GOGC set = %d, want it left at 100", got)
	}
	restore()
}
