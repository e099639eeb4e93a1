package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	apinet "github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// These tests use the real kernel: bridges, veth pairs and namespaces
// named after the test, nftables in the test service's own table, and
// only addresses of the test's own networks and namespaces (10.213/16
// for berth's networks, 10.214.x.0/30 for a client namespace).

type testEnv struct {
	t        *testing.T
	svc      *Service
	cfg      Config
	db       *bolt.DB
	execRoot string
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newTestEnv(t *testing.T, upstream string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, upstream, nil)
}

// newTestEnvWith is newTestEnv with a chance to change the config.
func newTestEnvWith(t *testing.T, upstream string, opt func(*Config)) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	execRoot, err := os.MkdirTemp("", "bn")
	if err != nil {
		t.Fatal(err)
	}
	dataRoot := t.TempDir()
	db, err := bolt.Open(filepath.Join(dataRoot, "m.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, db: db, execRoot: execRoot}
	e.cfg = Config{DB: db, DataRoot: dataRoot, ExecRoot: execRoot, Bridge: "tn" + randHex(4),
		Pools: []Pool{{Base: netip.MustParsePrefix("10.213.0.0/16"), Size: 24}}}
	if upstream != "" {
		e.cfg.DNSUpstreams = []string{upstream}
	}
	if opt != nil {
		opt(&e.cfg)
	}
	e.svc, err = New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Restore(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Tear everything down and check nothing is left.
		var bridges []string
		if e.svc != nil {
			e.svc.mu.Lock()
			var ids []string
			for id := range e.svc.sandboxes {
				ids = append(ids, id)
			}
			for _, r := range e.svc.nets {
				if r.Driver == "bridge" {
					bridges = append(bridges, r.Bridge)
				}
			}
			e.svc.mu.Unlock()
			for _, id := range ids {
				if err := e.svc.Teardown(context.Background(), id); err != nil {
					t.Errorf("teardown %s: %v", id, err)
				}
			}
			if err := e.svc.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
		for _, b := range bridges {
			if linkExists(b) {
				t.Errorf("bridge %s left behind", b)
				_ = deleteBridge(b)
			}
		}
		if TableExists(TableName(dataRoot)) {
			t.Errorf("table %s left behind", TableName(dataRoot))
			_ = e.svc.fw.remove()
		}
		if ents, _ := os.ReadDir(filepath.Join(execRoot, "netns")); len(ents) > 0 {
			t.Errorf("netns files left: %v", ents)
		}
		db.Close()
		_ = os.RemoveAll(execRoot)
	})
	return e
}

func (e *testEnv) network(name string, opts map[string]string, internal bool) string {
	e.t.Helper()
	id, err := e.svc.Create(context.Background(), CreateRequest{Name: name, Options: opts, Internal: internal})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *testEnv) sandbox(name string, nets []EndpointRequest, ports apinet.PortMap) (string, *Sandbox) {
	e.t.Helper()
	id := randHex(32)
	sb, err := e.svc.Setup(context.Background(), SandboxRequest{ContainerID: id, Name: name, Hostname: name, Endpoints: nets, Ports: ports})
	if err != nil {
		e.t.Fatalf("setup %s: %v", name, err)
	}
	return id, sb
}

// serve answers every TCP connection on port 80 of the namespace with
// the client's address.
func serve(t *testing.T, nsPath string) (stop func()) {
	t.Helper()
	var l net.Listener
	if err := inNetNS(nsPath, func() (err error) { l, err = net.Listen("tcp", ":80"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	defer func() { stop = func() { l.Close() } }()
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
	return
}

// ask connects to addr (from the namespace nsPath, "" = the host) and
// returns what the server said; err when it cannot connect in time.
func ask(nsPath, addr string, timeout time.Duration) (string, error) {
	var out string
	do := func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		out = strings.TrimSpace(string(b))
		return err
	}
	if nsPath == "" {
		return out, do()
	}
	return out, inNetNS(nsPath, do)
}

// clientNS makes a namespace plugged into the host through a veth pair
// (host side 10.214.N.1/30, client 10.214.N.2), like a machine outside.
func clientNS(t *testing.T, dir string) (nsPath string, hostIP, clientIP netip.Addr) {
	t.Helper()
	nsPath = filepath.Join(dir, "client")
	if err := createNetNS(nsPath); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	hostIP = netip.AddrFrom4([4]byte{10, 214, b[0], 1})
	clientIP = netip.AddrFrom4([4]byte{10, 214, b[0], 2})
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	name := "tc" + randHex(4)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, Flags: net.FlagUp}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = delLink(name); _ = removeNetNS(nsPath) })
	host, _ := netlink.LinkByName(name)
	if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(hostIP, 30))}); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	peer, _ := h.LinkByName("eth0")
	lo, _ := h.LinkByName("lo")
	for _, err := range []error{
		h.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(clientIP, 30))}),
		h.LinkSetUp(peer), h.LinkSetUp(lo),
		h.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: hostIP.AsSlice()}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return nsPath, hostIP, clientIP
}

