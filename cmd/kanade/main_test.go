package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"kanade": func() {
			version = "v0.0.0-test"
			os.Exit(runRecorded())
		},
	})
}

// TestScripts runs the built binary end to end (testdata/script/*.txtar)
// against a real PostgreSQL schema and an embedded JetStream server holding
// a simulated fleet.
func TestScripts(t *testing.T) {
	transcripts := t.TempDir()
	// Cleanups run after every subtest, the parallel scripts included, and
	// before the directory's own removal (registered earlier).
	t.Cleanup(func() { checkTranscripts(t, transcripts) })
	testscript.Run(t, scriptParams(t, "testdata/script", transcripts))
}

// Secrets planted in every script's environment: a PostgreSQL password
// (trust authentication ignores it) and NATS credentials (the embedded
// server, without authorization, accepts any). No output may show them.
const (
	plantedPGPassword   = "planted-pg-password-91c2"
	plantedNATSPassword = "planted-nats-password-7f3a"
)

// runRecorded is run, with everything it writes on stdout and stderr also
// appended to the file KANADE_TRANSCRIPT names, so the suite can grep the
// output of every command it ran for the planted secrets.
func runRecorded() int {
	path := os.Getenv("KANADE_TRANSCRIPT")
	if path == "" {
		return run()
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return run()
	}
	defer f.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	tee := func(dst **os.File) func() {
		orig := *dst
		r, w, err := os.Pipe()
		if err != nil {
			return func() {}
		}
		*dst = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					orig.Write(buf[:n]) //nolint:errcheck
					mu.Lock()
					f.Write(buf[:n]) //nolint:errcheck
					mu.Unlock()
				}
				if err != nil {
					return
				}
			}
		}()
		return func() { w.Close(); *dst = orig }
	}
	restoreOut, restoreErr := tee(&os.Stdout), tee(&os.Stderr)
	code := run()
	restoreOut()
	restoreErr()
	wg.Wait()
	return code
}

// checkTranscripts fails the test when any command printed a planted secret.
func checkTranscripts(t *testing.T, dir string) {
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Log("no script ran a command: nothing to check for secrets")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{plantedPGPassword, plantedNATSPassword} {
			if i := strings.Index(string(data), s); i >= 0 {
				from := max(0, i-200)
				t.Errorf("%s: a command printed the planted secret %q:\n...%s", filepath.Base(f), s, data[from:min(len(data), i+50)])
			}
		}
	}
}

