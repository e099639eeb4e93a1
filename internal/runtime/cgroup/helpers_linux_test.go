package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// helperEnv makes the test binary act as a helper process instead of
// running tests (see TestMain).
const helperEnv = "BERTH_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
	case "alloc":
		// Wait for the go-ahead on stdin (so the parent can move us into
		// the cgroup first), then touch memory until the OOM killer ends us.
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		var hog [][]byte
		for i := 0; i < 4096; i++ { // 4 GiB at most, then give up
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			hog = append(hog, b)
		}
		fmt.Println("survived", len(hog))
		os.Exit(3)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

var nameCleaner = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// testParent returns a unique absolute cgroup parent named after the test and
// registers a cleanup that removes it from every hierarchy. Register it
// before anything that lives below it, so it is cleaned up last.
func testParent(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	name := fmt.Sprintf("/berth-test-%s-%d", nameCleaner.ReplaceAllString(t.Name(), "_"), os.Getpid())
	t.Cleanup(func() { removeEverywhere(t, name) })
	return name
}

// hierarchyRoots lists the mount points of every cgroup hierarchy.
func hierarchyRoots(t *testing.T) []string {
	t.Helper()
	if Mode() == ModeV2 {
		return []string{cgroupRoot}
	}
	entries, err := os.ReadDir(cgroupRoot)
	if err != nil {
		t.Fatalf("read %s: %v", cgroupRoot, err)
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(cgroupRoot, e.Name())
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

// removeEverywhere removes the cgroup inner (absolute) from every hierarchy.
func removeEverywhere(t *testing.T, inner string) {
	t.Helper()
	for _, root := range hierarchyRoots(t) {
		removeDir(t, filepath.Join(root, inner))
	}
}

func removeDir(t *testing.T, dir string) {
	t.Helper()
	if err := cgroups.RemovePath(dir); err != nil {
		t.Errorf("cleanup: remove %s: %v", dir, err)
	}
}

// newManager calls New and registers a cleanup that thaws the cgroup, kills
// whatever is left in it and destroys it.
func newManager(t *testing.T, path, id string, r *specs.LinuxResources) Manager {
	t.Helper()
	m, err := New(path, id, r)
	if err != nil {
		t.Fatalf("New(%q, %q): %v", path, id, err)
	}
	t.Cleanup(func() { teardown(t, m) })
	return m
}

func teardown(t *testing.T, m Manager) {
	t.Helper()
	_ = m.Thaw()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pids, err := m.Pids()
		if err != nil || len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("cleanup: destroy: %v", err)
	}
}

// proc is a child process started by a test.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	done  chan struct{}
	err   error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs name with args; a cleanup kills and reaps it. Register
// newManager before start, so the process is killed before its cgroup is
// destroyed.
func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	// Own process group, so the cleanup also reaches grandchildren; and do
	// not let them keep Wait blocked through the inherited output pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("cleanup: pid %d did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// wait waits for the process to exit.
func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("pid %d still running after %s; output: %s", p.pid(), timeout, p.out.String())
	}
}

// waitOutput waits until the process has printed want.
func (p *proc) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.out.String(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q in the output of pid %d within %s; got: %q", want, p.pid(), timeout, p.out.String())
}

func readFile(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func readUint(t *testing.T, dir, file string) uint64 {
	t.Helper()
	s := readFile(t, dir, file)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s/%s: %q is not a number", dir, file, s)
	}
	return v
}

// procCgroups parses /proc/<pid>/cgroup into hierarchy key -> path, where
// the key is the controller list ("memory", "name=systemd") or "" for v2.
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
