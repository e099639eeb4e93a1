package shim

import (
	"context"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
)

// The shim's runtime seam. The server drives its container through task
// and taskRuntime; berth's own runtime (the library, in-process) and an
// external OCI runtime (ociruntime_linux.go) implement them. The library's
// *runtime.Container is a task as it is, and berthRuntime only adapts
// StartExec's result type, so berth's path costs one interface call more
// per operation and nothing else.
//
// Lifecycle: a task is created (its init waits), started once, reaped
// with Wait once, and deleted; Signal reaches its init until Wait
// returned.

// task is the shim's container: one init process.
type task interface {
	Pid() int
	Spec() *specs.Spec
	// Cgroup is the container's cgroup (OOM kill counter, at exit).
	Cgroup() cgroup.Manager
	// Console returns the pty master of a terminal container.
	Console() (*os.File, error)
	Start(ctx context.Context) error
	Signal(sig syscall.Signal) error
	// Wait reaps the init; called once.
	Wait() (syscall.WaitStatus, error)
	// Delete removes what is left: processes, cgroups, runtime state.
	Delete(ctx context.Context) error
}

// taskRuntime is what the shim asks of the runtime by container id.
type taskRuntime interface {
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	Delete(ctx context.Context, id string, force bool) error
	StartExec(ctx context.Context, id string, p *specs.Process, o runtime.ExecOpts) (process, error)
}

// process is an exec'd process: the shim reaps it.
type process interface {
	Pid() int
	Console() (*os.File, error)
	Signal(sig syscall.Signal) error
	Wait() (syscall.WaitStatus, error)
}

var (
	_ task        = (*runtime.Container)(nil)
	_ process     = (*runtime.Process)(nil)
	_ taskRuntime = berthRuntime{}
)

// berthRuntime is berth's own runtime as a taskRuntime.
type berthRuntime struct{ *runtime.Runtime }

func (r berthRuntime) StartExec(ctx context.Context, id string, p *specs.Process, o runtime.ExecOpts) (process, error) {
	proc, err := r.Runtime.StartExec(ctx, id, p, o)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return proc, nil
}

// preforked tells whether t's init was pre-forked (berth's own runtime
// only; an external runtime's container never is).
func preforked(t task) bool {
	p, ok := t.(interface{ Preforked() bool })
	return ok && p.Preforked()
}
