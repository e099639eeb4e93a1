package runtime_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerDefaults makes s what berthd generates for a default container
// (internal/container/spec: the default mounts, /dev/shm 64 MiB, the
// default masked and read-only paths, the default sysctls, Docker's
// namespaces, no devices) plus one file bound from the bundle, as berthd
// binds /etc/hostname.
func dockerDefaults() func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
			{Destination: "/etc/hostname", Type: "bind", Source: "hostname", Options: []string{"rbind", "rprivate"}},
		}
		s.Linux.MaskedPaths = append([]string{
			"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
			"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
		}, hostThermal()...)
		s.Linux.ReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}
		s.Linux.Devices = nil
		s.Linux.RootfsPropagation = ""
		s.Linux.Namespaces = []specs.LinuxNamespace{
			{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.UTSNamespace},
			{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
		}
		s.Hostname = "staged"
	}
}

// hostThermal lists the thermal_throttle directories berthd masks.
func hostThermal() []string {
	var out []string
	for cpu := 0; cpu < 4096; cpu++ {
		p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
		if _, err := os.Stat(fmt.Sprintf("/sys/devices/system/cpu/cpu%d", cpu)); err != nil {
			break
		}
	}
	return out
}

// stageProbe prints what the container's mounts look like: the mount
// table, /dev, the masked and read-only paths, the sysctls, the cgroup
// tree and the network devices in /sys.
const stageProbe = `
cat /proc/self/mountinfo
echo ---dev
for f in /dev/* /dev/pts/* /dev/mqueue /dev/shm /dev/pts; do stat -c '%n %f %u %g %t:%T %N' "$f"; done
echo ---masked
for f in /proc/interrupts /proc/keys /proc/timer_list /proc/kcore; do [ -e $f ] && echo "$f $(wc -c < $f)"; done
echo "acpi $(ls -A /proc/acpi | wc -l) firmware $(ls -A /sys/firmware | wc -l)"
echo ---readonly
for f in /proc/sys/kernel/domainname /proc/sysrq-trigger /sys/fs/cgroup/pids/x /sys/kernel/x /dev/shm/x /dev/x; do
	if touch $f 2>/dev/null || echo > $f 2>/dev/null; then echo "$f writable"; else echo "$f not writable"; fi
done
echo ---sysctl
cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range
echo ---cgroup
ls -A /sys/fs/cgroup
ls /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/unified/cgroup.procs
echo ---net
ls /sys/class/net
echo ---fds
ls /proc/$$/fd
echo ---end
`

// normalizeMountinfo keeps of each mountinfo line what does not change
// from one container to the next: mount point, root, per-mount options,
// propagation kind, type, source and super options (not the mount ids,
// device numbers or peer group numbers), sorted.
func normalizeMountinfo(t *testing.T, s string) []string {
	t.Helper()
	num := regexp.MustCompile(`:[0-9]+`)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			t.Fatalf("mountinfo line %q", line)
		}
		opt := num.ReplaceAllString(strings.Join(f[6:sep], " "), "")
		out = append(out, strings.Join([]string{f[4], f[3], f[5], opt, f[sep+1], f[sep+2], f[sep+3]}, " "))
	}
	sort.Strings(out)
	return out
}

// hasMount says whether the normalized table has a mount at mp with
// these per-mount options, type, source and super options.
func hasMount(table []string, mp, opts, typ, src, super string) bool {
	for _, l := range table {
		f := strings.Split(l, " ")
		if len(f) == 7 && f[0] == mp && f[2] == opts && f[4] == typ && f[5] == src && f[6] == super {
			return true
		}
	}
	return false
}

// stagedRun pre-forks an init for a bundle, waits until it stages (or
// would stage) its mounts, then creates, starts, waits for and deletes
// the container. It returns the output and the init's staged report.
func stagedRun(t *testing.T, r *runtime.Runtime, id, bundle string) (string, string) {
	t.Helper()
	return stagedRunAt(t, r, id, bundle, false)
}

