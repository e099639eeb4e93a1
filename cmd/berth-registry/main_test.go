package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/distribution/registry"
)

func TestServeAndShutdown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	h, _ := registry.HashPassword("pw")
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("u:"+h+"\n"), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, config{listen: addr, root: filepath.Join(dir, "root"), htpasswd: htpasswd},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	var status int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v2/", addr), nil)
		req.SetBasicAuth("u", "pw")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			status = res.StatusCode
			break
		}
	}
	if status != http.StatusOK {
		t.Fatalf("GET /v2/ = %d", status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	if _, err := os.Stat(filepath.Join(dir, "root", "content", "blobs", "sha256")); err != nil {
		t.Fatal(err)
	}

	// A bad htpasswd file is refused before listening.
	os.WriteFile(htpasswd, []byte("u:$2y$05$bcrypt\n"), 0o600)
	err = serve(context.Background(), config{listen: addr, root: filepath.Join(dir, "root"), htpasswd: htpasswd}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "bcrypt") {
		t.Fatalf("bcrypt htpasswd: %v", err)
	}
}
