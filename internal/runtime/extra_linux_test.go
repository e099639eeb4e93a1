package runtime_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime/initproc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCgroupBlkioHugetlbMemoryDetails(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	major, minor := int64(unix.Major(st.Dev)), int64(unix.Minor(st.Dev))
	res, limit, swap := int64(16<<20), int64(64<<20), int64(96<<20)
	swappiness := uint64(10)
	b := shBundle(t, "sleep 100", func(s *specs.Spec) {
		s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1048576}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 100}},
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Reservation: &res, Swap: &swap, Swappiness: &swappiness}
		s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	})
	id := r.id("blk")
	r.must("run", "-d", "-b", b, id)
	cg := bundleSpec(t, b).Linux.CgroupsPath
	dev := strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10)
	if got := readTrim(t, "/sys/fs/cgroup/blkio"+cg+"/blkio.throttle.read_bps_device"); got != dev+" 1048576" {
		t.Errorf("read bps: %q", got)
	}
	if got := readTrim(t, "/sys/fs/cgroup/blkio"+cg+"/blkio.throttle.write_iops_device"); got != dev+" 100" {
		t.Errorf("write iops: %q", got)
	}
	mem := "/sys/fs/cgroup/memory" + cg
	for file, want := range map[string]string{"memory.limit_in_bytes": "67108864", "memory.soft_limit_in_bytes": "16777216", "memory.memsw.limit_in_bytes": "100663296", "memory.swappiness": "10"} {
		if got := readTrim(t, filepath.Join(mem, file)); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
	}
	// On this hybrid host hugetlb lives on the cgroup2 hierarchy.
	if _, err := os.Stat("/sys/fs/cgroup/unified" + cg + "/hugetlb.2MB.max"); err == nil {
		if got := readTrim(t, "/sys/fs/cgroup/unified"+cg+"/hugetlb.2MB.max"); got != "4194304" {
			t.Errorf("hugetlb.2MB.max = %s", got)
		}
	} else if _, err := os.Stat("/sys/fs/cgroup/hugetlb" + cg + "/hugetlb.2MB.limit_in_bytes"); err == nil {
		if got := readTrim(t, "/sys/fs/cgroup/hugetlb"+cg+"/hugetlb.2MB.limit_in_bytes"); got != "4194304" {
			t.Errorf("hugetlb.2MB.limit_in_bytes = %s", got)
		}
	} else {
		t.Errorf("no hugetlb limit file for the container's cgroup")
	}
	r.must("delete", "-f", id)
	if left := cgroupLeft(t, cg); len(left) > 0 {
		t.Fatalf("cgroups left: %v", left)
	}
}

func TestRelativeCgroupsPathAndDefault(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	own := ""
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "memory" {
			own = f[2]
		}
	}
	rel := "berth-rel-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	bundle := shBundle(t, "sleep 100", func(s *specs.Spec) { s.Linux.CgroupsPath = rel })
	id := r.id("rel")
	r.must("run", "-d", "-b", bundle, id)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", own, rel)); err != nil {
		t.Fatalf("relative cgroupsPath not under the runtime's own cgroup %s: %v", own, err)
	}
	r.must("delete", "-f", id)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", own, rel)); err == nil {
		t.Fatal("relative cgroup left behind")
	}
	// No cgroupsPath: /berth/<id>.
	bundle = shBundle(t, "sleep 100", func(s *specs.Spec) { s.Linux.CgroupsPath = "" })
	id = r.id("def")
	r.must("run", "-d", "-b", bundle, id)
	if _, err := os.Stat("/sys/fs/cgroup/pids/berth/" + id); err != nil {
		t.Fatalf("default cgroup path: %v", err)
	}
	r.must("delete", "-f", id)
	if _, err := os.Stat("/sys/fs/cgroup/pids/berth/" + id); err == nil {
		t.Fatal("default cgroup left behind")
	}
}

// The seccomp notify fd reaches the agent at listenerPath with the state,
// and the container's notified syscall is answered by the agent.
func TestSeccompListener(t *testing.T) {
	t.Parallel()
	// With the early start answer too (the init's MsgExec comes after
	// the descriptor).
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprint("early-", early), func(t *testing.T) { seccompListener(t, early) })
	}
}

