package replay_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
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
	build := func(t *testing.T, st testutil.Store) {
		if err := st.Seed(ctx, append(append([]store.Execution{}, f.Executions...), oldExec), []store.ResultRow{oldRow}); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Events})
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
	}
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
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
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		if err := st.Seed(ctx, f.Executions, nil); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Events})
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
		before, _ := st.Dump(ctx)
		disks := testutil.TableRows(t, st, "inventory_disks")
		if len(before.History) == 0 || len(before.Checks) == 0 || len(before.Feeds) == 0 || len(disks) == 0 {
			t.Fatalf("the fleet wrote no derived rows (history %d, checks %d, feeds %d): the test proves nothing", len(before.History), len(before.Checks), len(before.Feeds))
		}
		for i := 1; i <= 2; i++ {
			if _, err := replay.Rebuild(ctx, st, js, replay.Options{Stream: streams.Results}, true); err != nil {
				t.Fatalf("rebuild %d: %v", i, err)
			}
		}
		after, _ := st.Dump(ctx)
		if !reflect.DeepEqual(normalise(before), normalise(after)) {
			t.Fatal("two rebuilds of a fully projected database changed it")
		}
		if got := testutil.TableRows(t, st, "inventory_disks"); !reflect.DeepEqual(disks, got) {
			t.Fatalf("two rebuilds changed the explode table:\n%q\nwant\n%q", got, disks)
		}
	})
}

// A rebuild repairs the derived current-state tables, keeps every history
// row (even one the stream could not reproduce) and adds none for writes
// already projected.
func TestRebuildDerived(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 20
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		if err := st.Seed(ctx, f.Executions, nil); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
		want, _ := st.Dump(ctx)
		execSQL(t, st, "DELETE FROM check_status WHERE pc_id = $1", "DELETE FROM check_status WHERE pc_id = ?", want.Checks[0].PCID)
		execSQL(t, st, "UPDATE feeds SET data = 'damaged' WHERE item_id = $1", "UPDATE feeds SET data = 'damaged' WHERE item_id = ?", want.Feeds[0].ItemID)
		execSQL(t, st, "DELETE FROM feed_meta WHERE feed_id = $1", "DELETE FROM feed_meta WHERE feed_id = ?", want.FeedMeta[0].FeedID)
		wantDisks := testutil.TableRows(t, st, "inventory_disks")
		execSQL(t, st, "UPDATE inventory_disks SET model = 'damaged'", "UPDATE inventory_disks SET model = 'damaged'")
		// A history row no stream holds (written by an older backend).
		execSQL(t, st, "INSERT INTO inventory_history (pc_id, job_id, field_path, change_kind, after_json, observed_at) VALUES ('PC-OLD', 'inventory-hw', 'ram_gb', 'added', '{\"value\":1}', $1)",
			"INSERT INTO inventory_history (pc_id, job_id, field_path, change_kind, after_json, observed_at) VALUES ('PC-OLD', 'inventory-hw', 'ram_gb', 'added', '{\"value\":1}', ?)",
			"2020-01-01 00:00:00") // upstream's CURRENT_TIMESTAMP shape
		damaged, _ := st.Dump(ctx)
		look, err := replay.Rebuild(ctx, st, js, replay.Options{Stream: streams.Results}, false)
		if err != nil {
			t.Fatal(err)
		}
		d := look.Diff
		if d.ChecksLive != int64(len(want.Checks))-1 || d.ChecksShadow != int64(len(want.Checks)) || d.FeedRowsShadow != int64(len(want.Feeds)) || d.HistoryToAdd != 0 {
			t.Errorf("difference: %+v", d)
		}
		done, err := replay.Rebuild(ctx, st, js, replay.Options{Stream: streams.Results}, true)
		if err != nil || !done.Swapped {
			t.Fatalf("swap: %+v %v", done, err)
		}
		got, _ := st.Dump(ctx)
		if !reflect.DeepEqual(normalise(want).Checks, normalise(got).Checks) || !reflect.DeepEqual(normalise(want).Feeds, normalise(got).Feeds) ||
			!reflect.DeepEqual(normalise(want).FeedMeta, normalise(got).FeedMeta) {
			t.Errorf("derived tables not repaired:\nchecks %+v\nfeeds %+v\nmeta %+v", got.Checks, got.Feeds, got.FeedMeta)
		}
		if !reflect.DeepEqual(damaged.History, got.History) {
			t.Errorf("history changed: %d rows before, %d after", len(damaged.History), len(got.History))
		}
		if gotDisks := testutil.TableRows(t, st, "inventory_disks"); !reflect.DeepEqual(wantDisks, gotDisks) {
			t.Errorf("inventory_disks not repaired:\n%q\nwant\n%q", gotDisks, wantDisks)
		}
		if d.ExplodeTables != 1 {
			t.Errorf("explode_tables_rebuilt %d, want 1", d.ExplodeTables)
		}
	})
}

