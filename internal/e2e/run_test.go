package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// clis are the two front ends every scenario runs through.
func clis() []struct{ name, bin string } {
	return []struct{ name, bin string }{{"docker", bins.docker}, {"berth", bins.cli}}
}

func TestRunEchoAndExitCodes(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := d.cli(c.bin, nil, "run", "--rm", "busybox", "echo", "hello world")
			if code != 0 || out != "hello world\n" {
				t.Fatalf("run echo: code %d out %q err %q", code, out, errOut)
			}
			_, _, code = d.cli(c.bin, nil, "run", "--rm", "busybox", "sh", "-c", "exit 3")
			if code != 3 {
				t.Fatalf("exit 3: got %d", code)
			}
			// stdout and stderr stay apart.
			out, errOut, code = d.cli(c.bin, nil, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
			if code != 0 || out != "out\n" || errOut != "err\n" {
				t.Fatalf("streams: code %d out %q err %q", code, out, errOut)
			}
			// A command that does not exist: 127, like Docker.
			_, errOut, code = d.cli(c.bin, nil, "run", "--rm", "busybox", "/no/such/binary")
			if code != 127 {
				t.Fatalf("missing binary: code %d, stderr %q", code, errOut)
			}
			// Unknown image: 125 and Docker's message.
			_, errOut, code = d.cli(c.bin, nil, "run", "--rm", "--pull=never", "nosuchimage:v9", "true")
			if code != 125 || !strings.Contains(errOut, "No such image") {
				t.Fatalf("unknown image: code %d, stderr %q", code, errOut)
			}
		})
	}
}

func TestStdinPipe(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := d.cli(c.bin, strings.NewReader("line one\nline two\n"), "run", "--rm", "-i", "busybox", "wc", "-l")
			if code != 0 || strings.TrimSpace(out) != "2" {
				t.Fatalf("stdin: code %d out %q err %q", code, out, errOut)
			}
		})
	}
}

func TestDetachedLogsExecStop(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			name := "web-" + c.name
			out, errOut, code := d.cli(c.bin, nil, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo started; echo oops >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
			if code != 0 || len(strings.TrimSpace(out)) != 64 {
				t.Fatalf("run -d: code %d out %q err %q", code, out, errOut)
			}
			id := strings.TrimSpace(out)
			waitFor(t, "logs", 10*time.Second, func() bool {
				o, e, _ := d.cli(c.bin, nil, "logs", name)
				return o == "started\n" && e == "oops\n"
			})
			out, _, code = d.cli(c.bin, nil, "exec", name, "sh", "-c", "echo in-exec; exit 7")
			if code != 7 || out != "in-exec\n" {
				t.Fatalf("exec: code %d out %q", code, out)
			}
			out, _, _ = d.cli(c.bin, nil, "ps", "--format", "{{.Names}} {{.State}}", "--filter", "name="+name)
			if strings.TrimSpace(out) != name+" running" {
				t.Fatalf("ps: %q", out)
			}
			out, _, _ = d.cli(c.bin, nil, "inspect", "--format", "{{.Id}} {{.State.Running}} {{.Name}}", name)
			if strings.TrimSpace(out) != id+" true /"+name {
				t.Fatalf("inspect: %q", out)
			}
			start := time.Now()
			if _, e, code := d.cli(c.bin, nil, "stop", name); code != 0 {
				t.Fatalf("stop: %d %s", code, e)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("stop took %s although the container handles TERM", time.Since(start))
			}
			o, _, _ := d.cli(c.bin, nil, "logs", name)
			if o != "started\nbye\n" {
				t.Fatalf("logs after stop: %q", o)
			}
			out, _, _ = d.cli(c.bin, nil, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
			if strings.TrimSpace(out) != "exited 0" {
				t.Fatalf("after stop: %q", out)
			}
			if _, e, code := d.cli(c.bin, nil, "rm", name); code != 0 {
				t.Fatalf("rm: %s", e)
			}
			_, e, code := d.cli(c.bin, nil, "inspect", name)
			if code != 1 || !strings.Contains(strings.ToLower(e), "no such") {
				t.Fatalf("inspect removed: %d %q", code, e)
			}
		})
	}
}

