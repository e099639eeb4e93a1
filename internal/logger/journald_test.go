package logger

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// parseJournal decodes the native protocol.
func parseJournal(t *testing.T, b []byte) map[string]string {
	t.Helper()
	f := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		eq := bytes.IndexByte(b, '=')
		if nl < 0 {
			t.Fatalf("unterminated field %q", b)
		}
		if eq >= 0 && eq < nl {
			f[string(b[:eq])] = string(b[eq+1 : nl])
			b = b[nl+1:]
			continue
		}
		key := string(b[:nl])
		n := binary.LittleEndian.Uint64(b[nl+1:])
		v := b[nl+9 : nl+9+int(n)]
		if b[nl+9+int(n)] != '\n' {
			t.Fatal("binary field not newline-terminated")
		}
		f[key] = string(v)
		b = b[nl+10+int(n):]
	}
	return f
}

func fakeJournal(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, c
}

// readJournal reads one datagram, following a passed memfd.
func readJournal(t *testing.T, c *net.UnixConn) map[string]string {
	t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		fds, err := syscall.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Fatalf("rights: %v %v", fds, err)
		}
		f := os.NewFile(uintptr(fds[0]), "memfd")
		defer f.Close()
		data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
		if err != nil {
			t.Fatal(err)
		}
		return parseJournal(t, data)
	}
	return parseJournal(t, buf[:n])
}

func TestJournald(t *testing.T) {
	path, srv := fakeJournal(t)
	cfg := Config{Type: Journald, JournalSocket: path, ContainerID: "0123456789abcdef0000", ContainerName: "/web",
		ImageName: "nginx:1", Labels: map[string]string{"com.example.tier": "front"},
		Opts: map[string]string{"labels": "com.example.tier", "tag": "{{.Name}}"}}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ts := time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC)
	if err := l.Log(&Message{Line: []byte("hello"), Source: "stdout", Timestamp: ts}); err != nil {
		t.Fatal(err)
	}
	f := readJournal(t, srv)
	want := map[string]string{"MESSAGE": "hello", "PRIORITY": "6", "CONTAINER_ID": "0123456789ab",
		"CONTAINER_ID_FULL": "0123456789abcdef0000", "CONTAINER_NAME": "web", "CONTAINER_TAG": "web",
		"IMAGE_NAME": "nginx:1", "SYSLOG_IDENTIFIER": "web", "COM_EXAMPLE_TIER": "front",
		"SYSLOG_TIMESTAMP": "2026-01-01T00:00:00.000000005Z"}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	if len(f) != len(want) {
		t.Errorf("fields %v", f)
	}
	// stderr, a partial line and a message with newlines (binary field)
	if err := l.Log(&Message{Line: []byte("a\nb"), Source: "stderr", Partial: true, Timestamp: ts}); err != nil {
		t.Fatal(err)
	}
	f = readJournal(t, srv)
	if f["MESSAGE"] != "a\nb" || f["PRIORITY"] != "3" || f["CONTAINER_PARTIAL_MESSAGE"] != "true" {
		t.Fatalf("fields %v", f)
	}
	// Larger than a datagram: sent as a memfd.
	big := strings.Repeat("z", 400<<10)
	if err := l.Log(&Message{Line: []byte(big), Source: "stdout", Timestamp: ts}); err != nil {
		t.Fatal(err)
	}
	if f = readJournal(t, srv); f["MESSAGE"] != big || f["CONTAINER_NAME"] != "web" {
		t.Fatalf("big message: %d bytes", len(f["MESSAGE"]))
	}
}

func TestJournaldAbsent(t *testing.T) {
	_, err := New(Config{Type: Journald, JournalSocket: filepath.Join(t.TempDir(), "none.sock")})
	if err == nil || !strings.Contains(err.Error(), "journald is not enabled on this host") || !errdefs.Is(err, errdefs.FailedPrecondition) {
		t.Fatalf("New without journald = %v", err)
	}
}

func TestJournalKey(t *testing.T) {
	for in, want := range map[string]string{"com.example.x": "COM_EXAMPLE_X", "_a-b": "A_B", "A1": "A1", "__": ""} {
		if got := journalKey(in); got != want {
			t.Errorf("journalKey(%q) = %q, want %q", in, got, want)
		}
	}
}
