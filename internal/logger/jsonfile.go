package logger

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonFormat is Docker's json-file format: one object per line,
//
//	{"log":"text\n","stream":"stdout","attrs":{"k":"v"},"time":"2024-01-02T03:04:05.123456789Z"}
//
// with keys in that order, "attrs" only when the labels/env options chose
// some, and strings escaped like Docker's writer (which escapes <, >, &,
// control characters as \u00XX except \n and \r (a tab is \u0009), invalid UTF-8 as \ufffd,
// and U+2028/U+2029). Escaping guarantees a record never contains a raw
// newline, so records are split at '\n'.
type jsonFormat struct{}

func newJSONFile(cfg Config) (Logger, error) {
	return newFileLogger(cfg, jsonFormat{})
}

func newLocal(cfg Config) (Logger, error) {
	return newFileLogger(cfg, localFormat{})
}

func (jsonFormat) attrBlob(attrs map[string]string) []byte {
	if len(attrs) == 0 {
		return nil
	}
	b, _ := json.Marshal(attrs) // once per logger, keys sorted as Docker's
	return b
}

func (jsonFormat) appendRecord(buf []byte, m *Message, attrs []byte) []byte {
	buf = append(buf, '{')
	if len(m.Line) > 0 || !m.Partial { // Docker omits an empty "log"
		buf = append(buf, `"log":"`...)
		buf = appendEscaped(buf, m.Line)
		if !m.Partial {
			buf = append(buf, `\n`...)
		}
		buf = append(buf, `",`...)
	}
	buf = append(buf, `"stream":"`...)
	buf = appendEscaped(buf, []byte(m.Source))
	buf = append(buf, '"')
	if len(attrs) > 0 {
		buf = append(buf, `,"attrs":`...)
		buf = append(buf, attrs...)
	}
	buf = append(buf, `,"time":"`...)
	buf = m.Timestamp.UTC().AppendFormat(buf, time.RFC3339Nano)
	return append(buf, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s as the inside of a JSON string.
func appendEscaped(buf, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if 0x20 <= b && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			default: // including '\t', which Docker writes as \u0009
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(buf, s[start:]...)
}

func (jsonFormat) split(b []byte) (int, error) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return i + 1, nil
	}
	return 0, nil
}

// decode parses one record. It accepts any key order and ignores unknown
// keys, so files written by Docker read too.
func (jsonFormat) decode(rec []byte, m *Message) error {
	*m = Message{Line: m.Line[:0]}
	p := jsonParser{b: rec}
	if !p.consume('{') {
		return errCorrupt
	}
	for !p.consume('}') {
		key, ok := p.raw()
		if !ok || !p.consume(':') {
			return errCorrupt
		}
		switch string(key) {
		case "log":
			m.Line, ok = p.str(m.Line[:0])
		case "stream":
			var s []byte
			s, ok = p.raw()
			m.Source = streamName(s)
		case "time":
			var s []byte
			if s, ok = p.raw(); ok {
				t, err := parseTime(s)
				if err != nil {
					return errCorrupt
				}
				m.Timestamp = t
			}
		case "attrs":
			m.Attrs, ok = p.object()
		default:
			ok = p.skipValue()
		}
		if !ok {
			return errCorrupt
		}
		p.consume(',')
	}
	if n := len(m.Line); n > 0 && m.Line[n-1] == '\n' {
		m.Line = m.Line[:n-1]
	} else {
		m.Partial = true
	}
	return nil
}

func streamName(s []byte) string {
	switch string(s) {
	case "stdout":
		return "stdout"
	case "stderr":
		return "stderr"
	}
	return string(s)
}

// parseTime parses the writer's RFC 3339 UTC form without allocating,
// falling back to time.Parse for anything else.
func parseTime(b []byte) (time.Time, error) {
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	if len(b) >= 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[len(b)-1] == 'Z' {
		y, ok1 := num(b[0:4])
		mo, ok2 := num(b[5:7])
		d, ok3 := num(b[8:10])
		h, ok4 := num(b[11:13])
		mi, ok5 := num(b[14:16])
		sec, ok6 := num(b[17:19])
		ns, frac := 0, b[19:len(b)-1]
		ok7 := true
		if len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
				ok7 = false
			} else if ns, ok7 = num(frac[1:]); ok7 {
				for i := len(frac) - 1; i < 9; i++ {
					ns *= 10
				}
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && sec < 60 {
			return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC), nil
		}
	}
	return time.Parse(time.RFC3339Nano, string(b))
}

