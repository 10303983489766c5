package pgstore

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// shadowTx sends every statement to the shadow tables.
type shadowTx struct{ pgx.Tx }

func (t shadowTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.Tx.Exec(ctx, store.ShadowNames.Replace(sql), args...)
}

func (t shadowTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.Tx.Query(ctx, store.ShadowNames.Replace(sql), args...)
}

func (t shadowTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.Tx.QueryRow(ctx, store.ShadowNames.Replace(sql), args...)
}

func (t shadowTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	named := make(pgx.Identifier, len(table))
	for i, part := range table {
		named[i] = store.ShadowNames.Replace(part)
	}
	return t.Tx.CopyFrom(ctx, named, cols, src)
}

func (s *Store) CreateShadow(ctx context.Context, carryBefore time.Time) (int64, error) {
	// A write like a batch: only while this store holds the writer lock
	// (after a restart it is taken again, or the rebuild stops).
	if err := s.checkLock(ctx); err != nil {
		return 0, err
	}
	var carried int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The shadow tables start with their keys (primary key, unique
		// constraints and indexes), which the projection's conflicts and
		// lookups need, and without their other indexes, which are built
		// once the rows are in (shadowIndexes): a carried or projected row
		// then goes into no index it does not need, and a completion that
		// moves finished_at is a heap-only update.
		for _, t := range slices.Concat(store.ProjectedTables, store.AppendOnlyTables) {
			sh := store.ShadowPrefix + t
			if _, err := tx.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s INCLUDING ALL EXCLUDING INDEXES)", sh, sh, t)); err != nil {
				return fmt.Errorf("create %s: %w", sh, err)
			}
			// LIKE copies no storage parameters; the swapped-in table must
			// keep the live one's (fillfactor, a DBA's autovacuum settings).
			if err := copyStorageParams(ctx, tx, t, sh, ""); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
				WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u', 'x') ORDER BY oid`, t)
			if err != nil {
				return fmt.Errorf("read the keys of %s: %w", t, err)
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("read the keys of %s: %w", t, err)
			}
			for _, k := range keys {
				if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD %s", sh, k)); err != nil {
					return fmt.Errorf("key %s: %w", sh, err)
				}
			}
			if err := createMissingIndexes(ctx, tx, t, true); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, "INSERT INTO kanade_shadow_execution_results SELECT * FROM execution_results WHERE recorded_at < $1 OR finished_at IS NULL OR reaped", carryBefore)
		if err != nil {
			return fmt.Errorf("carry over old rows: %w", err)
		}
		carried = tag.RowsAffected()
		for _, c := range store.CarryOverSQL {
			if _, err := tx.Exec(ctx, c.SQL, carryBefore); err != nil {
				return fmt.Errorf("carry over old %s rows: %w", c.Table, err)
			}
		}
		// Counters start from the carried rows, by upstream's rules; the
		// replay adds the rest.
		_, err = tx.Exec(ctx, store.CountedExecutionsSQL("kanade_shadow_executions", "kanade_shadow_execution_results", store.AllColumns))
		if err != nil {
			return fmt.Errorf("prepare executions: %w", err)
		}
		return nil
	})
	return carried, err
}

// copyStorageParams gives the table to the storage parameters
// (reloptions) of the table from, all but skip (when not ""): a rebuild's
// shadow table is swapped in for the live one, and must keep what a DBA
// tuned on it.
func copyStorageParams(ctx context.Context, tx pgx.Tx, from, to, skip string) error {
	var params string
	err := tx.QueryRow(ctx, `SELECT coalesce(string_agg(o, ', '), '') FROM pg_class c, unnest(c.reloptions) AS o
		WHERE c.oid = to_regclass($1) AND ($2 = '' OR o NOT LIKE $2 || '=%')`, from, skip).Scan(&params)
	if err != nil {
		return fmt.Errorf("read the storage parameters of %s: %w", from, err)
	}
	if params == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s SET (%s)", to, params)); err != nil {
		return fmt.Errorf("give %s the storage parameters of %s (%s): %w", to, from, params, err)
	}
	return nil
}

