//go:build linux

package spec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// gen runs Generate on a fake host with a fake rootfs; mutate adjusts the
// input.
func gen(t *testing.T, mutate func(in *Input)) (*specs.Spec, error) {
	t.Helper()
	useFakeHost(t, nil)
	in := Input{
		ID:         testID,
		Config:     &container.Config{Cmd: []string{"sh"}},
		HostConfig: &container.HostConfig{},
		Rootfs:     fakeRootfs(t, alpinePasswd, alpineGroup),
	}
	if mutate != nil {
		mutate(&in)
	}
	return Generate(context.Background(), in)
}

func mustGen(t *testing.T, mutate func(in *Input)) *specs.Spec {
	t.Helper()
	s, err := gen(t, mutate)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func wantInvalid(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil || !errdefs.Is(err, errdefs.InvalidArgument) || !strings.Contains(err.Error(), substr) {
		t.Fatalf("err = %v, want invalid argument containing %q", err, substr)
	}
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestReplaceOrAppendEnv(t *testing.T) {
	got := replaceOrAppendEnv(
		[]string{"PATH=/default", "HOSTNAME=abc", "TERM=xterm"},
		[]string{"PATH=/image", "FOO=1", "TERM", "HOSTNAME=mine", "FOO=2", "GONE"})
	want := []string{"PATH=/image", "HOSTNAME=mine", "FOO=2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestProcess(t *testing.T) {
	s := mustGen(t, func(in *Input) {
		in.Config.Entrypoint = []string{"/entry"}
		in.Config.Cmd = []string{"a", "b"}
		in.Config.Tty = true
		in.Config.Env = []string{"PATH=/custom"}
		in.Config.WorkingDir = "/deep/work/dir/"
		in.HostConfig.ConsoleSize = [2]uint{40, 120}
		umask := uint32(0o027)
		in.HostConfig.Umask = &umask
	})
	p := s.Process
	if !reflect.DeepEqual(p.Args, []string{"/entry", "a", "b"}) {
		t.Errorf("args = %v", p.Args)
	}
	if !reflect.DeepEqual(p.Env, []string{"PATH=/custom", "HOSTNAME=4f1c2b8a9d3e", "TERM=xterm"}) {
		t.Errorf("env = %v", p.Env)
	}
	if len(p.Capabilities.Effective) != len(DefaultCapabilities) || len(p.Capabilities.Permitted) != len(DefaultCapabilities) {
		t.Errorf("root capabilities = %+v", p.Capabilities)
	}
	if c := mustGen(t, func(in *Input) { in.Config.User = "1000" }).Process.Capabilities; len(c.Bounding) != len(DefaultCapabilities) || c.Effective != nil || c.Permitted != nil {
		t.Errorf("non-root capabilities = %+v, want the bounding set only", c)
	}
	if p.Cwd != "/deep/work/dir" || !p.Terminal || p.ConsoleSize == nil || p.ConsoleSize.Width != 120 || *p.User.Umask != 0o027 {
		t.Errorf("process = %+v", p)
	}
	if fi, err := os.Stat(filepath.Join(s.Root.Path, "deep/work/dir")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("working directory not created: %v %v", fi, err)
	}

	for _, tc := range []struct {
		name   string
		mutate func(in *Input)
		err    string
	}{
		{"no command", func(in *Input) { in.Config.Cmd = nil }, "no command specified"},
		{"relative workdir", func(in *Input) { in.Config.WorkingDir = "rel" }, "needs to be an absolute path"},
		{"bad ulimit", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}
		}, "invalid ulimit type: bogus"},
		{"soft above hard", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 10, Hard: 1}}
		}, "soft limit must be less than or equal to hard limit"},
		{"oom score", func(in *Input) { in.HostConfig.OomScoreAdj = 1001 }, "range for oom score adj"},
		{"unknown user", func(in *Input) { in.Config.User = "xyz" }, "unable to find user xyz"},
		{"bad security opt", func(in *Input) { in.HostConfig.SecurityOpt = []string{"bogus"} }, "invalid --security-opt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gen(t, tc.mutate)
			wantInvalid(t, err, tc.err)
		})
	}

	// A file where the working directory should be is the user's error.
	_, err := gen(t, func(in *Input) {
		if err := os.WriteFile(filepath.Join(in.Rootfs, "file"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		in.Config.WorkingDir = "/file/sub"
	})
	wantInvalid(t, err, "working directory")
}

func TestHostnameAndCgroupsPath(t *testing.T) {
	s := mustGen(t, nil)
	if s.Hostname != "4f1c2b8a9d3e" || s.Linux.CgroupsPath != "/berth/"+testID {
		t.Errorf("hostname %q, cgroups path %q", s.Hostname, s.Linux.CgroupsPath)
	}
	s = mustGen(t, func(in *Input) { in.HostConfig.NetworkMode = "host" })
	if s.Hostname != "dockerhost" {
		t.Errorf("host network hostname = %q, want the host's", s.Hostname)
	}
	s = mustGen(t, func(in *Input) { in.CgroupsPath = "/x/y"; in.HostConfig.CgroupParent = "/p" })
	if s.Linux.CgroupsPath != "/x/y" {
		t.Errorf("cgroups path = %q", s.Linux.CgroupsPath)
	}
	s = mustGen(t, func(in *Input) { in.HostConfig.CgroupParent = "/p" })
	if s.Linux.CgroupsPath != "/p/"+testID {
		t.Errorf("cgroups path = %q", s.Linux.CgroupsPath)
	}
}

func nsList(s *specs.Spec) string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		e := string(n.Type)
		if n.Path != "" {
			e += "=" + n.Path
		}
		out = append(out, e)
	}
	return strings.Join(out, " ")
}

