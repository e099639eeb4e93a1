//go:build cgo

package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxSunPath is the room for a path in sockaddr_un, without the NUL.
const maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1

// SendListener hands the seccomp listener fd to the agent listening on the
// AF_UNIX SOCK_STREAM socket at listenerPath, as runtime-spec's seccomp
// listener section describes: one connection carrying the container
// process state as JSON, with fd attached (SCM_RIGHTS) to the first
// sendmsg. state.Fds is set to ["seccompFd"] and an empty state.Version
// to the runtime-spec version; the caller fills in Pid, Metadata (the
// config's listenerMetadata) and State. fd stays open and owned by the
// caller; the connection is closed before returning.
func SendListener(listenerPath string, state specs.ContainerProcessState, fd int) error {
	if listenerPath == "" {
		return errors.New("seccomp: listener path is empty")
	}
	if fd < 0 {
		return fmt.Errorf("seccomp: invalid listener fd %d", fd)
	}
	state.Fds = []string{specs.SeccompFdName}
	if state.Version == "" {
		state.Version = specs.Version
	}
	payload, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("seccomp: encoding container process state: %w", err)
	}

	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seccomp: creating socket for listener %s: %w", listenerPath, err)
	}
	defer unix.Close(sock)

	if err := connectUnix(sock, listenerPath); err != nil {
		return fmt.Errorf("seccomp: connecting to listener %s: %w", listenerPath, err)
	}

	rights := unix.UnixRights(fd)
	sent := 0
	for sent == 0 {
		n, err := unix.SendmsgN(sock, payload, rights, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("seccomp: sending seccomp fd to listener %s: %w", listenerPath, err)
		}
		if n == 0 {
			return fmt.Errorf("seccomp: sending seccomp fd to listener %s: nothing was sent", listenerPath)
		}
		sent = n
	}
	// A stream socket may take the payload in several writes; the fd
	// went with the first one, as the spec requires.
	for sent < len(payload) {
		n, err := unix.Write(sock, payload[sent:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("seccomp: sending container process state to listener %s: %w", listenerPath, err)
		}
		sent += n
	}
	return nil
}

// connectUnix connects sock to the socket at path. A path too long for
// sockaddr_un is reached through /proc/self/fd and an O_PATH fd of its
// directory.
func connectUnix(sock int, path string) error {
	for {
		var err error
		if len(path) <= maxSunPath {
			err = unix.Connect(sock, &unix.SockaddrUnix{Name: path})
		} else {
			err = connectLong(sock, path)
		}
		if err != unix.EINTR {
			return err
		}
	}
}

func connectLong(sock int, path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("path is too long for a unix socket address and its directory cannot be opened: %w", err)
	}
	defer unix.Close(dfd)
	short := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
	if len(short) > maxSunPath {
		return fmt.Errorf("socket name %q is too long for a unix socket address", base)
	}
	return unix.Connect(sock, &unix.SockaddrUnix{Name: short})
}
