package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spareRecord is what the runtime keeps for a pre-forked init.
type spareRecord struct {
	ID      string `json:"id"`
	Bundle  string `json:"bundle"`
	InitPid int    `json:"init_process_pid"`
}

// waitSpare waits for the warm spare's pre-forked init: the runtime
// record without a bundle under the daemon's runtime root whose init runs,
// other than not.
func waitSpare(t *testing.T, d *daemon, not string) spareRecord {
	t.Helper()
	var rec spareRecord
	waitFor(t, "the warm spare's pre-forked init", 20*time.Second, func() bool {
		var ok bool
		rec, ok = spareNow(d, not)
		return ok
	})
	return rec
}

// spareNow returns the warm spare's pre-forked init, other than not, if
// there is one now (waitSpare without the wait).
func spareNow(d *daemon, not string) (spareRecord, bool) {
	ents, _ := os.ReadDir(filepath.Join(d.execRoot, "runtime"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(d.execRoot, "runtime", e.Name(), "state.json"))
		if err != nil {
			continue
		}
		var r spareRecord
		if json.Unmarshal(b, &r) == nil && r.Bundle == "" && r.ID != not && pidAlive(r.InitPid) {
			return r, true
		}
	}
	return spareRecord{}, false
}

// inCgroup says whether /proc/<pid>/cgroup puts pid in cgroup want in
// every hierarchy it lists.
func inCgroup(t *testing.T, pid int, want string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		if parts := strings.SplitN(l, ":", 3); len(parts) != 3 || parts[2] != want {
			return false
		}
	}
	return len(lines) > 0
}

