package logger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

// ReadConfig selects the records ReadLogs returns.
type ReadConfig struct {
	// Since and Until bound record timestamps, inclusive; zero means no
	// bound. Since applies before Tail: the result is the last Tail
	// records within [Since, Until].
	Since, Until time.Time
	// Tail is the number of records to return from the end; negative
	// means all (the API's "all"), 0 none (useful with Follow).
	Tail int
	// Follow keeps reading records as they are written, across rotation,
	// until ctx ends, a record is later than Until, or Stopped is closed.
	Follow bool
	// Stopped, when not nil, is closed by the daemon after the container
	// exited and its shim closed the Logger: a follower then returns
	// once it has read everything written. A nil Stopped follows until
	// ctx ends.
	Stopped <-chan struct{}
}

// LogReader reads a container's logs in the daemon.
//
// ReadLogs calls fn for each record in order (oldest first). m and
// m.Line are reused: fn must not retain them after it returns. An error
// from fn stops the read and is returned as is; ReadLogs returns nil
// when everything asked for was delivered, ctx.Err() when ctx ended a
// follow.
//
// Cost: Tail N reads the files backwards in 64 KiB blocks and Since/Until
// bisect on timestamps, so a call costs O(output + log(size)) for plain
// files; a gzip-compressed rotated file is decompressed only when the
// result reaches into it.
type LogReader interface {
	ReadLogs(ctx context.Context, rc ReadConfig, fn func(m *Message) error) error
}

type fileReader struct {
	path string // current file; rotated ones are path.1, path.2.gz, ...
	fmt  format
	// read, when set (tests), counts the bytes read from plain files by
	// the planning scans and the emission of a ReadLogs call.
	read *int64
}

// countingReaderAt counts what a reader reads, for the cost tests.
type countingReaderAt struct {
	ra io.ReaderAt
	n  *int64
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	*c.n += int64(n)
	return n, err
}

func (r *fileReader) readerAt(f *os.File) io.ReaderAt {
	if r.read == nil {
		return f
	}
	return countingReaderAt{f, r.read}
}

var _ LogReader = (*fileReader)(nil)

// segment is one log file in a read, oldest first.
type segment struct {
	name string
	f    *os.File
	gz   bool
	// plain files: the byte range to emit.
	start, end int64
	// gz files: header timestamps (0 unknown) and how many matching
	// records to skip for Tail.
	first, last int64
	skip        int
	cache       *blockCache // plain files, once s.end is known
}

// openSegments opens the rotated files and the current file under the
// directory lock. The current file is last; it is nil when absent.
func (r *fileReader) openSegments() ([]*segment, error) {
	if _, err := os.Stat(filepath.Dir(r.path)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing logged yet
	}
	unlock, err := lockLog(r.path, false)
	if err != nil {
		return nil, fmt.Errorf("logger: lock log: %w", err)
	}
	defer unlock()
	var segs []*segment
	fail := func(err error) ([]*segment, error) {
		closeSegments(segs)
		return nil, fmt.Errorf("logger: open log: %w", err)
	}
	for i := 1; ; i++ {
		s, err := openRotated(rotatedName(r.path, i))
		if err != nil {
			return fail(err)
		}
		if s == nil {
			break
		}
		segs = append([]*segment{s}, segs...)
	}
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return segs, nil
	}
	if err != nil {
		return fail(err)
	}
	segs = append(segs, &segment{name: r.path, f: f})
	return segs, nil
}

