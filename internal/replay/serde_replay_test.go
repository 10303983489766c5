package replay_test

import (
	"context"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/replay"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/streams"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
	"github.com/kanadehq/kanade-cli/internal/wire/serdevec"
)

// Every serde vector replayed through JetStream into both stores: each
// payload serde accepts is a row with serde's fields (the first of those
// sharing a stable id, as upstream keeps it), each one it rejects is in
// quarantine, and nothing is lost.
func TestReplaySerdeVectors(t *testing.T) {
	vecs := serdevec.Load(t, "../wire/testdata/serde_vectors.jsonl")
	js := testutil.JetStream(t)
	ctx := context.Background()
	if err := streams.EnsureLayout(ctx, js); err != nil {
		t.Fatal(err)
	}
	for _, v := range vecs {
		payload, err := base64.StdEncoding.DecodeString(v.PayloadB64)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "results.vectors", payload); err != nil {
			t.Fatal(err)
		}
	}
	// Then every accepted payload once more under an id of its own, so
	// each one's values reach the store, not only the first of an id.
	var unique []serdevec.Vector
	for _, v := range vecs {
		payload, _ := base64.StdEncoding.DecodeString(v.PayloadB64)
		r, err := wire.DecodeExecResult(payload)
		if err != nil || r.StdoutObject != nil || r.StderrObject != nil {
			continue
		}
		r.ResultID = "own-" + v.Name
		v.ResultIDStored = r.ResultID
		unique = append(unique, v)
		if _, err := js.Publish(ctx, "results.vectors", r.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		sum := replayAll(t, st, js, replay.Options{Stream: streams.Results})
		tables, err := st.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows := map[string]store.ResultRow{}
		for _, r := range tables.Results {
			rows[r.ResultID] = r
		}
		quarantined, err := st.ListQuarantine(ctx, streams.Results, 1000)
		if err != nil {
			t.Fatal(err)
		}
		inQuarantine := map[uint64]string{}
		for _, q := range quarantined {
			inQuarantine[q.Seq] = q.Error
		}
		all := append(append([]serdevec.Vector{}, vecs...), unique...)
		first := map[string]bool{}
		var accepted, rejected, unstorable int
		for i, v := range all {
			seq := uint64(i + 1)
			if !v.OK {
				rejected++
				if _, ok := inQuarantine[seq]; !ok {
					t.Errorf("%s: serde rejects it, but it is not in quarantine", v.Name)
				}
				continue
			}
			started, _ := new(big.Int).SetString(v.StartedNS, 10)
			finished, _ := new(big.Int).SetString(v.FinishedNS, 10)
			if v.StdoutObject != nil || v.StderrObject != nil {
				if _, ok := inQuarantine[seq]; !ok {
					t.Errorf("%s: names an overflow object the stream cannot supply, yet was not quarantined", v.Name)
				}
				continue
			}
			if reason, ok := inQuarantine[seq]; ok {
				// PostgreSQL holds 4713 BC to 294276 AD; chrono reaches further.
				yearLimit := big.NewInt(-210866803200) // 4713-11-24 BC in seconds
				yearLimit.Mul(yearLimit, big.NewInt(1e9))
				if st.Kind() == store.Postgres && (started.Cmp(yearLimit) < 0 || finished.Cmp(yearLimit) < 0) {
					unstorable++
					continue
				}
				t.Errorf("%s: serde accepts it, but it was quarantined: %s", v.Name, reason)
				continue
			}
			accepted++
			if first[v.ResultIDStored] {
				continue // a later duplicate leaves the first row as it was
			}
			first[v.ResultIDStored] = true
			r, ok := rows[v.ResultIDStored]
			if !ok {
				t.Errorf("%s: no row %s", v.Name, v.ResultIDStored)
				continue
			}
			k := st.Kind()
			check := func(what string, ok bool) {
				if !ok {
					t.Errorf("%s: stored %s differs from serde's: %+v", v.Name, what, r)
				}
			}
			check("request_id", r.RequestID == k.StoredText(v.RequestID))
			check("pc_id", r.PCID == k.StoredText(v.PCID))
			check("exec_id", eqOpt(r.ExecID, v.ExecID, k))
			check("parent_result_id", eqOpt(r.ParentResultID, v.ParentResultID, k))
			check("job_id", eqOpt(r.JobID, v.ManifestID, k))
			check("exit_code", r.ExitCode != nil && *r.ExitCode == v.ExitCode)
			check("stdout", r.Stdout == k.StoredText(v.Stdout))
			check("stderr", r.Stderr == k.StoredText(v.Stderr))
			check("skipped", r.Skipped == (v.Skipped != nil && *v.Skipped))
			prec := big.NewInt(int64(k.TimePrecision()))
			near := func(got time.Time, want *big.Int) bool {
				d := new(big.Int).Sub(serdevec.UTCNanos(got), want)
				return d.Abs(d).Cmp(prec) < 0
			}
			check("started_at", near(r.StartedAt, started))
			check("finished_at", r.FinishedAt != nil && near(*r.FinishedAt, finished))
			if sl, ok := st.(*sqlitestore.Store); ok {
				var s, f string
				if err := sl.DB().QueryRowContext(ctx, "SELECT CAST(started_at AS TEXT), CAST(finished_at AS TEXT) FROM execution_results WHERE result_id = ?", v.ResultIDStored).Scan(&s, &f); err != nil {
					t.Fatal(err)
				}
				if s != v.StartedSQLite || f != v.FinishedSQLite {
					t.Errorf("%s: SQLite text %q / %q, upstream stores %q / %q", v.Name, s, f, v.StartedSQLite, v.FinishedSQLite)
				}
			}
		}
		if got := int(sum.Stats.Quarantined); got != rejected+unstorable+countOverflow(vecs) {
			t.Errorf("quarantined %d, want %d rejected + %d PostgreSQL cannot hold + %d overflow without an object", got, rejected, unstorable, countOverflow(vecs))
		}
		if int(sum.Stats.Messages) != len(all) {
			t.Errorf("read %d of %d messages", sum.Stats.Messages, len(all))
		}

		t.Logf("%s: %d accepted, %d rejected, %d outside the store's time range, %d rows", st.Kind(), accepted, rejected, unstorable, len(rows))
	})
}

// countOverflow counts accepted vectors that name an overflow object: the
// test stream has no object store, so they are quarantined.
func countOverflow(vecs []serdevec.Vector) int {
	n := 0
	for _, v := range vecs {
		if v.OK && (v.StdoutObject != nil || v.StderrObject != nil) {
			n++
		}
	}
	return n
}

func eqOpt(got, want *string, k store.Kind) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	return *got == k.StoredText(*want)
}
