package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
)

// Config is berthd's configuration: /etc/berth/daemon.json with Docker's
// key names where they mean the same, overridden by flags.
type Config struct {
	DataRoot           string                   `json:"data-root,omitempty"`
	ExecRoot           string                   `json:"exec-root,omitempty"`
	Hosts              []string                 `json:"hosts,omitempty"`
	Pidfile            string                   `json:"pidfile,omitempty"`
	LogLevel           string                   `json:"log-level,omitempty"`
	Debug              bool                     `json:"debug,omitempty"`
	Group              string                   `json:"group,omitempty"`
	TLS                bool                     `json:"tls,omitempty"`
	TLSVerify          bool                     `json:"tlsverify,omitempty"`
	TLSCACert          string                   `json:"tlscacert,omitempty"`
	TLSCert            string                   `json:"tlscert,omitempty"`
	TLSKey             string                   `json:"tlskey,omitempty"`
	LogDriver          string                   `json:"log-driver,omitempty"`
	LogOpts            map[string]string        `json:"log-opts,omitempty"`
	DefaultUlimits     map[string]*units.Ulimit `json:"default-ulimits,omitempty"`
	InsecureRegistries []string                 `json:"insecure-registries,omitempty"`
	RegistryMirrors    []string                 `json:"registry-mirrors,omitempty"`
	// Mirrors is berth's per-registry form: registry host -> mirrors.
	Mirrors        map[string][]string `json:"mirrors,omitempty"`
	Runtimes       map[string]Runtime  `json:"runtimes,omitempty"`
	DefaultRuntime string              `json:"default-runtime,omitempty"`
	LiveRestore    *bool               `json:"live-restore,omitempty"`
	// Labels are the daemon's labels (/info), "key=value".
	Labels                 []string `json:"labels,omitempty"`
	MaxConcurrentDownloads int      `json:"max-concurrent-downloads,omitempty"`
	// Init runs every container under berth-init unless it says
	// otherwise (dockerd's "init"); InitPath is the init binary
	// (dockerd's "init-path").
	Init     bool   `json:"init,omitempty"`
	InitPath string `json:"init-path,omitempty"`
	// ShimBinary overrides where berth-shim is found (tests).
	ShimBinary string `json:"shim-binary,omitempty"`
	// Networking (dockerd's keys, plus dns-upstreams): see network.go.
	Bridge              string         `json:"bridge,omitempty"`
	BIP                 string         `json:"bip,omitempty"`
	DefaultAddressPools []network.Pool `json:"default-address-pools,omitempty"`
	MTU                 int            `json:"mtu,omitempty"`
	DNSUpstreams        []string       `json:"dns-upstreams,omitempty"`
	ICC                 *bool          `json:"icc,omitempty"`
	IPMasq              *bool          `json:"ip-masq,omitempty"`
	// IPv6 and FixedCIDRv6 give the default network an IPv6 subnet.
	IPv6        bool   `json:"ipv6,omitempty"`
	FixedCIDRv6 string `json:"fixed-cidr-v6,omitempty"`
	// FixedCIDR limits the default network's container addresses.
	FixedCIDR string `json:"fixed-cidr,omitempty"`
	// IP is the default host address of published ports ("ip").
	IP string `json:"ip,omitempty"`
	// Builder is dockerd's "builder" section (the build cache's budget).
	Builder *BuilderConfig `json:"builder,omitempty"`
}

// BuilderConfig is daemon.json's "builder": {"gc": {...}}.
type BuilderConfig struct {
	GC struct {
		Enabled *bool `json:"enabled,omitempty"`
		// DefaultKeepStorage is the build cache's size budget ("10GB");
		// least recently used entries go beyond it.
		DefaultKeepStorage string `json:"defaultKeepStorage,omitempty"`
	} `json:"gc"`
}

// Runtime is an entry of "runtimes" (an external OCI runtime).
type Runtime struct {
	Path        string   `json:"path"`
	RuntimeArgs []string `json:"runtimeArgs,omitempty"`
}

// Defaults are dockerd's defaults, with berth's paths.
func Defaults() Config {
	return Config{
		DataRoot: "/var/lib/berth", ExecRoot: "/run/berth",
		Hosts:   []string{"unix:///run/berth/berth.sock"},
		Pidfile: "/run/berth/berthd.pid", LogLevel: "info", Group: "berth",
		LogDriver: "json-file", DefaultRuntime: "berth",
	}
}

// LoadFile reads a daemon.json into c, refusing unknown keys (dockerd
// does too: a typo must not be silently ignored). A missing file is not
// an error unless required.
func LoadFile(path string, c *Config, required bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) && !required {
			return nil
		}
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "unable to configure the berth daemon with file %s: %v", path, err)
	}
	return nil
}

// Validate checks values that would fail later in less clear ways.
func (c *Config) Validate() error {
	switch strings.ToLower(c.LogLevel) {
	case "", "debug", "info", "warn", "error", "fatal", "panic":
	default:
		return fmt.Errorf("unable to parse logging level: %s", c.LogLevel)
	}
	if c.DataRoot == "" || c.ExecRoot == "" {
		return fmt.Errorf("data-root and exec-root must be set")
	}
	if len(c.Hosts) == 0 {
		return fmt.Errorf("no host to listen on")
	}
	return nil
}

// ulimits returns default-ulimits in the API's form.
func (c *Config) ulimits() []*container.Ulimit {
	var out []*container.Ulimit
	for _, u := range c.DefaultUlimits {
		out = append(out, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return out
}

// logConfig is the daemon's default container log configuration.
func logConfig(c Config) container.LogConfig {
	t := c.LogDriver
	if t == "" {
		t = "json-file"
	}
	return container.LogConfig{Type: t, Config: c.LogOpts}
}
