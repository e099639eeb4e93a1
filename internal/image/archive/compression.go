package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Compression is the encoding of a layer blob.
type Compression int

// The supported encodings.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Detect names the encoding of a blob from its first bytes.
func Detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// CompressedDigester is implemented by the reader DecompressStream returns.
// Apply uses it to report the blob digest along with the diffID, from one
// pass over the data.
type CompressedDigester interface {
	// CompressedDigest reads whatever is left of the stream, then returns
	// the sha256 and length of the compressed bytes consumed.
	CompressedDigest() (digest.Digest, int64, error)
	Compression() Compression
}

// Stream is the decompressed view of a blob, returned by DecompressStream.
type Stream struct {
	compression Compression
	raw         *bufio.Reader // over the hashing reader of the blob
	counted     *hashReader
	dec         io.Reader // decompressed bytes
	closeDec    func()
	eof         bool
	closed      bool
}

var _ CompressedDigester = (*Stream)(nil)

// DecompressStream detects gzip, zstd or no compression from the magic
// bytes of r and returns a reader of the uncompressed bytes. The reader is
// a *Stream: it also hashes the compressed bytes as they pass, so one read
// gives both the blob digest and (through Apply) the diffID. gzip is
// decoded in a separate goroutine ahead of the consumer, so decompression
// overlaps with unpacking on machines with more than one CPU; zstd decodes
// blocks concurrently on its own. Corrupt or truncated data surfaces as a
// read error of class InvalidArgument.
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	hr := &hashReader{r: r, h: sha256.New()}
	raw := bufio.NewReaderSize(hr, 128<<10)
	head, err := raw.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Uncompressed, fmt.Errorf("reading blob header: %w", err)
	}
	s := &Stream{compression: Detect(head), raw: raw, counted: hr, closeDec: func() {}}
	switch s.compression {
	case Gzip:
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, Gzip, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("gzip: %w", err))
		}
		ra := newReadahead(zr, 1<<20, 4, func() { zr.Close() })
		s.dec, s.closeDec = ra, ra.Close
	case Zstd:
		zr, err := zstd.NewReader(raw, zstd.WithDecoderMaxMemory(1<<34))
		if err != nil {
			return nil, Zstd, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("zstd: %w", err))
		}
		s.dec, s.closeDec = zr, zr.Close
	default:
		s.dec = raw
	}
	return s, s.compression, nil
}

// Read reads uncompressed bytes.
func (s *Stream) Read(p []byte) (int, error) {
	if s.closed {
		return 0, errors.New("read of a closed stream")
	}
	n, err := s.dec.Read(p)
	if err != nil {
		if errors.Is(err, io.EOF) {
			s.eof = true
		} else if s.compression != Uncompressed {
			err = errdefs.With(errdefs.InvalidArgument, fmt.Errorf("%s stream: %w", s.compression, err))
		}
	}
	return n, err
}

// Compression reports the detected encoding.
func (s *Stream) Compression() Compression { return s.compression }

// CompressedDigest implements CompressedDigester.
func (s *Stream) CompressedDigest() (digest.Digest, int64, error) {
	if s.closed {
		return "", 0, errors.New("digest of a closed stream")
	}
	if !s.eof {
		if _, err := io.Copy(io.Discard, s); err != nil {
			return "", 0, err
		}
	}
	// The decoder may stop before the blob ends (zstd skippable frames,
	// gzip padding); the blob digest covers every byte.
	if _, err := io.Copy(io.Discard, s.raw); err != nil {
		return "", 0, fmt.Errorf("reading blob: %w", err)
	}
	return digest.NewDigest(digest.SHA256, s.counted.h), s.counted.n, nil
}

// Close releases the decoder and tells its goroutines to stop. It does not
// close the underlying reader and does not wait for a read from it that is
// in progress: a stalled network stream cannot hang Close; closing that
// stream afterwards ends the read.
func (s *Stream) Close() error {
	if !s.closed {
		s.closed = true
		s.closeDec()
	}
	return nil
}

// hashReader hashes and counts what passes through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n += int64(n)
	}
	return n, err
}

// readahead runs src in its own goroutine, filling up to depth buffers of
// size bytes ahead of the consumer.
type readahead struct {
	full   chan []byte
	free   chan []byte
	stop   chan struct{}
	buf    []byte // the buffer being consumed
	cur    []byte // its unread part
	err    error  // set by the producer before full is closed
	once   sync.Once
	closed bool
}

func newReadahead(src io.Reader, size, depth int, onExit func()) *readahead {
	ra := &readahead{
		full: make(chan []byte, depth),
		free: make(chan []byte, depth),
		stop: make(chan struct{}),
	}
	for range depth {
		ra.free <- make([]byte, size)
	}
	go ra.produce(src, onExit)
	return ra
}

// produce owns src: it is the only goroutine reading it, and calls onExit
// (which releases src) when it ends.
func (ra *readahead) produce(src io.Reader, onExit func()) {
	defer onExit()
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			select {
			case ra.full <- buf[:n]:
			case <-ra.stop:
				return
			}
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	if ra.closed {
		return 0, errors.New("read after close")
	}
	if len(ra.cur) == 0 {
		buf, ok := <-ra.full
		if !ok {
			return 0, ra.err
		}
		ra.buf, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	if len(ra.cur) == 0 {
		ra.free <- ra.buf[:cap(ra.buf)]
		ra.buf, ra.cur = nil, nil
	}
	return n, nil
}

// Close tells the producer to stop; it exits at its next step.
func (ra *readahead) Close() {
	ra.once.Do(func() {
		ra.closed = true
		close(ra.stop)
	})
}

// Compress returns a writer that encodes what is written to it onto w with
// compression c. level 0 is the encoding's default; otherwise it is a gzip
// level (1-9) or a zstd level (1-22), clamped. Close flushes the encoding
// but does not close w. gzip output is produced by several goroutines when
// the input is large enough to pay (see parallelGzip).
func Compress(w io.Writer, c Compression, level int) io.WriteCloser {
	switch c {
	case Gzip:
		if level <= 0 {
			level = gzip.DefaultCompression
		}
		return newParallelGzip(w, min(level, gzip.BestCompression))
	case Zstd:
		opts := []zstd.EOption{}
		if level > 0 {
			opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
		}
		zw, err := zstd.NewWriter(w, opts...)
		if err != nil { // only invalid options fail, and ours are valid
			return &errWriter{err: err}
		}
		return zw
	}
	return nopCloser{w}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type errWriter struct{ err error }

func (e *errWriter) Write([]byte) (int, error) { return 0, e.err }
func (e *errWriter) Close() error              { return e.err }
