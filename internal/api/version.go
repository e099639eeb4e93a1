package api

import (
	"context"
	"strconv"
	"strings"
)

// The API versions served. MaxAPIVersion is the version of the vendored
// github.com/moby/moby/api types (v1.56.x, swagger "version: 1.56"), so the
// JSON shapes berth writes are the ones that version documents.
// MinAPIVersion is the oldest the Go client and Compose still speak.
const (
	MinAPIVersion = "1.40"
	MaxAPIVersion = "1.56"
)

type versionKey struct{}

// WithVersion returns ctx carrying the negotiated API version.
func WithVersion(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// VersionFromContext is the API version of the request: the /v1.NN prefix
// of its path, or MaxAPIVersion for an unversioned path (as dockerd).
func VersionFromContext(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey{}).(string); ok && v != "" {
		return v
	}
	return MaxAPIVersion
}

// compareVersions compares dotted versions numerically ("1.9" < "1.10");
// missing or non-numeric parts count as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// VersionLess reports whether version a is older than b.
func VersionLess(a, b string) bool { return compareVersions(a, b) < 0 }

// VersionAtLeast reports whether the request's version (in ctx) is v or
// newer; handlers use it for behaviour that changed between versions.
func VersionAtLeast(ctx context.Context, v string) bool {
	return compareVersions(VersionFromContext(ctx), v) >= 0
}
