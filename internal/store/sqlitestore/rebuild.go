package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// shadowTx sends every statement to the shadow tables.
type shadowTx struct{ tx *sql.Tx }

func (t shadowTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, store.ShadowNames.Replace(q), args...)
}

func (t shadowTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, store.ShadowNames.Replace(q), args...)
}

func (t shadowTx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, store.ShadowNames.Replace(q))
}

// schemaOf returns the CREATE statements of a table and its explicit
// indexes, exactly as the file holds them.
func schemaOf(ctx context.Context, q execer, table string) (string, []string, error) {
	rows, err := q.QueryContext(ctx, "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC, name", table)
	if err != nil {
		return "", nil, err
	}
	defer rows.Close()
	var create string
	var indexes []string
	for rows.Next() {
		var typ, stmt string
		if err := rows.Scan(&typ, &stmt); err != nil {
			return "", nil, err
		}
		if typ == "table" {
			create = stmt
		} else if typ == "index" {
			indexes = append(indexes, stmt)
		}
	}
	if create == "" {
		return "", nil, fmt.Errorf("table %s does not exist", table)
	}
	return create, indexes, rows.Err()
}

// uniqueIndex says whether a CREATE INDEX statement makes a unique index.
func uniqueIndex(stmt string) bool {
	f := strings.Fields(strings.ToUpper(stmt))
	return len(f) > 1 && f[0] == "CREATE" && f[1] == "UNIQUE"
}

// renameIn rewrites a CREATE TABLE/INDEX statement of table for newTable,
// prefixing index names with prefix.
func renameIn(stmt, table, newTable, prefix string) string {
	// Longer forms first: a Replacer tries its pairs in order. A table
	// that ALTER TABLE RENAME made has its name quoted in sqlite_master
	// (a table a rebuild swapped in), so both forms are renamed.
	q, nq := `"`+table+`"`, `"`+newTable+`"`
	r := strings.NewReplacer("TABLE IF NOT EXISTS "+q, "TABLE IF NOT EXISTS "+nq, "TABLE IF NOT EXISTS "+table, "TABLE IF NOT EXISTS "+newTable,
		"TABLE "+q, "TABLE "+nq, "TABLE "+table, "TABLE "+newTable, "ON "+q, "ON "+nq, "ON "+table, "ON "+newTable,
		"INDEX IF NOT EXISTS ", "INDEX IF NOT EXISTS "+prefix, "INDEX ", "INDEX "+prefix)
	return r.Replace(stmt)
}

func (s *Store) CreateShadow(ctx context.Context, carryBefore time.Time) (int64, error) {
	if err := s.DropShadow(ctx); err != nil {
		return 0, err
	}
	var carried int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, t := range s.shadowed() {
			create, indexes, err := schemaOf(ctx, tx, t)
			if err != nil {
				return err
			}
			// The shadow copies the live table's own DDL, so an upstream
			// file's exact schema (column types, defaults) carries over.
			// Of its indexes only the unique ones: the projection's
			// conflicts need them, its statements find rows by their keys,
			// and the swap drops the shadow's indexes and builds the live
			// table's on the swapped-in table in one pass (SQLite cannot
			// rename an index), so every row the carry-over and the stream
			// wrote into the others was work thrown away.
			for _, stmt := range append([]string{create}, indexes...) {
				if stmt != create && !uniqueIndex(stmt) {
					continue
				}
				if _, err := tx.ExecContext(ctx, renameIn(stmt, t, store.ShadowPrefix+t, store.ShadowPrefix)); err != nil {
					return fmt.Errorf("create shadow of %s: %w", t, err)
				}
			}
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO kanade_shadow_execution_results SELECT * FROM execution_results WHERE recorded_at < ? OR finished_at IS NULL OR reaped <> 0", ts(carryBefore))
		if err != nil {
			return fmt.Errorf("carry over old rows: %w", err)
		}
		carried, _ = res.RowsAffected()
		for _, c := range store.CarryOverSQL {
			if c.Table != "inventory_facts" && !s.derived[c.Table] {
				continue
			}
			if _, err := tx.ExecContext(ctx, strings.ReplaceAll(c.SQL, "$1", "?"), ts(carryBefore)); err != nil {
				return fmt.Errorf("carry over old %s rows: %w", c.Table, err)
			}
		}
		_, err = tx.ExecContext(ctx, store.CountedExecutionsSQL("kanade_shadow_executions", "kanade_shadow_execution_results", s.hasColumn))
		if err != nil {
			return fmt.Errorf("prepare executions: %w", err)
		}
		return nil
	})
	return carried, err
}

func (s *Store) ProjectShadow(ctx context.Context, fn func(store.ProjectionTx) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return fn(&projTx{tx: shadowTx{tx}, s: s}) })
}

