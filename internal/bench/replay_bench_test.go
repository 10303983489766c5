//go:build bench

// Package bench measures `kanade stream replay` against its baselines in
// one run on one machine (make bench): (a) the exact yardstick, the same
// rows loaded into the same schema idempotently and counted, with no NATS
// and no decoding on the clock (PostgreSQL: COPY into a staging table, one
// INSERT ... SELECT ... ON CONFLICT DO NOTHING and a counter CTE; SQLite: a
// prepared INSERT ... ON CONFLICT DO NOTHING in 5,000-row transactions, WAL,
// synchronous=NORMAL, the counters moved per transaction); (p) PostgreSQL's
// ceiling, a plain COPY into execution_results, neither idempotent nor
// counted; (b) upstream's projector, one message per transaction; (c) the
// replay end to end from a JetStream file stream, as a subprocess so its
// peak RSS is its own.
package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/projector/serialref"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

var (
	sizes  = flag.String("bench.n", "200000,1000000", "stream sizes")
	serial = flag.Int("bench.serial", 20000, "messages the upstream-style baseline projects (its rate is flat)")
	batch  = flag.Int("bench.batch", 0, "replay batch size (0: the replay's own default for the store)")
	stores = flag.String("bench.stores", "postgres,sqlite", "stores the replay benchmark measures")
	reps   = flag.Int("bench.reps", 3, "alternating (a)/(c) measurements per size and store; the table shows medians")
	pad    = flag.Int("bench.pad", 0, "bytes added to every result's stdout (large payloads)")
	extra  = flag.String("bench.flags", "", "more flags for the replay, space-separated (--batch-bytes=4MiB)")
)

