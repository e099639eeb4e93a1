package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// state is the part of inspect the supervision tests read.
type state struct {
	Status     string
	Running    bool
	Restarting bool
	ExitCode   int
	Pid        int
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *container.Health
}

func (d *daemon) inspectState(ref string) (state, int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	insp, err := d.client.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		d.t.Fatalf("inspect %s: %v", ref, err)
	}
	s := insp.Container.State
	st := state{Status: string(s.Status), Running: s.Running, Restarting: s.Restarting, ExitCode: s.ExitCode, Pid: s.Pid, Health: s.Health}
	st.StartedAt, _ = time.Parse(time.RFC3339Nano, s.StartedAt)
	st.FinishedAt, _ = time.Parse(time.RFC3339Nano, s.FinishedAt)
	return st, insp.Container.RestartCount
}

// eventsBetween returns the container events of ref in [since, until).
func (d *daemon) eventsBetween(ref string, since, until time.Time) []eventRec {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := d.client.Events(ctx, client.EventsListOptions{Since: since.Format(time.RFC3339Nano), Until: until.Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("container", ref)})
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

type eventRec struct {
	Action string
	Time   time.Time
	Attrs  map[string]string
}

func actions(evs []eventRec) string {
	var a []string
	for _, e := range evs {
		a = append(a, e.Action)
	}
	return strings.Join(a, ",")
}

// TestRestartPolicyOnFailureBackoff: on-failure:3 restarts a failing
// container exactly 3 times, with dockerd's back-off (100, 200, 400 ms)
// between die and the next start, then leaves it exited.
func TestRestartPolicyOnFailureBackoff(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	since := time.Now()
	for _, tc := range []struct{ cli, name string }{{bins.docker, "of-docker"}, {bins.cli, "of-berth"}} {
		if _, e, code := d.cli(tc.cli, nil, "run", "-d", "--name", tc.name, "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 3"); code != 0 {
			t.Fatalf("%s run: %s", tc.cli, e)
		}
	}
	for _, name := range []string{"of-docker", "of-berth"} {
		waitFor(t, name+" to give up after 3 restarts", 20*time.Second, func() bool {
			st, n := d.inspectState(name)
			return n == 3 && st.Status == "exited" && !st.Restarting
		})
		st, _ := d.inspectState(name)
		if st.ExitCode != 3 || st.Running {
			t.Fatalf("%s final state: %+v", name, st)
		}
		evs := d.eventsBetween(name, since, time.Now().Add(time.Second))
		var dies, starts []time.Time
		for _, e := range evs {
			switch e.Action {
			case "die":
				if e.Attrs["exitCode"] != "3" {
					t.Fatalf("die event without exitCode 3: %+v", e)
				}
				dies = append(dies, e.Time)
			case "start":
				starts = append(starts, e.Time)
			}
		}
		if len(dies) != 4 || len(starts) != 4 {
			t.Fatalf("%s: want 4 starts and 4 dies, got %s", name, actions(evs))
		}
		for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
			if gap := starts[i+1].Sub(dies[i]); gap < want {
				t.Fatalf("%s: restart %d after %s, want at least %s (back-off)", name, i+1, gap, want)
			}
		}
	}
	// ps and inspect show the count; on-failure never restarts exit 0.
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--name", "ok0", "--restart", "on-failure", "busybox", "true"); code != 0 {
		t.Fatalf("run ok0: %s", e)
	}
	waitFor(t, "ok0 to exit", 10*time.Second, func() bool { st, _ := d.inspectState("ok0"); return st.Status == "exited" })
	if _, n := d.inspectState("ok0"); n != 0 {
		t.Fatalf("on-failure restarted a clean exit %d times", n)
	}
	o, _, _ := d.cli(bins.docker, nil, "inspect", "--format", "{{.RestartCount}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}", "of-berth")
	if strings.TrimSpace(o) != "3 on-failure 3" {
		t.Fatalf("inspect of-berth: %q", o)
	}
	// --rm with a restart policy is refused by both CLIs and by berthd.
	for _, cli := range []string{bins.docker, bins.cli} {
		_, e, code := d.cli(cli, nil, "run", "--rm", "--restart", "always", "busybox", "true")
		if code != 125 || !strings.Contains(e, "restart") {
			t.Fatalf("%s run --rm --restart always: %d %q", cli, code, e)
		}
	}
	_, err := d.client.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}},
	})
	if err == nil || !strings.Contains(err.Error(), "can't create 'AutoRemove' container with restart policy") {
		t.Fatalf("create AutoRemove+always through the API: %v", err)
	}
}

