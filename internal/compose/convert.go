package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// CreateOptions are the per-container choices of a create request that do
// not come from the service definition.
type CreateOptions struct {
	Number int // replica number (container-number label); 0 for one-off containers
	// Name overrides the container name (compose run --name, one-off
	// names).
	Name string
	// Oneoff marks a `compose run` container, with its slug.
	Oneoff bool
	Slug   string
	// AutoRemove is `run --rm`; AttachStdin opens stdin for `run -i`.
	AutoRemove  bool
	AttachStdin bool
	// UseNetworkAliases adds the service name and its aliases to the
	// container's DNS names (not for one-off containers).
	UseNetworkAliases bool
	// ExtraLabels are merged over the computed labels (run --label).
	ExtraLabels map[string]string
	// Inherit are the volume mounts of the container being replaced:
	// anonymous volumes (the service's and the image's) keep their data
	// across a recreate, as with Docker Compose.
	Inherit []container.MountPoint
}

// ContainerCreateOptions converts replica o.Number of service s of project
// p into the body of POST /containers/create, as Docker Compose v2 does.
// s must have its service: references resolved (network_mode, ipc, pid,
// volumes_from) to container IDs. The conversion is pure: it reads
// seccomp profiles named by security_opt but asks nothing of the engine.
func ContainerCreateOptions(p *types.Project, s types.ServiceConfig, o CreateOptions) (client.ContainerCreateOptions, error) {
	hash, err := ServiceHash(s)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	labels := containerLabels(s, o.Number, hash)
	if o.Oneoff {
		labels[LabelOneoff] = "True"
		labels[LabelSlug] = o.Slug
	}
	for k, v := range o.ExtraLabels {
		labels[k] = v
	}
	name := o.Name
	if name == "" {
		name = ContainerName(p.Name, s, o.Number)
	}

	health, err := healthConfig(s.HealthCheck)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	cfg := &container.Config{
		Hostname:        s.Hostname,
		Domainname:      s.DomainName,
		User:            s.User,
		ExposedPorts:    exposedPorts(s),
		Tty:             s.Tty,
		OpenStdin:       s.StdinOpen,
		StdinOnce:       o.AttachStdin && s.StdinOpen,
		AttachStdin:     o.AttachStdin,
		AttachStdout:    true,
		AttachStderr:    true,
		Cmd:             []string(s.Command),
		Image:           ImageName(p.Name, s),
		WorkingDir:      s.WorkingDir,
		Entrypoint:      []string(s.Entrypoint),
		NetworkDisabled: s.NetworkMode == "disabled",
		Labels:          labels,
		StopSignal:      s.StopSignal,
		Env:             envList(s.Environment),
		Healthcheck:     health,
		StopTimeout:     stopTimeout(s.StopGracePeriod),
	}

	binds, mounts, err := volumeMounts(p, s)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	mounts = inheritVolumes(s, binds, mounts, o.Inherit)
	secOpts, unconfined, err := securityOpts(p, s.SecurityOpt)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	portBindings, err := portBindings(s)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	dns, err := parseAddrs(s.DNS)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	var logCfg container.LogConfig
	if s.Logging != nil {
		logCfg = container.LogConfig{Type: s.Logging.Driver, Config: s.Logging.Options}
	}
	hc := &container.HostConfig{
		AutoRemove:     o.AutoRemove,
		Annotations:    s.Annotations,
		Binds:          binds,
		Mounts:         mounts,
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		Init:           s.Init,
		IpcMode:        container.IpcMode(s.Ipc),
		CgroupnsMode:   container.CgroupnsMode(s.Cgroup),
		ReadonlyRootfs: s.ReadOnly,
		RestartPolicy:  restartPolicy(s),
		ShmSize:        int64(s.ShmSize),
		Sysctls:        s.Sysctls,
		PortBindings:   portBindings,
		Resources:      resources(s),
		VolumeDriver:   s.VolumeDriver,
		VolumesFrom:    s.VolumesFrom,
		DNS:            dns,
		DNSSearch:      s.DNSSearch,
		DNSOptions:     s.DNSOpts,
		ExtraHosts:     extraHosts(s.ExtraHosts),
		SecurityOpt:    secOpts,
		StorageOpt:     s.StorageOpt,
		UsernsMode:     container.UsernsMode(s.UserNSMode),
		UTSMode:        container.UTSMode(s.Uts),
		Privileged:     s.Privileged,
		PidMode:        container.PidMode(s.Pid),
		Tmpfs:          tmpfsMap(s.Tmpfs),
		Isolation:      container.Isolation(s.Isolation),
		Runtime:        s.Runtime,
		LogConfig:      logCfg,
		GroupAdd:       s.GroupAdd,
		Links:          links(p.Name, s),
		OomScoreAdj:    int(s.OomScoreAdj),
	}
	if unconfined {
		hc.MaskedPaths = []string{}
		hc.ReadonlyPaths = []string{}
	}
	mode, netCfg, err := networkSettings(p, s, name, o.UseNetworkAliases)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	hc.NetworkMode = mode
	out := client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: netCfg}
	if s.Platform != "" {
		pl, err := parsePlatform(s.Platform)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("service %q: %w", s.Name, err)
		}
		out.Platform = &pl
	}
	return out, nil
}

