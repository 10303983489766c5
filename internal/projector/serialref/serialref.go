// Package serialref is upstream's projector as upstream runs it: one
// message, one transaction, upstream's own statements (spec section 4). It
// is the reference the batched projector is proven against, and the
// "upstream-style" baseline of the replay benchmark. Nothing in the tool
// writes through it.
package serialref

import (
	"context"
	"database/sql"
	"encoding/json"
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
	if r.ExitCode == 0 && r.ManifestID != nil {
		facts, fenced := wire.FencedPayload(r.Stdout, wire.HintInventory)
		if man := manifests[*r.ManifestID]; man != nil && man.Inventory != nil && fenced && json.Valid([]byte(facts)) {
			tx, commit, err := ref.begin(ctx)
			if err != nil {
				return err
			}
			_, err = ref.exec(ctx, tx, `INSERT INTO inventory_facts (pc_id, job_id, facts_json, display_json, summary_json, collected_at, recorded_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT(pc_id, job_id) DO UPDATE SET facts_json = excluded.facts_json, display_json = excluded.display_json,
					summary_json = excluded.summary_json, collected_at = excluded.collected_at, recorded_at = excluded.recorded_at
				WHERE excluded.recorded_at >= inventory_facts.recorded_at`,
				r.PCID, *r.ManifestID, facts, man.Inventory.DisplayJSON(), man.Inventory.SummaryJSON(), ref.ts(r.FinishedAt), ref.ts(m.Published))
			if err != nil {
				return fmt.Errorf("inventory: %w", err)
			}
			return commit()
		}
	}
	return nil
}
