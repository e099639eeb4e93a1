package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/image/snapshot"
	"github.com/berth-dev/berth/internal/shim"
)

// pendingAttach is a client that attached before the container started:
// start hands it a shim stream before the process runs, so it misses
// nothing (docker run attaches first, then starts).
type pendingAttach struct {
	opts shim.AttachOpts
	ch   chan attachResult
}

type attachResult struct {
	conn net.Conn
	err  error
}

// Start starts a created or exited container. It answers NotModified
// when the container already runs.
func (s *Service) Start(ctx context.Context, ref string) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	if isRestarting(c) {
		return errdefs.Newf(errdefs.NotModified, "container %s is already running", shortID(c.ID()))
	}
	resetRestart(c)
	return s.start(ctx, c)
}

// start runs with c.busy held.
func (s *Service) start(ctx context.Context, c *Container) (retErr error) {
	c.waitTeardown()
	c.mu.Lock()
	st := c.rec.State
	switch {
	case st.Status == container.StatePaused:
		c.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "cannot start a paused container, try unpause instead")
	case st.Running():
		c.mu.Unlock()
		return errdefs.Newf(errdefs.NotModified, "container %s is already running", shortID(c.rec.ID))
	case st.Removing || st.Status == container.StateRemoving:
		c.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "container is marked for removal and cannot be started")
	case st.Dead:
		c.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "container is marked for removal and cannot be started")
	}
	rec, err := cloneRecord(c.rec)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			retErr = s.startFailed(c, retErr)
		}
	}()
	t0 := time.Now()
	phase := func(name string) {
		s.log.Debug("start phase", "id", shortID(rec.ID), "phase", name, "since_start", time.Since(t0))
	}
	bundle := s.bundleDir(rec.ID)
	rootfs := s.rootfsDir(rec.ID)
	// A previous run's state (its shim, its files) goes first.
	// The init is pre-forked meanwhile (nil: it cannot be); Spawn takes it.
	// One prepared at create belongs to a container that never ran:
	// nothing of a previous run can be left.
	prep := s.takeAhead(rec.ID)
	if prep == nil {
		s.killStale(ctx, rec.ID)
		prep = s.prepareShim(&rec)
	}
	defer func() { prep.Release() }()
	// A first start may find its root mounted ahead (snapmount_linux.go).
	premounted := s.takePremount(c, rootfs)
	if !premounted {
		_ = unix.Unmount(rootfs, unix.MNT_DETACH)
		if err := os.RemoveAll(bundle); err != nil {
			return err
		}
		if err := os.MkdirAll(rootfs, 0o700); err != nil {
			return err
		}
	}
	mounted := premounted
	defer func() {
		if retErr != nil {
			if mounted {
				_ = unix.Unmount(rootfs, unix.MNT_DETACH)
			}
			_ = os.RemoveAll(bundle)
		}
	}()
	if !premounted {
		mounts, err := s.cfg.Snapshots.Mounts(ctx, rec.Snapshot)
		if err != nil {
			return err
		}
		if err := snapshot.MountAll(mounts, rootfs); err != nil {
			return err
		}
		mounted = true
	}
	phase("mounted")
	extra, err := s.runMounts(ctx, &rec, rootfs)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			s.endRunMounts(context.WithoutCancel(ctx), &rec)
		}
	}()
	netns, err := s.setupNetwork(ctx, c, &rec)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil && netns != "" {
			s.teardownNetwork(context.WithoutCancel(ctx), rec.ID)
			c.mu.Lock()
			clearNetworkState(&c.rec)
			c.mu.Unlock()
		}
	}()
	phase("network")
	sp, err := s.generateSpec(ctx, &rec, rootfs, extra, netns)
	if err != nil {
		return err
	}
	data, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return err
	}
	phase("spec")
	oci, err := s.ociRuntimeFor(&rec)
	if err != nil {
		return err
	}
	if oci != nil {
		if err := recordOCIRuntime(bundle, oci); err != nil {
			return err
		}
	}
	// Without an early attacher to hand a stream first, the shim starts
	// the container as soon as it is created: one round trip less. With
	// one (docker run's attach), Spawn registers its stream first, on the
	// connection it created the container with, then starts: no
	// connection and round trip of their own either. (One that attaches
	// while Spawn runs gets the output from then on, as an attach to a
	// running container does.)
	c.mu.Lock()
	var early *pendingAttach
	if len(c.pending) == 1 {
		early = c.pending[0]
		c.pending = nil
	}
	startNow := len(c.pending) == 0
	c.mu.Unlock()
	var spawnAttach *shim.AttachOpts
	if early != nil {
		spawnAttach = &early.opts
	}
	cl, err := shim.Spawn(ctx, shim.SpawnOpts{
		Binary: s.cfg.ShimBinary, ID: rec.ID, Bundle: bundle, StateDir: bundle,
		RuntimeRoot: s.cfg.Runtime.Root(), Stdin: rec.Config.OpenStdin, StdinOnce: rec.Config.StdinOnce,
		Log: s.logConfig(&rec),
		// A shim started ahead of time takes the next container: its
		// exec and Go start-up are off the path of start.
		WarmSpare: true, OCIRuntime: oci,
		Prepared: prep, Spare: s.sparePrefork(),
		Start: startNow, Attach: spawnAttach,
		Spec: data, // what config.json holds: the shim need not read it
	})
	prep = nil // Spawn used or released it
	if early != nil {
		if conn := cl.SpawnStream(); conn != nil {
			early.ch <- attachResult{conn: conn}
		} else {
			// Not attached (Spawn failed, or the stream could not be
			// handed over): back with the others, which a failed start
			// ends and a started container attaches below.
			c.mu.Lock()
			c.pending = append([]*pendingAttach{early}, c.pending...)
			c.mu.Unlock()
		}
	}
	if err != nil {
		return err
	}
	phase("spawned")
	s.log.Debug("shim spawned", "id", shortID(rec.ID), "preforked", cl.Preforked())
	s.unstage(&rec)
	// Hand the early attachers their streams before the process runs (the
	// last one's request starts it, unless Spawn did).
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	isStarted, pid, err := cl.SpawnStarted()
	for i, p := range pending {
		if !isStarted && i == len(pending)-1 {
			// The last one's stream and the start in one round trip.
			var conn net.Conn
			var aerr error
			conn, isStarted, pid, err, aerr = cl.AttachStart(ctx, p.opts)
			p.ch <- attachResult{conn: conn, err: aerr}
			continue
		}
		conn, err := cl.Attach(ctx, p.opts)
		p.ch <- attachResult{conn: conn, err: err}
	}
	phase("attached")
	if !isStarted {
		pid, err = cl.Start(ctx)
	}
	if err != nil {
		_ = cl.Shutdown(context.WithoutCancel(ctx))
		cl.Close()
		return err
	}
	c.mu.Lock()
	c.shim = cl
	c.rec.State = State{Status: container.StateRunning, Pid: pid, StartedAt: time.Now().UTC(), Health: initialHealth(c.rec.Config)}
	c.rec.HasBeenStartedBefore = true
	c.rec.ManuallyStopped = false
	saved := c.rec
	c.notify()
	c.mu.Unlock()
	// The wait for the exit is sent to the shim now, so that its answer
	// (a short-lived program has exited by now) is there when the write
	// below is done; the exit is handled only after it and after the
	// "start" event, so nothing is seen or written in another order.
	started := make(chan struct{})
	s.wg.Add(1)
	go s.monitor(c, cl, started)
	// Written before the answer: a client told the container runs must
	// find it running after a crash of berthd (Restore reconnects only
	// what is recorded as running). Not synced: see runstate.go.
	if err := s.saveRun(c, &saved, s.store.save); err != nil {
		s.log.Error("save container state", "id", rec.ID, "err", err)
	}
	failpoint.Crash("start-recorded")
	phase("started")
	s.event("start", &saved, nil)
	close(started)
	s.mountSpareAhead() // the next create's root (snapmount_linux.go)
	s.startHealth(c)
	// The OOM watch is set up after start answered (it reads the
	// runtime's record for the cgroup paths, then registers an eventfd
	// or an inotify watch): a kill before it is in place is this run's
	// and still reported (fresh), and one after the exit by handleExit.
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		c.mu.Lock()
		running := c.shim == cl
		c.mu.Unlock()
		if running {
			s.watchOOM(c, true)
		}
	}()
	return nil
}

