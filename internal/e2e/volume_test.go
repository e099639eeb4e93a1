package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/fixture"
)

// importSeeded imports busybox plus a /seed directory with owners, modes,
// an xattr, a symlink and a hard link (VOLUME /seed), and symlinks that
// point at hostTarget (absolute and relative), for the copy-up and escape
// scenarios.
func (d *daemon) importSeeded(ref, hostTarget string) {
	d.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tarInto(tw, fixture.BusyboxRootfs(d.t)); err != nil {
		d.t.Fatal(err)
	}
	mt := time.Unix(1700000000, 0)
	hdrs := []*tar.Header{
		{Name: "seed/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1234, Gid: 5678, ModTime: mt,
			PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "d"}},
		{Name: "seed/file.txt", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 5678, Size: 7, ModTime: mt,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}},
		{Name: "seed/link", Typeflag: tar.TypeSymlink, Linkname: "file.txt", Uid: 1234, Gid: 5678, ModTime: mt},
		{Name: "seed/hard", Typeflag: tar.TypeLink, Linkname: "seed/file.txt"},
		{Name: "seed/sub/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 42, Gid: 43, ModTime: mt},
		{Name: "seed/sub/deep.txt", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 42, Gid: 43, Size: 5, ModTime: mt},
		{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: hostTarget, ModTime: mt},
		{Name: "rel", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../.." + hostTarget, ModTime: mt},
	}
	content := map[string]string{"seed/file.txt": "seeded\n", "seed/sub/deep.txt": "deep\n"}
	for _, h := range hdrs {
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			d.t.Fatal(err)
		}
		if c, ok := content[h.Name]; ok {
			_, _ = tw.Write([]byte(c))
		}
	}
	if err := tw.Close(); err != nil {
		d.t.Fatal(err)
	}
	out, errOut, code := d.cli(bins.docker, &buf, "import", "-c", "VOLUME /seed", "-", ref)
	if code != 0 {
		d.t.Fatalf("docker import: exit %d: %s %s", code, out, errOut)
	}
}

func tarInto(tw *tar.Writer, dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
}

