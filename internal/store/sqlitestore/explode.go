package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Explode tables, created and migrated the way upstream's backend does
// (its explode.rs), so a table either side created is the other's too.

func (t *projTx) Shadow() bool { _, ok := t.tx.(shadowTx); return ok }

// raw is the transaction without a rebuild's renaming of the fixed tables:
// explode identifiers are the manifest's, and one may well be a word like
// "feeds", which the renaming would rewrite.
func (t *projTx) raw() execer {
	if sh, ok := t.tx.(shadowTx); ok {
		return sh.tx
	}
	return t.tx
}

// quote quotes a validated identifier, as upstream does, so reserved words
// work as names.
func quote(id string) string { return `"` + id + `"` }

func affinity(kind string) string {
	switch kind {
	case store.ColInteger:
		return "INTEGER"
	case store.ColReal:
		return "REAL"
	}
	return "TEXT"
}

// explodeDDL is upstream's create_table_sql, to the byte.
func explodeDDL(name string, x store.ExplodeTable) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + quote(name) + " (\n    pc_id TEXT NOT NULL,\n    job_id TEXT NOT NULL,\n    collected_at TIMESTAMP,\n")
	for _, c := range x.Columns {
		b.WriteString("    " + quote(c.Name) + " " + affinity(c.Kind) + ",\n")
	}
	b.WriteString("    PRIMARY KEY (pc_id, job_id")
	for _, k := range x.PrimaryKey {
		b.WriteString(", " + quote(k))
	}
	b.WriteString(")\n);")
	return b.String()
}

func (t *projTx) tableColumns(ctx context.Context, name string) ([]store.TableColumn, error) {
	rows, err := t.raw().QueryContext(ctx, "SELECT name, upper(type), pk FROM pragma_table_info(?)", name)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", name, err)
	}
	defer rows.Close()
	var out []store.TableColumn
	for rows.Next() {
		var c store.TableColumn
		var pk int
		if err := rows.Scan(&c.Name, &c.Type, &pk); err != nil {
			return nil, err
		}
		c.PK = pk > 0
		out = append(out, c)
	}
	return out, rows.Err()
}

// explodeName is the table a transaction writes for explode table name: a
// rebuild writes its shadow.
func (t *projTx) explodeName(name string) string {
	if t.Shadow() {
		return store.ShadowPrefix + name
	}
	return name
}

func (t *projTx) EnsureExplodeTable(ctx context.Context, x store.ExplodeTable) error {
	name := t.explodeName(x.Name)
	have, err := t.tableColumns(ctx, name)
	if err != nil {
		return err
	}
	if len(have) == 0 {
		if _, err := t.raw().ExecContext(ctx, explodeDDL(name, x)); err != nil {
			return fmt.Errorf("create explode table %s: %w", name, err)
		}
		if t.Shadow() {
			if err := t.carryExplode(ctx, x, name); err != nil {
				return err
			}
		}
	} else if err := t.migrateExplode(ctx, x, name, have); err != nil {
		return err
	}
	for _, c := range x.Columns {
		if !c.Index {
			continue
		}
		if _, err := t.raw().ExecContext(ctx, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s(%s);", quote("idx_"+name+"_"+c.Name), quote(name), quote(c.Name))); err != nil {
			return fmt.Errorf("index explode table %s: %w", name, err)
		}
	}
	return nil
}

// carryExplode copies into a rebuild's new shadow explode table the live
// rows of the PCs whose facts the rebuild carried over (the shadow
// inventory_facts holds just those when the job's first batch asks for the
// table), as the spec's columns hold them.
func (t *projTx) carryExplode(ctx context.Context, x store.ExplodeTable, shadow string) error {
	live, err := t.tableColumns(ctx, x.Name)
	if err != nil || len(live) == 0 {
		return err
	}
	_, common, _ := store.ReconcileExplode(live, store.ExplodeColumns(x, "TEXT", "TIMESTAMP", affinity))
	quoted := make([]string, len(common))
	for i, c := range common {
		quoted[i] = quote(c)
	}
	cols := strings.Join(quoted, ", ")
	if _, err := t.raw().ExecContext(ctx, fmt.Sprintf("INSERT OR IGNORE INTO %s (%s) SELECT %s FROM %s WHERE (pc_id, job_id) IN (SELECT pc_id, job_id FROM %sinventory_facts)",
		quote(shadow), cols, cols, quote(x.Name), store.ShadowPrefix)); err != nil {
		return fmt.Errorf("carry over the rows of %s: %w", x.Name, err)
	}
	return nil
}

