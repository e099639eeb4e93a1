package container

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/errdefs"
	bnet "github.com/berth-dev/berth/internal/network"
)

// Networks is what the container service needs of the network manager
// (internal/network.Service): resolve network references at create,
// build and remove a container's sandbox around each run, take the
// sandboxes of running containers back after a restart, and plug a
// running container into networks.
type Networks interface {
	Lookup(ref string) (id, name, driver string, err error)
	Setup(ctx context.Context, req bnet.SandboxRequest) (*bnet.Sandbox, error)
	Detach(containerID string)
	Teardown(ctx context.Context, containerID string) error
	Restore(ctx context.Context, running []bnet.SandboxRequest) error
	Connect(ctx context.Context, containerID string, req bnet.EndpointRequest) (*network.EndpointSettings, error)
	Disconnect(ctx context.Context, containerID, netRef string) error
}

// SandboxState is a running container's network sandbox, persisted so a
// restarted berthd can take it back.
type SandboxState struct {
	Key   string          `json:"key"` // the netns file
	Ports network.PortMap `json:"ports,omitempty"`
}

// usesSandbox reports whether r's network mode gets a berth sandbox
// (bridge and user-defined networks).
func usesSandbox(hc *container.HostConfig) bool {
	m := hc.NetworkMode
	return !(m.IsNone() || m.IsHost() || m.IsContainer())
}

// resolveNetworks fills r.Networks at create from the network mode and
// the request's endpoint configs, with Docker's checks.
func (s *Service) resolveNetworks(r *Record, nc *network.NetworkingConfig) error {
	hc := r.Host
	mode := string(hc.NetworkMode)
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "bridge"
	}
	var eps map[string]*network.EndpointSettings
	if nc != nil {
		eps = nc.EndpointsConfig
	}
	if err := s.validateLinks(hc); err != nil {
		return err
	}
	if !usesSandbox(hc) {
		for _, es := range eps {
			if es != nil && len(es.MacAddress) > 0 {
				return errdefs.Newf(errdefs.InvalidArgument, "conflicting options: mac-address and the network mode")
			}
		}
		if !hc.NetworkMode.IsContainer() {
			r.Networks[mode] = &NetworkInfo{}
			if s.cfg.Networks != nil {
				if id, _, _, err := s.cfg.Networks.Lookup(mode); err == nil {
					r.Networks[mode].NetworkID = id
				}
			}
		}
		if len(hc.PortBindings) > 0 && !hc.NetworkMode.IsHost() {
			return errdefs.Newf(errdefs.InvalidArgument, "conflicting options: port publishing and the container type network mode")
		}
		return nil
	}
	if s.cfg.Networks == nil {
		r.Networks[mode] = &NetworkInfo{}
		return nil
	}
	add := func(ref string, es *network.EndpointSettings) error {
		id, name, driver, err := s.cfg.Networks.Lookup(ref)
		if err != nil {
			return createNetErr(err)
		}
		switch driver {
		case "host", "null":
			return errdefs.Newf(errdefs.InvalidArgument, "container cannot be connected to network %s with other networks", name)
		}
		ep := &network.EndpointSettings{}
		if es != nil {
			ep.IPAMConfig = es.IPAMConfig.Copy()
			ep.Aliases = slices.Clone(es.Aliases)
			ep.Links = slices.Clone(es.Links)
			ep.DriverOpts = es.DriverOpts
		}
		if name == "bridge" {
			if ep.IPAMConfig != nil && (ep.IPAMConfig.IPv4Address.IsValid() || ep.IPAMConfig.IPv6Address.IsValid()) {
				return errdefs.Newf(errdefs.InvalidArgument, "user specified IP address is supported on user defined networks only")
			}
			if len(ep.Aliases) > 0 {
				return errdefs.Newf(errdefs.InvalidArgument, "network-scoped alias is supported only for containers in user defined networks")
			}
		}
		if _, dup := r.Networks[name]; dup {
			return nil
		}
		ep.NetworkID = id
		ni := &NetworkInfo{NetworkID: id, Endpoint: ep}
		if es != nil && len(es.MacAddress) > 0 {
			if err := bnet.ValidMAC(net.HardwareAddr(es.MacAddress)); err != nil {
				return err
			}
			ep.MacAddress = slices.Clone(es.MacAddress)
			ni.MAC = net.HardwareAddr(es.MacAddress).String()
		}
		r.Networks[name] = ni
		if r.PrimaryNetwork == "" {
			r.PrimaryNetwork = name
		}
		return nil
	}
	// The docker CLI keys the mode's endpoint by the mode as given
	// ("default" for the default network).
	isMode := func(k string) bool {
		return k == mode || k == string(hc.NetworkMode) || (k == "default" && mode == "bridge")
	}
	var primary *network.EndpointSettings
	for k, v := range eps {
		if isMode(k) {
			primary = v
		}
	}
	if err := add(mode, primary); err != nil {
		return err
	}
	for k, v := range eps {
		if isMode(k) {
			continue
		}
		if err := add(k, v); err != nil {
			return err
		}
	}
	return nil
}

