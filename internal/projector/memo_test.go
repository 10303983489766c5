package projector_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/testutil"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// appsBatch is one scan per PC of the given apps, published at pub.
func appsBatch(first int, pcs int, apps string, pub time.Time) []projector.Message {
	var out []projector.Message
	for pc := range pcs {
		n := first + pc
		res := finished(fmt.Sprintf("m%d", n), "q", fmt.Sprintf("PC-%d", pc), 0)
		res.ManifestID, res.Stdout = wire.Str("apps"), `{"apps":[`+apps+`]}`
		out = append(out, projector.Message{Stream: "RESULTS", Seq: uint64(n + 1), Subject: "results.q", Published: pub, Data: res.Encode()})
	}
	return out
}

// The explode rows a committed batch wrote are kept for the next batch,
// and taken from there only while nothing else has written the file: a
// row another connection deletes, changes or adds between two batches is
// seen by the next one, which puts the PC's rows back as its scan has them.
func TestExplodeMemoSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	st := testutil.SQLiteStore(t)
	// Not CheckMemo: the table itself must show a stale memo.
	p := projector.New(st, nil, mapManifests{"apps": appsHint(true)})
	apply := func(msgs []projector.Message) {
		t.Helper()
		b, err := p.Prepare(ctx, msgs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Apply(ctx, b, projector.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	apps := `{"name":"A","version":"1"},{"name":"B","version":"2"}`
	apply(appsBatch(0, 3, apps, t0))
	if n := projector.MemoKeys(p); n != 3 {
		t.Fatalf("the memo keeps %d row sets after the first batch; want 3 (one per PC)", n)
	}
	apply(appsBatch(10, 3, apps, t0.Add(time.Minute))) // taken from the memo
	for _, q := range []string{
		`DELETE FROM inv_apps WHERE pc_id = 'PC-0' AND name = 'B'`,
		`UPDATE inv_apps SET version = '9' WHERE pc_id = 'PC-1' AND name = 'A'`,
		`INSERT INTO inv_apps (pc_id, job_id, collected_at, name) VALUES ('PC-2', 'apps', '2026-01-01 00:00:00', 'Z')`,
	} {
		if _, err := st.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	apply(appsBatch(20, 3, apps, t0.Add(2*time.Minute)))
	rows := testutil.TableRows(t, st, "inv_apps")
	if len(rows) != 6 {
		t.Fatalf("after another connection's writes the table holds %d rows; want 6:\n%q", len(rows), rows)
	}
	for i, r := range rows {
		want := fmt.Sprintf(`"PC-%d" | "apps" |`, i/2)
		if i%2 == 0 {
			want += ` | "A" | "1" | NULL | NULL`
		} else {
			want += ` | "B" | "2" | NULL | NULL`
		}
		prefix, rest, _ := strings.Cut(want, " | | ")
		if !strings.HasPrefix(r, prefix+" | ") || !strings.HasSuffix(r, " | "+rest) {
			t.Errorf("row %d is %q; want %s | (collected_at) | %s: the batch after another connection's writes did not leave the scan's rows", i, r, prefix, rest)
		}
	}
	// The third batch repeats the second's scans, so it was planned against
	// them; its history must still be the difference from what the table
	// held, which the other connection changed.
	tb, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range tb.History {
		if h.ObservedAt.Equal(t0.Add(2 * time.Minute)) {
			got = append(got, h.PCID+" "+h.ChangeKind+" "+*h.IdentityJSON)
		}
	}
	want := []string{`PC-0 added {"name":"B"}`, `PC-1 changed {"name":"A"}`, `PC-2 removed {"name":"Z"}`}
	if !slices.Equal(got, want) {
		t.Errorf("history of the batch after another connection's writes: %q; want %q", got, want)
	}
}