// A rebuild over a stream the live tables have only partly projected
// appends the history of the writes they had not seen, once: the result
// is what projecting the whole stream gives.
func TestRebuildAppendsNewHistory(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 20
	cfg.Deployments = 8
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		ref := testutil.Another(t, st)
		for _, s := range []testutil.Store{st, ref} {
			if err := s.Seed(ctx, f.Executions, nil); err != nil {
				t.Fatal(err)
			}
		}
		full := replayAll(t, ref, js, replay.Options{Stream: streams.Results})
		replayAll(t, st, js, replay.Options{Stream: streams.Results, ToSeq: full.CheckpointSeq / 2})
		half, _ := st.Dump(ctx)
		want, _ := ref.Dump(ctx)

		if len(want.History) <= len(half.History) {
			t.Fatalf("the second half of the stream writes no history (%d of %d rows): the test proves nothing", len(half.History), len(want.History))
		}
		look, err := replay.Rebuild(ctx, st, js, replay.Options{Stream: streams.Results}, true)
		if err != nil {
			t.Fatal(err)
		}
		if look.Diff.HistoryToAdd != int64(len(want.History)-len(half.History)) {
			t.Errorf("history_rows_to_add %d, want %d", look.Diff.HistoryToAdd, len(want.History)-len(half.History))
		}
		got, _ := st.Dump(ctx)
		if wr, gr := testutil.TableRows(t, ref, "inventory_disks"), testutil.TableRows(t, st, "inventory_disks"); len(wr) == 0 || !reflect.DeepEqual(wr, gr) {
			t.Errorf("inventory_disks after the rebuild:\n%q\nwant\n%q", gr, wr)
		}
		if !reflect.DeepEqual(want.History, got.History) || !reflect.DeepEqual(want.Checks, got.Checks) || !reflect.DeepEqual(want.Feeds, got.Feeds) {
			t.Errorf("after the rebuild: history %d rows (want %d), checks %d (want %d), feed rows %d (want %d)",
				len(got.History), len(want.History), len(got.Checks), len(want.Checks), len(got.Feeds), len(want.Feeds))
		}
	})
}

// failingShadowPG is a PostgreSQL store, so a rebuild overlaps its batches,
// whose shadow projection transactions fail after all their statements
// ran, from the call numbered from on, times times (every time when
// negative), each once another transaction is open beside it or a second
// has passed.
type failingShadowPG struct {
	*pgstore.Store
	from   int32
	calls  atomic.Int32
	open   atomic.Int32
	mu     sync.Mutex
	times  int
	beside []int32 // transactions open when each failure was injected
	// createFails and diffFails fail that many first calls of each step.
	createFails, diffFails int
	// swapFails fails that many first swaps, each after its commit when
	// swapLost is set (the commit's answer lost with the connection), or
	// before it.
	swapFails int
	swapLost  bool
	swaps     int
}

func (f *failingShadowPG) SwapShadow(ctx context.Context) (string, error) {
	f.swaps++
	if f.swapFails == 0 {
		return f.Store.SwapShadow(ctx)
	}
	f.swapFails--
	lost := errors.New("commit: unexpected EOF")
	if !f.swapLost {
		return fmt.Sprintf("kanade_old_%d_", time.Now().Unix()), lost
	}
	prefix, err := f.Store.SwapShadow(ctx)
	if err != nil {
		return prefix, err
	}
	return prefix, lost
}

