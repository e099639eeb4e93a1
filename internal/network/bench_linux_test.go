package network

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	apinet "github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkSandbox is the network part of a container's run: Setup (netns,
// veth pair on the bridge, address, route, loopback) and Teardown.
func BenchmarkSandbox(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	execRoot, _ := os.MkdirTemp("", "bn")
	defer os.RemoveAll(execRoot)
	dataRoot := b.TempDir()
	db, err := bolt.Open(filepath.Join(dataRoot, "m.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc, err := New(context.Background(), Config{DB: db, DataRoot: dataRoot, ExecRoot: execRoot, Bridge: "tb" + randHex(4),
		Pools: []Pool{{Base: netip.MustParsePrefix("10.213.0.0/16"), Size: 24}}})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	if os.Getenv("BENCH_NOPOOL") == "" {
		if err := svc.Restore(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
	var tSetup, tTeardown, tIPAM, tLink time.Duration
	hits := 0
	svc.trace = func(pooled bool, ipam, link time.Duration) {
		tIPAM += ipam
		tLink += link
		if pooled {
			hits++
		}
	}
	for b.Loop() {
		// A container starts every few tens of milliseconds at most: let
		// the pool refill (off the clock), as it would between runs.
		if svc.poolCh != nil {
			b.StopTimer()
			for deadline := time.Now().Add(5 * time.Second); len(svc.poolCh) < cap(svc.poolCh) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
		}
		id := randHex(32)
		t0 := time.Now()
		if _, err := svc.Setup(context.Background(), SandboxRequest{ContainerID: id, Name: "x", Endpoints: []EndpointRequest{{Network: "bridge"}}}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := svc.Teardown(context.Background(), id); err != nil {
			b.Fatal(err)
		}
		tSetup += t1.Sub(t0)
		tTeardown += time.Since(t1)
	}
	b.ReportMetric(float64(tSetup.Microseconds())/float64(b.N), "setup-µs/op")
	b.ReportMetric(float64(tTeardown.Microseconds())/float64(b.N), "teardown-µs/op")
	b.ReportMetric(float64(tIPAM.Microseconds())/float64(b.N), "ipam-µs/op")
	b.ReportMetric(float64(tLink.Microseconds())/float64(b.N), "link-µs/op")
	b.ReportMetric(float64(hits)/float64(b.N), "pooled/op")
}

// BenchmarkDNS200 asks the embedded DNS of one container for the names of
// 200 containers on its network (over UDP, from inside its namespace)
// and reports the median answer time.
func BenchmarkDNS200(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	execRoot, _ := os.MkdirTemp("", "bn")
	defer os.RemoveAll(execRoot)
	dataRoot := b.TempDir()
	db, err := bolt.Open(filepath.Join(dataRoot, "m.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc, err := New(context.Background(), Config{DB: db, DataRoot: dataRoot, ExecRoot: execRoot, Bridge: "tb" + randHex(4), NoPool: true,
		Pools: []Pool{{Base: netip.MustParsePrefix("10.213.0.0/16"), Size: 22}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.Create(context.Background(), CreateRequest{Name: "d200"}); err != nil {
		b.Fatal(err)
	}
	var ids []string
	defer func() {
		for _, id := range ids {
			_ = svc.Teardown(context.Background(), id)
		}
		svc.Close()
	}()
	var first *Sandbox
	for i := 0; i < 200; i++ {
		id := randHex(32)
		sb, err := svc.Setup(context.Background(), SandboxRequest{ContainerID: id, Name: "c" + strconv.Itoa(i), Endpoints: []EndpointRequest{{Network: "d200"}}})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
		if first == nil {
			first = sb
		}
	}
	var times []time.Duration
	b.ResetTimer()
	err = inNetNS(first.NetNSPath, func() error {
		c := &dns.Client{Timeout: 2 * time.Second}
		conn, err := c.Dial("127.0.0.11:53")
		if err != nil {
			return err
		}
		defer conn.Close()
		i := 0
		for b.Loop() {
			m := new(dns.Msg)
			m.SetQuestion("c"+strconv.Itoa(i%200)+".", dns.TypeA)
			i++
			t0 := time.Now()
			r, _, err := c.ExchangeWithConn(m, conn)
			if err != nil {
				return err
			}
			times = append(times, time.Since(t0))
			if len(r.Answer) != 1 {
				return errors.New("no answer: " + r.String())
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "median-µs")
}

// BenchmarkPublishedThroughput streams 64 MiB per iteration from the
// host to a sandbox through its published port on 127.0.0.1 (DNAT, no
// proxy) and, for comparison, straight to the sandbox's address.
func BenchmarkPublishedThroughput(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	execRoot, _ := os.MkdirTemp("", "bn")
	defer os.RemoveAll(execRoot)
	dataRoot := b.TempDir()
	db, err := bolt.Open(filepath.Join(dataRoot, "m.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc, err := New(context.Background(), Config{DB: db, DataRoot: dataRoot, ExecRoot: execRoot, Bridge: "tb" + randHex(4), NoPool: true,
		Pools: []Pool{{Base: netip.MustParsePrefix("10.213.0.0/16"), Size: 24}}})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Restore(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	id := randHex(32)
	sb, err := svc.Setup(context.Background(), SandboxRequest{ContainerID: id, Name: "sink", Endpoints: []EndpointRequest{{Network: "bridge"}},
		Ports: apinet.PortMap{apinet.MustParsePort("9000/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Teardown(context.Background(), id)
	if v := os.Getenv("BENCH_BIGTCP"); v != "" {
		size, _ := strconv.Atoi(v)
		svc.mu.Lock()
		var host string
		for _, ep := range svc.sandboxes[id].endpoints {
			host = ep.host
		}
		svc.mu.Unlock()
		for _, name := range []string{host, svc.cfg.Bridge} {
			l, err := netlink.LinkByName(name)
			if err == nil {
				err = errors.Join(netlink.LinkSetGSOIPv4MaxSize(l, size), netlink.LinkSetGSOMaxSize(l, size))
			}
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
		}
		err := inNetNS(sb.NetNSPath, func() error {
			l, err := netlink.LinkByName("eth0")
			if err == nil {
				err = errors.Join(netlink.LinkSetGSOIPv4MaxSize(l, size), netlink.LinkSetGSOMaxSize(l, size),
					netlink.LinkSetGROIPv4MaxSize(l, size), netlink.LinkSetGROMaxSize(l, size))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if os.Getenv("BENCH_GRO") != "" {
		if err := inNetNS(sb.NetNSPath, func() error { return setGRO("eth0", true) }); err != nil {
			b.Fatal(err)
		}
	}
	var l net.Listener
	if err := inNetNS(sb.NetNSPath, func() (err error) { l, err = net.Listen("tcp", ":9000"); return err }); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	const size = 64 << 20
	buf := make([]byte, 1<<20)
	for _, target := range []struct{ name, addr string }{
		{"published-127.0.0.1", "127.0.0.1:" + sb.Ports[apinet.MustParsePort("9000/tcp")][0].HostPort},
		{"direct", net.JoinHostPort(sb.Endpoints["bridge"].IPAddress.String(), "9000")},
	} {
		b.Run(target.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				c, err := net.Dial("tcp", target.addr)
				if err != nil {
					b.Fatal(err)
				}
				for sent := 0; sent < size; sent += len(buf) {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				c.Close()
			}
		})
	}
}