// sandboxRequest describes r's sandbox for the network manager.
func sandboxRequest(r *Record) bnet.SandboxRequest {
	req := bnet.SandboxRequest{
		ContainerID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Hostname: r.Config.Hostname,
		Ports: r.Host.PortBindings, PublishAll: r.Host.PublishAllPorts, Exposed: r.Config.ExposedPorts,
	}
	for _, a := range r.Host.DNS {
		req.DNS = append(req.DNS, a)
	}
	names := make([]string, 0, len(r.Networks))
	for name := range r.Networks {
		names = append(names, name)
	}
	// The primary network first (its gateway is the default route and
	// its address the target of published ports), then by name.
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == r.PrimaryNetwork:
			return -1
		case b == r.PrimaryNetwork:
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		ni := r.Networks[name]
		ref := ni.NetworkID
		if ref == "" {
			ref = name
		}
		e := bnet.EndpointRequest{Network: ref, Name: name}
		if ni.MAC != "" {
			e.MAC, _ = net.ParseMAC(ni.MAC)
		}
		if ni.Endpoint != nil {
			e.Aliases = ni.Endpoint.Aliases
			if ni.Endpoint.IPAMConfig != nil {
				e.IPv4 = ni.Endpoint.IPAMConfig.IPv4Address
				e.IPv6 = ni.Endpoint.IPAMConfig.IPv6Address
			}
			if ni.Endpoint.IPAddress.IsValid() {
				e.Current = ni.Endpoint
			}
		}
		req.Endpoints = append(req.Endpoints, e)
	}
	if r.Sandbox != nil {
		req.NetNSPath = r.Sandbox.Key
		req.Bindings = r.Sandbox.Ports
	}
	return req
}

// setupNetwork builds r's sandbox before its run, writes the hosts and
// resolv.conf files that go with it and records the endpoints in c.
// It returns the netns file the container joins ("" = the mode needs
// none from berth).
func (s *Service) setupNetwork(ctx context.Context, c *Container, r *Record) (string, error) {
	if s.cfg.Networks == nil || !usesSandbox(r.Host) {
		return "", nil
	}
	sb, err := s.cfg.Networks.Setup(ctx, sandboxRequest(r))
	if err != nil {
		return "", err
	}
	var primary *network.EndpointSettings
	for name, es := range sb.Endpoints {
		s.netEvent("connect", es.NetworkID, name, r.ID)
	}
	c.mu.Lock()
	for name, es := range sb.Endpoints {
		ni := c.rec.Networks[name]
		if ni == nil {
			ni = &NetworkInfo{NetworkID: es.NetworkID, Endpoint: &network.EndpointSettings{}}
			c.rec.Networks[name] = ni
		}
		if ni.Endpoint == nil {
			ni.Endpoint = &network.EndpointSettings{}
		}
		mergeOperational(ni.Endpoint, es)
		if name == r.PrimaryNetwork || primary == nil {
			primary = ni.Endpoint
		}
	}
	c.rec.Sandbox = &SandboxState{Key: sb.NetNSPath, Ports: sb.Ports}
	c.mu.Unlock()
	if err := s.writeSandboxFiles(r, primary, sb.EmbeddedDNS); err != nil {
		_ = s.cfg.Networks.Teardown(context.WithoutCancel(ctx), r.ID)
		return "", err
	}
	return sb.NetNSPath, nil
}

func mergeOperational(dst, src *network.EndpointSettings) {
	dst.NetworkID = src.NetworkID
	dst.EndpointID = src.EndpointID
	dst.Gateway = src.Gateway
	dst.IPAddress = src.IPAddress
	dst.IPPrefixLen = src.IPPrefixLen
	dst.MacAddress = src.MacAddress
	dst.DNSNames = src.DNSNames
	dst.GlobalIPv6Address = src.GlobalIPv6Address
	dst.GlobalIPv6PrefixLen = src.GlobalIPv6PrefixLen
	dst.IPv6Gateway = src.IPv6Gateway
}

