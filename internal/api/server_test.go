package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/errdefs"
)

// testRouter has routes that fail on purpose.
type testRouter struct{}

func (testRouter) Routes() []api.Route {
	return []api.Route{
		{Method: "GET", Path: "/test/panic", Handler: func(context.Context, http.ResponseWriter, *http.Request) error {
			var m map[string]int
			m["boom"]++ // nil map write
			return nil
		}},
		{Method: "GET", Path: "/test/class/{class}", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
			for c := errdefs.Internal; c <= errdefs.NotModified; c++ {
				if c.String() == r.PathValue("class") {
					return errdefs.Newf(c, "failed as %s", c)
				}
			}
			return errors.New("plain error")
		}},
		{Method: "GET", Path: "/test/version", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
			_, err := io.WriteString(w, api.VersionFromContext(ctx))
			return err
		}},
		{Method: "POST", Path: "/test/json", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
			var v struct{ Name string }
			if err := api.ReadJSON(r, &v); err != nil {
				return err
			}
			return api.WriteJSON(w, http.StatusOK, v)
		}},
	}
}

// logRecorder is a slog.Handler keeping messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }
func (l *logRecorder) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func newTestServer(t testing.TB) (*api.Server, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	srv, err := api.NewServer(api.Config{EngineVersion: "1.2.3", Logger: slog.New(rec)}, append(apitest.NewFakes().Routers(), testRouter{})...)
	if err != nil {
		t.Fatal(err)
	}
	return srv, rec
}

func do(t testing.TB, h http.Handler, method, path string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func message(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return e.Message
}

func TestVersions(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/test/version", api.MaxAPIVersion, 200},
		{"/v1.40/test/version", "1.40", 200},
		{"/v1.44/test/version", "1.44", 200},
		{"/v" + api.MaxAPIVersion + "/test/version", api.MaxAPIVersion, 200},
		{"/v1.39/test/version", "client version 1.39 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version", 400},
		{"/v1.24/test/version", "client version 1.24 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version", 400},
		{"/v1.57/test/version", "client version 1.57 is too new. Maximum supported API version is " + api.MaxAPIVersion, 400},
		{"/v2.0/test/version", "client version 2.0 is too new. Maximum supported API version is " + api.MaxAPIVersion, 400},
		{"/vx/test/version", "page not found", 404},
		{"/v1.41/no/such/path", "page not found", 404},
	} {
		w := do(t, srv, "GET", tc.path, nil)
		got := w.Body.String()
		if tc.code != 200 {
			got = message(t, w)
		}
		if w.Code != tc.code || got != tc.want {
			t.Errorf("%s: %d %q, want %d %q", tc.path, w.Code, got, tc.code, tc.want)
		}
		h := w.Header()
		if h.Get("Api-Version") != api.MaxAPIVersion || h.Get("Server") != "Docker/1.2.3 (linux)" || h.Get("Ostype") != "linux" {
			t.Errorf("%s: headers %v", tc.path, h)
		}
	}
}

func TestPing(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, m := range []string{"GET", "HEAD"} {
		w := do(t, srv, m, "/_ping", nil)
		h := w.Header()
		want := map[string]string{
			"Api-Version": api.MaxAPIVersion, "Builder-Version": "1", "Ostype": "linux", "Docker-Experimental": "false",
			"Swarm": "inactive", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
		}
		for k, v := range want {
			if h.Get(k) != v {
				t.Errorf("%s /_ping: %s = %q, want %q", m, k, h.Get(k), v)
			}
		}
		body := "OK"
		if m == "HEAD" {
			body = ""
		}
		if w.Code != 200 || w.Body.String() != body {
			t.Errorf("%s /_ping: %d %q", m, w.Code, w.Body.String())
		}
	}
}

func TestNotFoundAndWrongMethod(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tc := range [][2]string{{"GET", "/nope"}, {"GET", "/containers/create"}, {"DELETE", "/_ping"}, {"PUT", "/v1.41/info"}, {"GET", "/images/onlyname"}, {"POST", "/images/x/frobnicate"}} {
		w := do(t, srv, tc[0], tc[1], nil)
		if w.Code != 404 || message(t, w) != "page not found" {
			t.Errorf("%s %s: %d %q", tc[0], tc[1], w.Code, w.Body.String())
		}
	}
}

func TestErrorClassesToStatus(t *testing.T) {
	srv, _ := newTestServer(t)
	want := map[errdefs.Class]int{
		errdefs.Internal: 500, errdefs.NotFound: 404, errdefs.AlreadyExists: 409, errdefs.InvalidArgument: 400,
		errdefs.Conflict: 409, errdefs.FailedPrecondition: 400, errdefs.Unauthorized: 401, errdefs.Forbidden: 403,
		errdefs.Unavailable: 503, errdefs.NotImplemented: 501, errdefs.NotModified: 304,
	}
	for c, code := range want {
		w := do(t, srv, "GET", "/test/class/"+strings.ReplaceAll(c.String(), " ", "%20"), nil)
		if w.Code != code {
			t.Errorf("%s: status %d, want %d", c, w.Code, code)
			continue
		}
		if code == 304 {
			if w.Body.Len() != 0 {
				t.Errorf("304 with a body %q", w.Body.String())
			}
			continue
		}
		if got := message(t, w); got != "failed as "+c.String() {
			t.Errorf("%s: message %q", c, got)
		}
	}
	if w := do(t, srv, "GET", "/test/class/unclassified", nil); w.Code != 500 || message(t, w) != "plain error" {
		t.Errorf("plain error: %d %q", w.Code, w.Body.String())
	}
}

