package manifest

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPlatform returns the platform this binary runs on, with the CPU
// variant Docker reports: "v8" on arm64, the ARM architecture level on
// 32-bit arm (from /proc/cpuinfo, v7 when unknown), none elsewhere.
// amd64 reports no variant, like Docker, so that a plain amd64 image is
// preferred over amd64/v2 or amd64/v3 ones.
func DefaultPlatform() ocispec.Platform {
	return ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH, Variant: cpuVariant(runtime.GOARCH)}
}

func cpuVariant(arch string) string {
	switch arch {
	case "arm64":
		return "v8"
	case "arm":
		switch armLevelFromCPUInfo() {
		case "5":
			return "v5"
		case "6":
			return "v6"
		}
		return "v7"
	}
	return ""
}

// armLevelFromCPUInfo is the "CPU architecture" line of /proc/cpuinfo,
// read once.
var armLevelFromCPUInfo = sync.OnceValue(readARMLevel)

func readARMLevel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "CPU architecture" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// knownOS and knownArch are the GOOS and GOARCH values (and common aliases)
// accepted on their own by ParsePlatform.
var knownOS = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true, "illumos": true,
	"ios": true, "js": true, "linux": true, "netbsd": true, "openbsd": true, "plan9": true,
	"solaris": true, "wasip1": true, "windows": true, "macos": true,
}

var knownArch = map[string]bool{
	"386": true, "amd64": true, "arm": true, "arm64": true, "loong64": true, "mips": true,
	"mipsle": true, "mips64": true, "mips64le": true, "ppc64": true, "ppc64le": true,
	"riscv64": true, "s390x": true, "wasm": true, "i386": true, "x86_64": true, "x86-64": true,
	"aarch64": true, "armhf": true, "armel": true,
}

// ParsePlatform parses "os", "arch", "os/arch" or "os/arch/variant" (as in
// --platform) and returns the normalised platform. A single element is an
// operating system if it names one, else an architecture; the missing part
// comes from DefaultPlatform.
func ParsePlatform(s string) (ocispec.Platform, error) {
	bad := func(why string) (ocispec.Platform, error) {
		return ocispec.Platform{}, errdefs.Newf(errdefs.InvalidArgument, "invalid platform %q: %s", s, why)
	}
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	for _, p := range parts {
		if p == "" {
			return bad("empty component")
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
				return bad("unexpected character " + strconv.QuoteRune(c))
			}
		}
	}
	def := DefaultPlatform()
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		switch {
		case knownOS[parts[0]]:
			p = ocispec.Platform{OS: parts[0], Architecture: def.Architecture, Variant: def.Variant}
		case knownArch[parts[0]]:
			p = ocispec.Platform{OS: def.OS, Architecture: parts[0]}
		default:
			return bad("unknown operating system or architecture")
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return bad("want os[/arch[/variant]]")
	}
	return Normalize(p), nil
}

// Normalize returns p with canonical spellings, the form in which
// platforms are compared:
//
//	os:           lower case; macos → darwin
//	x86_64, x86-64 → amd64, variant v1 → "" (v2, v3, v4 kept)
//	i386 → 386
//	aarch64 → arm64, variant 8, v8, v8.0 → "" (the default)
//	armhf → arm/v7, armel → arm/v6, arm with no variant → arm/v7
//	bare variant numbers get a "v": arm/7 → arm/v7
//
// os.version and os.features are kept as they are.
func Normalize(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	arch := strings.ToLower(p.Architecture)
	variant := strings.ToLower(p.Variant)
	if variant != "" && variant[0] >= '0' && variant[0] <= '9' {
		variant = "v" + variant
	}
	switch arch {
	case "i386":
		arch, variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		if variant == "v8" || variant == "v8.0" {
			variant = ""
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		if variant == "" {
			variant = "v7"
		}
	}
	p.Architecture, p.Variant = arch, variant
	return p
}

// FormatPlatform prints p as os/arch[/variant], the --platform syntax.
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// samePlatform compares normalised platforms, ignoring os.version and
// os.features.
func samePlatform(a, b ocispec.Platform) bool {
	return a.OS == b.OS && a.Architecture == b.Architecture && a.Variant == b.Variant
}

// compatible returns, best first, the platforms whose images can run where
// want can: want itself, then older amd64 levels and 386 on amd64, older
// ARM versions on arm, and 32-bit arm on arm64 (as containerd does).
func compatible(want ocispec.Platform) []ocispec.Platform {
	want = Normalize(want)
	out := []ocispec.Platform{want}
	with := func(arch, variant string) ocispec.Platform {
		return ocispec.Platform{OS: want.OS, Architecture: arch, Variant: variant}
	}
	level := func(v string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if err != nil || !strings.HasPrefix(v, "v") {
			return 0
		}
		return n
	}
	switch want.Architecture {
	case "amd64":
		for n := level(want.Variant) - 1; n >= 1; n-- {
			if n == 1 {
				out = append(out, with("amd64", ""))
			} else {
				out = append(out, with("amd64", "v"+strconv.Itoa(n)))
			}
		}
		out = append(out, with("386", ""))
	case "arm":
		for n := level(want.Variant) - 1; n >= 5; n-- {
			out = append(out, with("arm", "v"+strconv.Itoa(n)))
		}
	case "arm64":
		if want.Variant != "" {
			// v8.x and v9.x run v8 images.
			out = append(out, with("arm64", ""))
		}
		for n := 8; n >= 5; n-- {
			out = append(out, with("arm", "v"+strconv.Itoa(n)))
		}
	}
	return out
}

// MatchPlatform reports whether an image built for have runs on want:
// have must be want or one of the platforms want is compatible with.
func MatchPlatform(want, have ocispec.Platform) bool {
	have = Normalize(have)
	for _, c := range compatible(want) {
		if samePlatform(c, have) {
			return true
		}
	}
	return false
}

// SelectPlatform picks the entry of idx to use on platform want. It ranks
// entries by how well their platform fits (exact first, then the fallbacks
// described at MatchPlatform) and takes the first entry of the best rank
// in index order. Only manifest and index entries are considered; an entry
// without a platform is used only when no entry matches. os.version is
// ignored. When nothing fits the error is errdefs.NotFound and reads, as
// in Docker, "no matching manifest for linux/arm64/v8 in the manifest list
// entries".
func SelectPlatform(idx *ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	if idx != nil {
		for _, c := range compatible(want) {
			for _, d := range idx.Manifests {
				if d.Platform != nil && (IsManifest(d.MediaType) || IsIndex(d.MediaType)) && samePlatform(c, Normalize(*d.Platform)) {
					return d, nil
				}
			}
		}
		for _, d := range idx.Manifests {
			if d.Platform == nil && (IsManifest(d.MediaType) || IsIndex(d.MediaType)) {
				return d, nil
			}
		}
	}
	return ocispec.Descriptor{}, errdefs.Newf(errdefs.NotFound, "no matching manifest for %s in the manifest list entries", FormatPlatform(want))
}