// stagedRunAt is stagedRun; early: the config is sent at once, while the
// init may still start or stage (which it then stops).
func stagedRunAt(t *testing.T, r *runtime.Runtime, id, bundle string, early bool) (string, string) {
	t.Helper()
	// (Unless early, create waits for the whole staging: which trees
	// are used does not depend on how far it got.)
	if !early {
		t.Setenv("BERTH_STAGE_WAIT", "1")
	} else {
		t.Setenv("BERTH_STAGE_WAIT", "")
	}
	spec := bundleSpec(t, bundle)
	io, out := preforkIO(t)
	// (A network namespace to join is joined late: the init is
	// pre-forked with one of its own, as a warm spare is.)
	var nss []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		ns.Path = ""
		nss = append(nss, ns)
	}
	pf, err := r.Prefork(context.Background(), id, runtime.PreforkOpts{
		CgroupsPath: spec.Linux.CgroupsPath, Namespaces: nss, IO: io,
	})
	if err != nil {
		t.Fatalf("prefork: %v", err)
	}
	defer pf.Release()
	if os.Getenv("BERTH_NO_STAGE") == "" && !early {
		waitStaging(t, pf.Pid())
	}
	ctx := context.Background()
	ctr, err := r.CreateContainer(ctx, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	staged := ctr.StagedMounts()
	if !ctr.Preforked() {
		t.Error("pre-forked init not used")
	}
	if err := ctr.Start(ctx); err != nil {
		_ = ctr.Delete(ctx)
		t.Fatalf("start: %v", err)
	}
	ws, err := ctr.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if code := runtime.ExitCode(ws); code != 0 {
		t.Errorf("exit code %d: %s", code, readBack(out))
	}
	if err := ctr.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	return readBack(out), staged
}

// waitStaging waits until the pre-forked init pid holds a detached mount
// (a descriptor on a mount that is in no mount table of its own: its
// staging has begun, so it was waiting for its config; create then waits
// for the staging to end).
func waitStaging(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if detachedMounts(t, pid) > 0 {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
	t.Fatal("the pre-forked init staged nothing")
}

// detachedMounts counts pid's descriptors on the root directory of a mount
// that is not in its mountinfo.
func detachedMounts(t *testing.T, pid int) int {
	t.Helper()
	p := "/proc/" + strconv.Itoa(pid)
	mi, err := os.ReadFile(p + "/mountinfo")
	if err != nil {
		t.Fatalf("pre-forked init: %v", err)
	}
	ids := map[string]bool{}
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			ids[f[0]] = true
		}
	}
	entries, err := os.ReadDir(p + "/fdinfo")
	if err != nil {
		t.Fatalf("pre-forked init: %v", err)
	}
	n := 0
	for _, e := range entries {
		// (Sockets and memfds are on internal mounts too, and the sealed
		// runtime binary a detached mount of a file: a directory that is
		// the root of its mount.)
		fd := filepath.Join(p, "fd", e.Name())
		if l, _ := os.Readlink(fd); l != "/" {
			continue
		}
		if st, err := os.Stat(fd); err != nil || !st.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p, "fdinfo", e.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if id, ok := strings.CutPrefix(l, "mnt_id:"); ok && !ids[strings.TrimSpace(id)] {
				n++
			}
		}
	}
	return n
}

// sections splits the probe's output at its ---name lines.
func sections(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	name := "mountinfo"
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.HasPrefix(line, "---") {
			m[name] = b.String()
			b.Reset()
			name = strings.TrimSpace(strings.TrimPrefix(line, "---"))
			continue
		}
		b.WriteString(line)
	}
	if _, ok := m["fds"]; !ok || name != "end" {
		t.Fatalf("probe output cut short:\n%s", out)
	}
	return m
}

