package logger

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// syslogOpts is the parsed configuration of the syslog driver.
type syslogOpts struct {
	network, addr string // "" network: the local syslog socket
	facility      int
	format        string // "", rfc3164, rfc5424, rfc5424micro
}

var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

func syslogOptions(cfg Config) (syslogOpts, error) {
	o := syslogOpts{facility: 3}
	if err := checkOpts(cfg); err != nil {
		return o, err
	}
	if a := cfg.Opts["syslog-address"]; a != "" {
		scheme, rest, ok := strings.Cut(a, "://")
		if !ok {
			return o, errdefs.Newf(errdefs.InvalidArgument, "syslog-address should be in form proto://address, got %v", a)
		}
		switch scheme {
		case "unix", "unixgram":
			if rest == "" {
				return o, errdefs.Newf(errdefs.InvalidArgument, "syslog-address %q has no socket path", a)
			}
			o.network, o.addr = scheme, rest
		case "udp", "tcp":
			host := rest
			if i := strings.IndexAny(host, "/?#"); i >= 0 {
				host = host[:i]
			}
			if _, _, err := net.SplitHostPort(host); err != nil {
				if !strings.Contains(err.Error(), "missing port") {
					return o, errdefs.Newf(errdefs.InvalidArgument, "syslog-address %q: %w", a, err)
				}
				host = net.JoinHostPort(strings.Trim(host, "[]"), "514")
			}
			o.network, o.addr = scheme, host
		case "tcp+tls":
			return o, errdefs.Newf(errdefs.NotImplemented, "syslog-address %q: tcp+tls is not supported by berth", a)
		default:
			return o, errdefs.Newf(errdefs.InvalidArgument, "unsupported scheme: '%s'", scheme)
		}
	}
	if f, ok := cfg.Opts["syslog-facility"]; ok && f != "" {
		if n, ok := syslogFacilities[f]; ok {
			o.facility = n
		} else if n, err := strconv.Atoi(f); err == nil && n >= 0 && n <= 23 {
			o.facility = n
		} else {
			return o, errdefs.Newf(errdefs.InvalidArgument, "invalid syslog facility")
		}
	}
	switch f := cfg.Opts["syslog-format"]; f {
	case "", "rfc3164", "rfc5424", "rfc5424micro":
		o.format = f
	default:
		return o, errdefs.Newf(errdefs.InvalidArgument, "Invalid syslog format")
	}
	if v, ok := cfg.Opts["syslog-tls-skip-verify"]; ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return o, errdefs.Newf(errdefs.InvalidArgument, "invalid syslog-tls-skip-verify %q", v)
		}
	}
	return o, nil
}

// syslogLogger sends one syslog message per record: a datagram on udp
// and unixgram, a newline-terminated line on tcp and unix streams.
// Severity is info for stdout and err for stderr, like Docker.
type syslogLogger struct {
	mu       sync.Mutex
	o        syslogOpts
	tag      string
	hostname string
	pid      int
	conn     net.Conn
	stream   bool
	buf      []byte
}

var _ Logger = (*syslogLogger)(nil)

func newSyslog(cfg Config) (Logger, error) {
	o, err := syslogOptions(cfg)
	if err != nil {
		return nil, err
	}
	tag, err := parseTag(cfg)
	if err != nil {
		return nil, err
	}
	l := &syslogLogger{o: o, tag: tag, hostname: hostname(), pid: os.Getpid()}
	if err := l.dial(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *syslogLogger) dial() error {
	if l.o.network != "" {
		c, err := net.DialTimeout(l.o.network, l.o.addr, 10*time.Second)
		if err != nil {
			return errdefs.Newf(errdefs.Unavailable, "logger: syslog: %w", err)
		}
		l.conn, l.stream = c, l.o.network == "tcp" || l.o.network == "unix"
		return nil
	}
	for _, path := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
		for _, network := range []string{"unixgram", "unix"} {
			if c, err := net.Dial(network, path); err == nil {
				l.conn, l.stream = c, network == "unix"
				return nil
			}
		}
	}
	return errdefs.Newf(errdefs.Unavailable, "logger: syslog: no local syslog socket (/dev/log) found")
}

func (l *syslogLogger) Log(m *Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return fmt.Errorf("logger: syslog: closed")
	}
	m = stamped(m)
	sev := 6
	if m.Source == "stderr" {
		sev = 3
	}
	l.buf = l.format(l.buf[:0], l.o.facility<<3|sev, m)
	if _, err := l.conn.Write(l.buf); err != nil {
		// One reconnection, as Docker's syslog writer does.
		closeQuietly(l.conn)
		l.conn = nil
		if derr := l.dial(); derr != nil {
			return fmt.Errorf("logger: syslog: %w", err)
		}
		if _, err := l.conn.Write(l.buf); err != nil {
			return fmt.Errorf("logger: syslog: %w", err)
		}
	}
	return nil
}

// format renders one message in Docker's syslog-format variants:
//
//	""            <PRI>Jan _2 15:04:05 TAG[PID]: MSG
//	rfc3164       <PRI>Jan _2 15:04:05 HOST TAG[PID]: MSG
//	rfc5424       <PRI>1 2006-01-02T15:04:05Z07:00 HOST TAG PID TAG - MSG
//	rfc5424micro  same with microseconds
//
// always ending in a newline.
func (l *syslogLogger) format(b []byte, pri int, m *Message) []byte {
	t := m.Timestamp.Local()
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(pri), 10)
	b = append(b, '>')
	switch l.o.format {
	case "rfc5424", "rfc5424micro":
		b = append(b, "1 "...)
		if l.o.format == "rfc5424" {
			b = t.AppendFormat(b, time.RFC3339)
		} else {
			b = t.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		}
		b = append(b, ' ')
		b = append(b, l.hostname...)
		b = append(b, ' ')
		b = append(b, l.tag...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(l.pid), 10)
		b = append(b, ' ')
		b = append(b, l.tag...)
		b = append(b, " - "...)
	default:
		b = t.AppendFormat(b, time.Stamp)
		b = append(b, ' ')
		if l.o.format == "rfc3164" {
			b = append(b, l.hostname...)
			b = append(b, ' ')
		}
		b = append(b, l.tag...)
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(l.pid), 10)
		b = append(b, "]: "...)
	}
	b = append(b, m.Line...)
	if len(m.Line) == 0 || m.Line[len(m.Line)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

func (l *syslogLogger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close()
	l.conn = nil
	return err
}
