package logger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/klauspost/compress/gzip"
)

// fileLogger is the writer of the file drivers (json-file, local): one
// write(2) per record on an O_APPEND file, rotation by rename so a reader
// in another process always sees whole files, and gzip of the rotated
// file in one background goroutine per rotation (never per message).
type fileLogger struct {
	mu    sync.Mutex
	fmt   format
	path  string
	opts  fileOpts
	attrs []byte
	f     *os.File
	size  int64
	// first and last timestamps (unix nanos) of the current file, 0 when
	// unknown; stored in the gzip header of the rotated file so readers
	// can skip it without decompressing.
	first, last int64
	buf         []byte
	comp        chan struct{} // closed when the running compression ends
	compErr     error
}

var _ Logger = (*fileLogger)(nil)

func newFileLogger(cfg Config, f format) (*fileLogger, error) {
	opts, err := fileOptions(cfg)
	if err != nil {
		return nil, err
	}
	attrs, err := extraAttrs(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Opts["tag"] != "" { // no default tag: stored only when asked for
		tag, err := parseTag(cfg)
		if err != nil {
			return nil, err
		}
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs["tag"] = tag
	}
	if cfg.Dir == "" || (f == jsonFormat{} && cfg.ContainerID == "") {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "logger: %s needs a log directory and a container ID", driverType(cfg))
	}
	l := &fileLogger{fmt: f, path: filePath(cfg), opts: opts, attrs: f.attrBlob(attrs)}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return nil, fmt.Errorf("logger: create log directory: %w", err)
	}
	for i := 1; i < opts.maxFiles; i++ { // left by a shim killed mid-compression
		_ = os.Remove(rotatedName(l.path, i) + ".gz.tmp")
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *fileLogger) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("logger: open log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		closeQuietly(f)
		return fmt.Errorf("logger: stat log file: %w", err)
	}
	l.f, l.size, l.first, l.last = f, st.Size(), 0, 0
	if l.size > 0 { // a restarted shim: recover the file's time span
		if r, err := os.Open(l.path); err == nil {
			fr := &fileReader{fmt: l.fmt}
			c := newBlockCache(r)
			if end, err := l.fmt.trimEnd(c, 0, l.size); err == nil {
				l.last = fr.lastTimestamp(c, 0, end)
				if first, err := fr.recordAt(c, 0, end); err == nil && end > 0 {
					if t, err := l.fmt.timestamp(first); err == nil {
						l.first = t.UnixNano()
					}
				}
			}
			closeQuietly(r)
		}
	}
	return nil
}

func rotatedName(path string, i int) string { return path + "." + strconv.Itoa(i) }

func (l *fileLogger) Log(m *Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("logger: log file is closed")
	}
	var rerr error // a failed rotation is reported, the record still written
	if l.opts.maxSize > 0 && l.size >= l.opts.maxSize {
		rerr = l.rotate()
		if l.f == nil {
			return rerr
		}
	}
	m = stamped(m)
	l.buf = l.fmt.appendRecord(l.buf[:0], m, l.attrs)
	n, err := l.f.Write(l.buf)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("logger: write log: %w", err)
	}
	ts := m.Timestamp.UnixNano()
	if l.first == 0 {
		l.first = ts
	}
	l.last = ts
	if cap(l.buf) > 4*MaxLineSize*6 { // do not pin a huge buffer
		l.buf = nil
	}
	return rerr
}

// rotate is called with l.mu held. Docker's order: the file that reached
// max-size is closed, older files shift by one, it becomes .1, a new empty
// file takes its name. With max-file=1 the file is truncated instead.
func (l *fileLogger) rotate() error {
	if l.opts.maxFiles >= 2 {
		err := l.shift()
		if l.f == nil { // keep logging into the current name whatever failed
			if oerr := l.open(); err == nil {
				err = oerr
			}
		}
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("logger: truncate log: %w", err)
	}
	l.size, l.first, l.last = 0, 0, 0
	return nil
}

// shift renames the files one step older and opens a new current file.
func (l *fileLogger) shift() error {
	if l.comp != nil { // the previous .1 must be compressed before it moves
		<-l.comp
		l.comp = nil
	}
	unlock, err := lockLog(l.path, true)
	if err != nil {
		return fmt.Errorf("logger: lock log: %w", err)
	}
	defer unlock()
	err = l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("logger: close log for rotation: %w", err)
	}
	oldest := rotatedName(l.path, l.opts.maxFiles-1)
	for _, n := range []string{oldest, oldest + ".gz"} {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logger: rotate: %w", err)
		}
	}
	for i := l.opts.maxFiles - 2; i >= 1; i-- {
		for _, ext := range []string{"", ".gz"} {
			err := os.Rename(rotatedName(l.path, i)+ext, rotatedName(l.path, i+1)+ext)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("logger: rotate: %w", err)
			}
		}
	}
	first, last := l.first, l.last
	if err := os.Rename(l.path, rotatedName(l.path, 1)); err != nil {
		return fmt.Errorf("logger: rotate: %w", err)
	}
	if err := l.open(); err != nil {
		return err
	}
	if l.opts.compress {
		done := make(chan struct{})
		l.comp = done
		go func() {
			defer close(done)
			if err := compressFile(l.path, rotatedName(l.path, 1), first, last); err != nil {
				l.compErr = err // read only after <-done
			}
		}()
	}
	return nil
}

