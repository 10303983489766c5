package pgstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// Explode tables with PostgreSQL's types: text, bigint and double
// precision for upstream's TEXT, INTEGER and REAL (text in a numeric
// column becomes NULL: store.Kind.StoredCell).

func (t *projTx) Shadow() bool { _, ok := t.tx.(shadowTx); return ok }

// raw is the transaction without a rebuild's renaming of the fixed tables:
// explode identifiers are the manifest's, and one may well be a word like
// "feeds", which the renaming would rewrite.
func (t *projTx) raw() pgx.Tx {
	if sh, ok := t.tx.(shadowTx); ok {
		return sh.Tx
	}
	return t.tx
}

// explodeName is the table a transaction writes for explode table name: a
// rebuild writes its shadow.
func (t *projTx) explodeName(name string) string {
	if t.Shadow() {
		return store.ShadowPrefix + name
	}
	return name
}

func quote(id string) string { return pgx.Identifier{id}.Sanitize() }

func pgType(kind string) string {
	switch kind {
	case store.ColInteger:
		return "bigint"
	case store.ColReal:
		return "double precision"
	}
	return "text"
}

func explodeDDL(name string, x store.ExplodeTable) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + quote(name) + " (pc_id text NOT NULL, job_id text NOT NULL, collected_at timestamptz")
	for _, c := range x.Columns {
		b.WriteString(", " + quote(c.Name) + " " + pgType(c.Kind))
	}
	b.WriteString(", PRIMARY KEY (pc_id, job_id")
	for _, k := range x.PrimaryKey {
		b.WriteString(", " + quote(k))
	}
	// Every accepted write restamps a PC's rows (collected_at, not indexed):
	// room in each page lets PostgreSQL update them in place (HOT). A PC's
	// rows share pages and one statement restamps them all, so the room
	// must hold a whole page's rows again: at 70 about a quarter of the
	// restamps still moved their row and added index entries, at 50 one in
	// a hundred did, and restamps took about half as long with the table
	// staying smaller (docs/performance.md, eleventh session).
	b.WriteString(")) WITH (fillfactor = 50)")
	return b.String()
}

func (t *projTx) columns(ctx context.Context, name string) ([]store.TableColumn, error) {
	rows, err := t.raw().Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey))
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, quote(name))
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", name, err)
	}
	var have []store.TableColumn
	var c store.TableColumn
	if _, err := pgx.ForEachRow(rows, []any{&c.Name, &c.Type, &c.PK}, func() error { have = append(have, c); return nil }); err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", name, err)
	}
	return have, nil
}

func (t *projTx) EnsureExplodeTable(ctx context.Context, x store.ExplodeTable) error {
	name := t.explodeName(x.Name)
	have, err := t.columns(ctx, name)
	if err != nil {
		return err
	}
	var stmts []string
	params := false // the shadow of a live table keeps its storage parameters
	if len(have) == 0 {
		stmts = append(stmts, explodeDDL(name, x))
		if t.Shadow() {
			// Carry the live rows of the PCs whose facts the rebuild carried
			// over (the shadow facts hold just those when the job's first
			// batch asks for the table).
			live, err := t.columns(ctx, x.Name)
			if err != nil {
				return err
			}
			if len(live) > 0 {
				stmts = append(stmts, copyRows(x, live, x.Name, name,
					"(pc_id, job_id) IN (SELECT pc_id, job_id FROM "+store.ShadowPrefix+"inventory_facts)"))
				params = true
			}
		}
	} else {
		stmts = migration(x, name, have)
	}
	for _, c := range x.Columns {
		if c.Index {
			stmts = append(stmts, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)", quote("idx_"+name+"_"+c.Name), quote(name), quote(c.Name)))
		}
	}
	for _, q := range stmts {
		if _, err := t.raw().Exec(ctx, q); err != nil {
			return fmt.Errorf("create or migrate explode table %s: %w", name, err)
		}
	}
	if params {
		// All but the fillfactor, which is the DDL's: a rebuild brings an
		// older table to it.
		return copyStorageParams(ctx, t.raw(), quote(x.Name), quote(name), "fillfactor")
	}
	return nil
}

