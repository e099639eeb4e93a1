package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Tx is a transaction, valid only inside the View or Update callback that
// received it.
type Tx struct {
	tx  *bolt.Tx
	ctx context.Context
}

// Context returns the context the transaction was started with.
func (tx *Tx) Context() context.Context { return tx.ctx }

// Writable reports whether tx belongs to an Update.
func (tx *Tx) Writable() bool { return tx.tx.Writable() }

// OnCommit registers fn to run after the transaction commits, and only
// then: the place to delete files whose records the transaction removed.
func (tx *Tx) OnCommit(fn func()) { tx.tx.OnCommit(fn) }

// Bucket returns the bucket at path, e.g. Bucket("containers", id,
// "mounts"). In an Update, missing buckets along the path are created; in
// a View, a missing bucket is returned as an empty, read-only bucket, so
// readers need not tell "never written" from "empty". An empty path or
// name, or a path running through a key that holds a value, is an
// InvalidArgument error.
func (tx *Tx) Bucket(path ...string) (*Bucket, error) {
	if len(path) == 0 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "metadata: empty bucket path")
	}
	return descend(tx.tx, nil, nil, tx.tx.Writable(), path)
}

// DeleteBucket removes the bucket at path with everything in it. A missing
// bucket is not an error.
func (tx *Tx) DeleteBucket(path ...string) error {
	if len(path) == 0 {
		return errdefs.Newf(errdefs.InvalidArgument, "metadata: empty bucket path")
	}
	if !tx.Writable() {
		return errReadOnly(path)
	}
	if len(path) == 1 {
		return ignoreMissing(tx.tx.DeleteBucket([]byte(path[0])), path)
	}
	parent := lookup(tx.tx, path[:len(path)-1])
	if parent == nil {
		return nil
	}
	return ignoreMissing(parent.DeleteBucket([]byte(path[len(path)-1])), path)
}

func ignoreMissing(err error, path []string) error {
	if err == nil || errors.Is(err, bolterrors.ErrBucketNotFound) {
		return nil
	}
	return fmt.Errorf("metadata: delete bucket %s: %w", strings.Join(path, "/"), err)
}

// lookup follows path without creating anything; nil if any part is missing.
func lookup(btx *bolt.Tx, path []string) *bolt.Bucket {
	b := btx.Bucket([]byte(path[0]))
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket([]byte(name))
	}
	return b
}

// descend walks from b (nil: the transaction root) along rel, creating
// buckets when create is set. base is the path of b, for messages.
func descend(btx *bolt.Tx, b *bolt.Bucket, base []string, create bool, rel []string) (*Bucket, error) {
	full := append(append([]string(nil), base...), rel...)
	for i, name := range rel {
		if name == "" {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "metadata: empty bucket name in path %q", strings.Join(full, "/"))
		}
		key := []byte(name)
		var next *bolt.Bucket
		if b == nil {
			next = btx.Bucket(key)
		} else {
			next = b.Bucket(key)
		}
		if next == nil && create {
			var err error
			if b == nil {
				next, err = btx.CreateBucket(key)
			} else {
				next, err = b.CreateBucket(key)
			}
			if err != nil {
				return nil, errdefs.Newf(errdefs.InvalidArgument, "metadata: create bucket %s: %w",
					strings.Join(full[:len(base)+i+1], "/"), err)
			}
		}
		if next == nil {
			return &Bucket{path: full}, nil
		}
		b = next
	}
	return &Bucket{b: b, path: full, writable: create}, nil
}

// Bucket is a set of sorted keys, each holding a value or a nested bucket.
// A Bucket is valid only during its transaction.
type Bucket struct {
	b        *bolt.Bucket // nil: missing bucket seen in a View
	path     []string
	writable bool
}

func errReadOnly(path []string) error {
	return errdefs.Newf(errdefs.FailedPrecondition, "metadata: bucket %s: write in a read-only transaction", strings.Join(path, "/"))
}

// Path returns the bucket's path from the root.
func (b *Bucket) Path() []string { return append([]string(nil), b.path...) }

