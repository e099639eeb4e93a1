package logger

import (
	"encoding/binary"
	"errors"
	"time"
)

// format is the on-disk record encoding of a file driver. A file is a
// sequence of records in write order (so in timestamp order); the reader
// needs to find record boundaries forwards, backwards and from an
// arbitrary offset (binary search), which each format supports cheaply.
type format interface {
	// appendRecord encodes m (with attrs, a pre-encoded attribute blob
	// from attrBlob, possibly nil) onto buf.
	appendRecord(buf []byte, m *Message, attrs []byte) []byte
	// attrBlob pre-encodes the extra attributes once per logger.
	attrBlob(attrs map[string]string) []byte
	// split returns the length of the first complete record in b, 0 if
	// b holds no complete record yet.
	split(b []byte) (int, error)
	// decode fills m from one complete record; m.Line may alias rec.
	decode(rec []byte, m *Message) error
	// timestamp decodes only the time of a record.
	timestamp(rec []byte) (time.Time, error)
	// prevStart returns the start of the record that ends at end, no
	// lower than lo.
	prevStart(c *blockCache, lo, end int64) (int64, error)
	// nextStart returns the first record start at or after off (< end),
	// or end when there is none.
	nextStart(c *blockCache, off, end int64) (int64, error)
	// trimEnd returns the end of the last complete record at or before
	// end (a writer may be half-way through a record).
	trimEnd(c *blockCache, lo, end int64) (int64, error)
}

var errCorrupt = errors.New("corrupt log record")

// localFormat is berth's compact binary framing for the "local" driver
// (Docker frames protobuf entries; berth's files are not interchangeable
// with Docker's). A record is
//
//	u32 n | magic 0xB7 | flags | i64 unix-nanos | [u32 a | attrs] | line | u32 n
//
// big-endian, n the payload length; flags 1 stderr, 2 partial, 4 attrs
// present (a JSON object of a bytes, written once per logger). The leading length reads forwards, the
// trailing one backwards; the magic and the matching lengths let a reader
// resynchronise from an arbitrary offset.
type localFormat struct{}

const (
	localMagic     = 0xB7
	localHdr       = 4 + 10
	localMaxRecord = 1 << 20
)

func (localFormat) attrBlob(attrs map[string]string) []byte { return jsonFormat{}.attrBlob(attrs) }

func (localFormat) appendRecord(buf []byte, m *Message, attrs []byte) []byte {
	n := uint32(10 + len(m.Line))
	var flags byte
	if m.Source == "stderr" {
		flags |= 1
	}
	if m.Partial {
		flags |= 2
	}
	if len(attrs) > 0 {
		flags |= 4
		n += uint32(4 + len(attrs))
	}
	buf = binary.BigEndian.AppendUint32(buf, n)
	buf = append(buf, localMagic, flags)
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.Timestamp.UnixNano()))
	if len(attrs) > 0 {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(attrs)))
		buf = append(buf, attrs...)
	}
	buf = append(buf, m.Line...)
	return binary.BigEndian.AppendUint32(buf, n)
}

func (localFormat) split(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint32(b))
	if n < 10 || n > localMaxRecord || len(b) > 5 && (b[4] != localMagic || b[5]&^7 != 0) {
		return 0, errCorrupt
	}
	if len(b) < n+8 {
		return 0, nil
	}
	if b[4] != localMagic || int(binary.BigEndian.Uint32(b[4+n:])) != n {
		return 0, errCorrupt
	}
	return n + 8, nil
}

func (localFormat) decode(rec []byte, m *Message) error {
	if len(rec) < localHdr+4 {
		return errCorrupt
	}
	flags := rec[5]
	m.Source = "stdout"
	if flags&1 != 0 {
		m.Source = "stderr"
	}
	m.Partial = flags&2 != 0
	m.Timestamp = time.Unix(0, int64(binary.BigEndian.Uint64(rec[6:]))).UTC()
	body := rec[localHdr : len(rec)-4]
	m.Attrs = nil
	if flags&4 != 0 {
		if len(body) < 4 || int(binary.BigEndian.Uint32(body)) > len(body)-4 {
			return errCorrupt
		}
		a := int(binary.BigEndian.Uint32(body))
		p := jsonParser{b: body[4 : 4+a]}
		var ok bool
		if m.Attrs, ok = p.object(); !ok {
			return errCorrupt
		}
		body = body[4+a:]
	}
	m.Line = body
	return nil
}

