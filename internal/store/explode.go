package store

import "slices"

// TableColumn is a column of a table as the catalog reports it.
type TableColumn struct {
	Name, Type string
	PK         bool
}

// ExplodeColumns are the columns t's table has, typed by typeOf, after
// the three every explode table starts with (their types given).
func ExplodeColumns(t ExplodeTable, text, timestamp string, typeOf func(kind string) string) []TableColumn {
	out := []TableColumn{{"pc_id", text, true}, {"job_id", text, true}, {"collected_at", timestamp, false}}
	for _, c := range t.Columns {
		out = append(out, TableColumn{c.Name, typeOf(c.Kind), slices.Contains(t.PrimaryKey, c.Name)})
	}
	return out
}

// ReconcileExplode is upstream's migration rule for an explode table whose
// spec changed: when the only change is new columns, they are added
// (missing); when a column's type or key membership changed, or a column
// is gone, the table is rebuilt, copying the common columns.
func ReconcileExplode(have, want []TableColumn) (missing []TableColumn, common []string, rebuild bool) {
	byName := map[string]TableColumn{}
	for _, c := range have {
		byName[c.Name] = c
	}
	for _, w := range want {
		h, ok := byName[w.Name]
		if !ok {
			missing = append(missing, w)
			continue
		}
		rebuild = rebuild || h.Type != w.Type || h.PK != w.PK
		common = append(common, w.Name)
	}
	return missing, common, rebuild || len(common) < len(have)
}
