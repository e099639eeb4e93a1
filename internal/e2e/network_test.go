package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestNetworkDefaultBridge: a container on the default network has an
// address of the daemon's bridge subnet, a default route and the
// address in its /etc/hosts; host-gateway resolves to the gateway.
func TestNetworkDefaultBridge(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := d.cli(c.bin, nil, "run", "--rm", "--add-host", "gw:host-gateway", "busybox", "sh", "-c", "ip -4 addr show eth0; ip route; cat /etc/hosts")
			if code != 0 {
				t.Fatalf("run: %d %s %s", code, out, errOut)
			}
			if !strings.Contains(out, "inet 10.213.") || !strings.Contains(out, "default via 10.213.") {
				t.Fatalf("no bridge address or route:\n%s", out)
			}
			gw := strings.Fields(out[strings.Index(out, "default via "):])[2]
			if !strings.Contains(out, gw+"\tgw\n") {
				t.Fatalf("host-gateway is not %s:\n%s", gw, out)
			}
		})
	}
}

// runServer starts a detached busybox TCP server on port 80 of a
// container that answers "hi" and the connection table (so the client
// address shows).
func (d *daemon) runServer(bin string, args ...string) string {
	d.t.Helper()
	full := append([]string{"run", "-d"}, args...)
	full = append(full, "busybox", "nc", "-ll", "-p", "80", "-e", "sh", "-c", "echo hi; netstat -tn")
	out, errOut, code := d.cli(bin, nil, full...)
	if code != 0 {
		d.t.Fatalf("run server: %d %s %s", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	waitFor(d.t, "server listening", 10*time.Second, func() bool {
		out, _, _ := d.cli(bin, nil, "exec", id, "netstat", "-tln")
		return strings.Contains(out, ":80 ")
	})
	return id
}

func (d *daemon) inspectIP(bin, ctr, netName string) string {
	d.t.Helper()
	out, errOut, code := d.cli(bin, nil, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+netName+`").IPAddress}}`, ctr)
	if code != 0 {
		d.t.Fatalf("inspect: %d %s %s", code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// TestNetworkUserDefined: containers on a user-defined network reach
// each other by name and alias through the embedded DNS; a container on
// another network resolves neither and cannot reach them by address;
// network ls/inspect/rm behave as docker's.
func TestNetworkUserDefined(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			a, b := "na-"+c.name, "nb-"+c.name
			for _, n := range []string{a, b} {
				if out, errOut, code := d.cli(c.bin, nil, "network", "create", "--label", "t=1", n); code != 0 {
					t.Fatalf("network create: %d %s %s", code, out, errOut)
				}
			}
			srv := "srv-" + c.name
			d.runServer(c.bin, "--name", srv, "--network", a, "--network-alias", "web")
			ip := d.inspectIP(c.bin, srv, a)
			if !strings.HasPrefix(ip, "10.213.") {
				t.Fatalf("server address %q", ip)
			}
			for _, name := range []string{srv, "web"} {
				out, errOut, code := d.cli(c.bin, nil, "run", "--rm", "--network", a, "busybox", "nc", name, "80")
				if code != 0 || !strings.HasPrefix(out, "hi\n") {
					t.Fatalf("nc %s on %s: %d %q %s", name, a, code, out, errOut)
				}
			}
			out, _, _ := d.cli(c.bin, nil, "run", "--rm", "--network", a, "busybox", "nslookup", srv)
			if !strings.Contains(out, ip) {
				t.Fatalf("nslookup %s: %s", srv, out)
			}
			// Another network: no name, no route.
			out, _, _ = d.cli(c.bin, nil, "run", "--rm", "--network", b, "busybox", "nslookup", srv)
			if strings.Contains(out, ip) {
				t.Fatalf("%s resolved from %s: %s", srv, b, out)
			}
			out, _, code := d.cli(c.bin, nil, "run", "--rm", "--network", b, "busybox", "nc", "-w", "1", ip, "80")
			if code == 0 || strings.Contains(out, "hi") {
				t.Fatalf("reached %s from %s: %d %q", ip, b, code, out)
			}
			out, _, _ = d.cli(c.bin, nil, "network", "ls", "--filter", "label=t=1", "--format", "{{.Name}} {{.Driver}}")
			if out != a+" bridge\n"+b+" bridge\n" {
				t.Fatalf("network ls: %q", out)
			}
			out, _, _ = d.cli(c.bin, nil, "network", "inspect", a)
			var ins []struct {
				Containers map[string]struct{ Name, IPv4Address string }
				IPAM       struct {
					Config []struct{ Subnet, Gateway string }
				}
			}
			if err := json.Unmarshal([]byte(out), &ins); err != nil || len(ins) != 1 || len(ins[0].IPAM.Config) != 1 {
				t.Fatalf("network inspect: %v %s", err, out)
			}
			found := false
			for _, e := range ins[0].Containers {
				found = found || (e.Name == srv && strings.HasPrefix(e.IPv4Address, ip+"/"))
			}
			if !found {
				t.Fatalf("network inspect: %s not in Containers: %s", srv, out)
			}
			// An unknown network: a clear error, and no pull attempt.
			if _, errOut, code := d.cli(c.bin, nil, "run", "--rm", "--network", "nosuchnet", "busybox", "true"); code != 125 || !strings.Contains(errOut, "network nosuchnet not found") || strings.Contains(errOut, "Unable to find image") {
				t.Fatalf("unknown network: %d %s", code, errOut)
			}
			if _, errOut, code := d.cli(c.bin, nil, "network", "rm", a); code == 0 || !strings.Contains(errOut, "active endpoints") {
				t.Fatalf("network rm with a running container: %d %s", code, errOut)
			}
			d.cli(c.bin, nil, "rm", "-f", srv)
			if out, errOut, code := d.cli(c.bin, nil, "network", "rm", a, b); code != 0 || out != a+"\n"+b+"\n" {
				t.Fatalf("network rm: %d %q %s", code, out, errOut)
			}
		})
	}
}

// TestNetworkPublish: -p on 127.0.0.1 with an ephemeral host port is
// reachable from the host with a plain TCP connection (DNAT, no proxy),
// `port` shows it, a second container asking for the same port fails
// before it starts, -P publishes EXPOSEd ports.
func TestNetworkPublish(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			name := "pub-" + c.name
			d.runServer(c.bin, "--name", name, "-p", "127.0.0.1::80", "--expose", "81")
			out, errOut, code := d.cli(c.bin, nil, "port", name, "80")
			if code != 0 || !strings.HasPrefix(out, "127.0.0.1:") {
				t.Fatalf("port: %d %q %s", code, out, errOut)
			}
			hostAddr := strings.TrimSpace(out)
			all, _, _ := d.cli(c.bin, nil, "port", name)
			if all != "80/tcp -> "+hostAddr+"\n" {
				t.Fatalf("port (all): %q", all)
			}
			got := dialRead(t, hostAddr)
			if !strings.HasPrefix(got, "hi\n") {
				t.Fatalf("published port answered %q", got)
			}
			// The same host port again: refused before the start.
			_, errOut, code = d.cli(c.bin, nil, "run", "-d", "--name", name+"-2", "-p", hostAddr+":80", "busybox", "true")
			if code == 0 || !strings.Contains(errOut, "port is already allocated") {
				t.Fatalf("conflicting port: %d %s", code, errOut)
			}
			d.cli(c.bin, nil, "rm", "-f", name, name+"-2")
			// -P: every exposed port gets a host port.
			d.runServer(c.bin, "--name", name+"-P", "-P", "--expose", "80")
			out, _, code = d.cli(c.bin, nil, "port", name+"-P", "80/tcp")
			if code != 0 || !strings.HasPrefix(out, "0.0.0.0:") {
				t.Fatalf("-P: %d %q", code, out)
			}
			// The same port on [::] (berthd's proxy), as dockerd.
			first, second, _ := strings.Cut(strings.TrimSpace(out), "\n")
			port := strings.TrimPrefix(first, "0.0.0.0:")
			if second != "[::]:"+port {
				t.Fatalf("-P: no [::] binding: %q", out)
			}
			if got := dialRead(t, "[::1]:"+port); !strings.HasPrefix(got, "hi\n") {
				t.Fatalf("-P port on [::1] answered %q", got)
			}
			if got := dialRead(t, "127.0.0.1:"+port); !strings.HasPrefix(got, "hi\n") {
				t.Fatalf("-P port answered %q", got)
			}
			out, _, _ = d.cli(c.bin, nil, "ps", "--format", "{{.Ports}}", "--filter", "name="+name+"-P")
			if !strings.Contains(out, "0.0.0.0:"+port+"->80/tcp") {
				t.Fatalf("ps ports: %q", out)
			}
			out, _, _ = d.cli(c.bin, nil, "ps", "-q", "--filter", "publish=80", "--filter", "name="+name+"-P")
			if strings.TrimSpace(out) == "" {
				t.Fatal("ps --filter publish=80 found nothing")
			}
			out, _, _ = d.cli(c.bin, nil, "ps", "-q", "--filter", "publish=81", "--filter", "name="+name+"-P")
			if strings.TrimSpace(out) != "" {
				t.Fatalf("ps --filter publish=81: %q", out)
			}
			d.cli(c.bin, nil, "rm", "-f", name+"-P")
		})
	}
}

