package content

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ErrDigestMismatch is wrapped (class InvalidArgument) by a Commit whose
// bytes do not hash to the expected digest.
var ErrDigestMismatch = errors.New("digest mismatch")

// ErrSizeMismatch is wrapped by a Commit whose byte count differs from the
// expected size: class FailedPrecondition when bytes are still missing (the
// ingest is kept, write the rest and commit again), InvalidArgument when
// there are too many (the ingest is discarded).
var ErrSizeMismatch = errors.New("size mismatch")

// Writer adds one blob to the store. It holds the ingest's ref lock from
// Store.Writer until Commit, Close or a failed verification releases it.
// A Writer is not safe for concurrent use.
type Writer struct {
	s        *Store
	ref      string
	dir      string
	f        *os.File
	h        hash.Hash
	offset   int64
	expected digest.Digest
	size     int64
	started  time.Time
	dirty    bool
	unlock   func()
	done     bool
}

// Writer opens the ingest named ref to write blob expected of size bytes.
// expected may be empty (the digest is then whatever was written) and size
// <= 0 means unknown; a given digest is always verified by Commit.
//
// If expected is already committed, Writer returns an AlreadyExists error
// and the caller skips the copy (an ingest still held under ref is then
// stale and removed). While another Writer of the same ref is
// open (in any goroutine or process) the call blocks until that one is
// closed or committed, or until ctx ends; so two pulls of one layer under
// the ref "pull-<digest>" download it once. A ref left by an earlier Close
// or crash is resumed: Offset tells how many bytes are already there and
// the caller continues from that point (or Store.Abort to start over).
func (s *Store) Writer(ctx context.Context, ref string, expected digest.Digest, size int64) (*Writer, error) {
	if ref == "" {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "content writer: empty ingest ref")
	}
	if expected != "" {
		if err := ValidateDigest(expected); err != nil {
			return nil, err
		}
	}
	key := refKey(ref)
	if expected != "" && s.Exists(expected) {
		// An ingest left by a crash after its commit's link is stale:
		// remove it (under the ref lock) so it does not linger.
		if _, err := os.Lstat(s.ingestDir(key)); err == nil {
			if unlock, err := s.locks.lock(ctx, key); err == nil {
				_ = os.RemoveAll(s.ingestDir(key))
				unlock()
			}
		}
		return nil, errdefs.Newf(errdefs.AlreadyExists, "content %s: already exists", expected)
	}
	unlock, err := s.locks.lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("content writer %q: waiting for the ingest: %w", ref, err)
	}
	dir := s.ingestDir(key)
	if expected != "" && s.Exists(expected) {
		// Committed by the writer we waited for (or committed before a
		// crash that left the ingest behind).
		_ = os.RemoveAll(dir)
		unlock()
		return nil, errdefs.Newf(errdefs.AlreadyExists, "content %s: already exists", expected)
	}
	w := &Writer{s: s, ref: ref, dir: dir, expected: expected, size: size, unlock: unlock, h: sha256.New()}
	if err := w.open(); err != nil {
		unlock()
		return nil, fmt.Errorf("content writer %q: %w", ref, err)
	}
	return w, nil
}

func refKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:])
}

func (s *Store) ingestDir(key string) string { return filepath.Join(s.root, "ingest", key) }

// open creates the ingest or resumes it, restoring the digest state.
func (w *Writer) open() error {
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return err
	}
	fresh := false
	b, err := os.ReadFile(filepath.Join(w.dir, "ref"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fresh = true // new, or a crash before the ingest was fully set up
	case err != nil:
		return err
	case string(b) != w.ref:
		return fmt.Errorf("ingest %s belongs to ref %q", w.dir, string(b))
	}
	data := filepath.Join(w.dir, "data")
	if fresh {
		w.started = time.Now().UTC()
		_ = os.Remove(data)
		_ = os.Remove(filepath.Join(w.dir, "hashstate"))
		if err := writeFileAtomic(filepath.Join(w.dir, "startedat"), []byte(w.started.Format(time.RFC3339Nano)), false); err != nil {
			return err
		}
		// ref is written last: its presence marks a complete ingest.
		if err := writeFileAtomic(filepath.Join(w.dir, "ref"), []byte(w.ref), true); err != nil {
			return err
		}
	} else {
		w.started = readStartedAt(w.dir)
	}
	f, err := os.OpenFile(data, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.offset = f, st.Size()
	if w.offset > 0 && !w.restoreHash() {
		w.h.Reset()
		if _, err := io.Copy(w.h, io.NewSectionReader(f, 0, w.offset)); err != nil {
			f.Close()
			return fmt.Errorf("rehash partial ingest: %w", err)
		}
	}
	if _, err := f.Seek(w.offset, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	return nil
}

func readStartedAt(dir string) time.Time {
	b, err := os.ReadFile(filepath.Join(dir, "startedat"))
	if err == nil {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil {
			return t
		}
	}
	if st, err := os.Stat(dir); err == nil {
		return st.ModTime()
	}
	return time.Time{}
}

// restoreHash loads hashstate (8-byte offset, then the marshalled sha256
// state) when it describes exactly the bytes in data.
func (w *Writer) restoreHash() bool {
	b, err := os.ReadFile(filepath.Join(w.dir, "hashstate"))
	if err != nil || len(b) < 8 || int64(binary.BigEndian.Uint64(b)) != w.offset {
		return false
	}
	u, ok := w.h.(encoding.BinaryUnmarshaler)
	return ok && u.UnmarshalBinary(b[8:]) == nil
}

func (w *Writer) saveHash() error {
	m, ok := w.h.(encoding.BinaryMarshaler)
	if !ok {
		return nil
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(st)), uint64(w.offset))
	return writeFileAtomic(filepath.Join(w.dir, "hashstate"), append(b, st...), true)
}

// Write appends p to the ingest.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errdefs.Newf(errdefs.FailedPrecondition, "content writer %q: already closed", w.ref)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.offset += int64(n)
	if n > 0 {
		w.dirty = true
	}
	return n, err
}