// must runs a CLI command that must succeed and returns its trimmed stdout.
func (d *daemon) must(bin string, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.cli(bin, nil, args...)
	if code != 0 {
		d.t.Fatalf("%s %v: exit %d\nstdout: %s\nstderr: %s", filepath.Base(bin), args, code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// fails runs a CLI command that must fail with want in its stderr.
func (d *daemon) fails(bin, want string, args ...string) {
	d.t.Helper()
	out, errOut, code := d.cli(bin, nil, args...)
	if code == 0 || !strings.Contains(errOut, want) {
		d.t.Fatalf("%s %v: want failure with %q, got exit %d\nstdout: %s\nstderr: %s", filepath.Base(bin), args, want, code, out, errOut)
	}
}

// use makes t the daemon's test for a subtest; the returned func puts
// the previous one back.
func (d *daemon) use(t *testing.T) func() {
	prev := d.t
	d.t = t
	return func() { d.t = prev }
}

func (d *daemon) volPath(name string) string {
	return filepath.Join(d.dataRoot, "volumes", name, "_data")
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestVolumeLifecycle(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			since := fmt.Sprint(time.Now().Unix() - 1)
			v := "v1-" + c.name
			if got := d.must(c.bin, "volume", "create", "--label", "team=a", v); got != v {
				t.Fatalf("volume create printed %q", got)
			}
			got := d.must(c.bin, "volume", "inspect", "--format", `{{.Driver}} {{.Scope}} {{.Mountpoint}} {{index .Labels "team"}}`, v)
			if want := "local local " + d.volPath(v) + " a"; got != want {
				t.Fatalf("inspect: %q, want %q", got, want)
			}
			var insp []map[string]any
			if err := json.Unmarshal([]byte(d.must(c.bin, "volume", "inspect", v)), &insp); err != nil || len(insp) != 1 {
				t.Fatalf("inspect json: %v %v", err, insp)
			}
			for _, k := range []string{"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"} {
				if _, ok := insp[0][k]; !ok {
					t.Fatalf("inspect lacks %s: %v", k, insp[0])
				}
			}
			// Names cannot escape the volumes directory.
			d.fails(c.bin, "includes invalid characters", "volume", "create", "../evil")
			d.fails(c.bin, "includes invalid characters", "run", "--rm", "--mount", "type=volume,src=../../etc,dst=/x", "busybox", "true")
			d.fails(c.bin, "no such volume", "volume", "inspect", "nosuchvol")
			if exists(filepath.Join(d.dataRoot, "evil")) || exists(filepath.Join(d.dataRoot, "etc")) {
				t.Fatal("a volume name escaped the volumes directory")
			}

			// Persistence across container removal; :ro is enforced.
			d.must(c.bin, "run", "--rm", "-v", v+":/data", "busybox", "sh", "-c", "echo persisted > /data/f")
			if got := d.must(c.bin, "run", "--rm", "-v", v+":/data:ro", "busybox", "cat", "/data/f"); got != "persisted" {
				t.Fatalf("read back %q", got)
			}
			d.fails(c.bin, "Read-only file system", "run", "--rm", "-v", v+":/data:ro", "busybox", "touch", "/data/x")
			df := d.must(c.bin, "system", "df", "-v")
			if !strings.Contains(df, "Local Volumes space usage:") || !strings.Contains(df, v) {
				t.Fatalf("system df -v: %s", df)
			}
			if got := d.must(c.bin, "system", "df", "--format", "{{.Type}} {{.TotalCount}}"); !strings.Contains(got, "Local Volumes 1") {
				t.Fatalf("system df: %s", got)
			}

			// In use: refused, with or without force.
			user := "user-" + c.name
			d.must(c.bin, "create", "--name", user, "-v", v+":/data", "busybox", "true")
			d.fails(c.bin, "volume is in use", "volume", "rm", v)
			d.fails(c.bin, "volume is in use", "volume", "rm", "-f", v)
			if got := d.must(c.bin, "volume", "ls", "-q", "--filter", "dangling=false", "--filter", "name="+v); got != v {
				t.Fatalf("dangling=false: %q", got)
			}
			if got := d.must(c.bin, "volume", "ls", "-q", "--filter", "dangling=true", "--filter", "name="+v); got != "" {
				t.Fatalf("dangling=true: %q", got)
			}
			if got := d.must(c.bin, "volume", "ls", "--filter", "label=team=a", "--format", "{{.Name}} {{.Driver}}"); got != v+" local" {
				t.Fatalf("label filter: %q", got)
			}
			if got := d.must(c.bin, "ps", "-a", "-q", "--filter", "volume="+v); len(got) != 12 {
				t.Fatalf("ps --filter volume: %q", got)
			}
			// A create that fails after its volumes were acquired (the
			// name is taken) leaves no anonymous volume and no reference.
			before := d.must(c.bin, "volume", "ls", "-q")
			d.fails(c.bin, "is already in use", "create", "--name", user, "-v", "/anon", "-v", v+":/data", "busybox", "true")
			if got := d.must(c.bin, "volume", "ls", "-q"); got != before {
				t.Fatalf("failed create left volumes: %q, before %q", got, before)
			}
			d.fails(c.bin, "No such container: ghost-ctr", "create", "--pull=never", "--volumes-from", "ghost-ctr", "busybox", "true")
			d.must(c.bin, "rm", user)
			d.must(c.bin, "volume", "rm", v)
			// Volume events, with Docker's attributes.
			ev := d.must(bins.docker, "events", "--since", since, "--until", fmt.Sprint(time.Now().Unix()+1),
				"--filter", "type=volume", "--filter", "volume="+v, "--format", `{{.Action}} {{index .Actor.Attributes "destination"}} {{index .Actor.Attributes "read/write"}}`)
			seen := map[string]bool{}
			for _, l := range strings.Split(ev, "\n") {
				seen[strings.TrimSpace(l)] = true
			}
			for _, want := range []string{"create", "mount /data true", "mount /data false", "unmount", "destroy"} {
				if !seen[want] {
					t.Fatalf("events lack %q:\n%s", want, ev)
				}
			}
			if exists(filepath.Join(d.dataRoot, "volumes", v)) {
				t.Fatal("volume directory left after rm")
			}
			d.must(c.bin, "volume", "rm", "-f", v) // force: a missing volume is no error
			d.fails(c.bin, "no such volume", "volume", "rm", v)

			// rm -v removes anonymous volumes only.
			named := "named-" + c.name
			anonC := "anon-" + c.name
			d.must(c.bin, "create", "--name", anonC, "-v", "/anon", "-v", named+":/named", "busybox", "true")
			var mounts []struct {
				Type, Name, Source, Destination, Driver, Mode string
				RW                                            bool
			}
			if err := json.Unmarshal([]byte(d.must(c.bin, "inspect", "--format", "{{json .Mounts}}", anonC)), &mounts); err != nil || len(mounts) != 2 {
				t.Fatalf("mounts: %v %+v", err, mounts)
			}
			anon := ""
			for _, m := range mounts {
				if m.Type != "volume" || m.Driver != "local" || !m.RW || m.Source != d.volPath(m.Name) {
					t.Fatalf("mount %+v", m)
				}
				if m.Destination == "/anon" {
					anon = m.Name
				}
			}
			if len(anon) != 64 {
				t.Fatalf("anonymous volume name %q", anon)
			}
			d.must(c.bin, "rm", "-v", anonC)
			d.fails(c.bin, "no such volume", "volume", "inspect", anon)
			waitFor(t, "the anonymous volume's directory to go", 10*time.Second, func() bool {
				return !exists(filepath.Join(d.dataRoot, "volumes", anon))
			})
			d.must(c.bin, "volume", "inspect", named)

			// prune: anonymous only by default, --all for named ones.
			pc := "pruned-" + c.name
			d.must(c.bin, "run", "--name", pc, "-v", "/x", "busybox", "true")
			anon2 := d.must(c.bin, "inspect", "--format", "{{range .Mounts}}{{.Name}}{{end}}", pc)
			d.must(c.bin, "rm", pc)
			out := d.must(c.bin, "volume", "prune", "-f")
			if !strings.Contains(out, anon2) || strings.Contains(out, named) {
				t.Fatalf("prune: %q", out)
			}
			out = d.must(c.bin, "volume", "prune", "-af")
			if !strings.Contains(out, named) {
				t.Fatalf("prune -a: %q", out)
			}
			if got := d.must(c.bin, "volume", "ls", "-q"); got != "" {
				t.Fatalf("volumes left: %q", got)
			}
		})
	}
}

func TestVolumeCopyUpAndNocopy(t *testing.T) {
	d := startDaemon(t)
	d.importSeeded("seeded:latest", "/nonexistent-berth-target")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			v := "cu-" + c.name
			if got := d.must(c.bin, "run", "--rm", "-v", v+":/seed", "seeded", "cat", "/seed/file.txt", "/seed/link", "/seed/sub/deep.txt"); got != "seeded\nseeded\ndeep" {
				t.Fatalf("copied content: %q", got)
			}
			data := d.volPath(v)
			check := func(rel string, mode os.FileMode, uid, gid uint32) {
				t.Helper()
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(data, rel), &st); err != nil {
					t.Fatal(err)
				}
				if os.FileMode(st.Mode&0o7777) != mode || st.Uid != uid || st.Gid != gid {
					t.Fatalf("%s: mode %o uid %d gid %d, want %o %d %d", rel, st.Mode&0o7777, st.Uid, st.Gid, mode, uid, gid)
				}
				if st.Mtim.Sec != 1700000000 && st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
					t.Fatalf("%s: mtime %d", rel, st.Mtim.Sec)
				}
			}
			check(".", 0o750, 1234, 5678)
			check("file.txt", 0o640, 1234, 5678)
			check("sub", 0o700, 42, 43)
			check("sub/deep.txt", 0o600, 42, 43)
			if l, err := os.Readlink(filepath.Join(data, "link")); err != nil || l != "file.txt" {
				t.Fatalf("symlink: %q %v", l, err)
			}
			var a, b syscall.Stat_t
			_ = syscall.Stat(filepath.Join(data, "file.txt"), &a)
			_ = syscall.Stat(filepath.Join(data, "hard"), &b)
			if a.Ino != b.Ino {
				t.Fatal("hard link not preserved")
			}
			buf := make([]byte, 16)
			if n, err := unix.Lgetxattr(filepath.Join(data, "file.txt"), "user.k", buf); err != nil || string(buf[:n]) != "v" {
				t.Fatalf("xattr user.k: %q %v", buf[:n], err)
			}
			// A volume that is not empty is never overwritten.
			d.must(c.bin, "run", "--rm", "-v", v+":/seed", "seeded", "sh", "-c", "rm -rf /seed/* && echo mine > /seed/own")
			if got := d.must(c.bin, "run", "--rm", "-v", v+":/seed", "seeded", "ls", "/seed"); got != "own" {
				t.Fatalf("non-empty volume got copied into: %q", got)
			}
			// nocopy, both syntaxes.
			if got := d.must(c.bin, "run", "--rm", "-v", "nc-"+c.name+":/seed:nocopy", "seeded", "ls", "-A", "/seed"); got != "" {
				t.Fatalf("nocopy: %q", got)
			}
			if got := d.must(c.bin, "run", "--rm", "--mount", "type=volume,src=nc2-"+c.name+",dst=/seed,volume-nocopy", "seeded", "ls", "-A", "/seed"); got != "" {
				t.Fatalf("volume-nocopy: %q", got)
			}
			// The image's VOLUME: an anonymous volume with the content,
			// removed with the container by --rm.
			before := d.must(c.bin, "volume", "ls", "-q")
			if got := d.must(c.bin, "run", "--rm", "seeded", "cat", "/seed/file.txt"); got != "seeded" {
				t.Fatalf("image volume: %q", got)
			}
			waitFor(t, "--rm to remove the anonymous volume", 10*time.Second, func() bool {
				return d.must(c.bin, "volume", "ls", "-q") == before
			})
			d.must(c.bin, "volume", "prune", "-af")
		})
	}
}