func dialRead(t *testing.T, addr string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String()
		}
	}
}

// TestNetworkRestartKeepsState: across a berthd restart a running
// container keeps its address, its published port keeps working (the
// table is rebuilt atomically), names still resolve, and a new
// container gets another address.
func TestNetworkRestartKeepsState(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bin := bins.docker
	if _, errOut, code := d.cli(bin, nil, "network", "create", "rn"); code != 0 {
		t.Fatal(errOut)
	}
	d.runServer(bin, "--name", "keep", "--network", "rn", "-p", "127.0.0.1::80")
	ip := d.inspectIP(bin, "keep", "rn")
	out, _, _ := d.cli(bin, nil, "port", "keep", "80")
	hostAddr := strings.TrimSpace(out)
	d.stop()
	d.start()
	if got := d.inspectIP(bin, "keep", "rn"); got != ip {
		t.Fatalf("address after restart: %s, was %s", got, ip)
	}
	if got := dialRead(t, hostAddr); !strings.HasPrefix(got, "hi\n") {
		t.Fatalf("published port after restart answered %q", got)
	}
	out, errOut, code := d.cli(bin, nil, "run", "--rm", "--network", "rn", "busybox", "sh", "-c", "nc keep 80; ip -4 -o addr show eth0")
	if code != 0 || !strings.HasPrefix(out, "hi\n") || strings.Contains(out, " "+ip+"/") {
		t.Fatalf("after restart: %d %q %s", code, out, errOut)
	}
	// A crash (kill -9) right after a start: the same after the restart.
	d.runServer(bin, "--name", "keep2", "--network", "rn", "-p", "127.0.0.1::80")
	ip2 := d.inspectIP(bin, "keep2", "rn")
	out, _, _ = d.cli(bin, nil, "port", "keep2", "80")
	hostAddr2 := strings.TrimSpace(out)
	d.kill9()
	d.start()
	if got := d.inspectIP(bin, "keep2", "rn"); got != ip2 {
		t.Fatalf("address after a crash: %s, was %s", got, ip2)
	}
	for _, a := range []string{hostAddr, hostAddr2} {
		if got := dialRead(t, a); !strings.HasPrefix(got, "hi\n") {
			t.Fatalf("published port %s after a crash answered %q", a, got)
		}
	}
	out, errOut, code = d.cli(bin, nil, "run", "--rm", "--network", "rn", "busybox", "sh", "-c", "nc keep2 80; ip -4 -o addr show eth0")
	if code != 0 || !strings.HasPrefix(out, "hi\n") || strings.Contains(out, " "+ip+"/") || strings.Contains(out, " "+ip2+"/") {
		t.Fatalf("after a crash: %d %q %s", code, out, errOut)
	}
}

