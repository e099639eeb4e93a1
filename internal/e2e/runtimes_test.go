package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// runcPath is the external OCI runtime the tests drive (Debian's runc
// package; scripts/deps.sh installs it).
func runcPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (scripts/deps.sh installs it)")
	}
	return p
}

// checkRuncLeftovers fails the test when the runtime's state directory
// under the daemon's exec root still holds a container, or when a cgroup
// of container id is left.
func checkRuncLeftovers(t *testing.T, d *daemon, name, id string) {
	t.Helper()
	root := filepath.Join(d.execRoot, "runtimes", name)
	waitFor(t, "runc state of "+id+" removed", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(root, id))
		return os.IsNotExist(err)
	})
	for _, dir := range []string{"/sys/fs/cgroup/memory/berth/" + id, "/sys/fs/cgroup/pids/berth/" + id, "/sys/fs/cgroup/unified/berth/" + id, "/sys/fs/cgroup/systemd/berth/" + id, "/sys/fs/cgroup/berth/" + id} {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	}
}

// TestRuntimeRunc runs containers with --runtime runc through the docker
// and berth CLIs: output, exit codes, logs, exec, tty, stop and kill,
// inspect, pause, top, stats, and nothing of runc's left afterwards.
func TestRuntimeRunc(t *testing.T) {
	runc := runcPath(t)
	d := startDaemon(t)
	d.importBusybox("busybox:latest")

	// /info lists berth's own runtime and runc (found on PATH).
	out, errOut, code := d.cli(bins.docker, nil, "info", "--format", "{{json .Runtimes}} {{.DefaultRuntime}}")
	if code != 0 || !strings.Contains(out, `"runc":{"path":"`+runc+`"}`) || !strings.Contains(out, `"berth"`) || !strings.HasSuffix(strings.TrimSpace(out), " berth") {
		t.Fatalf("docker info runtimes: %d %q %q", code, out, errOut)
	}

	for _, cli := range []string{bins.docker, bins.cli} {
		name := filepath.Base(cli)
		t.Run(name, func(t *testing.T) {
			// echo and exit code.
			out, errOut, code := d.cli(cli, nil, "run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo hello; echo oops >&2; exit 3")
			if code != 3 || out != "hello\n" || !strings.Contains(errOut, "oops") {
				t.Fatalf("run: code %d out %q err %q", code, out, errOut)
			}
			// tty.
			out, errOut, code = d.cli(cli, nil, "run", "--rm", "-t", "--runtime", "runc", "busybox", "sh", "-c", "tty; echo hi")
			if code != 0 || !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "hi\r\n") {
				t.Fatalf("run -t: code %d out %q err %q", code, out, errOut)
			}
			// stdin pipe.
			out, errOut, code = d.cli(cli, strings.NewReader("piped\n"), "run", "--rm", "-i", "--runtime", "runc", "busybox", "cat")
			if code != 0 || out != "piped\n" {
				t.Fatalf("run -i: code %d out %q err %q", code, out, errOut)
			}
			// detached: logs, exec, inspect, top, pause, stop.
			cname := "rt-" + name
			out, errOut, code = d.cli(cli, nil, "run", "-d", "--name", cname, "--runtime", "runc", "busybox", "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done")
			if code != 0 {
				t.Fatalf("run -d: %d %s", code, errOut)
			}
			id := strings.TrimSpace(out)
			waitFor(t, "logs", 10*time.Second, func() bool {
				out, _, _ := d.cli(cli, nil, "logs", cname)
				return out == "started\n"
			})
			out, _, _ = d.cli(cli, nil, "inspect", "--format", "{{.HostConfig.Runtime}} {{.State.Status}}", cname)
			if strings.TrimSpace(out) != "runc running" {
				t.Fatalf("inspect: %q", out)
			}
			if _, err := os.Stat(filepath.Join(d.execRoot, "runtimes", "runc", id, "state.json")); err != nil {
				t.Fatalf("runc state of the running container: %v", err)
			}
			out, errOut, code = d.cli(cli, nil, "exec", cname, "sh", "-c", "echo in-exec; exit 5")
			if code != 5 || out != "in-exec\n" {
				t.Fatalf("exec: code %d out %q err %q", code, out, errOut)
			}
			out, errOut, code = d.cli(cli, nil, "exec", "-t", cname, "tty")
			if code != 0 || !strings.Contains(out, "/dev/pts/") {
				t.Fatalf("exec -t: code %d out %q err %q", code, out, errOut)
			}
			out, errOut, code = d.cli(cli, strings.NewReader("to-exec"), "exec", "-i", cname, "cat")
			if code != 0 || out != "to-exec" {
				t.Fatalf("exec -i: code %d out %q err %q", code, out, errOut)
			}
			_, errOut, code = d.cli(cli, nil, "exec", cname, "no-such-cmd")
			if code != 127 {
				t.Fatalf("exec of a missing command: code %d err %q", code, errOut)
			}
			out, errOut, code = d.cli(cli, nil, "top", cname)
			if code != 0 || !strings.Contains(out, "sleep") && !strings.Contains(out, "sh -c") {
				t.Fatalf("top: code %d out %q err %q", code, out, errOut)
			}
			out, errOut, code = d.cli(cli, nil, "stats", "--no-stream", "--format", "{{.MemUsage}}", cname)
			if code != 0 || strings.HasPrefix(out, "0B") {
				t.Fatalf("stats: code %d out %q err %q", code, out, errOut)
			}
			// update goes through `runc update`.
			if _, errOut, code = d.cli(cli, nil, "update", "--memory", "64m", "--memory-swap", "128m", cname); code != 0 {
				t.Fatalf("update: %s", errOut)
			}
			out, _, _ = d.cli(cli, nil, "exec", cname, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
			if strings.TrimSpace(out) != "67108864" {
				t.Fatalf("memory limit after update: %q", out)
			}
			if _, errOut, code = d.cli(cli, nil, "pause", cname); code != 0 {
				t.Fatalf("pause: %s", errOut)
			}
			out, _, _ = d.cli(cli, nil, "inspect", "--format", "{{.State.Status}}", cname)
			if strings.TrimSpace(out) != "paused" {
				t.Fatalf("after pause: %q", out)
			}
			if _, errOut, code = d.cli(cli, nil, "unpause", cname); code != 0 {
				t.Fatalf("unpause: %s", errOut)
			}
			if _, errOut, code = d.cli(cli, nil, "stop", "-t", "10", cname); code != 0 {
				t.Fatalf("stop: %s", errOut)
			}
			out, _, _ = d.cli(cli, nil, "inspect", "--format", "{{.State.ExitCode}}", cname)
			if strings.TrimSpace(out) != "0" {
				t.Fatalf("exit code after stop: %q", out)
			}
			if out, _, _ = d.cli(cli, nil, "logs", cname); out != "started\nbye\n" {
				t.Fatalf("logs after stop: %q", out)
			}
			checkRuncLeftovers(t, d, "runc", id)
			// restart, then kill.
			if _, errOut, code = d.cli(cli, nil, "start", cname); code != 0 {
				t.Fatalf("start again: %s", errOut)
			}
			if _, errOut, code = d.cli(cli, nil, "kill", cname); code != 0 {
				t.Fatalf("kill: %s", errOut)
			}
			out, _, _ = d.cli(cli, nil, "wait", cname)
			if strings.TrimSpace(out) != "137" {
				t.Fatalf("wait after kill: %q", out)
			}
			if _, errOut, code = d.cli(cli, nil, "rm", cname); code != 0 {
				t.Fatalf("rm: %s", errOut)
			}
			checkRuncLeftovers(t, d, "runc", id)
		})
	}

	// An OOM kill is reported from the cgroup runc used.
	_, errOut, code = d.cli(bins.docker, nil, "run", "--name", "hog", "--runtime", "runc", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
	if code != 137 {
		t.Fatalf("memory hog: exit %d (%s), want 137", code, errOut)
	}
	if out, _, _ := d.cli(bins.docker, nil, "inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog"); strings.TrimSpace(out) != "true 137" {
		t.Fatalf("inspect after OOM: %q", out)
	}
	// A missing command fails the start as with berth's runtime (127).
	_, errOut, code = d.cli(bins.docker, nil, "run", "--rm", "--runtime", "runc", "busybox", "no-such-cmd")
	if code != 127 || !strings.Contains(errOut, "OCI runtime create failed: runc create failed") || !strings.Contains(errOut, "executable file not found") {
		t.Fatalf("run of a missing command: code %d err %q", code, errOut)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.execRoot, "runtimes", "runc")); len(ents) > 0 {
		t.Fatalf("runc state left: %v", ents)
	}
}

