package cli

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/registry"
)

// runFixture wires create, attach, wait and start like a daemon running a
// container that writes to stdout and stderr and exits with exitCode. The
// attach handler echoes what it reads on stdin (until the client half-closes)
// as one more stdout frame when echoStdin is set.
type runFixture struct {
	started chan struct{}
	once    sync.Once
	stdinMu sync.Mutex
	stdin   string
}

func newRunFixture(t *testing.T, f *fakeEngine, exitCode int, echoStdin bool, frames ...[]byte) *runFixture {
	rf := &runFixture{started: make(chan struct{})}
	f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
	f.handle("POST /containers/*/start", func(w http.ResponseWriter, r *http.Request) {
		rf.once.Do(func() { close(rf.started) })
		w.WriteHeader(http.StatusNoContent)
	})
	f.handle("POST /containers/*/wait", func(w http.ResponseWriter, r *http.Request) {
		// Like dockerd, answer the headers at once and the status at exit.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-rf.started:
		case <-time.After(10 * time.Second):
			t.Error("wait: container never started")
		}
		// Let the attach stream drain first, as a real exit would.
		time.Sleep(20 * time.Millisecond)
		_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": exitCode})
	})
	f.handle("POST /containers/*/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, rw := hijack(t, w, "application/vnd.docker.multiplexed-stream")
		if conn == nil {
			return
		}
		defer conn.Close()
		select {
		case <-rf.started:
		case <-time.After(10 * time.Second):
			t.Error("attach: container never started")
			return
		}
		for _, fr := range frames {
			_, _ = rw.Write(fr)
		}
		_ = rw.Flush()
		if echoStdin {
			b, _ := io.ReadAll(rw)
			rf.stdinMu.Lock()
			rf.stdin = string(b)
			rf.stdinMu.Unlock()
			_, _ = rw.Write(frame(1, "echo:"+string(b)))
			_ = rw.Flush()
		}
	})
	return rf
}

func TestRunSeparatesStreamsAndPropagatesExitCode(t *testing.T) {
	f := newFakeEngine(t)
	newRunFixture(t, f, 3, false, frame(1, "hello\n"), frame(2, "oops\n"), frame(1, "bye\n"))
	stdout, stderr, code := runBerth(t, f, "", "run", "--name", "t1", "busybox", "sh", "-c", "x")
	if code != 3 {
		t.Errorf("exit code = %d, want the container's 3 (stderr %q)", code, stderr)
	}
	if stdout != "hello\nbye\n" {
		t.Errorf("stdout = %q", stdout)
	}
	if stderr != "oops\n" {
		t.Errorf("stderr = %q", stderr)
	}
	// Attach and wait are set up before the start, as docker does.
	var order []string
	f.mu.Lock()
	for _, r := range f.reqs {
		if r.Path != "/_ping" {
			order = append(order, r.Method+" "+strings.Replace(r.Path, fakeID, "ID", 1))
		}
	}
	f.mu.Unlock()
	if len(order) < 4 || order[0] != "POST /containers/create" || order[len(order)-1] == "POST /containers/ID/attach" {
		t.Errorf("request order = %v", order)
	}
	startIdx, attachIdx := -1, -1
	for i, o := range order {
		switch o {
		case "POST /containers/ID/start":
			startIdx = i
		case "POST /containers/ID/attach":
			attachIdx = i
		}
	}
	if attachIdx < 0 || startIdx < attachIdx {
		t.Errorf("attach must precede start: %v", order)
	}
	att := f.requests("POST /containers/*/attach")[0]
	for k, v := range map[string]string{"stream": "1", "stdout": "1", "stderr": "1"} {
		if got := att.Query[k]; len(got) != 1 || got[0] != v {
			t.Errorf("attach query %s = %v", k, got)
		}
	}
	if _, ok := att.Query["stdin"]; ok {
		t.Errorf("stdin attached without -i")
	}
	if w := f.requests("POST /containers/*/wait")[0]; w.Query["condition"][0] != "next-exit" {
		t.Errorf("wait condition = %v", w.Query["condition"])
	}
}