// Offset is the number of bytes in the ingest so far, including bytes
// written before a resume.
func (w *Writer) Offset() int64 { return w.offset }

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Truncate cuts the ingest back to size bytes (0 to start over), for a
// caller that resumed an ingest but cannot skip ahead in its source.
func (w *Writer) Truncate(size int64) error {
	if w.done {
		return errdefs.Newf(errdefs.FailedPrecondition, "content writer %q: already closed", w.ref)
	}
	if size < 0 || size > w.offset {
		return errdefs.Newf(errdefs.InvalidArgument, "content writer %q: cannot truncate %d bytes to %d", w.ref, w.offset, size)
	}
	if err := w.f.Truncate(size); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(w.dir, "hashstate"))
	w.h.Reset()
	if _, err := io.Copy(w.h, io.NewSectionReader(w.f, 0, size)); err != nil {
		return err
	}
	if _, err := w.f.Seek(size, io.SeekStart); err != nil {
		return err
	}
	w.offset, w.dirty = size, true
	return nil
}

// Commit makes the written bytes visible as a blob: it syncs them, checks
// the size and digest given to Store.Writer, and links the data into
// blobs/ atomically. On a digest mismatch (or too many bytes) the ingest
// is discarded and nothing becomes visible; the error names both digests.
// A blob that already exists is not an error. After Commit (successful or
// not, except a short write) the Writer is closed.
func (w *Writer) Commit(ctx context.Context) error {
	if w.done {
		return errdefs.Newf(errdefs.FailedPrecondition, "content writer %q: already closed", w.ref)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.size > 0 && w.offset != w.size {
		if w.offset < w.size {
			return errdefs.Newf(errdefs.FailedPrecondition, "commit %q: %w: have %d bytes of %d", w.ref, ErrSizeMismatch, w.offset, w.size)
		}
		w.discard()
		return errdefs.Newf(errdefs.InvalidArgument, "commit %q: %w: got %d bytes, expected %d", w.ref, ErrSizeMismatch, w.offset, w.size)
	}
	got := w.Digest()
	if w.expected != "" && got != w.expected {
		w.discard()
		return errdefs.Newf(errdefs.InvalidArgument, "commit %q: %w: content has digest %s, expected %s", w.ref, ErrDigestMismatch, got, w.expected)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit %q: %w", w.ref, err)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return fmt.Errorf("commit %q: %w", w.ref, err)
	}
	data := filepath.Join(w.dir, "data")
	target := w.s.blobPath(got)
	if err := os.Link(data, target); err != nil && !errors.Is(err, fs.ErrExist) {
		_ = w.f.Chmod(0o644) // keep the ingest resumable
		return fmt.Errorf("commit %q: %w", w.ref, err)
	}
	if err := syncDir(w.s.blobDir()); err != nil {
		return fmt.Errorf("commit %q: %w", w.ref, err)
	}
	w.f.Close()
	_ = os.RemoveAll(w.dir)
	w.finish()
	return nil
}

// Close releases the Writer, keeping the partial ingest so that a later
// Writer for the same ref resumes it. Close after Commit is a no-op.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	var err error
	if w.dirty {
		if err = w.f.Sync(); err == nil {
			err = w.saveHash()
		}
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.finish()
	if err != nil {
		return fmt.Errorf("close content writer %q: %w", w.ref, err)
	}
	return nil
}

func (w *Writer) discard() {
	w.f.Close()
	_ = os.RemoveAll(w.dir)
	w.finish()
}

func (w *Writer) finish() {
	w.done = true
	w.unlock()
}

// IngestStatus describes an in-progress (or abandoned) ingest.
type IngestStatus struct {
	Ref       string
	Offset    int64
	StartedAt time.Time
}

// Status reports the ingest ref without waiting for its writer; a NotFound
// error if there is none.
func (s *Store) Status(ctx context.Context, ref string) (IngestStatus, error) {
	if err := ctx.Err(); err != nil {
		return IngestStatus{}, err
	}
	return s.status(s.ingestDir(refKey(ref)), ref)
}

func (s *Store) status(dir, ref string) (IngestStatus, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ref"))
	if err != nil || (ref != "" && string(b) != ref) {
		return IngestStatus{}, errdefs.Newf(errdefs.NotFound, "ingest %q: not found", ref)
	}
	st := IngestStatus{Ref: string(b), StartedAt: readStartedAt(dir)}
	if fi, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		st.Offset = fi.Size()
	}
	return st, nil
}

// ListIngests returns every ingest in the store, for cleanup of abandoned
// writes (Abort the ones that are too old).
func (s *Store) ListIngests(ctx context.Context) ([]IngestStatus, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "ingest"))
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []IngestStatus
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if st, err := s.status(filepath.Join(s.root, "ingest", e.Name()), ""); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// Abort discards the ingest ref, waiting for its open Writer (if any) to
// be closed first; a NotFound error if there is no such ingest.
func (s *Store) Abort(ctx context.Context, ref string) error {
	key := refKey(ref)
	unlock, err := s.locks.lock(ctx, key)
	if err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	defer unlock()
	dir := s.ingestDir(key)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return errdefs.Newf(errdefs.NotFound, "ingest %q: not found", ref)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	return nil
}

// writeFileAtomic replaces path with b through a temporary file and a
// rename, so readers see the old or the new contents, never a mix.
func writeFileAtomic(path string, b []byte, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