// copyRows copies the columns from and x share into to, where cond holds
// and the new key has no NULL (PostgreSQL's key cannot hold one; SQLite's
// can), the first of two rows with one key kept.
func copyRows(x store.ExplodeTable, have []store.TableColumn, from, to, cond string) string {
	_, common, _ := store.ReconcileExplode(have, store.ExplodeColumns(x, "text", "timestamp with time zone", pgType))
	quoted := make([]string, len(common))
	for i, c := range common {
		quoted[i] = quote(c)
	}
	cols := strings.Join(quoted, ", ")
	for _, k := range x.PrimaryKey {
		cond += " AND " + quote(k) + " IS NOT NULL"
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s ON CONFLICT DO NOTHING", quote(to), cols, cols, quote(from), cond)
}

// migration is the statements of store.ReconcileExplode's verdict for the
// table name. A kept column of another type is cast as PostgreSQL can;
// what it cannot cast fails the batch with the reason rather than guess.
func migration(x store.ExplodeTable, name string, have []store.TableColumn) []string {
	missing, _, rebuild := store.ReconcileExplode(have, store.ExplodeColumns(x, "text", "timestamp with time zone", pgType))
	if !rebuild {
		var add []string
		for _, c := range missing {
			add = append(add, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", quote(name), quote(c.Name), c.Type))
		}
		return add
	}
	tmp := name + "__migrate"
	return []string{
		"DROP TABLE IF EXISTS " + quote(tmp),
		explodeDDL(tmp, x),
		copyRows(x, have, name, tmp, "TRUE"),
		"DROP TABLE " + quote(name),
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s", quote(tmp), quote(name)),
	}
}

func (t *projTx) LoadExplodeRows(ctx context.Context, x store.ExplodeTable, keys []store.FactsKey) (map[store.FactsKey]*store.ExplodeRows, error) {
	out := map[store.FactsKey]*store.ExplodeRows{}
	if len(keys) == 0 {
		return out, nil
	}
	pc, job := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		pc[i], job[i] = pgText(k.PCID), pgText(k.JobID)
	}
	cols := make([]string, len(x.Columns))
	for i, c := range x.Columns {
		cols[i] = "t." + quote(c.Name)
	}
	// One index lookup per key, always: as a plain join the planner read
	// the whole table and sorted it (to disk) for a merge join once a
	// batch asked for half the fleet's PCs, 200-370 ms a batch at 10,000
	// PCs against about 40 for the lookups (docs/performance.md, twelfth
	// session). OFFSET 0 keeps the lateral subquery from being flattened
	// back into that join.
	rows, err := t.raw().Query(ctx, `SELECT t.pc_id, t.job_id, t.collected_at, `+strings.Join(cols, ", ")+`
		FROM unnest($1::text[], $2::text[]) AS k(pc_id, job_id)
		CROSS JOIN LATERAL (SELECT * FROM `+quote(t.explodeName(x.Name))+` s WHERE s.pc_id = k.pc_id AND s.job_id = k.job_id OFFSET 0) t`, pc, job)
	if err != nil {
		return nil, fmt.Errorf("read explode table %s: %w", x.Name, err)
	}
	defer rows.Close()
	// Each column is scanned as its kind (the table's types are the spec's
	// once EnsureExplodeTable ran): rows.Values would box every cell.
	var pcID, jobID string
	var collected pgtype.Timestamptz
	texts, ints, reals := make([]pgtype.Text, len(x.Columns)), make([]pgtype.Int8, len(x.Columns)), make([]pgtype.Float8, len(x.Columns))
	dest := []any{&pcID, &jobID, &collected}
	for i, c := range x.Columns {
		switch c.Kind {
		case store.ColInteger:
			dest = append(dest, &ints[i])
		case store.ColReal:
			dest = append(dest, &reals[i])
		default:
			dest = append(dest, &texts[i])
		}
	}
	var set *store.ExplodeRows
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read explode table %s: %w", x.Name, err)
		}
		if set == nil || set.Key.PCID != pcID || set.Key.JobID != jobID {
			k := store.FactsKey{PCID: pcID, JobID: jobID}
			if set = out[k]; set == nil {
				set = &store.ExplodeRows{Key: k}
				if collected.Valid {
					at := collected.Time
					set.CollectedAt = &at
				}
				out[k] = set
			}
		}
		row := make([]store.Cell, len(x.Columns))
		for i, c := range x.Columns {
			switch {
			case c.Kind == store.ColInteger && ints[i].Valid:
				row[i] = store.Cell{Kind: store.CellInt, Int: ints[i].Int64}
			case c.Kind == store.ColReal && reals[i].Valid:
				row[i] = store.Cell{Kind: store.CellReal, Real: reals[i].Float64}
			case c.Kind != store.ColInteger && c.Kind != store.ColReal && texts[i].Valid:
				row[i] = store.Cell{Kind: store.CellText, Text: texts[i].String}
			}
		}
		set.Rows = append(set.Rows, row)
	}
	return out, rows.Err()
}

// Generation is never known on PostgreSQL: nothing there tells a session
// cheaply that no other session committed since its last transaction (the
// writer lock keeps kanade's own writers out, not a person's SQL or another
// tool's), so every batch reads what the tables hold.
func (t *projTx) Generation(context.Context) (store.Generation, bool, error) {
	return store.Generation{}, false, nil
}

