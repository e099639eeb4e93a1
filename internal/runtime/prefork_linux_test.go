package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/fixture"
	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// libRuntime is the runtime library on a private root, with the init
// binary built beside berth-runtime.
func libRuntime(t *testing.T) *runtime.Runtime {
	t.Helper()
	r, _ := libRuntimeRoot(t)
	return r
}

// libRuntimeRoot is libRuntime and its state root.
func libRuntimeRoot(t *testing.T) (*runtime.Runtime, string) {
	t.Helper()
	fixture.RequireRoot(t)
	root := t.TempDir()
	r, err := runtime.New(root)
	if err != nil {
		t.Fatal(err)
	}
	r.InitPath = filepath.Join(filepath.Dir(runtimeBinary(t)), runtime.InitBinaryName)
	t.Cleanup(func() {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			t.Errorf("state root not empty: %s", e.Name())
		}
	})
	return r, root
}

func preforkIO(t *testing.T) (runtime.IO, *os.File) {
	out := tempFile(t)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { null.Close() })
	return runtime.IO{Stdin: null, Stdout: out, Stderr: out}, out
}

// preforkFor pre-forks an init for container id with spec's cgroups path
// and namespaces, failing the test if it cannot; the init is let go at
// the test's end unless a create took it.
func preforkFor(t *testing.T, r *runtime.Runtime, id string, spec *specs.Spec, io runtime.IO) *runtime.Preforked {
	t.Helper()
	pf, err := r.Prefork(context.Background(), id, runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io})
	if err != nil {
		t.Fatalf("prefork: %v", err)
	}
	t.Cleanup(pf.Release)
	return pf
}

func processGone(pid int) bool {
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// runToExit creates (with o), starts and waits for the container, deletes
// it and returns its output and whether the pre-forked init was used.
func runToExit(t *testing.T, r *runtime.Runtime, id string, o runtime.CreateOpts, out *os.File) (string, bool, int) {
	t.Helper()
	ctx := context.Background()
	ctr, err := r.CreateContainer(ctx, id, o)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	pid, used := ctr.Pid(), ctr.Preforked()
	if err := ctr.Start(ctx); err != nil {
		_ = ctr.Delete(ctx)
		t.Fatalf("start: %v", err)
	}
	ws, err := ctr.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if code := runtime.ExitCode(ws); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if err := ctr.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	return readBack(out), used, pid
}

// TestPreforkUsed: an init pre-forked for the container's id, cgroups path
// and namespaces is the one create uses; it already sits in its own
// namespaces and cgroups before the configuration exists, and the
// container runs as usual (its program is pid 1 of the new pid namespace).
func TestPreforkUsed(t *testing.T) {
	r := libRuntime(t)
	bundle := shBundle(t, `echo "pid=$$ host=$(hostname)"`, func(s *specs.Spec) { s.Hostname = "pf" })
	spec := bundleSpec(t, bundle)
	io, out := preforkIO(t)
	id := "bt-prefork-used"
	before := runtime.PreforkUsed()
	pf := preforkFor(t, r, id, spec, io)
	// (The mount namespace is made once the config is there: see
	// TestPreforkSeesLaterMounts.)
	for _, ns := range []string{"pid", "net", "uts", "ipc"} {
		ours, _ := os.Readlink("/proc/self/ns/" + ns)
		its, err := os.Readlink("/proc/" + itoa(pf.Pid()) + "/ns/" + ns)
		if err != nil || its == ours {
			t.Errorf("pre-forked init's %s namespace %q (err %v) is ours", ns, its, err)
		}
	}
	cg, err := os.ReadFile("/proc/" + itoa(pf.Pid()) + "/cgroup")
	if err != nil || !strings.Contains(string(cg), spec.Linux.CgroupsPath) {
		t.Errorf("pre-forked init not in %s: %s (%v)", spec.Linux.CgroupsPath, cg, err)
	}
	got, used, pid := runToExit(t, r, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf}, out)
	if !used || pid != pf.Pid() || runtime.PreforkUsed() != before+1 {
		t.Errorf("pre-forked init not used: used %v, pid %d, pre-forked %d, counter %d -> %d", used, pid, pf.Pid(), before, runtime.PreforkUsed())
	}
	if strings.TrimSpace(got) != "pid=1 host=pf" {
		t.Errorf("output %q", got)
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}

// TestPreforkMismatchFallsBack: a configuration the pre-forked init does
// not fit (other namespaces, another cgroups path, a terminal, another
// id) is created the ordinary way, and the pre-forked init, its cgroups and
// its state are gone.
func TestPreforkMismatchFallsBack(t *testing.T) {
	r := libRuntime(t)
	bundle := shBundle(t, `echo ok`, nil)
	spec := bundleSpec(t, bundle)
	io, _ := preforkIO(t)
	var noNet []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			noNet = append(noNet, ns)
		}
	}
	cases := []struct {
		name string
		id   string
		opts runtime.PreforkOpts
	}{
		{"namespaces", "bt-prefork-ns", runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath, Namespaces: noNet, IO: io}},
		{"cgroups path", "bt-prefork-cg", runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath + "-other", Namespaces: spec.Linux.Namespaces, IO: io}},
		{"terminal", "bt-prefork-tty", runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, Terminal: true, IO: io}},
		{"id", "bt-prefork-id-other", runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			io, out := preforkIO(t)
			tc.opts.IO = io
			pf, err := r.Prefork(context.Background(), tc.id, tc.opts)
			if err != nil {
				t.Fatalf("prefork: %v", err)
			}
			defer pf.Release()
			id := tc.id
			if tc.name == "id" {
				id = "bt-prefork-id"
			}
			got, used, _ := runToExit(t, r, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf}, out)
			if used {
				t.Error("a pre-forked init that does not fit was used")
			}
			if strings.TrimSpace(got) != "ok" {
				t.Errorf("output %q", got)
			}
			if !processGone(pf.Pid()) {
				t.Errorf("pre-forked init %d still there", pf.Pid())
			}
			for _, p := range []string{spec.Linux.CgroupsPath, tc.opts.CgroupsPath} {
				if left := cgroupLeft(t, p); len(left) > 0 {
					t.Errorf("cgroups left: %v", left)
				}
			}
		})
	}
}

