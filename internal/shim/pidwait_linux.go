package shim

import (
	"os"

	"golang.org/x/sys/unix"
)

// waitExited blocks until process pid (the container's init, a child of
// the shim) has exited, without reaping it, through a pidfd and the Go
// poller. The shim runs with one P (GOMAXPROCS=1): os.Process.Wait
// blocks in waitid(2) holding it, and until sysmon takes it back (20 µs
// to 10 ms, longer on a busy host, where sysmon itself waits for a CPU)
// no other goroutine runs and the network is not polled, so the daemon's
// requests (the wait for this exit, attaches, execs) would sit in the
// socket's queue. Waited for through the poller, the P stays free. Any
// failure (no pidfd, not our child) returns at once: the caller's Wait
// blocks as before.
func waitExited(pid int) {
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(pidfd), "init-pidfd")
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		werr := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		// waitid leaves info zero while the child runs.
		return werr != nil || info.Signo != 0
	})
}
