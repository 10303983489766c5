package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/store"
)

// The derived tables' writes, each one statement over arrays.

func (t *projTx) LoadFacts(ctx context.Context, keys []store.FactsKey) (map[store.FactsKey]store.StoredFacts, error) {
	out := make(map[store.FactsKey]store.StoredFacts, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pc, job := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		pc[i], job[i] = pgText(k.PCID), pgText(k.JobID)
	}
	rows, err := t.tx.Query(ctx, `SELECT f.pc_id, f.job_id, f.facts_json, f.recorded_at FROM inventory_facts f
		JOIN unnest($1::text[], $2::text[]) AS k(pc_id, job_id) ON f.pc_id = k.pc_id AND f.job_id = k.job_id`, pc, job)
	if err != nil {
		return nil, fmt.Errorf("read stored inventory facts: %w", err)
	}
	var k store.FactsKey
	var f store.StoredFacts
	_, err = pgx.ForEachRow(rows, []any{&k.PCID, &k.JobID, &f.FactsJSON, &f.RecordedAt}, func() error {
		out[k] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stored inventory facts: %w", err)
	}
	return out, nil
}

func (t *projTx) AddHistory(ctx context.Context, rows []store.HistoryRow) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	// COPY keeps the rows' order, and so their ids' order.
	n, err := t.tx.CopyFrom(ctx, pgx.Identifier{"inventory_history"},
		[]string{"pc_id", "job_id", "field_path", "identity_json", "change_kind", "before_json", "after_json", "observed_at"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			h := &rows[i]
			return []any{pgText(h.PCID), pgText(h.JobID), pgText(h.FieldPath), pgTextPtr(h.IdentityJSON), h.ChangeKind,
				pgTextPtr(h.BeforeJSON), pgTextPtr(h.AfterJSON), h.ObservedAt}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("append inventory history: %w", err)
	}
	return n, nil
}

func (t *projTx) UpsertChecks(ctx context.Context, checks []store.CheckRow) (int64, error) {
	if len(checks) == 0 {
		return 0, nil
	}
	n := len(checks)
	pc, name, status := make([]string, n), make([]string, n), make([]string, n)
	label, detail := make([]*string, n), make([]*string, n)
	rec := make([]time.Time, n)
	for i, c := range checks {
		pc[i], name[i], status[i] = pgText(c.PCID), pgText(c.CheckName), c.Status
		label[i], detail[i], rec[i] = pgTextPtr(c.Label), pgTextPtr(c.Detail), c.RecordedAt
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO check_status (pc_id, check_name, label, status, detail, recorded_at)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
	ON CONFLICT (pc_id, check_name) DO UPDATE SET
		label = excluded.label, status = excluded.status, detail = excluded.detail, recorded_at = excluded.recorded_at
	WHERE excluded.recorded_at >= check_status.recorded_at
		AND (check_status.label, check_status.status, check_status.detail, check_status.recorded_at)
			IS DISTINCT FROM (excluded.label, excluded.status, excluded.detail, excluded.recorded_at)`, pc, name, label, status, detail, rec)
	if err != nil {
		return 0, fmt.Errorf("upsert check status: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (t *projTx) FeedWatermarks(ctx context.Context, feedIDs []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(feedIDs) == 0 {
		return out, nil
	}
	ids := make([]string, len(feedIDs))
	for i, id := range feedIDs {
		ids[i] = pgText(id)
	}
	// FOR UPDATE: the watermark decides the replace, so it must not move
	// under this transaction.
	rows, err := t.tx.Query(ctx, "SELECT feed_id, recorded_at FROM feed_meta WHERE feed_id = ANY($1) FOR UPDATE", ids)
	if err != nil {
		return nil, fmt.Errorf("read feed watermarks: %w", err)
	}
	var id string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		out[id] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read feed watermarks: %w", err)
	}
	return out, nil
}

func (t *projTx) ReplaceFeeds(ctx context.Context, feeds []store.Feed) error {
	for _, f := range feeds {
		m := f.Meta
		id := pgText(m.FeedID)
		if _, err := t.tx.Exec(ctx, "DELETE FROM feeds WHERE feed_id = $1", id); err != nil {
			return fmt.Errorf("replace feed %q: %w", m.FeedID, err)
		}
		if len(f.Items) > 0 {
			item, data := make([]string, len(f.Items)), make([]string, len(f.Items))
			for i, it := range f.Items {
				item[i], data[i] = pgText(it.ItemID), pgText(it.Data)
			}
			if _, err := t.tx.Exec(ctx, `INSERT INTO feeds (feed_id, item_id, data, fetched_at, recorded_at)
				SELECT $1, i, d, $4, $5 FROM unnest($2::text[], $3::text[]) AS x(i, d)`, id, item, data, m.FetchedAt, m.RecordedAt); err != nil {
				return fmt.Errorf("replace feed %q: %w", m.FeedID, err)
			}
		}
		if _, err := t.tx.Exec(ctx, `INSERT INTO feed_meta (feed_id, recorded_at, fetched_at, item_count) VALUES ($1, $2, $3, $4)
			ON CONFLICT (feed_id) DO UPDATE SET recorded_at = excluded.recorded_at, fetched_at = excluded.fetched_at, item_count = excluded.item_count`,
			id, m.RecordedAt, m.FetchedAt, m.ItemCount); err != nil {
			return fmt.Errorf("set the watermark of feed %q: %w", m.FeedID, err)
		}
	}
	return nil
}

// dumpDerived reads the derived tables in key (history: id) order.
func (s *Store) dumpDerived(ctx context.Context, t *store.Tables) error {
	var err error
	q := func(sql string, dst func(pgx.CollectableRow) error) error {
		rows, err := s.pool.Query(ctx, sql)
		if err != nil {
			return err
		}
		_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) { return struct{}{}, dst(r) })
		return err
	}
	err = q("SELECT pc_id, check_name, label, status, detail, recorded_at FROM check_status ORDER BY pc_id, check_name", func(r pgx.CollectableRow) error {
		var c store.CheckRow
		err := r.Scan(&c.PCID, &c.CheckName, &c.Label, &c.Status, &c.Detail, &c.RecordedAt)
		t.Checks = append(t.Checks, c)
		return err
	})
	if err != nil {
		return fmt.Errorf("dump check_status: %w", err)
	}
	err = q("SELECT feed_id, item_id, data, fetched_at, recorded_at FROM feeds ORDER BY feed_id, item_id", func(r pgx.CollectableRow) error {
		var f store.FeedRow
		err := r.Scan(&f.FeedID, &f.ItemID, &f.Data, &f.FetchedAt, &f.RecordedAt)
		t.Feeds = append(t.Feeds, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("dump feeds: %w", err)
	}
	err = q("SELECT feed_id, recorded_at, fetched_at, item_count FROM feed_meta ORDER BY feed_id", func(r pgx.CollectableRow) error {
		var m store.FeedMeta
		err := r.Scan(&m.FeedID, &m.RecordedAt, &m.FetchedAt, &m.ItemCount)
		t.FeedMeta = append(t.FeedMeta, m)
		return err
	})
	if err != nil {
		return fmt.Errorf("dump feed_meta: %w", err)
	}
	err = q(`SELECT pc_id, job_id, field_path, identity_json, change_kind, before_json, after_json, observed_at FROM inventory_history ORDER BY id`, func(r pgx.CollectableRow) error {
		var h store.HistoryRow
		err := r.Scan(&h.PCID, &h.JobID, &h.FieldPath, &h.IdentityJSON, &h.ChangeKind, &h.BeforeJSON, &h.AfterJSON, &h.ObservedAt)
		t.History = append(t.History, h)
		return err
	})
	if err != nil {
		return fmt.Errorf("dump inventory_history: %w", err)
	}
	return nil
}

func (s *Store) DerivedStamps(ctx context.Context, k store.DerivedKeys) (*store.DerivedStamps, error) {
	out := &store.DerivedStamps{Facts: map[store.FactsKey]time.Time{}, Checks: map[store.CheckKey]time.Time{}, Feeds: map[string]time.Time{}}
	read := func(table, q string, put func(a, b string, at time.Time), args ...any) error {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		var a, b string
		var at time.Time
		if _, err := pgx.ForEachRow(rows, []any{&a, &b, &at}, func() error { put(a, b, at); return nil }); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		return nil
	}
	pc, job := make([]string, len(k.Facts)), make([]string, len(k.Facts))
	for i, f := range k.Facts {
		pc[i], job[i] = pgText(f.PCID), pgText(f.JobID)
	}
	if err := read("inventory_facts", `SELECT f.pc_id, f.job_id, f.recorded_at FROM inventory_facts f
		JOIN unnest($1::text[], $2::text[]) AS k(pc_id, job_id) ON f.pc_id = k.pc_id AND f.job_id = k.job_id`,
		func(a, b string, at time.Time) { out.Facts[store.FactsKey{PCID: a, JobID: b}] = at }, pc, job); err != nil {
		return nil, err
	}
	pc, name := make([]string, len(k.Checks)), make([]string, len(k.Checks))
	for i, c := range k.Checks {
		pc[i], name[i] = pgText(c.PCID), pgText(c.CheckName)
	}
	if err := read("check_status", `SELECT c.pc_id, c.check_name, c.recorded_at FROM check_status c
		JOIN unnest($1::text[], $2::text[]) AS k(pc_id, check_name) ON c.pc_id = k.pc_id AND c.check_name = k.check_name`,
		func(a, b string, at time.Time) { out.Checks[store.CheckKey{PCID: a, CheckName: b}] = at }, pc, name); err != nil {
		return nil, err
	}
	feeds := make([]string, len(k.Feeds))
	for i, f := range k.Feeds {
		feeds[i] = pgText(f)
	}
	if err := read("feed_meta", `SELECT feed_id, '', recorded_at FROM feed_meta WHERE feed_id = ANY($1)`,
		func(a, _ string, at time.Time) { out.Feeds[a] = at }, feeds); err != nil {
		return nil, err
	}
	return out, nil
}
