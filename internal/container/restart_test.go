package container

import (
	"bytes"
	"encoding/binary"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// TestShouldRestartBackoff follows dockerd's restart manager: the delay
// starts at 100 ms, doubles up to a minute, and starts over after a run of
// 10 s; the policy decides after the delay was updated.
func TestShouldRestartBackoff(t *testing.T) {
	s := &Service{}
	c := newContainer(Record{Host: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}})
	var got []time.Duration
	for i := 0; i < 12; i++ {
		ok, d := s.shouldRestart(c, 1, time.Second)
		if !ok {
			t.Fatalf("always did not restart at %d", i)
		}
		got = append(got, d)
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delay %d = %s, want %s (all: %v)", i, got[i], want[i]*time.Millisecond, got)
		}
	}
	if _, d := s.shouldRestart(c, 1, 10*time.Second); d != 100*time.Millisecond {
		t.Fatalf("after a 10 s run the delay is %s, want 100ms", d)
	}
	c.rs.cancelled = true
	if ok, _ := s.shouldRestart(c, 1, time.Second); ok {
		t.Fatal("a cancelled restart manager restarted")
	}
}

func TestPolicyAllows(t *testing.T) {
	p := func(name container.RestartPolicyMode, max int) container.RestartPolicy {
		return container.RestartPolicy{Name: name, MaximumRetryCount: max}
	}
	for _, tc := range []struct {
		p        container.RestartPolicy
		code     int
		manual   bool
		restarts int
		want     bool
	}{
		{p(container.RestartPolicyAlways, 0), 0, false, 0, true},
		{p(container.RestartPolicyAlways, 0), 0, true, 5, true},
		{p(container.RestartPolicyUnlessStopped, 0), 0, false, 0, true},
		{p(container.RestartPolicyUnlessStopped, 0), 1, true, 0, false},
		{p(container.RestartPolicyOnFailure, 0), 0, false, 0, false},
		{p(container.RestartPolicyOnFailure, 0), 1, false, 100, true},
		{p(container.RestartPolicyOnFailure, 3), 1, false, 2, true},
		{p(container.RestartPolicyOnFailure, 3), 1, false, 3, false},
		{p(container.RestartPolicyOnFailure, 3), 1, true, 0, true},
		{p(container.RestartPolicyDisabled, 0), 1, false, 0, false},
	} {
		if got := policyAllows(tc.p, tc.code, tc.manual, tc.restarts); got != tc.want {
			t.Errorf("%+v code %d manual %v restarts %d: %v, want %v", tc.p, tc.code, tc.manual, tc.restarts, got, tc.want)
		}
	}
}

func TestKillCancelsRestart(t *testing.T) {
	none := &container.Config{}
	usr := &container.Config{StopSignal: "SIGUSR1"}
	for _, tc := range []struct {
		cfg  *container.Config
		sig  syscall.Signal
		want bool
	}{
		{none, syscall.SIGTERM, true}, {none, syscall.SIGHUP, true}, {none, syscall.SIGKILL, true},
		{usr, syscall.SIGUSR1, true}, {usr, syscall.SIGKILL, true}, {usr, syscall.SIGTERM, false}, {usr, syscall.SIGHUP, false},
	} {
		if got := killCancelsRestart(tc.cfg, tc.sig); got != tc.want {
			t.Errorf("stop signal %q, kill %v: %v, want %v", tc.cfg.StopSignal, tc.sig, got, tc.want)
		}
	}
}

func TestHealthStrings(t *testing.T) {
	if healthString(nil) != "" || healthFilter(nil) != "none" {
		t.Fatal("no healthcheck")
	}
	h := &container.Health{Status: container.Starting}
	if healthString(h) != "health: starting" || healthFilter(h) != "starting" {
		t.Fatal(healthString(h))
	}
	h.Status = container.Healthy
	if statusString(State{Status: container.StateRunning, StartedAt: time.Now(), Health: h}, time.Now()) != "Up Less than a second (healthy)" {
		t.Fatal(statusString(State{Status: container.StateRunning, Health: h}, time.Now()))
	}
	if healthEnabled(&container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}) ||
		!healthEnabled(&container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}}}) ||
		healthEnabled(&container.Config{}) {
		t.Fatal("healthEnabled")
	}
}

func TestProbeOutput(t *testing.T) {
	var stream bytes.Buffer
	frame := func(id byte, s string) {
		hdr := [8]byte{id}
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
		stream.Write(hdr[:])
		stream.WriteString(s)
	}
	frame(1, "out ")
	frame(2, "err ")
	frame(1, strings.Repeat("x", 5000))
	var b limitedBuffer
	demux(&stream, &b)
	got := b.String()
	if !strings.HasPrefix(got, "out err xxx") || len(got) != maxProbeOutput+3 || !strings.HasSuffix(got, "...") {
		t.Fatalf("probe output %d bytes: %q...", len(got), got[:20])
	}
}

func TestValidateHealthOnFailure(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "none": true, "kill": true, "restart": true, "stop": true, "pause": false} {
		err := ValidateHealthOnFailure(map[string]string{HealthOnFailureLabel: v})
		if (err == nil) != ok {
			t.Errorf("%q: %v", v, err)
		}
	}
}