// migrateExplode migrates the table by store.ReconcileExplode; a rebuild
// goes through a temporary table, and rows the new key makes duplicates
// are dropped, as upstream drops them.
func (t *projTx) migrateExplode(ctx context.Context, x store.ExplodeTable, name string, have []store.TableColumn) error {
	missing, common, rebuild := store.ReconcileExplode(have, store.ExplodeColumns(x, "TEXT", "TIMESTAMP", affinity))
	if !rebuild {
		for _, c := range missing {
			if _, err := t.raw().ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", quote(name), quote(c.Name), c.Type)); err != nil {
				return fmt.Errorf("add column %s to %s: %w", c.Name, name, err)
			}
		}
		return nil
	}
	tmp := name + "__migrate"
	if len(tmp) > 64 && !t.Shadow() {
		return fmt.Errorf("explode table %s: the name is too long to migrate it (upstream's limit is 64 characters with __migrate)", name)
	}
	quoted := make([]string, len(common))
	for i, c := range common {
		quoted[i] = quote(c)
	}
	cols := strings.Join(quoted, ", ")
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + quote(tmp),
		explodeDDL(tmp, x),
		fmt.Sprintf("INSERT OR IGNORE INTO %s (%s) SELECT %s FROM %s", quote(tmp), cols, cols, quote(name)),
		"DROP TABLE " + quote(name),
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s", quote(tmp), quote(name)),
	} {
		if _, err := t.raw().ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate explode table %s: %w", name, err)
		}
	}
	return nil
}

func (t *projTx) LoadExplodeRows(ctx context.Context, x store.ExplodeTable, keys []store.FactsKey) (map[store.FactsKey]*store.ExplodeRows, error) {
	out := map[store.FactsKey]*store.ExplodeRows{}
	cols := make([]string, len(x.Columns))
	for i, c := range x.Columns {
		cols[i] = quote(c.Name)
	}
	add := func(args []any, k *store.FactsKey) []any { return append(args, k.PCID, k.JobID) }
	err := inValues(keys, 2, add, func(_ []store.FactsKey, values string, args []any) error {
		rows, err := t.raw().QueryContext(ctx, `SELECT pc_id, job_id, CAST(collected_at AS TEXT), `+strings.Join(cols, ", ")+` FROM `+quote(t.explodeName(x.Name))+`
			WHERE (pc_id, job_id) IN (VALUES `+values+`)`, args...)
		if err != nil {
			return fmt.Errorf("read explode table %s: %w", x.Name, err)
		}
		defer rows.Close()
		// The key columns are read as text whatever their storage class
		// (database/sql converts a BLOB too); the cells keep theirs.
		var k store.FactsKey
		var collected sql.NullString
		vals := make([]any, len(cols))
		ptrs := []any{&k.PCID, &k.JobID, &collected}
		for i := range vals {
			ptrs = append(ptrs, &vals[i])
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return fmt.Errorf("read explode table %s: %w", x.Name, err)
			}
			set := out[k]
			if set == nil {
				set = &store.ExplodeRows{Key: k}
				if collected.Valid {
					at, err := wire.ParseTimestamp(collected.String)
					if err != nil {
						return fmt.Errorf("explode table %s: collected_at %q: %w", x.Name, collected.String, err)
					}
					set.CollectedAt = &at
				}
				out[k] = set
			}
			row := make([]store.Cell, len(cols))
			for i, v := range vals {
				row[i] = store.CellOf(v)
			}
			set.Rows = append(set.Rows, row)
		}
		return rows.Err()
	})
	return out, err
}

