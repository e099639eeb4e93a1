package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ensureBridge creates (or adopts) r's bridge with the gateway address
// and brings it up. route_localnet is enabled on it so that traffic to a
// published port on 127.0.0.1 can be DNATed out of it.
func ensureBridge(r *Record) error {
	link, err := netlink.LinkByName(r.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("bridge %s: %w", r.Bridge, err)
		}
		// A MAC address of its own: without one the kernel gives the
		// bridge the lowest of its ports' addresses, which changes as
		// containers come and go, and the containers' ARP entries for
		// the gateway go stale (replies to published ports and
		// outbound traffic are lost until they expire).
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: r.Bridge, MTU: r.MTU, TxQLen: -1, HardwareAddr: randomMAC()}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", r.Bridge, err)
		}
		if link, err = netlink.LinkByName(r.Bridge); err != nil {
			return err
		}
	} else if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is not a bridge", r.Bridge)
	}
	pinBridgeMAC(link)
	if r.MTU > 0 && link.Attrs().MTU != r.MTU {
		_ = netlink.LinkSetMTU(link, r.MTU)
	}
	want := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(r.Gateway, r.Subnet.Bits()))}
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == want.IPNet.String() {
			have = true
		}
	}
	if !have {
		if err := netlink.AddrAdd(link, want); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("address %s on %s: %w", want.IPNet, r.Bridge, err)
		}
	}
	_ = writeSysctl("net/ipv4/conf/"+r.Bridge+"/route_localnet", "1")
	if r.Subnet6.IsValid() {
		_ = writeSysctl("net/ipv6/conf/"+r.Bridge+"/disable_ipv6", "0")
		a6 := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(r.Gateway6, r.Subnet6.Bits())), Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(link, a6); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("address %s on %s: %w", a6.IPNet, r.Bridge, err)
		}
	}
	return netlink.LinkSetUp(link)
}

// pinBridgeMAC makes an adopted bridge's current MAC address its own
// (addr_assign_type 3, "set"), so that it no longer follows its ports.
// When /sys is not this network namespace's (berthd in a namespace of its
// own under the host's /sys) it sets the address without looking first:
// setting the same address again is harmless.
func pinBridgeMAC(link netlink.Link) {
	if len(link.Attrs().HardwareAddr) != 6 {
		return
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/net", link.Attrs().Name, "addr_assign_type"))
	if err == nil && strings.TrimSpace(string(b)) == "3" {
		return
	}
	_ = netlink.LinkSetHardwareAddr(link, link.Attrs().HardwareAddr)
}

// ensureParent checks a macvlan/ipvlan network's parent interface, or
// creates berth's own dummy parent (up) when the network has none.
func ensureParent(r *Record) error {
	l, err := netlink.LinkByName(r.Parent)
	if err != nil {
		if !r.OwnParent {
			return errdefs.Newf(errdefs.InvalidArgument, "-o parent interface was not found on the host: %s", r.Parent)
		}
		err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: r.Parent}})
		if errors.Is(err, unix.EOPNOTSUPP) {
			// No dummy driver in this kernel: one end of a veth pair
			// serves as well (both ends up, for the carrier).
			peer := "dp-" + strings.TrimPrefix(r.Parent, "dm-")
			err = netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: r.Parent}, PeerName: peer})
			if err == nil {
				if p, perr := netlink.LinkByName(peer); perr == nil {
					err = netlink.LinkSetUp(p)
				}
			}
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create dummy parent %s: %w", r.Parent, err)
		}
		if l, err = netlink.LinkByName(r.Parent); err != nil {
			return err
		}
	}
	return netlink.LinkSetUp(l)
}

