package sqlitestore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/backfill"
	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// upstreamSchema is an older upstream backend.db: sqlx's bookkeeping table
// and execution_results without the later optional columns.
const upstreamSchema = `
CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
CREATE TABLE execution_results (result_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, exec_id TEXT, pc_id TEXT NOT NULL, exit_code INTEGER,
  stdout TEXT NOT NULL DEFAULT '', stderr TEXT NOT NULL DEFAULT '', started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP,
  recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, job_id TEXT, version TEXT, reaped INTEGER NOT NULL DEFAULT 0);
CREATE TABLE executions (exec_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, version TEXT NOT NULL, initiated_by TEXT NOT NULL,
  initiated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, target_count INTEGER NOT NULL, success_count INTEGER NOT NULL DEFAULT 0,
  failure_count INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'pending');
CREATE TABLE inventory_facts (pc_id TEXT NOT NULL, job_id TEXT NOT NULL, facts_json TEXT NOT NULL, display_json TEXT, summary_json TEXT,
  collected_at TIMESTAMP, recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (pc_id, job_id));
CREATE TABLE agents (pc_id TEXT PRIMARY KEY);
INSERT INTO execution_results (result_id, request_id, pc_id, exit_code, started_at, finished_at, recorded_at)
  VALUES ('req-old', 'req-old', 'PC-01', 0, '2026-05-16 00:00:00', '2026-05-16 00:00:01', '2026-05-16 00:00:02');
`

