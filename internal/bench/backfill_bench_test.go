//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
	fmt.Printf("| store | legacy rows | collisions | elapsed s | rows/s | floor rows/s | backfill/floor |\n|---|---|---|---|---|---|---|\n")
	for _, kind := range []store.Kind{store.Postgres, store.SQLite} {
		var st testutil.Store
		var floorRate float64
		if kind == store.Postgres {
			t.Run("floor", func(t *testing.T) { // its own schema, dropped when done
				pg := testutil.PostgresStore(t)
				seedLegacy(t, ctx, pg)
				floorRate = backfillFloor(t, ctx, pg)
			})
			st = testutil.PostgresStore(t)
		} else {
			st = testutil.SQLiteStore(t)
		}
		seedLegacy(t, ctx, st)
		// Production tables carry planner statistics; a fresh seed has none.
		if err := analyze(ctx, st); err != nil {
			t.Fatal(err)
		}
		sum, err := backfill.Run(ctx, st, backfill.Options{BatchSize: *bfBatch, Workers: *bfWorkers})
		if err != nil {
			t.Fatal(err)
		}
		rate := float64(sum.Scanned) / sum.Elapsed.Seconds()
		floor, ratio := "-", "-"
		if floorRate > 0 {
			floor, ratio = fmt.Sprintf("%.0f", floorRate), fmt.Sprintf("%.2f", rate/floorRate)
		}
		fmt.Printf("| %s | %d | %d | %.1f | %.0f | %s | %s |\n", kind, sum.Scanned, sum.Collisions, sum.Elapsed.Seconds(), rate, floor, ratio)
	}
}

// seedLegacy lays out -bench.legacy rows as upstream's v0.29 migration
// left them, one in ten also stored under its stable id by a later
// legacy payload.
func seedLegacy(t *testing.T, ctx context.Context, st testutil.Store) {
	t.Helper()
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
}

// backfillFloor is the set-based floor of a backfill on PostgreSQL: the
// mapping old id -> stable id computed outside the clock, then one
// transaction that COPYs it, deletes the colliding rows and renames every
// legacy row with one UPDATE each, with no batches, cursor, archive or
// counters.
func backfillFloor(t *testing.T, ctx context.Context, st *pgstore.Store) float64 {
	if err := analyze(ctx, st); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Pool().Query(ctx, "SELECT result_id, pc_id FROM execution_results WHERE result_id = request_id")
	if err != nil {
		t.Fatal(err)
	}
	var mapping [][]any
	for rows.Next() {
		var id, pc string
		if err := rows.Scan(&id, &pc); err != nil {
			t.Fatal(err)
		}
		mapping = append(mapping, []any{id, wire.LegacyResultID(id, pc)})
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	start := time.Now()
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET LOCAL synchronous_commit = on", "CREATE TEMP TABLE m (old text, new text) ON COMMIT DROP"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"m"}, []string{"old", "new"}, pgx.CopyFromRows(mapping)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DELETE FROM execution_results e USING m WHERE e.result_id = m.new",
		"UPDATE execution_results e SET result_id = m.new FROM m WHERE e.result_id = m.old"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return float64(len(mapping)) / time.Since(start).Seconds()
}

func analyze(ctx context.Context, st testutil.Store) error {
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