func TestNamespaces(t *testing.T) {
	lookup := func(ref string, typ specs.LinuxNamespaceType) (string, error) {
		if ref == "missing" {
			return "", errdefs.Newf(errdefs.NotFound, "no such container: %s", ref)
		}
		return "/proc/42/ns/" + string(typ), nil
	}
	tests := []struct {
		name     string
		hc       container.HostConfig
		netns    string
		cgroupV2 bool
		want     string
		err      string
	}{
		{name: "default v1 host", want: "mount network uts pid ipc"},
		{name: "default v2 host", cgroupV2: true, want: "mount network uts pid ipc cgroup"},
		{name: "cgroupns private on v1", hc: container.HostConfig{CgroupnsMode: "private"}, want: "mount network uts pid ipc cgroup"},
		{name: "cgroupns host on v2", cgroupV2: true, hc: container.HostConfig{CgroupnsMode: "host"}, want: "mount network uts pid ipc"},
		{name: "bridge with a netns path", hc: container.HostConfig{NetworkMode: "bridge"}, netns: "/run/netns/x", want: "mount network=/run/netns/x uts pid ipc"},
		{name: "host modes", hc: container.HostConfig{NetworkMode: "host", PidMode: "host", IpcMode: "host", UTSMode: "host", UsernsMode: "host"}, netns: "/ignored", want: "mount"},
		{name: "container modes", hc: container.HostConfig{NetworkMode: "container:web", PidMode: "container:web", IpcMode: "container:db"},
			want: "mount network=/proc/42/ns/network uts pid=/proc/42/ns/pid ipc=/proc/42/ns/ipc"},
		{name: "ipc none and shareable", hc: container.HostConfig{IpcMode: "none"}, want: "mount network uts pid ipc"},
		{name: "missing container", hc: container.HostConfig{PidMode: "container:missing"}, err: "no such container"},
		{name: "bad ipc", hc: container.HostConfig{IpcMode: "weird"}, err: "invalid IPC mode"},
		{name: "bad pid", hc: container.HostConfig{PidMode: "weird"}, err: "invalid PID mode"},
		{name: "bad uts", hc: container.HostConfig{UTSMode: "weird"}, err: "invalid UTS mode"},
		{name: "bad cgroupns", hc: container.HostConfig{CgroupnsMode: "weird"}, err: "invalid cgroup namespace mode"},
		{name: "userns private", hc: container.HostConfig{UsernsMode: "private"}, err: "invalid USER mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			useFakeHost(t, func(h *hostInfo) { h.cgroupV2 = tc.cgroupV2 })
			hc := tc.hc
			s, err := Generate(context.Background(), Input{ID: testID, Config: &container.Config{Cmd: []string{"sh"}}, HostConfig: &hc,
				NetNSPath: tc.netns, ContainerNS: lookup})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := nsList(s); got != tc.want {
				t.Errorf("namespaces = %q, want %q", got, tc.want)
			}
		})
	}
	// container:<ref> without a resolver.
	useFakeHost(t, nil)
	_, err := Generate(context.Background(), Input{ID: testID, Config: &container.Config{Cmd: []string{"sh"}},
		HostConfig: &container.HostConfig{NetworkMode: "container:x"}})
	if !errdefs.Is(err, errdefs.NotImplemented) {
		t.Errorf("no resolver: err = %v", err)
	}
}

