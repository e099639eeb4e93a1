package cli

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// This file holds the pflag.Value types behind docker's repeatable and
// structured flags.

// listOpts is a repeatable flag; each use appends one (validated) value.
type listOpts struct {
	values   []string
	validate func(string) (string, error)
}

func (o *listOpts) String() string {
	if len(o.values) == 0 {
		return "[]"
	}
	return "[" + strings.Join(o.values, " ") + "]"
}

func (o *listOpts) Set(v string) error {
	if o.validate != nil {
		nv, err := o.validate(v)
		if err != nil {
			return err
		}
		v = nv
	}
	o.values = append(o.values, v)
	return nil
}

func (o *listOpts) Type() string { return "list" }
func (o *listOpts) Len() int     { return len(o.values) }

// slice returns the values, nil when none were given.
func (o *listOpts) slice() []string { return o.values }

// allOrEmpty returns the values, an empty non-nil slice when none.
func (o *listOpts) allOrEmpty() []string {
	if o.values == nil {
		return []string{}
	}
	return o.values
}

// mapOpts is a repeatable key=value flag collected into a map.
type mapOpts struct {
	values map[string]string
}

func (o *mapOpts) String() string {
	return fmt.Sprintf("map%v", o.values)
}

func (o *mapOpts) Set(v string) error {
	if o.values == nil {
		o.values = map[string]string{}
	}
	k, val, _ := strings.Cut(v, "=")
	o.values[k] = val
	return nil
}

func (o *mapOpts) Type() string { return "map" }

// memBytes is a size such as 512m (go-units RAMInBytes).
type memBytes int64

