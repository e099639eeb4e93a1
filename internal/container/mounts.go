package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/volume"
)

// Volumes is what the service needs of the volume service. References
// last from create to remove; active mounts from start to the end of the
// run's teardown.
type Volumes interface {
	// AcquireAll gets or creates volumes (Name "" makes an anonymous
	// one) and records ref as referencing them, atomically; on error
	// none is acquired. put, when not nil, writes the new anonymous
	// volumes' records and runs in the container record's transaction.
	AcquireAll(ctx context.Context, os []volume.CreateOptions, ref string) ([]volume.Acquired, func(*bolt.Tx) error, error)
	Release(name, ref string)
	// RemoveUnused deletes those of names nothing references.
	RemoveUnused(ctx context.Context, names []string) error
	// PlanRemoval reserves those of names only ref uses, for removal in
	// the transaction that deletes ref's record.
	PlanRemoval(names []string, ref string) *volume.Removal
	// Mount activates the volume for a run (mounting its device on the
	// first user) and returns the host directory to bind.
	Mount(ctx context.Context, name, ref string, attrs map[string]string) (string, error)
	Unmount(ctx context.Context, name, ref string) error
}

// MountPoint is one of a container's mounts as resolved at create time:
// what inspect shows under "Mounts", and for volumes what start mounts.
type MountPoint struct {
	Type        mount.Type        `json:"type"`
	Name        string            `json:"name,omitempty"`
	Source      string            `json:"source,omitempty"`
	Destination string            `json:"destination"`
	Driver      string            `json:"driver,omitempty"`
	Mode        string            `json:"mode"`
	RW          bool              `json:"rw"`
	Propagation mount.Propagation `json:"propagation,omitempty"`
	// Named volumes were given a name by the user; rm -v keeps them.
	Named bool `json:"named,omitempty"`
	// CopyUp copies the image's content at Destination into the volume
	// when it is empty at start (not with nocopy or a subpath).
	CopyUp  bool   `json:"copy_up,omitempty"`
	Subpath string `json:"subpath,omitempty"`
	// CreateSource: a -v bind whose missing host directory start creates.
	CreateSource bool `json:"create_source,omitempty"`
	// Inherited: from --volumes-from; start passes its bind itself (the
	// spec generator only knows this container's own binds).
	Inherited bool `json:"inherited,omitempty"`
}

func invalidMount(format string, args ...any) error {
	return errdefs.Newf(errdefs.InvalidArgument, format, args...)
}

var bindPropagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// splitBind splits a -v entry "src:dst[:mode]" (or "dst").
func splitBind(raw string) (src, dst, mode string, err error) {
	parts := strings.Split(raw, ":")
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return "", "", "", invalidMount("invalid volume specification: '%s'", raw)
	}
	if dst == "" || (len(parts) > 1 && src == "") {
		return "", "", "", invalidMount("invalid volume specification: '%s'", raw)
	}
	if !path.IsAbs(dst) {
		return "", "", "", invalidMount("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", raw, dst)
	}
	if path.Clean(dst) == "/" {
		return "", "", "", invalidMount("invalid volume specification: '%s': invalid mount config for type \"bind\": invalid specification: destination can't be '/'", raw)
	}
	return src, path.Clean(dst), mode, nil
}

// parseMode reads a -v mode list (ro, rw, z, Z, nocopy, a propagation).
func parseMode(mode string) (rw, nocopy bool, prop string, err error) {
	rw = true
	if mode == "" {
		return rw, false, "", nil
	}
	seen := map[string]bool{}
	for _, o := range strings.Split(mode, ",") {
		key := o
		switch {
		case o == "ro" || o == "rw":
			key, rw = "rw", o == "rw"
		case o == "z" || o == "Z":
			key = "label"
		case o == "nocopy":
			nocopy = true
		case slices.Contains(bindPropagations, o):
			key, prop = "prop", o
		default:
			return false, false, "", invalidMount("invalid mode: %s", mode)
		}
		if seen[key] {
			return false, false, "", invalidMount("invalid mode: %s", mode)
		}
		seen[key] = true
	}
	return rw, nocopy, prop, nil
}