// clearNetworkState forgets the operational side of r's endpoints once
// its run ended (Docker shows no address for a stopped container).
func clearNetworkState(r *Record) {
	for _, ni := range r.Networks {
		if ni.Endpoint != nil {
			ni.Endpoint.EndpointID = ""
			ni.Endpoint.Gateway = netip.Addr{}
			ni.Endpoint.IPAddress = netip.Addr{}
			ni.Endpoint.IPPrefixLen = 0
			ni.Endpoint.MacAddress = nil
			if m, err := net.ParseMAC(ni.MAC); err == nil {
				ni.Endpoint.MacAddress = network.HardwareAddr(m)
			}
			ni.Endpoint.DNSNames = nil
			ni.Endpoint.GlobalIPv6Address = netip.Addr{}
			ni.Endpoint.GlobalIPv6PrefixLen = 0
			ni.Endpoint.IPv6Gateway = netip.Addr{}
		}
	}
	r.Sandbox = nil
}

// teardownNetwork removes a run's sandbox.
func (s *Service) teardownNetwork(ctx context.Context, id string) {
	if s.cfg.Networks == nil {
		return
	}
	if err := s.cfg.Networks.Teardown(ctx, id); err != nil {
		s.log.Warn("network teardown", "id", id, "err", err)
	}
}

// writeSandboxFiles rewrites /etc/hosts (with the container's address)
// and /etc/resolv.conf (the embedded DNS on user-defined networks).
func (s *Service) writeSandboxFiles(r *Record, ep *network.EndpointSettings, embeddedDNS bool) error {
	dir := s.dataDir(r.ID)
	var gw, ip, ip6 netip.Addr
	if ep != nil {
		gw, ip, ip6 = ep.Gateway, ep.IPAddress, ep.GlobalIPv6Address
	}
	hosts := hostsFile(r, ip, ip6, gw) + s.linkHosts(r)
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	if embeddedDNS {
		var b strings.Builder
		b.WriteString("nameserver 127.0.0.11\n")
		for _, line := range strings.Split(resolvConf(r.Host), "\n") {
			if strings.HasPrefix(line, "search ") {
				b.WriteString(line + "\n")
			}
		}
		opts := []string{"ndots:0"}
		opts = append(opts, r.Host.DNSOptions...)
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
		return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(b.String()), 0o644)
	}
	return nil
}

// hostsFile is Docker's /etc/hosts: the fixed entries, --add-host
// entries (host-gateway is the gateway of the container's network), and
// the container's own address and hostname.
func hostsFile(r *Record, ip, ip6, gw netip.Addr) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, h := range r.Host.ExtraHosts {
		name, addr, ok := strings.Cut(h, ":")
		if !ok {
			name, addr, ok = strings.Cut(h, "=")
		}
		if !ok {
			continue
		}
		addr = strings.Trim(addr, "[]")
		if addr == "host-gateway" {
			if !gw.IsValid() {
				continue
			}
			addr = gw.String()
		}
		b.WriteString(addr + "\t" + name + "\n")
	}
	if ip.IsValid() && r.Config.Hostname != "" {
		b.WriteString(ip.String() + "\t" + r.Config.Hostname + "\n")
	}
	if ip6.IsValid() && r.Config.Hostname != "" {
		b.WriteString(ip6.String() + "\t" + r.Config.Hostname + "\n")
	}
	return b.String()
}

// splitLink splits a --link entry, "name[:alias]" as the CLI sends it or
// "/name:/parent/alias" as HostConfig.Links stores it, into the linked
// container's name and the alias (empty when none).
func splitLink(l string) (name, alias string) {
	name, alias, _ = strings.Cut(strings.TrimPrefix(l, "/"), ":")
	return name, alias[strings.LastIndex(alias, "/")+1:]
}

// linkHosts are the /etc/hosts lines of r's --link entries
// ("name[:alias]"): the linked container's address on a network r is
// on too, with the alias and the name, as Docker's legacy links.
func (s *Service) linkHosts(r *Record) string {
	var b strings.Builder
	for _, l := range r.Host.Links {
		name, alias := splitLink(l)
		c, err := s.Get(name)
		if err != nil {
			continue
		}
		c.mu.Lock()
		var ip netip.Addr
		for netName, ni := range c.rec.Networks {
			if _, shared := r.Networks[netName]; shared && ni.Endpoint != nil && ni.Endpoint.IPAddress.IsValid() {
				ip = ni.Endpoint.IPAddress
			}
		}
		cname := strings.TrimPrefix(c.rec.Name, "/")
		id := shortID(c.rec.ID)
		c.mu.Unlock()
		if !ip.IsValid() {
			continue
		}
		names := []string{}
		if alias != "" && alias != cname {
			names = append(names, alias)
		}
		names = append(names, id, cname)
		b.WriteString(ip.String() + "\t" + strings.Join(names, " ") + "\n")
	}
	return b.String()
}

