package wire

import (
	"errors"
	"github.com/kanadehq/kanade-cli/internal/wire/serdevec"
	"testing"
)

func TestSerdeVectors(t *testing.T) {
	agree := 0
	for _, v := range serdevec.Load(t, vectors("serde_vectors.jsonl")) {
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
			{"started_at instant", serdevec.UTCNanos(r.StartedAt).String(), v.StartedNS},
			{"finished_at instant", serdevec.UTCNanos(r.FinishedAt).String(), v.FinishedNS},
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
	for _, v := range serdevec.Load(t, vectors("serde_vectors.jsonl")) {
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