// resolveMounts turns the container's -v, --mount, --volumes-from and
// image volumes into r.MountPoints and acquires its volumes (created when
// missing, as Docker does). Precedence is Docker's: the user's binds and
// mounts over --volumes-from, both over the image's VOLUMEs. On error
// nothing stays acquired.
//
// The returned put, when not nil, writes new anonymous volumes' records
// and must run in the transaction that writes r.
func (s *Service) resolveMounts(ctx context.Context, r *Record) (put func(*bolt.Tx) error, _ error) {
	hc, cfg := r.Host, r.Config
	byDest := map[string]*MountPoint{}
	var order []string
	set := func(mp MountPoint) {
		if _, ok := byDest[mp.Destination]; !ok {
			order = append(order, mp.Destination)
		}
		byDest[mp.Destination] = &mp
	}
	volOpts := map[string]volume.CreateOptions{}

	for _, vf := range hc.VolumesFrom {
		ref, mode, hasMode := strings.Cut(vf, ":")
		if hasMode && mode != "ro" && mode != "rw" {
			return nil, invalidMount("invalid mode for volumes-from: %s", mode)
		}
		c, err := s.Get(ref)
		if err != nil {
			return nil, err
		}
		for _, mp := range c.snapshot().MountPoints {
			if mp.Type != mount.TypeVolume && mp.Type != mount.TypeBind {
				continue
			}
			mp.Inherited, mp.CopyUp, mp.CreateSource = true, false, false
			if hasMode {
				mp.RW = mode == "rw"
				mp.Mode = mode
			}
			set(mp)
		}
	}
	user := map[string]bool{}
	claim := func(dst string) error {
		if user[dst] {
			return invalidMount("Duplicate mount point: %s", dst)
		}
		user[dst] = true
		return nil
	}
	for _, raw := range hc.Binds {
		src, dst, mode, err := splitBind(raw)
		if err != nil {
			return nil, err
		}
		rw, nocopy, prop, err := parseMode(mode)
		if err != nil {
			return nil, err
		}
		if err := claim(dst); err != nil {
			return nil, err
		}
		if path.IsAbs(src) {
			if prop == "" {
				prop = "rprivate"
			}
			set(MountPoint{Type: mount.TypeBind, Source: path.Clean(src), Destination: dst, Mode: mode, RW: rw,
				Propagation: mount.Propagation(prop), CreateSource: true})
			continue
		}
		if src != "" {
			if err := volume.ValidateName(src); err != nil {
				return nil, err
			}
		}
		m := mode
		if m == "" {
			m = "z"
		}
		set(MountPoint{Type: mount.TypeVolume, Name: src, Named: src != "", Destination: dst, Driver: volume.DriverLocal,
			Mode: m, RW: rw, Propagation: mount.Propagation(prop), CopyUp: !nocopy})
		volOpts[dst] = volume.CreateOptions{Name: src, Driver: hc.VolumeDriver}
	}
	for _, m := range hc.Mounts {
		if m.Target == "" {
			return nil, invalidMount("invalid mount config for type %q: field Target must not be empty", m.Type)
		}
		if !path.IsAbs(m.Target) {
			return nil, invalidMount("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, m.Target)
		}
		dst := path.Clean(m.Target)
		switch m.Type {
		case mount.TypeBind:
			if !path.IsAbs(m.Source) {
				if m.Source == "" {
					return nil, invalidMount("invalid mount config for type \"bind\": field Source must not be empty")
				}
				return nil, invalidMount("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source)
			}
			if _, err := os.Stat(m.Source); err != nil {
				return nil, invalidMount("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
			if err := claim(dst); err != nil {
				return nil, err
			}
			prop := mount.PropagationRPrivate
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				prop = m.BindOptions.Propagation
			}
			set(MountPoint{Type: mount.TypeBind, Source: path.Clean(m.Source), Destination: dst, RW: !m.ReadOnly, Propagation: prop})
		case mount.TypeVolume:
			if m.BindOptions != nil || m.TmpfsOptions != nil {
				return nil, invalidMount("invalid mount config for type \"volume\": only VolumeOptions may be set")
			}
			o := volume.CreateOptions{Name: m.Source, Driver: hc.VolumeDriver}
			nocopy, sub := false, ""
			if vo := m.VolumeOptions; vo != nil {
				nocopy, sub = vo.NoCopy, vo.Subpath
				o.Labels = vo.Labels
				if vo.DriverConfig != nil {
					if vo.DriverConfig.Name != "" {
						o.Driver = vo.DriverConfig.Name
					}
					o.Options = vo.DriverConfig.Options
				}
			}
			if m.Source != "" {
				if err := volume.ValidateName(m.Source); err != nil {
					return nil, err
				}
			}
			if err := volume.ValidateSubpath(sub); err != nil {
				return nil, err
			}
			if sub != "" {
				sub = filepath.Clean(sub)
			}
			if err := claim(dst); err != nil {
				return nil, err
			}
			set(MountPoint{Type: mount.TypeVolume, Name: m.Source, Named: m.Source != "", Destination: dst, Driver: volume.DriverLocal,
				Mode: "z", RW: !m.ReadOnly, CopyUp: !nocopy && sub == "", Subpath: sub})
			volOpts[dst] = o
		case mount.TypeTmpfs:
			if err := claim(dst); err != nil {
				return nil, err
			}
			set(MountPoint{Type: mount.TypeTmpfs, Destination: dst, RW: !m.ReadOnly})
		case "":
			return nil, invalidMount("invalid mount config: mount type unknown")
		default:
			return nil, errdefs.Newf(errdefs.NotImplemented, "mount type %q is not supported", m.Type)
		}
	}
	// The image's VOLUMEs and -v /path: anonymous volumes with copy-up,
	// where nothing else is mounted.
	vols := make([]string, 0, len(cfg.Volumes))
	for v := range cfg.Volumes {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	for _, v := range vols {
		dst, mode, _ := strings.Cut(v, ":")
		if !path.IsAbs(dst) {
			return nil, invalidMount("invalid volume specification: '%s': invalid mount path: '%s' mount path must be absolute", v, dst)
		}
		dst = path.Clean(dst)
		rw, nocopy, _, err := parseMode(mode)
		if err != nil {
			return nil, err
		}
		if _, ok := byDest[dst]; ok {
			continue
		}
		if _, ok := hc.Tmpfs[dst]; ok {
			continue
		}
		set(MountPoint{Type: mount.TypeVolume, Destination: dst, Driver: volume.DriverLocal, Mode: mode, RW: rw, CopyUp: !nocopy})
		volOpts[dst] = volume.CreateOptions{Driver: hc.VolumeDriver}
	}

	if len(order) == 0 {
		return nil, nil
	}
	if s.cfg.Volumes == nil {
		for _, d := range order {
			if byDest[d].Type == mount.TypeVolume {
				return nil, errdefs.Newf(errdefs.NotImplemented, "volumes are not available")
			}
		}
	}
	var reqs []volume.CreateOptions
	for _, d := range order {
		if mp := byDest[d]; mp.Type == mount.TypeVolume {
			o := volOpts[d]
			if mp.Inherited {
				o = volume.CreateOptions{Name: mp.Name}
			}
			reqs = append(reqs, o)
		}
	}
	var got []volume.Acquired
	if len(reqs) > 0 {
		var err error
		if got, put, err = s.cfg.Volumes.AcquireAll(ctx, reqs, r.ID); err != nil {
			return nil, err
		}
	}
	out := make([]MountPoint, 0, len(order))
	for _, d := range order {
		mp := *byDest[d]
		if mp.Type == mount.TypeVolume {
			mp.Name, mp.Source = got[0].Name, got[0].DataPath
			got = got[1:]
		}
		out = append(out, mp)
	}
	r.MountPoints = out
	return put, nil
}

// releaseVolumes drops id's references; with removeAnonymous its
// anonymous volumes go too (a volume still used elsewhere stays).
func (s *Service) releaseVolumes(ctx context.Context, id string, mps []MountPoint, removeAnonymous bool) {
	if s.cfg.Volumes == nil {
		return
	}
	var anon []string
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume {
			continue
		}
		s.cfg.Volumes.Release(mp.Name, id)
		if removeAnonymous && !mp.Named {
			anon = append(anon, mp.Name)
		}
	}
	if len(anon) > 0 {
		if err := s.cfg.Volumes.RemoveUnused(ctx, anon); err != nil {
			s.log.Warn("remove anonymous volumes", "id", id, "err", err)
		}
	}
}

// planVolumeRemoval reserves the container's anonymous volumes that
// nothing else uses, for rm -v: their records go in the transaction that
// deletes the container's.
func (s *Service) planVolumeRemoval(r *Record) *volume.Removal {
	if s.cfg.Volumes == nil {
		return nil
	}
	var anon []string
	for _, mp := range r.MountPoints {
		if mp.Type == mount.TypeVolume && !mp.Named {
			anon = append(anon, mp.Name)
		}
	}
	if len(anon) == 0 {
		return nil
	}
	return s.cfg.Volumes.PlanRemoval(anon, r.ID)
}

// stageDir is where a run's volume subpaths are bind-mounted before the
// runtime binds them into the container.
func (s *Service) stageDir(id string) string { return filepath.Join(s.cfg.ExecRoot, "vs", id) }

// runMounts prepares a run's volume mounts (activating each volume,
// copying the image's content into empty ones, staging subpaths), creates
// the missing host directories of -v binds, and returns the OCI mounts the
// spec generator takes as Input.Mounts. On error nothing stays active.
func (s *Service) runMounts(ctx context.Context, r *Record, rootfs string) (out []specs.Mount, retErr error) {
	if len(r.MountPoints) == 0 {
		return nil, nil
	}
	defer func() {
		if retErr != nil {
			s.endRunMounts(context.WithoutCancel(ctx), r)
		}
	}()
	for i, mp := range r.MountPoints {
		switch mp.Type {
		case mount.TypeVolume:
			if s.cfg.Volumes == nil {
				return nil, errdefs.Newf(errdefs.NotImplemented, "volumes are not available")
			}
			p, err := s.cfg.Volumes.Mount(ctx, mp.Name, r.ID, map[string]string{
				"destination": mp.Destination, "read/write": strconv.FormatBool(mp.RW), "propagation": string(mp.Propagation),
			})
			if err != nil {
				return nil, err
			}
			if mp.CopyUp {
				if _, err := volume.CopyUp(rootfs, mp.Destination, p); err != nil {
					return nil, err
				}
			}
			src := p
			if mp.Subpath != "" {
				src = filepath.Join(s.stageDir(r.ID), strconv.Itoa(i))
				if err := volume.BindSubpath(p, mp.Subpath, src); err != nil {
					return nil, err
				}
			}
			out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: src, Options: mountOptions(mp)})
		case mount.TypeBind:
			if mp.CreateSource {
				if _, err := os.Lstat(mp.Source); errors.Is(err, os.ErrNotExist) {
					if err := os.MkdirAll(mp.Source, 0o755); err != nil {
						return nil, errdefs.Newf(errdefs.InvalidArgument, "error while creating mount source path '%s': %v", mp.Source, err)
					}
				}
			}
			if mp.Inherited {
				out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: mountOptions(mp)})
			}
		}
	}
	return out, nil
}

