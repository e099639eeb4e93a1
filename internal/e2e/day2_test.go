package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func tarList(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		out[strings.TrimPrefix(h.Name, "./")] = true
	}
	return out
}

// TestExportPauseTop: export of running and stopped containers, pause and
// unpause with their refusals, and top with ps options, through both CLIs.
func TestExportPauseTop(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	if _, e, code := d.cli(dk, nil, "run", "-d", "--name", "ex", "busybox", "sleep", "300"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "exec", "ex", "sh", "-c", "echo running > /exported"); code != 0 {
		t.Fatalf("exec: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "run", "--name", "exs", "busybox", "sh", "-c", "echo stopped > /exported"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	out := t.TempDir()
	for _, bin := range []string{dk, bins.cli} {
		name := filepath.Base(bin)
		for _, ctr := range []string{"ex", "exs"} {
			o, e, code := d.cli(bin, nil, "export", ctr)
			if code != 0 {
				t.Fatalf("%s export %s: %s", name, ctr, e)
			}
			if l := tarList(t, []byte(o)); !l["exported"] || !l["bin/busybox"] || !l["etc/passwd"] {
				t.Errorf("%s export %s to stdout: %d entries", name, ctr, len(l))
			}
			f := filepath.Join(out, name+"-"+ctr+".tar")
			if _, e, code := d.cli(bin, nil, "export", "-o", f, ctr); code != 0 {
				t.Fatalf("%s export -o: %s", name, e)
			}
			b, _ := os.ReadFile(f)
			if l := tarList(t, b); !l["exported"] {
				t.Errorf("%s export -o %s: %d entries", name, ctr, len(l))
			}
		}
		if _, e, code := d.cli(bin, nil, "export", "nosuch"); code == 0 || !strings.Contains(e, "No such container: nosuch") {
			t.Errorf("%s export of a missing container: %d %q", name, code, e)
		}

		// pause / unpause.
		if o, e, code := d.cli(bin, nil, "pause", "ex"); code != 0 || o != "ex\n" {
			t.Fatalf("%s pause: %d %q %q", name, code, o, e)
		}
		if o, _, _ := d.cli(dk, nil, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "ex"); o != "paused true\n" {
			t.Errorf("%s: after pause: %q", name, o)
		}
		if _, e, code := d.cli(bin, nil, "pause", "ex"); code != 1 || !strings.Contains(e, "is already paused") {
			t.Errorf("%s pause twice: %d %q", name, code, e)
		}
		// A paused container's files can still be copied.
		if _, e, code := d.cli(bin, nil, "cp", "ex:/exported", filepath.Join(out, name+"-paused")); code != 0 {
			t.Errorf("%s cp from a paused container: %s", name, e)
		}
		if b, _ := os.ReadFile(filepath.Join(out, name+"-paused")); string(b) != "running\n" {
			t.Errorf("%s cp from a paused container: %q", name, b)
		}
		if o, e, code := d.cli(bin, nil, "unpause", "ex"); code != 0 || o != "ex\n" {
			t.Fatalf("%s unpause: %d %q %q", name, code, o, e)
		}
		if _, e, code := d.cli(bin, nil, "unpause", "ex"); code != 1 || !strings.Contains(e, "is not paused") {
			t.Errorf("%s unpause twice: %d %q", name, code, e)
		}
		if _, e, code := d.cli(bin, nil, "pause", "exs"); code != 1 || !strings.Contains(e, "is not running") {
			t.Errorf("%s pause of a stopped container: %d %q", name, code, e)
		}

		// top with ps options.
		o, e, code := d.cli(bin, nil, "top", "ex", "-o", "pid,comm")
		lines := strings.Split(strings.TrimSpace(o), "\n")
		if code != 0 || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "PID COMMAND" || !strings.HasSuffix(lines[1], "sleep") {
			t.Errorf("%s top -o pid,comm: %d %q %q", name, code, o, e)
		}
		o, _, code = d.cli(bin, nil, "top", "ex", "aux")
		lines = strings.Split(strings.TrimSpace(o), "\n")
		if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "USER") || !strings.HasSuffix(lines[1], "sleep 300") {
			t.Errorf("%s top aux: %d %q", name, code, o)
		}
		o, _, code = d.cli(bin, nil, "top", "ex")
		if code != 0 || !strings.Contains(o, "UID") || !strings.Contains(o, "sleep 300") {
			t.Errorf("%s top: %d %q", name, code, o)
		}
		if _, e, code := d.cli(bin, nil, "top", "exs"); code != 1 || !strings.Contains(e, "is not running") {
			t.Errorf("%s top of a stopped container: %d %q", name, code, e)
		}
		if _, e, code := d.cli(bin, nil, "top", "ex", "-o", "user=PID"); code != 1 || !strings.Contains(e, `specifying "user=PID" is not allowed`) {
			t.Errorf("%s top -o user=PID: %d %q", name, code, e)
		}
	}
}

// TestPruneAndDf: container prune with filters, system df -v detail rows
// and system prune, through both CLIs.
func TestPruneAndDf(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	id := func(name string) string {
		o, _, _ := d.cli(dk, nil, "inspect", "-f", "{{.Id}}", name)
		return strings.TrimSpace(o)
	}
	if _, e, code := d.cli(dk, nil, "run", "-d", "--name", "live", "busybox", "sleep", "300"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	for _, c := range [][]string{{"--name", "keep", "--label", "keep=1"}, {"--name", "gone1"}, {"--name", "gone2", "--label", "tier=x"}} {
		args := append(append([]string{"run"}, c...), "busybox", "sh", "-c", "dd if=/dev/zero of=/f bs=1k count=64 2>/dev/null")
		if _, e, code := d.cli(dk, nil, args...); code != 0 {
			t.Fatalf("run: %s", e)
		}
	}

	// df -v: per image and per container rows.
	for _, bin := range []string{dk, bins.cli} {
		o, e, code := d.cli(bin, nil, "system", "df", "-v")
		if code != 0 {
			t.Fatalf("%s df -v: %s", bin, e)
		}
		img := regexp.MustCompile(`(?m)^busybox\s+latest\s+[0-9a-f]{12}\s+.+\s+[0-9.]+[kM]B\s+0B\s+[0-9.]+[kM]B\s+4$`)
		if !img.MatchString(o) {
			t.Errorf("%s df -v: no image row with 4 containers:\n%s", bin, o)
		}
		for _, n := range []string{"live", "keep", "gone1", "gone2"} {
			row := regexp.MustCompile(`(?m)^` + id(n)[:12] + `\s+busybox\s+.*\s` + n + `$`)
			if !row.MatchString(o) {
				t.Errorf("%s df -v: no row for %s:\n%s", bin, n, o)
			}
		}
		o, _, _ = d.cli(bin, nil, "system", "df")
		if !regexp.MustCompile(`(?m)^Containers\s+4\s+1\s+\S+\s+\S+ \(\d+%\)$`).MatchString(o) {
			t.Errorf("%s df: %s", bin, o)
		}
	}

	// container prune with filters, each CLI deleting one container.
	gone1, gone2 := id("gone1"), id("gone2")
	since := fmt.Sprint(time.Now().Unix() - 1)
	o, e, code := d.cli(dk, nil, "container", "prune", "-f", "--filter", "label=tier=x")
	if code != 0 || !regexp.MustCompile(`^Deleted Containers:\n`+gone2+`\n\nTotal reclaimed space: \d+(\.\d+)?kB\n$`).MatchString(o) {
		t.Errorf("docker container prune label=: %d %q %q", code, o, e)
	}
	o, e, code = d.cli(bins.cli, nil, "container", "prune", "-f", "--filter", "until=2000-01-01T00:00:00Z")
	if code != 0 || o != "Total reclaimed space: 0B\n" {
		t.Errorf("berth container prune until=2000: %d %q %q", code, o, e)
	}
	o, e, code = d.cli(bins.cli, nil, "container", "prune", "-f", "--filter", "label!=keep")
	if code != 0 || !regexp.MustCompile(`^Deleted Containers:\n`+gone1+`\n\nTotal reclaimed space: \d+(\.\d+)?kB\n$`).MatchString(o) {
		t.Errorf("berth container prune label!=keep: %d %q %q", code, o, e)
	}
	if _, e, code := d.cli(dk, nil, "container", "prune", "-f", "--filter", "nosuch=1"); code == 0 || !strings.Contains(e, "invalid filter 'nosuch'") {
		t.Errorf("unknown prune filter: %d %q", code, e)
	}
	o, _, _ = d.cli(dk, nil, "ps", "-a", "--format", "{{.Names}}")
	if got := strings.Fields(o); len(got) != 2 {
		t.Errorf("after prunes: %v", got)
	}
	// Each prune is an event with what it reclaimed, as dockerd logs it.
	o, e, _ = d.cli(dk, nil, "events", "--since", since, "--until", fmt.Sprint(time.Now().Unix()+1),
		"--filter", "type=container", "--filter", "event=prune", "--format", "{{.Actor.Attributes.reclaimed}}")
	if r := strings.Fields(o); len(r) != 3 || r[1] != "0" || r[0] == "0" || r[2] == "0" {
		t.Errorf("prune events: %q %q", o, e)
	}

}

// TestSystemPrune: system prune -a (and --volumes) through both CLIs; it
// calls the network, volume and build cache pruners too.
func TestSystemPrune(t *testing.T) {
	d := startDaemon(t)
	for _, ep := range []string{"/networks/prune", "/volumes/prune", "/build/prune"} {
		if code, body := d.rawAPI("POST", ep+"?filters=%7B%22label%22%3A%5B%22berth-test-nothing%3D1%22%5D%7D", ""); code != 200 {
			t.Fatalf("POST %s: %d %s", ep, code, body)
		}
	}
	d.importBusybox("busybox:latest")
	dk := bins.docker
	if _, e, code := d.cli(dk, nil, "run", "-d", "--name", "live", "busybox", "sleep", "300"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "run", "--name", "keep", "busybox", "true"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	o, _, _ := d.cli(dk, nil, "inspect", "-f", "{{.Id}}", "keep")
	keep := strings.TrimSpace(o)
	var tiny bytes.Buffer
	tw := tar.NewWriter(&tiny)
	_ = tw.WriteHeader(&tar.Header{Name: "hello", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	_, _ = tw.Write([]byte("hi"))
	_ = tw.Close()
	if _, e, code := d.cli(dk, &tiny, "import", "-", "tiny:1"); code != 0 {
		t.Fatalf("import: %s", e)
	}
	o, e, code := d.cli(bins.cli, nil, "system", "prune", "-a", "-f")
	if code != 0 || !strings.Contains(o, "Deleted Containers:\n"+keep+"\n") || !strings.Contains(o, "untagged: tiny:1\n") ||
		!regexp.MustCompile(`\nTotal reclaimed space: .+\n$`).MatchString(o) {
		t.Errorf("berth system prune -a: %d %q %q", code, o, e)
	}
	o, e, code = d.cli(dk, nil, "system", "prune", "-a", "-f", "--volumes")
	if code != 0 || strings.Contains(o, "Deleted Containers") || !strings.HasSuffix(o, "Total reclaimed space: 0B\n") {
		t.Errorf("docker system prune -a --volumes: %d %q %q", code, o, e)
	}
	if o, _, _ := d.cli(dk, nil, "images", "--format", "{{.Repository}}"); strings.TrimSpace(o) != "busybox" {
		t.Errorf("images after system prune -a: %q (busybox is in use by a running container)", o)
	}
}
