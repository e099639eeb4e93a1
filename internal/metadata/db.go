package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DefaultLockTimeout is how long Open waits for another process to release
// the file lock. Long enough to ride out a daemon that is still shutting
// down, short enough that a second berthd fails promptly.
const DefaultLockTimeout = 5 * time.Second

// DB is an open metadata database. It is safe for concurrent use: any
// number of View transactions run in parallel with at most one Update.
type DB struct {
	bolt *bolt.DB
	path string
}

type options struct {
	lockTimeout time.Duration
	readOnly    bool
	migrations  []Migration
}

// Option configures Open.
type Option func(*options)

// WithLockTimeout sets how long Open waits for the file lock (default
// DefaultLockTimeout). Zero waits forever.
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// WithReadOnly opens the database for reading only, under a shared lock,
// so that several readers (diagnostic tools) can open it while no writer
// has it.
func WithReadOnly() Option { return func(o *options) { o.readOnly = true } }

// WithMigrations declares the schema: Open applies, in one transaction,
// every migration whose Version is above the database's schema version,
// and refuses a database whose version is above the last migration's.
// Without this option the schema version is neither checked nor changed.
func WithMigrations(ms ...Migration) Option {
	return func(o *options) { o.migrations = append(o.migrations, ms...) }
}

// Open opens or creates the database at path (mode 0600); the parent
// directory must exist. If another process holds the file, Open waits up
// to the lock timeout and then fails with errdefs.Unavailable.
func Open(path string, opts ...Option) (*DB, error) {
	o := options{lockTimeout: DefaultLockTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkMigrations(o.migrations); err != nil {
		return nil, err
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout, ReadOnly: o.readOnly})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, errdefs.Newf(errdefs.Unavailable,
				"metadata database %s is locked by another process (is berthd already running?)", path)
		}
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path}
	if len(o.migrations) > 0 {
		if err := db.migrate(o.migrations, o.readOnly); err != nil {
			b.Close()
			return nil, err
		}
	}
	return db, nil
}

// Close releases the database and its lock. Transactions must be done.
func (db *DB) Close() error { return db.bolt.Close() }

// Path returns the file the database lives in.
func (db *DB) Path() string { return db.path }

// View runs fn in a read-only transaction. fn must not keep slices it got
// from the transaction beyond its return (Get returns copies; ForEach's do
// not outlive the callback).
func (db *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, ctx: ctx})
	})
}

// Update runs fn in a read-write transaction and commits it if fn returns
// nil and ctx is still live when it does; otherwise nothing fn did is
// kept. Only one Update runs at a time; keep them short and never wait
// for another goroutine's Update inside one.
func (db *DB) Update(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.Update(func(btx *bolt.Tx) error {
		if err := fn(&Tx{tx: btx, ctx: ctx}); err != nil {
			return err
		}
		return ctx.Err()
	})
}

// Check verifies the structure of the whole file (every page reachable
// once, free pages consistent) and returns the first problem found.
// It reads everything: meant for tests and `berth system check`-style
// diagnostics, not the hot path.
func (db *DB) Check(ctx context.Context) error {
	return db.View(ctx, func(tx *Tx) error {
		for err := range tx.tx.Check() {
			return fmt.Errorf("metadata database %s is corrupt: %w", db.path, err)
		}
		return nil
	})
}
