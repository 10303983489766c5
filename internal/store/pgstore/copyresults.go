package pgstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// copyResults COPYs rows into table (execution_results or the staging
// table, both with resultColNames typed as in 0001_tables.sql) in
// PostgreSQL's binary COPY format, encoded here rather than by pgx's
// CopyFrom: pgx boxes each row's 16 values into interfaces, looks up an
// encode plan per value and hands the bytes through a pipe: 0.47 s of
// the 3.1 s a 200k replay's profile sampled, and ten times this
// encoder's cost (docs/performance.md, fourteenth session). The bytes are
// the ones pgx sends for the same values; a test holds the two to the
// same stored rows.
func copyResults(ctx context.Context, tx pgx.Tx, table string, rows []store.ResultRow) (int64, error) {
	sql := "COPY " + table + " (" + strings.Join(resultColNames, ", ") + ") FROM STDIN (FORMAT binary)"
	if _, ok := tx.(shadowTx); ok {
		sql = store.ShadowNames.Replace(sql)
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, &resultEncoder{rows: rows}, sql)
	return tag.RowsAffected(), err
}

// resultEncoder is an io.Reader of rows as binary COPY data, encoded as
// they are read, so a batch is never held twice.
type resultEncoder struct {
	rows    []store.ResultRow
	next    int  // first row not encoded yet
	started bool // header written
	ended   bool // trailer written
	buf     []byte
	off     int // bytes of buf already read
}

// The binary COPY format (PostgreSQL's docs, "COPY", "Binary Format"):
// a signature, flags and header-extension length, then per row a field
// count and each field as its length (-1 for NULL) and bytes, then -1.
const copySignature = "PGCOPY\n\xff\r\n\x00"

// y2k is where PostgreSQL's timestamps count from, in Unix microseconds.
const y2k = 946_684_800 * 1_000_000

func (e *resultEncoder) Read(p []byte) (int, error) {
	if e.off == len(e.buf) {
		e.buf, e.off = e.buf[:0], 0
		if !e.started {
			e.started = true
			e.buf = append(e.buf, copySignature...)
			e.buf = binary.BigEndian.AppendUint64(e.buf, 0)
		}
		// Encode about what the caller can take (pgconn reads 64 KiB at a
		// time), so the buffer stays one read long.
		for len(e.buf) < len(p) && e.next < len(e.rows) {
			if err := e.encode(&e.rows[e.next]); err != nil {
				return 0, err
			}
			e.next++
		}
		if e.next == len(e.rows) && !e.ended && len(e.buf) < len(p) {
			e.ended = true
			e.buf = binary.BigEndian.AppendUint16(e.buf, 0xffff)
		}
		if len(e.buf) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, e.buf[e.off:])
	e.off += n
	return n, nil
}

func (e *resultEncoder) encode(r *store.ResultRow) error {
	b := binary.BigEndian.AppendUint16(e.buf, uint16(len(resultColNames)))
	b = appendText(b, r.ResultID)
	b = appendText(b, r.RequestID)
	b = appendTextPtr(b, r.ExecID)
	b = appendText(b, r.PCID)
	if r.ExitCode == nil {
		b = appendNull(b)
	} else {
		b = binary.BigEndian.AppendUint32(b, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(*r.ExitCode))
	}
	b = appendText(b, r.Stdout)
	b = appendText(b, r.Stderr)
	b = appendTime(b, &r.StartedAt)
	b = appendTime(b, r.FinishedAt)
	b = appendTextPtr(b, r.JobID)
	b = appendTextPtr(b, r.ParentResultID)
	b = appendTime(b, &r.RecordedAt)
	b = appendTextPtr(b, r.Version)
	b = appendTime(b, r.ExpiresAt)
	b = appendBool(b, r.Skipped)
	b = appendBool(b, r.Reaped)
	if len(b)-len(e.buf) > 1<<30 {
		// A field's length is an int32, and the server builds each row in
		// one allocation of at most 1 GB: say so instead of sending what
		// it must refuse.
		return fmt.Errorf("result %q is %d bytes, too large to COPY into PostgreSQL (at most 1 GB a row)", r.ResultID, len(b)-len(e.buf))
	}
	e.buf = b
	return nil
}

func appendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

// appendText stores s as pgText would (U+0000 becomes U+FFFD).
func appendText(b []byte, s string) []byte {
	s = pgText(s)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendTextPtr(b []byte, s *string) []byte {
	if s == nil {
		return appendNull(b)
	}
	return appendText(b, *s)
}

// appendTime is pgx's timestamptz encoding: microseconds since
// 2000-01-01 UTC, the nanoseconds below a microsecond dropped.
func appendTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return appendNull(b)
	}
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(t.Unix()*1_000_000+int64(t.Nanosecond())/1000-y2k))
}

func appendBool(b []byte, v bool) []byte {
	b = binary.BigEndian.AppendUint32(b, 1)
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
