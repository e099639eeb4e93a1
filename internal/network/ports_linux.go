package network

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// publish chooses and reserves the host ports of req's bindings (and of
// every exposed port with PublishAll), and records the DNAT rules to the
// container's address on net.
//
// A host port is reserved by a socket bound to it (TCP: bound, never
// listening; UDP: bound): nothing else on the host can take the port
// while the container has it, a port held by another program is a clear
// error before the container starts, and traffic never reaches these
// sockets since it is DNATed before local delivery. Ephemeral ports
// (no host port given) come from the kernel's bind to port 0.
func (s *Service) publish(sb *sandbox, n *Record, req SandboxRequest) error {
	bindings := network.PortMap{}
	for p, bs := range req.Ports {
		bindings[p] = append([]network.PortBinding(nil), bs...)
	}
	if req.PublishAll {
		for p := range req.Exposed {
			if len(bindings[p]) == 0 {
				bindings[p] = []network.PortBinding{{}}
			}
		}
	}
	if len(bindings) == 0 {
		return nil
	}
	ep := sb.endpoints[n.ID]
	keys := make([]network.Port, 0, len(bindings))
	for p := range bindings {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	out := network.PortMap{}
	var rules []portRule
	// Reserved sockets are recorded at once so that teardown closes them
	// even when a later binding fails.
	defer func() {
		s.mu.Lock()
		sb.ports = rules
		sb.bindings = out
		s.mu.Unlock()
	}()
	for _, p := range keys {
		proto := string(p.Proto())
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return errdefs.Newf(errdefs.NotImplemented, "publishing %s ports is not supported", proto)
		}
		for _, b := range bindings[p] {
			hostIP := b.HostIP
			both := !hostIP.IsValid() // 0.0.0.0, and [::] for a dual-stack container
			if both {
				hostIP = netip.IPv4Unspecified()
				// The network's default binding address (dockerd's --ip
				// for the default network, -o ...host_binding_ipv4).
				if hb, err := netip.ParseAddr(n.Options["com.docker.network.bridge.host_binding_ipv4"]); err == nil && !hb.IsUnspecified() {
					hostIP, both = hb, false
				}
			}
			if hostIP.Is6() && proto != "sctp" && (hostIP.IsLoopback() || (hostIP.IsUnspecified() && !ep.ip6.IsValid())) {
				// ::1 cannot be DNATed (no route_localnet for IPv6), and
				// [::] has no IPv6 address to DNAT to: a userland proxy.
				lo, hi, err := hostPorts(b.HostPort)
				if err != nil {
					return err
				}
				if err := s.proxyBinding(sb, ep, p, hostIP, lo, hi, out); err != nil {
					return err
				}
				continue
			}
			if hostIP.Is6() && !ep.ip6.IsValid() {
				continue // an IPv6 binding needs an IPv6 address in the container
			}
			lo, hi, err := hostPorts(b.HostPort)
			if err != nil {
				return err
			}
			var port int
			if proto == "sctp" {
				// No SCTP sockets on kernels without CONFIG_IP_SCTP (this
				// one): the port is checked against berth's own rules.
				if port, err = s.reserveSCTP(sb, hostIP, lo, hi, rules); err != nil {
					return err
				}
			} else if hostIP.Is6() && hostIP.IsUnspecified() {
				// An explicit [::] binding: the rules DNAT every IPv6
				// address but ::1, which its socket relays.
				px, got, err := listenProxy(proto, hostIP, lo, hi, netip.AddrPortFrom(ep.ip6, p.Num()), s.log)
				if err != nil {
					return err
				}
				port = got
				s.mu.Lock()
				sb.proxies = append(sb.proxies, px)
				s.mu.Unlock()
			} else {
				fd, got, err := reservePort(proto, hostIP, lo, hi)
				if err != nil {
					return err
				}
				port = got
				s.mu.Lock()
				sb.reserved = append(sb.reserved, fd)
				s.mu.Unlock()
			}
			cip := ep.ip
			if hostIP.Is6() {
				cip = ep.ip6
			}
			out[p] = append(out[p], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(port)})
			rules = append(rules, portRule{HostIP: hostIP, HostPort: uint16(port), Proto: proto, CIP: cip, CPort: p.Num()})
			if both && !ep.ip6.IsValid() && proto != "sctp" {
				// An IPv4-only container: [::] with the same port goes
				// through the proxy to its IPv4 address, as dockerd's
				// docker-proxy does (so that "localhost" resolving to ::1
				// works); skipped when taken or without IPv6.
				px, _, err := listenProxy(proto, netip.IPv6Unspecified(), port, port, netip.AddrPortFrom(ep.ip, p.Num()), s.log)
				if err != nil {
					s.log.Debug("IPv6 side of a published port", "port", port, "err", err)
					continue
				}
				s.mu.Lock()
				sb.proxies = append(sb.proxies, px)
				s.mu.Unlock()
				out[p] = append(out[p], network.PortBinding{HostIP: netip.IPv6Unspecified(), HostPort: strconv.Itoa(port)})
				continue
			}
			if both && ep.ip6.IsValid() {
				// The same port on [::], as dockerd; skipped if taken.
				// Its socket is a proxy for ::1 clients (the rules DNAT
				// every other IPv6 address; sctp: rules only).
				if proto == "sctp" {
					if _, err := s.reserveSCTP(sb, netip.IPv6Unspecified(), port, port, rules); err != nil {
						s.log.Warn("IPv6 side of a published port", "port", port, "err", err)
						continue
					}
				} else {
					px, _, err := listenProxy(proto, netip.IPv6Unspecified(), port, port, netip.AddrPortFrom(ep.ip6, p.Num()), s.log)
					if err != nil {
						s.log.Warn("IPv6 side of a published port", "port", port, "err", err)
						continue
					}
					s.mu.Lock()
					sb.proxies = append(sb.proxies, px)
					s.mu.Unlock()
				}
				out[p] = append(out[p], network.PortBinding{HostIP: netip.IPv6Unspecified(), HostPort: strconv.Itoa(port)})
				rules = append(rules, portRule{HostIP: netip.IPv6Unspecified(), HostPort: uint16(port), Proto: proto, CIP: ep.ip6, CPort: p.Num()})
			}
		}
	}
	if len(rules) > 0 || len(sb.proxies) > 0 {
		// Hairpin: the container reaching its own published port comes
		// back through the bridge port it left by.
		if err := setHairpin(ep.host); err != nil {
			return err
		}
	}
	return nil
}

