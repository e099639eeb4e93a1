//go:build linux

package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules are Docker's device cgroup rules: deny everything,
// then allow zero, null, urandom, random, tty and console, and deny
// /dev/fuse (10:229) explicitly. berth's runtime appends its
// own baseline (mknod, full, ptmx, pts) to every container's rules.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	allow := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Minor: i64(minor), Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow(1, 5), allow(1, 3), allow(1, 9), allow(1, 8), allow(5, 0), allow(5, 1),
		{Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"},
	}
}

// hostDevicesDir is where privileged containers' devices come from;
// tests point it elsewhere.
var hostDevicesDir = "/dev"

var errNotADevice = errors.New("not a device node")

// deviceFromPath describes the host device node p (without following a
// final symlink), with the given cgroup permissions.
func deviceFromPath(p string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotADevice
	}
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: p, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

func deviceRule(d specs.LinuxDevice, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: access}
}

// devicesFromPath resolves a --device: a device node (a symlink to one is
// followed), or a directory whose device nodes are all added, with their
// paths moved under pathInContainer.
func devicesFromPath(onHost, inContainer, access string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	resolved := onHost
	if fi, err := os.Lstat(onHost); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if r, err := filepath.EvalSymlinks(onHost); err == nil {
			resolved = r
		}
	}
	d, err := deviceFromPath(resolved)
	if err == nil {
		d.Path = inContainer
		return []specs.LinuxDevice{d}, []specs.LinuxDeviceCgroup{deviceRule(d, access)}, nil
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	if errors.Is(err, errNotADevice) {
		if fi, serr := os.Stat(resolved); serr == nil && fi.IsDir() {
			_ = filepath.WalkDir(resolved, func(p string, _ fs.DirEntry, _ error) error {
				cd, e := deviceFromPath(p)
				if e != nil {
					return nil
				}
				cd.Path = inContainer + strings.TrimPrefix(p, resolved)
				devs = append(devs, cd)
				rules = append(rules, deviceRule(cd, access))
				return nil
			})
		}
	}
	if len(devs) > 0 {
		return devs, rules, nil
	}
	return nil, nil, errdefs.Newf(errdefs.InvalidArgument, "error gathering device information while adding custom device %q: %v", onHost, err)
}

// hostDevices lists every device node under hostDevicesDir for privileged
// containers, skipping what the container sets up itself (pts, shm, fd,
// mqueue, console) and what container managers keep there.
func hostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(hostDevicesDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == hostDevicesDir {
				return err
			}
			return nil
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if e.Name() == "console" {
			return nil
		}
		d, err := deviceFromPath(p)
		if err != nil {
			return nil
		}
		d.Path = "/dev" + strings.TrimPrefix(p, hostDevicesDir)
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, errdefs.With(errdefs.Internal, err)
	}
	return out, nil
}

var (
	validAccess       = regexp.MustCompile(`^[rwm]{1,3}$`)
	deviceCgroupRuleR = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)
)

// devices sets linux.devices and the device cgroup rules.
func (g *generator) devices() error {
	l := g.s.Linux
	for _, req := range g.hc.DeviceRequests {
		// berth has no device drivers (GPUs, CDI): refuse as dockerd
		// does when no driver matches.
		return errdefs.Newf(errdefs.InvalidArgument, "could not select device driver %q with capabilities: %v", req.Driver, req.Capabilities)
	}
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	if g.hc.Privileged {
		devs, err := hostDevices()
		if err != nil {
			return err
		}
		for _, dm := range g.hc.Devices {
			in := dm.PathInContainer
			if in == "" || in == dm.PathOnHost {
				continue // already there with every host device
			}
			d, _, err := devicesFromPath(dm.PathOnHost, in, "rwm")
			if err != nil {
				return err
			}
			devs = append(devs, d...)
		}
		l.Devices = devs
		l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}

	rules := defaultDeviceRules()
	for _, dm := range g.hc.Devices {
		in, access := dm.PathInContainer, dm.CgroupPermissions
		if in == "" {
			in = dm.PathOnHost
		}
		if access == "" {
			access = "rwm"
		}
		if !validAccess.MatchString(access) {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid device mode: %s", access)
		}
		if !filepath.IsAbs(in) {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid device path in container: %s", in)
		}
		d, r, err := devicesFromPath(dm.PathOnHost, filepath.Clean(in), access)
		if err != nil {
			return err
		}
		l.Devices = append(l.Devices, d...)
		rules = append(rules, r...)
	}
	for _, raw := range g.hc.DeviceCgroupRules {
		m := deviceCgroupRuleR.FindStringSubmatch(raw)
		if m == nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid device cgroup rule format: '%s'", raw)
		}
		r := specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Access: m[4]}
		if m[2] != "*" {
			n, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil {
				return errdefs.Newf(errdefs.InvalidArgument, "invalid major value in device cgroup rule format: '%s'", raw)
			}
			r.Major = i64(n)
		}
		if m[3] != "*" {
			n, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil {
				return errdefs.Newf(errdefs.InvalidArgument, "invalid minor value in device cgroup rule format: '%s'", raw)
			}
			r.Minor = i64(n)
		}
		rules = append(rules, r)
	}
	l.Resources.Devices = rules
	return nil
}
