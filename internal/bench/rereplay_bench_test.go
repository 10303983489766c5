//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

var rereplayN = flag.Int("bench.rereplay.n", 200000, "messages in the re-replay workload")

// TestReReplayPerformance: a replay of a stream already fully projected,
// against the fresh replay that projected it, in process from JetStream,
// the simulator's bulk fleet; the re-replay must write nothing.
func TestReReplayPerformance(t *testing.T) {
	ctx := context.Background()
	fleet, js := bulkStream(t, ctx, *rereplayN)
	fmt.Printf("| N | store | fresh msg/s | re-replay msg/s | ratio median (min–max) |\n|---|---|---|---|---|\n")
	for _, kind := range benchStores() {
		var fresh, again, ratios []float64
		for range *reps {
			st := openSeeded(t, ctx, freshDSN(t, kind), fleet)
			o := replay.Options{Stream: streams.Results, Batch: *batch}
			a, err := replay.Run(ctx, st, js, o)
			if err != nil {
				t.Fatal(err)
			}
			b, err := replay.Run(ctx, st, js, o)
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if b.Stats.Wrote() {
				t.Errorf("the re-replay wrote: %+v", b.Stats)
			}
			fresh, again, ratios = append(fresh, a.RatePerSecond), append(again, b.RatePerSecond), append(ratios, b.RatePerSecond/a.RatePerSecond)
			t.Logf("%s: fresh %.0f, again %.0f msg/s, ratio %.2f", kind, a.RatePerSecond, b.RatePerSecond, b.RatePerSecond/a.RatePerSecond)
		}
		fmt.Printf("| %d | %s | %.0f | %.0f | %.2f (%.2f–%.2f) |\n", len(fleet.Results), kind, median(fresh), median(again),
			median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
}