// openRotated opens name, or else name.gz, or returns nil when neither
// exists.
func openRotated(name string) (*segment, error) {
	f, err := os.Open(name)
	if err == nil {
		return &segment{name: name, f: f}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err = os.Open(name + ".gz")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := &segment{name: name + ".gz", f: f, gz: true}
	if zr, err := gzip.NewReader(f); err == nil {
		s.first, s.last, _ = parseGzipExtra(zr.Extra)
		closeQuietly(zr)
	}
	return s, nil
}

func closeSegments(segs []*segment) {
	for _, s := range segs {
		if s.f != nil {
			closeQuietly(s.f)
		}
	}
}

func (r *fileReader) ReadLogs(ctx context.Context, rc ReadConfig, fn func(*Message) error) error {
	segs, err := r.openSegments()
	if err != nil {
		return err
	}
	defer func() { closeSegments(segs) }()
	if err := r.plan(segs, rc); err != nil {
		return err
	}
	follow := rc.Follow && (rc.Until.IsZero() || rc.Until.After(time.Now()))
	var m Message
	var cur *segment
	if n := len(segs); n > 0 && !segs[n-1].gz && segs[n-1].name == r.path {
		cur = segs[n-1]
	}
	for _, s := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s == cur && follow {
			break // the follower emits the current file past its snapshot
		}
		if err := r.emit(ctx, s, rc, &m, fn); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	f := &follower{r: r, rc: rc, fn: fn, m: &m}
	if cur != nil && cur.start > 0 {
		// The follower identifies its file after a rotation by the last
		// timestamp it saw: start from the record before its first one.
		if c, err := r.findEnd(cur); err == nil {
			f.lastTS = r.lastTimestamp(c, 0, cur.start)
		}
	}
	if cur != nil {
		if _, err := cur.f.Seek(cur.start, io.SeekStart); err != nil {
			return fmt.Errorf("logger: seek log: %w", err)
		}
		f.f, cur.f = cur.f, nil // the follower owns it now
	}
	return f.run(ctx)
}

// plan decides what each segment contributes: it drops segments outside
// [Since, Until], bisects the plain ones, and walks back from the end for
// Tail. No record is decoded outside the answer except the O(log n)
// probes of the bisection and the gzip files the answer reaches into.
func (r *fileReader) plan(segs []*segment, rc ReadConfig) error {
	since, until := rc.Since.UnixNano(), rc.Until.UnixNano()
	if rc.Since.IsZero() {
		since = 0
	}
	bounded := !rc.Since.IsZero() || !rc.Until.IsZero()
	for _, s := range segs {
		if s.gz {
			if (since != 0 && s.last != 0 && s.last < since) || (!rc.Until.IsZero() && s.first != 0 && s.first > until) {
				s.skip = -1 // nothing in range
			}
			continue
		}
		if !bounded {
			continue // the end is found lazily: Tail may never reach s
		}
		c, err := r.findEnd(s)
		if err != nil {
			return err
		}
		if !rc.Until.IsZero() {
			if s.end, err = r.search(c, 0, s.end, func(t time.Time) bool { return t.After(rc.Until) }); err != nil {
				return err
			}
		}
		if !rc.Since.IsZero() {
			if s.start, err = r.search(c, 0, s.end, func(t time.Time) bool { return !t.Before(rc.Since) }); err != nil {
				return err
			}
		}
	}
	need := rc.Tail
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s.gz || s.skip < 0 {
			if s.gz && rc.Tail >= 0 && s.skip >= 0 {
				if need == 0 {
					s.skip = -1
					continue
				}
				n, err := r.countGzip(s, rc)
				if err != nil {
					return err
				}
				if n > need {
					s.skip = n - need
					n = need
				}
				need -= n
			}
			continue
		}
		c, err := r.findEnd(s)
		if err != nil {
			return err
		}
		if rc.Tail < 0 {
			continue
		}
		if need == 0 {
			s.start, s.skip = s.end, -1
			continue
		}
		p := s.end
		for need > 0 && p > s.start {
			q, err := r.fmt.prevStart(c, s.start, p)
			if err != nil {
				return fmt.Errorf("logger: read log %s backwards: %w", s.name, err)
			}
			p = q
			need--
		}
		s.start = p
	}
	return nil
}

