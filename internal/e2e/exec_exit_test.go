package e2e

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestExecExitCodeRecordedBeforeStreamEnds does what the docker CLI does
// for `docker exec`: attach, read the stream to its end, then inspect the
// exec once and take ExitCode as the status (0 while it is still
// running). The exit must be recorded before the stream ends, every
// time: a race here made `docker exec c false` exit 0 now and then (with
// the old code this test failed in 2 of 3 runs with the CPUs kept busy).
func TestExecExitCodeRecordedBeforeStreamEnds(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	ctx := context.Background()
	res, err := d.client.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "300"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		want := i%7 + 1
		ex, err := d.client.ExecCreate(ctx, res.ID, client.ExecCreateOptions{
			AttachStdout: true, AttachStderr: true,
			Cmd: []string{"sh", "-c", fmt.Sprintf("echo run %d; exit %d", i, want)},
		})
		if err != nil {
			t.Fatal(err)
		}
		at, err := d.client.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, at.Reader); err != nil {
			t.Fatal(err)
		}
		at.Close()
		insp, err := d.client.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if insp.Running || insp.ExitCode != want {
			t.Fatalf("exec %d: inspect right after its stream ended: running=%v exit code %d, want %d", i, insp.Running, insp.ExitCode, want)
		}
	}
}