func (f *failingShadowPG) CreateShadow(ctx context.Context, carryBefore time.Time) (int64, error) {
	if f.createFails > 0 {
		f.createFails--
		return 0, errors.New("carry over old rows: unexpected EOF")
	}
	return f.Store.CreateShadow(ctx, carryBefore)
}

func (f *failingShadowPG) DiffShadow(ctx context.Context, sample int) (*store.ShadowDiff, error) {
	if f.diffFails > 0 {
		f.diffFails--
		return nil, errors.New("write tcp 127.0.0.1:5432: connection reset by peer")
	}
	return f.Store.DiffShadow(ctx, sample)
}

func (f *failingShadowPG) ProjectShadow(ctx context.Context, fn func(store.ProjectionTx) error) error {
	n := f.calls.Add(1)
	f.open.Add(1)
	defer f.open.Add(-1)
	return f.Store.ProjectShadow(ctx, func(tx store.ProjectionTx) error {
		if err := fn(tx); err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if n < f.from || f.times == 0 {
			return nil
		}
		f.times--
		for deadline := time.Now().Add(time.Second); f.open.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		f.beside = append(f.beside, f.open.Load())
		return errors.New("write tcp 127.0.0.1:5432: connection reset by peer")
	})
}

// rebuildFleet is a PostgreSQL store with a fleet's streams projected, the
// tables that left, and the options of a rebuild in batches of 50.
// tablesAsBefore fails the test with msg unless st's tables are before.
func tablesAsBefore(t *testing.T, st *failingShadowPG, before *store.Tables, msg string) {
	t.Helper()
	after, err := st.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Error(msg)
	}
}

func rebuildFleet(t *testing.T) (jetstream.JetStream, *failingShadowPG, *store.Tables, replay.Options) {
	cfg := sim.Defaults()
	cfg.PCs = 40
	js, f := fleetServer(t, cfg)
	st := &failingShadowPG{Store: testutil.PostgresStore(t)}
	if err := st.Seed(context.Background(), f.Executions, nil); err != nil {
		t.Fatal(err)
	}
	replayAll(t, st, js, replay.Options{Stream: streams.Events})
	replayAll(t, st, js, replay.Options{Stream: streams.Results})
	before, err := st.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return js, st, before, replay.Options{Stream: streams.Results, Batch: 50, RetryBase: time.Millisecond}
}

// A rebuild's batch that fails is retried, as a replay's is, while the
// batch behind it waits on its own connection; the rebuild then finds and
// leaves the tables of a fully projected stream as they were.
func TestRebuildRetriesABatch(t *testing.T) {
	js, st, before, o := rebuildFleet(t)
	ctx := context.Background()
	st.from, st.times = 3, 1
	var told []string
	o.OnRetry = func(seq uint64, attempt int, _ time.Duration, err error) {
		told = append(told, fmt.Sprintf("%d:%v", attempt, err))
	}
	rep, err := replay.Rebuild(ctx, st, js, o, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 || !strings.Contains(told[0], "connection reset") {
		t.Errorf("retries reported: %q; want one", told)
	}
	if len(st.beside) != 1 || st.beside[0] < 2 {
		t.Errorf("failure injected with %v transactions open; want the next batch's beside it", st.beside)
	}
	if d := rep.Diff; !rep.Swapped || d.OnlyLive+d.OnlyShadow+d.Changed+d.ExecutionsDiff+d.HistoryToAdd != 0 {
		t.Errorf("rebuild of a fully projected stream: swapped %v, difference %+v", rep.Swapped, d)
	}
	tablesAsBefore(t, st, before, "after a rebuild with a retried batch the tables differ from before it")
}

// A batch that keeps failing stops the rebuild: the live tables are as
// they were, the shadow tables are gone, and the error says so.
func TestRebuildStopsOnABatchThatKeepsFailing(t *testing.T) {
	js, st, before, o := rebuildFleet(t)
	ctx := context.Background()
	st.from, st.times = 3, -1
	o.RetryAttempts = 2
	_, err := replay.Rebuild(ctx, st, js, o, true)
	if err == nil || !strings.Contains(err.Error(), "failed 2 times") || !strings.Contains(err.Error(), "the live tables are untouched") {
		t.Fatalf("rebuild: %v; want the batch's failure and what it left", err)
	}
	tablesAsBefore(t, st, before, "a failed rebuild changed the live tables")
	var shadows int
	if err := st.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'kanade\\_shadow\\_%'").Scan(&shadows); err != nil {
		t.Fatal(err)
	}
	if shadows != 0 {
		t.Errorf("%d shadow tables left behind", shadows)
	}
}

