// Command sockmapbench measures whether socket-level redirection (a
// cgroup/connect4 program rewriting a connect() to a published port on
// 127.0.0.1 into one to the container's address, plus sockops + sk_msg
// programs splicing the two ends of the connection through a sockhash)
// beats the veth path a published port takes through nftables DNAT.
//
//	sockmapbench [-n 10] [-mib 256] [-only a,b] [-blocking] [-bytes N] [-write N]
//
// It re-runs itself in a network namespace of its own (the "host"), makes a
// second one (the "container") joined by a veth pair (10.250.0.1/24 and
// .2/24), and a cgroup-v2 cgroup of its own that it moves into and attaches
// the programs to, so nothing outside the run is affected. One bulk TCP
// connection of MIB MiB per measurement, the client in the host namespace,
// the sink in the container's; variants, interleaved and rotated:
//
//	direct    connect to 10.250.0.2:5001 (the veth path; nftables DNAT of a
//	          published port takes this path plus the NAT)
//	rewrite   connect to 127.0.0.1:15001, connect4 rewrites it (no sockmap)
//	sockmap   connect to 127.0.0.1:15001, connect4 + sockops + sk_msg
//	loopback  connect to 127.0.0.1:5002, a sink in the host namespace
//	          (plain loopback TCP, no veth)
//
// Prints MB/s (10^6 bytes) per run and the medians (with -bytes below 1 MiB:
// µs per connection), and per variant the connections that failed (a run's
// error does not stop the others) and those that stalled (>50 ms between
// the last write and the sink's count). -blocking drives both ends with
// blocking read/write system calls instead of Go's netpoller. Needs root.
// Everything (links, namespaces, programs, maps, the cgroup) is gone when
// it exits.
//
// Findings (docs/benchmarks.md, "Tried, not adopted: socket-level
// redirection"): the median is 2.5-2.9x the veth path, but redirected
// sockets on Linux 6.18 sometimes return EAGAIN from a blocking read and
// stall ~200 ms, so berthd does not use this.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 10, "repetitions")
	mib := flag.Int("mib", 256, "MiB per connection")
	flag.StringVar(&only, "only", "", "comma-separated variants to run (default all)")
	flag.IntVar(&wsize, "write", 256<<10, "bytes per write")
	flag.BoolVar(&blocking, "blocking", false, "blocking read/write system calls on both ends instead of Go's netpoller (epoll)")
	small := flag.Int("bytes", 0, "bytes per connection instead of -mib (below 1 MiB: prints µs per connection, not MB/s)")
	flag.Parse()
	var err error
	if os.Getenv("SOCKMAPBENCH_INNER") == "" {
		err = outer()
	} else {
		sz := int64(*mib) << 20
		if *small > 0 {
			sz = int64(*small)
		}
		err = inner(*n, sz)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockmapbench:", err)
		os.Exit(1)
	}
}

var (
	only     string
	wsize    int
	blocking bool
	// stalls counts, by variant, the connections whose count came more
	// than 50 ms after the last write.
	stalls = map[string]int{}
	stallN int
)

// rw is the connection as the benchmark drives it: through Go's netpoller,
// or with blocking system calls on the socket (-blocking).
func rw(c net.Conn) (io.ReadWriter, func()) {
	if !blocking {
		return c, func() {}
	}
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		panic(err)
	}
	fd := int(f.Fd()) // blocking mode
	// No hang if an answer never comes.
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 30})
	return fdRW(fd), func() { f.Close() }
}

type fdRW int

// Read and Write retry EINTR (the Go runtime's signals interrupt blocking
// system calls when SO_RCVTIMEO is set); EAGAIN is returned as it comes.
func (f fdRW) Read(b []byte) (int, error) {
	n, err := unix.Read(int(f), b)
	for err == unix.EINTR {
		n, err = unix.Read(int(f), b)
	}
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	if n < 0 {
		n = 0
	}
	return n, err
}

func (f fdRW) Write(b []byte) (int, error) {
	n, err := unix.Write(int(f), b)
	for err == unix.EINTR {
		n, err = unix.Write(int(f), b)
	}
	if n < 0 {
		n = 0
	}
	return n, err
}

func outer() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), "SOCKMAPBENCH_INNER=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	return cmd.Run()
}

// cgroup2Root is where the cgroup-v2 hierarchy is mounted: the unified
// directory of a hybrid host, or /sys/fs/cgroup itself.
func cgroup2Root() (string, error) {
	for _, p := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p, nil
		}
	}
	return "", errors.New("no cgroup-v2 hierarchy mounted")
}

func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("no cgroup-v2 line in /proc/self/cgroup")
}

