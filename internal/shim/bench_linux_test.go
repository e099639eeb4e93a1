package shim_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/fixture"
	"github.com/berth-dev/berth/internal/logger"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// copyBinaries copies berth-shim and berth-runtime-init to a fresh
// directory: a binary fresh from the Go linker (written through mmap) maps
// with a larger resident set than a plain copy (docs/benchmarks.md).
func copyBinaries(t testing.TB) string {
	t.Helper()
	src := filepath.Dir(shimBinary(t))
	dir := t.TempDir()
	for _, name := range []string{shim.BinaryName, runtime.InitBinaryName} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, shim.BinaryName)
}

// BenchmarkRunTrue is the shim's share of `docker run --rm IMAGE true`:
// Spawn (shim start + runtime create) → Start → Wait → Shutdown of a
// container running /bin/true, logged with json-file. It reports the
// median of the whole sequence and of each step.
//
// Sub-benchmarks: "tmpdir" keeps the state directories (shim, runtime,
// log) in the test's temporary directory (ext4 here, where creating a file
// costs about a millisecond), "tmpfs" in /dev/shm, as on a host whose /run
// is a tmpfs.
func BenchmarkRunTrue(b *testing.B) {
	fixture.RequireRoot(b)
	b.Run("tmpdir", func(b *testing.B) { benchRunTrue(b, b.TempDir()) })
	// tmpfs-warm-spare: as tmpfs, with SpawnOpts.WarmSpare.
	for _, warm := range []bool{false, true} {
		name := "tmpfs"
		if warm {
			name = "tmpfs-warm-spare"
		}
		b.Run(name, func(b *testing.B) {
			dir, err := os.MkdirTemp("/dev/shm", "berth-shim-bench-")
			if err != nil {
				b.Skip(err)
			}
			defer os.RemoveAll(dir)
			defer shim.ReleaseSpare()
			benchRunTrue(b, dir, warm)
		})
	}
}

func benchRunTrue(b *testing.B, dir string, warm ...bool) {
	bin := copyBinaries(b)
	cg := fmt.Sprintf("/berth-shim-bench-%d", time.Now().UnixNano()%1e9)
	bundle := fixture.Bundle(b, func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/true"}
		s.Linux.CgroupsPath = cg
	})
	root := filepath.Join(dir, "runtime")
	var total, spawn, start, wait, shutdown []time.Duration
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano()%1e9, i)
		o := shim.SpawnOpts{
			Binary: bin, ID: id, Bundle: bundle, RuntimeRoot: root,
			StateDir:  filepath.Join(dir, "shims", id),
			Log:       logger.Config{Type: "json-file", Dir: filepath.Join(dir, "logs", id), ContainerID: id},
			WarmSpare: len(warm) > 0 && warm[0],
		}
		if os.Getenv("BERTH_TRACE") != "" {
			o.Env = []string{"BERTH_TRACE=1"}
		}
		t0 := time.Now()
		c, err := shim.Spawn(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		e, err := c.Wait(ctx)
		if err != nil || e.Code != 0 {
			b.Fatalf("wait: %+v %v", e, err)
		}
		t3 := time.Now()
		if err := c.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		if os.Getenv("BERTH_TRACE") != "" {
			log, _ := os.ReadFile(filepath.Join(o.StateDir, "shim.log"))
			fmt.Fprintf(os.Stderr, "%s", log)
		}
		total = append(total, t4.Sub(t0))
		spawn, start, wait, shutdown = append(spawn, t1.Sub(t0)), append(start, t2.Sub(t1)), append(wait, t3.Sub(t2)), append(shutdown, t4.Sub(t3))
	}
	b.StopTimer()
	b.ReportMetric(medianMS(total), "median-ms")
	b.ReportMetric(medianMS(spawn), "spawn-ms")
	b.ReportMetric(medianMS(start), "start-ms")
	b.ReportMetric(medianMS(wait), "wait-ms")
	b.ReportMetric(medianMS(shutdown), "shutdown-ms")
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		b.Errorf("runtime state left: %s", entries[0].Name())
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*" + cg); len(left) > 0 {
		b.Errorf("cgroups left: %v", left)
	}
}

func medianMS(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

// memOf reads the memory figures of pid, in KiB.
func memOf(t testing.TB, pid int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, f := range []string{"status", "smaps_rollup"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			var n int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &n); err == nil {
				out[k] = n
			}
		}
	}
	return out
}

