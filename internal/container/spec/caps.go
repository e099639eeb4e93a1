//go:build linux

package spec

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/ocispec"
)

// DefaultCapabilities is Docker's default capability set, in Docker's
// order. A container running as root gets it in its bounding, effective
// and permitted sets, any other user in its bounding set only; the
// inheritable and ambient sets stay empty (Docker stopped filling the
// inheritable set for CVE-2022-24769). Treat it as read-only.
var DefaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// allCapabilities returns every capability the running kernel knows
// (capLast is /proc/sys/kernel/cap_last_cap; -1 if unknown) that berth
// itself holds in its bounding set (own; a zero mask means unknown), in
// kernel order. On an ordinary host berthd runs with every capability, so
// this is the kernel's whole list, as in Docker; under a restricted parent
// (a container, a sandbox) a privileged container gets what berthd can
// give instead of failing to start.
func allCapabilities(capLast int, own uint64) []string {
	names := ocispec.CapabilityNames()
	if capLast >= 0 && capLast+1 < len(names) {
		names = names[:capLast+1]
	}
	if own == 0 {
		return names
	}
	out := names[:0:0]
	for i, n := range names {
		if i < 64 && own&(1<<uint(i)) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// readOwnBounding returns this process's bounding capability set from
// /proc/self/status, 0 when unknown.
func readOwnBounding() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

// readCapLast reads /proc/sys/kernel/cap_last_cap, -1 when unknown.
func readCapLast() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// normalizeCaps upper-cases names and adds the CAP_ prefix; "ALL" stays.
// An unknown name is an InvalidArgument, with Docker's message.
func normalizeCaps(in []string, valid []string) ([]string, error) {
	var out []string
	for _, c := range in {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(valid, c) {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "unknown capability: %q", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities applies --cap-add/--cap-drop (and --privileged) to Docker's
// default set with Docker's rules: privileged gets every capability;
// cap-add ALL gives everything except what cap-drop names; cap-drop ALL
// keeps only cap-add; otherwise drop, then add.
func capabilities(adds, drops []string, privileged bool, capLast int, own uint64) ([]string, error) {
	all := allCapabilities(capLast, 0)
	if privileged {
		return allCapabilities(capLast, own), nil
	}
	capAdd, err := normalizeCaps(adds, all)
	if err != nil {
		return nil, err
	}
	capDrop, err := normalizeCaps(drops, all)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(capAdd, "ALL"):
		for _, c := range allCapabilities(capLast, own) {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(capDrop, "ALL"):
		caps = capAdd
	default:
		for _, c := range DefaultCapabilities {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, capAdd...)
	}
	// Duplicates (cap-add of a default) change nothing; keep the first.
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		if c != "ALL" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