// lastTimestamp returns the time (unix nanos) of the record ending at
// end, 0 when there is none or it does not decode.
func (r *fileReader) lastTimestamp(c *blockCache, lo, end int64) int64 {
	if end <= lo {
		return 0
	}
	p, err := r.fmt.prevStart(c, lo, end)
	if err != nil {
		return 0
	}
	rec, err := r.recordAt(c, p, end)
	if err != nil {
		return 0
	}
	t, err := r.fmt.timestamp(rec)
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

// findEnd sets s.end, once, to the end of the last complete record (a
// writer may be half-way through one) and returns s's block cache.
func (r *fileReader) findEnd(s *segment) (*blockCache, error) {
	if s.cache != nil {
		return s.cache, nil
	}
	st, err := s.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("logger: stat log: %w", err)
	}
	s.cache = newBlockCache(r.readerAt(s.f))
	if s.end, err = r.fmt.trimEnd(s.cache, 0, st.Size()); err != nil {
		return nil, fmt.Errorf("logger: read log %s: %w", s.name, err)
	}
	return s.cache, nil
}

// search returns the start of the first record in [lo, hi) whose time
// satisfies pred (false then true along the file), or hi.
func (r *fileReader) search(c *blockCache, lo, hi int64, pred func(time.Time) bool) (int64, error) {
	if lo >= hi {
		return hi, nil
	}
	// Whole-file answers first: most rotated files are entirely before
	// or after the bound, which costs one record each.
	last, err := r.fmt.prevStart(c, lo, hi)
	if err != nil {
		return 0, err
	}
	if rec, err := r.recordAt(c, last, hi); err == nil {
		if t, err := r.fmt.timestamp(rec); err == nil && !pred(t) {
			return hi, nil
		}
	}
	if rec, err := r.recordAt(c, lo, hi); err == nil {
		if t, err := r.fmt.timestamp(rec); err == nil && pred(t) {
			return lo, nil
		}
	}
	for hi-lo > 16<<10 {
		mid := lo + (hi-lo)/2
		s, err := r.fmt.nextStart(c, mid, hi)
		if err != nil {
			return 0, err
		}
		if s >= hi {
			break
		}
		rec, err := r.recordAt(c, s, hi)
		if err != nil {
			return 0, err
		}
		t, err := r.fmt.timestamp(rec)
		if err != nil {
			return 0, fmt.Errorf("logger: bisect log: %w", err)
		}
		if pred(t) {
			hi = s
		} else {
			lo = s + int64(len(rec))
		}
	}
	for lo < hi {
		rec, err := r.recordAt(c, lo, hi)
		if err != nil { // a damaged frame: resynchronise after it
			if lo, err = r.fmt.nextStart(c, lo+1, hi); err != nil {
				return 0, err
			}
			continue
		}
		if t, err := r.fmt.timestamp(rec); err == nil && pred(t) {
			return lo, nil
		}
		lo += int64(len(rec))
	}
	return hi, nil
}

// recordAt returns the record starting at off (ending by end).
func (r *fileReader) recordAt(c *blockCache, off, end int64) ([]byte, error) {
	for n := min(int64(1024), end-off); ; n = min(n*4, end-off) {
		b, err := c.get(off, n)
		if err != nil {
			return nil, fmt.Errorf("logger: read log: %w", err)
		}
		k, err := r.fmt.split(b)
		if err != nil {
			return nil, fmt.Errorf("logger: read log at %d: %w", off, err)
		}
		if k > 0 {
			return b[:k], nil
		}
		if n == end-off {
			return b, nil // unterminated tail: treat the rest as one record
		}
	}
}

// inRange reports whether t is within rc's bounds.
func inRange(rc ReadConfig, t time.Time) bool {
	return (rc.Since.IsZero() || !t.Before(rc.Since)) && (rc.Until.IsZero() || !t.After(rc.Until))
}

func (r *fileReader) countGzip(s *segment, rc ReadConfig) (int, error) {
	n := 0
	err := r.scanGzip(s, func(rec []byte) error {
		if t, err := r.fmt.timestamp(rec); err == nil && inRange(rc, t) {
			n++
		}
		return nil
	})
	return n, err
}

