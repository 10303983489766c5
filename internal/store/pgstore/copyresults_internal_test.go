package pgstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// The encoder's bytes do not depend on how much each Read asks for, and
// its stream is the binary COPY header, the rows and the trailer.
func TestResultEncoderReadSizes(t *testing.T) {
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	var rows []store.ResultRow
	for i := range 500 {
		rows = append(rows, store.ResultRow{ResultID: strings.Repeat("r", i), PCID: "pc", Stdout: strings.Repeat("x", i*37), StartedAt: now, RecordedAt: now})
	}
	read := func(size int) []byte {
		e := &resultEncoder{rows: rows}
		var out bytes.Buffer
		p := make([]byte, size)
		for {
			n, err := e.Read(p)
			out.Write(p[:n])
			if err == io.EOF {
				return out.Bytes()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	want := read(65531)
	if !bytes.HasPrefix(want, []byte(copySignature+"\x00\x00\x00\x00\x00\x00\x00\x00")) || !bytes.HasSuffix(want, []byte{0xff, 0xff}) {
		t.Fatalf("not a binary COPY stream: % x ... % x", want[:19], want[len(want)-2:])
	}
	for _, size := range []int{1, 2, 7, 19, 4096, 1 << 20} {
		if got := read(size); !bytes.Equal(got, want) {
			t.Errorf("reads of %d bytes: %d bytes, unlike reads of 65531 (%d)", size, len(got), len(want))
		}
	}
	b, err := io.ReadAll(&resultEncoder{})
	if err != nil || !bytes.Equal(b, []byte(copySignature+"\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff")) {
		t.Errorf("no rows: % x, %v; want the header and the trailer", b, err)
	}
}

// pgxValues are r's values in resultColNames' order as pgx's CopyFrom
// was given them before copyResults, for the test and the benchmark that
// hold copyResults to it.
func pgxValues(r *store.ResultRow) []any {
	return []any{pgText(r.ResultID), pgText(r.RequestID), pgTextPtr(r.ExecID), pgText(r.PCID), r.ExitCode, pgText(r.Stdout), pgText(r.Stderr),
		r.StartedAt, r.FinishedAt, pgTextPtr(r.JobID), pgTextPtr(r.ParentResultID), r.RecordedAt, pgTextPtr(r.Version), r.ExpiresAt, r.Skipped, r.Reaped}
}

// benchRows are a replay batch of the simulator's shape: short ids,
// a line or two of output, every time set.
func benchRows() []store.ResultRow {
	now := time.Date(2026, 11, 20, 9, 0, 0, 123456789, time.UTC)
	code, exec, job, ver := int32(0), "exec-0001", "inventory-hw", "1.2.0"
	rows := make([]store.ResultRow, 5000)
	for i := range rows {
		fin := now.Add(time.Duration(i) * time.Millisecond)
		rows[i] = store.ResultRow{ResultID: fmt.Sprintf("0193a4b2-%04x-7c3d-9e8f-%012x", i%65536, i), RequestID: fmt.Sprintf("req-%08d", i/1000),
			ExecID: &exec, PCID: fmt.Sprintf("PC-%05d", i%1000), ExitCode: &code, Stdout: `{"cpu":"Xeon","ram_gb":32,"disks":[{"name":"C:","size_gb":512}]}`,
			StartedAt: now, FinishedAt: &fin, RecordedAt: now, JobID: &job, Version: &ver}
	}
	return rows
}

// How the projector encodes a batch for COPY against how pgx's CopyFrom
// did (go test -run '^$' -bench EncodeBatch -benchmem ./internal/store/pgstore):
// the values boxed per row and each encoded through the type map, by the
// column types pgx reads from the server.
func BenchmarkEncodeBatch(b *testing.B) {
	rows := benchRows()
	b.Run("resultEncoder", func(b *testing.B) {
		p := make([]byte, 65531)
		b.ReportAllocs()
		for b.Loop() {
			e := &resultEncoder{rows: rows}
			for {
				if _, err := e.Read(p); err == io.EOF {
					break
				}
			}
		}
	})
	b.Run("pgx", func(b *testing.B) {
		m := pgtype.NewMap()
		oids := []uint32{pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.Int4OID, pgtype.TextOID, pgtype.TextOID,
			pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.TextOID, pgtype.TextOID, pgtype.TimestamptzOID, pgtype.TextOID,
			pgtype.TimestamptzOID, pgtype.BoolOID, pgtype.BoolOID}
		buf := make([]byte, 0, 65536)
		b.ReportAllocs()
		for b.Loop() {
			src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return pgxValues(&rows[i]), nil })
			for src.Next() {
				vals, _ := src.Values()
				buf = binary.BigEndian.AppendUint16(buf, uint16(len(vals)))
				for i, v := range vals {
					// encodeCopyValue's own steps: a length placeholder,
					// the value, the length filled in (or -1 for NULL).
					at := len(buf)
					buf = append(buf, 0, 0, 0, 0)
					out, err := m.Encode(oids[i], pgtype.BinaryFormatCode, v, buf)
					if err != nil {
						b.Fatal(err)
					}
					if out == nil {
						buf = binary.BigEndian.AppendUint32(buf[:at], 0xffffffff)
						continue
					}
					buf = out
					binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
				}
				if len(buf) > 60000 {
					buf = buf[:0]
				}
			}
		}
	})
}
