//go:build cgo

package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Features describes the seccomp support of this build, in the shape of
// runtime-spec's features document: the actions and operators it
// recognises, the architectures the linked libseccomp can put in a filter,
// every flag it knows, and the flags the running kernel accepts
// (SupportedFlags is nil when the kernel cannot be asked, e.g. because a
// filter around this process blocks seccomp(2)).
func Features() *features.Seccomp {
	enabled := true
	fs := &features.Seccomp{
		Enabled:    &enabled,
		Actions:    sortedNames(actions),
		Operators:  sortedNames(operators),
		Archs:      supportedArches(),
		KnownFlags: sortedNames(filterFlags),
	}
	if _, err := kernelKnowsFlags(0); err == nil {
		fs.SupportedFlags = []string{}
		for _, name := range fs.KnownFlags {
			bit := filterFlags[specs.LinuxSeccompFlag(name)]
			if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
				bit |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
			}
			if ok, err := kernelKnowsFlags(bit); err == nil && ok {
				fs.SupportedFlags = append(fs.SupportedFlags, name)
			}
		}
	}
	return fs
}

// supportedArches lists the runtime-spec architectures the linked
// libseccomp accepts in a filter: libseccomp-golang knows newer
// architectures than an older C library may support.
func supportedArches() []string {
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return nil
	}
	defer f.Release()
	var out []string
	for name, arch := range arches {
		if f.AddArch(arch) == nil {
			out = append(out, string(name))
		}
	}
	slices.Sort(out)
	return out
}

func sortedNames[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}
