package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/errdefs"
)

// EndpointRequest asks for a container's endpoint on one network.
type EndpointRequest struct {
	Network string // name or ID
	// Name, when set, is tried when Network is not found (a network
	// removed and created again under the same name has a new ID).
	Name    string
	Aliases []string
	// IPv4 and IPv6 are the addresses asked for (--ip, --ip6); invalid:
	// any free one.
	IPv4, IPv6 netip.Addr
	// MAC is the address asked for (--mac-address, EndpointSettings.
	// MacAddress); nil: one derived from the IPv4 address.
	MAC net.HardwareAddr
	// Current is what a restored sandbox already has (Restore only).
	Current *network.EndpointSettings
}

// SandboxRequest describes a container's network sandbox.
type SandboxRequest struct {
	ContainerID string
	Name        string // without the leading "/"
	Hostname    string
	Endpoints   []EndpointRequest
	// Ports are HostConfig.PortBindings; with PublishAll every port of
	// Exposed without a binding gets an ephemeral host port.
	Ports      network.PortMap
	PublishAll bool
	Exposed    network.PortSet
	// DNS are the container's --dns servers (the embedded DNS forwards
	// to them instead of the daemon's upstreams).
	DNS []netip.Addr
	// NetNSPath and Bindings are the live sandbox's, for Restore.
	NetNSPath string
	Bindings  network.PortMap
}

// Sandbox is a container's network as set up.
type Sandbox struct {
	// NetNSPath is the network namespace file the container joins.
	NetNSPath string
	// Endpoints are by network name, in Docker's inspect shape.
	Endpoints map[string]*network.EndpointSettings
	// Ports are the published ports with the host ports chosen.
	Ports network.PortMap
	// EmbeddedDNS is set when the container is on a user-defined
	// network: its resolv.conf must name 127.0.0.11.
	EmbeddedDNS bool
}

type sandbox struct {
	id, name, hostname string
	nsPath             string
	endpoints          map[string]*endpoint // by network ID
	order              []string             // network IDs in attach order
	ports              []portRule
	bindings           network.PortMap
	reserved           []int        // sockets holding the host ports
	proxies            []*portProxy // userland relays of IPv6 loopback bindings
	upstreams          []string
	dns                *dnsServer
	// gone is set once the container stopped: the sandbox no longer
	// counts as an endpoint and its names no longer resolve, while its
	// teardown runs in the background.
	gone bool
	// torn is closed once the teardown has given everything back
	// (teardown_wait.go); tornDone records that it was.
	torn     chan struct{}
	tornDone bool
}

type endpoint struct {
	net     *Record
	id      string
	ip      netip.Addr
	ip6     netip.Addr // on dual-stack networks
	mac     net.HardwareAddr
	aliases []string
	peer    string // the interface in the sandbox (eth0, eth1, ...)
	host    string // the veth's host end ("" after a restore)
}

func (e *endpoint) settings(cid string) *network.EndpointSettings {
	es := &network.EndpointSettings{
		NetworkID: e.net.ID, EndpointID: e.id, Aliases: e.aliases,
		IPAddress: e.ip, IPPrefixLen: e.net.Subnet.Bits(), MacAddress: network.HardwareAddr(e.mac),
	}
	if !e.net.Internal {
		es.Gateway = e.net.Gateway
	}
	if e.ip6.IsValid() {
		es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = e.ip6, e.net.Subnet6.Bits()
		if !e.net.Internal {
			es.IPv6Gateway = e.net.Gateway6
		}
	}
	return es
}

