package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ExecResult is one run of one command on one PC, as an agent publishes it
// on results.<request_id>. Optional keys are pointers so that "absent" and
// "empty" stay distinct and the encoder can reproduce either.
type ExecResult struct {
	ResultID       string // "" when a pre-v0.29 agent sent none
	RequestID      string
	ExecID         *string
	ParentResultID *string
	PCID           string
	ExitCode       int32
	Skipped        bool
	Stdout         string
	Stderr         string
	StartedAt      time.Time
	FinishedAt     time.Time
	StdoutObject   *string
	StderrObject   *string
	ManifestID     *string
	CollectObject  *string
}

// DecodeError says which field of a payload was wrong and why.
type DecodeError struct {
	Field  string // "" when the payload is not a JSON object at all
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "decode: " + e.Reason
	}
	return fmt.Sprintf("decode: field %q: %s", e.Field, e.Reason)
}

// rawExecResult mirrors serde's view: required keys must be present, the
// optional ones may be absent or null, unknown keys are ignored.
type rawExecResult struct {
	ResultID       *string `json:"result_id"`
	RequestID      *string `json:"request_id"`
	ExecID         *string `json:"exec_id"`
	ParentResultID *string `json:"parent_result_id"`
	PCID           *string `json:"pc_id"`
	ExitCode       *int32  `json:"exit_code"`
	Skipped        *bool   `json:"skipped"`
	Stdout         *string `json:"stdout"`
	Stderr         *string `json:"stderr"`
	StartedAt      *string `json:"started_at"`
	FinishedAt     *string `json:"finished_at"`
	StdoutObject   *string `json:"stdout_object"`
	StderrObject   *string `json:"stderr_object"`
	ManifestID     *string `json:"manifest_id"`
	CollectObject  *string `json:"collect_object"`
}

// DecodeExecResult decodes a payload of any upstream agent version.
func DecodeExecResult(data []byte) (*ExecResult, error) {
	var raw rawExecResult
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonError(err)
	}
	r := &ExecResult{
		ExecID:         raw.ExecID,
		ParentResultID: raw.ParentResultID,
		StdoutObject:   raw.StdoutObject,
		StderrObject:   raw.StderrObject,
		ManifestID:     raw.ManifestID,
		CollectObject:  raw.CollectObject,
	}
	if raw.ResultID != nil {
		r.ResultID = *raw.ResultID
	}
	var err error
	if r.RequestID, err = required("request_id", raw.RequestID); err != nil {
		return nil, err
	}
	if r.PCID, err = required("pc_id", raw.PCID); err != nil {
		return nil, err
	}
	if raw.ExitCode == nil {
		return nil, &DecodeError{Field: "exit_code", Reason: "missing (every agent version sends it)"}
	}
	r.ExitCode = *raw.ExitCode
	if raw.Skipped != nil {
		r.Skipped = *raw.Skipped
	}
	if r.Stdout, err = required("stdout", raw.Stdout); err != nil {
		return nil, err
	}
	if r.Stderr, err = required("stderr", raw.Stderr); err != nil {
		return nil, err
	}
	if r.StartedAt, err = requiredTime("started_at", raw.StartedAt); err != nil {
		return nil, err
	}
	if r.FinishedAt, err = requiredTime("finished_at", raw.FinishedAt); err != nil {
		return nil, err
	}
	return r, nil
}

func required(field string, v *string) (string, error) {
	if v == nil {
		return "", &DecodeError{Field: field, Reason: "missing or null (every agent version sends it)"}
	}
	return *v, nil
}

func requiredTime(field string, v *string) (time.Time, error) {
	s, err := required(field, v)
	if err != nil {
		return time.Time{}, err
	}
	t, err := ParseTimestamp(s)
	if err != nil {
		return time.Time{}, &DecodeError{Field: field, Reason: err.Error()}
	}
	return t, nil
}

func optionalTime(field string, v *string) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := ParseTimestamp(*v)
	if err != nil {
		return nil, &DecodeError{Field: field, Reason: err.Error()}
	}
	return &t, nil
}

// jsonError turns encoding/json's errors into a DecodeError naming the field.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return &DecodeError{Reason: fmt.Sprintf("payload is a JSON %s, not an object", te.Value)}
		}
		return &DecodeError{Field: field, Reason: fmt.Sprintf("JSON %s where %s was expected", te.Value, goTypeName(te.Type.String()))}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &DecodeError{Reason: fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, se.Error())}
	}
	return &DecodeError{Reason: err.Error()}
}

func goTypeName(t string) string {
	switch t {
	case "string", "*string":
		return "a string"
	case "int32", "*int32":
		return "a 32-bit integer"
	case "bool", "*bool":
		return "true or false"
	default:
		return t
	}
}

// Encode writes the exact bytes an upstream agent (serde_json) would.
func (r *ExecResult) Encode() []byte {
	b := make([]byte, 0, 256+len(r.Stdout)+len(r.Stderr))
	b = append(b, '{')
	first := true
	if r.ResultID != "" {
		b = appendKeyString(b, &first, "result_id", r.ResultID)
	}
	b = appendKeyString(b, &first, "request_id", r.RequestID)
	b = appendOptString(b, &first, "exec_id", r.ExecID)
	b = appendOptString(b, &first, "parent_result_id", r.ParentResultID)
	b = appendKeyString(b, &first, "pc_id", r.PCID)
	b = appendKey(b, &first, "exit_code")
	b = strconv.AppendInt(b, int64(r.ExitCode), 10)
	if r.Skipped {
		b = appendKey(b, &first, "skipped")
		b = append(b, "true"...)
	}
	b = appendKeyString(b, &first, "stdout", r.Stdout)
	b = appendKeyString(b, &first, "stderr", r.Stderr)
	b = appendKeyTime(b, &first, "started_at", r.StartedAt)
	b = appendKeyTime(b, &first, "finished_at", r.FinishedAt)
	b = appendOptString(b, &first, "stdout_object", r.StdoutObject)
	b = appendOptString(b, &first, "stderr_object", r.StderrObject)
	b = appendOptString(b, &first, "manifest_id", r.ManifestID)
	b = appendOptString(b, &first, "collect_object", r.CollectObject)
	return append(b, '}')
}

// Str returns a pointer to s, for the optional fields.
func Str(s string) *string { return &s }

// Deref returns *p, or "" when p is nil.
func Deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
