package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary act as the berth executable, so tests can
// run it under a pseudo-terminal with script(1).
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_CLI_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// shellQuote quotes s for sh -c.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestRunTTY runs "berth run -it" on a pseudo-terminal of 30x100: the
// create request carries Tty and the console size, the attach is a raw
// stream, the terminal is in raw mode (so the input arrives unchanged, no
// echo by the local tty) and the container TTY is resized to the terminal.
func TestRunTTY(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) not available")
	}
	f := newFakeEngine(t)
	started := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var got []byte
	f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID})
	f.reply("POST /containers/*/resize", 200, nil)
	f.handle("POST /containers/*/start", func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		w.WriteHeader(http.StatusNoContent)
	})
	f.handle("POST /containers/*/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-started
		// Exit once the attach stream has ended.
		for i := 0; i < 200; i++ {
			mu.Lock()
			done := strings.Contains(string(got), "q")
			mu.Unlock()
			if done {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": 0})
	})
	f.handle("POST /containers/*/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, rw := hijack(t, w, "application/vnd.docker.raw-stream")
		if conn == nil {
			return
		}
		defer conn.Close()
		<-started
		_, _ = rw.WriteString("ready\r\n")
		_ = rw.Flush()
		buf := make([]byte, 64)
		for {
			n, err := rw.Read(buf)
			mu.Lock()
			got = append(got, buf[:n]...)
			done := strings.Contains(string(got), "q")
			mu.Unlock()
			if err != nil || done {
				break
			}
		}
		_, _ = rw.WriteString("bye\r\n")
		_ = rw.Flush()
	})

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Input: typed after a short delay so raw mode is set; "\x03" would be
	// SIGINT on a cooked terminal but is passed through in raw mode.
	shell := "stty cols 100 rows 30; " + shellQuote(self) + " run -it busybox; rc=$?; echo; echo rc=$rc"
	cmd := exec.Command(scriptBin, "-q", "-e", "-c", shell, "/dev/null")
	cmd.Env = append(os.Environ(), "BERTH_CLI_TEST_MAIN=1", "BERTH_HOST="+f.host, "DOCKER_CONFIG="+t.TempDir())
	// script copies its stdin to the terminal: type once the container
	// runs, keep the input open until the command is done.
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	go func() {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
		}
		time.Sleep(300 * time.Millisecond)
		_, _ = pw.Write([]byte("a\x03q"))
		// Close the input (which ends script) only after berth is done,
		// bounded in case it never is.
		for i := 0; i < 100; i++ {
			mu.Lock()
			done := strings.Contains(string(got), "q")
			mu.Unlock()
			if done {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		pw.Close()
	}()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	t.Logf("terminal output: %q", out)
	var body struct {
		Tty, OpenStdin bool
		HostConfig     struct{ ConsoleSize [2]uint }
	}
	_ = json.Unmarshal(f.requests("POST /containers/create")[0].Body, &body)
	if !body.Tty || !body.OpenStdin || body.HostConfig.ConsoleSize != [2]uint{30, 100} {
		t.Errorf("create body = %+v", body)
	}
	resizes := f.requests("POST /containers/*/resize")
	if len(resizes) == 0 || resizes[0].Query["h"][0] != "30" || resizes[0].Query["w"][0] != "100" {
		t.Errorf("resize requests = %+v", resizes)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(got) != "a\x03q" {
		t.Errorf("container input = %q, want the raw bytes", got)
	}
	if !strings.Contains(string(out), "ready") || !strings.Contains(string(out), "bye") || !strings.Contains(string(out), "rc=0") {
		t.Errorf("terminal output = %q", out)
	}
}

// TestExecTTY runs "berth exec -it" on a pseudo-terminal: the exec is
// created with a TTY and the console size, started attached with a raw
// stream, resized to the terminal, and its exit code is returned.
func TestExecTTY(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) not available")
	}
	f := newFakeEngine(t)
	attached := make(chan struct{})
	var mu sync.Mutex
	var got []byte
	inspectFixture(f)
	f.reply("POST /containers/*/exec", 201, map[string]string{"Id": "e1"})
	f.reply("POST /exec/*/resize", 200, nil)
	f.reply("GET /exec/*/json", 200, map[string]any{"ID": "e1", "Running": false, "ExitCode": 7})
	f.handle("POST /exec/*/start", func(w http.ResponseWriter, r *http.Request) {
		conn, rw := hijack(t, w, "application/vnd.docker.raw-stream")
		if conn == nil {
			return
		}
		defer conn.Close()
		close(attached)
		_, _ = rw.WriteString("sh# ")
		_ = rw.Flush()
		buf := make([]byte, 64)
		for {
			n, err := rw.Read(buf)
			mu.Lock()
			got = append(got, buf[:n]...)
			done := strings.Contains(string(got), "\r")
			mu.Unlock()
			if err != nil || done {
				break
			}
		}
		_, _ = rw.WriteString("exit\r\n")
		_ = rw.Flush()
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	shell := "stty cols 90 rows 20; " + shellQuote(self) + " exec -it web sh; rc=$?; echo; echo rc=$rc"
	cmd := exec.Command(scriptBin, "-q", "-e", "-c", shell, "/dev/null")
	cmd.Env = append(os.Environ(), "BERTH_CLI_TEST_MAIN=1", "BERTH_HOST="+f.host, "DOCKER_CONFIG="+t.TempDir())
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	go func() {
		select {
		case <-attached:
		case <-time.After(10 * time.Second):
		}
		time.Sleep(300 * time.Millisecond)
		_, _ = pw.Write([]byte("ls\r"))
		time.Sleep(1500 * time.Millisecond)
		pw.Close()
	}()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	var body struct {
		Tty, AttachStdin bool
		ConsoleSize      [2]uint
	}
	_ = json.Unmarshal(f.requests("POST /containers/*/exec")[0].Body, &body)
	if !body.Tty || !body.AttachStdin || body.ConsoleSize != [2]uint{20, 90} {
		t.Errorf("exec create body = %+v", body)
	}
	if rs := f.requests("POST /exec/*/resize"); len(rs) == 0 || rs[0].Query["h"][0] != "20" || rs[0].Query["w"][0] != "90" {
		t.Errorf("resize = %+v", rs)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(got) != "ls\r" {
		t.Errorf("exec input = %q (a cooked terminal would send ls\\n)", got)
	}
	if !strings.Contains(string(out), "sh# ") || !strings.Contains(string(out), "rc=7") {
		t.Errorf("terminal output = %q", out)
	}
}
