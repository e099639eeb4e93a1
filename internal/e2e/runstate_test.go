package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// The run state (running, pid, exit code) is written without an fsync to
// <data-root>/containers/<id>/runstate (internal/container/runstate.go).
// These tests crash berthd (kill -9, or SIGKILL at a failpoint) where
// that matters and check what a restart finds.

// restartWith starts berthd again, with BERTH_FAILPOINT=fp when fp is set.
func (d *daemon) restartWith(fp string) {
	d.env = nil
	if fp != "" {
		d.env = []string{"BERTH_FAILPOINT=" + fp}
	}
	d.start()
}

// awaitCrash waits for berthd to die at its failpoint.
func (d *daemon) awaitCrash() {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.t.Fatal("berthd did not crash at its failpoint")
	}
	d.client.Close()
	d.cmd = nil
	d.env = nil
}

// state is docker inspect's "<status> <exit code>" of ref.
func (d *daemon) state(ref string) string {
	d.t.Helper()
	out, e, code := d.cli(bins.docker, nil, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", ref)
	if code != 0 {
		d.t.Fatalf("inspect %s: %s", ref, e)
	}
	return strings.TrimSpace(out)
}

func (d *daemon) mustCLI(args ...string) string {
	d.t.Helper()
	out, e, code := d.cli(bins.docker, nil, args...)
	if code != 0 {
		d.t.Fatalf("docker %v: exit %d: %s", args, code, e)
	}
	return strings.TrimSpace(out)
}

// TestRunStateKill9 kills berthd after a run -d, a run that exited 7, a
// create and a removal: the restarted berthd finds the first running
// (live restore), the second exited with 7, the third created, the last
// gone with its files.
func TestRunStateKill9(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.mustCLI("run", "-d", "--network", "none", "--name", "up", "busybox", "sleep", "300")
	if _, e, code := d.cli(bins.docker, nil, "run", "--network", "none", "--name", "seven", "busybox", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("run exit 7: %d %s", code, e)
	}
	d.mustCLI("create", "--network", "none", "--name", "fresh", "busybox", "true")
	gone := d.mustCLI("run", "-d", "--network", "none", "--name", "gone", "busybox", "sleep", "300")
	d.mustCLI("rm", "-f", "gone")
	d.kill9()
	d.start()
	if st := d.state("up"); st != "running 0" {
		t.Fatalf("up after kill -9: %s, want running", st)
	}
	if out := d.mustCLI("exec", "up", "echo", "still here"); out != "still here" {
		t.Fatalf("exec after kill -9: %q", out)
	}
	if st := d.state("seven"); st != "exited 7" {
		t.Fatalf("seven after kill -9: %s, want exited 7", st)
	}
	if st := d.state("fresh"); st != "created 0" {
		t.Fatalf("fresh after kill -9: %s, want created", st)
	}
	if _, err := d.client.ContainerInspect(context.Background(), gone, client.ContainerInspectOptions{}); err == nil {
		t.Fatal("a removed container is back after kill -9")
	}
	// What a removal cut short by the kill leaves goes at Restore.
	if _, err := os.Stat(filepath.Join(d.dataRoot, "containers", gone)); err == nil {
		t.Fatal("the removed container's directory is still there after the restart")
	}
	// A stop now is recorded as any other.
	d.mustCLI("stop", "-t", "0", "up")
	if st := d.state("up"); st != "exited 137" {
		t.Fatalf("up after stop: %s", st)
	}
}

// TestRunStateFailpoints crashes berthd at the points whose writes are
// not synced or whose order matters, and checks the state after restart.
func TestRunStateFailpoints(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")

	// Killed after the running state is written, before start answers:
	// the container is found running again.
	d.mustCLI("create", "--network", "none", "--name", "s1", "busybox", "sleep", "300")
	d.stop()
	d.restartWith("start-recorded")
	if _, _, code := d.cli(bins.docker, nil, "start", "s1"); code == 0 {
		t.Fatal("start answered although berthd was to crash before answering")
	}
	d.awaitCrash()
	d.restartWith("")
	if st := d.state("s1"); st != "running 0" {
		t.Fatalf("s1 after a crash at start-recorded: %s, want running", st)
	}
	if out := d.mustCLI("exec", "s1", "echo", "ok"); out != "ok" {
		t.Fatalf("exec: %q", out)
	}

	// Killed after the exit is written (wait was answered before it).
	d.stop()
	d.restartWith("exit-recorded")
	d.cli(bins.docker, nil, "run", "--network", "none", "--name", "e5", "busybox", "sh", "-c", "exit 5")
	d.awaitCrash()
	d.restartWith("")
	if st := d.state("e5"); st != "exited 5" {
		t.Fatalf("e5 after a crash at exit-recorded: %s, want exited 5", st)
	}
	if st := d.state("s1"); st != "running 0" {
		t.Fatalf("s1 after the second crash: %s, want running", st)
	}

	// Killed once the record is created, before create answers: the
	// container is whole (its snapshot is there: it runs).
	d.stop()
	d.restartWith("create-recorded")
	d.cli(bins.docker, nil, "create", "--network", "none", "--name", "c1", "busybox", "sh", "-c", "exit 3")
	d.awaitCrash()
	d.restartWith("")
	if st := d.state("c1"); st != "created 0" {
		t.Fatalf("c1 after a crash at create-recorded: %s", st)
	}
	if _, e, code := d.cli(bins.docker, nil, "start", "-a", "c1"); code != 3 {
		t.Fatalf("start -a c1: exit %d (%s), want 3", code, e)
	}

	// Killed once the record is deleted, before rm answers: gone, and so
	// are its files and its snapshot.
	r1 := d.mustCLI("create", "--network", "none", "--name", "r1", "busybox", "true")
	d.stop()
	d.restartWith("remove-deleted")
	if _, _, code := d.cli(bins.docker, nil, "rm", "r1"); code == 0 {
		t.Fatal("rm answered although berthd was to crash before answering")
	}
	d.awaitCrash()
	d.restartWith("")
	if _, e, code := d.cli(bins.docker, nil, "inspect", "r1"); code == 0 || !strings.Contains(e, "No such") {
		t.Fatalf("r1 after a crash at remove-deleted: %d %s", code, e)
	}
	for _, dir := range []string{filepath.Join(d.dataRoot, "containers", r1), filepath.Join(d.execRoot, "c", r1)} {
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("%s left after a crash at remove-deleted", dir)
		}
	}
	snaps := d.mustCLI("ps", "-aq", "--no-trunc")
	if strings.Contains(snaps, r1) {
		t.Fatal("r1 listed")
	}

	// Killed after rm answered (or just before: the commit runs beside
	// the answer), before the deletion was committed: the tombstone in the
	// run-state file finishes the removal at Restore.
	r2 := d.mustCLI("run", "-d", "--network", "none", "--name", "r2", "busybox", "sleep", "300")
	d.stop()
	d.restartWith("remove-before-commit")
	d.cli(bins.docker, nil, "rm", "-f", "r2")
	d.awaitCrash()
	layers := d.snapshotDirs()
	d.restartWith("")
	if _, e, code := d.cli(bins.docker, nil, "inspect", "r2"); code == 0 || !strings.Contains(e, "No such") {
		t.Fatalf("r2 after a crash at remove-before-commit: %d %s", code, e)
	}
	for _, dir := range []string{filepath.Join(d.dataRoot, "containers", r2), filepath.Join(d.execRoot, "c", r2)} {
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("%s left after a crash at remove-before-commit", dir)
		}
	}
	if n := d.snapshotDirs(); n >= layers {
		t.Fatalf("r2's snapshot left: %d snapshot directories, %d before the restart", n, layers)
	}
	for _, s := range shimsUnder(d.execRoot) {
		if strings.Contains(s, r2) {
			t.Fatalf("r2's shim still runs: %s", s)
		}
	}
	// The name is free again.
	d.mustCLI("create", "--network", "none", "--name", "r2", "busybox", "true")
	d.mustCLI("rm", "-f", "s1", "e5", "c1", "r2")
}

