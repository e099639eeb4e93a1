package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/berth-runtime"

// Runtime manages the containers whose state lives under one root.
type Runtime struct {
	root string
	// InitPath is the binary executed as container init; it must call
	// initproc.Main first thing and import package nsenter. Default:
	// berth-runtime-init next to the running binary, else ourselves.
	InitPath string
	Log      *slog.Logger
}

// New opens (creating if needed) a state root.
func New(root string) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state root %s: %w", abs, err)
	}
	return &Runtime{root: abs, InitPath: defaultInitPath(), Log: slog.Default()}, nil
}

// InitBinaryName is the small binary that becomes each container's init
// (cmd/berth-runtime-init). It is looked for next to the running binary;
// without it the running binary re-executes itself (it must then call
// initproc.Main first thing), which works but loads more per container.
const InitBinaryName = "berth-runtime-init"

func defaultInitPath() string {
	if exe, err := os.Executable(); err == nil {
		cand := filepath.Join(filepath.Dir(exe), InitBinaryName)
		if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return cand
		}
	}
	return "/proc/self/exe"
}

// Root returns the state root.
func (r *Runtime) Root() string { return r.root }

var validID = regexp.MustCompile(`^[\w+\-.]+$`)

func checkID(id string) error {
	if id == "" || len(id) > 1024 || !validID.MatchString(id) || id == "." || id == ".." {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid container id %q", id)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.root, id) }

func (r *Runtime) load(id string) (*persisted, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.Newf(errdefs.NotFound, "container %q does not exist", id)
		}
		return nil, err
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("container %q: corrupt state: %w", id, err)
	}
	return &p, nil
}

// save writes state.json atomically (write, fsync, rename).
func (r *Runtime) save(p *persisted) error {
	b, err := p.marshal()
	if err != nil {
		return err
	}
	dir := r.dir(p.ID)
	tmp := takeAhead(dir)
	if tmp == nil {
		if tmp, err = os.CreateTemp(dir, ".state-*"); err != nil {
			return err
		}
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, "state.json"))
}

// marshal is p's state.json. With configJSON, the record is encoded
// without its config and the config's own JSON put in its place: the
// spec is most of the record (Docker's seccomp profile alone ~6 KB), and
// encoding it again is most of a save's CPU time.
func (p *persisted) marshal() ([]byte, error) {
	if p.configJSON == nil || p.Config == nil {
		return json.Marshal(p)
	}
	q := *p
	q.Config = nil
	b, err := json.Marshal(&q)
	if err != nil {
		return nil, err
	}
	// The one "config":null is the field's: every other value before it
	// is a string, a number or an object of strings, in which a quote is
	// escaped.
	i := bytes.Index(b, nullConfig)
	if i < 0 {
		return json.Marshal(p)
	}
	at := i + len(nullConfig) - len("null")
	out := make([]byte, 0, len(b)+len(p.configJSON))
	out = append(append(append(out, b[:at]...), p.configJSON...), b[at+len("null"):]...)
	return out, nil
}

var nullConfig = []byte(`"config":null`)

// stateAhead is an empty file a pre-forked init's state directory gets
// at idle time (Prefork): the next save writes into it instead of
// creating a file, which costs 0.05 ms on a quiet ext4 and several times
// that on a journal-less one after much churn (its inode allocator skips
// recently freed inodes one by one); create's save is on the start path.
const stateAhead = ".state-ahead"

// aheadSeq makes the names saves give the file they take.
var aheadSeq atomic.Int64

