package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// heldMountNS lists the mount namespaces this process holds descriptors
// of, other than its own ("mnt:[inode]" -> fd).
func heldMountNS(t *testing.T) map[string]string { return heldNS(t, "mnt") }

// heldNS lists the namespaces of one kind (/proc/self/ns/<kind>) this
// process holds descriptors of, other than its own ("kind:[inode]" -> fd).
func heldNS(t *testing.T, kind string) map[string]string {
	t.Helper()
	own, err := os.Readlink("/proc/self/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(l, kind+":[") && l != own {
			out[l] = e.Name()
		}
	}
	return out
}

// mountNSUsers lists the processes whose mount namespace is ns.
func mountNSUsers(ns string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "mnt")); err == nil && l == ns {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestMountNSHeldUntilDelete: the runtime holds the container's mount
// namespace from create (the init sends it with MsgReady) until Delete,
// and its own network and IPC namespaces too (their cleanup follows the
// exit's report instead of competing with it),
// so that the init's exit does not tear the mount tree down before its
// parent learns of the exit; the exit status is unchanged, and Delete
// releases the namespace (no descriptor, no process left in it) and the
// cgroups. Both with a cold init and with a pre-forked one (which makes
// its mount namespace on another thread than the leader's).
func TestMountNSHeldUntilDelete(t *testing.T) {
	for _, preforked := range []bool{false, true} {
		name := "cold"
		if preforked {
			name = "preforked"
		}
		t.Run(name, func(t *testing.T) {
			r := libRuntime(t)
			bundle := shBundle(t, `read x; echo "got $x"; exit 3`, nil)
			spec := bundleSpec(t, bundle)
			inR, inW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer inR.Close()
			defer inW.Close()
			out := tempFile(t)
			io := runtime.IO{Stdin: inR, Stdout: out, Stderr: out}
			id := "bt-mntns-" + name
			before := heldMountNS(t)
			// Its own network and IPC namespaces are held the same way.
			others := map[string]map[string]string{}
			for _, ns := range spec.Linux.Namespaces {
				switch {
				case ns.Path != "":
				case ns.Type == specs.NetworkNamespace:
					others["net"] = heldNS(t, "net")
				case ns.Type == specs.IPCNamespace:
					others["ipc"] = heldNS(t, "ipc")
				}
			}
			if others["net"] == nil || others["ipc"] == nil {
				t.Fatalf("the test bundle has no network or IPC namespace of its own: %+v", spec.Linux.Namespaces)
			}
			newHeld := func(kind string) []string {
				var l []string
				for k := range heldNS(t, kind) {
					if _, ok := others[kind][k]; !ok {
						l = append(l, k)
					}
				}
				return l
			}
			o := runtime.CreateOpts{Bundle: bundle, IO: io}
			ctx := context.Background()
			if preforked {
				o.Preforked = preforkFor(t, r, id, spec, io)
			}
			ctr, err := r.CreateContainer(ctx, id, o)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			deleted := false
			defer func() {
				if !deleted {
					_ = ctr.Delete(ctx)
				}
			}()
			if preforked && !ctr.Preforked() {
				t.Fatal("the pre-forked init was not used")
			}
			var ns string
			for l := range heldMountNS(t) {
				if _, ok := before[l]; !ok {
					if ns != "" {
						t.Fatalf("more than one new mount namespace held: %s, %s", ns, l)
					}
					ns = l
				}
			}
			if ns == "" {
				t.Fatal("the container's mount namespace is not held after create")
			}
			if err := ctr.Start(ctx); err != nil {
				t.Fatalf("start: %v", err)
			}
			// The program runs in the namespace held (after execve the
			// thread that made it leads the process).
			if its, err := os.Readlink("/proc/" + itoa(ctr.Pid()) + "/ns/mnt"); err != nil || its != ns {
				t.Errorf("the program's mount namespace is %q (%v), the one held %q", its, err, ns)
			}
			inW.WriteString("go\n")
			inW.Close()
			ws, err := ctr.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if code := runtime.ExitCode(ws); code != 3 {
				t.Errorf("exit code %d, want 3", code)
			}
			if got := strings.TrimSpace(readBack(out)); got != "got go" {
				t.Errorf("output %q", got)
			}
			if _, ok := heldMountNS(t)[ns]; !ok {
				t.Error("the mount namespace was released before Delete")
			}
			for _, kind := range []string{"net", "ipc"} {
				if l := newHeld(kind); len(l) != 1 {
					t.Errorf("%s namespaces held after the exit: %v, want the container's", kind, l)
				}
			}
			if users := mountNSUsers(ns); len(users) > 0 {
				t.Errorf("processes left in the container's mount namespace: %v", users)
			}
			deleted = true
			if err := ctr.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			if fd, ok := heldMountNS(t)[ns]; ok {
				t.Errorf("the mount namespace %s is still held (fd %s) after Delete", ns, fd)
			}
			for _, kind := range []string{"net", "ipc"} {
				if l := newHeld(kind); len(l) != 0 {
					t.Errorf("%s namespaces still held after Delete: %v", kind, l)
				}
			}
			if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
				t.Errorf("cgroups left: %v", left)
			}
		})
	}
}
