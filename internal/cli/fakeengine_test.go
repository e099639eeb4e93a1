package cli

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// fakeEngine is an Engine API server on a unix socket that records every
// request and answers with canned responses. Routes are "METHOD /path"
// patterns where "*" matches one or more characters (image names have slashes); the /v1.NN prefix is
// stripped before matching.
type fakeEngine struct {
	t    *testing.T
	host string
	srv  *httptest.Server

	mu     sync.Mutex
	reqs   []recordedRequest
	routes []route
}

type recordedRequest struct {
	Method  string
	Path    string // without the version prefix
	RawPath string // as requested
	Query   map[string][]string
	Header  http.Header
	Body    []byte
}

type route struct {
	method string
	re     *regexp.Regexp
	h      http.HandlerFunc
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "bcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{t: t, host: "unix://" + sock}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Listener.Close()
	f.srv.Listener = l
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	ping := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.50")
		w.Header().Set("OSType", "linux")
		w.Header().Set("Builder-Version", "1")
		w.Header().Set("Docker-Experimental", "false")
		w.Header().Set("Swarm", "inactive")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("OK"))
		}
	}
	f.handle("GET /_ping", ping)
	f.handle("HEAD /_ping", ping)
	return f
}

func (f *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p := versionPrefix.ReplaceAllString(r.URL.Path, "")
	f.mu.Lock()
	f.reqs = append(f.reqs, recordedRequest{Method: r.Method, Path: p, RawPath: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	var h http.HandlerFunc
	for i := len(f.routes) - 1; i >= 0; i-- {
		rt := f.routes[i]
		if rt.method == r.Method && rt.re.MatchString(p) {
			h = rt.h
			break
		}
	}
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if h == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
		return
	}
	h(w, r)
}

// handle registers h for "METHOD /path/with/*"; later registrations win.
func (f *fakeEngine) handle(pattern string, h http.HandlerFunc) {
	method, p, _ := strings.Cut(pattern, " ")
	expr := "^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, `.+`) + "$"
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = append(f.routes, route{method: method, re: regexp.MustCompile(expr), h: h})
}

// reply registers a canned JSON answer.
func (f *fakeEngine) reply(pattern string, status int, v any) {
	f.handle(pattern, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, status, v) })
}

// requests returns the recorded requests matching pattern.
func (f *fakeEngine) requests(pattern string) []recordedRequest {
	method, p, _ := strings.Cut(pattern, " ")
	re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, `.+`) + "$")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recordedRequest
	for _, r := range f.reqs {
		if r.Method == method && re.MatchString(r.Path) {
			out = append(out, r)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// hijack takes over the connection with docker's 101 UPGRADED answer.
func hijack(t *testing.T, w http.ResponseWriter, mediaType string) (net.Conn, *bufio.ReadWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		if t != nil {
			t.Error("response writer cannot hijack")
		}
		return nil, nil
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		if t != nil {
			t.Error(err)
		}
		return nil, nil
	}
	_, _ = rw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + mediaType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	_ = rw.Flush()
	return conn, rw
}

// frame encodes one multiplexed-stream frame: stream id, three zero bytes,
// big-endian length, payload.
func frame(stream byte, payload string) []byte {
	hdr := make([]byte, 8)
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	return append(hdr, payload...)
}

const fakeID = "4f2a0c7e9d1b3a5c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"

// runBerth runs the CLI in-process against the fake engine.
func runBerth(t *testing.T, f *fakeEngine, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if f != nil {
		t.Setenv("BERTH_HOST", f.host)
	}
	t.Setenv("DOCKER_HOST", "")
	if os.Getenv("DOCKER_CONFIG") == "" {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
	}
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}
