package store

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Migration is one embedded, versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// UpstreamTables marks a migration that creates or changes upstream's
	// own tables or their indexes (its first line is
	// "-- kanade:upstream-tables"). It is recorded but not run on a
	// database upstream's backend created: those tables are upstream's.
	UpstreamTables bool
}

const upstreamTablesMarker = "-- kanade:upstream-tables"

// LoadMigrations reads NNNN_name.sql files from dir in fsys, in version
// order. A gap or duplicate version is a build mistake and fails loudly.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: rest, SQL: string(body),
			UpstreamTables: strings.HasPrefix(string(body), upstreamTablesMarker)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must run 1..n without gaps; found %d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

// ProjectedTables are the tables the projector keeps current, the ones a
// rebuild recreates as shadow tables and swaps; AppendOnlyTables it only
// ever appends to, and a rebuild appends what they lack. With
// BookkeepingTables they are what `db status` reports on.
// A database is ready with CoreTables; an older upstream file may lack
// the later derived tables, which are then not written.
var (
	CoreTables        = []string{"execution_results", "executions", "inventory_facts"}
	ProjectedTables   = []string{"execution_results", "executions", "inventory_facts", "check_status", "feeds", "feed_meta"}
	AppendOnlyTables  = []string{"inventory_history"}
	BookkeepingTables = []string{"kanade_schema_migrations", "kanade_checkpoints", "kanade_quarantine", "kanade_locks", "kanade_backfill_state", "kanade_backfill_conflicts"}
)

// MigrationFailed is the error of migration m failing on location. found
// are the tables of kanade's names that were already there when the
// database had no migration recorded: a failure then almost always means
// --db names another application's database, whose same-named tables do
// not have the columns kanade's migrations expect. The error says so,
// rather than leave an operator with a missing column. Each migration is
// one transaction, so the failed one is rolled back.
func MigrationFailed(location string, m Migration, found []string, err error) error {
	err = fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
	if len(found) == 0 {
		return err
	}
	return fmt.Errorf("%w\n%s already had %s before kanade's first migration; if that is another application's, --db names the wrong database: "+
		"check --db (kanade migrates an empty database or schema, upstream's backend.db, or one it migrated before). "+
		"The failed migration was rolled back", err, location, strings.Join(found, ", "))
}

// SchemaTables are the tables of kanade's names a database can hold
// before its first migration: all but kanade_schema_migrations, which a
// migration creates before it reads the version.
func SchemaTables() []string {
	var out []string
	for _, t := range slices.Concat(ProjectedTables, AppendOnlyTables, BookkeepingTables) {
		if t != "kanade_schema_migrations" {
			out = append(out, t)
		}
	}
	return out
}
