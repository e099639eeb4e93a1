package network

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	apinet "github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// randomULA64 is a unique local /64 no other test uses (fdb7::/16).
func randomULA64() netip.Prefix {
	var a [16]byte
	_, _ = rand.Read(a[2:6])
	a[0], a[1] = 0xfd, 0xb7
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// dial6 connects from the host to addr over TCP and returns what the
// server said.
func dialTCP(network, addr string) (string, error) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// askUDPHost sends datagrams to addr from the host until one answer
// comes back.
func askUDPHost(network, addr string) (string, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 512)
	for i := 0; i < 10; i++ {
		if _, err := c.Write([]byte("?")); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n]), nil
		}
	}
	return "", errors.New("no UDP answer")
}

// TestDefaultBridgeIPv6: with ipv6 and fixed-cidr-v6 the default network
// is dual-stack: containers get an address of the subnet (gateway its
// first address), a published port answers on the host's own IPv6
// address (DNAT) and on [::1] (berthd's proxy), and a --mac-address is
// the interface's address.
func TestDefaultBridgeIPv6(t *testing.T) {
	if prev, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); err == nil {
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", prev, 0o644) })
	}
	sub := randomULA64()
	e := newTestEnvWith(t, "", func(c *Config) { c.IPv6, c.FixedCIDRv6 = true, sub })
	ctx := context.Background()
	ins, err := e.svc.Inspect(ctx, "bridge")
	if err != nil || !ins.EnableIPv6 || len(ins.IPAM.Config) != 2 || ins.IPAM.Config[1].Subnet != sub || ins.IPAM.Config[1].Gateway != sub.Addr().Next() {
		t.Fatalf("inspect bridge: %v %+v", err, ins.IPAM)
	}
	mac, _ := net.ParseMAC("92:d0:c6:0a:29:33")
	ports := apinet.PortMap{apinet.MustParsePort("80/tcp"): {{}}, apinet.MustParsePort("81/tcp"): {{HostIP: netip.IPv6Unspecified()}}}
	id, sb := e.sandbox("v6web", []EndpointRequest{{Network: "bridge", MAC: mac}}, ports)
	ep := sb.Endpoints["bridge"]
	if !sub.Contains(ep.GlobalIPv6Address) || ep.IPv6Gateway != sub.Addr().Next() || ep.GlobalIPv6PrefixLen != 64 {
		t.Fatalf("endpoint: %+v", ep)
	}
	if net.HardwareAddr(ep.MacAddress).String() != mac.String() {
		t.Fatalf("inspect MAC %s, want %s", net.HardwareAddr(ep.MacAddress), mac)
	}
	if got := peerMAC(t, sb.NetNSPath, "eth0"); got != mac.String() {
		t.Fatalf("eth0 MAC %s, want %s", got, mac)
	}
	stop := serve(t, sb.NetNSPath)
	defer stop()
	bs := sb.Ports[apinet.MustParsePort("80/tcp")]
	if len(bs) != 2 || !bs[0].HostIP.IsUnspecified() || bs[1].HostIP != netip.IPv6Unspecified() || bs[0].HostPort != bs[1].HostPort {
		t.Fatalf("bindings: %v", bs)
	}
	port := bs[1].HostPort
	// The host's own addresses: on the bridge, from the host; on a link
	// to an IPv6 client outside, which keeps its address (DNAT, no proxy).
	gw6 := sub.Addr().Next()
	if got, err := dialTCP("tcp6", net.JoinHostPort(gw6.String(), port)); err != nil || got != gw6.String() {
		t.Fatalf("[%s]:%s: %q %v", gw6, port, got, err)
	}
	cns, host6, client6 := clientNS6(t, e.execRoot)
	var got string
	err = inNetNS(cns, func() (err error) {
		got, err = dialTCP("tcp6", net.JoinHostPort(host6.String(), port))
		return err
	})
	if err != nil || got != client6.String() {
		t.Fatalf("from outside over IPv6: %q %v (want %s)", got, err, client6)
	}
	// [::1]: not DNATed (it could not leave the host), the proxy on [::]
	// relays it to the container's IPv6 address.
	if got, err := dialTCP("tcp6", "[::1]:"+port); err != nil || got != gw6.String() {
		t.Fatalf("[::1]:%s: %q %v", port, got, err)
	}
	if got, err := dialTCP("tcp4", "127.0.0.1:"+port); err != nil || got == "" {
		t.Fatalf("127.0.0.1:%s: %q %v", port, got, err)
	}
	// An explicit [::] binding: DNAT from outside, the relay for ::1.
	stop81 := serveOn(t, sb.NetNSPath, ":81")
	defer stop81()
	p81 := sb.Ports[apinet.MustParsePort("81/tcp")]
	if len(p81) != 1 || p81[0].HostIP != netip.IPv6Unspecified() {
		t.Fatalf("[::] binding: %v", p81)
	}
	if got, err := dialTCP("tcp6", "[::1]:"+p81[0].HostPort); err != nil || got != gw6.String() {
		t.Fatalf("[::1]:%s ([::] binding): %q %v", p81[0].HostPort, got, err)
	}
	err = inNetNS(cns, func() (err error) {
		got, err = dialTCP("tcp6", net.JoinHostPort(host6.String(), p81[0].HostPort))
		return err
	})
	if err != nil || got != client6.String() {
		t.Fatalf("[::] binding from outside: %q %v (want %s)", got, err, client6)
	}
	// A sandbox from the pool (no MAC asked for) is dual-stack too.
	_, sb2 := e.sandbox("v6pooled", []EndpointRequest{{Network: "bridge"}}, nil)
	ep2 := sb2.Endpoints["bridge"]
	if !sub.Contains(ep2.GlobalIPv6Address) || ep2.GlobalIPv6Address == ep.GlobalIPv6Address {
		t.Fatalf("pooled endpoint: %+v", ep2)
	}
	err = inNetNS(sb2.NetNSPath, func() (err error) {
		got, err = dialTCP("tcp6", net.JoinHostPort(ep.GlobalIPv6Address.String(), "80"))
		return err
	})
	if err != nil || got != ep2.GlobalIPv6Address.String() {
		t.Fatalf("pooled -> v6web over IPv6: %q %v", got, err)
	}
	if err := e.svc.Teardown(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp6", "[::1]:"+port, 300*time.Millisecond); err == nil {
		t.Fatal("[::1] still answers after teardown")
	}
	// A multicast MAC is refused before anything is made.
	bad, _ := net.ParseMAC("01:00:5e:00:00:01")
	if _, err := e.svc.Setup(ctx, SandboxRequest{ContainerID: randHex(32), Name: "bad", Endpoints: []EndpointRequest{{Network: "bridge", MAC: bad}}}); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("multicast MAC: %v", err)
	}
}