func (m *memBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

func (m *memBytes) Set(v string) error {
	n, err := units.RAMInBytes(v)
	*m = memBytes(n)
	return err
}

func (m *memBytes) Type() string { return "bytes" }

// memSwapBytes is like memBytes but accepts -1 for unlimited.
type memSwapBytes int64

func (m *memSwapBytes) String() string { return (*memBytes)(m).String() }

func (m *memSwapBytes) Set(v string) error {
	if v == "-1" {
		*m = -1
		return nil
	}
	return (*memBytes)(m).Set(v)
}

func (m *memSwapBytes) Type() string { return "bytes" }

// nanoCPUs is --cpus, stored in units of 1e-9 CPUs.
type nanoCPUs int64

func (c *nanoCPUs) String() string {
	if *c == 0 {
		return ""
	}
	return big.NewRat(int64(*c), 1e9).FloatString(3)
}

func (c *nanoCPUs) Set(v string) error {
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	n := r.Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	*c = nanoCPUs(n.Num().Int64())
	return nil
}

func (c *nanoCPUs) Type() string { return "decimal" }

// ulimitOpts is --ulimit name=soft[:hard].
type ulimitOpts struct {
	values []*container.Ulimit
}

func (o *ulimitOpts) String() string {
	s := make([]string, 0, len(o.values))
	for _, u := range o.values {
		s = append(s, u.String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (o *ulimitOpts) Set(v string) error {
	u, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	// A later value for the same name replaces the earlier one.
	for i, e := range o.values {
		if e.Name == u.Name {
			o.values[i] = u
			return nil
		}
	}
	o.values = append(o.values, u)
	return nil
}

func (o *ulimitOpts) Type() string { return "ulimit" }

// throttleOpts is --device-{read,write}-{bps,iops} path:rate.
type throttleOpts struct {
	values []*blkiodev.ThrottleDevice
	bytes  bool
}

func (o *throttleOpts) String() string { return fmt.Sprint(len(o.values)) }
func (o *throttleOpts) Type() string   { return "list" }

func (o *throttleOpts) Set(v string) error {
	path, rate, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(path, "/dev/") {
		return fmt.Errorf("bad format: %s", v)
	}
	var n uint64
	if o.bytes {
		b, err := units.RAMInBytes(rate)
		if err != nil || b < 0 {
			return fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb", v)
		}
		n = uint64(b)
	} else {
		b, err := strconv.ParseUint(rate, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>. Number must be a positive integer", v)
		}
		n = b
	}
	o.values = append(o.values, &blkiodev.ThrottleDevice{Path: path, Rate: n})
	return nil
}

// weightOpts is --blkio-weight-device path:weight.
type weightOpts struct {
	values []*blkiodev.WeightDevice
}

func (o *weightOpts) String() string { return fmt.Sprint(len(o.values)) }
func (o *weightOpts) Type() string   { return "list" }

func (o *weightOpts) Set(v string) error {
	path, w, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(path, "/dev/") {
		return fmt.Errorf("bad format: %s", v)
	}
	n, err := strconv.ParseUint(w, 10, 16)
	if err != nil || (n > 0 && (n < 10 || n > 1000)) {
		return fmt.Errorf("invalid weight for device: %s", v)
	}
	o.values = append(o.values, &blkiodev.WeightDevice{Path: path, Weight: uint16(n)})
	return nil
}

// mountOpts is --mount type=...,source=...,target=...
type mountOpts struct {
	values []mount.Mount
}

func (o *mountOpts) String() string { return fmt.Sprint(len(o.values)) }
func (o *mountOpts) Type() string   { return "mount" }

func (o *mountOpts) Set(v string) error {
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return err
	}
	m := mount.Mount{Type: mount.TypeVolume}
	volumeOptions := func() *mount.VolumeOptions {
		// Like docker, any volume-* option also creates an (empty)
		// driver configuration.
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		if m.VolumeOptions.DriverConfig == nil {
			m.VolumeOptions.DriverConfig = &mount.Driver{}
		}
		return m.VolumeOptions
	}
	bindOptions := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	tmpfsOptions := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, f := range fields {
		key, val, hasVal := strings.Cut(f, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !hasVal {
			switch key {
			case "readonly", "ro":
				m.ReadOnly = true
				continue
			case "volume-nocopy":
				volumeOptions().NoCopy = true
				continue
			case "bind-nonrecursive":
				bindOptions().NonRecursive = true
				continue
			default:
				return fmt.Errorf("invalid field '%s' must be a key=value pair", f)
			}
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			m.ReadOnly = b
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bindOptions().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			bindOptions().NonRecursive = b
		case "bind-create-src", "bind-create-host-path":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			bindOptions().CreateMountpoint = b
		case "volume-nocopy":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("invalid value for volume-nocopy: %s", val)
			}
			volumeOptions().NoCopy = b
		case "volume-subpath":
			volumeOptions().Subpath = val
		case "volume-label":
			lk, lv, _ := strings.Cut(val, "=")
			vo := volumeOptions()
			if vo.Labels == nil {
				vo.Labels = map[string]string{}
			}
			vo.Labels[lk] = lv
		case "volume-driver":
			vo := volumeOptions()
			if vo.DriverConfig == nil {
				vo.DriverConfig = &mount.Driver{}
			}
			vo.DriverConfig.Name = val
		case "volume-opt":
			ok, ov, _ := strings.Cut(val, "=")
			vo := volumeOptions()
			if vo.DriverConfig == nil {
				vo.DriverConfig = &mount.Driver{}
			}
			if vo.DriverConfig.Options == nil {
				vo.DriverConfig.Options = map[string]string{}
			}
			vo.DriverConfig.Options[ok] = ov
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOptions().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOptions().Mode = os.FileMode(n)
		case "image-subpath":
			if m.ImageOptions == nil {
				m.ImageOptions = &mount.ImageOptions{}
			}
			m.ImageOptions.Subpath = val
		default:
			return fmt.Errorf("unexpected key '%s' in '%s'", key, f)
		}
	}
	if m.Type == "" {
		return fmt.Errorf("type is required")
	}
	if m.Target == "" {
		return fmt.Errorf("target is required")
	}
	if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
		return fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.BindOptions != nil && m.Type != mount.TypeBind {
		return fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
		return fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	o.values = append(o.values, m)
	return nil
}

// attachOpts is -a/--attach: stdin, stdout or stderr.
func validateAttach(v string) (string, error) {
	s := strings.ToLower(v)
	switch s {
	case "stdin", "stdout", "stderr":
		return s, nil
	}
	return v, fmt.Errorf("valid streams are STDIN, STDOUT and STDERR")
}

// validateEnv fills in a bare variable name from the client environment.
func validateEnv(v string) (string, error) {
	k, _, hasVal := strings.Cut(v, "=")
	if k == "" {
		return v, fmt.Errorf("invalid environment variable: %s", v)
	}
	if hasVal {
		return v, nil
	}
	if val, ok := os.LookupEnv(v); ok {
		return v + "=" + val, nil
	}
	return v, nil
}

func validateLabel(v string) (string, error) {
	if strings.Count(v, "=") < 1 {
		return v, nil
	}
	if k, _, _ := strings.Cut(v, "="); k == "" {
		return v, fmt.Errorf("invalid label '%s': empty name", v)
	}
	return v, nil
}

// validateExtraHost checks host:ip (or host=ip) for --add-host.
func validateExtraHost(v string) (string, error) {
	host, ip, ok := strings.Cut(v, "=")
	if !ok {
		host, ip, ok = strings.Cut(v, ":")
	}
	if !ok || host == "" {
		return v, fmt.Errorf("bad format for add-host: %q", v)
	}
	if ip != "host-gateway" {
		addr := strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if _, err := netip.ParseAddr(addr); err != nil {
			return v, fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
		ip = addr
	}
	return host + ":" + ip, nil
}

func validateDNS(v string) (string, error) {
	if _, err := netip.ParseAddr(v); err != nil {
		return v, fmt.Errorf("IP address is not correctly formatted: %s", v)
	}
	return v, nil
}

// readKVFile reads an env or label file: KEY=VALUE lines, # comments,
// blank lines ignored; for env files a bare KEY takes the client's value.
func readKVFile(path string, env bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, hasVal := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		switch {
		case hasVal:
			lines = append(lines, k+"="+v)
		case env:
			if val, ok := os.LookupEnv(k); ok {
				lines = append(lines, k+"="+val)
			}
		}
		// A bare name in a label file is dropped, as docker does.
	}
	return lines, sc.Err()
}

func kvToMap(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
