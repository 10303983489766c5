//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

var twoCopiesN = flag.Int("bench.twocopies.n", 200000, "results in the two-COPY measurement of the machine")

// TestTwoCopiesPerformance measures what this machine gives PostgreSQL's
// second core: (q), the batched plain COPY of the replay benchmark, against
// (r), the same batches alternating between two connections, each
// committing after the one before it, as the replay's overlapped batches
// do. It reports both rates and the server's CPU for each, so a run of the
// replay benchmark can be read against the machine of the day: the
// replay's own overlap can gain at most what (r) gains over (q).
func TestTwoCopiesPerformance(t *testing.T) {
	ctx := context.Background()
	fleet, js := bulkStream(t, ctx, *twoCopiesN) // the replay benchmark's rows, publish times included
	values := pgValues(firstOfEach(decoded(fleet, publishedAt(t, ctx, js, fleet))))
	fmt.Printf("| N | (q) msg/s | (r) msg/s | (r)/(q) median (min–max) | server CPU s (q) / (r) |\n|---|---|---|---|---|\n")
	var qRates, rRates, ratios, qCPU, rCPU []float64
	for range *reps {
		for _, conns := range []int{1, 2} {
			rate, cpu := timedPostgres(t, ctx, testutil.PostgresDSN(t), fleet, func(conn *pgx.Conn) error {
				return copyAlternating(ctx, conn, values, replayBatch(), conns)
			})
			if conns == 1 {
				qRates, qCPU = append(qRates, rate), append(qCPU, cpu)
			} else {
				rRates, rCPU = append(rRates, rate), append(rCPU, cpu)
			}
		}
		ratios = append(ratios, rRates[len(rRates)-1]/qRates[len(qRates)-1])
		t.Logf("(q) %.0f msg/s, server CPU %.1f s; (r) %.0f msg/s, server CPU %.1f s; (r)/(q) %.2f", qRates[len(qRates)-1], qCPU[len(qCPU)-1],
			rRates[len(rRates)-1], rCPU[len(rCPU)-1], ratios[len(ratios)-1])
	}
	fmt.Printf("| %d | %.0f | %.0f | %.2f (%.2f–%.2f) | %.1f / %.1f |\n", len(fleet.Results), median(qRates), median(rRates), median(ratios),
		slices.Min(ratios), slices.Max(ratios), median(qCPU), median(rCPU))
}

// copyAlternating COPYs values into execution_results in transactions of
// per rows on conns connections (1 or 2), batch i on connection i%conns; a
// batch commits only after the batch before it, and a connection takes its
// next batch once its last has committed.
func copyAlternating(ctx context.Context, first *pgx.Conn, values [][]any, per, conns int) error {
	pool := []*pgx.Conn{first}
	if conns == 2 {
		second, err := pgx.ConnectConfig(ctx, first.Config())
		if err != nil {
			return err
		}
		defer second.Close(ctx)
		pool = append(pool, second)
	}
	var batches [][][]any
	for lo := 0; lo < len(values); lo += per {
		batches = append(batches, values[lo:min(lo+per, len(values))])
	}
	done := make([]chan error, len(batches))
	for i := range done {
		done[i] = make(chan error, 1)
	}
	wait := func(i int) error {
		if i < 0 {
			return nil
		}
		err := <-done[i]
		done[i] <- err // later waiters see it too
		return err
	}
	launched := 0
	// On an error, the batches in flight end before their connections close.
	defer func() {
		for i := range launched {
			wait(i) //nolint:errcheck // the first error is returned already
		}
	}()
	for i, b := range batches {
		// The connection is free once its batch before this one ended.
		if err := wait(i - len(pool)); err != nil {
			return err
		}
		launched++
		go func() {
			done[i] <- func() error {
				tx, err := pool[i%len(pool)].BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit = on"})
				if err != nil {
					return err
				}
				defer tx.Rollback(ctx) //nolint:errcheck // a no-op after the commit
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"execution_results"}, yardstickCols, pgx.CopyFromRows(b)); err != nil {
					return err
				}
				if err := wait(i - 1); err != nil {
					return err
				}
				return tx.Commit(ctx)
			}()
		}()
	}
	return wait(len(batches) - 1)
}
