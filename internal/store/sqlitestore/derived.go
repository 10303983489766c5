package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// The derived tables' writes. A table an older upstream file lacks is not
// written: that backend had no such table to write either.

func (t *projTx) LoadFacts(ctx context.Context, keys []store.FactsKey) (map[store.FactsKey]store.StoredFacts, error) {
	out := make(map[store.FactsKey]store.StoredFacts, len(keys))
	add := func(args []any, k *store.FactsKey) []any { return append(args, k.PCID, k.JobID) }
	err := inValues(keys, 2, add, func(_ []store.FactsKey, values string, args []any) error {
		rows, err := t.tx.QueryContext(ctx, `SELECT pc_id, job_id, facts_json, CAST(recorded_at AS TEXT) FROM inventory_facts
			WHERE (pc_id, job_id) IN (VALUES `+values+`)`, args...)
		if err != nil {
			return fmt.Errorf("read stored inventory facts: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k store.FactsKey
			var f store.StoredFacts
			var rec string
			if err := rows.Scan(&k.PCID, &k.JobID, &f.FactsJSON, &rec); err != nil {
				return fmt.Errorf("read stored inventory facts: %w", err)
			}
			if f.RecordedAt, err = wire.ParseTimestamp(rec); err != nil {
				return fmt.Errorf("inventory_facts (%s, %s): recorded_at %q: %w", k.PCID, k.JobID, rec, err)
			}
			out[k] = f
		}
		return rows.Err()
	})
	return out, err
}

func (t *projTx) AddHistory(ctx context.Context, rows []store.HistoryRow) (int64, error) {
	if !t.s.derived["inventory_history"] {
		return 0, nil
	}
	add := func(args []any, h *store.HistoryRow) []any {
		return append(args, h.PCID, h.JobID, h.FieldPath, strPtr(h.IdentityJSON), h.ChangeKind, strPtr(h.BeforeJSON), strPtr(h.AfterJSON), ts(h.ObservedAt))
	}
	return insertValues(ctx, t.tx, rows, 8, add, `INSERT INTO inventory_history (pc_id, job_id, field_path, identity_json, change_kind, before_json, after_json, observed_at)
		VALUES %s`, "append inventory history", nil)
}

func (t *projTx) UpsertChecks(ctx context.Context, checks []store.CheckRow) (int64, error) {
	if !t.s.derived["check_status"] {
		return 0, nil
	}
	// label came with a later upstream migration: an older file has none.
	cols, set, width := "pc_id, check_name, status, detail, recorded_at", "status = excluded.status, detail = excluded.detail, recorded_at = excluded.recorded_at", 5
	changed := "excluded.status IS NOT check_status.status OR excluded.detail IS NOT check_status.detail OR excluded.recorded_at IS NOT check_status.recorded_at"
	label := t.s.derived["check_status.label"]
	if label {
		cols, set, width = cols+", label", set+", label = excluded.label", 6
		changed += " OR excluded.label IS NOT check_status.label"
	}
	add := func(args []any, c *store.CheckRow) []any {
		args = append(args, c.PCID, c.CheckName, c.Status, strPtr(c.Detail), ts(c.RecordedAt))
		if label {
			args = append(args, strPtr(c.Label))
		}
		return args
	}
	return insertValues(ctx, t.tx, checks, width, add, `INSERT INTO check_status (`+cols+`) VALUES %s
		ON CONFLICT(pc_id, check_name) DO UPDATE SET `+set+`
		WHERE excluded.recorded_at >= check_status.recorded_at AND (`+changed+`)`, "upsert check status", nil)
}

func (t *projTx) FeedWatermarks(ctx context.Context, feedIDs []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if !t.s.derived["feed_meta"] {
		return out, nil
	}
	err := inChunks(feedIDs, func(in string, args []any) error {
		rows, err := t.tx.QueryContext(ctx, "SELECT feed_id, CAST(recorded_at AS TEXT) FROM feed_meta WHERE feed_id IN "+in, args...)
		if err != nil {
			return fmt.Errorf("read feed watermarks: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, rec string
			if err := rows.Scan(&id, &rec); err != nil {
				return fmt.Errorf("read feed watermarks: %w", err)
			}
			at, err := wire.ParseTimestamp(rec)
			if err != nil {
				return fmt.Errorf("feed_meta %q: recorded_at %q: %w", id, rec, err)
			}
			out[id] = at
		}
		return rows.Err()
	})
	return out, err
}

func (t *projTx) ReplaceFeeds(ctx context.Context, feeds []store.Feed) error {
	if !t.s.derived["feeds"] || !t.s.derived["feed_meta"] {
		return nil
	}
	for _, f := range feeds {
		m := f.Meta
		if _, err := t.tx.ExecContext(ctx, "DELETE FROM feeds WHERE feed_id = ?", m.FeedID); err != nil {
			return fmt.Errorf("replace feed %q: %w", m.FeedID, err)
		}
		add := func(args []any, it *store.FeedItem) []any {
			return append(args, m.FeedID, it.ItemID, it.Data, tsPtr(m.FetchedAt), ts(m.RecordedAt))
		}
		if _, err := insertValues(ctx, t.tx, f.Items, 5, add, `INSERT INTO feeds (feed_id, item_id, data, fetched_at, recorded_at) VALUES %s`,
			fmt.Sprintf("replace feed %q", m.FeedID), nil); err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO feed_meta (feed_id, recorded_at, fetched_at, item_count) VALUES (?, ?, ?, ?)
			ON CONFLICT(feed_id) DO UPDATE SET recorded_at = excluded.recorded_at, fetched_at = excluded.fetched_at, item_count = excluded.item_count`,
			m.FeedID, ts(m.RecordedAt), tsPtr(m.FetchedAt), m.ItemCount); err != nil {
			return fmt.Errorf("set the watermark of feed %q: %w", m.FeedID, err)
		}
	}
	return nil
}

// dumpDerived reads the derived tables that exist, in key (history: id)
// order.
func (s *Store) dumpDerived(ctx context.Context, t *store.Tables) error {
	read := func(table, q string, scan func(*sql.Rows) error) error {
		if !s.derived[table] {
			return nil
		}
		rows, err := s.db.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("dump %s: %w", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("dump %s: %w", table, err)
			}
		}
		return rows.Err()
	}
	label := "NULL"
	if s.derived["check_status.label"] {
		label = "label"
	}
	err := read("check_status", `SELECT pc_id, check_name, `+label+`, status, detail, CAST(recorded_at AS TEXT) FROM check_status ORDER BY pc_id, check_name`, func(r *sql.Rows) error {
		var c store.CheckRow
		var rec string
		if err := r.Scan(&c.PCID, &c.CheckName, &c.Label, &c.Status, &c.Detail, &rec); err != nil {
			return err
		}
		var err error
		c.RecordedAt, err = wire.ParseTimestamp(rec)
		t.Checks = append(t.Checks, c)
		return err
	})
	if err != nil {
		return err
	}
	err = read("feeds", `SELECT feed_id, item_id, data, CAST(fetched_at AS TEXT), CAST(recorded_at AS TEXT) FROM feeds ORDER BY feed_id, item_id`, func(r *sql.Rows) error {
		var f store.FeedRow
		var fetched sql.NullString
		var rec string
		if err := r.Scan(&f.FeedID, &f.ItemID, &f.Data, &fetched, &rec); err != nil {
			return err
		}
		var err error
		if f.FetchedAt, err = nullTime(fetched); err != nil {
			return err
		}
		f.RecordedAt, err = wire.ParseTimestamp(rec)
		t.Feeds = append(t.Feeds, f)
		return err
	})
	if err != nil {
		return err
	}
	err = read("feed_meta", `SELECT feed_id, CAST(recorded_at AS TEXT), CAST(fetched_at AS TEXT), item_count FROM feed_meta ORDER BY feed_id`, func(r *sql.Rows) error {
		var m store.FeedMeta
		var fetched sql.NullString
		var rec string
		if err := r.Scan(&m.FeedID, &rec, &fetched, &m.ItemCount); err != nil {
			return err
		}
		var err error
		if m.FetchedAt, err = nullTime(fetched); err != nil {
			return err
		}
		m.RecordedAt, err = wire.ParseTimestamp(rec)
		t.FeedMeta = append(t.FeedMeta, m)
		return err
	})
	if err != nil {
		return err
	}
	return read("inventory_history", `SELECT pc_id, job_id, field_path, identity_json, change_kind, before_json, after_json, CAST(observed_at AS TEXT)
		FROM inventory_history ORDER BY id`, func(r *sql.Rows) error {
		var h store.HistoryRow
		var obs string
		if err := r.Scan(&h.PCID, &h.JobID, &h.FieldPath, &h.IdentityJSON, &h.ChangeKind, &h.BeforeJSON, &h.AfterJSON, &obs); err != nil {
			return err
		}
		var err error
		h.ObservedAt, err = wire.ParseTimestamp(obs)
		t.History = append(t.History, h)
		return err
	})
}

func (s *Store) DerivedStamps(ctx context.Context, k store.DerivedKeys) (*store.DerivedStamps, error) {
	out := &store.DerivedStamps{Facts: map[store.FactsKey]time.Time{}}
	stamp := func(table, q string, keys, width int, arg func(args []any, i int) []any, put func(a, b string, at time.Time)) error {
		idx := make([]int, keys)
		for i := range idx {
			idx[i] = i
		}
		return inValues(idx, width, func(args []any, i *int) []any { return arg(args, *i) }, func(_ []int, values string, args []any) error {
			rows, err := s.db.QueryContext(ctx, strings.Replace(q, "%s", values, 1), args...)
			if err != nil {
				return fmt.Errorf("read %s: %w", table, err)
			}
			defer rows.Close()
			for rows.Next() {
				var a, b, rec string
				if err := rows.Scan(&a, &b, &rec); err != nil {
					return fmt.Errorf("read %s: %w", table, err)
				}
				at, err := wire.ParseTimestamp(rec)
				if err != nil {
					return fmt.Errorf("%s (%s, %s): recorded_at %q: %w", table, a, b, rec, err)
				}
				put(a, b, at)
			}
			return rows.Err()
		})
	}
	err := stamp("inventory_facts", "SELECT pc_id, job_id, CAST(recorded_at AS TEXT) FROM inventory_facts WHERE (pc_id, job_id) IN (VALUES %s)",
		len(k.Facts), 2, func(args []any, i int) []any { return append(args, k.Facts[i].PCID, k.Facts[i].JobID) },
		func(a, b string, at time.Time) { out.Facts[store.FactsKey{PCID: a, JobID: b}] = at })
	if err != nil {
		return nil, err
	}
	if s.derived["check_status"] {
		out.Checks = map[store.CheckKey]time.Time{}
		err := stamp("check_status", "SELECT pc_id, check_name, CAST(recorded_at AS TEXT) FROM check_status WHERE (pc_id, check_name) IN (VALUES %s)",
			len(k.Checks), 2, func(args []any, i int) []any { return append(args, k.Checks[i].PCID, k.Checks[i].CheckName) },
			func(a, b string, at time.Time) { out.Checks[store.CheckKey{PCID: a, CheckName: b}] = at })
		if err != nil {
			return nil, err
		}
	}
	if s.derived["feed_meta"] {
		out.Feeds = map[string]time.Time{}
		err := stamp("feed_meta", "SELECT feed_id, '', CAST(recorded_at AS TEXT) FROM feed_meta WHERE feed_id IN (VALUES %s)",
			len(k.Feeds), 1, func(args []any, i int) []any { return append(args, k.Feeds[i]) },
			func(a, _ string, at time.Time) { out.Feeds[a] = at })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
