// Package serialref is upstream's projector as upstream runs it: one
// message, one transaction, upstream's own statements (spec section 4). It
// is the reference the batched projector is proven against, and the
// "upstream-style" baseline of the replay benchmark. Nothing in the tool
// writes through it.
package serialref

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// New returns the reference writing to st.
func New(st store.Store) *Reference {
	switch s := st.(type) {
	case *pgstore.Store:
		return forPostgres(s)
	case *sqlitestore.Store:
		return forSQLite(s)
	}
	panic(fmt.Sprintf("serialref: unsupported store %T", st))
}

// Reference is a plain serial projector: upstream's own statements, one
// message per transaction, exactly as spec section 4 lists them. The
// batched projector must leave the same tables.
type Reference struct {
	exec  func(ctx context.Context, tx any, q string, args ...any) (int64, error)
	query func(ctx context.Context, tx any, q string, args ...any) (*int64, error)
	text  func(ctx context.Context, tx any, q string, args ...any) (*string, error)
	begin func(ctx context.Context) (tx any, commit func() error, err error)
	ts    func(time.Time) any
	flag  func(bool) any
	kind  store.Kind
}

func forPostgres(st *pgstore.Store) *Reference {
	conv := func(q string) string {
		n := 0
		var b strings.Builder
		for _, c := range q {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return &Reference{
		begin: func(ctx context.Context) (any, func() error, error) {
			tx, err := st.Pool().Begin(ctx)
			if err != nil {
				return nil, nil, err
			}
			return tx, func() error { return tx.Commit(ctx) }, nil
		},
		exec: func(ctx context.Context, tx any, q string, args ...any) (int64, error) {
			tag, err := tx.(pgx.Tx).Exec(ctx, conv(q), args...)
			if err != nil {
				return 0, err
			}
			return tag.RowsAffected(), nil
		},
		query: func(ctx context.Context, tx any, q string, args ...any) (*int64, error) {
			var v *int64
			err := tx.(pgx.Tx).QueryRow(ctx, conv(q), args...).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, nil
			}
			return v, err
		},
		text: func(ctx context.Context, tx any, q string, args ...any) (*string, error) {
			var v *string
			err := tx.(pgx.Tx).QueryRow(ctx, conv(q), args...).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, nil
			}
			return v, err
		},
		ts:   func(t time.Time) any { return t },
		flag: func(b bool) any { return b },
		kind: store.Postgres,
	}
}

