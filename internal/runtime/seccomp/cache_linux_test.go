//go:build cgo

package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"os/exec"
)

// cacheDirEnv names the file cache a child scenario compiles with.
const cacheDirEnv = "BERTH_SECCOMP_TEST_CACHE"

func init() {
	scenarios["cached"] = scenarioCached
	scenarios["install-time"] = scenarioInstallTime
}

// dockerDefault is Docker's default profile as berth generates it for
// amd64 (testdata/docker-default.json, ~360 syscalls with argument rules),
// without the architecture list on other hosts.
func dockerDefault(t testing.TB) *specs.LinuxSeccomp {
	t.Helper()
	s, err := loadDockerDefault()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadDockerDefault() (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile("testdata/docker-default.json")
	if err != nil {
		return nil, err
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if runtime.GOARCH != "amd64" {
		s.Architectures = nil
	}
	return &s, nil
}

// withoutGetcwd is the default profile with getcwd left to the default
// action (EPERM), so that a probe can see the filter work.
func withoutGetcwd(s *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	for i := range s.Syscalls {
		s.Syscalls[i].Names = slices.DeleteFunc(slices.Clone(s.Syscalls[i].Names), func(n string) bool { return n == "getcwd" })
	}
	return s
}

// freshCompile is what libseccomp makes of s, bypassing every cache.
func freshCompile(t testing.TB, s *specs.LinuxSeccomp) []byte {
	t.Helper()
	p, err := convert(s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := compileFilter(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func resetMem() {
	memCache.Lock()
	clear(memCache.m)
	memCache.Unlock()
}

// compileCounting runs Compile and reports how many libseccomp compiles
// it took (0 on a cache hit).
func compileCounting(t *testing.T, s *specs.LinuxSeccomp, dir string) ([]byte, uint, int64) {
	t.Helper()
	before := compiles.Load()
	p, err := Compile(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	return p.Filter, p.Flags, compiles.Load() - before
}

func TestCompileCacheHitIsIdentical(t *testing.T) {
	s := dockerDefault(t)
	want := freshCompile(t, s)
	if n := len(want) / 8; n < 500 {
		t.Fatalf("the default profile compiled to only %d instructions", n)
	}
	p, _ := convert(s)
	wantFlags, err := kernelFlags(p)
	if err != nil {
		t.Fatal(err)
	}
	resetMem()
	dir := filepath.Join(t.TempDir(), "cache")

	check := func(what string, wantCompiles int64) {
		t.Helper()
		got, flags, n := compileCounting(t, s, dir)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: program differs from libseccomp's (%d vs %d bytes)", what, len(got), len(want))
		}
		if flags != wantFlags {
			t.Errorf("%s: flags %s, want %s", what, flagString(flags), flagString(wantFlags))
		}
		if n != wantCompiles {
			t.Errorf("%s: %d libseccomp compiles, want %d", what, n, wantCompiles)
		}
	}
	check("cold", 1)
	path, err := CachePath(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("no cache file after a compile: %v", err)
	}
	if st.Mode() != 0o600 {
		t.Errorf("cache file mode %v, want -rw-------", st.Mode())
	}
	if dst, err := os.Stat(dir); err != nil || dst.Mode().Perm() != 0o700 {
		t.Errorf("cache dir: %v %v, want mode 0700", dst.Mode(), err)
	}
	check("in-process hit", 0)
	resetMem() // as a new process would start
	check("file hit", 0)
	if st2, _ := os.Lstat(path); !os.SameFile(st, st2) {
		t.Error("the cache file was rewritten on a hit")
	}
	// Validate of a config seen before is a lookup.
	before := compiles.Load()
	if err := Validate(s); err != nil {
		t.Fatal(err)
	}
	if compiles.Load() != before {
		t.Error("Validate compiled a config that was in the cache")
	}
	// Callers get their own copy.
	p1, _ := Compile(s, dir)
	p1.Filter[0] ^= 0xff
	if got, _, _ := compileCounting(t, s, dir); !bytes.Equal(got, want) {
		t.Error("modifying a returned program changed the cache")
	}
	// Without a directory only the process's map is used.
	resetMem()
	if _, _, n := compileCounting(t, s, ""); n != 1 {
		t.Errorf("no cache dir: %d compiles, want 1", n)
	}
}

func TestCacheCorruptFileIsIgnoredAndReplaced(t *testing.T) {
	s := dockerDefault(t)
	want := freshCompile(t, s)
	other := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}}}

	flip := func(off int) func(b []byte) []byte {
		return func(b []byte) []byte {
			if off < 0 {
				off += len(b)
			}
			b[off] ^= 0x40
			return b
		}
	}
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir, path string, valid []byte)
	}{
		{"empty", rewrite(func(b []byte) []byte { return nil })},
		{"header only", rewrite(func(b []byte) []byte { return b[:headerSize] })},
		{"truncated by one byte", rewrite(func(b []byte) []byte { return b[:len(b)-1] })},
		{"truncated to whole instructions", rewrite(func(b []byte) []byte { return b[:len(b)-64] })},
		{"trailing byte", rewrite(func(b []byte) []byte { return append(b, 0) })},
		{"trailing instruction", rewrite(func(b []byte) []byte { return append(b, make([]byte, 8)...) })},
		{"bad magic", rewrite(flip(0))},
		{"other key in header", rewrite(flip(8))},
		{"instruction count", rewrite(flip(40))},
		{"stored hash", rewrite(flip(44))},
		{"first instruction", rewrite(flip(headerSize))},
		{"jump offset", rewrite(flip(headerSize + 8*10 + 2))},
		{"last instruction", rewrite(flip(-1))},
		{"program of another config", func(t *testing.T, dir, path string, valid []byte) {
			resetMem()
			if _, err := Compile(other, dir); err != nil {
				t.Fatal(err)
			}
			otherPath, _ := CachePath(other, dir)
			if err := os.Rename(otherPath, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink to a valid file", func(t *testing.T, dir, path string, valid []byte) {
			target := filepath.Join(t.TempDir(), "valid.bpf")
			if err := os.WriteFile(target, valid, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(path)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"writable by others", func(t *testing.T, dir, path string, valid []byte) {
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory", func(t *testing.T, dir, path string, valid []byte) {
			os.Remove(path)
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			resetMem()
			if _, _, n := compileCounting(t, s, dir); n != 1 {
				t.Fatalf("first compile: %d compiles", n)
			}
			path, _ := CachePath(s, dir)
			valid, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.corrupt(t, dir, path, valid)
			resetMem()
			got, _, n := compileCounting(t, s, dir)
			if n != 1 {
				t.Errorf("%d libseccomp compiles with a bad cache file, want 1 (the file must not be used)", n)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("program differs from libseccomp's")
			}
			if tc.name == "a directory" {
				return // cannot be replaced by a rename; it stays a miss
			}
			// The file was replaced by a good one: the next process hits.
			if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
				t.Fatalf("cache file after recompiling: %v %v", st, err)
			}
			resetMem()
			if got, _, n := compileCounting(t, s, dir); n != 0 || !bytes.Equal(got, want) {
				t.Errorf("after replacement: %d compiles, identical %v", n, bytes.Equal(got, want))
			}
		})
	}
}

// rewrite returns a corruption that rewrites the cache file with f(content).
func rewrite(f func([]byte) []byte) func(t *testing.T, dir, path string, valid []byte) {
	return func(t *testing.T, dir, path string, valid []byte) {
		if err := os.WriteFile(path, f(bytes.Clone(valid)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCacheDirNotPrivateIsNotUsed(t *testing.T) {
	s := dockerDefault(t)
	for _, mode := range []os.FileMode{0o777, 0o770, 0o1777} {
		dir := filepath.Join(t.TempDir(), "cache")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		resetMem()
		compileCounting(t, s, dir) // writes the file
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		resetMem()
		if _, _, n := compileCounting(t, s, dir); n != 1 {
			t.Errorf("dir mode %v: %d compiles, want 1 (others may write there)", mode, n)
		}
	}
	// A symlink to a private directory is not followed either.
	real := filepath.Join(t.TempDir(), "real")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	resetMem()
	compileCounting(t, s, link)
	resetMem()
	if _, _, n := compileCounting(t, s, link); n != 1 {
		t.Errorf("symlinked cache dir: %d compiles, want 1", n)
	}
	if entries, _ := os.ReadDir(real); len(entries) != 0 {
		t.Errorf("wrote %s through a symlinked cache dir", entries[0].Name())
	}
}

func TestCacheKey(t *testing.T) {
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{nativeSpecArch(t)},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "write"}, Action: specs.ActAllow},
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 8}}},
			},
		}
	}
	key := func(s *specs.LinuxSeccomp) cacheKey {
		k, err := keyOf(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k0 := key(base())
	same := base()
	same.ListenerPath, same.ListenerMetadata = "/run/agent.sock", "meta"
	if key(same) != k0 {
		t.Error("listenerPath/listenerMetadata changed the key; they never reach the filter")
	}
	changes := map[string]func(s *specs.LinuxSeccomp){
		"default action":   func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActKillProcess },
		"default errno":    func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uintp(38) },
		"architectures":    func(s *specs.LinuxSeccomp) { s.Architectures = nil },
		"flags":            func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog} },
		"syscall name":     func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names[1] = "writev" },
		"rule action":      func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActLog },
		"rule errno":       func(s *specs.LinuxSeccomp) { s.Syscalls[1].ErrnoRet = uintp(1) },
		"argument value":   func(s *specs.LinuxSeccomp) { s.Syscalls[1].Args[0].Value = 9 },
		"argument index":   func(s *specs.LinuxSeccomp) { s.Syscalls[1].Args[0].Index = 1 },
		"argument op":      func(s *specs.LinuxSeccomp) { s.Syscalls[1].Args[0].Op = specs.OpNotEqual },
		"argument value 2": func(s *specs.LinuxSeccomp) { s.Syscalls[1].Args[0].ValueTwo = 1 },
		"rule order":       func(s *specs.LinuxSeccomp) { s.Syscalls[0], s.Syscalls[1] = s.Syscalls[1], s.Syscalls[0] },
	}
	seen := map[cacheKey]string{k0: "base"}
	for name, change := range changes {
		s := base()
		change(s)
		k := key(s)
		if prev, ok := seen[k]; ok {
			t.Errorf("%s: same key as %s", name, prev)
		}
		seen[k] = name
	}
	// The facts outside the config are part of it.
	facts, binaryKnown := environment()
	for _, want := range []string{cacheFormat, "libseccomp ", "kernel ", "binary "} {
		if !strings.Contains(string(facts), want) {
			t.Errorf("key facts lack %q:\n%s", want, facts)
		}
	}
	if !binaryKnown {
		t.Error("the running binary was not identified (no /proc?)")
	}
}

