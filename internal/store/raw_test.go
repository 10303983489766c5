package store_test

import (
	"context"

	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/pgstore"
	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
)

func execRaw(ctx context.Context, st store.Store, q string) error {
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