func stageBundle(t *testing.T, mutate func(*specs.Spec)) string {
	var bundle string
	bundle = shBundle(t, stageProbe, func(s *specs.Spec) {
		dockerDefaults()(s)
		if mutate != nil {
			mutate(s)
		}
	})
	if err := os.WriteFile(filepath.Join(bundle, "hostname"), []byte("staged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// TestStagedMountsSameAsOrdinary: a pre-forked init that staged Docker's
// default mounts while it waited, given a config that asks for exactly
// them, attaches its staged trees (dev, proc, sys) instead of mounting,
// and the container sees the same mount table (mount points, types,
// sources, per-mount and super options, propagation), the same /dev
// (nodes, modes, owners, symlinks), masked paths empty, read-only paths
// read-only, the sysctls set and its own cgroups, as with staging off.
func TestStagedMountsSameAsOrdinary(t *testing.T) {
	r := libRuntime(t)
	bundle := stageBundle(t, nil)
	staged, report := stagedRun(t, r, "bt-staged-same", bundle)
	if report != "staged: dev proc sys" {
		t.Errorf("staged report %q, want all three trees", report)
	}
	t.Setenv("BERTH_NO_STAGE", "1")
	ordinary, report0 := stagedRun(t, r, "bt-staged-ord", bundle)
	if report0 != "" {
		t.Errorf("staging off: report %q", report0)
	}
	a, b := sections(t, staged), sections(t, ordinary)
	ma, mb := normalizeMountinfo(t, a["mountinfo"]), normalizeMountinfo(t, b["mountinfo"])
	if !slices.Equal(ma, mb) {
		t.Errorf("mount tables differ:\nstaged:\n%s\nordinary:\n%s", strings.Join(ma, "\n"), strings.Join(mb, "\n"))
	}
	for _, k := range []string{"dev", "masked", "readonly", "sysctl", "cgroup", "net", "fds"} {
		if a[k] != b[k] {
			t.Errorf("%s differs:\nstaged:\n%s\nordinary:\n%s", k, a[k], b[k])
		}
	}
	// And what both must show (not only the same).
	for _, want := range [][5]string{
		{"/proc", "rw,nosuid,nodev,noexec,relatime", "proc", "proc", "rw"},
		{"/dev", "rw,nosuid", "tmpfs", "tmpfs", "rw,size=65536k,mode=755"},
		{"/sys", "ro,nosuid,nodev,noexec,relatime", "sysfs", "sysfs", "ro"},
		{"/proc/sys", "ro,nosuid,nodev,noexec,relatime", "proc", "proc", "rw"},
		{"/proc/interrupts", "rw,nosuid", "tmpfs", "tmpfs", "rw,size=65536k,mode=755"},
		{"/proc/acpi", "ro,relatime", "tmpfs", "tmpfs", "ro"},
		{"/sys/firmware", "ro,relatime", "tmpfs", "tmpfs", "ro"},
		{"/sys/fs/cgroup", "ro,nosuid,nodev,noexec,relatime", "tmpfs", "tmpfs", "ro,mode=755"},
		{"/sys/fs/cgroup/memory", "ro,nosuid,nodev,noexec,relatime", "cgroup", "cgroup", "rw,memory"},
		{"/dev/shm", "rw,nosuid,nodev,noexec,relatime", "tmpfs", "shm", "rw,size=65536k"},
		{"/dev/pts", "rw,nosuid,noexec,relatime", "devpts", "devpts", "rw,gid=5,mode=620,ptmxmode=666"},
		{"/dev/mqueue", "rw,nosuid,nodev,noexec,relatime", "mqueue", "mqueue", "rw"},
	} {
		if !hasMount(ma, want[0], want[1], want[2], want[3], want[4]) {
			t.Errorf("no mount %q in\n%s", want, strings.Join(ma, "\n"))
		}
	}
	for _, want := range []string{
		"/dev/null 21b6 0 0 1:3", "/dev/zero 21b6 0 0 1:5", "/dev/full 21b6 0 0 1:7", "/dev/random 21b6 0 0 1:8",
		"/dev/urandom 21b6 0 0 1:9", "/dev/tty 21b6 0 0 5:0", "'/dev/fd' -> '/proc/self/fd'", "'/dev/ptmx' -> 'pts/ptmx'",
	} {
		if !strings.Contains(a["dev"], want) {
			t.Errorf("/dev: no %q in\n%s", want, a["dev"])
		}
	}
	for _, want := range []string{"/proc/interrupts 0\n", "/proc/keys 0\n", "acpi 0 firmware 0\n"} {
		if !strings.Contains(a["masked"], want) {
			t.Errorf("masked: no %q in\n%s", want, a["masked"])
		}
	}
	for _, want := range []string{"/proc/sys/kernel/domainname not writable", "/proc/sysrq-trigger not writable",
		"/sys/fs/cgroup/pids/x not writable", "/sys/kernel/x not writable", "/dev/shm/x writable", "/dev/x writable"} {
		if !strings.Contains(a["readonly"], want) {
			t.Errorf("readonly: no %q in\n%s", want, a["readonly"])
		}
	}
	if a["sysctl"] != "0\n0\t2147483647\n" {
		t.Errorf("sysctls %q", a["sysctl"])
	}
	if a["net"] != "lo\n" {
		t.Errorf("/sys/class/net %q: not the container's network namespace", a["net"])
	}
}

// TestStagedMountsClaimedEarly: configs sent right after the pre-fork (the
// init not started yet, staging, or done: the staging is stopped where it
// is and what is not finished is dropped) give the same mount table as
// the ordinary path, whatever was used.
func TestStagedMountsClaimedEarly(t *testing.T) {
	r := libRuntime(t)
	bundle := stageBundle(t, nil)
	reports := map[string]int{}
	var tables [][]string
	for i := range 4 {
		out, report := stagedRunAt(t, r, "bt-staged-early"+strconv.Itoa(i), bundle, true)
		reports[report]++
		tables = append(tables, normalizeMountinfo(t, sections(t, out)["mountinfo"]))
	}
	t.Setenv("BERTH_NO_STAGE", "1")
	out, _ := stagedRunAt(t, r, "bt-staged-early-ord", bundle, true)
	want := normalizeMountinfo(t, sections(t, out)["mountinfo"])
	for i, got := range tables {
		if !slices.Equal(got, want) {
			t.Errorf("run %d: mount table differs:\n%s\nordinary:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	t.Logf("staged reports: %v", reports)
}

// TestStagedMountsFallBack: a config that differs from what was staged in
// any entry or list takes the ordinary path for the trees concerned (and
// only those), with the container getting what it asked for.
func TestStagedMountsFallBack(t *testing.T) {
	r := libRuntime(t)
	cases := []struct {
		name   string
		mutate func(*specs.Spec)
		report string
		check  func(t *testing.T, out map[string]string)
	}{
		{"shm size", func(s *specs.Spec) {
			s.Mounts[6].Options[4] = "size=1048576"
		}, "staged: sys", func(t *testing.T, out map[string]string) {
			if !hasMount(normalizeMountinfo(t, out["mountinfo"]), "/dev/shm", "rw,nosuid,nodev,noexec,relatime", "tmpfs", "shm", "rw,size=1024k") {
				t.Errorf("/dev/shm not 1 MiB:\n%s", out["mountinfo"])
			}
		}},
		{"privileged-like", func(s *specs.Spec) {
			s.Mounts[3].Options = []string{"nosuid", "noexec", "nodev"}
			s.Mounts[4].Options = []string{"nosuid", "noexec", "nodev"}
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}, "staged: dev", func(t *testing.T, out map[string]string) {
			if !hasMount(normalizeMountinfo(t, out["mountinfo"]), "/sys", "rw,nosuid,nodev,noexec,relatime", "sysfs", "sysfs", "rw") {
				t.Errorf("/sys not read-write:\n%s", out["mountinfo"])
			}
			if strings.Contains(out["mountinfo"], " /proc/sys ") || strings.Contains(out["mountinfo"], " /proc/keys ") {
				t.Errorf("paths masked or read-only:\n%s", out["mountinfo"])
			}
		}},
		{"other masked list", func(s *specs.Spec) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/proc/uptime")
		}, "staged: dev", func(t *testing.T, out map[string]string) {
			if !strings.Contains(out["mountinfo"], " /proc/uptime ") {
				t.Errorf("/proc/uptime not masked:\n%s", out["mountinfo"])
			}
		}},
		{"device", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
		}, "staged: sys", func(t *testing.T, out map[string]string) {
			if !strings.Contains(out["dev"], "/dev/fuse 21b6 0 0 a:e5") {
				t.Errorf("no /dev/fuse:\n%s", out["dev"])
			}
		}},
		{"mount under /dev", func(s *specs.Spec) {
			m := specs.Mount{Destination: "/dev/extra", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=4k"}}
			s.Mounts = slices.Insert(s.Mounts, 3, m)
		}, "staged: sys", func(t *testing.T, out map[string]string) {
			if !strings.Contains(out["mountinfo"], " /dev/extra ") {
				t.Errorf("no /dev/extra:\n%s", out["mountinfo"])
			}
		}},
		{"mount on a masked path, after the defaults", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/firmware", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=4k"}})
		}, "staged: dev proc", func(t *testing.T, out map[string]string) {
			// The mask comes after it, on top: read-only.
			var top string
			for _, l := range strings.Split(out["mountinfo"], "\n") {
				if f := strings.Fields(l); len(f) > 5 && f[4] == "/sys/firmware" {
					top = f[5]
				}
			}
			if top != "ro,relatime" {
				t.Errorf("/sys/firmware: top mount %q, not the mask:\n%s", top, out["mountinfo"])
			}
		}},
	}
	// A network namespace to join, with a bridge link of its own.
	nsProc := exec.Command("unshare", "--net", "sh", "-c", "ip link add d0 type bridge && exec sleep 600")
	if err := nsProc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nsProc.Process.Kill(); _ = nsProc.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", nsProc.Process.Pid)); strings.Contains(string(b), "d0:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no link d0 in the namespace to join")
		}
	}
	cases = append(cases, struct {
		name   string
		mutate func(*specs.Spec)
		report string
		check  func(t *testing.T, out map[string]string)
	}{"join network namespace", func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", nsProc.Process.Pid)
			}
		}
	}, "staged: dev proc", func(t *testing.T, out map[string]string) {
		if out["net"] != "d0\nlo\n" {
			t.Errorf("/sys/class/net %q: not the joined network namespace", out["net"])
		}
	}})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bundle := stageBundle(t, tc.mutate)
			out, report := stagedRun(t, r, "bt-staged-fb"+strconv.Itoa(i), bundle)
			if report != tc.report {
				t.Errorf("staged report %q, want %q", report, tc.report)
			}
			sec := sections(t, out)
			tc.check(t, sec)
			if sec["sysctl"] != "0\n0\t2147483647\n" {
				t.Errorf("sysctls %q", sec["sysctl"])
			}
		})
	}
}