// TestPreforkRelease: a pre-forked init that is never used goes with
// everything it made; a user namespace or a namespace to join is refused.
func TestPreforkRelease(t *testing.T) {
	r := libRuntime(t)
	spec := bundleSpec(t, shBundle(t, "true", nil))
	io, _ := preforkIO(t)
	pf, err := r.Prefork(context.Background(), "bt-prefork-rel", runtime.PreforkOpts{
		CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cgroupLeft(t, spec.Linux.CgroupsPath)) == 0 {
		t.Error("no cgroup made for the pre-forked init")
	}
	pf.Release()
	pf.Release()
	if !processGone(pf.Pid()) {
		t.Errorf("pre-forked init %d still there", pf.Pid())
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	for _, nss := range [][]specs.LinuxNamespace{
		append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace}),
		{{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}},
	} {
		if pf, err := r.Prefork(context.Background(), "bt-prefork-no", runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath, Namespaces: nss, IO: io}); err == nil {
			pf.Release()
			t.Errorf("prefork with %v: no error", nss)
		}
	}
}

// TestPreforkSeesLaterMounts: the root filesystem is mounted after the
// init was pre-forked (berthd mounts it while the shim pre-forks), here
// below a private mount, so no propagation can bring it into a mount
// namespace copied earlier: the container still gets it.
func TestPreforkSeesLaterMounts(t *testing.T) {
	r := libRuntime(t)
	top := t.TempDir()
	if err := unix.Mount("tmpfs", top, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(top, unix.MNT_DETACH)
	if err := unix.Mount("", top, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	late := filepath.Join(top, "rootfs")
	bundle := shBundle(t, `cat /marker`, func(s *specs.Spec) { s.Root.Path = late })
	spec := bundleSpec(t, bundle)
	io, out := preforkIO(t)
	id := "bt-prefork-late"
	pf := preforkFor(t, r, id, spec, io)
	if err := os.Mkdir(late, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(filepath.Join(bundle, "rootfs"), late, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(late, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(late, "marker"), []byte("late mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, used, _ := runToExit(t, r, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf}, out)
	if !used {
		t.Error("pre-forked init not used")
	}
	if got != "late mount\n" {
		t.Errorf("output %q", got)
	}
}

// TestPreforkOwnerGone: should the process holding a pre-forked init die
// (a shim killed before its container came), Delete by force, as berthd's
// clean-up of a start that was cut short does, finds and removes the init,
// its cgroups and its state.
func TestPreforkOwnerGone(t *testing.T) {
	r := libRuntime(t)
	spec := bundleSpec(t, shBundle(t, "true", nil))
	io, _ := preforkIO(t)
	id := "bt-prefork-gone"
	pf := preforkFor(t, r, id, spec, io)
	if err := r.Delete(context.Background(), id, true); err != nil {
		t.Fatalf("delete: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pf.Pid()) && time.Now().Before(deadline) {
		// Killed; a zombie until its parent (this test) reaps it.
		if b, err := os.ReadFile("/proc/" + itoa(pf.Pid()) + "/stat"); err == nil && strings.Contains(string(b), ") Z ") {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if b, err := os.ReadFile("/proc/" + itoa(pf.Pid()) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Errorf("pre-forked init still running: %s", b)
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}