// TestRemoveNameReuse: a name is free as soon as rm answered, although
// the deletion of the record is committed in the background.
func TestRemoveNameReuse(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	ctx := context.Background()
	for i := range 20 {
		res, err := d.client.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "same", Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{NetworkMode: "none"}})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if _, err := d.client.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{}); err != nil {
			t.Fatalf("rm %d: %v", i, err)
		}
	}
	d.stop()
	d.start()
	list, err := d.client.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("after 20 create/rm of one name and a restart: %v %v", list.Items, err)
	}
}

// TestRunStateGarbled: a run-state file that holds nothing valid (what a
// power loss can leave) or none at all costs only the state it held: the
// container comes back with its record's state (created: not running),
// whole — it starts, runs and is removed — and nothing of its old run is
// left running.
func TestRunStateGarbled(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	up := d.mustCLI("run", "-d", "--network", "none", "--name", "up", "busybox", "sleep", "300")
	seven := d.mustCLI("create", "--network", "none", "--name", "seven", "busybox", "sh", "-c", "exit 7")
	if _, _, code := d.cli(bins.docker, nil, "start", "-a", "seven"); code != 7 {
		t.Fatalf("start -a seven: %d", code)
	}
	d.stop() // waits for the exit's write
	garbage := bytes.Repeat([]byte{0xa5}, 128<<10)
	if err := os.WriteFile(filepath.Join(d.dataRoot, "containers", up, "runstate"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d.dataRoot, "containers", seven, "runstate")); err != nil {
		t.Fatal(err)
	}
	d.start()
	for _, name := range []string{"up", "seven"} {
		if st := d.state(name); st != "created 0" {
			t.Fatalf("%s with its run state lost: %s, want created", name, st)
		}
	}
	// The old run of up is gone (its shim was told to shut down).
	waitFor(t, "up's old shim to exit", 10*time.Second, func() bool {
		for _, s := range shimsUnder(d.execRoot) {
			if strings.Contains(s, up) {
				return false
			}
		}
		return true
	})
	if _, e, code := d.cli(bins.docker, nil, "start", "-a", "seven"); code != 7 {
		t.Fatalf("start -a seven after: %d %s", code, e)
	}
	d.mustCLI("start", "up")
	if st := d.state("up"); st != "running 0" {
		t.Fatalf("up after start: %s", st)
	}
	d.mustCLI("rm", "-f", "up", "seven")
}

