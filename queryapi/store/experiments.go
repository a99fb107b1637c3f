package store

import (
	"context"
	"errors"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// StoredExperiment is the newest revision of an experiment definition the
// worker stored (schema v16). Definition is the JSON the worker wrote; the
// use cases decode it, so the store stays a reader that decides nothing.
type StoredExperiment struct {
	ID, Service, Environment string
	Definition               string
	Hash                     string
	Source                   string // the file it came from
	AppliedAt                time.Time
}

// Experiments reads the stored experiments, every one for id "" (ordered
// by id), else at most the one. A database before v16 has none.
func (s *Store) Experiments(ctx context.Context, id string) ([]StoredExperiment, error) {
	var out []StoredExperiment
	err := s.query(ctx, "experiments", nil, func(rs driver.Rows) error {
		var (
			e       StoredExperiment
			applied uint32
		)
		if err := rs.Scan(&e.ID, &e.Service, &e.Environment, &e.Definition, &e.Hash, &e.Source, &applied); err != nil {
			return err
		}
		e.AppliedAt = unixUTC(applied)
		out = append(out, e)
		return nil
	}, clickhouse.Named("id", id))
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == errUnknownTable {
		return nil, nil
	}
	return out, err
}
