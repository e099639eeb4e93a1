package logger

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

type recLogger struct {
	mu   sync.Mutex
	msgs []Message
	err  error
}

func (r *recLogger) Log(m *Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *m
	c.Line = append([]byte(nil), m.Line...)
	r.msgs = append(r.msgs, c)
	return r.err
}
func (r *recLogger) Close() error { return nil }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) { f.n++; return 0, errors.New("gone") }

func TestCopierLinesPartialsAndAttach(t *testing.T) {
	long := strings.Repeat("0123456789", 4000) // 40000 bytes: 16384 + 16384 + 7232
	stdout := "first\n\nsecond line\r\n" + long + "\nno newline at end"
	stderr := "oops\n"
	rec := &recLogger{}
	c := NewCopier(rec, map[string]io.Reader{"stdout": strings.NewReader(stdout), "stderr": strings.NewReader(stderr)})
	var att syncBuf
	fw := &failWriter{}
	c.Attach("stdout", &att)
	c.Attach("stdout", fw)
	detached := &syncBuf{}
	c.Attach("stderr", detached)()
	c.Attach("nosuch", &att)()
	c.Run()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if att.String() != stdout {
		t.Fatalf("attach got %d bytes, want %d", len(att.String()), len(stdout))
	}
	if fw.n != 1 || detached.String() != "" {
		t.Fatalf("failed writer written %d times, detached got %q", fw.n, detached.String())
	}
	var out, errOut strings.Builder
	var lines []string
	prevTS := rec.msgs[0].Timestamp
	for _, m := range rec.msgs {
		if m.Timestamp.Before(prevTS) {
			t.Fatal("timestamps go backwards")
		}
		prevTS = m.Timestamp
		w := &out
		if m.Source == "stderr" {
			w = &errOut
		} else {
			lines = append(lines, string(m.Line))
		}
		w.Write(m.Line)
		if !m.Partial {
			w.WriteString("\n")
		}
		if len(m.Line) > MaxLineSize {
			t.Fatalf("message of %d bytes", len(m.Line))
		}
	}
	if out.String() != stdout+"\n" || errOut.String() != stderr {
		t.Fatalf("reassembled output differs:\n%q", out.String()[:100])
	}
	if len(lines) != 7 || lines[0] != "first" || lines[1] != "" || lines[2] != "second line\r" || len(lines[3]) != MaxLineSize ||
		len(lines[5]) != 40000-2*MaxLineSize || lines[6] != "no newline at end" {
		t.Fatalf("lines: %d %q", len(lines), lines[:3])
	}
}

func TestCopierThroughJSONFile(t *testing.T) {
	cfg := testConfig(t, JSONFile, nil)
	l, _ := New(cfg)
	long := "x" + strings.Repeat("é", 20000) // two-byte runes cut at 16 KiB
	input := "a\n" + long + "\nb\n"
	c := NewCopier(l, map[string]io.Reader{"stdout": strings.NewReader(input)})
	c.Run()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	r, _ := NewReader(cfg)
	var b bytes.Buffer
	n := 0
	if err := r.ReadLogs(context.Background(), ReadConfig{Tail: -1}, func(m *Message) error {
		n++
		b.Write(m.Line)
		if !m.Partial {
			b.WriteByte('\n')
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A rune cut by the 16 KiB split becomes U+FFFD in JSON, as in Docker.
	if n != 5 || !strings.HasPrefix(b.String(), "a\nxéé") || !strings.HasSuffix(b.String(), "éé\nb\n") ||
		strings.Count(b.String(), "\ufffd") != 4 || len(b.String()) != len(input)+8 { // 2 bytes become 2 x 3
		t.Fatalf("%d records: %q...", n, b.String()[:20])
	}
}

func TestCopierCloseAndLogErrors(t *testing.T) {
	pr, pw := io.Pipe()
	rec := &recLogger{err: errors.New("disk full")}
	c := NewCopier(rec, map[string]io.Reader{"stdout": pr})
	c.Run()
	c.Run()
	if _, err := pw.Write([]byte("x\ny\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Close = %v", err)
	}
	if len(rec.msgs) != 2 {
		t.Fatalf("logged %d messages after log errors", len(rec.msgs))
	}
}