// TestNetworkDNSForwarding: names the embedded DNS does not know go to
// the configured upstream (a fake server on loopback), over UDP and,
// when the answer is truncated, TCP.
func TestNetworkDNSForwarding(t *testing.T) {
	up := startFakeDNS(t)
	d := startDaemonWith(t, func(d *daemon) { d.dnsUpstream = up })
	d.importBusybox("busybox:latest")
	bin := bins.cli
	if _, errOut, code := d.cli(bin, nil, "network", "create", "fw"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := d.cli(bin, nil, "run", "--rm", "--network", "fw", "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup upstream.test; nslookup big.test")
	if code != 0 || !strings.Contains(out, "nameserver 127.0.0.11") || !strings.Contains(out, "192.0.2.7") || !strings.Contains(out, "192.0.2.20") {
		t.Fatalf("forwarding: %d %s %s", code, out, errOut)
	}
	// big.test only exists over TCP: the embedded server fell back.
	if tcpQueries.Load() == 0 {
		t.Fatal("the upstream saw no TCP query")
	}
}

var tcpQueries atomic.Int64

// startFakeDNS serves "upstream.test" (A 192.0.2.7) and "big.test" (50
// A records, truncated over UDP) on 127.0.0.1, UDP and TCP, same port.
func startFakeDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		if tcp {
			tcpQueries.Add(1)
		}
		switch q.Question[0].Name {
		case "upstream.test.":
			rr, _ := dns.NewRR("upstream.test. 60 IN A 192.0.2.7")
			m.Answer = append(m.Answer, rr)
		case "big.test.":
			if !tcp {
				m.Truncated = true
				break
			}
			for i := 0; i < 50; i++ {
				rr, _ := dns.NewRR("big.test. 60 IN A 192.0.2." + itoa(i))
				m.Answer = append(m.Answer, rr)
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	us, ts := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: l, Handler: h}
	go func() { _ = us.ActivateAndServe() }()
	go func() { _ = ts.ActivateAndServe() }()
	t.Cleanup(func() { pc.Close(); l.Close() })
	return pc.LocalAddr().String()
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestNetworkConnectDisconnect: a running container joins a second
// network with a fixed address and an alias, is reachable there by the
// alias, and leaves it again.
func TestNetworkConnectDisconnect(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			one, two := "c1-"+c.name, "c2-"+c.name
			d.cli(c.bin, nil, "network", "create", one)
			if _, errOut, code := d.cli(c.bin, nil, "network", "create", "--subnet", "10.213.250."+map[string]string{"docker": "0", "berth": "128"}[c.name]+"/25", two); code != 0 {
				t.Fatal(errOut)
			}
			ctr := "cc-" + c.name
			d.runServer(c.bin, "--name", ctr, "--network", one)
			fixed := "10.213.250." + map[string]string{"docker": "77", "berth": "177"}[c.name]
			if _, errOut, code := d.cli(c.bin, nil, "network", "connect", "--ip", fixed, "--alias", "other", two, ctr); code != 0 {
				t.Fatalf("connect: %s", errOut)
			}
			if ip := d.inspectIP(c.bin, ctr, two); ip != fixed {
				t.Fatalf("connected address %q, want %s", ip, fixed)
			}
			out, errOut, code := d.cli(c.bin, nil, "run", "--rm", "--network", two, "busybox", "nc", "other", "80")
			if code != 0 || !strings.HasPrefix(out, "hi\n") {
				t.Fatalf("nc other: %d %q %s", code, out, errOut)
			}
			// The address is taken.
			if _, errOut, code := d.cli(c.bin, nil, "run", "--rm", "--network", two, "--ip", fixed, "busybox", "true"); code == 0 || !strings.Contains(errOut, "Address already in use") {
				t.Fatalf("same --ip twice: %d %s", code, errOut)
			}
			if _, errOut, code := d.cli(c.bin, nil, "network", "disconnect", two, ctr); code != 0 {
				t.Fatalf("disconnect: %s", errOut)
			}
			out, _, _ = d.cli(c.bin, nil, "exec", ctr, "ip", "-4", "-o", "addr")
			if strings.Contains(out, fixed) {
				t.Fatalf("address still there after disconnect: %s", out)
			}
			d.cli(c.bin, nil, "rm", "-f", ctr)
			d.cli(c.bin, nil, "network", "rm", one, two)
		})
	}
}