// Generation is the writer connection, its transaction count and its
// PRAGMA data_version, which changes exactly when another connection (in
// this process or any other: upstream's backend, say) commits to the file.
// Every batch transaction runs on that one connection, so two equal
// generations a transaction apart mean nothing but the first one wrote in
// between. A rebuild's shadow transactions run on other connections and
// report none.
func (t *projTx) Generation(ctx context.Context) (store.Generation, bool, error) {
	tx, live := t.tx.(*sql.Tx) // a shadow transaction's is a shadowTx
	if t.writer == nil || !live {
		return store.Generation{}, false, nil
	}
	var v int64
	if err := tx.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return store.Generation{}, false, fmt.Errorf("read the data version: %w", err)
	}
	return store.Generation{Source: t.writer, Version: v, Seq: t.seq}, true, nil
}

func (t *projTx) ChangeExplodeRows(ctx context.Context, x store.ExplodeTable, changes []store.ExplodeChange) (int64, error) {
	var total int64
	table := quote(t.explodeName(x.Name))
	var all, restamp []*store.ExplodeChange
	type del struct {
		key   store.FactsKey
		cells []store.Cell
	}
	var dels []del
	type ins struct {
		c     *store.ExplodeChange
		cells []store.Cell
	}
	var inserts []ins
	for i := range changes {
		c := &changes[i]
		if c.All {
			all = append(all, c)
		} else if c.Restamp {
			restamp = append(restamp, c)
		}
		for _, d := range c.Delete {
			dels = append(dels, del{c.Key, d})
		}
		for _, r := range c.Insert {
			inserts = append(inserts, ins{c, r})
		}
	}
	n, err := execValues(ctx, t.raw(), all, 2, func(args []any, c **store.ExplodeChange) []any { return append(args, (*c).Key.PCID, (*c).Key.JobID) },
		"DELETE FROM "+table+" WHERE (pc_id, job_id) IN (VALUES %s)", "replace rows of "+x.Name)
	if err != nil {
		return total, err
	}
	total += n
	keyCols := []string{"pc_id", "job_id"}
	keyAt := make([]int, len(x.PrimaryKey))
	for i, k := range x.PrimaryKey {
		keyCols = append(keyCols, quote(k))
		for j, c := range x.Columns {
			if c.Name == k {
				keyAt[i] = j
			}
		}
	}
	n, err = execValues(ctx, t.raw(), dels, len(keyCols), func(args []any, d *del) []any {
		args = append(args, d.key.PCID, d.key.JobID)
		for _, i := range keyAt {
			args = append(args, d.cells[i].Value())
		}
		return args
	}, "DELETE FROM "+table+" WHERE ("+strings.Join(keyCols, ", ")+") IN (VALUES %s)", "delete rows of "+x.Name)
	if err != nil {
		return total, err
	}
	total += n
	n, err = execValues(ctx, t.raw(), restamp, 3, func(args []any, c **store.ExplodeChange) []any {
		return append(args, (*c).Key.PCID, (*c).Key.JobID, tsPtr((*c).CollectedAt))
	}, "UPDATE "+table+" SET collected_at = v.c FROM (SELECT column1 AS p, column2 AS j, column3 AS c FROM (VALUES %s)) AS v WHERE "+table+".pc_id = v.p AND "+table+".job_id = v.j",
		"restamp rows of "+x.Name)
	if err != nil {
		return total, err
	}
	total += n
	cols := []string{"pc_id", "job_id", "collected_at"}
	for _, c := range x.Columns {
		cols = append(cols, quote(c.Name))
	}
	// OR IGNORE: of two elements with one key the first stays, as upstream
	// keeps it (its insert of the second fails and is skipped).
	n, err = insertValues(ctx, t.raw(), inserts, len(cols), func(args []any, r *ins) []any {
		args = append(args, r.c.Key.PCID, r.c.Key.JobID, tsPtr(r.c.CollectedAt))
		for _, c := range r.cells {
			args = append(args, c.Value())
		}
		return args
	}, "INSERT OR IGNORE INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES %s", "write rows of "+x.Name, nil)
	return total + n, err
}