func mountOptions(mp MountPoint) []string {
	opts := []string{"rbind"}
	if !mp.RW {
		// Recursively read-only where the kernel can (5.12+), as dockerd.
		opts = append(opts, "ro")
		if recursiveROSupported() {
			opts = append(opts, "rro")
		}
	}
	p := string(mp.Propagation)
	if p == "" {
		p = "rprivate"
	}
	return append(opts, p)
}

var recursiveROSupported = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	_, _ = fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major > 5 || major == 5 && minor >= 12
})

// endRunMounts undoes runMounts: subpath stages are unmounted and the
// volumes deactivated (the last user unmounts a volume's device).
func (s *Service) endRunMounts(ctx context.Context, r *Record) {
	s.unstage(r)
	if s.cfg.Volumes == nil {
		return
	}
	for _, mp := range r.MountPoints {
		if mp.Type == mount.TypeVolume {
			if err := s.cfg.Volumes.Unmount(ctx, mp.Name, r.ID); err != nil {
				s.log.Warn("unmount volume", "id", r.ID, "volume", mp.Name, "err", err)
			}
		}
	}
}

// unstage unmounts a run's subpath stages: once the runtime has bound
// them into the container they are not needed on the host.
func (s *Service) unstage(r *Record) {
	staged := false
	for _, mp := range r.MountPoints {
		staged = staged || mp.Subpath != ""
	}
	if !staged {
		return
	}
	stage := s.stageDir(r.ID)
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(stage))
	if err != nil {
		return
	}
	for i := len(ms) - 1; i >= 0; i-- {
		_ = unix.Unmount(ms[i].Mountpoint, unix.MNT_DETACH)
	}
	if ms, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(stage)); len(ms) == 0 {
		_ = os.RemoveAll(stage)
	}
}