func TestPanicIs500(t *testing.T) {
	srv, rec := newTestServer(t)
	w := do(t, srv, "GET", "/test/panic", nil)
	if w.Code != 500 || !strings.Contains(message(t, w), "internal server error") {
		t.Fatalf("%d %q", w.Code, w.Body.String())
	}
	if !rec.has("panic in handler") {
		t.Fatal("panic not logged")
	}
	if w := do(t, srv, "GET", "/_ping", nil); w.Code != 200 {
		t.Fatal("server unusable after a panic")
	}
}

func TestReadJSON(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tc := range []struct {
		body, ctype string
		code        int
		want        string
	}{
		{`{"Name":"x"}`, "application/json", 200, `{"Name":"x"}`},
		{`{"Name":"x","FieldFromTheFuture":[1,2]}`, "application/json", 200, `{"Name":"x"}`}, // unknown fields accepted, as dockerd
		{`{"Name":"x"}`, "application/json; charset=utf-8", 200, `{"Name":"x"}`},
		{``, "", 200, `{"Name":""}`},
		{`{"Name":`, "application/json", 400, "invalid JSON: unexpected EOF"},
		{`{"Name":1}`, "application/json", 400, "invalid JSON: json: cannot unmarshal number"},
		{`{"Name":"x"} {"Name":"y"}`, "application/json", 400, "unexpected content after JSON"},
		{`{"Name":"x"}`, "text/plain", 400, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{`{"Name":"` + strings.Repeat("a", api.MaxJSONBody) + `"}`, "application/json", 400, "request body too large"},
	} {
		w := do(t, srv, "POST", "/test/json", strings.NewReader(tc.body), "Content-Type", tc.ctype)
		got := strings.TrimSpace(w.Body.String())
		if tc.code != 200 {
			got = message(t, w)
		}
		if w.Code != tc.code || !strings.HasPrefix(got, tc.want) {
			t.Errorf("body %.40q: %d %q, want %d %q", tc.body, w.Code, got, tc.code, tc.want)
		}
	}
	// A huge body of unknown length (chunked) is cut at the limit too.
	r := httptest.NewRequest("POST", "/test/json", io.MultiReader(strings.NewReader(`{"Name":"`), strings.NewReader(strings.Repeat("a", api.MaxJSONBody+10))))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != 400 || !strings.Contains(message(t, w), "too large") {
		t.Errorf("chunked huge body: %d %q", w.Code, w.Body.String())
	}
}

func TestBoolValue(t *testing.T) {
	for q, want := range map[string]bool{
		"": false, "v=": false, "v=0": false, "v=false": false, "v=False": false, "v=no": false, "v=none": false,
		"v=1": true, "v=true": true, "v=True": true, "v=yes": true, "v=anything": true,
	} {
		r := httptest.NewRequest("GET", "/x?"+q, nil)
		if got := api.BoolValue(r, "v"); got != want {
			t.Errorf("%q: %v", q, got)
		}
	}
	r := httptest.NewRequest("GET", "/x", nil)
	if !api.BoolValueOrDefault(r, "v", true) {
		t.Error("default not used")
	}
	r = httptest.NewRequest("GET", "/x?v=0", nil)
	if api.BoolValueOrDefault(r, "v", true) {
		t.Error("explicit 0 ignored")
	}
}

func TestDecodeAuth(t *testing.T) {
	const js = `{"username":"u","password":"p?>","serveraddress":"r.example"}`
	enc := func(e interface{ EncodeToString([]byte) string }) string { return e.EncodeToString([]byte(js)) }
	for name, s := range map[string]string{
		"url padded": enc(b64URL), "url raw": enc(b64RawURL), "std": enc(b64Std),
	} {
		ac, err := api.DecodeAuth(s)
		if err != nil || ac.Username != "u" || ac.Password != "p?>" || ac.ServerAddress != "r.example" {
			t.Errorf("%s: %+v %v", name, ac, err)
		}
	}
	for _, s := range []string{"", "e30=", "e30"} {
		if ac, err := api.DecodeAuth(s); err != nil || ac == nil || ac.Username != "" {
			t.Errorf("%q: %+v %v", s, ac, err)
		}
	}
	for _, s := range []string{"%%%", b64URL.EncodeToString([]byte("not json"))} {
		if _, err := api.DecodeAuth(s); !errdefs.Is(err, errdefs.InvalidArgument) || !strings.Contains(err.Error(), "invalid X-Registry-Auth header") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestMultiplexer(t *testing.T) {
	var buf bytes.Buffer
	m := api.NewMultiplexer(&buf)
	io.WriteString(m.Writer(api.Stdout), "out")
	io.WriteString(m.Writer(api.Stderr), "err!")
	want := []byte{1, 0, 0, 0, 0, 0, 0, 3, 'o', 'u', 't', 2, 0, 0, 0, 0, 0, 0, 4, 'e', 'r', 'r', '!'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frames % x", buf.Bytes())
	}
}

func TestNegotiateStreamType(t *testing.T) {
	for accept, want := range map[string]string{
		"": "application/json", "*/*": "application/json", "application/x-ndjson": "application/x-ndjson",
		"application/jsonl, */*": "application/jsonl", "application/json-seq;q=0.9": "application/json-seq",
	} {
		r := httptest.NewRequest("GET", "/events", nil)
		r.Header.Set("Accept", accept)
		if got := api.NegotiateStreamType(r); got != want {
			t.Errorf("%q: %s", accept, got)
		}
	}
}
