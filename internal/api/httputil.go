package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxJSONBody bounds a JSON request body (container create, exec, update,
// ...). Bigger bodies are refused with 400 before they are decoded whole.
const MaxJSONBody = 16 << 20

// CheckForJSON refuses a body whose Content-Type is not application/json.
// A request without body, or without Content-Type, passes (dockerd refuses
// a body without Content-Type; berth is lenient there, no client relies on
// the refusal).
func CheckForJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return InvalidParam(fmt.Errorf("malformed Content-Type header (%s): %w", ct, err))
	}
	if mt != "application/json" {
		return InvalidParam(fmt.Errorf("unsupported Content-Type header (%s): must be 'application/json'", ct))
	}
	return nil
}

// ReadJSON decodes the request body into out as dockerd does: an empty
// body leaves out unchanged; unknown fields are accepted (clients newer
// than the server send them); malformed JSON, trailing content and bodies
// over MaxJSONBody are invalid arguments (400).
func ReadJSON(r *http.Request, out any) error {
	if err := CheckForJSON(r); err != nil {
		return err
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	if r.ContentLength > MaxJSONBody {
		return errBodyTooLarge
	}
	lr := &io.LimitedReader{R: r.Body, N: MaxJSONBody + 1}
	dec := json.NewDecoder(lr)
	err := dec.Decode(out)
	if lr.N <= 0 {
		return errBodyTooLarge
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			if r.ContentLength < 0 {
				return nil // empty chunked body
			}
			return InvalidParam(errors.New("invalid JSON: got EOF while reading request body"))
		}
		return InvalidParam(fmt.Errorf("invalid JSON: %w", err))
	}
	if dec.More() {
		return InvalidParam(errors.New("unexpected content after JSON"))
	}
	return nil
}

var errBodyTooLarge = InvalidParam(fmt.Errorf("request body too large: a JSON body is limited to %d MiB", MaxJSONBody>>20))

// WriteJSON answers v as JSON with status code. As dockerd, "<", ">" and
// "&" are written as they are, not \u-escaped.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, err = w.Write(b)
	return err
}

// marshal is JSON without HTML escaping, newline-terminated.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Query values are read from the URL only: dockerd also parses
// form-encoded bodies, which no client sends.

// BoolValue parses a boolean query parameter as dockerd does: absent, "",
// "0", "no", "false" and "none" (any case) are false, anything else true
// ("1", "true", "True", "yes").
func BoolValue(r *http.Request, key string) bool {
	s := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// BoolValueOrDefault is BoolValue, or def when the parameter is absent.
func BoolValueOrDefault(r *http.Request, key string, def bool) bool {
	if _, ok := r.URL.Query()[key]; !ok {
		return def
	}
	return BoolValue(r, key)
}

// IntValue parses an optional integer parameter (nil when absent or "").
func IntValue(r *http.Request, key string) (*int, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, InvalidParam(fmt.Errorf("invalid value for %s: %q: must be an integer", key, s))
	}
	return &n, nil
}

// Uint32Value parses a required unsigned integer parameter (resize h, w);
// absent means 0.
func Uint32Value(r *http.Request, key string) (uint32, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	return uint32(n), nil
}

// ParseTime parses a since/until timestamp as the docker CLI sends it:
// Unix seconds with an optional fraction ("1700000000.123456789"), or an
// RFC 3339 time. Empty is the zero time.
func ParseTime(key, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, InvalidParam(fmt.Errorf("invalid value for %s: %q: must be a Unix timestamp or RFC 3339 time", key, s))
	}
	var nanos int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if nanos, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, InvalidParam(fmt.Errorf("invalid value for %s: %q", key, s))
		}
	}
	return time.Unix(n, nanos), nil
}