// shadowIndexes gives the shadow tables that are swapped in the indexes
// CreateShadow left out, in one transaction; those they have are left as
// they are, so it can run again (DiffShadow and SwapShadow both run it).
// The append-only history's shadow gets none: the swap reads it once, in
// full, and drops it.
func (s *Store) shadowIndexes(ctx context.Context) error {
	if err := s.checkLock(ctx); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, t := range store.ProjectedTables {
			if err := createMissingIndexes(ctx, tx, t, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// indexDef is pg_get_indexdef's statement: CREATE [UNIQUE] INDEX name ON
// [ONLY] schema.table USING method (columns) [WHERE ...], with
// identifiers as quote_ident quotes them.
var indexDef = regexp.MustCompile(`^CREATE (UNIQUE )?INDEX (?:"(?:[^"]|"")*"|[^\s"]+) ON (?:ONLY )?(?:(?:"(?:[^"]|"")*"|[^\s".]+)\.)?(?:"(?:[^"]|"")*"|[^\s"]+) (USING .*)$`)

// createMissingIndexes creates on table's shadow each index of table that
// no key constraint makes and the shadow lacks (compared by definition;
// PostgreSQL names the new ones as CREATE TABLE ... LIKE would), only the
// unique ones when uniqueOnly.
func createMissingIndexes(ctx context.Context, tx pgx.Tx, table string, uniqueOnly bool) error {
	sh := store.ShadowPrefix + table
	defs := func(t string) ([]string, error) {
		rows, err := tx.Query(ctx, `SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass($1)
			AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
			ORDER BY i.indexrelid`, t)
		if err != nil {
			return nil, fmt.Errorf("read the indexes of %s: %w", t, err)
		}
		all, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("read the indexes of %s: %w", t, err)
		}
		// Without its name and table, a definition is the same for the
		// live table and its shadow.
		out := make([]string, len(all))
		for i, d := range all {
			m := indexDef.FindStringSubmatch(d)
			if m == nil {
				return nil, fmt.Errorf("read the indexes of %s: cannot read %q", t, d)
			}
			out[i] = "CREATE " + m[1] + "INDEX ON " + sh + " " + m[2]
		}
		return out, nil
	}
	want, err := defs(table)
	if err != nil {
		return err
	}
	have, err := defs(sh)
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, d := range have {
		count[d]++
	}
	for _, d := range want {
		if count[d] > 0 {
			count[d]--
			continue
		}
		if uniqueOnly && !strings.HasPrefix(d, "CREATE UNIQUE ") {
			continue
		}
		if _, err := tx.Exec(ctx, d); err != nil {
			return fmt.Errorf("index %s: %w", sh, err)
		}
	}
	return nil
}

func (s *Store) ProjectShadow(ctx context.Context, fn func(store.ProjectionTx) error) error {
	return s.project(ctx, false, true, fn)
}

func (s *Store) DiffShadow(ctx context.Context, sample int) (*store.ShadowDiff, error) {
	if err := s.shadowIndexes(ctx); err != nil {
		return nil, err
	}
	explode, err := explodeShadows(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	return store.DiffShadow(store.DiffDialect{
		Differ: store.RowDiffer,
		CounterText: func(a string) string {
			return fmt.Sprintf("format('%%s/%%s %%s', %s.success_count, %s.failure_count, %s.status)", a, a, a)
		},
		Columns:  func(string) bool { return true },
		At:       asIs,
		HasTable: func(string) bool { return true },
		Count: func(q string) (n int64, err error) {
			err = s.pool.QueryRow(ctx, q).Scan(&n)
			return n, err
		},
		IDs: func(q string) ([]string, error) {
			rows, err := s.pool.Query(ctx, q)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowTo[string])
		},
		Pairs: func(q string) ([]store.CounterPair, error) {
			rows, err := s.pool.Query(ctx, q)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowToStructByPos[store.CounterPair])
		},
	}, int64(len(explode)), sample)
}

func (s *Store) SwapShadow(ctx context.Context) (string, error) {
	// Done by the diff already, unless a caller swaps without one.
	if err := s.shadowIndexes(ctx); err != nil {
		return "", err
	}
	prefix, err := store.OldTablesPrefix(time.Now(), func(name string) (bool, error) { return s.tableExists(ctx, name) })
	if err != nil {
		return "", fmt.Errorf("name the replaced tables: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var stmts []string
		for _, t := range store.ProjectedTables {
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s RENAME TO %s%s", t, prefix, t), fmt.Sprintf("ALTER TABLE %s%s RENAME TO %s", store.ShadowPrefix, t, t))
		}
		explode, err := explodeShadows(ctx, tx)
		if err != nil {
			return err
		}
		// Every table the swap renames or drops is locked first, before the
		// transaction changes any catalog row. A lock taken later waited
		// for an autovacuum of a live explode table while that autovacuum
		// waited for this transaction's renamed index rows: a deadlock,
		// and the rebuild's whole work lost at its last step (the chaos
		// suite's private server runs autovacuum). Waiting for the lock
		// with nothing changed yet is a wait PostgreSQL ends by cancelling
		// the autovacuum.
		locked := slices.Concat(store.ProjectedTables, store.AppendOnlyTables)
		for _, t := range slices.Concat(store.ProjectedTables, store.AppendOnlyTables) {
			locked = append(locked, store.ShadowPrefix+t)
		}
		for _, sh := range explode {
			more, live, err := swapExplode(ctx, tx, sh, prefix)
			if err != nil {
				return err
			}
			stmts = append(stmts, more...)
			locked = append(locked, quote(sh))
			if live != "" {
				locked = append(locked, quote(live))
			}
		}
		lock := "LOCK TABLE " + strings.Join(locked, ", ") + " IN ACCESS EXCLUSIVE MODE; "
		if _, err := tx.Exec(ctx, lock+store.AppendRebuiltHistorySQL(asIs)+"; DROP TABLE "+store.ShadowPrefix+"inventory_history; "+strings.Join(stmts, "; ")); err != nil {
			return fmt.Errorf("swap in the rebuilt tables: %w", err)
		}
		return nil
	})
	return prefix, err
}

func (s *Store) Swapped(ctx context.Context, prefix string) (bool, error) {
	ok, err := s.tableExists(ctx, prefix+"execution_results")
	if err != nil {
		return false, fmt.Errorf("find out whether the swap committed: %w", err)
	}
	return ok, nil
}

// tableExists says whether table name is in the schema, as sqlitestore's
// does.
func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	var found bool
	err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&found)
	return found, err
}