func TestVolumePersistsAcrossRestart(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			v := "keep-" + c.name
			d.must(c.bin, "run", "--rm", "-v", v+":/data", "busybox", "sh", "-c", "echo kept > /data/f")
			d.must(c.bin, "create", "--name", "holder-"+c.name, "-v", v+":/data", "-v", "/anon", "busybox", "true")
			// A running container on a tmpfs-backed volume keeps it
			// mounted across the restart (live restore), and its stop
			// after the restart unmounts it.
			tv := "live-" + c.name
			d.must(c.bin, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", tv)
			d.must(c.bin, "run", "-d", "--name", "runner-"+c.name, "-v", tv+":/t", "busybox", "sh", "-c", "echo alive > /t/f; exec sleep 1000")
			waitFor(t, "the tmpfs volume to be mounted", 10*time.Second, func() bool { return isMount(d.volPath(tv)) })
			d.stop()
			d.start()
			if got := d.must(c.bin, "exec", "runner-"+c.name, "cat", "/t/f"); got != "alive" || !isMount(d.volPath(tv)) {
				t.Fatalf("live volume after restart: %q", got)
			}
			d.fails(c.bin, "volume is in use", "volume", "rm", tv)
			d.must(c.bin, "rm", "-f", "runner-"+c.name)
			waitFor(t, "the tmpfs volume to be unmounted", 10*time.Second, func() bool { return !isMount(d.volPath(tv)) })
			d.must(c.bin, "volume", "rm", tv)
			if got := d.must(c.bin, "run", "--rm", "-v", v+":/data", "busybox", "cat", "/data/f"); got != "kept" {
				t.Fatalf("after restart: %q", got)
			}
			// The reference survived the restart.
			d.fails(c.bin, "volume is in use", "volume", "rm", v)
			// kill -9: records and references come back the same.
			d.kill9()
			d.start()
			d.fails(c.bin, "volume is in use", "volume", "rm", v)
			d.must(c.bin, "rm", "-v", "holder-"+c.name)
			d.must(c.bin, "volume", "rm", v)
			if got := d.must(c.bin, "volume", "ls", "-q"); got != "" {
				t.Fatalf("volumes left: %q", got)
			}
		})
	}
}

