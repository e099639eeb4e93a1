package shim_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/shim"
)

// newRuncCtr is newCtr with the container run by runc (the external OCI
// runtime path) under a private runc root.
func newRuncCtr(t *testing.T, script string, mutate func(*specs.Spec)) (*ctr, string) {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (scripts/deps.sh installs it)")
	}
	x := newCtr(t, script, mutate)
	root := filepath.Join(t.TempDir(), "runc")
	x.opts.OCIRuntime = &shim.OCIRuntime{Name: "runc", Path: runc, Root: root}
	return x, root
}

func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestRuncExitAndReap: the init created by runc is the shim's child (the
// shim is a subreaper), its exit status is recorded, and runc's state and
// the cgroups are gone afterwards.
func TestRuncExitAndReap(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
	}{{"exit 0", 0}, {"exit 3", 3}, {"exit 255", 255}} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			x, root := newRuncCtr(t, tc.script, nil)
			c := x.spawn()
			st, err := c.State(ctx(t))
			if err != nil || st.Status != shim.StatusCreated || st.Pid <= 0 {
				t.Fatalf("state before start: %+v, %v", st, err)
			}
			if pp := ppidOf(st.Pid); pp != x.shimPid {
				t.Fatalf("init %d has parent %d, want the shim %d", st.Pid, pp, x.shimPid)
			}
			if _, err := os.Stat(filepath.Join(root, x.id, "state.json")); err != nil {
				t.Fatalf("runc state: %v", err)
			}
			if _, err := c.Start(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if e := wait(t, c); e.Code != tc.code || e.Error != "" {
				t.Fatalf("exit %+v, want %d", e, tc.code)
			}
			if err := c.Shutdown(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(root, x.id)); !os.IsNotExist(err) {
				t.Fatalf("runc state left: %v", err)
			}
			if left, _ := filepath.Glob("/sys/fs/cgroup/*" + x.cgroup); len(left) > 0 {
				t.Fatalf("cgroups left: %v", left)
			}
		})
	}
}

// TestRuncKillExecs: kill goes through runc, execs (plain, stdin, tty)
// run and are reaped by the shim: no zombie, no runc process and no
// descriptor is left after many of them.
func TestRuncKillExecs(t *testing.T) {
	x, _ := newRuncCtr(t, "trap 'exit 9' TERM; while :; do sleep 0.05; done", nil)
	c := x.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	run := func(i int, script string, want int) {
		id := fmt.Sprint("e", i)
		p := &specs.Process{Args: []string{"sh", "-c", script}, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"}, Terminal: i%3 == 2}
		if err := c.Exec(ctx(t), id, p, shim.AttachOpts{Stdin: i%2 == 0, Stdout: true, Stderr: true}); err != nil {
			t.Fatal(err)
		}
		conn, err := c.ExecStart(ctx(t), id, false)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			closeWrite(t, conn)
		}
		out := readAll(t, conn)
		conn.Close()
		if !strings.Contains(out, "hi") {
			t.Fatalf("exec %d output %q", i, out)
		}
		if code, err := c.ExecWait(ctx(t), id); err != nil || code != want {
			t.Fatalf("exec %d: %d %v, want %d", i, code, err, want)
		}
	}
	run(0, "echo hi", 0)
	before := openFDs(t, x.shimPid)
	for i := 1; i <= 9; i++ {
		run(i, "echo hi; exit "+strconv.Itoa(i), i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for childrenOf(x.shimPid) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := childrenOf(x.shimPid); n != 1 {
		t.Fatalf("shim has %d children after the execs, want 1 (the init)", n)
	}
	// The last exec's descriptors are closed once its exit was collected,
	// on the shim's own time: poll, as for the children.
	for openFDs(t, x.shimPid) > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := openFDs(t, x.shimPid); after > before {
		t.Fatalf("shim descriptors: %d before, %d after the execs", before, after)
	}
	if err := c.Kill(ctx(t), syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); e.Code != 9 {
		t.Fatalf("exit after SIGTERM: %+v", e)
	}
	if err := c.Kill(ctx(t), syscall.SIGTERM, false); err == nil {
		t.Fatal("kill of an exited container accepted")
	}
}