func (jsonFormat) timestamp(rec []byte) (time.Time, error) {
	// The writer puts "time" last; search from the end.
	i := bytes.LastIndex(rec, []byte(`"time":"`))
	if i < 0 {
		return time.Time{}, errCorrupt
	}
	s := rec[i+8:]
	j := bytes.IndexByte(s, '"')
	if j < 0 {
		return time.Time{}, errCorrupt
	}
	return parseTime(s[:j])
}

func (jsonFormat) prevStart(c *blockCache, lo, end int64) (int64, error) {
	i, err := c.lastIndexByte('\n', lo, end-1)
	if err != nil {
		return 0, err
	}
	if i < 0 {
		return lo, nil
	}
	return i + 1, nil
}

func (jsonFormat) nextStart(c *blockCache, off, end int64) (int64, error) {
	if off == 0 {
		return 0, nil
	}
	i, err := c.indexByte('\n', off-1, end)
	if err != nil {
		return 0, err
	}
	if i < 0 {
		return end, nil
	}
	return i + 1, nil
}

func (jsonFormat) trimEnd(c *blockCache, lo, end int64) (int64, error) {
	i, err := c.lastIndexByte('\n', lo, end)
	if err != nil {
		return 0, err
	}
	return i + 1, nil // -1+1 = 0 when there is no newline: nothing complete
}

// jsonParser is a small JSON reader for log records.
type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\r' || p.b[p.i] == '\n') {
		p.i++
	}
}

func (p *jsonParser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// raw parses a string and returns it without copying when it has no
// escapes (keys, stream names, times).
func (p *jsonParser) raw() ([]byte, bool) {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '"' {
		for j := p.i + 1; j < len(p.b); j++ {
			switch p.b[j] {
			case '"':
				s := p.b[p.i+1 : j]
				p.i = j + 1
				return s, true
			case '\\':
				return p.str(nil)
			}
		}
	}
	return p.str(nil)
}

// str parses a string value, appending its unescaped bytes to dst.
func (p *jsonParser) str(dst []byte) ([]byte, bool) {
	if !p.consume('"') {
		return dst, false
	}
	for p.i < len(p.b) {
		// fast path: copy a run of plain bytes
		j := p.i
		for j < len(p.b) && p.b[j] != '"' && p.b[j] != '\\' {
			j++
		}
		dst = append(dst, p.b[p.i:j]...)
		p.i = j
		if j >= len(p.b) {
			return dst, false
		}
		if p.b[j] == '"' {
			p.i++
			return dst, true
		}
		if j+1 >= len(p.b) {
			return dst, false
		}
		e := p.b[j+1]
		p.i = j + 2
		switch e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return dst, false
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					if r2, ok = p.hex4(); !ok {
						return dst, false
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						dst = utf8.AppendRune(dst, d)
						continue
					}
					p.i = save
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, false
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

func (p *jsonParser) object() (map[string]string, bool) {
	if !p.consume('{') {
		return nil, false
	}
	m := map[string]string{}
	for !p.consume('}') {
		k, ok := p.str(nil)
		if !ok || !p.consume(':') {
			return nil, false
		}
		v, ok := p.str(nil)
		if !ok {
			return nil, false
		}
		m[string(k)] = string(v)
		p.consume(',')
	}
	return m, true
}

// skipValue skips a scalar, string, array or object.
func (p *jsonParser) skipValue() bool {
	p.ws()
	if p.i >= len(p.b) {
		return false
	}
	switch p.b[p.i] {
	case '"':
		_, ok := p.str(nil)
		return ok
	case '{', '[':
		depth := 0
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					p.i++
					return true
				}
			case '"':
				if _, ok := p.str(nil); !ok {
					return false
				}
				continue
			}
			p.i++
		}
		return false
	default:
		for p.i < len(p.b) && p.b[p.i] != ',' && p.b[p.i] != '}' {
			p.i++
		}
		return true
	}
}
