package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openRequest sends GET /events to d and returns once d answered its
// headers: the request stays in progress until the returned function is
// called.
func openRequest(t *testing.T, d *daemon) (end func()) {
	t.Helper()
	hc := &http.Client{Transport: unixTransport(d.sock)}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", "http://berthd/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET /events: %v %v", resp, err)
	}
	return func() {
		cancel()
		resp.Body.Close()
		hc.CloseIdleConnections()
	}
}

// TestSpareHeldUntilQuiet: the next warm spare (the shim and the init it
// pre-forks) starts once no request is in progress, not when a create
// takes the current one: while a request stays open it is held (here
// MaxWait is an hour), and it comes when the request ends. A create that
// finds the spare held takes it all the same (it is hurried), and from
// then on, back to back, spares start at once again even while a request
// is in progress.
func TestSpareHeldUntilQuiet(t *testing.T) {
	d := startDaemonWith(t, func(d *daemon) { d.env = append(d.env, "BERTH_AHEAD_QUIET=3ms,1h,1h") })
	d.importBusybox("busybox:latest")
	run := d.mustCLI
	run("run", "--rm", "--network", "none", "busybox", "true")
	sp := waitSpare(t, d, "")

	// Quiet between commands: the spare taken is replaced.
	id := run("run", "-d", "--network", "none", "busybox", "sleep", "300")
	if id != sp.ID {
		t.Fatalf("container %s did not get the spare %s", id, sp.ID)
	}
	sp = waitSpare(t, d, id)

	// A request in progress: the next spare is held.
	end := openRequest(t, d)
	id = run("run", "-d", "--network", "none", "busybox", "sleep", "300")
	if id != sp.ID {
		t.Fatalf("container %s did not get the spare %s", id, sp.ID)
	}
	time.Sleep(500 * time.Millisecond)
	if r, ok := spareNow(d, ""); ok {
		t.Fatalf("a spare (%s) started while a request was in progress", r.ID)
	}
	end()
	sp = waitSpare(t, d, id)

	// Back to back while a request is in progress: the first create takes
	// the spare, the second finds the next one held and hurries it, and
	// gets it (a pre-forked init); then spares start at once.
	end = openRequest(t, d)
	defer end()
	id = run("run", "-d", "--network", "none", "busybox", "sleep", "300")
	if id != sp.ID {
		t.Fatalf("container %s did not get the spare %s", id, sp.ID)
	}
	if _, ok := spareNow(d, ""); ok {
		t.Fatal("a spare started at once while a request was in progress")
	}
	id2 := run("run", "-d", "--network", "none", "busybox", "sleep", "300")
	if want := "the next spare hurried\" svc=container id=" + id2[:12]; !strings.Contains(d.logBuf.String(), want) {
		t.Fatalf("the second create did not get the hurried spare (no %q in berthd's log)", want)
	}
	sp = waitSpare(t, d, "")
	if sp.ID == id2 {
		t.Fatal("the spare found is the container's")
	}
}
