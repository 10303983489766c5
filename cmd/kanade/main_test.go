package main

import (
	"context"
	"os"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/kanadehq/kanade-cli/internal/cli"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store/dial"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"kanade": func() {
			os.Exit(cli.Execute(context.Background(), output.System(), cli.BuildInfo{Version: "v0.0.0-test"}, os.Args[1:]))
		},
	})
}

// TestScripts runs the built binary end to end (testdata/script/*.txtar)
// against a real PostgreSQL schema and an embedded JetStream server holding
// a simulated fleet.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("RUNEWIDTH_EASTASIAN", "0")
			env.Setenv("NO_COLOR", "1")
			env.Setenv("XDG_DATA_HOME", env.WorkDir+"/data")
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/config")
			env.Setenv("KANADE_PG", testutil.PostgresDSN(t))
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
			// executions come from the deploy API, not the stream: seed
			// them into both databases the scripts use.
			for _, dsn := range []string{env.Getenv("KANADE_PG"), env.WorkDir + "/seeded.db"} {
				st, err := dial.Open(context.Background(), dsn)
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
	})
}
