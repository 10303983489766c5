// Package sim generates a realistic kanade fleet's traffic and publishes it
// with upstream's stream layout: deployments with target counts, broadcasts
// that share one request_id, v0.29+ and legacy agents, redeliveries, an
// overflowed output, inventory manifests, in-flight runs and a few payloads
// no decoder accepts. Tests, benchmarks and the demo all use it.
package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Config sizes a fleet. Zero values take the defaults in Defaults.
type Config struct {
	Seed        uint64
	PCs         int
	Deployments int     // executions rows with a target_count
	Broadcasts  int     // ad-hoc commands.all runs: one request_id, N PCs
	Legacy      float64 // share of PCs on pre-v0.29 agents
	Duplicates  float64 // share of results delivered twice
	InFlight    int     // runs that started and have not reported
	Overflow    int     // results whose stdout went to the object store
	Undecodable int     // payloads no agent version could have written
	// Hints gives the inventory manifest every derived-table hint: the
	// history of two fields, an explode table with history, a fleet check
	// and a feed.
	Hints bool
	Start time.Time
}

// Defaults is the demo's fleet: about 200 PCs.
func Defaults() Config {
	return Config{Seed: 1, PCs: 200, Deployments: 4, Broadcasts: 3, Legacy: 0.2, Duplicates: 0.05, InFlight: 5, Overflow: 1, Undecodable: 1,
		Hints: true, Start: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
}

// Message is one payload to publish.
type Message struct {
	Subject string
	Data    []byte
}

// Fleet is the generated traffic and the rows the backend's deploy API
// would have written (executions are not in any stream).
type Fleet struct {
	Executions []store.Execution
	Manifests  map[string][]byte
	Objects    map[string][]byte
	Results    []Message // for RESULTS, in publish order
	Events     []Message // for EVENTS
	Broadcasts []string  // request ids of the broadcasts
	// LegacyRows are rows as upstream's v0.29 migration left them for
	// legacy results (result_id = request_id), for backfill demos.
	LegacyRows []store.ResultRow
}

// Generate builds a fleet deterministically from cfg.
func Generate(cfg Config) *Fleet {
	d := Defaults()
	if cfg.PCs == 0 {
		cfg.PCs = d.PCs
	}
	if cfg.Start.IsZero() {
		cfg.Start = d.Start
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b616e616465))
	f := &Fleet{Manifests: map[string][]byte{}, Objects: map[string][]byte{}}
	f.Manifests["inventory-hw"] = []byte(`{"id":"inventory-hw","version":"1.2.0","description":"hardware inventory","shell":"powershell","script":"Get-Hw | ConvertTo-Json","inventory":{"display":[{"field":"cpu","label":"CPU"},{"field":"ram_gb","label":"RAM (GB)","type":"number"}],"summary":[{"field":"cpu","label":"CPU"}]}}`)
	if cfg.Hints {
		f.Manifests["inventory-hw"] = []byte(`{"id":"inventory-hw","version":"1.2.0","description":"hardware inventory","shell":"powershell","script":"Get-Hw | ConvertTo-Json",` +
			`"inventory":{"display":[{"field":"cpu","label":"CPU"},{"field":"ram_gb","label":"RAM (GB)","type":"number"}],"summary":[{"field":"cpu","label":"CPU"}],"history_scalars":["ram_gb","cpu"],` +
			`"explode":[{"field":"disks","table":"inventory_disks","primary_key":["name"],"track_history":true,` +
			`"columns":[{"field":"name","index":true},{"field":"model"},{"field":"size_gb","type":"integer"}]}]},` +
			`"check":{"name":"disk_free","label":"Disk space","status_field":"disk_status","detail_field":"disk_detail"},` +
			`"feed":[{"id":"disk-models","field":"disks","primary_key":["model"]}]}`)
	}
	f.Manifests["install-app"] = []byte(`{"id":"install-app","version":"3.1.0","shell":"powershell","script":"msiexec /i app.msi /qn"}`)
	pcs := make([]string, cfg.PCs)
	legacy := make([]bool, cfg.PCs)
	for i := range pcs {
		pcs[i] = fmt.Sprintf("PC-%04d", i+1)
		legacy[i] = rng.Float64() < cfg.Legacy
	}
	uid := func() string { return uuid.Must(uuid.NewRandomFromReader(rngReader{rng})).String() }
	clock := cfg.Start
	tick := func() time.Time {
		clock = clock.Add(time.Duration(1+rng.IntN(900)) * time.Millisecond).Add(time.Duration(rng.IntN(10000)) * 100) // 100 ns ticks, as Windows clocks
		return clock
	}
	inFlightLeft, overflowLeft := cfg.InFlight, cfg.Overflow
	migrated := map[string]bool{}
	emit := func(reqID string, execID *string, manifest string, version string, pcIdx int) {
		pc := pcs[pcIdx]
		started := tick()
		r := wire.ExecResult{RequestID: reqID, PCID: pc, ManifestID: wire.Str(manifest), StartedAt: started}
		if !legacy[pcIdx] {
			r.ResultID = uid()
			r.ExecID = execID
			if execID != nil {
				ev := wire.EventStarted{ResultID: r.ResultID, RequestID: reqID, ExecID: *execID, PCID: pc, StartedAt: started, ManifestID: manifest, Version: version}
				f.Events = append(f.Events, Message{Subject: "events.started." + *execID + "." + pc, Data: ev.Encode()})
				if inFlightLeft > 0 && rng.IntN(20) == 0 {
					inFlightLeft--
					return // still running: no result yet
				}
			}
		} else if manifest == "adhoc-run" || rng.IntN(3) == 0 {
			r.ManifestID = nil // pre-v0.13 agents send no manifest_id
		}
		r.FinishedAt = started.Add(time.Duration(500+rng.IntN(30000)) * time.Millisecond)
		switch x := rng.IntN(100); {
		case x < 85:
			r.ExitCode = 0
		case x < 95:
			r.ExitCode = 1
			r.Stderr = "Access is denied.\r\n"
		case x < 98:
			r.ExitCode = -1
			r.Stderr = "killed: timeout after 300s"
		default:
			r.ExitCode, r.Skipped, r.Stderr = 125, wire.Bool(true), "skipped: starting deadline expired"
		}
		r.Stdout = fakeOutput(rng, manifest, pc, r.ExitCode)
		if overflowLeft > 0 && !legacy[pcIdx] && r.ExitCode == 0 && manifest != "inventory-hw" {
			overflowLeft--
			key := reqID + "/stdout"
			f.Objects[key] = []byte(strings.Repeat("log line from a chatty installer <ok> & done\n", 6000))
			r.Stdout, r.StdoutObject = "", wire.Str(key)
		}
		data := r.Encode()
		f.Results = append(f.Results, Message{Subject: "results." + reqID, Data: data})
		if rng.Float64() < cfg.Duplicates {
			f.Results = append(f.Results, Message{Subject: "results." + reqID, Data: data}) // agent retry: same bytes
		}
		if legacy[pcIdx] && !migrated[reqID] && len(f.LegacyRows) < 50 {
			migrated[reqID] = true // the pre-v0.29 key was request_id: one row per request survived
			code, fin := r.ExitCode, r.FinishedAt
			f.LegacyRows = append(f.LegacyRows, store.ResultRow{ResultID: reqID, RequestID: reqID, PCID: pc, ExitCode: &code, Stdout: r.Stdout,
				Stderr: r.Stderr, StartedAt: r.StartedAt, FinishedAt: &fin, RecordedAt: fin.Add(40 * time.Millisecond), JobID: r.ManifestID})
		}
	}
	manifests := []struct{ id, version string }{{"inventory-hw", "1.2.0"}, {"install-app", "3.1.0"}}
	for i := 0; i < cfg.Deployments; i++ {
		m := manifests[i%len(manifests)]
		execID := uid()
		reqID := uid()
		n := cfg.PCs/2 + rng.IntN(cfg.PCs/2+1)
		targets := rng.Perm(cfg.PCs)[:n]
		f.Executions = append(f.Executions, store.Execution{ExecID: execID, JobID: m.id, Version: m.version, InitiatedBy: "ops@example.com",
			InitiatedAt: tick(), TargetCount: int64(n), Status: "pending"})
		for _, idx := range targets {
			emit(reqID, &execID, m.id, m.version, idx)
		}
	}
	for i := 0; i < cfg.Broadcasts; i++ {
		reqID := uid()
		f.Broadcasts = append(f.Broadcasts, reqID)
		for idx := range pcs {
			emit(reqID, nil, "adhoc-run", "", idx)
		}
	}
	for i := 0; i < cfg.Undecodable; i++ {
		reqID := uid()
		f.Results = append(f.Results, Message{Subject: "results." + reqID,
			Data: []byte(`{"request_id":"` + reqID + `","pc_id":"PC-9999","exit_code":"zero","stdout":"","stderr":"","started_at":"2026-11-20T09:00:00Z","finished_at":"2026-11-20T09:00:01Z"}`)})
	}
	return f
}