// snapshotDirs counts the snapshot directories under the data root.
func (d *daemon) snapshotDirs() int {
	ents, _ := os.ReadDir(filepath.Join(d.dataRoot, "snapshots"))
	n := 0
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// TestSpareSnapshot: once a container of an image started, the next
// create of that image takes a writable snapshot prepared ahead (and the
// id it was named for); the container is whole (runs, writes, is
// removed). The spare never outlives its image: rmi takes every layer.
// A restart removes a spare nobody took.
func TestSpareSnapshot(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	layers := d.snapshotDirs()
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	// The spare: one snapshot directory more than the image's layers.
	waitFor(t, "a spare snapshot", 10*time.Second, func() bool { return d.snapshotDirs() == layers+1 })
	id := d.mustCLI("create", "--network", "none", "--name", "two", "busybox", "sh", "-c", "echo hi > /f; cat /f")
	if !strings.Contains(d.logBuf.String(), "create takes a prepared snapshot") || !strings.Contains(d.logBuf.String(), id[:12]) {
		t.Fatalf("create did not take the prepared snapshot:\n%s", d.logBuf)
	}
	if out, e, code := d.cli(bins.docker, nil, "start", "-a", "two"); code != 0 || out != "hi\n" {
		t.Fatalf("start -a two: %d %q %s", code, out, e)
	}
	if out := d.mustCLI("diff", "two"); !strings.Contains(out, "A /f") {
		t.Fatalf("diff of a container on a prepared snapshot: %q", out)
	}
	d.mustCLI("rm", "two")
	// A new spare was prepared after two's start; rmi lets it go with
	// the image's layers.
	waitFor(t, "the next spare", 10*time.Second, func() bool { return d.snapshotDirs() == layers+1 })
	d.mustCLI("rmi", "busybox")
	if d.snapshotDirs() != 0 {
		t.Fatalf("%d snapshot dirs left after rmi:\n%s", d.snapshotDirs(), d.logBuf)
	}

	// A spare nobody took is removed when berthd starts again.
	d.importBusybox("busybox:latest")
	d.mustCLI("run", "--rm", "--network", "none", "busybox", "true")
	waitFor(t, "a spare snapshot", 10*time.Second, func() bool { return d.snapshotDirs() == layers+1 })
	d.kill9()
	d.start()
	if n := d.snapshotDirs(); n != layers {
		t.Fatalf("%d snapshot directories after a restart, want the image's %d", n, layers)
	}
}

// TestEphemeralKill9: the record of a --rm container is the file
// "record" in its data directory, unsynced (internal/container/
// ephemeral.go). A kill -9 loses none of it: the restarted berthd finds
// a running --rm container running (exec works) and a created one
// created; each is removed once it exits, files and all.
func TestEphemeralKill9(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	up := d.mustCLI("run", "-d", "--rm", "--network", "none", "--name", "up", "busybox", "sleep", "300")
	made := d.mustCLI("create", "--rm", "--network", "none", "--name", "made", "busybox", "sh", "-c", "echo hi; exit 4")
	for _, id := range []string{up, made} {
		if _, err := os.Stat(filepath.Join(d.dataRoot, "containers", id, "record")); err != nil {
			t.Fatalf("no record file for a --rm container: %v", err)
		}
	}
	d.kill9()
	d.start()
	if st := d.state("up"); st != "running 0" {
		t.Fatalf("up after kill -9: %s, want running", st)
	}
	if out := d.mustCLI("exec", "up", "echo", "still here"); out != "still here" {
		t.Fatalf("exec after kill -9: %q", out)
	}
	if st := d.state("made"); st != "created 0" {
		t.Fatalf("made after kill -9: %s, want created", st)
	}
	// The names are still taken.
	if _, e, code := d.cli(bins.docker, nil, "create", "--name", "up", "busybox", "true"); code == 0 || !strings.Contains(e, "already in use") {
		t.Fatalf("create with up's name: %d %s", code, e)
	}
	out, _, code := d.cli(bins.docker, nil, "start", "-a", "made")
	if code != 4 || strings.TrimSpace(out) != "hi" {
		t.Fatalf("start -a made: exit %d, %q", code, out)
	}
	d.mustCLI("stop", "-t", "0", "up")
	for _, id := range []string{up, made} {
		waitFor(t, "the --rm container's removal", 10*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(d.dataRoot, "containers", id))
			return err != nil
		})
	}
	if ids := d.mustCLI("ps", "-aq"); ids != "" {
		t.Fatalf("containers left: %q", ids)
	}
	// And again after a restart: nothing comes back.
	d.stop()
	d.start()
	if ids := d.mustCLI("ps", "-aq"); ids != "" {
		t.Fatalf("containers back after a restart: %q", ids)
	}
}
