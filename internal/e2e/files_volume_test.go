package e2e

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// tarFile returns the content of the one regular file in a tar stream.
func tarFile(t *testing.T, data string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no regular file in the archive: %v", err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}

// TestCpStoppedContainerVolumes: cp on a stopped container sees and writes
// its volumes and bind mounts (mounted for the copy, inside its root, and
// unmounted afterwards), through both CLIs; a read-only volume refuses
// writes.
func TestCpStoppedContainerVolumes(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "onhost"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(src, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{bins.docker, bins.cli} {
		name := filepath.Base(bin)
		vol := "cpvol-" + name
		if _, e, code := d.cli(bin, nil, "run", "--name", "w-"+name, "-v", vol+":/data", "-v", host+":/mnt:ro",
			"busybox", "sh", "-c", "echo written > /data/f"); code != 0 {
			t.Fatalf("%s run: %s", name, e)
		}
		// Out of the stopped container: the volume and the bind.
		out, e, code := d.cli(bin, nil, "cp", "w-"+name+":/data/f", "-")
		if code != 0 || tarFile(t, out) != "written\n" {
			t.Fatalf("%s cp out of a stopped container's volume: %d %q %s", name, code, out, e)
		}
		out, e, code = d.cli(bin, nil, "cp", "w-"+name+":/mnt/onhost", "-")
		if code != 0 || tarFile(t, out) != "from the host\n" {
			t.Fatalf("%s cp out of a stopped container's bind mount: %d %s", name, code, e)
		}
		// Into it: the file lands in the volume, seen by another container.
		if _, e, code := d.cli(bin, nil, "cp", src, "w-"+name+":/data/in"); code != 0 {
			t.Fatalf("%s cp into a stopped container's volume: %s", name, e)
		}
		out, e, code = d.cli(bin, nil, "run", "--rm", "-v", vol+":/v", "busybox", "cat", "/v/in")
		if code != 0 || out != "copied in\n" {
			t.Fatalf("%s: the copied file is not in the volume: %q %s", name, out, e)
		}
		// The read-only bind refuses a write, and the host is untouched.
		if _, _, code := d.cli(bin, nil, "cp", src, "w-"+name+":/mnt/in"); code == 0 {
			t.Errorf("%s: cp into a read-only bind mount succeeded", name)
		}
		if _, err := os.Stat(filepath.Join(host, "in")); err == nil {
			t.Errorf("%s: cp wrote through a read-only bind onto the host", name)
		}
		// Nothing stays mounted for the copies.
		ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d.execRoot))
		if err != nil {
			t.Fatal(err)
		}
		own := d.mustCLI("inspect", "-f", "{{.Id}}", "w-"+name)
		for _, m := range ms {
			if strings.Contains(m.Mountpoint, "/"+own+"/") {
				t.Errorf("%s: still mounted after the copies: %s", name, m.Mountpoint)
			}
		}
		if _, e, code := d.cli(bin, nil, "rm", "-v", "w-"+name); code != 0 {
			t.Fatalf("rm: %s", e)
		}
		if _, e, code := d.cli(bin, nil, "volume", "rm", vol); code != 0 {
			t.Fatalf("volume rm: %s", e)
		}
	}
}
