package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/fixture"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunExitStatusAndOutput(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	for _, tc := range []struct {
		script string
		code   int
	}{{"echo out; echo err >&2; exit 0", 0}, {"exit 3", 3}, {"sh -c 'kill -9 $$'; exit $?", 137}} {
		b := shBundle(t, tc.script, nil)
		out, errs, code := r.run(b)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %s)", tc.script, code, tc.code, errs)
		}
		if tc.code == 0 && (out != "out\n" || errs != "err\n") {
			t.Errorf("stdout %q stderr %q", out, errs)
		}
		if left := cgroupLeft(t, bundleSpec(t, b).Linux.CgroupsPath); len(left) > 0 {
			t.Errorf("cgroups left after run: %v", left)
		}
	}
}

func TestLifecycleCreateStartKillDelete(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	b := fixtureProbeBundle(t, []string{"/probe", "signals"}, nil)
	id := r.id("life")
	pidFile := filepath.Join(t.TempDir(), "pid")
	outFile := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := r.cmdWithStdout(f, "create", "-b", b, "--pid-file", pidFile, id)
	if err := cmd.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}
	st := r.state(id)
	if st.Status != specs.StateCreated || st.ID != id || st.Bundle != b || st.Pid <= 0 || st.Version == "" {
		t.Fatalf("state after create: %+v", st)
	}
	pidb, _ := os.ReadFile(pidFile)
	if strings.TrimSpace(string(pidb)) == "" || strings.TrimSpace(string(pidb)) != itoa(st.Pid) {
		t.Fatalf("pid file %q, state pid %d", pidb, st.Pid)
	}
	// The init waits, still as the runtime binary, on a read-only mount:
	// a container can never write to the runtime through /proc/<pid>/exe.
	assertExeReadonly(t, st.Pid)
	if _, errs, code := r.exec(nil, "start", id); code != 0 {
		t.Fatalf("start: %s", errs)
	}
	r.waitStatus(id, specs.StateRunning)
	if _, errs, code := r.exec(nil, "start", id); code == 0 || !strings.Contains(errs, "already") {
		t.Fatalf("second start should fail: %d %s", code, errs)
	}
	waitFile(t, outFile, "ready")
	r.must("kill", id, "USR1")
	waitFile(t, outFile, "SIGUSR1")
	if _, errs, code := r.exec(nil, "delete", id); code == 0 || !strings.Contains(errs, "not stopped") {
		t.Fatalf("delete of running container should fail: %d %s", code, errs)
	}
	r.must("kill", id) // SIGTERM: the probe exits 0
	r.waitStatus(id, specs.StateStopped)
	if st := r.state(id); st.Pid != 0 {
		t.Errorf("stopped container reports pid %d", st.Pid)
	}
	if _, errs, code := r.exec(nil, "kill", id, "KILL"); code == 0 || !strings.Contains(errs, "not running") {
		t.Errorf("kill of stopped container: %d %s", code, errs)
	}
	r.must("delete", id)
	if _, errs, code := r.exec(nil, "state", id); code == 0 || !strings.Contains(errs, "does not exist") {
		t.Errorf("state after delete: %d %s", code, errs)
	}
}

