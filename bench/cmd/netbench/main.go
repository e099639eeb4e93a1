// Command netbench is the helper of bench/compare-net.sh. Built static, it
// runs both on the benchmark's host side and inside the containers of both
// engines (it is copied into the image they import).
//
//	netbench sink [-addr :5001]
//	    accepts TCP connections; reads each to EOF, then answers with the
//	    byte count (8 bytes, big endian) and closes it.
//	netbench send -addr HOST:PORT [-bytes N] [-wait 10s]
//	    connects (retrying until -wait passes: the sink may still be
//	    starting, its name not yet known), writes N bytes, half-closes, waits
//	    for the sink's count and prints the throughput in MB/s (10^6 bytes a
//	    second) from just after the connection was established to the
//	    count's arrival. Fails unless the sink counted N bytes.
//	netbench dns [-server 127.0.0.11:53] -names a,b,... [-n 200]
//	    sends n A queries over UDP, one at a time, cycling over the names,
//	    and prints "median_us=M p90_us=P answered=A" (A: answers with at
//	    least one record). Fails if any query goes unanswered.
//	netbench nft-tables
//	    prints the nftables tables of the current network namespace, one
//	    "family name" a line (no nft binary needed).
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/nftables"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netbench sink|send|dns|nft-tables [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sink":
		err = sink(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	case "dns":
		err = dnsCmd(os.Args[2:])
	case "nft-tables":
		err = nftTables()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
}

func sink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	addr := fs.String("addr", ":5001", "listen address")
	_ = fs.Parse(args)
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 256<<10)
			n, err := io.CopyBuffer(io.Discard, c, buf)
			if err != nil {
				return
			}
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(n))
			_, _ = c.Write(b[:])
		}()
	}
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	addr := fs.String("addr", "", "HOST:PORT of a sink")
	size := fs.Int64("bytes", 256<<20, "bytes to send")
	wait := fs.Duration("wait", 10*time.Second, "how long to retry connecting")
	_ = fs.Parse(args)
	if *addr == "" {
		return errors.New("send: -addr is required")
	}
	deadline := time.Now().Add(*wait)
	var c net.Conn
	var err error
	for {
		c, err = net.DialTimeout("tcp", *addr, 2*time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for left := *size; left > 0; {
		b := buf
		if int64(len(b)) > left {
			b = b[:left]
		}
		n, err := c.Write(b)
		if err != nil {
			return err
		}
		left -= int64(n)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("reading the sink's count: %w", err)
	}
	el := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != *size {
		return fmt.Errorf("the sink counted %d bytes, %d were sent", got, *size)
	}
	fmt.Printf("%.1f\n", float64(*size)/el.Seconds()/1e6)
	return nil
}

// query builds a DNS query for name's A records (recursion desired).
func query(id uint16, name string) []byte {
	q := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(q[0:], id)
	binary.BigEndian.PutUint16(q[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(q[4:], 1)      // QDCOUNT
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		q = append(q, byte(len(label)))
		q = append(q, label...)
	}
	q = append(q, 0, 0, 1, 0, 1) // root, QTYPE A, QCLASS IN
	return q
}

func dnsCmd(args []string) error {
	fs := flag.NewFlagSet("dns", flag.ExitOnError)
	server := fs.String("server", "127.0.0.11:53", "DNS server")
	names := fs.String("names", "", "comma-separated names to ask for")
	n := fs.Int("n", 200, "queries")
	_ = fs.Parse(args)
	list := strings.Split(*names, ",")
	if *names == "" {
		return errors.New("dns: -names is required")
	}
	c, err := net.Dial("udp", *server)
	if err != nil {
		return err
	}
	defer c.Close()
	resp := make([]byte, 1500)
	var rtts []time.Duration
	answered := 0
	for i := 0; i < *n; i++ {
		id := uint16(rand.Uint32())
		q := query(id, list[i%len(list)])
		start := time.Now()
		if _, err := c.Write(q); err != nil {
			return err
		}
		for {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			m, err := c.Read(resp)
			if err != nil {
				return fmt.Errorf("query %d (%s): %w", i, list[i%len(list)], err)
			}
			if m < 12 || binary.BigEndian.Uint16(resp[0:]) != id {
				continue // a late answer to an earlier query
			}
			rtts = append(rtts, time.Since(start))
			if resp[3]&0x0f == 0 && binary.BigEndian.Uint16(resp[6:]) > 0 {
				answered++
			}
			break
		}
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	med := rtts[len(rtts)/2]
	if len(rtts)%2 == 0 {
		med = (rtts[len(rtts)/2-1] + rtts[len(rtts)/2]) / 2
	}
	p90 := rtts[min(len(rtts)-1, (len(rtts)*9+9)/10-1)]
	fmt.Printf("median_us=%.0f p90_us=%.0f answered=%d\n", float64(med)/1e3, float64(p90)/1e3, answered)
	return nil
}

func nftTables() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	tables, err := c.ListTables()
	if err != nil {
		return err
	}
	fam := map[nftables.TableFamily]string{
		nftables.TableFamilyINet: "inet", nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6",
		nftables.TableFamilyARP: "arp", nftables.TableFamilyNetdev: "netdev", nftables.TableFamilyBridge: "bridge",
	}
	for _, t := range tables {
		f := fam[t.Family]
		if f == "" {
			f = fmt.Sprint(t.Family)
		}
		fmt.Println(f, t.Name)
	}
	return nil
}
