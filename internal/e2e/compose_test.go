package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// composeProject is a compose project directory driven through
// `berth compose` against the test's daemon.
type composeProject struct {
	t    *testing.T
	d    *daemon
	dir  string
	name string
}

func newComposeProject(t *testing.T, d *daemon, name string, files map[string]string) *composeProject {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	for f, content := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &composeProject{t: t, d: d, dir: dir, name: name}
}

func (p *composeProject) write(f, content string) {
	p.t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, f), []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// run runs `berth compose ARGS` in the project directory with extra
// environment variables.
func (p *composeProject) run(env []string, args ...string) (string, string, int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.cli, append([]string{"compose"}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+p.d.sock, "DOCKER_HOST=unix://"+p.d.sock,
		"DOCKER_CONFIG="+filepath.Join(filepath.Dir(p.d.dataRoot), "dockercfg"), "COMPOSE_PROJECT_NAME=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			p.t.Fatalf("compose %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// ok runs compose and fails the test unless it exits 0.
func (p *composeProject) ok(env []string, args ...string) (string, string) {
	p.t.Helper()
	out, errOut, code := p.run(env, args...)
	if code != 0 {
		p.t.Fatalf("compose %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out, errOut
}

// containers lists the project's containers (all states) by name.
func (p *composeProject) containers() map[string]container.Summary {
	p.t.Helper()
	res, err := p.d.client.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", "com.docker.compose.project="+p.name)})
	if err != nil {
		p.t.Fatal(err)
	}
	m := map[string]container.Summary{}
	for _, c := range res.Items {
		m[strings.TrimPrefix(c.Names[0], "/")] = c
	}
	return m
}

func (p *composeProject) inspect(name string) container.InspectResponse {
	p.t.Helper()
	res, err := p.d.client.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	return res.Container
}

const composeLifecycleFile = `services:
  init:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "echo init-done > /shared/init.txt"]
    volumes: ["./shared:/shared"]
  web:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "echo web-started $$GREETING; exec sleep 300"]
    environment:
      GREETING: ${GREETING:-hello}
    volumes: ["./shared:/shared"]
    stop_grace_period: 1s
    depends_on:
      init: {condition: service_completed_successfully}
  worker:
    image: busybox
    network_mode: host
    command: ["sleep", "300"]
    stop_grace_period: 1s
    depends_on: [web]
`

// TestComposeLifecycle drives one project through up -d, ps, logs, exec,
// an unchanged up (nothing recreated), a changed service (only it
// recreated), scale, orphans, stop/start, ls and down.
func TestComposeLifecycle(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "lifecycle", map[string]string{"compose.yaml": composeLifecycleFile, "shared/.keep": ""})

	_, errOut := p.ok(nil, "up", "-d")
	for _, want := range []string{"Container lifecycle-init-1  Started", "Container lifecycle-init-1  Exited", "Container lifecycle-web-1  Started", "Container lifecycle-worker-1  Started"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("up progress lacks %q:\n%s", want, errOut)
		}
	}
	// service_completed_successfully: init ran to completion before web
	// started; service_started: web started before worker.
	if b, err := os.ReadFile(filepath.Join(p.dir, "shared", "init.txt")); err != nil || string(b) != "init-done\n" {
		t.Fatalf("init did not run: %q %v", b, err)
	}
	initC, web, worker := p.inspect("lifecycle-init-1"), p.inspect("lifecycle-web-1"), p.inspect("lifecycle-worker-1")
	if initC.State.Running || initC.State.ExitCode != 0 || !web.State.Running || !worker.State.Running {
		t.Fatalf("states: init %+v web %+v worker %+v", initC.State, web.State, worker.State)
	}
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("timestamp %q: %v", s, err)
		}
		return v
	}
	if ts(initC.State.FinishedAt).After(ts(web.State.StartedAt)) || ts(web.State.StartedAt).After(ts(worker.State.StartedAt)) {
		t.Errorf("dependency order: init finished %s, web started %s, worker started %s", initC.State.FinishedAt, web.State.StartedAt, worker.State.StartedAt)
	}
	// Labels exactly as Docker Compose sets them.
	l := web.Config.Labels
	for k, v := range map[string]string{
		"com.docker.compose.project": "lifecycle", "com.docker.compose.service": "web",
		"com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False",
		"com.docker.compose.project.working_dir": p.dir, "com.docker.compose.project.config_files": filepath.Join(p.dir, "compose.yaml"),
		"com.docker.compose.depends_on": "init:service_completed_successfully:false",
	} {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if len(l["com.docker.compose.config-hash"]) != 64 || !strings.HasPrefix(l["com.docker.compose.image"], "sha256:") {
		t.Errorf("hash/image labels: %v", l)
	}
	// `compose config --hash` prints the hash the container carries.
	out, _ := p.ok(nil, "config", "--hash", "web")
	if out != "web "+l["com.docker.compose.config-hash"]+"\n" {
		t.Errorf("config --hash %q, label %q", out, l["com.docker.compose.config-hash"])
	}

	out, _ = p.ok(nil, "ps")
	if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "lifecycle-web-1") || !strings.Contains(out, "Up ") || strings.Contains(out, "lifecycle-init-1") {
		t.Errorf("ps:\n%s", out)
	}
	out, _ = p.ok(nil, "ps", "-a", "--services")
	if out != "init\nweb\nworker\n" {
		t.Errorf("ps --services: %q", out)
	}
	out, _ = p.ok(nil, "ps", "--format", "json", "web")
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &row); err != nil || row["Service"] != "web" || row["Name"] != "lifecycle-web-1" || row["State"] != "running" {
		t.Errorf("ps json %q: %v", out, err)
	}

	var logsOut, logsErr string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logsOut, "web-started hello") {
		if time.Now().After(deadline) {
			t.Fatalf("logs never showed web's first line: %q %q", logsOut, logsErr)
		}
		logsOut, logsErr, _ = p.run(nil, "logs", "web")
	}
	out, _ = p.ok(nil, "logs", "--no-color", "web")
	if out != "web-1  | web-started hello\n" {
		t.Errorf("logs: %q", out)
	}

	out, _ = p.ok(nil, "exec", "-T", "web", "cat", "/shared/init.txt")
	if out != "init-done\n" {
		t.Errorf("exec: %q", out)
	}
	if _, _, code := p.run(nil, "exec", "-T", "web", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exec exit status %d, want 3", code)
	}

	// Unchanged project: nothing is recreated.
	before := p.containers()
	t0 := time.Now()
	_, errOut = p.ok(nil, "up", "-d")
	t.Logf("up -d on the unchanged 3-service project (re-runs the exited init): %s (whole CLI process)", time.Since(t0))
	after := p.containers()
	for name, c := range before {
		if after[name].ID != c.ID {
			t.Errorf("%s recreated by an unchanged up", name)
		}
	}
	if !strings.Contains(errOut, "Container lifecycle-web-1  Running") {
		t.Errorf("unchanged up progress:\n%s", errOut)
	}

	// A changed service is recreated; the others are kept.
	_, errOut = p.ok([]string{"GREETING=changed"}, "up", "-d")
	after = p.containers()
	if after["lifecycle-web-1"].ID == before["lifecycle-web-1"].ID {
		t.Errorf("changed web not recreated:\n%s", errOut)
	}
	if after["lifecycle-worker-1"].ID != before["lifecycle-worker-1"].ID || after["lifecycle-init-1"].ID != before["lifecycle-init-1"].ID {
		t.Errorf("unchanged services recreated:\n%s", errOut)
	}
	if !strings.Contains(errOut, "Container lifecycle-web-1  Recreated") {
		t.Errorf("recreate progress:\n%s", errOut)
	}
	if got := after["lifecycle-web-1"].Labels["com.docker.compose.replace"]; got != before["lifecycle-web-1"].ID {
		t.Errorf("replace label %q", got)
	}

	// Scale up, then back down.
	p.ok([]string{"GREETING=changed"}, "up", "-d", "--scale", "web=2")
	if c, ok := p.containers()["lifecycle-web-2"]; !ok || c.State != container.StateRunning || c.Labels["com.docker.compose.container-number"] != "2" {
		t.Fatalf("scale: %v", p.containers())
	}
	out, _ = p.ok(nil, "exec", "-T", "--index", "2", "web", "sh", "-c", "echo $GREETING")
	if out != "changed\n" {
		t.Errorf("exec --index 2: %q", out)
	}
	p.ok([]string{"GREETING=changed"}, "up", "-d")
	if _, ok := p.containers()["lifecycle-web-2"]; ok {
		t.Errorf("scale down left lifecycle-web-2")
	}

	// Orphans: a service removed from the file is reported, then removed
	// with --remove-orphans.
	p.write("compose.yaml", strings.Split(composeLifecycleFile, "  worker:")[0])
	_, errOut = p.ok([]string{"GREETING=changed"}, "up", "-d")
	if !strings.Contains(errOut, "Found orphan containers ([lifecycle-worker-1])") {
		t.Errorf("orphan warning missing:\n%s", errOut)
	}
	if _, ok := p.containers()["lifecycle-worker-1"]; !ok {
		t.Errorf("orphan removed without --remove-orphans")
	}
	p.ok([]string{"GREETING=changed"}, "up", "-d", "--remove-orphans")
	if _, ok := p.containers()["lifecycle-worker-1"]; ok {
		t.Errorf("--remove-orphans left the orphan")
	}

	// stop / start / ls.
	p.ok(nil, "stop")
	if st := p.containers()["lifecycle-web-1"].State; st != container.StateExited {
		t.Errorf("after stop: %s", st)
	}
	out, _ = p.ok(nil, "ls", "-a")
	if !strings.Contains(out, "lifecycle") || !strings.Contains(out, "exited(2)") {
		t.Errorf("ls -a after stop:\n%s", out)
	}
	p.ok(nil, "start")
	if st := p.containers()["lifecycle-web-1"].State; st != container.StateRunning {
		t.Errorf("after start: %s", st)
	}
	out, _ = p.ok(nil, "ls")
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "running(1)") || !strings.Contains(out, filepath.Join(p.dir, "compose.yaml")) {
		t.Errorf("ls:\n%s", out)
	}

	// The docker CLI sees the same project through the labels.
	dout, _, _ := d.cli(bins.docker, nil, "ps", "-a", "--filter", "label=com.docker.compose.project=lifecycle", "--format", "{{.Names}}")
	if !strings.Contains(dout, "lifecycle-web-1") {
		t.Errorf("docker ps by label: %q", dout)
	}

	_, errOut = p.ok(nil, "down")
	if n := len(p.containers()); n != 0 {
		t.Errorf("down left %d containers:\n%s", n, errOut)
	}
}

