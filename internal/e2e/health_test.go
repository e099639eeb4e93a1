package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// TestHealthcheckTransitions: starting → unhealthy after the retries,
// healthy once the probe passes, with the last 5 results in inspect, ps's
// "(healthy)" status and health filter, and health_status events; through
// the docker CLI and the berth CLI.
func TestHealthcheckTransitions(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	since := time.Now()
	for _, tc := range []struct{ cli, name string }{{bins.docker, "hc-docker"}, {bins.cli, "hc-berth"}} {
		if _, e, code := d.cli(tc.cli, nil, "run", "-d", "--name", tc.name,
			"--health-cmd", "echo probing; test -f /tmp/ok", "--health-interval", "100ms", "--health-retries", "2",
			"busybox", "sleep", "3600"); code != 0 {
			t.Fatalf("run: %s", e)
		}
		st, _ := d.inspectState(tc.name)
		if st.Health == nil || st.Health.Status != container.Starting && st.Health.Status != container.Unhealthy {
			t.Fatalf("%s health at start: %+v", tc.name, st.Health)
		}
		o, _, _ := d.cli(tc.cli, nil, "ps", "--filter", "name="+tc.name, "--format", "{{.Status}}")
		if !strings.Contains(o, "(health: starting)") && !strings.Contains(o, "(unhealthy)") {
			t.Fatalf("ps status at start: %q", o)
		}
	}
	for _, tc := range []struct{ cli, name string }{{bins.docker, "hc-docker"}, {bins.cli, "hc-berth"}} {
		waitFor(t, tc.name+" unhealthy", 15*time.Second, func() bool {
			st, _ := d.inspectState(tc.name)
			return st.Health != nil && st.Health.Status == container.Unhealthy
		})
		st, _ := d.inspectState(tc.name)
		if st.Health.FailingStreak < 2 || len(st.Health.Log) < 2 {
			t.Fatalf("unhealthy state: %+v", st.Health)
		}
		last := st.Health.Log[len(st.Health.Log)-1]
		if last.ExitCode != 1 || last.Output != "probing\n" || last.End.Before(last.Start) {
			t.Fatalf("failing probe result: %+v", last)
		}
		o, _, _ := d.cli(tc.cli, nil, "ps", "--filter", "health=unhealthy", "--format", "{{.Names}} {{.Status}}")
		if !strings.Contains(o, tc.name+" Up ") || !strings.Contains(o, "(unhealthy)") {
			t.Fatalf("ps health=unhealthy: %q", o)
		}
		if _, e, code := d.cli(tc.cli, nil, "exec", tc.name, "touch", "/tmp/ok"); code != 0 {
			t.Fatalf("exec: %s", e)
		}
		waitFor(t, tc.name+" healthy", 15*time.Second, func() bool {
			st, _ := d.inspectState(tc.name)
			return st.Health.Status == container.Healthy
		})
		// More probes: the log keeps the last 5.
		waitFor(t, tc.name+" 5 log entries", 15*time.Second, func() bool {
			st, _ := d.inspectState(tc.name)
			return len(st.Health.Log) == 5 && st.Health.Log[4].ExitCode == 0
		})
		st, _ = d.inspectState(tc.name)
		if len(st.Health.Log) != 5 || st.Health.FailingStreak != 0 {
			t.Fatalf("healthy state: %+v", st.Health)
		}
		o, _, _ = d.cli(tc.cli, nil, "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}")
		if !strings.Contains(o, tc.name) || !strings.Contains(o, "(healthy)") {
			t.Fatalf("ps health=healthy: %q", o)
		}
		evs := d.eventsBetween(tc.name, since, time.Now().Add(time.Second))
		got := actions(evs)
		if !strings.Contains(got, "health_status: unhealthy") || !strings.Contains(got, "health_status: healthy") {
			t.Fatalf("events: %s", got)
		}
		if strings.Contains(got, "exec_create: /bin/sh") || strings.Contains(got, "exec_start: /bin/sh") {
			t.Fatalf("probes emitted exec events: %s", got)
		}
	}
	// After a stop the status is unhealthy (dockerd); --no-healthcheck and
	// a container without one report no health.
	if _, e, code := d.cli(bins.docker, nil, "stop", "-t", "0", "hc-docker"); code != 0 {
		t.Fatalf("stop: %s", e)
	}
	if st, _ := d.inspectState("hc-docker"); st.Health == nil || st.Health.Status != container.Unhealthy {
		t.Fatalf("health after stop: %+v", st.Health)
	}
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--name", "hc-none", "--no-healthcheck", "busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run --no-healthcheck: %s", e)
	}
	if st, _ := d.inspectState("hc-none"); st.Health != nil {
		t.Fatalf("--no-healthcheck has health: %+v", st.Health)
	}
	o, _, _ := d.cli(bins.docker, nil, "ps", "--filter", "health=none", "--format", "{{.Names}}")
	if strings.TrimSpace(o) != "hc-none" {
		t.Fatalf("ps health=none: %q", o)
	}
}