// addSubIf creates a macvlan or ipvlan interface of r's parent directly
// in the netns at nsPath, named peer, with addr and a default route
// through gw (when valid).
func addSubIf(nsPath string, r *Record, peer string, addr netip.Prefix, gw netip.Addr, loUp bool, mac net.HardwareAddr) error {
	parent, err := netlink.LinkByName(r.Parent)
	if err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "-o parent interface was not found on the host: %s", r.Parent)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	// A temporary name in the host (two containers may create their
	// eth0 at once), renamed once inside.
	tmp := "mv" + newID()[:10]
	attrs := netlink.LinkAttrs{Name: tmp, ParentIndex: parent.Attrs().Index, Namespace: netlink.NsFd(int(ns)), HardwareAddr: mac}
	var link netlink.Link
	switch r.Driver {
	case "macvlan":
		mode := map[string]netlink.MacvlanMode{"bridge": netlink.MACVLAN_MODE_BRIDGE, "private": netlink.MACVLAN_MODE_PRIVATE,
			"vepa": netlink.MACVLAN_MODE_VEPA, "passthru": netlink.MACVLAN_MODE_PASSTHRU}[r.Mode]
		link = &netlink.Macvlan{LinkAttrs: attrs, Mode: mode}
	default:
		mode := map[string]netlink.IPVlanMode{"l2": netlink.IPVLAN_MODE_L2, "l3": netlink.IPVLAN_MODE_L3, "l3s": netlink.IPVLAN_MODE_L3S}[r.Mode]
		link = &netlink.IPVlan{LinkAttrs: attrs, Mode: mode, Flag: netlink.IPVLAN_FLAG_BRIDGE}
	}
	if err := netlink.LinkAdd(link); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return errdefs.Newf(errdefs.NotImplemented, "%s is not supported by this kernel", r.Driver)
		}
		return fmt.Errorf("create %s interface: %w", r.Driver, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(tmp)
	if err != nil {
		return err
	}
	if err := h.LinkSetName(l, peer); err != nil {
		return err
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("address %s: %w", addr, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return err
	}
	if loUp {
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			return err
		}
	}
	if gw.IsValid() {
		// ipvlan l3 has no neighbour to route through: the default route
		// goes through the interface itself.
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
		if r.Driver == "ipvlan" && r.Mode != "l2" {
			rt = &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0"))}
		}
		if err := h.RouteAdd(rt); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("default route: %w", err)
		}
	}
	return nil
}

// parentMAC is the MAC address of r's parent interface (nil if unknown).
func parentMAC(r *Record) net.HardwareAddr {
	l, err := netlink.LinkByName(r.Parent)
	if err != nil {
		return nil
	}
	return l.Attrs().HardwareAddr
}

// probeSubIf checks at network create that the kernel has r's driver:
// ipvlan is often built without (CONFIG_IPVLAN), and a network whose
// containers could never start is refused at once. A short-lived
// interface of the parent is created and deleted.
func probeSubIf(r *Record) error {
	if r.Driver != "ipvlan" {
		return nil
	}
	parent, err := netlink.LinkByName(r.Parent)
	if err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "-o parent interface was not found on the host: %s", r.Parent)
	}
	name := "pv" + newID()[:10]
	err = netlink.LinkAdd(&netlink.IPVlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index}, Mode: netlink.IPVLAN_MODE_L2})
	switch {
	case errors.Is(err, unix.EOPNOTSUPP):
		return errdefs.Newf(errdefs.NotImplemented, "ipvlan is not supported by this kernel")
	case err != nil:
		return fmt.Errorf("create ipvlan interface: %w", err)
	}
	return delLink(name)
}

// deleteBridge removes r's bridge (and with it every port on it).
func deleteBridge(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	return netlink.LinkDel(link)
}

// hostRoutes lists the IPv4 routes of the host's main table, with the
// device they go through, to refuse subnets that overlap them.
func hostRoutes() ([]inUse, error) {
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	var out []inUse
	for _, rt := range routes {
		if rt.Dst == nil {
			continue
		}
		p, ok := prefixOf(rt.Dst)
		if !ok || p.Bits() == 0 {
			continue
		}
		name, ok := names[rt.LinkIndex]
		if !ok {
			if l, err := netlink.LinkByIndex(rt.LinkIndex); err == nil {
				name = l.Attrs().Name
			}
			names[rt.LinkIndex] = name
		}
		out = append(out, inUse{prefix: p, by: "route via " + name})
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func writeSysctl(key, val string) error {
	return os.WriteFile(filepath.Join("/proc/sys", key), []byte(val), 0o644)
}

// createNetNS makes a new network namespace and bind-mounts it at path
// (which keeps it alive without a process in it).
func createNetNS(path string) (retErr error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	defer func() {
		if retErr != nil {
			_ = os.Remove(path)
		}
	}()
	errc := make(chan error, 1)
	// The unshare happens on a thread of its own that is never given
	// back to the Go scheduler: it ends with the goroutine.
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare net: %w", err)
			return
		}
		src := "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"
		errc <- unix.Mount(src, path, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("bind netns: %w", err)
	}
	return nil
}

// removeNetNS unmounts and removes a netns file; the namespace goes once
// nothing else holds it.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// vethConfig is one endpoint's link in a sandbox.
type vethConfig struct {
	hostName string // in the host, enslaved to bridge
	peerName string // in the sandbox ("eth0", ...)
	bridge   string
	mtu      int
	mac      net.HardwareAddr
	addr     netip.Prefix
	gateway  netip.Addr // invalid: no default route
}

// addVeth creates the veth pair of c with its peer directly in the
// netns at nsPath, configures the peer and brings both ends up.
func addVeth(nsPath string, c vethConfig, loUp bool) (retErr error) {
	br, err := netlink.LinkByName(c.bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", c.bridge, err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	mtu := c.mtu
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: c.hostName, MTU: mtu, MasterIndex: br.Attrs().Index, Flags: net.FlagUp},
		PeerName:  c.peerName, PeerHardwareAddr: c.mac, PeerNamespace: netlink.NsFd(int(ns)), PeerMTU: uint32(mtu),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", c.hostName, err)
	}
	defer func() {
		if retErr != nil {
			_ = netlink.LinkDel(veth)
		}
	}()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	peer, err := h.LinkByName(c.peerName)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(c.addr)}); err != nil {
		return fmt.Errorf("address %s: %w", c.addr, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return err
	}
	if loUp {
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("loopback: %w", err)
		}
	}
	if c.gateway.IsValid() {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: c.gateway.AsSlice()}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("default route: %w", err)
		}
	}
	return nil
}

