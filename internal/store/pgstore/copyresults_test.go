package pgstore_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

// copyCases are rows at the edges of each column's encoding: NULLs,
// U+0000, exit codes at int32's ends, times before 2000 and 1970 and
// below a microsecond, outside UTC, at PostgreSQL's range ends, and
// payloads that cross the 64 KiB reads pgconn makes.
func copyCases() []store.ResultRow {
	str := func(s string) *string { return &s }
	code := func(c int32) *int32 { return &c }
	at := func(t time.Time) *time.Time { return &t }
	tokyo := time.FixedZone("JST", 9*3600)
	base := time.Date(2026, 11, 20, 9, 0, 0, 123456789, time.UTC)
	rows := []store.ResultRow{
		{ResultID: "full", RequestID: "req-1", ExecID: str("exec-1"), PCID: "pc-1", ExitCode: code(0), Stdout: "ok\n", Stderr: "warn",
			StartedAt: base, FinishedAt: at(base.Add(time.Second)), RecordedAt: base.Add(2 * time.Second), JobID: str("inventory-hw"),
			Version: str("1.2.0"), ExpiresAt: at(base.Add(time.Hour)), ParentResultID: str("parent"), Skipped: true, Reaped: true},
		{ResultID: "nulls", RequestID: "", PCID: "", StartedAt: base, RecordedAt: base},
		{ResultID: "nul\x00id", RequestID: "r\x00", ExecID: str("\x00"), PCID: "pc\x00", ExitCode: code(math.MinInt32), Stdout: "a\x00b\x00",
			Stderr: "\x00", StartedAt: base, RecordedAt: base, JobID: str("j\x00"), Version: str("v\x00"), ParentResultID: str("\x00p")},
		{ResultID: "max", RequestID: "日本語", PCID: "pc-✓", ExitCode: code(math.MaxInt32), Stdout: strings.Repeat("x", 200_000),
			StartedAt: time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), FinishedAt: at(time.Date(1969, 12, 31, 23, 59, 59, 500_000_001, time.UTC)),
			RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 6_000, tokyo), ExpiresAt: at(time.Date(1, 1, 1, 0, 0, 0, 1_000, time.UTC))},
		{ResultID: "edges", RequestID: "r", PCID: "p", ExitCode: code(-1), StartedAt: time.Date(-4712, 12, 1, 0, 0, 0, 0, time.UTC),
			FinishedAt: at(time.Date(294275, 12, 31, 23, 59, 59, 999_999_000, time.UTC)), RecordedAt: time.Unix(0, 0)},
	}
	for i := range 3000 {
		rows = append(rows, store.ResultRow{ResultID: "bulk-" + strings.Repeat("k", i%40) + string(rune('a'+i%26)) + string(rune(0x3042+i)),
			RequestID: "req", PCID: "pc", ExitCode: code(int32(i)), Stdout: strings.Repeat("o", i%500), StartedAt: base.Add(time.Duration(i) * time.Nanosecond * 777),
			RecordedAt: base})
	}
	return rows
}

// The binary COPY the projector writes rows with stores exactly what
// pgx's CopyFrom stores for the same values (the encoding it replaced).
func TestCopyResultsStoresWhatPgxStores(t *testing.T) {
	ctx := context.Background()
	dsn := testutil.PostgresDSN(t)
	st, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE reference (LIKE execution_results INCLUDING ALL)"); err != nil {
		t.Fatal(err)
	}
	rows := copyCases()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"reference"}, pgstore.ResultColNames, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			return pgstore.PgxValues(&rows[i]), nil
		})); err != nil {
			return err
		}
		n, err := pgstore.CopyResults(ctx, tx, "execution_results", rows)
		if err == nil && n != int64(len(rows)) {
			t.Errorf("copied %d rows, want %d", n, len(rows))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dump := func(table string) []string {
		// Each timestamp as its microseconds since the epoch: equal text in
		// the session's time zone would hide nothing, but this says more
		// when it fails.
		res, err := conn.Query(ctx, `SELECT concat_ws('|', result_id, request_id, coalesce(exec_id, '<null>'), pc_id, coalesce(exit_code::text, '<null>'),
			md5(stdout), stderr, (extract(epoch FROM started_at) * 1000000)::numeric, coalesce(((extract(epoch FROM finished_at) * 1000000)::numeric)::text, '<null>'),
			coalesce(job_id, '<null>'), coalesce(parent_result_id, '<null>'), (extract(epoch FROM recorded_at) * 1000000)::numeric,
			coalesce(version, '<null>'), coalesce(((extract(epoch FROM expires_at) * 1000000)::numeric)::text, '<null>'), skipped, reaped)
			FROM `+table+` ORDER BY result_id COLLATE "C"`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(res, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := dump("reference"), dump("execution_results")
	if len(got) != len(want) || len(got) != len(rows) {
		t.Fatalf("execution_results holds %d rows, pgx's copy %d, of %d", len(got), len(want), len(rows))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}