func healthConfig(h *types.HealthCheckConfig) (*container.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	if h.Disable {
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	out := &container.HealthConfig{Test: h.Test}
	if h.Interval != nil {
		out.Interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		out.Timeout = time.Duration(*h.Timeout)
	}
	if h.StartPeriod != nil {
		out.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.StartInterval != nil {
		out.StartInterval = time.Duration(*h.StartInterval)
	}
	if h.Retries != nil {
		out.Retries = int(*h.Retries)
	}
	return out, nil
}

func stopTimeout(d *types.Duration) *int {
	if d == nil {
		return nil
	}
	secs := int(time.Duration(*d).Seconds())
	return &secs
}

// envList is the service environment as KEY=value (KEY alone when the
// variable is declared without a value), sorted.
func envList(env types.MappingWithEquals) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if v := env[k]; v != nil {
			out = append(out, k+"="+*v)
		} else {
			out = append(out, k)
		}
	}
	return out
}

// exposedPorts is expose: plus the targets of ports:.
func exposedPorts(s types.ServiceConfig) network.PortSet {
	set := network.PortSet{}
	for _, e := range s.Expose {
		num, proto, _ := strings.Cut(e, "/")
		lo, hi, isRange := strings.Cut(num, "-")
		first, err1 := strconv.Atoi(lo)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil {
			continue // compose-go validated the format
		}
		for n := first; n <= last; n++ {
			spec := strconv.Itoa(n)
			if proto != "" {
				spec += "/" + proto
			}
			if p, err := network.ParsePort(spec); err == nil {
				set[p] = struct{}{}
			}
		}
	}
	for _, p := range s.Ports {
		if port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.Target, orTCP(p.Protocol))); err == nil {
			set[port] = struct{}{}
		}
	}
	if len(set) == 0 {
		return nil
	}
	return set
}

func orTCP(proto string) string {
	if proto == "" {
		return "tcp"
	}
	return proto
}

func portBindings(s types.ServiceConfig) (network.PortMap, error) {
	if len(s.Ports) == 0 {
		return nil, nil
	}
	m := network.PortMap{}
	for _, p := range s.Ports {
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.Target, orTCP(p.Protocol)))
		if err != nil {
			return nil, err
		}
		b := network.PortBinding{HostPort: p.Published}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, fmt.Errorf("service %q: invalid host_ip %q: %w", s.Name, p.HostIP, err)
			}
			b.HostIP = ip
		}
		m[port] = append(m[port], b)
	}
	return m, nil
}

func parseAddrs(ss []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("invalid dns address %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func extraHosts(h types.HostsList) []string {
	if len(h) == 0 {
		return nil
	}
	l := h.AsList(":")
	sort.Strings(l)
	return l
}

func tmpfsMap(list types.StringList) map[string]string {
	if len(list) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, t := range list {
		path, opts, _ := strings.Cut(t, ":")
		m[path] = opts
	}
	return m
}

func links(project string, s types.ServiceConfig) []string {
	var out []string
	for _, l := range s.Links {
		svc, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = svc
		}
		out = append(out, strings.Join([]string{project, svc, "1"}, separator)+":"+alias)
	}
	out = append(out, s.ExternalLinks...)
	return out
}

// restartPolicy maps restart: (and deploy.restart_policy, which wins).
func restartPolicy(s types.ServiceConfig) container.RestartPolicy {
	var r container.RestartPolicy
	if s.Restart != "" {
		name, count, _ := strings.Cut(s.Restart, ":")
		n, _ := strconv.Atoi(count)
		r = container.RestartPolicy{Name: restartMode(name), MaximumRetryCount: n}
	}
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		n := 0
		if rp.MaxAttempts != nil {
			n = int(*rp.MaxAttempts)
		}
		r = container.RestartPolicy{Name: restartMode(rp.Condition), MaximumRetryCount: n}
	}
	return r
}