var _ = context.Background

// TestNetworkInspectLegacyFields: the docker CLI (API 1.50) sees the
// default network's address at NetworkSettings.IPAddress, as dockerd
// back-fills it before API 1.52.
func TestNetworkInspectLegacyFields(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if _, errOut, code := d.cli(bins.docker, nil, "run", "-d", "--name", "lg", "busybox", "sleep", "60"); code != 0 {
		t.Fatal(errOut)
	}
	out, _, _ := d.cli(bins.docker, nil, "inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.Networks.bridge.IPAddress}}", "lg")
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != f[2] || !strings.HasPrefix(f[0], "10.213.") || !strings.HasPrefix(f[1], "10.213.") {
		t.Fatalf("legacy fields: %q", out)
	}
}

// TestNetworkLink: --link puts the linked container's address in
// /etc/hosts under its alias and name (default bridge).
func TestNetworkLink(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.runServer(bins.docker, "--name", "lsrv")
	ip := d.inspectIP(bins.docker, "lsrv", "bridge")
	out, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--link", "lsrv:db", "busybox", "sh", "-c", "grep -w db /etc/hosts; nc db 80")
	if code != 0 || !strings.HasPrefix(out, ip+"\tdb ") || !strings.Contains(out, "\nhi\n") {
		t.Fatalf("link: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := d.cli(bins.docker, nil, "run", "--rm", "--link", "nosuch:db", "busybox", "true"); code == 0 || !strings.Contains(errOut, "could not get container for nosuch") {
		t.Fatalf("link to nothing: %d %s", code, errOut)
	}
}

// freePorts finds n consecutive TCP ports free on 127.0.0.1 (right now).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := base+n < 65535
		for i := 0; ok && i < n; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// TestNetworkPortRanges: -p with host and container ranges, and a host
// range for one container port (the first free one is taken).
func TestNetworkPortRanges(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	base := freePorts(t, 4)
	spec := "127.0.0.1:" + itoa(base) + "-" + itoa(base+1) + ":80-81"
	d.runServer(bins.docker, "--name", "rg", "-p", spec)
	out, _, _ := d.cli(bins.docker, nil, "port", "rg")
	want := "80/tcp -> 127.0.0.1:" + itoa(base) + "\n81/tcp -> 127.0.0.1:" + itoa(base+1) + "\n"
	if out != want {
		t.Fatalf("port: %q, want %q", out, want)
	}
	if got := dialRead(t, "127.0.0.1:"+itoa(base)); !strings.HasPrefix(got, "hi\n") {
		t.Fatalf("ranged port answered %q", got)
	}
	// One container port, a host range whose first port is taken.
	d.runServer(bins.cli, "--name", "rg2", "-p", "127.0.0.1:"+itoa(base+1)+"-"+itoa(base+3)+":80")
	out, _, _ = d.cli(bins.cli, nil, "port", "rg2", "80")
	if out != "127.0.0.1:"+itoa(base+2)+"\n" {
		t.Fatalf("host range: %q", out)
	}
}

// TestNetworkIPv6: a dual-stack network through the docker CLI: the
// container has an IPv6 address (inspect and inside), others reach it
// over IPv6.
func TestNetworkIPv6(t *testing.T) {
	if prev, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); err == nil {
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", prev, 0o644) })
	}
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if _, errOut, code := d.cli(bins.docker, nil, "network", "create", "--ipv6", "v6net"); code != 0 {
		t.Fatal(errOut)
	}
	d.runServer(bins.docker, "--name", "s6", "--network", "v6net")
	out, _, _ := d.cli(bins.docker, nil, "inspect", "-f", `{{(index .NetworkSettings.Networks "v6net").GlobalIPv6Address}}`, "s6")
	ip6 := strings.TrimSpace(out)
	if !strings.HasPrefix(ip6, "fd") {
		t.Fatalf("IPv6 address %q", ip6)
	}
	out, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--network", "v6net", "busybox", "sh", "-c", "nc "+ip6+" 80; ip -6 route")
	if code != 0 || !strings.HasPrefix(out, "hi\n") || !strings.Contains(out, "default via") {
		t.Fatalf("over IPv6: %d %q %s", code, out, errOut)
	}
}

