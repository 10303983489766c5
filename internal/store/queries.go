package store

import (
	"context"
	"time"
)

// ResultFilter selects execution_results rows. At least one of ExecID,
// RequestID or ResultID is set; PCs narrows further.
type ResultFilter struct {
	ExecID    string
	RequestID string
	ResultID  string
	PCs       []string
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

// ListRow is one execution or ad-hoc request with its counts.
type ListRow struct {
	Key          string // exec_id when set, else request_id
	ExecID       *string
	RequestID    string // one request id (a deployment may have several)
	JobID        *string
	FirstStarted time.Time
	LastRecorded time.Time
	Reported     int64
	Succeeded    int64
	Failed       int64
	Skipped      int64
	InFlight     int64
	Reaped       int64
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
