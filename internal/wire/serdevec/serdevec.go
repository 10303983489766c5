// Package serdevec reads serde_vectors.jsonl (internal/wire/testdata, with
// its provenance README): payloads with what serde_json and chrono made of
// them. The decoder's tests and the replay tests read the same vectors
// through it. It imports nothing of this project, so wire's own tests can
// use it.
package serdevec

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"testing"
	"time"
)

// Count is how many vectors the file holds; a short read fails the test.
const Count = 356

// Vector is one line of the file.
type Vector struct {
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
func (v *Vector) Payload() []byte {
	b, err := base64.StdEncoding.DecodeString(v.PayloadB64)
	if err != nil {
		panic(v.Name + ": " + err.Error())
	}
	return b
}

// Load reads every vector from path.
func Load(t testing.TB, path string) []Vector {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v Vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("vector line %d: %v", len(out)+1, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != Count {
		t.Fatalf("want the %d serde vectors, read %d", Count, len(out))
	}
	return out
}

// UTCNanos is t as nanoseconds since the epoch, without int64 overflow
// (the vectors reach years -0001 and +10000).
func UTCNanos(t time.Time) *big.Int {
	n := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
	return n.Add(n, big.NewInt(int64(t.Nanosecond())))
}