// validateLinks checks that every --link names an existing container, as
// Docker does at create.
func (s *Service) validateLinks(hc *container.HostConfig) error {
	for _, l := range hc.Links {
		name, _ := splitLink(l)
		if _, err := s.Get(name); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "could not get container for %s", name)
		}
	}
	return nil
}

// restoreNetworks hands the sandboxes of running containers back to the
// network manager after a restart.
func (s *Service) restoreNetworks(ctx context.Context) {
	if s.cfg.Networks == nil {
		return
	}
	var reqs []bnet.SandboxRequest
	s.mu.RLock()
	for _, c := range s.byID {
		c.mu.Lock()
		if c.rec.State.Running() && c.rec.Sandbox != nil {
			reqs = append(reqs, sandboxRequest(&c.rec))
		}
		c.mu.Unlock()
	}
	s.mu.RUnlock()
	if err := s.cfg.Networks.Restore(ctx, reqs); err != nil {
		s.log.Error("restore networks", "err", err)
	}
}

// NetworkConnect connects a container to a network: a running one at
// once (with ip and aliases from es), a stopped one at its next start.
func (s *Service) NetworkConnect(ctx context.Context, ref, netRef string, es *network.EndpointSettings) error {
	if s.cfg.Networks == nil {
		return errdefs.Newf(errdefs.NotImplemented, "networks are not available")
	}
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	id, name, driver, err := s.cfg.Networks.Lookup(netRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	if !usesSandbox(rec.Host) || driver == "host" || driver == "null" {
		return errdefs.Newf(errdefs.Forbidden, "container cannot be disconnected from host network or connected to host network")
	}
	if _, ok := rec.Networks[name]; ok {
		return errdefs.Newf(errdefs.Forbidden, "endpoint with name %s already exists in network %s", strings.TrimPrefix(rec.Name, "/"), name)
	}
	ep := &network.EndpointSettings{NetworkID: id}
	var mac net.HardwareAddr
	if es != nil {
		ep.IPAMConfig = es.IPAMConfig.Copy()
		ep.Aliases = slices.Clone(es.Aliases)
		ep.Links = slices.Clone(es.Links)
		mac = connectMAC(es)
		if mac != nil {
			if err := bnet.ValidMAC(mac); err != nil {
				return err
			}
			ep.MacAddress = network.HardwareAddr(mac)
		}
	}
	if name == "bridge" && ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
		return errdefs.Newf(errdefs.InvalidArgument, "user specified IP address is supported on user defined networks only")
	}
	if rec.State.Running() && rec.Sandbox != nil {
		req := bnet.EndpointRequest{Network: id, Aliases: ep.Aliases, MAC: mac}
		if ep.IPAMConfig != nil {
			req.IPv4, req.IPv6 = ep.IPAMConfig.IPv4Address, ep.IPAMConfig.IPv6Address
		}
		got, err := s.cfg.Networks.Connect(ctx, rec.ID, req)
		if err != nil {
			return err
		}
		mergeOperational(ep, got)
	}
	c.mu.Lock()
	c.rec.Networks[name] = &NetworkInfo{NetworkID: id, Endpoint: ep}
	if mac != nil {
		c.rec.Networks[name].MAC = mac.String()
	}
	saved := c.rec
	c.mu.Unlock()
	s.netEvent("connect", id, name, rec.ID)
	return s.store.save(&saved)
}