func (r *fileReader) scanGzip(s *segment, fn func(rec []byte) error) error {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	zr, err := gzip.NewReader(s.f)
	if err != nil {
		return fmt.Errorf("logger: read %s: %w", s.name, err)
	}
	defer closeQuietly(zr)
	rr := newRecordReader(zr, r.fmt)
	rr.bounded = true
	for {
		rec, err := rr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logger: read %s: %w", s.name, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// emit sends the planned records of one segment to fn. Records that do
// not decode (a write torn by a full disk, then continued) are skipped.
func (r *fileReader) emit(ctx context.Context, s *segment, rc ReadConfig, m *Message, fn func(*Message) error) error {
	if s.skip < 0 {
		return nil
	}
	n := 0
	deliver := func(rec []byte) error {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := r.fmt.decode(rec, m); err != nil || !inRange(rc, m.Timestamp) {
			return nil
		}
		return fn(m)
	}
	if s.gz {
		skip := s.skip
		return r.scanGzip(s, func(rec []byte) error {
			if skip > 0 {
				if t, err := r.fmt.timestamp(rec); err == nil && inRange(rc, t) {
					skip--
				}
				return nil
			}
			return deliver(rec)
		})
	}
	if s.end <= s.start {
		return nil
	}
	rr := newRecordReader(io.NewSectionReader(r.readerAt(s.f), s.start, s.end-s.start), r.fmt)
	rr.bounded = true
	for {
		rec, err := rr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logger: read %s: %w", s.name, err)
		}
		if err := deliver(rec); err != nil {
			return err
		}
	}
}

// recordReader splits a stream into records. At the end of the data it
// returns io.EOF and keeps an incomplete record, so a follower can call
// next again once the writer has appended more.
type recordReader struct {
	r    io.Reader
	fmt  format
	buf  []byte
	i, j int // unread data is buf[i:j]
	// bounded: r's end is final (a planned range, a gzip file), so an
	// incomplete record there is damage to skip, not a write to wait for.
	bounded, eof bool
}

const maxRecordBuffer = 8 << 20

func newRecordReader(r io.Reader, f format) *recordReader {
	return &recordReader{r: r, fmt: f, buf: make([]byte, 64<<10)}
}

func (rr *recordReader) reset(r io.Reader) { rr.r, rr.i, rr.j, rr.eof = r, 0, 0, false }

// pending reports how many bytes of an incomplete record are buffered.
func (rr *recordReader) pending() int { return rr.j - rr.i }

func (rr *recordReader) next() ([]byte, error) {
	for {
		n, err := rr.fmt.split(rr.buf[rr.i:rr.j])
		if err != nil {
			// A damaged frame: resynchronise one byte further on (the
			// local format's magic and trailer make false frames rare).
			rr.i++
			continue
		}
		if n > 0 {
			rec := rr.buf[rr.i : rr.i+n]
			rr.i += n
			return rec, nil
		}
		if rr.eof {
			if _, ok := rr.fmt.(jsonFormat); ok || rr.i == rr.j {
				rr.i = rr.j // an unterminated JSON line: drop it
				return nil, io.EOF
			}
			rr.i++ // a frame claiming more bytes than there are: resync
			continue
		}
		if rr.i > 0 {
			rr.j = copy(rr.buf, rr.buf[rr.i:rr.j])
			rr.i = 0
		}
		if rr.j == len(rr.buf) {
			if len(rr.buf) >= maxRecordBuffer {
				rr.i = rr.j // no record is this big: skip the garbage
				continue
			}
			nb := make([]byte, 2*len(rr.buf))
			copy(nb, rr.buf[:rr.j])
			rr.buf = nb
		}
		k, err := rr.r.Read(rr.buf[rr.j:])
		rr.j += k
		if k > 0 || err == nil {
			continue
		}
		if err == io.EOF && rr.bounded {
			rr.eof = true
			continue
		}
		return nil, err
	}
}