func TestStopTimeoutKills(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	out, _, code := d.cli(bins.docker, nil, "run", "-d", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
	if code != 0 {
		t.Fatal("run -d failed")
	}
	id := strings.TrimSpace(out)
	start := time.Now()
	if _, e, code := d.cli(bins.docker, nil, "stop", "-t", "1", id); code != 0 {
		t.Fatalf("stop: %s", e)
	}
	if el := time.Since(start); el < time.Second || el > 6*time.Second {
		t.Fatalf("stop -t 1 took %s", el)
	}
	out, _, _ = d.cli(bins.docker, nil, "inspect", "--format", "{{.State.ExitCode}}", id)
	if strings.TrimSpace(out) != "137" {
		t.Fatalf("exit code after kill: %q", out)
	}
}

func TestRmForceAndConflicts(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.cli(bins.docker, nil, "run", "-d", "--name", "busy", "busybox", "sleep", "3600")
	_, e, code := d.cli(bins.docker, nil, "rm", "busy")
	if code != 1 || !strings.Contains(e, "container is running") {
		t.Fatalf("rm running: %d %q", code, e)
	}
	_, e, code = d.cli(bins.docker, nil, "run", "-d", "--name", "busy", "busybox", "true")
	if code != 125 || !strings.Contains(e, "is already in use") {
		t.Fatalf("name conflict: %d %q", code, e)
	}
	if _, e, code := d.cli(bins.docker, nil, "rm", "-f", "busy"); code != 0 {
		t.Fatalf("rm -f: %s", e)
	}
	out, _, _ := d.cli(bins.docker, nil, "ps", "-aq")
	if strings.TrimSpace(out) != "" {
		t.Fatalf("ps -aq after rm -f: %q", out)
	}
}

func TestLiveRestoreAfterKill9(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	out, _, code := d.cli(bins.docker, nil, "run", "-d", "--name", "survivor", "busybox", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
	if code != 0 {
		t.Fatal("run -d failed")
	}
	id := strings.TrimSpace(out)
	waitFor(t, "first ticks", 10*time.Second, func() bool {
		o, _, _ := d.cli(bins.docker, nil, "logs", "survivor")
		return strings.Count(o, "tick") >= 2
	})
	d.kill9()
	downFrom := time.Now()
	time.Sleep(500 * time.Millisecond) // the container keeps logging meanwhile
	downTo := time.Now()
	d.start()
	ctx := context.Background()
	insp, err := d.client.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !insp.Container.State.Running {
		t.Fatalf("container not running after berthd restart: %+v", insp.Container.State)
	}
	o, _, code := d.cli(bins.docker, nil, "exec", "survivor", "echo", "still here")
	if code != 0 || o != "still here\n" {
		t.Fatalf("exec after restart: %d %q", code, o)
	}
	logs, _, _ := d.cli(bins.docker, nil, "logs", "survivor")
	// The ticks are numbered without a gap: nothing was lost while berthd
	// was down, and some were written in that time (the shim owns the log).
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line != fmt.Sprintf("tick %d", i) {
			t.Fatalf("log line %d is %q, want tick %d:\n%s", i, line, i, logs)
		}
	}
	during, _, _ := d.cli(bins.docker, nil, "logs", "--since", downFrom.Format(time.RFC3339Nano), "--until", downTo.Format(time.RFC3339Nano), "survivor")
	if strings.Count(during, "tick") < 2 {
		t.Fatalf("ticks logged while berthd was down: %q", during)
	}
	if _, e, code := d.cli(bins.docker, nil, "stop", "-t", "1", "survivor"); code != 0 {
		t.Fatalf("stop after restart: %s", e)
	}
	out, _, _ = d.cli(bins.docker, nil, "inspect", "--format", "{{json .State}}", "survivor")
	var st struct{ Status string }
	_ = json.Unmarshal([]byte(out), &st)
	if st.Status != "exited" {
		t.Fatalf("state after stop: %s", out)
	}
}

func TestOOMKilled(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	_, e, code := d.cli(bins.docker, nil, "run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
	if code != 137 {
		t.Fatalf("memory hog: exit %d (%s), want 137", code, e)
	}
	o, _, _ := d.cli(bins.docker, nil, "inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog")
	if strings.TrimSpace(o) != "true 137" {
		t.Fatalf("inspect after OOM: %q", o)
	}
}