// NetworkDisconnect disconnects a container from a network.
func (s *Service) NetworkDisconnect(ctx context.Context, ref, netRef string, force bool) error {
	if s.cfg.Networks == nil {
		return errdefs.Newf(errdefs.NotImplemented, "networks are not available")
	}
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	id, name, _, err := s.cfg.Networks.Lookup(netRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	if _, ok := rec.Networks[name]; !ok {
		return errdefs.Newf(errdefs.Forbidden, "container %s is not connected to network %s", rec.ID[:12], name)
	}
	if !usesSandbox(rec.Host) {
		return errdefs.Newf(errdefs.Forbidden, "container cannot be disconnected from host network or connected to host network")
	}
	if rec.State.Running() && rec.Sandbox != nil {
		if err := s.cfg.Networks.Disconnect(ctx, rec.ID, id); err != nil && !force {
			return err
		}
	}
	c.mu.Lock()
	delete(c.rec.Networks, name)
	if c.rec.PrimaryNetwork == name {
		c.rec.PrimaryNetwork = ""
		for n := range c.rec.Networks {
			c.rec.PrimaryNetwork = n
			break
		}
	}
	saved := c.rec
	c.mu.Unlock()
	s.netEvent("disconnect", id, name, rec.ID)
	return s.store.save(&saved)
}

// ConnectedTo reports whether any container (running or not) is
// configured on network id.
func (s *Service) ConnectedTo(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.byID {
		c.mu.Lock()
		for _, ni := range c.rec.Networks {
			if ni.NetworkID == id && c.rec.State.Running() {
				c.mu.Unlock()
				return true
			}
		}
		c.mu.Unlock()
	}
	return false
}

func (s *Service) netEvent(action, netID, netName, cid string) {
	if s.cfg.NetworkEvents != nil {
		s.cfg.NetworkEvents(Event{Action: action, ID: netID, Attributes: map[string]string{"name": netName, "type": "bridge", "container": cid}})
	}
}

// networkSettings renders r's networks for inspect.
func networkSettings(r *Record) (map[string]*network.EndpointSettings, network.PortMap) {
	nets := map[string]*network.EndpointSettings{}
	for name, ni := range r.Networks {
		es := &network.EndpointSettings{NetworkID: ni.NetworkID}
		if ni.Endpoint != nil {
			es = ni.Endpoint.Copy()
			if es.NetworkID == "" {
				es.NetworkID = ni.NetworkID
			}
		}
		nets[name] = es
	}
	ports := network.PortMap{}
	if r.Sandbox != nil || r.State.Running() {
		for p := range r.Config.ExposedPorts {
			ports[p] = nil
		}
		if r.Sandbox != nil {
			for p, bs := range r.Sandbox.Ports {
				ports[p] = bs
			}
		}
	}
	return nets, ports
}

// publishes reports whether r has a published port matching v
// ("80", "80/udp" or a range "8000-8080/tcp"; tcp when no protocol is
// given), for ps --filter publish=.
func publishes(r *Record, v string) bool {
	ports := r.Host.PortBindings
	if r.Sandbox != nil {
		ports = r.Sandbox.Ports
	}
	spec, proto, ok := strings.Cut(v, "/")
	if !ok {
		proto = "tcp"
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	if !isRange {
		hi = lo
	}
	from, err1 := strconv.Atoi(lo)
	to, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return false
	}
	for p, bs := range ports {
		if len(bs) > 0 && string(p.Proto()) == proto && int(p.Num()) >= from && int(p.Num()) <= to {
			return true
		}
	}
	return false
}

// portSummary is ps's Ports list: every exposed or published port, with
// each host binding.
func portSummary(ports network.PortMap) []container.PortSummary {
	out := []container.PortSummary{}
	keys := make([]network.Port, 0, len(ports))
	for p := range ports {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b network.Port) int { return int(a.Num()) - int(b.Num()) })
	for _, p := range keys {
		bs := ports[p]
		if len(bs) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bs {
			hp := 0
			for _, ch := range b.HostPort {
				hp = hp*10 + int(ch-'0')
			}
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(hp), Type: string(p.Proto())})
		}
	}
	return out
}

// createNetErr turns an unknown network at create into a bad request
// (400, as dockerd): a 404 would make the docker CLI try to pull the
// image.
func createNetErr(err error) error {
	if errdefs.Is(err, errdefs.NotFound) {
		return errdefs.With(errdefs.InvalidArgument, err)
	}
	return err
}

// connectMAC is the MAC address a network connect asks for: the
// endpoint's MacAddress (API 1.44+), or the driver option
// com.docker.network.endpoint.macaddress.
func connectMAC(es *network.EndpointSettings) net.HardwareAddr {
	if len(es.MacAddress) > 0 {
		return net.HardwareAddr(slices.Clone(es.MacAddress))
	}
	if v := es.DriverOpts["com.docker.network.endpoint.macaddress"]; v != "" {
		if m, err := net.ParseMAC(v); err == nil {
			return m
		}
		return net.HardwareAddr{0} // invalid: ValidMAC says so
	}
	return nil
}
