package api

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// watchHangup calls onHup when the peer closes conn entirely: EPOLLHUP,
// which a unix socket reports when the other end is closed but not on a
// mere half-close (the client ending stdin). On TCP, EPOLLHUP comes only
// after a reset, so a vanished TCP client is noticed at the next failed
// write. The returned stop ends the watch; it must be called before conn
// is closed.
func watchHangup(conn net.Conn, onHup func()) (stop func()) {
	noop := func() {}
	sc, ok := underlying(conn).(syscall.Conn)
	if !ok {
		return noop
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return noop
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return noop
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		unix.Close(epfd)
		return noop
	}
	var connFd int32 = -1
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		connFd = int32(fd)
		ctlErr = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{Events: unix.EPOLLHUP, Fd: int32(fd)})
	})
	if err == nil {
		err = ctlErr
	}
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p[0])})
	}
	if err != nil {
		unix.Close(epfd)
		unix.Close(p[0])
		unix.Close(p[1])
		return noop
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(epfd)
		defer unix.Close(p[0])
		events := make([]unix.EpollEvent, 2)
		for {
			n, err := unix.EpollWait(epfd, events, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			for _, ev := range events[:n] {
				if ev.Fd == int32(p[0]) {
					return
				}
				if ev.Fd == connFd {
					onHup()
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			unix.Close(p[1]) // the read end sees EPOLLHUP
			<-done
		})
	}
}