func TestUpstreamBackendDB(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "backend.db")
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB().ExecContext(ctx, upstreamSchema); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = sqlitestore.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	if !st.Upstream() {
		t.Fatal("a file with _sqlx_migrations must be recognised as upstream's")
	}
	schemaOf := func() string {
		rows, err := st.DB().QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE tbl_name NOT LIKE 'kanade_%' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var name string
			var sql *string
			rows.Scan(&name, &sql) //nolint:errcheck
			b.WriteString(name + ":" + wire.Deref(sql) + "\n")
		}
		return b.String()
	}
	before := schemaOf()
	var journal string
	st.DB().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal) //nolint:errcheck
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if after := schemaOf(); after != before {
		t.Fatalf("migrate altered upstream's tables:\nbefore %s\nafter %s", before, after)
	}
	var journalAfter string
	st.DB().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journalAfter) //nolint:errcheck
	if journal != journalAfter {
		t.Errorf("journal mode changed from %s to %s", journal, journalAfter)
	}
	status, err := st.Status(ctx)
	if err != nil || !status.Upstream || status.SchemaVersion != status.LatestVersion {
		t.Fatalf("status: %+v %v", status, err)
	}

	// Project a result: it lands with upstream's TEXT timestamp shape even
	// though the file lacks the skipped/expires_at/parent_result_id columns.
	r := wire.ExecResult{ResultID: "r1", RequestID: "q1", PCID: "PC-02", ExitCode: 0, Skipped: wire.Bool(true),
		StartedAt: time.Date(2026, 5, 16, 0, 0, 0, 123456700, time.UTC), FinishedAt: time.Date(2026, 5, 16, 0, 0, 5, 500_000_000, time.UTC)}
	p := projector.New(st, nil, nil)
	b, err := p.Prepare(ctx, []projector.Message{{Stream: "RESULTS", Seq: 1, Subject: "results.q1", Published: time.Date(2026, 5, 16, 0, 0, 6, 0, time.UTC), Data: r.Encode()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(ctx, b, projector.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var started, finished, recorded string
	if err := st.DB().QueryRowContext(ctx, "SELECT CAST(started_at AS TEXT), CAST(finished_at AS TEXT), CAST(recorded_at AS TEXT) FROM execution_results WHERE result_id = 'r1'").
		Scan(&started, &finished, &recorded); err != nil {
		t.Fatal(err)
	}
	if started != "2026-05-16T00:00:00.123456700+00:00" || finished != "2026-05-16T00:00:05.500+00:00" || recorded != "2026-05-16T00:00:06+00:00" {
		t.Errorf("timestamps not in upstream's shape: %s %s %s", started, finished, recorded)
	}
	// The old space-separated row still reads.
	tables, err := st.Dump(ctx)
	if err != nil || len(tables.Results) != 2 {
		t.Fatalf("dump: %v %+v", err, tables)
	}
}

// newUpstreamFile writes an older upstream backend.db and returns its path.
func newUpstreamFile(t *testing.T) string {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "backend.db")
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB().ExecContext(ctx, upstreamSchema); err != nil {
		t.Fatal(err)
	}
	return path
}

// A backfill dry run works on an upstream file nobody migrated: it reports
// what it would rename and leaves the file without a single kanade table.
func TestBackfillDryRunOnUntouchedUpstreamFile(t *testing.T) {
	ctx := context.Background()
	path := newUpstreamFile(t)
	// The legacy payload was replayed later, so its row also exists under
	// the stable id: the backfill must archive one of the two.
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO execution_results (result_id, request_id, pc_id, exit_code, started_at, finished_at, recorded_at)
		VALUES (?, 'req-old', 'PC-01', 0, '2026-05-16T00:00:00+00:00', '2026-05-16T00:00:01+00:00', '2026-05-17T00:00:00+00:00')`,
		wire.LegacyResultID("req-old", "PC-01")); err != nil {
		t.Fatal(err)
	}
	st.Close() // checkpoints the WAL into the file, so the file is the whole state
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = sqlitestore.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	sum, err := backfill.Run(ctx, st, backfill.Options{DryRun: true})
	if err != nil {
		t.Fatalf("dry run on an unmigrated upstream file: %v", err)
	}
	if sum.Collisions != 1 || sum.ConflictsArchived != 1 {
		t.Fatalf("the dry run should report the one collision it would archive: %+v", sum)
	}
	var n int
	if err := st.DB().QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'kanade%'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the dry run left %d kanade objects in the file (%v)", n, err)
	}
	st.Close()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the dry run changed the file")
	}
}

// A read-only open reads, and cannot write: not the rows, not the journal
// mode, not a new file.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	path := newUpstreamFile(t)
	st, err := sqlitestore.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Status(ctx); err != nil {
		t.Fatalf("status through a read-only open: %v", err)
	}
	if _, err := st.DB().ExecContext(ctx, "DELETE FROM execution_results"); err == nil {
		t.Fatal("a read-only open wrote")
	}
	missing := filepath.Join(t.TempDir(), "missing.db")
	if _, err := sqlitestore.OpenReadOnly(ctx, missing); !errors.Is(err, store.ErrNoDatabase) {
		t.Fatalf("read-only open of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a read-only open created the file")
	}
}

// A stored timestamp that does not parse is an error that names the row
// and the column, never a zero time that sorts and prints as year 1.
func TestBrokenTimestampNamesTheRow(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO execution_results (result_id, request_id, pc_id, exit_code, started_at, finished_at, recorded_at)
		VALUES ('r-broken', 'req-broken', 'PC-1', 0, 'last tuesday', '2026-05-16T00:00:01+00:00', 'soon')`); err != nil {
		t.Fatal(err)
	}
	_, err = st.ListGroups(ctx, store.ListFilter{Limit: 10})
	if err == nil || !strings.Contains(err.Error(), "req-broken") || !strings.Contains(err.Error(), "started_at") {
		t.Fatalf("want an error naming the row and column, got %v", err)
	}
}

// upstreamDerived are the derived tables as upstream's migrations leave
// them: check_status created, then label added by a later ALTER TABLE.
const upstreamDerived = `
CREATE TABLE IF NOT EXISTS inventory_history (id INTEGER PRIMARY KEY AUTOINCREMENT, pc_id TEXT NOT NULL, job_id TEXT NOT NULL, field_path TEXT NOT NULL,
  identity_json TEXT, change_kind TEXT NOT NULL CHECK (change_kind IN ('added', 'removed', 'changed')), before_json TEXT, after_json TEXT,
  observed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS check_status (pc_id TEXT NOT NULL, check_name TEXT NOT NULL, status TEXT NOT NULL, detail TEXT,
  recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (pc_id, check_name));
ALTER TABLE check_status ADD COLUMN label TEXT;
CREATE TABLE IF NOT EXISTS feeds (feed_id TEXT NOT NULL, item_id TEXT NOT NULL, data TEXT NOT NULL, fetched_at TIMESTAMP, recorded_at TIMESTAMP NOT NULL, PRIMARY KEY (feed_id, item_id));
CREATE TABLE IF NOT EXISTS feed_meta (feed_id TEXT PRIMARY KEY, recorded_at TIMESTAMP NOT NULL, fetched_at TIMESTAMP, item_count INTEGER NOT NULL);
`

type oneManifest struct{ m *wire.Manifest }

func (o oneManifest) Manifest(_ context.Context, id string) (*wire.Manifest, error) {
	if id == o.m.ID {
		return o.m, nil
	}
	return nil, nil
}

// On upstream's own file the tool writes upstream's derived tables as they
// are, creates an explode table with upstream's DDL to the byte, and alters
// no other table; on an older file without them it writes what is there.
func TestUpstreamBackendDBDerivedTables(t *testing.T) {
	ctx := context.Background()
	man, err := wire.DecodeManifest([]byte(`{"id":"hw","version":"1","inventory":{"display":[{"field":"cpu","label":"CPU"}],"history_scalars":["cpu"],
		"explode":[{"field":"apps","table":"inventory_sw_apps","primary_key":["name","source"],"track_history":true,
		"columns":[{"field":"source","type":"text"},{"field":"name","index":true},{"field":"size","type":"integer"}]}]},
		"check":{"name":"disk","label":"Disk"},"feed":[{"id":"kev","field":"vulns","primary_key":["cveID"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, withDerived := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "backend.db")
		st, err := sqlitestore.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		schema := upstreamSchema
		if withDerived {
			schema += upstreamDerived
		}
		if _, err := st.DB().ExecContext(ctx, schema); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if st, err = sqlitestore.Open(ctx, path); err != nil {
			t.Fatal(err)
		}
		ddl := func() map[string]string {
			rows, err := st.DB().QueryContext(ctx, "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE name NOT LIKE 'kanade_%'")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var n, s string
				rows.Scan(&n, &s) //nolint:errcheck
				out[n] = s
			}
			return out
		}
		before := ddl()
		if _, err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		r := wire.ExecResult{ResultID: "r1", RequestID: "q1", PCID: "PC-02", ExitCode: 0, ManifestID: wire.Str("hw"),
			Stdout:    `{"cpu":"i7","status":"ok","apps":[{"name":"A","source":"msi","size":3}],"vulns":[{"cveID":"CVE-1"}]}`,
			StartedAt: time.Date(2026, 5, 16, 0, 0, 0, 0, time.UTC), FinishedAt: time.Date(2026, 5, 16, 0, 0, 5, 0, time.UTC)}
		p := projector.New(st, nil, oneManifest{man})
		b, err := p.Prepare(ctx, []projector.Message{{Stream: "RESULTS", Seq: 1, Subject: "results.q1", Published: time.Date(2026, 5, 16, 0, 0, 6, 0, time.UTC), Data: r.Encode()}})
		if err != nil {
			t.Fatal(err)
		}
		stats, err := p.Apply(ctx, b, projector.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		after := ddl()
		wantApps := "CREATE TABLE \"inventory_sw_apps\" (\n    pc_id TEXT NOT NULL,\n    job_id TEXT NOT NULL,\n    collected_at TIMESTAMP,\n" +
			"    \"source\" TEXT,\n    \"name\" TEXT,\n    \"size\" INTEGER,\n    PRIMARY KEY (pc_id, job_id, \"name\", \"source\")\n)"
		if after["inventory_sw_apps"] != wantApps || after["idx_inventory_sw_apps_name"] != `CREATE INDEX "idx_inventory_sw_apps_name" ON "inventory_sw_apps"("name")` {
			t.Errorf("explode table DDL:\n%s\n%s\nwant upstream's:\n%s", after["inventory_sw_apps"], after["idx_inventory_sw_apps_name"], wantApps)
		}
		for name, sql := range before {
			if after[name] != sql {
				t.Errorf("%s altered:\n%s\nnow\n%s", name, sql, after[name])
			}
		}
		tables, err := st.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if withDerived {
			if len(tables.Checks) != 1 || wire.Deref(tables.Checks[0].Label) != "Disk" || len(tables.Feeds) != 1 || len(tables.History) != 2 {
				t.Errorf("upstream's derived tables not written: checks %+v feeds %+v history %d", tables.Checks, tables.Feeds, len(tables.History))
			}
		} else if stats.CheckUpserts != 0 || stats.HistoryRows != 0 || len(tables.Checks)+len(tables.Feeds)+len(tables.History) != 0 {
			t.Errorf("an older file without the derived tables: %+v", stats)
		}
		st.Close()
	}
}
