package logger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultJournalSocket is journald's native protocol socket.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// journaldLogger sends records to journald over its native datagram
// protocol (no libsystemd): one datagram of KEY=VALUE fields per record,
// and for a datagram too big for the socket, the same payload in a
// sealed memfd passed with SCM_RIGHTS, as sd_journal_send does.
type journaldLogger struct {
	mu     sync.Mutex
	conn   *net.UnixConn
	static []byte // the per-container fields, encoded once
	buf    []byte
}

var _ Logger = (*journaldLogger)(nil)

func newJournald(cfg Config) (Logger, error) {
	tag, err := parseTag(cfg)
	if err != nil {
		return nil, err
	}
	attrs, err := extraAttrs(cfg)
	if err != nil {
		return nil, err
	}
	path := cfg.JournalSocket
	if path == "" {
		path = DefaultJournalSocket
	}
	if _, err := os.Stat(path); err != nil {
		return nil, errdefs.Newf(errdefs.FailedPrecondition, "journald is not enabled on this host: %w", err)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, errdefs.Newf(errdefs.Unavailable, "journald is not enabled on this host: %w", err)
	}
	vars := map[string]string{
		"CONTAINER_ID":      short(cfg.ContainerID),
		"CONTAINER_ID_FULL": cfg.ContainerID,
		"CONTAINER_NAME":    strings.TrimPrefix(cfg.ContainerName, "/"),
		"CONTAINER_TAG":     tag,
		"IMAGE_NAME":        cfg.ImageName,
		"SYSLOG_IDENTIFIER": tag,
	}
	for k, v := range attrs {
		if k = journalKey(k); k != "" {
			vars[k] = v
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var static []byte
	for _, k := range keys {
		static = appendJournalField(static, k, []byte(vars[k]))
	}
	return &journaldLogger{conn: conn, static: static}, nil
}

// journalKey maps an attribute name to a journal field name like
// Docker: upper case, other characters '_', no leading '_'.
func journalKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		default:
			r = '_'
		}
		if b.Len() == 0 && r == '_' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// appendJournalField encodes one field of the native protocol: KEY=VALUE
// and a newline, or for a value holding a newline KEY, a newline, the
// little-endian u64 length, the value and a newline.
func appendJournalField(b []byte, key string, val []byte) []byte {
	b = append(b, key...)
	for _, c := range val {
		if c == '\n' {
			b = append(b, '\n')
			b = binary.LittleEndian.AppendUint64(b, uint64(len(val)))
			b = append(b, val...)
			return append(b, '\n')
		}
	}
	b = append(b, '=')
	b = append(b, val...)
	return append(b, '\n')
}

func (l *journaldLogger) Log(m *Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return errors.New("logger: journald: closed")
	}
	m = stamped(m)
	pri := []byte("6")
	if m.Source == "stderr" {
		pri = []byte("3")
	}
	b := appendJournalField(l.buf[:0], "MESSAGE", m.Line)
	b = appendJournalField(b, "PRIORITY", pri)
	b = append(b, l.static...)
	b = append(b, "SYSLOG_TIMESTAMP="...)
	b = m.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '\n')
	if m.Partial {
		b = append(b, "CONTAINER_PARTIAL_MESSAGE=true\n"...)
	}
	l.buf = b
	_, err := l.conn.Write(b)
	if err != nil && (errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS)) {
		err = l.sendMemfd(b)
	}
	if err != nil {
		return fmt.Errorf("logger: journald: %w", err)
	}
	return nil
}

func (l *journaldLogger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close()
	l.conn = nil
	return err
}
