package container

import (
	"context"
	"errors"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/shim"
)

// execInstance is one exec of a container (Docker keeps them in memory
// only; they do not survive a daemon restart either).
type execInstance struct {
	id       string
	cfg      container.ExecCreateRequest
	started  bool
	running  bool
	exitCode *int
	pid      int
}

// ExecCreate registers an exec in a running container.
func (s *Service) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	c, err := s.Get(ref)
	if err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", errdefs.Newf(errdefs.InvalidArgument, "No exec command specified")
	}
	if _, err := parseDetachKeys(req.DetachKeys); err != nil {
		return "", err
	}
	c.mu.Lock()
	running, paused, rec := c.rec.State.Running(), c.rec.State.Paused, c.rec
	if !running || c.shim == nil {
		c.mu.Unlock()
		return "", errdefs.Newf(errdefs.Conflict, "container %s is not running", rec.ID)
	}
	if paused {
		c.mu.Unlock()
		return "", errdefs.Newf(errdefs.Conflict, "Container %s is paused, unpause the container before exec", rec.ID)
	}
	id := newID()
	c.execs[id] = &execInstance{id: id, cfg: req}
	c.mu.Unlock()
	s.mu.Lock()
	s.execs[id] = c
	s.mu.Unlock()
	s.event("exec_create: "+strings.Join(req.Cmd, " "), &rec, map[string]string{"execID": id})
	return id, nil
}

func (s *Service) getExec(id string) (*Container, *execInstance, error) {
	s.mu.RLock()
	c := s.execs[id]
	s.mu.RUnlock()
	if c == nil {
		return nil, nil, errdefs.Newf(errdefs.NotFound, "No such exec instance: %s", id)
	}
	c.mu.Lock()
	e := c.execs[id]
	c.mu.Unlock()
	if e == nil {
		return nil, nil, errdefs.Newf(errdefs.NotFound, "No such exec instance: %s", id)
	}
	return c, e, nil
}

// ExecTTY reports whether an exec has a terminal (for the API's stream
// content type).
func (s *Service) ExecTTY(id string) (bool, error) {
	_, e, err := s.getExec(id)
	if err != nil {
		return false, err
	}
	return e.cfg.Tty, nil
}

// ExecStart starts an exec; detached it returns once the process runs,
// otherwise it calls streams (once the exec is known to be startable) to
// get the client and copies until the exec's output ends.
func (s *Service) ExecStart(ctx context.Context, id string, detach bool, consoleSize *[2]uint, streams func(tty, stdin, stdout, stderr bool) (Client, error)) error {
	c, e, err := s.getExec(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if e.started {
		c.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "Error: Exec command %s has already run", id)
	}
	cl := c.shim
	if cl == nil || !c.rec.State.Running() {
		c.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "container %s is not running", c.rec.ID)
	}
	e.started, e.running = true, true
	rec := c.rec
	c.mu.Unlock()
	var client Client
	if !detach {
		var err error
		client, err = streams(e.cfg.Tty, e.cfg.AttachStdin, e.cfg.AttachStdout, e.cfg.AttachStderr)
		if err != nil {
			c.mu.Lock()
			e.running = false
			c.mu.Unlock()
			return err
		}
	}
	p, err := s.execProcess(ctx, &rec, e)
	if err != nil {
		c.mu.Lock()
		e.running = false
		c.mu.Unlock()
		return err
	}
	if consoleSize != nil && p.Terminal {
		p.ConsoleSize = &specs.Box{Height: consoleSize[0], Width: consoleSize[1]}
	}
	opts := shim.AttachOpts{Stdin: e.cfg.AttachStdin && client != nil, Stdout: e.cfg.AttachStdout && client != nil, Stderr: e.cfg.AttachStderr && client != nil}
	fail := func(err error) error {
		c.mu.Lock()
		e.running = false
		code := 126
		if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "no such file") {
			code = 127
		}
		e.exitCode = &code
		c.mu.Unlock()
		return err
	}
	if err := cl.Exec(ctx, id, p, opts); err != nil {
		return fail(err)
	}
	s.event("exec_start: "+strings.Join(e.cfg.Cmd, " "), &rec, map[string]string{"execID": id})
	conn, err := cl.ExecStart(ctx, id, client == nil)
	if err != nil {
		return fail(err)
	}
	recorded := make(chan struct{})
	go func() {
		code, err := cl.ExecWait(context.Background(), id)
		if err != nil {
			code = 126
		}
		c.mu.Lock()
		e.running = false
		e.exitCode = &code
		c.mu.Unlock()
		close(recorded)
		s.event("exec_die", &rec, map[string]string{"execID": id, "exitCode": itoa(code)})
	}()
	if pid, _, _, err := cl.ExecState(ctx, id); err == nil {
		c.mu.Lock()
		e.pid = pid
		c.mu.Unlock()
	}
	if client == nil || conn == nil {
		return nil
	}
	keys, _ := parseDetachKeys(e.cfg.DetachKeys)
	if !e.cfg.Tty {
		keys = nil
	}
	err = splice(ctx, conn, client, opts.Stdin, keys)
	// Docker's exec start returns after the process is gone and its exit
	// recorded: the docker CLI inspects the exec as soon as the stream
	// ends and takes ExitCode (0 while still running) as the status.
	if errors.Is(err, ErrDetached) {
		return err // the exec goes on; the client has left
	}
	select {
	case <-recorded:
	case <-ctx.Done():
	}
	return err
}