// Bucket returns a nested bucket, with the creation rules of Tx.Bucket.
func (b *Bucket) Bucket(path ...string) (*Bucket, error) {
	if len(path) == 0 {
		return b, nil
	}
	if b.b == nil {
		return &Bucket{path: append(b.Path(), path...)}, nil
	}
	return descend(b.b.Tx(), b.b, b.path, b.writable, path)
}

// Get returns a copy of the value at key, or nil if there is none (or key
// names a nested bucket).
func (b *Bucket) Get(key []byte) []byte {
	if b.b == nil {
		return nil
	}
	return bytes.Clone(b.b.Get(key))
}

// Put sets key to value. Keys must be non-empty.
func (b *Bucket) Put(key, value []byte) error {
	if !b.writable {
		return errReadOnly(b.path)
	}
	if err := b.b.Put(key, value); err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "metadata: bucket %s: put %q: %w", strings.Join(b.path, "/"), key, err)
	}
	return nil
}

// Delete removes key; a missing key is not an error. Deleting a nested
// bucket this way is an error: use DeleteBucket.
func (b *Bucket) Delete(key []byte) error {
	if !b.writable {
		return errReadOnly(b.path)
	}
	if err := b.b.Delete(key); err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "metadata: bucket %s: delete %q: %w", strings.Join(b.path, "/"), key, err)
	}
	return nil
}

// DeleteBucket removes the nested bucket name; missing is not an error.
func (b *Bucket) DeleteBucket(name string) error {
	if !b.writable {
		return errReadOnly(b.path)
	}
	return ignoreMissing(b.b.DeleteBucket([]byte(name)), append(b.Path(), name))
}

// ForEach calls fn for every key in byte order; v is nil for a nested
// bucket. k and v are valid only during the call and must not be
// modified. The bucket must not be changed during the iteration. An error
// from fn stops the iteration and is returned.
func (b *Bucket) ForEach(fn func(k, v []byte) error) error {
	if b.b == nil {
		return nil
	}
	return b.b.ForEach(fn)
}

// Len returns the number of keys (values and nested buckets).
func (b *Bucket) Len() int {
	n := 0
	_ = b.ForEach(func(_, _ []byte) error { n++; return nil })
	return n
}

// Exists reports whether the bucket is in the database (a View returns
// missing buckets as empty ones).
func (b *Bucket) Exists() bool { return b.b != nil }

// NextSequence returns the next value of the bucket's sequence, starting
// at 1, for stable auto-incrementing IDs.
func (b *Bucket) NextSequence() (uint64, error) {
	if !b.writable {
		return 0, errReadOnly(b.path)
	}
	return b.b.NextSequence()
}

// GetJSON decodes the JSON value at key in the bucket at bucketPath into v.
// A missing key (or bucket) is errdefs.NotFound.
func GetJSON(tx *Tx, bucketPath []string, key string, v any) error {
	b, err := tx.Bucket(bucketPath...)
	if err != nil {
		return err
	}
	data := b.Get([]byte(key))
	if data == nil {
		return errdefs.Newf(errdefs.NotFound, "metadata: %s/%s not found", strings.Join(bucketPath, "/"), key)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("metadata: decode %s/%s: %w", strings.Join(bucketPath, "/"), key, err)
	}
	return nil
}

// PutJSON stores v as JSON at key in the bucket at bucketPath, creating
// the buckets as needed.
func PutJSON(tx *Tx, bucketPath []string, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "metadata: encode %s/%s: %w", strings.Join(bucketPath, "/"), key, err)
	}
	b, err := tx.Bucket(bucketPath...)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// ForEachJSON decodes every value in the bucket at bucketPath as a T and
// calls fn with its key, in key order. Nested buckets are skipped.
func ForEachJSON[T any](tx *Tx, bucketPath []string, fn func(key string, v T) error) error {
	b, err := tx.Bucket(bucketPath...)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, data []byte) error {
		if data == nil {
			return nil
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("metadata: decode %s/%s: %w", strings.Join(bucketPath, "/"), k, err)
		}
		return fn(string(k), v)
	})
}