func (t *projTx) ChangeExplodeRows(ctx context.Context, x store.ExplodeTable, changes []store.ExplodeChange) (int64, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	var total int64
	table := quote(t.explodeName(x.Name))
	exec := func(what, q string, args ...any) error {
		tag, err := t.raw().Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("%s rows of %s: %w", what, x.Name, err)
		}
		total += tag.RowsAffected()
		return nil
	}
	var allPC, allJob, stPC, stJob []string
	var stAt []*time.Time
	for _, c := range changes {
		if c.All {
			allPC, allJob = append(allPC, pgText(c.Key.PCID)), append(allJob, pgText(c.Key.JobID))
		} else if c.Restamp {
			stPC, stJob, stAt = append(stPC, pgText(c.Key.PCID)), append(stJob, pgText(c.Key.JobID)), append(stAt, c.CollectedAt)
		}
	}
	if len(allPC) > 0 {
		if err := exec("replace", `DELETE FROM `+table+` t USING unnest($1::text[], $2::text[]) AS k(pc_id, job_id)
			WHERE t.pc_id = k.pc_id AND t.job_id = k.job_id`, allPC, allJob); err != nil {
			return total, err
		}
	}
	// Rows to delete, by their key columns, one array per column.
	keyAt := make([]int, len(x.PrimaryKey))
	for i, k := range x.PrimaryKey {
		keyAt[i] = slices.IndexFunc(x.Columns, func(c store.ExplodeColumn) bool { return c.Name == k })
	}
	var dPC, dJob []string
	dKeys := make([][]any, len(keyAt))
	for _, c := range changes {
		for _, d := range c.Delete {
			dPC, dJob = append(dPC, pgText(c.Key.PCID)), append(dJob, pgText(c.Key.JobID))
			for i, at := range keyAt {
				dKeys[i] = append(dKeys[i], pgCell(x.Columns[at].Kind, d[at]))
			}
		}
	}
	if len(dPC) > 0 {
		args := []any{dPC, dJob}
		cols, match := []string{"pc_id", "job_id"}, []string{"t.pc_id = d.pc_id", "t.job_id = d.job_id"}
		arrays := []string{"$1::text[]", "$2::text[]"}
		for i, at := range keyAt {
			name := fmt.Sprintf("k%d", i)
			cols, match = append(cols, name), append(match, "t."+quote(x.Columns[at].Name)+" = d."+name)
			arrays = append(arrays, fmt.Sprintf("$%d::%s[]", i+3, pgType(x.Columns[at].Kind)))
			args = append(args, typedArray(x.Columns[at].Kind, dKeys[i]))
		}
		if err := exec("delete", `DELETE FROM `+table+` t USING unnest(`+strings.Join(arrays, ", ")+`) AS d(`+strings.Join(cols, ", ")+`)
			WHERE `+strings.Join(match, " AND "), args...); err != nil {
			return total, err
		}
	}
	if len(stPC) > 0 {
		if err := exec("restamp", `UPDATE `+table+` t SET collected_at = k.c FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(pc_id, job_id, c)
			WHERE t.pc_id = k.pc_id AND t.job_id = k.job_id`, stPC, stJob, stAt); err != nil {
			return total, err
		}
	}
	var pc, job []string
	var at []*time.Time
	vals := make([][]any, len(x.Columns))
	for _, c := range changes {
	rows:
		for _, cells := range c.Insert {
			for _, i := range keyAt {
				if cells[i].Kind == store.CellNull {
					continue rows // a key column cannot be NULL here (SQLite allows it)
				}
			}
			pc, job, at = append(pc, pgText(c.Key.PCID)), append(job, pgText(c.Key.JobID)), append(at, c.CollectedAt)
			for i, cell := range cells {
				vals[i] = append(vals[i], pgCell(x.Columns[i].Kind, cell))
			}
		}
	}
	if len(pc) == 0 {
		return total, nil
	}
	// One statement over an array per column, in the rows' order, so that
	// of two rows with one key the first stays (ON CONFLICT DO NOTHING in
	// that order), as upstream keeps it.
	cols, arrays, aliases := []string{"pc_id", "job_id", "collected_at"}, []string{"$1::text[]", "$2::text[]", "$3::timestamptz[]"}, []string{"a0", "a1", "a2"}
	args := []any{pc, job, at}
	for i, c := range x.Columns {
		cols = append(cols, quote(c.Name))
		arrays = append(arrays, fmt.Sprintf("$%d::%s[]", i+4, pgType(c.Kind)))
		aliases = append(aliases, fmt.Sprintf("a%d", i+3))
		args = append(args, typedArray(c.Kind, vals[i]))
	}
	return total, exec("write", fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM unnest(%s) WITH ORDINALITY AS r(%s, n) ORDER BY n ON CONFLICT DO NOTHING",
		table, strings.Join(cols, ", "), strings.Join(aliases, ", "), strings.Join(arrays, ", "), strings.Join(aliases, ", ")), args...)
}

func pgCell(kind string, c store.Cell) any {
	c = store.Postgres.StoredCell(kind, c)
	if c.Kind == store.CellInt && kind == store.ColReal {
		return float64(c.Int)
	}
	return c.Value()
}

// typedArray makes values (pgCell's) a typed array parameter for kind.
func typedArray(kind string, values []any) any {
	switch kind {
	case store.ColInteger:
		out := make([]*int64, len(values))
		for i, v := range values {
			if n, ok := v.(int64); ok {
				out[i] = &n
			}
		}
		return out
	case store.ColReal:
		out := make([]*float64, len(values))
		for i, v := range values {
			if f, ok := v.(float64); ok {
				out[i] = &f
			}
		}
		return out
	}
	out := make([]*string, len(values))
	for i, v := range values {
		if s, ok := v.(string); ok {
			out[i] = &s
		}
	}
	return out
}
