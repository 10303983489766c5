// Package store holds the tables upstream's projector writes and the tool's
// own bookkeeping (checkpoints, quarantine, locks), behind one interface with
// a PostgreSQL and an SQLite implementation. Every SQL dialect difference
// lives below this package; callers see Go values only.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind names a store implementation.
type Kind string

const (
	Postgres Kind = "postgres"
	SQLite   Kind = "sqlite"
)

// ResultRow is one execution_results row. Nil pointers are SQL NULLs.
type ResultRow struct {
	ResultID       string
	RequestID      string
	ExecID         *string
	PCID           string
	ExitCode       *int32 // nil while in flight
	Stdout         string
	Stderr         string
	StartedAt      time.Time
	FinishedAt     *time.Time // nil while in flight
	RecordedAt     time.Time
	JobID          *string // the manifest id, despite the name
	Version        *string
	Reaped         bool
	ExpiresAt      *time.Time
	ParentResultID *string
	Skipped        bool
}

// RowState is what the projector must know of an existing row.
type RowState struct {
	Finished bool // finished_at IS NOT NULL
	Reaped   bool
}

// CounterDelta is how much one batch moves an execution's counters.
type CounterDelta struct {
	ExecID           string
	Success, Failure int64
}

// InventoryFact is one inventory_facts row.
type InventoryFact struct {
	PCID        string
	JobID       string
	FactsJSON   string
	DisplayJSON *string
	SummaryJSON *string
	CollectedAt *time.Time
	RecordedAt  time.Time
}

// CheckRow is one check_status row: a PC's latest status of one check.
type CheckRow struct {
	PCID       string
	CheckName  string
	Label      *string
	Status     string
	Detail     *string
	RecordedAt time.Time
}

// FeedMeta is one feed_meta row: a feed's watermark and size.
type FeedMeta struct {
	FeedID     string
	RecordedAt time.Time
	FetchedAt  *time.Time
	ItemCount  int64 // every element that had an id, as upstream counts them (duplicates too)
}

// FeedRow is one feeds row.
type FeedRow struct {
	FeedID     string
	ItemID     string
	Data       string
	FetchedAt  *time.Time
	RecordedAt time.Time
}

// Feed is a feed's new contents: Items (unique ids) replace its rows,
// which are stamped with Meta's times, and Meta becomes its watermark.
type Feed struct {
	Meta  FeedMeta
	Items []FeedItem
}

// FeedItem is one element of a feed.
type FeedItem struct{ ItemID, Data string }

// HistoryRow is one inventory_history row (the table numbers them).
type HistoryRow struct {
	PCID         string
	JobID        string
	FieldPath    string
	IdentityJSON *string
	ChangeKind   string // added, changed, removed
	BeforeJSON   *string
	AfterJSON    *string
	ObservedAt   time.Time
}

// FactsKey addresses one inventory_facts row.
type FactsKey struct{ PCID, JobID string }

// StoredFacts is what history is computed against: the facts a PC last
// reported for a job, and when.
type StoredFacts struct {
	FactsJSON  string
	RecordedAt time.Time
}

// CellKind is the storage class of an explode table's value.
type CellKind uint8

const (
	CellNull CellKind = iota
	CellInt
	CellReal
	CellText
)

// Cell is one value of an explode table row.
type Cell struct {
	Kind CellKind
	Int  int64
	Real float64
	Text string
}

// CellOf is a value a driver read as a Cell: int64, float64, string or
// []byte; anything else (nil) is NULL.
func CellOf(v any) Cell {
	switch v := v.(type) {
	case int64:
		return Cell{Kind: CellInt, Int: v}
	case float64:
		return Cell{Kind: CellReal, Real: v}
	case string:
		return Cell{Kind: CellText, Text: v}
	case []byte:
		return Cell{Kind: CellText, Text: string(v)}
	}
	return Cell{}
}

