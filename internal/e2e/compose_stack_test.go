package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// stackFiles is the production stack rewritten on busybox: a
// proxy (published port, read-only config bind mount) in front of an api
// built from a Dockerfile, which depends on a db (named volume, init
// file mounted read-only) and a cache (command with options) being
// healthy. Every hop is a name lookup on the project's default network:
// host → proxy → api → db and cache. (init: true, so the servers stop on
// SIGTERM instead of waiting out the grace period as PID 1.)
func stackFiles(port int) map[string]string {
	return map[string]string{
		"compose.yaml": fmt.Sprintf(`services:
  api:
    build: ./api
    stop_grace_period: 1s
    init: true
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_healthy}
  db:
    image: busybox
    stop_grace_period: 1s
    init: true
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
    init: true
    command: ["nc", "-ll", "-p", "6379", "-e", "echo", "PONG"]
    healthcheck:
      test: ["CMD-SHELL", "netstat -tln | grep -q ':6379 '"]
      interval: 200ms
      retries: 20
  proxy:
    image: busybox
    stop_grace_period: 1s
    init: true
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
	want := "proxy\napi\ndb: create table t;\ncache: PONG\n"
	expectAnswer(t, addr, want)

	// Every service reaches every other by its name on stack_default.
	servers := map[string]string{"db": "5432", "cache": "6379", "api": "8080", "proxy": "80"}
	for from := range servers {
		var script strings.Builder
		for to, port := range servers {
			if to != from {
				fmt.Fprintf(&script, "echo %s=$(nc %s %s | head -n 1);", to, to, port)
			}
		}
		out, _ := p.ok(nil, "exec", "-T", from, "sh", "-c", script.String())
		for to := range servers {
			if to == from {
				continue
			}
			first := map[string]string{"db": "create table t;", "cache": "PONG", "api": "api", "proxy": "proxy"}[to]
			if !strings.Contains(out, to+"="+first+"\n") {
				t.Errorf("%s → %s by name: %q", from, to, out)
			}
		}
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

	// The proxy recreated at once keeps its fixed host port.
	p.ok(nil, "up", "-d", "--wait", "--force-recreate", "--no-deps", "proxy")
	expectAnswer(t, addr, want)

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
	expectAnswer(t, addr, "proxy\napi\ndb: create table t; insert 1 create table t;\ncache: PONG\n")

	p.ok(nil, "down", "-v", "-t", "1")
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("down -v left %v", left)
	}
}

// explicitSubnets is where tests that need fixed addresses (static
// ipv4_address, a subnet in a compose file) take their /24s: daemons never
// allocate from it on their own (their pool is testPool), and every test
// of this process gets its own. A subnet some interface of the host
// already has an address in is skipped.
const explicitSubnets = "10.215.%d.0/24"

var explicitNext atomic.Int32

// freeSubnets returns n /24 subnets no daemon or other test uses (see
// explicitSubnets); release is kept for the callers and does nothing.
func (d *daemon) freeSubnets(n int) (subnets []string, release func()) {
	d.t.Helper()
	var used []*net.IPNet
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				used = append(used, ipn)
			}
		}
	}
	for len(subnets) < n {
		k := explicitNext.Add(1)
		if k > 254 {
			d.t.Fatal("explicit test subnets exhausted")
		}
		sn := fmt.Sprintf(explicitSubnets, k)
		_, cand, _ := net.ParseCIDR(sn)
		free := true
		for _, u := range used {
			if u.Contains(cand.IP) || cand.Contains(u.IP) {
				free = false
			}
		}
		if free {
			subnets = append(subnets, sn)
		}
	}
	return subnets, func() {}
}

// hostPart returns subnet's network address with the last octet
// replaced by last (subnets are /24s).
func hostPart(subnet string, last int) string {
	ip := strings.SplitN(subnet, "/", 2)[0]
	return ip[:strings.LastIndexByte(ip, '.')+1] + fmt.Sprint(last)
}

const networksFile = `services:
  front:
    image: busybox
    command: ["nc", "-ll", "-p", "80", "-e", "echo", "front"]
    stop_grace_period: 1s
    init: true
    environment: ["VERSION=${VERSION:-1}"]
    ports: ["127.0.0.1::80"]
    volumes: [shared:/shared]
    networks:
      one:
        ipv4_address: %s
        aliases: [web-alias]
      ext: {}
  back:
    build: ./back
    command: ["sleep", "300"]
    stop_grace_period: 1s
    init: true
    networks:
      one: {}
      two:
        ipv4_address: %s
        aliases: [back-alias]
    depends_on:
      front: {condition: service_started, restart: true}
networks:
  one:
    ipam: {config: [{subnet: %s}]}
  two:
    ipam: {config: [{subnet: %s}]}
  ext: {external: true, name: shared-net}
volumes:
  shared: {external: true, name: shared-vol}
`

// TestComposeNetworksVolumesAndTools: external network and volume
// (missing: Compose's errors; present: used, and kept by down -v), two
// custom networks with static addresses and aliases, an unchanged up
// recreating nothing, restart: true on a dependency, cp both ways, port,
// up --build and down --rmi local.
func TestComposeNetworksVolumesAndTools(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	sn, release := d.freeSubnets(2)
	frontIP, backIP := hostPart(sn[0], 10), hostPart(sn[1], 20)
	p := newComposeProject(t, d, "nets", map[string]string{
		"compose.yaml":    fmt.Sprintf(networksFile, frontIP, backIP, sn[0], sn[1]),
		"back/Dockerfile": "FROM busybox\nCOPY msg /msg\n",
		"back/msg":        "v1\n",
		"in.txt":          "copied in\n",
	})
	ctx := context.Background()

	// Missing external resources: Docker Compose's messages.
	_, errOut, code := p.run(nil, "up", "-d")
	if code == 0 || !strings.Contains(errOut, "network shared-net declared as external, but could not be found") {
		t.Fatalf("missing external network: exit %d\n%s", code, errOut)
	}
	if _, err := d.client.NetworkCreate(ctx, "shared-net", client.NetworkCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	release()
	_, errOut, code = p.run(nil, "up", "-d")
	if code == 0 || !strings.Contains(errOut, `external volume "shared-vol" not found`) {
		t.Fatalf("missing external volume: exit %d\n%s", code, errOut)
	}
	if _, err := d.client.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "shared-vol"}); err != nil {
		t.Fatal(err)
	}

	p.ok(nil, "up", "-d")
	front, back := p.inspect("nets-front-1"), p.inspect("nets-back-1")
	if ep := front.NetworkSettings.Networks["nets_one"]; ep == nil || ep.IPAddress.String() != frontIP {
		t.Errorf("front on nets_one: %+v, want %s", ep, frontIP)
	}
	if ep := back.NetworkSettings.Networks["nets_two"]; ep == nil || ep.IPAddress.String() != backIP {
		t.Errorf("back on nets_two: %+v, want %s", ep, backIP)
	}
	if _, ok := front.NetworkSettings.Networks["shared-net"]; !ok {
		t.Errorf("front not on the external network: %v", front.NetworkSettings.Networks)
	}
	// port, and the published port from the host (once front listens).
	out, _ := p.ok(nil, "port", "front", "80")
	hostAddr := strings.TrimSpace(out)
	if !strings.HasPrefix(hostAddr, "127.0.0.1:") {
		t.Fatalf("port: %q", out)
	}
	expectAnswer(t, hostAddr, "front\n")
	// Aliases resolve on their network; the service name too.
	for _, target := range []string{"web-alias", "front", frontIP} {
		if out, _ := p.ok(nil, "exec", "-T", "back", "nc", target, "80"); out != "front\n" {
			t.Errorf("back → %s: %q", target, out)
		}
	}
	if out, _ := p.ok(nil, "exec", "-T", "back", "nslookup", "back-alias"); !strings.Contains(out, backIP) {
		t.Errorf("back-alias does not resolve to %s:\n%s", backIP, out)
	}

	// cp both ways, through the external volume.
	p.ok(nil, "cp", "in.txt", "front:/shared/in.txt")
	p.ok(nil, "cp", "front:/shared/in.txt", "out.txt")
	if b, err := os.ReadFile(filepath.Join(p.dir, "out.txt")); err != nil || string(b) != "copied in\n" {
		t.Errorf("cp round trip: %q %v", b, err)
	}

	// Unchanged: nothing recreated or restarted.
	before := map[string]container.InspectResponse{"front": front, "back": back}
	_, errOut = p.ok(nil, "up", "-d")
	for svc, c := range before {
		now := p.inspect("nets-" + svc + "-1")
		if now.ID != c.ID || now.State.StartedAt != c.State.StartedAt {
			t.Errorf("unchanged up touched %s:\n%s", svc, errOut)
		}
	}
	// front changes: it is recreated, and back (restart: true) restarted
	// in place.
	_, errOut = p.ok([]string{"VERSION=2"}, "up", "-d")
	if now := p.inspect("nets-front-1"); now.ID == front.ID {
		t.Errorf("changed front not recreated:\n%s", errOut)
	}
	if now := p.inspect("nets-back-1"); now.ID != back.ID || now.State.StartedAt == back.State.StartedAt || !now.State.Running {
		t.Errorf("back not restarted in place after its dependency was recreated (id same %v, started %s → %s):\n%s",
			now.ID == back.ID, back.State.StartedAt, now.State.StartedAt, errOut)
	}

	// up --build rebuilds the image and recreates its container.
	p.write("back/msg", "v2\n")
	_, errOut = p.ok([]string{"VERSION=2"}, "up", "-d", "--build")
	if out, _ := p.ok(nil, "exec", "-T", "back", "cat", "/msg"); out != "v2\n" {
		t.Errorf("after up --build: /msg %q\n%s", out, errOut)
	}

	// down -v --rmi local: the project's networks, containers and built
	// image go; external resources stay.
	p.ok(nil, "down", "-v", "--rmi", "local", "-t", "1")
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("down left %v", left)
	}
	if _, err := d.client.ImageInspect(ctx, "nets-back"); err == nil {
		t.Errorf("down --rmi local kept the built image nets-back")
	}
	if _, err := d.client.ImageInspect(ctx, "busybox"); err != nil {
		t.Errorf("down --rmi local removed busybox: %v", err)
	}
	if _, err := d.client.NetworkInspect(ctx, "shared-net", client.NetworkInspectOptions{}); err != nil {
		t.Errorf("down removed the external network: %v", err)
	}
	if _, err := d.client.VolumeInspect(ctx, "shared-vol", client.VolumeInspectOptions{}); err != nil {
		t.Errorf("down -v removed the external volume: %v", err)
	}
	d.client.NetworkRemove(ctx, "shared-net", client.NetworkRemoveOptions{})
}

// TestComposeWaitTimeout: --wait --wait-timeout on a service that never
// becomes healthy fails with Compose's message, and so does up when a
// service_healthy dependency turns unhealthy.
func TestComposeWaitTimeout(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "sick", map[string]string{"compose.yaml": `services:
  sick:
    image: busybox
    network_mode: none
    command: ["sleep", "300"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "false"]
      interval: 1h
      start_period: 1h
`})
	t0 := time.Now()
	_, errOut, code := p.run(nil, "up", "-d", "--wait", "--wait-timeout", "2")
	if code == 0 || !strings.Contains(errOut, "application not healthy after 2s") {
		t.Errorf("never-healthy --wait: exit %d\n%s", code, errOut)
	}
	if el := time.Since(t0); el > 20*time.Second {
		t.Errorf("--wait-timeout 2 returned after %s", el)
	}
	p.ok(nil, "down", "-t", "0")

	// A service_healthy dependency that turns unhealthy: its dependent
	// is created but not started, and up fails with Compose's message.
	q := newComposeProject(t, d, "unhealthy", map[string]string{"compose.yaml": `services:
  db:
    image: busybox
    network_mode: none
    command: ["sleep", "300"]
    init: true
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 1
  app:
    image: busybox
    network_mode: none
    command: ["sleep", "300"]
    depends_on:
      db: {condition: service_healthy}
`})
	_, errOut, code = q.run(nil, "up", "-d")
	if code == 0 || !strings.Contains(errOut, "dependency failed to start: container unhealthy-db-1 is unhealthy") {
		t.Errorf("unhealthy dependency: exit %d\n%s", code, errOut)
	}
	// As Docker Compose: created in the create pass, never started.
	if c, ok := q.containers()["unhealthy-app-1"]; !ok || c.State != container.StateCreated {
		t.Errorf("the dependent of an unhealthy service: %+v (want created, not started)", c)
	}
	q.ok(nil, "down", "-t", "0")
}

// TestComposeStackDockerCompose runs the same stack file with Debian's
// docker-compose 1.29 (docker-py, talking the Engine API) against berthd
// as an independent client: build, health-gated start, names on the
// default network, the published port, and down -v leaving nothing.
// scripts/deps.sh installs docker-compose; the test requires it.
func TestComposeStackDockerCompose(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	port := freePorts(t, 1)
	p := newComposeProject(t, d, "dcstack", stackFiles(port))
	run, ok := dockerCompose(t, p)
	t0 := time.Now()
	upOut := ok("up", "-d")
	t.Logf("docker-compose up -d: %s", time.Since(t0))
	// docker-compose 1.29 waits for service_healthy itself; the api and
	// proxy servers may still be starting when it returns.
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	want := "proxy\napi\ndb: create table t;\ncache: PONG\n"
	expectAnswer(t, addr, want)
	evs := d.projectEvents("dcstack", t0.Add(-time.Second), time.Now())
	var order []string
	for _, e := range evs {
		if e.Action == "health_status: healthy" || e.Action == "start" {
			order = append(order, e.Attrs["com.docker.compose.service"]+":"+e.Action)
		}
	}
	seq := strings.Join(order, ",")
	api := strings.Index(seq, "api:start")
	if api < 0 || strings.Index(seq, "db:health_status: healthy") > api || strings.Index(seq, "cache:health_status: healthy") > api ||
		strings.Index(seq, "db:health_status: healthy") < 0 || strings.Index(seq, "cache:health_status: healthy") < 0 {
		t.Errorf("health gating order: %s\n%s", seq, upOut)
	}
	if c := p.inspect("dcstack_db_1"); c.Config.Labels["com.docker.compose.service"] != "db" || !c.State.Running {
		t.Errorf("docker-compose's db container: %+v %v", c.State, c.Config.Labels)
	}
	if out, errOut, _ := run("ps", "-q"); len(strings.Fields(out)) != 4 {
		t.Errorf("docker-compose ps -q: %q %s", out, errOut)
	}
	if out, errOut, code := run("port", "proxy", "80"); code != 0 || strings.TrimSpace(out) != addr {
		t.Errorf("docker-compose port proxy 80: %d %q %s", code, out, errOut)
	}
	if out, errOut, code := run("exec", "-T", "db", "cat", "/init/init.sql"); code != 0 || out != "create table t;\n" {
		t.Errorf("docker-compose exec: %d %q %s", code, out, errOut)
	}
	ok("stop", "-t", "1", "api")
	if c := p.inspect("dcstack_api_1"); c.State.Running {
		t.Errorf("docker-compose stop api: still running")
	}
	ok("start", "api")
	expectAnswer(t, addr, want)
	ok("down", "-v", "-t", "1")
	proj := &composeProject{t: t, d: d, name: "dcstack"}
	if left := proj.leftovers(); len(left) != 0 {
		t.Errorf("docker-compose down -v left %v", left)
	}
}

// tryDialRead is dialRead that reports failures as an empty answer.
func tryDialRead(addr string) string {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn)
	return string(b)
}

// expectAnswer polls addr until it answers want (a server that has just
// started may not listen yet, or its upstreams not yet); it fails with
// the last answer after 20 s.
func expectAnswer(t *testing.T, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := tryDialRead(addr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %q, want %q", addr, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestComposeReplicasAndOneOffs: deploy.replicas behind one service name
// (the embedded DNS answers every replica's address), one-off containers
// on the project network reaching services by name, run --service-ports
// publishing the service's ports, and restart restarting the services
// that depend on it with restart: true.
func TestComposeReplicasAndOneOffs(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	port := freePorts(t, 1)
	p := newComposeProject(t, d, "reps", map[string]string{"compose.yaml": fmt.Sprintf(`services:
  web:
    image: busybox
    command: ["nc", "-ll", "-p", "80", "-e", "hostname"]
    stop_grace_period: 1s
    init: true
    deploy: {replicas: 2}
  edge:
    image: busybox
    command: ["nc", "-ll", "-p", "80", "-e", "echo", "edge"]
    stop_grace_period: 1s
    init: true
    ports: ["127.0.0.1:%d:80"]
  watcher:
    image: busybox
    command: ["sleep", "300"]
    stop_grace_period: 1s
    init: true
    depends_on:
      web: {condition: service_started, restart: true}
`, port)})
	p.ok(nil, "up", "-d", "web", "watcher")
	ips := map[string]bool{}
	for _, n := range []string{"reps-web-1", "reps-web-2"} {
		ips[p.inspect(n).NetworkSettings.Networks["reps_default"].IPAddress.String()] = true
	}
	out, _ := p.ok(nil, "run", "--rm", "-T", "watcher", "nslookup", "web")
	for ip := range ips {
		if !strings.Contains(out, ip) {
			t.Errorf("nslookup web from a one-off lacks replica %s:\n%s", ip, out)
		}
	}
	// Each replica answers by the service name.
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < 2 && time.Now().Before(deadline) {
		out, _, _ := p.run(nil, "exec", "-T", "watcher", "sh", "-c", "for i in 1 2 3 4 5 6; do nc web 80; done")
		for _, l := range strings.Fields(out) {
			seen[l] = true
		}
	}
	if len(seen) < 2 {
		t.Errorf("replicas answering by name: %v", seen)
	}

	// run --service-ports publishes the service's ports.
	p.ok(nil, "run", "-d", "--service-ports", "edge")
	expectAnswer(t, fmt.Sprintf("127.0.0.1:%d", port), "edge\n")

	// restart web: watcher (restart: true) is restarted too.
	before := p.inspect("reps-watcher-1").State.StartedAt
	p.ok(nil, "restart", "-t", "1", "web")
	if now := p.inspect("reps-watcher-1").State; !now.Running || now.StartedAt == before {
		t.Errorf("watcher not restarted with web: started %s → %s", before, now.StartedAt)
	}
	p.ok(nil, "down", "-t", "1", "--remove-orphans")
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("down left %v", left)
	}
}

// TestComposeVolumeSyntaxesAndInlineSecrets: an anonymous volume is
// inherited by the recreated container (its data kept); down -v removes
// anonymous volumes as Docker Compose on dockerd does; long-syntax volume, bind and tmpfs mounts; secrets and configs
// given inline (content:, environment:) are copied in through the
// archive API before the start.
func TestComposeVolumeSyntaxesAndInlineSecrets(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "vols", map[string]string{
		"compose.yaml": `services:
  app:
    image: busybox
    network_mode: none
    command: ["sleep", "300"]
    stop_grace_period: 1s
    init: true
    environment: ["V=${V:-1}"]
    volumes:
      - /anon
      - type: volume
        source: named
        target: /named
        volume: {nocopy: true}
      - type: bind
        source: ./host
        target: /host
        read_only: true
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1048576}
    secrets: [token]
    configs:
      - source: greeting
        target: /etc/greeting
volumes:
  named:
    labels: {com.example.kind: test}
secrets:
  token: {environment: TOKEN}
configs:
  greeting: {content: "hello from compose"}
`,
		"host/file": "on the host\n",
	})
	env := []string{"TOKEN=t0ps3cret"}
	p.ok(env, "up", "-d")
	out, errOut := p.ok(env, "exec", "-T", "app", "sh", "-c",
		"cat /run/secrets/token; echo; cat /etc/greeting; echo; cat /host/file; echo x > /host/x 2>/dev/null || echo host-ro; grep ' /scratch ' /proc/mounts | grep -o 'size=[0-9a-z]*'; echo kept > /anon/f; echo n > /named/f")
	if want := "t0ps3cret\nhello from compose\non the host\nhost-ro\nsize=1024k\n"; out != want {
		t.Errorf("inside: %q, want %q\n%s", out, want, errOut)
	}
	vs, err := d.client.VolumeInspect(context.Background(), "vols_named", client.VolumeInspectOptions{})
	if err != nil || vs.Volume.Labels["com.example.kind"] != "test" || vs.Volume.Labels["com.docker.compose.volume"] != "named" {
		t.Errorf("named volume: %v %+v", err, vs.Volume.Labels)
	}
	old := p.inspect("vols-app-1")
	_, errOut = p.ok(append(env, "V=2"), "up", "-d")
	now := p.inspect("vols-app-1")
	if now.ID == old.ID {
		t.Fatalf("not recreated:\n%s", errOut)
	}
	if out, _ := p.ok(env, "exec", "-T", "app", "cat", "/anon/f", "/named/f"); out != "kept\nn\n" {
		t.Errorf("after recreate, anonymous and named volume data: %q", out)
	}
	anonOf := func(c container.InspectResponse) string {
		for _, m := range c.Mounts {
			if m.Destination == "/anon" {
				return m.Name
			}
		}
		t.Fatalf("no anonymous volume at /anon: %+v", c.Mounts)
		return ""
	}
	inherited := anonOf(now)
	if inherited != anonOf(old) {
		t.Errorf("recreated container got a new anonymous volume %s (was %s)", inherited, anonOf(old))
	}
	// down -v: as with Docker Compose on dockerd, an anonymous volume
	// the recreated container inherited (mounted by name) is kept, as a
	// dangling anonymous volume; one of a container created afresh goes.
	p.ok(env, "down", "-v", "-t", "1")
	vi, err := d.client.VolumeInspect(context.Background(), inherited, client.VolumeInspectOptions{})
	if _, anon := vi.Volume.Labels["com.docker.volume.anonymous"]; err != nil || !anon {
		t.Errorf("inherited anonymous volume after down -v: %v %+v", err, vi.Volume.Labels)
	}
	if _, err := d.client.VolumeRemove(context.Background(), inherited, client.VolumeRemoveOptions{}); err != nil {
		t.Error(err)
	}
	p.ok(env, "up", "-d")
	fresh := anonOf(p.inspect("vols-app-1"))
	p.ok(env, "down", "-v", "-t", "1")
	if _, err := d.client.VolumeInspect(context.Background(), fresh, client.VolumeInspectOptions{}); err == nil {
		t.Errorf("down -v kept the anonymous volume %s", fresh)
	}
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("down -v left %v", left)
	}
}

// TestComposeBuildOptions: compose build through berthd's classic
// builder with a named Dockerfile, a target stage, build args, labels and
// an image name; the image is what run then uses; dockerfile_inline too.
func TestComposeBuildOptions(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "bld", map[string]string{
		"compose.yaml": `services:
  tool:
    image: example/tool:dev
    network_mode: none
    build:
      context: ./src
      dockerfile: Build.dockerfile
      target: runtime
      args: {FLAVOUR: spicy}
      labels: {com.example.built-by: compose}
  inline:
    network_mode: none
    build:
      context: ./src
      dockerfile_inline: |
        FROM busybox
        RUN echo inline > /which
`,
		"src/Build.dockerfile": "FROM busybox AS base\nARG FLAVOUR=plain\nRUN echo $FLAVOUR > /flavour\nFROM base AS runtime\nRUN echo runtime > /which\nFROM base AS other\nRUN echo other > /which\n",
	})
	_, errOut := p.ok(nil, "build")
	ii, err := d.client.ImageInspect(context.Background(), "example/tool:dev")
	if err != nil {
		t.Fatalf("built image: %v\n%s", err, errOut)
	}
	if ii.Config.Labels["com.example.built-by"] != "compose" || ii.Config.Labels["com.docker.compose.project"] != "bld" || ii.Config.Labels["com.docker.compose.service"] != "tool" {
		t.Errorf("image labels: %v", ii.Config.Labels)
	}
	if out, _ := p.ok(nil, "run", "--rm", "-T", "tool", "cat", "/flavour", "/which"); out != "spicy\nruntime\n" {
		t.Errorf("target/args: %q", out)
	}
	if out, _ := p.ok(nil, "run", "--rm", "-T", "inline", "cat", "/which"); out != "inline\n" {
		t.Errorf("dockerfile_inline: %q", out)
	}
	p.ok(nil, "down", "--rmi", "all")
	for _, ref := range []string{"example/tool:dev", "bld-inline"} {
		if _, err := d.client.ImageInspect(context.Background(), ref); err == nil {
			t.Errorf("down --rmi all kept %s", ref)
		}
	}
}

// TestComposeServiceReferences: network_mode, pid and ipc "service:X"
// and volumes_from join the first container of another service; links
// give an extra name on the project network.
func TestComposeServiceReferences(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newComposeProject(t, d, "refs", map[string]string{"compose.yaml": `services:
  main:
    image: busybox
    command: ["sh", "-c", "echo shared > /data/f; exec nc -ll -p 7000 -e echo main"]
    stop_grace_period: 1s
    init: true
    volumes: [/data]
  side:
    image: busybox
    command: ["sleep", "300"]
    stop_grace_period: 1s
    network_mode: service:main
    pid: service:main
    ipc: service:main
    volumes_from: [main:ro]
  linker:
    image: busybox
    command: ["sleep", "300"]
    stop_grace_period: 1s
    init: true
    links: ["main:database"]
`})
	p.ok(nil, "up", "-d")
	mainC, side := p.inspect("refs-main-1"), p.inspect("refs-side-1")
	if hc := side.HostConfig; hc.NetworkMode != container.NetworkMode("container:"+mainC.ID) ||
		hc.PidMode != container.PidMode("container:"+mainC.ID) || hc.IpcMode != container.IpcMode("container:"+mainC.ID) {
		t.Errorf("side modes net %q pid %q ipc %q, main %s", hc.NetworkMode, hc.PidMode, hc.IpcMode, mainC.ID)
	}
	// Same network namespace: main's server on side's localhost; same
	// pid namespace: main's nc visible; volumes_from: main's volume, read-only.
	waitFor(t, "main's server via side's localhost", 10*time.Second, func() bool {
		out, _, _ := p.run(nil, "exec", "-T", "side", "nc", "127.0.0.1", "7000")
		return out == "main\n"
	})
	if out, _ := p.ok(nil, "exec", "-T", "side", "ps"); !strings.Contains(out, "nc -ll -p 7000") {
		t.Errorf("side does not see main's processes:\n%s", out)
	}
	if out, _ := p.ok(nil, "exec", "-T", "side", "cat", "/data/f"); out != "shared\n" {
		t.Errorf("volumes_from: %q", out)
	}
	if _, _, code := p.run(nil, "exec", "-T", "side", "sh", "-c", "echo x > /data/g"); code == 0 {
		t.Errorf("volumes_from main:ro is writable")
	}
	if out, _ := p.ok(nil, "exec", "-T", "linker", "nc", "database", "7000"); out != "main\n" {
		t.Errorf("link alias: %q", out)
	}
	p.ok(nil, "down", "-v", "-t", "1")
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("down -v left %v", left)
	}
}

// TestComposeNetworkAndVolumeOptions: an internal network with labels
// and a bridge name given by driver_opts, a local volume bound to a host
// directory by driver_opts (type none, o bind), ps's health and ports
// columns, and a healthcheck's start_interval.
func TestComposeNetworkAndVolumeOptions(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	hostDir := t.TempDir()
	port := freePorts(t, 1)
	bridge := "bi" + strings.TrimPrefix(d.bridge, "bt")
	p := newComposeProject(t, d, "opts", map[string]string{"compose.yaml": fmt.Sprintf(`services:
  a:
    image: busybox
    command: ["nc", "-ll", "-p", "80", "-e", "echo", "a"]
    init: true
    ports: ["127.0.0.1:%d:80"]
    networks: [inner, default]
    volumes: [bound:/bound]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1h
      start_period: 30s
      start_interval: 100ms
  b:
    image: busybox
    command: ["sleep", "300"]
    init: true
    networks: [inner]
networks:
  inner:
    internal: true
    labels: {com.example.tier: back}
    driver_opts: {com.docker.network.bridge.name: %s}
volumes:
  bound:
    driver_opts: {type: none, o: bind, device: %s}
`, port, bridge, hostDir)})
	// start_interval: healthy within the start period, long before the
	// 1h interval.
	p.ok(nil, "up", "-d", "--wait", "--wait-timeout", "20")
	out, _ := p.ok(nil, "ps", "a")
	if !strings.Contains(out, "(healthy)") || !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
		t.Errorf("ps:\n%s", out)
	}
	ni, err := d.client.NetworkInspect(context.Background(), "opts_inner", client.NetworkInspectOptions{})
	if err != nil || !ni.Network.Internal || ni.Network.Labels["com.example.tier"] != "back" || ni.Network.Labels["com.docker.compose.network"] != "inner" {
		t.Errorf("inner network: %v %+v", err, ni.Network)
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); err != nil {
		t.Errorf("bridge %s from driver_opts: %v", bridge, err)
	}
	// Internal: no default route from b; a reaches b's network by name.
	if out, _ := p.ok(nil, "exec", "-T", "b", "ip", "route"); strings.Contains(out, "default") {
		t.Errorf("internal network has a default route:\n%s", out)
	}
	if out, _ := p.ok(nil, "exec", "-T", "b", "nc", "a", "80"); out != "a\n" {
		t.Errorf("b → a on the internal network: %q", out)
	}
	p.ok(nil, "exec", "-T", "a", "sh", "-c", "echo through > /bound/f")
	if b, err := os.ReadFile(filepath.Join(hostDir, "f")); err != nil || string(b) != "through\n" {
		t.Errorf("bind-backed volume: %q %v", b, err)
	}
	p.ok(nil, "down", "-v", "-t", "1")
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("down -v left %v", left)
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		t.Errorf("bridge %s left after down", bridge)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "f")); err != nil {
		t.Errorf("down -v removed the bound host directory's content: %v", err)
	}
}

// TestComposePushPull: build, push to a local registry (credentials from
// berth login), remove the image, pull it back with compose pull, and
// up with --pull always.
func TestComposePushPull(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	reg := startRegistry(t)
	if o, e, code := d.cli(bins.cli, strings.NewReader("interop\n"), "login", reg, "-u", "ci", "--password-stdin"); code != 0 {
		t.Fatalf("login: %d %q %q", code, o, e)
	}
	ref := reg + "/cmp/app:v1"
	p := newComposeProject(t, d, "pp", map[string]string{
		"compose.yaml": fmt.Sprintf(`services:
  app:
    image: %s
    build: ./app
    network_mode: none
    command: ["cat", "/built"]
`, ref),
		"app/Dockerfile": "FROM busybox\nRUN echo pushed-and-pulled > /built\n",
	})
	p.ok(nil, "build")
	p.ok(nil, "push") // proved by the pull below, after the local image is gone
	if _, err := d.client.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	p.ok(nil, "pull")
	if _, err := d.client.ImageInspect(context.Background(), ref); err != nil {
		t.Fatalf("compose pull did not bring %s back: %v", ref, err)
	}
	if out, _ := p.ok(nil, "run", "--rm", "-T", "app"); out != "pushed-and-pulled\n" {
		t.Errorf("pulled image runs: %q", out)
	}
	_, errOut := p.ok(nil, "up", "-d", "--pull", "always", "--no-build")
	if !strings.Contains(errOut, "Pulled") {
		t.Errorf("up --pull always progress:\n%s", errOut)
	}
	p.ok(nil, "down", "--rmi", "all")
	if _, err := d.client.ImageInspect(context.Background(), ref); err == nil {
		t.Errorf("down --rmi all kept %s", ref)
	}
}

// dockerCompose returns runners of Debian's docker-compose 1.29 on
// project p against p's daemon: run reports stdout, stderr and the exit
// status; ok fails the test unless it exits 0 and returns both outputs.
// extraEnv are added to the environment.
func dockerCompose(t *testing.T, p *composeProject, extraEnv ...string) (run func(args ...string) (string, string, int), ok func(args ...string) string) {
	t.Helper()
	dc, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatalf("docker-compose is required (scripts/deps.sh installs it): %v", err)
	}
	run = func(args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, dc, append([]string{"--ansi", "never", "-p", p.name}, args...)...)
		cmd.Dir = p.dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+p.d.sock, "COMPOSE_PROJECT_NAME=", "COMPOSE_DOCKER_CLI_BUILD=0")
		cmd.Env = append(cmd.Env, extraEnv...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, isExit := err.(*exec.ExitError); isExit {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	ok = func(args ...string) string {
		t.Helper()
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("docker-compose %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return out + errOut
	}
	return run, ok
}

// TestComposeNetworksDockerCompose runs the networks file (static
// addresses, aliases, external network and volume, a build) with
// docker-compose 1.29 against berthd, including a recreate.
// docker-compose 1.29 recreates only on API versions before 1.45 (it
// reads image inspect's ContainerConfig, gone since; with docker-py's
// version negotiation it fails the same way on dockerd 25+), hence
// COMPOSE_API_VERSION=1.41, which berthd answers with the legacy fields.
func TestComposeNetworksDockerCompose(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	ctx := context.Background()
	sn, release := d.freeSubnets(2)
	frontIP, backIP := hostPart(sn[0], 10), hostPart(sn[1], 20)
	if _, err := d.client.NetworkCreate(ctx, "shared-net", client.NetworkCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "shared-vol"}); err != nil {
		t.Fatal(err)
	}
	release()
	// restart: true is newer than docker-compose 1.29's schema.
	file := strings.Replace(fmt.Sprintf(networksFile, frontIP, backIP, sn[0], sn[1]), "{condition: service_started, restart: true}", "{condition: service_started}", 1)
	p := newComposeProject(t, d, "dcnets", map[string]string{"compose.yaml": file, "back/Dockerfile": "FROM busybox\nCOPY msg /msg\n", "back/msg": "v1\n"})
	run, ok := dockerCompose(t, p, "COMPOSE_API_VERSION=1.41")
	ok("up", "-d")
	front := p.inspect("dcnets_front_1")
	if ep := front.NetworkSettings.Networks["dcnets_one"]; ep == nil || ep.IPAddress.String() != frontIP {
		t.Errorf("front on dcnets_one: %+v, want %s", ep, frontIP)
	}
	if ep := p.inspect("dcnets_back_1").NetworkSettings.Networks["dcnets_two"]; ep == nil || ep.IPAddress.String() != backIP {
		t.Errorf("back on dcnets_two: %+v, want %s", ep, backIP)
	}
	waitFor(t, "back reaching front by its alias", 10*time.Second, func() bool {
		out, _, _ := run("exec", "-T", "back", "nc", "web-alias", "80")
		return out == "front\n"
	})
	if out, _, _ := run("exec", "-T", "back", "nslookup", "back-alias"); !strings.Contains(out, backIP) {
		t.Errorf("back-alias does not resolve to %s:\n%s", backIP, out)
	}
	if out := ok("up", "-d"); !strings.Contains(out, "dcnets_front_1 is up-to-date") {
		t.Errorf("unchanged up:\n%s", out)
	}
	// A changed front is recreated with its static address.
	_, ok2 := dockerCompose(t, p, "COMPOSE_API_VERSION=1.41", "VERSION=2")
	if out := ok2("up", "-d"); !strings.Contains(out, "Recreating dcnets_front_1") {
		t.Errorf("changed up:\n%s", out)
	}
	if now := p.inspect("dcnets_front_1"); now.ID == front.ID || now.NetworkSettings.Networks["dcnets_one"] == nil || now.NetworkSettings.Networks["dcnets_one"].IPAddress.String() != frontIP {
		t.Errorf("recreated front: same id %v, networks %v", now.ID == front.ID, now.NetworkSettings.Networks)
	}
	ok("down", "-v", "--rmi", "local", "-t", "1")
	if left := p.leftovers(); len(left) != 0 {
		t.Errorf("docker-compose down -v left %v", left)
	}
	if _, err := d.client.VolumeInspect(ctx, "shared-vol", client.VolumeInspectOptions{}); err != nil {
		t.Errorf("down -v removed the external volume: %v", err)
	}
	if _, err := d.client.NetworkRemove(ctx, "shared-net", client.NetworkRemoveOptions{}); err != nil {
		t.Errorf("external network: %v", err)
	}
}