func fakeOutput(rng *rand.Rand, manifest, pc string, exit int32) string {
	switch {
	case manifest == "inventory-hw" && exit == 0:
		free := rng.IntN(200)
		status := "ok"
		if free < 20 {
			status = "warn"
		}
		return fmt.Sprintf(`{"cpu":"Intel(R) Core(TM) i7-%d","ram_gb":%d,"hostname":"%s","disks":[{"name":"C:","model":"NVMe-%d","size_gb":%d}],"disk_status":"%s","disk_detail":"C: %d GB free"}`,
			8000+rng.IntN(5000), 8<<rng.IntN(3), strings.ToLower(pc), rng.IntN(4), 256<<rng.IntN(3), status, free)
	case exit == 0:
		return fmt.Sprintf("Installing package 3.1.0 on %s\r\nChecking prerequisites: .NET 8.0 runtime present, 12.4 GB free on C:\r\n"+
			"Downloaded 48.2 MB from https://dist.example.com/app/3.1.0/app-x64.msi in %d ms\r\nVerifying signature: OK\r\n"+
			"Stopping service AppUpdater\r\nInstallation completed successfully. Exit code 0.\r\n", pc, 200+rng.IntN(5000))
	default:
		return "Installing package 3.1.0\r\n"
	}
}

type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