// TestComposeRunAndAttachedUp covers one-off containers (run --rm, -e,
// exit status, --no-deps) and an attached up with
// --abort-on-container-exit / --exit-code-from.
func TestComposeRunAndAttachedUp(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "oneoff", map[string]string{"compose.yaml": `services:
  dep:
    image: busybox
    network_mode: none
    command: ["sleep", "300"]
    stop_grace_period: 1s
  app:
    image: busybox
    network_mode: none
    environment: [FROM_FILE=1]
    command: ["sh", "-c", "echo app says hi; sleep 0.2; exit 7"]
    depends_on: [dep]
`})
	out, _ := p.ok(nil, "run", "--rm", "-T", "-e", "X=42", "app", "sh", "-c", "echo $X $FROM_FILE")
	if out != "42 1\n" {
		t.Errorf("run output %q", out)
	}
	cs := p.containers()
	if c, ok := cs["oneoff-dep-1"]; !ok || c.State != container.StateRunning {
		t.Errorf("run did not start the dependency: %v", cs)
	}
	for name, c := range cs {
		if c.Labels["com.docker.compose.oneoff"] == "True" {
			t.Errorf("run --rm left %s", name)
		}
	}
	if _, _, code := p.run(nil, "run", "-T", "--no-deps", "app", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("run exit status %d, want 5", code)
	}
	var oneoff container.Summary
	for name, c := range p.containers() {
		if c.Labels["com.docker.compose.oneoff"] == "True" {
			oneoff = c
			if !strings.HasPrefix(name, "oneoff-app-run-") || len(c.Labels["com.docker.compose.slug"]) != 64 {
				t.Errorf("one-off name %q labels %v", name, c.Labels)
			}
		}
	}
	if oneoff.ID == "" {
		t.Errorf("run without --rm left no container")
	}
	// ps hides one-off containers; ps -a shows them.
	if out, _ := p.ok(nil, "ps"); strings.Contains(out, "-run-") {
		t.Errorf("ps shows one-off containers:\n%s", out)
	}
	if out, _ := p.ok(nil, "ps", "-a"); !strings.Contains(out, "oneoff-app-run-") {
		t.Errorf("ps -a hides one-off containers:\n%s", out)
	}
	// An unchanged, running project: up -d only inspects and lists.
	p.ok(nil, "up", "-d", "dep")
	t0 := time.Now()
	_, errOut := p.ok(nil, "up", "-d", "dep")
	t.Logf("up -d on an unchanged running service: %s (whole CLI process)", time.Since(t0))
	if !strings.Contains(errOut, "Container oneoff-dep-1  Running") {
		t.Errorf("unchanged up: %s", errOut)
	}
	p.ok(nil, "down")

	out, errOut, code := p.run(nil, "up", "--abort-on-container-exit", "--exit-code-from", "app", "--no-color")
	if code != 7 {
		t.Fatalf("up --exit-code-from app: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"Attaching to app-1, dep-1", "app-1  | app says hi", "app-1 exited with code 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("attached output lacks %q:\n%s", want, out)
		}
	}
	if st := p.containers()["oneoff-dep-1"].State; st == container.StateRunning {
		t.Errorf("abort left dep running")
	}
	// wait returns the exit status of the service's container.
	if _, _, code := p.run(nil, "wait", "app"); code != 7 {
		t.Errorf("wait app: exit %d, want 7", code)
	}
	p.ok(nil, "down", "--remove-orphans")
	if n := len(p.containers()); n != 0 {
		t.Errorf("down --remove-orphans left %d containers", n)
	}
}

