// Package bench holds the start-up benchmarks that compare berth-runtime
// with runc (see docs/benchmarks.md): a Go benchmark, BenchmarkRunTrue in
// runtime_test.go, and bench/compare.sh, which runs the runtimes
// interleaved and prints a Markdown table. This file has the pieces both
// use: building a /bin/true bundle and timing one run of a command.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultBusybox is where Debian's busybox-static puts its binary.
const DefaultBusybox = "/bin/busybox"

// MakeBundle creates an OCI bundle in dir whose process is /bin/true.
// The root filesystem holds only a copy of busybox (which must be
// statically linked) and a /bin/true symlink to it. config.json comes from
// `<specTool> spec`, run in dir, and is then edited so that process.args is
// ["/bin/true"] and there is no terminal. It returns the rootfs path.
func MakeBundle(dir, busybox, specTool string) (string, error) {
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		return "", err
	}
	if err := CopyFile(busybox, filepath.Join(rootfs, "bin", "busybox"), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", "true")); err != nil {
		return "", err
	}
	cfgPath := filepath.Join(dir, "config.json")
	// `spec` refuses to overwrite an existing config.json.
	if err := os.Remove(cfgPath); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	cmd := exec.Command(specTool, "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s spec: %v: %s", specTool, err, bytes.TrimSpace(out))
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return "", err
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return "", fmt.Errorf("parse %s: %w", cfgPath, err)
	}
	if spec.Process == nil {
		spec.Process = &specs.Process{Cwd: "/"}
	}
	spec.Process.Args = []string{"/bin/true"}
	spec.Process.Terminal = false
	if spec.Root == nil {
		spec.Root = &specs.Root{}
	}
	spec.Root.Path = "rootfs"
	out, err := json.MarshalIndent(&spec, "", "\t")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(cfgPath, append(out, '\n'), 0o644); err != nil {
		return "", err
	}
	return rootfs, nil
}

// CopyFile copies src to dst with the given mode, through the ordinary
// write path. The benchmarks run copies of both runtimes made this way:
// the resident size of a binary's text depends on how its pages got into
// the page cache (on this host a file fresh from the Go linker, which
// writes through mmap, mapped about 800 KiB more than a copy of it), so
// copying both puts berth-runtime and runc on the same footing.
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Result is one timed run of a command.
type Result struct {
	Wall time.Duration
	// MaxRSSKiB is ru_maxrss from wait4 for the command: the largest
	// resident set of the process itself or of any descendant it waited
	// for (for a runtime that is its own re-executed init and the
	// container process), in KiB.
	MaxRSSKiB int64
	// LauncherRSSKiB is the high-water mark of the launching process's
	// address space (VmHWM), read just before the fork. Linux folds the
	// pre-exec address space's high-water mark into the child's
	// ru_maxrss, and Go starts children with vfork, so the child runs on
	// the launcher's address space until it execs: MaxRSSKiB is about
	// this much at least (the launcher's resident size can drop a little
	// between this reading and the exec), and a MaxRSSKiB close to it
	// only says that the command's own peak is at most that much.
	LauncherRSSKiB int64
}

// RunOnce runs argv with stdin and stdout on /dev/null and reports its wall
// time, from just before fork to just after wait, and its peak RSS. A
// non-zero exit is an error that carries the command's stderr.
func RunOnce(argv []string) (Result, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	launcher, err := selfHWM()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return Result{}, fmt.Errorf("%q: %v: %s", argv, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return Result{Wall: wall, MaxRSSKiB: rss, LauncherRSSKiB: launcher}, nil
}

// selfHWM returns VmHWM from /proc/self/status, in KiB.
func selfHWM() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// Median returns the median of xs (the mean of the two middle values when
// len(xs) is even), or NaN for an empty slice. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
