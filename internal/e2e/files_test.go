package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// tarNames lists a tar's entries as "name" (dirs with "/"), "name -> target"
// for symlinks, and "name uid:gid" when withOwner.
func tarEntries(t *testing.T, data []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		h.Xattrs = nil
		h.PAXRecords = map[string]string{"content": string(b)}
		out[h.Name] = h
	}
}

func sortedKeys(m map[string]*tar.Header) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// getFile reads one file out of a container through the archive API.
func (d *daemon) getFile(ctr, p string) (string, *tar.Header) {
	d.t.Helper()
	res, err := d.client.CopyFromContainer(context.Background(), ctr, client.CopyFromContainerOptions{SourcePath: p})
	if err != nil {
		d.t.Fatalf("GET %s:%s: %v", ctr, p, err)
	}
	defer res.Content.Close()
	data, _ := io.ReadAll(res.Content)
	ents := tarEntries(d.t, data)
	h := ents[filepath.Base(p)]
	if h == nil {
		d.t.Fatalf("GET %s:%s: no entry %q in %v", ctr, p, filepath.Base(p), sortedKeys(ents))
	}
	return h.PAXRecords["content"], h
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCp copies files and directories in both directions through both
// CLIs, into and out of a running and a stopped container, with Docker's
// path rules.
func TestCp(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	if _, e, code := d.cli(dk, nil, "run", "-d", "--name", "cpr", "busybox", "sleep", "300"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "create", "--name", "cps", "-u", "berth", "busybox", "true"); code != 0 {
		t.Fatalf("create: %s", e)
	}
	local := t.TempDir()
	writeFile(t, filepath.Join(local, "src", "f.txt"), "hello")
	writeFile(t, filepath.Join(local, "src", "d", "a"), "A")
	writeFile(t, filepath.Join(local, "src", "d", "sub", "b"), "B")
	if err := os.Symlink("a", filepath.Join(local, "src", "d", "ln")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(local, "src", "f.txt"), 1234, 4321); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(local, "src")

	for _, bin := range []string{dk, bins.cli} {
		name := filepath.Base(bin)
		t.Run(name, func(t *testing.T) {
			cp := func(args ...string) {
				t.Helper()
				if o, e, code := d.cli(bin, nil, append([]string{"cp"}, args...)...); code != 0 {
					t.Fatalf("%s cp %v: exit %d: %s %s", name, args, code, o, e)
				}
			}
			base := "/" + name
			for _, ctr := range []string{"cpr", "cps"} {
				// A file into an existing directory, and under a new name.
				if _, e, code := d.cli(bin, nil, "cp", src+"/f.txt", ctr+":"+base+"/"); code == 0 || !strings.Contains(e, "no such directory") && !strings.Contains(e, "Could not find the file") {
					t.Fatalf("%s: cp into a missing directory: %d %s", ctr, code, e)
				}
				cp(src+"/d/.", ctr+":/tmp") // content of d into /tmp
				cp(src+"/d", ctr+":"+base)  // d created as base
				cp(src+"/f.txt", ctr+":"+base+"/")
				cp(src+"/f.txt", ctr+":"+base+"/renamed")
				cp(src+"/d", ctr+":"+base+"/") // into the existing directory
				for p, want := range map[string]string{
					"/tmp/a": "A", "/tmp/sub/b": "B", base + "/a": "A", base + "/sub/b": "B",
					base + "/f.txt": "hello", base + "/renamed": "hello", base + "/d/a": "A", base + "/d/sub/b": "B",
				} {
					if got, _ := d.getFile(ctr, p); got != want {
						t.Errorf("%s:%s = %q, want %q", ctr, p, got, want)
					}
				}
				_, h := d.getFile(ctr, base+"/d/ln")
				if h.Typeflag != tar.TypeSymlink || h.Linkname != "a" {
					t.Errorf("%s: symlink copied as %c %q", ctr, h.Typeflag, h.Linkname)
				}
				// Without -a the tar's owner is kept; with -a the
				// container user's (cps runs as berth, 1000:1000).
				if _, h := d.getFile(ctr, base+"/f.txt"); h.Uid != 1234 || h.Gid != 4321 {
					t.Errorf("%s: owner without -a: %d:%d", ctr, h.Uid, h.Gid)
				}
				cp("-a", src+"/f.txt", ctr+":"+base+"/owned")
				wantUID := 1234
				if ctr == "cps" {
					wantUID = 1000
				}
				if _, h := d.getFile(ctr, base+"/owned"); h.Uid != wantUID {
					t.Errorf("%s: owner with -a: %d, want %d", ctr, h.Uid, wantUID)
				}

				// Out of the container.
				out := filepath.Join(local, name+"-"+ctr)
				if err := os.Mkdir(out, 0o755); err != nil {
					t.Fatal(err)
				}
				cp(ctr+":"+base+"/f.txt", out)             // into a directory
				cp(ctr+":"+base+"/f.txt", out+"/copy.txt") // new name
				cp(ctr+":"+base+"/d", out+"/newd")         // directory under a new name
				cp(ctr+":"+base+"/d/.", out+"/content")    // content only
				cp(ctr+":"+base+"/d", out)                 // into the directory
				cp(ctr+":"+base+"/d/ln", out+"/ln")        // the symlink itself
				cp("-L", ctr+":"+base+"/d/ln", out+"/followed")
				for p, want := range map[string]string{
					"f.txt": "hello", "copy.txt": "hello", "newd/a": "A", "newd/sub/b": "B",
					"content/a": "A", "content/sub/b": "B", "d/a": "A", "followed": "A",
				} {
					b, err := os.ReadFile(filepath.Join(out, p))
					if err != nil || string(b) != want {
						t.Errorf("%s: local %s = %q, %v; want %q", ctr, p, b, err, want)
					}
				}
				if l, err := os.Readlink(out + "/ln"); err != nil || l != "a" {
					t.Errorf("%s: local symlink: %q %v", ctr, l, err)
				}

				// Tar on stdout and stdin.
				o, e, code := d.cli(bin, nil, "cp", ctr+":"+base+"/d", "-")
				if code != 0 {
					t.Fatalf("cp to stdout: %s", e)
				}
				ents := tarEntries(t, []byte(o))
				for _, n := range []string{"d/", "d/a", "d/sub/", "d/sub/b", "d/ln"} {
					if ents[n] == nil {
						t.Errorf("%s: stdout tar lacks %q: %v", ctr, n, sortedKeys(ents))
					}
				}
				var in bytes.Buffer
				tw := tar.NewWriter(&in)
				_ = tw.WriteHeader(&tar.Header{Name: "x/", Typeflag: tar.TypeDir, Mode: 0o755})
				_ = tw.WriteHeader(&tar.Header{Name: "x/y", Typeflag: tar.TypeReg, Mode: 0o600, Size: 2})
				_, _ = tw.Write([]byte("yy"))
				_ = tw.Close()
				if _, e, code := d.cli(bin, &in, "cp", "-", ctr+":"+base); code != 0 {
					t.Fatalf("cp from stdin: %s", e)
				}
				if got, h := d.getFile(ctr, base+"/x/y"); got != "yy" || h.Mode&0o777 != 0o600 {
					t.Errorf("%s: from stdin: %q %o", ctr, got, h.Mode)
				}
				if _, e, code := d.cli(bin, strings.NewReader(""), "cp", "-", ctr+":"+base+"/f.txt"); code == 0 || !strings.Contains(e, "must be a directory") {
					t.Errorf("%s: stdin tar to a file: %d %q", ctr, code, e)
				}

				// A symlink as the destination is followed: d/ln -> a.
				cp(src+"/f.txt", ctr+":"+base+"/d/ln")
				if got, _ := d.getFile(ctr, base+"/d/a"); got != "hello" {
					t.Errorf("%s: copy onto a symlink: target holds %q", ctr, got)
				}
				if _, h := d.getFile(ctr, base+"/d/ln"); h.Typeflag != tar.TypeSymlink {
					t.Errorf("%s: the destination symlink was replaced", ctr)
				}

				// Errors.
				_, e, code = d.cli(bin, nil, "cp", ctr+":/nonexistent", out)
				if code == 0 || !strings.Contains(e, "Could not find the file /nonexistent in container "+ctr) {
					t.Errorf("%s: missing source: %d %q", ctr, code, e)
				}
				_, e, code = d.cli(bin, nil, "cp", src+"/d", ctr+":"+base+"/f.txt")
				if code == 0 || !strings.Contains(e, "cannot copy directory") {
					t.Errorf("%s: directory onto a file: %d %q", ctr, code, e)
				}
			}
		})
	}
	// A whole root: dockerd names the entries "/bin"..., and both CLIs
	// rebase them onto the destination.
	for _, bin := range []string{dk, bins.cli} {
		for _, ctr := range []string{"cpr", "cps"} {
			dst := filepath.Join(local, "root-"+filepath.Base(bin)+"-"+ctr)
			if _, e, code := d.cli(bin, nil, "cp", ctr+":/", dst); code != 0 {
				t.Fatalf("%s cp %s:/: %s", bin, ctr, e)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "etc", "passwd")); err != nil || !strings.Contains(string(b), "berth:") {
				t.Errorf("%s cp %s:/ %s: %v", bin, ctr, dst, err)
			}
			if fi, err := os.Stat(filepath.Join(dst, "proc")); err != nil || !fi.IsDir() {
				t.Errorf("%s cp %s:/: no proc directory: %v", bin, ctr, err)
			} else if ents, _ := os.ReadDir(filepath.Join(dst, "proc")); len(ents) != 0 {
				t.Errorf("%s cp %s:/: /proc content was copied: %d entries", bin, ctr, len(ents))
			}
		}
	}
	if m := d.containerMounts(t); len(m) != 1 {
		t.Errorf("mounts after copies (only the running container's rootfs expected): %v", m)
	}
	// With a terminal both CLIs report the copy on stderr, in the same
	// words and sizes (script(1) provides the terminal).
	if _, err := exec.LookPath("script"); err == nil {
		var msgs []string
		for _, bin := range []string{dk, bins.cli} {
			for _, args := range [][]string{{src + "/f.txt", "cpr:/tmp/"}, {"cpr:/" + filepath.Base(bin) + "/d", filepath.Join(local, "tty-"+filepath.Base(bin))}} {
				o, e, code := d.cli("script", nil, "-qec", bin+" cp "+strings.Join(args, " "), "/dev/null")
				if code != 0 {
					t.Fatalf("script %s cp: %d %s %s", bin, code, o, e)
				}
				msgs = append(msgs, strings.ReplaceAll(strings.TrimSpace(o), filepath.Base(bin), "BIN"))
			}
		}
		if len(msgs) != 4 || msgs[0] != "Successfully copied 2.05kB to cpr:/tmp/" || msgs[0] != msgs[2] || msgs[1] != msgs[3] || !strings.HasPrefix(msgs[1], "Successfully copied ") {
			t.Errorf("progress messages differ from docker's: %q", msgs)
		}
	}
	_, e, code := d.cli(dk, nil, "cp", "cpr:/etc/hostname", "cps:/tmp")
	if code == 0 || !strings.Contains(e, "copying between containers is not supported") {
		t.Errorf("container to container: %d %q", code, e)
	}
	_, e, code = d.cli(bins.cli, nil, "cp", "cpr:/etc/hostname", "cps:/tmp")
	if code == 0 || !strings.Contains(e, "copying between containers is not supported") {
		t.Errorf("berth: container to container: %d %q", code, e)
	}
}

