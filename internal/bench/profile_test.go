//go:build bench

package bench

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// TestReplayProfile writes a CPU profile of an in-process replay
// (KANADE_PROFILE=path) into PostgreSQL, or into SQLite with
// KANADE_PROFILE_STORE=sqlite, for finding where time goes.
func TestReplayProfile(t *testing.T) {
	path := os.Getenv("KANADE_PROFILE")
	if path == "" {
		t.Skip("set KANADE_PROFILE=cpu.out")
	}
	ctx := context.Background()
	fleet := sim.Bulk(200000, 3)
	js := testutil.JetStream(t)
	if err := streams.EnsureLayout(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := sim.PublishAll(ctx, js, fleet.Results); err != nil {
		t.Fatal(err)
	}
	dsn := testutil.PostgresDSN(t)
	if os.Getenv("KANADE_PROFILE_STORE") == "sqlite" {
		dsn = testutil.SQLitePath(t)
	}
	st := openSeeded(t, ctx, dsn, fleet)
	stopMem := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopMem:
				return
			case <-time.After(500 * time.Millisecond):
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				t.Logf("heap in use %d MB, sys %d MB", ms.HeapInuse>>20, ms.Sys>>20)
			}
		}
	}()
	defer close(stopMem)
	f, _ := os.Create(path)
	pprof.StartCPUProfile(f)
	sum, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, Batch: 5000})
	pprof.StopCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.0f msg/s", sum.RatePerSecond)
}
