package shim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime/cgroup"
	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestPrepareDevicesPreset: the device rules of PrepareOpts reach the
// runtime's pre-fork: the container's devices cgroup is programmed before
// its config is sent, and the container, created with those rules, runs
// with them.
func TestPrepareDevicesPreset(t *testing.T) {
	if cgroup.Mode() == cgroup.ModeV2 {
		t.Skip("reads the v1 devices cgroup")
	}
	one := int64(1)
	three := int64(3)
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: &one, Minor: &three, Access: "rwm"}}
	x := newCtr(t, `(: > /dev/null) && echo null-ok`, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Devices: rules}
	})
	po := x.prepareOpts(t)
	po.Devices, po.SetDevices = rules, true
	p, err := shim.Prepare(po)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	waitPreforked(t, p.ShimPid())
	list := filepath.Join("/sys/fs/cgroup/devices", x.cgroup, "devices.list")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(list)
		if strings.Contains(string(b), "c 1:3 rwm") && !strings.Contains(string(b), "a *:* rwm") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("devices cgroup of the pre-forked init not programmed: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	x.opts.Prepared = p
	c := x.spawn()
	if !c.Preforked() {
		t.Error("the container was not created from the pre-forked init")
	}
	if stdout := startOutput(t, c); stdout != "null-ok\n" {
		t.Errorf("output %q", stdout)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Errorf("exit %+v", e)
	}
}
