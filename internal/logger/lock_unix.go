//go:build unix

package logger

import (
	"errors"
	"os"
	"syscall"
)

// lockLog takes a flock on <path>.lock, the lock file of the log whose
// current file is path: the writer holds it exclusively while renaming
// files, readers share it while opening them, so a reader never sees a
// rotation half done. The lock is advisory and held for microseconds. A
// file of its own (not the directory) keeps it apart from any other lock
// on the container directory.
func lockLog(path string, exclusive bool) (func(), error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	d, err := os.OpenFile(path+".lock", os.O_RDONLY|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(d.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		closeQuietly(d)
		return nil, err
	}
	return func() { closeQuietly(d) }, nil // close releases the lock
}
