package api_test

import (
	"context"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// FuzzServer sends arbitrary requests through the server with the fake
// backends: whatever the input, no handler may panic (a recovered panic
// is logged as "panic in handler", which fails the test) and every
// answer has a status. The seeds run as a normal test.
func FuzzServer(f *testing.F) {
	seeds := []struct{ method, path, ctype, body string }{
		{"GET", "/_ping", "", ""},
		{"POST", "/containers/create?name=x", "application/json", `{"Image":"busybox","Cmd":["echo","hi"]}`},
		{"POST", "/containers/create?name=x", "application/json", `{"Image":"busybox","HostConfig":null,"NetworkingConfig":{"EndpointsConfig":null}}`},
		{"POST", "/containers/create?platform=linux//", "application/json", `{}`},
		{"POST", "/containers/create", "application/json", `[1,2,3]`},
		{"POST", "/containers/create", "application/json", `{"Image":"busybox","HostConfig":{"PidsLimit":-1}}`},
		{"GET", "/containers/json?filters={\"status\":[\"running\"]}&limit=abc", "", ""},
		{"GET", "/containers/json?filters={\"label\":{\"a=b\":true}}", "", ""},
		{"GET", "/containers/json?filters=%7B", "", ""},
		{"POST", "/v1.41/containers/x/wait?condition=bogus", "", ""},
		{"GET", "/containers/x/logs?stdout=1&tail=-5&since=abc", "", ""},
		{"POST", "/containers/x/update", "application/json", `{"PidsLimit":0}`},
		{"POST", "/containers/x/resize?h=-1&w=99999999999", "", ""},
		{"HEAD", "/containers/x/archive?path=", "", ""},
		{"PUT", "/containers/x/archive?path=/tmp", "application/x-tar", "not a tar"},
		{"POST", "/containers/x/exec", "application/json", `{"Cmd":[]}`},
		{"POST", "/exec/abc/start", "application/json", `{"Detach":true,"ConsoleSize":[1,2]}`},
		{"POST", "/images/create?fromImage=busybox&tag=sha256:abc", "", ""},
		{"POST", "/images/create?fromSrc=http://example.com/x.tar", "", ""},
		{"POST", "/images/create", "", ""},
		{"POST", "/images/localhost:5000/a/b/push?tag=v1", "", ""},
		{"POST", "/images/busybox/tag?repo=&tag=x", "", ""},
		{"DELETE", "/images/sha256:aaaa?force=1", "", ""},
		{"GET", "/images/get?names=busybox&names=nosuch", "", ""},
		{"GET", "/images/localhost:5000/foo/bar/json", "", ""},
		{"GET", "/distribution/busybox/json", "", ""},
		{"GET", "/events?since=1&until=0", "", ""},
		{"GET", "/events?filters={\"bogus\":[\"x\"]}", "", ""},
		{"GET", "/system/df?type=volume&type=nope", "", ""},
		{"POST", "/auth", "application/json", `{"username":1}`},
		{"POST", "/commit?container=x&tag=only", "application/json", `{"Env":"notalist"}`},
		{"GET", "/v1.4a/_ping", "", ""},
		{"GET", "/v/_ping", "", ""},
		{"GET", "//containers//json", "", ""},
		{"POST", "/containers/x/attach?stream=1&stdout=1", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, s.body)
	}
	srv, rec := newTestServer(f)
	f.Fuzz(func(t *testing.T, method, path, ctype, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") || method == "" || strings.ContainsAny(method, " \r\n\t()<>@,;:\\\"/[]?={}") {
			t.Skip()
		}
		r := httptest.NewRequest("GET", "/", strings.NewReader(body))
		r.Method = method
		u, err := r.URL.Parse(path)
		if err != nil {
			t.Skip()
		}
		r.URL = u
		r.RequestURI = path
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ServeHTTP(w, r.WithContext(ctx))
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%s %s %q: the handler ignores its context\n%s", method, path, body, b.String())
		}
		if w.Code < 100 || w.Code > 599 {
			t.Fatalf("%s %s: status %d", method, path, w.Code)
		}
		if rec.has("panic in handler") {
			t.Fatalf("%s %s %q: a handler panicked", method, path, body)
		}
	})
}
