package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestKill9DuringLifecycle kills berthd with SIGKILL at random moments
// while clients create, start, stop and remove containers, restarts it,
// and checks that every container it reports is whole (inspectable,
// removable) and that once all are removed nothing is left of them on
// disk.
func TestKill9DuringLifecycle(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for round := 0; round < 4; round++ {
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				cl := d.client
				for i := 0; ctx.Err() == nil; i++ {
					res, err := cl.ContainerCreate(ctx, client.ContainerCreateOptions{
						Name:   fmt.Sprintf("r%d-w%d-%d", round, w, i),
						Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "30"}},
					})
					if err != nil {
						return
					}
					if _, err := cl.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
						return
					}
					if i%2 == 0 {
						zero := 0
						if _, err := cl.ContainerStop(ctx, res.ID, client.ContainerStopOptions{Timeout: &zero}); err != nil {
							return
						}
						if _, err := cl.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{}); err != nil {
							return
						}
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		d.kill9()
		cancel()
		wg.Wait()
		d.start()
		ctx2 := context.Background()
		list, err := d.client.ContainerList(ctx2, client.ContainerListOptions{All: true})
		if err != nil {
			exited := "running"
			select {
			case <-d.exited:
				exited = "exited"
			default:
			}
			t.Fatalf("round %d: list after kill -9: %v (berthd %s; its log:\n%s)", round, err, exited, d.logBuf)
		}
		for _, c := range list.Items {
			if _, err := d.client.ContainerInspect(ctx2, c.ID, client.ContainerInspectOptions{}); err != nil {
				t.Fatalf("round %d: inspect %s: %v", round, c.ID, err)
			}
		}
	}
	ctx := context.Background()
	list, err := d.client.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) == 0 {
		t.Fatal("no container survived any round: the test did not exercise anything")
	}
	for _, c := range list.Items {
		if _, err := d.client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatalf("rm -f %s: %v", c.ID, err)
		}
	}
	// Removal finishes its file cleanup in the background: restart once
	// more (Close waits for it, Restore sweeps what is left) and check.
	d.stop()
	d.start()
	for _, dir := range []string{filepath.Join(d.dataRoot, "containers"), filepath.Join(d.execRoot, "c")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s still has %v after every container was removed", dir, names)
		}
	}
	// No writable snapshot of a container is left either.
	snaps, _ := os.ReadDir(filepath.Join(d.dataRoot, "snapshots"))
	var dirs int
	for _, e := range snaps {
		if e.IsDir() {
			dirs++
		}
	}
	imgs, _ := d.client.ImageInspect(ctx, "busybox")
	if want := len(imgs.RootFS.Layers); dirs != want {
		t.Errorf("snapshots: %d directories for an image of %d layers", dirs, want)
	}
	if n := len(shimsUnder(d.execRoot)); n != 0 {
		t.Errorf("%d shims still running", n)
	}
}