// Value is c as a driver parameter.
func (c Cell) Value() any {
	switch c.Kind {
	case CellInt:
		return c.Int
	case CellReal:
		return c.Real
	case CellText:
		return c.Text
	}
	return nil
}

// Explode column kinds.
const (
	ColText    = "text"
	ColInteger = "integer"
	ColReal    = "real"
)

// ExplodeTable is an explode table as a manifest declares it: (pc_id,
// job_id, collected_at) and Columns, keyed by (pc_id, job_id, PrimaryKey).
// Its identifiers are validated.
type ExplodeTable struct {
	Name       string
	Columns    []ExplodeColumn
	PrimaryKey []string
}

// ExplodeColumn is one declared column.
type ExplodeColumn struct {
	Name  string
	Kind  string // ColText, ColInteger or ColReal
	Index bool
}

// ExplodeRows are a PC's rows of one explode table for one job, each in
// the table's column order.
type ExplodeRows struct {
	Key         FactsKey
	CollectedAt *time.Time
	Rows        [][]Cell
}

// Generation identifies what a projection transaction began from. When a
// transaction that reported g commits, the next transaction reports
// g.Next() only if nothing else was committed to the database in between
// (and as a rule it does then; a store that cannot tell reports no
// generation). So a projector may keep what a committed batch wrote and
// trust it in the next batch instead of reading it back.
type Generation struct {
	Source  any   // the connection the transaction ran on, as an identity
	Version int64 // what the engine reports of commits by other connections
	Seq     int64 // the transactions begun on Source before this one
}

// Next is the generation of the transaction after g's, when nothing else
// committed: a transaction's own commit does not move Version.
func (g Generation) Next() Generation {
	g.Seq++
	return g
}

// ExplodeChange turns a PC's stored rows of an explode table for one job
// into new ones: with All, every row goes and Insert are the new rows;
// otherwise the Delete rows (addressed by their key columns, never NULL)
// go, every remaining row is stamped CollectedAt when Restamp, and Insert
// are added, a row whose key is already there skipped.
type ExplodeChange struct {
	Key         FactsKey
	CollectedAt *time.Time
	All         bool
	Restamp     bool
	Delete      [][]Cell
	Insert      [][]Cell
}

// StoredCell is c as a column of kind colKind of a store of kind k holds
// it. SQLite holds any value in any column (upstream relies on it);
// PostgreSQL's numeric columns cannot hold text, which becomes NULL there.
func (k Kind) StoredCell(colKind string, c Cell) Cell {
	if k == Postgres && c.Kind == CellText && colKind != ColText {
		return Cell{}
	}
	if c.Kind == CellText {
		c.Text = k.StoredText(c.Text)
	}
	return c
}

// NullKeys reports whether a table's primary key can hold NULLs: SQLite's
// can (and tells them apart), PostgreSQL's cannot, so there an explode row
// without its key is not stored.
func (k Kind) NullKeys() bool { return k == SQLite }

// Execution is one executions row (a deployment).
type Execution struct {
	ExecID       string
	JobID        string
	Version      string
	InitiatedBy  string
	InitiatedAt  time.Time
	TargetCount  int64
	SuccessCount int64
	FailureCount int64
	Status       string
}

// Checkpoint records how far a replay of a stream has been applied. The
// stream's creation time tells a recreated stream from the one checkpointed.
type Checkpoint struct {
	Name          string // checkpoint name: the stream, or stream+filter
	Stream        string
	StreamCreated time.Time
	LastSeq       uint64
	UpdatedAt     time.Time
}

// QuarantineEntry is a message that could not be projected, kept whole.
type QuarantineEntry struct {
	Stream        string
	Seq           uint64
	Subject       string
	PublishedAt   time.Time
	Error         string
	Payload       []byte
	QuarantinedAt time.Time
}

