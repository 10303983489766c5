package wire

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"
)

// SerdeVector is one line of testdata/serde_vectors.jsonl: a payload and
// what serde_json and chrono made of it.
type SerdeVector struct {
	Name             string  `json:"name"`
	PayloadB64       string  `json:"payload_b64"`
	OK               bool    `json:"ok"`
	Error            string  `json:"error"`
	ResultID         string  `json:"result_id"`
	ResultIDStored   string  `json:"result_id_stored"`
	RequestID        string  `json:"request_id"`
	ExecID           *string `json:"exec_id"`
	ParentResultID   *string `json:"parent_result_id"`
	PCID             string  `json:"pc_id"`
	ExitCode         int32   `json:"exit_code"`
	Skipped          *bool   `json:"skipped"`
	Stdout           string  `json:"stdout"`
	Stderr           string  `json:"stderr"`
	StartedNS        string  `json:"started_at_utc_ns"`
	FinishedNS       string  `json:"finished_at_utc_ns"`
	StartedSQLite    string  `json:"started_at_sqlite"`
	FinishedSQLite   string  `json:"finished_at_sqlite"`
	StdoutObject     *string `json:"stdout_object"`
	StderrObject     *string `json:"stderr_object"`
	ManifestID       *string `json:"manifest_id"`
	CollectObject    *string `json:"collect_object"`
	SignatureRefusal string  `json:"signature_refused_id"`
}

// Payload is the raw bytes serde was given.
func (v *SerdeVector) Payload() []byte {
	b, err := base64.StdEncoding.DecodeString(v.PayloadB64)
	if err != nil {
		panic(v.Name + ": " + err.Error())
	}
	return b
}

func loadSerdeVectors(t testing.TB) []SerdeVector {
	t.Helper()
	f, err := os.Open(vectors("serde_vectors.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []SerdeVector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v SerdeVector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("vector line %d: %v", len(out)+1, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 356 {
		t.Fatalf("want the 356 serde vectors, read %d", len(out))
	}
	return out
}

// utcNanos is t as nanoseconds since the epoch, without int64 overflow.
func utcNanos(t time.Time) string {
	n := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
	return n.Add(n, big.NewInt(int64(t.Nanosecond()))).String()
}

// Every payload gets serde's verdict, and every accepted one decodes to
// serde's fields: the stable id, the instants, and the SQLite text.
func TestSerdeVectors(t *testing.T) {
	agree := 0
	for _, v := range loadSerdeVectors(t) {
		r, err := DecodeExecResult(v.Payload())
		if !v.OK {
			if err == nil {
				t.Errorf("%s: accepted, but serde rejects it (%s)", v.Name, v.Error)
				continue
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Errorf("%s: error %v is not a DecodeError with a reason", v.Name, err)
				continue
			}
			agree++
			continue
		}
		if err != nil {
			t.Errorf("%s: rejected (%v), but serde accepts it", v.Name, err)
			continue
		}
		checks := []struct {
			what      string
			got, want any
		}{
			{"result_id", r.ResultID, v.ResultID},
			{"stable id", r.StableID(), v.ResultIDStored},
			{"request_id", r.RequestID, v.RequestID},
			{"exec_id", r.ExecID, v.ExecID},
			{"parent_result_id", r.ParentResultID, v.ParentResultID},
			{"pc_id", r.PCID, v.PCID},
			{"exit_code", r.ExitCode, v.ExitCode},
			{"skipped", r.Skipped, v.Skipped},
			{"stdout", r.Stdout, v.Stdout},
			{"stderr", r.Stderr, v.Stderr},
			{"started_at instant", utcNanos(r.StartedAt), v.StartedNS},
			{"finished_at instant", utcNanos(r.FinishedAt), v.FinishedNS},
			{"started_at SQLite text", FormatSQLiteTimestamp(r.StartedAt), v.StartedSQLite},
			{"finished_at SQLite text", FormatSQLiteTimestamp(r.FinishedAt), v.FinishedSQLite},
			{"stdout_object", r.StdoutObject, v.StdoutObject},
			{"stderr_object", r.StderrObject, v.StderrObject},
			{"manifest_id", r.ManifestID, v.ManifestID},
			{"collect_object", r.CollectObject, v.CollectObject},
			{"signature-refusal id", SignatureRefusalID(r.RequestID, r.PCID), v.SignatureRefusal},
		}
		ok := true
		for _, c := range checks {
			if g, w := deref(c.got), deref(c.want); g != w {
				t.Errorf("%s: %s = %#v, serde has %#v", v.Name, c.what, g, w)
				ok = false
			}
		}
		if ok {
			agree++
		}
	}
	t.Logf("%d of 356 vectors agree with serde", agree)
}

func deref(v any) any {
	switch p := v.(type) {
	case *string:
		if p == nil {
			return nil
		}
		return *p
	case *bool:
		if p == nil {
			return nil
		}
		return *p
	}
	return v
}

// A stored timestamp reads back as the value it was written from, leap
// seconds and five-digit years included.
func TestStoredTimestampRoundTrip(t *testing.T) {
	for _, v := range loadSerdeVectors(t) {
		if !v.OK {
			continue
		}
		for _, text := range []string{v.StartedSQLite, v.FinishedSQLite} {
			back, err := ParseTimestamp(text)
			if err != nil {
				t.Errorf("%s: ParseTimestamp(%q): %v", v.Name, text, err)
				continue
			}
			if got := FormatSQLiteTimestamp(back); got != text {
				t.Errorf("%s: %q reads back as %q", v.Name, text, got)
			}
		}
	}
}
