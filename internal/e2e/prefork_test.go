package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// berthShimKids returns the berth-shim processes whose parent is pid, and
// their children that run the container init (berth-runtime init: a
// pre-forked init waiting for its config). Other children of a shim are
// not counted: the Go runtime's CLONE_PIDFD probe at the shim's first
// process start (running, then a zombie until reaped, just before the
// init's clone) and the init's clone before its exec.
func berthShimKids(pid int) (shims, kids []int) {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	comm := map[int]string{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Name:"); ok {
				comm[p] = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
				parent[p], _ = strconv.Atoi(strings.TrimSpace(v))
				break
			}
		}
		f.Close()
	}
	for p, pp := range parent {
		if pp == pid && comm[p] == "berth-shim" {
			shims = append(shims, p)
		}
	}
	for p, pp := range parent {
		for _, s := range shims {
			if pp != s {
				continue
			}
			if cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline")); strings.HasPrefix(string(cmd), "berth-runtime\x00init\x00") {
				kids = append(kids, p)
			}
		}
	}
	return shims, kids
}

func cgroupDirsOf(id string) []string {
	m, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + id)
	return m
}

// TestRunPreforked: with --network none (and host) the container's init is
// pre-forked by a shim prepared at create, and the container behaves as
// always: pid 1 of its own pid namespace, stdin, a terminal, exec, stop
// and a second start (prepared at start then); a container joining
// another's namespace is created the ordinary way (bridge networks are
// pre-forked too: TestSparePrefork).
func TestRunPreforked(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	run := func(stdin string, args ...string) string {
		t.Helper()
		var in *strings.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		var out, errOut string
		var code int
		if in != nil {
			out, errOut, code = d.cli(dk, in, args...)
		} else {
			out, errOut, code = d.cli(dk, nil, args...)
		}
		if code != 0 {
			t.Fatalf("docker %v: exit %d: %s %s", args, code, out, errOut)
		}
		return out
	}
	if out := run("", "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo pid=$$ $(hostname)"); !strings.HasPrefix(out, "pid=1 ") {
		t.Errorf("run: %q", out)
	}
	if out := run("from stdin\n", "run", "--rm", "-i", "--network", "none", "busybox", "cat"); out != "from stdin\n" {
		t.Errorf("run -i: %q", out)
	}
	if out := run("", "run", "--rm", "-t", "--network", "none", "busybox", "sh", "-c", "tty"); !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("run -t: %q", out)
	}
	if out := run("", "run", "--rm", "--network", "host", "--pid", "host", "busybox", "sh", "-c", "echo pid=$$"); out == "pid=1\n" || !strings.HasPrefix(out, "pid=") {
		t.Errorf("run --pid host: %q", out)
	}
	// Detached, exec, stop, start again.
	id := strings.TrimSpace(run("", "run", "-d", "--network", "none", "--name", "pf", "busybox", "sleep", "300"))
	if out := run("", "exec", "pf", "sh", "-c", "echo exec; cat /proc/1/cmdline"); out != "exec\nsleep\x00300\x00" {
		t.Errorf("exec: %q", out)
	}
	run("", "stop", "-t", "1", "pf")
	run("", "start", "pf")
	if out := run("", "exec", "pf", "cat", "/proc/1/cmdline"); out != "sleep\x00300\x00" {
		t.Errorf("exec after restart: %q", out)
	}
	run("", "rm", "-f", "pf")
	// Not served by a pre-forked init: a namespace to join.
	run("", "run", "-d", "--network", "none", "--name", "pf2", "busybox", "sleep", "300")
	if out := run("", "run", "--rm", "--network", "container:pf2", "busybox", "echo", "joined"); out != "joined\n" {
		t.Errorf("run --network container: %q", out)
	}
	run("", "rm", "-f", "pf2")
	if left := cgroupDirsOf(id); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	d.stop()
	// run --rm ×4, run -d, start again, pf2: 7 pre-forked; the joiner not.
	if n := strings.Count(d.logBuf.String(), "preforked=true"); n != 7 {
		t.Errorf("%d starts from a pre-forked init, want 7", n)
	}
	if n := strings.Count(d.logBuf.String(), "preforked=false"); n != 1 {
		t.Errorf("%d starts without a pre-forked init, want 1", n)
	}
}

