package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runOK runs a shell script in a bundle and returns its stdout, failing on
// a non-zero exit.
func runOK(t *testing.T, r *rt, script string, mutate func(*specs.Spec)) string {
	t.Helper()
	out, errs, code := r.run(shBundle(t, script, mutate))
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	return out
}

func statusField(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, key+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, key+":"))
		}
	}
	return ""
}

func TestNamespacesAndHostname(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	hostNS := map[string]string{}
	for _, ns := range []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"} {
		hostNS[ns], _ = os.Readlink("/proc/self/ns/" + ns)
	}
	out := runOK(t, r, `echo pid=$$; hostname; cat /proc/sys/kernel/domainname; for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; cat /proc/net/dev | tail -n +3 | cut -d: -f1; cat /proc/self/cgroup`,
		func(s *specs.Spec) { s.Hostname = "box1"; s.Domainname = "example.test" })
	lines := strings.Split(out, "\n")
	if lines[0] != "pid=1" || lines[1] != "box1" || lines[2] != "example.test" {
		t.Fatalf("pid/hostname/domainname: %q", lines[:3])
	}
	for _, l := range lines[3:9] {
		ns, val, _ := strings.Cut(l, "=")
		if val == "" || val == hostNS[ns] {
			t.Errorf("namespace %s not new: %q (host %q)", ns, val, hostNS[ns])
		}
	}
	if strings.TrimSpace(lines[9]) != "lo" {
		t.Errorf("network namespace has devices besides lo: %q", lines[9:])
	}
	// In its own cgroup namespace the container sees itself at the root.
	if !strings.Contains(out, ":memory:/\n") {
		t.Errorf("cgroup namespace not rooted at the container's cgroup:\n%s", out)
	}
}

func TestMountTableMaskedAndReadonlyPaths(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	extra := t.TempDir()
	os.WriteFile(filepath.Join(extra, "f"), []byte("bound"), 0o644)
	out := runOK(t, r, `cat /proc/self/mountinfo; echo ---; cat /proc/kcore | wc -c; ls /sys/firmware | wc -l; echo x > /proc/sys/kernel/domainname 2>&1 || echo sysro; touch /rootfile 2>&1 || echo rootro; touch /data/new 2>&1 || echo bindro; cat /data/f; echo; ls /work 2>&1 || echo nohost; touch /tmp/ok && echo tmprw`,
		func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data", Type: "bind", Source: extra, Options: []string{"rbind", "ro", "nosuid"}},
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=1m"}})
		})
	mi, rest, _ := strings.Cut(out, "---\n")
	want := map[string]string{"/": "ro", "/proc": "rw", "/sys": "ro", "/dev": "rw", "/dev/pts": "rw", "/data": "ro", "/tmp": "rw", "/sys/fs/cgroup": "ro"}
	for _, l := range strings.Split(strings.TrimSpace(mi), "\n") {
		f := strings.Fields(l)
		if opt, ok := want[f[4]]; ok && strings.HasPrefix(f[5], opt) {
			delete(want, f[4])
		}
	}
	if len(want) > 0 {
		t.Errorf("mounts missing or with wrong ro/rw: %v\n%s", want, mi)
	}
	for _, w := range []string{"0\n0\n", "sysro", "rootro", "bindro", "bound", "nohost", "tmprw"} {
		if !strings.Contains(rest, w) {
			t.Errorf("missing %q in:\n%s", w, rest)
		}
	}
}

