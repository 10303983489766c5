package replay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

func execSQL(t *testing.T, st testutil.Store, pgq, sq string, args ...any) {
	t.Helper()
	var err error
	switch s := st.(type) {
	case *pgstore.Store:
		_, err = s.Pool().Exec(context.Background(), pgq, args...)
	case *sqlitestore.Store:
		_, err = s.DB().Exec(sq, args...)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs, cfg.Undecodable = 30, 0
	js, f := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		if err := st.Seed(ctx, f.Executions, nil); err != nil {
			t.Fatal(err)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Results, Batch: 100})
		clean, err := replay.Verify(ctx, st, js, replay.Options{Stream: streams.Results, Batch: 64}, replay.Checks{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if clean.Total != 0 || clean.Checked != int64(len(f.Results)) {
			t.Fatalf("a fully replayed stream must verify clean: %+v", clean)
		}
		// Plant one of each difference.
		var ids []string
		for _, m := range f.Results[:3] {
			r, _ := wire.DecodeExecResult(m.Data)
			ids = append(ids, r.StableID())
		}
		execSQL(t, st, "DELETE FROM execution_results WHERE result_id = $1", "DELETE FROM execution_results WHERE result_id = ?", ids[0])
		execSQL(t, st, "UPDATE execution_results SET exit_code = 99 WHERE result_id = $1", "UPDATE execution_results SET exit_code = 99 WHERE result_id = ?", ids[1])
		execSQL(t, st, "UPDATE execution_results SET finished_at = NULL WHERE result_id = $1", "UPDATE execution_results SET finished_at = NULL WHERE result_id = ?", ids[2])
		rep, err := replay.Verify(ctx, st, js, replay.Options{Stream: streams.Results, Batch: 64}, replay.Checks{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Counts[replay.DiffMissing] < 1 || rep.Counts[replay.DiffContent] < 1 || rep.Counts[replay.DiffInFlight] < 1 || rep.Counts[replay.DiffQuarantined] != 0 {
			t.Fatalf("planted differences: %+v", rep.Counts)
		}
		found := map[string]string{}
		for _, d := range rep.Differences {
			found[d.ResultID] = d.Kind
		}
		if found[ids[0]] != replay.DiffMissing || found[ids[1]] != replay.DiffContent || found[ids[2]] != replay.DiffInFlight {
			t.Errorf("differences: %+v", rep.Differences)
		}
		// --only: the other kinds are neither checked nor counted.
		only, err := replay.Verify(ctx, st, js, replay.Options{Stream: streams.Results, Batch: 64}, replay.Checks{Limit: 10, Only: []string{replay.DiffInFlight}})
		if err != nil {
			t.Fatal(err)
		}
		if len(only.Counts) != 1 || only.Counts[replay.DiffInFlight] != rep.Counts[replay.DiffInFlight] || only.Total != only.Counts[replay.DiffInFlight] ||
			len(only.Differences) != 1 || only.Differences[0].ResultID != ids[2] {
			t.Errorf("--only row_in_flight: %+v %+v", only.Counts, only.Differences)
		}
		// A window excludes what lies outside it.
		tail, err := replay.Verify(ctx, st, js, replay.Options{Stream: streams.Results, FromSeq: 10}, replay.Checks{Limit: 10})
		if err != nil || tail.Total != 0 {
			t.Errorf("window from seq 10: %+v %v", tail, err)
		}
		// The derived tables: a check status gone, a feed older than its
		// messages.
		tables, _ := st.Dump(ctx)
		if len(tables.Checks) == 0 || len(tables.FeedMeta) == 0 {
			t.Fatal("the fleet wrote no check status or feed: the derived check proves nothing")
		}
		execSQL(t, st, "DELETE FROM check_status WHERE pc_id = $1", "DELETE FROM check_status WHERE pc_id = ?", tables.Checks[0].PCID)
		execSQL(t, st, "UPDATE feed_meta SET recorded_at = '2020-01-01T00:00:00+00:00'", "UPDATE feed_meta SET recorded_at = '2020-01-01T00:00:00+00:00'")
		rep, err = replay.Verify(ctx, st, js, replay.Options{Stream: streams.Results, Batch: 64}, replay.Checks{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		var check, feed bool
		for _, d := range rep.Differences {
			check = check || (d.Kind == replay.DiffDerived && strings.Contains(d.Detail, "no check_status ("+tables.Checks[0].PCID))
			feed = feed || (d.Kind == replay.DiffDerived && strings.Contains(d.Detail, "feed \"disk-models\" was recorded at 2020-01-01"))
		}
		if !check || !feed {
			t.Errorf("derived differences not reported: %+v", rep.Differences)
		}
	})
}

// A message replay cannot project is a difference, and its detail says
// whether kanade_quarantine already keeps it; a database without that
// table (upstream's own, never migrated) is read, not refused.
func TestVerifyReportsUndecodable(t *testing.T) {
	cfg := sim.Defaults()
	cfg.PCs = 5
	js, _ := fleetServer(t, cfg)
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		quarantined := func(when string) replay.Difference {
			t.Helper()
			rep, err := replay.Verify(ctx, st, js, replay.Options{Stream: streams.Results}, replay.Checks{Limit: 5})
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if rep.Counts[replay.DiffQuarantined] != 1 {
				t.Fatalf("%s: %+v", when, rep.Counts)
			}
			for _, d := range rep.Differences {
				if d.Kind == replay.DiffQuarantined {
					return d
				}
			}
			t.Fatalf("%s: the difference is not listed", when)
			return replay.Difference{}
		}
		if d := quarantined("empty database"); !strings.HasSuffix(d.Detail, "(not in kanade_quarantine yet: a replay keeps it there)") {
			t.Errorf("before a replay: %q", d.Detail)
		}
		replayAll(t, st, js, replay.Options{Stream: streams.Results})
		if d := quarantined("after a replay"); !strings.Contains(d.Detail, "(kept in kanade_quarantine since ") {
			t.Errorf("after a replay: %q", d.Detail)
		}
		execSQL(t, st, "DROP TABLE kanade_quarantine", "DROP TABLE kanade_quarantine")
		if d := quarantined("no quarantine table"); !strings.Contains(d.Detail, "not in kanade_quarantine yet") {
			t.Errorf("without the table: %q", d.Detail)
		}
	})
}