func TestSysctls(t *testing.T) {
	s := mustGen(t, func(in *Input) {
		in.HostConfig.Sysctls = map[string]string{"net.ipv4.ping_group_range": "1 1", "fs.mqueue.msg_max": "20"}
	})
	want := map[string]string{"net.ipv4.ping_group_range": "1 1", "net.ipv4.ip_unprivileged_port_start": "0", "fs.mqueue.msg_max": "20"}
	if !reflect.DeepEqual(s.Linux.Sysctl, want) {
		t.Errorf("sysctl = %v", s.Linux.Sysctl)
	}
	s = mustGen(t, func(in *Input) {
		in.Config.Domainname = "example.test"
		in.HostConfig.Sysctls = map[string]string{"kernel.domainname": "override"}
	})
	if s.Linux.Sysctl["kernel.domainname"] != "override" || s.Domainname != "" {
		t.Errorf("domainname: sysctl %v, field %q", s.Linux.Sysctl, s.Domainname)
	}
	_, err := gen(t, func(in *Input) { in.Config.Domainname = "x"; in.HostConfig.UTSMode = "host" })
	wantInvalid(t, err, "domainname and the host UTS namespace")
	if s := mustGen(t, func(in *Input) { in.HostConfig.NetworkMode = "host" }); s.Linux.Sysctl != nil {
		t.Errorf("host network gets sysctls %v", s.Linux.Sysctl)
	}
	for _, tc := range []struct {
		hc  container.HostConfig
		key string
		err string
	}{
		{container.HostConfig{NetworkMode: "host"}, "net.core.somaxconn", "not allowed in host network namespace"},
		{container.HostConfig{IpcMode: "host"}, "kernel.shmmax", "hosts ipc namespace"},
		{container.HostConfig{}, "kernel.hostname", "conflicts with the OCI \"hostname\" field"},
		{container.HostConfig{}, "vm.swappiness", "not in a separate kernel namespace"},
		{container.HostConfig{UTSMode: "host"}, "kernel.domainname", "host UTS namespace"},
	} {
		hc := tc.hc
		hc.Sysctls = map[string]string{tc.key: "1"}
		_, err := gen(t, func(in *Input) { in.HostConfig = &hc })
		wantInvalid(t, err, tc.err)
	}
}

