package api_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/api/apitest"
)

const dockerCLI = "/usr/local/bin/docker"

// docker runs the real docker CLI against sock with a private config
// directory; it returns stdout, stderr and the exit code.
func docker(t *testing.T, sock string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir(), "DOCKER_CLI_HINTS=false", "DOCKER_CONTEXT=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func needDocker(t *testing.T) {
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Skip("docker CLI not installed")
	}
}

func TestDockerCLI(t *testing.T) {
	needDocker(t)
	f := apitest.NewFakes()
	sock := apitest.Serve(t, f.Routers()...)

	t.Run("version", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}} {{.Client.APIVersion}}")
		if code != 0 || strings.TrimSpace(out) != "0.0.0-test 1.56 1.40 linux 1.50" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("info", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "info", "--format", "{{.Name}} {{.OSType}} {{.Swarm.LocalNodeState}} {{.NCPU}}")
		if code != 0 || strings.TrimSpace(out) != "berth-test linux inactive 2" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("inspect missing", func(t *testing.T) {
		_, stderr, code := docker(t, sock, "inspect", "missing")
		if code != 1 || !strings.Contains(stderr, "Error: No such object: missing") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("run", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "run", "--name", "hello", "busybox", "echo", "hello", "world")
		if code != 0 || out != "hello world\n" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
		out, stderr, code = docker(t, sock, "run", "busybox", "fail", "3", "went wrong")
		if code != 3 || out != "" || stderr != "went wrong\n" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("ps", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "ps", "-a", "--filter", "name=hello", "--format", "{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}")
		if code != 0 || strings.TrimSpace(out) != `hello|busybox|"echo hello world"|exited` {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("logs", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "logs", "hello")
		if code != 0 || out != "hello world\n" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("name conflict", func(t *testing.T) {
		_, stderr, code := docker(t, sock, "create", "--name", "hello", "busybox")
		if code == 0 || !strings.Contains(stderr, `Conflict. The container name "/hello" is already in use`) {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("invalid name", func(t *testing.T) {
		_, stderr, code := docker(t, sock, "create", "--name", "bad name!", "busybox")
		if code == 0 || !strings.Contains(stderr, "Invalid container name (bad name!)") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("exec", func(t *testing.T) {
		if _, stderr, code := docker(t, sock, "run", "-d", "--name", "sleeper", "busybox", "sleep"); code != 0 {
			t.Fatalf("run -d: %d %s", code, stderr)
		}
		out, stderr, code := docker(t, sock, "exec", "sleeper", "echo", "from", "exec")
		if code != 0 || out != "from exec\n" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
		cmd := exec.Command(dockerCLI, "exec", "-i", "sleeper", "cat")
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
		cmd.Stdin = strings.NewReader("piped through stdin\n")
		b, err := cmd.CombinedOutput()
		if err != nil || string(b) != "piped through stdin\n" {
			t.Fatalf("exec -i cat: %v, %q", err, b)
		}
		_, stderr, code = docker(t, sock, "exec", "sleeper", "fail", "5", "exec failed")
		if code != 5 || stderr != "exec failed\n" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("stop rm", func(t *testing.T) {
		if out, stderr, code := docker(t, sock, "stop", "sleeper"); code != 0 || strings.TrimSpace(out) != "sleeper" {
			t.Fatalf("stop: %d %q %q", code, out, stderr)
		}
		if out, stderr, code := docker(t, sock, "rm", "sleeper"); code != 0 || strings.TrimSpace(out) != "sleeper" {
			t.Fatalf("rm: %d %q %q", code, out, stderr)
		}
		_, stderr, code := docker(t, sock, "rm", "sleeper")
		if code != 1 || !strings.Contains(stderr, "No such container: sleeper") {
			t.Fatalf("rm again: %d %q", code, stderr)
		}
	})
	t.Run("pull", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "pull", "alpine:3.20")
		if code != 0 || !strings.Contains(out, "Status: Downloaded newer image for alpine:3.20") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
		_, stderr, code = docker(t, sock, "pull", "nosuchimage")
		if code != 1 || !strings.Contains(stderr, "Error response from daemon: manifest for nosuchimage:latest not found") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		_, stderr, code = docker(t, sock, "pull", "broken")
		if code != 1 || !strings.Contains(stderr, "unexpected EOF") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("images", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "images", "--format", "{{.Repository}}:{{.Tag}}")
		if code != 0 || !strings.Contains(out, "busybox:latest") || !strings.Contains(out, "alpine:3.20") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("cp", func(t *testing.T) {
		if _, stderr, code := docker(t, sock, "create", "--name", "files", "busybox"); code != 0 {
			t.Fatal(stderr)
		}
		out, stderr, code := docker(t, sock, "cp", "files:/etc/hostname", "-")
		if code != 0 || !strings.Contains(out, "hostname") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("run tty and rm", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "run", "--rm", "-t", "busybox", "echo", "with", "tty")
		if code != 0 || out != "with tty\n" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("run -i", func(t *testing.T) {
		cmd := exec.Command(dockerCLI, "run", "-i", "--rm", "busybox", "cat")
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
		cmd.Stdin = strings.NewReader("through attach stdin\n")
		b, err := cmd.CombinedOutput()
		if err != nil || string(b) != "through attach stdin\n" {
			t.Fatalf("run -i cat: %v, %q", err, b)
		}
	})
	t.Run("run pulls a missing image", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "run", "--rm", "alpine:3.21", "echo", "pulled")
		if code != 0 || out != "pulled\n" || !strings.Contains(stderr, "Unable to find image 'alpine:3.21' locally") || !strings.Contains(stderr, "Downloaded newer image for alpine:3.21") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("events", func(t *testing.T) {
		now := time.Now().Add(-2 * time.Second) // the CLI sends until in whole seconds
		f.System.Record(events.Message{Type: events.ContainerEventType, Action: events.ActionDie, Actor: events.Actor{ID: "abc123", Attributes: map[string]string{"name": "web", "image": "busybox"}}, Time: now.Unix(), TimeNano: now.UnixNano()})
		out, stderr, code := docker(t, sock, "events", "--since", "1m", "--until", "0s", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}} {{.From}}")
		if code != 0 || strings.TrimSpace(out) != "container die web die busybox" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("system df", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "system", "df", "--format", "{{.Type}} {{.TotalCount}}")
		if code != 0 || !strings.Contains(out, "Images 1") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("login", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "login", "-u", "alice", "-p", "secret", "localhost:5000")
		if code != 0 || !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
		_, stderr, code = docker(t, sock, "login", "-u", "alice", "-p", "wrong", "localhost:5000")
		if code == 0 || !strings.Contains(stderr, "incorrect username or password") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("tag rmi", func(t *testing.T) {
		if _, stderr, code := docker(t, sock, "tag", "busybox", "localhost:5000/a/b:v1"); code != 0 {
			t.Fatalf("tag: %s", stderr)
		}
		out, stderr, code := docker(t, sock, "image", "inspect", "--format", "{{.ID}}", "localhost:5000/a/b:v1")
		if code != 0 || !strings.HasPrefix(out, "sha256:aaaa") {
			t.Fatalf("inspect: %d %q %q", code, out, stderr)
		}
		out, stderr, code = docker(t, sock, "rmi", "localhost:5000/a/b:v1")
		if code != 0 || !strings.Contains(out, "Untagged: localhost:5000/a/b:v1") {
			t.Fatalf("rmi: %d %q %q", code, out, stderr)
		}
	})
	t.Run("save load", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "save", "busybox")
		if code != 0 || !strings.Contains(out, "manifest.json") {
			t.Fatalf("save: %d %q", code, stderr)
		}
		_, stderr, code = docker(t, sock, "save", "nosuch")
		if code != 1 || !strings.Contains(stderr, "No such image: nosuch") {
			t.Fatalf("save missing: %d %q", code, stderr)
		}
		cmd := exec.Command(dockerCLI, "load")
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
		cmd.Stdin = strings.NewReader(out)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "Loaded image: loaded:latest") {
			t.Fatalf("load: %v %q", err, b)
		}
	})
	t.Run("commit", func(t *testing.T) {
		out, stderr, code := docker(t, sock, "commit", "-c", "ENV A=b", "-m", "msg", "files", "committed:v1")
		if code != 0 || !strings.HasPrefix(out, "sha256:") {
			t.Fatalf("commit: %d %q %q", code, out, stderr)
		}
		c := f.Containers.Commits[len(f.Containers.Commits)-1]
		if c.Ref != "docker.io/library/committed:v1" || c.Comment != "msg" || len(c.Changes) != 1 || c.Changes[0] != "ENV A=b" || !c.Pause {
			t.Fatalf("commit options %+v", c)
		}
	})
	t.Run("swarm", func(t *testing.T) {
		_, stderr, code := docker(t, sock, "service", "ls")
		if code == 0 || !strings.Contains(stderr, "This node is not a swarm manager") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("stats", func(t *testing.T) {
		if _, stderr, code := docker(t, sock, "run", "-d", "--name", "stats", "busybox", "sleep"); code != 0 {
			t.Fatal(stderr)
		}
		out, stderr, code := docker(t, sock, "stats", "--no-stream", "--format", "{{.Name}}", "stats")
		if code != 0 || strings.TrimSpace(out) != "stats" {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
		if _, stderr, code := docker(t, sock, "rm", "-f", "stats"); code != 0 {
			t.Fatal(stderr)
		}
	})
}
