package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/fixture"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// runtimeBinary builds cmd/berth-runtime once per test process.
func runtimeBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-runtime-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "berth-runtime")
		// berth-runtime and, beside it, the container init it starts.
		args := append([]string{"build"}, fixture.RuntimeBuildArgs...)
		args = append(args, "-o", dir+"/", "github.com/berth-dev/berth/cmd/berth-runtime", "github.com/berth-dev/berth/cmd/berth-runtime-init")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// rt drives one runtime binary (berth-runtime, or runc for differential
// tests) on a state root private to the test.
type rt struct {
	t    testing.TB
	bin  string
	root string
	ids  []string
}

func newRT(t testing.TB) *rt {
	t.Helper()
	fixture.RequireRoot(t)
	return newRTWith(t, runtimeBinary(t))
}

func newRTWith(t testing.TB, bin string) *rt {
	r := &rt{t: t, bin: bin, root: t.TempDir()}
	t.Cleanup(r.cleanup)
	return r
}

// cleanup force-deletes every container the test created, then checks the
// runtime left nothing behind in its root.
func (r *rt) cleanup() {
	for _, id := range r.ids {
		_, _, _ = r.exec(nil, "delete", "-f", id)
	}
	entries, _ := os.ReadDir(r.root)
	for _, e := range entries {
		r.t.Errorf("state root not empty after cleanup: %s", e.Name())
	}
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// id returns a container id unique to this test and run, and registers it
// for cleanup.
func (r *rt) id(suffix string) string {
	name := unsafeChars.ReplaceAllString(r.t.Name(), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	id := fmt.Sprintf("bt-%s-%s-%d", strings.Trim(name, "-"), suffix, time.Now().UnixNano()%1e9)
	r.ids = append(r.ids, id)
	return id
}

// exec runs the runtime with args and returns stdout, stderr and exit code.
func (r *rt) exec(stdin []byte, args ...string) (string, string, int) {
	r.t.Helper()
	cmd := exec.Command(r.bin, append([]string{"--root", r.root}, args...)...)
	// Files, not pipes: a detached container keeps its stdio open after
	// the runtime exits, and waiting for a pipe's EOF would hang.
	outF, errF := tempFile(r.t), tempFile(r.t)
	cmd.Stdout, cmd.Stderr = outF, errF
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	out, errb := readBack(outF), readBack(errF)
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			r.t.Fatalf("%s %v: %v", r.bin, args, err)
		}
		code = ee.ExitCode()
	}
	return out, errb, code
}

func tempFile(t testing.TB) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readBack(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// must runs the runtime and fails the test on a non-zero exit.
func (r *rt) must(args ...string) string {
	r.t.Helper()
	out, errs, code := r.exec(nil, args...)
	if code != 0 {
		r.t.Fatalf("%s %v: exit %d\nstdout: %s\nstderr: %s", filepath.Base(r.bin), args, code, out, errs)
	}
	return out
}

// run runs a bundle in the foreground and returns its output and status.
func (r *rt) run(bundle string) (string, string, int) {
	r.t.Helper()
	return r.exec(nil, "run", "-b", bundle, r.id("run"))
}

func (r *rt) state(id string) specs.State {
	r.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(r.must("state", id)), &st); err != nil {
		r.t.Fatalf("state %s: %v", id, err)
	}
	return st
}

// waitStatus polls state until the container reaches status or the
// deadline passes.
func (r *rt) waitStatus(id string, status specs.ContainerState) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.state(id)
		if st.Status == status {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s: status %s, want %s", id, st.Status, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shBundle returns a bundle running `sh -c script`, with a unique cgroup
// path, after mutate.
func shBundle(t testing.TB, script string, mutate func(*specs.Spec)) string {
	return fixture.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", script}
		s.Linux.CgroupsPath = "/berth-test-" + unsafeChars.ReplaceAllString(t.Name(), "-") + fmt.Sprint(time.Now().UnixNano()%1e9)
		if mutate != nil {
			mutate(s)
		}
	})
}

// cgroupLeft reports cgroup directories left under the test's cgroup path
// in any hierarchy.
func cgroupLeft(t testing.TB, cgroupsPath string) []string {
	var left []string
	matches, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupsPath)
	left = append(left, matches...)
	return left
}

func bundleSpec(t testing.TB, bundle string) *specs.Spec {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// fixtureProbeBundle returns a bundle running args (usually /probe ...).
func fixtureProbeBundle(t testing.TB, args []string, mutate func(*specs.Spec)) string {
	return shBundle(t, "", func(s *specs.Spec) {
		s.Process.Args = args
		if mutate != nil {
			mutate(s)
		}
	})
}

// cmdWithStdout prepares a runtime command whose container output goes to
// f (for detached containers that outlive the command).
func (r *rt) cmdWithStdout(f *os.File, args ...string) *exec.Cmd {
	cmd := exec.Command(r.bin, append([]string{"--root", r.root}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd
}

func itoa(i int) string { return fmt.Sprint(i) }

// waitFile waits until path contains want.
func waitFile(t testing.TB, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q; has %q", path, want, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func assertExeReadonly(t testing.TB, pid int) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(fmt.Sprintf("/proc/%d/exe", pid), &st); err != nil {
		t.Fatalf("statfs exe: %v", err)
	}
	if st.Flags&unix.ST_RDONLY == 0 {
		t.Fatalf("init's executable is on a writable mount (flags %#x)", st.Flags)
	}
	if _, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_WRONLY, 0); err == nil {
		t.Fatal("opened the init's executable for writing")
	}
}
