package logger

import (
	"os"

	"golang.org/x/sys/unix"
)

// newWatcher watches dir with inotify; on failure it falls back to polling.
func newWatcher(dir string) *watcher {
	w := &watcher{ch: make(chan struct{}, 1)}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return w
	}
	mask := uint32(unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_CLOSE_WRITE)
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		_ = unix.Close(fd)
		return w
	}
	// A non-blocking descriptor goes to the runtime poller, so Read
	// parks the goroutine (not a thread) and honours deadlines.
	w.f = os.NewFile(uintptr(fd), "inotify")
	w.buf = make([]byte, 4096)
	return w
}