func inner(reps int, size int64) error {
	root, err := cgroup2Root()
	if err != nil {
		return err
	}
	orig, err := ownCgroup()
	if err != nil {
		return err
	}
	cg := filepath.Join(root, fmt.Sprintf("sockmapbench-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return err
	}
	defer func() {
		_ = os.WriteFile(filepath.Join(root, orig, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0o644)
		if err := os.Remove(cg); err != nil {
			fmt.Fprintln(os.Stderr, "sockmapbench: removing the cgroup:", err)
		}
	}()
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("joining %s: %w", cg, err)
	}

	ctrNS, err := setupNet()
	if err != nil {
		return err
	}
	defer ctrNS.Close()

	ctrLn, err := listenIn(ctrNS, "10.250.0.2:5001")
	if err != nil {
		return err
	}
	defer ctrLn.Close()
	go sink(ctrLn)
	loLn, err := net.Listen("tcp", "127.0.0.1:5002")
	if err != nil {
		return err
	}
	defer loLn.Close()
	go sink(loLn)

	o, err := load()
	if err != nil {
		return err
	}
	defer o.Close()
	// The connect4 map is keyed by the client's network namespace too.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("SO_NETNS_COOKIE: %w", err)
	}
	key := make([]byte, 16)
	binary.NativeEndian.PutUint64(key, cookie)
	copy(key[8:12], net.IPv4(127, 0, 0, 1).To4())
	binary.BigEndian.PutUint16(key[12:], 15001) // network order in the low bytes
	val := make([]byte, 8)
	copy(val[0:4], net.IPv4(10, 250, 0, 2).To4())
	binary.BigEndian.PutUint16(val[4:], 5001)
	if err := o.svc.Put(key, val); err != nil {
		return err
	}

	attach := func(sockmap bool) (func(), error) {
		var ls []link.Link
		closeAll := func() {
			for _, l := range ls {
				l.Close()
			}
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: ebpf.AttachCGroupInet4Connect, Program: o.connect})
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		if !sockmap {
			return closeAll, nil
		}
		l, err = link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: ebpf.AttachCGroupSockOps, Program: o.ops})
		if err != nil {
			closeAll()
			return nil, err
		}
		ls = append(ls, l)
		return closeAll, nil
	}
	// The sk_msg program hangs off the sockhash: only sockets in it run it.
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: o.socks.FD(), Program: o.msgPrg, Attach: ebpf.AttachSkMsgVerdict}); err != nil {
		return fmt.Errorf("attaching sk_msg: %w", err)
	}

	type variant struct {
		name, addr string
		sockmap    *bool
	}
	f, t := false, true
	vs := []variant{
		{"direct", "10.250.0.2:5001", nil},
		{"rewrite", "127.0.0.1:15001", &f},
		{"sockmap", "127.0.0.1:15001", &t},
		{"loopback", "127.0.0.1:5002", nil},
	}
	if only != "" {
		vs = slices.DeleteFunc(vs, func(v variant) bool { return !slices.Contains(strings.Split(only, ","), v.name) })
	}
	res := map[string][]float64{}
	fails := map[string]int{}
	run := func(v variant) (float64, error) {
		if v.sockmap != nil {
			detach, err := attach(*v.sockmap)
			if err != nil {
				return 0, err
			}
			defer detach()
		}
		return send(v.addr, size)
	}
	for _, v := range vs { // warm-up, and a check that each path works
		if _, err := run(variant{v.name, v.addr, v.sockmap}); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	var st0, st1 uint64
	_ = o.stats.Lookup(uint32(0), &st0)
	_ = o.stats.Lookup(uint32(1), &st1)
	fmt.Fprintf(os.Stderr, "after the warm-up: %d connects rewritten, %d sockets added to the sockhash\n", st0, st1)
	for i := 0; i < reps; i++ {
		line := fmt.Sprintf("rep %d:", i+1)
		for j := range vs {
			v := vs[(i+j)%len(vs)]
			s0 := stallN
			mb, err := run(v)
			stalls[v.name] += stallN - s0
			if err != nil {
				// Counted, not fatal: a spurious error is one of the findings.
				fmt.Fprintf(os.Stderr, "  %s: %v\n", v.name, err)
				fails[v.name]++
				line += fmt.Sprintf(" %s FAILED", v.name)
				continue
			}
			res[v.name] = append(res[v.name], mb)
			line += fmt.Sprintf(" %s %.0f", v.name, mb)
		}
		fmt.Fprintln(os.Stderr, line, "MB/s")
	}
	_ = o.stats.Lookup(uint32(0), &st0)
	_ = o.stats.Lookup(uint32(1), &st1)
	fmt.Printf("%d runs of %d MiB each, %s, %d CPUs, load %s\n", reps, size>>20, kernel(), runtime.NumCPU(), loadavg())
	fmt.Printf("connects rewritten %d, sockets added to the sockhash %d\n", st0, st1)
	med := map[string]float64{}
	for _, v := range vs {
		med[v.name] = median(res[v.name])
		unit := "MB/s"
		if size < 1<<20 {
			unit = "µs/connection"
			xs := append([]float64(nil), res[v.name]...)
			sort.Float64s(xs)
			if len(xs) > 0 {
				fmt.Printf("%-9s p90 %.0f µs, p99 %.0f µs, max %.0f µs\n", v.name, xs[len(xs)*9/10], xs[len(xs)*99/100], xs[len(xs)-1])
			}
		} else {
			fmt.Printf("%-9s runs %v\n", v.name, fmtAll(res[v.name]))
		}
		fmt.Printf("%-9s median %7.0f %s, %d failed, %d stalled (>50 ms between the last write and the sink's count)\n",
			v.name, med[v.name], unit, fails[v.name], stalls[v.name])
	}
	fmt.Printf("sockmap / direct %.2fx, rewrite / direct %.2fx, loopback / direct %.2fx\n",
		med["sockmap"]/med["direct"], med["rewrite"]/med["direct"], med["loopback"]/med["direct"])
	return nil
}

