package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEncoderMessages(t *testing.T) {
	var buf bytes.Buffer
	e := NewEncoder(&buf, nil)
	e.Interval = time.Hour
	e.Update(Event{ID: "abc", Status: "Pulling fs layer"})
	e.Update(Event{ID: "abc", Status: "Downloading", Current: 10, Total: 100})
	e.Update(Event{ID: "abc", Status: "Downloading", Current: 20, Total: 100}) // rate-limited
	e.Update(Event{ID: "abc", Status: "Downloading", Current: 100, Total: 100})
	e.Update(Event{Status: "Digest: sha256:1234", Aux: map[string]string{"Tag": "latest"}})
	e.Update(Event{Err: errors.New("boom")})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\r\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	var m Message
	json.Unmarshal([]byte(lines[1]), &m)
	if m.Status != "Downloading" || m.ProgressDetail.Current != 10 || m.ProgressDetail.Total != 100 || !strings.HasPrefix(m.Progress, "[=====>") || m.ID != "abc" {
		t.Fatalf("download message %+v", m)
	}
	if !strings.Contains(lines[0], `"progressDetail":{}`) {
		t.Fatalf("status line: %s", lines[0])
	}
	if !strings.Contains(lines[3], `"aux":{"Tag":"latest"}`) {
		t.Fatalf("aux: %s", lines[3])
	}
	if !strings.Contains(lines[4], `"errorDetail":{"message":"boom"}`) || !strings.Contains(lines[4], `"error":"boom"`) {
		t.Fatalf("error: %s", lines[4])
	}
}

func TestHumanSizeAndShortID(t *testing.T) {
	for n, want := range map[int64]string{512: "512B", 1234: "1.234kB", 5_000_000: "5MB", 1_230_000_000: "1.23GB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %s, want %s", n, got, want)
		}
	}
	if ShortID("sha256:0123456789abcdef") != "0123456789ab" {
		t.Fatal("ShortID")
	}
}
