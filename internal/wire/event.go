package wire

import "time"

// EventStarted is published on events.started.<exec_id>.<pc_id> when an
// agent spawns a script; the projector turns it into an in-flight row that
// the matching ExecResult later completes (they share result_id). The
// deadline (expires_at) is not on the wire: the projector computes it from
// the manifest's execute.timeout.
type EventStarted struct {
	ResultID   string // "" from agents before v0.30's result_id
	RequestID  string
	ExecID     string // "" for an ad-hoc run
	PCID       string
	StartedAt  time.Time
	ManifestID string
	Version    string
}

// eventStartedFields is upstream's struct with its serde attributes:
// result_id and request_id came later and default to "".
var eventStartedFields = []fieldSpec{
	{name: "result_id", kind: kString, optional: true},
	{name: "request_id", kind: kString, optional: true},
	{name: "exec_id", kind: kString},
	{name: "pc_id", kind: kString},
	{name: "started_at", kind: kTime},
	{name: "manifest_id", kind: kString},
	{name: "version", kind: kString},
}

// DecodeEventStarted decodes a started event by serde's rules (serde.go).
func DecodeEventStarted(data []byte) (*EventStarted, error) {
	var v [7]fieldValue
	if err := decodeStruct(data, eventStartedFields, v[:]); err != nil {
		return nil, err
	}
	return &EventStarted{ResultID: v[0].str, RequestID: v[1].str, ExecID: v[2].str, PCID: v[3].str,
		StartedAt: v[4].t, ManifestID: v[5].str, Version: v[6].str}, nil
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
	return append(b, '}')
}
