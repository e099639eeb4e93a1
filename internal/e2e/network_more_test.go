package e2e

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// TestNetworkIPv6DefaultMACSCTPLinks: a daemon started with --ipv6 and
// --fixed-cidr-v6 (as dockerd): containers on the default network get
// an IPv6 address of the subnet and a published port answers on the
// host's own IPv6 address and on [::1]; --mac-address (run and network
// connect --driver-opt) is the interface's address; -p .../sctp shows in
// port and inspect; [::1] bindings of an IPv4-only container answer
// through berthd's proxy; --link sets Docker's variables; ipvlan is
// refused with a clear error on this kernel.
func TestNetworkIPv6DefaultMACSCTPLinks(t *testing.T) {
	if prev, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); err == nil {
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", prev, 0o644) })
	}
	var a [16]byte
	_, _ = rand.Read(a[2:6])
	a[0], a[1] = 0xfd, 0xb8
	sub := netip.PrefixFrom(netip.AddrFrom16(a), 64)
	gw6 := sub.Addr().Next()
	d := startDaemonWith(t, func(d *daemon) { d.args = []string{"--ipv6", "--fixed-cidr-v6", sub.String()} })
	d.importBusybox("busybox:latest")
	dk := bins.docker

	// IPv6 on the default network, and --mac-address.
	d.runServer(dk, "--name", "v6", "-p", "80", "--mac-address", "92:d0:c6:0a:29:33", "--expose", "80", "-e", "FOO=bar")
	out, _, _ := d.cli(dk, nil, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.GlobalIPv6Address}} {{.NetworkSettings.Networks.bridge.IPv6Gateway}} {{.NetworkSettings.Networks.bridge.MacAddress}}", "v6")
	f := strings.Fields(out)
	if len(f) != 3 || !sub.Contains(netip.MustParseAddr(f[0])) || f[1] != gw6.String() || f[2] != "92:d0:c6:0a:29:33" {
		t.Fatalf("inspect: %q (subnet %s)", out, sub)
	}
	// The docker CLI (API 1.50) also reads the legacy top-level fields.
	out, _, _ = d.cli(dk, nil, "inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}}", "v6")
	if out != f[0]+"/64 "+f[1]+"\n" {
		t.Fatalf("legacy IPv6 fields: %q", out)
	}
	out, _, _ = d.cli(dk, nil, "exec", "v6", "cat", "/sys/class/net/eth0/address")
	if strings.TrimSpace(out) != "92:d0:c6:0a:29:33" {
		t.Fatalf("eth0 address %q", out)
	}
	if _, errOut, code := d.cli(dk, nil, "create", "--network", "host", "--mac-address", "92:d0:c6:0a:29:33", "busybox", "true"); code == 0 || !strings.Contains(errOut, "conflicting options: mac-address and the network mode") {
		t.Fatalf("--mac-address with --network host: %d %s", code, errOut)
	}
	out, _, _ = d.cli(bins.cli, nil, "network", "inspect", "-f", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}", "bridge")
	if !strings.HasPrefix(out, "true ") || !strings.Contains(out, sub.String()) {
		t.Fatalf("network inspect bridge: %q", out)
	}
	out, _, _ = d.cli(dk, nil, "port", "v6", "80")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "0.0.0.0:") || !strings.HasPrefix(lines[1], "[::]:") {
		t.Fatalf("port: %q", out)
	}
	port := strings.TrimPrefix(lines[0], "0.0.0.0:")
	for _, addr := range []string{net.JoinHostPort(gw6.String(), port), "[::1]:" + port, "127.0.0.1:" + port} {
		if got := dialRead(t, addr); !strings.HasPrefix(got, "hi\n") {
			t.Fatalf("%s answered %q", addr, got)
		}
	}

	// Legacy link variables (default network).
	ip := d.inspectIP(dk, "v6", "bridge")
	out, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--name", "lk", "--link", "v6:db", "busybox", "env")
	for _, want := range []string{"DB_PORT=tcp://" + ip + ":80", "DB_PORT_80_TCP=tcp://" + ip + ":80", "DB_PORT_80_TCP_ADDR=" + ip,
		"DB_PORT_80_TCP_PORT=80", "DB_PORT_80_TCP_PROTO=tcp", "DB_NAME=/lk/db", "DB_ENV_FOO=bar"} {
		if code != 0 || !strings.Contains(out, want+"\n") {
			t.Fatalf("link env: want %s: %d %q %s", want, code, out, errOut)
		}
	}
	if strings.Contains(out, "DB_ENV_PATH=") {
		t.Fatalf("link env has PATH: %q", out)
	}
	// A linked container that is not running: the start fails (Docker's
	// message).
	if _, errOut, code := d.cli(dk, nil, "create", "--name", "stopped", "busybox", "true"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := d.cli(dk, nil, "run", "--rm", "--name", "lk2", "--link", "stopped:st", "busybox", "true"); code == 0 || !strings.Contains(errOut, "Cannot link to a non running container: /stopped AS /lk2/st") {
		t.Fatalf("link to a stopped container: %d %s", code, errOut)
	}

	// SCTP: DNAT rules only (no SCTP sockets on this kernel); port and
	// inspect show the binding.
	sctpPort := freePorts(t, 1)
	for _, c := range clis() {
		name := "sc-" + c.name
		if _, errOut, code := d.cli(c.bin, nil, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:9000/sctp", sctpPort), "busybox", "sleep", "60"); code != 0 {
			t.Fatalf("%s: run -p sctp: %s", c.name, errOut)
		}
		out, _, _ = d.cli(c.bin, nil, "port", name)
		if out != fmt.Sprintf("9000/sctp -> 127.0.0.1:%d\n", sctpPort) {
			t.Fatalf("%s: port: %q", c.name, out)
		}
		out, _, _ = d.cli(c.bin, nil, "inspect", "-f", `{{json (index .NetworkSettings.Ports "9000/sctp")}}`, name)
		if !strings.Contains(out, fmt.Sprintf(`"HostPort":"%d"`, sctpPort)) {
			t.Fatalf("%s: inspect ports: %q", c.name, out)
		}
		d.cli(c.bin, nil, "rm", "-f", name)
	}

	// [::1] binding of an IPv4-only container (user network without
	// IPv6): berthd's proxy relays to its IPv4 address.
	if _, errOut, code := d.cli(dk, nil, "network", "create", "v4only"); code != 0 {
		t.Fatal(errOut)
	}
	d.runServer(bins.cli, "--name", "lo6", "--network", "v4only", "-p", "[::1]::80")
	out, _, _ = d.cli(bins.cli, nil, "port", "lo6")
	if !strings.HasPrefix(out, "80/tcp -> [::1]:") {
		t.Fatalf("port: %q", out)
	}
	lo6 := strings.TrimSpace(strings.TrimPrefix(out, "80/tcp -> "))
	if got := dialRead(t, lo6); !strings.HasPrefix(got, "hi\n") {
		t.Fatalf("[::1] binding answered %q", got)
	}
	// The relay lives in berthd: gone while it is stopped, back when it
	// starts again (the container kept running).
	d.stop()
	if c, err := net.Dial("tcp", lo6); err == nil {
		c.Close()
		t.Fatalf("%s answered with berthd stopped", lo6)
	}
	// Restarted with --ip (dockerd's default binding address).
	d.args = append(d.args, "--ip", "127.0.0.1")
	d.start()
	if got := dialRead(t, lo6); !strings.HasPrefix(got, "hi\n") {
		t.Fatalf("[::1] binding after a restart answered %q", got)
	}
	d.runServer(dk, "--name", "bip", "-p", "80")
	out, _, _ = d.cli(dk, nil, "port", "bip", "80")
	if !strings.HasPrefix(out, "127.0.0.1:") || strings.Count(out, "\n") != 1 {
		t.Fatalf("port with --ip 127.0.0.1: %q", out)
	}
	if got := dialRead(t, strings.TrimSpace(out)); !strings.HasPrefix(got, "hi\n") {
		t.Fatalf("--ip binding answered %q", got)
	}
	out, _, _ = d.cli(dk, nil, "network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.host_binding_ipv4"}}`, "bridge")
	if strings.TrimSpace(out) != "127.0.0.1" {
		t.Fatalf("bridge host_binding_ipv4: %q", out)
	}

	// network connect with a MAC address (driver option).
	if _, errOut, code := d.cli(bins.cli, nil, "network", "connect", "--driver-opt", "com.docker.network.endpoint.macaddress=92:d0:c6:0a:29:44", "v4only", "v6"); code != 0 {
		t.Fatalf("connect: %s", errOut)
	}
	out, _, _ = d.cli(dk, nil, "exec", "v6", "cat", "/sys/class/net/eth1/address")
	if strings.TrimSpace(out) != "92:d0:c6:0a:29:44" {
		t.Fatalf("eth1 address %q", out)
	}
	out, _, _ = d.cli(dk, nil, "inspect", "-f", "{{.NetworkSettings.Networks.v4only.MacAddress}}", "v6")
	if strings.TrimSpace(out) != "92:d0:c6:0a:29:44" {
		t.Fatalf("inspect v4only MacAddress %q", out)
	}

	// A dual-stack macvlan network (berth's own dummy parent).
	if _, errOut, code := d.cli(dk, nil, "network", "create", "-d", "macvlan", "--ipv6", "mv6"); code != 0 {
		t.Fatalf("macvlan --ipv6: %s", errOut)
	}
	d.runServer(dk, "--name", "mvs", "--network", "mv6")
	out, _, _ = d.cli(dk, nil, "inspect", "-f", "{{.NetworkSettings.Networks.mv6.GlobalIPv6Address}}", "mvs")
	mvIP := strings.TrimSpace(out)
	out, errOut, code = d.cli(bins.cli, nil, "run", "--rm", "--network", "mv6", "busybox", "nc", mvIP, "80")
	if mvIP == "" || code != 0 || !strings.HasPrefix(out, "hi\n") {
		t.Fatalf("macvlan over IPv6 (%q): %d %q %s", mvIP, code, out, errOut)
	}

	// ipvlan: refused at create on a kernel without it.
	if _, errOut, code := d.cli(dk, nil, "network", "create", "-d", "ipvlan", "ipv"); code == 0 {
		d.cli(dk, nil, "network", "rm", "ipv") // a kernel with ipvlan
	} else if !strings.Contains(errOut, "ipvlan is not supported by this kernel") {
		t.Fatalf("ipvlan: %d %s", code, errOut)
	}
}
