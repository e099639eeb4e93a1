package network

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtool commands used here (linux/ethtool.h).
const (
	ethtoolGGRO = 0x0000002b
	ethtoolSGRO = 0x0000002c
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [16]byte
}

// setGRO turns generic receive offload on or off on interface name of
// the calling thread's network namespace.
func setGRO(name string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: ethtoolSGRO}
	if on {
		v.data = 1
	}
	var req ifreqData
	copy(req.name[:], name)
	req.data = uintptr(unsafe.Pointer(&v))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
	if errno != 0 {
		return errno
	}
	return nil
}
