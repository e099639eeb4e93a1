package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// archiveRaw sends one archive request with a raw body (which may be a
// broken tar) and returns the status, the body and the stat header.
func (d *daemon) archiveRaw(method, ctr, p string, body io.Reader) (int, []byte, string) {
	d.t.Helper()
	hc := &http.Client{Transport: unixTransport(d.sock)}
	// A hang (a FIFO opened for reading...) fails the test, not the run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "http://berth/containers/"+ctr+"/archive?path="+url.QueryEscape(p), body)
	resp, err := hc.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("X-Docker-Container-Path-Stat")
}

type tarEnt struct {
	name, body, link string
	typ              byte
	pax              map[string]string
}

func mkTar(t *testing.T, ents ...tarEnt) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link, PAXRecords: e.pax}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.Typeflag == tar.TypeChar {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	_ = tw.Close()
	return b.Bytes()
}

// hugePAX is a tar whose first entry has a PAX header of len(v) bytes
// (archive/tar refuses to write one that large).
func hugePAX(v string) []byte {
	rec := "comment=" + v + "\n"
	// "<len> <key>=<value>\n" where len counts itself.
	body := ""
	for l := len(rec) + 2; ; l++ {
		body = fmt.Sprintf("%d %s", l, rec)
		if len(body) == l {
			break
		}
	}
	var b bytes.Buffer
	b.Write(rawHeader("PaxHeaders/p", 'x', len(body)))
	b.WriteString(body)
	b.Write(make([]byte, (512-len(body)%512)%512))
	b.Write(rawHeader("p", '0', 0))
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

// rawHeader is one ustar header block.
func rawHeader(name string, typ byte, size int) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], "00000000000\x00")
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// hostFiles lists dir (a host directory outside berth's roots).
func hostFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			out = append(out, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	return out
}

