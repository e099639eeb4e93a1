package shim_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// editBundle rewrites x's config.json with edit.
func (x *ctr) editBundle(t *testing.T, edit func(*specs.Spec)) *specs.Spec {
	t.Helper()
	path := filepath.Join(x.opts.Bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&s)
	}
	if b, err = json.Marshal(&s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &s
}

// spareFor makes y's container the one a warm spare pre-forks for: its
// cgroup is /<id> (the spare's parent is "/"), and the spare's NewID
// gives y's id. It returns the spare settings and y's spec.
func spareFor(t *testing.T, y *ctr, edit func(*specs.Spec)) (*shim.SparePrefork, *specs.Spec) {
	t.Helper()
	y.cgroup = "/" + y.id
	s := y.editBundle(t, func(s *specs.Spec) {
		s.Linux.CgroupsPath = y.cgroup
		if edit != nil {
			edit(s)
		}
	})
	return &shim.SparePrefork{
		RuntimeRoot: y.opts.RuntimeRoot, CgroupParent: "/", Namespaces: s.Linux.Namespaces,
		NewID: func() string { return y.id },
	}, s
}

// startSpare spawns and runs a throwaway container with WarmSpare and sp,
// so that a warm spare starts and pre-forks; it returns the spare's
// container id and its pre-forked init's pid once the init waits.
func startSpare(t *testing.T, sp *shim.SparePrefork, env []string) (string, int) {
	t.Helper()
	w := newCtr(t, "true", nil)
	w.opts.WarmSpare, w.opts.Spare, w.opts.Env = true, sp, env
	c := w.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	var id string
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if id = shim.SpareID(); id != "" {
			if pid = statePid(filepath.Join(sp.RuntimeRoot, id)); pid != 0 && alive(pid) {
				return id, pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no warm spare pre-forked an init (spare id %q)", id)
	return "", 0
}

// statePid reads the init pid of the runtime record in dir (0: none).
func statePid(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return 0
	}
	var st struct {
		Pid int `json:"init_process_pid"`
	}
	_ = json.Unmarshal(b, &st)
	return st.Pid
}

// procCgroups maps each hierarchy of /proc/<pid>/cgroup ("0" for the
// unified one, else its controllers) to the process's cgroup there.
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		key := parts[1]
		if parts[0] == "0" {
			key = "0"
		}
		out[key] = parts[2]
	}
	return out
}

func parentOf(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			p, _ := strconv.Atoi(strings.TrimSpace(v))
			return p
		}
	}
	return 0
}

// TestSparePreforkClaimed: a warm spare started with a SparePrefork
// pre-forks, before any container is assigned to it, an init for a
// container id of its own, already in that container's cgroup in every
// hierarchy; ClaimSpare hands it out only for exactly that container
// (id, cgroups path, namespaces, terminal, stdin, runtime root), and Spawn
// creates the container from it: the limits go on its cgroup, the init
// is the container's pid 1.
func TestSparePreforkClaimed(t *testing.T) {
	defer shim.ReleaseSpare()
	y := newCtr(t, `echo "pid=$$"`, nil)
	const limit = 64 << 20
	sp, s := spareFor(t, y, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(limit))}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(77))}
	})
	id, initPid := startSpare(t, sp, y.opts.Env)
	if id != y.id {
		t.Fatalf("spare id %q, want %q", id, y.id)
	}
	if os.Getenv("BERTH_SPARE_IDLE") == "" {
		// Idle priority is opt-in (TestSpareIdleUntilClaimed).
		checkPolicy(t, "unclaimed spare shim", parentOf(initPid), unix.SCHED_NORMAL, 0)
		checkPolicy(t, "unclaimed spare's init", initPid, unix.SCHED_NORMAL, 0)
	}
	// Every hierarchy the process is in (v1 controllers, name=systemd,
	// the unified one) holds it in the container's cgroup. (The v1 ones
	// are joined by the init's constructor just after the clone: the
	// record can be there a moment before.)
	var cgs map[string]string
	inAll := func() bool {
		cgs = procCgroups(t, initPid)
		for _, p := range cgs {
			if p != y.cgroup {
				return false
			}
		}
		return len(cgs) > 0
	}
	for deadline := time.Now().Add(10 * time.Second); !inAll() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !inAll() {
		t.Errorf("pre-forked init's cgroups %v, want %q in every hierarchy", cgs, y.cgroup)
	}
	po := shim.PrepareOpts{
		Binary: y.opts.Binary, ID: y.id, RuntimeRoot: y.opts.RuntimeRoot, Env: y.opts.Env,
		CgroupsPath: s.Linux.CgroupsPath, Namespaces: s.Linux.Namespaces,
	}
	// What does not fit is not claimed (and the spare stays).
	for name, mutate := range map[string]func(*shim.PrepareOpts){
		"terminal":     func(o *shim.PrepareOpts) { o.Terminal = true },
		"stdin":        func(o *shim.PrepareOpts) { o.Stdin = true },
		"id":           func(o *shim.PrepareOpts) { o.ID = "other" },
		"cgroups path": func(o *shim.PrepareOpts) { o.CgroupsPath = "/elsewhere/" + y.id },
		"namespaces":   func(o *shim.PrepareOpts) { o.Namespaces = o.Namespaces[1:] },
		"runtime root": func(o *shim.PrepareOpts) { o.RuntimeRoot = t.TempDir() },
		"environment":  func(o *shim.PrepareOpts) { o.Env = append(o.Env, "X=1") },
	} {
		o := po
		mutate(&o)
		if p := shim.ClaimSpare(o); p != nil {
			p.Release()
			t.Fatalf("a spare was claimed for a container with another %s", name)
		}
	}
	if shim.SpareID() != y.id {
		t.Fatal("the spare went with a claim that did not fit")
	}
	p := shim.ClaimSpare(po)
	if p == nil {
		t.Fatal("the spare was not claimed for its own container")
	}
	if shim.SpareID() != "" {
		t.Error("a claimed spare is still offered")
	}
	shimPid := parentOf(initPid)
	if p.ShimPid() != shimPid {
		t.Errorf("claimed shim %d, the init's parent is %d", p.ShimPid(), shimPid)
	}
	y.opts.Prepared = p
	c := y.spawn()
	if !c.Preforked() {
		t.Error("the container was not created from the spare's init")
	}
	for file, want := range map[string]string{
		"/sys/fs/cgroup/memory" + y.cgroup + "/memory.limit_in_bytes": strconv.Itoa(limit),
		"/sys/fs/cgroup/pids" + y.cgroup + "/pids.max":                "77",
	} {
		if b, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s: %q %v, want %s", file, b, err, want)
		}
	}
	out, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := c.Start(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if pid != initPid {
		t.Errorf("container pid %d, the spare's init %d", pid, initPid)
	}
	if stdout, _ := demux(t, out); stdout != "pid=1\n" {
		t.Errorf("output %q", stdout)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Errorf("exit %+v", e)
	}
}