func peerMAC(t *testing.T, nsPath, name string) string {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}

// TestLoopback6Proxy: bindings on [::1] of an IPv4-only container go
// through berthd's proxy (TCP and UDP) to its IPv4 address, hold the
// host port, are rebuilt by Restore after a restart and go with the
// sandbox.
func TestLoopback6Proxy(t *testing.T) {
	e := newTestEnv(t, "")
	e.network("lp6", nil, false)
	lo6 := netip.IPv6Loopback()
	ports := apinet.PortMap{
		apinet.MustParsePort("80/tcp"):   {{HostIP: lo6}},
		apinet.MustParsePort("5353/udp"): {{HostIP: lo6}},
	}
	id, sb := e.sandbox("p6", []EndpointRequest{{Network: "lp6"}}, ports)
	serve(t, sb.NetNSPath)
	serveUDP(t, sb.NetNSPath)
	gw := sb.Endpoints["lp6"].Gateway.String()
	tcpPort, udpPort := hostPort(t, sb, "80/tcp"), hostPort(t, sb, "5353/udp")
	if b := sb.Ports[apinet.MustParsePort("80/tcp")]; len(b) != 1 || b[0].HostIP != lo6 {
		t.Fatalf("bindings: %v", sb.Ports)
	}
	check := func(when string) {
		t.Helper()
		if got, err := dialTCP("tcp6", "[::1]:"+tcpPort); err != nil || got != gw {
			t.Fatalf("%s: tcp [::1]:%s: %q %v (want %s)", when, tcpPort, got, err, gw)
		}
		if got, err := askUDPHost("udp6", "[::1]:"+udpPort); err != nil || got != gw {
			t.Fatalf("%s: udp [::1]:%s: %q %v (want %s)", when, udpPort, got, err, gw)
		}
	}
	check("running")
	// The port is held: another sandbox cannot have it.
	dup := apinet.PortMap{apinet.MustParsePort("80/tcp"): {{HostIP: lo6, HostPort: tcpPort}}}
	if _, err := e.svc.Setup(context.Background(), SandboxRequest{ContainerID: randHex(32), Name: "dup", Endpoints: []EndpointRequest{{Network: "lp6"}}, Ports: dup}); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("same [::1] port twice: %v", err)
	}
	// A restart: the proxy goes with berthd and comes back with Restore.
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp6", "[::1]:"+tcpPort, 300*time.Millisecond); err == nil {
		t.Fatal("proxy still answering with berthd stopped")
	}
	svc, err := New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	cur := sb.Endpoints["lp6"]
	if err := svc.Restore(context.Background(), []SandboxRequest{{ContainerID: id, Name: "p6", NetNSPath: sb.NetNSPath, Bindings: sb.Ports,
		Endpoints: []EndpointRequest{{Network: cur.NetworkID, Current: cur}}}}); err != nil {
		t.Fatal(err)
	}
	check("restored")
	if err := svc.Teardown(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp6", "[::1]:"+tcpPort, 300*time.Millisecond); err == nil {
		t.Fatal("[::1] still answers after teardown")
	}
}