func restartMode(c string) container.RestartPolicyMode {
	switch c {
	case "none", "no":
		return container.RestartPolicyDisabled
	case "any", "always":
		return container.RestartPolicyAlways
	default:
		return container.RestartPolicyMode(c)
	}
}

// resources maps the service's resource attributes, then
// deploy.resources limits and reservations over them.
func resources(s types.ServiceConfig) container.Resources {
	r := container.Resources{
		CgroupParent:       s.CgroupParent,
		Memory:             int64(s.MemLimit),
		MemorySwap:         int64(s.MemSwapLimit),
		MemoryReservation:  int64(s.MemReservation),
		CPUCount:           s.CPUCount,
		CPUPeriod:          s.CPUPeriod,
		CPUQuota:           s.CPUQuota,
		CPURealtimePeriod:  s.CPURTPeriod,
		CPURealtimeRuntime: s.CPURTRuntime,
		CPUShares:          s.CPUShares,
		NanoCPUs:           int64(s.CPUS * 1e9),
		CPUPercent:         int64(s.CPUPercent * 100),
		CpusetCpus:         s.CPUSet,
		DeviceCgroupRules:  s.DeviceCgroupRules,
	}
	if s.OomKillDisable {
		t := true
		r.OomKillDisable = &t
	}
	if s.MemSwappiness != 0 {
		v := int64(s.MemSwappiness)
		r.MemorySwappiness = &v
	}
	if s.PidsLimit != 0 {
		v := s.PidsLimit
		r.PidsLimit = &v
	}
	if b := s.BlkioConfig; b != nil {
		r.BlkioWeight = b.Weight
		for _, d := range b.WeightDevice {
			r.BlkioWeightDevice = append(r.BlkioWeightDevice, &blkiodev.WeightDevice{Path: d.Path, Weight: d.Weight})
		}
		throttle := func(in []types.ThrottleDevice) []*blkiodev.ThrottleDevice {
			var out []*blkiodev.ThrottleDevice
			for _, d := range in {
				out = append(out, &blkiodev.ThrottleDevice{Path: d.Path, Rate: uint64(d.Rate)})
			}
			return out
		}
		r.BlkioDeviceReadBps = throttle(b.DeviceReadBps)
		r.BlkioDeviceReadIOps = throttle(b.DeviceReadIOps)
		r.BlkioDeviceWriteBps = throttle(b.DeviceWriteBps)
		r.BlkioDeviceWriteIOps = throttle(b.DeviceWriteIOps)
	}
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes != 0 {
				r.Memory = int64(l.MemoryBytes)
			}
			if l.NanoCPUs != 0 {
				r.NanoCPUs = int64(float64(l.NanoCPUs) * 1e9)
			}
			if l.Pids > 0 {
				v := l.Pids
				r.PidsLimit = &v
			}
		}
		if res := s.Deploy.Resources.Reservations; res != nil {
			// CPU reservations are a swarm notion; memory maps to the
			// soft limit and devices to device requests.
			if res.MemoryBytes != 0 {
				r.MemoryReservation = int64(res.MemoryBytes)
			}
			for _, d := range res.Devices {
				r.DeviceRequests = append(r.DeviceRequests, container.DeviceRequest{
					Capabilities: [][]string{d.Capabilities}, Count: int(d.Count),
					DeviceIDs: d.IDs, Driver: d.Driver, Options: d.Options,
				})
			}
		}
	}
	for _, d := range s.Devices {
		r.Devices = append(r.Devices, container.DeviceMapping{PathOnHost: d.Source, PathInContainer: d.Target, CgroupPermissions: d.Permissions})
	}
	names := make([]string, 0, len(s.Ulimits))
	for n := range s.Ulimits {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u := s.Ulimits[n]
		soft, hard := u.Single, u.Single
		if u.Soft != 0 {
			soft = u.Soft
		}
		if u.Hard != 0 {
			hard = u.Hard
		}
		r.Ulimits = append(r.Ulimits, &container.Ulimit{Name: n, Soft: int64(soft), Hard: int64(hard)})
	}
	return r
}

