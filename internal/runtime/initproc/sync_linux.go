package initproc

// The parent/child handshake. The parent is the runtime command (create,
// run or exec); the child is the same binary re-executed as the container's
// init (or exec) process. They talk over a SOCK_SEQPACKET socketpair, one
// JSON message per packet. Every step names who sends what and why here:
//
//	| # | parent                                   | child                                       |
//	|---|------------------------------------------|---------------------------------------------|
//	| 0 | clone with new namespaces (+uid/gid maps)| constructor (nsenter) joins user/mnt/time   |
//	| 1 | put child in cgroups, send MsgConfig     | read MsgConfig                              |
//	|   | (with the seccomp filter compiled)       |                                             |
//	| 2 |                                          | unshare cgroup/time ns, mount everything    |
//	|   |                                          | except pivot_root, send MsgHooks            |
//	| 3 | run prestart+createRuntime hooks,        |                                             |
//	|   | send MsgHooksDone                        |                                             |
//	| 4 |                                          | createContainer hooks, pivot_root, masked/  |
//	|   |                                          | readonly paths, hostname, sysctls, console, |
//	|   |                                          | resolve args[0]; send MsgReady (with an fd  |
//	|   |                                          | of its mount namespace, for the parent to   |
//	|   |                                          | hold past the exit: see runtime.Container)  |
//	| 5 | write state.json (created); create exits | accept() on the start listener (blocks)     |
//	| 6 | start: connect to start.sock (seqpacket) | startContainer hooks, rlimits, user, caps,  |
//	|   |                                          | no_new_privs, seccomp, close fds, execve    |
//	| 6a| forward the fd to listenerPath's agent   | seccomp NOTIFY filter: MsgSeccompFD + fd    |
//	| 7 | start reads EOF (exec done, or the init  | every check passed (program, access, cwd,   |
//	|   | exited: see 8) or, with EarlyStart,      | creds, seccomp): [EarlyStart: MsgExec],     |
//	|   | MsgExec -> poststart hooks; answers      | execve; on failure before, MsgError         |
//	| 8 |                                          | execve failed: message on stderr, exit 255  |
//
// Any step may instead produce MsgError; the parent then kills the child and
// undoes everything it created. Exec processes (mode exec) skip steps 2-5
// and report 6a on the sync socket itself; they send no MsgExec: the
// parent reads EOF when execve succeeded (the socket is close-on-exec) or
// the error, so that an exec the kernel refuses fails the exec request.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const (
	MsgConfig    = "config"
	MsgHooks     = "hooks"
	MsgHooksDone = "hooks-done"
	MsgReady     = "ready"
	MsgError     = "error"
	// MsgSeccompFD carries the seccomp notify descriptor (SCM_RIGHTS) from
	// the init to the runtime process, which hands it to the agent at
	// linux.seccomp.listenerPath: that path is in the runtime's mount
	// namespace, unreachable from the container.
	MsgSeccompFD = "seccomp-fd"
	// MsgExec: a container's init passed every check and calls execve
	// next; start answers on it (see step 7). Only with
	// Config.EarlyStart.
	MsgExec = "exec"
)

type Msg struct {
	Type    string  `json:"type"`
	Message string  `json:"message,omitempty"`
	Config  *Config `json:"config,omitempty"`
	// SpecProcess: Config.Spec.Process is Config.Process, sent once (see
	// encode).
	SpecProcess bool `json:"spec_process,omitempty"`
	// FD is a descriptor received with the message (-1 if none).
	FD int `json:"-"`
}