// ProjectionTx is one projector batch's transaction.
type ProjectionTx interface {
	// LoadResultStates returns the state of those ids that exist, locking
	// them against concurrent writers where the database can.
	LoadResultStates(ctx context.Context, ids []string) (map[string]RowState, error)
	// InsertNew inserts the rows whose result_id does not exist yet and
	// returns the ids of those it skipped because they did. ids must be
	// unique in one call. It must be the transaction's first write: the
	// PostgreSQL store tries a COPY straight into the table and, when an id
	// exists, rolls back to a savepoint taken as the transaction began.
	InsertNew(ctx context.Context, rows []ResultRow) (skipped []string, err error)
	// InsertInFlight inserts rows, leaving any existing row untouched
	// (upstream's events.started insert). It returns how many were inserted.
	InsertInFlight(ctx context.Context, rows []ResultRow) (int64, error)
	// UpsertResults is upstream's result upsert: insert, or complete a row
	// that is in flight or reaped; a finished row is never touched. It
	// returns how many rows were written. ids must be unique in one call.
	UpsertResults(ctx context.Context, rows []ResultRow) (int64, error)
	// StartExecutions is what a started event does to its execution:
	// pending becomes running; any other status stays.
	StartExecutions(ctx context.Context, execIDs []string) error
	// BumpExecutions adds the deltas and recomputes status as upstream
	// does; it returns the exec ids that exist (and so moved).
	BumpExecutions(ctx context.Context, deltas []CounterDelta) ([]string, error)
	// UpsertInventory writes facts unless the stored row is newer, and
	// returns how many rows it changed (an identical row is left alone).
	UpsertInventory(ctx context.Context, facts []InventoryFact) (int64, error)
	// LoadFacts returns the stored facts of those keys that have a row.
	LoadFacts(ctx context.Context, keys []FactsKey) (map[FactsKey]StoredFacts, error)
	// AddHistory appends inventory_history rows in order.
	AddHistory(ctx context.Context, rows []HistoryRow) (int64, error)
	// UpsertChecks writes check statuses unless the stored row is newer,
	// and returns how many rows it changed.
	UpsertChecks(ctx context.Context, rows []CheckRow) (int64, error)
	// FeedWatermarks returns the feed_meta recorded_at of those feeds that
	// have one.
	FeedWatermarks(ctx context.Context, feedIDs []string) (map[string]time.Time, error)
	// ReplaceFeeds replaces each feed's rows and sets its feed_meta.
	ReplaceFeeds(ctx context.Context, feeds []Feed) error
	// EnsureExplodeTable creates t with its indexes, or migrates the table
	// of that name to t: new columns are added; a changed key, type or a
	// dropped column rebuilds it, keeping the rows the new key allows.
	EnsureExplodeTable(ctx context.Context, t ExplodeTable) error
	// LoadExplodeRows returns the rows stored for those keys that have any.
	LoadExplodeRows(ctx context.Context, t ExplodeTable, keys []FactsKey) (map[FactsKey]*ExplodeRows, error)
	// ChangeExplodeRows applies each change and returns how many rows it
	// deleted, inserted or restamped.
	ChangeExplodeRows(ctx context.Context, t ExplodeTable, changes []ExplodeChange) (int64, error)
	// Generation is the state the transaction began from, as far as the
	// store can vouch for it; ok is false when it cannot (then nothing may
	// be assumed about what the tables hold).
	Generation(ctx context.Context) (g Generation, ok bool, err error)
	SaveCheckpoint(ctx context.Context, cp Checkpoint) error
	// AddQuarantine keeps each entry; one already there is updated only
	// when its error changed (so it keeps when it was first quarantined).
	AddQuarantine(ctx context.Context, entries []QuarantineEntry) error
	DeleteQuarantine(ctx context.Context, stream string, seqs []uint64) error
}

