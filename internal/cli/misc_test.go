package cli

import (
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestSignalProxy(t *testing.T) {
	f := newFakeEngine(t)
	killed := make(chan string, 4)
	f.handle("POST /containers/*/kill", func(w http.ResponseWriter, r *http.Request) {
		killed <- r.URL.Query().Get("signal")
		w.WriteHeader(http.StatusNoContent)
	})
	rf := newRunFixture(t, f, 0, false, frame(1, "x\n"))
	ready := make(chan struct{})
	var once sync.Once
	signalProxyReady = func(bool) { once.Do(func() { close(ready) }) } // USR1 is a start signal
	t.Cleanup(func() { signalProxyReady = nil })
	// Deliver SIGUSR1 to ourselves once the container runs and the proxy
	// listens: berth forwards it as docker does (signal name without the
	// SIG prefix).
	go func() {
		<-rf.started
		<-ready
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
	}()
	_, stderr, code := runBerth(t, f, "", "run", "busybox")
	if code != 0 {
		t.Fatalf("code=%d stderr=%q", code, stderr)
	}
	select {
	case sig := <-killed:
		if sig != "USR1" {
			t.Errorf("forwarded signal = %q", sig)
		}
	case <-time.After(2 * time.Second):
		t.Error("signal not forwarded")
	}

	// --sig-proxy=false forwards nothing.
	f2 := newFakeEngine(t)
	f2.handle("POST /containers/*/kill", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("kill with --sig-proxy=false: %v", r.URL.Query())
	})
	rf2 := newRunFixture(t, f2, 0, false, frame(1, "x\n"))
	go func() {
		<-rf2.started
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGWINCH) // harmless if not caught
	}()
	if _, stderr, code := runBerth(t, f2, "", "run", "--sig-proxy=false", "busybox"); code != 0 {
		t.Errorf("code=%d stderr=%q", code, stderr)
	}
}

func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "__start_berth", "zsh": "#compdef berth", "fish": "complete -c berth",
	} {
		stdout, stderr, code := runBerth(t, nil, "", "completion", shell)
		if code != 0 || !strings.Contains(stdout, marker) {
			t.Errorf("%s: code=%d stderr=%q marker %q missing", shell, code, stderr, marker)
		}
	}
	if _, _, code := runBerth(t, nil, "", "completion", "tcsh"); code == 0 {
		t.Error("tcsh accepted")
	}
	// Cobra's completion helper completes subcommands and flags.
	stdout, _, _ := runBerth(t, nil, "", "__complete", "container", "")
	for _, sub := range []string{"ls", "run", "logs", "inspect"} {
		if !strings.Contains(stdout, sub) {
			t.Errorf("container completions lack %s:\n%s", sub, stdout)
		}
	}
	stdout, _, _ = runBerth(t, nil, "", "__complete", "run", "--mem")
	if !strings.Contains(stdout, "--memory") {
		t.Errorf("flag completions:\n%s", stdout)
	}
}

