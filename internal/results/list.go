package results

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// ListOptions select `results list` rows.
type ListOptions struct {
	Filter store.ListFilter
	Status string // running, completed, pending, expired: the group's status
	After  string // cursor printed by the previous page
}

// ListStatuses are the values --status accepts.
var ListStatuses = []string{"pending", "running", "completed", "expired"}

// Item is one execution or ad-hoc request. Field names are stable.
type Item struct {
	Kind        string     `json:"kind"` // deployment or adhoc
	ExecID      *string    `json:"exec_id"`
	RequestID   string     `json:"request_id"`
	ManifestID  *string    `json:"manifest_id"`
	Version     *string    `json:"version"`
	InitiatedBy *string    `json:"initiated_by"`
	StartedAt   time.Time  `json:"started_at"`
	LastAt      time.Time  `json:"last_recorded_at"`
	Status      string     `json:"status"`
	Target      *int64     `json:"target"`
	Reported    int64      `json:"reported"`
	Succeeded   int64      `json:"succeeded"`
	Failed      int64      `json:"failed"`
	Skipped     int64      `json:"skipped"`
	InFlight    int64      `json:"in_flight"`
	Reaped      int64      `json:"reaped"`
	Missing     *int64     `json:"missing"`
	InitiatedAt *time.Time `json:"initiated_at"`
	// Untagged counts a deployment's PCs that answered without its exec_id
	// (agents older than v0.29): upstream's counters and status leave them
	// out, so "running" can stand beside every PC reported. 0 for ad-hoc.
	Untagged int64 `json:"untagged"`
}

// Page is one page of the list and the cursor of the next ("" at the end).
type Page struct {
	Items     []Item `json:"items"`
	NextAfter string `json:"next_after"`
	// NextCommand is the command that shows the next page: this one's
	// filters and --after NextAfter (printed on stderr, not in the schema).
	NextCommand string `json:"-"`
}

// EncodeCursor and DecodeCursor make the keyset position an opaque token.
func EncodeCursor(c store.ListCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.LastRecorded.UTC().Format(time.RFC3339Nano) + "|" + c.Key))
}

func DecodeCursor(s string) (*store.ListCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		ts, key, ok := strings.Cut(string(raw), "|")
		if t, terr := time.Parse(time.RFC3339Nano, ts); ok && terr == nil {
			return &store.ListCursor{LastRecorded: t, Key: key}, nil
		}
	}
	return nil, fmt.Errorf("--after %q is not a cursor printed by `kanade results list`", s)
}

// List returns newest-first executions and ad-hoc requests. A --status
// filter is applied after grouping, so pages are fetched until the limit
// is filled or the table ends.
func List(ctx context.Context, q store.ResultQueries, o ListOptions) (*Page, error) {
	f := o.Filter
	if f.Limit <= 0 {
		f.Limit = 50
	}
	limit := f.Limit
	if o.After != "" {
		c, err := DecodeCursor(o.After)
		if err != nil {
			return nil, err
		}
		f.After = c
	}
	page := &Page{Items: []Item{}}
	for {
		rows, err := q.ListGroups(ctx, f)
		if err != nil {
			return nil, err
		}
		for i, r := range rows {
			it := toItem(r)
			if o.Status == "" || it.Status == o.Status {
				page.Items = append(page.Items, it)
			}
			if len(page.Items) == limit {
				if i < len(rows)-1 || len(rows) == f.Limit {
					page.NextAfter = EncodeCursor(store.ListCursor{LastRecorded: r.LastRecorded, Key: r.Key})
				}
				return page, nil
			}
		}
		if len(rows) < f.Limit {
			return page, nil
		}
		last := rows[len(rows)-1]
		f.After = &store.ListCursor{LastRecorded: last.LastRecorded, Key: last.Key}
	}
}

func toItem(r store.ListRow) Item {
	it := Item{Kind: "adhoc", ExecID: r.ExecID, RequestID: r.RequestID, ManifestID: r.JobID, StartedAt: r.FirstStarted.UTC(),
		LastAt: r.LastRecorded.UTC(), Reported: r.PCs, Succeeded: r.Succeeded, Failed: r.Failed, Skipped: r.Skipped,
		InFlight: r.InFlight, Reaped: r.Reaped}
	if r.InFlight > 0 {
		it.Status = "running"
	} else {
		it.Status = "completed"
	}
	if e := r.Execution; e != nil {
		it.Kind = "deployment"
		it.ManifestID, it.Version, it.InitiatedBy, it.Status = &e.JobID, &e.Version, &e.InitiatedBy, e.Status
		at := e.InitiatedAt.UTC()
		it.InitiatedAt = &at
		it.Target = &e.TargetCount
		m := max(e.TargetCount-r.PCs, 0)
		it.Missing = &m
	} else if store.HasExec(r.ExecID) {
		it.Kind = "deployment"
	}
	if it.Kind == "deployment" {
		it.Untagged = r.Untagged
	}
	return it
}