func TestUsesNotifyMatchesConvert(t *testing.T) {
	for _, s := range []*specs.LinuxSeccomp{
		{DefaultAction: specs.ActAllow},
		{DefaultAction: specs.ActNotify},
		notifySpec(),
		{DefaultAction: specs.ActNotify, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActNotify}}},
		dockerDefault(t),
	} {
		p, err := convert(s)
		if err != nil {
			t.Fatal(err)
		}
		if usesNotify(s) != p.notify {
			t.Errorf("usesNotify = %v, convert says %v for %+v", usesNotify(s), p.notify, s)
		}
	}
}

// A cache hit still gets the create-time checks: the listener fields are
// not in the key, so a notifying config without listenerPath hits the
// entry of the same config with one, and must still be refused.
func TestCacheHitStillChecksListener(t *testing.T) {
	resetMem()
	dir := filepath.Join(t.TempDir(), "cache")
	s := notifySpec()
	s.ListenerPath = "/run/agent.sock"
	p, err := Compile(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		t.Errorf("notify filter flags %s lack NEW_LISTENER", flagString(p.Flags))
	}
	s.ListenerPath = ""
	before := compiles.Load()
	checkErr(t, Validate(s), "SCMP_ACT_NOTIFY is used but listenerPath is empty")
	resetMem()
	_, err = Compile(s, dir)
	checkErr(t, err, "SCMP_ACT_NOTIFY is used but listenerPath is empty")
	if compiles.Load() != before {
		t.Error("the refused configs were compiled instead of found")
	}
	// A config that does not convert is refused, never cached.
	bad := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_BOGUS"}}}
	for range 2 {
		_, err := Compile(bad, dir)
		checkErr(t, err, `unknown action "SCMP_ACT_BOGUS"`)
	}
}

