package store_test

import (
	"context"

	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
	"github.com/kanadehq/kanade-cli/internal/testutil"
)

func execRaw(ctx context.Context, st testutil.Store, q string) error {
	switch s := st.(type) {
	case *pgstore.Store:
		_, err := s.Pool().Exec(ctx, q)
		return err
	case *sqlitestore.Store:
		_, err := s.DB().ExecContext(ctx, q)
		return err
	}
	return nil
}

func queryString(ctx context.Context, st testutil.Store, q string) (string, error) {
	var out string
	switch s := st.(type) {
	case *pgstore.Store:
		return out, s.Pool().QueryRow(ctx, q).Scan(&out)
	case *sqlitestore.Store:
		return out, s.DB().QueryRowContext(ctx, q).Scan(&out)
	}
	return out, nil
}