// hostPorts parses a binding's host port or range ("" is 0-0: ephemeral).
func hostPorts(v string) (int, int, error) {
	if v == "" {
		return 0, 0, nil
	}
	l, h, ok := strings.Cut(v, "-")
	lo, err1 := strconv.Atoi(l)
	hi, err2 := lo, error(nil)
	if ok {
		hi, err2 = strconv.Atoi(h)
	}
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || hi < lo {
		return 0, 0, errdefs.Newf(errdefs.InvalidArgument, "invalid host port %q", v)
	}
	return lo, hi, nil
}

// proxyBinding publishes container port p on the IPv6 address ip (::1,
// or :: for a container without IPv6) through a userland proxy to the
// container's address (IPv6 when it has one, else IPv4).
func (s *Service) proxyBinding(sb *sandbox, ep *endpoint, p network.Port, ip netip.Addr, lo, hi int, out network.PortMap) error {
	target := ep.ip
	if ep.ip6.IsValid() {
		target = ep.ip6
	}
	px, port, err := listenProxy(string(p.Proto()), ip, lo, hi, netip.AddrPortFrom(target, p.Num()), s.log)
	if err != nil {
		return err
	}
	s.mu.Lock()
	sb.proxies = append(sb.proxies, px)
	s.mu.Unlock()
	out[p] = append(out[p], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(port)})
	return nil
}

// reserveSCTP picks a port of [lo, hi] (0: an ephemeral one) on ip that no
// SCTP rule of a live sandbox (nor pending of sb) holds.
func (s *Service) reserveSCTP(sb *sandbox, ip netip.Addr, lo, hi int, pending []portRule) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	taken := map[uint16]bool{}
	mark := func(r portRule) {
		if r.Proto == "sctp" && r.HostIP.Is4() == ip.Is4() && (r.HostIP == ip || r.HostIP.IsUnspecified() || ip.IsUnspecified()) {
			taken[r.HostPort] = true
		}
	}
	for _, o := range s.sandboxes {
		if o != sb {
			for _, r := range o.ports {
				mark(r)
			}
		}
	}
	for _, o := range s.tearing {
		for _, r := range o.ports {
			mark(r)
		}
	}
	for _, r := range pending {
		mark(r)
	}
	if lo == 0 {
		lo, hi = 49153, 60999 // the kernel's default ephemeral range
	}
	for port := lo; port <= hi; port++ {
		if !taken[uint16(port)] {
			return port, nil
		}
	}
	if lo == hi {
		return 0, errdefs.Newf(errdefs.Conflict, "Bind for %s:%d failed: port is already allocated", ip, lo)
	}
	return 0, errdefs.Newf(errdefs.Conflict, "Bind for %s:%d-%d failed: no port of the range is free", ip, lo, hi)
}

