package wire_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/kanadehq/kanade-cli/internal/sim"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// jsonExecResult is how the decoder read payloads before it followed
// serde: encoding/json into pointer fields, then RFC 3339 timestamps. It
// is the baseline of BenchmarkDecode, not a second decoder.
type jsonExecResult struct {
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

func decodeWithEncodingJSON(data []byte) error {
	var raw jsonExecResult
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	for _, s := range []*string{raw.StartedAt, raw.FinishedAt} {
		if s != nil {
			if _, err := time.Parse(time.RFC3339Nano, *s); err != nil {
				return err
			}
		}
	}
	return nil
}

// simPayloads are the RESULTS payloads of a simulated fleet (inventory
// JSON, PowerShell text, broadcasts, legacy agents), the replay's diet.
func simPayloads(b testing.TB) ([][]byte, int64) {
	cfg := sim.Defaults()
	cfg.Undecodable = 0
	f := sim.Generate(cfg)
	var out [][]byte
	var n int64
	for _, m := range f.Results {
		if _, err := wire.DecodeExecResult(m.Data); err == nil {
			out = append(out, m.Data)
			n += int64(len(m.Data))
		}
	}
	if len(out) == 0 {
		b.Fatal("the simulator made no payloads")
	}
	return out, n / int64(len(out))
}

// BenchmarkDecode compares the serde-exact decoder with encoding/json on
// the same payloads, per payload: go test -run '^$' -bench Decode -benchmem ./internal/wire
func BenchmarkDecode(b *testing.B) {
	payloads, avg := simPayloads(b)
	b.Run("serde", func(b *testing.B) {
		b.SetBytes(avg)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := wire.DecodeExecResult(payloads[i%len(payloads)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(avg)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := decodeWithEncodingJSON(payloads[i%len(payloads)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodedKeepsNotItsPayload: a decoded result holds its own strings,
// not the payload they were read from, since a replay keeps two batches
// of decoded results alive (the keys and punctuation would be a third of
// its heap).
func TestDecodedKeepsNotItsPayload(t *testing.T) {
	payloads, avg := simPayloads(t)
	kept := make([]*wire.ExecResult, 0, 4*len(payloads))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var stdout int64
	for range 4 {
		for _, p := range payloads {
			r, err := wire.DecodeExecResult(p)
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, r)
			stdout += int64(len(r.Stdout))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := int64(len(kept))
	perResult := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	// What a result needs: its struct, its stdout (escaped, so a copy) and
	// its ids; the payload alone would be avg bytes more.
	t.Logf("each decoded result keeps %d bytes (payloads average %d, stdout %d)", perResult, avg, stdout/n)
	if limit := int64(unsafe.Sizeof(wire.ExecResult{})) + stdout/n + avg/2; perResult > limit {
		t.Errorf("each decoded result keeps %d bytes (payloads average %d, stdout %d): more than %d, so the payload is still held", perResult, avg, stdout/n, limit)
	}
	runtime.KeepAlive(kept)
}

// inventoryDoc is the derived-tables workload's facts: a host, two
// scalars and 20 apps of four fields.
func inventoryDoc() string {
	var doc strings.Builder
	doc.WriteString(`{"hostname":"pc-0001","ram_gb":16,"os":"Windows 11 23H2","apps":[`)
	for a := range 20 {
		if a > 0 {
			doc.WriteByte(',')
		}
		fmt.Fprintf(&doc, `{"name":"App %d","publisher":"Vendor %d","version":"1.0.%d","size_mb":%d}`, a, a%37, a, 10+a)
	}
	doc.WriteString("]}")
	return doc.String()
}

// BenchmarkParseFacts builds the value of an inventory payload, as the
// projector does for each scan that does not repeat the one before:
// go test -run '^$' -bench ParseFacts -benchmem ./internal/wire
func BenchmarkParseFacts(b *testing.B) {
	doc := inventoryDoc()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ParseJSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseFactsArena is BenchmarkParseFacts in one JSONArena, as
// the projector parses: go test -run '^$' -bench ParseFacts -benchmem ./internal/wire
func BenchmarkParseFactsArena(b *testing.B) {
	doc := inventoryDoc()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	var arena wire.JSONArena
	for b.Loop() {
		if _, err := arena.Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJSONStdout decodes a result whose stdout is a 2 KB
// inventory document: its every quote is escaped in the payload, the
// shape of the derived-tables workload: go test -run '^$' -bench DecodeJSONStdout -benchmem ./internal/wire
func BenchmarkDecodeJSONStdout(b *testing.B) {
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	r := wire.ExecResult{ResultID: "r-1", RequestID: "q-1", PCID: "PC-0001", ManifestID: wire.Str("inv"), Stdout: inventoryDoc() + "\r\n",
		StartedAt: at, FinishedAt: at.Add(time.Second)}
	payload := r.Encode()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodeExecResult(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// The decoder reads a payload in place; what a decoded value keeps must
// still be its own, so that a caller may reuse the buffer: a payload of
// short unescaped strings (kept in a buffer of their own), one that is
// mostly an unescaped stdout (kept as one copy of the payload), and the
// name of a duplicate key in an error.
func TestDecodedOwnsItsStrings(t *testing.T) {
	long := strings.Repeat("inventory line ", 200)
	for name, payload := range map[string]string{
		"short strings": `{"result_id":"r-1","request_id":"q-1","exec_id":"e-1","pc_id":"PC-0001","exit_code":0,"stdout":"ok","stderr":"",` +
			`"started_at":"2026-11-20T00:00:00Z","finished_at":"2026-11-20T00:00:01Z","manifest_id":"inv"}`,
		"mostly stdout": `{"result_id":"r-1","request_id":"q-1","exec_id":"e-1","pc_id":"PC-0001","exit_code":0,"stdout":"` + long + `","stderr":"",` +
			`"started_at":"2026-11-20T00:00:00Z","finished_at":"2026-11-20T00:00:01Z","manifest_id":"inv"}`,
	} {
		buf := []byte(payload)
		r, err := wire.DecodeExecResult(buf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := *r
		wantExec, wantManifest := *r.ExecID, *r.ManifestID
		for i := range buf {
			buf[i] = 'X'
		}
		if r.ResultID != want.ResultID || r.ResultID != "r-1" || r.RequestID != "q-1" || r.PCID != "PC-0001" ||
			*r.ExecID != wantExec || *r.ManifestID != wantManifest || *r.ExecID != "e-1" || *r.ManifestID != "inv" {
			t.Errorf("%s: after the buffer was overwritten the result reads %+v", name, r)
		}
		if wantStdout := map[string]string{"short strings": "ok", "mostly stdout": long}[name]; r.Stdout != wantStdout {
			t.Errorf("%s: after the buffer was overwritten stdout reads %.40q", name, r.Stdout)
		}
	}
	buf := []byte(`{"pc_id":"a","pc_id":"b"}`)
	_, err := wire.DecodeExecResult(buf)
	var de *wire.DecodeError
	if !errors.As(err, &de) || de.Field != "pc_id" {
		t.Fatalf("a duplicate key: %v", err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	if de.Field != "pc_id" {
		t.Errorf("after the buffer was overwritten the error names field %q", de.Field)
	}
}
