package projector_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// A result is never lost for its content: NUL (which PostgreSQL text
// rejects) is stored as U+FFFD, every other byte as it came.
func TestNULIsStoredNotLost(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		r := wire.ExecResult{ResultID: "nul", RequestID: "q", PCID: "PC-1", Stdout: "a\x00b <&> é", Stderr: "",
			StartedAt: time.Unix(0, 0).UTC(), FinishedAt: time.Unix(1, 0).UTC()}
		p := projector.New(st, nil, nil)
		b, err := p.Prepare(ctx, []projector.Message{{Stream: "RESULTS", Seq: 1, Subject: "results.q", Published: time.Unix(2, 0).UTC(), Data: r.Encode()}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Apply(ctx, b, projector.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		rows, err := st.FindResults(ctx, store.ResultFilter{ResultID: "nul"})
		if err != nil || len(rows) != 1 {
			t.Fatalf("%v %v", rows, err)
		}
		want := "a\x00b <&> é"
		if st.Kind() == store.Postgres {
			want = "a\uFFFDb <&> é"
		}
		if rows[0].Stdout != want {
			t.Errorf("stdout %q, want %q", rows[0].Stdout, want)
		}
	})
}

// Two writers never write at once, and the second is told who holds it.
func TestWriterLockNamesHolder(t *testing.T) {
	ctx := context.Background()
	testutil.EachStore(t, func(t *testing.T, st testutil.Store) {
		release, err := st.Lock(ctx, "stream replay")
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Lock(ctx, "results backfill")
		if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "stream replay") {
			t.Fatalf("second writer: %v", err)
		}
		release()
		release2, err := st.Lock(ctx, "results backfill")
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		release2()
	})
}