func TestReplayPerformance(t *testing.T) {
	ctx := context.Background()
	bin := buildKanade(t)
	fmt.Printf("| N | store | (a) exact yardstick msg/s | (p) plain COPY msg/s | (q) batched plain COPY msg/s | (b) upstream-style msg/s | (c) replay msg/s | (c)/(a) median (min–max) | (c)/(p) median (min–max) | (c)/(q) median (min–max) | (c)/(b) | (c) peak RSS MB | server CPU s (p) / (c) | (c) kanade CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, ns := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(ns)
		if err != nil {
			t.Fatal(err)
		}
		fleet := sim.Bulk(n, 7)
		if *pad > 0 {
			padStdout(fleet, *pad)
		}
		srv, err := natsconn.StartEmbedded(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		if err := streams.EnsureLayout(ctx, js); err != nil {
			t.Fatal(err)
		}
		if err := sim.PublishAll(ctx, js, fleet.Results); err != nil {
			t.Fatal(err)
		}
		published := publishedAt(t, ctx, js, fleet)
		var bytes int
		for _, m := range fleet.Results {
			bytes += len(m.Data)
		}
		t.Logf("N=%d: %d messages, mean payload %d bytes", n, len(fleet.Results), bytes/len(fleet.Results))

		for _, kind := range benchStores() {
			// Each measurement gets its own schema or file, dropped when
			// its subtest ends, so a 1M run never holds several copies.
			fresh := func(name string, fn func(dsn string)) {
				t.Run(fmt.Sprintf("%s-%d-%s", kind, n, name), func(t *testing.T) { fn(freshDSN(t, kind)) })
			}
			var bRate float64
			fresh("b", func(dsn string) { bRate = upstreamStyle(t, ctx, dsn, fleet) })
			// (a) and (c) alternate, -bench.reps times: on a shared machine
			// the ratio of a pair measured back to back is steadier than
			// either rate.
			var aRates, pRates, qRates, cRates, ratios, pRatios, qRatios []float64
			// CPU seconds: the server's for (p) and (c), kanade's for (c).
			var pServer, cServer, cOwn []float64
			var rss float64
			rows := decoded(fleet, published)
			for range *reps {
				if kind == store.Postgres {
					fresh("a", func(dsn string) {
						a, _ := exactPostgres(t, ctx, dsn, fleet, rows)
						aRates = append(aRates, a)
					})
					fresh("p", func(dsn string) {
						p, cpu := plainCopy(t, ctx, dsn, fleet, rows, 0)
						pRates, pServer = append(pRates, p), append(pServer, cpu)
					})
					fresh("q", func(dsn string) {
						q, _ := plainCopy(t, ctx, dsn, fleet, rows, replayBatch())
						qRates = append(qRates, q)
					})
				} else {
					fresh("a", func(dsn string) { aRates = append(aRates, exactSQLite(t, ctx, dsn, fleet, rows)) })
				}
				fresh("c", func(dsn string) {
					r := replayBinary(t, ctx, bin, dsn, srv.ClientURL(), fleet, n)
					cRates, rss, cOwn = append(cRates, r.rate), max(rss, r.rssMB), append(cOwn, r.cpu)
					if kind == store.Postgres {
						cServer = append(cServer, r.serverCPU)
						if len(cRates) == 1 {
							sameRecordedAt(t, ctx, dsn, rows)
						}
					}
				})
				a, c := aRates[len(aRates)-1], cRates[len(cRates)-1]
				ratios = append(ratios, c/a)
				t.Logf("N=%d %s pair %d: (a) %.0f, (c) %.0f msg/s, (c)/(a) %.2f; (c) kanade CPU %.1f s", n, kind, len(ratios), a, c, c/a, cOwn[len(cOwn)-1])
				if len(pRates) > 0 {
					pRatios, qRatios = append(pRatios, c/pRates[len(pRates)-1]), append(qRatios, c/qRates[len(qRates)-1])
					t.Logf("  (p) %.0f msg/s, (c)/(p) %.2f; (q) %.0f msg/s, (c)/(q) %.2f; server CPU (p) %.1f s, (c) %.1f s", pRates[len(pRates)-1], pRatios[len(pRatios)-1],
						qRates[len(qRates)-1], qRatios[len(qRatios)-1], pServer[len(pServer)-1], cServer[len(cServer)-1])
				}
			}
			spread := func(r []float64) string {
				if len(r) == 0 {
					return "-"
				}
				return fmt.Sprintf("%.2f (%.2f–%.2f)", median(r), slices.Min(r), slices.Max(r))
			}
			p, q := "-", "-"
			if len(pRates) > 0 {
				p, q = fmt.Sprintf("%.0f", median(pRates)), fmt.Sprintf("%.0f", median(qRates))
			}
			server := "-"
			if len(pServer) > 0 {
				server = fmt.Sprintf("%.1f / %.1f", median(pServer), median(cServer))
			}
			cRate := median(cRates)
			fmt.Printf("| %d | %s | %.0f | %s | %s | %.0f | %.0f | %s | %s | %s | %.1f | %.0f | %s | %.1f |\n", n, kind, median(aRates), p, q, bRate, cRate, spread(ratios),
				spread(pRatios), spread(qRatios), cRate/bRate, rss, server, median(cOwn))
		}
		nc.Close()
		srv.Shutdown()
	}
}

func openSeeded(t *testing.T, ctx context.Context, dsn string, fleet *sim.Fleet) testutil.Store {
	st, err := testutil.Dial(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Seed(ctx, fleet.Executions, nil); err != nil {
		t.Fatal(err)
	}
	return st
}

// decoded are the rows the stream's results make, decoded before any
// clock starts: the yardsticks measure the database alone. A row's
// recorded_at is its message's publish time (published, by the message's
// place in fleet.Results), as the replay writes it. Until the seventeenth
// session every row had one instant: the indexes on recorded_at, (exec_id,
// recorded_at) and (pc_id, recorded_at) then held long runs of equal keys,
// which PostgreSQL stores as deduplicated posting lists, and the
// yardsticks loaded rows that were cheaper to index than the replay's
// (docs/performance.md).
func decoded(fleet *sim.Fleet, published []time.Time) []store.ResultRow {
	rows := make([]store.ResultRow, 0, len(fleet.Results))
	for i, m := range fleet.Results {
		r, err := wire.DecodeExecResult(m.Data)
		if err != nil {
			continue
		}
		code := int32(r.ExitCode)
		fin := r.FinishedAt
		rows = append(rows, store.ResultRow{ResultID: r.StableID(), RequestID: r.RequestID, ExecID: r.ExecID, PCID: r.PCID, ExitCode: &code,
			Stdout: r.Stdout, Stderr: r.Stderr, StartedAt: r.StartedAt, FinishedAt: &fin, JobID: r.ManifestID, RecordedAt: published[i],
			ParentResultID: r.ParentResultID, Skipped: r.IsSkipped()})
	}
	return rows
}

// publishedAt is the time JetStream stamped on each of fleet's results in
// the stream RESULTS, where they were published in order and alone: the
// time the replay writes as a row's recorded_at.
func publishedAt(t *testing.T, ctx context.Context, js jetstream.JetStream, fleet *sim.Fleet) []time.Time {
	t.Helper()
	s, err := js.Stream(ctx, streams.Results)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer msgs.Stop()
	out := make([]time.Time, len(fleet.Results))
	for i := range out {
		m, err := msgs.Next()
		if err != nil {
			t.Fatal(err)
		}
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if md.Sequence.Stream != uint64(i+1) || m.Subject() != fleet.Results[i].Subject {
			t.Fatalf("RESULTS sequence %d (%s) is not the fleet's result %d (%s)", md.Sequence.Stream, m.Subject(), i, fleet.Results[i].Subject)
		}
		out[i] = md.Timestamp
	}
	return out
}

// sameRecordedAt fails the benchmark unless the replay stored, for every
// hundredth result, the recorded_at the yardsticks load (the first
// delivery's publish time): the yardsticks' claim to load the same rows.
func sameRecordedAt(t *testing.T, ctx context.Context, dsn string, rows []store.ResultRow) {
	t.Helper()
	var ids []string
	var at []time.Time
	for i, r := range firstOfEach(rows) {
		if i%100 == 0 {
			ids, at = append(ids, r.ResultID), append(at, r.RecordedAt)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var same, all int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE e.recorded_at = y.at), count(*)
		FROM unnest($1::text[], $2::timestamptz[]) AS y(id, at) JOIN execution_results e ON e.result_id = y.id`, ids, at).Scan(&same, &all); err != nil {
		t.Fatal(err)
	}
	if same != len(ids) {
		t.Fatalf("the replay stored the yardsticks' recorded_at for %d of %d sampled results (%d found): they do not load the same rows", same, len(ids), all)
	}
}

// yardstickCols are the columns the replay writes, so the yardsticks
// write the same rows (the columns a result leaves at their defaults
// included: a COPY of fewer columns is less work for the server).
var yardstickCols = []string{"result_id", "request_id", "exec_id", "pc_id", "exit_code", "stdout", "stderr", "started_at", "finished_at",
	"job_id", "parent_result_id", "recorded_at", "version", "expires_at", "skipped", "reaped"}

func pgValues(rows []store.ResultRow) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = []any{r.ResultID, r.RequestID, r.ExecID, r.PCID, r.ExitCode, r.Stdout, r.Stderr, r.StartedAt, r.FinishedAt,
			r.JobID, r.ParentResultID, r.RecordedAt, r.Version, r.ExpiresAt, r.Skipped, r.Reaped}
	}
	return out
}

// timedPostgres seeds a fresh database, then times load and returns the
// stream's messages per second and the server's CPU seconds for it.
func timedPostgres(t *testing.T, ctx context.Context, dsn string, fleet *sim.Fleet, load func(conn *pgx.Conn) error) (float64, float64) {
	st := openSeeded(t, ctx, dsn, fleet)
	st.Close()
	checkpoint(t, ctx, dsn)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	wal := walMB(t, ctx, conn)
	cpu, start := serverCPU(), time.Now()
	if err := load(conn); err != nil {
		t.Fatal(err)
	}
	rate, used := float64(len(fleet.Results))/time.Since(start).Seconds(), serverCPU()-cpu
	t.Logf("%.0f msg/s, server CPU %.1f s, WAL %.0f MB", rate, used, walMB(t, ctx, conn)-wal)
	return rate, used
}

// inTx runs fn in one transaction, begun by begin.
func inTx(ctx context.Context, conn *pgx.Conn, begin string, fn func(tx pgx.Tx) error) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: begin})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after the commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// exactPostgres is (a) on PostgreSQL: COPY into staging, then one INSERT ...
// SELECT ... ON CONFLICT DO NOTHING whose inserted rows move the counters of
// their executions in the same statement.
func exactPostgres(t *testing.T, ctx context.Context, dsn string, fleet *sim.Fleet, rows []store.ResultRow) (float64, float64) {
	values := pgValues(rows)
	cols := strings.Join(yardstickCols, ",")
	return timedPostgres(t, ctx, dsn, fleet, func(conn *pgx.Conn) error {
		return inTx(ctx, conn, "BEGIN", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "CREATE TEMP TABLE staging ("+stagingColumns+") ON COMMIT DROP"); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging"}, yardstickCols, pgx.CopyFromRows(values)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `WITH ins AS (
				INSERT INTO execution_results (`+cols+`) SELECT `+cols+` FROM staging ON CONFLICT (result_id) DO NOTHING
				RETURNING exec_id, exit_code),
			`+bumpCounters("ins"))
			return err
		})
	})
}

// stagingColumns are a yardstick's staging table: yardstickCols, typed.
const stagingColumns = `result_id text, request_id text, exec_id text, pc_id text, exit_code integer,
	stdout text, stderr text, started_at timestamptz, finished_at timestamptz, job_id text, parent_result_id text, recorded_at timestamptz,
	version text, expires_at timestamptz, skipped boolean, reaped boolean`

// bumpCounters ends a yardstick's statement: the rows from (exec_id,
// exit_code) move their executions' counters and status, by upstream's
// rule.
func bumpCounters(from string) string {
	return `d AS (SELECT exec_id, count(*) FILTER (WHERE exit_code = 0) AS s, count(*) FILTER (WHERE exit_code <> 0) AS f
		FROM ` + from + ` WHERE exec_id IS NOT NULL AND exec_id <> '' GROUP BY exec_id)
	UPDATE executions e SET success_count = e.success_count + d.s, failure_count = e.failure_count + d.f,
		status = ` + store.ExecutionStatusSQL("e.status", "e.success_count + d.s + e.failure_count + d.f", "e.target_count") + `
	FROM d WHERE e.exec_id = d.exec_id`
}

// plainCopy is (p): PostgreSQL's ceiling, the rows COPYed straight into
// execution_results in one transaction. A plain COPY cannot skip a
// redelivered result, so it copies each result_id once (the first), and
// its rate is over all the stream's messages, as the others' are. With
// per > 0 it is (q): the same COPY cut into transactions of per rows,
// committed as the replay commits (each waiting for its WAL flush), which is what
// a replay that checkpoints every batch can at best be.
func plainCopy(t *testing.T, ctx context.Context, dsn string, fleet *sim.Fleet, rows []store.ResultRow, per int) (float64, float64) {
	values := pgValues(firstOfEach(rows))
	if per == 0 {
		per = len(values)
	}
	return timedPostgres(t, ctx, dsn, fleet, func(conn *pgx.Conn) error {
		for lo := 0; lo < len(values); lo += per {
			err := inTx(ctx, conn, "BEGIN; SET LOCAL synchronous_commit = on", func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"execution_results"}, yardstickCols, pgx.CopyFromRows(values[lo:min(lo+per, len(values))]))
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// firstOfEach is rows without redeliveries: the first row of each
// result_id, in order, for the yardsticks that cannot skip one.
func firstOfEach(rows []store.ResultRow) []store.ResultRow {
	seen := make(map[string]bool, len(rows))
	distinct := make([]store.ResultRow, 0, len(rows))
	for _, r := range rows {
		if !seen[r.ResultID] {
			seen[r.ResultID] = true
			distinct = append(distinct, r)
		}
	}
	return distinct
}

// padStdout makes every decodable result's stdout n bytes longer, for
// measuring payloads larger than the simulator's.
func padStdout(fleet *sim.Fleet, n int) {
	tail := strings.Repeat("x", n)
	for i, m := range fleet.Results {
		if r, err := wire.DecodeExecResult(m.Data); err == nil {
			r.Stdout += tail
			fleet.Results[i].Data = r.Encode()
		}
	}
}

// replayBatch is the batch the replay runs with: -bench.batch, or the
// binary's default (5,000 on both stores).
func replayBatch() int {
	if *batch > 0 {
		return *batch
	}
	return 5000
}

// exactSQLite is (a) on SQLite: the project's own schema, WAL and
// synchronous=NORMAL, a prepared INSERT ... ON CONFLICT DO NOTHING per row
// in 5,000-row transactions, each transaction moving the counters of the
// rows it inserted.
func exactSQLite(t *testing.T, ctx context.Context, dsn string, fleet *sim.Fleet, rows []store.ResultRow) float64 {
	st := openSeeded(t, ctx, dsn, fleet)
	st.Close()
	db, err := sql.Open("sqlite", sqlitestore.DSN(dsn, url.Values{"_pragma": {"busy_timeout(10000)", "synchronous(NORMAL)"}, "_txlock": {"immediate"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	stamp := wire.FormatSQLiteTimestamp
	start := time.Now()
	const per = 5000
	for lo := 0; lo < len(rows); lo += per {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO execution_results (`+strings.Join(yardstickCols, ",")+`)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (result_id) DO NOTHING`)
		if err != nil {
			t.Fatal(err)
		}
		type delta struct{ s, f int64 }
		moved := map[string]*delta{}
		for _, r := range rows[lo:min(lo+per, len(rows))] {
			var expires any
			if r.ExpiresAt != nil {
				expires = stamp(*r.ExpiresAt)
			}
			res, err := ins.ExecContext(ctx, r.ResultID, r.RequestID, r.ExecID, r.PCID, *r.ExitCode, r.Stdout, r.Stderr, stamp(r.StartedAt),
				stamp(*r.FinishedAt), r.JobID, r.ParentResultID, stamp(r.RecordedAt), r.Version, expires, r.Skipped, r.Reaped)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n == 1 && r.ExecID != nil && *r.ExecID != "" {
				d := moved[*r.ExecID]
				if d == nil {
					d = &delta{}
					moved[*r.ExecID] = d
				}
				if *r.ExitCode == 0 {
					d.s++
				} else {
					d.f++
				}
			}
		}
		ins.Close()
		for id, d := range moved {
			if _, err := tx.ExecContext(ctx, `UPDATE executions SET success_count = success_count + ?, failure_count = failure_count + ?,
				status = `+store.ExecutionStatusSQL("status", "success_count + ?3 + failure_count + ?4", "target_count")+` WHERE exec_id = ?5`,
				d.s, d.f, d.s, d.f, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return float64(len(fleet.Results)) / time.Since(start).Seconds()
}

// upstreamStyle runs the serial reference over the first -bench.serial
// messages; its rate does not depend on N.
func upstreamStyle(t *testing.T, ctx context.Context, dsn string, fleet *sim.Fleet) float64 {
	st := openSeeded(t, ctx, dsn, fleet)
	defer st.Close()
	ref := serialref.New(st)
	n := min(*serial, len(fleet.Results))
	start := time.Now()
	for i, m := range fleet.Results[:n] {
		msg := projector.Message{Stream: "RESULTS", Seq: uint64(i + 1), Subject: m.Subject, Published: time.Now(), Data: m.Data}
		if err := ref.Project(ctx, msg, fleet.Objects, nil); err != nil {
			t.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// binaryRun is what replayBinary measures.
type binaryRun struct {
	rate      float64 // messages per second
	rssMB     float64 // peak RSS
	serverCPU float64 // seconds of PostgreSQL's CPU (serverCPU)
	cpu       float64 // seconds of the kanade process's own CPU, user and system
}

// replayBinary runs `kanade stream replay` as a process and measures it.
func replayBinary(t *testing.T, ctx context.Context, bin, dsn, natsURL string, fleet *sim.Fleet, n int) binaryRun {
	st := openSeeded(t, ctx, dsn, fleet)
	postgres := st.Kind() == store.Postgres
	st.Close()
	args := []string{"--db", dsn, "--nats-url", natsURL, "stream", "replay", "--progress", "none", "-o", "json"}
	if *batch > 0 {
		args = append(args, "--batch", strconv.Itoa(*batch))
	}
	args = append(args, strings.Fields(*extra)...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	cmd.Stderr = os.Stderr
	var stdout strings.Builder
	cmd.Stdout = &stdout
	// The WAL it writes, on PostgreSQL.
	var walConn *pgx.Conn
	var wal float64
	if postgres {
		checkpoint(t, ctx, dsn)
		var err error
		if walConn, err = pgx.Connect(ctx, dsn); err != nil {
			t.Fatal(err)
		}
		defer walConn.Close(ctx)
		wal = walMB(t, ctx, walConn)
	}
	// Settled readings on both sides: the seeding's connections and the
	// replay's end just before them.
	cpu, start := settledServerCPU(), time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := watchPeak(cmd.Process.Pid)
	err := cmd.Wait()
	elapsed := time.Since(start)
	cpu = settledServerCPU() - cpu
	if postgres {
		t.Logf("replay: %.0f msg/s, server CPU %.1f s, WAL %.0f MB", float64(n)/elapsed.Seconds(), cpu, walMB(t, ctx, walConn)-wal)
	}
	hwmKB := peak()
	out := []byte(stdout.String())
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	var sum struct {
		Stats struct {
			Messages int `json:"messages"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(out, &sum); err != nil || sum.Stats.Messages != n {
		t.Fatalf("replay summary: %v %s", err, out)
	}
	return binaryRun{rate: float64(n) / elapsed.Seconds(), rssMB: float64(hwmKB) / 1024, serverCPU: cpu,
		cpu: (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()}
}

// buildKanade builds the kanade binary of this tree for the test.
func buildKanade(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kanade")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/kanade").CombinedOutput(); err != nil {
		t.Fatalf("build kanade: %v\n%s", err, out)
	}
	return bin
}

// watchPeak polls a process's peak RSS until the returned function is
// called (once it has exited), which returns it in kB. Peak RSS is VmHWM,
// the high-water mark of the process's own memory map. (wait4's ru_maxrss
// would include this benchmark's memory: the child is vforked from it
// before exec.)
func watchPeak(pid int) func() int64 {
	var hwm int64
	stop, polled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		for {
			if kb := vmHWM(pid); kb > hwm {
				hwm = kb
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-polled
		return hwm
	}
}

func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
