package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// stackFiles is the production stack rewritten on busybox: a
// proxy (published port, read-only config bind mount) in front of an api
// built from a Dockerfile, which depends on a db (named volume, init
// file mounted read-only) and a cache (command with options) being
// healthy. Every hop is a name lookup on the project's default network:
// host → proxy → api → db and cache.
func stackFiles(port int) map[string]string {
	return map[string]string{
		"compose.yaml": fmt.Sprintf(`services:
  api:
    build: ./api
    stop_grace_period: 1s
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_healthy}
  db:
    image: busybox
    stop_grace_period: 1s
    command: ["sh", "-c", "cat /init/init.sql >> /data/rows; (sleep 0.5; touch /tmp/ready) & exec nc -ll -p 5432 -e cat /data/rows"]
    volumes:
      - dbdata:/data
      - ./init.sql:/init/init.sql:ro
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      timeout: 2s
      retries: 20
  cache:
    image: busybox
    stop_grace_period: 1s
    command: ["nc", "-ll", "-p", "6379", "-e", "echo", "PONG"]
    healthcheck:
      test: ["CMD-SHELL", "netstat -tln | grep -q ':6379 '"]
      interval: 200ms
      retries: 20
  proxy:
    image: busybox
    stop_grace_period: 1s
    command: ["nc", "-ll", "-p", "80", "-e", "sh", "/etc/proxy/proxy.conf"]
    ports: ["127.0.0.1:%d:80"]
    volumes: ["./proxy.conf:/etc/proxy/proxy.conf:ro"]
    depends_on: [api]
volumes:
  dbdata:
`, port),
		"api/Dockerfile": "FROM busybox\nCOPY serve.sh /serve.sh\nRUN chmod 755 /serve.sh\nEXPOSE 8080\nCMD [\"nc\", \"-ll\", \"-p\", \"8080\", \"-e\", \"/serve.sh\"]\n",
		"api/serve.sh":   "#!/bin/sh\necho api\necho db: $(nc db 5432)\necho cache: $(nc cache 6379)\n",
		"init.sql":       "create table t;\n",
		"proxy.conf":     "echo proxy\nnc api 8080\n",
	}
}

// projectEvents returns the container events of a compose project in
// [since, until), in order.
func (d *daemon) projectEvents(project string, since, until time.Time) []eventRec {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := d.client.Events(ctx, client.EventsListOptions{Since: since.Format(time.RFC3339Nano), Until: until.Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("type", "container").Add("label", "com.docker.compose.project="+project)})
	var out []eventRec
	for {
		select {
		case m := <-res.Messages:
			out = append(out, eventRec{Action: string(m.Action), Time: time.Unix(0, m.TimeNano), Attrs: m.Actor.Attributes})
		case err := <-res.Err:
			if err != nil && !strings.Contains(err.Error(), "EOF") {
				d.t.Fatalf("events: %v", err)
			}
			return out
		}
	}
}

// projectLeftovers lists the project's containers, networks and volumes
// as the engine reports them (by the com.docker.compose.project label).
func (p *composeProject) leftovers() []string {
	p.t.Helper()
	ctx := context.Background()
	f := make(client.Filters).Add("label", "com.docker.compose.project="+p.name)
	var left []string
	cs, err := p.d.client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, c := range cs.Items {
		left = append(left, "container "+c.Names[0])
	}
	ns, err := p.d.client.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, n := range ns.Items {
		left = append(left, "network "+n.Name)
	}
	vs, err := p.d.client.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, v := range vs.Items {
		left = append(left, "volume "+v.Name)
	}
	return left
}

// TestComposeProductionStack is issue 9's proof through `berth compose`
// against a real berthd: up -d --wait of the four-service stack, name
// resolution on the default network (host → proxy → api → db, cache),
// health gating in the events order, the published port from the host,
// the named volume surviving down + up, and down -v removing everything.
func TestComposeProductionStack(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	port := freePorts(t, 1)
	p := newComposeProject(t, d, "stack", stackFiles(port))
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	t0 := time.Now()
	_, errOut := p.ok(nil, "up", "-d", "--wait", "--wait-timeout", "60")
	t.Logf("up -d --wait (build + 4 services): %s", time.Since(t0))
	for _, want := range []string{"Network stack_default  Created", `Volume "stack_dbdata"  Created`, "Container stack-db-1  Healthy", "Container stack-cache-1  Healthy", "Container stack-proxy-1  Healthy"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("up progress lacks %q:\n%s", want, errOut)
		}
	}
	got := dialRead(t, addr)
	want := "proxy\napi\ndb: create table t;\ncache: PONG\n"
	if got != want {
		t.Fatalf("host → proxy → api → db/cache answered %q, want %q\n%s", got, want, errOut)
	}

	// Health gating: api starts only after db and cache reported healthy.
	evs := d.projectEvents("stack", t0.Add(-time.Second), time.Now())
	healthy := map[string]time.Time{}
	var apiStart time.Time
	for _, e := range evs {
		switch {
		case e.Action == "health_status: healthy" && healthy[e.Attrs["com.docker.compose.service"]].IsZero():
			healthy[e.Attrs["com.docker.compose.service"]] = e.Time
		case e.Action == "start" && e.Attrs["com.docker.compose.service"] == "api" && apiStart.IsZero():
			apiStart = e.Time
		}
	}
	if healthy["db"].IsZero() || healthy["cache"].IsZero() || apiStart.IsZero() || apiStart.Before(healthy["db"]) || apiStart.Before(healthy["cache"]) {
		t.Errorf("events order: db healthy %v, cache healthy %v, api start %v\n%s", healthy["db"], healthy["cache"], apiStart, actions(evs))
	}

	// The named volume survives down + up; the read-only mounts are.
	p.ok(nil, "exec", "-T", "db", "sh", "-c", "echo insert 1 >> /data/rows")
	if _, _, code := p.run(nil, "exec", "-T", "db", "sh", "-c", "echo x > /init/init.sql"); code == 0 {
		t.Errorf("init file mounted writable")
	}
	if _, _, code := p.run(nil, "exec", "-T", "proxy", "sh", "-c", "echo x > /etc/proxy/proxy.conf"); code == 0 {
		t.Errorf("proxy config mounted writable")
	}
	p.ok(nil, "down", "-t", "1")
	if left := p.leftovers(); len(left) != 1 || left[0] != "volume stack_dbdata" {
		t.Errorf("down (without -v) left %v, want only the named volume", left)
	}
	p.ok(nil, "up", "-d", "--wait", "--wait-timeout", "60")
	got = dialRead(t, addr)
	if want := "proxy\napi\ndb: create table t; insert 1 create table t;\ncache: PONG\n"; got != want {
		t.Errorf("after down + up: %q, want %q", got, want)
	}

	p.ok(nil, "down", "-v", "-t", "1")
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("down -v left %v", left)
	}
}
