package runtime_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/fixture"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestHooksOrderAndState(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	logDir := t.TempDir()
	log := filepath.Join(logDir, "log")
	hostHook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo " + name + " $(/bin/cat) >> " + log}}
	}
	b := shBundle(t, "echo process >> /hooklog/log", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: logDir, Options: []string{"bind"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hostHook("prestart")}, //nolint:staticcheck
			CreateRuntime:   []specs.Hook{hostHook("createRuntime")},
			CreateContainer: []specs.Hook{hostHook("createContainer")},
			// startContainer resolves inside the container.
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer $(cat) >> /hooklog/log"}}},
			Poststart:      []specs.Hook{hostHook("poststart")},
			Poststop:       []specs.Hook{hostHook("poststop")},
		}
	})
	id := r.id("hooks")
	r.must("create", "-b", b, id)
	r.must("start", id)
	r.waitStatus(id, specs.StateStopped)
	r.must("delete", id)
	data, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var order []string
	for _, l := range lines {
		name, js, _ := strings.Cut(l, " ")
		order = append(order, name)
		if name == "process" {
			continue
		}
		var st specs.State
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Fatalf("hook %s got bad state %q: %v", name, js, err)
		}
		want := map[string]specs.ContainerState{"prestart": "creating", "createRuntime": "creating", "createContainer": "created",
			"startContainer": "created", "poststart": "running", "poststop": "stopped"}[name]
		if st.Status != want || st.ID != id || st.Bundle != b {
			t.Errorf("hook %s: state %+v, want status %s", name, st, want)
		}
		if name != "poststop" && st.Pid <= 0 {
			t.Errorf("hook %s: no pid in state", name)
		}
	}
	got := strings.Join(order, ",")
	// poststart runs after the program started; the program may log first.
	if got != "prestart,createRuntime,createContainer,startContainer,process,poststart,poststop" &&
		got != "prestart,createRuntime,createContainer,startContainer,poststart,process,poststop" {
		t.Fatalf("hook order: %s", got)
	}
}

func TestHookTimeoutFailsCreateAndCleansUp(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	timeout := 1
	b := shBundle(t, "true", func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &timeout}}}
	})
	id := r.id("hto")
	_, errs, code := r.exec(nil, "create", "-b", b, id)
	if code == 0 || !strings.Contains(errs, "timed out") {
		t.Fatalf("create with a hanging hook: %d %s", code, errs)
	}
	if left := cgroupLeft(t, bundleSpec(t, b).Linux.CgroupsPath); len(left) > 0 {
		t.Fatalf("cgroups left: %v", left)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	b := shBundle(t, "sleep 100", func(s *specs.Spec) { s.Hostname = "exech" })
	id := r.id("exec")
	r.must("run", "-d", "-b", b, id)
	if out := r.must("exec", id, "hostname"); out != "exech\n" {
		t.Fatalf("exec hostname: %q", out)
	}
	out := r.must("exec", id, "sh", "-c", "echo $$; cat /proc/self/cgroup | grep memory; ls /proc | grep -c '^[0-9]'")
	f := strings.Fields(out)
	if len(f) != 3 || f[0] == "1" || f[1] != "4:memory:/" {
		t.Fatalf("exec is not in the container's pid/cgroup namespaces: %q", out)
	}
	if _, _, code := r.exec(nil, "exec", id, "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("exec exit status %d, want 7", code)
	}
	out = r.must("exec", "-e", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1000", "--additional-gids", "100", id, "sh", "-c", "echo $FOO; pwd; id")
	if out != "bar\n/tmp\nuid=1000(berth) gid=1000(berth) groups=100(users)\n" {
		t.Fatalf("exec env/cwd/user: %q", out)
	}
	proc := specs.Process{Args: []string{"/probe", "status"}, Cwd: "/", Env: []string{"PATH=/bin"}, User: specs.User{UID: 0, GID: 0},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}}, NoNewPrivileges: true}
	pj, _ := json.Marshal(proc)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, pj, 0o644)
	out = r.must("exec", "--process", pf, id)
	if statusField(out, "CapEff") != "0000000000000020" || statusField(out, "NoNewPrivs") != "1" {
		t.Fatalf("exec --process: %s", out)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("exec", "-d", "--pid-file", pidFile, id, "sleep", "50")
	pb, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(string(pb))
	if pid <= 0 || unix.Kill(pid, 0) != nil {
		t.Fatalf("detached exec pid %q not alive", pb)
	}
	if _, errs, code := r.exec(nil, "exec", id, "/nonexistent"); code == 0 || !strings.Contains(errs, "not found") && !strings.Contains(errs, "no such file") {
		t.Fatalf("exec of a missing binary: %d %s", code, errs)
	}
	r.must("delete", "-f", id)
	if unix.Kill(pid, 0) == nil {
		t.Fatal("exec'd process survived delete -f")
	}
	if _, errs, code := r.exec(nil, "exec", id, "true"); code == 0 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("exec into a deleted container: %d %s", code, errs)
	}
}