func forSQLite(st *sqlitestore.Store) *Reference {
	return &Reference{
		begin: func(ctx context.Context) (any, func() error, error) {
			tx, err := st.DB().BeginTx(ctx, nil)
			if err != nil {
				return nil, nil, err
			}
			return tx, tx.Commit, nil
		},
		exec: func(ctx context.Context, tx any, q string, args ...any) (int64, error) {
			res, err := tx.(*sql.Tx).ExecContext(ctx, q, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
		query: func(ctx context.Context, tx any, q string, args ...any) (*int64, error) {
			var v sql.NullInt64
			err := tx.(*sql.Tx).QueryRowContext(ctx, q, args...).Scan(&v)
			if err == sql.ErrNoRows {
				return nil, nil
			}
			if !v.Valid {
				return nil, err
			}
			return &v.Int64, err
		},
		text: func(ctx context.Context, tx any, q string, args ...any) (*string, error) {
			var v sql.NullString
			err := tx.(*sql.Tx).QueryRowContext(ctx, q, args...).Scan(&v)
			if err == sql.ErrNoRows || !v.Valid {
				return nil, nil
			}
			return &v.String, err
		},
		ts:   func(t time.Time) any { return wire.FormatSQLiteTimestamp(t) },
		flag: func(b bool) any { return map[bool]int{false: 0, true: 1}[b] },
		kind: store.SQLite,
	}
}

func optTS(ref *Reference, t *time.Time) any {
	if t == nil {
		return nil
	}
	return ref.ts(*t)
}

// project applies one message the way upstream's projector does.
func (ref *Reference) Project(ctx context.Context, m projector.Message, objects map[string][]byte, manifests map[string]*wire.Manifest) error {
	tx, commit, err := ref.begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if r, ok := tx.(interface{ Rollback() error }); ok {
			r.Rollback() //nolint:errcheck
		} else if r, ok := tx.(interface{ Rollback(context.Context) error }); ok {
			r.Rollback(ctx) //nolint:errcheck
		}
	}()
	switch {
	case strings.HasPrefix(m.Subject, "events.started."):
		e, err := wire.DecodeEventStarted(m.Data)
		if err != nil || e.ResultID == "" || ref.kind.CheckTime(e.StartedAt) != nil {
			return nil // quarantined by kanade
		}
		var expires *time.Time
		if t, ok := manifests[e.ManifestID].ReapDeadline(m.Published); ok {
			expires = &t
		}
		_, err = ref.exec(ctx, tx, `INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, started_at, version, job_id, recorded_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(result_id) DO NOTHING`,
			e.ResultID, e.RequestID, e.ExecID, e.PCID, ref.ts(e.StartedAt), e.Version, e.ManifestID, ref.ts(m.Published), optTS(ref, expires))
		if err != nil {
			return err
		}
		if _, err := ref.exec(ctx, tx, `UPDATE executions SET status = 'running' WHERE exec_id = ? AND status = 'pending'`, e.ExecID); err != nil {
			return err
		}
		return commit()
	case strings.HasPrefix(m.Subject, "results."):
	default:
		return nil
	}
	r, err := wire.DecodeExecResult(m.Data)
	if err != nil || ref.kind.CheckTime(r.StartedAt) != nil || ref.kind.CheckTime(r.FinishedAt) != nil {
		return nil // quarantined by kanade; upstream loses it; no table row either way
	}
	for _, f := range []struct{ key, dst *string }{{r.StdoutObject, &r.Stdout}, {r.StderrObject, &r.Stderr}} {
		if f.key != nil {
			data, ok := objects[*f.key]
			if !ok {
				return nil // quarantined
			}
			*f.dst = projector.LossyUTF8(data)
		}
	}
	id := r.StableID()
	wasReaped, err := ref.query(ctx, tx, "SELECT CASE WHEN reaped THEN 1 ELSE 0 END FROM execution_results WHERE result_id = ?", id)
	if err != nil {
		return fmt.Errorf("was_reaped: %w", err)
	}
	n, err := ref.exec(ctx, tx, `INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, exit_code, stdout, stderr,
			started_at, finished_at, job_id, parent_result_id, recorded_at, skipped)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(result_id) DO UPDATE SET
			exit_code = excluded.exit_code, stdout = excluded.stdout, stderr = excluded.stderr, finished_at = excluded.finished_at,
			reaped = ?, skipped = excluded.skipped, job_id = COALESCE(excluded.job_id, execution_results.job_id), request_id = excluded.request_id
		WHERE execution_results.finished_at IS NULL OR execution_results.reaped = ?`,
		id, r.RequestID, r.ExecID, r.PCID, r.ExitCode, r.Stdout, r.Stderr, ref.ts(r.StartedAt), ref.ts(r.FinishedAt), r.ManifestID,
		r.ParentResultID, ref.ts(m.Published), ref.flag(r.IsSkipped()), ref.flag(false), ref.flag(true))
	if err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	if n > 0 && (wasReaped == nil || *wasReaped != 1) && r.ExecID != nil {
		s, f := 0, 1
		if r.ExitCode == 0 && !r.IsSkipped() {
			s, f = 1, 0
		}
		if _, err := ref.exec(ctx, tx, `UPDATE executions SET success_count = success_count + ?, failure_count = failure_count + ?,
			status = CASE WHEN (success_count + ?) + (failure_count + ?) >= target_count THEN 'completed' ELSE 'running' END
			WHERE exec_id = ?`, s, f, s, f, *r.ExecID); err != nil {
			return fmt.Errorf("bump: %w", err)
		}
	}
	if err := commit(); err != nil {
		return err
	}
	if r.ManifestID == nil || manifests[*r.ManifestID] == nil {
		return nil
	}
	man := manifests[*r.ManifestID]
	// Upstream's derived writes, each in its own transaction.
	if r.ExitCode == 0 && man.Inventory != nil {
		if err := ref.inventory(ctx, r, man, m.Published); err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
	}
	if r.ExitCode == 0 && len(man.Feed) > 0 {
		if err := ref.feeds(ctx, r, man, m.Published); err != nil {
			return fmt.Errorf("feeds: %w", err)
		}
	}
	if man.Check != nil && man.Check.Projected() && !r.SkipsChecks() {
		status, detail := man.Check.Evaluate(r.ExitCode, r.Stdout, r.Stderr)
		tx, commit, err := ref.begin(ctx)
		if err != nil {
			return err
		}
		defer rollback(ctx, tx)
		if _, err := ref.exec(ctx, tx, `INSERT INTO check_status (pc_id, check_name, label, status, detail, recorded_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(pc_id, check_name) DO UPDATE SET label = excluded.label, status = excluded.status, detail = excluded.detail, recorded_at = excluded.recorded_at
			WHERE excluded.recorded_at >= check_status.recorded_at`, r.PCID, *man.Check.Name, man.Check.Label, status, detail, ref.ts(m.Published)); err != nil {
			return fmt.Errorf("check status: %w", err)
		}
		return commit()
	}
	return nil
}

func rollback(ctx context.Context, tx any) {
	if r, ok := tx.(interface{ Rollback() error }); ok {
		r.Rollback() //nolint:errcheck
	} else if r, ok := tx.(interface{ Rollback(context.Context) error }); ok {
		r.Rollback(ctx) //nolint:errcheck
	}
}

// inventory is upstream's upsert_inventory: read the prior facts, upsert,
// and only when the upsert was not rejected, write the scalar history.
func (ref *Reference) inventory(ctx context.Context, r *wire.ExecResult, man *wire.Manifest, pub time.Time) error {
	payload, fenced := wire.FencedPayload(r.Stdout, wire.HintInventory)
	facts, err := wire.ParseJSON(payload)
	if !fenced || err != nil {
		return nil
	}
	tx, commit, err := ref.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	scalars := man.Inventory.HistoryScalars
	var prior *string
	if len(scalars) > 0 {
		if prior, err = ref.text(ctx, tx, "SELECT facts_json FROM inventory_facts WHERE pc_id = ? AND job_id = ?", r.PCID, *r.ManifestID); err != nil {
			return err
		}
	}
	n, err := ref.exec(ctx, tx, `INSERT INTO inventory_facts (pc_id, job_id, facts_json, display_json, summary_json, collected_at, recorded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(pc_id, job_id) DO UPDATE SET facts_json = excluded.facts_json, display_json = excluded.display_json,
			summary_json = excluded.summary_json, collected_at = excluded.collected_at, recorded_at = excluded.recorded_at
		WHERE excluded.recorded_at >= inventory_facts.recorded_at`,
		r.PCID, *r.ManifestID, payload, man.Inventory.DisplayJSON(), man.Inventory.SummaryJSON(), ref.ts(r.FinishedAt), ref.ts(pub))
	if err != nil || n == 0 {
		return errors.Join(err, commit())
	}
	var before *wire.JSONValue
	if prior != nil {
		v, err := wire.ParseJSON(*prior)
		if err != nil {
			return commit() // upstream's diff fails: no history
		}
		before = &v
	}
	wrap := func(v *wire.JSONValue) string { return `{"value":` + v.Compact() + `}` }
	for _, field := range scalars {
		nv, pv := facts.Get(field), before.Get(field)
		var kind string
		var b *string
		switch {
		case nv == nil:
			continue
		case pv == nil:
			kind = "added"
		case !pv.Equal(nv):
			kind, b = "changed", wire.Str(wrap(pv))
		default:
			continue
		}
		if _, err := ref.exec(ctx, tx, `INSERT INTO inventory_history (pc_id, job_id, field_path, change_kind, before_json, after_json, observed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, r.PCID, *r.ManifestID, field, kind, b, wrap(nv), ref.ts(pub)); err != nil {
			return err
		}
	}
	return commit()
}

// feeds is upstream's replace_feed_rows for each feed spec.
func (ref *Reference) feeds(ctx context.Context, r *wire.ExecResult, man *wire.Manifest, pub time.Time) error {
	payload, _ := wire.FencedPayload(r.Stdout, wire.HintFeed)
	v, err := wire.ParseJSON(payload)
	if err != nil {
		return nil
	}
	for i := range man.Feed {
		spec := &man.Feed[i]
		tx, commit, err := ref.begin(ctx)
		if err != nil {
			return err
		}
		newer, err := ref.query(ctx, tx, "SELECT count(*) FROM feed_meta WHERE feed_id = ? AND recorded_at >= ?", spec.FeedID(), ref.ts(pub))
		arr := v.Get(spec.FieldName())
		if err != nil || *newer > 0 || v.Kind != wire.JSONObject || (arr != nil && arr.Kind != wire.JSONArray) {
			rollback(ctx, tx)
			if err != nil {
				return err
			}
			continue
		}
		if _, err := ref.exec(ctx, tx, "DELETE FROM feeds WHERE feed_id = ?", spec.FeedID()); err != nil {
			rollback(ctx, tx)
			return err
		}
		inserted := 0
		if arr != nil {
			for j := range arr.Items {
				id, ok := spec.ItemID(&arr.Items[j])
				if !ok {
					continue
				}
				if _, err := ref.exec(ctx, tx, `INSERT INTO feeds (feed_id, item_id, data, fetched_at, recorded_at) VALUES (?, ?, ?, ?, ?)
					ON CONFLICT(feed_id, item_id) DO UPDATE SET data = excluded.data, fetched_at = excluded.fetched_at, recorded_at = excluded.recorded_at`,
					spec.FeedID(), id, arr.Items[j].Compact(), ref.ts(r.FinishedAt), ref.ts(pub)); err != nil {
					rollback(ctx, tx)
					return err
				}
				inserted++
			}
		}
		if _, err := ref.exec(ctx, tx, `INSERT INTO feed_meta (feed_id, recorded_at, fetched_at, item_count) VALUES (?, ?, ?, ?)
			ON CONFLICT(feed_id) DO UPDATE SET recorded_at = excluded.recorded_at, fetched_at = excluded.fetched_at, item_count = excluded.item_count`,
			spec.FeedID(), ref.ts(pub), ref.ts(r.FinishedAt), inserted); err != nil {
			rollback(ctx, tx)
			return err
		}
		if err := commit(); err != nil {
			return err
		}
	}
	return nil
}