// Status describes a database for `kanade db status`.
type Status struct {
	Kind          Kind          `json:"kind"`
	Location      string        `json:"location"`
	Upstream      bool          `json:"upstream"`
	SchemaVersion int           `json:"schema_version"`
	LatestVersion int           `json:"latest_version"`
	Tables        []TableStatus `json:"tables"`
	// OldTables are the table sets rebuild swaps kept ([] when none).
	OldTables []OldTableSet `json:"old_tables"`
}

// TableStatus is one table's presence and size.
type TableStatus struct {
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	Rows   int64  `json:"rows"`
}

// LockInfo names who holds the writer lock.
type LockInfo struct {
	Holder     string    `json:"holder"` // the command, e.g. "stream replay"
	PID        int       `json:"pid"`
	Host       string    `json:"host"`
	AcquiredAt time.Time `json:"acquired_at"`
}

// HasExec reports whether a row's exec_id names an execution: upstream
// stores NULL for results without one and "" for an ad-hoc run's started
// event, and both mean "no execution".
func HasExec(execID *string) bool { return execID != nil && *execID != "" }

// ErrLocked is returned (wrapped, with the holder) when another writer
// holds the lock.
var ErrLocked = errors.New("database is locked by another kanade writer")

// ErrNoDatabase means a read-only open found no database to read.
var ErrNoDatabase = errors.New("no such database")

// ErrLockLost means a writer's lock went with its database session (a
// server restart, a dropped connection) and another writer took it before
// this one could take it back: the writer stops rather than write beside it.
var ErrLockLost = errors.New("the writer lock was lost")

// ErrNotMigrated means the tables are missing: run `kanade db migrate`.
var ErrNotMigrated = errors.New("database has no kanade tables")

// Projecting is what the projector needs of a store: its dialect (what a
// column can hold) and projection transactions.
type Projecting interface {
	Kind() Kind
	// Project runs fn in one transaction; with rollback set the transaction
	// is rolled back even when fn succeeds (dry runs).
	Project(ctx context.Context, rollback bool, fn func(ProjectionTx) error) error
}

// BatchOverlapper is a store on which two projection transactions may run
// at once, each on a connection of its own (PostgreSQL; SQLite has one
// writer): a replay then begins a batch while the one ahead of it
// finishes (replay's overlapped).
type BatchOverlapper interface {
	OverlapsBatches() bool
}

// Locker takes the writer lock that keeps two replays, or a replay and a
// backfill, from writing at once. release must be called.
type Locker interface {
	Lock(ctx context.Context, holder string) (release func(), err error)
}

// Checkpoints reads a replay's checkpoint (nil, nil when there is none).
type Checkpoints interface {
	LoadCheckpoint(ctx context.Context, name string) (*Checkpoint, error)
}

// Store is a database holding upstream's tables. Consumers take the
// smaller interfaces it is made of (Projecting, Locker, Checkpoints,
// Auditor, Backfiller, Rebuilder, ResultQueries) where those suffice.
type Store interface {
	Projecting
	// Location is the DSN or path with any password removed.
	Location() string
	// Upstream reports whether the database was created by upstream's
	// backend (SQLite's _sqlx_migrations); such a database's own tables
	// are never altered.
	Upstream() bool
	Close()
	Migrate(ctx context.Context) (applied []string, err error)
	// Ready reports ErrNotMigrated when the projected tables are missing.
	Ready(ctx context.Context) error
	Status(ctx context.Context) (*Status, error)
	Locker
	Checkpoints
	ListQuarantine(ctx context.Context, stream string, limit int) ([]QuarantineEntry, error)
	// QuarantinedAt maps those of seqs that kanade_quarantine keeps for
	// stream to when they were kept; a database without the table (one
	// kanade never migrated) keeps none.
	QuarantinedAt(ctx context.Context, stream string, seqs []uint64) (map[uint64]time.Time, error)

	ResultQueries
	Backfiller
	Auditor
	Rebuilder
}