// securityOpts passes security_opt through, inlining a seccomp profile
// file (compacted JSON) and turning systempaths=unconfined into empty
// masked/read-only path lists.
func securityOpts(p *types.Project, opts []string) ([]string, bool, error) {
	var out []string
	unconfined := false
	for _, opt := range opts {
		if opt == "systempaths=unconfined" {
			unconfined = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok && k != "no-new-privileges" {
			return nil, false, fmt.Errorf("Invalid security-opt: %q", opt) //nolint:staticcheck // Compose's message
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			b, err := os.ReadFile(p.RelativePath(v))
			if err != nil {
				return nil, false, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, false, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			out = append(out, "seccomp="+buf.String())
			continue
		}
		out = append(out, opt)
	}
	return out, unconfined, nil
}

// volumeMounts converts volumes:, secrets: and configs:. Simple binds that
// may create their host path use the Binds strings (the Mount API cannot
// create a missing host directory); everything else is a Mount, sorted by
// target.
func volumeMounts(p *types.Project, s types.ServiceConfig) ([]string, []mount.Mount, error) {
	var binds []string
	byTarget := map[string]mount.Mount{}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && (v.Bind == nil || (bool(v.Bind.CreateHostPath) && v.Bind.Propagation == "" && v.Bind.Recursive == "")) {
			src := v.Source
			if !filepath.IsAbs(src) {
				abs, err := filepath.Abs(src)
				if err != nil {
					return nil, nil, err
				}
				v.Source = abs
			}
			binds = append(binds, v.String())
			continue
		}
		m, err := volumeMount(p, v)
		if err != nil {
			return nil, nil, err
		}
		byTarget[m.Target] = m
	}
	for _, sec := range s.Secrets {
		def, ok := p.Secrets[sec.Source]
		if !ok {
			return nil, nil, fmt.Errorf("service %q refers to undefined secret %s", s.Name, sec.Source)
		}
		if def.External {
			return nil, nil, fmt.Errorf("unsupported external secret %s", def.Name)
		}
		if def.Environment != "" || def.Content != "" {
			continue // copied into the container after create
		}
		target := fileTarget("/run/secrets/", sec.Source, sec.Target)
		if _, dup := byTarget[target]; dup {
			continue
		}
		byTarget[target] = mount.Mount{Type: mount.TypeBind, Source: def.File, Target: target, ReadOnly: true}
	}
	for _, c := range s.Configs {
		def, ok := p.Configs[c.Source]
		if !ok {
			return nil, nil, fmt.Errorf("service %q refers to undefined config %s", s.Name, c.Source)
		}
		if def.External {
			return nil, nil, fmt.Errorf("unsupported external config %s", def.Name)
		}
		if def.Environment != "" || def.Content != "" {
			continue
		}
		target := fileTarget("/", c.Source, c.Target)
		if _, dup := byTarget[target]; dup {
			continue
		}
		byTarget[target] = mount.Mount{Type: mount.TypeBind, Source: def.File, Target: target, ReadOnly: true,
			BindOptions: &mount.BindOptions{CreateMountpoint: true}}
	}
	targets := make([]string, 0, len(byTarget))
	for t := range byTarget {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	var mounts []mount.Mount
	for _, t := range targets {
		mounts = append(mounts, byTarget[t])
	}
	return binds, mounts, nil
}

// inheritVolumes adds the replaced container's volumes at targets the
// service does not give a named volume, bind or tmpfs: its anonymous
// volumes and the image's VOLUME directories. An anonymous volume of the
// service at such a target is replaced by the inherited one.
func inheritVolumes(s types.ServiceConfig, binds []string, mounts []mount.Mount, inherit []container.MountPoint) []mount.Mount {
	if len(inherit) == 0 {
		return mounts
	}
	taken := map[string]bool{}
	for _, b := range binds {
		parts := strings.Split(b, ":")
		if len(parts) >= 2 {
			taken[parts[1]] = true
		}
	}
	anonymous := map[string]bool{}
	for _, m := range mounts {
		if m.Type == mount.TypeVolume && m.Source == "" {
			anonymous[m.Target] = true
			continue
		}
		taken[m.Target] = true
	}
	var added []mount.Mount
	for _, m := range inherit {
		if m.Type != mount.TypeVolume || m.Name == "" || taken[m.Destination] {
			continue
		}
		taken[m.Destination] = true
		delete(anonymous, m.Destination)
		added = append(added, mount.Mount{Type: mount.TypeVolume, Source: m.Name, Target: m.Destination, ReadOnly: !m.RW})
	}
	if len(added) == 0 {
		return mounts
	}
	out := make([]mount.Mount, 0, len(mounts)+len(added))
	for _, m := range mounts {
		if m.Type == mount.TypeVolume && m.Source == "" && !anonymous[m.Target] {
			continue // replaced by the inherited volume
		}
		out = append(out, m)
	}
	out = append(out, added...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// fileTarget is where a secret or config lands: target if absolute,
// dir+target if relative, dir+source by default.
func fileTarget(dir, source, target string) string {
	switch {
	case target == "":
		return dir + source
	case strings.HasPrefix(target, "/"):
		return target
	default:
		return dir + target
	}
}

func volumeMount(p *types.Project, v types.ServiceVolumeConfig) (mount.Mount, error) {
	m := mount.Mount{
		Type:        mount.Type(v.Type),
		Source:      v.Source,
		Target:      v.Target,
		ReadOnly:    v.ReadOnly,
		Consistency: mount.Consistency(v.Consistency),
	}
	switch v.Type {
	case types.VolumeTypeBind:
		if !filepath.IsAbs(m.Source) {
			abs, err := filepath.Abs(m.Source)
			if err != nil {
				return m, err
			}
			m.Source = abs
		}
		if b := v.Bind; b != nil {
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(b.Propagation), CreateMountpoint: bool(b.CreateHostPath)}
			switch b.Recursive {
			case "disabled":
				m.BindOptions.NonRecursive = true
			case "writable":
				m.BindOptions.ReadOnlyNonRecursive = true
			case "readonly":
				m.BindOptions.ReadOnlyForceRecursive = true
			}
		}
	case types.VolumeTypeVolume:
		if v.Source != "" {
			if pv, ok := p.Volumes[v.Source]; ok {
				m.Source = pv.Name
			}
		}
		if vv := v.Volume; vv != nil {
			m.VolumeOptions = &mount.VolumeOptions{NoCopy: vv.NoCopy, Subpath: vv.Subpath}
		}
	case types.VolumeTypeTmpfs:
		if t := v.Tmpfs; t != nil {
			m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(t.Size), Mode: os.FileMode(t.Mode)}
		}
	}
	return m, nil
}

// networkSettings picks the network mode and the endpoints: network_mode
// as given, else the service's networks by priority (the first one is the
// primary), each endpoint with the container name, the service name and
// its aliases as DNS names and its static addresses.
func networkSettings(p *types.Project, s types.ServiceConfig, containerName string, useAliases bool) (container.NetworkMode, *network.NetworkingConfig, error) {
	if s.NetworkMode != "" {
		return container.NetworkMode(s.NetworkMode), nil, nil
	}
	if len(p.Networks) == 0 {
		return "none", nil, nil
	}
	keys := []string{"default"}
	if len(s.Networks) > 0 {
		keys = s.NetworksByPriority()
	}
	eps := map[string]*network.EndpointSettings{}
	for _, key := range keys {
		n, ok := p.Networks[key]
		if !ok {
			return "", nil, fmt.Errorf("service %q refers to undefined network %s", s.Name, key)
		}
		ep, err := endpoint(s, containerName, key, useAliases)
		if err != nil {
			return "", nil, err
		}
		eps[n.Name] = ep
	}
	return container.NetworkMode(p.Networks[keys[0]].Name), &network.NetworkingConfig{EndpointsConfig: eps}, nil
}

func endpoint(s types.ServiceConfig, containerName, key string, useAliases bool) (*network.EndpointSettings, error) {
	cfg := s.Networks[key]
	ep := &network.EndpointSettings{Aliases: []string{containerName}}
	if useAliases {
		ep.Aliases = append(ep.Aliases, s.Name)
		if cfg != nil {
			ep.Aliases = append(ep.Aliases, cfg.Aliases...)
		}
	}
	if cfg == nil {
		return ep, nil
	}
	ipam := &network.EndpointIPAMConfig{}
	if cfg.Ipv4Address != "" {
		a, err := netip.ParseAddr(cfg.Ipv4Address)
		if err != nil {
			return nil, fmt.Errorf("service %q: invalid ipv4_address %q", s.Name, cfg.Ipv4Address)
		}
		ipam.IPv4Address = a
	}
	if cfg.Ipv6Address != "" {
		a, err := netip.ParseAddr(cfg.Ipv6Address)
		if err != nil {
			return nil, fmt.Errorf("service %q: invalid ipv6_address %q", s.Name, cfg.Ipv6Address)
		}
		ipam.IPv6Address = a
	}
	for _, l := range cfg.LinkLocalIPs {
		a, err := netip.ParseAddr(l)
		if err != nil {
			return nil, fmt.Errorf("service %q: invalid link_local_ips entry %q", s.Name, l)
		}
		ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
	}
	ep.IPAMConfig = ipam
	ep.DriverOpts = cfg.DriverOpts
	ep.GwPriority = cfg.GatewayPriority
	if cfg.MacAddress != "" {
		mac, err := net.ParseMAC(cfg.MacAddress)
		if err != nil {
			return nil, fmt.Errorf("service %q: invalid mac_address %q", s.Name, cfg.MacAddress)
		}
		ep.MacAddress = network.HardwareAddr(mac)
	}
	return ep, nil
}