func TestRunZeroExit(t *testing.T) {
	f := newFakeEngine(t)
	newRunFixture(t, f, 0, false, frame(1, "ok\n"))
	stdout, stderr, code := runBerth(t, f, "", "run", "--rm", "busybox")
	if code != 0 || stdout != "ok\n" || stderr != "" {
		t.Errorf("code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	if w := f.requests("POST /containers/*/wait")[0]; w.Query["condition"][0] != "removed" {
		t.Errorf("--rm must wait for removal, condition = %v", w.Query["condition"])
	}
}

func TestRunForwardsStdinAndHalfCloses(t *testing.T) {
	f := newFakeEngine(t)
	rf := newRunFixture(t, f, 0, true)
	stdout, stderr, code := runBerth(t, f, "line1\nline2\n", "run", "-i", "busybox", "cat")
	if code != 0 {
		t.Fatalf("code = %d, stderr %q", code, stderr)
	}
	// The echo only arrives if the server saw EOF: the half-close worked.
	if stdout != "echo:line1\nline2\n" {
		t.Errorf("stdout = %q", stdout)
	}
	rf.stdinMu.Lock()
	defer rf.stdinMu.Unlock()
	if rf.stdin != "line1\nline2\n" {
		t.Errorf("container stdin = %q", rf.stdin)
	}
	att := f.requests("POST /containers/*/attach")[0]
	if att.Query["stdin"][0] != "1" {
		t.Errorf("stdin not attached: %v", att.Query)
	}
	var body struct {
		OpenStdin, StdinOnce, AttachStdin bool
	}
	_ = json.Unmarshal(f.requests("POST /containers/create")[0].Body, &body)
	if !body.OpenStdin || !body.StdinOnce || !body.AttachStdin {
		t.Errorf("create body stdin flags = %+v", body)
	}
}

func TestRunTTYRequiresTerminal(t *testing.T) {
	f := newFakeEngine(t)
	newRunFixture(t, f, 0, false)
	_, stderr, code := runBerth(t, f, "", "run", "-it", "busybox")
	if code != 125 || !strings.Contains(stderr, "the input device is not a TTY") {
		t.Errorf("code=%d stderr=%q", code, stderr)
	}
}

func TestRunDetachPrintsID(t *testing.T) {
	f := newFakeEngine(t)
	newRunFixture(t, f, 0, false)
	stdout, _, code := runBerth(t, f, "", "run", "-d", "busybox")
	if code != 0 || stdout != fakeID+"\n" {
		t.Errorf("code=%d stdout=%q", code, stdout)
	}
	if n := len(f.requests("POST /containers/*/attach")); n != 0 {
		t.Errorf("-d attached %d times", n)
	}
}

func TestRunDetachKeys(t *testing.T) {
	f := newFakeEngine(t)
	newRunFixture(t, f, 0, true)
	// ctrl-p ctrl-q in the input detaches: the CLI returns 0 without
	// waiting for the container.
	_, _, code := runBerth(t, f, "abc\x10\x11def", "run", "-i", "busybox")
	if code != 0 {
		t.Errorf("code = %d", code)
	}
	att := f.requests("POST /containers/*/attach")[0]
	if _, ok := att.Query["detachKeys"]; ok {
		t.Errorf("default detach keys should not be sent: %v", att.Query)
	}
	f2 := newFakeEngine(t)
	newRunFixture(t, f2, 0, true)
	_, _, code = runBerth(t, f2, "x", "run", "-i", "--detach-keys", "ctrl-a,x", "busybox")
	if code != 0 {
		t.Errorf("code = %d", code)
	}
	if got := f2.requests("POST /containers/*/attach")[0].Query["detachKeys"]; len(got) != 1 || got[0] != "ctrl-a,x" {
		t.Errorf("detachKeys = %v", got)
	}
	_, stderr, code := runBerth(t, f2, "", "run", "--detach-keys", "ctrl-", "busybox")
	if code != 125 || !strings.Contains(stderr, "invalid detach keys") {
		t.Errorf("bad keys: code=%d stderr=%q", code, stderr)
	}
}

func TestEscapeProxy(t *testing.T) {
	keys, _ := parseDetachKeys("ctrl-p,ctrl-q")
	for _, tc := range []struct {
		in, out  string
		detached bool
	}{
		{"hello", "hello", false},
		{"a\x10b", "a\x10b", false},
		{"a\x10\x11b", "a", true},
		{"\x10\x10\x11", "\x10", true},
	} {
		p := &escapeProxy{r: strings.NewReader(tc.in), keys: keys}
		b, err := io.ReadAll(p)
		if string(b) != tc.out || (err == errDetached) != tc.detached {
			t.Errorf("%q: got %q, %v", tc.in, b, err)
		}
	}
}

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string]string{
		"ctrl-p,ctrl-q": "\x10\x11", "ctrl-a,x": "\x01x", "ctrl-@,ctrl-[,ctrl-_": "\x00\x1b\x1f",
	} {
		got, err := parseDetachKeys(in)
		if err != nil || string(got) != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "foo"} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// pullStream is a JSON progress stream as the daemon sends for a pull.
const pullStream = `{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2c3d4e5f6"}
{"status":"Downloading","progressDetail":{"current":1024,"total":2048},"progress":"[=========================>                         ]  1.024kB/2.048kB","id":"a1b2c3d4e5f6"}
{"status":"Download complete","progressDetail":{},"id":"a1b2c3d4e5f6"}
{"status":"Pull complete","progressDetail":{},"id":"a1b2c3d4e5f6"}
{"status":"Digest: sha256:abcd"}
{"status":"Status: Downloaded newer image for busybox:latest"}
`

func TestRunPullsMissingImage(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	// Credentials for Docker Hub, stored as docker login does.
	cfg := `{"auths":{"https://index.docker.io/v1/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) + `"}}}`
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeEngine(t)
	newRunFixture(t, f, 0, false)
	var mu sync.Mutex
	created := 0
	f.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		created++
		if created == 1 {
			writeJSON(w, 404, map[string]string{"message": "No such image: busybox:latest"})
			return
		}
		writeJSON(w, 201, map[string]any{"Id": fakeID})
	})
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, pullStream)
	})
	stdout, stderr, code := runBerth(t, f, "", "run", "-d", "busybox")
	if code != 0 {
		t.Fatalf("code = %d, stderr %q", code, stderr)
	}
	if stdout != fakeID+"\n" {
		t.Errorf("stdout = %q", stdout)
	}
	wantErr := "Unable to find image 'busybox:latest' locally\nlatest: Pulling from library/busybox\na1b2c3d4e5f6: Pulling fs layer\na1b2c3d4e5f6: Download complete\na1b2c3d4e5f6: Pull complete\nDigest: sha256:abcd\nStatus: Downloaded newer image for busybox:latest\n"
	if stderr != wantErr {
		t.Errorf("stderr =\n%s\nwant\n%s", stderr, wantErr)
	}
	pulls := f.requests("POST /images/create")
	if len(pulls) != 1 || pulls[0].Query["fromImage"][0] != "docker.io/library/busybox" || pulls[0].Query["tag"][0] != "latest" {
		t.Fatalf("pull requests = %+v", pulls)
	}
	authHdr := pulls[0].Header.Get("X-Registry-Auth")
	raw, err := base64.URLEncoding.DecodeString(authHdr)
	if err != nil {
		t.Fatalf("X-Registry-Auth %q: %v", authHdr, err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil || ac.Username != "alice" || ac.Password != "s3cret" {
		t.Errorf("auth = %+v (%v)", ac, err)
	}
}

func TestRunPullPolicies(t *testing.T) {
	f := newFakeEngine(t)
	newRunFixture(t, f, 0, false)
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, pullStream)
	})
	_, stderr, code := runBerth(t, f, "", "run", "-d", "--pull=always", "-q", "busybox")
	if code != 0 || stderr != "" {
		t.Errorf("--pull=always -q: code=%d stderr=%q", code, stderr)
	}
	if n := len(f.requests("POST /images/create")); n != 1 {
		t.Errorf("--pull=always pulled %d times", n)
	}

	f2 := newFakeEngine(t)
	f2.reply("POST /containers/create", 404, map[string]string{"message": "No such image: busybox:latest"})
	_, stderr, code = runBerth(t, f2, "", "create", "--pull=never", "busybox")
	if code != 1 || stderr != "Error response from daemon: No such image: busybox:latest\n" {
		t.Errorf("--pull=never: code=%d stderr=%q", code, stderr)
	}
	if n := len(f2.requests("POST /images/create")); n != 0 {
		t.Errorf("--pull=never pulled")
	}
}