// upLoopback brings lo up in the netns at nsPath (sandboxes without an
// endpoint).
func upLoopback(nsPath string) error {
	return withNsLink(nsPath, "lo", func(h *netlink.Handle, lo netlink.Link) error { return h.LinkSetUp(lo) })
}

// withNsLink calls fn with a netlink handle in the netns at nsPath and
// that namespace's interface name.
func withNsLink(nsPath, name string, fn func(h *netlink.Handle, l netlink.Link) error) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return fn(h, l)
}

// setHairpin lets a bridge port send frames back where they came from.
func setHairpin(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetHairpin(l, true)
}

// detachHostEnd takes a veth's host end off its bridge. Without its name
// (a restored sandbox) it is found through the peer in the namespace.
func detachHostEnd(nsPath, host, peer string) error {
	var l netlink.Link
	var err error
	if host != "" {
		l, err = netlink.LinkByName(host)
	} else {
		var ns netns.NsHandle
		if ns, err = netns.GetFromPath(nsPath); err != nil {
			return nil
		}
		defer ns.Close()
		var h *netlink.Handle
		if h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err != nil {
			return err
		}
		defer h.Close()
		var p netlink.Link
		if p, err = h.LinkByName(peer); err != nil {
			return nil
		}
		l, err = netlink.LinkByIndex(p.Attrs().ParentIndex)
	}
	if err != nil {
		return nil // gone already
	}
	if err := netlink.LinkSetNoMaster(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}

// delPeer removes the interface name of the netns at nsPath (a veth:
// its host end goes with it).
func delPeer(nsPath, name string) error {
	return withNsLink(nsPath, name, func(h *netlink.Handle, l netlink.Link) error { return h.LinkDel(l) })
}

// delLink removes a host-side link (a veth's peer goes with it).
func delLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	return netlink.LinkDel(l)
}

// linkExists reports whether a host link named name exists.
func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// enableForwarding turns on IPv4 forwarding, as dockerd does.
func enableForwarding() error {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	return writeSysctl("net/ipv4/ip_forward", "1")
}

// inNetNS runs fn on a thread that is inside the netns at path (sockets
// created there belong to that namespace).
func inNetNS(path string, fn func() error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err == nil {
			// Back home: the thread may serve other goroutines again.
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// hostRoutes6 lists the host's IPv6 routes (main table), as hostRoutes.
func hostRoutes6() ([]inUse, error) {
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	var out []inUse
	for _, rt := range routes {
		if rt.Dst == nil {
			continue
		}
		p, ok := prefixOf(rt.Dst)
		if !ok || p.Bits() == 0 || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			continue
		}
		out = append(out, inUse{prefix: p, by: "IPv6 route"})
	}
	return out, nil
}

// enableForwarding6 turns on IPv6 forwarding (dockerd does too when an
// IPv6 network exists). On a host whose interfaces take router
// advertisements (accept_ra=1) this stops them doing so.
func enableForwarding6() error {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	return writeSysctl("net/ipv6/conf/all/forwarding", "1")
}

// addAddr6 gives the interface peer of the netns at nsPath an IPv6
// address (no duplicate address detection: IPAM guarantees uniqueness,
// and DAD would delay the address) and, when gw is valid, the default
// IPv6 route through it.
func addAddr6(nsPath, peer string, addr netip.Prefix, gw netip.Addr) error {
	return withNsLink(nsPath, peer, func(h *netlink.Handle, l netlink.Link) error {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(addr), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s: %w", addr, err)
		}
		if gw.IsValid() {
			rt := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
			if gw.IsUnspecified() { // through the interface itself (ipvlan l3)
				rt = &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("::/0"))}
			}
			if err := h.RouteAdd(rt); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("default IPv6 route: %w", err)
			}
		}
		return nil
	})
}
