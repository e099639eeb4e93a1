package e2e

import (
	"strings"
	"testing"
)

// TestCommitDiff: diff lists A/C/D in Docker's form and order (the
// runtime's mount stubs left out); commit with and without pausing a
// running container, --change, -a and -m, through both CLIs; an image
// committed from an unchanged container has an empty layer; containers of
// the committed image see the changes.
func TestCommitDiff(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk, bt := bins.docker, bins.cli
	if _, e, code := d.cli(dk, nil, "run", "--name", "c1", "busybox", "sh", "-c",
		"mkdir /tmp/new && echo hi > /tmp/new/f && rm /etc/group && echo x >> /etc/passwd"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	want := "C /etc\nD /etc/group\nC /etc/passwd\nC /tmp\nA /tmp/new\nA /tmp/new/f\n"
	for _, bin := range []string{dk, bt} {
		o, e, code := d.cli(bin, nil, "diff", "c1")
		if code != 0 || o != want {
			t.Fatalf("%s diff: %d %q %q, want %q", bin, code, o, e, want)
		}
	}
	o, e, code := d.cli(dk, nil, "commit", "-a", "Ann <a@b>", "-m", "first", "-c", "ENV FOO=bar", "-c", `CMD ["cat", "/tmp/new/f"]`, "c1", "snap:one")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(o), "sha256:") {
		t.Fatalf("docker commit: %d %q %q", code, o, e)
	}
	o, _, code = d.cli(dk, nil, "run", "--rm", "snap:one")
	if code != 0 || o != "hi\n" {
		t.Fatalf("run committed image: %d %q", code, o)
	}
	o, _, _ = d.cli(dk, nil, "run", "--rm", "snap:one", "sh", "-c", "echo $FOO; ls /etc/group 2>&1; ls /etc/hosts.stub 2>&1 | wc -l")
	if !strings.HasPrefix(o, "bar\nls: /etc/group: No such file or directory\n") {
		t.Fatalf("committed filesystem/env: %q", o)
	}
	o, _, _ = d.cli(dk, nil, "inspect", "--format", "{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}|{{.Config.Cmd}}", "snap:one")
	if strings.TrimSpace(o) != "Ann <a@b>|first|2|[cat /tmp/new/f]" {
		t.Fatalf("inspect committed: %q", o)
	}
	o, _, _ = d.cli(dk, nil, "history", "--format", "{{.CreatedBy}}|{{.Comment}}", "snap:one")
	if !strings.HasPrefix(o, "sh -c mkdir /tmp/new") || !strings.Contains(o, "|first\n") {
		t.Fatalf("history: %q", o)
	}

	// A running container, paused during the commit (berth CLI, -p default).
	if _, e, code := d.cli(bt, nil, "run", "-d", "--name", "c2", "busybox", "sh", "-c", "echo live > /live; exec sleep 300"); code != 0 {
		t.Fatalf("run -d: %s", e)
	}
	waitFor(t, "c2 wrote /live", 10e9, func() bool {
		o, _, _ := d.cli(bt, nil, "diff", "c2")
		return strings.Contains(o, "A /live")
	})
	o, e, code = d.cli(bt, nil, "commit", "-c", "LABEL a=b", "-c", "HEALTHCHECK --interval=7s --retries=2 CMD test -f /live", "c2", "snap:two")
	if code != 0 || !strings.HasPrefix(o, "sha256:") {
		t.Fatalf("berth commit: %d %q %q", code, o, e)
	}
	o, _, _ = d.cli(bt, nil, "inspect", "--format", "{{.State.Status}}", "c2")
	if strings.TrimSpace(o) != "running" {
		t.Fatalf("c2 after commit: %q (should be unpaused)", o)
	}
	o, _, _ = d.cli(bt, nil, "run", "--rm", "--entrypoint", "cat", "snap:two", "/live")
	if o != "live\n" {
		t.Fatalf("run snap:two: %q", o)
	}
	o, _, _ = d.cli(dk, nil, "inspect", "--format", "{{index .Config.Labels \"a\"}} {{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}}", "snap:two")
	if strings.TrimSpace(o) != "b [CMD-SHELL test -f /live] 7s 2" {
		t.Fatalf("label from --change: %q", o)
	}
	if _, e, code := d.cli(dk, nil, "commit", "--pause=false", "c2", "snap:three"); code != 0 {
		t.Fatalf("commit --pause=false: %s", e)
	}

	// Nothing changed: an empty layer.
	if _, e, code := d.cli(dk, nil, "create", "--name", "c3", "busybox", "true"); code != 0 {
		t.Fatalf("create: %s", e)
	}
	if o, _, _ := d.cli(bt, nil, "diff", "c3"); o != "" {
		t.Fatalf("diff of an unchanged container: %q", o)
	}
	if _, e, code := d.cli(bt, nil, "commit", "c3", "snap:empty"); code != 0 {
		t.Fatalf("commit empty: %s", e)
	}
	o, _, _ = d.cli(dk, nil, "inspect", "--format", "{{len .RootFS.Layers}}", "snap:empty")
	if strings.TrimSpace(o) != "1" {
		t.Fatalf("empty commit layers: %q", o)
	}
	o, _, _ = d.cli(dk, nil, "history", "--format", "{{.Size}}", "snap:empty")
	if !strings.HasPrefix(o, "0B\n") {
		t.Fatalf("empty commit history: %q", o)
	}
	_, e, code = d.cli(dk, nil, "commit", "nosuch")
	if code == 0 || !strings.Contains(e, "No such container") {
		t.Fatalf("commit nosuch: %d %q", code, e)
	}
	_, e, code = d.cli(bt, nil, "diff", "nosuch")
	if code == 0 || !strings.Contains(e, "No such container") {
		t.Fatalf("diff nosuch: %d %q", code, e)
	}
}
