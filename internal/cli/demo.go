package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/backfill"
	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/results"
	"github.com/kanadehq/kanade-cli/internal/secret"
	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/dial"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

// DemoOptions is what `demo` runs with.
type DemoOptions struct {
	Env
	// Keep leaves the server and database up until interrupted.
	Keep bool
	PCs  int
	// DB is a --db given on the command line ("" for a temporary file);
	// the demo refuses it unless it is empty.
	DB string
}

func newDemoCmd(g *Globals, runF func(context.Context, *DemoOptions) error) *cobra.Command {
	f := DemoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline on a simulated fleet, with nothing installed",
		Long: `demo starts a NATS server with JetStream in-process (loopback, temporary
directory), publishes a simulated fleet with upstream's stream layout, replays it
into a temporary SQLite database, and shows the fan-out view of one broadcast.
It leaves nothing behind: with --keep, it removes its files when stopped
(Ctrl-C, SIGTERM or a closed terminal).

KANADE_DB and the config file are ignored: the demo writes simulated rows, so it
writes only to its own database, or to a --db given on its command line, which
it refuses unless that database is empty.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.PCs < 1 || f.PCs > 20000 {
				return usageErrorf(cmd, "--pcs %d: give 1 to 20000", f.PCs)
			}
			opts := f
			opts.Env = g.env()
			if g.dbFlag {
				opts.DB = g.DB
			}
			return pick(runF, runDemo)(cmd.Context(), &opts)
		},
	}
	cmd.Flags().BoolVar(&f.Keep, "keep", false, "keep the server and database running until Ctrl-C, and print how to use them")
	cmd.Flags().IntVar(&f.PCs, "pcs", 200, "fleet size")
	return cmd
}

func runDemo(ctx context.Context, f *DemoOptions) error {
	s := f.IO
	dir, err := os.MkdirTemp("", "kanade-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := natsconn.StartEmbedded(filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cfg := sim.Defaults()
	cfg.PCs = f.PCs
	fleet := sim.Generate(cfg)
	if err := fleet.Publish(ctx, js); err != nil {
		return fmt.Errorf("publish the simulated fleet: %w", err)
	}
	dbPath := filepath.Join(dir, "kanade.db")
	if f.DB != "" {
		dbPath = f.DB
	}
	st, err := dial.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	if f.DB != "" {
		if err := refuseNonEmpty(ctx, st); err != nil {
			return err
		}
	}
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	// Deployments are written by upstream's deploy API, not by a stream;
	// the legacy rows are what upstream's v0.29 migration left behind.
	fx, ok := st.(store.Fixtures)
	if !ok {
		return fmt.Errorf("the %s store cannot lay out the demo's executions", st.Kind())
	}
	if err := fx.Seed(ctx, fleet.Executions, fleet.LegacyRows); err != nil {
		return fmt.Errorf("seed the demo's executions (is --db already holding a demo? use an empty database): %w", err)
	}
	fmt.Fprintf(s.Out, "Started NATS with JetStream at %s and published %d PCs' results: %d messages on RESULTS, %d on EVENTS.\n\n",
		srv.ClientURL(), cfg.PCs, len(fleet.Results), len(fleet.Events))
	if _, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Events}); err != nil {
		return err
	}
	sum, err := replay.Run(ctx, st, js, replay.Options{Stream: streams.Results})
	if err != nil {
		return err
	}
	if err := printSummary(s, sum, output.Table); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "\nThe database also held %d rows as upstream's v0.29 migration left them (result_id = request_id),\n"+
		"so the replay stored those results a second time under their stable id. The backfill repairs that:\n\n", len(fleet.LegacyRows))
	bsum, err := backfill.Run(ctx, st, backfill.Options{})
	if err != nil {
		return err
	}
	if err := printBackfill(s, bsum, output.Table); err != nil {
		return err
	}
	v, err := results.Show(ctx, st, results.ShowOptions{RequestID: fleet.Broadcasts[0], Sort: "status"})
	if err != nil {
		return err
	}
	const shown = 12
	more := len(v.Results) - shown
	if more > 0 {
		v.Results = v.Results[:shown]
	}
	fmt.Fprintf(s.Out, "\nThe fan-out view of broadcast %s (commands.all: every PC answers with the same request_id),\nworst first:\n\n", fleet.Broadcasts[0])
	if err := results.Render(s, v, results.RenderOptions{Format: output.Table}); err != nil {
		return err
	}
	if more > 0 {
		fmt.Fprintf(s.Out, "... and %d more PCs (all of them: kanade results show --request-id %s)\n", more, fleet.Broadcasts[0])
	}
	fmt.Fprint(s.Out, `
What happened: the replay read the streams with an ordered consumer and projected
them by upstream's rules. Duplicate deliveries changed nothing, legacy agents'
results got their stable UUIDv5 id, the overflowed stdout was read back from the
object store, and the one payload no agent could have written was quarantined
instead of lost.
`)
	if !f.Keep {
		fmt.Fprintln(s.Out, "\nRun `kanade demo --keep` to keep the server and database and try the commands yourself.")
		return nil
	}
	fmt.Fprintf(s.Out, "\nIn another shell:\n  export KANADE_NATS_URL=%s\n  export KANADE_DB=%s\n", srv.ClientURL(), secret.URL(dbPath))
	if secret.URL(dbPath) != dbPath {
		fmt.Fprintln(s.Out, "  (the password is not printed: put it back, or use PGPASSWORD or ~/.pgpass)")
	}
	fmt.Fprintf(s.Out, "  kanade results show --exec-id %s --sort status\n  kanade stream replay --plan\n  kanade db status\n", fleet.Executions[0].ExecID)
	fmt.Fprintf(s.Out, "Files are in %s until you press Ctrl-C.\n", dir)
	<-ctx.Done()
	return nil
}

// refuseNonEmpty stops the demo from writing simulated rows into a
// database that holds anything.
func refuseNonEmpty(ctx context.Context, st store.Store) error {
	status, err := st.Status(ctx)
	if err != nil {
		return fmt.Errorf("check that --db %s is empty: %w", st.Location(), err)
	}
	for _, t := range status.Tables {
		if t.Exists && t.Rows > 0 {
			return fmt.Errorf("--db %s holds %d rows in %s: the demo writes a simulated fleet, so give it an empty database (or no --db, for a temporary one)",
				st.Location(), t.Rows, t.Name)
		}
	}
	return nil
}
