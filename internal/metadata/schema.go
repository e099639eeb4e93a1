package metadata

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	metaBucket       = "meta"
	schemaVersionKey = "schema_version"
)

// Migration moves the database from the previous schema version to
// Version. Migrations run in Version order inside the single transaction
// Open starts; if one fails, none of them is kept and Open fails.
type Migration struct {
	// Version is the schema version the database has once Apply has run.
	// Versions start at 1 and must increase strictly.
	Version int
	// Name says what the migration does, for error messages.
	Name string
	// Apply changes the data. It must not keep tx.
	Apply func(tx *Tx) error
}

func checkMigrations(ms []Migration) error {
	prev := 0
	for _, m := range ms {
		if m.Version <= prev || m.Apply == nil {
			return errdefs.Newf(errdefs.InvalidArgument,
				"metadata: migration %d (%s): versions must start at 1 and increase, and Apply must be set", m.Version, m.Name)
		}
		prev = m.Version
	}
	return nil
}

// SchemaVersion returns the schema version recorded in the database, 0 for
// a database no migration has touched.
func SchemaVersion(tx *Tx) (int, error) {
	b, err := tx.Bucket(metaBucket)
	if err != nil {
		return 0, err
	}
	v := b.Get([]byte(schemaVersionKey))
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("metadata: schema version is %d bytes, want 8", len(v))
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

func setSchemaVersion(tx *Tx, version int) error {
	b, err := tx.Bucket(metaBucket)
	if err != nil {
		return err
	}
	return b.Put([]byte(schemaVersionKey), binary.BigEndian.AppendUint64(nil, uint64(version)))
}

// SchemaVersion returns the database's schema version.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.View(ctx, func(tx *Tx) (err error) {
		v, err = SchemaVersion(tx)
		return err
	})
	return v, err
}

func (db *DB) migrate(ms []Migration, readOnly bool) error {
	ctx := context.Background()
	latest := ms[len(ms)-1].Version
	current, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	switch {
	case current > latest:
		return errdefs.Newf(errdefs.FailedPrecondition,
			"metadata database %s has schema version %d, newer than this berth supports (%d): was it written by a newer berthd?",
			db.path, current, latest)
	case current == latest:
		return nil
	case readOnly:
		return errdefs.Newf(errdefs.FailedPrecondition,
			"metadata database %s has schema version %d and needs migrating to %d, which a read-only open cannot do",
			db.path, current, latest)
	}
	return db.Update(ctx, func(tx *Tx) error {
		for _, m := range ms {
			if m.Version <= current {
				continue
			}
			if err := m.Apply(tx); err != nil {
				return fmt.Errorf("metadata: migrating %s to schema version %d (%s): %w", db.path, m.Version, m.Name, err)
			}
			if err := setSchemaVersion(tx, m.Version); err != nil {
				return err
			}
		}
		return nil
	})
}
