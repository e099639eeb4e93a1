package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// exitpathScript writes 300 numbered lines and one to stderr, then exits 7.
const exitpathScript = `i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; echo done >&2; exit 7`

// runToWait creates and starts a container running exitpathScript and
// waits for it as `run --rm` does (wait registered before start); it
// checks the exit code and that the log is complete when wait answers.
func runToWait(t *testing.T, d *daemon, name string) string {
	t.Helper()
	ctx := context.Background()
	res, err := d.client.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", exitpathScript}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := d.client.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := d.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-w.Result:
		if r.StatusCode != 7 {
			t.Fatalf("%s: exit code %d, want 7", name, r.StatusCode)
		}
	case err := <-w.Error:
		t.Fatal(err)
	}
	// Logs are complete once wait answered: no polling here.
	rc, err := d.client.ContainerLogs(ctx, res.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	_, err = stdcopy.StdCopy(&out, &errOut, rc)
	rc.Close()
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 300 || lines[299] != "line 299" || errOut.String() != "done\n" {
		t.Fatalf("%s: logs when wait answered: %d lines (last %q), stderr %q", name, len(lines), lines[len(lines)-1], errOut.String())
	}
	return res.ID
}

// containerCgroups lists the cgroup directories of container id in every
// hierarchy.
func containerCgroups(id string) []string {
	var out []string
	for _, pat := range []string{"/sys/fs/cgroup/*/berth/" + id, "/sys/fs/cgroup/berth/" + id} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	return out
}

// TestExitPathTeardown: the end of a run as `run --rm` drives it — wait
// answers with the exit code and the log complete, remove follows at once
// — and berthd stopped right after: nothing of a removed container is
// left (mounts, cgroups, files, its record), a container waited for but
// not removed comes back exited with its exit code after a restart, also
// after a kill -9 right after its wait answered.
func TestExitPathTeardown(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	ctx := context.Background()
	var removed, kept []string
	t0 := time.Now()
	for i := range 6 {
		id := runToWait(t, d, fmt.Sprintf("exitpath-%d", i))
		if i%2 == 0 {
			if _, err := d.client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); err != nil {
				t.Fatalf("remove right after wait: %v", err)
			}
			removed = append(removed, id)
		} else {
			kept = append(kept, id)
		}
	}
	// Events in Docker's order, also with the exit learned while the
	// running state was being written: no die before start.
	for i := range 6 {
		want := "create,start,die"
		if i%2 == 0 {
			want += ",destroy"
		}
		if got := actions(d.eventsBetween(fmt.Sprintf("exitpath-%d", i), t0, time.Now())); got != want {
			t.Errorf("exitpath-%d events %s, want %s", i, got, want)
		}
	}
	// Stopped right after the last remove: Close finishes the teardowns.
	d.stop()
	if m := mountsUnder(d.execRoot); len(m) > 0 {
		t.Errorf("mounts left after stop: %v", m)
	}
	for _, id := range append(append([]string{}, removed...), kept...) {
		if cg := containerCgroups(id); len(cg) > 0 {
			t.Errorf("cgroups of %s left: %v", id[:12], cg)
		}
	}
	if shims := shimsUnder(d.execRoot); len(shims) > 0 {
		t.Errorf("shims left after stop: %v", shims)
	}
	d.start()
	for _, id := range removed {
		if _, err := d.client.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil {
			t.Errorf("removed container %s is back after restart", id[:12])
		}
		for _, dir := range []string{filepath.Join(d.execRoot, "c", id), filepath.Join(d.dataRoot, "containers", id)} {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("files of removed container left: %s", dir)
			}
		}
	}
	for _, id := range kept {
		insp, err := d.client.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st := insp.Container.State; st.Status != container.StateExited || st.ExitCode != 7 {
			t.Errorf("kept container %s after restart: status %s exit %d, want exited 7", id[:12], st.Status, st.ExitCode)
		}
	}

	// kill -9 right after wait answered (the exit may not be in the
	// database yet) and right after a remove answered.
	idKept := runToWait(t, d, "exitpath-k9-kept")
	idGone := runToWait(t, d, "exitpath-k9-gone")
	if _, err := d.client.ContainerRemove(ctx, idGone, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	d.kill9()
	d.start()
	insp, err := d.client.ContainerInspect(ctx, idKept, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := insp.Container.State; st.Status != container.StateExited || st.ExitCode != 7 {
		t.Errorf("after kill -9: status %s exit %d, want exited 7", st.Status, st.ExitCode)
	}
	if _, err := d.client.ContainerInspect(ctx, idGone, client.ContainerInspectOptions{}); err == nil {
		t.Error("container removed before kill -9 is back")
	}
	// Once the restored teardown is done (a graceful stop waits for it),
	// nothing of either is mounted or in a cgroup.
	d.stop()
	if m := mountsUnder(d.execRoot); len(m) > 0 {
		t.Errorf("mounts left after kill -9 and restart: %v", m)
	}
	for _, id := range []string{idKept, idGone} {
		if cg := containerCgroups(id); len(cg) > 0 {
			t.Errorf("cgroups of %s left: %v", id[:12], cg)
		}
	}
	d.start()
}