// TestIdleRSS measures an idle shim serving a running container, right
// after start and once it trimmed itself.
func TestIdleRSS(t *testing.T) {
	x := newCtr(t, "sleep 1000", nil)
	x.opts.Binary = copyBinaries(t)
	c := x.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	before := memOf(t, x.shimPid)
	time.Sleep(1500 * time.Millisecond)
	after := memOf(t, x.shimPid)
	// One attach and exec, then idle again.
	if err := c.Exec(ctx(t), "e", &specs.Process{Args: []string{"true"}, Cwd: "/"}, shim.AttachOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecStart(ctx(t), "e", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecWait(ctx(t), "e"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	later := memOf(t, x.shimPid)
	for _, m := range []struct {
		name string
		v    map[string]int
	}{{"after start", before}, {"idle (trimmed)", after}, {"idle after an exec", later}} {
		t.Logf("%-20s VmRSS %5d KiB  RssAnon %5d  RssFile %5d  Pss %5d  VmHWM %5d  Threads %d",
			m.name, m.v["VmRSS"], m.v["RssAnon"], m.v["RssFile"], m.v["Pss"], m.v["VmHWM"], m.v["Threads"])
	}
	if os.Getenv("BERTH_TRACE") != "" {
		b, _ := os.ReadFile(filepath.Join(x.opts.StateDir, "shim.log"))
		t.Logf("shim log:\n%s", b)
	}
	if os.Getenv("BERTH_SHIM_SMAPS") != "" {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", x.shimPid))
		os.WriteFile(os.Getenv("BERTH_SHIM_SMAPS"), b, 0o644)
	}
	if after["VmRSS"] > 6*1024 {
		t.Errorf("idle shim VmRSS %d KiB", after["VmRSS"])
	}
}

// TestIdleRSSShared measures what idle shims cost together: n shims of
// one binary share its page cache, so their proportional set (Pss) is
// about their private memory plus 1/n of the binary pages they map. They
// share one runtime root, as under berthd (the seccomp filter is compiled
// once, then read from the runtime's cache).
//
// An idle shim that has served no request since start never runs the
// garbage collector (trim): its anonymous memory stays well under what a
// collection leaves (~1.75 MiB each, measured before that change).
//
// BERTH_SHIM_RSS_LONG=1 samples again at 20 s, 1 min, 2 min 10 s (after
// the runtime's forced collection, every 2 minutes once a process has
// collected) and 4 min 10 s, with shim 0 serving 40 execs after the first
// sample (enough allocation for it to collect).
func TestIdleRSSShared(t *testing.T) {
	const n = 8
	bin := copyBinaries(t)
	root := filepath.Join(t.TempDir(), "rt")
	t.Cleanup(func() { // after every container's cleanup
		if entries, _ := os.ReadDir(root); len(entries) > 0 {
			t.Errorf("runtime root not empty after cleanup: %v", entries[0].Name())
		}
	})
	var pids []int
	var cs []*shim.Client
	for i := 0; i < n; i++ {
		x := newCtr(t, "sleep 1000", nil)
		x.opts.Binary = bin
		x.opts.RuntimeRoot, x.sharedRoot = root, true
		c := x.spawn()
		if _, err := c.Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, x.shimPid)
		cs = append(cs, c)
	}
	long := os.Getenv("BERTH_SHIM_RSS_LONG") != ""
	t0 := time.Now()
	for _, at := range []time.Duration{1500 * time.Millisecond, 20 * time.Second, time.Minute, 130 * time.Second, 250 * time.Second} {
		time.Sleep(time.Until(t0.Add(at)))
		var rss, anon, pss []int
		for _, pid := range pids {
			m := memOf(t, pid)
			rss, anon, pss = append(rss, m["VmRSS"]), append(anon, m["RssAnon"]), append(pss, m["Pss"])
		}
		t.Logf("%v: %d idle shims, per shim mean / median: VmRSS %d / %d KiB, RssAnon %d / %d KiB, Pss %d / %d KiB; shim 0: VmRSS %d KiB, RssAnon %d KiB",
			at, n, mean(rss), median(rss), mean(anon), median(anon), mean(pss), median(pss), rss[0], anon[0])
		if !long {
			if m := mean(anon); m > 1600 {
				t.Errorf("idle shims: mean RssAnon %d KiB, want at most 1600 KiB", m)
			}
			return
		}
		if at == 1500*time.Millisecond {
			for i := 0; i < 40; i++ {
				id := fmt.Sprintf("e%d", i)
				if err := cs[0].Exec(ctx(t), id, &specs.Process{Args: []string{"true"}, Cwd: "/"}, shim.AttachOpts{}); err != nil {
					t.Fatal(err)
				}
				if _, err := cs[0].ExecStart(ctx(t), id, true); err != nil {
					t.Fatal(err)
				}
				if _, err := cs[0].ExecWait(ctx(t), id); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func mean(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s / len(v)
}

func median(v []int) int {
	s := append([]int(nil), v...)
	sort.Ints(s)
	return s[len(s)/2]
}
