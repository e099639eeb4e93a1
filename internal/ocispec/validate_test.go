package ocispec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func intp(v int) *int      { return &v }
func bundleWithRootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidateDefaultIsValid(t *testing.T) {
	dir := bundleWithRootfs(t)
	if err := Validate(Default(), dir); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	s := Default()
	Rootless(s)
	if err := Validate(s, dir); err != nil {
		t.Fatalf("Rootless(Default()) does not validate: %v", err)
	}
}

func TestValidateAcceptsValidVariants(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *specs.Spec, bundle string)
	}{
		{"old dev version", func(s *specs.Spec, _ string) { s.Version = "1.0.2-dev" }},
		{"absolute rootfs", func(s *specs.Spec, b string) { s.Root.Path = filepath.Join(b, "rootfs") }},
		{"rootfs symlink to directory outside bundle", func(s *specs.Spec, b string) {
			outside := t.TempDir()
			if err := os.Symlink(outside, filepath.Join(b, "link")); err != nil {
				t.Fatal(err)
			}
			s.Root.Path = "link"
		}},
		{"join namespace by path", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces[1] = specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}
		}},
		{"namespaced sysctls", func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{
				"net.ipv4.ip_forward":     "1",
				"net/ipv4/tcp_syncookies": "1",
				"kernel.shmmax":           "1024",
				"kernel.sem":              "250 32000 32 128",
				"fs.mqueue.msg_max":       "10",
				"kernel.domainname":       "example",
			}
		}},
		{"unlimited resources", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: i64(-1), Cpus: "0-3,5", Mems: "0"}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(-1)}
		}},
		{"swap equal to limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(1 << 20)}
		}},
		{"devices", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
				{Path: "/dev/loop9", Type: "b", Major: 7, Minor: 9},
				{Path: "/dev/fifo", Type: "p"},
			}
		}},
		{"hooks", func(s *specs.Spec, _ string) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: intp(5)}}}
		}},
		{"bind mount with propagation", func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/tmp", Options: []string{"rbind", "rslave", "ro"}})
			s.Linux.RootfsPropagation = "rprivate"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := bundleWithRootfs(t)
			s := Default()
			tc.mutate(s, dir)
			if err := Validate(s, dir); err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *specs.Spec, bundle string)
		field  string
		want   string // substring of the reason
	}{
		{"missing ociVersion", func(s *specs.Spec, _ string) { s.Version = "" }, "ociVersion", "missing"},
		{"malformed ociVersion", func(s *specs.Spec, _ string) { s.Version = "one" }, "ociVersion", "not a version"},
		{"unsupported ociVersion", func(s *specs.Spec, _ string) { s.Version = "2.0.0" }, "ociVersion", "supports runtime-spec 1.x"},
		{"missing root", func(s *specs.Spec, _ string) { s.Root = nil }, "root", "missing"},
		{"empty root path", func(s *specs.Spec, _ string) { s.Root.Path = "" }, "root.path", "empty"},
		{"rootfs missing", func(s *specs.Spec, _ string) { s.Root.Path = "nope" }, "root.path", "does not exist"},
		{"rootfs is a file", func(s *specs.Spec, b string) {
			writeFile(t, filepath.Join(b, "file"), "x")
			s.Root.Path = "file"
		}, "root.path", "is not a directory"},
		{"rootfs symlink to file", func(s *specs.Spec, b string) {
			writeFile(t, filepath.Join(b, "file"), "x")
			if err := os.Symlink("file", filepath.Join(b, "link")); err != nil {
				t.Fatal(err)
			}
			s.Root.Path = "link"
		}, "root.path", "symlink to something that is not a directory"},
		{"rootfs dangling symlink", func(s *specs.Spec, b string) {
			if err := os.Symlink("/nonexistent/berth", filepath.Join(b, "link")); err != nil {
				t.Fatal(err)
			}
			s.Root.Path = "link"
		}, "root.path", "symlink that cannot be resolved"},
		{"missing process", func(s *specs.Spec, _ string) { s.Process = nil }, "process", "missing"},
		{"empty args", func(s *specs.Spec, _ string) { s.Process.Args = nil }, "process.args", "empty"},
		{"empty program", func(s *specs.Spec, _ string) { s.Process.Args = []string{""} }, "process.args[0]", "empty program"},
		{"missing cwd", func(s *specs.Spec, _ string) { s.Process.Cwd = "" }, "process.cwd", "missing"},
		{"relative cwd", func(s *specs.Spec, _ string) { s.Process.Cwd = "tmp" }, "process.cwd", `"tmp" is relative`},
		{"env without =", func(s *specs.Spec, _ string) { s.Process.Env = append(s.Process.Env, "FOO") }, "process.env[2]", "KEY=value"},
		{"unknown rlimit", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS"})
		}, "process.rlimits[1].type", `unknown rlimit "RLIMIT_BOGUS"`},
		{"lower-case rlimit", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "nproc", Soft: 1, Hard: 1}}
		}, "process.rlimits[0].type", `did you mean "RLIMIT_NPROC"`},
		{"duplicate rlimit", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1})
		}, "process.rlimits[1].type", "more than once"},
		{"rlimit soft above hard", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}, "process.rlimits[0]", "soft limit 2048 is greater than hard limit 1024"},
		{"unknown capability", func(s *specs.Spec, _ string) {
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_FLY")
		}, "process.capabilities.effective[3]", `unknown capability "CAP_FLY"`},
		{"capability without prefix", func(s *specs.Spec, _ string) {
			s.Process.Capabilities.Ambient = []string{"net_admin"}
		}, "process.capabilities.ambient[0]", `did you mean "CAP_NET_ADMIN"`},
		{"oom score out of range", func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = intp(1001) }, "process.oomScoreAdj", "outside -1000..1000"},
		{"io priority class", func(s *specs.Spec, _ string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_FAST"}
		}, "process.ioPriority.class", "unknown class"},
		{"hostname without uts", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.UTSNamespace)
		}, "hostname", "no uts namespace"},
		{"domainname without uts", func(s *specs.Spec, _ string) {
			s.Hostname = ""
			s.Domainname = "example.com"
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.UTSNamespace)
		}, "domainname", "no uts namespace"},
		{"mount without destination", func(s *specs.Spec, _ string) { s.Mounts[0].Destination = "" }, "mounts[0].destination", "empty"},
		{"bind mount without source", func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Options: []string{"rbind"}})
		}, "mounts[7].source", "needs a source"},
		{"unknown mount propagation", func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/tmp", Options: []string{"rbind", "rprivat"}})
		}, "mounts[7].options[1]", `unknown mount propagation option "rprivat"`},
		{"unknown rootfs propagation", func(s *specs.Spec, _ string) { s.Linux.RootfsPropagation = "public" }, "linux.rootfsPropagation", `unknown propagation "public"`},
		{"relative hook path", func(s *specs.Spec, _ string) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}, {Path: "cleanup.sh"}}}
		}, "hooks.poststop[1].path", `"cleanup.sh" is relative`},
		{"empty hook path", func(s *specs.Spec, _ string) {
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{}}}
		}, "hooks.createContainer[0].path", "empty"},
		{"hook timeout zero", func(s *specs.Spec, _ string) {
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true", Timeout: intp(0)}}}
		}, "hooks.startContainer[0].timeout", "positive"},
		{"unknown namespace", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "net"})
		}, "linux.namespaces[6].type", `unknown namespace type "net"`},
		{"duplicate namespace", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "linux.namespaces[6].type", "pid namespace is listed twice (also linux.namespaces[0])"},
		{"namespace path relative", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces[1].Path = "proc/self/ns/net"
		}, "linux.namespaces[1].path", "must be absolute"},
		{"namespace path missing", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces[1].Path = "/nonexistent/ns/net"
		}, "linux.namespaces[1].path", "cannot open network namespace"},
		{"namespace path not a namespace", func(s *specs.Spec, b string) {
			s.Linux.Namespaces[1].Path = filepath.Join(b, "rootfs")
		}, "linux.namespaces[1].path", "is not a namespace file and cannot be joined as a network namespace"},
		{"namespace path of wrong type", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces[0].Path = "/proc/self/ns/net"
		}, "linux.namespaces[0].path", "is a network namespace, not a pid namespace"},
		{"uid mappings without user namespace", func(s *specs.Spec, _ string) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, "linux.uidMappings", "no user namespace"},
		{"gid mappings without user namespace", func(s *specs.Spec, _ string) {
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, "linux.gidMappings", "no user namespace"},
		{"new user namespace without mappings", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "linux.uidMappings", "needs uid mappings"},
		{"mapping of size zero", func(s *specs.Spec, _ string) {
			Rootless(s)
			s.Linux.GIDMappings[0].Size = 0
		}, "linux.gidMappings[0].size", "at least one id"},
		{"net sysctl without network namespace", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `linux.sysctl["net.ipv4.ip_forward"]`, "network namespace, which the container does not have"},
		{"ipc sysctl without ipc namespace", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
		}, `linux.sysctl["kernel.shmmax"]`, "ipc namespace"},
		{"mqueue sysctl without ipc namespace", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"fs.mqueue.queues_max": "1"}
		}, `linux.sysctl["fs.mqueue.queues_max"]`, "ipc namespace"},
		{"uts sysctl without uts namespace", func(s *specs.Spec, _ string) {
			s.Hostname = ""
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.UTSNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.hostname": "x"}
		}, `linux.sysctl["kernel.hostname"]`, "uts namespace"},
		{"host-wide sysctl", func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"vm.swappiness": "0"}
		}, `linux.sysctl["vm.swappiness"]`, "not namespaced"},
		{"device with bad type", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "x"}}
		}, "linux.devices[0].type", `"x" is not a device type`},
		{"device with relative path", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/x", Type: "c", Major: 1, Minor: 3}}
		}, "linux.devices[0].path", "not an absolute path"},
		{"device with negative number", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: -1, Minor: 3}}
		}, "linux.devices[0]", "negative device number"},
		{"duplicate device", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: 1, Minor: 3}, {Path: "/dev//x", Type: "c", Major: 1, Minor: 5}}
		}, "linux.devices[1].path", "also created by linux.devices[0]"},
		{"device cgroup bad type", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Type: "p", Access: "r"})
		}, "linux.resources.devices[1].type", "not a device cgroup type"},
		{"device cgroup bad access", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Devices[0].Access = "rwx"
		}, "linux.resources.devices[0].access", "only contain r, w and m"},
		{"negative memory limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(-5)}
		}, "linux.resources.memory.limit", "-5 is negative (use -1 for unlimited)"},
		{"swap below memory limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(200 << 20), Swap: i64(100 << 20)}
		}, "linux.resources.memory.swap", "less than memory.limit"},
		{"reservation above limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(100 << 20), Reservation: i64(200 << 20)}
		}, "linux.resources.memory.reservation", "greater than memory.limit"},
		{"swappiness above 100", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Swappiness: u64(101)}
		}, "linux.resources.memory.swappiness", "outside 0..100"},
		{"cpu quota with zero period", func(s *specs.Spec, _ string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: i64(50000), Period: u64(0)}
		}, "linux.resources.cpu.period", "needs a non-zero period"},
		{"negative cpu quota", func(s *specs.Spec, _ string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: i64(-2)}
		}, "linux.resources.cpu.quota", "negative"},
		{"bad cpuset", func(s *specs.Spec, _ string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "0-a"}
		}, "linux.resources.cpu.cpus", "not a number or range"},
		{"backwards cpuset range", func(s *specs.Spec, _ string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "3-1"}
		}, "linux.resources.cpu.cpus", "backwards"},
		{"bad mems", func(s *specs.Spec, _ string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Mems: "0,,1"}
		}, "linux.resources.cpu.mems", "not a number or range"},
		{"cpu idle", func(s *specs.Spec, _ string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Idle: i64(2)}
		}, "linux.resources.cpu.idle", "must be 0 or 1"},
		{"negative pids limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(-3)}
		}, "linux.resources.pids.limit", "negative"},
		{"blkio weight", func(s *specs.Spec, _ string) {
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: u16(5)}
		}, "linux.resources.blockIO.weight", "outside 10..1000"},
		{"unified key", func(s *specs.Spec, _ string) {
			s.Linux.Resources.Unified = map[string]string{"../memory.max": "1"}
		}, `linux.resources.unified["../memory.max"]`, "not a cgroup v2 interface file"},
		{"relative masked path", func(s *specs.Spec, _ string) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "proc/kcore")
		}, "linux.maskedPaths[12]", "not an absolute path"},
		{"relative readonly path", func(s *specs.Spec, _ string) {
			s.Linux.ReadonlyPaths = []string{"proc/sys"}
		}, "linux.readonlyPaths[0]", "not an absolute path"},
		{"net devices without network namespace", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}}
		}, "linux.netDevices", "no network namespace"},
		{"time offsets without time namespace", func(s *specs.Spec, _ string) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, "linux.timeOffsets", "no time namespace"},
		{"time offsets on joined time namespace", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace, Path: "/proc/self/ns/time"})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, "linux.timeOffsets", "joined by path"},
		{"time offset for unknown clock", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 10}}
		}, `linux.timeOffsets["realtime"]`, "unknown clock"},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			dir := bundleWithRootfs(t)
			s := Default()
			tc.mutate(s, dir)
			err := Validate(s, dir)
			if err == nil {
				t.Fatalf("Validate accepted the config; want an error on %s containing %q", tc.field, tc.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is a %T, want *ValidationError", err, err)
			}
			if ve.Field != tc.field {
				t.Errorf("field = %q, want %q (error: %v)", ve.Field, tc.field, err)
			}
			if !strings.Contains(ve.Reason, tc.want) {
				t.Errorf("reason = %q, want it to contain %q", ve.Reason, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "invalid config.json: "+tc.field+": ") {
				t.Errorf("message %q does not start with the field", err.Error())
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil, t.TempDir()); err == nil {
		t.Fatal("Validate(nil) returned nil")
	}
}

func withoutNS(ns []specs.LinuxNamespace, t specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, n := range ns {
		if n.Type != t {
			out = append(out, n)
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