func TestDefaultDevices(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	out := runOK(t, r, `ls -l /dev | sed 's/  */ /g' | cut -d' ' -f1,5,6,10-; echo x > /dev/null && head -c 4 /dev/zero | wc -c; readlink /dev/ptmx; readlink /dev/fd`, nil)
	for _, w := range []string{"crw-rw-rw- 1, 3 null", "crw-rw-rw- 1, 5 zero", "crw-rw-rw- 1, 7 full", "crw-rw-rw- 1, 8 random", "crw-rw-rw- 1, 9 urandom", "crw-rw-rw- 5, 0 tty", "\n4\n", "pts/ptmx", "/proc/self/fd"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func TestDeviceNodesAndCgroupAllowlist(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	mode := os.FileMode(0o600)
	out := runOK(t, r, `ls -l /dev/allowed /dev/denied | cut -c1-10; echo hi > /dev/allowed && echo allowed-ok; cat /dev/denied 2>&1 | head -1; echo`,
		func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices,
				specs.LinuxDevice{Path: "/dev/allowed", Type: "c", Major: 1, Minor: 3, FileMode: &mode},
				specs.LinuxDevice{Path: "/dev/denied", Type: "c", Major: 1, Minor: 4})
			maj, min := int64(1), int64(3)
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
				specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &maj, Minor: &min, Access: "rwm"})
		})
	if !strings.Contains(out, "crw-------") || !strings.Contains(out, "allowed-ok") {
		t.Errorf("allowed device: %s", out)
	}
	if !strings.Contains(out, "not permitted") {
		t.Errorf("device outside the cgroup allowlist was readable:\n%s", out)
	}
}

func TestCapabilitiesUserAndNoNewPrivs(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	// Defaults: AUDIT_WRITE, KILL, NET_BIND_SERVICE = bits 29, 5, 10.
	out := runOK(t, r, `/probe status`, nil)
	for k, v := range map[string]string{"CapEff": "0000000020000420", "CapBnd": "0000000020000420", "CapPrm": "0000000020000420", "CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Uid": "0\t0\t0\t0"} {
		if got := statusField(out, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	umask := uint32(0o027)
	out = runOK(t, r, `/probe status; /probe umask; id`, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 5}, Umask: &umask}
		s.Process.NoNewPrivileges = false
		c := []string{"CAP_NET_RAW", "CAP_CHOWN"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c}
	})
	// CAP_CHOWN = bit 0, CAP_NET_RAW = bit 13.
	for k, v := range map[string]string{"CapEff": "0000000000002001", "CapAmb": "0000000000002001", "CapBnd": "0000000000002001", "NoNewPrivs": "0", "Uid": "1000\t1000\t1000\t1000", "Gid": "1000\t1000\t1000\t1000", "Groups": "5 100"} {
		if got := statusField(out, k); got != v {
			t.Errorf("user 1000: %s = %q, want %q\n%s", k, got, v, out)
		}
	}
	if !strings.Contains(out, "0027") {
		t.Errorf("umask not applied:\n%s", out)
	}
}

func TestRlimitsAndOOMScore(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	adj := 123
	out := runOK(t, r, `/probe rlimits; cat /proc/self/oom_score_adj`, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}, {Type: "RLIMIT_NPROC", Soft: 77, Hard: 88}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
		s.Process.OOMScoreAdj = &adj
	})
	for _, w := range []string{"RLIMIT_NOFILE 512 1024", "RLIMIT_NPROC 77 88", "RLIMIT_CORE 0 0", "\n123\n"} {
		if !strings.Contains("\n"+out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func TestSysctls(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	out := runOK(t, r, `cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax`, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "9999"}
	})
	if out != "1\n9999\n" {
		t.Fatalf("sysctls: %q", out)
	}
	host, _ := os.ReadFile("/proc/sys/kernel/msgmax")
	if strings.TrimSpace(string(host)) == "9999" {
		t.Fatal("sysctl leaked to the host")
	}
}

func TestSeccompErrnoAndFlags(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	ret := uint(38) // ENOSYS, distinctive
	out := runOK(t, r, `/probe status; /probe syscall getcwd; /probe syscall getpid`, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: &ret}},
		}
	})
	if statusField(out, "Seccomp") != "2" {
		t.Errorf("Seccomp mode %q, want 2 (filter)", statusField(out, "Seccomp"))
	}
	if !strings.Contains(out, "ENOSYS") || !strings.Contains(out, "\nok") {
		t.Errorf("seccomp errno: %s", out)
	}
	// Without no_new_privs the filter is loaded while privileged.
	out = runOK(t, r, `/probe status`, func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno}}}
	})
	if statusField(out, "Seccomp") != "2" || statusField(out, "NoNewPrivs") != "0" {
		t.Errorf("seccomp without nnp: %s", out)
	}
}

