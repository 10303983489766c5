package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/store"
)

// DBOptions is what `db migrate` and `db status` run with.
type DBOptions struct {
	Env
}

func newDBCmd(g *Globals, r runners) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Create and inspect the database"}
	cmd.AddCommand(&cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the tables (never alters an upstream backend.db's own tables)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return pick(r.migrate, runMigrate)(cmd.Context(), &DBOptions{Env: g.env()})
		},
	}, &cobra.Command{
		Use:   "status",
		Short: "Show the schema version, tables, row counts and whether the database is upstream's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return pick(r.status, runStatus)(cmd.Context(), &DBOptions{Env: g.env()})
		},
	})
	return cmd
}

// MigrateReport is `db migrate`'s machine output.
type MigrateReport struct {
	Location      string   `json:"location"`
	Applied       []string `json:"applied"` // [] when up to date
	SchemaVersion int      `json:"schema_version"`
}

func runMigrate(ctx context.Context, opts *DBOptions) error {
	// Opened without migrating: migrating is this command's work, and its
	// report lists what it applied.
	st, err := opts.Deps.open(ctx, bare)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	rep := MigrateReport{Location: st.Location(), Applied: append([]string{}, applied...)}
	// Only the machine formats show the schema version, and Status counts
	// every table's rows: a table for people does not pay for that.
	if opts.Format.IsMachine() {
		status, err := st.Status(ctx)
		if err != nil {
			return err
		}
		rep.SchemaVersion = status.SchemaVersion
	}
	return printMigrate(opts.IO, opts.Format, rep)
}

func printMigrate(s *output.Streams, f output.Format, rep MigrateReport) error {
	return output.PrintList(s, f, output.List[string]{
		Columns: []output.Column[string]{{Name: "applied", Title: "APPLIED", Cell: func(m string) string { return m }, CSV: func(m string) string { return m }}},
		Doc:     rep,
		Items:   rep.Applied,
		OneLine: true,
		Empty:   rep.Location + " is up to date.",
	})
}

func runStatus(ctx context.Context, opts *DBOptions) error {
	st, err := opts.Deps.open(ctx, inspect)
	if err != nil {
		return err
	}
	defer st.Close()
	status, err := st.Status(ctx)
	if err != nil {
		return err
	}
	return printStatus(opts.IO, opts.Format, status)
}

func printStatus(s *output.Streams, f output.Format, status *store.Status) error {
	exists := func(t store.TableStatus) string { return strconv.FormatBool(t.Exists) }
	return output.PrintList(s, f, output.List[store.TableStatus]{
		Columns: []output.Column[store.TableStatus]{
			{Name: "table", Title: "TABLE", Cell: func(t store.TableStatus) string { return t.Name }, CSV: func(t store.TableStatus) string { return t.Name }},
			{Name: "exists", Title: "EXISTS", Cell: exists, CSV: exists},
			{Name: "rows", Title: "ROWS", Cell: func(t store.TableStatus) string {
				if !t.Exists {
					return "-"
				}
				return strconv.FormatInt(t.Rows, 10)
			}, CSV: func(t store.TableStatus) string {
				if !t.Exists {
					return ""
				}
				return strconv.FormatInt(t.Rows, 10)
			}},
		},
		Doc:     status,
		Items:   status.Tables,
		OneLine: true,
		Header: func(w io.Writer) error {
			fmt.Fprintf(w, "Database: %s (%s)\n", status.Location, status.Kind)
			fmt.Fprintf(w, "Owner:    %s\n", owner(status))
			fmt.Fprintf(w, "Schema:   version %d of %d", status.SchemaVersion, status.LatestVersion)
			if status.SchemaVersion < status.LatestVersion {
				fmt.Fprint(w, " (run `kanade db migrate`)")
			}
			_, err := fmt.Fprint(w, "\n\n")
			return err
		},
	})
}

// owner says whose tables a database holds. Only a schema record makes it
// kanade's: a PostgreSQL database is shared, and an empty one (or one
// holding another tool's tables) was not created by kanade.
func owner(status *store.Status) string {
	switch {
	case status.Upstream:
		return "upstream's backend.db (its tables are left as they are; only kanade_* tables are added)"
	case status.SchemaVersion > 0:
		return "created by kanade"
	case slices.ContainsFunc(status.Tables, func(t store.TableStatus) bool { return t.Exists }):
		return "unknown: tables of kanade's names are here without kanade's schema record (check --db; `kanade db migrate` stops if they are not the tables it expects)"
	}
	return "none yet: no tables (`kanade db migrate` creates them)"
}
