package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/fixture"
)

// BenchmarkRunTrue times one full `run` of a container whose process is
// /bin/true: berth-runtime, runc, and the kernel floor (unshare + chroot
// with the same namespaces). Each iteration is one complete run, from fork
// of the runtime to its exit, container deleted.
//
// There are no Test functions in this package, so `go test ./bench/`
// without -bench does nothing; all setup (building berth-runtime, the
// bundle) happens inside the benchmark. It needs root, runc and a static
// busybox, and skips otherwise.
//
// Environment: BERTH_RUNTIME=path uses a prebuilt berth-runtime instead of
// building one; RUNC=path (default /usr/bin/runc); BUSYBOX=path (default
// /bin/busybox).
//
// The sub-benchmarks run one after the other, not interleaved; for a
// side-by-side comparison that noise hits equally use bench/compare.sh.
//
// Besides ns/op it reports median-ms (median wall time of one run),
// peak-rss-KiB (median over the iterations of each run's ru_maxrss) and
// launcher-rss-KiB, the benchmark process's own peak RSS, below which
// peak-rss-KiB cannot go by much (see Result): a peak-rss-KiB about equal
// to it means "at most this much".
func BenchmarkRunTrue(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create containers")
	}
	runc := envOr("RUNC", "/usr/bin/runc")
	busybox := envOr("BUSYBOX", DefaultBusybox)
	for _, p := range []string{runc, busybox} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("missing %s: %v", p, err)
		}
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		b.Skip("unshare not found")
	}

	tmp := b.TempDir()
	berthSrc := os.Getenv("BERTH_RUNTIME")
	if berthSrc == "" {
		berthSrc = buildBerth(b, tmp)
	}
	// Run copies of both runtimes made the same way (see CopyFile).
	bin := filepath.Join(tmp, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		b.Fatal(err)
	}
	berth, runcCopy := filepath.Join(bin, "berth-runtime"), filepath.Join(bin, "runc")
	copies := map[string]string{berthSrc: berth, runc: runcCopy}
	// berth-runtime starts the container init binary found beside it.
	if initSrc := filepath.Join(filepath.Dir(berthSrc), "berth-runtime-init"); fileExists(initSrc) {
		copies[initSrc] = filepath.Join(bin, "berth-runtime-init")
	}
	for src, dst := range copies {
		if err := CopyFile(src, dst, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	bundle := filepath.Join(tmp, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		b.Fatal(err)
	}
	rootfs, err := MakeBundle(bundle, busybox, berth)
	if err != nil {
		b.Fatal(err)
	}

	runtimes := []struct {
		name, bin string
	}{{"berth", berth}, {"runc", runcCopy}}
	for _, rt := range runtimes {
		b.Run(rt.name, func(b *testing.B) {
			root := b.TempDir()
			b.Cleanup(func() { deleteAll(b, rt.bin, root) })
			// Every iteration gets its own container id.
			i := 0
			measure(b, func() []string {
				i++
				return []string{rt.bin, "--root", root, "run", "-b", bundle, fmt.Sprintf("bench-%s-%d", rt.name, i)}
			})
		})
	}
	b.Run("unshare", func(b *testing.B) {
		argv := []string{unshare, "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "chroot", rootfs, "/bin/true"}
		measure(b, func() []string { return argv })
	})
}

// measure runs the command that next returns once per iteration and
// reports the median wall time and median peak RSS as custom metrics.
func measure(b *testing.B, next func() []string) {
	var ms, rss, launcher []float64
	for b.Loop() {
		r, err := RunOnce(next())
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, float64(r.Wall.Microseconds())/1000)
		rss = append(rss, float64(r.MaxRSSKiB))
		launcher = append(launcher, float64(r.LauncherRSSKiB))
	}
	b.ReportMetric(Median(ms), "median-ms")
	b.ReportMetric(Median(rss), "peak-rss-KiB")
	b.ReportMetric(Median(launcher), "launcher-rss-KiB")
}

// buildBerth builds cmd/berth-runtime and cmd/berth-runtime-init from this
// module into dir and returns the path of berth-runtime.
func buildBerth(b *testing.B, dir string) string {
	b.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("go tool not found and BERTH_RUNTIME not set")
	}
	out := filepath.Join(dir, "build")
	if err := os.Mkdir(out, 0o755); err != nil {
		b.Fatal(err)
	}
	args := append([]string{"build"}, fixture.RuntimeBuildArgs...)
	cmd := exec.Command(goBin, append(args, "-o", out+"/", "github.com/berth-dev/berth/cmd/berth-runtime", "github.com/berth-dev/berth/cmd/berth-runtime-init")...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build berth-runtime: %v\n%s", err, msg)
	}
	return filepath.Join(out, "berth-runtime")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// deleteAll force-deletes every container left in a state root, so that an
// aborted benchmark leaves nothing behind.
func deleteAll(b *testing.B, bin, root string) {
	out, err := exec.Command(bin, "--root", root, "list", "-q").Output()
	if err != nil {
		return
	}
	for _, id := range strings.Fields(string(out)) {
		if msg, err := exec.Command(bin, "--root", root, "delete", "-f", id).CombinedOutput(); err != nil {
			b.Logf("%s delete -f %s: %v: %s", bin, id, err, msg)
		}
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
