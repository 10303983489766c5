package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/dial"
)

func newDBCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Create and inspect the database"}
	cmd.AddCommand(&cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the tables (never alters an upstream backend.db's own tables)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.makeDefaultDir(); err != nil {
				return err
			}
			st, err := dial.Open(cmd.Context(), g.DB)
			if err != nil {
				return err
			}
			defer st.Close()
			return runMigrate(cmd.Context(), g.streams, st, g.format())
		},
	}, &cobra.Command{
		Use:   "status",
		Short: "Show the schema version, tables, row counts and whether the database is upstream's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := dial.OpenReadOnly(cmd.Context(), g.DB)
			if err != nil {
				return err
			}
			defer st.Close()
			return runStatus(cmd.Context(), g.streams, st, g.format())
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

func runMigrate(ctx context.Context, s *output.Streams, st store.Store, f output.Format) error {
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if f.IsMachine() {
		status, err := st.Status(ctx)
		if err != nil {
			return err
		}
		rep := MigrateReport{Location: st.Location(), Applied: append([]string{}, applied...), SchemaVersion: status.SchemaVersion}
		if done, err := output.WriteDocument(s.Out, f, rep); done || err != nil {
			return err
		}
		rows := [][]string{}
		for _, m := range rep.Applied {
			rows = append(rows, []string{m})
		}
		return output.WriteCSV(s.Out, []string{"applied"}, rows)
	}
	if len(applied) == 0 {
		fmt.Fprintf(s.Out, "%s is up to date.\n", st.Location())
		return nil
	}
	for _, m := range applied {
		fmt.Fprintf(s.Out, "applied %s\n", m)
	}
	return nil
}

func runStatus(ctx context.Context, s *output.Streams, st store.Store, f output.Format) error {
	status, err := st.Status(ctx)
	if err != nil {
		return err
	}
	switch f {
	case output.JSON:
		return output.WriteJSON(s.Out, status)
	case output.YAML:
		return output.WriteYAML(s.Out, status)
	case output.JSONL:
		return output.WriteJSONL(s.Out, []*store.Status{status})
	}
	owner := "created by kanade"
	if status.Upstream {
		owner = "upstream's backend.db (its tables are left as they are; only kanade_* tables are added)"
	}
	header := []string{"TABLE", "EXISTS", "ROWS"}
	var rows [][]string
	for _, t := range status.Tables {
		n := "-"
		if t.Exists {
			n = strconv.FormatInt(t.Rows, 10)
		}
		rows = append(rows, []string{t.Name, strconv.FormatBool(t.Exists), n})
	}
	if f == output.CSV {
		return output.WriteCSV(s.Out, []string{"table", "exists", "rows"}, rows)
	}
	fmt.Fprintf(s.Out, "Database: %s (%s)\n", status.Location, status.Kind)
	fmt.Fprintf(s.Out, "Owner:    %s\n", owner)
	fmt.Fprintf(s.Out, "Schema:   version %d of %d", status.SchemaVersion, status.LatestVersion)
	if status.SchemaVersion < status.LatestVersion {
		fmt.Fprint(s.Out, " (run `kanade db migrate`)")
	}
	fmt.Fprint(s.Out, "\n\n")
	return output.WriteTable(s.Out, header, rows)
}