func (s *Store) DiffShadow(ctx context.Context, sample int) (*store.ShadowDiff, error) {
	explode, err := explodeShadows(ctx, s.db)
	if err != nil {
		return nil, err
	}
	return store.DiffShadow(store.DiffDialect{
		Differ: func(cols []string) string {
			cmp := make([]string, len(cols))
			for i, c := range cols {
				cmp[i] = "l." + c + " IS NOT s." + c
			}
			return "(" + strings.Join(cmp, " OR ") + ")"
		},
		CounterText: func(a string) string {
			return a + ".success_count || '/' || " + a + ".failure_count || ' ' || " + a + ".status"
		},
		Columns: s.hasColumn,
		At:      upstreamTime,
		HasTable: func(t string) bool {
			return slices.Contains(store.CoreTables, t) || s.derived[t]
		},
		Count: func(q string) (n int64, err error) {
			err = s.db.QueryRowContext(ctx, q).Scan(&n)
			return n, err
		},
		IDs: func(q string) ([]string, error) {
			rows, err := s.db.QueryContext(ctx, q)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var id sql.NullString
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				out = append(out, id.String)
			}
			return out, rows.Err()
		},
		Pairs: func(q string) ([]store.CounterPair, error) {
			rows, err := s.db.QueryContext(ctx, q)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []store.CounterPair
			for rows.Next() {
				var c store.CounterPair
				if err := rows.Scan(&c.ExecID, &c.Live, &c.Shadow); err != nil {
					return nil, err
				}
				out = append(out, c)
			}
			return out, rows.Err()
		},
	}, int64(len(explode)), sample)
}

// SwapShadow renames in one transaction. SQLite cannot rename an index,
// so the kept old tables lose theirs (they are a backup, not queried) and
// the live tables get their original index names back.
func (s *Store) SwapShadow(ctx context.Context) (string, error) {
	prefix, err := store.OldTablesPrefix(time.Now(), func(name string) (bool, error) { return s.tableExists(ctx, name) })
	if err != nil {
		return "", fmt.Errorf("name the replaced tables: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.derived["inventory_history"] {
			if _, err := tx.ExecContext(ctx, store.AppendRebuiltHistorySQL(upstreamTime)); err != nil {
				return fmt.Errorf("append the rebuilt inventory history: %w", err)
			}
			if _, err := tx.ExecContext(ctx, "DROP TABLE "+store.ShadowPrefix+"inventory_history"); err != nil {
				return fmt.Errorf("drop the rebuilt inventory history: %w", err)
			}
		}
		for _, t := range s.swapped() {
			_, liveIdx, err := schemaOf(ctx, tx, t)
			if err != nil {
				return err
			}
			_, shadowIdx, err := schemaOf(ctx, tx, store.ShadowPrefix+t)
			if err != nil {
				return err
			}
			for _, stmt := range liveIdx {
				if _, err := tx.ExecContext(ctx, "DROP INDEX "+indexName(stmt)); err != nil {
					return fmt.Errorf("drop index of the old %s: %w", t, err)
				}
			}
			for _, stmt := range shadowIdx {
				if _, err := tx.ExecContext(ctx, "DROP INDEX "+indexName(stmt)); err != nil {
					return fmt.Errorf("drop index of the rebuilt %s: %w", t, err)
				}
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s RENAME TO %s%s", t, prefix, t)); err != nil {
				return fmt.Errorf("keep the old %s: %w", t, err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s%s RENAME TO %s", store.ShadowPrefix, t, t)); err != nil {
				return fmt.Errorf("swap in the rebuilt %s: %w", t, err)
			}
			for _, stmt := range liveIdx {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("index the rebuilt %s: %w", t, err)
				}
			}
		}
		return s.swapExplode(ctx, tx, prefix)
	})
	if err != nil {
		return prefix, err
	}
	return prefix, s.loadColumns(ctx)
}

// indexName is the name in "CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON ...".
func indexName(stmt string) string {
	f := strings.Fields(stmt)
	for i, w := range f {
		if strings.EqualFold(w, "ON") && i > 0 {
			return f[i-1]
		}
	}
	return ""
}

// upstreamTime makes a time stored in either of upstream's text shapes
// compare as text, exactly: CURRENT_TIMESTAMP's "YYYY-MM-DD HH:MM:SS" is
// rewritten in the RFC 3339 shape every other writer uses. (SQLite's own
// date functions would round to milliseconds, and a stream's messages are
// often closer together than that.)
func upstreamTime(column string) string {
	return "(CASE WHEN length(" + column + ") = 19 THEN replace(" + column + ", ' ', 'T') || '+00:00' ELSE " + column + " END)"
}

