// Package progress carries the progress of long operations (pull, push,
// load, import, build) from where the work happens to whoever shows it.
// Producers call a Sink; the Engine API encodes events as Docker's JSON
// messages (Encoder), so the docker CLI draws its usual progress bars.
//
// It owns the event vocabulary and the wire format of progress messages; it
// must not know about images or registries. Entry points: Sink, Encoder.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Event is one progress update. ID is the short id of the object the line
// is about (a layer's first 12 hex digits), empty for a whole-operation
// status line.
type Event struct {
	ID      string
	Status  string // "Downloading", "Extracting", "Pull complete", ...
	Current int64
	Total   int64
	// Aux is an auxiliary JSON object (e.g. the pushed digest), Docker's
	// "aux" field.
	Aux any
	// Err ends the stream with an error message.
	Err error
}

// Sink receives events. It must be safe for concurrent use; a slow sink
// slows the operation, so sinks should be cheap (the Encoder rate-limits
// byte-count updates).
type Sink interface {
	Update(Event)
}

// Discard is a Sink that drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Update(Event) {}

// Func adapts a function to a Sink.
type Func func(Event)

// Update calls f(e).
func (f Func) Update(e Event) { f(e) }

// ShortID is the 12-hex-digit form Docker shows for layer digests.
func ShortID(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 {
		digest = digest[i+1:]
	}
	if len(digest) > 12 {
		digest = digest[:12]
	}
	return digest
}

// Message is Docker's JSON progress message (jsonmessage.JSONMessage).
type Message struct {
	Status         string          `json:"status,omitempty"`
	ProgressDetail *Detail         `json:"progressDetail,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	ID             string          `json:"id,omitempty"`
	Aux            json.RawMessage `json:"aux,omitempty"`
	ErrorDetail    *ErrorDetail    `json:"errorDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
}

// Detail is the byte count of a progress message.
type Detail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// ErrorDetail is the error of a failed stream.
type ErrorDetail struct {
	Message string `json:"message"`
}

// Encoder writes events as newline-delimited Docker JSON messages. Byte
// count updates of one ID are sent at most every Interval (default 100 ms)
// so a fast local pull does not flood the client; status changes are
// always sent.
type Encoder struct {
	mu       sync.Mutex
	w        io.Writer
	flush    func()
	Interval time.Duration
	last     map[string]time.Time
	err      error
}

// NewEncoder writes to w; flush, if not nil, is called after each message
// (an http.Flusher's Flush).
func NewEncoder(w io.Writer, flush func()) *Encoder {
	return &Encoder{w: w, flush: flush, Interval: 100 * time.Millisecond, last: map[string]time.Time{}}
}

// Update encodes e.
func (e *Encoder) Update(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return
	}
	if ev.Err == nil && ev.Total > 0 && ev.Current > 0 && ev.Current < ev.Total {
		now := time.Now()
		if t, ok := e.last[ev.ID+ev.Status]; ok && now.Sub(t) < e.Interval {
			return
		}
		e.last[ev.ID+ev.Status] = now
	}
	b, err := json.Marshal(ToMessage(ev))
	if err != nil {
		e.err = err
		return
	}
	if _, err := e.w.Write(append(b, '\r', '\n')); err != nil {
		e.err = err
		return
	}
	if e.flush != nil {
		e.flush()
	}
}

// Err returns the first write error, if any.
func (e *Encoder) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// ToMessage converts an event to Docker's message, including the legacy
// "progress" bar string and "error" field older clients still read.
func ToMessage(ev Event) Message {
	if ev.Err != nil {
		return Message{ErrorDetail: &ErrorDetail{Message: ev.Err.Error()}, Error: ev.Err.Error()}
	}
	m := Message{Status: ev.Status, ID: ev.ID}
	if ev.Total > 0 || ev.Current > 0 {
		m.ProgressDetail = &Detail{Current: ev.Current, Total: ev.Total}
		m.Progress = Bar(ev.Current, ev.Total)
	} else if ev.ID != "" {
		// Docker sends an empty object for per-layer status lines.
		m.ProgressDetail = &Detail{}
	}
	if ev.Aux != nil {
		if b, err := json.Marshal(ev.Aux); err == nil {
			m.Aux = b
		}
	}
	return m
}

// Bar renders Docker's 50-column progress bar with sizes.
func Bar(current, total int64) string {
	if total <= 0 {
		return HumanSize(current)
	}
	const width = 50
	n := int(float64(width) * float64(current) / float64(total))
	if n > width {
		n = width
	}
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %s/%s", bar, HumanSize(current), HumanSize(total))
}

// HumanSize formats bytes as Docker does (decimal units, 3 significant
// digits): 1.23MB, 512B.
func HumanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