// takeAhead returns dir's stateAhead file opened for writing (truncated),
// or nil if there is none. It is renamed first (a rename allocates no
// inode), so that of concurrent saves only one takes it.
func takeAhead(dir string) *os.File {
	name := filepath.Join(dir, ".state-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(aheadSeq.Add(1), 10))
	if err := os.Rename(filepath.Join(dir, stateAhead), name); err != nil {
		return nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		_ = os.Remove(name)
		return nil
	}
	return f
}

// lock takes an exclusive flock on the container directory for the
// duration of a state-changing operation.
func (r *Runtime) lock(id string) (func(), error) {
	fd, err := unix.Open(r.dir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, errdefs.Newf(errdefs.NotFound, "container %q does not exist", id)
		}
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// status derives the live status of a container from its init process, the
// start socket and the freezer.
func (r *Runtime) status(p *persisted) string {
	if !processAlive(p.InitPid, p.InitStart) {
		return StatusStopped
	}
	if p.Creating {
		return StatusCreating
	}
	if _, err := os.Stat(filepath.Join(r.dir(p.ID), startSock)); err == nil {
		return StatusCreated
	}
	if len(p.CgroupPaths) > 0 {
		if m, err := cgroup.Load(p.CgroupPaths); err == nil {
			if paused, err := m.Paused(); err == nil && paused {
				return StatusPaused
			}
		}
	}
	return StatusRunning
}

// processAlive reports whether pid is still the process started at start
// (clock ticks since boot), and not a zombie.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, state, err := procStat(pid)
	if err != nil {
		return false
	}
	return state != 'Z' && state != 'X' && (start == 0 || st == start)
}

// procStat reads the start time and state letter of pid.
func procStat(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0][0], err
}

func (r *Runtime) publicState(p *persisted) *State {
	st := r.status(p)
	pid := p.InitPid
	if st == StatusStopped {
		pid = 0
	}
	var ann map[string]string
	if p.Config != nil {
		ann = p.Config.Annotations
	}
	return &State{
		State: specs.State{
			Version: specs.Version, ID: p.ID, Status: specs.ContainerState(st), Pid: pid,
			Bundle: p.Bundle, Annotations: ann,
		},
		Rootfs: p.Rootfs, Created: p.Created, Owner: p.Owner,
	}
}

// State returns the OCI state of container id.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	p, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.publicState(p), nil
}

