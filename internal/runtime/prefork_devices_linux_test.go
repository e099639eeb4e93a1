package runtime_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerDeviceRules are berthd's default linux.resources.devices (Docker's:
// deny all, allow null, zero, full... as internal/container/spec makes
// them, fuse denied explicitly).
func dockerDeviceRules() []specs.LinuxDeviceCgroup {
	n := func(v int64) *int64 { return &v }
	allow := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: n(major), Minor: n(minor), Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow(1, 5), allow(1, 3), allow(1, 9), allow(1, 8), allow(5, 0), allow(5, 1),
		{Allow: false, Type: "c", Major: n(10), Minor: n(229), Access: "rwm"},
	}
}

// devicesList reads the v1 devices cgroup's rules of cgroupsPath, sorted
// ("" on a host without the v1 devices controller).
func devicesList(t *testing.T, cgroupsPath string) string {
	t.Helper()
	if cgroup.Mode() == cgroup.ModeV2 {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/devices", cgroupsPath, "devices.list"))
	if err != nil {
		t.Fatalf("devices.list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// createStartWait creates a container (o), returns the devices cgroup's
// rules as they are once it is created, then starts it, waits for it and
// deletes it.
func createStartWait(t *testing.T, r *runtime.Runtime, id string, o runtime.CreateOpts, cgroupsPath string, out *os.File) (list, output string, used bool) {
	t.Helper()
	ctx := context.Background()
	ctr, err := r.CreateContainer(ctx, id, o)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	list, used = devicesList(t, cgroupsPath), ctr.Preforked()
	if err := ctr.Start(ctx); err != nil {
		_ = ctr.Delete(ctx)
		t.Fatalf("start: %v", err)
	}
	if _, err := ctr.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := ctr.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	return list, readBack(out), used
}

// TestPreforkDevicesPreset: an init pre-forked with device rules
// (PreforkOpts.Devices, berthd's defaults) has its devices cgroup
// programmed before its config exists. A configuration with exactly those
// rules is not programmed again (DevicesPreset counts it) and ends with
// the very rules the ordinary path gives the same configuration; one with
// other rules (or none: the default rules only) is programmed in full
// after the init's mounts, and the devices it lists are still created
// (mknod) and usable when its own rule lacks "m"; one without resources
// does not take the pre-forked init. In each case the container's devices
// work as its rules say and its devices cgroup is the ordinary path's.
func TestPreforkDevicesPreset(t *testing.T) {
	r := libRuntime(t)
	n := func(v int64) *int64 { return &v }
	mode := os.FileMode(0o666)
	tun := specs.LinuxDevice{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: &mode}
	fuse := specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode}
	// tun allowed (rw: no mknod right of its own), fuse listed but denied.
	withTun := append(dockerDeviceRules(), specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: n(10), Minor: n(200), Access: "rw"})
	script := `for d in /dev/null /dev/net/tun /dev/fuse; do if [ -e $d ]; then (: > $d) 2>/dev/null && echo "$d ok" || echo "$d denied"; else echo "$d missing"; fi; done`
	cases := []struct {
		name      string
		rules     []specs.LinuxDeviceCgroup
		devices   []specs.LinuxDevice
		noRes     bool
		pre       []specs.LinuxDeviceCgroup // rules set ahead (nil: Docker's)
		preset    bool                      // the preset rules are kept
		used      bool                      // the pre-forked init is used
		wantLines string
	}{
		{"same rules", dockerDeviceRules(), nil, false, nil, true, true, "/dev/null ok\n/dev/net/tun missing\n/dev/fuse missing"},
		{"same rules, devices", dockerDeviceRules(), []specs.LinuxDevice{tun, fuse}, false, nil, true, true, "/dev/null ok\n/dev/net/tun denied\n/dev/fuse denied"},
		{"other rules", withTun, []specs.LinuxDevice{tun, fuse}, false, nil, false, true, "/dev/null ok\n/dev/net/tun ok\n/dev/fuse denied"},
		// Set ahead: tun allowed; the spec has no rules: deny but the
		// defaults, as on the ordinary path.
		{"no rules", nil, []specs.LinuxDevice{tun}, false, withTun, false, true, "/dev/null ok\n/dev/net/tun denied\n/dev/fuse missing"},
		{"no resources", nil, nil, true, nil, false, false, "/dev/null ok\n/dev/net/tun missing\n/dev/fuse missing"},
	}
	pids := int64(100)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mutate := func(s *specs.Spec) {
				s.Linux.Devices = tc.devices
				s.Linux.Resources = &specs.LinuxResources{Devices: tc.rules, Pids: &specs.LinuxPids{Limit: &pids}}
				if tc.noRes {
					s.Linux.Resources = nil
				}
			}
			// The same configuration, created the ordinary way.
			plain := shBundle(t, script, mutate)
			plainSpec := bundleSpec(t, plain)
			io, out := preforkIO(t)
			wantList, plainOut, _ := createStartWait(t, r, "bt-pfdev-plain"+itoa(i), runtime.CreateOpts{Bundle: plain, IO: io}, plainSpec.Linux.CgroupsPath, out)
			if strings.TrimSpace(plainOut) != tc.wantLines {
				t.Errorf("ordinary path: output %q, want %q", plainOut, tc.wantLines)
			}

			bundle := shBundle(t, script, mutate)
			spec := bundleSpec(t, bundle)
			io, out = preforkIO(t)
			id := "bt-pfdev-" + itoa(i)
			pre := tc.pre
			if pre == nil {
				pre = dockerDeviceRules()
			}
			pf, err := r.Prefork(context.Background(), id, runtime.PreforkOpts{
				CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io,
				Devices: pre, SetDevices: true,
			})
			if err != nil {
				t.Fatalf("prefork: %v", err)
			}
			defer pf.Release()
			// Programmed before any config: deny by default.
			if l := devicesList(t, spec.Linux.CgroupsPath); l != "" && strings.Contains(l, "a *:* rwm") {
				t.Errorf("pre-forked init's devices cgroup not programmed: %q", l)
			}
			before := runtime.DevicesPreset()
			list, got, used := createStartWait(t, r, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf}, spec.Linux.CgroupsPath, out)
			if used != tc.used {
				t.Errorf("pre-forked init used: %v, want %v", used, tc.used)
			}
			if preset := runtime.DevicesPreset() != before; preset != tc.preset {
				t.Errorf("device rules kept from the pre-fork: %v, want %v", preset, tc.preset)
			}
			if list != wantList {
				t.Errorf("devices cgroup:\n%s\nordinary path:\n%s", list, wantList)
			}
			if strings.TrimSpace(got) != tc.wantLines {
				t.Errorf("output %q, want %q", got, tc.wantLines)
			}
			for _, p := range []string{spec.Linux.CgroupsPath, plainSpec.Linux.CgroupsPath} {
				if left := cgroupLeft(t, p); len(left) > 0 {
					t.Errorf("cgroups left: %v", left)
				}
			}
		})
	}
}

