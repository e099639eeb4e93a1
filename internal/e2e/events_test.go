package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEventsCommandFilters: `berth events` and `docker events` over the
// retained ring with --since/--until, filters (container, event, type,
// image, label) and --format; the container lifecycle's events in
// dockerd's order, image events, and oom.
func TestEventsCommandFilters(t *testing.T) {
	d := startDaemon(t)
	t0 := time.Now()
	d.importBusybox("busybox:latest")
	if _, e, code := d.cli(bins.docker, nil, "tag", "busybox", "busybox:two"); code != 0 {
		t.Fatalf("tag: %s", e)
	}
	if _, e, code := d.cli(bins.docker, nil, "rmi", "busybox:two"); code != 0 {
		t.Fatalf("rmi: %s", e)
	}
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--name", "ev1", "--label", "team=blue", "busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "ev2", "--label", "team=red", "busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	d.cli(bins.docker, nil, "pause", "ev1")
	d.cli(bins.docker, nil, "unpause", "ev1")
	d.cli(bins.docker, nil, "exec", "ev1", "true")
	// exec_die follows the exec's exit, which the exec's stream may beat.
	waitFor(t, "exec_die", 10*time.Second, func() bool {
		return strings.Contains(actions(d.eventsBetween("ev1", t0, time.Now().Add(time.Second))), "exec_die")
	})
	d.cli(bins.docker, nil, "top", "ev1")
	d.cli(bins.docker, nil, "rename", "ev2", "ev2b")
	d.cli(bins.docker, nil, "update", "--cpu-shares", "512", "ev2b")
	t1 := time.Now()
	if _, e, code := d.cli(bins.docker, nil, "stop", "-t", "0", "ev1"); code != 0 {
		t.Fatalf("stop: %s", e)
	}
	d.cli(bins.cli, nil, "rm", "-f", "ev2b")
	// A memory hog: oom, then die.
	d.cli(bins.docker, nil, "run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)")
	t2 := time.Now().Add(time.Second)
	since, until := t0.Format(time.RFC3339Nano), t2.Format(time.RFC3339Nano)

	for _, cli := range []string{bins.cli, bins.docker} {
		// The whole life of ev1, in order.
		o, e, code := d.cli(cli, nil, "events", "--since", since, "--until", until, "--filter", "container=ev1", "--format", "{{.Action}}")
		if code != 0 {
			t.Fatalf("%s events: %d %s", cli, code, e)
		}
		got := strings.Join(strings.Fields(strings.ReplaceAll(o, ": ", ":")), ",")
		want := "create,start,pause,unpause,exec_create:true,exec_start:true,exec_die,top,kill,kill,die,stop" // stop -t 0: TERM, then KILL at once
		if got != want {
			t.Fatalf("%s events of ev1:\n got %s\nwant %s", cli, got, want)
		}
		// Event and label filters, and the default format.
		o, _, _ = d.cli(cli, nil, "events", "--since", since, "--until", until, "--filter", "event=die", "--filter", "label=team=red")
		lines := strings.Split(strings.TrimSpace(o), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], " container die ") || !strings.Contains(lines[0], "exitCode=137") ||
			!strings.Contains(lines[0], "name=ev2b") || !strings.Contains(lines[0], "team=red") {
			t.Fatalf("%s events die+label: %q", cli, o)
		}
		// --until bounds the replay: nothing of the stop.
		o, _, _ = d.cli(cli, nil, "events", "--since", since, "--until", t1.Format(time.RFC3339Nano), "--filter", "container=ev1", "--filter", "event=stop")
		if strings.TrimSpace(o) != "" {
			t.Fatalf("%s events --until before the stop: %q", cli, o)
		}
		// Renames and updates carry their attributes.
		o, _, _ = d.cli(cli, nil, "events", "--since", since, "--until", until, "--filter", "event=rename", "--format", "{{json .}}")
		var m struct {
			Type, Action string
			Actor        struct{ Attributes map[string]string }
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(o)), &m); err != nil || m.Actor.Attributes["oldName"] != "/ev2" || m.Actor.Attributes["name"] != "ev2b" {
			t.Fatalf("%s rename event: %q %v", cli, o, err)
		}
		// Image events.
		o, _, _ = d.cli(cli, nil, "events", "--since", since, "--until", until, "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
		for _, w := range []string{"import ", "tag busybox:two", "untag "} {
			if !strings.Contains(o, w) {
				all, _, _ := d.cli(cli, nil, "events", "--since", since, "--until", until)
				t.Fatalf("%s image events lack %q:\n%s\nall:\n%s", cli, w, o, all)
			}
		}
		// oom before die, for the hog.
		o, _, _ = d.cli(cli, nil, "events", "--since", since, "--until", until, "--filter", "container=hog", "--filter", "event=oom", "--filter", "event=die", "--format", "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}")
		if strings.Join(strings.Fields(o), " ") != "oom die 137" {
			t.Fatalf("%s oom events: %q", cli, o)
		}
	}
	// A relative --since (the client turns it into a timestamp).
	o, _, _ := d.cli(bins.cli, nil, "events", "--since", "10m", "--until", "0s", "--filter", "container=hog", "--filter", "event=create", "--format", "{{.Actor.Attributes.name}}")
	if strings.TrimSpace(o) != "hog" {
		t.Fatalf("events --since 10m: %q", o)
	}
	// A bad filter is refused.
	_, e, code := d.cli(bins.cli, nil, "events", "--until", "0s", "--filter", "colour=red")
	if code == 0 || !strings.Contains(e, "invalid filter") {
		t.Fatalf("bad filter: %d %q", code, e)
	}
}

