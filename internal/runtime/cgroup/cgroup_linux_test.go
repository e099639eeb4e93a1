package cgroup

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMode(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		t.Skipf("no %s: %v", cgroupRoot, err)
	}
	want := ModeV1
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		want = ModeV2
	} else if err := unix.Statfs(hybridUnifiedRoot, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		want = ModeHybrid
	}
	if got := Mode(); got != want {
		t.Fatalf("Mode() = %q, want %q", got, want)
	}
	t.Logf("host cgroup mode: %s", want)
}

func TestNewPathForms(t *testing.T) {
	requireRoot(t)
	mode := Mode()

	t.Run("absolute", func(t *testing.T) {
		m, err := New("/berth-test-abs/a/../c1", "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		paths := m.Paths()
		if len(paths) == 0 {
			t.Fatal("no paths")
		}
		for k, p := range paths {
			if !strings.HasSuffix(p, "/berth-test-abs/c1") {
				t.Errorf("Paths()[%q] = %q, want .../berth-test-abs/c1", k, p)
			}
			if _, err := os.Stat(p); err == nil {
				t.Errorf("New created %s; only Apply may create directories", p)
			}
		}
		switch mode {
		case ModeV2:
			if paths[""] != "/sys/fs/cgroup/berth-test-abs/c1" {
				t.Errorf("v2 dir = %q", paths[""])
			}
		default:
			if paths["memory"] != "/sys/fs/cgroup/memory/berth-test-abs/c1" {
				t.Errorf("memory dir = %q", paths["memory"])
			}
			if paths["devices"] == "" || paths["freezer"] == "" {
				t.Errorf("devices/freezer missing from %v", paths)
			}
			_, hasUnified := paths[""]
			if hasUnified != (mode == ModeHybrid) {
				t.Errorf("unified entry present=%v on a %s host: %v", hasUnified, mode, paths)
			}
			if mode == ModeHybrid && paths[""] != "/sys/fs/cgroup/unified/berth-test-abs/c1" {
				t.Errorf("unified dir = %q", paths[""])
			}
		}
	})

	t.Run("default", func(t *testing.T) {
		m, err := New("", "ctr123", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, p := range m.Paths() {
			if !strings.HasSuffix(p, "/berth/ctr123") {
				t.Errorf("Paths()[%q] = %q, want .../berth/ctr123", k, p)
			}
		}
		if _, err := New("", "", nil); err == nil {
			t.Error("empty cgroupsPath and container ID accepted")
		}
		if _, err := New("", "../x", nil); err == nil {
			t.Error("container ID with a slash accepted")
		}
	})

	t.Run("relative", func(t *testing.T) {
		m, err := New("../../berth-test-rel/c2", "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		paths := m.Paths()
		own := procCgroups(t, os.Getpid())
		for k, p := range paths {
			if k == "" {
				continue
			}
			want := filepath.Join(cgroupRoot, k, own[k], "berth-test-rel/c2")
			if k == "name=systemd" {
				want = filepath.Join(cgroupRoot, "systemd", own[k], "berth-test-rel/c2")
			}
			if p != want {
				t.Errorf("Paths()[%q] = %q, want %q (own cgroup %q)", k, p, want, own[k])
			}
		}
		if u, ok := paths[""]; ok && !strings.HasSuffix(u, "/berth-test-rel/c2") {
			t.Errorf("unified dir = %q", u)
		}
	})

	t.Run("refused", func(t *testing.T) {
		_, err := New("system.slice:docker:abc", "abc", nil)
		if err == nil || !strings.Contains(err.Error(), "systemd") || !strings.Contains(err.Error(), "cgroupfs") {
			t.Errorf("systemd form: err = %v, want a refusal naming systemd and cgroupfs", err)
		}
		if _, err := New("/", "x", nil); err == nil {
			t.Error("root cgroup accepted")
		}
		if _, err := New("..", "x", nil); err == nil {
			t.Error(`relative ".." accepted`)
		}
	})
}

// TestApplyAbsoluteAndDestroy checks that Apply puts the process in the same
// cgroup in every hierarchy, that Destroy removes every directory and that a
// second Destroy is fine.
func TestApplyAbsoluteAndDestroy(t *testing.T) {
	parent := testParent(t)
	inner := parent + "/c1"
	m := newManager(t, inner, "c1", nil)
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	got := procCgroups(t, p.pid())
	for k, dir := range m.Paths() {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%q: %s not created: %v", k, dir, err)
		}
		if got[k] != inner {
			t.Errorf("/proc/%d/cgroup: %q is %q, want %q", p.pid(), k, got[k], inner)
		}
	}
	if Mode() == ModeHybrid && got[""] != inner {
		t.Errorf("hybrid: unified cgroup is %q, want %q", got[""], inner)
	}

	// Destroy refuses (after retrying) while a process is inside...
	if err := m.Destroy(); err == nil {
		t.Fatal("Destroy succeeded with a live process inside")
	} else {
		t.Logf("Destroy with a live process: %v", err)
	}
	// ...and succeeds once it is gone.
	_ = p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for k, dir := range m.Paths() {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%q: %s still exists after Destroy (%v)", k, dir, err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// TestApplyRelative checks that a relative cgroupsPath lands below the
// runtime's own cgroup in each v1 hierarchy (e.g. /process_api/<id> in the
// memory hierarchy of the test host).
func TestApplyRelative(t *testing.T) {
	requireRoot(t)
	if Mode() == ModeV2 {
		t.Skip("v1 hierarchies only")
	}
	rel := strings.TrimPrefix(testParent(t), "/")
	own := procCgroups(t, os.Getpid())
	// Relative parents live below our own cgroups: clean those up as well.
	t.Cleanup(func() {
		for _, root := range hierarchyRoots(t) {
			key := filepath.Base(root)
			if key == "systemd" {
				key = "name=systemd"
			}
			if base, ok := own[key]; ok && base != "/" {
				removeDir(t, filepath.Join(root, base, rel))
			}
		}
	})
	m := newManager(t, rel+"/c2", "c2", nil)
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	got := procCgroups(t, p.pid())
	for _, k := range []string{"memory", "cpu", "pids", "devices"} {
		want := filepath.Join(own[k], rel, "c2")
		if got[k] != want {
			t.Errorf("%s: process is in %q, want %q (own cgroup %q)", k, got[k], want, own[k])
		}
	}
	if err := m.Destroy(); err == nil {
		t.Error("Destroy succeeded with a live process inside")
	}
}

func TestMemoryLimit(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/mem", "mem", nil)
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 20
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit:       i64(limit),
		Reservation: i64(32 << 20),
		Swap:        i64(limit),
		Swappiness:  u64(10),
		Kernel:      i64(1 << 20), // ignored
	}}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	switch Mode() {
	case ModeV2:
		if got := readFile(t, paths[""], "memory.max"); got != strconv.Itoa(limit) {
			t.Errorf("memory.max = %s, want %d", got, limit)
		}
		if got := readFile(t, paths[""], "memory.low"); got != strconv.Itoa(32<<20) {
			t.Errorf("memory.low = %s", got)
		}
	default:
		dir := paths["memory"]
		if got := readUint(t, dir, "memory.limit_in_bytes"); got != limit {
			t.Errorf("memory.limit_in_bytes = %d, want %d", got, limit)
		}
		if got := readUint(t, dir, "memory.soft_limit_in_bytes"); got != 32<<20 {
			t.Errorf("memory.soft_limit_in_bytes = %d", got)
		}
		if got := readUint(t, dir, "memory.swappiness"); got != 10 {
			t.Errorf("memory.swappiness = %d", got)
		}
		if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
			if got := readUint(t, dir, "memory.memsw.limit_in_bytes"); got != limit {
				t.Errorf("memory.memsw.limit_in_bytes = %d, want %d", got, limit)
			}
		}
	}

	// Raising the limit above the current memory+swap works (the write
	// order is handled).
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 * limit), Swap: i64(4 * limit)}}); err != nil {
		t.Fatalf("raise limit: %v", err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryLimit != 2*limit {
		t.Errorf("Stats().MemoryLimit = %d, want %d", st.MemoryLimit, 2*limit)
	}
	// Unlimited.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}}); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
	if st, err := m.Stats(); err != nil || st.MemoryLimit != 0 {
		t.Errorf("after -1: Stats() = %+v, %v; want MemoryLimit 0", st, err)
	}
	// A limit below the current usage is a kernel-level failure that must
	// name the value.
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4096)}})
	if err != nil && !strings.Contains(err.Error(), "4096") {
		t.Errorf("tiny limit error does not name the value: %v", err)
	}
}