// scenarioCached compiles the default profile without getcwd through the
// file cache the parent filled (so, a file hit in a new process, counted),
// installs it as the container init does (bpf.Program.Install after
// no_new_privs) and probes.
func scenarioCached(dir string) (result, error) {
	s, err := loadDockerDefault()
	if err != nil {
		return nil, err
	}
	p, err := Compile(withoutGetcwd(s), os.Getenv(cacheDirEnv))
	if err != nil {
		return nil, err
	}
	res := result{"compiles": strconv.FormatInt(compiles.Load(), 10)}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	fd, err := loadResult(p.Install())
	if err != nil {
		return nil, err
	}
	res["listener"] = fd
	res["getcwd"] = getcwd()
	res["getpid"] = getpid()
	res["personality(8)"] = sys(unix.SYS_PERSONALITY, 8)
	res["personality(9)"] = sys(unix.SYS_PERSONALITY, 9)
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
			res["Seccomp"] = strings.TrimSpace(v)
		}
	}
	return res, nil
}

func TestLoadFromFileCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	resetMem()
	// Filled by this process: the child is the same binary, so it has the
	// same key and must find it.
	if _, err := Compile(withoutGetcwd(dockerDefault(t)), dir); err != nil {
		t.Fatal(err)
	}
	checkResult(t, runScenario(t, "cached", cacheDirEnv+"="+dir), result{
		"compiles":       "0",
		"listener":       "-1",
		"getcwd":         "EPERM",
		"getpid":         "ok",
		"personality(8)": "ok",
		"personality(9)": "EPERM",
		"Seccomp":        "2",
	})
}

