package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/store"
)

// DBOptions is what `db migrate` and `db status` run with.
type DBOptions struct {
	Env
}

func newDBCmd(g *Globals, r runners) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Create, inspect and tidy the database"}
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
	}, newDropOldCmd(g, r.dropOld))
	return cmd
}

// DropOldOptions is what `db drop-old` runs with.
type DropOldOptions struct {
	Env
	Keep   int    // the newest sets left in place
	Prefix string // only this set ("" = every set but the kept ones)
	Yes    bool
}

func newDropOldCmd(g *Globals, runF func(context.Context, *DropOldOptions) error) *cobra.Command {
	o := &DropOldOptions{}
	cmd := &cobra.Command{
		Use:   "drop-old",
		Short: "Drop the tables a rebuild swap kept (kanade_old_<time>_*)",
		Long: `stream replay --rebuild --yes swaps the rebuilt tables in and keeps the
replaced ones as kanade_old_<unix time>_<table>, so that nothing is lost until
you are satisfied. drop-old lists those sets and drops them, each in one
transaction: all of them, the newest --keep N left in place, or the one
--prefix names. The live tables are never touched. On a terminal it asks
first; elsewhere it needs --yes. On SQLite the file keeps the freed pages for
reuse; it shrinks only with VACUUM.`,
		Example: `  kanade db status
  kanade db drop-old --keep 1
  kanade db drop-old --prefix kanade_old_1764316800_ --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Keep < 0 {
				return usageErrorf(cmd, "--keep must be 0 or more")
			}
			if o.Prefix != "" && (!strings.HasPrefix(o.Prefix, "kanade_old_") || !strings.HasSuffix(o.Prefix, "_")) {
				return usageErrorf(cmd, "--prefix %q: give a set's prefix as db status prints it, such as kanade_old_1764316800_", o.Prefix)
			}
			if o.Prefix != "" && cmd.Flags().Changed("keep") {
				return usageErrorf(cmd, "--prefix names one set to drop: it does not combine with --keep")
			}
			if !o.Yes && !g.streams.InTTY {
				return usageErrorf(cmd, "drop-old drops tables: pass --yes to run it without a terminal")
			}
			o.Env = g.env()
			return pick(runF, runDropOld)(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Keep, "keep", 0, "leave the newest N sets in place")
	fl.StringVar(&o.Prefix, "prefix", "", "drop only this set, such as kanade_old_1764316800_")
	fl.BoolVar(&o.Yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// DropOldReport is `db drop-old`'s machine output.
type DropOldReport struct {
	Location string              `json:"location"`
	Dropped  []store.OldTableSet `json:"dropped"`
	Kept     []store.OldTableSet `json:"kept"`
}

func runDropOld(ctx context.Context, opts *DropOldOptions) error {
	st, err := opts.Deps.open(ctx, existing)
	if err != nil {
		return err
	}
	defer st.Close()
	sets, err := st.OldTables(ctx)
	if err != nil {
		return err
	}
	rep := DropOldReport{Location: st.Location(), Dropped: []store.OldTableSet{}, Kept: []store.OldTableSet{}}
	var drop []store.OldTableSet
	switch {
	case opts.Prefix != "":
		i := slices.IndexFunc(sets, func(o store.OldTableSet) bool { return o.Prefix == opts.Prefix })
		if i < 0 {
			return fmt.Errorf("no tables kept under %s* in %s; `kanade db status` lists the kept sets", opts.Prefix, st.Location())
		}
		drop = sets[i : i+1]
		rep.Kept = append(append(rep.Kept, sets[:i]...), sets[i+1:]...)
	default:
		n := max(len(sets)-opts.Keep, 0) // sets are oldest first
		drop, rep.Kept = sets[:n], append(rep.Kept, sets[n:]...)
	}
	s := opts.IO
	if len(drop) > 0 && !opts.Yes {
		fmt.Fprintf(s.Err, "Drop these tables kept by rebuild swaps in %s?\n", st.Location())
		for _, d := range drop {
			fmt.Fprintf(s.Err, "  %s\n", describeOldSet(d))
		}
		fmt.Fprint(s.Err, "[y/N] ")
		answer, _ := bufio.NewReader(s.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return &ExitErr{Code: ExitError, Err: errors.New("not confirmed; nothing was dropped")}
		}
	}
	for k, d := range drop {
		if _, err := st.DropOldTables(ctx, d.Prefix); err != nil {
			// What was dropped before stays dropped, and the rest is
			// still there: the report says which is which.
			rep.Kept = append(rep.Kept, drop[k:]...)
			_ = printDropOld(s, opts.Format, rep)
			return err
		}
		rep.Dropped = append(rep.Dropped, d)
	}
	return printDropOld(s, opts.Format, rep)
}

// describeOldSet is a kept set in one line, as db status and drop-old's
// question print it.
func describeOldSet(o store.OldTableSet) string {
	return fmt.Sprintf("%s* (swapped %s): %d tables, %d rows", o.Prefix, o.SwappedAt.Format(time.RFC3339), len(o.Tables), o.Rows)
}

func printDropOld(s *output.Streams, f output.Format, rep DropOldReport) error {
	prefix := func(o store.OldTableSet) string { return o.Prefix }
	at := func(o store.OldTableSet) string { return o.SwappedAt.Format(time.RFC3339) }
	tables := func(o store.OldTableSet) string { return strconv.Itoa(len(o.Tables)) }
	rows := func(o store.OldTableSet) string { return strconv.FormatInt(o.Rows, 10) }
	type c = output.Column[store.OldTableSet]
	empty := "Nothing to drop: no tables kept by a rebuild swap in " + rep.Location + "."
	if len(rep.Kept) > 0 {
		empty = fmt.Sprintf("Nothing dropped; %d set(s) kept (db status lists them).", len(rep.Kept))
	}
	return output.PrintList(s, f, output.List[store.OldTableSet]{
		Columns: []c{
			{Name: "prefix", Title: "DROPPED", Cell: prefix, CSV: prefix},
			{Name: "swapped_at", Title: "SWAPPED AT", Cell: at, CSV: at},
			{Name: "tables", Title: "TABLES", Cell: tables, CSV: tables},
			{Name: "rows", Title: "ROWS", Cell: rows, CSV: rows},
		},
		Doc:   rep,
		Items: rep.Dropped,
		Empty: empty,
		Footer: func(w io.Writer) error {
			if len(rep.Dropped) == 0 || len(rep.Kept) == 0 {
				return nil
			}
			_, err := fmt.Fprintf(w, "\n%d set(s) kept (db status lists them).\n", len(rep.Kept))
			return err
		},
	})
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
		Footer: func(w io.Writer) error {
			if len(status.OldTables) == 0 {
				return nil
			}
			fmt.Fprintln(w, "\nKept by rebuild swaps (`kanade db drop-old` drops them):")
			for _, o := range status.OldTables {
				fmt.Fprintf(w, "  %s\n", describeOldSet(o))
			}
			return nil
		},
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