// TestSCTPPorts: an SCTP port is published with a DNAT rule for
// protocol 132 (read back over netlink: this kernel has SCTP conntrack
// and NAT but no SCTP sockets, so no traffic can be sent), held against
// other sandboxes, and removed with the sandbox.
func TestSCTPPorts(t *testing.T) {
	e := newTestEnv(t, "")
	e.network("sc", nil, false)
	loopback := netip.MustParseAddr("127.0.0.1")
	ports := apinet.PortMap{
		apinet.MustParsePort("9000/sctp"): {{HostIP: loopback, HostPort: "39000"}},
		apinet.MustParsePort("9001/sctp"): {{}},
	}
	id, sb := e.sandbox("sctp", []EndpointRequest{{Network: "sc"}}, ports)
	cip := sb.Endpoints["sc"].IPAddress
	if got := hostPort(t, sb, "9000/sctp"); got != "39000" {
		t.Fatalf("host port %s", got)
	}
	eph, _ := strconv.Atoi(hostPort(t, sb, "9001/sctp"))
	if eph < 49153 || eph > 60999 {
		t.Fatalf("ephemeral SCTP port %d", eph)
	}
	rules := dnatRules(t, TableName(e.cfg.DataRoot))
	for _, want := range []dnatRule{{unix.IPPROTO_SCTP, 39000, cip, 9000}, {unix.IPPROTO_SCTP, uint16(eph), cip, 9001}} {
		if !slices.Contains(rules, want) {
			t.Fatalf("no DNAT rule %+v in %+v", want, rules)
		}
	}
	dup := apinet.PortMap{apinet.MustParsePort("9000/sctp"): {{HostPort: "39000"}}}
	if _, err := e.svc.Setup(context.Background(), SandboxRequest{ContainerID: randHex(32), Name: "dup", Endpoints: []EndpointRequest{{Network: "sc"}}, Ports: dup}); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("same SCTP port twice: %v", err)
	}
	if err := e.svc.Teardown(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	for _, r := range dnatRules(t, TableName(e.cfg.DataRoot)) {
		if r.proto == unix.IPPROTO_SCTP {
			t.Fatalf("SCTP rule left: %+v", r)
		}
	}
}

type dnatRule struct {
	proto    byte
	hostPort uint16
	cip      netip.Addr
	cport    uint16
}

// dnatRules reads the "ports" chain of table (family ip) back.
func dnatRules(t *testing.T, table string) []dnatRule {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseLasting()
	rs, err := c.GetRules(&nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}, &nftables.Chain{Name: "ports"})
	if err != nil {
		t.Fatal(err)
	}
	var out []dnatRule
	for _, r := range rs {
		var d dnatRule
		var cmps [][]byte
		var imms [][]byte
		for _, x := range r.Exprs {
			switch x := x.(type) {
			case *expr.Cmp:
				cmps = append(cmps, x.Data)
			case *expr.Immediate:
				imms = append(imms, x.Data)
			}
		}
		// [daddr], l4proto, dport; immediates: address, port.
		if len(cmps) < 2 || len(imms) != 2 {
			continue
		}
		d.proto = cmps[len(cmps)-2][0]
		d.hostPort = uint16(cmps[len(cmps)-1][0])<<8 | uint16(cmps[len(cmps)-1][1])
		d.cip, _ = netip.AddrFromSlice(imms[0])
		d.cport = uint16(imms[1][0])<<8 | uint16(imms[1][1])
		out = append(out, d)
	}
	return out
}

// serveOn is serve on another address of the namespace.
func serveOn(t *testing.T, nsPath, addr string) (stop func()) {
	t.Helper()
	var l net.Listener
	if err := inNetNS(nsPath, func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = io.WriteString(c, host+"\n")
			c.Close()
		}
	}()
	return func() { l.Close() }
}

