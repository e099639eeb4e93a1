package apitest

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"

	execrouter "github.com/berth-dev/berth/internal/api/router/exec"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Execs is a fake exec backend over a Containers fake. Commands:
//
//	["echo", args...]  writes args to stdout
//	["cat"]            copies stdin to stdout until the client's EOF
//	["fail", "N", msg] writes msg to stderr, exit code N
type Execs struct {
	c  *Containers
	mu sync.Mutex
	m  map[string]*fakeExec
}

type fakeExec struct {
	id, containerID string
	cfg             container.ExecCreateRequest
	running, done   bool
	exitCode        int
}

var _ execrouter.Backend = (*Execs)(nil)

// NewExecs returns a fake over c.
func NewExecs(c *Containers) *Execs { return &Execs{c: c, m: map[string]*fakeExec{}} }

func (e *Execs) ExecCreate(ctx context.Context, name string, cfg container.ExecCreateRequest) (string, error) {
	c, err := e.c.lookup(name)
	if err != nil {
		return "", err
	}
	e.c.mu.Lock()
	running := c.state == container.StateRunning
	e.c.mu.Unlock()
	if !running {
		return "", errdefs.Newf(errdefs.Conflict, "container %s is not running", c.id)
	}
	id := randomID()
	e.mu.Lock()
	e.m[id] = &fakeExec{id: id, containerID: c.id, cfg: cfg}
	e.mu.Unlock()
	return id, nil
}

func (e *Execs) get(id string) (*fakeExec, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[id]
	if !ok {
		return nil, errdefs.Newf(errdefs.NotFound, "No such exec instance: %s", id)
	}
	return x, nil
}

func (e *Execs) ExecStart(ctx context.Context, id string, o execrouter.StartOptions) error {
	x, err := e.get(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if x.running || x.done {
		e.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "exec instance %s has already been started", id)
	}
	x.running = true
	e.mu.Unlock()
	var stdin io.Reader
	var stdout, stderr io.Writer = io.Discard, io.Discard
	if !o.Detach {
		s, err := o.Streams(x.cfg.Tty, x.cfg.AttachStdin, x.cfg.AttachStdout, x.cfg.AttachStderr)
		if err != nil {
			return err
		}
		stdin = s.Stdin
		if s.Stdout != nil {
			stdout = s.Stdout
		}
		if s.Stderr != nil {
			stderr = s.Stderr
		}
	}
	code := 0
	cmd := x.cfg.Cmd
	switch {
	case cmd[0] == "echo":
		io.WriteString(stdout, strings.Join(cmd[1:], " ")+"\n")
	case cmd[0] == "cat" && stdin != nil:
		io.Copy(stdout, stdin)
	case cmd[0] == "fail" && len(cmd) > 1:
		code, _ = strconv.Atoi(cmd[1])
		io.WriteString(stderr, strings.Join(cmd[2:], " ")+"\n")
	case cmd[0] == "nosuchcommand":
		e.finish(x, 127)
		return errdefs.Newf(errdefs.InvalidArgument, "OCI runtime exec failed: exec: %q: executable file not found in $PATH", cmd[0])
	}
	e.finish(x, code)
	return nil
}

func (e *Execs) finish(x *fakeExec, code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x.running, x.done, x.exitCode = false, true, code
}

func (e *Execs) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	x, err := e.get(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &container.ExecInspectResponse{
		ID: x.id, ContainerID: x.containerID, Running: x.running,
		OpenStdin: x.cfg.AttachStdin, OpenStdout: x.cfg.AttachStdout, OpenStderr: x.cfg.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: x.cfg.Tty, Entrypoint: x.cfg.Cmd[0], Arguments: x.cfg.Cmd[1:]},
	}
	if x.done {
		code := x.exitCode
		r.ExitCode = &code
	}
	return r, nil
}

func (e *Execs) ExecResize(ctx context.Context, id string, height, width uint32) error {
	_, err := e.get(id)
	return err
}
