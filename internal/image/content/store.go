package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// ReadAtCloser reads a committed blob, sequentially or at offsets.
type ReadAtCloser interface {
	io.ReaderAt
	io.Reader
	io.Closer
	// Size is the blob's length in bytes.
	Size() int64
}

// Store is a content store rooted at one directory. It is safe for
// concurrent use by many goroutines, and several Stores (in one or more
// processes) may share a root.
type Store struct {
	root  string
	locks *refLocks
}

// Open opens (creating if needed) the content store rooted at root.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "content store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("content store %s: %w", root, err)
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Join(abs, "blobs", "sha256"), 0o755},
		{filepath.Join(abs, "ingest"), 0o700},
		{filepath.Join(abs, "locks"), 0o700},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("content store %s: %w", root, err)
		}
	}
	return &Store{root: abs, locks: newRefLocks(filepath.Join(abs, "locks"))}, nil
}

// ValidateDigest reports whether d is a well-formed sha256 digest, the only
// algorithm the store accepts. The check also guarantees that the digest
// cannot name a path outside the store.
func ValidateDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid digest %q: %w", string(d), err)
	}
	if d.Algorithm() != digest.SHA256 {
		return errdefs.Newf(errdefs.InvalidArgument, "unsupported digest algorithm %q in %q (only sha256)", string(d.Algorithm()), string(d))
	}
	return nil
}

// Path returns where the blob d lives (or would live) on disk, for callers
// that hard-link or map blobs. It returns "" for an invalid digest.
func (s *Store) Path(d digest.Digest) string {
	if ValidateDigest(d) != nil {
		return ""
	}
	return s.blobPath(d)
}

func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded())
}

func (s *Store) blobDir() string { return filepath.Join(s.root, "blobs", "sha256") }

// Info describes the blob d; a NotFound error if it is not committed.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	if err := ValidateDigest(d); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	st, err := os.Lstat(s.blobPath(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, errdefs.Newf(errdefs.NotFound, "content %s: not found", d)
		}
		return Info{}, fmt.Errorf("content %s: %w", d, err)
	}
	return Info{Digest: d, Size: st.Size(), CreatedAt: st.ModTime()}, nil
}

// Exists reports whether blob d is committed. An invalid digest does not
// exist.
func (s *Store) Exists(d digest.Digest) bool {
	if ValidateDigest(d) != nil {
		return false
	}
	_, err := os.Lstat(s.blobPath(d))
	return err == nil
}

type blobReader struct {
	*os.File
	size int64
}

func (r *blobReader) Size() int64 { return r.size }

// Open opens the committed blob d for reading; a NotFound error if missing.
// The caller closes the reader.
func (s *Store) Open(ctx context.Context, d digest.Digest) (ReadAtCloser, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.Newf(errdefs.NotFound, "content %s: not found", d)
		}
		return nil, fmt.Errorf("content %s: %w", d, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content %s: %w", d, err)
	}
	return &blobReader{File: f, size: st.Size()}, nil
}

// Delete removes the committed blob d; a NotFound error if missing. Readers
// that already opened it keep reading the old bytes.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := ValidateDigest(d); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(d)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.Newf(errdefs.NotFound, "content %s: not found", d)
		}
		return fmt.Errorf("delete content %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in no particular order. An error
// from fn stops the walk and is returned. Ingests are never visited.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	dir, err := os.Open(s.blobDir())
	if err != nil {
		return fmt.Errorf("walk content: %w", err)
	}
	defer dir.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := dir.ReadDir(256)
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
			if !e.Type().IsRegular() || ValidateDigest(d) != nil {
				continue // not a blob (a stray file); never reported
			}
			st, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while walking
			}
			if err != nil {
				return fmt.Errorf("walk content: %w", err)
			}
			if err := fn(Info{Digest: d, Size: st.Size(), CreatedAt: st.ModTime()}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk content: %w", err)
		}
	}
}

// Put writes r as blob expected (size bytes, or unknown when size <= 0)
// and commits it. If the blob already exists Put returns nil without
// reading r. An empty expected digest commits whatever r holds.
func (s *Store) Put(ctx context.Context, r io.Reader, expected digest.Digest, size int64) error {
	ref := "put-" + string(expected)
	if expected == "" {
		ref = "put-" + randomID()
	}
	w, err := s.Writer(ctx, ref, expected, size)
	if errdefs.Is(err, errdefs.AlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	if w.Offset() > 0 {
		// A previous Put of the same blob was interrupted; r starts at 0.
		if err := w.Truncate(0); err != nil {
			return err
		}
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("put content %s: %w", expected, err)
	}
	return w.Commit(ctx)
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
