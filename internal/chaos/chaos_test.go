//go:build chaos

// Package chaos injects faults into the kanade binary, run against a
// PostgreSQL cluster and a NATS server the suite starts itself on private
// ports: SIGKILL of replay, --follow, backfill and --rebuild --yes at
// random moments, a PostgreSQL restart and a NATS restart in the middle of
// a replay, and a full disk under an SQLite database. After each fault the
// command is run again, and the tables must equal those of an
// uninterrupted run on a fresh database, with the same audit counts: no
// message lost or counted twice. `make chaos` runs it (docs/reliability.md).
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

var (
	reps = flag.Int("chaos.reps", 3, "runs of each fault")
	seed = flag.Uint64("chaos.seed", 1, "seed of the kill moments")
	pcs  = flag.Int("chaos.pcs", 3000, "simulated fleet size (3000 PCs: about 19k RESULTS messages)")
	bin  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "kanade-chaos-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "kanade")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/kanade").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("build kanade: %v\n%s", err, out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// asPostgres runs a PostgreSQL tool as the postgres user when we are root
// (initdb refuses root).
func asPostgres(name string, args ...string) *exec.Cmd {
	path := filepath.Join(pgBin(), name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func pgBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 {
		return ""
	}
	return dirs[len(dirs)-1]
}

// pgServer is a private PostgreSQL cluster.
type pgServer struct {
	t    *testing.T
	data string
	port int
}

func startPostgres(t *testing.T) *pgServer {
	if pgBin() == "" {
		t.Skip("no PostgreSQL server binaries")
	}
	dir, err := os.MkdirTemp("", "kanade-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777) //nolint:errcheck
	p := &pgServer{t: t, data: filepath.Join(dir, "data"), port: freePort(t)}
	if out, err := asPostgres("initdb", "-D", p.data, "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	t.Cleanup(func() { p.stop(); os.RemoveAll(dir) })
	return p
}

func (p *pgServer) start() {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", p.port, filepath.Dir(p.data))
	p.pgctl("start", "-D", p.data, "-w", "-l", filepath.Join(filepath.Dir(p.data), "log"), "-o", opts)
}

func (p *pgServer) stop() { p.pgctl("stop", "-D", p.data, "-w", "-m", "immediate") }

func (p *pgServer) pgctl(args ...string) {
	if out, err := asPostgres("pg_ctl", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
	}
}

// restart is a crash and recovery: no checkpoint, connections cut.
func (p *pgServer) restart() {
	p.stop()
	p.start()
}

func (p *pgServer) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

func (p *pgServer) newDB(name string) string {
	conn, err := pgx.Connect(context.Background(), p.dsn("postgres"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		p.t.Fatal(err)
	}
	return p.dsn(name)
}

// natsServer is a private nats-server process with JetStream.
type natsServer struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
}

func startNATS(t *testing.T) *natsServer {
	if _, err := exec.LookPath("nats-server"); err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			t.Skip("no nats-server binary")
		}
	}
	n := &natsServer{t: t, dir: t.TempDir(), port: freePort(t)}
	n.start()
	t.Cleanup(func() { n.kill(syscall.SIGKILL) })
	return n
}

func (n *natsServer) start() {
	bin := "/usr/sbin/nats-server"
	if p, err := exec.LookPath("nats-server"); err == nil {
		bin = p
	}
	n.cmd = exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir)
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.port)); err == nil {
			c.Close()
			return
		}
	}
	n.t.Fatal("nats-server did not start")
}