// TestNetworkDNSFilesAndStoppedConnect: --dns, --dns-search and
// --dns-option in resolv.conf (the embedded server on user-defined
// networks), and a stopped container connected to a second network
// gets an interface there at its next start.
func TestNetworkDNSFilesAndStoppedConnect(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	out, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.test", "--dns-option", "ndots:3", "busybox", "cat", "/etc/resolv.conf")
	if code != 0 || out != "nameserver 192.0.2.53\nsearch example.test\noptions ndots:3\n" {
		t.Fatalf("default bridge resolv.conf: %d %q %s", code, out, errOut)
	}
	d.cli(bins.docker, nil, "network", "create", "dn1")
	d.cli(bins.docker, nil, "network", "create", "dn2")
	out, errOut, code = d.cli(bins.docker, nil, "run", "--rm", "--network", "dn1", "--dns", "192.0.2.53", "--dns-search", "example.test", "--dns-option", "timeout:2", "busybox", "cat", "/etc/resolv.conf")
	if code != 0 || out != "nameserver 127.0.0.11\nsearch example.test\noptions ndots:0 timeout:2\n" {
		t.Fatalf("user network resolv.conf: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := d.cli(bins.docker, nil, "create", "--name", "sc", "--network", "dn1", "busybox", "sleep", "60"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := d.cli(bins.docker, nil, "network", "connect", "--alias", "second", "dn2", "sc"); code != 0 {
		t.Fatalf("connect a created container: %s", errOut)
	}
	if _, errOut, code := d.cli(bins.docker, nil, "start", "sc"); code != 0 {
		t.Fatal(errOut)
	}
	out, _, _ = d.cli(bins.docker, nil, "exec", "sc", "ip", "-4", "-o", "addr")
	ip2 := d.inspectIP(bins.docker, "sc", "dn2")
	if !strings.Contains(out, "eth0") || !strings.Contains(out, "eth1") || ip2 == "" || !strings.Contains(out, ip2+"/") {
		t.Fatalf("interfaces after start: %q (dn2 address %q)", out, ip2)
	}
	out, _, _ = d.cli(bins.docker, nil, "run", "--rm", "--network", "dn2", "busybox", "nslookup", "second")
	if !strings.Contains(out, ip2) {
		t.Fatalf("alias on the second network: %s", out)
	}
}

// TestNetworkCLIOutputsMatch: berth prints what docker prints for the
// network commands' default outputs, against the same daemon.
func TestNetworkCLIOutputsMatch(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.cli(bins.docker, nil, "network", "create", "--label", "a=b", "om1")
	d.runServer(bins.docker, "--name", "om", "--network", "om1", "-p", "127.0.0.1::80", "--expose", "81")
	for _, args := range [][]string{
		{"network", "ls"}, {"network", "ls", "--no-trunc"}, {"network", "ls", "-q"},
		{"network", "ls", "--filter", "driver=bridge", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.IPv6}} {{.Labels}}"},
		{"network", "inspect", "om1"}, {"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{len .Containers}}", "om1", "bridge"},
		{"port", "om"}, {"port", "om", "80"}, {"port", "om", "80/tcp"},
		{"network", "rm", "nosuch"}, {"network", "create", "om1"}, {"network", "connect", "om1", "om"},
		{"network", "disconnect", "bridge", "om"}, {"network", "rm", "bridge"}, {"network", "inspect", "nosuch"},
	} {
		dOut, dErr, dCode := d.cli(bins.docker, nil, args...)
		bOut, bErr, bCode := d.cli(bins.cli, nil, args...)
		if dOut != bOut || dCode != bCode || strings.TrimSpace(dErr) != strings.TrimSpace(bErr) {
			t.Errorf("%v:\ndocker (%d): %q %q\nberth  (%d): %q %q", args, dCode, dOut, dErr, bCode, bOut, bErr)
		}
	}
}