// reservePort binds a socket to ip and a port in [lo, hi] (0: ephemeral).
func reservePort(proto string, ip netip.Addr, lo, hi int) (int, int, error) {
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	var lastErr error
	for port := lo; port <= hi; port++ {
		fam := unix.AF_INET
		var sa unix.Sockaddr
		if ip.Is6() {
			fam, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
		} else {
			sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
		}
		fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, 0, err
		}
		if ip.Is6() {
			// [::] must not take the IPv4 port too.
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		}
		err = unix.Bind(fd, sa)
		if err == nil {
			got, err := unix.Getsockname(fd)
			if err != nil {
				unix.Close(fd)
				return -1, 0, err
			}
			switch a := got.(type) {
			case *unix.SockaddrInet4:
				return fd, a.Port, nil
			case *unix.SockaddrInet6:
				return fd, a.Port, nil
			}
			unix.Close(fd)
			return -1, 0, fmt.Errorf("unexpected socket address %T", got)
		}
		unix.Close(fd)
		lastErr = err
	}
	if lo == hi {
		return -1, 0, errdefs.Newf(errdefs.Conflict, "Bind for %s:%d failed: port is already allocated (%v)", ip, lo, lastErr)
	}
	return -1, 0, errdefs.Newf(errdefs.Conflict, "Bind for %s:%d-%d failed: no port of the range is free (%v)", ip, lo, hi, lastErr)
}

// reserveAll reserves the host ports of restored bindings again (best
// effort: a port taken meanwhile is logged, the DNAT rule stays).
func reserveAll(bindings network.PortMap, log *slog.Logger) []int {
	var fds []int
	for p, bs := range bindings {
		for _, b := range bs {
			port, err := strconv.Atoi(b.HostPort)
			if err != nil || !b.HostIP.IsValid() || p.Proto() == "sctp" || (b.HostIP.Is6() && (b.HostIP.IsLoopback() || b.HostIP.IsUnspecified())) {
				continue // no SCTP sockets; IPv6 loopback and [::]: restoreProxies
			}
			fd, _, err := reservePort(string(p.Proto()), b.HostIP, port, port)
			if err != nil {
				log.Warn("reserve published port", "port", fmt.Sprintf("%s:%d/%s", b.HostIP, port, p.Proto()), "err", err)
				continue
			}
			fds = append(fds, fd)
		}
	}
	return fds
}

func closeFD(fd int) { _ = unix.Close(fd) }

// restoreProxies opens the userland proxies of a restored sandbox's
// [::1] and [::] bindings again (best effort, as reserveAll).
func (s *Service) restoreProxies(sb *sandbox) {
	if len(sb.order) == 0 {
		return
	}
	ep := sb.endpoints[sb.order[0]]
	for p, bs := range sb.bindings {
		for _, b := range bs {
			port, err := strconv.Atoi(b.HostPort)
			if err != nil || !b.HostIP.Is6() || p.Proto() == "sctp" || !(b.HostIP.IsLoopback() || b.HostIP.IsUnspecified()) {
				continue
			}
			target := ep.ip
			if ep.ip6.IsValid() {
				target = ep.ip6
			}
			px, _, err := listenProxy(string(p.Proto()), b.HostIP, port, port, netip.AddrPortFrom(target, p.Num()), s.log)
			if err != nil {
				s.log.Warn("restore port proxy", "port", fmt.Sprintf("[%s]:%d/%s", b.HostIP, port, p.Proto()), "err", err)
				continue
			}
			s.mu.Lock()
			sb.proxies = append(sb.proxies, px)
			s.mu.Unlock()
		}
	}
}
