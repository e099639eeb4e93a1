package shim

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Pre-forked container inits. Prepare hands a shim (the warm spare, if
// one waits) a first boot frame with only what the clone of the container
// init depends on (id, cgroups path, namespaces, terminal, stdin); the
// shim creates the stdio pipes and has the runtime pre-fork the init
// (runtime.Preforked) while the caller mounts the root filesystem and
// writes the bundle. Spawn with SpawnOpts.Prepared then sends the full
// boot config to that shim, whose create only sends the init its config.
// Anything that does not fit is released and created the ordinary way.

// PrepareOpts say what container a shim pre-forks an init for; Binary,
// RuntimeRoot, RuntimeInit and Env as in SpawnOpts (and equal to the
// Spawn's, or the prepared shim is not used).
type PrepareOpts struct {
	Binary      string
	ID          string
	RuntimeRoot string
	RuntimeInit string
	Env         []string
	// CgroupsPath and Namespaces are the container's linux.cgroupsPath
	// and linux.namespaces (all new ones, no user namespace).
	CgroupsPath string
	Namespaces  []specs.LinuxNamespace
	Terminal    bool // process.terminal
	Stdin       bool // SpawnOpts.Stdin
	// Devices, with SetDevices, are the container's expected
	// linux.resources.devices: its devices cgroup is programmed with them
	// while the init is pre-forked (runtime.PreforkOpts.Devices).
	Devices    []specs.LinuxDeviceCgroup
	SetDevices bool
	// WarmSpare takes the warm spare shim if one waits (see SpawnOpts).
	WarmSpare bool
	// Spare, for ClaimSpare: the next warm spare is started at once (in
	// the background) and pre-forks as this says (see SpawnOpts.Spare).
	Spare *SparePrefork
}

// preforkConfig is the first boot frame of a prepared shim.
type preforkConfig struct {
	ID          string                 `json:"id"`
	RuntimeRoot string                 `json:"runtime_root"`
	RuntimeInit string                 `json:"runtime_init"`
	CgroupsPath string                 `json:"cgroups_path"`
	Namespaces  []specs.LinuxNamespace `json:"namespaces"`
	Terminal    bool                   `json:"terminal,omitempty"`
	Stdin       bool                   `json:"stdin,omitempty"`
	// Devices, with SetDevices: runtime.PreforkOpts.Devices.
	Devices    []specs.LinuxDeviceCgroup `json:"devices,omitempty"`
	SetDevices bool                      `json:"set_devices,omitempty"`
}

// Prepared is a shim pre-forking a container init; Spawn consumes it
// (SpawnOpts.Prepared), else Release must be called.
type Prepared struct {
	id  string
	bin string
	env []string
	sh  *started
}

// Prepare starts (or takes the warm spare) shim and has it pre-fork the
// container init for o.ID. It does not wait for the shim.
func Prepare(o PrepareOpts) (*Prepared, error) {
	bin, err := shimBinary(o.Binary)
	if err != nil {
		return nil, err
	}
	env := shimEnv(o.Env)
	var sh *started
	if o.WarmSpare {
		sh = takeSpare(bin, env)
	}
	if sh == nil {
		if sh, err = startShim(bin, env, []string{BinaryName, o.ID}); err != nil {
			return nil, err
		}
	}
	pc := &preforkConfig{
		ID: o.ID, RuntimeRoot: o.RuntimeRoot, RuntimeInit: runtimeInit(bin, o.RuntimeInit),
		CgroupsPath: o.CgroupsPath, Namespaces: o.Namespaces, Terminal: o.Terminal, Stdin: o.Stdin,
		Devices: o.Devices, SetDevices: o.SetDevices,
	}
	if pc.RuntimeRoot == "" {
		pc.RuntimeRoot = runtime.DefaultRoot
	}
	p := &Prepared{id: o.ID, bin: bin, env: env, sh: sh}
	if err := writeFrame(sh.parent, &bootConfig{Prefork: pc}); err != nil {
		p.Release()
		return nil, err
	}
	return p, nil
}

// ShimPid returns the prepared shim's pid (0 once Spawn took it or it was
// released).
func (p *Prepared) ShimPid() int {
	if p == nil || p.sh == nil {
		return 0
	}
	return p.sh.pid
}

// Release lets a prepared shim go: it releases its pre-forked init (which
// removes its cgroups and runtime state) and exits; Release returns once
// it has. Safe on nil and more than once.
func (p *Prepared) Release() {
	if p == nil || p.sh == nil {
		return
	}
	sh := p.sh
	p.sh = nil
	sh.parent.Close()
	select {
	case <-sh.reaped:
	case <-time.After(10 * time.Second):
		_ = sh.proc.Kill()
		<-sh.reaped
	}
}

// use returns the prepared shim for a Spawn of id with bin and env, or
// releases it and returns nil.
func (p *Prepared) use(id, bin string, env []string) *started {
	if p == nil || p.sh == nil {
		return nil
	}
	if p.id != id || p.bin != bin || !equalStrings(p.env, env) {
		p.Release()
		return nil
	}
	sh := p.sh
	p.sh = nil
	select {
	case <-sh.reaped:
		sh.parent.Close()
		return nil
	default:
	}
	return sh
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// runtimeInit is the container init binary for shim binary bin.
func runtimeInit(bin, init string) string {
	if init == "" {
		init = filepath.Join(filepath.Dir(bin), runtime.InitBinaryName)
	}
	return init
}

// stdio is a container's stdio pipes: ours (read ends of stdout and
// stderr, write end of stdin; inW nil without stdin) and the child's.
type stdio struct {
	outR, outW, errR, errW, inR, inW *os.File
}

func newStdio(stdin bool) (*stdio, error) {
	var s stdio
	var err error
	if s.outR, s.outW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if s.errR, s.errW, err = os.Pipe(); err != nil {
		s.close()
		return nil, err
	}
	if stdin {
		s.inR, s.inW, err = os.Pipe()
	} else {
		s.inR, err = os.Open(os.DevNull)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return &s, nil
}

func (s *stdio) close() {
	for _, f := range []*os.File{s.outR, s.outW, s.errR, s.errW, s.inR, s.inW} {
		if f != nil {
			f.Close()
		}
	}
}

// shimPrefork is what a prepared shim made before its boot config came.
type shimPrefork struct {
	cfg *preforkConfig
	rt  *runtime.Runtime
	io  *stdio
	pf  *runtime.Preforked
}

// prefork pre-forks the init a preforkConfig asks for; nil if it cannot
// (the container is then created the ordinary way).
func prefork(pc *preforkConfig) *shimPrefork {
	initproc.Tracef("shim: prefork")
	rt, err := runtime.New(pc.RuntimeRoot)
	if err != nil {
		logf("prefork %s: %v", pc.ID, err)
		return nil
	}
	rt.InitPath = pc.RuntimeInit
	io, err := newStdio(pc.Stdin)
	if err != nil {
		logf("prefork %s: %v", pc.ID, err)
		return nil
	}
	pf, err := rt.Prefork(context.Background(), pc.ID, runtime.PreforkOpts{
		CgroupsPath: pc.CgroupsPath, Namespaces: pc.Namespaces, Terminal: pc.Terminal,
		IO:      runtime.IO{Stdin: io.inR, Stdout: io.outW, Stderr: io.errW},
		Devices: pc.Devices, SetDevices: pc.SetDevices,
	})
	if err != nil {
		logf("prefork %s: %v", pc.ID, err)
		io.close()
		return nil
	}
	initproc.Tracef("shim: preforked")
	return &shimPrefork{cfg: pc, rt: rt, io: io, pf: pf}
}

func (p *shimPrefork) release() {
	if p == nil {
		return
	}
	p.pf.Release()
	p.io.close()
}

// releasing counts the pre-forked inits being let go in the background;
// Main waits for them before the shim exits.
var releasing sync.WaitGroup

// releaseAsync lets p go in the background (a spare's init the container
// it is given does not need: its kill, reaping and cgroup removal stay off
// the path of that container's create).
func (p *shimPrefork) releaseAsync() {
	if p == nil {
		return
	}
	initproc.Tracef("shim: pre-forked init let go")
	releasing.Add(1)
	go func() {
		defer releasing.Done()
		p.release()
	}()
}

// take returns p if it was made for the container cfg describes, else
// releases it and returns nil.
func (p *shimPrefork) take(cfg *bootConfig) *shimPrefork {
	if p == nil {
		return nil
	}
	root := cfg.RuntimeRoot
	if root == "" {
		root = runtime.DefaultRoot
	}
	if cfg.ID != p.cfg.ID || root != p.cfg.RuntimeRoot || cfg.RuntimeInit != p.cfg.RuntimeInit || cfg.Stdin != p.cfg.Stdin {
		p.releaseAsync()
		return nil
	}
	return p
}

// readBoot reads the boot config; a prepared shim first gets a prefork
// frame, pre-forks, then reads the boot config proper (cfg.pre is set). A
// warm spare that pre-forked for an id of its own (SparePrefork) may get
// another prefork frame (Prepare took it for another container): the first
// init is let go and the next one pre-forked.
func readBoot(boot *os.File, cfg *bootConfig) error {
	var pre *shimPrefork
	warmed := false
	for {
		*cfg = bootConfig{}
		if err := readFrame(boot, cfg); err != nil {
			// The daemon let us go (Prepared.Release) or died.
			pre.release()
			return err
		}
		if cfg.Prefork == nil {
			if n := cfg.SpecLen; n > 0 {
				if n > maxFrame {
					pre.release()
					return fmt.Errorf("shim protocol: spec of %d bytes", n)
				}
				cfg.spec = make([]byte, n)
				if _, err := io.ReadFull(boot, cfg.spec); err != nil {
					pre.release()
					return err
				}
			}
			break
		}
		pre.releaseAsync()
		pre = prefork(cfg.Prefork)
		if len(os.Args) == 1 && !warmed {
			// A warm spare: the JSON the create codes (the bundle's
			// spec, the init's config) at full speed later (the first
			// use in a process costs 0.5–1 ms).
			initproc.WarmJSON()
			if pre != nil {
				// And the seccomp cache the create will look in.
				pre.rt.WarmSeccomp()
			}
			warmed = true
			initproc.Tracef("shim: json warmed")
		}
	}
	if cfg.pre = pre.take(cfg); cfg.pre != nil {
		// A warm spare's init (and its threads) went idle with us: back
		// to normal priority before it gets its config (idle_linux.go).
		if err := spareNormal(cfg.pre.pf.Pid()); err != nil {
			logf("pre-forked init %d: %v", cfg.pre.pf.Pid(), err)
			cfg.pre.releaseAsync()
			cfg.pre = nil
		}
	}
	return nil
}

// Preforked says whether the shim created the container from a
// pre-forked init (Spawn with SpawnOpts.Prepared).
func (c *Client) Preforked() bool { return c.preforked }

// SpareID returns the container id the warm spare pre-forks an init for
// ("" if no spare waits or it pre-forks nothing; see SparePrefork).
func SpareID() string {
	spareMu.Lock()
	defer spareMu.Unlock()
	if spare == nil || spare.pre == nil {
		return ""
	}
	return spare.pre.ID
}

// ClaimSpare takes the warm spare for the container o describes when the
// spare pre-forks an init for exactly it: o.ID is the spare's id
// (SpareID) and the binary, environment, runtime root and init, cgroups
// path, namespaces, terminal and stdin are those the spare was started
// with. The result is a Prepared for o.ID (Spawn takes it, else Release
// must be called); nil when the spare does not fit, and then it stays.
func ClaimSpare(o PrepareOpts) *Prepared {
	bin, err := shimBinary(o.Binary)
	if err != nil {
		return nil
	}
	env := shimEnv(o.Env)
	root := o.RuntimeRoot
	if root == "" {
		root = runtime.DefaultRoot
	}
	spareMu.Lock()
	sp := spare
	if sp == nil || sp.pre == nil || sp.bin != bin || !slices.Equal(sp.env, env) {
		spareMu.Unlock()
		return nil
	}
	pc := sp.pre
	if pc.ID != o.ID || pc.RuntimeRoot != root || pc.RuntimeInit != runtimeInit(bin, o.RuntimeInit) ||
		pc.CgroupsPath != o.CgroupsPath || !slices.Equal(pc.Namespaces, o.Namespaces) ||
		pc.Terminal != o.Terminal || pc.Stdin != o.Stdin {
		spareMu.Unlock()
		return nil
	}
	spare = nil
	spareMu.Unlock()
	select {
	case <-sp.reaped:
		sp.parent.Close()
		return nil
	default:
	}
	if err := spareNormal(sp.pid); err != nil {
		// Not left at idle priority with a container: let it go.
		sp.parent.Close()
		return nil
	}
	initproc.Tracef("spare: claimed")
	// The next spare is scheduled now rather than after this container's
	// Spawn: held until the daemon is quiet (SparePrefork.Defer), or, back
	// to back, started at once, when its pre-fork has this container's
	// create and start to finish in before the next create comes.
	if o.Spare != nil {
		refillSpare(bin, env, o.Spare)
	}
	return &Prepared{id: o.ID, bin: bin, env: env, sh: sp}
}
