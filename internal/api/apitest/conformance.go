package apitest

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/api"
	containerrouter "github.com/berth-dev/berth/internal/api/router/container"
	"github.com/berth-dev/berth/internal/errdefs"
)

// ContainerBackendSuite checks the parts of the container router's
// backend specification (router/container/backend.go) that clients
// branch on: error classes and messages, the 304 cases, wait conditions,
// attach before start, logs. Every implementation runs it — the fake here
// and the daemon's container service — with an image that has echo and
// sleep (busybox). Containers are named after the test and removed.
func ContainerBackendSuite(t *testing.T, b containerrouter.Backend, image string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix := strings.NewReplacer("/", "-", " ", "-").Replace(strings.ToLower(t.Name()))
	create := func(t *testing.T, name string, cmd ...string) string {
		t.Helper()
		r, err := b.ContainerCreate(ctx, containerrouter.CreateOptions{
			Name: prefix + "-" + name, Config: &container.Config{Image: image, Cmd: cmd},
			HostConfig: &container.HostConfig{}, NetworkingConfig: &network.NetworkingConfig{},
		})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		t.Cleanup(func() { b.ContainerRemove(context.Background(), r.ID, containerrouter.RemoveOptions{Force: true}) })
		return r.ID
	}
	class := func(t *testing.T, what string, err error, want errdefs.Class) {
		t.Helper()
		if got := errdefs.ClassOf(err); err == nil || got != want {
			t.Fatalf("%s: %v (class %v), want class %v", what, err, got, want)
		}
	}

	t.Run("not found", func(t *testing.T) {
		name := prefix + "-missing"
		_, err := b.ContainerInspect(ctx, name, false)
		class(t, "inspect", err, errdefs.NotFound)
		if !strings.Contains(err.Error(), "No such container: "+name) {
			t.Fatalf("message %q", err)
		}
		class(t, "start", b.ContainerStart(ctx, name), errdefs.NotFound)
		class(t, "remove", b.ContainerRemove(ctx, name, containerrouter.RemoveOptions{}), errdefs.NotFound)
		_, err = b.ContainerWait(ctx, name, container.WaitConditionNotRunning)
		class(t, "wait", err, errdefs.NotFound)
	})

	t.Run("lifecycle", func(t *testing.T) {
		id := create(t, "life", "sleep", "600")
		_, err := b.ContainerCreate(ctx, containerrouter.CreateOptions{
			Name: prefix + "-life", Config: &container.Config{Image: image},
			HostConfig: &container.HostConfig{}, NetworkingConfig: &network.NetworkingConfig{},
		})
		class(t, "create with a used name", err, errdefs.Conflict)

		list, err := b.ContainerList(ctx, containerrouter.ListOptions{All: true})
		if err != nil || !hasName(list, "/"+prefix+"-life") {
			t.Fatalf("list: %v %v", list, err)
		}
		if err := b.ContainerStart(ctx, id); err != nil {
			t.Fatal(err)
		}
		class(t, "start twice", b.ContainerStart(ctx, id), errdefs.NotModified)
		ins, err := b.ContainerInspect(ctx, prefix+"-life", false)
		if err != nil || ins.State == nil || !ins.State.Running || ins.Name != "/"+prefix+"-life" {
			t.Fatalf("inspect running: %+v %v", ins, err)
		}
		if _, err := b.ContainerTop(ctx, id, ""); err != nil {
			t.Fatalf("top: %v", err)
		}
		class(t, "remove running", b.ContainerRemove(ctx, id, containerrouter.RemoveOptions{}), errdefs.Conflict)
		timeout := 1
		if err := b.ContainerStop(ctx, id, containerrouter.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatalf("stop: %v", err)
		}
		class(t, "stop twice", b.ContainerStop(ctx, id, containerrouter.StopOptions{Timeout: &timeout}), errdefs.NotModified)
		ch, err := b.ContainerWait(ctx, id, container.WaitConditionNotRunning)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("wait not-running on a stopped container did not return")
		}
		if err := b.ContainerRemove(ctx, id, containerrouter.RemoveOptions{}); err != nil {
			t.Fatalf("remove stopped: %v", err)
		}
		_, err = b.ContainerInspect(ctx, id, false)
		class(t, "inspect removed", err, errdefs.NotFound)
	})

	t.Run("attach before start", func(t *testing.T) {
		id := create(t, "echo", "echo", "hello", "conformance")
		wait, err := b.ContainerWait(ctx, id, container.WaitConditionNextExit)
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		attached := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- b.ContainerAttach(ctx, id, containerrouter.AttachOptions{
				Stdout: true, Stderr: true, Stream: true,
				Streams: func(tty bool) (*containerrouter.AttachStreams, error) {
					defer close(attached)
					return &api.Streams{Stdout: &out, Stderr: &out}, nil
				},
			})
		}()
		select {
		case <-attached:
		case <-time.After(10 * time.Second):
			t.Fatal("attach did not set its streams up")
		}
		if err := b.ContainerStart(ctx, id); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("attach: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("attach did not end when the container exited")
		}
		if out.String() != "hello conformance\n" {
			t.Fatalf("attached output %q", out.String())
		}
		select {
		case r := <-wait:
			if r.StatusCode != 0 {
				t.Fatalf("exit %d", r.StatusCode)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("wait next-exit did not return")
		}
		msgs, tty, err := b.ContainerLogs(ctx, id, containerrouter.LogsOptions{Stdout: true, Stderr: true, Tail: -1})
		if err != nil || tty {
			t.Fatalf("logs: %v tty=%v", err, tty)
		}
		var lines []string
		for m := range msgs {
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			lines = append(lines, m.Stream+":"+string(m.Line))
		}
		if strings.Join(lines, "") != "stdout:hello conformance\n" {
			t.Fatalf("logs %q", lines)
		}
	})
}

func hasName(list []container.Summary, name string) bool {
	for _, c := range list {
		for _, n := range c.Names {
			if n == name {
				return true
			}
		}
	}
	return false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