// The shadow tables' creation and the diff are retried as batches are (a
// server restart during the carry-over stopped the rebuild in the chaos
// suite); the rebuild then ends as one that never failed.
func TestRebuildRetriesItsSteps(t *testing.T) {
	js, st, before, o := rebuildFleet(t)
	ctx := context.Background()
	st.createFails, st.diffFails = 2, 1
	rep, err := replay.Rebuild(ctx, st, js, o, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.createFails+st.diffFails != 0 || !rep.Swapped {
		t.Fatalf("steps left to fail %d/%d, swapped %v", st.createFails, st.diffFails, rep.Swapped)
	}
	tablesAsBefore(t, st, before, "after a rebuild with retried steps the tables differ from before it")
}

// A swap that failed is retried, and one whose commit's answer was lost
// is found to have happened, not swapped again: either way the rebuild
// ends swapped, once, with the tables as a rebuild of a fully projected
// stream leaves them.
func TestRebuildRetriesItsSwap(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run(map[bool]string{false: "failed", true: "answer lost"}[lost], func(t *testing.T) {
			js, st, before, o := rebuildFleet(t)
			ctx := context.Background()
			st.swapFails, st.swapLost = 1, lost
			rep, err := replay.Rebuild(ctx, st, js, o, true)
			if err != nil {
				t.Fatal(err)
			}
			want := map[bool]int{false: 2, true: 1}[lost]
			if !rep.Swapped || st.swaps != want {
				t.Fatalf("swapped %v after %d swaps, want %d", rep.Swapped, st.swaps, want)
			}
			var old []string
			rows, err := st.Pool().Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'kanade\\_old\\_%execution\\_results'")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				old = append(old, n)
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
			if len(old) != 1 || old[0] != rep.OldPrefix+"execution_results" {
				t.Errorf("old tables %v, want the one swap's, under %q", old, rep.OldPrefix)
			}
			tablesAsBefore(t, st, before, "after a rebuild with a retried swap the tables differ from before it")
		})
	}
}

// A swap that keeps failing after its commit ends the rebuild as swapped:
// its last answer was lost, not its work.
func TestRebuildSwapLostOnItsLastAttempt(t *testing.T) {
	js, st, _, o := rebuildFleet(t)
	st.swapFails, st.swapLost = 1, true
	o.RetryAttempts = 1
	rep, err := replay.Rebuild(context.Background(), st, js, o, true)
	if err != nil {
		t.Fatalf("rebuild: %v; want the swap that committed", err)
	}
	if !rep.Swapped || rep.OldPrefix == "" {
		t.Fatalf("swapped %v under %q; want the swap that committed", rep.Swapped, rep.OldPrefix)
	}
}

// A swap that keeps failing before its commit stops the rebuild with the
// live tables as they were, and says so.
func TestRebuildStopsOnASwapThatKeepsFailing(t *testing.T) {
	js, st, before, o := rebuildFleet(t)
	ctx := context.Background()
	st.swapFails, o.RetryAttempts = 2, 2
	_, err := replay.Rebuild(ctx, st, js, o, true)
	if err == nil || !strings.Contains(err.Error(), "the swap did not commit: the live tables are untouched") || st.swaps != 2 {
		t.Fatalf("rebuild: %v after %d swaps; want two failed swaps and what they left", err, st.swaps)
	}
	tablesAsBefore(t, st, before, "a rebuild whose swap failed changed the live tables")
}