// encode is m as one packet: its JSON, and for a config with a seccomp
// filter a newline (json.Marshal never writes one) and the filter's raw
// bytes. In the JSON the filter would be base64, ~10 KB for Docker's
// profile, which the init's decoder scans a byte at a time, twice the
// time of the rest of the config. The spec's process, the config's
// process too for a container's init, is sent once.
func encode(m Msg) ([]byte, error) {
	var tail []byte
	if c := m.Config; c != nil {
		cc := *c
		if p := c.Seccomp; p != nil && len(p.Filter) > 0 {
			np := *p
			tail, np.Filter = p.Filter, nil
			cc.Seccomp = &np
		}
		if sp := c.Spec; sp != nil && sp.Process != nil && sp.Process == c.Process {
			ns := *sp
			ns.Process = nil
			cc.Spec, m.SpecProcess = &ns, true
		}
		m.Config = &cc
	}
	b, err := json.Marshal(m)
	if err != nil || tail == nil {
		return b, err
	}
	b = append(b, '\n')
	return append(b, tail...), nil
}

// decode is the reverse of encode.
func decode(data []byte, m *Msg) error {
	var tail []byte
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data, tail = data[:i], data[i+1:]
	}
	if err := json.Unmarshal(data, m); err != nil {
		return err
	}
	c := m.Config
	if tail != nil {
		if c == nil || c.Seccomp == nil {
			return errors.New("seccomp filter without a seccomp config")
		}
		c.Seccomp.Filter = tail
	}
	if m.SpecProcess && c != nil && c.Spec != nil {
		c.Spec.Process = c.Process
	}
	m.SpecProcess = false
	return nil
}

// Conn is one end of the sync socket (or of the start connection).
type Conn struct{ F *os.File }

func NewPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sync socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

func (s Conn) Send(m Msg) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	_, err = s.F.Write(b)
	return err
}

// sendFD sends m with descriptor fd attached.
func (s Conn) SendFD(m Msg, fd int) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	return unix.Sendmsg(int(s.F.Fd()), b, unix.UnixRights(fd), nil, 0)
}

// recv reads one message. Configs can be large, so the buffer grows to the
// packet size reported by MSG_PEEK|MSG_TRUNC. A descriptor sent with the
// message is returned in m.FD (close-on-exec).
func (s Conn) Recv() (Msg, error) {
	m := Msg{FD: -1}
	fd := int(s.F.Fd())
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return m, err
		}
		if n == 0 {
			return m, ErrEOF
		}
		buf := make([]byte, n)
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return m, err
		}
		if oobn > 0 {
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cms) > 0 {
				if fds, err := unix.ParseUnixRights(&cms[0]); err == nil && len(fds) > 0 {
					m.FD = fds[0]
				}
			}
		}
		if err := decode(buf[:n], &m); err != nil {
			return m, fmt.Errorf("bad sync message: %w", err)
		}
		return m, nil
	}
}

// WaitExec reads what an init or exec process reports after it was told to
// go: seccomp descriptors to forward, then MsgExec (a container's init
// about to execve, with EarlyStart) or EOF (execve succeeded: the end is
// close-on-exec; or a container's init exited 255 after a refused
// execve), or its error.
func (s Conn) WaitExec(forward func(fd int) error) error {
	for {
		m, err := s.Recv()
		if err == ErrEOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch m.Type {
		case MsgSeccompFD:
			err := forward(m.FD)
			unix.Close(m.FD)
			if err != nil {
				return err
			}
		case MsgExec:
			return nil
		case MsgError:
			return fmt.Errorf("%s", m.Message)
		default:
			return fmt.Errorf("sync: unexpected %q", m.Type)
		}
	}
}

// expect reads one message and fails unless it has type want; a MsgError
// from the other side becomes the returned error.
func (s Conn) Expect(want string) (Msg, error) {
	m, err := s.Recv()
	if err != nil {
		if err == ErrEOF {
			return m, fmt.Errorf("container init exited before %s", want)
		}
		return m, err
	}
	if m.Type == MsgError {
		return m, fmt.Errorf("%s", m.Message)
	}
	if m.Type != want {
		return m, fmt.Errorf("sync: got %q, want %q", m.Type, want)
	}
	return m, nil
}

type eofError struct{}

func (eofError) Error() string { return "EOF" }

var ErrEOF error = eofError{}
