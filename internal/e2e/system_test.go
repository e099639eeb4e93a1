package e2e

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestEventsInfoDf(t *testing.T) {
	d := startDaemon(t)
	since := time.Now().Add(-time.Second)
	d.importBusybox("busybox:latest")
	d.cli(bins.docker, nil, "run", "--name", "ev", "busybox", "true")
	until := time.Now().Add(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := d.client.Events(ctx, client.EventsListOptions{Since: since.Format(time.RFC3339Nano), Until: until.Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("container", "ev")})
	var actions []string
	func() {
		for {
			select {
			case m, ok := <-res.Messages:
				if !ok {
					return
				}
				actions = append(actions, string(m.Action))
			case err := <-res.Err:
				if err != nil && !strings.Contains(err.Error(), "EOF") {
					t.Errorf("events: %v", err)
				}
				return
			}
		}
	}()
	got := strings.Join(actions, ",")
	for _, want := range []string{"create", "attach", "start", "die"} {
		if !strings.Contains(got, want) {
			t.Fatalf("events for ev: %s, missing %s", got, want)
		}
	}
	o, e, code := d.cli(bins.docker, nil, "info", "--format", "{{json .}}")
	var info struct {
		Containers, ContainersStopped, Images                      int
		Driver, OSType, CgroupDriver, DockerRootDir, ServerVersion string
		Swarm                                                      struct{ LocalNodeState string }
	}
	if code != 0 || json.Unmarshal([]byte(o), &info) != nil {
		t.Fatalf("info: %d %q %q", code, o, e)
	}
	if info.Containers != 1 || info.ContainersStopped != 1 || info.Images != 1 || info.OSType != "linux" ||
		info.DockerRootDir != d.dataRoot || info.Swarm.LocalNodeState != "inactive" {
		t.Fatalf("info: %+v", info)
	}
	o, e, code = d.cli(bins.docker, nil, "system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if code != 0 || !strings.Contains(o, "Images 1") || !strings.Contains(o, "Containers 1") {
		t.Fatalf("system df: %d %q %q", code, o, e)
	}
	// Swarm endpoints answer as a dockerd outside a swarm.
	_, e, code = d.cli(bins.docker, nil, "service", "ls")
	if code == 0 || !strings.Contains(e, "This node is not a swarm manager") {
		t.Fatalf("service ls: %d %q", code, e)
	}
}

func TestExecTTYAndAttachDetach(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	d.cli(dk, nil, "run", "-d", "-i", "--name", "att", "busybox", "sh", "-c", "while read l; do echo got $l; done")
	o, e, code := d.cli(dk, nil, "exec", "-t", "att", "sh", "-c", "tty; exit 2")
	if code != 2 || !strings.HasPrefix(o, "/dev/pts/") {
		t.Fatalf("exec -t: %d %q %q", code, o, e)
	}
	// exec's user, environment, working directory and privileges.
	for _, c := range clis() {
		o, e, code = d.cli(c.bin, nil, "exec", "-u", "berth", "-e", "X=from-exec", "-w", "/tmp", "att", "sh", "-c", "id -u; id -G; echo $X; pwd; grep CapEff /proc/self/status")
		if code != 0 || !strings.HasPrefix(o, "1000\n1000 100\nfrom-exec\n/tmp\nCapEff:\t0000000000000000\n") {
			t.Fatalf("%s exec -u -e -w: %d %q %q", c.name, code, o, e)
		}
		o, _, code = d.cli(c.bin, nil, "exec", "--privileged", "att", "grep", "CapEff", "/proc/self/status")
		if code != 0 || strings.Contains(o, "00000000a80425fb") {
			t.Fatalf("%s exec --privileged: %d %q (want more than the default set)", c.name, code, o)
		}
		_, e, code = d.cli(c.bin, nil, "exec", "att", "/no/such/thing")
		if code != 127 {
			t.Fatalf("%s exec of a missing binary: %d %q", c.name, code, e)
		}
	}

	// Attach to a container with a terminal: the input reaches it, the
	// output comes back, ctrl-p ctrl-q detaches and it keeps running.
	ctx := context.Background()
	res, err := d.client.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "tty",
		Config: &container.Config{Image: "busybox", Cmd: []string{"sh"}, Tty: true, OpenStdin: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	at, err := d.client.ContainerAttach(ctx, res.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	if _, err := at.Conn.Write([]byte("echo marker-$((6*7))\n")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(got), "marker-42") {
		at.Conn.SetReadDeadline(deadline)
		n, err := at.Reader.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("attach output %q: %v", got, err)
		}
	}
	at.Conn.Write([]byte{0x10, 0x11})
	at.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, at.Reader); err != nil {
		t.Fatalf("detach did not end the stream: %v", err)
	}
	insp, _ := d.client.ContainerInspect(ctx, "tty", client.ContainerInspectOptions{})
	if !insp.Container.State.Running {
		t.Fatal("container stopped after detach")
	}
}