func TestVolumeConcurrentUse(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			v := "shared-" + c.name
			a, b := "ca-"+c.name, "cb-"+c.name
			d.must(c.bin, "run", "-d", "--name", a, "-v", v+":/s", "busybox", "sh", "-c", "echo fromA > /s/a; exec sleep 1000")
			d.must(c.bin, "run", "-d", "--name", b, "-v", v+":/s", "busybox", "sh", "-c", "echo fromB > /s/b; exec sleep 1000")
			waitFor(t, "each container to see the other's file", 10*time.Second, func() bool {
				o1, _, _ := d.cli(c.bin, nil, "exec", a, "cat", "/s/b")
				o2, _, _ := d.cli(c.bin, nil, "exec", b, "cat", "/s/a")
				return o1 == "fromB\n" && o2 == "fromA\n"
			})
			d.fails(c.bin, "volume is in use", "volume", "rm", v)
			d.must(c.bin, "rm", "-f", a)
			d.fails(c.bin, "volume is in use", "volume", "rm", v)
			d.must(c.bin, "rm", "-f", b)
			d.must(c.bin, "volume", "rm", v)
		})
	}
}

func TestVolumeDriverOptions(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			// tmpfs-backed: mounted while a container uses it.
			tv := "tv-" + c.name
			d.must(c.bin, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,mode=0777", tv)
			if got := d.must(c.bin, "volume", "inspect", "--format", "{{.Options.type}} {{.Options.o}}", tv); got != "tmpfs size=1m,mode=0777" {
				t.Fatalf("options: %q", got)
			}
			d.fails(c.bin, "invalid option", "volume", "create", "-o", "bogus=1", "bad-"+c.name)
			d.fails(c.bin, "missing required option", "volume", "create", "-o", "type=tmpfs", "bad-"+c.name)
			ctr := "tc-" + c.name
			d.must(c.bin, "run", "-d", "--name", ctr, "-v", tv+":/t", "busybox", "sh", "-c", "df /t | tail -1; exec sleep 1000")
			waitFor(t, "the tmpfs volume to be mounted", 10*time.Second, func() bool { return isMount(d.volPath(tv)) })
			d.must(c.bin, "rm", "-f", ctr)
			waitFor(t, "the tmpfs volume to be unmounted", 10*time.Second, func() bool { return !isMount(d.volPath(tv)) })
			d.must(c.bin, "volume", "rm", tv)

			// bind-backed: the device's files are the volume's; removing
			// the volume never deletes them.
			host := t.TempDir()
			bv := "bv-" + c.name
			d.must(c.bin, "volume", "create", "--opt", "type=none", "--opt", "device="+host, "--opt", "o=bind", bv)
			d.must(c.bin, "run", "--rm", "-v", bv+":/b", "busybox", "sh", "-c", "echo via-volume > /b/f")
			if b, err := os.ReadFile(filepath.Join(host, "f")); err != nil || string(b) != "via-volume\n" {
				t.Fatalf("bind-backed volume: %q %v", b, err)
			}
			waitFor(t, "the bind volume to be unmounted", 10*time.Second, func() bool { return !isMount(d.volPath(bv)) })
			d.must(c.bin, "volume", "rm", bv)
			if _, err := os.Stat(filepath.Join(host, "f")); err != nil {
				t.Fatalf("removing a bind-backed volume deleted the host's files: %v", err)
			}
		})
	}
}

