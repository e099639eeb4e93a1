package logger

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeSyslog listens on loopback or a socket in t.TempDir() and returns
// the address option and a channel of received messages.
func fakeSyslog(t *testing.T, network string) (string, <-chan string) {
	t.Helper()
	ch := make(chan string, 100)
	switch network {
	case "udp", "unixgram":
		var pc net.PacketConn
		var err error
		addr := "127.0.0.1:0"
		if network == "unixgram" {
			addr = filepath.Join(t.TempDir(), "log.sock")
		}
		pc, err = net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 70000)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				ch <- string(buf[:n])
			}
		}()
		return network + "://" + pc.LocalAddr().String(), ch
	default:
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(t.TempDir(), "log.sock")
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					r := bufio.NewReader(c)
					for {
						s, err := r.ReadString('\n')
						if err != nil {
							return
						}
						ch <- s
					}
				}()
			}
		}()
		return network + "://" + ln.Addr().String(), ch
	}
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no syslog message")
		return ""
	}
}

func TestSyslog(t *testing.T) {
	host, _ := os.Hostname()
	pid := os.Getpid()
	ts := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	local := ts.Local()
	for _, tc := range []struct {
		network, format, facility string
		want                      string // for stdout "hello"; stderr has pri-3
	}{
		{"udp", "", "", fmt.Sprintf("<30>%s web[%d]: hello\n", local.Format(time.Stamp), pid)},
		{"tcp", "rfc3164", "local3", fmt.Sprintf("<158>%s %s web[%d]: hello\n", local.Format(time.Stamp), host, pid)},
		{"unixgram", "rfc5424", "user", fmt.Sprintf("<14>1 %s %s web %d web - hello\n", local.Format(time.RFC3339), host, pid)},
		{"unix", "rfc5424micro", "2", fmt.Sprintf("<22>1 %s %s web %d web - hello\n", local.Format("2006-01-02T15:04:05.000000Z07:00"), host, pid)},
	} {
		t.Run(tc.network, func(t *testing.T) {
			addr, ch := fakeSyslog(t, tc.network)
			opts := map[string]string{"syslog-address": addr, "tag": "{{.Name}}"}
			if tc.format != "" {
				opts["syslog-format"] = tc.format
			}
			if tc.facility != "" {
				opts["syslog-facility"] = tc.facility
			}
			l, err := New(Config{Type: Syslog, Opts: opts, ContainerID: "0123456789abcdef", ContainerName: "/web"})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Log(&Message{Line: []byte("hello"), Source: "stdout", Timestamp: ts}); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, ch); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			if err := l.Log(&Message{Line: []byte("bad"), Source: "stderr", Timestamp: ts}); err != nil {
				t.Fatal(err)
			}
			got := recv(t, ch)
			pri := regexp.MustCompile(`^<(\d+)>`).FindStringSubmatch(got)
			var stdoutPri, stderrPri int
			fmt.Sscanf(tc.want, "<%d>", &stdoutPri)
			fmt.Sscanf(pri[1], "%d", &stderrPri)
			if stderrPri != stdoutPri-3 || !strings.HasSuffix(got, " bad\n") {
				t.Fatalf("stderr message %q", got)
			}
		})
	}
}

func TestSyslogDefaultTagAndDialError(t *testing.T) {
	addr, ch := fakeSyslog(t, "udp")
	l, err := New(Config{Type: Syslog, Opts: map[string]string{"syslog-address": addr}, ContainerID: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Log(&Message{Line: []byte("x"), Source: "stdout", Timestamp: time.Now()})
	if got := recv(t, ch); !strings.Contains(got, " 0123456789ab[") {
		t.Fatalf("default tag: %q", got)
	}
	_ = l.Close()
	if err := l.Log(&Message{Line: []byte("x")}); err == nil {
		t.Fatal("Log after Close succeeded")
	}
	sock := filepath.Join(t.TempDir(), "absent.sock")
	if _, err := New(Config{Type: Syslog, Opts: map[string]string{"syslog-address": "unix://" + sock}}); err == nil {
		t.Fatal("dial to a missing socket succeeded")
	}
}

// A tcp syslog server that drops the connection gets the next messages
// on a new one (one redial per failed write, like Docker's writer).
func TestSyslogReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	l, err := New(Config{Type: Syslog, Opts: map[string]string{"syslog-address": "tcp://" + ln.Addr().String()}, ContainerID: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	first := <-conns
	first.Close()
	lines := make(chan string, 10)
	for i := 0; i < 50; i++ {
		_ = l.Log(&Message{Line: []byte(fmt.Sprintf("after %d", i)), Source: "stdout", Timestamp: time.Now()})
		select {
		case c := <-conns:
			defer c.Close()
			go func() {
				s, _ := bufio.NewReader(c).ReadString('\n')
				lines <- s
			}()
			select {
			case s := <-lines:
				if !strings.Contains(s, "after ") {
					t.Fatalf("got %q", s)
				}
				return
			case <-time.After(5 * time.Second):
				t.Fatal("nothing on the new connection")
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("logger never reconnected")
}
