package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestPureCgroupV2Layout runs berth-runtime in a private mount namespace
// whose /sys/fs/cgroup is the host's cgroup2 hierarchy alone, so the
// runtime sees a pure cgroup v2 host (this machine is a v1+v2 hybrid): it
// exercises the v2 paths end to end — detection, CLONE_INTO_CGROUP, the
// cgroup2 mount in the container, the eBPF device filter, cgroup.freeze
// and removal. Only the controllers the host gives cgroup2 (hugetlb here)
// can be limited this way.
func TestPureCgroupV2Layout(t *testing.T) {
	t.Parallel()
	fixture := newRT(t) // builds the binary, checks root
	wrapper := filepath.Join(t.TempDir(), "berth-runtime-v2")
	script := "#!/bin/sh\nexec unshare -m sh -c 'mount --make-rprivate / && umount -l /sys/fs/cgroup && " +
		"mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"' " + fixture.bin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRTWith(t, wrapper)
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err != nil {
		t.Fatalf("no cgroup2 hierarchy at /sys/fs/cgroup/unified on this host: %v", err)
	}
	var cg string
	b := shBundle(t, "cat /proc/self/cgroup | grep '^0::'; mount | grep ' /sys/fs/cgroup '; cat /dev/denied 2>&1 | head -1; sleep 100", func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/denied", Type: "c", Major: 1, Minor: 4})
		cg = s.Linux.CgroupsPath
	})
	id := r.id("v2")
	out := tempFile(t)
	if err := r.cmdWithStdout(out, "run", "-d", "-b", b, id).Run(); err != nil {
		t.Fatalf("run -d: %v %s", err, readBack(out))
	}
	text := waitFile(t, out.Name(), "ermitted")
	if !strings.Contains(text, "0::/\n") || !strings.Contains(text, "type cgroup2") || !strings.Contains(text, "Operation not permitted") {
		t.Fatalf("container on a v2 layout:\n%s", text)
	}
	dir := "/sys/fs/cgroup/unified" + cg
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("container cgroup missing: %v", err)
	}
	r.must("pause", id)
	if got := readTrim(t, dir+"/cgroup.freeze"); got != "1" {
		t.Errorf("cgroup.freeze = %s after pause", got)
	}
	if st := r.state(id); st.Status != "paused" {
		t.Errorf("state after pause: %s", st.Status)
	}
	r.must("resume", id)
	if got := readTrim(t, dir+"/cgroup.freeze"); got != "0" {
		t.Errorf("cgroup.freeze = %s after resume", got)
	}
	r.must("delete", "-f", id)
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("v2 cgroup left behind")
	}
}

// TestPureCgroupV1Layout hides the cgroup2 hierarchy in a private mount
// namespace, so the runtime sees a pure cgroup v1 host.
func TestPureCgroupV1Layout(t *testing.T) {
	t.Parallel()
	base := newRT(t)
	wrapper := filepath.Join(t.TempDir(), "berth-runtime-v1")
	script := "#!/bin/sh\nexec unshare -m sh -c 'mount --make-rprivate / && umount -l /sys/fs/cgroup/unified && exec \"$0\" \"$@\"' " +
		base.bin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRTWith(t, wrapper)
	limit := int64(12)
	out, errs, code := r.run(shBundle(t, "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/pids.max; grep -c '^0::' /proc/self/cgroup", func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	}))
	if code != 0 || strings.Contains(out, "unified") || !strings.Contains(out, "memory\n") || !strings.Contains(out, "\n12\n") {
		t.Fatalf("container on a v1 layout: %d %q %s", code, out, errs)
	}
}