// TestRestartPolicyAlwaysStop: an always container keeps restarting,
// shows "Restarting (1) ..." while it waits, and stop (docker) or kill
// (berth) ends it for good.
func TestRestartPolicyAlwaysStop(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, tc := range []struct {
		cli, name string
		end       []string
	}{
		{bins.docker, "al-docker", []string{"stop"}},
		{bins.cli, "al-berth", []string{"kill"}},
	} {
		if _, e, code := d.cli(tc.cli, nil, "run", "-d", "--name", tc.name, "--restart", "always", "busybox", "sh", "-c", "exit 1"); code != 0 {
			t.Fatalf("run: %s", e)
		}
		// After 4 restarts the back-off is 1.6 s: the waiting state is
		// easy to observe.
		var seen bool
		waitFor(t, tc.name+" restarting", 20*time.Second, func() bool {
			st, n := d.inspectState(tc.name)
			if n >= 4 && st.Restarting && st.Status == "restarting" && st.Running {
				o, _, _ := d.cli(tc.cli, nil, "ps", "--filter", "name="+tc.name, "--format", "{{.Status}}")
				seen = strings.HasPrefix(strings.TrimSpace(o), "Restarting (1) ")
				return seen
			}
			return false
		})
		if _, e, code := d.cli(tc.cli, nil, append(tc.end, tc.name)...); code != 0 {
			t.Fatalf("%s %v: %s", tc.cli, tc.end, e)
		}
		st, n := d.inspectState(tc.name)
		if st.Status != "exited" || st.Restarting || st.Running {
			t.Fatalf("after %v: %+v", tc.end, st)
		}
		// Longer than the pending back-off: nothing restarts it.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if st2, n2 := d.inspectState(tc.name); st2.Status != "exited" || n2 != n {
				t.Fatalf("restarted after %v: %+v count %d->%d", tc.end, st2, n, n2)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A running always container stopped by the user stays stopped;
	// started again, its RestartCount starts over.
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "al-run", "--restart", "always", "busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(bins.docker, nil, "stop", "-t", "0", "al-run"); code != 0 {
		t.Fatalf("stop: %s", e)
	}
	if st, n := d.inspectState("al-run"); st.Status != "exited" || n != 0 {
		t.Fatalf("after stop: %+v %d", st, n)
	}
	if _, e, code := d.cli(bins.docker, nil, "start", "al-berth"); code != 0 {
		t.Fatalf("start: %s", e)
	}
	waitFor(t, "al-berth to restart again", 10*time.Second, func() bool { _, n := d.inspectState("al-berth"); return n >= 1 })
	if _, n := d.inspectState("al-berth"); n > 3 {
		t.Fatalf("RestartCount not reset by start: %d", n)
	}
	if _, _, code := d.cli(bins.docker, nil, "rm", "al-berth"); code == 0 {
		// It may be between runs or running: both refuse without -f.
		t.Fatalf("rm of a restarting/running container succeeded")
	}
	if _, e, code := d.cli(bins.docker, nil, "rm", "-f", "al-berth"); code != 0 {
		t.Fatalf("rm -f: %s", e)
	}
}

// TestRestartPolicyAtDaemonStart: when berthd starts, always containers
// come back even after a user's stop, unless-stopped ones only when they
// were not stopped by the user; containers that died while berthd was
// down (kill -9 of berthd, then of the container) restart; running ones
// are re-attached, not restarted.
func TestRestartPolicyAtDaemonStart(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	run := func(cli, name, policy string) {
		t.Helper()
		if _, e, code := d.cli(cli, nil, "run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "3600"); code != 0 {
			t.Fatalf("run %s: %s", name, e)
		}
	}
	run(bins.docker, "a-stopped", "always")
	run(bins.cli, "u-stopped", "unless-stopped")
	run(bins.docker, "a-live", "always")
	run(bins.cli, "u-live", "unless-stopped")
	run(bins.docker, "a-died", "always")
	run(bins.cli, "u-died", "unless-stopped")
	run(bins.docker, "n-died", "no")
	for _, n := range []string{"a-stopped", "u-stopped"} {
		if _, e, code := d.cli(bins.docker, nil, "stop", "-t", "0", n); code != 0 {
			t.Fatalf("stop %s: %s", n, e)
		}
	}
	pids := map[string]int{}
	for _, n := range []string{"a-live", "u-live", "a-died", "u-died", "n-died"} {
		st, _ := d.inspectState(n)
		pids[n] = st.Pid
	}
	d.kill9()
	// These die while berthd is down.
	for _, n := range []string{"a-died", "u-died", "n-died"} {
		if err := syscall.Kill(pids[n], syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", n, err)
		}
	}
	for _, n := range []string{"a-died", "u-died", "n-died"} {
		waitFor(t, n+" gone", 10*time.Second, func() bool {
			_, err := os.Stat("/proc/" + strconv.Itoa(pids[n]))
			return err != nil
		})
	}
	d.start()
	for _, n := range []string{"a-stopped", "a-live", "u-live", "a-died", "u-died"} {
		waitFor(t, n+" running after berthd start", 15*time.Second, func() bool {
			st, _ := d.inspectState(n)
			return st.Status == "running"
		})
	}
	for _, n := range []string{"a-live", "u-live"} {
		if st, cnt := d.inspectState(n); st.Pid != pids[n] || cnt != 0 {
			t.Fatalf("%s was restarted instead of re-attached: pid %d -> %d, count %d", n, pids[n], st.Pid, cnt)
		}
	}
	for _, n := range []string{"a-died", "u-died"} {
		if st, cnt := d.inspectState(n); st.Pid == pids[n] || cnt != 1 {
			t.Fatalf("%s: pid %d -> %d, RestartCount %d (want a restart by the policy)", n, pids[n], st.Pid, cnt)
		}
	}
	for _, n := range []string{"u-stopped", "n-died"} {
		if st, _ := d.inspectState(n); st.Status != "exited" {
			t.Fatalf("%s should stay exited: %+v", n, st)
		}
	}
	if st, _ := d.inspectState("n-died"); st.ExitCode != 137 {
		t.Fatalf("n-died exit: %+v", st)
	}
	// A clean berthd stop and start: the stopped always container comes
	// back again (as with dockerd), the unless-stopped one does not.
	if _, e, code := d.cli(bins.docker, nil, "stop", "-t", "0", "a-stopped"); code != 0 {
		t.Fatalf("stop: %s", e)
	}
	d.stop()
	d.start()
	waitFor(t, "a-stopped back", 15*time.Second, func() bool { st, _ := d.inspectState("a-stopped"); return st.Status == "running" })
	o, _, _ := d.cli(bins.cli, nil, "ps", "--format", "{{.Names}}")
	names := strings.Fields(o)
	if len(names) != 5 || strings.Contains(o, "u-stopped") || strings.Contains(o, "n-died") {
		t.Fatalf("ps after berthd restarts: %q", o)
	}
}