func TestPidsLimitEnforced(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/pids", "pids", nil)
	// The shell waits for a line on stdin, then starts background sleeps
	// until a fork fails (dash gives up on the first "Cannot fork"): with
	// pids.max = 3, at most 2 sleeps can exist beside the shell.
	script := `read go; for i in 1 2 3 4 5 6; do sleep 30 & done; echo spawned-all; read stop`
	p := start(t, nil, "/bin/sh", "-c", script)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	const limit = 3
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(limit)}}); err != nil {
		t.Fatal(err)
	}
	pidsDir := m.Paths()["pids"]
	if Mode() == ModeV2 {
		pidsDir = m.Paths()[""]
	}
	if got := readFile(t, pidsDir, "pids.max"); got != strconv.Itoa(limit) {
		t.Fatalf("pids.max = %s, want %d", got, limit)
	}
	if _, err := p.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "fork", 10*time.Second)
	if strings.Contains(p.out.String(), "spawned-all") {
		t.Errorf("all 6 forks succeeded under pids.max %d", limit)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > limit {
		t.Errorf("%d processes in the cgroup (%v), above pids.max %d", len(pids), pids, limit)
	}
	if len(pids) < 2 {
		t.Errorf("only %d processes in the cgroup; forking seems broken altogether", len(pids))
	}
	if events := readFile(t, pidsDir, "pids.events"); !strings.HasPrefix(events, "max ") || events == "max 0" {
		t.Errorf("pids.events = %q, want a non-zero max count", events)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.PidsLimit != limit || st.PidsCurrent == 0 || st.PidsCurrent > limit {
		t.Errorf("Stats pids = %d/%d, want <=%d/%d", st.PidsCurrent, st.PidsLimit, limit, limit)
	}
	// 0 (and any negative value) lifts the limit.
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, pidsDir, "pids.max"); got != "max" {
		t.Errorf("pids.max after limit 0 = %s, want max", got)
	}
}