// TestSparePrefork: after a start, berthd keeps a warm spare shim whose
// container init is already pre-forked, in its cgroups (/berth/<id> in
// every hierarchy) for a container id of its own; the next fitting
// container (--network none or a bridge, no tty or stdin, default cgroup
// parent) gets that id and that init, with its limits set (on a bridge
// network the init joins the sandbox's network namespace); one that does
// not fit gets its own id. An unused spare goes with berthd (kill -9
// included: it lets its init go by itself; a stop waits for it), and what
// a spare killed outright leaves (the runtime record and cgroups of its
// exited init) is swept when berthd starts again.
func TestSparePrefork(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := d.cli(dk, nil, args...)
		if code != 0 {
			t.Fatalf("docker %v: exit %d: %s %s", args, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	run("run", "--rm", "--network", "none", "busybox", "true")
	sp := waitSpare(t, d, "")
	// (The init joins its v1 cgroups in its constructor, just after the
	// clone: the record can be there a moment before.)
	waitFor(t, "the spare's init in /berth/"+sp.ID+" in every hierarchy", 10*time.Second, func() bool {
		return inCgroup(t, sp.InitPid, "/berth/"+sp.ID)
	})

	// Not fitting (a terminal): its own id. (Its prepare took the spare
	// shim, which let the spare's init go; its start left a new spare.)
	if id := run("run", "-d", "-t", "--network", "none", "busybox", "true"); id == sp.ID {
		t.Error("a container with a terminal got the spare")
	} else {
		run("rm", "-f", id)
	}
	sp = waitSpare(t, d, sp.ID)
	// A spare's init that waits gives back its binary's clean pages; the
	// one claimed next is such a trimmed init.
	waitInitTrimmed(t, sp.InitPid)

	// Fitting: the spare's id and init, limits on its cgroup.
	id := run("run", "-d", "--network", "none", "--memory", "64m", "busybox", "sleep", "300")
	if id != sp.ID {
		t.Fatalf("container %s did not get the spare (%s)", id, sp.ID)
	}
	pid := run("inspect", "-f", "{{.State.Pid}}", id)
	if pid != strconv.Itoa(sp.InitPid) {
		t.Errorf("container pid %s, the spare's init %d", pid, sp.InitPid)
	}
	if !inCgroup(t, sp.InitPid, "/berth/"+id) {
		t.Errorf("the container is not in /berth/%s in every hierarchy", id)
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory/berth/" + id + "/memory.limit_in_bytes"); err != nil || strings.TrimSpace(string(b)) != "67108864" {
		t.Errorf("memory limit %q %v", b, err)
	}
	run("rm", "-f", id)

	// The default bridge network: the spare's init joins the sandbox's
	// network namespace once it has its config.
	sp = waitSpare(t, d, id)
	id = run("run", "-d", "busybox", "sleep", "300")
	if id != sp.ID {
		t.Fatalf("bridge container %s did not get the spare (%s)", id, sp.ID)
	}
	key := run("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", id)
	ip := run("inspect", "-f", "{{.NetworkSettings.IPAddress}}", id)
	var sbx, got syscall.Stat_t
	if err := syscall.Stat(key, &sbx); err != nil || ip == "" {
		t.Fatalf("sandbox %q (%v), address %q", key, err, ip)
	}
	if err := syscall.Stat("/proc/"+strconv.Itoa(sp.InitPid)+"/ns/net", &got); err != nil || got.Ino != sbx.Ino || got.Dev != sbx.Dev {
		t.Errorf("container in network namespace %d (%v), its sandbox %s is %d", got.Ino, err, key, sbx.Ino)
	}
	if out := run("exec", id, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, " "+ip+"/") {
		t.Errorf("eth0 in the container: %q, want %s", out, ip)
	}
	run("rm", "-f", id)

	// A spare shim killed outright, then berthd: swept at the next start.
	sp = waitSpare(t, d, id)
	shimPid := parentPid(sp.InitPid)
	if err := syscall.Kill(shimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed spare's init to exit", 10*time.Second, func() bool { return !pidAlive(sp.InitPid) })
	if len(cgroupDirsOf(sp.ID)) == 0 {
		t.Fatal("nothing left by the killed spare: the sweep is not tested")
	}
	waitShimsGone(t, d)
	d.kill9()
	d.start()
	if left := cgroupDirsOf(sp.ID); len(left) > 0 {
		t.Errorf("cgroups of the killed spare left after restart: %v", left)
	}
	if _, err := os.Stat(filepath.Join(d.execRoot, "runtime", sp.ID)); !os.IsNotExist(err) {
		t.Errorf("runtime record of the killed spare left after restart: %v", err)
	}

	// berthd killed: its spare lets its init go.
	run("run", "--rm", "--network", "none", "busybox", "true")
	sp = waitSpare(t, d, "")
	shimPid = parentPid(sp.InitPid)
	waitShimsGone(t, d)
	d.kill9()
	for _, p := range []int{shimPid, sp.InitPid} {
		waitFor(t, "the spare and its init to go with berthd", 10*time.Second, func() bool { return !pidAlive(p) })
	}
	waitFor(t, "the spare's cgroups and record to go", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(d.execRoot, "runtime", sp.ID))
		return len(cgroupDirsOf(sp.ID)) == 0 && os.IsNotExist(err)
	})

	// berthd stopped (SIGTERM: Close releases the spare before it exits).
	d.start()
	run("run", "--rm", "busybox", "true")
	sp = waitSpare(t, d, "")
	shimPid = parentPid(sp.InitPid)
	d.stop()
	if pidAlive(shimPid) || pidAlive(sp.InitPid) {
		t.Errorf("after berthd stopped: spare alive %v, its init alive %v", pidAlive(shimPid), pidAlive(sp.InitPid))
	}
	if _, err := os.Stat(filepath.Join(d.execRoot, "runtime", sp.ID)); len(cgroupDirsOf(sp.ID)) > 0 || !os.IsNotExist(err) {
		t.Errorf("after berthd stopped: cgroups %v, runtime record %v", cgroupDirsOf(sp.ID), err)
	}
}

func parentPid(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// waitShimsGone waits until the shims of removed containers have exited
// (their shutdown is background work of the remove): a kill -9 of berthd
// before would leave them to their idle timeout, which is not what this
// test is about.
func waitShimsGone(t *testing.T, d *daemon) {
	t.Helper()
	waitFor(t, "the removed containers' shims to exit", 10*time.Second, func() bool { return len(shimsUnder(d.execRoot)) == 0 })
}

// waitInitTrimmed waits until the waiting init pid has dropped its clean
// text pages (initproc's idle trim): the file-backed part of its resident
// set (smaps_rollup Rss minus Anonymous), ~3.3 MiB of the runtime binary
// after its start, falls under 1.75 MiB. (What stays after a trim moves
// with the binary's layout: 1448 KiB for 20640d8's init, 1584 KiB for one
// 84 KiB larger, the same with the added code never run.)
func waitInitTrimmed(t *testing.T, pid int) {
	t.Helper()
	fileKiB := func() int {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		if err != nil {
			t.Fatalf("the spare's init: %v", err)
		}
		var rss, anon int
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "Rss:":
				rss, _ = strconv.Atoi(f[1])
			case "Anonymous:":
				anon, _ = strconv.Atoi(f[1])
			}
		}
		return rss - anon
	}
	waitFor(t, "the spare's init to trim its text pages", 15*time.Second, func() bool { return fileKiB() < 1792 })
}