// recvFD receives one file descriptor over a unix connection.
func recvFD(t *testing.T, c *net.UnixConn) *os.File {
	t.Helper()
	buf, oob := make([]byte, 256), make([]byte, 64)
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master")
}

func TestTerminalConsoleSocket(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := shBundle(t, "tty; stty size; ls -l /dev/console | cut -c1; echo done", func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	})
	id := r.id("tty")
	got := make(chan *os.File, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		got <- recvFD(t, c)
	}()
	r.must("create", "-b", b, "--console-socket", sock, id)
	master := <-got
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	r.must("start", id)
	var out []byte
	buf := make([]byte, 1024)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(out), "done") && time.Now().Before(deadline) {
		master.SetReadDeadline(deadline)
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	s := strings.ReplaceAll(string(out), "\r", "")
	if !strings.Contains(s, "/dev/pts/0\n30 100\nc\ndone") {
		t.Fatalf("terminal output %q", s)
	}
	// Without a console socket a detached terminal is refused, as runc.
	if _, errs, code := r.exec(nil, "run", "-d", "-b", b, r.id("tty2")); code == 0 || !strings.Contains(errs, "console socket") {
		t.Fatalf("detached tty without console socket: %d %s", code, errs)
	}
	// In the foreground the runtime relays the terminal itself.
	out2, errs, code := r.run(b)
	if code != 0 || !strings.Contains(out2, "/dev/pts/0") {
		t.Fatalf("foreground tty: %d %q %s", code, out2, errs)
	}
}

func TestBadBundlesFailCleanly(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	neg := int64(-5)
	zero := uint64(0)
	quota := int64(1000)
	cases := []struct {
		name   string
		edit   func(t *testing.T, bundle string)
		mutate func(*specs.Spec)
		want   string
	}{
		{"no config", func(t *testing.T, b string) { os.Remove(filepath.Join(b, "config.json")) }, nil, "config.json"},
		{"bad json", func(t *testing.T, b string) {
			os.WriteFile(filepath.Join(b, "config.json"), []byte(`{"ociVersion": "1.2.0", "process": {`), 0o644)
		}, nil, "config.json"},
		{"no rootfs", func(t *testing.T, b string) { os.RemoveAll(filepath.Join(b, "rootfs")) }, nil, "root"},
		{"unknown namespace", nil, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, "bogus"},
		{"empty args", nil, func(s *specs.Spec) { s.Process.Args = nil }, "args"},
		{"negative memory", nil, func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &neg} }, "-5"},
		{"quota without period", nil, func(s *specs.Spec) { s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &zero} }, "period"},
		{"bad capability", nil, func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_NOPE"} }, "CAP_NOPE"},
		{"missing program", nil, func(s *specs.Spec) { s.Process.Args = []string{"/nope"} }, "/nope"},
		{"bad seccomp action", nil, func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
		}, "SCMP_ACT_BOGUS"},
		{"net sysctl without netns", nil, func(s *specs.Spec) {
			var nss []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.NetworkNamespace {
					nss = append(nss, n)
				}
			}
			s.Linux.Namespaces = nss
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, "net.ipv4.ip_forward"},
		{"bad namespace path", nil, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces[:0:0], specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/uts"}, specs.LinuxNamespace{Type: specs.MountNamespace})
			s.Hostname = ""
		}, "network"},
	}
	for _, tc := range cases {
		b := shBundle(t, "true", tc.mutate)
		cg := ""
		if s := bundleSpecMaybe(b); s != nil && s.Linux != nil {
			cg = s.Linux.CgroupsPath
		}
		if tc.edit != nil {
			tc.edit(t, b)
		}
		id := r.id("bad")
		_, errs, code := r.exec(nil, "create", "-b", b, id)
		if code == 0 {
			t.Errorf("%s: create succeeded", tc.name)
			continue
		}
		if !strings.Contains(errs, tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, errs, tc.want)
		}
		if _, _, code := r.exec(nil, "state", id); code == 0 {
			t.Errorf("%s: state exists after failed create", tc.name)
		}
		if cg != "" {
			if left := cgroupLeft(t, cg); len(left) > 0 {
				t.Errorf("%s: cgroups left: %v", tc.name, left)
			}
		}
	}
}

