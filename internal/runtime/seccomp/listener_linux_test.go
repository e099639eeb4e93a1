//go:build cgo

package seccomp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSendListener(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	l := listenUnix(t, sock)

	tests := []struct {
		name  string
		state specs.ContainerProcessState
		want  specs.ContainerProcessState
	}{
		{
			name: "fills in fds and version",
			state: specs.ContainerProcessState{
				Pid: 42, Metadata: "MKNOD=/dev/null",
				State: specs.State{Version: specs.Version, ID: "c", Status: specs.StateCreating, Pid: 42, Bundle: "/b", Annotations: map[string]string{"k": "v"}},
			},
			want: specs.ContainerProcessState{
				Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: 42, Metadata: "MKNOD=/dev/null",
				State: specs.State{Version: specs.Version, ID: "c", Status: specs.StateCreating, Pid: 42, Bundle: "/b", Annotations: map[string]string{"k": "v"}},
			},
		},
		{
			name:  "overrides fds, keeps version",
			state: specs.ContainerProcessState{Version: "1.0.2", Fds: []string{"a", "b"}, Pid: 7},
			want:  specs.ContainerProcessState{Version: "1.0.2", Fds: []string{specs.SeccompFdName}, Pid: 7},
		},
		{
			// More than a socket buffer: the state arrives in pieces,
			// the fd with the first.
			name:  "large metadata",
			state: specs.ContainerProcessState{Pid: 1, Metadata: strings.Repeat("m", 4<<20)},
			want:  specs.ContainerProcessState{Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: 1, Metadata: strings.Repeat("m", 4<<20)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := sendPipe(t, sock, func() (listenerMsg, error) { return readState(l) }, tc.state)
			if !stateEqual(msg.state, tc.want) {
				t.Errorf("state = %.300v\nwant %.300v", msg.state, tc.want)
			}
			if !strings.Contains(string(msg.raw[:min(len(msg.raw), 40)]), `"ociVersion"`) {
				t.Errorf("payload does not start as JSON state: %.60q", msg.raw)
			}
		})
	}
}

// TestSendListenerLongPath reaches a socket whose path does not fit in
// sockaddr_un.
func TestSendListenerLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100), strings.Repeat("e", 100))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	if len(sock) <= maxSunPath {
		t.Fatalf("path %d bytes is not long enough for this test", len(sock))
	}
	// Bind through /proc/self/fd as well.
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := listenUnix(t, "/proc/self/fd/"+strconv.Itoa(dfd)+"/agent.sock")
	unix.Close(dfd)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket not at its long path: %v", err)
	}
	msg := sendPipe(t, sock, func() (listenerMsg, error) { return readState(l) }, specs.ContainerProcessState{Pid: 3})
	if msg.state.Pid != 3 {
		t.Errorf("state = %+v", msg.state)
	}
}

func TestSendListenerErrors(t *testing.T) {
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := int(w.Fd())

	checkErr(t, SendListener("", specs.ContainerProcessState{}, fd), "listener path is empty")
	checkErr(t, SendListener(filepath.Join(dir, "sock"), specs.ContainerProcessState{}, -1), "invalid listener fd -1")
	missing := filepath.Join(dir, "missing.sock")
	checkErr(t, SendListener(missing, specs.ContainerProcessState{}, fd), "connecting to listener "+missing)
	// A regular file is not a socket.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	checkErr(t, SendListener(file, specs.ContainerProcessState{}, fd), "connection refused")
}

// sendPipe sends a pipe's write end with SendListener to the listener at
// sockPath, receives it with accept, and checks the received fd is the
// same pipe and that the sender's fd is still open.
func sendPipe(t *testing.T, sockPath string, accept func() (listenerMsg, error), state specs.ContainerProcessState) listenerMsg {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	type received struct {
		msg listenerMsg
		err error
	}
	got := make(chan received, 1)
	go func() {
		msg, err := accept()
		got <- received{msg, err}
	}()
	if err := SendListener(sockPath, state, int(w.Fd())); err != nil {
		t.Fatal(err)
	}
	rcv := <-got
	if rcv.err != nil {
		t.Fatal(rcv.err)
	}
	msg := rcv.msg
	if len(msg.fds) != 1 {
		t.Fatalf("received %d fds, want 1", len(msg.fds))
	}
	if _, err := unix.FcntlInt(w.Fd(), unix.F_GETFD, 0); err != nil {
		t.Errorf("SendListener closed the caller's fd: %v", err)
	}
	const text = "through the passed fd"
	_, err = unix.Write(msg.fds[0], []byte(text))
	unix.Close(msg.fds[0])
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	data := make([]byte, 64)
	n, _ := r.Read(data)
	if string(data[:n]) != text {
		t.Errorf("read %q from the pipe, want %q", data[:n], text)
	}
	return msg
}