// explodeShadows lists a rebuild's shadow explode tables: the shadow
// tables in the schema that are not of a fixed table.
func explodeShadows(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
		AND left(c.relname, $1) = $2`, len(store.ShadowPrefix), store.ShadowPrefix)
	if err != nil {
		return nil, fmt.Errorf("list the rebuilt explode tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the rebuilt explode tables: %w", err)
	}
	fixed := slices.Concat(store.ProjectedTables, store.AppendOnlyTables)
	var out []string
	for _, n := range names {
		if !slices.Contains(fixed, strings.TrimPrefix(n, store.ShadowPrefix)) {
			out = append(out, n)
		}
	}
	return out, nil
}

// swapExplode is the statements that swap in the rebuilt explode table
// sh, keeping a replaced one under prefix, its indexes with their names
// (the replaced ones renamed with prefix), and the live table it replaces
// ("" when there is none).
func swapExplode(ctx context.Context, tx pgx.Tx, sh, prefix string) ([]string, string, error) {
	t := strings.TrimPrefix(sh, store.ShadowPrefix)
	idx := func(table string) ([]string, error) {
		rows, err := tx.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND left(indexname, 4) = 'idx_'`, table)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	var stmts []string
	var live bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quote(t)).Scan(&live); err != nil {
		return nil, "", fmt.Errorf("swap in the rebuilt %s: %w", t, err)
	}
	if live {
		liveIdx, err := idx(t)
		if err != nil {
			return nil, "", fmt.Errorf("swap in the rebuilt %s: %w", t, err)
		}
		for _, i := range liveIdx {
			stmts = append(stmts, fmt.Sprintf("ALTER INDEX %s RENAME TO %s", quote(i), quote(prefix+i)))
		}
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s RENAME TO %s", quote(t), quote(prefix+t)))
	}
	shadowIdx, err := idx(sh)
	if err != nil {
		return nil, "", fmt.Errorf("swap in the rebuilt %s: %w", t, err)
	}
	stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s RENAME TO %s", quote(sh), quote(t)))
	for _, i := range shadowIdx {
		stmts = append(stmts, fmt.Sprintf("ALTER INDEX %s RENAME TO %s", quote(i), quote(strings.Replace(i, "idx_"+sh, "idx_"+t, 1))))
	}
	if !live {
		return stmts, "", nil
	}
	return stmts, t, nil
}

// asIs: timestamptz compares as time.
func asIs(column string) string { return column }

func (s *Store) DropShadow(ctx context.Context) error {
	shadows, err := explodeShadows(ctx, s.pool)
	if err != nil {
		return err
	}
	for i, sh := range shadows {
		shadows[i] = quote(sh)
	}
	for _, t := range slices.Concat(store.ProjectedTables, store.AppendOnlyTables) {
		shadows = append(shadows, store.ShadowPrefix+t)
	}
	_, err = s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+strings.Join(shadows, ", "))
	if err != nil {
		return fmt.Errorf("drop the rebuilt tables: %w", err)
	}
	return nil
}

// oldTableNames lists the schema's tables named kanade_old_*.
func (s *Store) oldTableNames(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
		AND left(c.relname, 11) = 'kanade_old_'`)
	if err != nil {
		return nil, fmt.Errorf("list the tables rebuilds kept: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the tables rebuilds kept: %w", err)
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
		err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{t}.Sanitize()).Scan(&n)
		return n, err
	})
}

func (s *Store) DropOldTables(ctx context.Context, prefix string) ([]string, error) {
	names, err := s.oldTableNames(ctx)
	if err != nil {
		return nil, err
	}
	tables, err := store.OldTablesOf(names, prefix, s.location)
	if err != nil {
		return nil, err
	}
	idents := make([]string, len(tables))
	for j, t := range tables {
		idents[j] = pgx.Identifier{t}.Sanitize()
	}
	// One statement drops them all or none.
	if _, err := s.pool.Exec(ctx, "DROP TABLE "+strings.Join(idents, ", ")); err != nil {
		return nil, fmt.Errorf("drop %s*: %w", prefix, err)
	}
	return tables, nil
}
