package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/logger"
)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CreateOptions are the parts of a create request.
type CreateOptions struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
	Platform   string
	// Image, if set, is the resolved image to use instead of looking
	// Config.Image up (the builder's intermediate states are not images).
	Image *image.Resolved
}

// CreateResult is create's answer.
type CreateResult struct {
	ID       string
	Warnings []string
}

// Create validates a container configuration, merges its image's config
// into it, prepares its writable snapshot and files, and records it in
// state "created". The image must be present (the caller pulls).
func (s *Service) Create(ctx context.Context, o CreateOptions) (res CreateResult, retErr error) {
	if o.Config == nil {
		return res, errdefs.Newf(errdefs.InvalidArgument, "config cannot be empty in order to create a container")
	}
	cfg := *o.Config
	hc := container.HostConfig{}
	if o.HostConfig != nil {
		hc = *o.HostConfig
	}
	name := o.Name
	if name != "" {
		if !validName.MatchString(name) {
			return res, errdefs.Newf(errdefs.InvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
		if !strings.HasPrefix(name, "/") {
			name = "/" + name
		}
	}
	warnings, err := s.validateHostConfig(&hc)
	if err != nil {
		return res, err
	}
	if cfg.Image == "" {
		return res, errdefs.Newf(errdefs.InvalidArgument, "no image specified")
	}
	img := o.Image
	if img == nil {
		if img, err = s.cfg.Images.Resolve(ctx, cfg.Image); err != nil {
			return res, err
		}
	}
	if err := spec.MergeImageConfig(&cfg, &img.Config); err != nil {
		return res, err
	}
	if err := ValidateHealthOnFailure(cfg.Labels); err != nil {
		return res, err
	}
	if len(cfg.Entrypoint) == 0 && len(cfg.Cmd) == 0 {
		return res, errdefs.Newf(errdefs.InvalidArgument, "no command specified")
	}
	t0 := time.Now()
	phase := func(name string) {
		s.log.Debug("create phase", "phase", name, "since_start", time.Since(t0))
	}
	id := s.newContainerID(&cfg, &hc) // the warm spare's, when its init fits
	defer func() {
		if retErr != nil {
			s.dropClaim(id)
		}
	}()
	// A writable snapshot prepared ahead for this image (snapspare.go) is
	// taken under its own key; a builder's state (o.Image) never has one.
	snapKey := ""
	if o.Image == nil {
		snapKey = s.claimSpare(ctx, img)
	}
	spared := snapKey != ""
	if spared {
		defer func() {
			if retErr != nil {
				_ = s.cfg.Snapshots.Remove(context.WithoutCancel(ctx), snapKey)
			}
			s.mu.Lock()
			delete(s.creating, snapKey)
			s.mu.Unlock()
		}()
		s.log.Debug("create takes a prepared snapshot", "id", shortID(id), "key", snapKey)
	} else {
		snapKey = "container-" + id
	}
	// Its root mounted ahead, now at this container's bundle (snapmount_linux.go).
	premounted := spared && s.adoptSpareMount(snapKey, id)
	if premounted {
		defer func() {
			if retErr != nil {
				s.unmountSpare(id)
			}
		}()
	}
	if cfg.Hostname == "" && !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer() {
		cfg.Hostname = shortID(id)
	}
	// Docker's rule: no driver means the daemon's driver; the daemon's
	// log-opts apply only when the container gives none.
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = s.cfg.DefaultLog.Type
	}
	if len(hc.LogConfig.Config) == 0 && hc.LogConfig.Type == s.cfg.DefaultLog.Type {
		hc.LogConfig.Config = s.cfg.DefaultLog.Config
	}
	if hc.Runtime, err = s.resolveRuntime(hc.Runtime); err != nil {
		return res, err
	}
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	rec := Record{
		ID: id, Created: time.Now().UTC(), Path: args[0], Args: args[1:],
		Config: &cfg, Host: &hc, Image: img.ID.String(),
		Platform: img.Platform.OS, Snapshot: snapKey,
		State: State{Status: container.StateCreated},
	}
	generated := name == ""
	if generated {
		name = s.freeName()
	}
	rec.Name = name
	lcfg := s.logConfig(&rec)
	if err := logger.ValidateConfig(lcfg); err != nil {
		return res, err
	}
	rec.LogPath = logger.Path(lcfg)
	if premounted {
		s.adoptSpareLog(id, rec.LogPath)
	}
	if rec.Networks == nil {
		rec.Networks = map[string]*NetworkInfo{}
	}
	if err := s.resolveNetworks(&rec, o.Networking); err != nil {
		return res, err
	}

	putVolumes, err := s.resolveMounts(ctx, &rec)
	if err != nil {
		return res, err
	}
	defer func() {
		if retErr != nil {
			s.releaseVolumes(context.WithoutCancel(ctx), rec.ID, rec.MountPoints, true)
		}
	}()
	// The container's init is pre-forked (in the background) while create
	// writes its files and snapshot, the client comes back to start it and
	// start mounts its root (prefork.go). Should create fail, it goes. A
	// name already in use fails here, before the shim prepared for
	// another container is let go for it (checked again below).
	if !generated { // a generated one is replaced below if taken meanwhile
		s.mu.Lock()
		err = s.nameInUse(rec.Name)
		s.mu.Unlock()
		if err != nil {
			return res, err
		}
	}
	s.prepareAhead(&rec)
	defer func() {
		if retErr != nil {
			if ap := s.detachAhead(id); ap != nil {
				go ap.wait().Release()
			}
		}
	}()
	// Files first, then the record: a crash in between leaves a directory
	// without a record, which Restore removes.
	dir := s.dataDir(id)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return res, err
	}
	defer func() {
		if retErr != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	phase("dir")
	if err := s.writeNetworkFiles(&rec); err != nil {
		return res, err
	}
	phase("files")
	// Held from before it exists until the record holds it (Holders).
	s.mu.Lock()
	s.creating[rec.Snapshot] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.creating, rec.Snapshot)
		s.mu.Unlock()
	}()
	if !spared {
		if _, err := s.cfg.Snapshots.Prepare(ctx, rec.Snapshot, img.ChainID, map[string]string{"berth.container": id}); err != nil {
			return res, fmt.Errorf("prepare rootfs: %w", err)
		}
		defer func() {
			if retErr != nil {
				_ = s.cfg.Snapshots.Remove(context.WithoutCancel(ctx), rec.Snapshot)
			}
		}()
	}
	phase("snapshot")
	if o.Image == nil {
		// The next create's snapshot, once the daemon is quiet.
		s.fillSpare(img)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer phase("recorded")
	if _, taken := s.names[rec.Name]; taken && generated {
		// A concurrent create took the generated name meanwhile: pick
		// another (Docker's names are never a conflict of their own).
		rec.Name = s.freeNameLocked()
	}
	if err := s.nameInUse(rec.Name); err != nil {
		return res, err
	}
	rec.Ephemeral = hc.AutoRemove && putVolumes == nil // ephemeral.go
	if err := s.store.create(&rec, putVolumes); err != nil {
		return res, err
	}
	failpoint.Crash("create-recorded")
	c := newContainer(rec)
	c.premounted = premounted
	if premounted {
		s.expirePremount(c)
	}
	s.byID[id] = c
	s.names[rec.Name] = id
	s.event("create", &rec, nil)
	return CreateResult{ID: id, Warnings: warnings}, nil
}

