package runtime_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// defaultProfileWithoutMkdir is Docker's default seccomp profile (as berth
// generates it for amd64) with mkdir/mkdirat left to the default action,
// EPERM, so a probe can tell the filter is there.
func defaultProfileWithoutMkdir(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	b, err := os.ReadFile("seccomp/testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if runtime.GOARCH != "amd64" {
		s.Architectures = nil
	}
	for i := range s.Syscalls {
		s.Syscalls[i].Names = slices.DeleteFunc(s.Syscalls[i].Names, func(n string) bool { return n == "mkdir" || n == "mkdirat" })
	}
	return &s
}

// seccompCacheFiles lists the compiled filters cached for r's root (kept
// beside the root, not in it: see seccompCacheDir).
func seccompCacheFiles(t *testing.T, r *rt) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.root+"-seccomp", "*.bpf"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// A container started from the compiled-filter cache has the same filter
// as one that compiled it: Seccomp 2 in its status, the syscalls the
// profile leaves out blocked, argument rules applied. A corrupt cache file
// is not used and is replaced. exec'd processes get the filter too.
func TestSeccompCachedFilter(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	profile := defaultProfileWithoutMkdir(t)
	script := `/probe status; /probe syscall mkdir; /probe syscall getpid; /probe syscall personality`
	check := func(what, out string) {
		t.Helper()
		if statusField(out, "Seccomp") != "2" {
			t.Errorf("%s: Seccomp %q, want 2\n%s", what, statusField(out, "Seccomp"), out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 3 || !slices.Equal(lines[len(lines)-3:], []string{"EPERM", "ok", "ok"}) {
			t.Errorf("%s: mkdir, getpid, personality(query) = %q, want EPERM ok ok", what, lines[max(0, len(lines)-3):])
		}
	}
	bundle := shBundle(t, script, func(s *specs.Spec) { s.Linux.Seccomp = profile })

	out, errs, code := r.run(bundle)
	if code != 0 {
		t.Fatalf("cold run: exit %d: %s %s", code, out, errs)
	}
	check("cold cache", out)
	files := seccompCacheFiles(t, r)
	if len(files) != 1 {
		t.Fatalf("cache files after the first run: %v", files)
	}
	st1, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}

	out, errs, code = r.run(bundle)
	if code != 0 {
		t.Fatalf("warm run: exit %d: %s %s", code, out, errs)
	}
	check("warm cache", out)
	if st2, err := os.Stat(files[0]); err != nil || !os.SameFile(st1, st2) {
		t.Errorf("the cache file was replaced on a hit (%v)", err)
	}

	// Truncated by one instruction: a whole number of instructions, so
	// only the recorded length and hash can tell.
	if err := os.Truncate(files[0], st1.Size()-8); err != nil {
		t.Fatal(err)
	}
	out, errs, code = r.run(bundle)
	if code != 0 {
		t.Fatalf("run with a corrupt cache file: exit %d: %s %s", code, out, errs)
	}
	check("corrupt cache file", out)
	st3, err := os.Stat(files[0])
	if err != nil || os.SameFile(st1, st3) || st3.Size() != st1.Size() {
		t.Errorf("the corrupt cache file was not replaced: %v %v", st3, err)
	}

	// exec compiles nothing either and gets the container's filter.
	sleeper := shBundle(t, "sleep 100", func(s *specs.Spec) { s.Linux.Seccomp = profile })
	id := r.id("exec")
	r.must("run", "-d", "-b", sleeper, id)
	out = r.must("exec", id, "sh", "-c", script)
	check("exec", out)
	r.must("delete", "-f", id)
	if got := seccompCacheFiles(t, r); len(got) != 1 {
		t.Errorf("cache files: %v, want the one", got)
	}
}

// The seccomp notify listener fd still reaches the agent when the filter
// comes from the cache; listenerPath and listenerMetadata are not part of
// the cache key, so a second container with another agent shares the
// compiled filter and still gets its own agent and metadata.
func TestSeccompListenerFromCache(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	for i, meta := range []string{"first", "second"} {
		sock := filepath.Join(t.TempDir(), "agent.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		type got struct {
			state specs.ContainerProcessState
			fd    *os.File
		}
		ch := make(chan got, 1)
		go func() {
			c, err := l.AcceptUnix()
			if err != nil {
				ch <- got{}
				return
			}
			defer c.Close()
			buf, oob := make([]byte, 1<<16), make([]byte, 64)
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				ch <- got{}
				return
			}
			var g got
			_ = json.Unmarshal(buf[:n], &g.state)
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
					g.fd = os.NewFile(uintptr(fds[0]), "seccomp")
				}
			}
			ch <- g
		}()
		b := shBundle(t, "/probe syscall getcwd", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: meta,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActNotify}},
			}
		})
		id := r.id("notify")
		out := tempFile(t)
		cmd := r.cmdWithStdout(out, "run", "-b", b, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var g got
		select {
		case g = <-ch:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("run %d: agent received nothing", i)
		}
		l.Close()
		if g.fd == nil || g.state.Metadata != meta || g.state.State.ID != id || g.state.Pid <= 0 {
			t.Fatalf("run %d: agent got %+v fd %v", i, g.state, g.fd)
		}
		// The agent's answers reach the container: the notifications
		// came through this listener.
		stop := make(chan struct{})
		type answers struct {
			n   int
			err error
		}
		done := make(chan answers, 1)
		go func() {
			n, err := answerAll(g.fd, stop)
			done <- answers{n, err}
		}()
		err = cmd.Wait()
		close(stop)
		a := <-done
		g.fd.Close()
		if err != nil {
			t.Fatalf("run %d: %v: %s", i, err, readBack(out))
		}
		if a.err != nil || a.n == 0 {
			t.Fatalf("run %d: agent answered %d notifications: %v", i, a.n, a.err)
		}
		if o := readBack(out); !strings.Contains(o, "EXFULL") {
			t.Fatalf("run %d: notified syscall result %q, want the agent's answer (EXFULL)", i, o)
		}
		if files := seccompCacheFiles(t, r); len(files) != 1 {
			t.Fatalf("run %d: cache files %v, want one shared by both", i, files)
		}
	}
}

// answerAll fails every syscall notified on f with EXFULL, an errno
// nothing else would produce, until the filter has no process left (the
// fd then polls POLLHUP) or stop is closed. It returns how many it
// answered.
func answerAll(f *os.File, stop <-chan struct{}) (int, error) {
	fd := int(f.Fd())
	answered := 0
	for {
		select {
		case <-stop:
			return answered, nil
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return answered, err
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			return answered, nil // POLLHUP: every process of the filter is gone
		}
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			continue // the process died meanwhile (ENOENT)
		}
		if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EXFULL)}); err == nil {
			answered++
		}
	}
}