// TestPreforkedReleased: a shim prepared at create holds a pre-forked init
// until the container starts; removing the container, or stopping berthd,
// lets both go with the init's cgroups and runtime state.
func TestPreforkedReleased(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	pid := d.cmd.Process.Pid
	waitPrepared := func() (shim, init int) {
		t.Helper()
		var k []int
		waitFor(t, "a prepared shim with its pre-forked init", 20*time.Second, func() bool {
			_, k = berthShimKids(pid)
			return len(k) == 1
		})
		return parentPid(k[0]), k[0]
	}
	create := func(name string) string {
		out, errOut, code := d.cli(dk, nil, "create", "--network", "none", "--name", name, "busybox", "sleep", "300")
		if code != 0 {
			t.Fatalf("create: %d %s", code, errOut)
		}
		return strings.TrimSpace(out)
	}
	id := create("c1")
	_, init := waitPrepared()
	if len(cgroupDirsOf(id)) == 0 {
		t.Error("the pre-forked init has no cgroup")
	}
	if _, errOut, code := d.cli(dk, nil, "rm", "c1"); code != 0 {
		t.Fatalf("rm: %s", errOut)
	}
	waitFor(t, "the pre-forked init to go", 10*time.Second, func() bool { return !pidAlive(init) })
	// The shim removes the cgroups once the init is reaped (a v1 rmdir
	// can meet EBUSY for a moment after the exit, and is retried).
	waitFor(t, "the pre-forked init's cgroups to go", 10*time.Second, func() bool { return len(cgroupDirsOf(id)) == 0 })

	id = create("c2")
	shimPid, init := waitPrepared()
	d.stop()
	for _, p := range []int{shimPid, init} {
		waitFor(t, "the prepared shim and its init to go with berthd", 10*time.Second, func() bool { return !pidAlive(p) })
	}
	if left := cgroupDirsOf(id); len(left) > 0 {
		t.Errorf("cgroups left after berthd stopped: %v", left)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.execRoot, "runtime")); len(ents) > 0 {
		t.Errorf("runtime state left: %v", ents[0].Name())
	}
}

// TestPreforkedCreateFails: the shim is prepared early in create; a create
// that fails (here: a name in use) leaves the shim prepared for the
// previous container alone, and releases its own when it had one.
func TestPreforkedCreateFails(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	pid := d.cmd.Process.Pid
	out, errOut, code := d.cli(dk, nil, "create", "--network", "none", "--name", "c1", "busybox", "true")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	var init int
	waitFor(t, "a prepared shim with its pre-forked init", 20*time.Second, func() bool {
		_, k := berthShimKids(pid)
		if len(k) == 1 {
			init = k[0]
		}
		return len(k) == 1
	})
	if _, errOut, code = d.cli(dk, nil, "create", "--network", "none", "--name", "c1", "busybox", "true"); code == 0 || !strings.Contains(errOut, "is already in use") {
		t.Fatalf("second create of c1: %d %q", code, errOut)
	}
	if !pidAlive(init) || len(cgroupDirsOf(id)) == 0 {
		t.Fatal("the failed create let the shim prepared for c1 go")
	}
	out, errOut, code = d.cli(dk, nil, "start", "-a", "c1")
	if code != 0 {
		t.Fatalf("start: %d %q %q", code, out, errOut)
	}
	if _, errOut, code = d.cli(dk, nil, "rm", "c1"); code != 0 {
		t.Fatalf("rm: %s", errOut)
	}
	// (The start left a warm spare with an init pre-forked for an id of
	// its own: not c1's.)
	waitFor(t, "no prepared shim or init of c1 left", 10*time.Second, func() bool {
		return !pidAlive(init) && len(cgroupDirsOf(id)) == 0
	})
}

func pidAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// TestPreforkReplacedThenStarted creates and starts containers from
// several clients at once (as `compose up` does): every create takes the
// prepared-shim slot, so the previous container's shim is let go in the
// background while that container may already be starting. Its start must
// wait for the release (its pre-forked init still holds the id's runtime
// state) instead of failing with "container with id exists".
func TestPreforkReplacedThenStarted(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for w := 0; w < 10; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := d.client.ContainerCreate(ctx, client.ContainerCreateOptions{
					Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
					HostConfig: &container.HostConfig{NetworkMode: "none"},
				})
				if err == nil {
					_, err = d.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}
