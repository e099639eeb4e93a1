//go:build linux

package spec

import (
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// securityOptions is HostConfig.SecurityOpt parsed.
type securityOptions struct {
	noNewPrivileges bool
	// seccomp is "" (default profile), "unconfined", "builtin" (the
	// default profile, explicitly) or a profile's JSON text.
	seccomp string
	// apparmor and labels are accepted and recorded, but the host has no
	// LSM enforced (see the package documentation).
	apparmor string
	labels   []string
	// unconfinedPaths is "systempaths=unconfined": no masked or
	// read-only kernel paths. The docker CLI normally turns it into empty
	// HostConfig.MaskedPaths/ReadonlyPaths itself.
	unconfinedPaths bool
	// writableCgroups is "writable-cgroups=true" (Docker 28+).
	writableCgroups bool
}

var validLabelKeys = map[string]bool{"user": true, "role": true, "type": true, "level": true, "filetype": true}

// parseSecurityOpt parses --security-opt values with dockerd's rules:
// "key=value", with the legacy "key:value" separator still accepted, plus
// the bare "no-new-privileges" and "disable" forms.
func parseSecurityOpt(opts []string) (securityOptions, error) {
	var so securityOptions
	for _, opt := range opts {
		switch opt {
		case "no-new-privileges":
			so.noNewPrivileges = true
			continue
		case "disable":
			so.labels = append(so.labels, "disable")
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return so, errdefs.Newf(errdefs.InvalidArgument, "invalid --security-opt 1: %q", opt)
		}
		bad := func() error { return errdefs.Newf(errdefs.InvalidArgument, "invalid --security-opt 2: %q", opt) }
		switch k {
		case "label":
			lk, _, _ := strings.Cut(v, ":")
			if v != "disable" && v != "nested" && !validLabelKeys[lk] {
				return so, errdefs.Newf(errdefs.InvalidArgument, "bad label option %q, valid options 'disable, user, role, level, type, filetype'", v)
			}
			so.labels = append(so.labels, v)
		case "apparmor":
			so.apparmor = v
		case "seccomp":
			if v == "" {
				return so, bad()
			}
			so.seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return so, bad()
			}
			so.noNewPrivileges = b
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return so, bad()
			}
			so.writableCgroups = b
		case "systempaths":
			if v != "unconfined" {
				return so, errdefs.Newf(errdefs.InvalidArgument, "invalid --security-opt systempaths=%s: only \"unconfined\" is supported", v)
			}
			so.unconfinedPaths = true
		default:
			return so, bad()
		}
	}
	return so, nil
}