// TestComposeCommands covers file-based secrets and configs and the
// per-service commands: create, up --wait, pause,
// unpause, restart, top, images, kill, rm, config, and down by project
// name without a compose file. (cp: compose_stack_test.go.)
func TestComposeCommands(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "cmds", map[string]string{
		"compose.yaml": `services:
  web:
    image: busybox
    network_mode: none
    command: ["sleep", "300"]
    stop_grace_period: 1s
    labels: [com.example.role=web]
    secrets: [pw]
    configs:
      - app
      - source: app
        target: /etc/app/app.conf
secrets:
  pw: {file: ./pw.txt}
configs:
  app: {file: ./app.conf}
`,
		"pw.txt":   "s3cret\n",
		"app.conf": "setting=1\n",
	})
	p.ok(nil, "create")
	if st := p.containers()["cmds-web-1"].State; st != container.StateCreated {
		t.Errorf("create: state %s", st)
	}
	_, errOut := p.ok(nil, "up", "-d", "--wait", "--wait-timeout", "30")
	if !strings.Contains(errOut, "Container cmds-web-1  Healthy") {
		t.Errorf("--wait progress:\n%s", errOut)
	}
	// File-based secrets and configs: bind-mounted read-only.
	out, _ := p.ok(nil, "exec", "-T", "web", "cat", "/run/secrets/pw", "/app", "/etc/app/app.conf")
	if out != "s3cret\nsetting=1\nsetting=1\n" {
		t.Errorf("secret/config content: %q", out)
	}
	if _, _, code := p.run(nil, "exec", "-T", "web", "sh", "-c", "echo x > /run/secrets/pw"); code == 0 {
		t.Errorf("secret is writable")
	}
	p.ok(nil, "pause")
	if st := p.inspect("cmds-web-1").State; !st.Paused {
		t.Errorf("pause: %+v", st)
	}
	p.ok(nil, "unpause", "web")
	if st := p.inspect("cmds-web-1").State; st.Paused || !st.Running {
		t.Errorf("unpause: %+v", st)
	}
	started := p.inspect("cmds-web-1").State.StartedAt
	p.ok(nil, "restart", "-t", "1")
	if st := p.inspect("cmds-web-1").State; !st.Running || st.StartedAt == started {
		t.Errorf("restart: %+v (was started %s)", st, started)
	}
	out, _ = p.ok(nil, "top")
	if !strings.HasPrefix(out, "cmds-web-1\n") || !strings.Contains(out, "sleep 300") {
		t.Errorf("top:\n%s", out)
	}
	out, _ = p.ok(nil, "images")
	if !strings.Contains(out, "CONTAINER") || !strings.Contains(out, "cmds-web-1") || !strings.Contains(out, "busybox") {
		t.Errorf("images:\n%s", out)
	}
	out, _ = p.ok(nil, "config")
	if !strings.HasPrefix(out, "name: cmds\n") || !strings.Contains(out, "com.example.role: web") || !strings.Contains(out, "network_mode: none") {
		t.Errorf("config:\n%s", out)
	}
	out, _ = p.ok(nil, "config", "--format", "json")
	var cfg struct {
		Name     string
		Services map[string]struct{ Image string }
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil || cfg.Name != "cmds" || cfg.Services["web"].Image != "busybox" {
		t.Errorf("config --format json: %v\n%s", err, out)
	}
	p.ok(nil, "scale", "web=2")
	if c, ok := p.containers()["cmds-web-2"]; !ok || c.State != container.StateRunning {
		t.Errorf("scale web=2: %v", p.containers())
	}
	p.ok(nil, "scale", "web=1")
	if _, ok := p.containers()["cmds-web-2"]; ok {
		t.Errorf("scale web=1 left cmds-web-2")
	}
	p.ok(nil, "kill")
	waitFor(t, "the killed container to stop", 10*time.Second, func() bool { return !p.inspect("cmds-web-1").State.Running })
	if st := p.inspect("cmds-web-1").State; st.ExitCode != 137 {
		t.Errorf("kill: %+v", st)
	}
	p.ok(nil, "rm", "-f")
	if n := len(p.containers()); n != 0 {
		t.Errorf("rm -f left %d containers", n)
	}
	// down by project name, from a directory without a compose file.
	p.ok(nil, "up", "-d")
	empty := &composeProject{t: t, d: d, dir: t.TempDir(), name: "cmds"}
	_, errOut = empty.ok(nil, "-p", "cmds", "down", "-t", "1")
	if n := len(p.containers()); n != 0 {
		t.Errorf("down -p without a file left %d containers:\n%s", n, errOut)
	}
}