func hostPort(t *testing.T, sb *Sandbox, port string) string {
	t.Helper()
	bs := sb.Ports[apinet.MustParsePort(port)]
	if len(bs) == 0 {
		t.Fatalf("no binding for %s: %v", port, sb.Ports)
	}
	return bs[0].HostPort
}

// TestPublishedPorts: DNAT from the host's 127.0.0.1 (source rewritten
// to the gateway: a container cannot answer 127.0.0.1), from another
// machine (a client namespace: its address is kept, no proxy), hairpin
// from the container to its own published port, a conflicting host
// port refused with nothing left behind, rules gone after teardown.
func TestPublishedPorts(t *testing.T) {
	e := newTestEnv(t, "")
	e.network("pub", nil, false)
	ports := apinet.PortMap{
		apinet.MustParsePort("80/tcp"):   {{HostIP: netip.MustParseAddr("127.0.0.1")}, {}},
		apinet.MustParsePort("5353/udp"): {{}},
	}
	id, sb := e.sandbox("web", []EndpointRequest{{Network: "pub"}}, ports)
	stopServer := serve(t, sb.NetNSPath)
	stopUDP := serveUDP(t, sb.NetNSPath)
	ep := sb.Endpoints["pub"]
	pubBridge := e.svc.nets[ep.NetworkID].Bridge
	bs := sb.Ports[apinet.MustParsePort("80/tcp")]
	// 0.0.0.0 and, through berthd's proxy (an IPv4-only container), [::]
	// with the same port, as dockerd.
	if len(bs) != 3 || bs[0].HostPort == "" || bs[0].HostIP.String() != "127.0.0.1" || bs[1].HostIP != netip.IPv4Unspecified() ||
		bs[2].HostIP != netip.IPv6Unspecified() || bs[2].HostPort != bs[1].HostPort {
		t.Fatalf("bindings %v", bs)
	}
	loPort, anyPort := bs[0].HostPort, bs[1].HostPort

	got, err := ask("", "127.0.0.1:"+loPort, 5*time.Second)
	if err != nil || got != ep.Gateway.String() {
		t.Fatalf("from 127.0.0.1: %q %v (want the gateway %s)", got, err, ep.Gateway)
	}
	if got, err := dialTCP("tcp6", "[::1]:"+bs[2].HostPort); err != nil || got != ep.Gateway.String() {
		t.Fatalf("from [::1]: %q %v (want the gateway %s)", got, err, ep.Gateway)
	}
	cns, hostIP, clientIP := clientNS(t, e.execRoot)
	got, err = ask(cns, hostIP.String()+":"+anyPort, 5*time.Second)
	if err != nil || got != clientIP.String() {
		t.Fatalf("from outside: %q %v (want the client's address %s)", got, err, clientIP)
	}
	// UDP, from outside: the reply comes back, with the client's address.
	udpPort := hostPort(t, sb, "5353/udp")
	got, err = askUDP(cns, hostIP.String()+":"+udpPort)
	if err != nil || got != clientIP.String() {
		t.Fatalf("udp from outside: %q %v", got, err)
	}
	// Outbound: the container reaches the "outside" client, masqueraded
	// to the host's address on that link.
	stopClient := serve(t, cns)
	defer stopClient()
	got, err = ask(sb.NetNSPath, clientIP.String()+":80", 5*time.Second)
	if err != nil || got != hostIP.String() {
		t.Fatalf("outbound: %q %v (want the host's address %s)", got, err, hostIP)
	}
	// The 127.0.0.1 binding is not reachable from outside.
	if _, err := ask(cns, hostIP.String()+":"+loPort, 300*time.Millisecond); err == nil {
		t.Fatal("a 127.0.0.1 binding answered on another address")
	}
	got, err = ask(sb.NetNSPath, ep.Gateway.String()+":"+anyPort, 5*time.Second)
	if err != nil || got == "" {
		t.Fatalf("hairpin: %q %v", got, err)
	}
	// The same host port for another sandbox: refused, nothing left.
	conflict := apinet.PortMap{apinet.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: loPort}}}
	id2 := randHex(32)
	_, err = e.svc.Setup(context.Background(), SandboxRequest{ContainerID: id2, Name: "dup", Endpoints: []EndpointRequest{{Network: "pub"}}, Ports: conflict})
	if err == nil || !errdefs.Is(err, errdefs.Conflict) || !strings.Contains(err.Error(), "port is already allocated") {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := os.Stat(e.svc.netnsPath(id2)); !os.IsNotExist(err) {
		t.Fatalf("failed setup left its netns: %v", err)
	}
	if n := bridgePorts(t, e.cfg.Bridge); n != 0 {
		t.Fatalf("default bridge has %d ports", n)
	}
	// Its veth goes with its namespace (asynchronously, in the kernel).
	deadline := time.Now().Add(10 * time.Second)
	for bridgePorts(t, pubBridge) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("failed setup left its veth")
		}
		time.Sleep(10 * time.Millisecond)
	}
	all, _ := e.svc.ipam.allocations()
	if n := len(all[ep.NetworkID]); n != 1 {
		t.Fatalf("failed setup left its address: %v", all)
	}
	// Teardown: the port is free and answers nothing. (The server's
	// socket would keep the namespace, and so the veth, alive.)
	stopServer()
	stopUDP()
	if err := e.svc.Teardown(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := ask("", "127.0.0.1:"+loPort, 300*time.Millisecond); err == nil {
		t.Fatal("port still forwarded after teardown")
	}
	waitPorts := time.Now().Add(10 * time.Second)
	for bridgePorts(t, pubBridge) != 0 {
		if time.Now().After(waitPorts) {
			out, _ := exec.Command("sh", "-c", "ip -d link show master "+pubBridge+"; grep -l nsfs /proc/*/mountinfo | head; findmnt -t nsfs").CombinedOutput()
			t.Fatalf("veth left after teardown:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIsolationAndDNS: names and aliases resolve (round robin) on a
// user-defined network, PTR works, other questions go to the upstream
// (a fake one on loopback); networks cannot reach each other; an
// internal network has no way out; icc=false separates containers of
// one network.
func TestIsolationAndDNS(t *testing.T) {
	up := fakeUpstream(t)
	e := newTestEnv(t, up)
	e.network("n1", nil, false)
	e.network("n2", nil, false)
	e.network("n3", nil, true)
	e.network("n4", map[string]string{"com.docker.network.bridge.enable_icc": "false"}, false)
	_, a := e.sandbox("alpha", []EndpointRequest{{Network: "n1", Aliases: []string{"web"}}}, nil)
	_, b := e.sandbox("beta", []EndpointRequest{{Network: "n1", Aliases: []string{"web"}}}, nil)
	_, c := e.sandbox("gamma", []EndpointRequest{{Network: "n2"}}, nil)
	_, d := e.sandbox("delta", []EndpointRequest{{Network: "n3"}}, nil)
	_, f1 := e.sandbox("f1", []EndpointRequest{{Network: "n4"}}, nil)
	_, f2 := e.sandbox("f2", []EndpointRequest{{Network: "n4"}}, nil)
	if !a.EmbeddedDNS {
		t.Fatal("no embedded DNS on a user-defined network")
	}
	for _, s := range []*Sandbox{a, b, c, d, f1, f2} {
		serve(t, s.NetNSPath)
	}
	aIP, bIP := a.Endpoints["n1"].IPAddress.String(), b.Endpoints["n1"].IPAddress.String()

	q := func(ns, name string, typ uint16) *dns.Msg {
		t.Helper()
		var r *dns.Msg
		err := inNetNS(ns, func() error {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), typ)
			var err error
			r, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, "127.0.0.11:53")
			return err
		})
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return r
	}
	if r := q(b.NetNSPath, "alpha", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != aIP {
		t.Fatalf("alpha: %v", r)
	}
	if r := q(b.NetNSPath, "ALPHA.n1", dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("alpha.n1: %v", r)
	}
	firsts := map[string]bool{}
	for i := 0; i < 30 && len(firsts) < 2; i++ {
		r := q(a.NetNSPath, "web", dns.TypeA)
		if len(r.Answer) != 2 {
			t.Fatalf("web: %v", r)
		}
		firsts[r.Answer[0].(*dns.A).A.String()] = true
	}
	if !firsts[aIP] || !firsts[bIP] {
		t.Fatalf("round robin: first answers %v", firsts)
	}
	rev, _ := dns.ReverseAddr(bIP)
	if r := q(a.NetNSPath, rev, dns.TypePTR); len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "beta.n1." {
		t.Fatalf("PTR: %v", r)
	}
	if r := q(a.NetNSPath, "upstream.test", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Fatalf("forwarded: %v", r)
	}
	// Scoped per network: gamma (n2) does not see alpha; the question
	// goes upstream, which does not know it.
	if r := q(c.NetNSPath, "alpha", dns.TypeA); len(r.Answer) != 0 || r.Rcode != dns.RcodeNameError {
		t.Fatalf("alpha from n2: %v", r)
	}
	// Reachability.
	if got, err := ask(b.NetNSPath, aIP+":80", 5*time.Second); err != nil || got != bIP {
		t.Fatalf("beta -> alpha: %q %v", got, err)
	}
	if _, err := ask(c.NetNSPath, aIP+":80", 300*time.Millisecond); err == nil {
		t.Fatal("n2 reached n1")
	}
	if _, err := ask(d.NetNSPath, aIP+":80", 300*time.Millisecond); err == nil {
		t.Fatal("internal network reached n1")
	}
	if _, err := ask(a.NetNSPath, d.Endpoints["n3"].IPAddress.String()+":80", 300*time.Millisecond); err == nil {
		t.Fatal("n1 reached the internal network")
	}
	if d.Endpoints["n3"].Gateway.IsValid() {
		t.Fatal("an internal network gave a gateway")
	}
	// The way out: open from n1, closed from the internal network.
	cns, _, clientIP := clientNS(t, e.execRoot)
	stopClient := serve(t, cns)
	defer stopClient()
	if _, err := ask(a.NetNSPath, clientIP.String()+":80", 5*time.Second); err != nil {
		t.Fatalf("n1 to outside: %v", err)
	}
	if _, err := ask(d.NetNSPath, clientIP.String()+":80", 300*time.Millisecond); err == nil {
		t.Fatal("internal network reached outside")
	}
	if _, err := ask(f1.NetNSPath, f2.Endpoints["n4"].IPAddress.String()+":80", 300*time.Millisecond); err == nil {
		t.Fatal("icc=false: containers of the network reached each other")
	}
	// A network with endpoints cannot go.
	if err := e.svc.Remove(context.Background(), "n1"); !errdefs.Is(err, errdefs.Forbidden) {
		t.Fatalf("remove with endpoints: %v", err)
	}
}

func fakeUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Name == "upstream.test." {
			rr, _ := dns.NewRR("upstream.test. 60 IN A 192.0.2.7")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// TestRestore: a service closed with a live sandbox leaves its bridge
// and rules in place (live restore); a new one restores the sandbox,
// keeps its address, forwards its port and does not hand the address
// out again.
func TestRestore(t *testing.T) {
	e := newTestEnv(t, "")
	e.network("rs", nil, false)
	ports := apinet.PortMap{apinet.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	id, sb := e.sandbox("keep", []EndpointRequest{{Network: "rs", Aliases: []string{"k"}}}, ports)
	serve(t, sb.NetNSPath)
	port := hostPort(t, sb, "80/tcp")
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if !linkExists(e.cfg.Bridge) || !TableExists(TableName(e.cfg.DataRoot)) {
		t.Fatal("close with a live sandbox removed the bridge or the table")
	}
	svc, err := New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	cur := sb.Endpoints["rs"]
	err = svc.Restore(context.Background(), []SandboxRequest{{ContainerID: id, Name: "keep", NetNSPath: sb.NetNSPath, Bindings: sb.Ports,
		Endpoints: []EndpointRequest{{Network: cur.NetworkID, Aliases: []string{"k"}, Current: cur}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ask("", "127.0.0.1:"+port, 5*time.Second); err != nil {
		t.Fatalf("port after restore: %v", err)
	}
	_, sb2 := e.sandbox("new", []EndpointRequest{{Network: "rs"}}, nil)
	if sb2.Endpoints["rs"].IPAddress == cur.IPAddress {
		t.Fatal("restored address handed out again")
	}
	// The embedded DNS is back in the restored sandbox.
	err = inNetNS(sb.NetNSPath, func() error {
		m := new(dns.Msg)
		m.SetQuestion("new.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, "127.0.0.11:53")
		if err == nil && len(r.Answer) != 1 {
			err = errors.New(r.String())
		}
		return err
	})
	if err != nil {
		t.Fatalf("DNS after restore: %v", err)
	}
}

// bridgePorts counts the links enslaved to bridge name.
func bridgePorts(t *testing.T, name string) int {
	t.Helper()
	br, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	links, err := dump(netlink.LinkList)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			n++
		}
	}
	return n
}

// serveUDP answers every datagram on port 5353 of the namespace with the
// sender's address.
func serveUDP(t *testing.T, nsPath string) (stop func()) {
	t.Helper()
	var pc net.PacketConn
	if err := inNetNS(nsPath, func() (err error) { pc, err = net.ListenPacket("udp4", ":5353"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(from.String())
			_, _ = pc.WriteTo([]byte(host), from)
		}
	}()
	return func() { pc.Close() }
}

// askUDP sends a datagram to addr from the namespace nsPath and returns
// the answer (retrying a few times: UDP may lose the first datagram
// while ARP resolves).
func askUDP(nsPath, addr string) (string, error) {
	var out string
	err := inNetNS(nsPath, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 512)
		for i := 0; i < 10; i++ {
			if _, err := c.Write([]byte("?")); err != nil {
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := c.Read(buf)
			if err == nil {
				out = string(buf[:n])
				return nil
			}
		}
		return errors.New("no UDP answer")
	})
	return out, err
}

// TestListInspectPrune: filters, Docker's inspect shape, prune keeps
// networks in use and honours label and until.
func TestListInspectPrune(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	if _, err := e.svc.Create(ctx, CreateRequest{Name: "lp1", Labels: map[string]string{"team": "a"},
		IPAM: &apinet.IPAM{Config: []apinet.IPAMConfig{{Subnet: netip.MustParsePrefix("10.213.251.0/24"), IPRange: netip.MustParsePrefix("10.213.251.128/25"), Gateway: netip.MustParseAddr("10.213.251.254")}}}}); err != nil {
		t.Fatal(err)
	}
	e.network("lp2", nil, false)
	e.network("lp3", nil, false)
	if _, err := e.svc.Create(ctx, CreateRequest{Name: "lp2"}); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := e.svc.Create(ctx, CreateRequest{Name: "ov", IPAM: &apinet.IPAM{Config: []apinet.IPAMConfig{{Subnet: netip.MustParsePrefix("10.213.251.0/25")}}}}); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("overlapping subnet: %v", err)
	}
	names := func(f map[string][]string) string {
		l, err := e.svc.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, s := range l {
			n = append(n, s.Name)
		}
		return strings.Join(n, ",")
	}
	if got := names(map[string][]string{"label": {"team=a"}}); got != "lp1" {
		t.Fatalf("label filter: %s", got)
	}
	if got := names(map[string][]string{"type": {"builtin"}}); got != "bridge,host,none" {
		t.Fatalf("type=builtin: %s", got)
	}
	if _, err := e.svc.List(ctx, map[string][]string{"bogus": {"x"}}); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("unknown filter: %v", err)
	}
	_, sb := e.sandbox("user", []EndpointRequest{{Network: "lp1", IPv4: netip.MustParseAddr("10.213.251.5")}}, nil)
	ins, err := e.svc.Inspect(ctx, "lp1")
	if err != nil {
		t.Fatal(err)
	}
	c := ins.IPAM.Config
	if len(c) != 1 || c[0].Subnet.String() != "10.213.251.0/24" || c[0].IPRange.String() != "10.213.251.128/25" || c[0].Gateway.String() != "10.213.251.254" || len(ins.Containers) != 1 {
		t.Fatalf("inspect: %+v", ins)
	}
	if got := sb.Endpoints["lp1"].IPAddress.String(); got != "10.213.251.5" {
		t.Fatalf("--ip: %s", got)
	}
	if got := names(map[string][]string{"dangling": {"true"}}); got != "lp2,lp3" {
		t.Fatalf("dangling: %s", got)
	}
	pruned, err := e.svc.Prune(ctx, map[string][]string{"until": {"1h"}}, nil)
	if err != nil || len(pruned) != 0 {
		t.Fatalf("prune until 1h ago: %v %v", pruned, err)
	}
	pruned, err = e.svc.Prune(ctx, map[string][]string{"label!": {"keep"}}, nil)
	if err != nil || strings.Join(pruned, ",") != "lp2,lp3" {
		t.Fatalf("prune: %v %v", pruned, err)
	}
	if err := e.svc.Remove(ctx, "bridge"); !errdefs.Is(err, errdefs.Forbidden) {
		t.Fatalf("remove bridge: %v", err)
	}
}

// TestMacvlanIpvlan: containers on a macvlan (bridge mode) or ipvlan (l2)
// network of a parent interface reach each other; names resolve; the
// dummy parent berth creates when none is given goes with the network.
func TestMacvlanIpvlan(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	for _, drv := range []string{"macvlan", "ipvlan"} {
		before := subIfLinks(t)
		id, err := e.svc.Create(ctx, CreateRequest{Name: "sub-" + drv, Driver: drv})
		if drv == "ipvlan" && errdefs.Is(err, errdefs.NotImplemented) {
			// This kernel lacks the driver (no CONFIG_IPVLAN here): the
			// network is refused at create with a clear error, and the
			// parent and probe interfaces are gone.
			if err.Error() != "ipvlan is not supported by this kernel" {
				t.Fatalf("ipvlan error: %q", err)
			}
			if after := subIfLinks(t); after > before {
				t.Fatalf("links left after the refused ipvlan network: %d > %d", after, before)
			}
			if _, err := e.svc.Inspect(ctx, "sub-"+drv); !errdefs.Is(err, errdefs.NotFound) {
				t.Fatalf("refused network exists: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		parent := e.svc.nets[id].Parent
		if !linkExists(parent) {
			t.Fatalf("%s: no parent %s", drv, parent)
		}
		probe := randHex(32)
		if _, err := e.svc.Setup(ctx, SandboxRequest{ContainerID: probe, Name: "probe", Endpoints: []EndpointRequest{{Network: "sub-" + drv}}}); errdefs.Is(err, errdefs.NotImplemented) {
			// This kernel lacks the driver (CONFIG_IPVLAN here): the error
			// says so and nothing is left.
			t.Logf("%s: %v", drv, err)
			if err := e.svc.Remove(ctx, "sub-"+drv); err != nil {
				t.Fatal(err)
			}
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Teardown(ctx, probe); err != nil {
			t.Fatal(err)
		}
		ida, a := e.sandbox("a-"+drv, []EndpointRequest{{Network: "sub-" + drv}}, nil)
		var mac net.HardwareAddr
		if drv == "macvlan" {
			mac, _ = net.ParseMAC("92:d0:c6:0a:29:55")
		}
		idb, b := e.sandbox("b-"+drv, []EndpointRequest{{Network: "sub-" + drv, MAC: mac}}, nil)
		// Inspect shows the interface's MAC: derived from the address
		// or given (macvlan), the parent's (ipvlan).
		for _, x := range []*Sandbox{a, b} {
			if got, want := peerMAC(t, x.NetNSPath, "eth0"), net.HardwareAddr(x.Endpoints["sub-"+drv].MacAddress).String(); got != want {
				t.Fatalf("%s: eth0 MAC %s, inspect %s", drv, got, want)
			}
		}
		if mac != nil && peerMAC(t, b.NetNSPath, "eth0") != mac.String() {
			t.Fatalf("%s: requested MAC not used", drv)
		}
		stop := serve(t, a.NetNSPath)
		aIP := a.Endpoints["sub-"+drv].IPAddress.String()
		if got, err := ask(b.NetNSPath, aIP+":80", 5*time.Second); err != nil || got != b.Endpoints["sub-"+drv].IPAddress.String() {
			t.Fatalf("%s: b -> a: %q %v", drv, got, err)
		}
		var r *dns.Msg
		err = inNetNS(b.NetNSPath, func() error {
			m := new(dns.Msg)
			m.SetQuestion("a-"+drv+".", dns.TypeA)
			var err error
			r, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, "127.0.0.11:53")
			return err
		})
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("%s: DNS: %v %v", drv, r, err)
		}
		stop()
		for _, id := range []string{ida, idb} {
			if err := e.svc.Teardown(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.svc.Remove(ctx, "sub-"+drv); err != nil {
			t.Fatal(err)
		}
		if linkExists(parent) {
			t.Fatalf("%s: dummy parent %s left", drv, parent)
		}
	}
}

// TestDualStack: --ipv6 networks give containers an IPv6 address (from a
// random unique local /64 when none is given) and a default IPv6 route;
// they talk over IPv6, AAAA and ip6.arpa PTR answer, two dual-stack
// networks are isolated over IPv6 too, and the ip6 table goes with the
// last IPv6 network.
func TestDualStack(t *testing.T) {
	// berthd turns IPv6 forwarding on (as dockerd); the test puts the
	// host's setting back.
	if prev, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); err == nil {
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", prev, 0o644) })
	}
	e := newTestEnv(t, "")
	ctx := context.Background()
	yes := true
	for _, n := range []string{"ds1", "ds2"} {
		if _, err := e.svc.Create(ctx, CreateRequest{Name: n, EnableIPv6: &yes}); err != nil {
			t.Fatal(err)
		}
	}
	ins, _ := e.svc.Inspect(ctx, "ds1")
	if !ins.EnableIPv6 || len(ins.IPAM.Config) != 2 || !ins.IPAM.Config[1].Subnet.Addr().Is6() {
		t.Fatalf("inspect: %+v", ins.IPAM)
	}
	ida, a := e.sandbox("six-a", []EndpointRequest{{Network: "ds1"}}, apinet.PortMap{apinet.MustParsePort("80/tcp"): {{}}})
	idb, b := e.sandbox("six-b", []EndpointRequest{{Network: "ds1"}}, nil)
	_, c := e.sandbox("six-c", []EndpointRequest{{Network: "ds2"}}, nil)
	ea, eb := a.Endpoints["ds1"], b.Endpoints["ds1"]
	if !ea.GlobalIPv6Address.Is6() || ea.IPv6Gateway != ins.IPAM.Config[1].Gateway || ea.GlobalIPv6Address == eb.GlobalIPv6Address {
		t.Fatalf("endpoints: %+v %+v", ea, eb)
	}
	stop := serve(t, a.NetNSPath)
	defer stop()
	addr := net.JoinHostPort(ea.GlobalIPv6Address.String(), "80")
	var got string
	err := inNetNS(b.NetNSPath, func() error {
		conn, err := net.DialTimeout("tcp6", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		bs, err := io.ReadAll(conn)
		got = strings.TrimSpace(string(bs))
		return err
	})
	if err != nil || got != eb.GlobalIPv6Address.String() {
		t.Fatalf("b -> a over IPv6: %q %v", got, err)
	}
	err = inNetNS(c.NetNSPath, func() error {
		conn, err := net.DialTimeout("tcp6", addr, 300*time.Millisecond)
		if err == nil {
			conn.Close()
			return errors.New("connected")
		}
		return nil
	})
	if err != nil {
		t.Fatal("ds2 reached ds1 over IPv6")
	}
	var r, p *dns.Msg
	err = inNetNS(b.NetNSPath, func() error {
		m := new(dns.Msg)
		m.SetQuestion("six-a.", dns.TypeAAAA)
		var err error
		if r, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, "127.0.0.11:53"); err != nil {
			return err
		}
		rev, _ := dns.ReverseAddr(ea.GlobalIPv6Address.String())
		m.SetQuestion(rev, dns.TypePTR)
		p, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, "127.0.0.11:53")
		return err
	})
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != ea.GlobalIPv6Address.String() {
		t.Fatalf("AAAA: %v %v", r, err)
	}
	if len(p.Answer) != 1 || p.Answer[0].(*dns.PTR).Ptr != "six-a.ds1." {
		t.Fatalf("ip6.arpa PTR: %v", p)
	}
	if !TableExists(TableName(e.cfg.DataRoot)) {
		t.Fatal("no table")
	}
	// The published port on [::] too, from an IPv6 client outside:
	// DNAT to the container's IPv6 address, the client's address kept.
	bs := a.Ports[apinet.MustParsePort("80/tcp")]
	if len(bs) != 2 || !bs[1].HostIP.Is6() || bs[0].HostPort != bs[1].HostPort {
		t.Fatalf("bindings: %v", bs)
	}
	cns, host6, client6 := clientNS6(t, e.execRoot)
	err = inNetNS(cns, func() error {
		conn, err := net.DialTimeout("tcp6", net.JoinHostPort(host6.String(), bs[1].HostPort), 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		b, err := io.ReadAll(conn)
		got = strings.TrimSpace(string(b))
		return err
	})
	if err != nil || got != client6.String() {
		t.Fatalf("published port over IPv6: %q %v (want %s)", got, err, client6)
	}
	for _, id := range []string{ida, idb} {
		_ = e.svc.Teardown(ctx, id)
	}
}

// TestDefaultBridgeNoICC: --icc=false on the default network (set on a
// restart: the record follows the daemon's settings).
func TestDefaultBridgeNoICC(t *testing.T) {
	e := newTestEnv(t, "")
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	e.cfg.NoICC = true
	svc, err := New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if err := svc.Restore(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ins, _ := svc.Inspect(context.Background(), "bridge")
	if ins.Options["com.docker.network.bridge.enable_icc"] != "false" {
		t.Fatalf("options: %v", ins.Options)
	}
	_, a := e.sandbox("ia", []EndpointRequest{{Network: "bridge"}}, nil)
	_, b := e.sandbox("ib", []EndpointRequest{{Network: "bridge"}}, nil)
	stop := serve(t, a.NetNSPath)
	defer stop()
	if _, err := ask(b.NetNSPath, a.Endpoints["bridge"].IPAddress.String()+":80", 300*time.Millisecond); err == nil {
		t.Fatal("icc=false: containers of the default network reached each other")
	}
}

// TestBIPOverlappingRouteRefused: a --bip that overlaps a host route is
// refused at start, with what it overlaps.
func TestBIPOverlappingRouteRefused(t *testing.T) {
	e := newTestEnv(t, "")
	_, hostIP, _ := clientNS(t, e.execRoot) // a 10.214.N.0/30 route on the host
	dataRoot := t.TempDir()
	db, err := bolt.Open(filepath.Join(dataRoot, "m.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bip := netip.PrefixFrom(hostIP.Next().Next().Next().Next(), 29) // 10.214.N.5/29 covers the /30
	_, err = New(context.Background(), Config{DB: db, DataRoot: dataRoot, ExecRoot: e.execRoot, Bridge: "tn" + randHex(4), BIP: bip})
	if err == nil || !errdefs.Is(err, errdefs.Conflict) || !strings.Contains(err.Error(), "route via tc") {
		t.Fatalf("overlapping --bip: %v", err)
	}
}

// clientNS6 is clientNS with IPv6 addresses (host fd0e:N::1/64, client
// fd0e:N::2/64, default route through the host).
func clientNS6(t *testing.T, dir string) (nsPath string, hostIP, clientIP netip.Addr) {
	t.Helper()
	nsPath, host4, _ := clientNS(t, dir)
	b := host4.As4()
	hostIP = netip.AddrFrom16([16]byte{0xfd, 0x0e, 0, b[2], 15: 1})
	clientIP = netip.AddrFrom16([16]byte{0xfd, 0x0e, 0, b[2], 15: 2})
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
	peer, _ := h.LinkByName("eth0")
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(clientIP, 64)), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: hostIP.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	// The host end: the veth whose peer is the client's eth0.
	host, err := netlink.LinkByIndex(peer.Attrs().ParentIndex)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(hostIP, 64)), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatal(err)
	}
	return nsPath, hostIP, clientIP
}

// TestBridgeMACStable: a bridge keeps its own MAC address while
// containers join and leave it (the kernel would otherwise give it the
// lowest of its ports' addresses, and the containers' ARP entries for the
// gateway would go stale), also a bridge adopted at restart.
func TestBridgeMACStable(t *testing.T) {
	e := newTestEnv(t, "")
	br := "tm" + randHex(4)
	e.network("macs", map[string]string{"com.docker.network.bridge.name": br}, false)
	mac := func() string {
		t.Helper()
		l, err := netlink.LinkByName(br)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().HardwareAddr.String()
	}
	assign := func() string {
		b, err := os.ReadFile("/sys/class/net/" + br + "/addr_assign_type")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	m0 := mac()
	if a := assign(); a != "3" {
		t.Fatalf("bridge %s: addr_assign_type %s, want 3 (set)", br, a)
	}
	ida, _ := e.sandbox("ma", []EndpointRequest{{Network: "macs"}}, nil)
	e.sandbox("mb", []EndpointRequest{{Network: "macs"}}, nil)
	if m := mac(); m != m0 {
		t.Fatalf("bridge MAC changed from %s to %s when containers joined", m0, m)
	}
	if err := e.svc.Teardown(context.Background(), ida); err != nil {
		t.Fatal(err)
	}
	if m := mac(); m != m0 {
		t.Fatalf("bridge MAC changed from %s to %s when a container left", m0, m)
	}

	// A bridge created before (by an older berthd) that follows its
	// ports is pinned when it is adopted.
	old := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "to" + randHex(4)}}
	if err := netlink.LinkAdd(old); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = netlink.LinkDel(old) }()
	l, err := netlink.LinkByName(old.Name)
	if err != nil {
		t.Fatal(err)
	}
	pinBridgeMAC(l)
	b, err := os.ReadFile("/sys/class/net/" + old.Name + "/addr_assign_type")
	if err != nil {
		t.Fatal(err)
	}
	if a := strings.TrimSpace(string(b)); a != "3" {
		t.Fatalf("adopted bridge %s: addr_assign_type %s, want 3", old.Name, a)
	}
	if l2, _ := netlink.LinkByName(old.Name); l2 == nil || l2.Attrs().HardwareAddr.String() != l.Attrs().HardwareAddr.String() {
		t.Fatal("pinning changed the adopted bridge's address")
	}
}

// subIfLinks counts the host's links berth names for macvlan/ipvlan
// parents and probes.
func subIfLinks(t *testing.T) int {
	t.Helper()
	ls, err := dump(netlink.LinkList)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range ls {
		if name := l.Attrs().Name; strings.HasPrefix(name, "dm-") || strings.HasPrefix(name, "dp-") || strings.HasPrefix(name, "pv") {
			n++
		}
	}
	return n
}
