package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultProfile is Docker's default seccomp profile as berth generates it
// for amd64 (internal/container/spec, copied to testdata by the seccomp
// package's tests): ~360 syscalls, some with argument rules.
const defaultProfile = "../internal/runtime/seccomp/testdata/docker-default.json"

// BenchmarkRunTrueSeccomp times one full `berth-runtime run` of /bin/true
// with Docker's default seccomp profile, against the same bundle without
// seccomp. Each iteration runs every case once, in an order that rotates
// from one iteration to the next, so that noise on the machine hits all
// of them alike:
//
//   - none: no linux.seccomp;
//   - cold: the profile, with berth's compiled-filter cache removed before
//     the run (outside the timed part): a config never seen on the host,
//     which libseccomp compiles;
//   - warm: the profile, cache kept: the compiled program is read from
//     <root>-seccomp/<key>.bpf (one untimed run fills it);
//   - base-none, base-seccomp: the same two bundles run by the binary
//     BERTH_RUNTIME_BASE names, when set (e.g. a build from before the
//     cache, for a before/after comparison in one interleaved run);
//   - runc: runc with the profile, for reference (skipped without runc).
//
// It reports the median wall time of each case (<case>-ms) and, for the
// seccomp cases, the median over iterations of the difference with the
// same binary's "none" run of that iteration (<case>-over-none-ms), the
// most noise-resistant figure of what seccomp costs.
//
// Like BenchmarkRunTrue it builds berth-runtime unless BERTH_RUNTIME names
// one, needs root and a static busybox, and runs copies of the binaries.
func BenchmarkRunTrueSeccomp(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create containers")
	}
	busybox := envOr("BUSYBOX", DefaultBusybox)
	if _, err := os.Stat(busybox); err != nil {
		b.Skipf("missing %s: %v", busybox, err)
	}
	raw, err := os.ReadFile(defaultProfile)
	if err != nil {
		b.Fatal(err)
	}
	var profile specs.LinuxSeccomp
	if err := json.Unmarshal(raw, &profile); err != nil {
		b.Fatal(err)
	}
	if runtime.GOARCH != "amd64" {
		profile.Architectures = nil
	}

	tmp := b.TempDir()
	berthSrc := os.Getenv("BERTH_RUNTIME")
	if berthSrc == "" {
		berthSrc = buildBerth(b, tmp)
	}
	berth := copyRuntime(b, berthSrc, filepath.Join(tmp, "bin"))
	base := ""
	if src := os.Getenv("BERTH_RUNTIME_BASE"); src != "" {
		base = copyRuntime(b, src, filepath.Join(tmp, "base"))
	}
	runc := envOr("RUNC", "/usr/bin/runc")
	if _, err := os.Stat(runc); err != nil {
		runc = ""
	}
	plain := filepath.Join(tmp, "plain")
	filtered := filepath.Join(tmp, "seccomp")
	for _, dir := range []string{plain, filtered} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := MakeBundle(dir, busybox, berth); err != nil {
			b.Fatal(err)
		}
	}
	if err := setSeccomp(filepath.Join(filtered, "config.json"), &profile); err != nil {
		b.Fatal(err)
	}

	type kase struct {
		name, bin, bundle string
		before            func(root string) error
		root              string
		n                 int
		ms                []float64
	}
	removeCache := func(root string) error { return os.RemoveAll(root + "-seccomp") }
	cases := []*kase{
		{name: "none", bin: berth, bundle: plain},
		{name: "cold", bin: berth, bundle: filtered, before: removeCache},
		{name: "warm", bin: berth, bundle: filtered},
	}
	if base != "" {
		cases = append(cases, &kase{name: "base-none", bin: base, bundle: plain}, &kase{name: "base-seccomp", bin: base, bundle: filtered})
	}
	if runc != "" {
		cases = append(cases, &kase{name: "runc", bin: runc, bundle: filtered})
	}
	runCase := func(c *kase) (float64, error) {
		if c.before != nil {
			if err := c.before(c.root); err != nil {
				return 0, err
			}
		}
		c.n++
		r, err := RunOnce([]string{c.bin, "--root", c.root, "run", "-b", c.bundle, fmt.Sprintf("bench-%s-%d", c.name, c.n)})
		return float64(r.Wall.Microseconds()) / 1000, err
	}
	for _, c := range cases {
		c.root = b.TempDir()
		b.Cleanup(func() {
			deleteAll(b, c.bin, c.root)
			_ = removeCache(c.root)
		})
		// Untimed: page cache, and the seccomp cache for "warm".
		if _, err := runCase(c); err != nil {
			b.Fatal(err)
		}
	}
	iter := 0
	for b.Loop() {
		for j := range cases {
			c := cases[(iter+j)%len(cases)]
			ms, err := runCase(c)
			if err != nil {
				b.Fatal(err)
			}
			c.ms = append(c.ms, ms)
		}
		iter++
	}
	byName := map[string]*kase{}
	for _, c := range cases {
		byName[c.name] = c
		b.ReportMetric(Median(c.ms), c.name+"-ms")
	}
	over := func(name, ref string) {
		c, r := byName[name], byName[ref]
		if c == nil || r == nil {
			return
		}
		d := make([]float64, len(c.ms))
		for i := range d {
			d[i] = c.ms[i] - r.ms[i]
		}
		b.ReportMetric(Median(d), name+"-over-none-ms")
	}
	over("cold", "none")
	over("warm", "none")
	over("base-seccomp", "base-none")
}

// copyRuntime copies berth-runtime (and berth-runtime-init beside it, if
// there is one) into dir and returns the copy of berth-runtime.
func copyRuntime(b *testing.B, src, dir string) string {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "berth-runtime")
	copies := map[string]string{src: dst}
	if initSrc := filepath.Join(filepath.Dir(src), "berth-runtime-init"); fileExists(initSrc) {
		copies[initSrc] = filepath.Join(dir, "berth-runtime-init")
	}
	for s, d := range copies {
		if err := CopyFile(s, d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	return dst
}

// setSeccomp puts s in the bundle config at path.
func setSeccomp(path string, s *specs.LinuxSeccomp) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return err
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Linux.Seccomp = s
	out, err := json.MarshalIndent(&spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}
