package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Parsers for single run/create flag values.

// parseRestartPolicy parses name[:max-retries]. Like docker, only the
// format is checked here; the daemon validates the policy name.
func parseRestartPolicy(policy string) (container.RestartPolicy, error) {
	if policy == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, hasCount := strings.Cut(policy, ":")
	if hasCount && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// parseSecurityOpts reads seccomp profiles named by path and extracts
// systempaths=unconfined into empty masked/read-only path lists.
func parseSecurityOpts(opts []string) (sec, masked, readonly []string, err error) {
	for _, opt := range opts {
		if opt == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			if k2, v2, ok2 := strings.Cut(opt, ":"); ok2 {
				k, v, ok = k2, v2, true
			}
		}
		if !ok && opt != "no-new-privileges" {
			return nil, nil, nil, fmt.Errorf("invalid --security-opt: %q", opt)
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			b, rerr := os.ReadFile(v)
			if rerr != nil {
				return nil, nil, nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, rerr)
			}
			var buf strings.Builder
			var anyJSON any
			if json.Unmarshal(b, &anyJSON) != nil {
				return nil, nil, nil, fmt.Errorf("compacting json for seccomp profile (%s) failed", v)
			}
			compact, _ := json.Marshal(anyJSON)
			buf.Write(compact)
			opt = "seccomp=" + buf.String()
		}
		sec = append(sec, opt)
	}
	return sec, masked, readonly, nil
}

// parseDevice parses host[:container[:perms]].
func parseDevice(d string) (container.DeviceMapping, error) {
	parts := strings.Split(d, ":")
	dm := container.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 3:
		if !validPerms(parts[2]) {
			return dm, fmt.Errorf("invalid device mode: %s", parts[2])
		}
		dm.CgroupPermissions = parts[2]
		dm.PathInContainer = parts[1]
	case 2:
		if validPerms(parts[1]) {
			dm.CgroupPermissions = parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 1:
	default:
		return dm, fmt.Errorf("invalid device specification: %s", d)
	}
	dm.PathOnHost = parts[0]
	if dm.PathInContainer == "" {
		dm.PathInContainer = dm.PathOnHost
	}
	if !strings.HasPrefix(dm.PathInContainer, "/") {
		return dm, fmt.Errorf("%s is not an absolute path", dm.PathInContainer)
	}
	return dm, nil
}

func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for _, c := range p {
		if !strings.ContainsRune("rwm", c) {
			return false
		}
	}
	return true
}

// platformComponent is what containerd's platform parser accepts for the
// OS (with an optional "(version)") and, without it, for the other parts.
var (
	osComponent   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?$`) })
	partComponent = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]+$`) })
)

// parsePlatform parses os[/arch[/variant]] (lower-cased; arm64/v8 is
// plain arm64), rejecting malformed components.
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s)
	}
	if !osComponent().MatchString(parts[0]) {
		return ocispec.Platform{}, fmt.Errorf("%q is an invalid OS component of %q: OSAndVersion specifier component must match %q: invalid argument", parts[0], s, osComponent().String())
	}
	for _, p := range parts[1:] {
		if !partComponent().MatchString(p) {
			return ocispec.Platform{}, fmt.Errorf("%q is an invalid component of %q: platform specifier component must match %q: invalid argument", p, s, partComponent().String())
		}
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	if p.Architecture == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	return p, nil
}