// TestArchiveStat checks HEAD's stat header: name, mode, size and the
// in-container target of a symlink.
func TestArchiveStat(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if _, e, code := d.cli(bins.docker, nil, "run", "--name", "st", "busybox", "sh", "-c",
		"mkdir -p /data/sub && echo -n 12345 > /data/sub/f && ln -s sub/f /data/rel && ln -s /data/sub /data/abs && ln -s ../../../../data/sub/f /data/up"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	ctx := context.Background()
	since := fmt.Sprint(time.Now().Unix() - 1)
	for _, tc := range []struct {
		path, name, link string
		dir, symlink     bool
		size             int64
	}{
		{path: "/data/sub/f", name: "f", size: 5},
		{path: "/data/sub/", name: "sub", dir: true},
		{path: "/data/sub/.", name: ".", dir: true},
		{path: "/", name: "/", dir: true},
		{path: "/data/rel", name: "rel", symlink: true, link: "/data/sub/f", size: 5},
		{path: "/data/abs", name: "abs", symlink: true, link: "/data/sub", size: 9},
		{path: "/data/up", name: "up", symlink: true, link: "/data/sub/f", size: 22},
		{path: "/data/abs/", name: "abs", dir: true},
		{path: "data/abs/f", name: "f", size: 5},
	} {
		res, err := d.client.ContainerStatPath(ctx, "st", client.ContainerStatPathOptions{Path: tc.path})
		if err != nil {
			t.Errorf("stat %s: %v", tc.path, err)
			continue
		}
		st := res.Stat
		if st.Name != tc.name || st.Mode.IsDir() != tc.dir || (st.Mode&os.ModeSymlink != 0) != tc.symlink || st.LinkTarget != tc.link || (!tc.dir && st.Size != tc.size) {
			t.Errorf("stat %s = %+v, want %+v", tc.path, st, tc)
		}
	}
	// The raw header is base64 JSON with Docker's field names.
	code, _, hdr := d.archiveRaw("HEAD", "st", "/data/rel", nil)
	raw, _ := base64.StdEncoding.DecodeString(hdr)
	var m map[string]any
	if code != 200 || json.Unmarshal(raw, &m) != nil || m["name"] != "rel" || m["linkTarget"] != "/data/sub/f" || m["mtime"] == nil || m["mode"] == nil || m["size"] == nil {
		t.Errorf("HEAD header: %d %s", code, raw)
	}
	if code, _, _ := d.archiveRaw("HEAD", "st", "/nope", nil); code != 404 {
		t.Errorf("HEAD of a missing path: %d", code)
	}
	if code, _, _ := d.archiveRaw("HEAD", "nosuch", "/", nil); code != 404 {
		t.Errorf("HEAD of a missing container: %d", code)
	}
	if code, body, _ := d.archiveRaw("PUT", "st", "/data/sub/f", bytes.NewReader(mkTar(t, tarEnt{name: "x", body: "x"}))); code != 400 || !strings.Contains(string(body), "extraction point is not a directory") {
		t.Errorf("PUT onto a file: %d %s", code, body)
	}
	if code, body, _ := d.archiveRaw("PUT", "st", "/nope", bytes.NewReader(mkTar(t, tarEnt{name: "x", body: "x"}))); code != 404 || !strings.Contains(string(body), "Could not find the file /nope in container st") {
		t.Errorf("PUT into a missing directory: %d %s", code, body)
	}
	// noOverwriteDirNonDir, as the docker CLI always sends it.
	_, err := d.client.CopyToContainer(ctx, "st", client.CopyToContainerOptions{DestinationPath: "/data", Content: bytes.NewReader(mkTar(t, tarEnt{name: "sub", body: "x"}))})
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite a directory with a non-directory") {
		t.Errorf("file over a directory with noOverwriteDirNonDir: %v", err)
	}
	_, err = d.client.CopyToContainer(ctx, "st", client.CopyToContainerOptions{DestinationPath: "/data", AllowOverwriteDirWithFile: true, Content: bytes.NewReader(mkTar(t, tarEnt{name: "sub", body: "x"}))})
	if err != nil {
		t.Errorf("file over a directory without noOverwriteDirNonDir: %v", err)
	}
	if got, _ := d.getFile("st", "/data/sub"); got != "x" {
		t.Errorf("replaced directory: %q", got)
	}
	// GET and PUT are container events, as dockerd reports them.
	o, e, _ := d.cli(bins.docker, nil, "events", "--since", since, "--until", fmt.Sprint(time.Now().Unix()+1),
		"--filter", "container=st", "--format", "{{.Action}}")
	if !strings.Contains(o, "archive-path\n") || !strings.Contains(o, "extract-to-dir\n") {
		t.Errorf("events: %q %q", o, e)
	}
	// A container whose init chrooted: its root filesystem is still the
	// one copied from (the rootfs berth mounted), not the init's chroot.
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "chr", "busybox", "sh", "-c",
		"mkdir -p /c/bin && cp /bin/busybox /c/bin/ && exec chroot /c /bin/busybox sleep 300"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "the chroot", 10*time.Second, func() bool {
		o, _, _ := d.cli(bins.docker, nil, "top", "chr", "-o", "pid,args")
		return strings.Contains(o, "sleep 300")
	})
	if got, _ := d.getFile("chr", "/etc/hostname"); got == "" {
		t.Errorf("copy from a chrooted container's rootfs: %q", got)
	}
	// A read-only rootfs refuses extraction.
	if _, e, code := d.cli(bins.docker, nil, "create", "--name", "ro", "--read-only", "busybox", "true"); code != 0 {
		t.Fatalf("create: %s", e)
	}
	if _, e, code := d.cli(bins.docker, nil, "cp", "-", "ro:/tmp"); code == 0 || !strings.Contains(e, "container rootfs is marked read-only") {
		t.Errorf("cp into a read-only rootfs: %d %q", code, e)
	}
	// A running container is seen with its own mounts: a tmpfs stays
	// writable on a read-only rootfs, and holds what the container wrote.
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "rot", "--read-only", "--tmpfs", "/scratch",
		"busybox", "sh", "-c", "echo mine > /scratch/m && exec sleep 300"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "the container's file on its tmpfs", 10*time.Second, func() bool {
		code, _, _ := d.archiveRaw("HEAD", "rot", "/scratch/m", nil)
		return code == 200
	})
	if got, _ := d.getFile("rot", "/scratch/m"); got != "mine\n" {
		t.Errorf("file on the container's tmpfs: %q", got)
	}
	if _, err := d.client.CopyToContainer(ctx, "rot", client.CopyToContainerOptions{DestinationPath: "/scratch", Content: bytes.NewReader(mkTar(t, tarEnt{name: "in", body: "x"}))}); err != nil {
		t.Errorf("cp into a tmpfs of a read-only container: %v", err)
	}
	if o, _, _ := d.cli(bins.docker, nil, "exec", "rot", "cat", "/scratch/in"); o != "x" {
		t.Errorf("the container does not see the copied file: %q", o)
	}
	if _, err := d.client.CopyToContainer(ctx, "rot", client.CopyToContainerOptions{DestinationPath: "/tmp", Content: bytes.NewReader(mkTar(t, tarEnt{name: "in", body: "x"}))}); err == nil || !strings.Contains(err.Error(), "container rootfs is marked read-only") {
		t.Errorf("cp into the read-only rootfs of a running container: %v", err)
	}
}