func TestMounts(t *testing.T) {
	src := t.TempDir()
	s := mustGen(t, func(in *Input) {
		in.HostConfig.Binds = []string{src + ":/data/sub:ro", src + ":/data", "named:/vol"}
		in.HostConfig.Mounts = []mount.Mount{
			{Type: mount.TypeTmpfs, Target: "/tmpfs", ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1000, Options: [][]string{{"exec"}, {"uid", "1000"}}}},
			{Type: mount.TypeBind, Source: src, Target: "/nr", BindOptions: &mount.BindOptions{NonRecursive: true, Propagation: mount.PropagationRSlave}},
			{Type: mount.TypeVolume, Source: "other", Target: "/other"},
		}
		in.HostConfig.Tmpfs = map[string]string{"/dev": "size=1m"}
		in.Mounts = []specs.Mount{{Destination: "/vol", Type: "bind", Source: "/var/lib/vol", Options: []string{"rbind"}}, {Destination: "/other", Type: "bind", Source: "/o"}}
		in.HostsPath = "/h/hosts"
		in.HostConfig.IpcMode = "none"
	})
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	// /dev is user-mounted: every default under /dev goes, and so does
	// /dev/shm for --ipc none; user mounts are in dockerd's order (binds
	// and volumes, network files, tmpfs), then sorted by depth.
	want := []string{"/proc", "/sys", "/sys/fs/cgroup", "/data", "/nr", "/vol", "/other", "/dev", "/tmpfs", "/data/sub", "/etc/hosts"}
	if !reflect.DeepEqual(dests, want) {
		t.Errorf("mounts = %v\nwant     %v", dests, want)
	}
	if m := mountAt(s, "/tmpfs"); !reflect.DeepEqual(m.Options, []string{"nosuid", "nodev", "rprivate", "ro", "size=1000", "exec", "uid=1000"}) {
		t.Errorf("tmpfs options = %v", m.Options)
	}
	if m := mountAt(s, "/nr"); !reflect.DeepEqual(m.Options, []string{"bind", "rslave"}) || s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("non-recursive bind = %v, root propagation %q", m.Options, s.Linux.RootfsPropagation)
	}
	if m := mountAt(s, "/data/sub"); !reflect.DeepEqual(m.Options, []string{"rbind", "ro", "rro", "rprivate"}) {
		t.Errorf("ro bind = %v", m.Options)
	}

	// Read-only rootfs: network files read-only too; privileged /sys rw.
	s = mustGen(t, func(in *Input) {
		in.HostConfig.ReadonlyRootfs = true
		in.HostConfig.Privileged = true
		in.ResolvConfPath = "/r"
	})
	if m := mountAt(s, "/etc/resolv.conf"); !slices.Contains(m.Options, "ro") {
		t.Errorf("resolv.conf = %v", m.Options)
	}
	if m := mountAt(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("privileged /sys = %v", m.Options)
	}
	s = mustGen(t, func(in *Input) {
		in.HostConfig.SecurityOpt = []string{"writable-cgroups=true"}
		in.HostConfig.IpcMode = "host"
	})
	if m := mountAt(s, "/sys/fs/cgroup"); slices.Contains(m.Options, "ro") {
		t.Errorf("writable cgroups = %v", m.Options)
	}
	if m := mountAt(s, "/dev/shm"); m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("ipc host /dev/shm = %+v", m)
	}

	for _, tc := range []struct {
		name   string
		mutate func(hc *container.HostConfig)
		err    string
	}{
		{"unresolved volume", func(hc *container.HostConfig) { hc.Binds = []string{"vol:/data"} }, "is not resolved"},
		{"anonymous volume", func(hc *container.HostConfig) { hc.Binds = []string{"/data"} }, "is not resolved"},
		{"relative destination", func(hc *container.HostConfig) { hc.Binds = []string{"/src:dst"} }, "must be absolute"},
		{"root destination", func(hc *container.HostConfig) { hc.Binds = []string{"/src:/"} }, "destination can't be '/'"},
		{"bad mode", func(hc *container.HostConfig) { hc.Binds = []string{"/src:/dst:rx"} }, "invalid mode: rx"},
		{"two modes", func(hc *container.HostConfig) { hc.Binds = []string{"/src:/dst:ro,rw"} }, "invalid mode: ro,rw"},
		{"too many colons", func(hc *container.HostConfig) { hc.Binds = []string{"/a:/b:ro:x"} }, "invalid volume specification"},
		{"duplicate", func(hc *container.HostConfig) {
			hc.Binds = []string{"/a:/x"}
			hc.Tmpfs = map[string]string{"/x": ""}
		}, "Duplicate mount point: /x"},
		{"bad tmpfs option", func(hc *container.HostConfig) { hc.Tmpfs = map[string]string{"/x": "bogus=1"} }, "invalid tmpfs option"},
		{"missing bind source", func(hc *container.HostConfig) {
			hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/nonexistent/berth/x", Target: "/x"}}
		}, "bind source path does not exist"},
		{"tmpfs with source", func(hc *container.HostConfig) {
			hc.Mounts = []mount.Mount{{Type: mount.TypeTmpfs, Source: "/x", Target: "/x"}}
		}, "must not be specified"},
		{"negative shm", func(hc *container.HostConfig) { hc.ShmSize = -1 }, "SHM size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gen(t, func(in *Input) { tc.mutate(in.HostConfig) })
			wantInvalid(t, err, tc.err)
		})
	}
}