func (localFormat) timestamp(rec []byte) (time.Time, error) {
	if len(rec) < localHdr {
		return time.Time{}, errCorrupt
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(rec[6:]))).UTC(), nil
}

func (f localFormat) prevStart(c *blockCache, lo, end int64) (int64, error) {
	if end-lo >= localHdr+4 {
		if b, err := c.get(end-4, 4); err == nil {
			start := end - 8 - int64(binary.BigEndian.Uint32(b))
			if start >= lo {
				if e, ok := f.validAt(c, start, end); ok && e == end {
					return start, nil
				}
			}
		}
	}
	// Damage before end (a torn write): find the nearest valid record
	// ending at or before end; the bytes between are returned as one
	// "record" that readers skip.
	for p := end - localHdr - 4; p >= lo && p >= end-localMaxRecord-8; p-- {
		if e, ok := f.validAt(c, p, end); ok {
			if e == end {
				return p, nil
			}
			return e, nil
		}
	}
	return lo, nil
}

// validAt reports whether a complete, well-framed record starts at off.
func (f localFormat) validAt(c *blockCache, off, end int64) (int64, bool) {
	if end-off < localHdr+4 {
		return 0, false
	}
	b, err := c.get(off, localHdr)
	if err != nil {
		return 0, false
	}
	n := int64(binary.BigEndian.Uint32(b))
	if n < 10 || n > localMaxRecord || b[4] != localMagic || b[5]&^7 != 0 || off+n+8 > end {
		return 0, false
	}
	t, err := c.get(off+4+n, 4)
	if err != nil || int64(binary.BigEndian.Uint32(t)) != n {
		return 0, false
	}
	return off + n + 8, true
}

func (f localFormat) nextStart(c *blockCache, off, end int64) (int64, error) {
	for p := off; p < end; p++ {
		// A candidate must be followed by another valid record (or the
		// end) so that a line's bytes that look like a frame do not fool
		// the resync.
		if next, ok := f.validAt(c, p, end); ok {
			if next == end {
				return p, nil
			}
			if _, ok := f.validAt(c, next, end); ok {
				return p, nil
			}
		}
	}
	return end, nil
}

func (f localFormat) trimEnd(c *blockCache, lo, end int64) (int64, error) {
	// Walk forward would be O(n); instead trust the trailer at end-4 if
	// it matches a header, else resync backwards from a recent offset.
	if end <= lo {
		return lo, nil
	}
	if s, err := f.prevStart(c, lo, end); err == nil {
		if e, ok := f.validAt(c, s, end); ok && e == end {
			return end, nil
		}
	}
	// The tail is a record being written: find the last complete record
	// by resynchronising in a window before end and walking forwards.
	for back := int64(64 << 10); ; back *= 2 {
		from := max(lo, end-back)
		for p := from; p < end; p++ {
			q := p
			for {
				e, ok := f.validAt(c, q, end)
				if !ok {
					break
				}
				q = e
			}
			if q > p && f.incompleteAt(c, q, end) {
				return q, nil
			}
		}
		if from == lo {
			return lo, nil
		}
	}
}

// incompleteAt reports whether the bytes from off to end can be the
// beginning of a record still being written.
func (f localFormat) incompleteAt(c *blockCache, off, end int64) bool {
	if off == end {
		return true
	}
	if end-off < 4 {
		return true
	}
	b, err := c.get(off, min(end-off, localHdr))
	if err != nil {
		return false
	}
	n := int64(binary.BigEndian.Uint32(b))
	if n < 10 || n > localMaxRecord || off+n+8 <= end {
		return false
	}
	return len(b) < 5 || b[4] == localMagic
}
