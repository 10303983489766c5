package wire

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vectors names a file of upstream's test vectors (testdata/README.md).
func vectors(name string) string { return filepath.Join("testdata", name) }

func readTSV(t *testing.T, name string) [][]string {
	f, err := os.Open(vectors(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no vectors", name)
	}
	return rows
}

func TestStableResultIDVectors(t *testing.T) {
	for _, row := range readTSV(t, "stable_result_id.tsv") {
		if len(row) != 3 {
			t.Fatalf("bad vector row %q", row)
		}
		if got := StableResultID("", row[0], row[1]); got != row[2] {
			t.Errorf("StableResultID(%q, %q) = %s, want %s", row[0], row[1], got, row[2])
		}
	}
	if got := StableResultID("agent-id", "r", "x"); got != "agent-id" {
		t.Errorf("an agent's result_id must be kept, got %s", got)
	}
}

func TestChronoTimestampVectors(t *testing.T) {
	for _, row := range readTSV(t, "chrono_timestamps.tsv") {
		wall, err := time.Parse("2006-01-02T15:04:05", row[0])
		if err != nil {
			t.Fatal(err)
		}
		ns, _ := strconv.Atoi(row[1])
		ts := wall.Add(time.Duration(ns))
		if got := FormatTimestamp(ts); got != row[2] {
			t.Errorf("FormatTimestamp(%s+%dns) = %s, want %s", row[0], ns, got, row[2])
		}
		if got := FormatSQLiteTimestamp(ts); got != row[3] {
			t.Errorf("FormatSQLiteTimestamp(%s+%dns) = %s, want %s", row[0], ns, got, row[3])
		}
		for _, text := range row[2:] {
			back, err := ParseTimestamp(text)
			if err != nil || !back.Equal(ts) {
				t.Errorf("ParseTimestamp(%s) = %v, %v; want %v", text, back, err, ts)
			}
		}
	}
}

func TestParseTimestampForms(t *testing.T) {
	for _, s := range []string{"2026-05-16 00:00:00", "2026-05-16T09:00:00+09:00", "2026-05-16t00:00:00z", "2026-05-16 00:00:00.5"} {
		if _, err := ParseTimestamp(s); err != nil {
			t.Errorf("ParseTimestamp(%q): %v", s, err)
		}
	}
	if _, err := ParseTimestamp("yesterday"); err == nil {
		t.Error("ParseTimestamp accepted garbage")
	}
}

func TestPayloadVectorsDecode(t *testing.T) {
	data, err := os.ReadFile(vectors("payloads.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var decoded []*ExecResult
	for i, line := range lines {
		r, err := DecodeExecResult([]byte(line))
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		decoded = append(decoded, r)
	}
	// Line 1: pre-v0.13 (no result_id, no manifest): stable id from the vectors.
	if decoded[0].ResultID != "" || decoded[0].StableID() != "0fa0310d-c039-5679-ac84-9f227050a1bb" {
		t.Errorf("pre-v0.13 payload: result_id %q stable %s", decoded[0].ResultID, decoded[0].StableID())
	}
	if decoded[1].ManifestID == nil || *decoded[1].ManifestID != "inventory-hw" || decoded[1].ExecID != nil {
		t.Errorf("v0.13 payload decoded wrong: %+v", decoded[1])
	}
	if decoded[1].FinishedAt.Nanosecond() != 500_000_000 || decoded[1].Stderr != "access denied\r\n" {
		t.Errorf("v0.13 payload fields: %+v", decoded[1])
	}
	if decoded[2].StartedAt.Nanosecond() != 123456700 || Deref(decoded[2].ExecID) != "c0ffee00-0000-4000-8000-000000000001" {
		t.Errorf("v0.29 payload: %+v", decoded[2])
	}
	if !decoded[3].IsSkipped() || decoded[3].ExitCode != 125 {
		t.Errorf("skipped payload: %+v", decoded[3])
	}
	if Deref(decoded[4].StdoutObject) != "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/stdout" {
		t.Errorf("overflow payload: %+v", decoded[4])
	}
	// Lines an agent wrote in canonical form re-encode to the same bytes.
	for _, i := range []int{0, 2, 3} {
		if got := string(decoded[i].Encode()); got != lines[i] {
			t.Errorf("line %d re-encoded:\n got %s\nwant %s", i+1, got, lines[i])
		}
	}
}

func TestSkippedForms(t *testing.T) {
	base := `{"request_id":"r","pc_id":"p","exit_code":0,"stdout":"","stderr":"","started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:00Z"`
	for suffix, want := range map[string]string{"}": "absent", `,"skipped":null}`: "absent", `,"skipped":false}`: "false", `,"skipped":true}`: "true"} {
		r, err := DecodeExecResult([]byte(base + suffix))
		if err != nil {
			t.Fatalf("%s: %v", suffix, err)
		}
		got := "absent"
		if r.Skipped != nil {
			got = strconv.FormatBool(*r.Skipped)
		}
		if got != want {
			t.Errorf("%s: skipped = %s, want %s", suffix, got, want)
		}
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`{"request_id":"r","pc_id":"p","exit_code":"x","stdout":"","stderr":"","started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:00Z"}`:           "exit_code",
		`{"request_id":"r","pc_id":"p","exit_code":3000000000,"stdout":"","stderr":"","started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:00Z"}`:    "exit_code",
		`{"request_id":"r","exit_code":0,"stdout":"","stderr":"","started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:00Z"}`:                         "pc_id",
		`{"request_id":"r","pc_id":"p","exit_code":0,"stdout":"","stderr":"","started_at":"noon","finished_at":"2026-05-16T00:00:00Z"}`:                             "started_at",
		`{"request_id":"r","pc_id":"p","exit_code":0,"stdout":"","stderr":"","started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:00Z","skipped":1}`: "skipped",
		`not json`: "",
		`[1,2]`:    "result_id", // serde reads an array by position
	}
	for payload, field := range cases {
		_, err := DecodeExecResult([]byte(payload))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("%s: want DecodeError, got %v", payload, err)
		}
		if de.Field != field {
			t.Errorf("%s: error names field %q (%v), want %q", payload, de.Field, err, field)
		}
	}
}

func TestSerdeEscaping(t *testing.T) {
	got := string(AppendJSONString(nil, "a\"b\\c\x00\x01\x1f\b\f\n\r\t<>&\u2028\u2029\x7fé請"))
	want := `"a\"b\\c\u0000\u0001\u001f\b\f\n\r\t<>&` + "\u2028\u2029\x7fé請" + `"`
	if got != want {
		t.Errorf("escaping:\n got %s\nwant %s", got, want)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	ts := time.Date(2026, 5, 16, 1, 2, 3, 123456700, time.UTC)
	r := &ExecResult{ResultID: "id", RequestID: "req", ExecID: Str("ex"), ParentResultID: Str("par"), PCID: "PC-1", ExitCode: -1,
		Skipped: Bool(true), Stdout: "out\n", Stderr: "<err>", StartedAt: ts, FinishedAt: ts.Add(time.Second),
		StdoutObject: Str("req/stdout"), StderrObject: Str("req/stderr"), ManifestID: Str("m"), CollectObject: Str("c")}
	want := `{"result_id":"id","request_id":"req","exec_id":"ex","parent_result_id":"par","pc_id":"PC-1","exit_code":-1,"skipped":true,"stdout":"out\n","stderr":"<err>","started_at":"2026-05-16T01:02:03.123456700Z","finished_at":"2026-05-16T01:02:04.123456700Z","stdout_object":"req/stdout","stderr_object":"req/stderr","manifest_id":"m","collect_object":"c"}`
	if got := string(r.Encode()); got != want {
		t.Fatalf("encode:\n got %s\nwant %s", got, want)
	}
	back, err := DecodeExecResult(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Encode()) != want {
		t.Error("decode(encode(r)) differs")
	}
}

func TestEventAndCommand(t *testing.T) {
	ts := time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)
	e := &EventStarted{ResultID: "r1", RequestID: "q", ExecID: "e1", PCID: "pc1", StartedAt: ts, ManifestID: "inv", Version: "1.0.0"}
	back, err := DecodeEventStarted(e.Encode())
	if err != nil || *back != *e {
		t.Fatalf("event round trip: %+v %v", back, err)
	}
	if _, err := DecodeEventStarted([]byte(`{"exec_id":"e","pc_id":"p","started_at":"2026-05-20T12:00:00Z"}`)); err == nil {
		t.Error("a started event without result_id must not decode")
	}
	c, err := DecodeCommand([]byte(`{"id":"x","version":"1.0.0","request_id":"r","job_id":"dep-1","shell":"cmd","script":"echo","timeout_secs":5}`))
	if err != nil || Deref(c.ExecID) != "dep-1" || c.RunAs != "system" {
		t.Fatalf("command with job_id alias: %+v %v", c, err)
	}
	c2, err := DecodeCommand(c.Encode())
	if err != nil || Deref(c2.ExecID) != "dep-1" {
		t.Fatalf("command round trip: %+v %v", c2, err)
	}
}

func TestManifestHint(t *testing.T) {
	m, err := DecodeManifest([]byte(`{"id":"inventory-hw","version":"1.0.0","script":"x","inventory":{"display":[{"field":"cpu","label":"CPU"},{"field":"ram_gb","label":"RAM","type":"number"}],"history_scalars":["cpu"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Inventory == nil || m.Inventory.DisplayJSON() != `[{"field":"cpu","label":"CPU"},{"field":"ram_gb","label":"RAM","type":"number"}]` || m.Inventory.SummaryJSON() != nil {
		t.Errorf("hint: %+v", m.Inventory)
	}
	if _, err := DecodeManifest([]byte(`{"version":"1"}`)); err == nil {
		t.Error("manifest without id accepted")
	}
}

// display_json keeps a table field's nested columns, in upstream's field
// order (field, label, type, columns); an empty list is kept, null dropped.
func TestDisplayJSONNestedColumns(t *testing.T) {
	m, err := DecodeManifest([]byte(`{"id":"inv-hw","version":"1","inventory":{"display":[{"field":"hostname","label":"Hostname"},` +
		`{"columns":[{"field":"device_id","label":"Drive"},{"label":"Size","type":"bytes","field":"size_bytes"}],"type":"table","label":"Disks","field":"disks"},` +
		`{"field":"x","label":"X","columns":[]},{"field":"y","label":"Y","columns":null}],"summary":[{"field":"disks","label":"Disks","type":"table","columns":[]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"field":"hostname","label":"Hostname"},{"field":"disks","label":"Disks","type":"table","columns":[{"field":"device_id","label":"Drive"},` +
		`{"field":"size_bytes","label":"Size","type":"bytes"}]},{"field":"x","label":"X","columns":[]},{"field":"y","label":"Y"}]`
	if got := m.Inventory.DisplayJSON(); got != want {
		t.Errorf("display_json\n got %s\nwant %s", got, want)
	}
	if got := m.Inventory.SummaryJSON(); got == nil || *got != `[{"field":"disks","label":"Disks","type":"table","columns":[]}]` {
		t.Errorf("summary_json %v", got)
	}
}
