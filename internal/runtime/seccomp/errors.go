package seccomp

import "errors"

// ErrNotImplemented is returned by every operation of a build without
// seccomp support (not Linux, or built with CGO_ENABLED=0, since the
// filter compiler is the C libseccomp).
var ErrNotImplemented = errors.New("seccomp: not implemented in this build (needs linux and cgo with libseccomp)")