// TestHealthcheckTimeoutKillsProbe: a probe that outlives --health-timeout
// is recorded with exit -1 and killed (dockerd leaves it running), and
// --health-on-failure=stop (berth only) stops the unhealthy container.
func TestHealthcheckTimeoutKillsProbe(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--name", "slow",
		"--health-cmd", "sleep 30", "--health-timeout", "200ms", "--health-interval", "100ms", "--health-retries", "3",
		"busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "slow unhealthy", 20*time.Second, func() bool {
		st, _ := d.inspectState("slow")
		return st.Health != nil && st.Health.Status == container.Unhealthy
	})
	st, _ := d.inspectState("slow")
	for _, r := range st.Health.Log {
		if r.ExitCode != -1 || r.Output != "Health check exceeded timeout (200ms)" {
			t.Fatalf("timed-out probe result: %+v", r)
		}
		if el := r.End.Sub(r.Start); el < 200*time.Millisecond || el > 5*time.Second {
			t.Fatalf("probe took %s", el)
		}
	}
	// Three probes timed out; killed, at most the one in flight is left.
	o, e, code := d.cli(bins.docker, nil, "top", "slow")
	if code != 0 {
		t.Fatalf("top: %s", e)
	}
	if n := strings.Count(o, "sleep 30"); n > 1 {
		t.Fatalf("%d timed-out probes still run:\n%s", n, o)
	}

	// --health-on-failure=stop.
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--name", "hof", "--restart", "always", "--stop-timeout", "1",
		"--health-cmd", "false", "--health-interval", "100ms", "--health-retries", "1", "--health-on-failure", "stop",
		"busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run --health-on-failure: %s", e)
	}
	o, _, _ = d.cli(bins.docker, nil, "inspect", "--format", `{{index .Config.Labels "berth.health-on-failure"}}`, "hof")
	if strings.TrimSpace(o) != "stop" {
		t.Fatalf("label: %q", o)
	}
	waitFor(t, "hof stopped by its health", 20*time.Second, func() bool {
		st, _ := d.inspectState("hof")
		return st.Status == "exited"
	})
	if _, n := d.inspectState("hof"); n != 0 {
		t.Fatalf("stop on failure was followed by a restart: %d", n)
	}
	_, e, code = d.cli(bins.cli, nil, "run", "-d", "--health-on-failure", "explode", "busybox", "true")
	if code != 125 || !strings.Contains(e, "health-on-failure") {
		t.Fatalf("bad --health-on-failure: %d %q", code, e)
	}
}