func isMount(p string) bool {
	for _, m := range mountsUnder(p) {
		if m == p {
			return true
		}
	}
	return false
}

func TestVolumeSymlinkEscape(t *testing.T) {
	d := startDaemon(t)
	// A host directory the image's symlinks point at: nothing may ever
	// appear in it.
	target := t.TempDir()
	d.importSeeded("seeded:latest", target)
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			v := "ev-" + c.name
			bindSrc := t.TempDir()
			// Mount targets that are symlinks in the image resolve inside
			// the container: the writes land in the volume or the bind
			// source, never in the host directory the link names.
			for _, link := range []string{"/esc", "/rel"} {
				d.must(c.bin, "run", "--rm", "-v", v+":"+link, "seeded", "sh", "-c", "echo x > "+link+"/marker-vol")
				d.must(c.bin, "run", "--rm", "-v", bindSrc+":"+link, "seeded", "sh", "-c", "echo x > "+link+"/marker-bind")
			}
			if !exists(filepath.Join(d.volPath(v), "marker-vol")) || !exists(filepath.Join(bindSrc, "marker-bind")) {
				t.Fatal("the mounts did not land in the volume / bind source")
			}
			// A symlink planted in a volume cannot be used as a subpath,
			// and a subpath cannot leave the volume.
			d.must(c.bin, "run", "--rm", "-v", v+":/p", "seeded", "sh", "-c", "ln -s / /p/root && mkdir /p/ok && echo fine > /p/ok/f")
			d.fails(c.bin, "symlinks", "run", "--rm", "--mount", "type=volume,src="+v+",dst=/x,volume-subpath=root", "seeded", "ls", "/x")
			d.fails(c.bin, "subpath must be a relative path", "run", "--rm", "--mount", "type=volume,src="+v+",dst=/x,volume-subpath=../..", "seeded", "true")
			if got := d.must(c.bin, "run", "--rm", "--mount", "type=volume,src="+v+",dst=/x,volume-subpath=ok", "seeded", "cat", "/x/f"); got != "fine" {
				t.Fatalf("subpath: %q", got)
			}
			// A bind below a mount whose volume holds a planted symlink
			// resolves inside the container too.
			hostProbe := filepath.Join(target, "planted")
			d.must(c.bin, "run", "--rm", "-v", v+":/p", "-v", bindSrc+":/p/root"+hostProbe, "seeded", "sh", "-c", "echo x > /p/root"+hostProbe+"/m2")
			if ents, _ := os.ReadDir(target); len(ents) != 0 {
				t.Fatalf("the host directory the symlinks name was touched: %v", ents)
			}
			if m := mountsUnder(target); len(m) != 0 {
				t.Fatalf("mounts on the host target: %v", m)
			}
			d.must(c.bin, "volume", "rm", v)
		})
	}
}