// Fixtures lays a database out and reads it back whole. Tests, the
// benchmarks and the demo use it (the demo lays out legacy rows the way
// upstream's history left them); no command that works on an operator's
// database does, so it is not part of Store. Both stores implement it.
type Fixtures interface {
	// Dump returns every row of the projected tables in primary-key
	// order, for equivalence tests.
	Dump(ctx context.Context) (*Tables, error)
	// Seed writes rows as they are.
	Seed(ctx context.Context, execs []Execution, rows []ResultRow) error
	// ListConflicts returns the rows a backfill archived, oldest first.
	ListConflicts(ctx context.Context, limit int) ([]Conflict, error)
}

// Rows is a result set of either driver (*sql.Rows, pgx.Rows), for the
// reads whose scanning the dialects share.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// BackfillCursorsQuery reads every backfill worker's cursor; ScanCursors
// reads its rows.
const BackfillCursorsQuery = "SELECT name, cursor FROM kanade_backfill_state"

// ScanCursors reads BackfillCursorsQuery's rows into worker name ->
// cursor; the caller closes rows.
func ScanCursors(rows Rows) (map[string]string, error) {
	out := map[string]string{}
	for rows.Next() {
		var n, c string
		if err := rows.Scan(&n, &c); err != nil {
			return nil, fmt.Errorf("read backfill cursors: %w", err)
		}
		out[n] = c
	}
	return out, rows.Err()
}

// Tables is the whole projected state.
type Tables struct {
	Results    []ResultRow
	Executions []Execution
	Inventory  []InventoryFact
	Checks     []CheckRow
	Feeds      []FeedRow
	FeedMeta   []FeedMeta
	History    []HistoryRow // in id order
}

// LegacyRow is a row waiting for its stable result_id (or one that
// collides with such a row), with what the keep rule needs.
type LegacyRow struct {
	Key        any    // how the store addresses the row: result_id, or SQLite's rowid for a NULL id
	ResultID   string // "" for NULL
	RequestID  string
	PCID       string
	ExecID     *string
	ExitCode   *int32
	Finished   bool
	Reaped     bool
	RecordedAt time.Time
}

// Part is worker Index of Of (Of <= 1: all rows).
type Part struct{ Index, Of int }

// Rename gives one legacy row its new id.
type Rename struct {
	Key   any
	NewID string
}

// Victim is a row removed by backfill, archived whole first.
type Victim struct {
	Key    any
	Reason string
	KeptID string // the row that stays in its place
}

// BackfillTx is one backfill batch's transaction.
type BackfillTx interface {
	// LegacyCandidates returns up to limit rows with result_id NULL, "" or
	// equal to request_id, from the cursor on (inclusive) in result_id
	// order.
	// part splits the rows between concurrent workers by a hash of the id.
	LegacyCandidates(ctx context.Context, after string, limit int, part Part) ([]LegacyRow, error)
	// RowsByID returns the rows that exist under these ids.
	RowsByID(ctx context.Context, ids []string) (map[string]LegacyRow, error)
	// ArchiveAndDelete copies each row whole into kanade_backfill_conflicts,
	// then deletes it; it returns how many were archived.
	ArchiveAndDelete(ctx context.Context, victims []Victim) (int64, error)
	RenameResults(ctx context.Context, renames []Rename) (int64, error)
	// BumpExecutions (deltas may be negative) recomputes status as the
	// projector does.
	BumpExecutions(ctx context.Context, deltas []CounterDelta) ([]string, error)
	SaveBackfillCursor(ctx context.Context, name, cursor string) error
	ClearBackfillCursor(ctx context.Context, name string) error
}

// Backfiller is implemented by both stores.
type Backfiller interface {
	// Backfill runs fn in one transaction with the store's short lock and
	// statement timeouts; rollback as in Project.
	Backfill(ctx context.Context, rollback bool, fn func(BackfillTx) error) error
	// BackfillCursors are where an interrupted run's workers stopped, by
	// worker name (empty when no run was interrupted).
	BackfillCursors(ctx context.Context) (map[string]string, error)
	// BackfillParallel reports whether concurrent backfill workers help
	// (PostgreSQL) or only queue on one writer lock (SQLite).
	BackfillParallel() bool
	// BackfillStatements lists the SQL of one batch, for --show-sql.
	BackfillStatements() []string
}

