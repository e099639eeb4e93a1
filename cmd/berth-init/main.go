// Command berth-init is the tiny init berthd runs as a container's PID 1
// with --init (bind-mounted read-only at /sbin/docker-init, as dockerd
// does with docker-init): it starts the command after "--", forwards every
// signal it can catch to it, reaps every zombie (it is PID 1, or a child
// subreaper when it is not), and exits with the command's status (128 +
// the signal's number when a signal killed it).
//
// SIGURG is not forwarded: the Go runtime uses it to preempt its own
// threads, so one received cannot be told from the runtime's; the kernel
// sends SIGURG (out-of-band socket data) to the socket's owner directly,
// never through init.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth-init: usage: berth-init [--] command [args...]")
		return 1
	}
	// Orphans anywhere below become ours to reap, even when we are not
	// PID 1 (--pid=host).
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	// Catch everything before the child exists, so nothing is lost.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, catchable()...)

	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		if errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	// With a terminal, the child's group becomes the foreground one so
	// that the terminal's signals (^C) reach it once, not twice.
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		attr.Foreground = true
		attr.Ctty = 0
	}
	proc, err := os.StartProcess(path, args, &os.ProcAttr{
		Env: os.Environ(), Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}, Sys: attr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		if errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	child := proc.Pid
	for sig := range sigs {
		s := sig.(syscall.Signal)
		if s != syscall.SIGCHLD {
			_ = syscall.Kill(child, s)
			continue
		}
		if code, done := reap(child); done {
			return code
		}
	}
	return 1
}

// reap collects every exited child; done when the command itself exited,
// with its status.
func reap(child int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != child {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus(), true
		case ws.Signaled():
			return 128 + int(ws.Signal()), true
		}
	}
}

// catchable is every signal a process can handle (all but SIGKILL and
// SIGSTOP), real-time ones included.
func catchable() []os.Signal {
	var out []os.Signal
	for i := 1; i <= 64; i++ {
		s := syscall.Signal(i)
		if s == syscall.SIGKILL || s == syscall.SIGSTOP || s == syscall.SIGURG || i == 32 || i == 33 {
			continue // 32 and 33 are glibc's own; the kernel never sends them to us
		}
		out = append(out, s)
	}
	return out
}