func TestVolumeBackupPattern(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			backup := t.TempDir()
			store := "dbstore-" + c.name
			// Docker's documented backup and restore, as written.
			d.must(c.bin, "run", "--name", store, "-v", "/dbdata", "busybox", "sh", "-c", "echo important > /dbdata/db.txt")
			d.must(c.bin, "run", "--rm", "--volumes-from", store, "-v", backup+":/backup", "busybox", "tar", "cvf", "/backup/backup.tar", "/dbdata")
			if got := tarEntry(t, filepath.Join(backup, "backup.tar"), "dbdata/db.txt"); got != "important\n" {
				t.Fatalf("backup holds %q", got)
			}
			store2 := "dbstore2-" + c.name
			d.must(c.bin, "run", "--name", store2, "-v", "/dbdata", "busybox", "true")
			d.must(c.bin, "run", "--rm", "--volumes-from", store2, "-v", backup+":/backup", "busybox", "sh", "-c", "cd /dbdata && tar xvf /backup/backup.tar --strip 1")
			if got := d.must(c.bin, "run", "--rm", "--volumes-from", store2+":ro", "busybox", "cat", "/dbdata/db.txt"); got != "important" {
				t.Fatalf("restored %q", got)
			}
			d.fails(c.bin, "Read-only file system", "run", "--rm", "--volumes-from", store2+":ro", "busybox", "touch", "/dbdata/x")
			// The same with a named volume mounted read-only.
			nv := "dbvol-" + c.name
			d.must(c.bin, "run", "--rm", "-v", nv+":/dbdata", "busybox", "sh", "-c", "echo named > /dbdata/n.txt")
			d.must(c.bin, "run", "--rm", "-v", nv+":/dbdata:ro", "-v", backup+":/backup", "busybox", "tar", "cf", "/backup/named.tar", "/dbdata")
			if got := tarEntry(t, filepath.Join(backup, "named.tar"), "dbdata/n.txt"); got != "named\n" {
				t.Fatalf("named backup holds %q", got)
			}
			d.must(c.bin, "rm", "-v", store, store2)
			d.must(c.bin, "volume", "rm", nv)
			if got := d.must(c.bin, "volume", "ls", "-q"); got != "" {
				t.Fatalf("volumes left: %q", got)
			}
		})
	}
}