// execProcess is the OCI process of an exec: generated like the
// container's own (so user and groups resolve against the container's
// files, and capabilities, seccomp and rlimits are the container's, or a
// privileged container's when the exec is privileged), with the exec's
// command, environment, working directory and terminal.
func (s *Service) execProcess(ctx context.Context, r *Record, e *execInstance) (*specs.Process, error) {
	cfg := *r.Config
	hc := *r.Host
	cfg.Env = mergeEnv(append([]string{}, r.Config.Env...), e.cfg.Env)
	cfg.Entrypoint, cfg.Cmd = nil, e.cfg.Cmd
	cfg.Tty = e.cfg.Tty
	if e.cfg.User != "" {
		cfg.User = e.cfg.User
	}
	if e.cfg.WorkingDir != "" {
		cfg.WorkingDir = e.cfg.WorkingDir
	}
	if e.cfg.Privileged {
		hc.Privileged = true
	}
	// Namespace modes naming other containers do not matter for the
	// process: drop them so a stopped peer cannot fail the exec.
	hc.NetworkMode, hc.IpcMode, hc.PidMode = "none", "", ""
	// Nor do mounts: volumes are resolved by the daemon only at start.
	hc.Binds, hc.Mounts = nil, nil
	sp, err := spec.Generate(ctx, spec.Input{ID: r.ID, Config: &cfg, HostConfig: &hc, Rootfs: s.rootfsDir(r.ID)})
	if err != nil {
		return nil, err
	}
	p := sp.Process
	if cfg.WorkingDir == "" {
		p.Cwd = "/"
	}
	return p, nil
}

func mergeEnv(base, over []string) []string {
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range base {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				base[i] = kv
				replaced = true
			}
		}
		if !replaced {
			base = append(base, kv)
		}
	}
	return base
}

// ExecInspect describes an exec.
func (s *Service) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	c, e, err := s.getExec(id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.cfg.Tty, Entrypoint: e.cfg.Cmd[0], Arguments: e.cfg.Cmd[1:], User: e.cfg.User},
		OpenStdin:     e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		ContainerID: c.rec.ID, Pid: e.pid, DetachKeys: []byte(e.cfg.DetachKeys),
	}
	if e.cfg.Privileged {
		t := true
		out.ProcessConfig.Privileged = &t
	}
	return out, nil
}

// ExecResize resizes an exec's terminal.
func (s *Service) ExecResize(ctx context.Context, id string, height, width uint) error {
	c, e, err := s.getExec(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cl, running := c.shim, e.running
	c.mu.Unlock()
	if cl == nil || !running {
		return errdefs.Newf(errdefs.Conflict, "Exec %s is not running, so it can not be resized.", id)
	}
	return cl.Resize(ctx, id, uint16(height), uint16(width))
}

// Resize resizes the container's terminal.
func (s *Service) Resize(ctx context.Context, ref string, height, width uint) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cl := c.shim
	c.mu.Unlock()
	if cl == nil {
		return errdefs.Newf(errdefs.Conflict, "Container %s is not running", c.ID())
	}
	if err := cl.Resize(ctx, "", uint16(height), uint16(width)); err != nil {
		return err
	}
	rec := c.snapshot()
	s.event("resize", &rec, map[string]string{"height": itoa(int(height)), "width": itoa(int(width))})
	return nil
}
