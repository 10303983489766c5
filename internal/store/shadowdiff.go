package store

import (
	"fmt"
	"strings"
)

// DiffDialect is what a shadow diff needs of an engine: how two rows'
// columns differ (NULLs equal), how an execution's counters print, which
// result columns the live table has, how times compare (see newHistory),
// whether a derived table exists, and how to run the three query shapes.
type DiffDialect struct {
	Differ      func(cols []string) string // the condition that l and s differ in cols
	CounterText func(alias string) string  // alias's counters as "success/failure status"
	Columns     func(col string) bool      // whether execution_results has col
	At          func(column string) string
	HasTable    func(table string) bool
	Count       func(q string) (int64, error)
	IDs         func(q string) ([]string, error)      // the first column of each row
	Pairs       func(q string) ([]CounterPair, error) // three text columns
}

// resultDiffColumns are the execution_results columns a rebuild compares.
var resultDiffColumns = []string{"request_id", "exec_id", "pc_id", "exit_code", "stdout", "stderr", "started_at", "finished_at", "recorded_at",
	"job_id", "version", "reaped", "expires_at", "parent_result_id", "skipped"}

// DiffShadow compares the live tables with the rebuilt shadow tables: the
// same queries on every engine, through dialect; explodeTables is how many
// explode tables were rebuilt, and sample how many ids each list keeps.
func DiffShadow(dialect DiffDialect, explodeTables int64, sample int) (*ShadowDiff, error) {
	d := &ShadowDiff{ExplodeTables: explodeTables}
	var cols []string
	for _, c := range resultDiffColumns {
		if dialect.Columns(c) {
			cols = append(cols, c)
		}
	}
	changed := `FROM execution_results l JOIN kanade_shadow_execution_results s ON s.result_id = l.result_id WHERE ` + dialect.Differ(cols)
	const onlyLive = `FROM execution_results l WHERE NOT EXISTS (SELECT 1 FROM kanade_shadow_execution_results s WHERE s.result_id = l.result_id)`
	counters := `FROM executions l JOIN kanade_shadow_executions s ON s.exec_id = l.exec_id WHERE ` +
		dialect.Differ([]string{"success_count", "failure_count", "status"})
	counts := []DiffCount{
		{"execution_results", &d.LiveRows, "SELECT count(*) FROM execution_results"},
		{"execution_results", &d.ShadowRows, "SELECT count(*) FROM kanade_shadow_execution_results"},
		{"execution_results", &d.OnlyLive, "SELECT count(*) " + onlyLive},
		{"execution_results", &d.OnlyShadow, "SELECT count(*) FROM kanade_shadow_execution_results s WHERE NOT EXISTS (SELECT 1 FROM execution_results l WHERE l.result_id = s.result_id)"},
		{"execution_results", &d.Changed, "SELECT count(*) " + changed},
		{"executions", &d.ExecutionsDiff, "SELECT count(*) " + counters},
		{"inventory_facts", &d.InventoryLive, "SELECT count(*) FROM inventory_facts"},
		{"inventory_facts", &d.InventoryShadow, "SELECT count(*) FROM kanade_shadow_inventory_facts"},
	}
	for _, c := range append(counts, DerivedDiffCounts(d, dialect.At)...) {
		if !dialect.HasTable(c.Table) {
			continue
		}
		n, err := dialect.Count(c.SQL)
		if err != nil {
			return nil, fmt.Errorf("compare with the rebuilt %s: %w", c.Table, err)
		}
		*c.Dst = n
	}
	limit := fmt.Sprintf(" ORDER BY 1 LIMIT %d", sample)
	var err error
	if d.SampleChanged, err = dialect.IDs("SELECT l.result_id " + changed + limit); err != nil {
		return nil, fmt.Errorf("compare with the rebuilt tables: %w", err)
	}
	if d.SampleOnlyLive, err = dialect.IDs("SELECT l.result_id " + onlyLive + limit); err != nil {
		return nil, fmt.Errorf("compare with the rebuilt tables: %w", err)
	}
	if d.SampleCounters, err = dialect.Pairs("SELECT l.exec_id, " + dialect.CounterText("l") + ", " + dialect.CounterText("s") + " " + counters + limit); err != nil {
		return nil, fmt.Errorf("compare counters: %w", err)
	}
	return d, nil
}

// RowDiffer is the differ of an engine with row comparisons:
// (l.a, l.b) IS DISTINCT FROM (s.a, s.b).
func RowDiffer(cols []string) string {
	l, s := make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		l[i], s[i] = "l."+c, "s."+c
	}
	return "(" + strings.Join(l, ", ") + ") IS DISTINCT FROM (" + strings.Join(s, ", ") + ")"
}
