//go:build linux

package spec

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// profile is a seccomp profile in Docker's format: the format of
// `--security-opt seccomp=<file>` (the docker CLI sends the file's
// content) and of dockerd's --seccomp-profile. It extends the OCI format
// with archMap and with conditions on each syscalls[] entry.
type profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []archMap                `json:"archMap,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	Syscalls         []profileSyscall         `json:"syscalls"`
}

// archMap names the sub-architectures to add when the host's native
// architecture is Arch (for example x86 and x32 on x86_64).
type archMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// profileSyscall is one syscalls[] entry. Name is the legacy single-name
// form. Includes/Excludes make the entry conditional.
type profileSyscall struct {
	Name     string                   `json:"name,omitempty"`
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *profileFilter           `json:"includes,omitempty"`
	Excludes *profileFilter           `json:"excludes,omitempty"`
}

// profileFilter is a condition on the container: Caps are capability
// names (all must be in the bounding set for includes; any excludes),
// Arches are Go architecture names ("amd64", "arm64", "s390x", ...),
// MinKernel a "major.minor" kernel version (includes only).
type profileFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// nativeArch maps Go's GOARCH to the seccomp architecture of archMap.
var nativeArch = map[string]specs.Arch{
	"386":      specs.ArchX86,
	"amd64":    specs.ArchX86_64,
	"arm":      specs.ArchARM,
	"arm64":    specs.ArchAARCH64,
	"mips":     specs.ArchMIPS,
	"mips64":   specs.ArchMIPS64,
	"mips64le": specs.ArchMIPSEL64,
	"mipsle":   specs.ArchMIPSEL,
	"ppc":      specs.ArchPPC,
	"ppc64":    specs.ArchPPC64,
	"ppc64le":  specs.ArchPPC64LE,
	"riscv64":  specs.ArchRISCV64,
	"s390":     specs.ArchS390,
	"s390x":    specs.ArchS390X,
	"loong64":  specs.ArchLOONGARCH64,
}

// seccompFor decides the container's filter: none for privileged
// containers and seccomp=unconfined, the default profile for "" and
// "builtin", else the given Docker-format JSON profile. caps is the
// container's final bounding set, which conditional entries test.
func seccompFor(opt string, privileged bool, caps []string, h hostInfo) (*specs.LinuxSeccomp, error) {
	switch {
	case opt == "unconfined":
		return nil, nil
	case privileged:
		return nil, nil
	case opt == "" || opt == "builtin":
		return builtinProfile().toOCI(caps, runtime.GOARCH, h.kernel)
	}
	var p profile
	if err := json.Unmarshal([]byte(opt), &p); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "decoding seccomp profile failed: %w", err)
	}
	return p.toOCI(caps, runtime.GOARCH, h.kernel)
}

// toOCI resolves a Docker-format profile for one container, with dockerd's
// rules: archMap entries matching goarch's native architecture become
// architectures; entries whose conditions do not hold are left out; the
// legacy "name" becomes "names". A profile with neither a default action
// nor syscalls means no filter.
func (p *profile) toOCI(caps []string, goarch string, kernel [2]int) (*specs.LinuxSeccomp, error) {
	invalid := func(format string, args ...any) error {
		return errdefs.Newf(errdefs.InvalidArgument, "seccomp profile: "+format, args...)
	}
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil
	}
	if p.DefaultAction == "" {
		return nil, invalid("defaultAction is required")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, invalid("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")
	}
	out := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  clonePtr(p.DefaultErrnoRet),
		Architectures:    slices.Clone(p.Architectures),
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
		Flags:            slices.Clone(p.Flags),
	}
	if native, ok := nativeArch[goarch]; ok {
		for _, a := range p.ArchMap {
			if a.Arch == native {
				out.Architectures = append(out.Architectures, a.Arch)
				out.Architectures = append(out.Architectures, a.SubArches...)
			}
		}
	}

	for i, call := range p.Syscalls {
		names := call.Names
		if call.Name != "" {
			if len(call.Names) > 0 {
				return nil, invalid("syscalls[%d]: 'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'", i)
			}
			names = []string{call.Name}
		}
		if len(names) == 0 {
			return nil, invalid("syscalls[%d]: no syscall names", i)
		}
		if call.Action == "" {
			return nil, invalid("syscalls[%d]: action is required", i)
		}
		if ex := call.Excludes; ex != nil {
			if ex.MinKernel != "" {
				return nil, invalid("syscalls[%d]: minKernel is not supported in excludes", i)
			}
			if slices.Contains(ex.Arches, goarch) || slices.ContainsFunc(ex.Caps, func(c string) bool { return slices.Contains(caps, c) }) {
				continue
			}
		}
		if in := call.Includes; in != nil {
			if len(in.Arches) > 0 && !slices.Contains(in.Arches, goarch) {
				continue
			}
			if slices.ContainsFunc(in.Caps, func(c string) bool { return !slices.Contains(caps, c) }) {
				continue
			}
			if in.MinKernel != "" {
				want, err := parseKernelVersion(in.MinKernel)
				if err != nil {
					return nil, invalid("syscalls[%d]: %v", i, err)
				}
				if kernel[0] < want[0] || (kernel[0] == want[0] && kernel[1] < want[1]) {
					continue
				}
			}
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(names),
			Action:   call.Action,
			ErrnoRet: clonePtr(call.ErrnoRet),
			Args:     slices.Clone(call.Args),
		})
	}
	return out, nil
}

// builtinProfile is defaultProfile, built once: building it (splitting
// the syscall lists) was most of a start's spec generation (~0.1 ms).
// toOCI only reads it and copies what it returns, so the containers'
// filters share nothing with it or with each other.
var builtinProfile = sync.OnceValue(defaultProfile)

// clonePtr returns a pointer to a copy of *p (nil for nil).
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// parseKernelVersion parses "major.minor" (a ".patch" or suffix is
// ignored).
func parseKernelVersion(s string) ([2]int, error) {
	var v [2]int
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return v, fmt.Errorf("invalid kernel version %q: want major.minor", s)
	}
	for i := 0; i < 2; i++ {
		digits := parts[i]
		if i == 1 {
			digits = strings.TrimRightFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
		}
		n, err := strconv.Atoi(digits)
		if err != nil || n < 0 {
			return v, fmt.Errorf("invalid kernel version %q: want major.minor", s)
		}
		v[i] = n
	}
	return v, nil
}
