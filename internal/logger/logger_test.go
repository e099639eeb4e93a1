package logger

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidateConfig(t *testing.T) {
	for _, tc := range []struct {
		typ   string
		opts  map[string]string
		class errdefs.Class // -1: valid
		msg   string
	}{
		{"", nil, -1, ""},
		{"json-file", map[string]string{"max-size": "10k", "max-file": "3", "compress": "true", "labels": "a", "env": "B", "tag": "{{.Name}}"}, -1, ""},
		{"json-file", map[string]string{"foo": "bar"}, errdefs.InvalidArgument, "unknown log opt 'foo' for json-file log driver"},
		{"json-file", map[string]string{"max-size": "ten"}, errdefs.InvalidArgument, "invalid size: 'ten'"},
		{"json-file", map[string]string{"max-size": "0"}, errdefs.InvalidArgument, "max-size must be a positive number"},
		{"json-file", map[string]string{"max-file": "0"}, errdefs.InvalidArgument, "max-file cannot be less than 1"},
		{"json-file", map[string]string{"max-file": "1", "compress": "true"}, errdefs.InvalidArgument, "compress cannot be true"},
		{"json-file", map[string]string{"compress": "maybe"}, errdefs.InvalidArgument, "invalid compress"},
		{"json-file", map[string]string{"tag": "{{.Nope}}"}, errdefs.InvalidArgument, "unsupported field"},
		{"json-file", map[string]string{"labels-regex": "("}, errdefs.InvalidArgument, "labels-regex"},
		{"json-file", map[string]string{"mode": "non-blocking", "max-buffer-size": "4m"}, -1, ""},
		{"json-file", map[string]string{"mode": "fast"}, errdefs.InvalidArgument, "logging mode not supported"},
		{"local", map[string]string{"max-size": "1m", "max-file": "2", "compress": "false"}, -1, ""},
		{"local", map[string]string{"labels": "a", "tag": "{{.ID}}"}, -1, ""},
		{"local", map[string]string{"syslog-address": "udp://x"}, errdefs.InvalidArgument, "unknown log opt 'syslog-address' for log driver local"},
		{"none", map[string]string{"anything": "goes"}, -1, ""},
		{"syslog", map[string]string{"syslog-address": "udp://127.0.0.1:514", "syslog-facility": "local3", "syslog-format": "rfc5424micro", "tag": "{{.ImageName}}/{{.ID}}"}, -1, ""},
		{"syslog", map[string]string{"syslog-address": "tcp://127.0.0.1"}, -1, ""},
		{"syslog", map[string]string{"syslog-address": "unix:///dev/log"}, -1, ""},
		{"syslog", map[string]string{"syslog-address": "ftp://x"}, errdefs.InvalidArgument, "unsupported scheme: 'ftp'"},
		{"syslog", map[string]string{"syslog-address": "127.0.0.1"}, errdefs.InvalidArgument, "proto://address"},
		{"syslog", map[string]string{"syslog-address": "tcp+tls://127.0.0.1"}, errdefs.NotImplemented, "tcp+tls"},
		{"syslog", map[string]string{"syslog-facility": "nope"}, errdefs.InvalidArgument, "invalid syslog facility"},
		{"syslog", map[string]string{"syslog-format": "rfc1"}, errdefs.InvalidArgument, "Invalid syslog format"},
		{"syslog", map[string]string{"max-size": "1m"}, errdefs.InvalidArgument, "unknown log opt 'max-size' for syslog log driver"},
		{"journald", map[string]string{"tag": "x", "labels": "a"}, -1, ""},
		{"journald", map[string]string{"max-file": "2"}, errdefs.InvalidArgument, "unknown log opt 'max-file' for journald log driver"},
		{"gelf", nil, errdefs.InvalidArgument, "no log driver named 'gelf'"},
	} {
		err := ValidateConfig(Config{Type: tc.typ, Opts: tc.opts})
		if tc.class == -1 {
			if err != nil {
				t.Errorf("%s %v: unexpected error %v", tc.typ, tc.opts, err)
			}
			continue
		}
		if err == nil || errdefs.ClassOf(err) != tc.class || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %v: error %v (class %v), want %v containing %q", tc.typ, tc.opts, err, errdefs.ClassOf(err), tc.class, tc.msg)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"10": 10, "10k": 10_000, "10K": 10_000, "1.5m": 1_500_000, "2g": 2_000_000_000,
		"10MB": 10_000_000, "3kib": 3000, "7b": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1e3", "ten", "1x"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestDefaults(t *testing.T) {
	o, err := fileOptions(Config{})
	if err != nil || o.maxSize != 10_000_000 || o.maxFiles != 5 || o.compress {
		t.Fatalf("json-file defaults = %+v, %v", o, err)
	}
	o, _ = fileOptions(Config{Opts: map[string]string{"max-size": "-1"}})
	if o.maxSize != -1 {
		t.Fatalf("max-size=-1 must be unlimited: %+v", o)
	}
	o, err = fileOptions(Config{Type: Local})
	if err != nil || o.maxSize != 20<<20 || o.maxFiles != 5 || !o.compress {
		t.Fatalf("local defaults = %+v, %v", o, err)
	}
}

func TestTagAndAttrs(t *testing.T) {
	cfg := Config{
		ContainerID: "0123456789abcdef0123", ContainerName: "/web", ImageID: "sha256:fedcba9876543210", ImageName: "nginx:1",
		Labels: map[string]string{"app": "shop", "tier": "front", "x.y": "z"}, Env: map[string]string{"A": "1", "B": "2"},
		Opts: map[string]string{"tag": "{{.Name}}/{{ .ID }}/{{.FullID}}/{{.ImageName}}/{{.ImageID}}/{{.DaemonName}}",
			"labels": "app,missing", "labels-regex": "^x\\.", "env": "B"},
	}
	tag, err := parseTag(cfg)
	if want := "web/0123456789ab/0123456789abcdef0123/nginx:1/fedcba987654/berth"; err != nil || tag != want {
		t.Fatalf("tag = %q, %v; want %q", tag, err, want)
	}
	cfg.Opts = nil
	if tag, _ := parseTag(cfg); tag != "0123456789ab" {
		t.Fatalf("default tag = %q", tag)
	}
	cfg.Opts = map[string]string{"labels": "app,missing", "labels-regex": "^x\\.", "env": "B"}
	attrs, err := extraAttrs(cfg)
	if err != nil || len(attrs) != 3 || attrs["app"] != "shop" || attrs["x.y"] != "z" || attrs["B"] != "2" {
		t.Fatalf("attrs = %v, %v", attrs, err)
	}
}

func TestNoneAndUnreadable(t *testing.T) {
	l, err := New(Config{Type: None})
	if err != nil || l.Log(&Message{Line: []byte("x")}) != nil || l.Close() != nil {
		t.Fatalf("none: %v", err)
	}
	for _, typ := range []string{None, Syslog, Journald} {
		if _, err := NewReader(Config{Type: typ}); !errdefs.Is(err, errdefs.NotImplemented) ||
			err.Error() != "configured logging driver does not support reading" {
			t.Errorf("NewReader(%s) = %v", typ, err)
		}
	}
	if p := Path(Config{Dir: "/d", ContainerID: "abc"}); p != "/d/abc-json.log" {
		t.Errorf("Path = %q", p)
	}
	if p := Path(Config{Type: Local, Dir: "/d", ContainerID: "abc"}); p != "" {
		t.Errorf("Path(local) = %q", p)
	}
}
