package shim_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// prepareOpts are PrepareOpts matching x's container.
func (x *ctr) prepareOpts(t *testing.T) shim.PrepareOpts {
	b, err := os.ReadFile(filepath.Join(x.opts.Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return shim.PrepareOpts{
		Binary: x.opts.Binary, ID: x.id, RuntimeRoot: x.opts.RuntimeRoot, Env: x.opts.Env,
		CgroupsPath: s.Linux.CgroupsPath, Namespaces: s.Linux.Namespaces, Terminal: s.Process.Terminal,
	}
}

// kidsOf returns the pre-forked container inits of shim pid: its
// children that run the container init (berth-runtime init). Other
// children are not counted: the Go runtime's probe for CLONE_PIDFD, made
// at the shim's first process start just before the init's clone, is a
// child of the shim too (running, then a zombie until reaped), and so is
// the init's clone before its exec.
func kidsOf(pid int) []int {
	var kids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(p) != pid {
			continue
		}
		if cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); strings.HasPrefix(string(cmd), "berth-runtime\x00init\x00") {
			kids = append(kids, p)
		}
	}
	return kids
}

// waitPreforked waits until the prepared shim has its pre-forked init (a
// child) and returns the init's pid.
func waitPreforked(t *testing.T, shimPid int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if kids := kidsOf(shimPid); len(kids) == 1 {
			return kids[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("shim %d pre-forked no init", shimPid)
	return 0
}

// TestPrepareUsesPreforkedInit: a shim prepared for the container creates
// it from the init it pre-forked (the shim reports it, and the program is
// pid 1 of its own pid namespace); the prepared shim is the container's.
func TestPrepareUsesPreforkedInit(t *testing.T) {
	x := newCtr(t, `echo "pid=$$"`, nil)
	p, err := shim.Prepare(x.prepareOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	shimPid := p.ShimPid()
	initPid := waitPreforked(t, shimPid)
	x.opts.Prepared = p
	c := x.spawn()
	if !c.Preforked() {
		t.Error("the container was not created from the pre-forked init")
	}
	if c.ShimPid() != shimPid {
		t.Errorf("shim %d is not the prepared one (%d)", c.ShimPid(), shimPid)
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
		t.Errorf("container pid %d, pre-forked init %d", pid, initPid)
	}
	if stdout, _ := demux(t, out); stdout != "pid=1\n" {
		t.Errorf("output %q", stdout)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Errorf("exit %+v", e)
	}
}

// TestPrepareMismatchFallsBack: a prepared shim whose pre-forked init does
// not fit the configuration (other namespaces, another terminal setting)
// still creates the container, the ordinary way; one prepared for another
// container is let go by Spawn. Nothing of the pre-forked inits is left
// (the cleanup checks runtime state, cgroups and shims).
func TestPrepareMismatchFallsBack(t *testing.T) {
	for _, tc := range []string{"namespaces", "terminal", "id"} {
		t.Run(tc, func(t *testing.T) {
			x := newCtr(t, `echo ok`, nil)
			po := x.prepareOpts(t)
			var other *ctr
			switch tc {
			case "namespaces":
				var nss []specs.LinuxNamespace
				for _, ns := range po.Namespaces {
					if ns.Type != specs.UTSNamespace {
						nss = append(nss, ns)
					}
				}
				po.Namespaces = nss
			case "terminal":
				po.Terminal = true
			case "id":
				other = newCtr(t, "true", nil)
				po = other.prepareOpts(t)
				po.RuntimeRoot = x.opts.RuntimeRoot
			}
			p, err := shim.Prepare(po)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Release()
			shimPid := p.ShimPid()
			initPid := waitPreforked(t, shimPid)
			x.opts.Prepared = p
			c := x.spawn()
			if c.Preforked() {
				t.Error("a pre-forked init that does not fit was used")
			}
			// The mismatched init is gone (killed and reaped by its
			// shim at create, or with its shim).
			waitGone(t, initPid)
			if tc == "id" {
				waitGone(t, shimPid)
				waitGone(t, initPid)
				if c.ShimPid() == shimPid {
					t.Error("the shim prepared for another container was used")
				}
			}
			if stdout := startOutput(t, c); stdout != "ok\n" {
				t.Errorf("output %q", stdout)
			}
			if e := wait(t, c); e.Code != 0 {
				t.Errorf("exit %+v", e)
			}
			if other != nil {
				if left, _ := filepath.Glob("/sys/fs/cgroup/*" + other.cgroup); len(left) > 0 {
					t.Errorf("cgroups of the released init left: %v", left)
				}
			}
		})
	}
}

// prepareHelperEnv makes the test binary a "daemon" that prepares a shim
// and exits without releasing it (TestPrepareDaemonGone).
const prepareHelperEnv = "BERTH_SHIM_TEST_PREPARE"

func prepareHelper() int {
	var o shim.PrepareOpts
	if err := json.Unmarshal([]byte(os.Getenv(prepareHelperEnv)), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p, err := shim.Prepare(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pid := p.ShimPid()
	// Exit only once the init is pre-forked.
	for i := 0; i < 4000 && len(kidsOf(pid)) == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	kids := kidsOf(pid)
	if len(kids) != 1 {
		fmt.Fprintln(os.Stderr, "no pre-forked init")
		return 1
	}
	fmt.Println(pid, kids[0])
	// Unreleased, and not collected either: the finalizer of its boot
	// pipe would close it, and the shim would release the init as soon
	// as it pre-forked it.
	goruntime.KeepAlive(p)
	return 0
}

// TestPrepareDaemonGone: when the daemon that prepared a shim goes away
// (exits, crashes) before using it, the shim releases its pre-forked init
// and exits: no process, runtime state or cgroup is left. Release does the
// same for a daemon that changes its mind.
func TestPrepareDaemonGone(t *testing.T) {
	x := newCtr(t, "true", nil)
	b, _ := json.Marshal(x.prepareOpts(t))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), prepareHelperEnv+"="+string(b))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("helper: %v %s %s", err, out, stderr)
	}
	var shimPid, initPid int
	if _, err := fmt.Sscan(string(out), &shimPid, &initPid); err != nil {
		t.Fatalf("helper said %q", out)
	}
	waitGone(t, initPid)
	waitGone(t, shimPid)
	// x.cleanup checks runtime root, cgroups, shims.

	y := newCtr(t, "true", nil)
	p, err := shim.Prepare(y.prepareOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	shimPid = p.ShimPid()
	initPid = waitPreforked(t, shimPid)
	p.Release()
	if alive(shimPid) || alive(initPid) {
		t.Errorf("after Release: shim alive %v, init alive %v", alive(shimPid), alive(initPid))
	}
}
