//go:build !linux

package shim

import (
	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PrepareOpts: see the Linux version.
type PrepareOpts struct {
	Binary, ID, RuntimeRoot, RuntimeInit string
	Env                                  []string
	CgroupsPath                          string
	Namespaces                           []specs.LinuxNamespace
	Terminal, Stdin, WarmSpare           bool
	Devices                              []specs.LinuxDeviceCgroup
	SetDevices                           bool
	Spare                                *SparePrefork
}

// Prepared is Linux only.
type Prepared struct{}

type (
	preforkConfig struct{}
	shimPrefork   struct{}
)

// Prepare is Linux only.
func Prepare(o PrepareOpts) (*Prepared, error) {
	return nil, errdefs.Newf(errdefs.NotImplemented, "berth-shim runs on Linux only")
}

// Release does nothing off Linux.
func (p *Prepared) Release() {}

// Preforked is false off Linux.
func (c *Client) Preforked() bool { return false }