// TestHealthcheckFromImage: an image's HEALTHCHECK (loaded from a docker
// save archive whose config has one) applies; --health-* override its
// fields and --no-healthcheck disables it.
func TestHealthcheckFromImage(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	saved, e, code := d.cli(bins.docker, nil, "save", "busybox:latest")
	if code != 0 {
		t.Fatalf("save: %s", e)
	}
	archive := withHealthcheck(t, []byte(saved), "hc:latest", map[string]any{
		"Test": []string{"CMD-SHELL", "echo image-probe"}, "Interval": int64(100 * time.Millisecond), "Retries": 1,
	})
	if _, e, code := d.cli(bins.docker, bytes.NewReader(archive), "load"); code != 0 {
		t.Fatalf("load: %s", e)
	}
	o, _, _ := d.cli(bins.docker, nil, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", "hc")
	if !strings.Contains(o, "image-probe") {
		t.Fatalf("loaded image's healthcheck: %q", o)
	}
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--name", "img-hc", "hc", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "img-override", "--health-cmd", "echo flag-probe", "hc", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "img-off", "--no-healthcheck", "hc", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	for name, out := range map[string]string{"img-hc": "image-probe\n", "img-override": "flag-probe\n"} {
		waitFor(t, name+" healthy", 15*time.Second, func() bool {
			st, _ := d.inspectState(name)
			return st.Health != nil && st.Health.Status == container.Healthy
		})
		st, _ := d.inspectState(name)
		if got := st.Health.Log[len(st.Health.Log)-1].Output; got != out {
			t.Fatalf("%s probe output %q, want %q", name, got, out)
		}
	}
	if st, _ := d.inspectState("img-off"); st.Health != nil {
		t.Fatalf("--no-healthcheck: %+v", st.Health)
	}
}

// withHealthcheck rewrites a docker save archive: its first image's
// config gets hc as Config.Healthcheck (a new config blob) and the tag ref.
func withHealthcheck(t *testing.T, archive []byte, ref string, hc map[string]any) []byte {
	t.Helper()
	files := map[string][]byte{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
		order = append(order, h.Name)
	}
	var manifest []map[string]any
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) == 0 {
		t.Fatalf("manifest.json: %v", err)
	}
	cfgPath := manifest[0]["Config"].(string)
	var cfg map[string]any
	if err := json.Unmarshal(files[cfgPath], &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["config"].(map[string]any)["Healthcheck"] = hc
	nb, _ := json.Marshal(cfg)
	sum := sha256.Sum256(nb)
	newPath := "blobs/sha256/" + hex.EncodeToString(sum[:])
	files[newPath] = nb
	order = append(order, newPath)
	manifest[0]["Config"] = newPath
	manifest[0]["RepoTags"] = []string{ref}
	files["manifest.json"], _ = json.Marshal(manifest[:1])
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, name := range order {
		if name == "index.json" || name == "oci-layout" || name == "repositories" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[name])
	}
	tw.Close()
	return out.Bytes()
}

// TestHealthcheckSlowProbeBlocksNothing: while a probe hangs (long
// timeout), inspect, ps, exec and stop answer at once, and stopping the
// container ends the probe with it.
func TestHealthcheckSlowProbeBlocksNothing(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "hang", "--stop-timeout", "1",
		"--health-cmd", "sleep 300", "--health-timeout", "10m", "--health-interval", "100ms",
		"busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "the probe running", 15*time.Second, func() bool {
		o, _, _ := d.cli(bins.docker, nil, "top", "hang")
		return strings.Contains(o, "sleep 300")
	})
	for _, args := range [][]string{{"inspect", "hang"}, {"ps"}, {"exec", "hang", "true"}} {
		start := time.Now()
		if _, e, code := d.cli(bins.cli, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, e)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("%v took %s while a probe hangs", args, el)
		}
	}
	if st, _ := d.inspectState("hang"); st.Health == nil || st.Health.Status != container.Starting {
		t.Fatalf("health while the first probe runs: %+v", st.Health)
	}
	start := time.Now()
	if _, e, code := d.cli(bins.docker, nil, "stop", "hang"); code != 0 {
		t.Fatalf("stop: %s", e)
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Fatalf("stop took %s while a probe hangs", el)
	}
	// (The stop's SIGKILL of every process may end the probe first: its
	// result, 137, can then be in the log.)
	if st, _ := d.inspectState("hang"); st.Status != "exited" || st.Health.Status != container.Unhealthy || len(st.Health.Log) > 1 {
		t.Fatalf("after stop: %+v %+v", st, st.Health)
	}
}
