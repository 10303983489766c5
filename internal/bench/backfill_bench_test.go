//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/backfill"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

var (
	legacyRows = flag.Int("bench.legacy", 1000000, "legacy rows for the backfill benchmark")
	bfBatch    = flag.Int("bench.bfbatch", 5000, "backfill batch size")
	bfWorkers  = flag.Int("bench.bfworkers", 0, "backfill workers (0: the default)")
)

// TestBackfillPerformance rewrites -bench.legacy legacy rows (one in ten
// colliding with a row already under its stable id) with the production
// indexes, throttling off, and reports rows/s per store.
func TestBackfillPerformance(t *testing.T) {
	ctx := context.Background()
	fmt.Printf("| store | legacy rows | collisions | elapsed s | rows/s |\n|---|---|---|---|---|\n")
	for _, kind := range []store.Kind{store.Postgres, store.SQLite} {
		var st store.Store
		if kind == store.Postgres {
			st = testutil.PostgresStore(t)
		} else {
			st = testutil.SQLiteStore(t)
		}
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		for start := 0; start < *legacyRows; start += 50000 {
			var rows []store.ResultRow
			for i := start; i < min(start+50000, *legacyRows); i++ {
				req := fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
				code := int32(i % 5 / 4)
				fin := t0.Add(time.Duration(i) * time.Millisecond)
				r := store.ResultRow{ResultID: req, RequestID: req, PCID: fmt.Sprintf("PC-%04d", i%1000), ExitCode: &code,
					Stdout: "Installing package 3.1.0\r\nInstallation completed successfully.\r\n", StartedAt: t0, FinishedAt: &fin, RecordedAt: fin}
				rows = append(rows, r)
				if i%10 == 0 {
					dup := r
					dup.ResultID = wire.LegacyResultID(req, r.PCID)
					dup.RecordedAt = fin.Add(time.Hour)
					rows = append(rows, dup)
				}
			}
			if err := st.Seed(ctx, nil, rows); err != nil {
				t.Fatal(err)
			}
		}
		// Production tables carry planner statistics; a fresh seed has none.
		if err := analyze(ctx, st); err != nil {
			t.Fatal(err)
		}
		sum, err := backfill.Run(ctx, st, backfill.Options{BatchSize: *bfBatch, Workers: *bfWorkers})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("| %s | %d | %d | %.1f | %.0f |\n", kind, sum.Scanned, sum.Collisions, sum.Elapsed.Seconds(), float64(sum.Scanned)/sum.Elapsed.Seconds())
	}
}

func analyze(ctx context.Context, st store.Store) error {
	switch s := st.(type) {
	case *pgstore.Store:
		_, err := s.Pool().Exec(ctx, "ANALYZE")
		return err
	case *sqlitestore.Store:
		_, err := s.DB().ExecContext(ctx, "ANALYZE")
		return err
	}
	return nil
}