func bundleSpecMaybe(b string) *specs.Spec {
	data, err := os.ReadFile(filepath.Join(b, "config.json"))
	if err != nil {
		return nil
	}
	var s specs.Spec
	if json.Unmarshal(data, &s) != nil {
		return nil
	}
	return &s
}

// A symlink in the image can never redirect a mount onto the host.
func TestMountThroughSymlinkStaysInRootfs(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "keep"), []byte("host"), 0o644)
	b := shBundle(t, "echo x > /evil/written; echo y > /evil2/written; ls /evil /evil2", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/evil", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/evil2/sub", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/evil2", Type: "tmpfs", Source: "tmpfs"})
	})
	rootfs := filepath.Join(b, "rootfs")
	if err := os.Symlink(hostDir, filepath.Join(rootfs, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../"+hostDir, filepath.Join(rootfs, "evil2")); err != nil {
		t.Fatal(err)
	}
	out, errs, code := r.run(b)
	if code != 0 {
		t.Fatalf("run: %d %s %s", code, out, errs)
	}
	entries, _ := os.ReadDir(hostDir)
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Fatalf("host directory touched through a symlink: %v", entries)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), hostDir) {
		t.Fatal("a container mount appeared on the host")
	}
}

func TestNoFDLeaksAndPreserveFDs(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	out := runOK(t, r, "/probe fds", nil)
	fields := strings.Fields(strings.TrimSpace(out))
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		fd, _, _ := strings.Cut(l, " ")
		if n, err := strconv.Atoi(fd); err == nil && n > 2 {
			t.Fatalf("container inherited fd %d from the runtime:\n%s", n, out)
		}
	}
	if len(fields) == 0 {
		t.Fatal("probe listed no fds")
	}
	b := shBundle(t, "/probe fds", nil)
	extra, _ := os.Open("/dev/null")
	defer extra.Close()
	cmd := exec.Command(r.bin, "--root", r.root, "run", "--preserve-fds", "1", "-b", b, r.id("pfd"))
	cmd.ExtraFiles = []*os.File{extra}
	o, err := cmd.Output()
	if err != nil {
		t.Fatalf("run --preserve-fds: %v", err)
	}
	if !strings.Contains(string(o), "3 /dev/null") || strings.Contains(string(o), "\n4 ") {
		t.Fatalf("preserved fds: %s", o)
	}
}

func TestNoPivotAndTimeNamespace(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	b := shBundle(t, "cat /proc/uptime | cut -d. -f1; ls /", func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000000}}
	})
	out, errs, code := r.exec(nil, "run", "--no-pivot", "-b", b, r.id("np"))
	if code != 0 {
		t.Fatalf("run --no-pivot: %s", errs)
	}
	up, _ := strconv.Atoi(strings.Fields(out)[0])
	if up < 1000000 {
		t.Fatalf("time namespace offset not applied: uptime %d", up)
	}
	if !strings.Contains(out, "probe") || strings.Contains(out, "work") {
		t.Fatalf("no-pivot root: %s", out)
	}
}

func TestJoinNamespacesByPathAndKillAll(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	a := shBundle(t, "sleep 100", func(s *specs.Spec) { s.Hostname = "joined" })
	ida := r.id("a")
	r.must("run", "-d", "-b", a, ida)
	pid := r.state(ida).Pid
	bb := shBundle(t, "sleep 100 & sleep 100 & wait", func(s *specs.Spec) {
		var nss []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			switch n.Type {
			case specs.UTSNamespace, specs.NetworkNamespace, specs.PIDNamespace, specs.IPCNamespace:
				n.Path = "/proc/" + strconv.Itoa(pid) + "/ns/" + map[specs.LinuxNamespaceType]string{specs.UTSNamespace: "uts", specs.NetworkNamespace: "net", specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc"}[n.Type]
			}
			nss = append(nss, n)
		}
		s.Linux.Namespaces = nss
		s.Hostname = ""
	})
	idb := r.id("b")
	r.must("run", "-d", "-b", bb, idb)
	out := r.must("exec", idb, "sh", "-c", "hostname; readlink /proc/self/ns/net; ps -o comm | grep -c '^sleep$'")
	hostNet, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != "joined" || f[1] != hostNet || f[2] != "3" {
		t.Fatalf("joined namespaces: %q (want joined, %s, 3 sleeps)", out, hostNet)
	}
	r.must("kill", "--all", idb, "KILL")
	r.waitStatus(idb, specs.StateStopped)
	if st := r.state(ida); st.Status != specs.StateRunning {
		t.Fatalf("killing b affected a: %s", st.Status)
	}
	r.must("delete", idb)
	r.must("delete", "-f", ida)
	_ = fixture.ProbePath
}