func (n *natsServer) kill(sig syscall.Signal) {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(sig) //nolint:errcheck
		n.cmd.Wait()              //nolint:errcheck
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// world is one fleet on one server, with a reference database per store.
type world struct {
	t     *testing.T
	pg    *pgServer
	nats  *natsServer
	fleet *sim.Fleet
	rng   *rand.Rand
	dbs   int
	log   []string
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, pg: startPostgres(t), nats: startNATS(t), rng: rand.New(rand.NewPCG(*seed, 7))}
	cfg := sim.Defaults()
	cfg.PCs = *pcs
	w.fleet = sim.Generate(cfg)
	nc, err := nats.Connect(w.nats.url())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.fleet.Publish(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	// A clean restart writes the stream to disk, so a later SIGKILL of the
	// server can lose nothing that was published.
	w.nats.kill(syscall.SIGTERM)
	w.nats.start()
	return w
}

// fresh is a new, migrated database holding the deployments and the rows
// upstream's v0.29 migration left behind, as the fleet's history has it.
func (w *world) fresh(kind string) string {
	w.dbs++
	var dsn string
	if kind == "postgres" {
		dsn = w.pg.newDB(fmt.Sprintf("chaos_%d", w.dbs))
	} else {
		dsn = filepath.Join(w.t.TempDir(), "kanade.db")
	}
	w.seed(dsn)
	return dsn
}

func (w *world) seed(dsn string) {
	w.mustRun(dsn, "db", "migrate")
	st, err := testutil.Dial(context.Background(), dsn)
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	if err := st.Seed(context.Background(), w.fleet.Executions, w.fleet.LegacyRows); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) cmd(dsn string, args ...string) *exec.Cmd {
	c := exec.Command(bin, append([]string{"--db", dsn, "--nats-url", w.nats.url()}, args...)...)
	c.Env = append(os.Environ(), "NO_COLOR=1", "XDG_CONFIG_HOME="+w.t.TempDir(), "XDG_DATA_HOME="+w.t.TempDir())
	return c
}

func (w *world) run(dsn string, args ...string) (int, string) {
	var out bytes.Buffer
	c := w.cmd(dsn, args...)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return 0, out.String()
}

func (w *world) mustRun(dsn string, args ...string) {
	if code, out := w.run(dsn, args...); code != 0 {
		w.t.Fatalf("kanade %v: exit %d\n%s", args, code, out)
	}
}

// killDuring starts the command and SIGKILLs it after a random moment in
// [10ms, max); it reports when, and whether the command had ended first.
func (w *world) killDuring(dsn string, max time.Duration, args ...string) string {
	c := w.cmd(dsn, args...)
	if err := c.Start(); err != nil {
		w.t.Fatal(err)
	}
	at := 10*time.Millisecond + time.Duration(w.rng.Int64N(int64(max)))
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
		return fmt.Sprintf("ended before the kill at %s", at.Round(time.Millisecond))
	case <-time.After(at):
		c.Process.Kill() //nolint:errcheck
		<-done
		return fmt.Sprintf("SIGKILL at %s", at.Round(time.Millisecond))
	}
}

type snapshot struct {
	tables *store.Tables
	audit  map[string]int64
}

