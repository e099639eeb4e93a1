package ocispec

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefault(t *testing.T) {
	s := Default()
	if !strings.HasPrefix(s.Version, "1.2.") {
		t.Errorf("ociVersion = %q, want 1.2.x", s.Version)
	}
	p := s.Process
	if !p.Terminal || !slices.Equal(p.Args, []string{"sh"}) || p.Cwd != "/" || p.User.UID != 0 || p.User.GID != 0 {
		t.Errorf("unexpected process: %+v", p)
	}
	if !p.NoNewPrivileges {
		t.Error("noNewPrivileges is false")
	}
	if len(p.Env) != 2 || !strings.HasPrefix(p.Env[0], "PATH=") || p.Env[1] != "TERM=xterm" {
		t.Errorf("env = %q", p.Env)
	}
	want := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	c := p.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !slices.Equal(set, want) {
			t.Errorf("%s = %q, want %q", name, set, want)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable/ambient should be empty: %q %q", c.Inheritable, c.Ambient)
	}
	if len(p.Rlimits) != 1 || p.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}) {
		t.Errorf("rlimits = %+v", p.Rlimits)
	}
	if s.Root.Path != "rootfs" || !s.Root.Readonly {
		t.Errorf("root = %+v", s.Root)
	}
	if s.Hostname != "berth" {
		t.Errorf("hostname = %q", s.Hostname)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination+":"+m.Type)
	}
	wantMounts := []string{"/proc:proc", "/dev:tmpfs", "/dev/pts:devpts", "/dev/shm:tmpfs", "/dev/mqueue:mqueue", "/sys:sysfs", "/sys/fs/cgroup:cgroup"}
	if !slices.Equal(dests, wantMounts) {
		t.Errorf("mounts = %q, want %q", dests, wantMounts)
	}
	if !slices.Contains(s.Mounts[5].Options, "ro") || !slices.Contains(s.Mounts[6].Options, "ro") {
		t.Error("/sys and /sys/fs/cgroup must be read-only")
	}
	var ns []string
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, string(n.Type))
	}
	if !slices.Equal(ns, []string{"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
		t.Errorf("namespaces = %q", ns)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("device cgroup = %+v, want deny-all", d)
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware"} {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Errorf("maskedPaths lacks %s", p)
		}
	}
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger"} {
		if !slices.Contains(s.Linux.ReadonlyPaths, p) {
			t.Errorf("readonlyPaths lacks %s", p)
		}
	}
}

func TestDefaultReturnsIndependentCopies(t *testing.T) {
	a, b := Default(), Default()
	a.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	a.Linux.MaskedPaths[0] = "/changed"
	a.Mounts[1].Options[0] = "changed"
	if b.Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" || b.Linux.MaskedPaths[0] == "/changed" || b.Mounts[1].Options[0] == "changed" {
		t.Fatal("Default() values share memory")
	}
	if a.Process.Capabilities.Effective[0] != "CAP_AUDIT_WRITE" {
		t.Fatal("capability sets share memory")
	}
}

func TestDefaultJSONRoundTrip(t *testing.T) {
	data, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(&back)
	if string(again) != string(data) {
		t.Fatalf("round trip changed the config:\n%s\n%s", data, again)
	}
	// The JSON keys users expect from `runc spec`-style output.
	for _, key := range []string{`"ociVersion"`, `"noNewPrivileges":true`, `"maskedPaths"`, `"readonlyPaths"`, `"access":"rwm"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestRootless(t *testing.T) {
	s := Default()
	Rootless(s)
	l := s.Linux
	var ns []string
	for _, n := range l.Namespaces {
		ns = append(ns, string(n.Type))
	}
	if !slices.Equal(ns, []string{"pid", "network", "ipc", "uts", "mount", "user"}) {
		t.Errorf("namespaces = %q", ns)
	}
	wantUID := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
	wantGID := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
	if !slices.Equal(l.UIDMappings, wantUID) || !slices.Equal(l.GIDMappings, wantGID) {
		t.Errorf("mappings = %+v %+v", l.UIDMappings, l.GIDMappings)
	}
	if l.Resources != nil {
		t.Errorf("resources = %+v, want nil", l.Resources)
	}
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/sys":
			if m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, "rbind") || !slices.Contains(m.Options, "ro") {
				t.Errorf("/sys mount = %+v, want a read-only rbind of /sys", m)
			}
		case "/sys/fs/cgroup":
			t.Errorf("cgroup mount kept: %+v", m)
		case "/dev/pts":
			for _, o := range m.Options {
				if strings.HasPrefix(o, "gid=") {
					t.Errorf("devpts keeps %s", o)
				}
			}
		}
	}
	// Idempotent.
	before, _ := json.Marshal(s)
	Rootless(s)
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Errorf("Rootless is not idempotent:\n%s\n%s", before, after)
	}
	// The devpts options of a fresh Default are untouched.
	if !slices.Contains(Default().Mounts[2].Options, "gid=5") {
		t.Error("Rootless modified the shared default devpts options")
	}
}

func TestRootlessKeepsOtherResources(t *testing.T) {
	s := Default()
	limit := int64(1 << 30)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	Rootless(s)
	if s.Linux.Resources == nil || s.Linux.Resources.Memory == nil || len(s.Linux.Resources.Devices) != 0 {
		t.Fatalf("resources = %+v", s.Linux.Resources)
	}
}

func TestRootlessNilLinux(t *testing.T) {
	s := &specs.Spec{}
	Rootless(s)
	if s.Linux == nil || len(s.Linux.Namespaces) != 1 || s.Linux.Namespaces[0].Type != specs.UserNamespace {
		t.Fatalf("linux = %+v", s.Linux)
	}
}

func TestNameTables(t *testing.T) {
	if n, ok := CapabilityNumber("CAP_SYS_ADMIN"); !ok || n != 21 {
		t.Errorf("CAP_SYS_ADMIN = %d %v", n, ok)
	}
	if n, ok := CapabilityNumber("CAP_CHECKPOINT_RESTORE"); !ok || n != 40 {
		t.Errorf("CAP_CHECKPOINT_RESTORE = %d %v", n, ok)
	}
	if _, ok := CapabilityNumber("cap_sys_admin"); ok {
		t.Error("lower-case capability accepted")
	}
	if len(CapabilityNames()) != 41 {
		t.Errorf("%d capability names", len(CapabilityNames()))
	}
	if r, ok := RlimitResource("RLIMIT_NOFILE"); !ok || r != 7 {
		t.Errorf("RLIMIT_NOFILE = %d %v", r, ok)
	}
	if f, ok := NamespaceCloneFlag(specs.NetworkNamespace); !ok || f != 0x40000000 {
		t.Errorf("network = %#x %v", f, ok)
	}
}
