package replay_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// TestRebuild: rows older than the stream survive, damage the stream can
// repair is repaired, a run without --yes changes nothing, and the swapped
// tables equal a fresh projection.
func TestRebuild(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 30
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	code := int32(0)
	oldExec := store.Execution{ExecID: "exec-2020", JobID: "install-app", Version: "1", InitiatedBy: "ops", InitiatedAt: old,
		TargetCount: 1, SuccessCount: 1, Status: "completed"}
	oldRow := store.ResultRow{ResultID: "old-1", RequestID: "req-2020", ExecID: &oldExec.ExecID, PCID: "PC-0001", ExitCode: &code,
		Stdout: "from before the stream's retention", StartedAt: old, FinishedAt: &old, RecordedAt: old}
	build := func(t *testing.T, st store.Store) {
		if err := st.Seed(ctx, append(append([]store.Execution{}, f.Executions...), oldExec), []store.ResultRow{oldRow}); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Events})
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
	}
	testutil.EachStore(t, func(t *testing.T, st store.Store) {
		ref := testutil.Another(t, st)
		build(t, st)
		build(t, ref)
		want, _ := ref.Dump(ctx)
		// Damage: a lost row, a drifted counter.
		tables, _ := st.Dump(ctx)
		var lost string
		for _, r := range tables.Results {
			if r.FinishedAt != nil && r.ResultID != "old-1" {
				lost = r.ResultID
				break
			}
		}
		execSQL(t, st, "DELETE FROM execution_results WHERE result_id = $1", "DELETE FROM execution_results WHERE result_id = ?", lost)
		execSQL(t, st, "UPDATE executions SET success_count = success_count + 7 WHERE exec_id = $1", "UPDATE executions SET success_count = success_count + 7 WHERE exec_id = ?", f.Executions[0].ExecID)
		damaged, _ := st.Dump(ctx)

		look, err := replay.Rebuild(ctx, st, js, replay.Options{Stream: streams.Results}, false)
		if err != nil {
			t.Fatal(err)
		}
		if look.Swapped || look.Diff.OnlyShadow != 1 || look.Diff.ExecutionsDiff < 1 || look.Diff.OnlyLive != 0 || look.Carried < 1 {
			t.Fatalf("difference: %+v carried %d", look.Diff, look.Carried)
		}
		if again, _ := st.Dump(ctx); !reflect.DeepEqual(again, damaged) {
			t.Fatal("a rebuild without --yes changed the live tables")
		}
		done, err := replay.Rebuild(ctx, st, js, replay.Options{Stream: streams.Results}, true)
		if err != nil || !done.Swapped || done.OldPrefix == "" {
			t.Fatalf("swap: %+v %v", done, err)
		}
		got, _ := st.Dump(ctx)
		if !reflect.DeepEqual(normalise(want), normalise(got)) {
			for i := range want.Results {
				if !reflect.DeepEqual(want.Results[i], got.Results[i]) {
					t.Errorf("row %d:\nwant %+v\ngot  %+v", i, want.Results[i], got.Results[i])
				}
			}
			if !reflect.DeepEqual(want.Executions, got.Executions) {
				t.Errorf("executions:\nwant %+v\ngot  %+v", want.Executions, got.Executions)
			}
			if !reflect.DeepEqual(want.Inventory, got.Inventory) {
				t.Errorf("inventory differs")
			}
			t.Fatalf("rebuilt tables differ from a fresh projection")
		}
		// The replaced tables are kept.
		execSQL(t, st, "SELECT count(*) FROM "+done.OldPrefix+"execution_results", "SELECT count(*) FROM "+done.OldPrefix+"execution_results")
		// And the store still works on the swapped tables.
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
	})
}

// A second rebuild works on tables a first one swapped in (SQLite rewrites
// a renamed table's DDL with its name quoted), and changes nothing.
func TestRebuildTwice(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 20
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st store.Store) {
		if err := st.Seed(ctx, f.Executions, nil); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Events})
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
		before, _ := st.Dump(ctx)
		for i := 1; i <= 2; i++ {
			if _, err := replay.Rebuild(ctx, st, js, replay.Options{Stream: streams.Results}, true); err != nil {
				t.Fatalf("rebuild %d: %v", i, err)
			}
		}
		after, _ := st.Dump(ctx)
		if !reflect.DeepEqual(normalise(before), normalise(after)) {
			t.Fatal("two rebuilds of a fully projected database changed it")
		}
	})
}
