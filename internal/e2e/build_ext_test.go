package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// run runs a command and fails the test on error.
func runCmd(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestBuildSSHMount: RUN --mount=type=ssh reaches the agent forwarded
// with `berth build --ssh` (a real ssh-agent: $SSH_AUTH_SOCK as
// "default", and key files served by an agent the CLI starts), through a
// socket with the mount's mode and owner at the default or given target,
// SSH_AUTH_SOCK set; the socket is in no layer; without --ssh an optional
// mount is absent and a required one fails the build.
func TestBuildSSHMount(t *testing.T) {
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Fatal("ssh-agent not installed (scripts/deps.sh installs openssh-client)")
	}
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bt := bins.cli
	keys := t.TempDir()
	runCmd(t, keys, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "berth-e2e", "-f", filepath.Join(keys, "id"))
	sock := filepath.Join(keys, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	waitFor(t, "ssh-agent socket", 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })
	runCmd(t, keys, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", filepath.Join(keys, "id"))
	t.Setenv("SSH_AUTH_SOCK", sock)

	dir := buildDir(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY agentclient /usr/bin/agentclient
RUN --mount=type=ssh echo "$SSH_AUTH_SOCK" > /sockpath && ls -l "$SSH_AUTH_SOCK" | cut -c1-10 > /sockmode && agentclient > /agent
RUN --mount=type=ssh,id=keys,target=/tmp/a.sock,mode=0660,uid=1000,gid=1000,required stat -c '%a %u %g' /tmp/a.sock > /other && SSH_AUTH_SOCK=/tmp/a.sock agentclient >> /other
`,
	})
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	gb := exec.Command("go", "build", "-o", filepath.Join(dir, "agentclient"), "./internal/e2e/testdata/agentclient")
	gb.Dir = root
	gb.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("building agentclient: %v\n%s", err, out)
	}
	d.mustBuild(bt, nil, "--ssh", "default", "--ssh", "keys="+filepath.Join(keys, "id"), "-t", "ssh:1", dir)
	got := d.output(bt, "run", "--rm", "ssh:1", "cat", "/sockpath", "/sockmode", "/agent", "/other")
	want := "/run/buildkit/ssh_agent.0\nsrw-------\ntype=12 keys=1 comment=berth-e2e\n660 1000 1000\ntype=12 keys=1 comment=berth-e2e\n"
	if got != want {
		t.Fatalf("what the RUN steps saw:\n%q\nwant\n%q", got, want)
	}
	if got := d.output(bt, "run", "--rm", "ssh:1", "sh", "-c", "ls /run/buildkit /tmp/a.sock 2>&1; true"); !strings.Contains(got, "/run/buildkit: No such file") || !strings.Contains(got, "/tmp/a.sock: No such file") {
		t.Fatalf("the agent socket is in the image: %q", got)
	}
	// No --ssh: an optional mount is absent, a required one an error.
	opt := buildDir(t, map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=ssh test ! -e /run/buildkit/ssh_agent.0 && echo absent > /r\n"})
	d.mustBuild(bt, nil, "-t", "ssh:2", opt)
	if got := d.output(bt, "run", "--rm", "ssh:2", "cat", "/r"); got != "absent\n" {
		t.Fatalf("optional ssh mount without --ssh: %q", got)
	}
	req := buildDir(t, map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=ssh,required true\n"})
	o, e, code := d.cli(bt, nil, "build", req)
	if code == 0 || !strings.Contains(o+e, `no SSH key "default" forwarded from the client`) {
		t.Fatalf("required ssh mount without --ssh: %d %q %q", code, o, e)
	}
}

// TestBuildGitContext: a git repository served on loopback only (git
// http-backend) is a build context: `berth build URL#ref:subdir` builds
// the tag's subdirectory, the /build remote parameter (Go client) the
// default branch; a missing ref and a remote that is not git are errors.
func TestBuildGitContext(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bt := bins.cli
	work, srv := t.TempDir(), t.TempDir()
	genv := []string{"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.invalid", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.invalid", "GIT_CONFIG_NOSYSTEM=1"}
	writeFile(t, filepath.Join(work, "sub", "Dockerfile"), "FROM busybox\nCOPY hello.txt /hello.txt\n")
	writeFile(t, filepath.Join(work, "sub", "hello.txt"), "v1\n")
	writeFile(t, filepath.Join(work, "Dockerfile"), "FROM busybox\nRUN exit 3\n")
	runCmd(t, work, genv, "git", "init", "-q", "-b", "main")
	runCmd(t, work, genv, "git", "add", ".")
	runCmd(t, work, genv, "git", "commit", "-q", "-m", "one")
	runCmd(t, work, genv, "git", "tag", "v1")
	writeFile(t, filepath.Join(work, "sub", "hello.txt"), "v2\n")
	runCmd(t, work, genv, "git", "commit", "-q", "-am", "two")
	runCmd(t, srv, genv, "git", "clone", "-q", "--bare", work, filepath.Join(srv, "repo.git"))
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(&cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + srv, "GIT_HTTP_EXPORT_ALL=1"}})
	defer hs.Close()
	url := hs.URL + "/repo.git"

	d.mustBuild(bt, nil, "-t", "git:1", url+"#v1:sub")
	if got := d.output(bt, "run", "--rm", "git:1", "cat", "/hello.txt"); got != "v1\n" {
		t.Fatalf("tag v1: %q", got)
	}
	ctx := context.Background()
	res, err := d.client.ImageBuild(ctx, nil, client.ImageBuildOptions{RemoteContext: url + "#:sub", Tags: []string{"git:2"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "Successfully tagged git:2") {
		t.Fatalf("remote build: %s", body)
	}
	if got := d.output(bt, "run", "--rm", "git:2", "cat", "/hello.txt"); got != "v2\n" {
		t.Fatalf("default branch: %q", got)
	}
	if o, e, code := d.cli(bt, nil, "build", url+"#nosuchref:sub"); code == 0 || !strings.Contains(o+e, "unable to check out nosuchref") {
		t.Fatalf("missing ref: %d %q %q", code, o, e)
	}
	if _, err := d.client.ImageBuild(ctx, nil, client.ImageBuildOptions{RemoteContext: hs.URL + "/context.tar"}); err == nil || !strings.Contains(err.Error(), "other than git") {
		t.Fatalf("non-git remote: %v", err)
	}
}

// TestBuildContextByReference: the berth CLI on the daemon's socket
// passes the context directory by reference: .dockerignore applies, a
// read-write RUN bind mount of the context never writes to the client's
// directory, an edit that keeps size and mtime is seen; the same context
// sent as a tar (BERTH_BUILD_CONTEXT=tar) hits the same cache entries; a
// reference the daemon cannot verify is refused with the error the CLI
// falls back on, and a CLI in another mount namespace sends a tar.
func TestBuildContextByReference(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bt := bins.cli
	dir := buildDir(t, map[string]string{
		"a.txt":         "aaaa\n",
		"secret.txt":    "no\n",
		".dockerignore": "secret.txt\n",
		"Dockerfile": `FROM busybox
COPY . /c/
RUN --mount=type=bind,target=/ctx,rw touch /ctx/written && test ! -e /ctx/secret.txt && cat /ctx/a.txt > /bound
`,
	})
	check := func(tag, want string) {
		t.Helper()
		if got := d.output(bt, "run", "--rm", tag, "sh", "-c", "cat /c/a.txt /bound; ls /c"); got != want {
			t.Fatalf("%s: %q, want %q", tag, got, want)
		}
	}
	d.mustBuild(bt, nil, "-t", "ref:1", dir)
	check("ref:1", "aaaa\naaaa\nDockerfile\na.txt\n")
	if _, err := os.Stat(filepath.Join(dir, "written")); err == nil {
		t.Fatal("a RUN bind mount wrote into the client's context")
	}
	t.Setenv("BERTH_BUILD_CONTEXT", "tar")
	out := d.mustBuild(bt, nil, "--progress", "classic", "-t", "ref:2", dir)
	if n := strings.Count(out, "Using cache"); n != 2 {
		t.Fatalf("tar after reference: %d cache hits, want 2:\n%s", n, out)
	}
	t.Setenv("BERTH_BUILD_CONTEXT", "")
	fi, _ := os.Stat(filepath.Join(dir, "a.txt"))
	writeFile(t, filepath.Join(dir, "a.txt"), "bbbb\n")
	os.Chtimes(filepath.Join(dir, "a.txt"), fi.ModTime(), fi.ModTime())
	d.mustBuild(bt, nil, "-t", "ref:3", dir)
	check("ref:3", "bbbb\nbbbb\nDockerfile\na.txt\n")

	// A CLI in another mount namespace, whose context directory is not
	// the one berthd sees at that path: the daemon refuses the
	// reference and the CLI sends a tar.
	other := t.TempDir()
	script := `mount -t tmpfs tmpfs "$D" && printf 'FROM busybox\nCOPY a.txt /a\n' > "$D/Dockerfile" && echo in-ns > "$D/a.txt" && exec "$BERTH" build -q -t ref:ns "$D"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "D="+other, "BERTH="+bt, "BERTH_HOST=unix://"+d.sock, "BERTH_BUILD_CONTEXT=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build from another mount namespace: %v\n%s", err, out)
	}
	if got := d.output(bt, "run", "--rm", "ref:ns", "cat", "/a"); got != "in-ns\n" {
		t.Fatalf("fallback to a tar built %q", got)
	}

	// A reference to another directory than the client saw.
	b, _ := json.Marshal(map[string]any{"dir": dir, "dev": 1, "ino": 1})
	cl, err := client.New(client.WithHost("unix://"+d.sock), client.WithAPIVersionNegotiation(),
		client.WithHTTPHeaders(map[string]string{"X-Berth-Build-Context": base64.StdEncoding.EncodeToString(b)}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.ImageBuild(context.Background(), http.NoBody, client.ImageBuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "build context directory is not visible to the daemon") {
		t.Fatalf("unverifiable reference: %v", err)
	}
}