// BenchmarkCompile times Compile of Docker's default profile: compiled by
// libseccomp (nothing cached), found in the process's map, and read from
// the file cache (what a new berth-shim or berth-runtime process does).
//
//	go test -run xxx -bench Compile ./internal/runtime/seccomp/
func BenchmarkCompile(b *testing.B) {
	s := dockerDefault(b)
	dir := filepath.Join(b.TempDir(), "cache")
	if _, err := Compile(s, dir); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, dir string, reset bool, wantCompiles int64) {
		before := compiles.Load()
		n := int64(0)
		for b.Loop() {
			if reset {
				resetMem()
			}
			if _, err := Compile(s, dir); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if got := compiles.Load() - before; got != wantCompiles*n {
			b.Fatalf("%d libseccomp compiles in %d runs", got, n)
		}
	}
	b.Run("libseccomp", func(b *testing.B) { run(b, "", true, 1) })
	b.Run("memory-hit", func(b *testing.B) { run(b, dir, false, 0) })
	b.Run("file-hit", func(b *testing.B) { run(b, dir, true, 0) })
}

// scenarioInstallTime times the seccomp(2) call that installs Docker's
// default profile, compiled beforehand (the kernel's own work: checking
// and JIT-compiling the program, precomputing its per-syscall cache).
func scenarioInstallTime(string) (result, error) {
	s, err := loadDockerDefault()
	if err != nil {
		return nil, err
	}
	p, err := Compile(s, "")
	if err != nil {
		return nil, err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := p.Install(); err != nil {
		return nil, err
	}
	return result{"install-us": strconv.FormatInt(time.Since(start).Microseconds(), 10), "insns": strconv.Itoa(p.Len())}, nil
}

// BenchmarkInstall reports the median time of installing Docker's default
// profile with seccomp(2), in a fresh process each time (a filter cannot be
// removed), as install-us; ns/op includes starting that process.
//
//	go test -run xxx -bench Install -benchtime 50x ./internal/runtime/seccomp/
func BenchmarkInstall(b *testing.B) {
	var us []float64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=install-time")
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v", err)
		}
		var res result
		if err := json.Unmarshal(out, &res); err != nil {
			b.Fatalf("child output %q: %v", out, err)
		}
		v, _ := strconv.ParseFloat(res["install-us"], 64)
		us = append(us, v)
	}
	slices.Sort(us)
	b.ReportMetric(us[len(us)/2], "install-us")
}

func TestCacheIsPruned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for i := range maxFiles + 10 {
		p := filepath.Join(dir, fmt.Sprintf("%064x.bpf", i))
		if err := os.WriteFile(p, []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old.Add(time.Duration(i)*time.Second))
	}
	tmp := filepath.Join(dir, ".tmp-123.bpf")
	os.WriteFile(tmp, nil, 0o600)
	os.Chtimes(tmp, old, old)
	resetMem()
	s := dockerDefault(t)
	if _, _, n := compileCounting(t, s, dir); n != 1 {
		t.Fatalf("%d compiles", n)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != maxFiles {
		t.Errorf("%d files after pruning, want %d", len(entries), maxFiles)
	}
	path, _ := CachePath(s, dir)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the new entry was pruned: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%064x.bpf", 0))); err == nil {
		t.Error("the oldest entry was kept")
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%064x.bpf", maxFiles+9))); err != nil {
		t.Error("the newest old entry was removed")
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Error("a stale temporary file was kept")
	}
}
