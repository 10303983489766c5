package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// heapAtPeak writes a heap profile to path whenever the heap in use grows
// past its highest mark by a tenth, so the file ends up describing the
// command near its peak (KANADE_MEMPROFILE=path: a diagnostic for the
// replay's memory, not a feature). It returns the function that stops it.
func heapAtPeak(path string) func() {
	done := make(chan struct{})
	go func() {
		var peak uint64
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse < peak+peak/10 {
				continue
			}
			peak = ms.HeapInuse
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0) //nolint:errcheck // best effort: a diagnostic
				f.Close()
			}
		}
	}()
	return func() { close(done) }
}

// cpuProfile profiles the whole command's CPU into path
// (KANADE_CPUPROFILE=path: a diagnostic, as KANADE_MEMPROFILE is, for the
// replay as a process beside its database, which the in-process profiles
// of internal/bench do not show). It returns the function that stops it.
func cpuProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
