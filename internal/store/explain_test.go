package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

type explainer interface {
	testutil.Store
	ExplainFindResults(context.Context, store.ResultFilter) (string, error)
}

// The fan-out queries must use indexes, not scan the table: their cost
// has to grow with the selection, not with the table.
func TestShowQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	for name, st := range map[string]explainer{"postgres": testutil.PostgresStore(t), "sqlite": testutil.SQLiteStore(t)} {
		t.Run(name, func(t *testing.T) {
			var rows []store.ResultRow
			t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			for e := 0; e < 100; e++ {
				exec := fmt.Sprintf("exec-%03d", e)
				for p := 0; p < 200; p++ {
					code := int32(0)
					fin := t0.Add(time.Minute)
					rows = append(rows, store.ResultRow{ResultID: fmt.Sprintf("r-%03d-%03d", e, p), RequestID: fmt.Sprintf("req-%03d", e), ExecID: &exec,
						PCID: fmt.Sprintf("PC-%04d", p), ExitCode: &code, Stdout: "ok", StartedAt: t0, FinishedAt: &fin, RecordedAt: fin})
				}
			}
			if err := st.Seed(ctx, nil, rows); err != nil {
				t.Fatal(err)
			}
			analyze := "ANALYZE"
			if name == "postgres" {
				analyze = "ANALYZE execution_results"
			}
			if err := execRaw(ctx, st, analyze); err != nil {
				t.Fatal(err)
			}
			for _, f := range []store.ResultFilter{{ExecID: "exec-042"}, {RequestID: "req-042"}, {ResultID: "r-042-007"},
				{RequestID: "req-042", PCs: []string{"PC-0001", "PC-0002"}}} {
				plan, err := st.ExplainFindResults(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(plan, "Seq Scan") || (name == "sqlite" && !strings.Contains(plan, "USING INDEX") && !strings.Contains(plan, "USING PRIMARY KEY")) ||
					(name == "sqlite" && strings.Contains(plan, "SCAN execution_results")) {
					t.Errorf("%+v scans the table:\n%s", f, plan)
				}
			}
		})
	}
}
