package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// devicesList is the v1 devices cgroup of container id, sorted ("" on a
// host without it).
func devicesListOf(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile("/sys/fs/cgroup/devices/berth/" + id + "/devices.list")
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestSpareDeviceRules: the warm spare's init has the default device rules
// programmed before any container exists; a default container that claims
// it ends with the same devices cgroup as one created cold (a terminal
// does not fit the spare), and one with --device, which also claims it,
// gets its rule programmed and its node made and usable.
func TestSpareDeviceRules(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/devices/devices.list"); err != nil {
		t.Skip("no v1 devices cgroup")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := d.cli(bins.docker, nil, args...)
		if code != 0 {
			t.Fatalf("docker %v: exit %d: %s %s", args, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	run("run", "--rm", "--network", "none", "busybox", "true")
	sp := waitSpare(t, d, "")
	if l := devicesListOf(t, sp.ID); strings.Contains(l, "a *:* rwm") || !strings.Contains(l, "c 1:3 rwm") {
		t.Errorf("the spare's devices cgroup is not programmed: %q", l)
	}

	cold := run("run", "-d", "-t", "--network", "none", "busybox", "sleep", "300")
	defer run("rm", "-f", cold)
	sp = waitSpare(t, d, sp.ID)
	warm := run("run", "-d", "--network", "none", "busybox", "sleep", "300")
	defer run("rm", "-f", warm)
	if warm != sp.ID || cold == sp.ID {
		t.Fatalf("spare %s: default container %s, terminal container %s", sp.ID, warm, cold)
	}
	if w, c := devicesListOf(t, warm), devicesListOf(t, cold); w != c || w == "" {
		t.Errorf("devices cgroup of the spare's container:\n%s\ncreated cold:\n%s", w, c)
	}

	sp = waitSpare(t, d, warm)
	dev := run("run", "-d", "--network", "none", "--device", "/dev/net/tun", "busybox", "sleep", "300")
	defer run("rm", "-f", dev)
	if dev != sp.ID {
		t.Fatalf("container with --device %s did not get the spare %s", dev, sp.ID)
	}
	if l := devicesListOf(t, dev); !strings.Contains(l, "c 10:200 rwm") {
		t.Errorf("--device rule not programmed: %q", l)
	}
	if out := run("exec", dev, "sh", "-c", `ls -l /dev/net/tun && (: > /dev/net/tun) && echo open-ok`); !strings.Contains(out, "open-ok") || !strings.HasPrefix(out, "c") {
		t.Errorf("/dev/net/tun in the container: %q", out)
	}
	if _, errOut, code := d.cli(bins.docker, nil, "exec", warm, "sh", "-c", "mknod /tmp/t c 10 200 && : > /tmp/t"); code == 0 {
		t.Error("a default container opened 10:200")
	} else if !strings.Contains(errOut, "ermitted") {
		t.Errorf("opening 10:200 in a default container: %q", errOut)
	}
}