// Conflict is one archived row.
type Conflict struct {
	ResultID   string    `json:"result_id"`
	RequestID  string    `json:"request_id"`
	PCID       string    `json:"pc_id"`
	Reason     string    `json:"reason"`
	KeptID     string    `json:"kept_result_id"`
	RowJSON    string    `json:"row"`
	ArchivedAt time.Time `json:"archived_at"`
}

// StoredText is s as a store of kind k keeps it: PostgreSQL cannot hold
// U+0000 in text, so each becomes U+FFFD there (the one documented change).
func (k Kind) StoredText(s string) string {
	if k == Postgres && strings.IndexByte(s, 0) >= 0 {
		return strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// CheckTime reports why a store of kind k cannot hold t, or nil. chrono
// accepts years from -262143 to 262142; PostgreSQL's timestamptz holds
// 4713 BC (year -4712) to 294276 AD, so a payload outside it is
// quarantined there rather than lost or shifted.
func (k Kind) CheckTime(t time.Time) error {
	if k == Postgres {
		if y := t.UTC().Year(); y < -4712 || y > 294276 {
			return fmt.Errorf("is in year %d, outside PostgreSQL's timestamp range (4713 BC to 294276 AD); upstream's SQLite file would hold it", y)
		}
	}
	return nil
}

// TimePrecision is the finest time a store of kind k keeps.
func (k Kind) TimePrecision() time.Duration {
	if k == Postgres {
		return time.Microsecond
	}
	return time.Nanosecond
}

// ShadowDiff compares the live tables with a rebuilt shadow copy.
type ShadowDiff struct {
	LiveRows        int64         `json:"live_rows"`
	ShadowRows      int64         `json:"shadow_rows"`
	Carried         int64         `json:"carried_over_rows"`
	OnlyLive        int64         `json:"rows_only_live"`
	OnlyShadow      int64         `json:"rows_only_rebuilt"`
	Changed         int64         `json:"rows_that_would_change"`
	SampleChanged   []string      `json:"sample_changed_result_ids"`
	SampleOnlyLive  []string      `json:"sample_only_live_result_ids"`
	ExecutionsDiff  int64         `json:"executions_with_other_counters"`
	SampleCounters  []CounterPair `json:"sample_counters"`
	InventoryLive   int64         `json:"inventory_live"`
	InventoryShadow int64         `json:"inventory_rebuilt"`
	ChecksLive      int64         `json:"check_status_live"`
	ChecksShadow    int64         `json:"check_status_rebuilt"`
	FeedRowsLive    int64         `json:"feed_rows_live"`
	FeedRowsShadow  int64         `json:"feed_rows_rebuilt"`
	HistoryToAdd    int64         `json:"history_rows_to_add"`
	ExplodeTables   int64         `json:"explode_tables_rebuilt"`
}

// CarryOverSQL copies into the shadow tables the current-state rows the
// stream cannot reproduce, those recorded before its first message ($1):
// the same SQL on every engine. A feed's rows go with its watermark.
var CarryOverSQL = []struct{ Table, SQL string }{
	{"inventory_facts", "INSERT INTO kanade_shadow_inventory_facts SELECT * FROM inventory_facts WHERE recorded_at < $1"},
	{"check_status", "INSERT INTO kanade_shadow_check_status SELECT * FROM check_status WHERE recorded_at < $1"},
	{"feed_meta", "INSERT INTO kanade_shadow_feed_meta SELECT * FROM feed_meta WHERE recorded_at < $1"},
	{"feeds", "INSERT INTO kanade_shadow_feeds SELECT f.* FROM feeds f JOIN feed_meta m ON m.feed_id = f.feed_id WHERE m.recorded_at < $1"},
}

// DiffCount is one count a shadow diff takes, from one table.
type DiffCount struct {
	Table string // the live table it needs
	Dst   *int64
	SQL   string
}

// DerivedDiffCounts are the counts of the derived tables, the same SQL on
// every engine but for how times compare (see NewHistory).
func DerivedDiffCounts(d *ShadowDiff, at func(column string) string) []DiffCount {
	return []DiffCount{
		{"check_status", &d.ChecksLive, "SELECT count(*) FROM check_status"},
		{"check_status", &d.ChecksShadow, "SELECT count(*) FROM kanade_shadow_check_status"},
		{"feeds", &d.FeedRowsLive, "SELECT count(*) FROM feeds"},
		{"feeds", &d.FeedRowsShadow, "SELECT count(*) FROM kanade_shadow_feeds"},
		{"inventory_history", &d.HistoryToAdd, "SELECT count(*) " + newHistory(at)},
	}
}

// newHistory selects the rebuilt history rows of inventory writes the
// live tables show no sign of having projected: none of the PC's facts
// for the job, and none of its history rows, are as recent. The live
// history holds the others (upstream wrote them when it projected those
// writes, stamped with its clock, which is never earlier than the
// publish time), and history is never written twice. at wraps a time
// column: upstream's SQLite history holds CURRENT_TIMESTAMP text, which
// does not compare as text with the RFC 3339 shape.
func newHistory(at func(string) string) string {
	return `FROM kanade_shadow_inventory_history h
	WHERE NOT EXISTS (SELECT 1 FROM inventory_facts f WHERE f.pc_id = h.pc_id AND f.job_id = h.job_id AND ` + at("f.recorded_at") + ` >= ` + at("h.observed_at") + `)
	AND NOT EXISTS (SELECT 1 FROM inventory_history l WHERE l.pc_id = h.pc_id AND l.job_id = h.job_id AND ` + at("l.observed_at") + ` >= ` + at("h.observed_at") + `)`
}

// AppendRebuiltHistorySQL appends those rows to the live history, in the
// order they were written; it runs before the swap, while inventory_facts
// is still the live table.
func AppendRebuiltHistorySQL(at func(string) string) string {
	return `INSERT INTO inventory_history (pc_id, job_id, field_path, identity_json, change_kind, before_json, after_json, observed_at)
	SELECT h.pc_id, h.job_id, h.field_path, h.identity_json, h.change_kind, h.before_json, h.after_json, h.observed_at ` + newHistory(at) + ` ORDER BY h.id`
}

// CounterPair is one execution's counters live and rebuilt.
type CounterPair struct {
	ExecID string `json:"exec_id"`
	Live   string `json:"live"`
	Shadow string `json:"rebuilt"`
}

// Rebuilder projects into shadow copies of the projected tables and swaps
// them in. Every shadow table is named kanade_shadow_<table>; a swap keeps
// the replaced tables as kanade_old_<unix time>_<table>. The append-only
// history is not swapped: the swap appends the rebuilt rows it lacks.
type Rebuilder interface {
	// CreateShadow makes empty shadow tables shaped like the live ones and
	// carries over what the stream cannot produce: rows recorded before
	// carryBefore (its first message), rows in flight (EVENTS made them)
	// and reaped placeholders (the reaper did), and the current-state rows
	// (inventory facts, check status, feeds) recorded before carryBefore;
	// executions' counters start from the carried rows. It returns how many
	// result rows were carried.
	CreateShadow(ctx context.Context, carryBefore time.Time) (int64, error)
	// ProjectShadow is Project against the shadow tables.
	ProjectShadow(ctx context.Context, fn func(ProjectionTx) error) error
	DiffShadow(ctx context.Context, sample int) (*ShadowDiff, error)
	// SwapShadow makes the shadow tables live in one transaction and
	// returns the prefix the old tables were kept under. On an error it
	// still returns the prefix once it has chosen one: a swap whose commit
	// was lost with its connection may have happened, and Swapped tells.
	SwapShadow(ctx context.Context) (string, error)
	// Swapped says whether the swap that chose prefix committed: the old
	// tables stand under it exactly then, since each swap's prefix is new.
	Swapped(ctx context.Context, prefix string) (bool, error)
	DropShadow(ctx context.Context) error
	// OldTables lists the table sets swaps kept, oldest first.
	OldTables(ctx context.Context) ([]OldTableSet, error)
	// DropOldTables drops the tables a swap kept under prefix, in one
	// transaction, and returns their names; a prefix that names no kept
	// table is an error.
	DropOldTables(ctx context.Context, prefix string) ([]string, error)
}

// ShadowPrefix names a rebuild's shadow table: kanade_shadow_<table>.
const ShadowPrefix = "kanade_shadow_"

// ShadowNames rewrites a statement's table names to the shadow tables'.
var ShadowNames = func() *strings.Replacer {
	var pairs []string
	for _, t := range append(append([]string{}, ProjectedTables...), AppendOnlyTables...) {
		pairs = append(pairs, t, ShadowPrefix+t)
	}
	return strings.NewReplacer(pairs...)
}()

// OldTableSet is the tables one rebuild swap replaced, kept under one
// prefix (kanade_old_<unix time>_) until an operator drops them.
type OldTableSet struct {
	Prefix    string    `json:"prefix"`
	SwappedAt time.Time `json:"swapped_at"`
	Tables    []string  `json:"tables"`
	Rows      int64     `json:"rows"`
}

// GroupOldTables groups the names of kept tables by their swap's prefix,
// oldest swap first, with count's row counts; other names are skipped.
func GroupOldTables(names []string, count func(table string) (int64, error)) ([]OldTableSet, error) {
	names = slices.Sorted(slices.Values(names))
	out := []OldTableSet{}
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, "kanade_old_")
		digits, table, found := strings.Cut(rest, "_")
		if !ok || !found || table == "" || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		sec, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			continue
		}
		rows, err := count(n)
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", n, err)
		}
		prefix := "kanade_old_" + digits + "_"
		if len(out) == 0 || out[len(out)-1].Prefix != prefix {
			out = append(out, OldTableSet{Prefix: prefix, SwappedAt: time.Unix(sec, 0).UTC(), Tables: []string{}})
		}
		set := &out[len(out)-1]
		set.Tables = append(set.Tables, n)
		set.Rows += rows
	}
	slices.SortStableFunc(out, func(a, b OldTableSet) int { return a.SwappedAt.Compare(b.SwappedAt) })
	return out, nil
}

// OldTablesOf returns, of the table names a schema holds, those of the set
// kept under prefix, without counting any rows (a drop needs none); where
// names the database for the error when there is none.
func OldTablesOf(names []string, prefix, where string) ([]string, error) {
	sets, err := GroupOldTables(names, func(string) (int64, error) { return 0, nil })
	if err != nil {
		return nil, err
	}
	for _, o := range sets {
		if o.Prefix == prefix {
			return o.Tables, nil
		}
	}
	return nil, fmt.Errorf("no tables kept under %s* in %s", prefix, where)
}

// OldTablesPrefix is the prefix a swap keeps the replaced tables under:
// kanade_old_<unix time>_, a second later when that name is taken (two
// swaps within one second).
func OldTablesPrefix(now time.Time, exists func(table string) (bool, error)) (string, error) {
	for sec := now.Unix(); ; sec++ {
		prefix := fmt.Sprintf("kanade_old_%d_", sec)
		taken, err := exists(prefix + "execution_results")
		if err != nil {
			return "", err
		}
		if !taken {
			return prefix, nil
		}
	}
}
