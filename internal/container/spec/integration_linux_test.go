package spec_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/fixture"
	"github.com/berth-dev/berth/internal/ocispec"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	initOnce sync.Once
	initDir  string
	initErr  error
)

// initBinary builds cmd/berth-runtime-init once per test process, the
// container init the runtime starts.
func initBinary(t *testing.T) string {
	t.Helper()
	initOnce.Do(func() {
		initDir, initErr = os.MkdirTemp("", "berth-spec-init-")
		if initErr != nil {
			return
		}
		args := append([]string{"build"}, fixture.RuntimeBuildArgs...)
		args = append(args, "-o", initDir+"/", "github.com/berth-dev/berth/cmd/berth-runtime-init")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			initErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if initErr != nil {
		t.Fatal(initErr)
	}
	return filepath.Join(initDir, runtime.InitBinaryName)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if initDir != "" {
		os.RemoveAll(initDir)
	}
	os.Exit(code)
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// runGenerated generates the spec for cfg/hc over a private busybox rootfs,
// runs it to completion with berth's runtime and returns its output. The
// runtime deletes the container (state, cgroups, mounts) when it exits;
// the test checks that nothing is left.
func runGenerated(t *testing.T, cfg *container.Config, hc *container.HostConfig) (string, int) {
	t.Helper()
	return runGeneratedWith(t, cfg, hc, nil, false)
}

// runGeneratedWith is runGenerated with a resolver for container:<ref>
// modes and, when detach is set, a container left running (the test's
// cleanup deletes it); its output is then empty.
func runGeneratedWith(t *testing.T, cfg *container.Config, hc *container.HostConfig,
	containerNS func(string, specs.LinuxNamespaceType) (string, error), detach bool) (string, int) {
	t.Helper()
	fixture.RequireRoot(t)
	bundle := fixture.Bundle(t, nil)
	rootfs := filepath.Join(bundle, "rootfs")
	etc := t.TempDir()
	files := map[string]string{"hostname": "specbox\n", "hosts": "127.0.0.1 localhost\n", "resolv.conf": "nameserver 192.0.2.53\n"}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(etc, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	id := fmt.Sprintf("spec-%s-%d", strings.Trim(unsafeID.ReplaceAllString(t.Name(), "-"), "-"), time.Now().UnixNano()%1e9)
	cgroupsPath := "/berth-spec-test/" + id
	s, err := spec.Generate(context.Background(), spec.Input{
		ID: id, Config: cfg, HostConfig: hc, Rootfs: rootfs,
		HostnamePath: filepath.Join(etc, "hostname"), HostsPath: filepath.Join(etc, "hosts"),
		ResolvConfPath: filepath.Join(etc, "resolv.conf"),
		CgroupsPath:    cgroupsPath,
		ContainerNS:    containerNS,
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, ocispec.ConfigName), data, 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := runtime.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.InitPath = initBinary(t)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	t.Cleanup(func() {
		_ = r.Delete(context.Background(), id, true)
		if entries, _ := os.ReadDir(r.Root()); len(entries) > 0 {
			t.Errorf("runtime state left behind: %v", entries)
		}
		// Every hierarchy: v2, each v1 controller, named ones.
		hiers, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, hier := range append(hiers, "/sys/fs/cgroup") {
			p := filepath.Join(hier, cgroupsPath)
			if _, err := os.Stat(p); err == nil {
				t.Errorf("cgroup left behind: %s", p)
				_ = os.Remove(p)
			}
			// The shared parent goes once empty (rmdir fails otherwise).
			_ = os.Remove(filepath.Join(hier, "berth-spec-test"))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	status, err := r.Run(ctx, id, runtime.RunOpts{Detach: detach, CreateOpts: runtime.CreateOpts{
		Bundle: bundle, IO: runtime.IO{Stdin: devnull, Stdout: out, Stderr: out},
	}})
	if detach && err == nil {
		st, serr := r.State(ctx, id)
		if serr != nil {
			t.Fatal(serr)
		}
		return fmt.Sprint(st.Pid), 0
	}
	b, _ := os.ReadFile(out.Name())
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s\nconfig:\n%s", err, b, data)
	}
	return string(b), status
}

// TestRunDefault runs a container with Docker's defaults and checks, from
// the inside, what `docker run busybox` shows.
func TestRunDefault(t *testing.T) {
	script := `grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
df -k /dev/shm | tail -1 | awk '{print "shm=" $2}'
echo interrupts=$(cat /proc/interrupts | wc -c) keys=$(cat /proc/keys | wc -c) firmware=$(ls /sys/firmware | wc -l)
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && echo procsys=rw || echo procsys=ro
echo host=$(hostname) etc=$(cat /etc/hostname) ns=$(cat /etc/resolv.conf) domain=$(cat /proc/sys/kernel/domainname)
id
echo cwd=$(pwd)
env | sort
unshare -n true 2>/dev/null && echo unshare=ok || echo unshare=denied
mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo mount=ok || echo mount=denied
exit 3`
	out, status := runGenerated(t,
		&container.Config{Cmd: []string{"sh", "-c", script}, Env: []string{"FOO=bar"}, WorkingDir: "/work/dir", Domainname: "example.test"},
		&container.HostConfig{})
	t.Logf("output:\n%s", out)
	if status != 3 {
		t.Errorf("exit status = %d, want 3", status)
	}
	for _, want := range []string{
		"CapInh:\t0000000000000000",
		"CapPrm:\t00000000a80425fb",
		"CapEff:\t00000000a80425fb",
		"CapBnd:\t00000000a80425fb",
		"CapAmb:\t0000000000000000",
		"NoNewPrivs:\t0",
		"Seccomp:\t2",
		"shm=65536",
		"interrupts=0 keys=0 firmware=0",
		"procsys=ro",
		"host=spec-TestRun etc=specbox ns=nameserver 192.0.2.53 domain=example.test",
		"uid=0(root) gid=0(root) groups=0(root)",
		"cwd=/work/dir",
		"FOO=bar",
		"HOSTNAME=spec-TestRun",
		"PATH=" + spec.DefaultPath,
		"unshare=denied",
		"mount=denied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunUserAndLimits checks user resolution against the image's
// passwd, a non-default /dev/shm size, a read-only rootfs with a tmpfs,
// cap-drop, no-new-privileges and a pids limit.
func TestRunUserAndLimits(t *testing.T) {
	script := `id; grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status
df -k /dev/shm | tail -1 | awk '{print "shm=" $2}'
touch /rootfile 2>/dev/null && echo root=rw || echo root=ro
touch /scratch/f && echo scratch=rw
cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max`
	pids := int64(50)
	out, status := runGenerated(t,
		&container.Config{Cmd: []string{"sh", "-c", script}, User: "berth"},
		&container.HostConfig{
			ShmSize: 8 << 20, ReadonlyRootfs: true, Tmpfs: map[string]string{"/scratch": "size=1m"},
			CapDrop: []string{"net_raw", "MKNOD"}, SecurityOpt: []string{"no-new-privileges"},
			GroupAdd:  []string{"nobody"},
			Resources: container.Resources{PidsLimit: &pids},
		})
	t.Logf("output:\n%s", out)
	if status != 0 {
		t.Errorf("exit status = %d", status)
	}
	for _, want := range []string{
		"uid=1000(berth) gid=1000(berth) groups=100(users),1000(berth),65534(nobody)",
		"CapEff:\t0000000000000000",
		"CapBnd:\t00000000a00405fb",
		"NoNewPrivs:\t1",
		"shm=8192",
		"root=ro",
		"scratch=rw",
		"\n50",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunPrivileged checks that a privileged spec (every capability, every
// host device, no seccomp, writable /sys) loads and looks as under Docker.
func TestRunPrivileged(t *testing.T) {
	script := `grep -E '^(CapEff|Seccomp):' /proc/self/status
test -c /dev/kmsg && echo kmsg=present
touch /sys/kernel/berth-probe 2>&1 | grep -q 'Read-only' && echo sys=ro || echo sys=rw
mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mount=ok`
	out, code := runGenerated(t, &container.Config{Cmd: []string{"sh", "-c", script}}, &container.HostConfig{Privileged: true})
	t.Logf("output:\n%s", out)
	if code != 0 {
		t.Errorf("exit status = %d", code)
	}
	// Every capability the kernel has, as far as this process can give.
	capLast, _ := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	var last int
	fmt.Sscan(string(capLast), &last)
	status, _ := os.ReadFile("/proc/self/status")
	var own uint64
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%x", &own)
		}
	}
	wantCaps := fmt.Sprintf("CapEff:\t%016x", own&(1<<uint(last+1)-1))
	for _, want := range []string{wantCaps, "Seccomp:\t0", "kmsg=present", "sys=rw", "mount=ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunCustomSeccomp loads a Docker-format profile passed the way the
// docker CLI passes it (the JSON itself in seccomp=...): everything is
// allowed except mkdir/mkdirat, which fail with EACCES.
func TestRunCustomSeccomp(t *testing.T) {
	profile := `{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
		"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`
	script := `grep -E '^Seccomp:' /proc/self/status; mkdir /tmp/x 2>&1; echo done`
	out, _ := runGenerated(t, &container.Config{Cmd: []string{"sh", "-c", script}},
		&container.HostConfig{SecurityOpt: []string{"seccomp=" + profile}})
	t.Logf("output:\n%s", out)
	for _, want := range []string{"Seccomp:\t2", "Permission denied", "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	out, _ = runGenerated(t, &container.Config{Cmd: []string{"sh", "-c", "grep Seccomp: /proc/self/status"}},
		&container.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}})
	if !strings.Contains(out, "Seccomp:\t0") {
		t.Errorf("seccomp=unconfined: %s", out)
	}
}

// TestRunJoinContainerNamespaces runs a container that joins the pid, ipc
// and network namespaces of a running one (--pid/--ipc/--network
// container:<ref>), resolved through Input.ContainerNS as the daemon does.
func TestRunJoinContainerNamespaces(t *testing.T) {
	pid, _ := runGeneratedWith(t, &container.Config{Cmd: []string{"sleep", "60"}}, &container.HostConfig{}, nil, true)
	procNames := map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc", specs.NetworkNamespace: "net"}
	var asked []string
	lookup := func(ref string, typ specs.LinuxNamespaceType) (string, error) {
		asked = append(asked, ref+"/"+string(typ))
		return "/proc/" + pid + "/ns/" + procNames[typ], nil
	}
	want := map[string]string{}
	for _, n := range procNames {
		l, err := os.Readlink("/proc/" + pid + "/ns/" + n)
		if err != nil {
			t.Fatal(err)
		}
		want[n] = l
	}
	out, status := runGeneratedWith(t,
		&container.Config{Cmd: []string{"sh", "-c", "for n in pid ipc net; do echo $n=$(readlink /proc/self/ns/$n); done; ps -o comm | grep -c sleep"}},
		&container.HostConfig{PidMode: "container:first", IpcMode: "container:first", NetworkMode: "container:first"}, lookup, false)
	t.Logf("output:\n%s", out)
	if status != 0 {
		t.Errorf("exit status = %d", status)
	}
	for n, l := range want {
		if !strings.Contains(out, n+"="+l) {
			t.Errorf("%s namespace is not the first container's %s", n, l)
		}
	}
	if !strings.Contains(out, "\n1\n") {
		t.Errorf("the first container's sleep is not visible")
	}
	if strings.Join(asked, " ") != "first/network first/pid first/ipc" {
		t.Errorf("ContainerNS calls = %v", asked)
	}
}