// startFailed records why a start failed, with Docker's exit codes for
// a command that cannot be found (127) or run (126).
func (s *Service) startFailed(c *Container, err error) error {
	code := 128
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		code = 127
	case strings.Contains(msg, "permission denied"):
		code = 126
	}
	c.mu.Lock()
	c.rec.State.Error = msg
	c.rec.State.ExitCode = code
	if c.rec.HasBeenStartedBefore {
		c.rec.State.Status = container.StateExited
	}
	saved := c.rec
	// Early attachers see their stream end (the start's caller gets the
	// error), as with Docker.
	for _, p := range c.pending {
		p.ch <- attachResult{err: errStartFailed}
	}
	c.pending = nil
	c.notify()
	c.mu.Unlock()
	_ = s.store.save(&saved)
	if saved.Host.AutoRemove {
		go func() { _ = s.Remove(context.Background(), saved.ID, RemoveOptions{Force: true}) }()
	}
	if code != 128 && errdefs.ClassOf(err) == errdefs.Internal {
		// The user's command cannot run: a bad request, not a daemon fault.
		return errdefs.With(errdefs.InvalidArgument, err)
	}
	return err
}

var errStartFailed = errors.New("container failed to start")

// generateSpec builds the OCI spec of r.
func (s *Service) generateSpec(ctx context.Context, r *Record, rootfs string, mounts []specs.Mount, netns string) (*specs.Spec, error) {
	dir := s.dataDir(r.ID)
	in := spec.Input{
		ID: r.ID, Config: r.Config, HostConfig: r.Host, Rootfs: rootfs,
		HostnamePath:   filepath.Join(dir, "hostname"),
		HostsPath:      filepath.Join(dir, "hosts"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		ContainerNS:    s.containerNS,
		Mounts:         mounts,
		NetNSPath:      netns,
	}
	sp, err := spec.Generate(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := s.applyInit(r, sp); err != nil {
		return nil, err
	}
	if sp.Process != nil {
		links, err := s.linkEnv(r)
		if err != nil {
			return nil, err
		}
		sp.Process.Env = withLinkEnv(sp.Process.Env, links)
	}
	return sp, nil
}

// containerNS resolves a "container:<ref>" namespace mode to the running
// container's namespace file.
func (s *Service) containerNS(ref string, typ specs.LinuxNamespaceType) (string, error) {
	c, err := s.Get(ref)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	pid, running := c.rec.State.Pid, c.rec.State.Running()
	c.mu.Unlock()
	if !running || pid == 0 {
		return "", errdefs.Newf(errdefs.Conflict, "cannot join namespace of a non running container: container %s is not running", shortID(c.rec.ID))
	}
	names := map[specs.LinuxNamespaceType]string{
		specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc",
		specs.UTSNamespace: "uts", specs.MountNamespace: "mnt", specs.UserNamespace: "user", specs.CgroupNamespace: "cgroup",
	}
	n, ok := names[typ]
	if !ok {
		return "", fmt.Errorf("unknown namespace type %s", typ)
	}
	return fmt.Sprintf("/proc/%d/ns/%s", pid, n), nil
}

// monitor waits for the container's exit through its shim and records it,
// once started is closed (nil: at once).
func (s *Service) monitor(c *Container, cl *shim.Client, started <-chan struct{}) {
	defer s.wg.Done()
	exit, err := cl.Wait(context.Background())
	if started != nil {
		<-started
	}
	if err != nil {
		// The shim went away without telling: read what it recorded.
		if e, rerr := shim.ReadExit(s.bundleDir(c.ID())); rerr == nil {
			exit, err = e, nil
		}
	}
	if err != nil {
		s.log.Error("container shim lost", "id", c.ID(), "err", err)
		exit = &shim.Exit{Code: 255, ExitedAt: time.Now().UTC(), Error: err.Error()}
	}
	s.handleExit(c, cl, exit)
}

// handleExit records an exit, releases the container's run resources and
// fires the exit hooks.
func (s *Service) handleExit(c *Container, cl *shim.Client, exit *shim.Exit) {
	// A kill being sent reports itself first.
	c.signalling.Lock()
	c.signalling.Unlock() //nolint:staticcheck // a barrier, nothing to guard
	c.mu.Lock()
	if c.shim != cl {
		c.mu.Unlock()
		return
	}
	c.shim = nil
	c.rec.State.Status = container.StateExited
	c.rec.State.Pid = 0
	c.rec.State.Paused = false
	c.rec.State.ExitCode = exit.Code
	c.rec.State.OOMKilled = exit.OOMKilled
	c.rec.State.Error = exit.Error
	c.rec.State.FinishedAt = exit.ExitedAt
	if c.rec.State.FinishedAt.IsZero() {
		c.rec.State.FinishedAt = time.Now().UTC()
	}
	exitHealth(c)
	oomReported := stopOOM(c)
	restart, delay := s.shouldRestart(c, exit.Code, c.rec.State.FinishedAt.Sub(c.rec.State.StartedAt))
	if restart {
		markRestarting(c)
	}
	for _, e := range c.execs {
		e.running = false
	}
	hadSandbox := c.rec.Sandbox != nil
	if hadSandbox && s.cfg.Networks != nil {
		s.cfg.Networks.Detach(c.rec.ID)
		for name, ni := range c.rec.Networks {
			s.netEvent("disconnect", ni.NetworkID, name, c.rec.ID)
		}
	}
	clearNetworkState(&c.rec)
	saved := c.rec
	// The run's teardown (the shim's exit, the rootfs unmount) happens
	// after waiters are told: nothing a client waits for depends on it.
	// A later start or remove of this container waits for it first.
	done := make(chan struct{})
	c.teardown = done
	// oom and die are published before anyone can see the container
	// stopped: a stop's own "stop" event comes after them, as dockerd's.
	if exit.OOMKilled && !oomReported {
		s.event("oom", &saved, nil)
	}
	s.event("die", &saved, map[string]string{"exitCode": itoa(exit.Code)})
	c.mu.Unlock()

	// The exit is written after waiters are told (its fsyncs are off the
	// path of wait; after a crash before it, Restore finds the container
	// recorded as running and learns the exit from the exit.json its shim
	// wrote before it went), and not for a container removed meanwhile. A
	// later start waits for the teardown, so for this write too. An exit
	// the program made by itself is written last, after the shim's
	// shutdown and the unmount: a remove that follows the wait (run --rm)
	// then finds the database free instead of queued behind this
	// transaction, and the write is skipped. One caused by stop or kill
	// is written first: the user's intent (ManuallyStopped) is not in the
	// shim's exit.json, and a restart policy must still see it after a
	// crash that follows the stop's answer.
	saveExit := func() {
		select {
		case <-c.removed:
		default:
			// Not synced without a restart policy: see runstate.go.
			if err := s.saveRun(c, &saved, s.store.saveIfExists); err != nil {
				s.log.Error("save container state", "id", saved.ID, "err", err)
			}
			failpoint.Crash("exit-recorded")
		}
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(done)
		if saved.ManuallyStopped {
			saveExit()
		}
		if cl != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := cl.Shutdown(ctx); err != nil {
				s.log.Warn("shim shutdown", "id", saved.ID, "err", err)
			}
			cancel()
			cl.Close()
		}
		_ = unix.Unmount(s.rootfsDir(saved.ID), unix.MNT_DETACH)
		s.endRunMounts(context.Background(), &saved)
		if hadSandbox {
			s.teardownNetwork(context.Background(), saved.ID)
		}
		if !saved.ManuallyStopped {
			saveExit()
		}
	}()
	c.mu.Lock()
	c.notify()
	c.mu.Unlock()
	if restart {
		s.scheduleRestart(c, delay)
	}
	if s.cfg.OnExit != nil {
		s.cfg.OnExit(saved.ID, saved.State)
	}
	if saved.Host.AutoRemove {
		go func() {
			if err := s.Remove(context.Background(), saved.ID, RemoveOptions{Force: true, Volumes: true}); err != nil && !errdefs.Is(err, errdefs.NotFound) && !errors.Is(err, errRemovalInProgress) {
				s.log.Error("auto-remove", "id", saved.ID, "err", err)
			}
		}()
	}
}