func TestFreezeThawPaused(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/frz", "frz", nil)
	// A shell printing a counter lets us see that it really stops.
	p := start(t, nil, "/bin/sh", "-c", `i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || paused {
		t.Fatalf("Paused() before Freeze = %v, %v", paused, err)
	}
	t.Cleanup(func() { _ = m.Thaw() }) // SIGKILL cannot end a frozen task
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || !paused {
		t.Fatalf("Paused() after Freeze = %v, %v", paused, err)
	}
	// Lines written just before the freeze may still be in the pipe: let
	// the reader drain them before taking the reference point.
	time.Sleep(100 * time.Millisecond)
	before := p.out.String()
	time.Sleep(300 * time.Millisecond)
	if after := p.out.String(); after != before {
		t.Errorf("frozen process kept printing: %q -> %q", before, after)
	}
	if err := m.Freeze(); err != nil {
		t.Errorf("second Freeze: %v", err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || paused {
		t.Fatalf("Paused() after Thaw = %v, %v", paused, err)
	}
	before = p.out.String()
	deadline := time.Now().Add(5 * time.Second)
	for p.out.String() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.out.String() == before {
		t.Error("thawed process does not run")
	}
}

func TestPidsListsEveryProcess(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/list", "list", nil)
	a := start(t, nil, "sleep", "30")
	b := start(t, nil, "/bin/sh", "-c", "sleep 30 & echo child=$!; wait")
	for _, p := range []*proc{a, b} {
		if err := m.Apply(p.pid()); err != nil {
			t.Fatal(err)
		}
	}
	c := start(t, nil, "sleep", "30")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{a.pid(), b.pid(), c.pid()} {
		if !slices.Contains(pids, want) {
			t.Errorf("Pids() = %v, missing %d", pids, want)
		}
	}
	if !slices.IsSorted(pids) {
		t.Errorf("Pids() not sorted: %v", pids)
	}
	if slices.Contains(pids, os.Getpid()) {
		t.Errorf("Pids() contains the test process itself: %v", pids)
	}
}

func deviceList(t *testing.T, m Manager) string {
	t.Helper()
	return readFile(t, m.Paths()["devices"], "devices.list")
}

// TestDevicesAllowlist checks the v1 devices cgroup: default deny plus the
// configured and default rules, enforcement, and that an update without
// device rules leaves them alone.
func TestDevicesAllowlist(t *testing.T) {
	requireRoot(t)
	if Mode() == ModeV2 {
		t.Skip("v1 devices controller only (v2 is covered by TestV2CodePathOnUnifiedHierarchy)")
	}
	parent := testParent(t)
	m := newManager(t, parent+"/dev", "dev", nil)
	script := `read go; if (exec 3</dev/kmsg) 2>/dev/null; then echo kmsg=open; else echo kmsg=denied; fi; ` +
		`if echo x > /dev/null; then echo null=open; else echo null=denied; fi; read stop`
	p := start(t, nil, "/bin/sh", "-c", script)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if got := deviceList(t, m); got != "a *:* rwm" {
		t.Logf("devices.list before Set: %q", got)
	}
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rw"}, // /dev/net/tun
		{Allow: true, Type: "b", Major: i64(7), Access: "r"},                    // loop devices, any minor
	}}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	list := deviceList(t, m)
	lines := strings.Split(list, "\n")
	for _, want := range []string{"c 10:200 rw", "b 7:* r", "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm"} {
		if !slices.Contains(lines, want) {
			t.Errorf("devices.list lacks %q:\n%s", want, list)
		}
	}
	if slices.Contains(lines, "a *:* rwm") || slices.Contains(lines, "c 1:11 rwm") {
		t.Errorf("devices.list is not an allowlist:\n%s", list)
	}
	if _, err := p.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "null=", 10*time.Second)
	if out := p.out.String(); !strings.Contains(out, "kmsg=denied") || !strings.Contains(out, "null=open") {
		t.Errorf("device access inside the cgroup: %q, want kmsg denied and null open", out)
	}

	// An update without device rules (Load-ed manager, as `update` does)
	// keeps the allowlist.
	loaded, err := Load(m.Paths())
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(50)}}); err != nil {
		t.Fatal(err)
	}
	if got := deviceList(t, m); got != list {
		t.Errorf("update without devices changed devices.list:\n%s\n->\n%s", list, got)
	}
	// A new rule set replaces the old one.
	if err := loaded.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}); err != nil {
		t.Fatal(err)
	}
	if got := deviceList(t, m); strings.Contains(got, "10:200") || !strings.Contains(got, "c 1:3 rwm") {
		t.Errorf("devices.list after replacing the rules:\n%s", got)
	}
}

// TestNewProgramsDefaultDeny checks that the first Set of a fresh container
// installs the default deny even when the resources carry no device rule.
func TestNewProgramsDefaultDeny(t *testing.T) {
	requireRoot(t)
	if Mode() == ModeV2 {
		t.Skip("v1 devices controller only")
	}
	parent := testParent(t)
	m := newManager(t, parent+"/dflt", "dflt", nil)
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{}); err != nil {
		t.Fatal(err)
	}
	list := deviceList(t, m)
	if strings.Contains(list, "a *:*") || !strings.Contains(list, "c 1:3 rwm") {
		t.Errorf("devices.list after the first Set:\n%s", list)
	}
}

func TestLoadRoundTrip(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/load", "load", nil)
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100 << 20)}}); err != nil {
		t.Fatal(err)
	}
	blob, err := json.Marshal(m.Paths())
	if err != nil {
		t.Fatal(err)
	}
	var saved map[string]string
	if err := json.Unmarshal(blob, &saved); err != nil {
		t.Fatal(err)
	}
	l, err := Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Paths(), m.Paths(); !mapsEqual(got, want) {
		t.Errorf("Load(Paths()).Paths() = %v, want %v", got, want)
	}
	pids, err := l.Pids()
	if err != nil || !slices.Contains(pids, p.pid()) {
		t.Errorf("loaded Pids() = %v, %v; want %d in it", pids, err, p.pid())
	}
	if err := l.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(200 << 20)}}); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Stats(); err != nil || st.MemoryLimit != 200<<20 {
		t.Errorf("original manager sees Stats() = %+v, %v after the loaded one set 200MiB", st, err)
	}
	t.Cleanup(func() { _ = l.Thaw() })
	if err := l.Freeze(); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || !paused {
		t.Errorf("original manager: Paused() = %v, %v after the loaded one froze", paused, err)
	}
	if err := l.Thaw(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OOMKillCount(); err != nil {
		t.Errorf("loaded OOMKillCount: %v", err)
	}

	// Bad saved state is refused.
	bad := []map[string]string{
		nil,
		{"memory": "relative/dir"},
		{"memory": "/etc/passwd"},
		{"memory": "/sys/fs/cgroup/memory/../../../etc"},
		{"memory": "/sys/fs/cgroup"},
	}
	if Mode() != ModeV2 {
		bad = append(bad, map[string]string{"": "/sys/fs/cgroup/unified/x"}) // v2-only state on a v1 host
	}
	for _, b := range bad {
		if _, err := Load(b); err == nil {
			t.Errorf("Load(%v) accepted", b)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestValidation checks that impossible values are refused before anything
// is written, by New and by Set.
func TestValidation(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/val", "val", nil)
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	const goodLimit = 80 << 20
	if err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(goodLimit)},
		Pids:   &specs.LinuxPids{Limit: i64(40)},
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		r    specs.LinuxResources
		want string // substring of the error
	}{
		{"negative memory", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-5)}}, "-5"},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(32 << 20)}}, strconv.Itoa(32 << 20)},
		{"negative swap", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(-7)}}, "-7"},
		{"reservation above limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(65 << 20)}}, "reservation"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}, "101"},
		{"cpu period", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(10)}}, "period 10"},
		{"cpu quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(5)}}, "quota 5"},
		{"cpu idle", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(2)}}, "idle 2"},
		{"cpuset syntax", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "3-1"}}, "3-1"},
		{"cpuset outside parent", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-4095"}}, "parent cgroup"},
		{"mems outside parent", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "63"}}, "parent cgroup"},
		{"blkio weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(5)}}, "weight 5"},
		{"blkio device", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1, Minor: 0}, Rate: 1}}}}, "-1:0"},
		{"hugepage size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}, "3MB"},
		{"device type", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "x", Access: "r"}}}, `"x"`},
		{"device access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Access: "rwx"}}}, "rwx"},
		{"unified key", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, "memory.max"},
	}
	if Mode() == ModeV1 {
		cases = append(cases, struct {
			name string
			r    specs.LinuxResources
			want string
		}{"unified on v1", specs.LinuxResources{Unified: map[string]string{"memory.max": "1"}}, "cgroup v1"})
	}
	memDir, pidsDir := m.Paths()["memory"], m.Paths()["pids"]
	memFile := "memory.limit_in_bytes"
	if Mode() == ModeV2 {
		memDir, pidsDir, memFile = m.Paths()[""], m.Paths()[""], "memory.max"
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Pair each bad value with a good pids change: nothing at all
			// may be written when validation fails.
			r := tc.r
			r.Pids = &specs.LinuxPids{Limit: i64(7)}
			err := m.Set(&r)
			if err == nil {
				t.Fatalf("Set accepted %s", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if got := readFile(t, pidsDir, "pids.max"); got != "40" {
				t.Errorf("pids.max = %s after a refused Set, want 40 (nothing may be written)", got)
			}
			if got := readUint(t, memDir, memFile); got != goodLimit {
				t.Errorf("%s = %d after a refused Set, want %d", memFile, got, goodLimit)
			}
			if _, err := New(parent+"/other", "other", &tc.r); err == nil {
				t.Errorf("New accepted %s", tc.name)
			}
		})
	}
}

func TestCPUAndCpuset(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/cpu", "cpu", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0", Mems: "0"}})
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{
		Shares: u64(512),
		Quota:  i64(50000),
		Period: u64(100000),
		Cpus:   "0",
		Mems:   "0",
		Idle:   i64(0),
	}}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	if Mode() == ModeV2 {
		if got := readFile(t, paths[""], "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %q", got)
		}
		if got := readFile(t, paths[""], "cpu.weight"); got == "100" {
			t.Errorf("cpu.weight not converted from shares: %q", got)
		}
		return
	}
	cpu := paths["cpu"]
	if got := readUint(t, cpu, "cpu.shares"); got != 512 {
		t.Errorf("cpu.shares = %d", got)
	}
	if got := readFile(t, cpu, "cpu.cfs_quota_us"); got != "50000" {
		t.Errorf("cpu.cfs_quota_us = %s", got)
	}
	if got := readFile(t, cpu, "cpu.cfs_period_us"); got != "100000" {
		t.Errorf("cpu.cfs_period_us = %s", got)
	}
	if got := readFile(t, paths["cpuset"], "cpuset.cpus"); got != "0" {
		t.Errorf("cpuset.cpus = %s", got)
	}
	if got := readFile(t, paths["cpuset"], "cpuset.mems"); got != "0" {
		t.Errorf("cpuset.mems = %s", got)
	}
	// Quota -1 lifts the cap.
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, cpu, "cpu.cfs_quota_us"); got != "-1" {
		t.Errorf("cpu.cfs_quota_us after -1 = %s", got)
	}
	// The process really is confined to CPU 0.
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(p.pid(), &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(0) {
		t.Errorf("affinity of pid %d: %d cpus, cpu0=%v", p.pid(), set.Count(), set.IsSet(0))
	}
}

// TestHybridUnified checks, on a hybrid host, that the unified directory
// receives hugetlb limits (when hugetlb lives in the v2 hierarchy) and the
// unified map.
func TestHybridUnified(t *testing.T) {
	requireRoot(t)
	if Mode() != ModeHybrid {
		t.Skip("hybrid hosts only")
	}
	parent := testParent(t)
	m := newManager(t, parent+"/uni", "uni", nil)
	p := start(t, nil, "sleep", "30")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	dir := m.Paths()[""]
	ctrls := readFile(t, dir, "cgroup.controllers")
	if !strings.Contains(ctrls, "hugetlb") {
		t.Skipf("hugetlb is not in the unified hierarchy here (%q)", ctrls)
	}
	if _, ok := m.Paths()["hugetlb"]; ok {
		t.Skip("hugetlb is a v1 controller here")
	}
	r := &specs.LinuxResources{
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Unified:        map[string]string{"hugetlb.1GB.max": strconv.Itoa(1 << 30)},
	}
	if !slices.Contains(hugeSizes(), "1GB") {
		r.Unified = map[string]string{"hugetlb.2MB.rsvd.max": strconv.Itoa(4 << 20)}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	if got := readUint(t, dir, "hugetlb.2MB.max"); got != 4<<20 {
		t.Errorf("hugetlb.2MB.max = %d", got)
	}
	for k, v := range r.Unified {
		if got := readFile(t, dir, k); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
	err := m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.max": "1"}})
	if err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("unified memory.max on a hybrid host without v2 memory: err = %v", err)
	}
}

func hugeSizes() []string {
	entries, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	var out []string
	for _, e := range entries {
		kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "hugepages-"), "kB"))
		if err != nil {
			continue
		}
		switch {
		case kb >= 1<<20:
			out = append(out, strconv.Itoa(kb>>20)+"GB")
		case kb >= 1<<10:
			out = append(out, strconv.Itoa(kb>>10)+"MB")
		default:
			out = append(out, strconv.Itoa(kb)+"KB")
		}
	}
	return out
}

// TestStatsAndOOMKill runs a memory hog under a small limit and checks that
// the OOM kill is counted.
func TestStatsAndOOMKill(t *testing.T) {
	parent := testParent(t)
	m := newManager(t, parent+"/oom", "oom", nil)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, []string{helperEnv + "=alloc"}, exe)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	const limit = 48 << 20
	if err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(limit), Swap: i64(limit)},
		Pids:   &specs.LinuxPids{Limit: i64(100)},
	}); err != nil {
		t.Fatal(err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Usage may still be 0: v1 does not move charges with a migrated task.
	if st.MemoryLimit != limit || st.PidsCurrent == 0 || st.PidsLimit != 100 || st.OOMKills != 0 {
		t.Errorf("Stats() before the hog = %+v", st)
	}
	if _, err := p.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 60*time.Second)
	if strings.Contains(p.out.String(), "survived") {
		t.Fatalf("the memory hog was not stopped by a %d-byte limit: %s", limit, p.out.String())
	}
	n, err := m.OOMKillCount()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("OOMKillCount() = %d after the hog died (%v)", n, p.err)
	}
	st, err = m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.OOMKills != n || st.MemoryMaxUsage < limit/2 || st.CPUUsage == 0 {
		t.Errorf("Stats() after the hog = %+v (oom count %d)", st, n)
	}
}

// TestV2CodePathOnUnifiedHierarchy drives the cgroup v2 code path (fs2
// manager, cgroup.freeze, eBPF device filter) against the cgroup2 mount of a
// hybrid host, whose only real controller may be hugetlb. On a pure v2 host
// the other tests already cover it.
func TestV2CodePathOnUnifiedHierarchy(t *testing.T) {
	requireRoot(t)
	if Mode() != ModeHybrid {
		t.Skip("hybrid hosts only")
	}
	parent := testParent(t)
	mm := &manager{mode: ModeV2, v2Root: hybridUnifiedRoot, v2Dir: hybridUnifiedRoot + parent + "/v2", needDevices: true}
	if err := mm.build(nil); err != nil {
		t.Fatal(err)
	}
	var m Manager = mm
	t.Cleanup(func() { teardown(t, m) })
	script := `read go; if (exec 3</dev/kmsg) 2>/dev/null; then echo kmsg=open; else echo kmsg=denied; fi; ` +
		`if echo x > /dev/null; then echo null=open; else echo null=denied; fi; ` +
		`i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.05; done`
	p := start(t, nil, "/bin/sh", "-c", script)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if got := procCgroups(t, p.pid())[""]; got != parent+"/v2" {
		t.Fatalf("unified cgroup of pid %d = %q", p.pid(), got)
	}
	if paths := m.Paths(); len(paths) != 1 || paths[""] != hybridUnifiedRoot+parent+"/v2" {
		t.Errorf("Paths() = %v", paths)
	}

	// The first Set attaches the eBPF device filter: default deny plus the
	// default devices.
	if err := m.Set(&specs.LinuxResources{}); err != nil {
		t.Fatalf("Set (devices via eBPF): %v", err)
	}
	if _, err := p.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "tick1", 10*time.Second)
	if out := p.out.String(); !strings.Contains(out, "kmsg=denied") || !strings.Contains(out, "null=open") {
		t.Errorf("eBPF device filter: %q, want kmsg denied and null open", out)
	}

	// A limit whose controller is missing fails with the file's name.
	err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}})
	if err == nil || !strings.Contains(err.Error(), "pids.max") {
		t.Errorf("pids limit without a v2 pids controller: err = %v, want one naming pids.max", err)
	}
	if slices.Contains(hugeSizes(), "2MB") && strings.Contains(readFile(t, mm.v2Dir, "cgroup.controllers"), "hugetlb") {
		if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}}); err != nil {
			t.Errorf("v2 hugetlb: %v", err)
		} else if got := readUint(t, mm.v2Dir, "hugetlb.2MB.max"); got != 2<<20 {
			t.Errorf("hugetlb.2MB.max = %d", got)
		}
	}

	// cgroup.freeze
	t.Cleanup(func() { _ = m.Thaw() })
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || !paused {
		t.Fatalf("Paused() after Freeze = %v, %v", paused, err)
	}
	// Lines written just before the freeze may still be in the pipe: let
	// the reader drain them before taking the reference point.
	time.Sleep(100 * time.Millisecond)
	before := p.out.String()
	time.Sleep(300 * time.Millisecond)
	if p.out.String() != before {
		t.Error("frozen process kept running")
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || paused {
		t.Fatalf("Paused() after Thaw = %v, %v", paused, err)
	}
	pids, err := m.Pids()
	if err != nil || !slices.Contains(pids, p.pid()) {
		t.Errorf("Pids() = %v, %v", pids, err)
	}
	if st, err := m.Stats(); err != nil {
		t.Logf("Stats() on a controller-less v2 dir: %v", err)
	} else if st.PidsCurrent == 0 {
		t.Errorf("Stats().PidsCurrent = 0 with a live process")
	}

	_ = p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mm.v2Dir); !os.IsNotExist(err) {
		t.Errorf("%s survives Destroy: %v", mm.v2Dir, err)
	}
}

// TestApplyWhileParentRemoved: a create's Apply racing the removal of its
// (empty) parent — what the last container's Destroy does to the default
// parent while a warm spare pre-forks the next one — makes the parent
// again: the parent gone between two mkdirs (ENOENT) or going while the
// v1 cpuset's values are copied from it (ENODEV).
func TestApplyWhileParentRemoved(t *testing.T) {
	parent := testParent(t)
	roots := hierarchyRoots(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// One removal round now and then, as each last Destroy does.
			for _, r := range roots {
				_ = unix.Rmdir(filepath.Join(r, parent)) // refused while a child lives
			}
			time.Sleep(300 * time.Microsecond)
		}
	}()
	var failed []error
	for i := range 150 {
		m, err := New(filepath.Join(parent, fmt.Sprintf("c%d", i)), "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(-1); err != nil {
			failed = append(failed, err)
		}
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
	}
	close(stop)
	<-done
	if len(failed) > 0 {
		t.Errorf("%d of 150 Applies failed, first: %v", len(failed), failed[0])
	}
}