// macFor is Docker's MAC derivation: 02:42 and the IPv4 address.
func macFor(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

func (s *Service) netnsPath(id string) string {
	return filepath.Join(s.cfg.ExecRoot, "netns", id)
}

// Setup creates a container's sandbox: a network namespace with
// loopback up and one veth endpoint per requested network (addresses
// from IPAM, default route through the first network's gateway), the
// published ports (reserved on the host, DNAT rules) and, on
// user-defined networks, the embedded DNS server. On error nothing is
// left behind.
func (s *Service) Setup(ctx context.Context, req SandboxRequest) (_ *Sandbox, retErr error) {
	id := req.ContainerID
	if err := s.waitConflictingTeardowns(ctx, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if _, ok := s.sandboxes[id]; ok {
		s.mu.Unlock()
		return nil, errdefs.Newf(errdefs.Conflict, "container %s already has a network sandbox", id[:12])
	}
	var nets []*Record
	for _, e := range req.Endpoints {
		r, err := s.lookup(e.Network)
		if err != nil && e.Name != "" {
			r, err = s.lookup(e.Name)
		}
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if r.Driver != "bridge" && !r.subIf() {
			s.mu.Unlock()
			return nil, errdefs.Newf(errdefs.InvalidArgument, "network %s cannot be joined with other networks", r.Name)
		}
		nets = append(nets, r)
	}
	sb := &sandbox{id: id, name: req.Name, hostname: req.Hostname, nsPath: s.netnsPath(id), endpoints: map[string]*endpoint{}}
	s.sandboxes[id] = sb
	s.mu.Unlock()
	defer func() {
		if retErr != nil {
			s.teardown(sb)
		}
	}()
	var pool *pooled
	if len(nets) > 0 && nets[0].Driver == "bridge" && (nets[0].MTU == 0 || nets[0].MTU == 1500) && req.Endpoints[0].MAC == nil {
		pool = s.takePooled()
	}
	if pool != nil {
		s.mu.Lock()
		sb.nsPath = pool.nsPath
		s.mu.Unlock()
	} else {
		if err := createNetNS(sb.nsPath); err != nil {
			return nil, err
		}
		if len(nets) == 0 {
			if err := upLoopback(sb.nsPath); err != nil {
				return nil, err
			}
		}
	}
	for i, r := range nets {
		var p *pooled
		if i == 0 {
			p = pool
		}
		if _, err := s.addEndpoint(sb, r, req.Endpoints[i], i == 0, p); err != nil {
			if p != nil && p.h != nil {
				p.h.Close()
			}
			return nil, err
		}
	}
	if len(nets) > 0 && nets[0].Driver == "bridge" {
		if err := s.publish(sb, nets[0], req); err != nil {
			return nil, err
		}
	}
	sb.upstreams = s.upstreamsFor(req.DNS)
	out := s.describe(sb)
	if out.EmbeddedDNS {
		if err := s.startDNS(sb); err != nil {
			return nil, fmt.Errorf("embedded DNS: %w", err)
		}
	}
	if len(sb.ports) > 0 {
		if err := s.syncFirewall(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addEndpoint allocates an address on r and plugs a veth into sb.
func (s *Service) addEndpoint(sb *sandbox, r *Record, req EndpointRequest, first bool, pool *pooled) (*endpoint, error) {
	if req.IPv4.IsValid() && !r.UserSubnet {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "user specified IP address is supported only when connecting to networks with user configured subnets")
	}
	if req.MAC != nil {
		if err := ValidMAC(req.MAC); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	ip, err := s.ipam.allocate(r, req.IPv4, sb.id)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	defer func() {
		s.log.Debug("endpoint", "id", sb.id[:12], "network", r.Name, "pooled", pool != nil, "ipam", t1.Sub(t0), "link", time.Since(t1))
		if s.trace != nil {
			s.trace(pool != nil, t1.Sub(t0), time.Since(t1))
		}
	}()
	// Host ends get fresh names: the previous run's veth may still be
	// going away with its namespace.
	ep := &endpoint{net: r, id: newID(), ip: ip, mac: macFor(ip), aliases: req.Aliases, host: "vb" + newID()[:10]}
	if pool != nil {
		ep.host, ep.mac = pool.host, pool.mac
	}
	if req.MAC != nil {
		ep.mac = slices.Clone(req.MAC)
	}
	s.mu.Lock()
	ep.peer = "eth" + strconv.Itoa(len(sb.order))
	sb.endpoints[r.ID] = ep
	sb.order = append(sb.order, r.ID)
	s.mu.Unlock()
	if r.Subnet6.IsValid() {
		ip6, err := s.ipam.allocate(r.v6(), req.IPv6, sb.id)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		ep.ip6 = ip6
		s.mu.Unlock()
	}
	gw := r.Gateway
	if r.Internal || !first {
		gw = netip.Addr{}
	}
	switch {
	case r.subIf():
		ep.host = ""
		// A macvlan interface gets the endpoint's MAC (given or derived,
		// as inspect shows it); an ipvlan one has its parent's.
		var mac net.HardwareAddr
		if r.Driver == "macvlan" {
			mac = ep.mac
		} else if req.MAC != nil {
			err = errdefs.Newf(errdefs.InvalidArgument, "ipvlan interfaces share their parent's MAC address: --mac-address is not supported")
			break
		} else if pm := parentMAC(r); pm != nil {
			s.mu.Lock()
			ep.mac = pm
			s.mu.Unlock()
		}
		err = addSubIf(sb.nsPath, r, ep.peer, netip.PrefixFrom(ip, r.Subnet.Bits()), gw, first, mac)
	case pool != nil:
		err = pool.plug(r.Bridge, netip.PrefixFrom(ip, r.Subnet.Bits()), gw)
	default:
		err = addVeth(sb.nsPath, vethConfig{hostName: ep.host, peerName: ep.peer, bridge: r.Bridge, mtu: r.MTU,
			mac: ep.mac, addr: netip.PrefixFrom(ip, r.Subnet.Bits()), gateway: gw}, first)
	}
	if err != nil {
		return nil, err
	}
	if ep.ip6.IsValid() {
		gw6 := r.Gateway6
		if r.Internal || !first {
			gw6 = netip.Addr{}
		}
		if gw6.IsValid() && r.Driver == "ipvlan" && r.Mode != "l2" {
			// ipvlan l3 has no neighbour: the route goes through the interface.
			gw6 = netip.IPv6Unspecified()
		}
		if err := addAddr6(sb.nsPath, ep.peer, netip.PrefixFrom(ep.ip6, r.Subnet6.Bits()), gw6); err != nil {
			return nil, err
		}
	}
	return ep, nil
}

func (s *Service) describe(sb *sandbox) *Sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &Sandbox{NetNSPath: sb.nsPath, Endpoints: map[string]*network.EndpointSettings{}, Ports: sb.bindings}
	for _, nid := range sb.order {
		ep := sb.endpoints[nid]
		es := ep.settings(sb.id)
		es.DNSNames = s.dnsNames(sb, ep)
		out.Endpoints[ep.net.Name] = es
		if ep.net.userDefined() {
			out.EmbeddedDNS = true
		}
	}
	if out.Ports == nil {
		out.Ports = network.PortMap{}
	}
	return out
}

func (s *Service) dnsNames(sb *sandbox, ep *endpoint) []string {
	if !ep.net.userDefined() {
		return nil
	}
	names := []string{sb.name}
	names = append(names, ep.aliases...)
	return append(names, sb.id[:12])
}

// Detach marks a container's sandbox as gone as soon as the container
// stopped (cheap, on the caller's path): networks can be removed and
// its names stop resolving while Teardown runs in the background.
func (s *Service) Detach(containerID string) {
	s.mu.Lock()
	if sb, ok := s.sandboxes[containerID]; ok {
		sb.gone = true
	}
	s.mu.Unlock()
}

// Teardown removes a container's sandbox: DNS server, published ports,
// veth pairs, addresses and the namespace. Unknown containers are a
// no-op.
func (s *Service) Teardown(ctx context.Context, containerID string) error {
	s.mu.Lock()
	sb, ok := s.sandboxes[containerID]
	s.mu.Unlock()
	if !ok {
		// A sandbox berthd lost track of (a crash between steps): its
		// namespace file may still be there.
		return removeNetNS(s.netnsPath(containerID))
	}
	return s.teardown(sb)
}

func (s *Service) teardown(sb *sandbox) error {
	var errs []error
	sb.closeDNS()
	s.mu.Lock()
	s.beginTeardown(sb)
	delete(s.sandboxes, sb.id)
	eps := make([]*endpoint, 0, len(sb.endpoints))
	for _, ep := range sb.endpoints {
		eps = append(eps, ep)
	}
	hadPorts := len(sb.ports) > 0
	reserved := sb.reserved
	sb.reserved = nil
	proxies := sb.proxies
	sb.proxies = nil
	s.mu.Unlock()
	for _, fd := range reserved {
		closeFD(fd)
	}
	for _, px := range proxies {
		px.Close()
	}
	if hadPorts {
		if err := s.syncFirewall(); err != nil {
			errs = append(errs, err)
		}
	}
	// The veth pairs are not deleted one by one: deleting a link waits
	// for RCU grace periods with the RTNL held (about 20 ms here, which
	// every other container's setup would wait for). Their host ends
	// leave the bridge now (0.2 ms), and the kernel deletes them, in
	// batches, when the namespace goes with its file — which TCP
	// connections in TIME_WAIT inside it can delay by up to a minute.
	for _, ep := range eps {
		if ep.net.subIf() {
			continue // goes with the namespace; it has no host end
		}
		if err := detachHostEnd(sb.nsPath, ep.host, ep.peer); err != nil {
			errs = append(errs, err)
		}
		if ep.host != "" {
			s.mu.Lock()
			s.detached = append(s.detached, ep.host)
			if len(s.detached) > 1024 {
				s.detached = s.detached[512:]
			}
			s.mu.Unlock()
		}
	}
	if err := removeNetNS(sb.nsPath); err != nil {
		errs = append(errs, err)
	}
	for _, ep := range eps {
		if err := s.ipam.release(ep.net.ID, ep.ip, sb.id); err != nil {
			errs = append(errs, err)
		}
		_ = s.ipam.release(ep.net.ID+"/6", ep.ip6, sb.id)
	}
	s.endTeardown(sb)
	return errors.Join(errs...)
}

// Connect plugs a running container's sandbox into one more network.
func (s *Service) Connect(ctx context.Context, containerID string, req EndpointRequest) (*network.EndpointSettings, error) {
	s.mu.Lock()
	sb, ok := s.sandboxes[containerID]
	if !ok {
		s.mu.Unlock()
		return nil, errdefs.Newf(errdefs.Conflict, "container %s has no network sandbox", containerID[:12])
	}
	r, err := s.lookup(req.Network)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if r.Driver != "bridge" && !r.subIf() {
		s.mu.Unlock()
		return nil, errdefs.Newf(errdefs.Forbidden, "container cannot be disconnected from host network or connected to host network")
	}
	if _, ok := sb.endpoints[r.ID]; ok {
		s.mu.Unlock()
		return nil, errdefs.Newf(errdefs.Forbidden, "endpoint with name %s already exists in network %s", sb.name, r.Name)
	}
	first := len(sb.order) == 0
	s.mu.Unlock()
	ep, err := s.addEndpoint(sb, r, req, first, nil)
	if err != nil {
		s.mu.Lock()
		delete(sb.endpoints, r.ID)
		sb.order = slices.DeleteFunc(sb.order, func(x string) bool { return x == r.ID })
		s.mu.Unlock()
		if ep == nil {
			_ = s.ipam.release(r.ID, req.IPv4, sb.id)
		}
		return nil, err
	}
	if r.userDefined() && sb.dns == nil {
		if err := s.startDNS(sb); err != nil {
			s.log.Warn("embedded DNS", "id", containerID, "err", err)
		}
	}
	s.mu.Lock()
	es := ep.settings(sb.id)
	es.DNSNames = s.dnsNames(sb, ep)
	s.mu.Unlock()
	return es, nil
}

// Disconnect unplugs a running container from a network.
func (s *Service) Disconnect(ctx context.Context, containerID, netRef string) error {
	s.mu.Lock()
	sb, ok := s.sandboxes[containerID]
	if !ok {
		s.mu.Unlock()
		return nil
	}
	r, err := s.lookup(netRef)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	ep, ok := sb.endpoints[r.ID]
	if !ok {
		s.mu.Unlock()
		return errdefs.Newf(errdefs.Forbidden, "container %s is not connected to network %s", containerID[:12], r.Name)
	}
	delete(sb.endpoints, r.ID)
	sb.order = slices.DeleteFunc(sb.order, func(x string) bool { return x == r.ID })
	s.mu.Unlock()
	err = delPeer(sb.nsPath, ep.peer)
	_ = s.ipam.release(r.ID+"/6", ep.ip6, sb.id)
	return errors.Join(err, s.ipam.release(r.ID, ep.ip, sb.id))
}

// Restore takes back the sandboxes of containers that kept running while
// berthd was down: their addresses stay allocated (every other
// allocation is released), their host ports are reserved again, the
// embedded DNS servers are restarted in their namespaces and the
// firewall table is rebuilt once, atomically.
func (s *Service) Restore(ctx context.Context, running []SandboxRequest) error {
	s.mu.Lock()
	for _, req := range running {
		sb := &sandbox{id: req.ContainerID, name: req.Name, hostname: req.Hostname, nsPath: req.NetNSPath, endpoints: map[string]*endpoint{}, bindings: req.Bindings}
		for _, e := range req.Endpoints {
			r, err := s.lookup(e.Network)
			if err != nil || e.Current == nil || !e.Current.IPAddress.IsValid() {
				continue
			}
			ep := &endpoint{net: r, id: e.Current.EndpointID, ip: e.Current.IPAddress, ip6: e.Current.GlobalIPv6Address,
				mac: net.HardwareAddr(e.Current.MacAddress), aliases: e.Aliases, peer: "eth" + strconv.Itoa(len(sb.order))}
			sb.endpoints[r.ID] = ep
			sb.order = append(sb.order, r.ID)
		}
		sb.ports = rulesFor(sb, req.Bindings)
		sb.upstreams = s.upstreamsFor(req.DNS)
		s.sandboxes[sb.id] = sb
	}
	keep := map[string]map[netip.Addr]string{}
	for id, sb := range s.sandboxes {
		for nid, ep := range sb.endpoints {
			if keep[nid] == nil {
				keep[nid] = map[netip.Addr]string{}
			}
			keep[nid][ep.ip] = id
			if ep.ip6.IsValid() {
				if keep[nid+"/6"] == nil {
					keep[nid+"/6"] = map[netip.Addr]string{}
				}
				keep[nid+"/6"][ep.ip6] = id
			}
		}
	}
	s.mu.Unlock()
	s.ipam.reconcile(keep)
	for _, req := range running {
		s.mu.Lock()
		sb := s.sandboxes[req.ContainerID]
		s.mu.Unlock()
		sb.reserved = reserveAll(sb.bindings, s.log)
		s.restoreProxies(sb)
		embedded := false
		for _, ep := range sb.endpoints {
			embedded = embedded || ep.net.userDefined()
		}
		if embedded {
			if err := s.startDNS(sb); err != nil {
				s.log.Warn("restart embedded DNS", "id", sb.id, "err", err)
			}
		}
	}
	// Namespace files of containers that no longer run, and of the
	// previous run's pool.
	ents, _ := filepath.Glob(filepath.Join(s.cfg.ExecRoot, "netns", "*"))
	for _, p := range ents {
		live := false
		s.mu.Lock()
		for _, sb := range s.sandboxes {
			live = live || sb.nsPath == p
		}
		s.mu.Unlock()
		if !live {
			_ = removeNetNS(p)
		}
	}
	if !s.cfg.NoPool {
		s.startPool()
	}
	return s.syncFirewall()
}

// rulesFor derives the DNAT rules of sb's bindings (to the address on
// its first network).
func rulesFor(sb *sandbox, bindings network.PortMap) []portRule {
	if len(sb.order) == 0 {
		return nil
	}
	ep := sb.endpoints[sb.order[0]]
	var out []portRule
	for p, bs := range bindings {
		for _, b := range bs {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil {
				continue
			}
			cip := ep.ip
			if b.HostIP.Is6() && b.HostIP.IsLoopback() {
				continue // proxied (restoreProxies)
			}
			if b.HostIP.Is6() {
				if cip = ep.ip6; !cip.IsValid() {
					continue
				}
			}
			out = append(out, portRule{HostIP: b.HostIP, HostPort: uint16(hp), Proto: string(p.Proto()), CIP: cip, CPort: p.Num()})
		}
	}
	return out
}

// upstreamsFor is the list the embedded DNS forwards to.
func (s *Service) upstreamsFor(dns []netip.Addr) []string {
	var out []string
	for _, a := range dns {
		out = append(out, net.JoinHostPort(a.String(), "53"))
	}
	if len(out) > 0 {
		return out
	}
	for _, u := range s.cfg.DNSUpstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			u = net.JoinHostPort(u, "53")
		}
		out = append(out, u)
	}
	if len(out) > 0 {
		return out
	}
	for _, a := range HostNameservers() {
		out = append(out, net.JoinHostPort(a, "53"))
	}
	return out
}

// Inspect-side helpers.

// endpointsOf lists the live endpoints of network id, by container.
func (s *Service) endpointsOf(id string) map[string]network.EndpointResource {
	out := map[string]network.EndpointResource{}
	for cid, sb := range s.sandboxes {
		if ep, ok := sb.endpoints[id]; ok && !sb.gone {
			er := network.EndpointResource{Name: sb.name, EndpointID: ep.id, MacAddress: network.HardwareAddr(ep.mac),
				IPv4Address: netip.PrefixFrom(ep.ip, ep.net.Subnet.Bits())}
			if ep.ip6.IsValid() {
				er.IPv6Address = netip.PrefixFrom(ep.ip6, ep.net.Subnet6.Bits())
			}
			out[cid] = er
		}
	}
	return out
}

func lowerTrim(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }
