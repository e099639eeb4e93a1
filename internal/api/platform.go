package api

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatform parses a "platform" query parameter, "os[/arch[/variant]]"
// ("linux", "linux/arm64", "linux/arm/v7"); other forms are invalid.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	bad := len(parts) > 3
	for _, p := range parts {
		bad = bad || p == ""
	}
	if bad {
		return ocispec.Platform{}, InvalidParam(fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s))
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}
