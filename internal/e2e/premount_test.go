package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// overlayLowers returns the first lowerdir of the overlay mounted at dir
// ("" when none is).
func overlayLowers(dir string) string {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != dir || f[2] != "overlay" {
			continue
		}
		for _, o := range strings.Split(f[3], ",") {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				return strings.Split(v, ":")[0]
			}
		}
	}
	return ""
}

// spareMount waits for the one spare snapshot mounted ahead (under
// <exec-root>/c/, not any of the containers in not) and returns its
// mount point.
func (d *daemon) spareMount(t *testing.T, not ...string) string {
	t.Helper()
	var got string
	waitFor(t, "a spare snapshot mounted ahead", 10*time.Second, func() bool {
		got = ""
		for _, m := range mountsUnder(filepath.Join(d.execRoot, "c")) {
			id := filepath.Base(filepath.Dir(m))
			skip := false
			for _, n := range not {
				skip = skip || strings.HasPrefix(n, id)
			}
			// Done (its bind targets and files made) once logged.
			if !skip && filepath.Base(m) == "rootfs" && len(id) == 64 && strings.Contains(d.logBuf.String(), "spare snapshot mounted ahead\" svc=container id="+id[:12]) {
				got = m
			}
		}
		return got != ""
	})
	return got
}

// TestSpareSnapshotMounted: the spare snapshot is mounted ahead once a
// start ended, with the bind targets of the network files made in it and
// the files create and start write; the create that takes it
// gets the mount at its own bundle and its first start finds it there
// (the init, unsharing its mount namespace after that, runs the command
// on it). The bind targets never show in diff (as with Docker, which keeps
// them in its init layer), and /etc keeps the image's mode, owner and
// times. A copy into the created container, a create that fails after
// taking the spare, an image removal, a stop and a kill -9 of berthd all
// leave nothing mounted.
func TestSpareSnapshotMounted(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	spare := d.spareMount(t)
	lower := overlayLowers(spare)
	if lower == "" {
		t.Fatalf("no overlay at %s", spare)
	}
	var img, got syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(lower, "etc"), &img); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Lstat(filepath.Join(spare, "etc"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Mode != img.Mode || got.Uid != img.Uid || got.Gid != img.Gid || got.Mtim != img.Mtim {
		t.Errorf("/etc in the spare: mode %o %d:%d mtime %v, the image's %o %d:%d %v", got.Mode, got.Uid, got.Gid, got.Mtim, img.Mode, img.Uid, img.Gid, img.Mtim)
	}
	for _, name := range []string{"resolv.conf", "hosts"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(spare, "etc", name), &st); err != nil || st.Mode != syscall.S_IFREG|0o644 || st.Size != 0 {
			t.Errorf("bind target /etc/%s in the spare: %v mode %o size %d", name, err, st.Mode, st.Size)
		}
	}
	// The files create and start write, made (empty) ahead.
	spareID := filepath.Base(filepath.Dir(spare))
	for _, f := range []string{filepath.Join(d.dataRoot, "containers", spareID, "hostname"), filepath.Join(d.dataRoot, "containers", spareID, "hosts"),
		filepath.Join(d.dataRoot, "containers", spareID, "resolv.conf"), filepath.Join(d.execRoot, "c", spareID, "config.json"),
		filepath.Join(d.execRoot, "c", spareID, "shim.log"), filepath.Join(d.execRoot, "c", spareID, ".exit.json.tmp"),
		filepath.Join(d.dataRoot, "containers", spareID, "spare-json.log")} {
		if st, err := os.Stat(f); err != nil || st.Size() != 0 {
			t.Errorf("%s in the spare: %v", f, err)
		}
	}
	var spareLog syscall.Stat_t
	if err := syscall.Stat(filepath.Join(d.dataRoot, "containers", spareID, "spare-json.log"), &spareLog); err != nil {
		t.Fatal(err)
	}
	// The image's own /etc/hostname stays the image's.
	if b, err := os.ReadFile(filepath.Join(spare, "etc", "hostname")); err != nil || len(b) == 0 {
		t.Errorf("the image's /etc/hostname in the spare: %q %v", b, err)
	}

	// The create takes the spare and its mount; diff of the created
	// container is empty.
	id := d.mustCLI("create", "--network", "none", "--name", "two", "busybox", "sh", "-c", "echo hi > /f; cat /etc/hostname; test -f /etc/resolv.conf && test -f /etc/hosts && echo ok")
	mine := filepath.Join(d.execRoot, "c", id, "rootfs")
	if m := mountsUnder(filepath.Join(d.execRoot, "c")); len(m) == 0 || !contains(m, mine) || contains(m, spare) {
		t.Fatalf("mounts after create: %v (want %s, not %s)", m, mine, spare)
	}
	if b, err := os.ReadFile(filepath.Join(d.dataRoot, "containers", id, "hostname")); err != nil || string(b) != id[:12]+"\n" {
		t.Errorf("two's hostname file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(d.dataRoot, "containers", spareID)); !os.IsNotExist(err) {
		t.Errorf("the spare's data directory is still there: %v", err)
	}
	// Its json-file log is the one made ahead, renamed; none other is left.
	logPath := filepath.Join(d.dataRoot, "containers", id, id+"-json.log")
	var log syscall.Stat_t
	if err := syscall.Stat(logPath, &log); err != nil || log.Ino != spareLog.Ino {
		t.Errorf("two's log %s: %v, inode %d, want the spare's %d", logPath, err, log.Ino, spareLog.Ino)
	}
	if _, err := os.Stat(filepath.Join(d.dataRoot, "containers", id, "spare-json.log")); !os.IsNotExist(err) {
		t.Errorf("the spare's log file is left beside two's: %v", err)
	}
	if out := d.mustCLI("diff", "two"); out != "" {
		t.Errorf("diff of a created container: %q", out)
	}
	if out, e, code := d.cli(bins.docker, nil, "start", "-a", "two"); code != 0 || out != id[:12]+"\nok\n" {
		t.Fatalf("start -a two: %d %q %s", code, out, e)
	}
	if !strings.Contains(d.logBuf.String(), "start finds its root mounted\" svc=container id="+id[:12]) {
		t.Errorf("the start did not use the root mounted ahead:\n%s", d.logBuf)
	}
	// Its init was pre-forked: it shares berthd's mount namespace until
	// it has its config, so it sees the root mounted ahead, whenever that
	// was mounted.
	if !strings.Contains(d.logBuf.String(), "shim spawned\" svc=container id="+id[:12]+" preforked=true") {
		t.Errorf("two's init was not pre-forked:\n%s", d.logBuf)
	}
	// The log made ahead holds the run's output; the exit went through
	// the temporary file made ahead (renamed to exit.json).
	if out := d.mustCLI("logs", "two"); out != id[:12]+"\nok" {
		t.Errorf("logs two: %q", out)
	}
	// (The shim records the exit once it has reaped the program, which
	// may be after the attach stream ended.)
	waitFor(t, "two's exit.json", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(d.execRoot, "c", id, "exit.json"))
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(d.execRoot, "c", id, ".exit.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("the exit's temporary file is left: %v", err)
	}
	out := d.mustCLI("diff", "two")
	if !strings.Contains(out, "A /f") {
		t.Errorf("diff after the run: %q", out)
	}
	for _, p := range []string{"/etc", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"} {
		for _, l := range strings.Split(out, "\n") {
			if len(l) > 2 && l[2:] == p {
				t.Errorf("diff shows %s: %q", p, out)
			}
		}
	}
	d.mustCLI("rm", "two")
	waitFor(t, "two's root unmounted", 10*time.Second, func() bool { return !contains(mountsUnder(d.execRoot), mine) })

	// A fresh container that ran on a spare: nothing in diff, and its
	// commit adds no layer.
	d.spareMount(t)
	d.mustCLI("run", "--name", "fresh", "--network", "none", "busybox", "true")
	if out := d.mustCLI("diff", "fresh"); out != "" {
		t.Errorf("diff of a fresh container: %q", out)
	}
	d.mustCLI("commit", "fresh", "fresh:img")
	if got, want := d.mustCLI("inspect", "-f", "{{len .RootFS.Layers}}", "fresh:img"), d.mustCLI("inspect", "-f", "{{len .RootFS.Layers}}", "busybox"); got != want {
		t.Errorf("commit of a fresh container: %s layers, the image has %s", got, want)
	}
	d.mustCLI("rm", "fresh")
	// Another image's create replaces the spare: the old one is unmounted.
	old := d.spareMount(t)
	d.mustCLI("run", "--rm", "--network", "none", "fresh:img", "true")
	other := d.spareMount(t, filepath.Base(filepath.Dir(old)))
	waitFor(t, "one spare mounted", 10*time.Second, func() bool {
		m := mountsUnder(filepath.Join(d.execRoot, "c"))
		return len(m) == 1 && m[0] == other
	})
	if _, err := os.Stat(filepath.Dir(old)); !os.IsNotExist(err) {
		t.Errorf("the replaced spare's bundle directory: %v", err)
	}
	d.mustCLI("rmi", "fresh:img")
	if m := mountsUnder(filepath.Join(d.execRoot, "c")); len(m) != 0 {
		t.Errorf("mounts after rmi fresh:img: %v", m)
	}
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")

	// A copy into a created container on a mounted spare: mounted again
	// for the copy, then as usual at start.
	d.spareMount(t)
	d.mustCLI("create", "--network", "none", "--name", "three", "busybox", "cat", "/etc/x")
	src := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(src, []byte("copied\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mustCLI("cp", src, "three:/etc/x")
	if out, e, code := d.cli(bins.docker, nil, "start", "-a", "three"); code != 0 || out != "copied\n" {
		t.Fatalf("start -a three: %d %q %s", code, out, e)
	}
	d.mustCLI("rm", "three")

	// A create that takes the spare and fails (the name is taken).
	d.spareMount(t)
	four := d.mustCLI("create", "--network", "none", "--name", "four", "busybox", "true")
	// (A spare is mounted once a start ended.)
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	next := d.spareMount(t, four)
	if _, e, code := d.cli(bins.docker, nil, "create", "--network", "none", "--name", "four", "busybox", "true"); code == 0 || !strings.Contains(e, "already in use") {
		t.Fatalf("second create of four: %d %s", code, e)
	}
	if m := mountsUnder(filepath.Join(d.execRoot, "c")); len(m) != 1 || m[0] != filepath.Join(d.execRoot, "c", four, "rootfs") {
		t.Errorf("mounts after a failed create took the spare %s: %v", next, m)
	}
	nextID := filepath.Base(filepath.Dir(next))
	for _, dir := range []string{filepath.Join(d.dataRoot, "containers", nextID), filepath.Join(d.execRoot, "c", nextID)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left by the failed create: %v", dir, err)
		}
	}
	d.mustCLI("rm", "four")
	waitFor(t, "four's root unmounted", 10*time.Second, func() bool { return len(mountsUnder(filepath.Join(d.execRoot, "c"))) == 0 })

	// An image removal with a mounted spare.
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	d.spareMount(t)
	d.mustCLI("rmi", "busybox")
	if m := mountsUnder(filepath.Join(d.execRoot, "c")); len(m) != 0 {
		t.Errorf("mounts after rmi: %v", m)
	}
	if n := d.snapshotDirs(); n != 0 {
		t.Errorf("%d snapshot dirs after rmi", n)
	}
	d.noContainerDirs(t, "rmi")

	// A kill -9 of berthd with a spare and a created container mounted
	// ahead: the next berthd unmounts both; the container still runs.
	d.importBusybox("busybox:latest")
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	d.spareMount(t)
	five := d.mustCLI("create", "--network", "none", "--name", "five", "busybox", "cat", "/etc/hostname")
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	d.spareMount(t, five)
	if !contains(mountsUnder(filepath.Join(d.execRoot, "c")), filepath.Join(d.execRoot, "c", five, "rootfs")) {
		t.Fatal("five's root is not mounted ahead")
	}
	d.kill9()
	d.start()
	if m := mountsUnder(filepath.Join(d.execRoot, "c")); len(m) != 0 {
		t.Errorf("mounts after kill -9 and restart: %v", m)
	}
	if out, e, code := d.cli(bins.docker, nil, "start", "-a", "five"); code != 0 || out != five[:12]+"\n" {
		t.Fatalf("start -a five after the restart: %d %q %s", code, out, e)
	}

	// A stop with a spare and a created container mounted ahead.
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	d.spareMount(t)
	six := d.mustCLI("create", "--network", "none", "--name", "six", "busybox", "true")
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	d.spareMount(t, six)
	if !contains(mountsUnder(filepath.Join(d.execRoot, "c")), filepath.Join(d.execRoot, "c", six, "rootfs")) {
		t.Fatal("six's root is not mounted ahead")
	}
	d.stop()
	if m := mountsUnder(filepath.Join(d.execRoot, "c")); len(m) != 0 {
		t.Errorf("mounts after berthd stopped: %v", m)
	}
	d.start()
	d.mustCLI("rm", "five", "six")
	d.noContainerDirs(t, "the last rm")
}

// noContainerDirs waits until no container directory is left under the
// data root and the exec root (no container exists).
func (d *daemon) noContainerDirs(t *testing.T, after string) {
	t.Helper()
	var left []string
	ok := false
	deadline := time.Now().Add(10 * time.Second)
	for !ok && time.Now().Before(deadline) {
		left = nil
		for _, dir := range []string{filepath.Join(d.dataRoot, "containers"), filepath.Join(d.execRoot, "c")} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				left = append(left, filepath.Join(dir, e.Name()))
			}
		}
		if ok = len(left) == 0; !ok {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ok {
		t.Errorf("container directories left after %s: %v", after, left)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// containerMounts lists the roots mounted under <exec-root>/c that belong
// to containers (not a spare snapshot mounted ahead).
func (d *daemon) containerMounts(t *testing.T) []string {
	t.Helper()
	list, err := d.client.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range list.Items {
		ids[c.ID] = true
	}
	var out []string
	for _, m := range mountsUnder(filepath.Join(d.execRoot, "c")) {
		if ids[filepath.Base(filepath.Dir(m))] {
			out = append(out, m)
		}
	}
	return out
}
