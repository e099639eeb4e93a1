package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRegistry runs berth-registry on a free loopback port with one user
// (ci / interop) and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	// "interop", bcrypt at cost 4.
	if err := os.WriteFile(htpasswd, []byte("ci:$2y$04$berthinteropsaltsaltsOeLAD7TW9gR.TZxxyYTw6TLQs9R.kOvO\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// Through `berth registry serve`, which runs berth-registry beside it.
	cmd := exec.Command(bins.cli, "registry", "serve", "--listen", addr, "--root", filepath.Join(dir, "root"), "--htpasswd", htpasswd)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "registry", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	return addr
}

func TestRegistryLoginPushPull(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	reg := startRegistry(t)
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			ref := fmt.Sprintf("%s/e2e-%s/busybox:v1", reg, c.name)
			_, e, code := d.cli(c.bin, nil, "login", reg, "-u", "ci", "-p", "wrong")
			if code == 0 || !strings.Contains(strings.ToLower(e), "unauthorized") {
				t.Fatalf("login with a wrong password: %d %q", code, e)
			}
			o, e, code := d.cli(c.bin, nil, "login", reg, "-u", "ci", "--password-stdin")
			_ = o
			if code == 0 {
				t.Fatalf("login without stdin password succeeded")
			}
			o, e, code = d.cli(c.bin, strings.NewReader("interop\n"), "login", reg, "-u", "ci", "--password-stdin")
			if code != 0 || !strings.Contains(o, "Login Succeeded") {
				t.Fatalf("login: %d %q %q", code, o, e)
			}
			if _, e, code := d.cli(c.bin, nil, "tag", "busybox", ref); code != 0 {
				t.Fatalf("tag: %s", e)
			}
			o, e, code = d.cli(c.bin, nil, "push", ref)
			if code != 0 || !strings.Contains(o, "digest: sha256:") {
				t.Fatalf("push: %d %q %q", code, o, e)
			}
			if _, e, code := d.cli(c.bin, nil, "rmi", ref); code != 0 {
				t.Fatalf("rmi: %s", e)
			}
			o, e, code = d.cli(c.bin, nil, "pull", ref)
			if code != 0 || !strings.Contains(o, "Pulling from e2e-"+c.name+"/busybox") || !strings.Contains(o, "Digest: sha256:") {
				t.Fatalf("pull: %d %q %q", code, o, e)
			}
			o, _, code = d.cli(c.bin, nil, "run", "--rm", ref, "echo", "pulled")
			if code != 0 || o != "pulled\n" {
				t.Fatalf("run pulled image: %d %q", code, o)
			}
			if _, e, code := d.cli(c.bin, nil, "logout", reg); code != 0 {
				t.Fatalf("logout: %s", e)
			}
			d.cli(c.bin, nil, "rmi", ref)
			_, e, code = d.cli(c.bin, nil, "pull", ref)
			if code == 0 || !strings.Contains(strings.ToLower(e), "unauthorized") && !strings.Contains(strings.ToLower(e), "denied") {
				t.Fatalf("pull after logout: %d %q", code, e)
			}
		})
	}
}
