package api

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/container"
)

// StreamID names a stream of the multiplexed framing.
type StreamID byte

// Stream IDs of the 8-byte frame header. Systemerr carries a daemon error
// inside an attach stream.
const (
	Stdin     StreamID = 0
	Stdout    StreamID = 1
	Stderr    StreamID = 2
	Systemerr StreamID = 3
)

// Multiplexer writes Docker's multiplexed framing: each write becomes one
// frame, an 8-byte header (stream ID, three zero bytes, big-endian uint32
// length) then the bytes. Writers of several streams share one
// Multiplexer, which keeps frames whole.
type Multiplexer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewMultiplexer frames onto w.
func NewMultiplexer(w io.Writer) *Multiplexer { return &Multiplexer{w: w} }

// Writer returns the writer for stream id.
func (m *Multiplexer) Writer(id StreamID) io.Writer { return &muxWriter{m: m, id: id} }

type muxWriter struct {
	m  *Multiplexer
	id StreamID
}

const maxFrame = 1 << 30

func (w *muxWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 || n == 0 {
		chunk := p
		if len(chunk) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		if len(chunk) == 0 {
			return 0, nil
		}
		buf := make([]byte, 8+len(chunk))
		buf[0] = byte(w.id)
		binary.BigEndian.PutUint32(buf[4:8], uint32(len(chunk)))
		copy(buf[8:], chunk)
		w.m.mu.Lock()
		_, err := w.m.w.Write(buf)
		w.m.mu.Unlock()
		if err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// FlushWriter flushes an http.ResponseWriter after every write, for
// streams the client reads as they come (logs, stats, progress).
type FlushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

// NewFlushWriter wraps w.
func NewFlushWriter(w http.ResponseWriter) *FlushWriter {
	return &FlushWriter{w: w, rc: http.NewResponseController(w)}
}

func (f *FlushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// Flush sends what is buffered.
func (f *FlushWriter) Flush() { f.rc.Flush() }

// JSONStream writes a stream of JSON values, one per line, flushed after
// each: application/json and application/x-ndjson and application/jsonl
// are newline-delimited; application/json-seq (RFC 7464) prefixes each
// value with the record separator 0x1E.
type JSONStream struct {
	mu  sync.Mutex
	w   *FlushWriter
	seq bool
}

// StartJSONStream sends the 200 header with contentType right away, so
// the client knows the stream began, and returns the encoder.
func StartJSONStream(w http.ResponseWriter, contentType string) *JSONStream {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	fw := NewFlushWriter(w)
	fw.Flush()
	return &JSONStream{w: fw, seq: contentType == types.MediaTypeJSONSequence}
}

// Send writes v and flushes.
func (s *JSONStream) Send(v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	if s.seq {
		b = append([]byte{0x1e}, b...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(b)
	return err
}

// NegotiateStreamType picks the content type of an event-like stream from
// the Accept header: application/x-ndjson, application/jsonl or
// application/json-seq when the client asks for one (the first listed
// wins, q-values are ignored), else application/json as dockerd always
// sent.
func NegotiateStreamType(r *http.Request) string {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case types.MediaTypeNDJSON:
			return types.MediaTypeNDJSON
		case types.MediaTypeJSONLines:
			return types.MediaTypeJSONLines
		case types.MediaTypeJSONSequence:
			return types.MediaTypeJSONSequence
		}
	}
	return types.MediaTypeJSON
}

// PathStatHeader is the header HEAD and GET /containers/{id}/archive
// carry the stat of the path in.
const PathStatHeader = "X-Docker-Container-Path-Stat"

// SetPathStat sets PathStatHeader to the base64 (standard encoding, as the
// client decodes it) JSON of st.
func SetPathStat(h http.Header, st *container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	h.Set(PathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}
