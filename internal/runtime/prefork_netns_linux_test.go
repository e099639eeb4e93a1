package runtime_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestPreforkJoinsNetworkLate: an init pre-forked with a network namespace
// of its own serves a configuration that joins another network namespace
// by path (berthd's sandbox of a bridge network): the container ends up in
// the joined namespace (its program sees it, and an exec joins it too),
// not in the pre-forked one. Joining anything else by path is still not
// served by a pre-forked init.
func TestPreforkJoinsNetworkLate(t *testing.T) {
	r := libRuntime(t)
	holder := exec.Command("unshare", "--net", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	nsPath := "/proc/" + itoa(holder.Process.Pid) + "/ns/net"
	// unshare(1) makes the namespace once it runs: wait for it.
	ours, _ := os.Readlink("/proc/self/ns/net")
	var want string
	for deadline := time.Now().Add(10 * time.Second); ; {
		want, _ = os.Readlink(nsPath)
		if want != "" && want != ours {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare --net gave no new network namespace")
		}
		time.Sleep(time.Millisecond)
	}
	join := func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = nsPath
			}
		}
	}
	bundle := shBundle(t, `readlink /proc/self/ns/net`, join)
	spec := bundleSpec(t, bundle)
	newNet := bundleSpec(t, shBundle(t, "true", nil)).Linux.Namespaces // all new
	io, out := preforkIO(t)
	id := "bt-prefork-netjoin"
	pf, err := r.Prefork(context.Background(), id, runtime.PreforkOpts{
		CgroupsPath: spec.Linux.CgroupsPath, Namespaces: newNet, IO: io,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Release()
	own, _ := os.Readlink("/proc/" + itoa(pf.Pid()) + "/ns/net")
	if own == want || own == ours {
		t.Fatalf("pre-forked init's network namespace %s: not one of its own", own)
	}
	got, used, pid := runToExit(t, r, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf}, out)
	if !used || pid != pf.Pid() {
		t.Errorf("pre-forked init not used (used %v, pid %d, pre-forked %d)", used, pid, pf.Pid())
	}
	if strings.TrimSpace(got) != want {
		t.Errorf("container in network namespace %q, want the joined %q (pre-forked one %q)", strings.TrimSpace(got), want, own)
	}

	// Another namespace joined by path (uts): not served.
	bundle2 := shBundle(t, `readlink /proc/self/ns/net`, func(s *specs.Spec) {
		join(s)
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.UTSNamespace {
				s.Linux.Namespaces[i].Path = "/proc/" + itoa(holder.Process.Pid) + "/ns/uts"
			}
		}
	})
	spec2 := bundleSpec(t, bundle2)
	io2, out2 := preforkIO(t)
	pf2, err := r.Prefork(context.Background(), id+"2", runtime.PreforkOpts{
		CgroupsPath: spec2.Linux.CgroupsPath, Namespaces: newNet, IO: io2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pf2.Release()
	got, used, _ = runToExit(t, r, id+"2", runtime.CreateOpts{Bundle: bundle2, IO: io2, Preforked: pf2}, out2)
	if used {
		t.Error("a pre-forked init was used for a configuration joining the uts namespace too")
	}
	if strings.TrimSpace(got) != want {
		t.Errorf("cold container in network namespace %q, want %q", strings.TrimSpace(got), want)
	}
	if !processGone(pf2.Pid()) {
		t.Errorf("unused pre-forked init %d still there", pf2.Pid())
	}
}
