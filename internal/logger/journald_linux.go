package logger

import "golang.org/x/sys/unix"

// sendMemfd passes a payload too large for one datagram in a sealed
// memfd, which journald reads instead of the datagram body.
func (l *journaldLogger) sendMemfd(b []byte) error {
	fd, err := unix.MemfdCreate("journal-message", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	for p := b; len(p) > 0; {
		n, err := unix.Write(fd, p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS,
		unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return err
	}
	// net refuses WriteMsgUnix on a connected datagram socket: sendmsg
	// directly, with an empty body and the descriptor.
	rc, err := l.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	werr := rc.Write(func(s uintptr) bool {
		serr = unix.Sendmsg(int(s), nil, unix.UnixRights(fd), nil, 0)
		return serr != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return serr
}