// TestHostBindingIPv4: a network's com.docker.network.bridge.host_binding_ipv4
// is the host address of bindings that name none (and then there is no
// [::] side); a value that is not an IPv4 address is refused.
func TestHostBindingIPv4(t *testing.T) {
	e := newTestEnv(t, "")
	e.network("hb", map[string]string{"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}, false)
	_, sb := e.sandbox("hbweb", []EndpointRequest{{Network: "hb"}}, apinet.PortMap{apinet.MustParsePort("80/tcp"): {{}}})
	serve(t, sb.NetNSPath)
	bs := sb.Ports[apinet.MustParsePort("80/tcp")]
	if len(bs) != 1 || bs[0].HostIP != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("bindings: %v", bs)
	}
	if got, err := dialTCP("tcp4", "127.0.0.1:"+bs[0].HostPort); err != nil || got == "" {
		t.Fatalf("127.0.0.1:%s: %q %v", bs[0].HostPort, got, err)
	}
	_, err := e.svc.Create(context.Background(), CreateRequest{Name: "hbbad", Options: map[string]string{"com.docker.network.bridge.host_binding_ipv4": "::1"}})
	if !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("IPv6 host_binding_ipv4: %v", err)
	}
}

// TestFixedCIDR: dockerd's --fixed-cidr: the default network keeps the
// --bip subnet, containers get addresses of the fixed part only, and
// inspect shows it as the IPRange. (10.216.N.0/24: a subnet no other
// test uses, N random, skipped if the host routes it.)
func TestFixedCIDR(t *testing.T) {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	bip := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 216, b[0], 1}), 24)
	if used, err := hostRoutes(); err == nil {
		for _, u := range used {
			if u.prefix.Overlaps(bip) {
				t.Skipf("%s is routed on this host (%s)", bip, u.by)
			}
		}
	}
	fixed := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 216, b[0], 128}), 25)
	e := newTestEnvWith(t, "", func(c *Config) { c.BIP, c.FixedCIDR = bip, fixed })
	ins, err := e.svc.Inspect(context.Background(), "bridge")
	if err != nil || len(ins.IPAM.Config) != 1 || ins.IPAM.Config[0].Subnet != bip.Masked() || ins.IPAM.Config[0].IPRange != fixed {
		t.Fatalf("inspect: %v %+v", err, ins.IPAM)
	}
	for i := 0; i < 2; i++ {
		_, sb := e.sandbox("fc"+strconv.Itoa(i), []EndpointRequest{{Network: "bridge"}}, nil)
		if ip := sb.Endpoints["bridge"].IPAddress; !fixed.Contains(ip) || sb.Endpoints["bridge"].IPPrefixLen != 24 {
			t.Fatalf("address %s/%d, want one of %s in a /24", ip, sb.Endpoints["bridge"].IPPrefixLen, fixed)
		}
	}
}

// TestMacvlanDualStack: a macvlan network with --ipv6 (a random unique
// local /64 when no IPv6 subnet is given): endpoints get an IPv6 address
// and reach each other over it; inspect shows both subnets.
func TestMacvlanDualStack(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	yes := true
	if _, err := e.svc.Create(ctx, CreateRequest{Name: "mv6", Driver: "macvlan", EnableIPv6: &yes}); err != nil {
		t.Fatal(err)
	}
	ins, err := e.svc.Inspect(ctx, "mv6")
	if err != nil || !ins.EnableIPv6 || len(ins.IPAM.Config) != 2 || !ins.IPAM.Config[1].Subnet.Addr().Is6() {
		t.Fatalf("inspect: %v %+v", err, ins.IPAM)
	}
	ida, a := e.sandbox("mva", []EndpointRequest{{Network: "mv6"}}, nil)
	idb, b := e.sandbox("mvb", []EndpointRequest{{Network: "mv6"}}, nil)
	ea, eb := a.Endpoints["mv6"], b.Endpoints["mv6"]
	if !ins.IPAM.Config[1].Subnet.Contains(ea.GlobalIPv6Address) || !ins.IPAM.Config[1].Subnet.Contains(eb.GlobalIPv6Address) {
		t.Fatalf("endpoints: %+v %+v", ea, eb)
	}
	stop := serve(t, a.NetNSPath)
	defer stop()
	var got string
	err = inNetNS(b.NetNSPath, func() (err error) {
		got, err = dialTCP("tcp6", net.JoinHostPort(ea.GlobalIPv6Address.String(), "80"))
		return err
	})
	if err != nil || got != eb.GlobalIPv6Address.String() {
		t.Fatalf("b -> a over IPv6: %q %v", got, err)
	}
	stop()
	for _, id := range []string{ida, idb} {
		if err := e.svc.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.Remove(ctx, "mv6"); err != nil {
		t.Fatal(err)
	}
	// An IPv6 subnet without --ipv6 is refused.
	_, err = e.svc.Create(ctx, CreateRequest{Name: "mvbad", Driver: "macvlan", IPAM: &apinet.IPAM{Config: []apinet.IPAMConfig{{Subnet: randomULA64()}}}})
	if !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("IPv6 subnet without --ipv6: %v", err)
	}
}
