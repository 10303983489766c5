//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/audit"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/results"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// TestShowPerformance times a full `results audit` and `results show` of one 1,000-PC deployment, by
// exec_id and by request_id, end to end in-process (query, fan-out, JSON
// rendering), on tables of 100k and 1M rows: the time must follow the
// selection, not the table.
func TestShowPerformance(t *testing.T) {
	ctx := context.Background()
	fmt.Printf("| rows in table | show --exec-id median ms | show --request-id median ms |\n|---|---|---|\n")
	var base [2]float64
	var auditTimes []string
	defer func() {
		fmt.Printf("\n| rows in table | results audit s (all checks) | findings |\n|---|---|---|\n")
		for _, l := range auditTimes {
			fmt.Println(l)
		}
	}()
	for i, execs := range []int{100, 1000} {
		st := testutil.PostgresStore(t)
		seedGrid(t, ctx, st, execs, 1000)
		if _, err := st.Pool().Exec(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
		mid := execs / 2
		byExec := medianMillis(t, func() error {
			return showJSON(ctx, st, results.ShowOptions{ExecID: fmt.Sprintf("exec-%05d", mid), Sort: "pc"})
		})
		byReq := medianMillis(t, func() error {
			return showJSON(ctx, st, results.ShowOptions{RequestID: fmt.Sprintf("req-%05d", mid), Sort: "pc"})
		})
		start := time.Now()
		rep, err := audit.Run(ctx, st, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		auditTimes = append(auditTimes, fmt.Sprintf("| %d | %.2f | %d |", execs*1000+execs/20*1000, time.Since(start).Seconds(), rep.Total))
		fmt.Printf("| %d | %.1f | %.1f |\n", execs*1000+execs/20*1000, byExec, byReq)
		if i == 0 {
			base = [2]float64{byExec, byReq}
		} else {
			fmt.Printf("\n1M/100k time ratio: exec_id %.2f, request_id %.2f\n", byExec/base[0], byReq/base[1])
		}
	}
}

func showJSON(ctx context.Context, st testutil.Store, o results.ShowOptions) error {
	v, err := results.Show(ctx, st, o)
	if err != nil {
		return err
	}
	return results.Render(&output.Streams{Out: io.Discard, Err: io.Discard}, v, results.RenderOptions{Format: output.JSON})
}

// medianMillis times fn 31 times and returns the median in milliseconds.
func medianMillis(t *testing.T, fn func() error) float64 {
	var ds []float64
	for i := 0; i < 31; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, float64(time.Since(start).Microseconds())/1000)
	}
	return median(ds)
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// seedGrid lays out execs deployments x pcs PCs, plus one ad-hoc broadcast
// per twenty deployments.
func seedGrid(t *testing.T, ctx context.Context, st testutil.Store, execs, pcs int) {
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for e := 0; e < execs+execs/20; e += 50 {
		var rows []store.ResultRow
		var ex []store.Execution
		for k := e; k < min(e+50, execs+execs/20); k++ {
			var execID *string
			req := fmt.Sprintf("req-%05d", k)
			if k < execs {
				id := fmt.Sprintf("exec-%05d", k)
				execID = &id
				ex = append(ex, store.Execution{ExecID: id, JobID: "install-app", Version: "3.1.0", InitiatedBy: "ops", InitiatedAt: t0,
					TargetCount: int64(pcs), SuccessCount: int64(pcs), Status: "completed"})
			}
			for p := 0; p < pcs; p++ {
				code := int32(p % 7 / 6)
				start := t0.Add(time.Duration(k) * time.Minute)
				fin := start.Add(time.Duration(p%90) * time.Second)
				rows = append(rows, store.ResultRow{ResultID: fmt.Sprintf("%s-%05d", req, p), RequestID: req, ExecID: execID,
					PCID: fmt.Sprintf("PC-%05d", p), ExitCode: &code, Stdout: "Installing package 3.1.0\r\nInstallation completed successfully.\r\n",
					StartedAt: start, FinishedAt: &fin, RecordedAt: fin, JobID: wire.Str("install-app")})
			}
		}
		if err := st.Seed(ctx, ex, rows); err != nil {
			t.Fatal(err)
		}
	}
}