func TestManagementCommandForms(t *testing.T) {
	f := newFakeEngine(t)
	psFixture(f)
	imagesFixture(f)
	for _, args := range [][]string{
		{"ps", "-aq"}, {"container", "ls", "-aq"}, {"container", "list", "-aq"}, {"container", "ps", "-aq"},
	} {
		stdout, stderr, code := runBerth(t, f, "", args...)
		if code != 0 || stdout != "aaaaaaaaaaaa\nbbbbbbbbbbbb\ndddddddddddd\neeeeeeeeeeee\n" {
			t.Errorf("%v: code=%d stdout=%q stderr=%q", args, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"images", "-q"}, {"image", "ls", "-q"}, {"image", "list", "-q"}} {
		stdout, _, code := runBerth(t, f, "", args...)
		if code != 0 || stdout != "333333333333\n333333333333\n555555555555\n" {
			t.Errorf("%v: code=%d stdout=%q", args, code, stdout)
		}
	}
	stdout, _, code := runBerth(t, f, "", "system")
	if code != 0 || !strings.Contains(stdout, "prune") || !strings.Contains(stdout, "df") {
		t.Errorf("system help: %d %q", code, stdout)
	}
	_, stderr, code := runBerth(t, f, "", "container", "bogus")
	if code != 1 || !strings.Contains(stderr, "unknown command: berth container bogus") {
		t.Errorf("unknown subcommand: %d %q", code, stderr)
	}
}

func TestSystemPrune(t *testing.T) {
	f := newFakeEngine(t)
	f.reply("POST /containers/prune", 200, map[string]any{"ContainersDeleted": []string{"c1"}, "SpaceReclaimed": 1000})
	f.reply("POST /networks/prune", 200, map[string]any{"NetworksDeleted": []string{"n1"}})
	f.reply("POST /volumes/prune", 200, map[string]any{"VolumesDeleted": []string{"v1"}, "SpaceReclaimed": 2000})
	f.reply("POST /images/prune", 200, map[string]any{"ImagesDeleted": []map[string]string{{"Deleted": "sha256:1"}}, "SpaceReclaimed": 3000})
	f.reply("POST /build/prune", 200, map[string]any{"CachesDeleted": []string{}, "SpaceReclaimed": 0})
	stdout, stderr, code := runBerth(t, f, "", "system", "prune", "-f", "--volumes")
	want := "Deleted Containers:\nc1\n\nDeleted Networks:\nn1\n\nDeleted Volumes:\nv1\n\nDeleted Images:\ndeleted: sha256:1\n\nTotal reclaimed space: 6kB\n"
	if code != 0 || stdout != want {
		t.Errorf("code=%d stderr=%q stdout=\n%s", code, stderr, stdout)
	}
	if q := f.requests("POST /images/prune")[0].Query["filters"]; len(q) != 1 || !strings.Contains(q[0], `"dangling":{"true":true}`) {
		t.Errorf("image prune filters = %v", q)
	}
	// Without -f the prompt is shown and "n" aborts.
	stdout, _, code = runBerth(t, f, "n\n", "system", "prune")
	if code != 0 || !strings.Contains(stdout, "WARNING! This will remove:") || strings.Contains(stdout, "Total reclaimed") {
		t.Errorf("prompt: %d %q", code, stdout)
	}
}

func TestVersionAndInfo(t *testing.T) {
	f := newFakeEngine(t)
	versionFixture(f)
	stdout, stderr, code := runBerth(t, f, "", "version")
	if code != 0 || !strings.Contains(stdout, "Client: berth") || !strings.Contains(stdout, "Server: berth") || !strings.Contains(stdout, " Engine:\n  Version:          0.1.0") {
		t.Errorf("version: %d %q\n%s", code, stderr, stdout)
	}
	stdout, _, code = runBerth(t, f, "", "info")
	if code != 0 || !strings.Contains(stdout, " Containers: 3") || !strings.Contains(stdout, " Server Version: 0.1.0") {
		t.Errorf("info: %d\n%s", code, stdout)
	}
	// Without a daemon: the client part and the error, exit 1.
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	stdout, stderr, code = runBerth(t, nil, "", "version")
	if code != 1 || !strings.Contains(stdout, "Client: berth") || !strings.Contains(stderr, "nonexistent") {
		t.Errorf("version without daemon: %d %q %q", code, stdout, stderr)
	}
	if stdout, _, code := runBerth(t, nil, "", "-v"); code != 0 || !strings.HasPrefix(stdout, "berth version ") {
		t.Errorf("-v: %d %q", code, stdout)
	}
}

func TestDaemonUnreachable(t *testing.T) {
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	_, stderr, code := runBerth(t, nil, "", "ps")
	if code != 1 || !strings.Contains(stderr, "/nonexistent/berth.sock") {
		t.Errorf("ps: %d %q", code, stderr)
	}
	_, stderr, code = runBerth(t, nil, "", "run", "busybox")
	if code != 125 || !strings.HasPrefix(stderr, "berth: ") || !strings.HasSuffix(stderr, "Run 'berth run --help' for more information\n") {
		t.Errorf("run: %d %q", code, stderr)
	}
}

func TestAPIVersionFromEnv(t *testing.T) {
	f := newFakeEngine(t)
	f.reply("GET /containers/json", 200, []any{})
	t.Setenv("DOCKER_API_VERSION", "1.44")
	if _, stderr, code := runBerth(t, f, "", "ps", "-q"); code != 0 {
		t.Fatalf("code=%d %s", code, stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs {
		if r.Path == "/containers/json" && r.RawPath != "/v1.44/containers/json" {
			t.Errorf("DOCKER_API_VERSION ignored: %s", r.RawPath)
		}
	}
}

func TestDynamicCompletion(t *testing.T) {
	f := newFakeEngine(t)
	psFixture(f)
	imagesFixture(f)
	for _, tc := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"__complete", "stop", ""}, []string{"web", "job"}, []string{"other/alias"}},
		{[]string{"__complete", "logs", "w"}, []string{"web"}, []string{"job"}},
		{[]string{"__complete", "exec", "web", ""}, nil, []string{"web\n", "job"}},
		{[]string{"__complete", "rmi", ""}, []string{"nginx:latest", "nginx:1.25"}, nil},
		{[]string{"__complete", "image", "rm", "ng"}, []string{"nginx:latest"}, nil},
		{[]string{"__complete", "run", "--pull", ""}, []string{"always", "missing", "never"}, nil},
		{[]string{"__complete", "run", "--restart", ""}, []string{"unless-stopped"}, nil},
	} {
		stdout, stderr, code := runBerth(t, f, "", tc.args...)
		if code != 0 {
			t.Errorf("%v: code=%d %s", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w+"\n") {
				t.Errorf("%v: %q missing from\n%s", tc.args, w, stdout)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(stdout, n) {
				t.Errorf("%v: unexpected %q in\n%s", tc.args, n, stdout)
			}
		}
	}
}

// TestShortRunRegistersOnlyStartSignals: a container that exits before
// restSignalsDelay never has the CLI register the rarer signals (each a
// round trip through the Go runtime's signal thread, beside the
// container's start and exit); the start signals are registered.
func TestShortRunRegistersOnlyStartSignals(t *testing.T) {
	old := restSignalsDelay
	restSignalsDelay = time.Hour
	t.Cleanup(func() { restSignalsDelay = old })
	var mu sync.Mutex
	var calls []bool
	signalProxyReady = func(all bool) {
		mu.Lock()
		calls = append(calls, all)
		mu.Unlock()
	}
	t.Cleanup(func() { signalProxyReady = nil })
	f := newFakeEngine(t)
	rf := newRunFixture(t, f, 0, false, frame(1, "x\n"))
	if _, stderr, code := runBerth(t, f, "", "run", "busybox"); code != 0 {
		t.Fatalf("code=%d stderr=%q", code, stderr)
	}
	<-rf.started
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || calls[0] {
		t.Fatalf("registrations %v, want the start signals only", calls)
	}
}
