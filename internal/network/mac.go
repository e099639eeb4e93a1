package network

import (
	"net"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ValidMAC checks an endpoint's requested MAC address: six bytes, not
// multicast (the kernel refuses those on an Ethernet interface).
func ValidMAC(m net.HardwareAddr) error {
	if len(m) != 6 {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid MAC address %s: want 6 bytes", m)
	}
	if m[0]&1 != 0 {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid MAC address %s: a multicast address", m)
	}
	return nil
}