func seccompListener(t *testing.T, early bool) {
	r := newRT(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type got struct {
		state specs.ContainerProcessState
		fd    *os.File
	}
	ch := make(chan got, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			ch <- got{}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 1<<16), make([]byte, 64)
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- got{}
			return
		}
		var g got
		_ = json.Unmarshal(buf[:n], &g.state)
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
				g.fd = os.NewFile(uintptr(fds[0]), "seccomp")
			}
		}
		ch <- g
	}()
	b := shBundle(t, "/probe syscall getcwd", func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "meta-1",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActNotify}},
		}
	})
	id := r.id("notify")
	out := tempFile(t)
	cmd := r.cmdWithStdout(out, "run", "-b", b, id)
	if early {
		cmd.Env = append(os.Environ(), initproc.EnvEarlyStart+"=1")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var g got
	select {
	case g = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("agent received nothing")
	}
	if g.fd == nil || g.state.Metadata != "meta-1" || g.state.State.ID != id || len(g.state.Fds) != 1 || g.state.Fds[0] != "seccompFd" || g.state.Pid <= 0 {
		t.Fatalf("agent got %+v fd %v", g.state, g.fd)
	}
	// Closing the listener makes the notified syscall fail with ENOSYS.
	g.fd.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if o := readBack(out); !strings.Contains(o, "ENOSYS") {
		t.Fatalf("notified syscall result: %q", o)
	}
}

func TestLSMRequestedButUnavailable(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.HasPrefix(string(b), "Y") {
		t.Log("AppArmor is enabled here: checking the label is refused only when missing is not possible")
		return
	}
	b := shBundle(t, "true", func(s *specs.Spec) { s.Process.ApparmorProfile = "berth-default" })
	_, errs, code := r.exec(nil, "run", "-b", b, r.id("aa"))
	if code == 0 || !strings.Contains(errs, "AppArmor is not enabled") {
		t.Fatalf("apparmor profile on a host without AppArmor: %d %s", code, errs)
	}
	b = shBundle(t, "true", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" })
	_, errs, code = r.exec(nil, "run", "-b", b, r.id("se"))
	if code == 0 || !strings.Contains(errs, "SELinux is not enabled") {
		t.Fatalf("selinux label on a host without SELinux: %d %s", code, errs)
	}
}

func TestRootfsPropagationAndBindPropagation(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	src := t.TempDir()
	out := runOK(t, r, `cat /proc/self/mountinfo`, func(s *specs.Spec) {
		s.Linux.RootfsPropagation = "private"
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: src, Options: []string{"rbind", "rshared"}})
	})
	var root, shared string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 5 && f[4] == "/" {
			root = l
		}
		if len(f) > 5 && f[4] == "/shared" {
			shared = l
		}
	}
	if root == "" || strings.Contains(root, "shared:") || strings.Contains(root, "master:") {
		t.Errorf("rootfsPropagation private: %q", root)
	}
	if !strings.Contains(shared, "shared:") {
		t.Errorf("rshared bind mount: %q", shared)
	}
}

// A second container joins the first one's user and network namespaces
// by path (the user and mount joins happen in the nsenter constructor).
func TestJoinUserNamespace(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	a := shBundle(t, "sleep 100", func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 400000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 400000, Size: 65536}}
	})
	ida := r.id("ua")
	r.must("run", "-d", "-b", a, ida)
	pid := strconv.Itoa(r.state(ida).Pid)
	bb := shBundle(t, "cat /proc/self/uid_map; readlink /proc/self/ns/net", func(s *specs.Spec) {
		var nss []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			switch n.Type {
			case specs.PIDNamespace:
				n.Path = "/proc/" + pid + "/ns/pid"
			case specs.NetworkNamespace:
				n.Path = "/proc/" + pid + "/ns/net"
			case specs.CgroupNamespace:
				continue
			}
			nss = append(nss, n)
		}
		s.Linux.Namespaces = append(nss, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/" + pid + "/ns/user"})
		// Mounting sysfs and cgroupfs needs their own namespaces' owners.
		var ms []specs.Mount
		for _, m := range s.Mounts {
			if m.Type != "sysfs" && m.Type != "cgroup" && m.Type != "mqueue" {
				ms = append(ms, m)
			}
		}
		s.Mounts = ms
	})
	out, errs, code := r.run(bb)
	netA, _ := os.Readlink("/proc/" + pid + "/ns/net")
	f := strings.Fields(out)
	if code != 0 || len(f) != 4 || f[1] != "400000" || f[3] != netA {
		t.Fatalf("joined user namespace: exit %d %q %s", code, out, errs)
	}
	r.must("delete", "-f", ida)
}
