//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

var completionN = flag.Int("bench.completion.n", 200000, "results in the completion workload")

// TestCompletionPerformance: RESULTS replayed after EVENTS, as an operator
// replays both streams, so most results complete a row a started event
// made (an UPDATE) instead of inserting one. (c) is `replay.Run` in process;
// (u) is a yardstick with no NATS and no decoding: the stream's rows COPYed
// into staging, then one statement that completes the in-flight rows, inserts
// the others and moves the counters, in one transaction. Both start from
// the same EVENTS replay, untimed; PostgreSQL only.
func TestCompletionPerformance(t *testing.T) {
	ctx := context.Background()
	fleet, js := bulkStream(t, ctx, *completionN)
	rows := decoded(fleet, publishedAt(t, ctx, js, fleet))
	prepare := func() string {
		dsn := freshDSN(t, store.Postgres)
		st := openSeeded(t, ctx, dsn, fleet)
		defer st.Close()
		if _, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Events, Batch: *batch}); err != nil {
			t.Fatal(err)
		}
		return dsn
	}
	fmt.Printf("| N | (u) completing yardstick msg/s | (c) replay msg/s | (c)/(u) median (min–max) |\n|---|---|---|---|\n")
	var us, cs, ratios []float64
	for range *reps {
		u := completeYardstick(t, ctx, prepare(), rows, len(fleet.Results))
		st, err := testutil.Dial(ctx, prepare())
		if err != nil {
			t.Fatal(err)
		}
		sum, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results, Batch: *batch})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		c := sum.RatePerSecond
		us, cs, ratios = append(us, u), append(cs, c), append(ratios, c/u)
		t.Logf("(u) %.0f, (c) %.0f msg/s (completed %d, inserted %d), ratio %.2f", u, c, sum.Stats.Completed, sum.Stats.Inserted, c/u)
	}
	fmt.Printf("| %d | %.0f | %.0f | %.2f (%.2f–%.2f) |\n", len(fleet.Results), median(us), median(cs), median(ratios), slices.Min(ratios), slices.Max(ratios))
}

// completeYardstick times (u) into dsn, whose EVENTS are projected, and
// returns the stream's messages per second. A completed row keeps the
// version and recorded_at its started event gave it, as upstream's rule
// does; of a result redelivered, the first copy counts.
func completeYardstick(t *testing.T, ctx context.Context, dsn string, rows []store.ResultRow, messages int) float64 {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	values := pgValues(rows)
	cols := strings.Join(yardstickCols, ", ")
	start := time.Now()
	err = inTx(ctx, conn, "BEGIN; SET LOCAL synchronous_commit = on", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE staging (n bigserial, "+stagingColumns+") ON COMMIT DROP"); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging"}, yardstickCols, pgx.CopyFromRows(values)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `WITH s AS (SELECT DISTINCT ON (result_id) * FROM staging ORDER BY result_id, n),
			upd AS (UPDATE execution_results e SET exit_code = s.exit_code, stdout = s.stdout, stderr = s.stderr, finished_at = s.finished_at,
				job_id = coalesce(e.job_id, s.job_id), parent_result_id = s.parent_result_id, expires_at = NULL, skipped = s.skipped
				FROM s WHERE e.result_id = s.result_id AND e.finished_at IS NULL
				RETURNING e.exec_id, e.exit_code),
			ins AS (INSERT INTO execution_results (`+cols+`) SELECT `+cols+` FROM s
				WHERE NOT EXISTS (SELECT 1 FROM execution_results e WHERE e.result_id = s.result_id) ON CONFLICT (result_id) DO NOTHING
				RETURNING exec_id, exit_code),
			`+bumpCounters("(SELECT * FROM upd UNION ALL SELECT * FROM ins) x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return float64(messages) / time.Since(start).Seconds()
}