// TestStagedMountsLeaveNothing: staged trees a pre-forked init never uses
// (it is released, or its config joins another network namespace) are
// nowhere on the host: no mount of theirs appears in any mount table
// of ours, and the init is gone.
func TestStagedMountsLeaveNothing(t *testing.T) {
	r := libRuntime(t)
	bundle := stageBundle(t, nil)
	spec := bundleSpec(t, bundle)
	before, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	io, _ := preforkIO(t)
	pf, err := r.Prefork(context.Background(), "bt-staged-rel", runtime.PreforkOpts{
		CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitStaging(t, pf.Pid())
	pid := pf.Pid()
	pf.Release()
	if !processGone(pid) {
		if b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
			t.Errorf("pre-forked init %d still running", pid)
		}
	}
	after, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	// (Of the kinds of mount staging makes: other tests' overlays come
	// and go on the host meanwhile.)
	if x, y := stagedKinds(normalizeMountinfo(t, string(before))), stagedKinds(normalizeMountinfo(t, string(after))); !slices.Equal(x, y) {
		t.Errorf("mount table changed:\nbefore:\n%s\nafter:\n%s", strings.Join(x, "\n"), strings.Join(y, "\n"))
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}

// stagedKinds keeps the mounts of the types staging makes.
func stagedKinds(table []string) []string {
	var out []string
	for _, l := range table {
		// (From the end: the optional fields before them may be several.)
		f := strings.Split(l, " ")
		typ, src := f[len(f)-3], f[len(f)-2]
		if src == "berth-exec" {
			// The exec-root tmpfs of a berthd another package's test
			// (internal/e2e) starts or stops meanwhile.
			continue
		}
		switch typ {
		case "proc", "sysfs", "devpts", "mqueue", "tmpfs", "cgroup", "cgroup2":
			out = append(out, l)
		}
	}
	return out
}