// sweepStages removes the subpath stages of containers that have no
// record (a crash during a remove).
func (s *Service) sweepStages(known map[string]bool) {
	ents, _ := os.ReadDir(filepath.Join(s.cfg.ExecRoot, "vs"))
	for _, e := range ents {
		if known[e.Name()] {
			continue
		}
		s.unstage(&Record{ID: e.Name(), MountPoints: []MountPoint{{Subpath: "."}}})
	}
}

// restoreMounts registers a restored container's references, and its
// active mounts when it still runs.
func (s *Service) restoreMounts(ctx context.Context, r *Record, running bool) {
	if s.cfg.Volumes == nil {
		return
	}
	var reqs []volume.CreateOptions
	for _, mp := range r.MountPoints {
		if mp.Type == mount.TypeVolume {
			reqs = append(reqs, volume.CreateOptions{Name: mp.Name})
		}
	}
	if len(reqs) == 0 {
		return
	}
	if _, _, err := s.cfg.Volumes.AcquireAll(ctx, reqs, r.ID); err != nil {
		s.log.Warn("restore volume references", "id", r.ID, "err", err)
		return
	}
	for _, mp := range r.MountPoints {
		if mp.Type != mount.TypeVolume {
			continue
		}
		if running {
			if _, err := s.cfg.Volumes.Mount(ctx, mp.Name, r.ID, nil); err != nil {
				s.log.Warn("restore volume mount", "id", r.ID, "volume", mp.Name, "err", err)
			}
		}
	}
}

// apiMounts renders mount points in Docker's inspect and ps shape.
func apiMounts(mps []MountPoint) []container.MountPoint {
	out := make([]container.MountPoint, 0, len(mps))
	for _, mp := range mps {
		out = append(out, container.MountPoint{
			Type: mp.Type, Name: mp.Name, Source: mp.Source, Destination: mp.Destination,
			Driver: mp.Driver, Mode: mp.Mode, RW: mp.RW, Propagation: mp.Propagation,
		})
	}
	return out
}

// usesVolume is ps's volume filter: a volume name or a mount destination.
func usesVolume(r *Record, v string) bool {
	for _, mp := range r.MountPoints {
		if mp.Name == v || mp.Destination == v || (mp.Type == mount.TypeBind && mp.Source == v) {
			return true
		}
	}
	return false
}
