package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	apievents "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	apisystem "github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	systemrouter "github.com/berth-dev/berth/internal/api/router/system"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
)

// systemBackend serves /info, /version, /system/df, /events and /auth.
type systemBackend struct{ d *Daemon }

var _ systemrouter.Backend = systemBackend{}

func (b systemBackend) SystemInfo(ctx context.Context) (*apisystem.Info, error) {
	d := b.d
	cfg := d.liveConfig()
	list, _ := d.containers.List(ctx, container.ListOptions{All: true})
	info := &apisystem.Info{
		ID: daemonID(d.cfg.DataRoot), Containers: len(list), Driver: "overlay2",
		DriverStatus: [][2]string{{"Backing Filesystem", backingFS(d.cfg.DataRoot)}, {"Supports d_type", "true"}},
		MemoryLimit:  true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
		IPv4Forwarding: readTrim("/proc/sys/net/ipv4/ip_forward") == "1", Debug: cfg.Debug, Labels: cfg.Labels,
		NGoroutines: runtime.NumGoroutine(), LoggingDriver: logConfig(cfg).Type, CgroupDriver: "cgroupfs",
		CgroupVersion: cgroupVersion(), KernelVersion: kernelVersion(), OperatingSystem: osName(), OSType: "linux",
		Architecture: arch(), IndexServerAddress: "https://index.docker.io/v1/", NCPU: runtime.NumCPU(),
		MemTotal: memTotal(), DockerRootDir: d.cfg.DataRoot, Name: hostname(), ServerVersion: Version,
		LiveRestoreEnabled: true, Isolation: "",
		InitBinary:      "berth-init",
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
		RegistryConfig:  &registry.ServiceConfig{Mirrors: cfg.RegistryMirrors},
		HTTPProxy:       os.Getenv("HTTP_PROXY"), HTTPSProxy: os.Getenv("HTTPS_PROXY"), NoProxy: os.Getenv("NO_PROXY"),
	}
	info.Runtimes, info.DefaultRuntime = d.runtimes.info()
	for _, c := range list {
		switch c.State {
		case "running":
			info.ContainersRunning++
		case "paused":
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
	}
	if imgs, err := d.images.List(ctx, image.ListFilters{All: true}); err == nil {
		info.Images = len(imgs)
	}
	return info, nil
}

func (b systemBackend) SystemVersion(ctx context.Context) (*apisystem.VersionResponse, error) {
	v := &apisystem.VersionResponse{
		Platform: apisystem.PlatformInfo{Name: "berth"},
		Version:  Version, Os: "linux", Arch: runtime.GOARCH, KernelVersion: kernelVersion(),
		GoVersion: runtime.Version(), GitCommit: gitCommit(), BuildTime: "",
	}
	v.Components = []apisystem.ComponentVersion{
		{Name: "Engine", Version: Version, Details: map[string]string{
			"ApiVersion": "", "Arch": runtime.GOARCH, "GitCommit": v.GitCommit, "GoVersion": v.GoVersion,
			"KernelVersion": v.KernelVersion, "Os": "linux",
		}},
		{Name: "berth-runtime", Version: Version, Details: map[string]string{"GitCommit": v.GitCommit}},
	}
	return v, nil
}

func (b systemBackend) SystemDiskUsage(ctx context.Context, o systemrouter.DiskUsageOptions) (*apisystem.DiskUsage, error) {
	return b.d.diskUsage(ctx, o)
}

func (b systemBackend) Events(ctx context.Context, o systemrouter.EventsOptions, send func(apievents.Message) error) error {
	f := events.Filter{}
	for _, k := range o.Filters.Keys() {
		f[k] = o.Filters.Get(k)
	}
	past, live := b.d.events.Subscribe(ctx, o.Since, o.Until, f)
	for _, m := range past {
		if err := send(m); err != nil {
			return err
		}
	}
	if live == nil {
		return nil
	}
	for m := range live {
		if err := send(m); err != nil {
			return err
		}
	}
	return nil
}

func (b systemBackend) AuthenticateToRegistry(ctx context.Context, auth *registry.AuthConfig) (string, error) {
	return b.d.login(ctx, auth)
}

// daemonID is a stable identifier derived from the data root.
func daemonID(root string) string {
	h := sha256.Sum256([]byte("berth:" + root + ":" + hostname()))
	s := strings.ToUpper(hex.EncodeToString(h[:]))
	return s[0:4] + ":" + s[4:8] + ":" + s[8:12] + ":" + s[12:16] + ":" + s[16:20] + ":" + s[20:24]
}

func readTrim(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func arch() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func backingFS(path string) string {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return "unknown"
}

func gitCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				return s.Value[:7]
			}
		}
	}
	return "unknown"
}