// nameInUse returns Docker's conflict error if name is taken; s.mu held.
func (s *Service) nameInUse(name string) error {
	if id, taken := s.names[name]; taken {
		return errdefs.Newf(errdefs.Conflict, "Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, id)
	}
	return nil
}

// validateHostConfig applies Docker's create-time checks and defaults.
func (s *Service) validateHostConfig(hc *container.HostConfig) ([]string, error) {
	var warnings []string
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() && hc.RestartPolicy.Name != "" {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "can't create 'AutoRemove' container with restart policy")
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	if hc.Memory != 0 && hc.Memory < 6*1024*1024 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "Minimum memory limit allowed is 6MB")
	}
	if hc.Memory > 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if hc.MemoryReservation > 0 && hc.Memory > 0 && hc.Memory < hc.MemoryReservation {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if hc.NanoCPUs > 0 && (hc.CPUPeriod > 0 || hc.CPUQuota > 0) {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if hc.CPUShares < 0 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid CPU shares (%d): value must be a positive integer", hc.CPUShares)
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.ShmSize < 0 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "SHM size can not be less than 0")
	}
	mode := hc.NetworkMode
	switch {
	case mode == "", mode == "default", mode == "bridge", mode == "none", mode == "host", mode.IsContainer():
	case s.cfg.Networks != nil:
		if _, _, _, err := s.cfg.Networks.Lookup(string(mode)); err != nil {
			return nil, createNetErr(err)
		}
	default:
		return nil, errdefs.Newf(errdefs.NotFound, "network %s not found", mode)
	}
	if mode.IsContainer() {
		if _, err := s.Get(mode.ConnectedContainer()); err != nil {
			return nil, err
		}
	}
	// The daemon's default ulimits apply where the container sets none.
	for _, d := range s.cfg.DefaultUlimits {
		found := false
		for _, u := range hc.Ulimits {
			if u.Name == d.Name {
				found = true
			}
		}
		if !found {
			hc.Ulimits = append(hc.Ulimits, d)
		}
	}
	return warnings, nil
}

// writeNetworkFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf sources. The network service rewrites hosts and
// resolv.conf when it attaches the container.
func (s *Service) writeNetworkFiles(r *Record) error {
	dir := s.dataDir(r.ID)
	hostname := r.Config.Hostname
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	for _, h := range r.Host.ExtraHosts {
		if name, ip, ok := strings.Cut(h, ":"); ok {
			hosts += ip + "\t" + name + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(resolvConf(r.Host)), 0o644)
}

// resolvConf derives a container's resolv.conf from the host's: loopback
// nameservers are useless inside another network namespace and are
// dropped, as Docker does; --dns, --dns-search and --dns-option replace
// the host's values.
func resolvConf(hc *container.HostConfig) string {
	var ns, search, opts []string
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "nameserver":
				if !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
					ns = append(ns, f[1])
				}
			case "search":
				search = f[1:]
			case "options":
				opts = append(opts, f[1:]...)
			}
		}
	}
	if len(hc.DNS) > 0 {
		ns = nil
		for _, a := range hc.DNS {
			ns = append(ns, a.String())
		}
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		opts = hc.DNSOptions
	}
	var b strings.Builder
	for _, n := range ns {
		b.WriteString("nameserver " + n + "\n")
	}
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(opts) > 0 {
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return b.String()
}
