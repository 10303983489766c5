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
	Skipped        *bool // nil when absent or null (agents before the key existed)
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
	Field  string // "" when the payload as a whole is not an object upstream reads
	Offset int    // the byte where it went wrong; -1 when a field is missing
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "decode: " + e.Reason
	}
	return fmt.Sprintf("decode: field %q %s", e.Field, e.Reason)
}

// execResultFields is upstream's struct, in its declaration order (which
// a payload sent as a JSON array follows) with its serde attributes.
var execResultFields = []fieldSpec{
	{name: "result_id", kind: kString, optional: true},
	{name: "request_id", kind: kString},
	{name: "exec_id", kind: kOptString, optional: true},
	{name: "parent_result_id", kind: kOptString, optional: true},
	{name: "pc_id", kind: kString},
	{name: "exit_code", kind: kInt32},
	{name: "skipped", kind: kOptBool, optional: true},
	{name: "stdout", kind: kString},
	{name: "stderr", kind: kString},
	{name: "started_at", kind: kTime},
	{name: "finished_at", kind: kTime},
	{name: "stdout_object", kind: kOptString, optional: true},
	{name: "stderr_object", kind: kOptString, optional: true},
	{name: "manifest_id", kind: kOptString, optional: true},
	{name: "collect_object", kind: kOptString, optional: true},
}

// DecodeExecResult decodes a payload of any upstream agent version, and
// accepts exactly what upstream's serde_json accepts (serde.go).
func DecodeExecResult(data []byte) (*ExecResult, error) {
	var v [15]fieldValue
	if err := decodeStruct(data, execResultFields, v[:]); err != nil {
		return nil, err
	}
	r := &ExecResult{
		ResultID:       v[0].str,
		RequestID:      v[1].str,
		ExecID:         v[2].optString(),
		ParentResultID: v[3].optString(),
		PCID:           v[4].str,
		ExitCode:       v[5].i32,
		Stdout:         v[7].str,
		Stderr:         v[8].str,
		StartedAt:      v[9].t,
		FinishedAt:     v[10].t,
		StdoutObject:   v[11].optString(),
		StderrObject:   v[12].optString(),
		ManifestID:     v[13].optString(),
		CollectObject:  v[14].optString(),
	}
	if v[6].set && !v[6].null {
		b := v[6].b
		r.Skipped = &b
	}
	return r, nil
}

func (v *fieldValue) optString() *string {
	if !v.set || v.null {
		return nil
	}
	s := v.str
	return &s
}

// IsSkipped reports whether the agent marked the run a skip (skipped: true).
func (r *ExecResult) IsSkipped() bool { return r.Skipped != nil && *r.Skipped }

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
	if r.Skipped != nil {
		b = appendKey(b, &first, "skipped")
		b = strconv.AppendBool(b, *r.Skipped)
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

// Bool returns a pointer to b, for Skipped.
func Bool(b bool) *bool { return &b }