func ptr[T any](v T) *T { return &v }

// TestSpareTakenForAnotherContainer: a Spawn with WarmSpare takes the
// spare for a container its init does not fit (another id): the container
// is created the ordinary way by the spare shim, and the spare's init,
// its cgroups and runtime record go (in the background).
func TestSpareTakenForAnotherContainer(t *testing.T) {
	defer shim.ReleaseSpare()
	y := newCtr(t, "true", nil)
	sp, _ := spareFor(t, y, nil)
	id, initPid := startSpare(t, sp, y.opts.Env)
	shimPid := parentOf(initPid)
	x := newCtr(t, "echo ok", nil)
	x.opts.WarmSpare, x.opts.Env = true, y.opts.Env
	c := x.spawn()
	if c.Preforked() {
		t.Error("an init pre-forked for another container was used")
	}
	if c.ShimPid() != shimPid {
		t.Errorf("shim %d, the spare was %d", c.ShimPid(), shimPid)
	}
	waitGone(t, initPid)
	waitFor(t, "the spare's runtime record and cgroups to go", func() bool {
		_, err := os.Stat(filepath.Join(sp.RuntimeRoot, id))
		left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
		return os.IsNotExist(err) && len(left) == 0
	})
	if stdout := startOutput(t, c); stdout != "ok\n" {
		t.Errorf("output %q", stdout)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Errorf("exit %+v", e)
	}
}