func tarEntry(t *testing.T, file, name string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no %s (%v)", file, name, err)
		}
		if strings.TrimPrefix(h.Name, "/") == name {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}

func TestMountRules(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		t.Run(c.name, func(t *testing.T) {
			defer d.use(t)()
			base := t.TempDir()
			// -v creates a missing host directory; --mount refuses it.
			missing := filepath.Join(base, "made", "by", "v")
			d.must(c.bin, "run", "--rm", "-v", missing+":/m", "busybox", "touch", "/m/f")
			if !exists(filepath.Join(missing, "f")) {
				t.Fatal("-v did not create the missing host directory")
			}
			d.fails(c.bin, "bind source path does not exist: "+filepath.Join(base, "nope"), "run", "--rm", "--mount", "type=bind,src="+filepath.Join(base, "nope")+",dst=/m", "busybox", "true")
			d.fails(c.bin, "Duplicate mount point", "run", "--rm", "-v", "dup-a:/d", "--mount", "type=volume,src=dup-b,dst=/d", "busybox", "true")
			// --read-only with tmpfs and a volume: only those are writable.
			v := "ro-" + c.name
			d.must(c.bin, "run", "--rm", "--read-only", "--tmpfs", "/tmp", "-v", v+":/data", "busybox", "sh", "-c", "touch /tmp/a /data/b")
			d.fails(c.bin, "Read-only file system", "run", "--rm", "--read-only", "-v", v+":/data", "busybox", "touch", "/c")
			// --mount type=volume with labels and a read-only flag.
			d.must(c.bin, "run", "--rm", "--mount", "type=volume,src=ml-"+c.name+",dst=/v,volume-label=k=w", "busybox", "true")
			if got := d.must(c.bin, "volume", "inspect", "--format", `{{index .Labels "k"}}`, "ml-"+c.name); got != "w" {
				t.Fatalf("volume-label: %q", got)
			}
			d.fails(c.bin, "Read-only file system", "run", "--rm", "--mount", "type=volume,src="+v+",dst=/v,readonly", "busybox", "touch", "/v/x")
			// volume-opt creates a driver-option volume on first use.
			mo := "mo-" + c.name
			if got := d.must(c.bin, "run", "--rm", "--mount", "type=volume,src="+mo+",dst=/m,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs", "busybox", "sh", "-c", "grep ' /m ' /proc/mounts | cut -d' ' -f3"); got != "tmpfs" {
				t.Fatalf("volume-opt tmpfs: %q", got)
			}
			if got := d.must(c.bin, "volume", "inspect", "--format", "{{.Options.type}}", mo); got != "tmpfs" {
				t.Fatalf("volume-opt: %q", got)
			}
			d.must(c.bin, "volume", "prune", "-af")
		})
	}
}