// TestPreforkDevicesBlockMount: a mount the init makes from a block device
// opens the device, which the rules set ahead would refuse (they allow
// only its mknod), while the ordinary path mounts before the rules are
// programmed. Such a configuration has the rules opened up before the
// init gets its config and programmed in full after the mounts, as on the
// ordinary path, even when its rules are those set ahead.
func TestPreforkDevicesBlockMount(t *testing.T) {
	r := libRuntime(t)
	for _, tool := range []string{"mkfs.ext4", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img, "2M").CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	bundle := shBundle(t, `grep -c " /mnt ext4 " /proc/mounts`, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Devices: dockerDeviceRules()}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "ext4", Source: loop, Options: []string{"ro"}})
	})
	spec := bundleSpec(t, bundle)
	io, outF := preforkIO(t)
	id := "bt-pfdev-blk"
	pf, err := r.Prefork(context.Background(), id, runtime.PreforkOpts{
		CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io,
		Devices: dockerDeviceRules(), SetDevices: true,
	})
	if err != nil {
		t.Fatalf("prefork: %v", err)
	}
	defer pf.Release()
	before := runtime.DevicesPreset()
	list, got, used := createStartWait(t, r, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf}, spec.Linux.CgroupsPath, outF)
	if !used || runtime.DevicesPreset() != before {
		t.Errorf("pre-forked init used %v, rules kept %v; want used, not kept", used, runtime.DevicesPreset() != before)
	}
	if strings.TrimSpace(got) != "1" {
		t.Errorf("output %q, want the ext4 mount", got)
	}
	if strings.Contains(list, "a *:* rwm") || !strings.Contains(list, "c 1:3 rwm") {
		t.Errorf("devices cgroup once created: %q", list)
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}
