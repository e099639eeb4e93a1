package api_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func newClient(t *testing.T, sock string, opts ...client.Opt) *client.Client {
	t.Helper()
	c, err := client.New(append([]client.Opt{client.WithHost("unix://" + sock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGoClientVersionNegotiation(t *testing.T) {
	if client.MaxAPIVersion != api.MaxAPIVersion {
		t.Fatalf("server max API %s, vendored client max %s: update MaxAPIVersion with the api module", api.MaxAPIVersion, client.MaxAPIVersion)
	}
	f := apitest.NewFakes()
	sock := apitest.Serve(t, f.Routers()...)
	ctx := context.Background()

	c := newClient(t, sock, client.WithAPIVersionNegotiation())
	p, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != api.MaxAPIVersion || p.OSType != "linux" || string(p.BuilderVersion) != "1" || p.SwarmStatus == nil || p.SwarmStatus.NodeState != "inactive" {
		t.Fatalf("ping %+v", p)
	}
	if c.ClientVersion() != api.MaxAPIVersion {
		t.Fatalf("negotiated %s", c.ClientVersion())
	}

	// A pinned older client is served at its version.
	old := newClient(t, sock, client.WithAPIVersion("1.41"))
	if _, err := old.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
		t.Fatalf("1.41 client: %v", err)
	}
}

func TestGoClientErrorClasses(t *testing.T) {
	f := apitest.NewFakes()
	sock := apitest.Serve(t, f.Routers()...)
	ctx := context.Background()
	c := newClient(t, sock, client.WithAPIVersionNegotiation())

	_, err := c.ContainerInspect(ctx, "missing", client.ContainerInspectOptions{})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: missing") {
		t.Fatalf("inspect missing: %v", err)
	}
	_, err = c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"sleep"}}, Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox"}, Name: "one"})
	if !cerrdefs.IsConflict(err) {
		t.Fatalf("name in use: %v", err)
	}
	_, err = c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox"}, Name: "-bad"})
	if !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("invalid name: %v", err)
	}
	if _, err := c.ContainerStart(ctx, "one", client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	// 304 is not an error for the client: starting twice succeeds.
	if _, err := c.ContainerStart(ctx, "one", client.ContainerStartOptions{}); err != nil {
		t.Fatalf("second start: %v", err)
	}
	_, err = c.ContainerRemove(ctx, "one", client.ContainerRemoveOptions{})
	if !cerrdefs.IsConflict(err) {
		t.Fatalf("remove running: %v", err)
	}
	_, err = c.ServiceList(ctx, client.ServiceListOptions{})
	if !cerrdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "This node is not a swarm manager") {
		t.Fatalf("service list: %v", err)
	}
	if _, err := c.ContainerRemove(ctx, "one", client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestGoClientAttachWait(t *testing.T) {
	f := apitest.NewFakes()
	sock := apitest.Serve(t, f.Routers()...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newClient(t, sock, client.WithAPIVersionNegotiation())

	cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"fail", "7", "to stderr"}}})
	if err != nil {
		t.Fatal(err)
	}
	at, err := c.ContainerAttach(ctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	if mt, _ := at.MediaType(); mt != "application/vnd.docker.multiplexed-stream" {
		t.Fatalf("media type %q", mt)
	}
	wait := c.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, at.Reader); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "" || stderr.String() != "to stderr\n" {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 7 {
			t.Fatalf("exit %d", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	}

	logs, err := c.ContainerLogs(ctx, cr.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatal(err)
	}
	logs.Close()
	ts, line, _ := strings.Cut(stderr.String(), " ")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || line != "to stderr\n" {
		t.Fatalf("logs with timestamps: %q", stderr.String())
	}
}

func TestGoClientEvents(t *testing.T) {
	f := apitest.NewFakes()
	now := time.Now()
	f.System.Recorded = []events.Message{
		{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{ID: "c1", Attributes: map[string]string{"image": "busybox"}}, Time: now.Unix(), TimeNano: now.UnixNano()},
		{Type: events.ImageEventType, Action: events.ActionPull, Actor: events.Actor{ID: "busybox:latest"}, Time: now.Unix(), TimeNano: now.UnixNano()},
	}
	sock := apitest.Serve(t, f.Routers()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := newClient(t, sock, client.WithAPIVersionNegotiation())
	res := c.Events(ctx, client.EventsListOptions{
		Since: now.Add(-time.Minute).Format(time.RFC3339Nano), Until: now.Add(time.Minute).Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("type", "container"),
	})
	var got []events.Message
	for done := false; !done; {
		select {
		case m := <-res.Messages:
			got = append(got, m)
		case err := <-res.Err:
			if err != io.EOF {
				t.Fatal(err)
			}
			done = true
		}
	}
	if len(got) != 1 || got[0].Actor.ID != "c1" || got[0].Action != events.ActionStart {
		t.Fatalf("events %+v", got)
	}
}
