// Package apitest holds the fakes layer of the Engine API: in-memory
// backends for the system, container, exec and image routers, and a
// helper that serves them on a unix socket, so router tests, Go client
// tests and real docker CLI tests run without a daemon. The fakes follow
// the backend specifications (backend.go of each router), Docker's error
// messages included; they are test doubles, not reference
// implementations of the services.
package apitest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/api"
	containerrouter "github.com/berth-dev/berth/internal/api/router/container"
	execrouter "github.com/berth-dev/berth/internal/api/router/exec"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	systemrouter "github.com/berth-dev/berth/internal/api/router/system"
)

// Fakes are one set of fake backends.
type Fakes struct {
	System     *System
	Containers *Containers
	Execs      *Execs
	Images     *Images
}

// NewFakes returns fresh fakes.
func NewFakes() *Fakes {
	c, im := NewContainers(), NewImages()
	c.ImageExists = func(ref string) bool { _, err := im.resolve(ref); return err == nil }
	return &Fakes{System: NewSystem(), Containers: c, Execs: NewExecs(c), Images: im}
}

// Routers are the routers over the fakes.
func (f *Fakes) Routers() []api.Router {
	return []api.Router{
		systemrouter.New(f.System),
		containerrouter.New(f.Containers),
		execrouter.New(f.Execs),
		imagerouter.New(f.Images, f.Containers, f.Images),
	}
}

// Serve serves routers on a unix socket in a fresh directory and returns
// its path; the server stops at the end of the test.
func Serve(t testing.TB, routers ...api.Router) string {
	t.Helper()
	// Socket paths are limited to 108 bytes: t.TempDir may be too long.
	dir, err := os.MkdirTemp("", "berth-api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(api.Config{EngineVersion: "0.0.0-test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}, routers...)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewServer builds a server over routers for in-process tests
// (httptest); its log goes to t.
func NewServer(t testing.TB, routers ...api.Router) *api.Server {
	t.Helper()
	srv, err := api.NewServer(api.Config{EngineVersion: "0.0.0-test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}, routers...)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// Do sends one request to h and returns the recorded answer; hdr are
// header name/value pairs.
func Do(t testing.TB, h http.Handler, method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Message is the "message" of an error answer.
func Message(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return e.Message
}
