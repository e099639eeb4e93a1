//go:build linux && cgo

// Package nsenter joins user, mount and time namespaces before the Go runtime
// starts. A binary that can act as a container init or exec process imports
// it for its side effect:
//
//	import _ "github.com/berth-dev/berth/internal/runtime/nsenter"
//
// It does nothing unless the parent runtime set the _BERTH_NSENTER or
// _BERTH_UNSHARE environment variables (see nsenter.c for the protocol).
// It must never grow logic beyond joining and unsharing: everything else
// happens in Go, in package runtime.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
*/
import "C"