func (w *world) snapshot(dsn string) snapshot {
	st, err := testutil.Dial(context.Background(), dsn)
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	tables, err := st.Dump(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	_, out := w.run(dsn, "results", "audit", "-o", "json")
	var rep struct {
		Counts map[string]int64 `json:"counts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		w.t.Fatalf("audit output: %v\n%s", err, out)
	}
	return snapshot{tables: normalise(tables), audit: rep.Counts}
}

func normalise(t *store.Tables) *store.Tables {
	for i := range t.Results {
		r := &t.Results[i]
		r.StartedAt, r.RecordedAt = r.StartedAt.Truncate(1000).UTC(), r.RecordedAt.Truncate(1000).UTC()
		if r.FinishedAt != nil {
			x := r.FinishedAt.Truncate(1000).UTC()
			r.FinishedAt = &x
		}
		if r.ExpiresAt != nil {
			x := r.ExpiresAt.Truncate(1000).UTC()
			r.ExpiresAt = &x
		}
	}
	for i := range t.Inventory {
		f := &t.Inventory[i]
		f.RecordedAt = f.RecordedAt.Truncate(1000).UTC()
		if f.CollectedAt != nil {
			x := f.CollectedAt.Truncate(1000).UTC()
			f.CollectedAt = &x
		}
	}
	for i := range t.Executions {
		t.Executions[i].InitiatedAt = t.Executions[i].InitiatedAt.Truncate(1000).UTC()
	}
	return t
}

func (w *world) same(what, dsn string, want snapshot) {
	got := w.snapshot(dsn)
	ok := reflect.DeepEqual(got.tables, want.tables) && reflect.DeepEqual(got.audit, want.audit)
	verdict := "held: tables and audit counts equal an uninterrupted run"
	if !ok {
		verdict = "FAILED: tables or audit counts differ from an uninterrupted run"
		w.t.Errorf("%s: %s (results %d vs %d rows, audit %v vs %v)", what, verdict, len(got.tables.Results), len(want.tables.Results), got.audit, want.audit)
	}
	w.log = append(w.log, what+": "+verdict)
}

func TestChaos(t *testing.T) {
	w := newWorld(t)
	defer func() { t.Log("\n" + strings.Join(w.log, "\n")) }()
	for _, kind := range []string{"postgres", "sqlite"} {
		// The references: a replay, then a backfill, without faults.
		replayed := w.fresh(kind)
		w.mustRun(replayed, "stream", "replay", "--stream", "EVENTS")
		w.mustRun(replayed, "stream", "replay")
		refReplay := w.snapshot(replayed)
		references[kind] = refReplay
		w.mustRun(replayed, "results", "backfill", "--yes")
		refBackfill := w.snapshot(replayed)
		backfilled[kind] = refBackfill

		for i := 0; i < *reps; i++ {
			// SIGKILL during a replay, then the replay again (--resume).
			dsn := w.fresh(kind)
			w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
			how := w.killDuring(dsn, 1500*time.Millisecond, "stream", "replay", "--batch", "500")
			rerun := "rerun --resume"
			if code, out := w.run(dsn, "stream", "replay", "--resume"); code != 0 {
				// Killed before its first commit: there is nothing to
				// resume, and --resume says so rather than guess.
				if !strings.Contains(out, "--resume: no checkpoint for RESULTS") {
					t.Fatalf("kanade stream replay --resume: exit %d\n%s", code, out)
				}
				rerun = "no checkpoint yet, so --resume refused; rerun without it"
				w.mustRun(dsn, "stream", "replay")
			}
			w.same(fmt.Sprintf("%s replay, %s, %s", kind, how, rerun), dsn, refReplay)

			// SIGKILL of --follow, then a plain replay.
			dsn = w.fresh(kind)
			w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
			how = w.killDuring(dsn, 3*time.Second, "stream", "replay", "--follow", "--batch", "500")
			w.mustRun(dsn, "stream", "replay")
			w.same(fmt.Sprintf("%s --follow, %s, rerun", kind, how), dsn, refReplay)

			// SIGKILL during a backfill, then the backfill again.
			dsn = w.fresh(kind)
			w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
			w.mustRun(dsn, "stream", "replay")
			how = w.killDuring(dsn, 250*time.Millisecond, "results", "backfill", "--yes", "--batch-size", "2")
			w.mustRun(dsn, "results", "backfill", "--yes")
			w.same(fmt.Sprintf("%s backfill, %s, rerun", kind, how), dsn, refBackfill)

			// SIGKILL during --rebuild --yes, then the rebuild again.
			dsn = w.fresh(kind)
			w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
			w.mustRun(dsn, "stream", "replay")
			how = w.killDuring(dsn, 2*time.Second, "stream", "replay", "--rebuild", "--yes")
			w.mustRun(dsn, "stream", "replay", "--rebuild", "--yes")
			w.same(fmt.Sprintf("%s --rebuild --yes, %s, rerun", kind, how), dsn, refReplay)
		}
	}

	for i := 0; i < *reps; i++ {
		// A PostgreSQL crash and restart in the middle of a replay: the
		// replay retries its batch, or stops; run again, it completes.
		dsn := w.fresh("postgres")
		w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
		c := w.cmd(dsn, "stream", "replay", "--batch", "500")
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+w.rng.IntN(800)) * time.Millisecond)
		w.pg.restart()
		err := c.Wait()
		first := "completed across the restart"
		if err != nil {
			first = "stopped (" + strings.TrimSpace(lastLine(out.String())) + ")"
		}
		w.mustRun(dsn, "stream", "replay")
		w.same("postgres restart during a replay: "+first+"; rerun", dsn, w.snapshotOfReference("postgres"))

		// NATS killed and restarted 2 s later in the middle of a replay:
		// the replay waits and resumes.
		dsn = w.fresh("sqlite")
		w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
		c = w.cmd(dsn, "stream", "replay", "--batch", "200")
		out.Reset()
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+w.rng.IntN(400)) * time.Millisecond)
		w.nats.kill(syscall.SIGKILL)
		time.Sleep(2 * time.Second)
		w.nats.start()
		first = "completed across the outage"
		if err := c.Wait(); err != nil {
			first = "stopped (" + strings.TrimSpace(lastLine(out.String())) + ")"
		}
		w.mustRun(dsn, "stream", "replay")
		w.same("NATS SIGKILL and restart during a replay: "+first+"; rerun", dsn, w.snapshotOfReference("sqlite"))
	}

	// A server restart in the middle of each of the other commands.
	pgRestart := func() { w.pg.restart() }
	natsRestart := func() {
		w.nats.kill(syscall.SIGKILL)
		time.Sleep(2 * time.Second)
		w.nats.start()
	}
	for i := 0; i < *reps; i++ {
		dsn := w.fresh("postgres")
		w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
		how := w.faultDuring(dsn, 2*time.Second, pgRestart, "stream", "replay", "--follow", "--batch", "500")
		w.mustRun(dsn, "stream", "replay")
		w.same("postgres restart during --follow: "+how+"; rerun", dsn, references["postgres"])

		dsn = w.fresh("postgres")
		w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
		w.mustRun(dsn, "stream", "replay")
		how = w.faultDuring(dsn, 200*time.Millisecond, pgRestart, "results", "backfill", "--yes", "--batch-size", "2")
		w.mustRun(dsn, "results", "backfill", "--yes")
		w.same("postgres restart during a backfill: "+how+"; rerun", dsn, backfilled["postgres"])

		dsn = w.fresh("postgres")
		w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
		w.mustRun(dsn, "stream", "replay")
		how = w.faultDuring(dsn, time.Second, pgRestart, "stream", "replay", "--rebuild", "--yes")
		w.mustRun(dsn, "stream", "replay", "--rebuild", "--yes")
		w.same("postgres restart during --rebuild --yes: "+how+"; rerun", dsn, references["postgres"])

		dsn = w.fresh("sqlite")
		w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
		how = w.faultDuring(dsn, time.Second, natsRestart, "stream", "replay", "--follow", "--batch", "200")
		w.mustRun(dsn, "stream", "replay")
		w.same("NATS restart during --follow: "+how+"; rerun", dsn, references["sqlite"])

		dsn = w.fresh("sqlite")
		w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
		w.mustRun(dsn, "stream", "replay")
		how = w.faultDuring(dsn, time.Second, natsRestart, "stream", "replay", "--rebuild", "--yes")
		w.mustRun(dsn, "stream", "replay", "--rebuild", "--yes")
		w.same("NATS restart during --rebuild --yes: "+how+"; rerun", dsn, references["sqlite"])
	}

	w.fullDisk()
}

var backfilled = map[string]snapshot{}

// faultDuring starts the command, injects fault after a random moment in
// [50ms, max), and reports how the command ended: it carries on, or stops
// with an error; --follow, which never ends, is stopped with Ctrl-C five
// seconds after the fault.
func (w *world) faultDuring(dsn string, max time.Duration, fault func(), args ...string) string {
	c := w.cmd(dsn, args...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	at := 50*time.Millisecond + time.Duration(w.rng.Int64N(int64(max)))
	select {
	case err := <-done:
		return fmt.Sprintf("ended before the fault at %s (%v)", at.Round(time.Millisecond), err)
	case <-time.After(at):
	}
	fault()
	if strings.Contains(strings.Join(args, " "), "--follow") {
		select {
		case err := <-done:
			return fmt.Sprintf("fault at %s; --follow stopped by itself (%v: %s)", at.Round(time.Millisecond), err, strings.TrimSpace(lastLine(out.String())))
		case <-time.After(5 * time.Second):
		}
		c.Process.Signal(os.Interrupt) //nolint:errcheck
		err := <-done
		return fmt.Sprintf("fault at %s; --follow kept going until Ctrl-C (%v)", at.Round(time.Millisecond), err)
	}
	if err := <-done; err != nil {
		return fmt.Sprintf("fault at %s; stopped (%s)", at.Round(time.Millisecond), strings.TrimSpace(lastLine(out.String())))
	}
	return fmt.Sprintf("fault at %s; completed across it", at.Round(time.Millisecond))
}

var references = map[string]snapshot{}

// snapshotOfReference is an uninterrupted replay's tables for kind, made once.
func (w *world) snapshotOfReference(kind string) snapshot {
	if s, ok := references[kind]; ok {
		return s
	}
	dsn := w.fresh(kind)
	w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
	w.mustRun(dsn, "stream", "replay")
	references[kind] = w.snapshot(dsn)
	return references[kind]
}

// fullDisk replays into an SQLite file on a 1 MiB filesystem: the replay
// must fail cleanly, the file must stay intact, and with room again a
// rerun must give the uninterrupted run's tables.
func (w *world) fullDisk() {
	mnt := w.t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		w.log = append(w.log, "full disk: not run (mount: "+strings.TrimSpace(string(out))+")")
		return
	}
	defer exec.Command("umount", mnt).Run() //nolint:errcheck
	dsn := filepath.Join(mnt, "kanade.db")
	w.seed(dsn)
	code, out := w.run(dsn, "stream", "replay")
	if code == 0 {
		w.t.Errorf("a replay into a full disk succeeded?\n%s", out)
	}
	var check string
	if ic, err := exec.Command("sqlite3", dsn, "PRAGMA integrity_check").Output(); err == nil {
		check = strings.TrimSpace(string(ic))
	}
	if out, err := exec.Command("mount", "-o", "remount,size=256m", mnt).CombinedOutput(); err != nil {
		w.t.Fatalf("remount: %v %s", err, out)
	}
	w.mustRun(dsn, "stream", "replay", "--stream", "EVENTS")
	w.mustRun(dsn, "stream", "replay")
	msg := fmt.Sprintf("sqlite full disk (1 MiB): replay exit %d (%s)", code, strings.TrimSpace(lastLine(out)))
	if check != "" {
		msg += ", integrity_check " + check
	}
	w.same(msg+"; with room again, rerun", dsn, w.snapshotOfReference("sqlite"))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