// TestRuntimeUnknown: an unknown runtime fails the create with Docker's
// message and status.
func TestRuntimeUnknown(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, cli := range []string{bins.docker, bins.cli} {
		_, errOut, code := d.cli(cli, nil, "run", "--rm", "--runtime", "nosuch", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "unknown or invalid runtime name: nosuch") {
			t.Fatalf("%s: code %d err %q", cli, code, errOut)
		}
	}
	_, err := d.client.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{Runtime: "nosuch"},
	})
	if err == nil || !strings.Contains(err.Error(), "unknown or invalid runtime name: nosuch") {
		t.Fatalf("api create: %v", err)
	}
	// A container without --runtime records the default (berth's own).
	out, _, _ := d.cli(bins.docker, nil, "create", "busybox", "true")
	out, _, _ = d.cli(bins.docker, nil, "inspect", "--format", "{{.HostConfig.Runtime}}", strings.TrimSpace(out))
	if strings.TrimSpace(out) != "berth" {
		t.Fatalf("default runtime recorded: %q", out)
	}
}

// TestRuntimeFlags: --add-runtime and --default-runtime; a container
// without --runtime gets (and keeps) the default.
func TestRuntimeFlags(t *testing.T) {
	runc := runcPath(t)
	d := startDaemonWith(t, func(d *daemon) {
		d.args = []string{"--add-runtime", "flagrunc=" + runc, "--default-runtime", "flagrunc"}
	})
	d.importBusybox("busybox:latest")
	out, errOut, code := d.cli(bins.cli, nil, "info", "--format", "{{.DefaultRuntime}} {{(index .Runtimes \"flagrunc\").Path}}")
	if code != 0 || strings.TrimSpace(out) != "flagrunc "+runc {
		t.Fatalf("info: %d %q %q", code, out, errOut)
	}
	out, errOut, code = d.cli(bins.docker, nil, "run", "--name", "deflt", "busybox", "echo", "by-default")
	if code != 0 || out != "by-default\n" {
		t.Fatalf("run: %d %q %q", code, out, errOut)
	}
	out, _, _ = d.cli(bins.docker, nil, "inspect", "--format", "{{.HostConfig.Runtime}}", "deflt")
	if strings.TrimSpace(out) != "flagrunc" {
		t.Fatalf("recorded runtime: %q", out)
	}
	// berth's own runtime stays available by name.
	out, errOut, code = d.cli(bins.docker, nil, "run", "--rm", "--runtime", "berth", "busybox", "echo", "own")
	if code != 0 || out != "own\n" {
		t.Fatalf("run --runtime berth: %d %q %q", code, out, errOut)
	}
}