// Publish lays out upstream's streams and buckets and publishes the fleet.
func (f *Fleet) Publish(ctx context.Context, js jetstream.JetStream) error {
	if err := streams.EnsureLayout(ctx, js); err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, streams.JobsBucket)
	if err != nil {
		return err
	}
	for id, m := range f.Manifests {
		if _, err := kv.Put(ctx, id, m); err != nil {
			return fmt.Errorf("put manifest %s: %w", id, err)
		}
	}
	obs, err := js.ObjectStore(ctx, streams.OutputBucket)
	if err != nil {
		return err
	}
	for key, data := range f.Objects {
		if _, err := obs.PutBytes(ctx, key, data); err != nil {
			return fmt.Errorf("put object %s: %w", key, err)
		}
	}
	return PublishAll(ctx, js, append(append([]Message{}, f.Events...), f.Results...))
}

// PublishAll publishes msgs asynchronously, in order, and waits for every ack.
func PublishAll(ctx context.Context, js jetstream.JetStream, msgs []Message) error {
	const window = 4096
	for start := 0; start < len(msgs); start += window {
		futs := make([]jetstream.PubAckFuture, 0, window)
		for _, m := range msgs[start:min(start+window, len(msgs))] {
			fut, err := js.PublishAsync(m.Subject, m.Data)
			if err != nil {
				return fmt.Errorf("publish %s: %w", m.Subject, err)
			}
			futs = append(futs, fut)
		}
		for _, fut := range futs {
			select {
			case <-fut.Ok():
			case err := <-fut.Err():
				return fmt.Errorf("publish %s: %w", fut.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// Bulk is a fleet of about n results (1,000 PCs; deployments of 500 to
// 1,000 PCs plus a broadcast every ten deployments), cut to exactly n
// result messages, for benchmarks.
func Bulk(n int, seed uint64) *Fleet {
	cfg := Defaults()
	cfg.Seed, cfg.PCs, cfg.InFlight, cfg.Undecodable, cfg.Hints = seed, 1000, 0, 0, false
	cfg.Deployments = n/800 + 1
	cfg.Broadcasts = cfg.Deployments / 10
	f := Generate(cfg)
	for len(f.Results) < n {
		cfg.Seed++
		more := Generate(cfg)
		f.Results = append(f.Results, more.Results...)
		f.Executions = append(f.Executions, more.Executions...)
	}
	f.Results = f.Results[:n]
	return f
}
