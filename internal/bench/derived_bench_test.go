//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

var (
	derivedN     = flag.Int("bench.derived.n", 100000, "results in the derived-tables workload")
	derivedChurn = flag.Float64("bench.derived.churn", 0.3, "share of scans that change something (a scalar, an app's version, an app)")
	derivedPCs   = flag.Int("bench.derived.pcs", 1000, "PCs in the derived-tables workload, scanning in turn")
)

// derivedWorkload is n inventory results of -bench.derived.pcs PCs (1,000
// unless set) scanning in turn, each reporting two
// scalars and 20 apps; in a share of the scans (-bench.derived.churn) a
// scalar changes, or an app is upgraded, or one is replaced.
func derivedWorkload(n int) []projector.Message {
	rng := rand.New(rand.NewPCG(11, 12))
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	type pc struct {
		ram  int
		apps []int // app numbers; their versions follow
		ver  map[int]int
	}
	pcs := make([]*pc, *derivedPCs)
	for i := range pcs {
		p := &pc{ram: 8 << rng.IntN(3), ver: map[int]int{}}
		for a := range 20 {
			p.apps = append(p.apps, a)
			p.ver[a] = 1
		}
		pcs[i] = p
	}
	msgs := make([]projector.Message, n)
	for i := range msgs {
		p := pcs[i%len(pcs)]
		change := -1
		if rng.Float64() < *derivedChurn {
			change = rng.IntN(3)
		}
		switch change {
		case 0:
			p.ram *= 2
		case 1:
			p.ver[p.apps[rng.IntN(len(p.apps))]]++
		case 2:
			k := rng.IntN(len(p.apps))
			p.apps = slices.Delete(p.apps, k, k+1)
			a := 20 + rng.IntN(1000)
			p.apps = append(p.apps, a)
			p.ver[a] = 1
		}
		var b strings.Builder
		fmt.Fprintf(&b, `{"hostname":"pc-%04d","ram_gb":%d,"os":"Windows 11 23H2","apps":[`, i%len(pcs), p.ram)
		for j, a := range p.apps {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"App %d","publisher":"Vendor %d","version":"%d.0.%d","size_mb":%d}`, a, a%37, p.ver[a], a, 10+a%400)
		}
		b.WriteString("]}")
		at := base.Add(time.Duration(i) * time.Second)
		r := wire.ExecResult{ResultID: fmt.Sprintf("r-%d", i), RequestID: fmt.Sprintf("q-%d", i/1000), PCID: fmt.Sprintf("PC-%04d", i%len(pcs)),
			ManifestID: wire.Str("inv"), Stdout: b.String(), StartedAt: at, FinishedAt: at.Add(time.Second)}
		msgs[i] = projector.Message{Stream: "RESULTS", Seq: uint64(i + 1), Subject: "results." + r.RequestID, Published: at.Add(2 * time.Second), Data: r.Encode()}
	}
	return msgs
}

func derivedManifest(hints bool) *wire.Manifest {
	m := &wire.Manifest{ID: "inv", Version: "1"}
	if !hints {
		return m
	}
	col := func(name, kind string) wire.ExplodeColumn {
		return wire.ExplodeColumn{Field: wire.Str(name), Type: wire.Str(kind), Index: name == "name"}
	}
	m.Inventory = &wire.InventoryHint{Display: []wire.DisplayField{{Field: "hostname", Label: "Host"}}, HistoryScalars: []string{"ram_gb", "os"},
		Explode: []wire.ExplodeSpec{{Field: wire.Str("apps"), Table: wire.Str("inventory_sw_apps"), PrimaryKey: []string{"name"}, TrackHistory: true,
			Columns: []wire.ExplodeColumn{col("name", "text"), col("publisher", "text"), col("version", "text"), col("size_mb", "integer")}}}}
	return m
}

// TestDerivedPerformance is the derived-tables issue's figure: the rate of
// `stream replay` (in process, from JetStream) over a workload whose every
// result carries an inventory hint with 2 history scalars and a 20-element
// explode with track_history, against the same stream under a manifest
// without hints, alternating, in the same run.
func TestDerivedPerformance(t *testing.T) {
	ctx := context.Background()
	_, js, msgs, kv := publishDerived(t, ctx, *derivedN)
	fmt.Printf("| N | store | without hints msg/s | with hints msg/s | ratio median (min–max) | history rows | explode rows | server CPU s without / with | client CPU s without / with |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, kind := range benchStores() {
		profiled := false
		// run returns the rate, the stats, and PostgreSQL's and this
		// process's CPU seconds.
		run := func(hints bool) (float64, projector.Stats, float64, float64) {
			m, err := json.Marshal(derivedManifest(hints))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, "inv", m); err != nil {
				t.Fatal(err)
			}
			dsn := freshDSN(t, kind)
			st, err := testutil.Dial(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if kind == store.Postgres {
				checkpoint(t, ctx, dsn)
			}
			// KANADE_PROFILE=path profiles the first run with hints.
			if path := os.Getenv("KANADE_PROFILE"); path != "" && hints && !profiled {
				profiled = true
				f, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					t.Fatal(err)
				}
				defer pprof.StopCPUProfile()
			}
			cpu, own := serverCPU(), ownCPU()
			sum, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, Batch: *batch})
			if err != nil {
				t.Fatal(err)
			}
			return sum.RatePerSecond, sum.Stats, serverCPU() - cpu, ownCPU() - own
		}
		var plain, hinted, ratios, plainCPU, hintedCPU, plainOwn, hintedOwn []float64
		var stats projector.Stats
		for range *reps {
			p, _, pc, po := run(false)
			h, s, hc, ho := run(true)
			plain, hinted, ratios, stats = append(plain, p), append(hinted, h), append(ratios, h/p), s
			plainCPU, hintedCPU = append(plainCPU, pc), append(hintedCPU, hc)
			plainOwn, hintedOwn = append(plainOwn, po), append(hintedOwn, ho)
			t.Logf("%s: without %.0f, with %.0f msg/s, ratio %.2f; server CPU %.1f s, %.1f s; client CPU %.1f s, %.1f s", kind, p, h, h/p, pc, hc, po, ho)
		}
		server := "-"
		if kind == store.Postgres {
			server = fmt.Sprintf("%.1f / %.1f", median(plainCPU), median(hintedCPU))
		}
		fmt.Printf("| %d | %s | %.0f | %.0f | %.2f (%.2f–%.2f) | %d | %d | %s | %.1f / %.1f |\n", len(msgs), kind, median(plain), median(hinted),
			median(ratios), slices.Min(ratios), slices.Max(ratios), stats.HistoryRows, stats.ExplodeRows, server, median(plainOwn), median(hintedOwn))
	}
}

// publishDerived publishes the derived-tables workload of n results to a
// new in-process NATS server, and returns the server's URL, a JetStream
// client of it, the messages and the jobs bucket the manifest goes into.
func publishDerived(t *testing.T, ctx context.Context, n int) (string, jetstream.JetStream, []projector.Message, jetstream.KeyValue) {
	t.Helper()
	url := testutil.NATSServer(t)
	js := testutil.JetStreamAt(t, url)
	if err := streams.EnsureLayout(ctx, js); err != nil {
		t.Fatal(err)
	}
	msgs := derivedWorkload(n)
	pub := make([]sim.Message, len(msgs))
	for i, m := range msgs {
		pub[i] = sim.Message{Subject: m.Subject, Data: m.Data}
	}
	if err := sim.PublishAll(ctx, js, pub); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, streams.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	return url, js, msgs, kv
}

// freshDSN is a new database of kind for one measurement: a schema or a
// file the test drops.
// benchStores are the stores -bench.stores names, PostgreSQL first.
func benchStores() []store.Kind {
	var out []store.Kind
	for _, kind := range []store.Kind{store.Postgres, store.SQLite} {
		if strings.Contains(*stores, string(kind)) {
			out = append(out, kind)
		}
	}
	return out
}

// bulkStream publishes the simulator's bulk fleet of n results (seed 7, as
// every benchmark of it uses) to a JetStream server of the test's own.
func bulkStream(t *testing.T, ctx context.Context, n int) (*sim.Fleet, jetstream.JetStream) {
	fleet := sim.Bulk(n, 7)
	js := testutil.JetStream(t)
	if err := fleet.Publish(ctx, js); err != nil {
		t.Fatal(err)
	}
	return fleet, js
}

func freshDSN(t *testing.T, kind store.Kind) string {
	if kind == store.Postgres {
		return testutil.PostgresDSN(t)
	}
	return testutil.SQLitePath(t)
}