// TestRuntimeReload: a runtime added to daemon.json becomes usable on
// SIGHUP without a restart, with a "daemon reload" event; an invalid file
// changes nothing.
func TestRuntimeReload(t *testing.T) {
	runc := runcPath(t)
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	cfgFile := filepath.Join(filepath.Dir(d.dataRoot), "daemon.json")
	base := testDaemonJSON(d.bridge, d.dnsUpstream)
	writeCfg := func(extra string) {
		t.Helper()
		cfg := strings.TrimSuffix(strings.TrimSpace(base), "}") + extra + "}"
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, errOut, code := d.cli(bins.docker, nil, "run", "--rm", "--runtime", "myrunc", "busybox", "true"); code != 125 || !strings.Contains(errOut, "unknown or invalid runtime name: myrunc") {
		t.Fatalf("before reload: %d %q", code, errOut)
	}
	since := time.Now().Add(-time.Second).Unix()
	writeCfg(`, "runtimes": {"myrunc": {"path": "` + runc + `", "runtimeArgs": ["--debug"]}}, "labels": ["reloaded=yes"], "debug": true`)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "myrunc in /info", 10*time.Second, func() bool {
		out, _, _ := d.cli(bins.docker, nil, "info", "--format", "{{json .Runtimes}}")
		return strings.Contains(out, `"myrunc"`)
	})
	out, _, _ := d.cli(bins.docker, nil, "info", "--format", "{{json .Labels}} {{.Debug}}")
	if strings.TrimSpace(out) != `["reloaded=yes"] true` {
		t.Fatalf("reloaded labels and debug: %q", out)
	}
	out, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--runtime", "myrunc", "busybox", "echo", "via-myrunc")
	if code != 0 || out != "via-myrunc\n" {
		t.Fatalf("run with the reloaded runtime: %d %q %q", code, out, errOut)
	}
	out, _, _ = d.cli(bins.docker, nil, "events", "--since", itoa(int(since)), "--until", itoa(int(time.Now().Unix()+1)), "--filter", "type=daemon", "--format", "{{.Type}} {{.Action}}")
	if !strings.Contains(out, "daemon reload") {
		t.Fatalf("no daemon reload event: %q", out)
	}
	// default-runtime reloads too.
	writeCfg(`, "runtimes": {"myrunc": {"path": "` + runc + `"}}, "default-runtime": "myrunc", "labels": ["reloaded=yes"]`)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "myrunc the default", 10*time.Second, func() bool {
		out, _, _ := d.cli(bins.docker, nil, "info", "--format", "{{.DefaultRuntime}}")
		return strings.TrimSpace(out) == "myrunc"
	})
	out, _, _ = d.cli(bins.docker, nil, "create", "busybox", "true")
	out, _, _ = d.cli(bins.docker, nil, "inspect", "--format", "{{.HostConfig.Runtime}}", strings.TrimSpace(out))
	if strings.TrimSpace(out) != "myrunc" {
		t.Fatalf("default runtime after reload: %q", out)
	}
	// An invalid file is refused: nothing changes.
	writeCfg(`, "default-runtime": "nosuch"`)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload logged", 10*time.Second, func() bool {
		return strings.Contains(d.logBuf.String(), "default runtime nosuch cannot be found")
	})
	out, _, _ = d.cli(bins.docker, nil, "info", "--format", "{{.DefaultRuntime}} {{json .Labels}}")
	if strings.TrimSpace(out) != `myrunc ["reloaded=yes"]` {
		t.Fatalf("after a refused reload: %q", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.execRoot, "runtimes", "myrunc")); len(ents) > 0 {
		t.Fatalf("runc state left: %v", ents)
	}
}