func TestListAndPs(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	b := shBundle(t, "sleep 100 & sleep 100 & wait", nil)
	id := r.id("ls")
	r.must("run", "-d", "-b", b, id)
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.must("list", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["id"] != id || list[0]["status"] != "running" {
		t.Fatalf("list: %v", list)
	}
	if table := r.must("list"); !strings.Contains(table, "ID") || !strings.Contains(table, id) {
		t.Fatalf("list table: %s", table)
	}
	if q := r.must("list", "-q"); strings.TrimSpace(q) != id {
		t.Fatalf("list -q: %q", q)
	}
	var pids []int
	deadline := 0
	for len(pids) < 3 && deadline < 200 {
		_ = json.Unmarshal([]byte(r.must("ps", "--format", "json", id)), &pids)
		deadline++
	}
	if len(pids) != 3 {
		t.Fatalf("ps json: %v (want sh + 2 sleeps)", pids)
	}
	if table := r.must("ps", id); !strings.Contains(table, "PID") || !strings.Contains(table, "sleep 100") {
		t.Fatalf("ps table: %s", table)
	}
	r.must("delete", "-f", id)
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	b := shBundle(t, "while true; do sleep 0.01; done", nil)
	id := r.id("pause")
	r.must("run", "-d", "-b", b, id)
	r.must("pause", id)
	if st := r.state(id); st.Status != specs.ContainerState("paused") {
		t.Fatalf("after pause: %s", st.Status)
	}
	cg := bundleSpec(t, b).Linux.CgroupsPath
	if fz, err := os.ReadFile("/sys/fs/cgroup/freezer" + cg + "/freezer.state"); err == nil && strings.TrimSpace(string(fz)) != "FROZEN" {
		t.Fatalf("freezer.state %q", fz)
	}
	r.must("resume", id)
	if st := r.state(id); st.Status != specs.StateRunning {
		t.Fatalf("after resume: %s", st.Status)
	}
	if _, errs, code := r.exec(nil, "resume", id); code == 0 || !strings.Contains(errs, "not paused") {
		t.Fatalf("resume of running: %d %s", code, errs)
	}
	r.must("pause", id)
	r.must("delete", "-f", id) // a paused container can be force-deleted
	if left := cgroupLeft(t, cg); len(left) > 0 {
		t.Fatalf("cgroups left: %v", left)
	}
}

func TestRunForwardsSignalsAndReportsDeath(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	b := fixtureProbeBundle(t, []string{"/probe", "signals"}, nil)
	id := r.id("sig")
	out := tempFile(t)
	cmd := r.cmdWithStdout(out, "run", "-b", b, id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, out.Name(), "ready")
	// A signal to the foreground runtime reaches the container.
	_ = cmd.Process.Signal(syscall.SIGUSR2)
	waitFile(t, out.Name(), "SIGUSR2")
	r.must("kill", id, "KILL")
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 137 {
		t.Fatalf("run exit %d (%v), want 137", code, err)
	}
	if _, _, code := r.exec(nil, "state", id); code == 0 {
		t.Fatal("run left the container behind")
	}
}

// Without berth-runtime-init beside it, berth-runtime is its own init.
func TestRuntimeActsAsItsOwnInit(t *testing.T) {
	t.Parallel()
	fixture.RequireRoot(t)
	alone := filepath.Join(t.TempDir(), "berth-runtime")
	data, err := os.ReadFile(runtimeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRTWith(t, alone)
	out, errs, code := r.run(shBundle(t, "echo alone; cat /proc/1/cmdline | head -c 4", nil))
	if code != 0 || !strings.HasPrefix(out, "alone\n") {
		t.Fatalf("self-init run: %d %q %s", code, out, errs)
	}
	b := shBundle(t, "sleep 100", nil)
	id := r.id("self")
	r.must("create", "-b", b, id)
	assertExeReadonly(t, r.state(id).Pid)
	r.must("delete", "-f", id)
}

func TestSpecFeaturesAndLogging(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	dir := t.TempDir()
	cmd := exec.Command(r.bin, "spec", "-b", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spec: %v %s", err, out)
	}
	var s specs.Spec
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &s); err != nil || s.Process == nil || !s.Process.Terminal || s.Root.Path != "rootfs" {
		t.Fatalf("spec output: %v %+v", err, s)
	}
	if out, err := exec.Command(r.bin, "spec", "-b", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Fatalf("spec over an existing config.json: %v %s", err, out)
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(r.must("features")), &f); err != nil {
		t.Fatal(err)
	}
	linux, _ := f["linux"].(map[string]any)
	if f["ociVersionMax"] == nil || linux == nil || linux["namespaces"] == nil || linux["seccomp"] == nil || linux["cgroup"] == nil {
		t.Fatalf("features: %v", f)
	}
	logFile := filepath.Join(t.TempDir(), "log.json")
	_, errs, code := r.exec(nil, "--log", logFile, "--log-format", "json", "state", "nonexistent")
	if code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("state of a missing container: %d %s", code, errs)
	}
	line, _ := os.ReadFile(logFile)
	var entry map[string]any
	if err := json.Unmarshal(line, &entry); err != nil || entry["level"] != "ERROR" || !strings.Contains(fmt.Sprint(entry["msg"]), "does not exist") {
		t.Fatalf("json log: %q (%v)", line, err)
	}
}
