package container_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/api/apitest"
	containerrouter "github.com/berth-dev/berth/internal/api/router/container"
)

func create(t *testing.T, h http.Handler, name, body string) string {
	t.Helper()
	w := apitest.Do(t, h, "POST", "/containers/create?name="+name, strings.NewReader(body), "Content-Type", "application/json")
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body.String())
	}
	var r container.CreateResponse
	json.Unmarshal(w.Body.Bytes(), &r)
	if r.Warnings == nil {
		t.Fatal("Warnings must be a list, not null")
	}
	return r.ID
}

func TestCreateValidation(t *testing.T) {
	srv := apitest.NewServer(t, containerrouter.New(apitest.NewContainers()))
	for _, tc := range []struct {
		target, body string
		code         int
		msg          string
	}{
		{"/containers/create?name=a", `{"Image":"busybox"}`, 400, "Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{"/containers/create?name=_x", `{"Image":"busybox"}`, 400, "Invalid container name (_x)"},
		{"/containers/create?name=ok%2Fno", `{"Image":"busybox"}`, 400, "Invalid container name (ok/no)"},
		{"/containers/create", `{"HostConfig":{}}`, 400, "config cannot be empty in order to create a container"},
		{"/containers/create", `{"Image":`, 400, "invalid JSON"},
		{"/containers/create?platform=linux/amd64/v2/x", `{"Image":"busybox"}`, 400, `invalid platform "linux/amd64/v2/x"`},
		{"/containers/create", `{"Image":"nosuchimage"}`, 404, "No such image: nosuchimage"},
		{"/containers/create?name=/slash.ok-1", `{"Image":"busybox","Unknown":{"x":1}}`, 201, ""},
	} {
		w := apitest.Do(t, srv, "POST", tc.target, strings.NewReader(tc.body), "Content-Type", "application/json")
		if w.Code != tc.code || (tc.msg != "" && !strings.HasPrefix(apitest.Message(t, w), tc.msg)) {
			t.Errorf("%s %s: %d %s", tc.target, tc.body, w.Code, w.Body.String())
		}
	}
	// The leading "/" is dropped from the name.
	w := apitest.Do(t, srv, "GET", "/containers/slash.ok-1/json", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"Name":"/slash.ok-1"`) {
		t.Fatalf("inspect: %d %s", w.Code, w.Body.String())
	}
}

func TestLifecycleStatuses(t *testing.T) {
	srv := apitest.NewServer(t, containerrouter.New(apitest.NewContainers()))
	create(t, srv, "life", `{"Image":"busybox","Cmd":["sleep"]}`)
	steps := []struct {
		method, target string
		code           int
	}{
		{"POST", "/containers/life/start", 204},
		{"POST", "/containers/life/start", 304},
		{"GET", "/containers/life/top?ps_args=aux", 200},
		{"POST", "/containers/life/pause", 204},
		{"POST", "/containers/life/unpause", 204},
		{"POST", "/containers/life/resize?h=24&w=80", 200},
		{"POST", "/containers/life/resize?h=x", 400},
		{"POST", "/containers/life/rename?name=life2", 204},
		{"POST", "/containers/life/stop", 404},
		{"POST", "/containers/life2/stop?t=1", 204},
		{"POST", "/containers/life2/stop", 304},
		{"POST", "/containers/life2/stop?t=soon", 400},
		{"POST", "/containers/life2/kill", 409},
		{"POST", "/containers/life2/restart", 204},
		{"DELETE", "/containers/life2", 409},
		{"DELETE", "/containers/life2?force=1&v=1", 204},
		{"DELETE", "/containers/life2", 404},
		{"POST", "/containers/prune", 200},
		{"POST", `/containers/prune?filters={"dangling":["true"]}`, 400},
	}
	for _, s := range steps {
		w := apitest.Do(t, srv, s.method, s.target, nil)
		if w.Code != s.code {
			t.Fatalf("%s %s: %d %s", s.method, s.target, w.Code, w.Body.String())
		}
		if s.code == 304 && w.Body.Len() != 0 {
			t.Fatalf("304 with body %q", w.Body.String())
		}
	}
	// A start body (removed in API 1.24) is refused.
	create(t, srv, "withbody", `{"Image":"busybox"}`)
	w := apitest.Do(t, srv, "POST", "/containers/withbody/start", strings.NewReader(`{"Binds":["/a:/b"]}`), "Content-Type", "application/json")
	if w.Code != 400 {
		t.Fatalf("start with body: %d", w.Code)
	}
}

func TestListFiltersAndVersions(t *testing.T) {
	srv := apitest.NewServer(t, containerrouter.New(apitest.NewContainers()))
	create(t, srv, "labelled", `{"Image":"busybox","Labels":{"com.docker.compose.project":"demo"}}`)
	create(t, srv, "plain", `{"Image":"busybox"}`)
	for target, want := range map[string]int{
		"/containers/json":                  0,
		"/containers/json?all=1":            2,
		"/containers/json?all=true&limit=1": 1,
		`/containers/json?all=1&filters={"label":["com.docker.compose.project=demo"]}`:      1,
		`/containers/json?all=1&filters={"label":{"com.docker.compose.project=demo":true}}`: 1,
		`/containers/json?all=1&filters={"name":["^plain$"]}`:                               1,
	} {
		w := apitest.Do(t, srv, "GET", target, nil)
		var list []container.Summary
		if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != 200 || len(list) != want || list == nil {
			t.Errorf("%s: %d %s", target, w.Code, w.Body.String())
		}
	}
	for target, msg := range map[string]string{
		`/containers/json?filters={"colour":["red"]}`: "invalid filter 'colour'",
		`/containers/json?filters=notjson`:            "invalid filter",
		`/containers/json?limit=ten`:                  `invalid value for limit: "ten"`,
	} {
		w := apitest.Do(t, srv, "GET", target, nil)
		if w.Code != 400 || !strings.HasPrefix(apitest.Message(t, w), msg) {
			t.Errorf("%s: %d %s", target, w.Code, w.Body.String())
		}
	}
}

func TestLogsFraming(t *testing.T) {
	f := apitest.NewContainers()
	srv := apitest.NewServer(t, containerrouter.New(f))
	plain := create(t, srv, "plain", `{"Image":"busybox","Cmd":["fail","1","oops"]}`)
	tty := create(t, srv, "tty", `{"Image":"busybox","Tty":true,"Cmd":["echo","hi"]}`)
	for _, id := range []string{plain, tty} {
		apitest.Do(t, srv, "POST", "/containers/"+id+"/start", nil)
		ch := wait(t, srv, id)
		<-ch
	}
	// Without a TTY: multiplexed (announced so from 1.42).
	w := apitest.Do(t, srv, "GET", "/containers/plain/logs?stdout=1&stderr=1", nil)
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, w.Body); err != nil || e.String() != "oops\n" || o.Len() != 0 {
		t.Fatalf("mux logs: %v %q %q", err, o.String(), e.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/vnd.docker.multiplexed-stream" {
		t.Fatalf("content type %q", ct)
	}
	if ct := apitest.Do(t, srv, "GET", "/v1.41/containers/plain/logs?stderr=1", nil).Header().Get("Content-Type"); ct != "application/vnd.docker.raw-stream" {
		t.Fatalf("1.41 content type %q", ct)
	}
	// Only stdout asked: nothing.
	if w := apitest.Do(t, srv, "GET", "/containers/plain/logs?stdout=1", nil); w.Body.Len() != 0 {
		t.Fatalf("stdout only: %q", w.Body.String())
	}
	// With a TTY: raw; details prefix the attributes.
	w = apitest.Do(t, srv, "GET", "/containers/tty/logs?stdout=1&details=1", nil)
	if w.Body.String() != "tag=tty hi\n" || w.Header().Get("Content-Type") != "application/vnd.docker.raw-stream" {
		t.Fatalf("tty logs: %q", w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", "/containers/tty/logs", nil)
	if w.Code != 400 || apitest.Message(t, w) != "Bad parameters: you must choose at least one stream" {
		t.Fatalf("no stream: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/containers/nope/logs?stdout=1", nil); w.Code != 404 {
		t.Fatalf("missing: %d", w.Code)
	}
}

// wait starts a wait through the handler and returns when it has answered.
func wait(t *testing.T, h http.Handler, id string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		w := apitest.Do(t, h, "POST", "/containers/"+id+"/wait", nil)
		ch <- w.Body.String()
	}()
	return ch
}

func TestArchive(t *testing.T) {
	srv := apitest.NewServer(t, containerrouter.New(apitest.NewContainers()))
	create(t, srv, "files", `{"Image":"busybox"}`)
	w := apitest.Do(t, srv, "HEAD", "/containers/files/archive?path=/etc/hostname", nil)
	raw, err := base64.StdEncoding.DecodeString(w.Header().Get("X-Docker-Container-Path-Stat"))
	var st container.PathStat
	if w.Code != 200 || err != nil || json.Unmarshal(raw, &st) != nil || st.Name != "hostname" || st.Size != 13 {
		t.Fatalf("stat: %d %v %s", w.Code, err, raw)
	}
	if w := apitest.Do(t, srv, "HEAD", "/containers/files/archive?path=/nope", nil); w.Code != 404 {
		t.Fatalf("stat missing: %d", w.Code)
	}
	if w := apitest.Do(t, srv, "GET", "/containers/files/archive", nil); w.Code != 400 || apitest.Message(t, w) != "path is required" {
		t.Fatalf("no path: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", "/containers/files/archive?path=/etc", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-tar" || w.Header().Get("X-Docker-Container-Path-Stat") == "" {
		t.Fatalf("get: %d %v", w.Code, w.Header())
	}
	// Put the tar back elsewhere, then read the file from there.
	w = apitest.Do(t, srv, "PUT", "/containers/files/archive?path=/copy&noOverwriteDirNonDir=true", bytes.NewReader(w.Body.Bytes()), "Content-Type", "application/x-tar")
	if w.Code != 200 {
		t.Fatalf("put: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "HEAD", "/containers/files/archive?path=/copy/etc/hostname", nil); w.Code != 200 {
		t.Fatalf("stat copy: %d", w.Code)
	}
	w = apitest.Do(t, srv, "GET", "/containers/files/changes", nil)
	if !strings.Contains(w.Body.String(), `{"Kind":1,"Path":"/copy/etc/hostname"}`) {
		t.Fatalf("changes: %s", w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/containers/files/export", nil); w.Code != 200 || w.Header().Get("Content-Type") != "application/x-tar" {
		t.Fatalf("export: %d", w.Code)
	}
}

func TestStats(t *testing.T) {
	srv := apitest.NewServer(t, containerrouter.New(apitest.NewContainers()))
	create(t, srv, "st", `{"Image":"busybox"}`)
	w := apitest.Do(t, srv, "GET", "/containers/st/stats?stream=false", nil)
	var s container.StatsResponse
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &s) != nil || s.Name != "/st" || strings.Count(w.Body.String(), "\n") != 1 {
		t.Fatalf("one-shot stats: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/containers/nope/stats?stream=0", nil); w.Code != 404 {
		t.Fatalf("missing: %d", w.Code)
	}
}

// rawConn sends a request on a new connection to sock and returns the
// reader of the answer.
func rawConn(t *testing.T, sock, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func TestWaitSendsHeadersFirst(t *testing.T) {
	f := apitest.NewContainers()
	sock := apitest.Serve(t, containerrouter.New(f))
	h := apitest.NewServer(t, containerrouter.New(f))
	create(t, h, "sleeper", `{"Image":"busybox","Cmd":["sleep"]}`)
	apitest.Do(t, h, "POST", "/containers/sleeper/start", nil)
	_, br := rawConn(t, sock, "POST /v1.50/containers/sleeper/wait?condition=not-running HTTP/1.1\r\nHost: d\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("headers: %v %v", resp, err)
	}
	// The body comes once the container stops.
	go apitest.Do(t, h, "POST", "/containers/sleeper/kill", nil)
	var wr container.WaitResponse
	if err := json.NewDecoder(resp.Body).Decode(&wr); err != nil || wr.StatusCode != 137 {
		t.Fatalf("wait body: %+v %v", wr, err)
	}
	if w := apitest.Do(t, h, "POST", "/containers/sleeper/wait?condition=sometime", nil); w.Code != 400 || apitest.Message(t, w) != `invalid condition: "sometime"` {
		t.Fatalf("bad condition: %d %s", w.Code, w.Body.String())
	}
}

func TestAttachUpgrade(t *testing.T) {
	f := apitest.NewContainers()
	sock := apitest.Serve(t, containerrouter.New(f))
	h := apitest.NewServer(t, containerrouter.New(f))
	create(t, h, "old", `{"Image":"busybox","Cmd":["echo","old","client"]}`)
	create(t, h, "new", `{"Image":"busybox","Cmd":["echo","new","client"]}`)

	// An old client without "Upgrade": 200 and the raw stream anyway.
	_, br := rawConn(t, sock, "POST /v1.40/containers/old/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n")
	status, _ := br.ReadString('\n')
	if status != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status %q", status)
	}
	hdr, _ := readHeaders(br)
	if hdr["Content-Type"] != "application/vnd.docker.raw-stream" || hdr["Api-Version"] != "1.56" {
		t.Fatalf("headers %v", hdr)
	}
	apitest.Do(t, h, "POST", "/containers/old/start", nil)
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, br); err != nil || o.String() != "old client\n" {
		t.Fatalf("old stream: %v %q", err, o.String())
	}

	// Upgrade: 101 and the multiplexed media type.
	_, br = rawConn(t, sock, "POST /v1.50/containers/new/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	status, _ = br.ReadString('\n')
	hdr, _ = readHeaders(br)
	if status != "HTTP/1.1 101 UPGRADED\r\n" || hdr["Content-Type"] != "application/vnd.docker.multiplexed-stream" || hdr["Upgrade"] != "tcp" || hdr["Connection"] != "Upgrade" {
		t.Fatalf("upgrade: %q %v", status, hdr)
	}
	apitest.Do(t, h, "POST", "/containers/new/start", nil)
	o.Reset()
	if _, err := stdcopy.StdCopy(&o, &e, br); err != nil || o.String() != "new client\n" {
		t.Fatalf("new stream: %v %q", err, o.String())
	}

	// A missing container: an ordinary 404 before any takeover.
	_, br = rawConn(t, sock, "POST /containers/ghost/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("ghost: %v %v", resp, err)
	}
}

func readHeaders(br *bufio.Reader) (map[string]string, error) {
	h := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return h, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return h, nil
		}
		k, v, _ := strings.Cut(line, ": ")
		h[k] = v
	}
}