func setupNet() (netns.NsHandle, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return 0, err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return 0, err
	}
	// A new namespace for the container, from a locked thread that then
	// goes back.
	runtime.LockOSThread()
	host, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	ctr, err := netns.New()
	if err2 := netns.Set(host); err2 != nil {
		panic(err2) // this thread must not run other goroutines
	}
	host.Close()
	runtime.UnlockOSThread()
	if err != nil {
		return 0, err
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "smb0"}, PeerName: "smb1"}
	if err := netlink.LinkAdd(veth); err != nil {
		ctr.Close()
		return 0, err
	}
	peer, err := netlink.LinkByName("smb1")
	if err == nil {
		err = netlink.LinkSetNsFd(peer, int(ctr))
	}
	if err == nil {
		err = addrUp(netlink.Handle{}, "smb0", "10.250.0.1/24")
	}
	if err == nil {
		var h *netlink.Handle
		if h, err = netlink.NewHandleAt(ctr); err == nil {
			if err = addrUp(*h, "lo", ""); err == nil {
				err = addrUp(*h, "smb1", "10.250.0.2/24")
			}
			h.Close()
		}
	}
	if err != nil {
		ctr.Close()
		return 0, err
	}
	return ctr, nil
}

func addrUp(h netlink.Handle, name, cidr string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if cidr != "" {
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, a); err != nil {
			return err
		}
	}
	return h.LinkSetUp(l)
}

func listenIn(ns netns.NsHandle, addr string) (net.Listener, error) {
	type r struct {
		l   net.Listener
		err error
	}
	ch := make(chan r)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(ns); err != nil {
			ch <- r{nil, err}
			return
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			l, err := net.Listen("tcp", addr)
			if err == nil || time.Now().After(deadline) { // the address may still be tentative
				ch <- r{l, err}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	x := <-ch
	return x.l, x.err
}

func sink(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r, done := rw(c)
			defer done()
			buf := make([]byte, 256<<10)
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
			if err != nil {
				fmt.Fprintln(os.Stderr, "  sink: read:", err)
				return
			}
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(n))
			_, _ = r.Write(b[:])
		}()
	}
}

func send(addr string, size int64) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	w, done := rw(c)
	defer done()
	buf := make([]byte, wsize)
	start := time.Now()
	for left := size; left > 0; {
		b := buf
		if int64(len(b)) > left {
			b = b[:left]
		}
		n, err := w.Write(b)
		if err != nil {
			return 0, err
		}
		left -= int64(n)
	}
	tw := time.Since(start)
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	defer func() {
		if el := time.Since(start); el-tw > 50*time.Millisecond {
			fmt.Fprintf(os.Stderr, "  %s: writes done after %v, count after %v\n", addr, tw, el)
			stallN++
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var ack [8]byte
	if _, err := io.ReadFull(w, ack[:]); err != nil {
		return 0, fmt.Errorf("reading the sink's count, %v after the connect, %v after the last write: %w", time.Since(start), tw, err)
	}
	el := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != size {
		return 0, fmt.Errorf("the sink counted %d bytes, %d were sent", got, size)
	}
	if size < 1<<20 {
		return float64(el.Microseconds()), nil // latency mode: µs per connection
	}
	return float64(size) / el.Seconds() / 1e6, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtAll(xs []float64) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.0f", x)
	}
	return b.String()
}

func kernel() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