// explodeShadows lists a rebuild's shadow explode tables: the shadow
// tables that are not of a fixed table.
func explodeShadows(ctx context.Context, q execer) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ?`, len(store.ShadowPrefix), store.ShadowPrefix)
	if err != nil {
		return nil, fmt.Errorf("list the rebuilt explode tables: %w", err)
	}
	defer rows.Close()
	fixed := slices.Concat(store.ProjectedTables, store.AppendOnlyTables)
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		if !slices.Contains(fixed, strings.TrimPrefix(name, store.ShadowPrefix)) {
			out = append(out, name)
		}
	}
	return out, rows.Err()
}

// swapExplode swaps in the rebuilt explode tables, keeping a replaced one
// under prefix; their indexes get the live names back.
func (s *Store) swapExplode(ctx context.Context, tx *sql.Tx, prefix string) error {
	shadows, err := explodeShadows(ctx, tx)
	if err != nil {
		return err
	}
	for _, sh := range shadows {
		t := strings.TrimPrefix(sh, store.ShadowPrefix)
		_, shadowIdx, err := schemaOf(ctx, tx, sh)
		if err != nil {
			return err
		}
		var stmts []string
		for _, stmt := range shadowIdx {
			stmts = append(stmts, "DROP INDEX "+indexName(stmt))
		}
		if _, liveIdx, err := schemaOf(ctx, tx, t); err == nil {
			for _, stmt := range liveIdx {
				stmts = append(stmts, "DROP INDEX "+indexName(stmt))
			}
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE "%s" RENAME TO "%s%s"`, t, prefix, t))
		}
		stmts = append(stmts, fmt.Sprintf(`ALTER TABLE "%s" RENAME TO "%s"`, sh, t))
		for _, stmt := range shadowIdx {
			stmts = append(stmts, strings.ReplaceAll(stmt, `"`+sh, `"`+t))
		}
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("swap in the rebuilt %s: %w", t, err)
			}
		}
	}
	return nil
}

// swapped lists the projected tables this file has; shadowed adds the
// append-only ones.
func (s *Store) swapped() []string {
	var out []string
	for _, t := range store.ProjectedTables {
		if slices.Contains(store.CoreTables, t) || s.derived[t] {
			out = append(out, t)
		}
	}
	return out
}

func (s *Store) shadowed() []string {
	out := s.swapped()
	for _, t := range store.AppendOnlyTables {
		if s.derived[t] {
			out = append(out, t)
		}
	}
	return out
}

func (s *Store) DropShadow(ctx context.Context) error {
	explode, err := explodeShadows(ctx, s.db)
	if err != nil {
		return err
	}
	for _, sh := range explode {
		if _, err := s.db.ExecContext(ctx, `DROP TABLE IF EXISTS "`+sh+`"`); err != nil {
			return fmt.Errorf("drop the rebuilt tables: %w", err)
		}
	}
	for _, t := range slices.Concat(store.ProjectedTables, store.AppendOnlyTables) {
		if _, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+store.ShadowPrefix+t); err != nil {
			return fmt.Errorf("drop the rebuilt tables: %w", err)
		}
	}
	return nil
}

func (s *Store) Swapped(ctx context.Context, prefix string) (bool, error) {
	ok, err := s.tableExists(ctx, prefix+"execution_results")
	if err != nil {
		return false, fmt.Errorf("find out whether the swap committed: %w", err)
	}
	if ok {
		// What SwapShadow does after its commit, which it may not have.
		return true, s.loadColumns(ctx)
	}
	return false, nil
}

// oldTableNames lists the file's tables named kanade_old_*.
func (s *Store) oldTableNames(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 11) = 'kanade_old_'`)
	if err != nil {
		return nil, fmt.Errorf("list the tables rebuilds kept in %s: %w", s.path, err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the tables rebuilds kept in %s: %w", s.path, err)
	}
	return names, nil
}

func (s *Store) OldTables(ctx context.Context) ([]store.OldTableSet, error) {
	names, err := s.oldTableNames(ctx)
	if err != nil {
		return nil, err
	}
	return store.GroupOldTables(names, func(t string) (int64, error) {
		var n int64
		err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM "`+t+`"`).Scan(&n)
		return n, err
	})
}

func (s *Store) DropOldTables(ctx context.Context, prefix string) ([]string, error) {
	names, err := s.oldTableNames(ctx)
	if err != nil {
		return nil, err
	}
	tables, err := store.OldTablesOf(names, prefix, s.path)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("drop %s*: %w", prefix, err)
	}
	defer tx.Rollback() //nolint:errcheck
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, `DROP TABLE "`+t+`"`); err != nil {
			return nil, fmt.Errorf("drop %s: %w", t, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("drop %s*: %w", prefix, err)
	}
	return tables, nil
}