func TestPullFailureInStream(t *testing.T) {
	f := newFakeEngine(t)
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"Pulling from library/nope","id":"latest"}`+"\n"+`{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`+"\n")
	})
	stdout, stderr, code := runBerth(t, f, "", "pull", "nope")
	if code != 1 || stderr != "manifest unknown\n" {
		t.Errorf("code=%d stderr=%q", code, stderr)
	}
	if stdout != "Using default tag: latest\nlatest: Pulling from library/nope\n" {
		t.Errorf("stdout = %q", stdout)
	}
}

func TestCidfile(t *testing.T) {
	f := newFakeEngine(t)
	f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID})
	p := filepath.Join(t.TempDir(), "cid")
	if _, stderr, code := runBerth(t, f, "", "create", "--cidfile", p, "busybox"); code != 0 {
		t.Fatalf("code=%d %s", code, stderr)
	}
	b, _ := os.ReadFile(p)
	if string(b) != fakeID {
		t.Errorf("cidfile = %q", b)
	}
	var body struct {
		HostConfig struct{ ContainerIDFile string }
	}
	_ = json.Unmarshal(f.requests("POST /containers/create")[0].Body, &body)
	if body.HostConfig.ContainerIDFile != p {
		t.Errorf("ContainerIDFile = %q", body.HostConfig.ContainerIDFile)
	}
	_, stderr, code := runBerth(t, f, "", "create", "--cidfile", p, "busybox")
	if code != 1 || !strings.Contains(stderr, "container ID file found") {
		t.Errorf("existing cidfile: code=%d stderr=%q", code, stderr)
	}
}

// docker 28.2 panics on this command line; berth discards the stream that
// is not attached.
func TestRunAttachStderrOnly(t *testing.T) {
	f := newFakeEngine(t)
	newRunFixture(t, f, 2, false, frame(1, "hidden\n"), frame(2, "shown\n"))
	stdout, stderr, code := runBerth(t, f, "", "run", "-a", "stderr", "busybox")
	if code != 2 || stdout != "" || stderr != "shown\n" {
		t.Errorf("code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	att := f.requests("POST /containers/*/attach")[0]
	if _, ok := att.Query["stdout"]; ok {
		t.Errorf("stdout attached: %v", att.Query)
	}
}

// TestRunSendsAttachAndWaitTogether: run sends the attach and the wait
// without waiting for either's answer (the attach here answers only once
// the wait has arrived, which would deadlock one after the other), and
// starts the container only after both have answered: the attach's 101
// (the daemon holds the streams) and the wait's headers (registered).
func TestRunSendsAttachAndWaitTogether(t *testing.T) {
	f := newFakeEngine(t)
	var (
		mu                    sync.Mutex
		attachUp, waitUp      bool
		startSawBoth          = make(chan bool, 1)
		waitArrived, started  = make(chan struct{}), make(chan struct{})
		waitOnce, startedOnce sync.Once
	)
	f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
	f.handle("POST /containers/*/wait", func(w http.ResponseWriter, r *http.Request) {
		waitOnce.Do(func() { close(waitArrived) })
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		mu.Lock()
		waitUp = true
		mu.Unlock()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": 0})
	})
	f.handle("POST /containers/*/attach", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-waitArrived:
		case <-time.After(10 * time.Second):
			t.Error("attach: the wait was not sent while the attach was pending")
		}
		conn, rw := hijack(t, w, "application/vnd.docker.multiplexed-stream")
		if conn == nil {
			return
		}
		defer conn.Close()
		mu.Lock()
		attachUp = true
		mu.Unlock()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			return
		}
		_, _ = rw.Write(frame(1, "out\n"))
		_ = rw.Flush()
	})
	f.handle("POST /containers/*/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		startSawBoth <- attachUp && waitUp
		mu.Unlock()
		startedOnce.Do(func() { close(started) })
		w.WriteHeader(http.StatusNoContent)
	})
	stdout, stderr, code := runBerth(t, f, "", "run", "--rm", "busybox", "echo", "out")
	if code != 0 || stdout != "out\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if !<-startSawBoth {
		t.Error("start was sent before the attach and the wait had both answered")
	}
}

// TestRunProxiesEverySignalOnceStarted: run registers the rarer signals
// (here SIGALRM) once the container has started, and forwards them like
// the others. The container "exits" only after the kill has arrived, so
// the proxy is still listening when the signal is delivered.
func TestRunProxiesEverySignalOnceStarted(t *testing.T) {
	f := newFakeEngine(t)
	killed := make(chan string, 4)
	gotKill := make(chan struct{})
	var killOnce sync.Once
	f.handle("POST /containers/*/kill", func(w http.ResponseWriter, r *http.Request) {
		killed <- r.URL.Query().Get("signal")
		killOnce.Do(func() { close(gotKill) })
		w.WriteHeader(http.StatusNoContent)
	})
	started := make(chan struct{})
	var startOnce sync.Once
	f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
	f.handle("POST /containers/*/start", func(w http.ResponseWriter, r *http.Request) {
		startOnce.Do(func() { close(started) })
		w.WriteHeader(http.StatusNoContent)
	})
	exited := func() {
		select {
		case <-gotKill:
		case <-time.After(10 * time.Second):
		}
	}
	f.handle("POST /containers/*/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		exited()
		_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": 0})
	})
	f.handle("POST /containers/*/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, _ := hijack(t, w, "application/vnd.docker.multiplexed-stream")
		if conn == nil {
			return
		}
		defer conn.Close()
		exited()
	})
	ready := make(chan struct{})
	var once sync.Once
	signalProxyReady = func(all bool) {
		if all {
			once.Do(func() { close(ready) })
		}
	}
	t.Cleanup(func() { signalProxyReady = nil })
	go func() {
		<-started
		<-ready
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGALRM)
	}()
	if _, stderr, code := runBerth(t, f, "", "run", "busybox"); code != 0 {
		t.Fatalf("code=%d stderr=%q", code, stderr)
	}
	select {
	case sig := <-killed:
		if sig != "ALRM" {
			t.Errorf("forwarded signal = %q", sig)
		}
	default:
		t.Error("SIGALRM not forwarded")
	}
}