// TestEventsLiveStream: `events` without --until streams new events as
// they happen, filtered, through both CLIs.
func TestEventsLiveStream(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, cli := range []string{bins.docker, bins.cli} {
		name := "live-" + filepath.Base(cli)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, cli, "events", "--filter", "container="+name, "--filter", "event=die", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes \"exitCode\"}}")
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "BERTH_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.dataRoot), "dockercfg"))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// The subscription is in place once a first event passes; run
		// containers until one is seen (the stream has no ready signal).
		var got string
		deadline := time.After(20 * time.Second)
	loop:
		for {
			d.cli(bins.docker, nil, "rm", "-f", name)
			d.cli(bins.docker, nil, "run", "--name", name, "busybox", "sh", "-c", "exit 4")
			select {
			case got = <-lines:
				break loop
			case <-time.After(500 * time.Millisecond):
			case <-deadline:
				break loop
			}
		}
		cancel()
		_ = cmd.Wait()
		if got != "die "+name+" 4" {
			t.Fatalf("%s live events: %q", cli, got)
		}
	}
}

// TestOOMEventWhileRunning: a process of the container killed by the OOM
// killer gives an "oom" event at once, though the container keeps
// running; its exit later says OOMKilled, with no second "oom".
func TestOOMEventWhileRunning(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	since := time.Now()
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--name", "survivor", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c",
		"tail -c 40000000 /dev/zero; echo survived; sleep 3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "the child's OOM kill", 20*time.Second, func() bool {
		o, _, _ := d.cli(bins.docker, nil, "logs", "survivor")
		return strings.Contains(o, "survived")
	})
	waitFor(t, "the oom event", 10*time.Second, func() bool {
		return strings.Contains(actions(d.eventsBetween("survivor", since, time.Now().Add(500*time.Millisecond))), "oom")
	})
	if st, _ := d.inspectState("survivor"); st.Status != "running" {
		t.Fatalf("container after its child's OOM kill: %+v", st)
	}
	if _, e, code := d.cli(bins.docker, nil, "kill", "survivor"); code != 0 {
		t.Fatalf("kill: %s", e)
	}
	waitFor(t, "survivor's exit", 10*time.Second, func() bool { st, _ := d.inspectState("survivor"); return st.Status == "exited" })
	o, _, _ := d.cli(bins.docker, nil, "inspect", "--format", "{{.State.OOMKilled}}", "survivor")
	if strings.TrimSpace(o) != "true" {
		t.Fatalf("OOMKilled after the exit: %q", o)
	}
	if got := actions(d.eventsBetween("survivor", since, time.Now().Add(500*time.Millisecond))); strings.Count(got, "oom") != 1 {
		t.Fatalf("events: %s", got)
	}
}
