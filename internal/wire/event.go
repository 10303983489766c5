package wire

import (
	"encoding/json"
	"time"
)

// EventStarted is published on events.started.<exec_id>.<pc_id> when an
// agent spawns a script; the projector turns it into an in-flight row that
// the matching ExecResult later completes (they share result_id).
type EventStarted struct {
	ResultID   string
	RequestID  string
	ExecID     string
	PCID       string
	StartedAt  time.Time
	ManifestID string
	Version    string
	ExpiresAt  *time.Time // newer agents: when the backend may reap the row
}

type rawEventStarted struct {
	ResultID   *string `json:"result_id"`
	RequestID  *string `json:"request_id"`
	ExecID     *string `json:"exec_id"`
	PCID       *string `json:"pc_id"`
	StartedAt  *string `json:"started_at"`
	ManifestID *string `json:"manifest_id"`
	Version    *string `json:"version"`
	ExpiresAt  *string `json:"expires_at"`
}

// DecodeEventStarted decodes a started event. Without result_id an event
// cannot be tied to its result, so it is an error rather than a guess.
func DecodeEventStarted(data []byte) (*EventStarted, error) {
	var raw rawEventStarted
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonError(err)
	}
	e := &EventStarted{RequestID: Deref(raw.RequestID), ManifestID: Deref(raw.ManifestID), Version: Deref(raw.Version)}
	var err error
	if e.ResultID, err = required("result_id", raw.ResultID); err != nil {
		return nil, err
	}
	if e.ExecID, err = required("exec_id", raw.ExecID); err != nil {
		return nil, err
	}
	if e.PCID, err = required("pc_id", raw.PCID); err != nil {
		return nil, err
	}
	if e.StartedAt, err = requiredTime("started_at", raw.StartedAt); err != nil {
		return nil, err
	}
	if e.ExpiresAt, err = optionalTime("expires_at", raw.ExpiresAt); err != nil {
		return nil, err
	}
	return e, nil
}

// Encode writes the event as an agent would.
func (e *EventStarted) Encode() []byte {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	first := true
	b = appendKeyString(b, &first, "result_id", e.ResultID)
	b = appendKeyString(b, &first, "request_id", e.RequestID)
	b = appendKeyString(b, &first, "exec_id", e.ExecID)
	b = appendKeyString(b, &first, "pc_id", e.PCID)
	b = appendKeyTime(b, &first, "started_at", e.StartedAt)
	b = appendKeyString(b, &first, "manifest_id", e.ManifestID)
	b = appendKeyString(b, &first, "version", e.Version)
	if e.ExpiresAt != nil {
		b = appendKeyTime(b, &first, "expires_at", *e.ExpiresAt)
	}
	return append(b, '}')
}
