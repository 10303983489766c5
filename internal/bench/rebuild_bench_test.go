//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

var rebuildN = flag.Int("bench.rebuild.n", 200000, "messages in the rebuild workload")

// TestRebuildPerformance: `stream replay --rebuild` (shadow tables, the
// whole stream, the diff and the swap) of a stream already projected,
// against the fresh replays (EVENTS, then RESULTS) that projected it, in process from JetStream,
// the simulator's bulk fleet. The rebuild's rate counts its whole run, and
// it must find the tables as the replay left them.
func TestRebuildPerformance(t *testing.T) {
	ctx := context.Background()
	fleet, js := bulkStream(t, ctx, *rebuildN)
	fmt.Printf("| N | store | fresh replay msg/s | rebuild msg/s | ratio median (min–max) |\n|---|---|---|---|---|\n")
	for _, kind := range benchStores() {
		var fresh, rebuilt, ratios []float64
		for range *reps {
			st := openSeeded(t, ctx, freshDSN(t, kind), fleet)
			// As an operator projects a stream: EVENTS first, whose started
			// events make the in-flight rows RESULTS then completes; a
			// rebuild of RESULTS does the same.
			var n float64
			var took time.Duration
			for _, stream := range []string{streams.Events, streams.Results} {
				sum, err := replay.Run(ctx, st, js, replay.Options{Stream: stream, Batch: *batch})
				if err != nil {
					t.Fatal(err)
				}
				n, took = n+float64(sum.Stats.Messages), took+sum.Elapsed
			}
			o := replay.Options{Stream: streams.Results, Batch: *batch}
			rep, err := replay.Rebuild(ctx, st, js, o, true)
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if d := rep.Diff; d.OnlyLive+d.OnlyShadow+d.Changed+d.ExecutionsDiff != 0 {
				t.Errorf("the rebuild found the replay's tables different: %+v", d)
			}
			a, b := n/took.Seconds(), n/rep.Elapsed
			fresh, rebuilt, ratios = append(fresh, a), append(rebuilt, b), append(ratios, b/a)
			t.Logf("%s: fresh %.0f msg/s (%.1f s), rebuild %.0f msg/s (%.1f s, %d rows carried over), ratio %.2f", kind, a, took.Seconds(), b, rep.Elapsed, rep.Carried, b/a)
		}
		fmt.Printf("| %d | %s | %.0f | %.0f | %.2f (%.2f–%.2f) |\n", len(fleet.Results), kind, median(fresh), median(rebuilt),
			median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
}
