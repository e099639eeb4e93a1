package shim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/fixture"
	"github.com/berth-dev/berth/internal/logger"
	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// shimBinary builds berth-shim and, beside it, berth-runtime-init, once
// per test process, static as scripts/build.sh builds them.
func shimBinary(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("BERTH_SHIM_TEST_BINDIR"); dir != "" {
		// Prebuilt berth-shim and berth-runtime-init (e.g. a profiling build).
		return filepath.Join(dir, "berth-shim")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "berth-shim-bin-")
		if buildErr != nil {
			return
		}
		args := append([]string{"build"}, fixture.RuntimeBuildArgs...)
		args = append(args, "-o", binDir+"/", "github.com/berth-dev/berth/cmd/berth-shim", "github.com/berth-dev/berth/cmd/berth-runtime-init")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "berth-shim")
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(spawnHelper())
	}
	if os.Getenv(prepareHelperEnv) != "" {
		os.Exit(prepareHelper())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// helperEnv makes the test binary act as a short-lived "daemon" that spawns
// a shim and exits (TestDaemonRestart).
const helperEnv = "BERTH_SHIM_TEST_SPAWN"

func spawnHelper() int {
	var o shim.SpawnOpts
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := shim.Spawn(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := c.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("started")
	return 0
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// ctr is one container of a test, with its shim.
type ctr struct {
	t       testing.TB
	id      string
	opts    shim.SpawnOpts
	cgroup  string
	c       *shim.Client
	shimPid int
	// sharedRoot: opts.RuntimeRoot is shared with other containers.
	sharedRoot bool
}

// newCtr prepares (without spawning) a container running `sh -c script`
// (or args when script is "") with a private runtime root, state dir, log
// dir and cgroup path, and registers its cleanup.
func newCtr(t testing.TB, script string, mutate func(*specs.Spec)) *ctr {
	t.Helper()
	fixture.RequireRoot(t)
	bin := shimBinary(t)
	name := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 30 {
		name = name[len(name)-30:]
	}
	uniq := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	x := &ctr{t: t, id: "st-" + strings.Trim(name, "-") + "-" + uniq, cgroup: "/berth-shim-test-" + name + "-" + uniq}
	bundle := fixture.Bundle(t, func(s *specs.Spec) {
		if script != "" {
			s.Process.Args = []string{"sh", "-c", script}
		}
		s.Linux.CgroupsPath = x.cgroup
		if mutate != nil {
			mutate(s)
		}
	})
	dir := t.TempDir()
	x.opts = shim.SpawnOpts{
		Binary: bin, ID: x.id, Bundle: bundle,
		StateDir:    filepath.Join(dir, "shim"),
		RuntimeRoot: filepath.Join(dir, "runtime"),
		Log:         logger.Config{Type: "json-file", Dir: filepath.Join(dir, "log"), ContainerID: x.id, ContainerName: "test"},
		IdleTimeout: -1,
	}
	if os.Getenv("BERTH_TRACE") != "" {
		x.opts.Env = []string{"BERTH_TRACE=1"}
	}
	if v, ok := os.LookupEnv("XENV"); ok {
		x.opts.Env = append(x.opts.Env, v)
	}
	t.Cleanup(x.cleanup)
	return x
}

func (x *ctr) spawn() *shim.Client {
	x.t.Helper()
	c, err := x.trySpawn()
	if err != nil {
		x.t.Fatalf("spawn: %v", err)
	}
	return c
}

func (x *ctr) trySpawn() (*shim.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := shim.Spawn(ctx, x.opts)
	if err != nil {
		return nil, err
	}
	x.c = c
	x.shimPid = c.ShimPid()
	return c, nil
}

func readPid(stateDir string) int {
	b, _ := os.ReadFile(filepath.Join(stateDir, "shim.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// cleanup shuts the shim down and checks that nothing is left: no shim
// process, no runtime state, no cgroup.
func (x *ctr) cleanup() {
	t := x.t
	if pid := readPid(x.opts.StateDir); pid != 0 && x.shimPid == 0 {
		x.shimPid = pid
	}
	if x.opts.StateDir != "" {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := (&clientDir{x.opts.StateDir}).shutdown(c); err != nil {
			t.Errorf("cleanup: shutdown: %v", err)
		}
		cancel()
	}
	if x.shimPid != 0 {
		waitGone(t, x.shimPid)
	}
	if os.Getenv("BERTH_TRACE") != "" {
		b, _ := os.ReadFile(filepath.Join(x.opts.StateDir, "shim.log"))
		t.Logf("shim log:\n%s", b)
	}
	if x.sharedRoot {
		// The test checks the root itself once every container is gone.
		if _, err := os.Lstat(filepath.Join(x.opts.RuntimeRoot, x.id)); err == nil {
			t.Errorf("runtime state of %s left after cleanup", x.id)
		}
	} else if entries, _ := os.ReadDir(x.opts.RuntimeRoot); len(entries) > 0 {
		t.Errorf("runtime root not empty after cleanup: %v", entries[0].Name())
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*" + x.cgroup); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if n := shimsOf(x.id); n > 0 {
		t.Errorf("%d berth-shim processes for %s left", n, x.id)
	}
}

type clientDir struct{ dir string }

func (d *clientDir) shutdown(ctx context.Context) error {
	c, err := shim.Connect(ctx, d.dir)
	if err != nil {
		if errdefs.Is(err, errdefs.NotFound) {
			return nil
		}
		return err
	}
	return c.Shutdown(ctx)
}

// waitGone waits for pid to disappear (the shim exits on its own after
// Shutdown; its reaper is the test process or init).
func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("process %d still alive", pid)
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// shimsOf counts living berth-shim processes serving id.
func shimsOf(id string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) >= 2 && args[0] == shim.BinaryName && args[1] == id {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			if alive(pid) {
				n++
			}
		}
	}
	return n
}

// logRecords reads the container's json-file log.
type logRecord struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

func (x *ctr) logRecords() []logRecord {
	x.t.Helper()
	b, err := os.ReadFile(filepath.Join(x.opts.Log.Dir, x.id+"-json.log"))
	if err != nil {
		x.t.Fatalf("read log: %v", err)
	}
	var out []logRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			x.t.Fatalf("log record %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func (x *ctr) logText(stream string) string {
	var sb strings.Builder
	for _, r := range x.logRecords() {
		if r.Stream == stream {
			sb.WriteString(r.Log)
		}
	}
	return sb.String()
}

// demux reads a Docker multiplexed stream to its end.
func demux(t testing.TB, r io.Reader) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	br := bufio.NewReader(r)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return o.String(), e.String()
			}
			t.Fatalf("demux header: %v", err)
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		var dst *bytes.Buffer
		switch hdr[0] {
		case 1:
			dst = &o
		case 2:
			dst = &e
		default:
			t.Fatalf("demux: stream id %d (header % x)", hdr[0], hdr)
		}
		if hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 {
			t.Fatalf("demux: header % x", hdr)
		}
		if _, err := io.CopyN(dst, br, int64(n)); err != nil {
			t.Fatalf("demux payload: %v", err)
		}
	}
}

// readAll reads conn to EOF with a deadline.
func readAll(t testing.TB, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read stream: %v (got %q)", err, b)
	}
	return string(b)
}

// readUntil reads from r until the accumulated output contains want.
func readUntil(t testing.TB, conn net.Conn, want string) string {
	return readUntilN(t, conn, want, 1)
}

// readUntilN reads from r until the accumulated output contains want n
// times.
func readUntilN(t testing.TB, conn net.Conn, want string, n int) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var acc []byte
	buf := make([]byte, 4096)
	for bytes.Count(acc, []byte(want)) < n {
		k, err := conn.Read(buf)
		acc = append(acc, buf[:k]...)
		if err != nil {
			if len(acc) > 1000 {
				acc = acc[len(acc)-1000:]
			}
			t.Fatalf("waiting for %q: %v (got ...%q)", want, err, acc)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	return string(acc)
}

func closeWrite(t testing.TB, conn net.Conn) {
	t.Helper()
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T has no CloseWrite", conn)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// startOutput attaches to c's stdout, starts c and returns what it
// writes there until its stream ends.
func startOutput(t testing.TB, c *shim.Client) string {
	t.Helper()
	out, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	stdout, _ := demux(t, out)
	return stdout
}

func wait(t testing.TB, c *shim.Client) *shim.Exit {
	t.Helper()
	e, err := c.Wait(ctx(t))
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return e
}