// gzipExtra is the gzip header Extra field of a rotated file: "BL", then
// the first and last record timestamps in unix nanos (0 when unknown).
func gzipExtra(first, last int64) []byte {
	b := []byte("BL")
	b = binary.BigEndian.AppendUint64(b, uint64(first))
	return binary.BigEndian.AppendUint64(b, uint64(last))
}

func parseGzipExtra(b []byte) (first, last int64, ok bool) {
	if len(b) != 18 || b[0] != 'B' || b[1] != 'L' {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(b[2:])), int64(binary.BigEndian.Uint64(b[10:])), true
}

// compressFile writes name.gz (through a temporary name, so a reader sees
// either the plain file or a complete .gz) and removes name.
func compressFile(base, name string, first, last int64) error {
	src, err := os.Open(name)
	if err != nil {
		return err
	}
	defer closeQuietly(src)
	tmp := name + ".gz.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(dst, gzip.BestSpeed)
	zw.Extra = gzipExtra(first, last)
	zw.ModTime = time.Unix(0, last)
	_, err = io.Copy(zw, src)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	// Swap the plain file for the compressed one under the lock, so a
	// reader lists exactly one of them.
	unlock, err := lockLog(base, true)
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	defer unlock()
	if err := os.Rename(tmp, name+".gz"); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Remove(name)
}

func (l *fileLogger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.comp != nil {
		<-l.comp
		l.comp = nil
	}
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err == nil && l.compErr != nil {
		err = fmt.Errorf("logger: compress rotated log: %w", l.compErr)
	}
	return err
}

// blockCache serves small reads at arbitrary offsets of a file through a
// 64 KiB window, for the backwards and bisecting scans of the reader.
type blockCache struct {
	ra  io.ReaderAt
	off int64
	buf []byte
	// reads counts ReadAt calls (tests and benchmarks check the cost).
	reads int
}

const cacheBlock = 64 << 10

func newBlockCache(ra io.ReaderAt) *blockCache { return &blockCache{ra: ra} }

// load fills the window with [off, off+n), short at end of file.
func (c *blockCache) load(off int64, n int) error {
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	c.reads++
	m, err := c.ra.ReadAt(c.buf, off)
	c.off, c.buf = off, c.buf[:m]
	if err == io.EOF {
		err = nil
	}
	return err
}

// get returns the n bytes at off; the slice is valid until the next call.
// A miss loads a small window around the range (bisection probes and
// backward hops both land near their previous position).
func (c *blockCache) get(off, n int64) ([]byte, error) {
	if off >= c.off && off+n <= c.off+int64(len(c.buf)) {
		return c.buf[off-c.off : off-c.off+n], nil
	}
	const w = 4 << 10
	start := max(0, off-w/4)
	if err := c.load(start, int(off+n+w*3/4-start)); err != nil {
		return nil, err
	}
	if off+n > c.off+int64(len(c.buf)) {
		return nil, io.ErrUnexpectedEOF
	}
	return c.buf[off-c.off : off-c.off+n], nil
}

// lastIndexByte returns the offset of the last b in [lo, hi), or -1.
func (c *blockCache) lastIndexByte(b byte, lo, hi int64) (int64, error) {
	// The cached window first: a backward walk hops within it.
	if cend := c.off + int64(len(c.buf)); hi > c.off && hi <= cend && hi > lo {
		from := max(lo, c.off)
		if i := bytes.LastIndexByte(c.buf[from-c.off:hi-c.off], b); i >= 0 {
			return from + int64(i), nil
		}
		hi = from
	}
	step := int64(4 << 10) // most answers are within the last few KiB
	for hi > lo {
		start := max(lo, hi-step)
		step = min(2*step, cacheBlock)
		if err := c.load(start, int(hi-start)); err != nil {
			return -1, err
		}
		if i := bytes.LastIndexByte(c.buf, b); i >= 0 {
			return start + int64(i), nil
		}
		if len(c.buf) == 0 {
			return -1, nil
		}
		hi = start
	}
	return -1, nil
}

// indexByte returns the offset of the first b in [lo, hi), or -1.
func (c *blockCache) indexByte(b byte, lo, hi int64) (int64, error) {
	if cend := c.off + int64(len(c.buf)); lo >= c.off && lo < cend && lo < hi {
		to := min(hi, cend)
		if i := bytes.IndexByte(c.buf[lo-c.off:to-c.off], b); i >= 0 {
			return lo + int64(i), nil
		}
		lo = to
	}
	step := int64(4 << 10) // a probe usually finds a newline within a few KiB
	for lo < hi {
		end := min(hi, lo+step)
		step = min(2*step, cacheBlock)
		if err := c.load(lo, int(end-lo)); err != nil {
			return -1, err
		}
		if i := bytes.IndexByte(c.buf, b); i >= 0 {
			return lo + int64(i), nil
		}
		if len(c.buf) == 0 {
			return -1, nil
		}
		lo += int64(len(c.buf))
	}
	return -1, nil
}