// scriptParams are the commands and the environment every end-to-end
// script gets: a fresh PostgreSQL schema, an SQLite file and an embedded
// JetStream server holding a simulated fleet.
func scriptParams(t *testing.T, dir, transcripts string) testscript.Params {
	return testscript.Params{
		Dir: dir,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[0])
				ts.Check(err)
				time.Sleep(d)
			},
			// exits N command [args...]: run the command and insist on exit
			// status N (`! exec` only tells zero from non-zero).
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 || neg {
					ts.Fatalf("usage: exits N command [args...]")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("%s: %v", args[1], err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
			// more: run the "More: kanade ..." command the last command
			// printed on stderr (the next page of results list).
			"more": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, line := range strings.Split(ts.ReadFile("stderr"), "\n") {
					if cmdline, ok := strings.CutPrefix(line, "More: "); ok {
						f := strings.Fields(cmdline)
						err := ts.Exec(f[0], f[1:]...)
						if (err != nil) != neg {
							ts.Fatalf("%s: %v", cmdline, err)
						}
						return
					}
				}
				ts.Fatalf("no More: line on stderr")
			},
			// schema NAME: stdout matches block NAME of docs/output-schemas.md.
			"schema": checkSchema,
			// schemadraft: print stdout's paths and types as a fields block
			// (a help for writing the docs; never in a committed script).
			"schemadraft": func(ts *testscript.TestScript, neg bool, args []string) {
				seen := map[string]map[string]bool{}
				out := ts.ReadFile("stdout")
				docs := []string{out}
				if strings.Count(strings.TrimSpace(out), "\n{") > 0 && !strings.HasPrefix(out, "{\n") {
					docs = strings.Split(strings.TrimRight(out, "\n"), "\n")
				}
				for _, d := range docs {
					dec := json.NewDecoder(strings.NewReader(d))
					dec.UseNumber()
					var v any
					if dec.Decode(&v) == nil {
						walk("", v, seen)
					}
				}
				var lines []string
				for p, types := range seen {
					var ts []string
					for t := range types {
						ts = append(ts, t)
					}
					sort.Strings(ts)
					lines = append(lines, fmt.Sprintf("%-34s %s", p, strings.Join(ts, " ")))
				}
				sort.Strings(lines)
				fmt.Fprintf(os.Stderr, "```fields %s\n%s\n```\n", strings.Join(args, " "), strings.Join(lines, "\n"))
			},
			// nodemo: the demo left no temporary directory behind.
			"nodemo": func(ts *testscript.TestScript, neg bool, args []string) {
				left, err := filepath.Glob(filepath.Join(ts.Getenv("TMPDIR"), "kanade-demo-*"))
				ts.Check(err)
				if len(left) > 0 {
					ts.Fatalf("the demo left %v behind", left)
				}
			},
			// republish: publish RESULTS' messages again, as agents would,
			// after giving a watcher started with & time to subscribe.
			"republish": func(ts *testscript.TestScript, neg bool, args []string) {
				time.Sleep(700 * time.Millisecond)
				nc, err := nats.Connect(ts.Getenv("KANADE_NATS_URL"))
				ts.Check(err)
				defer nc.Close()
				js, err := jetstream.New(nc)
				ts.Check(err)
				s, err := js.Stream(context.Background(), "RESULTS")
				ts.Check(err)
				info, err := s.Info(context.Background())
				ts.Check(err)
				for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
					m, err := s.GetMsg(context.Background(), seq)
					ts.Check(err)
					ts.Check(nc.Publish(m.Subject, m.Data))
				}
				ts.Check(nc.Flush())
			},
			// mkupstream PATH: an SQLite file laid out as upstream's current
			// backend.db: its tables, sqlx's bookkeeping, no kanade_* table.
			"mkupstream": func(ts *testscript.TestScript, neg bool, args []string) {
				ctx := context.Background()
				st, err := sqlitestore.Open(ctx, ts.MkAbs(args[0]))
				ts.Check(err)
				defer st.Close()
				_, err = st.Migrate(ctx)
				ts.Check(err)
				rows, err := st.DB().QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'kanade%'")
				ts.Check(err)
				var own []string
				for rows.Next() {
					var n string
					ts.Check(rows.Scan(&n))
					own = append(own, n)
				}
				ts.Check(rows.Err())
				rows.Close()
				for _, n := range own {
					_, err = st.DB().ExecContext(ctx, "DROP TABLE "+n)
					ts.Check(err)
				}
				_, err = st.DB().ExecContext(ctx, `CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
					installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
					INSERT INTO _sqlx_migrations VALUES (20260930000000, 'backend notices', CURRENT_TIMESTAMP, 1, x'00', 1)`)
				ts.Check(err)
			},
			// mklegacy DSN: turn each request's first row into a row as
			// upstream's v0.29 migration left it (result_id = request_id).
			"mklegacy": func(ts *testscript.TestScript, neg bool, args []string) {
				st, err := testutil.Dial(context.Background(), args[0])
				ts.Check(err)
				defer st.Close()
				// Only rows of legacy payloads (stored under their UUIDv5) can
				// have been migrated rows: one per request, as the old key was.
				tables, err := st.Dump(context.Background())
				ts.Check(err)
				done := map[string]bool{}
				for _, r := range tables.Results {
					if done[r.RequestID] || r.ResultID != wire.LegacyResultID(r.RequestID, r.PCID) {
						continue
					}
					done[r.RequestID] = true
					q, args := "UPDATE execution_results SET result_id = request_id WHERE result_id = $1", []any{r.ResultID}
					switch s := st.(type) {
					case *pgstore.Store:
						_, err = s.Pool().Exec(context.Background(), q, args...)
					case *sqlitestore.Store:
						_, err = s.DB().Exec(strings.Replace(q, "$1", "?", 1), args...)
					}
					ts.Check(err)
				}
				if len(done) == 0 {
					ts.Fatalf("mklegacy: no legacy rows to turn into migrated rows")
				}
				ts.Check(err)
			},
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("RUNEWIDTH_EASTASIAN", "0")
			env.Setenv("NO_COLOR", "1")
			env.Setenv("XDG_DATA_HOME", env.WorkDir+"/data")
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/config")
			env.Setenv("KANADE_TRANSCRIPT", filepath.Join(transcripts, filepath.Base(env.WorkDir)+".log"))
			env.Setenv("KANADE_NATS_USER", "ops")
			env.Setenv("KANADE_NATS_PASSWORD", plantedNATSPassword)
			env.Setenv("KANADE_PG", strings.Replace(testutil.PostgresDSN(t), "://postgres@", "://postgres:"+plantedPGPassword+"@", 1))
			env.Setenv("KANADE_PG_EMPTY", testutil.PostgresDSN(t)) // never migrated
			url := testutil.NATSServer(t)
			env.Setenv("KANADE_NATS_URL", url)
			nc, err := nats.Connect(url)
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			cfg := sim.Defaults()
			cfg.PCs = 20
			fleet := sim.Generate(cfg)
			if err := fleet.Publish(context.Background(), js); err != nil {
				return err
			}
			env.Setenv("BROADCAST", fleet.Broadcasts[0])
			env.Setenv("EXEC", fleet.Executions[0].ExecID)
			// A deployment every target of which reported: a watch of it ends.
			for _, e := range fleet.Executions {
				pcs, reqs := map[string]bool{}, map[string]bool{}
				for _, m := range fleet.Results {
					if r, err := wire.DecodeExecResult(m.Data); err == nil && wire.Deref(r.ExecID) == e.ExecID {
						reqs[r.RequestID] = true
					}
				}
				for _, m := range fleet.Results {
					if r, err := wire.DecodeExecResult(m.Data); err == nil && reqs[r.RequestID] {
						pcs[r.PCID] = true
					}
				}
				if int64(len(pcs)) == e.TargetCount {
					env.Setenv("EXEC_DONE", e.ExecID)
					env.Setenv("EXEC_DONE_UPPER", strings.ToUpper(e.ExecID))
				}
			}
			// executions come from the deploy API, not the stream: seed
			// them into both databases the scripts use.
			for _, dsn := range []string{env.Getenv("KANADE_PG"), env.WorkDir + "/seeded.db"} {
				st, err := testutil.Dial(context.Background(), dsn)
				if err != nil {
					return err
				}
				if _, err := st.Migrate(context.Background()); err != nil {
					return err
				}
				if err := st.Seed(context.Background(), fleet.Executions, nil); err != nil {
					return err
				}
				st.Close()
			}
			return nil
		},
	}
}