// TestRuntimeRuncLiveRestore: a runc container keeps running across a
// kill -9 of berthd; the restarted berthd finds it (exec, stop work).
func TestRuntimeRuncLiveRestore(t *testing.T) {
	runcPath(t)
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	out, errOut, code := d.cli(bins.docker, nil, "run", "-d", "--name", "lr", "--runtime", "runc", "busybox", "sh", "-c", "echo one; trap 'exit 7' TERM; while :; do sleep 0.1; done")
	if code != 0 {
		t.Fatalf("run -d: %s", errOut)
	}
	id := strings.TrimSpace(out)
	d.kill9()
	d.start()
	out, _, _ = d.cli(bins.docker, nil, "inspect", "--format", "{{.State.Status}} {{.HostConfig.Runtime}}", "lr")
	if strings.TrimSpace(out) != "running runc" {
		t.Fatalf("after restart: %q", out)
	}
	out, errOut, code = d.cli(bins.docker, nil, "exec", "lr", "echo", "still-here")
	if code != 0 || out != "still-here\n" {
		t.Fatalf("exec after restart: %d %q %q", code, out, errOut)
	}
	if _, errOut, code = d.cli(bins.docker, nil, "stop", "lr"); code != 0 {
		t.Fatalf("stop: %s", errOut)
	}
	out, _, _ = d.cli(bins.docker, nil, "inspect", "--format", "{{.State.ExitCode}}", "lr")
	if strings.TrimSpace(out) != "7" {
		t.Fatalf("exit code: %q", out)
	}
	if _, errOut, code = d.cli(bins.docker, nil, "rm", "lr"); code != 0 {
		t.Fatalf("rm: %s", errOut)
	}
	checkRuncLeftovers(t, d, "runc", id)
}

// TestRuntimeRuncBesideBerth runs runc and berth containers at the same
// time: the last berth container of /berth removes the emptied parent
// cgroup as it goes, which a runc create in between must survive.
func TestRuntimeRuncBesideBerth(t *testing.T) {
	runcPath(t)
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	var wg sync.WaitGroup
	for _, rt := range []string{"berth", "runc"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				out, errOut, code := d.cli(bins.docker, nil, "run", "--rm", "--network", "none", "--runtime", rt, "busybox", "echo", rt)
				if code != 0 || out != rt+"\n" {
					t.Errorf("%s run %d: %d %q %q", rt, i, code, out, errOut)
					return
				}
			}
		}()
	}
	wg.Wait()
	// A removal's clean-up ends in the background (as checkRuncLeftovers
	// allows): the last container's runc state goes shortly after
	// `run --rm` returns.
	root := filepath.Join(d.execRoot, "runtimes", "runc")
	waitFor(t, "no runc state left", 10*time.Second, func() bool {
		ents, _ := os.ReadDir(root)
		return len(ents) == 0
	})
}