// TestSpareReleased: an unused spare let go (ReleaseSpare, as berthd's
// Close does; the same path as berthd exiting) kills its init and removes
// its cgroups and runtime record; a spare shim killed outright leaves the
// init to exit by itself (its sync socket closes), and the record and
// cgroups to the daemon's sweep (runtime Delete by force, see
// container.Service.sweepPreforks), which removes them.
func TestSpareReleased(t *testing.T) {
	defer shim.ReleaseSpare()
	y := newCtr(t, "true", nil)
	sp, _ := spareFor(t, y, nil)
	id, initPid := startSpare(t, sp, y.opts.Env)
	shimPid := parentOf(initPid)
	shim.ReleaseSpare()
	if alive(shimPid) || alive(initPid) {
		t.Errorf("after ReleaseSpare: shim alive %v, init alive %v", alive(shimPid), alive(initPid))
	}
	if _, err := os.Stat(filepath.Join(sp.RuntimeRoot, id)); !os.IsNotExist(err) {
		t.Errorf("runtime record left: %v", err)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}

	// A spare shim killed outright.
	y2 := newCtr(t, "true", nil)
	sp, _ = spareFor(t, y2, nil)
	id, initPid = startSpare(t, sp, y2.opts.Env)
	shimPid = parentOf(initPid)
	if err := syscall.Kill(shimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, shimPid)
	waitGone(t, initPid)
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id); len(left) == 0 {
		t.Fatal("no cgroups left by a killed spare: nothing to sweep")
	}
	rt, err := runtime.New(sp.RuntimeRoot)
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.State(ctx(t), id)
	if err != nil || st.Bundle != "" {
		t.Fatalf("the killed spare's record: %+v %v (the sweep takes records without a bundle)", st, err)
	}
	if err := rt.Delete(ctx(t), id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sp.RuntimeRoot, id)); !os.IsNotExist(err) {
		t.Errorf("runtime record left after the sweep: %v", err)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id); len(left) > 0 {
		t.Errorf("cgroups left after the sweep: %v", left)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// spareShims lists this process's children that are warm spare shims
// (started without a container id).
func spareShims(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != os.Getpid() {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"); len(args) == 1 && args[0] == shim.BinaryName {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestSpareRefillHeld: with SparePrefork.Defer the next spare's start is
// handed to Defer rather than started: until Defer runs it there is no
// spare, one is coming (SpareComing) and AwaitSpare waits for it (at most
// its bound); once run, the spare pre-forks. ReleaseSpare waits for a
// start that is held, and one that runs meanwhile starts nothing.
func TestSpareRefillHeld(t *testing.T) {
	defer shim.ReleaseSpare()
	shim.ReleaseSpare() // none left by an earlier test
	y := newCtr(t, "true", nil)
	sp, _ := spareFor(t, y, nil)
	held := make(chan func(), 4)
	sp.Defer = func(f func()) { held <- f }
	nextHeld := func() func() {
		t.Helper()
		select {
		case f := <-held:
			return f
		case <-time.After(20 * time.Second):
			t.Fatal("the next spare's start was not handed to Defer")
			return nil
		}
	}
	runWarm := func() {
		t.Helper()
		w := newCtr(t, "true", nil)
		w.opts.WarmSpare, w.opts.Spare, w.opts.Env = true, sp, y.opts.Env
		c := w.spawn()
		if _, err := c.Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if e := wait(t, c); e.Code != 0 {
			t.Fatalf("exit %+v", e)
		}
	}

	runWarm()
	start := nextHeld()
	time.Sleep(100 * time.Millisecond)
	if id := shim.SpareID(); id != "" || !shim.SpareComing() || len(spareShims(t)) != 0 {
		t.Fatalf("while held: spare id %q, coming %v, spare shims %v; want none, true, none", id, shim.SpareComing(), spareShims(t))
	}
	t0 := time.Now()
	shim.AwaitSpare(50 * time.Millisecond)
	if d := time.Since(t0); d < 50*time.Millisecond {
		t.Errorf("AwaitSpare returned after %v with the spare held, before its bound", d)
	}
	go start()
	shim.AwaitSpare(20 * time.Second)
	waitFor(t, "the spare's pre-forked init", func() bool {
		id := shim.SpareID()
		return id == y.id && statePid(filepath.Join(sp.RuntimeRoot, id)) != 0
	})
	if shim.SpareComing() {
		t.Error("a spare is there and another still coming")
	}

	// The spare taken, the next start held; ReleaseSpare meanwhile. (The
	// container's shim was a spare too: started without a container id.)
	runWarm()
	start = nextHeld()
	before := spareShims(t)
	released := make(chan struct{})
	go func() { shim.ReleaseSpare(); close(released) }()
	select {
	case <-released:
		t.Fatal("ReleaseSpare did not wait for the held start")
	case <-time.After(100 * time.Millisecond):
	}
	start()
	select {
	case <-released:
	case <-time.After(20 * time.Second):
		t.Fatal("ReleaseSpare still waiting after the held start ran")
	}
	var started []int
	for _, pid := range spareShims(t) {
		if !slices.Contains(before, pid) {
			started = append(started, pid)
		}
	}
	if id := shim.SpareID(); id != "" || shim.SpareComing() || len(started) != 0 {
		t.Errorf("after ReleaseSpare: spare id %q, coming %v, spare shims started %v", id, shim.SpareComing(), started)
	}

	// A held start that runs while the daemon stops (SparePrefork.Stopping)
	// starts nothing either.
	var stopping atomic.Bool
	sp.Stopping = stopping.Load
	runWarm()
	start = nextHeld()
	before = spareShims(t)
	stopping.Store(true)
	start()
	started = nil
	for _, pid := range spareShims(t) {
		if !slices.Contains(before, pid) {
			started = append(started, pid)
		}
	}
	if id := shim.SpareID(); id != "" || shim.SpareComing() || len(started) != 0 {
		t.Errorf("held start run while stopping: spare id %q, coming %v, spare shims started %v", id, shim.SpareComing(), started)
	}
}