// TestCpEscape: whatever a container does with its files, and whatever a
// tar holds, a copy never reads or writes a host file. A marker directory
// outside berth's roots must stay untouched and unread.
func TestCpEscape(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	host := t.TempDir()
	const secret = "SECRET-HOST-CONTENT"
	writeFile(t, filepath.Join(host, "marker"), secret)
	before := hostFiles(t, host)

	// Fixed traps: symlinks to the host directory's path, absolute and
	// climbing, and to "/".
	script := fmt.Sprintf("mkdir -p /w /t && mkfifo /t/fifo && ln -s %[1]s /t/abs && ln -s ../../../../../../../%[1]s /t/up && ln -s / /t/root && "+
		"while true; do rm -rf /w/d; mkdir /w/d; echo inside > /w/d/marker; rm /w/d/marker; mkfifo /w/d/marker; rm -rf /w/d; ln -s %[1]s /w/d; rm -f /w/d; ln -s / /w/d; rm -f /w/d; done", host)
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "esc", "busybox", "sh", "-c", script); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "the container's traps", 10*time.Second, func() bool {
		code, _, _ := d.archiveRaw("HEAD", "esc", "/t/root", nil)
		return code == 200
	})
	ctx := context.Background()
	noSecret := func(what string, data []byte) {
		t.Helper()
		if bytes.Contains(data, []byte(secret)) {
			t.Fatalf("%s read the host marker", what)
		}
	}
	for _, p := range []string{"/t/abs/marker", "/t/up/marker", "/t/abs/", "/t/up/."} {
		code, body, _ := d.archiveRaw("GET", "esc", p, nil)
		noSecret("GET "+p, body)
		if code != 404 {
			t.Errorf("GET %s through a symlink to the host's path: %d, want 404 (nothing there inside the container)", p, code)
		}
	}
	// Magic links (/proc/<pid>/root, /proc/<pid>/fd/N) are never followed,
	// and files of kernel filesystems are never read.
	for _, p := range []string{"/proc/1/root/etc/hostname", "/proc/self/cwd/", "/proc/1/fd/1", "/proc/1/environ", "/sys/kernel/uevent_seqnum"} {
		code, body, _ := d.archiveRaw("GET", "esc", p, nil)
		if code != 400 && code != 404 {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if code, body, _ := d.archiveRaw("GET", "esc", "/proc", nil); code != 200 || len(tarList(t, body)) != 1 {
		t.Errorf("GET /proc: %d, %d entries (want the directory alone)", code, len(tarList(t, body)))
	}
	// A FIFO is archived as a FIFO, never opened.
	if code, body, _ := d.archiveRaw("GET", "esc", "/t/fifo", nil); code != 200 || len(body) == 0 {
		t.Errorf("GET of a FIFO: %d", code)
	} else if h, err := tar.NewReader(bytes.NewReader(body)).Next(); err != nil || h.Typeflag != tar.TypeFifo {
		t.Errorf("GET of a FIFO: %v %v", h, err)
	}
	// Writes through the symlinks land inside the container.
	for i, p := range []string{"/t/abs", "/t/up", "/t/root" + host} {
		_, err := d.client.CopyToContainer(ctx, "esc", client.CopyToContainerOptions{DestinationPath: p,
			Content: bytes.NewReader(mkTar(t, tarEnt{name: fmt.Sprintf("pwned%d", i), body: "x"}))})
		if err == nil || !strings.Contains(err.Error(), "Could not find the file") {
			t.Errorf("PUT into %s: %v (the host path does not exist inside the container)", p, err)
		}
	}

	// Hostile archives.
	climb := strings.Repeat("../", 12) + strings.TrimPrefix(host, "/")
	huge := strings.Repeat("x", 2<<20)
	garbage := make([]byte, 8192)
	_, _ = rand.Read(garbage)
	full := mkTar(t, tarEnt{name: "big", body: strings.Repeat("z", 4096)})
	for _, tc := range []struct {
		name string
		data []byte
		want int // status
	}{
		{"climbing name", mkTar(t, tarEnt{name: climb + "/pwned", body: "x"}), 400},
		{"absolute name", mkTar(t, tarEnt{name: host + "/pwned", body: "x"}), 200},
		// A symlink in the archive resolves inside the container, where
		// the host path does not exist: nothing to write into.
		{"symlink then write through it", mkTar(t, tarEnt{name: "esc", typ: tar.TypeSymlink, link: host}, tarEnt{name: "esc/pwned", body: "x"}), 400},
		{"climbing symlink then write", mkTar(t, tarEnt{name: "up", typ: tar.TypeSymlink, link: climb}, tarEnt{name: "up/pwned", body: "x"}), 400},
		{"hardlink out", mkTar(t, tarEnt{name: "hl", typ: tar.TypeLink, link: climb + "/marker"}), 400},
		{"hardlink to an absolute host path", mkTar(t, tarEnt{name: "hl", typ: tar.TypeLink, link: host + "/marker"}), 400},
		{"device node", mkTar(t, tarEnt{name: "null", typ: tar.TypeChar}), 400},
		{"huge PAX header", hugePAX(huge), 400},
		{"garbage", garbage, 400},
		{"truncated", full[:1024], 400},
		{"long name", mkTar(t, tarEnt{name: strings.Repeat("n/", 2100) + "f", body: "x"}), 400},
	} {
		code, body, _ := d.archiveRaw("PUT", "esc", "/tmp", bytes.NewReader(tc.data))
		if code != tc.want {
			t.Errorf("%s: status %d (%s), want %d", tc.name, code, body, tc.want)
		}
		t.Logf("%s: %d %s", tc.name, code, bytes.TrimSpace(body))
	}
	if code, body, _ := d.archiveRaw("PUT", "esc", "/tmp", bytes.NewReader(mkTar(t, tarEnt{name: "../x", body: "x"}))); !strings.Contains(string(body), `archive entry \"../x\": path escapes the archive root`) {
		t.Errorf("climbing entry refusal: %d %s", code, body)
	}
	if code, body, _ := d.archiveRaw("PUT", "esc", "/tmp", bytes.NewReader(mkTar(t, tarEnt{name: "null", typ: tar.TypeChar}))); !strings.Contains(string(body), "device nodes are not allowed") {
		t.Errorf("device node refusal: %d %s", code, body)
	}
	// What the absolute and symlinked names wrote is inside the container.
	for _, p := range []string{"/tmp" + host + "/pwned", "/tmp/esc", "/tmp/up"} {
		if code, _, _ := d.archiveRaw("HEAD", "esc", p, nil); code != 200 {
			t.Errorf("expected %s inside the container: %d", p, code)
		}
	}

	// The race: the container keeps swapping /w/d between a directory and
	// symlinks to the host's marker directory and to "/", while copies
	// run in both directions.
	var got, missing int
	for i := range 300 {
		code, body, _ := d.archiveRaw("GET", "esc", "/w/d/marker", nil)
		noSecret("GET /w/d/marker", body)
		if code == 200 {
			got++
		} else {
			missing++
		}
		_, body, _ = d.archiveRaw("GET", "esc", "/w/d/", nil)
		noSecret("GET /w/d/", body)
		_, _, _ = d.archiveRaw("PUT", "esc", "/w/d", bytes.NewReader(mkTar(t, tarEnt{name: fmt.Sprintf("race%d", i), body: "x"})))
		_, _, _ = d.archiveRaw("PUT", "esc", "/w", bytes.NewReader(mkTar(t, tarEnt{name: fmt.Sprintf("d/racedeep%d", i), body: "x"})))
	}
	t.Logf("race: marker read %d times, missing %d times", got, missing)
	if after := hostFiles(t, host); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("host directory changed: %v -> %v", before, after)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "marker")); string(b) != secret {
		t.Fatalf("host marker changed: %q", b)
	}
	// berthd is still serving.
	if _, err := d.client.ContainerInspect(ctx, "esc", client.ContainerInspectOptions{}); err != nil {
		t.Fatalf("daemon after hostile archives: %v", err)
	}
}
