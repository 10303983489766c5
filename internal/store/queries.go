package store

import (
	"context"
	"fmt"
	"time"
)

// ResultFilter selects execution_results rows. At least one of ExecID,
// RequestID or ResultID is set; PCs narrows further.
type ResultFilter struct {
	ExecID    string
	RequestID string
	// RequestIDSet selects by RequestID even when it is "" (a stored row
	// may have an empty request_id); otherwise "" means "any".
	RequestIDSet bool
	ResultID     string
	PCs          []string
}

// ListFilter selects the groups `results list` shows.
type ListFilter struct {
	PCs      []string
	Manifest string
	Since    *time.Time
	Until    *time.Time
	Failed   bool // only groups with at least one failed run
	Limit    int
	After    *ListCursor // keyset: strictly older than this
}

// ListCursor is the keyset position of a ListRow.
type ListCursor struct {
	LastRecorded time.Time
	Key          string
}

// ListRow is one request: a deployment's command (its rows carry the
// exec_id; pre-v0.29 agents' answers do not but share the request_id) or an
// ad-hoc run, with its counts.
type ListRow struct {
	Key          string // the request_id
	ExecID       *string
	RequestID    string
	JobID        *string
	FirstStarted time.Time
	LastRecorded time.Time
	Reported     int64
	Succeeded    int64
	Failed       int64
	Skipped      int64
	InFlight     int64
	Reaped       int64
	Untagged     int64 // PCs with a row that carries no exec_id
	PCs          int64
	Execution    *Execution
}

// ResultQueries are the read paths of `results show` and `results list`.
type ResultQueries interface {
	FindResults(ctx context.Context, f ResultFilter) ([]ResultRow, error)
	// GetExecution returns nil, nil when there is no such execution.
	GetExecution(ctx context.Context, execID string) (*Execution, error)
	ListGroups(ctx context.Context, f ListFilter) ([]ListRow, error)
}

// ExecutionFacts is an execution with what its rows say, for the audit.
type ExecutionFacts struct {
	Execution
	RowsSuccess int64 // finished, not reaped, exit 0
	RowsFailure int64 // finished, not reaped, exit != 0; plus reaped rows (the reaper counts them)
	TaggedPCs   int64 // distinct PCs with a finished row under the exec_id
	// ReportedPCs and LastFinished: for a running execution, those PCs and
	// the ones that answered its requests without the exec_id; for the
	// others, TaggedPCs and their newest finished_at.
	ReportedPCs  int64
	LastFinished *time.Time
}

// UntaggedPCs are the PCs that answered only without the exec_id (agents
// older than v0.29): upstream's counters never count them.
func (f ExecutionFacts) UntaggedPCs() int64 { return max(f.ReportedPCs-f.TaggedPCs, 0) }

// ResultRef names one row for a finding.
type ResultRef struct {
	ResultID  string
	RequestID string
	ExecID    *string
	PCID      string
	StartedAt time.Time
	ExpiresAt *time.Time
}

// DuplicatePair is a (request_id, pc_id) with more than one row.
type DuplicatePair struct {
	RequestID string
	PCID      string
	ResultIDs []string
}

// Auditor holds the audit's read-only queries and its one repair.
type Auditor interface {
	ExecutionFacts(ctx context.Context) ([]ExecutionFacts, error)
	// Each list returns at most limit items and the total count.
	LegacyRows(ctx context.Context, limit int) ([]ResultRef, int64, error)
	DuplicatePairs(ctx context.Context, limit int) ([]DuplicatePair, int64, error)
	OrphanResults(ctx context.Context, limit int) ([]ResultRef, int64, error)
	// UnreapedInFlight: in flight past expires_at, or started before
	// cutoff when expires_at is NULL.
	UnreapedInFlight(ctx context.Context, now, cutoff time.Time, limit int) ([]ResultRef, int64, error)
	// FixCounters reads every execution's facts in one transaction, asks
	// decide for new counters and status, writes those it changed and
	// returns their facts as they were before.
	FixCounters(ctx context.Context, decide func(ExecutionFacts) (Execution, bool)) ([]ExecutionFacts, error)
	// ResultsByID returns the rows under these ids.
	ResultsByID(ctx context.Context, ids []string) (map[string]ResultRow, error)
	// DerivedStamps returns the recorded_at of the derived rows under these
	// keys that exist; a table the database lacks has a nil map.
	DerivedStamps(ctx context.Context, k DerivedKeys) (*DerivedStamps, error)
}

// DerivedKeys name current-state derived rows: inventory facts by (PC,
// job), check status by (PC, check), feeds by id (their feed_meta row).
type DerivedKeys struct {
	Facts  []FactsKey
	Checks []CheckKey
	Feeds  []string
}

// CheckKey addresses one check_status row.
type CheckKey struct{ PCID, CheckName string }

// DerivedStamps are the recorded_at of the rows DerivedKeys named.
type DerivedStamps struct {
	Facts  map[FactsKey]time.Time
	Checks map[CheckKey]time.Time
	Feeds  map[string]time.Time
}

// FixCountersSQL sets an execution's counters and status; placeholders
// $1..$4 are exec_id, success_count, failure_count and status.
const FixCountersSQL = "UPDATE executions SET success_count = $2, failure_count = $3, status = $4 WHERE exec_id = $1"

// ApplyCounterFixes is FixCounters' loop, the same on every engine: each
// execution decide wants changed is written with update (the statement
// FixCountersSQL), and returned as it was.
func ApplyCounterFixes(facts []ExecutionFacts, decide func(ExecutionFacts) (Execution, bool), update func(args ...any) error) ([]ExecutionFacts, error) {
	var changed []ExecutionFacts
	for _, f := range facts {
		next, ok := decide(f)
		if !ok {
			continue
		}
		if err := update(f.ExecID, next.SuccessCount, next.FailureCount, next.Status); err != nil {
			return changed, fmt.Errorf("fix counters of %s: %w", f.ExecID, err)
		}
		changed = append(changed, f)
	}
	return changed, nil
}