func TestUserNamespaceMappings(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	out := runOK(t, r, `cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox; /probe status`, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	})
	f := strings.Fields(out)
	if len(f) < 8 || f[0] != "0" || f[1] != "200000" || f[2] != "65536" || f[3] != "0" || f[4] != "200000" || f[6] != "0" || f[7] != "65534" {
		t.Fatalf("user namespace view: %q", out)
	}
	if statusField(out, "CapEff") != "0000000020000420" {
		t.Errorf("caps in user namespace: %s", statusField(out, "CapEff"))
	}
}

func TestCgroupMemoryLimitOOMKills(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	limit := int64(32 << 20)
	b := shBundle(t, `cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; /probe alloc 200; echo status=$?`, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	})
	out, errs, code := r.run(b)
	if code != 0 || !strings.HasPrefix(out, "33554432\n") {
		t.Fatalf("memory limit not visible in the container: %q %q %d", out, errs, code)
	}
	// The kernel's OOM killer ends the allocating process with SIGKILL.
	if strings.Contains(out, "\nok\n") || !strings.Contains(out, "status=137") {
		t.Fatalf("allocation of 200 MiB under a 32 MiB limit was not OOM-killed: %q", out)
	}
}

func TestCgroupPidsLimitStopsForks(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	limit := int64(20)
	out := runOK(t, r, `cat /sys/fs/cgroup/pids/pids.max; /probe fork 100`, func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	})
	lines := strings.Fields(out)
	if len(lines) < 2 || lines[0] != "20" {
		t.Fatalf("pids.max: %q", out)
	}
	var n int
	fmt.Sscan(lines[len(lines)-1], &n)
	if n <= 0 || n >= 20 {
		t.Fatalf("fork loop created %d children under pids.max=20: %q", n, out)
	}
}

func TestCgroupCPUAndUpdate(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	quota, period, shares := int64(50000), uint64(100000), uint64(512)
	b := shBundle(t, `sleep 100`, func(s *specs.Spec) {
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares, Cpus: "0"}
	})
	id := r.id("upd")
	r.must("run", "-d", "-b", b, id)
	cg := bundleSpec(t, b).Linux.CgroupsPath
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if q := read("/sys/fs/cgroup/cpu" + cg + "/cpu.cfs_quota_us"); q != "50000" {
		t.Errorf("cpu quota %s", q)
	}
	if s := read("/sys/fs/cgroup/cpu" + cg + "/cpu.shares"); s != "512" {
		t.Errorf("cpu shares %s", s)
	}
	if c := read("/sys/fs/cgroup/cpuset" + cg + "/cpuset.cpus"); c != "0" {
		t.Errorf("cpuset %s", c)
	}
	r.must("update", "--memory", "67108864", "--pids-limit", "42", "--cpu-quota", "20000", id)
	if m := read("/sys/fs/cgroup/memory" + cg + "/memory.limit_in_bytes"); m != "67108864" {
		t.Errorf("updated memory %s", m)
	}
	if p := read("/sys/fs/cgroup/pids" + cg + "/pids.max"); p != "42" {
		t.Errorf("updated pids %s", p)
	}
	if q := read("/sys/fs/cgroup/cpu" + cg + "/cpu.cfs_quota_us"); q != "20000" {
		t.Errorf("updated quota %s", q)
	}
	res := `{"pids":{"limit":7}}`
	if _, errs, code := r.exec([]byte(res), "update", "-r", "-", id); code != 0 {
		t.Fatalf("update -r -: %s", errs)
	}
	if p := read("/sys/fs/cgroup/pids" + cg + "/pids.max"); p != "7" {
		t.Errorf("updated pids from json %s", p)
	}
	if _, errs, code := r.exec(nil, "update", "--memory", "-5", id); code == 0 {
		t.Errorf("impossible memory limit accepted: %s", errs)
	}
	r.must("delete", "-f", id)
	if left := cgroupLeft(t, cg); len(left) > 0 {
		t.Fatalf("cgroups left: %v", left)
	}
}
