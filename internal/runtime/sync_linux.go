package runtime

// The parent/child handshake. The parent is the runtime command (create,
// run or exec); the child is the same binary re-executed as the container's
// init (or exec) process. They talk over a SOCK_SEQPACKET socketpair, one
// JSON message per packet. Every step names who sends what and why here:
//
//	| # | parent                                   | child                                       |
//	|---|------------------------------------------|---------------------------------------------|
//	| 0 | clone with new namespaces (+uid/gid maps)| constructor (nsenter) joins user/mnt/time   |
//	| 1 | put child in cgroups, send msgConfig     | read msgConfig                              |
//	| 2 |                                          | unshare cgroup/time ns, mount everything    |
//	|   |                                          | except pivot_root, send msgHooks            |
//	| 3 | run prestart+createRuntime hooks,        |                                             |
//	|   | send msgHooksDone                        |                                             |
//	| 4 |                                          | createContainer hooks, pivot_root, masked/  |
//	|   |                                          | readonly paths, hostname, sysctls, console, |
//	|   |                                          | resolve args[0]; send msgReady              |
//	| 5 | write state.json (created); create exits | accept() on the start listener (blocks)     |
//	| 6 | start: connect to start.sock             | startContainer hooks, rlimits, user, caps,  |
//	|   |                                          | no_new_privs, seccomp, close fds, execve    |
//	| 7 | start reads EOF (exec done: the socket   | on failure the error is written on the      |
//	|   | is close-on-exec) -> poststart hooks     | start connection instead                    |
//
// Any step may instead produce msgError; the parent then kills the child and
// undoes everything it created. Exec processes (mode exec) skip steps 2-5.

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const (
	msgConfig    = "config"
	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgReady     = "ready"
	msgError     = "error"
)

type syncMsg struct {
	Type    string      `json:"type"`
	Message string      `json:"message,omitempty"`
	Config  *initConfig `json:"config,omitempty"`
	// Pid is the seccomp listener or other info the child reports.
	Pid int `json:"pid,omitempty"`
}

type syncConn struct{ f *os.File }

func newSyncPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sync socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

func (s syncConn) send(m syncMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = s.f.Write(b)
	return err
}

// recv reads one message. Configs can be large, so the buffer grows to the
// packet size reported by MSG_PEEK|MSG_TRUNC.
func (s syncConn) recv() (syncMsg, error) {
	var m syncMsg
	fd := int(s.f.Fd())
	for {
		n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return m, err
		}
		if n == 0 {
			return m, errEOF
		}
		buf := make([]byte, n)
		n, _, err = unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return m, err
		}
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return m, fmt.Errorf("bad sync message: %w", err)
		}
		return m, nil
	}
}

// expect reads one message and fails unless it has type want; a msgError
// from the other side becomes the returned error.
func (s syncConn) expect(want string) (syncMsg, error) {
	m, err := s.recv()
	if err != nil {
		if err == errEOF {
			return m, fmt.Errorf("container init exited before %s", want)
		}
		return m, err
	}
	if m.Type == msgError {
		return m, fmt.Errorf("%s", m.Message)
	}
	if m.Type != want {
		return m, fmt.Errorf("sync: got %q, want %q", m.Type, want)
	}
	return m, nil
}

type eofError struct{}

func (eofError) Error() string { return "EOF" }

var errEOF error = eofError{}