// List returns the state of every container under the root, sorted by id.
func (r *Runtime) List(ctx context.Context) ([]*State, error) {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p, err := r.load(e.Name())
		if err != nil {
			continue // being created or deleted
		}
		out = append(out, r.publicState(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	p, err := r.load(id)
	if err != nil {
		return err
	}
	st := r.status(p)
	if st == StatusStopped {
		return errdefs.Newf(errdefs.Conflict, "container %q is not running", id)
	}
	if all {
		return r.signalAll(p, sig)
	}
	if err := unix.Kill(p.InitPid, sig); err != nil {
		return fmt.Errorf("kill container %q: %w", id, err)
	}
	return nil
}

// signalAll signals every process of the container, freezing the cgroup
// around it so no process can fork away from the signal.
func (r *Runtime) signalAll(p *persisted, sig syscall.Signal) error {
	m, err := cgroup.Load(p.CgroupPaths)
	if err != nil {
		return unix.Kill(p.InitPid, sig)
	}
	paused, _ := m.Paused()
	if !paused && sig != unix.SIGKILL {
		_ = m.Freeze()
	}
	pids, err := m.Pids()
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
	if !paused && sig != unix.SIGKILL {
		_ = m.Thaw()
	} else if sig == unix.SIGKILL && paused {
		_ = m.Thaw()
	}
	if len(pids) == 0 {
		_ = unix.Kill(p.InitPid, sig)
	}
	return err
}

// Delete removes a stopped (or, with force, any) container: kills what is
// left, removes its cgroups, runs poststop hooks and deletes its state.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	p, err := r.load(id)
	if err != nil {
		if errdefs.Is(err, errdefs.NotFound) && force {
			// Nothing persisted: remove a half-created directory, if any.
			_ = os.RemoveAll(r.dir(id))
			return nil
		}
		return err
	}
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st := r.status(p)
	switch st {
	case StatusStopped:
	case StatusCreated:
		r.killAndWait(p)
	default:
		if !force {
			return errdefs.Newf(errdefs.Conflict, "cannot delete container %s that is not stopped: %s", id, st)
		}
		r.killAndWait(p)
	}
	return r.destroy(p)
}

func (r *Runtime) killAndWait(p *persisted) {
	needAll := true
	if p.Config != nil && p.Config.Linux != nil {
		for _, ns := range p.Config.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace && ns.Path == "" {
				needAll = false // killing init kills the namespace
			}
		}
	}
	if needAll {
		_ = r.signalAll(p, unix.SIGKILL)
	} else {
		_ = unix.Kill(p.InitPid, unix.SIGKILL)
		if m, err := cgroup.Load(p.CgroupPaths); err == nil {
			if paused, _ := m.Paused(); paused {
				_ = m.Thaw()
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(p.InitPid, p.InitStart) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Wait for the cgroup to drain: deleting it needs it empty.
	if m, err := cgroup.Load(p.CgroupPaths); err == nil {
		for time.Now().Before(deadline) {
			pids, err := m.Pids()
			if err != nil || len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// destroy removes everything a stopped container still holds.
func (r *Runtime) destroy(p *persisted) error {
	var m cgroup.Manager
	if len(p.CgroupPaths) > 0 {
		m, _ = cgroup.Load(p.CgroupPaths)
	}
	return r.destroyWith(p, m)
}

func (r *Runtime) destroyWith(p *persisted, m cgroup.Manager) error {
	var errs []error
	if m != nil {
		if err := m.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	if p.Config != nil && p.Config.Hooks != nil && len(p.Config.Hooks.Poststop) > 0 {
		st := specs.State{Version: specs.Version, ID: p.ID, Status: specs.StateStopped, Bundle: p.Bundle, Annotations: p.Config.Annotations}
		if err := initproc.RunHooks("poststop", p.Config.Hooks.Poststop, st); err != nil {
			// The spec: a failing poststop hook is logged, deletion goes on.
			r.Log.Warn("poststop hook failed", "id", p.ID, "err", err)
		}
	}
	if err := os.RemoveAll(r.dir(p.ID)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Pause freezes every process of a running container.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	p, m, err := r.running(id)
	if err != nil {
		return err
	}
	_ = p
	return m.Freeze()
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	p, err := r.load(id)
	if err != nil {
		return err
	}
	if st := r.status(p); st != StatusPaused {
		return errdefs.Newf(errdefs.Conflict, "container %q is not paused", id)
	}
	m, err := cgroup.Load(p.CgroupPaths)
	if err != nil {
		return err
	}
	return m.Thaw()
}

func (r *Runtime) running(id string) (*persisted, cgroup.Manager, error) {
	p, err := r.load(id)
	if err != nil {
		return nil, nil, err
	}
	if st := r.status(p); st != StatusRunning {
		return nil, nil, errdefs.Newf(errdefs.Conflict, "container %q is not running", id)
	}
	m, err := cgroup.Load(p.CgroupPaths)
	if err != nil {
		return nil, nil, err
	}
	return p, m, nil
}

// Update applies new resource limits to a created, running or paused
// container and records them.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	p, err := r.load(id)
	if err != nil {
		return err
	}
	if st := r.status(p); st == StatusStopped {
		return errdefs.Newf(errdefs.Conflict, "container %q is stopped", id)
	}
	m, err := cgroup.Load(p.CgroupPaths)
	if err != nil {
		return err
	}
	if err := m.Set(res); err != nil {
		return errdefs.With(errdefs.InvalidArgument, err)
	}
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	if p.Config.Linux == nil {
		p.Config.Linux = &specs.Linux{}
	}
	p.Config.Linux.Resources = res
	return r.save(p)
}

// Pids lists the processes of a container.
func (r *Runtime) Pids(ctx context.Context, id string) ([]int, error) {
	p, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if r.status(p) == StatusStopped {
		return nil, errdefs.Newf(errdefs.Conflict, "container %q is not running", id)
	}
	m, err := cgroup.Load(p.CgroupPaths)
	if err != nil {
		return nil, err
	}
	return m.Pids()
}

// Config returns the spec a container was created with (and updated to).
func (r *Runtime) Config(ctx context.Context, id string) (*specs.Spec, error) {
	p, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return p.Config, nil
}

func currentOwner() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}
