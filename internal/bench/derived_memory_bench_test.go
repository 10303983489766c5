//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDerivedMemory is what an operator's hint-heavy replay costs: the
// `kanade` binary (with the CLI's own GC target, which the in-process
// TestDerivedPerformance does not have) replaying the derived-tables
// workload, with and without hints, its rate and peak RSS. The batch
// bounds a replay's payloads, but not what the projector makes of them,
// so this is where that shows:
// go test -tags bench -run TestDerivedMemory -v ./internal/bench -args -bench.derived.n=100000 [-bench.derived.pcs=10000]
func TestDerivedMemory(t *testing.T) {
	ctx := context.Background()
	bin := buildKanade(t)
	url, _, msgs, kv := publishDerived(t, ctx, *derivedN)
	fmt.Printf("| N | PCs | store | hints | msg/s | peak RSS MB |\n|---|---|---|---|---|---|\n")
	for _, kind := range benchStores() {
		for _, hints := range []bool{false, true} {
			m, err := json.Marshal(derivedManifest(hints))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, "inv", m); err != nil {
				t.Fatal(err)
			}
			args := []string{"--db", freshDSN(t, kind), "--nats-url", url, "stream", "replay", "--progress", "none", "-o", "json"}
			if *batch > 0 {
				args = append(args, "--batch", fmt.Sprint(*batch))
			}
			rate, hwm := runPeak(t, ctx, bin, args, len(msgs))
			fmt.Printf("| %d | %d | %s | %v | %.0f | %d |\n", len(msgs), *derivedPCs, kind, hints, rate, hwm)
		}
	}
}

// runPeak runs the binary to the end and returns its rate over n messages
// and its peak RSS in MB (VmHWM, read until it exits).
func runPeak(t *testing.T, ctx context.Context, bin string, args []string, n int) (float64, int64) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := watchPeak(cmd.Process.Pid)
	err := cmd.Wait()
	elapsed := time.Since(start)
	hwm := peak()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return float64(n) / elapsed.Seconds(), hwm / 1024
}