// TestCpDuringLifecycle: copies keep working while the container is
// started and killed over and over (running: through /proc/<pid>/root;
// stopped: its snapshot mounted for the copy), and nothing stays mounted.
func TestCpDuringLifecycle(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if _, e, code := d.cli(bins.docker, nil, "create", "--name", "cyc", "busybox", "sleep", "300"); code != 0 {
		t.Fatalf("create: %s", e)
	}
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		for range 8 {
			if _, err := d.client.ContainerStart(ctx, "cyc", client.ContainerStartOptions{}); err != nil {
				done <- err
				return
			}
			if _, err := d.client.ContainerKill(ctx, "cyc", client.ContainerKillOptions{Signal: "KILL"}); err != nil {
				done <- err
				return
			}
			w := d.client.ContainerWait(ctx, "cyc", client.ContainerWaitOptions{Condition: "not-running"})
			select {
			case <-w.Result:
			case err := <-w.Error:
				done <- err
				return
			}
		}
		done <- nil
	}()
	copies := 0
	for running := true; running; copies++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("lifecycle: %v", err)
			}
			running = false
		default:
		}
		res, err := d.client.CopyFromContainer(ctx, "cyc", client.CopyFromContainerOptions{SourcePath: "/etc/passwd"})
		if err != nil {
			t.Fatalf("copy %d: %v", copies, err)
		}
		data, _ := io.ReadAll(res.Content)
		res.Content.Close()
		if ents := tarEntries(t, data); ents["passwd"] == nil || !strings.Contains(ents["passwd"].PAXRecords["content"], "root:") {
			t.Fatalf("copy %d: %v", copies, sortedKeys(ents))
		}
		var in bytes.Buffer
		tw := tar.NewWriter(&in)
		_ = tw.WriteHeader(&tar.Header{Name: "c", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		_, _ = tw.Write([]byte("c"))
		_ = tw.Close()
		if _, err := d.client.CopyToContainer(ctx, "cyc", client.CopyToContainerOptions{DestinationPath: "/tmp", Content: &in}); err != nil {
			t.Fatalf("copy into %d: %v", copies, err)
		}
	}
	t.Logf("%d copies each way during 8 start/kill cycles", copies)
	waitFor(t, "the last run's teardown", 10*time.Second, func() bool {
		return len(d.containerMounts(t)) == 0
	})
}