// start runs `berth compose ARGS` in the background; stdout lines arrive
// on the returned channel.
func (p *composeProject) start(args ...string) (*exec.Cmd, <-chan string, *bytes.Buffer) {
	p.t.Helper()
	cmd := exec.Command(bins.cli, append([]string{"compose"}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+p.d.sock, "COMPOSE_PROJECT_NAME=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		buf := make([]byte, 4096)
		var pending string
		for {
			n, err := stdout.Read(buf)
			pending += string(buf[:n])
			for {
				i := strings.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				lines <- pending[:i]
				pending = pending[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	p.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, lines, &errb
}

// expectLine waits for a line containing want.
func expectLine(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line with %q", want)
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line with %q within 30s", want)
		}
	}
}

// TestComposeEventsAndInterrupt: `compose events --json` reports the
// project's container events with their service; an attached `up`
// interrupted with SIGINT stops the project and exits 130; `logs -f`
// picks up a container started while it runs.
func TestComposeEventsAndInterrupt(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "evt", map[string]string{"compose.yaml": `services:
  web:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "echo ready; exec sleep 300"]
    stop_grace_period: 1s
`})
	events, evLines, _ := p.start("events", "--json")
	upCmd, upLines, upErr := p.start("up", "--no-color")
	expectLine(t, upLines, "web-1  | ready")
	var ev struct {
		Action, Service, ID string
		Attributes          map[string]string
	}
	line := expectLine(t, evLines, `"action":"start"`)
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Service != "web" || ev.Attributes["name"] != "evt-web-1" {
		t.Errorf("event %q: %v", line, err)
	}
	if err := upCmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := upCmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("interrupted up: %v\n%s", err, upErr)
	}
	if !strings.Contains(upErr.String(), "Gracefully stopping...") {
		t.Errorf("interrupted up stderr:\n%s", upErr)
	}
	if st := p.inspect("evt-web-1").State; st.Running {
		t.Errorf("web still running after the interrupt")
	}
	_ = events.Process.Kill()
	_ = events.Wait()

	// logs -f follows containers that start later and ends once all the
	// followed containers have stopped.
	p.ok(nil, "up", "-d")
	logs, logLines, logErr := p.start("logs", "-f", "--no-color")
	expectLine(t, logLines, "web-1  | ready")
	p.ok(nil, "up", "-d", "--scale", "web=2")
	expectLine(t, logLines, "web-2  | ready")
	p.ok(nil, "stop")
	if err := logs.Wait(); err != nil {
		t.Errorf("logs -f after stop: %v\n%s", err, logErr)
	}
	p.ok(nil, "down")
}

// TestComposeTenServices brings up ten independent services (started in
// parallel), then checks an unchanged up touches nothing, and logs the
// timings of both and of down.
func TestComposeTenServices(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	var b strings.Builder
	b.WriteString("services:\n")
	for i := 0; i < 10; i++ {
		b.WriteString("  s" + string(rune('0'+i)) + ":\n    image: busybox\n    network_mode: none\n    command: [sleep, \"300\"]\n    stop_grace_period: 1s\n")
	}
	p := newComposeProject(t, d, "ten", map[string]string{"compose.yaml": b.String()})
	t0 := time.Now()
	p.ok(nil, "up", "-d")
	cold := time.Since(t0)
	cs := p.containers()
	if len(cs) != 10 {
		t.Fatalf("%d containers", len(cs))
	}
	for name, c := range cs {
		if c.State != container.StateRunning {
			t.Errorf("%s is %s", name, c.State)
		}
	}
	t0 = time.Now()
	_, errOut := p.ok(nil, "up", "-d")
	warm := time.Since(t0)
	if strings.Count(errOut, "Running") != 10 || strings.Contains(errOut, "Creat") {
		t.Errorf("unchanged up:\n%s", errOut)
	}
	t0 = time.Now()
	p.ok(nil, "down", "-t", "1")
	t.Logf("10 services: up -d %s, unchanged up -d %s, down %s (whole CLI processes)", cold, warm, time.Since(t0))
	if n := len(p.containers()); n != 0 {
		t.Errorf("down left %d", n)
	}
}

// TestComposeServiceAttributes runs a one-off container of a service
// using many attributes and checks, from inside, that the engine applied
// them: user, working_dir, hostname, read_only, tmpfs, env_file,
// environment, entrypoint/command, cap_drop, ulimits, extra_hosts; and
// that deploy limits/reservations, restart and stop settings reach the
// container's configuration.
func TestComposeServiceAttributes(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "attrs", map[string]string{
		"compose.yaml": `services:
  probe:
    image: busybox
    network_mode: none
    user: "1000:1000"
    working_dir: /tmp
    hostname: probe-host
    read_only: true
    tmpfs: [/scratch]
    env_file: [probe.env]
    environment:
      FROM_COMPOSE: yes-${SUFFIX:-default}
    entrypoint: ["sh", "-c"]
    command: ["id -u; pwd; hostname; echo $$FROM_FILE $$FROM_COMPOSE; touch /denied 2>/dev/null || echo ro; touch /scratch/ok && echo tmpfs-ok; ulimit -n; grep -c db.local /etc/hosts; grep CapEff /proc/self/status"]
    cap_drop: [ALL]
    ulimits:
      nofile: {soft: 512, hard: 1024}
    extra_hosts: ["db.local:10.1.2.3"]
  limited:
    image: busybox
    network_mode: none
    command: ["sleep", "300"]
    restart: unless-stopped
    stop_signal: SIGUSR1
    stop_grace_period: 2s
    deploy:
      resources:
        limits: {memory: 64M, pids: 50, cpus: "0.5"}
        reservations: {memory: 32M}
`,
		"probe.env": "FROM_FILE=file-value\n",
	})
	p.ok(nil, "up", "-d", "limited")
	lim := p.inspect("attrs-limited-1")
	hc := lim.HostConfig
	if hc.Memory != 64<<20 || hc.PidsLimit == nil || *hc.PidsLimit != 50 || hc.NanoCPUs != 5e8 || hc.MemoryReservation != 32<<20 ||
		hc.RestartPolicy.Name != "unless-stopped" || lim.Config.StopSignal != "SIGUSR1" || lim.Config.StopTimeout == nil || *lim.Config.StopTimeout != 2 {
		t.Errorf("limits/restart/stop: %+v %+v stop %q %v", hc.Resources, hc.RestartPolicy, lim.Config.StopSignal, lim.Config.StopTimeout)
	}
	p.ok(nil, "down", "-t", "0")
	out, errOut := p.ok([]string{"SUFFIX=env"}, "run", "--rm", "-T", "probe")
	want := "1000\n/tmp\nprobe-host\nfile-value yes-env\nro\ntmpfs-ok\n512\n1\nCapEff:\t0000000000000000\n"
	if out != want {
		t.Errorf("attributes seen from inside:\n%q\nwant\n%q\nstderr: %s", out, want, errOut)
	}
}