func TestBindPropagationNeedsSharedSource(t *testing.T) {
	for _, tc := range []struct {
		optional, prop string
		err            string
	}{
		{"shared:5", "rshared", ""},
		{"master:3", "rshared", "is not a shared mount"},
		{"master:3", "rslave", ""},
		{"", "slave", "is not a shared or slave mount"},
		{"", "rprivate", ""},
	} {
		t.Run(tc.optional+"/"+tc.prop, func(t *testing.T) {
			useFakeHost(t, nil)
			sourceMount = func(string) (string, string, error) { return "/srv", tc.optional, nil }
			_, err := Generate(context.Background(), Input{ID: testID, Config: &container.Config{Cmd: []string{"sh"}},
				HostConfig: &container.HostConfig{Binds: []string{"/srv/x:/x:" + tc.prop}}})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errdefs.Is(err, errdefs.FailedPrecondition) || !strings.Contains(err.Error(), "path /srv/x is mounted on /srv but it "+tc.err) {
				t.Fatalf("err = %v, want failed precondition %q", err, tc.err)
			}
		})
	}
}

func TestTmpfsOptions(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "noexec,nosuid,nodev,rprivate"},
		{"exec,size=1g,size=2g", "nosuid,nodev,rprivate,exec,size=2g"},
		{"ro,mode=700,shared,defaults", "noexec,nosuid,nodev,ro,mode=700,shared"},
	} {
		got, err := tmpfsOptions(tc.in)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("%q: got %v (%v), want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestPaths(t *testing.T) {
	useFakeHost(t, func(h *hostInfo) { h.thermalThrottle = []string{"/sys/devices/system/cpu/cpu0/thermal_throttle"} })
	s, err := Generate(context.Background(), Input{ID: testID, Config: &container.Config{Cmd: []string{"sh"}}, HostConfig: &container.HostConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/sys/devices/system/cpu/cpu0/thermal_throttle") || !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") ||
		!reflect.DeepEqual(s.Linux.ReadonlyPaths, DefaultReadonlyPaths) {
		t.Errorf("masked %v, readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, mutate := range []func(in *Input){
		func(in *Input) { in.HostConfig.SecurityOpt = []string{"systempaths=unconfined"} },
		func(in *Input) { in.HostConfig.MaskedPaths = []string{}; in.HostConfig.ReadonlyPaths = []string{} },
		func(in *Input) { in.HostConfig.Privileged = true },
	} {
		s := mustGen(t, mutate)
		if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
			t.Errorf("masked %v, readonly %v, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
		}
	}
	s = mustGen(t, func(in *Input) { in.HostConfig.MaskedPaths = []string{"/proc/x"} })
	if !reflect.DeepEqual(s.Linux.MaskedPaths, []string{"/proc/x"}) {
		t.Errorf("masked = %v", s.Linux.MaskedPaths)
	}
}

func TestDevices(t *testing.T) {
	s := mustGen(t, func(in *Input) {
		in.HostConfig.Devices = []container.DeviceMapping{
			{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"},
			{PathOnHost: "/dev/zero"},
		}
		in.HostConfig.DeviceCgroupRules = []string{"c 4:* rwm", "a *:* m"}
	})
	if len(s.Linux.Devices) != 2 || s.Linux.Devices[0].Path != "/dev/mynull" || s.Linux.Devices[0].Major != 1 || s.Linux.Devices[0].Minor != 3 ||
		s.Linux.Devices[1].Path != "/dev/zero" || *s.Linux.Devices[1].FileMode == 0 {
		t.Errorf("devices = %+v", s.Linux.Devices)
	}
	rules := s.Linux.Resources.Devices
	n := len(defaultDeviceRules())
	if len(rules) != n+4 || rules[n].Access != "rw" || *rules[n].Major != 1 || *rules[n+2].Major != 4 || rules[n+2].Minor != nil || rules[n+3].Type != "a" {
		t.Errorf("rules = %+v", rules[n:])
	}

	// A directory of devices.
	dir := t.TempDir()
	if err := os.Symlink("/dev/null", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s = mustGen(t, func(in *Input) {
		in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: filepath.Join(dir, "link"), PathInContainer: "/dev/l"}}
	})
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Major != 1 {
		t.Errorf("symlinked device = %+v", s.Linux.Devices)
	}

	for _, tc := range []struct {
		dm   container.DeviceMapping
		rule string
		err  string
	}{
		{dm: container.DeviceMapping{PathOnHost: "/etc/hostname"}, err: "error gathering device information"},
		{dm: container.DeviceMapping{PathOnHost: "/dev/null", CgroupPermissions: "rwx"}, err: "invalid device mode"},
		{rule: "c 1:3", err: "invalid device cgroup rule format"},
	} {
		_, err := gen(t, func(in *Input) {
			if tc.dm.PathOnHost != "" {
				in.HostConfig.Devices = []container.DeviceMapping{tc.dm}
			}
			if tc.rule != "" {
				in.HostConfig.DeviceCgroupRules = []string{tc.rule}
			}
		})
		wantInvalid(t, err, tc.err)
	}
}

func TestResources(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	s := mustGen(t, func(in *Input) {
		in.HostConfig.Resources = container.Resources{
			Memory: 64 << 20, MemorySwap: -1, CPUPeriod: 50000, CPUQuota: 25000, CPUShares: 1,
			PidsLimit: i(-1), MemorySwappiness: i(-1), CpusetMems: "0",
			BlkioWeightDevice:    []*blkiodev.WeightDevice{{Path: "/dev/null", Weight: 100}},
			BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 1 << 20}},
			BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{{Path: "/dev/zero", Rate: 10}},
		}
	})
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || r.Memory.Swap != nil || r.Memory.Swappiness != nil {
		t.Errorf("memory = %+v", r.Memory)
	}
	if *r.CPU.Period != 50000 || *r.CPU.Quota != 25000 || *r.CPU.Shares != 2 || r.CPU.Mems != "0" {
		t.Errorf("cpu = %+v", r.CPU)
	}
	if r.Pids != nil {
		t.Errorf("pids = %+v, want unlimited", r.Pids)
	}
	b := r.BlockIO
	if b.Weight != nil || len(b.WeightDevice) != 1 || b.WeightDevice[0].Major != 1 || b.WeightDevice[0].Minor != 3 ||
		b.ThrottleReadBpsDevice[0].Rate != 1<<20 || b.ThrottleWriteIOPSDevice[0].Minor != 5 {
		t.Errorf("blkio = %+v", b)
	}
	if s := mustGen(t, nil); s.Linux.Resources.Memory != nil || s.Linux.Resources.CPU != nil || s.Linux.Resources.BlockIO != nil {
		t.Errorf("no limits asked, got %+v", s.Linux.Resources)
	}

	for _, tc := range []struct {
		r   container.Resources
		err string
	}{
		{container.Resources{Memory: 1 << 20}, "Minimum memory limit allowed is 6MB"},
		{container.Resources{MemorySwap: 100 << 20}, "always set the Memory limit"},
		{container.Resources{Memory: 100 << 20, MemorySwap: 50 << 20}, "memoryswap limit should be larger"},
		{container.Resources{MemoryReservation: 1}, "Minimum memory reservation"},
		{container.Resources{Memory: 10 << 20, MemoryReservation: 20 << 20}, "can not be less than memory reservation"},
		{container.Resources{MemorySwappiness: i(101)}, "swappiness range is 0-100"},
		{container.Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, "Nano CPUs and CPU Period"},
		{container.Resources{NanoCPUs: 1e9, CPUQuota: 100000}, "Nano CPUs and CPU Quota"},
		{container.Resources{NanoCPUs: 5e9}, "there are only 4 CPUs available"},
		{container.Resources{CPUPeriod: 10}, "CPU cfs period"},
		{container.Resources{CPUQuota: 10}, "CPU cfs quota"},
		{container.Resources{CPUShares: -1}, "Invalid CPU shares"},
		{container.Resources{CpusetCpus: "0-x"}, "cpuset cpus"},
		{container.Resources{BlkioWeight: 5}, "Range of blkio weight"},
		{container.Resources{BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: "/nonexistent", Rate: 1}}}, "invalid block device"},
	} {
		r := tc.r
		_, err := gen(t, func(in *Input) { in.HostConfig.Resources = r })
		wantInvalid(t, err, tc.err)
	}
}

func TestGenerateRequiresConfig(t *testing.T) {
	_, err := Generate(context.Background(), Input{ID: "x"})
	wantInvalid(t, err, "required")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, Input{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}
