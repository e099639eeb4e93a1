package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestApplyEntryTypes(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	mt := time.Date(2021, 6, 7, 8, 9, 10, 123456789, time.UTC)
	at := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	setuid := reg("bin/su", "#!su")
	setuid.hdr.Mode = 0o4755
	owned := reg("home/u/f", "data")
	owned.hdr.Uid, owned.hdr.Gid, owned.hdr.ModTime, owned.hdr.AccessTime = 1000, 2000, mt, at
	owned.hdr.Format = tar.FormatPAX // sub-second times and atime need PAX
	owned.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.color":               "blue",
		"SCHILY.xattr.security.capability":      string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
		"SCHILY.xattr.trusted.overlay.opaque":   "y",
		"SCHILY.xattr.trusted.overlay.redirect": "/etc",
	}
	sticky := dirE("tmp/")
	sticky.hdr.Mode = 0o1777
	sgid := dirE("srv/")
	sgid.hdr.Mode, sgid.hdr.Gid, sgid.hdr.ModTime = 0o2775, 50, mt
	blk := ent{hdr: tar.Header{Name: "dev/loop9", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 9, ModTime: t0}}
	fifo := ent{hdr: tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: t0}}
	link := sym("home/u/l", "../../bin/su")
	link.hdr.Uid, link.hdr.Gid = 7, 8
	res := mustApply(t, dir,
		dirE("bin/"), setuid, dirE("home/"), dirE("home/u/"), owned, link,
		hard("home/u/hl", "home/u/f"), sticky, sgid, reg("srv/x", "x"),
		dirE("dev/"), chr("dev/null", 1, 3), blk, dirE("run/"), fifo,
		reg("deep/missing/parents/f", "p"),
	)
	if res.Entries != 16 {
		t.Errorf("entries = %d", res.Entries)
	}
	check := func(p string, mode uint32, uid, gid uint32) unix.Stat_t {
		t.Helper()
		st := lstat(t, filepath.Join(dir, p))
		if st.Mode != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", p, st.Mode, st.Uid, st.Gid, mode, uid, gid)
		}
		return st
	}
	check("bin/su", unix.S_IFREG|0o4755, 0, 0)
	st := check("home/u/f", unix.S_IFREG|0o644, 1000, 2000)
	if st.Mtim.Sec != mt.Unix() || st.Mtim.Nsec != int64(mt.Nanosecond()) || st.Atim.Sec != at.Unix() {
		t.Errorf("times: mtime %v atime %v", st.Mtim, st.Atim)
	}
	if st.Nlink != 2 {
		t.Errorf("hardlink: nlink %d", st.Nlink)
	}
	if hl := lstat(t, filepath.Join(dir, "home/u/hl")); hl.Ino != st.Ino {
		t.Errorf("hardlink is another inode")
	}
	if got := xattr(filepath.Join(dir, "home/u/f"), "user.color"); got != "blue" {
		t.Errorf("user.color = %q", got)
	}
	if got := xattr(filepath.Join(dir, "home/u/f"), "security.capability"); got == "" {
		t.Errorf("security.capability not applied (chown after xattr?)")
	}
	if got := xattr(filepath.Join(dir, "home/u/f"), "trusted.overlay.opaque"); got != "" {
		t.Errorf("a layer set trusted.overlay.opaque on a file")
	}
	var skipped []string
	for _, s := range res.SkippedXattrs {
		skipped = append(skipped, s.Path+":"+s.Key)
	}
	if strings.Join(skipped, ",") != "home/u/f:trusted.overlay.opaque,home/u/f:trusted.overlay.redirect" {
		t.Errorf("skipped xattrs %v", skipped)
	}
	check("home/u/l", unix.S_IFLNK|0o777, 7, 8)
	if target, _ := os.Readlink(filepath.Join(dir, "home/u/l")); target != "../../bin/su" {
		t.Errorf("symlink target %q", target)
	}
	check("tmp", unix.S_IFDIR|0o1777, 0, 0)
	st = check("srv", unix.S_IFDIR|0o2775, 0, 50)
	if st.Mtim.Sec != mt.Unix() {
		t.Errorf("directory mtime %v, want %v (set after its content)", st.Mtim.Sec, mt.Unix())
	}
	st = check("dev/null", unix.S_IFCHR|0o666, 0, 0)
	if unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null rdev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	st = check("dev/loop9", unix.S_IFBLK|0o660, 0, 0)
	if unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 9 {
		t.Errorf("loop9 rdev")
	}
	check("run/fifo", unix.S_IFIFO|0o600, 0, 0)
	check("deep/missing/parents", unix.S_IFDIR|0o755, 0, 0)
}

func TestApplyDigest(t *testing.T) {
	requireRoot(t)
	data := buildTar(t, dirE("a/"), reg("a/b", "hello"))
	data = append(data, make([]byte, 4096)...) // padding after the end blocks counts
	res, err := applyBytes(t, t.TempDir(), data)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.FromBytes(data); res.DiffID != want || res.Size != int64(len(data)) {
		t.Errorf("diffID %s size %d, want %s %d", res.DiffID, res.Size, want, len(data))
	}
	if res.CompressedDigest != "" {
		t.Errorf("compressed digest without DecompressStream")
	}
}

func TestApplyWhiteouts(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	// Content of an earlier apply into the same directory is "lower" for
	// the same-layer rules.
	mustApply(t, dir, dirE("old/"), reg("old/f", "x"), reg("gone", "x"), dirE("gonedir/"), reg("gonedir/f", "x"))
	mustApply(t, dir,
		wh(".wh.gone"), wh(".wh.gonedir"), wh(".wh.never-existed"),
		dirE("op/"), reg("op/kept", "k"), wh("op/.wh..wh..opq"),
		wh("sub/.wh..wh..opq"),           // parent created on the fly
		reg("same", "s"), wh(".wh.same"), // same layer: the file stays
		dirE("samedir/"), wh(".wh.samedir"), // same layer: dir stays, opaque
		wh(".wh.redo"), dirE("redo/"), // whiteout then dir: opaque dir
		wh(".wh.refile"), reg("refile", "r"),
		wh(".wh..wh.plnk"), // aufs metadata: ignored
	)
	isWhiteout := func(p string) bool {
		st := lstat(t, filepath.Join(dir, p))
		return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
	}
	for _, p := range []string{"gone", "gonedir", "never-existed"} {
		if !isWhiteout(p) {
			t.Errorf("%s is not a whiteout", p)
		}
	}
	for _, p := range []string{"op", "sub", "samedir", "redo"} {
		if xattr(filepath.Join(dir, p), "trusted.overlay.opaque") != "y" {
			t.Errorf("%s is not opaque", p)
		}
	}
	if xattr(filepath.Join(dir, "old"), "trusted.overlay.opaque") != "" {
		t.Errorf("old became opaque")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "op/kept")); err != nil || string(b) != "k" {
		t.Errorf("entry of the opaque dir's own layer: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "same")); err != nil || string(b) != "s" {
		t.Errorf("same-layer file hidden by its whiteout: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "refile")); err != nil || string(b) != "r" {
		t.Errorf("refile: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".wh..wh.plnk")); !os.IsNotExist(err) {
		t.Errorf("aufs metadata unpacked")
	}
}

func TestApplyUserXattrAndIDMap(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	f := reg("f", "x")
	f.hdr.Uid, f.hdr.Gid = 5, 6
	_, err := Apply(context.Background(), dir, bytes.NewReader(buildTar(t, f, wh("d/.wh..wh..opq"))), ApplyOptions{
		UIDMap:    []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GIDMap:    []IDMap{{ContainerID: 0, HostID: 200000, Size: 65536}},
		UserXattr: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(dir, "f")); st.Uid != 100005 || st.Gid != 200006 {
		t.Errorf("mapped owner %d:%d", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(dir, "d")); st.Uid != 100000 || st.Gid != 200000 {
		t.Errorf("implicit parent owned by %d:%d, want the mapped root", st.Uid, st.Gid)
	}
	if xattr(filepath.Join(dir, "d"), "user.overlay.opaque") != "y" {
		t.Errorf("user.overlay.opaque not set")
	}
	big := reg("g", "x")
	big.hdr.Uid = 70000
	_, err = Apply(context.Background(), dir, bytes.NewReader(buildTar(t, big)), ApplyOptions{
		UIDMap: []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	})
	if err == nil || !strings.Contains(err.Error(), "not mapped") {
		t.Errorf("unmapped uid: %v", err)
	}
}

func TestApplyReplace(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	mustApply(t, dir,
		dirE("d/"), reg("d/f", "1"), // dir replaced by a file
		reg("d", "file now"),
		reg("x", "1"), dirE("x/"), reg("x/y", "2"), // file replaced by a dir
		sym("s", "x"), reg("s", "3"), // symlink replaced by a file
		dirE("k/"), reg("k/a", "a"), dirE("k/"), // dir entry twice keeps content
	)
	for p, want := range map[string]string{"d": "file now", "x/y": "2", "s": "3", "k/a": "a"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", p, b, err)
		}
	}
	if st := lstat(t, filepath.Join(dir, "s")); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("s is not a regular file")
	}
}

// outcome of an escape attempt. In every case the host must be untouched.
type outcome int

const (
	refused outcome = iota // stopped with ErrUnsafeEntry
	failed                 // stopped with some other clear error
	inside                 // succeeded, and the effect is at where, inside the layer
	either                 // success or failure are both fine
)

type escapeCase struct {
	name  string
	ents  func(host string) []ent
	want  outcome
	where string // for inside; HOST stands for the host dir's path without "/"
}

// mirror makes the host directory's path exist inside the layer, so that
// an absolute symlink to it resolves (inside the layer).
func mirror(h string) ent { return dirE(strings.TrimPrefix(h, "/") + "/") }

func TestApplyEscapes(t *testing.T) {
	requireRoot(t)
	cases := []escapeCase{
		{name: "dotdot", want: refused, ents: func(string) []ent { return []ent{reg("../host/pwned", "x")} }},
		{name: "dotdot inside", want: refused, ents: func(string) []ent { return []ent{reg("a/../../host/pwned", "x")} }},
		{name: "dotdot dir", want: refused, ents: func(string) []ent { return []ent{dirE("../host/newdir/")} }},
		{name: "dotdot symlink name", want: refused, ents: func(string) []ent { return []ent{sym("../host/l", "/")} }},
		{name: "absolute", want: inside, where: "host-abs/pwned", ents: func(string) []ent { return []ent{reg("/host-abs/pwned", "x")} }},
		{name: "absolute with dotdot", want: inside, where: "etc/pwned", ents: func(string) []ent { return []ent{reg("/../../etc/pwned", "x")} }},
		{name: "symlink parent absolute", want: inside, where: "HOST/new", ents: func(h string) []ent {
			return []ent{mirror(h), sym("link", h), reg("link/secret", "pwned"), reg("link/new", "pwned")}
		}},
		{name: "symlink parent absolute dangling", want: failed, ents: func(h string) []ent {
			return []ent{sym("link", h), reg("link/secret", "pwned")}
		}},
		{name: "symlink parent relative", want: inside, where: "host/new", ents: func(string) []ent {
			return []ent{dirE("host/"), sym("link", "../../../../../../host"), reg("link/new", "pwned")}
		}},
		{name: "symlink parent relative dangling", want: failed, ents: func(string) []ent {
			return []ent{sym("link", "../../../../../../host"), reg("link/new", "pwned")}
		}},
		{name: "symlink chain", want: inside, where: "HOST/new", ents: func(h string) []ent {
			return []ent{mirror(h), sym("a", "b"), sym("b", "c/d"), dirE("c/"), sym("c/d", h), reg("a/new", "pwned")}
		}},
		{name: "symlink to parent dir", want: inside, where: "new", ents: func(string) []ent {
			return []ent{sym("up", ".."), reg("up/up/up/new", "pwned")}
		}},
		{name: "symlink dotdot chain", want: inside, where: "host/new", ents: func(string) []ent {
			return []ent{dirE("a/"), dirE("host/"), sym("a/b", "../../.."), reg("a/b/host/new", "x")}
		}},
		{name: "symlink to host file as parent", want: failed, ents: func(h string) []ent {
			return []ent{sym("l", h+"/secret"), reg("l/x", "pwned")}
		}},
		{name: "dir replaced by symlink then written under", want: inside, where: "HOST/new", ents: func(h string) []ent {
			return []ent{mirror(h), dirE("d/"), reg("d/f", "1"), sym("d", h), reg("d/new", "pwned"), dirE("d/sub/")}
		}},
		{name: "dir replaced by symlink then written under dangling", want: failed, ents: func(h string) []ent {
			return []ent{dirE("d/"), reg("d/f", "1"), sym("d", h), reg("d/new", "pwned")}
		}},
		{name: "hardlink dotdot", want: refused, ents: func(string) []ent { return []ent{hard("h", "../host/secret")} }},
		{name: "hardlink absolute host path", want: failed, ents: func(h string) []ent { return []ent{hard("h", h+"/secret")} }},
		{name: "hardlink via symlink dir", want: failed, ents: func(h string) []ent {
			return []ent{sym("l", h), hard("h", "l/secret")}
		}},
		{name: "hardlink to symlink pointing outside", want: inside, where: "h", ents: func(h string) []ent {
			return []ent{sym("s", h+"/secret"), hard("h", "s"), reg("s", "overwrite"), reg("h2", "x")}
		}},
		{name: "write over hardlinked symlink", want: inside, where: "h", ents: func(h string) []ent {
			return []ent{sym("s", h+"/secret"), hard("h", "s"), reg("h", "overwrite")}
		}},
		{name: "hardlink to root", want: refused, ents: func(string) []ent { return []ent{hard("h", "/")} }},
		{name: "hardlink to dir", want: refused, ents: func(string) []ent { return []ent{dirE("d/"), hard("h", "d")} }},
		{name: "hardlink to itself", want: refused, ents: func(string) []ent { return []ent{reg("f", "x"), hard("f", "f")} }},
		{name: "file over symlink to host", want: inside, where: "s", ents: func(h string) []ent {
			return []ent{sym("s", h+"/secret"), reg("s", "overwrite")}
		}},
		{name: "dir over symlink to host", want: inside, where: "s/secret", ents: func(h string) []ent {
			return []ent{sym("s", h), dirE("s/"), reg("s/secret", "overwrite")}
		}},
		{name: "proc magic link", want: failed, ents: func(string) []ent {
			return []ent{sym("p", "/proc/self/root"), reg("p/new", "pwned")}
		}},
		{name: "proc magic link mirrored", want: inside, where: "proc/self/root/new", ents: func(string) []ent {
			return []ent{dirE("proc/self/root/"), sym("p", "/proc/self/root"), reg("p/new", "pwned")}
		}},
		{name: "proc cwd link", want: failed, ents: func(string) []ent {
			return []ent{sym("p", "/proc/self/cwd"), reg("p/new", "pwned")}
		}},
		{name: "device through symlink", want: refused, ents: func(string) []ent {
			return []ent{dirE("real/"), sym("l", "real"), chr("l/null", 1, 3)}
		}},
		{name: "device through symlink to host", want: refused, ents: func(h string) []ent {
			return []ent{mirror(h), sym("l", h), chr("l/null", 1, 3)}
		}},
		{name: "whiteout through symlink", want: inside, where: "HOST/secret", ents: func(h string) []ent {
			return []ent{mirror(h), sym("l", h), wh("l/.wh.secret")}
		}},
		{name: "opaque through symlink", want: either, ents: func(h string) []ent {
			return []ent{sym("l", h), wh("l/.wh..wh..opq")}
		}},
		{name: "whiteout dotdot", want: refused, ents: func(string) []ent { return []ent{wh(".wh..")} }},
		{name: "long component", want: refused, ents: func(string) []ent { return []ent{reg(strings.Repeat("a", 300), "x")} }},
		{name: "long path", want: refused, ents: func(string) []ent { return []ent{reg(strings.Repeat("abcdefgh/", 460)+"f", "x")} }},
		{name: "root as file", want: refused, ents: func(string) []ent { return []ent{reg(".", "x")} }},
		{name: "root as symlink", want: refused, ents: func(h string) []ent { return []ent{sym("/", h)} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			host := filepath.Join(base, "host")
			dir := filepath.Join(base, "layer")
			if err := os.MkdirAll(filepath.Join(host, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(host, "secret"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			before := treeState(t, host)
			baseBefore, _ := os.ReadDir(base)
			_, err := applyBytes(t, dir, buildTar(t, tc.ents(host)...))
			if d := diffStates(before, treeState(t, host)); d != "" {
				t.Fatalf("HOST CHANGED:\n%s", d)
			}
			if baseAfter, _ := os.ReadDir(base); len(baseAfter) != len(baseBefore) {
				t.Fatalf("entries appeared next to the layer: %v", baseAfter)
			}
			switch tc.want {
			case refused:
				if !errors.Is(err, ErrUnsafeEntry) || !errdefs.Is(err, errdefs.InvalidArgument) {
					t.Fatalf("want an unsafe-entry refusal, got %v", err)
				}
			case failed:
				if err == nil {
					t.Fatal("want an error")
				}
				if !strings.Contains(err.Error(), "layer entry") {
					t.Errorf("error does not name the entry: %v", err)
				}
			case inside:
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
				where := strings.ReplaceAll(tc.where, "HOST", strings.TrimPrefix(host, "/"))
				if _, err := os.Lstat(filepath.Join(dir, where)); err != nil {
					t.Errorf("expected the write inside the layer at %s: %v", where, err)
				}
			}
			t.Logf("result: %v", err)
		})
	}
}

// TestApplyNoCrossMount: a mount point inside the target is never crossed.
func TestApplyNoCrossMount(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	host, dir := filepath.Join(base, "host"), filepath.Join(base, "layer")
	for _, d := range []string{host, filepath.Join(dir, "mnt")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(host, filepath.Join(dir, "mnt"), "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(dir, "mnt"), unix.MNT_DETACH) })
	_, err := applyBytes(t, dir, buildTar(t, reg("mnt/pwned", "x")))
	if !errors.Is(err, ErrUnsafeEntry) {
		t.Fatalf("want refusal, got %v", err)
	}
	if _, err := os.Lstat(filepath.Join(host, "pwned")); err == nil {
		t.Fatal("wrote through a mount point")
	}
}

func TestApplyBadNames(t *testing.T) {
	requireRoot(t)
	// archive/tar refuses to write a NUL in a name, so build the PAX
	// record by hand; either the reader or Apply must refuse it.
	var buf bytes.Buffer
	rec := "path=a\x00b\n"
	rec = strings.Repeat("x", 0) + itoa(len(rec)+3) + " " + rec
	buf.Write(rawHeader("PaxHeaders/x", 'x', len(rec)))
	buf.WriteString(rec)
	buf.Write(make([]byte, 512-len(rec)%512))
	buf.Write(rawHeader("placeholder", '0', 0))
	buf.Write(make([]byte, 1024))
	dir := t.TempDir()
	if _, err := applyBytes(t, dir, buf.Bytes()); err == nil {
		t.Fatal("NUL in a name accepted")
	}
	if n, _ := os.ReadDir(dir); len(n) != 0 {
		t.Fatalf("created %v", n)
	}
	if _, err := cleanName("a\x00b"); err == nil {
		t.Fatalf("cleanName NUL: %v", err)
	}
	for in, want := range map[string]string{"/a/b": "a/b", "./a//b/": "a/b", "a/../b": "b", "/": ".", "/../x": "x"} {
		if got, err := cleanName(in); err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// rawHeader builds a USTAR header block by hand.
func rawHeader(name string, typ byte, size int) []byte {
	b := make([]byte, 512)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], []byte(octal(size, 11)+"\x00"))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], octal(sum, 6)+"\x00 ")
	return b
}

func octal(n, width int) string {
	s := ""
	for ; n > 0; n /= 8 {
		s = string(rune('0'+n%8)) + s
	}
	for len(s) < width {
		s = "0" + s
	}
	return s
}

func TestApplyCorrupt(t *testing.T) {
	requireRoot(t)
	good := buildTar(t, dirE("a/"), reg("a/f", strings.Repeat("z", 5000)), reg("b", "b"))
	cases := map[string][]byte{
		"truncated in content": good[:512*3],
		"truncated in header":  good[:512+100],
		"garbage":              bytes.Repeat([]byte("not a tar "), 100),
		"bad checksum":         func() []byte { b := bytes.Clone(good); b[0] ^= 0xff; return b }(),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := applyBytes(t, t.TempDir(), data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Errorf("class %v: %v", errdefs.ClassOf(err), err)
			}
			t.Log(err)
		})
	}
}

func TestApplyCanceled(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(buildTar(t, reg("f", "x"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestApplyCompressed(t *testing.T) {
	requireRoot(t)
	data := buildTar(t, dirE("a/"), reg("a/f", strings.Repeat("compress me ", 300000)))
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var blob bytes.Buffer
			w := Compress(&blob, c, 0)
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			rc, got, err := DecompressStream(bytes.NewReader(blob.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got != c {
				t.Fatalf("detected %v", got)
			}
			res, err := Apply(context.Background(), t.TempDir(), rc, ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.DiffID != digest.FromBytes(data) || res.Size != int64(len(data)) {
				t.Errorf("diffID %s", res.DiffID)
			}
			if res.CompressedDigest != digest.FromBytes(blob.Bytes()) || res.CompressedSize != int64(blob.Len()) || res.Compression != c {
				t.Errorf("compressed %s %d %v", res.CompressedDigest, res.CompressedSize, res.Compression)
			}
		})
	}
}

func TestApplyCorruptCompressed(t *testing.T) {
	requireRoot(t)
	data := buildTar(t, reg("f", strings.Repeat("0123456789abcdef", 100000)))
	for _, c := range []Compression{Gzip, Zstd} {
		var blob bytes.Buffer
		w := Compress(&blob, c, 0)
		w.Write(data)
		w.Close()
		b := blob.Bytes()
		flipped := bytes.Clone(b)
		flipped[len(b)/2] ^= 0x55
		for name, in := range map[string][]byte{"truncated": b[:len(b)/2], "flipped": flipped, "no trailer": b[:len(b)-4]} {
			t.Run(c.String()+" "+name, func(t *testing.T) {
				rc, _, err := DecompressStream(bytes.NewReader(in))
				if err == nil {
					defer rc.Close()
					_, err = Apply(context.Background(), t.TempDir(), rc, ApplyOptions{})
				}
				if err == nil {
					t.Fatal("accepted")
				}
				if !errdefs.Is(err, errdefs.InvalidArgument) {
					t.Errorf("class %v: %v", errdefs.ClassOf(err), err)
				}
			})
		}
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want Compression
	}{
		{[]byte{0x1f, 0x8b, 8}, Gzip},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, Zstd},
		{[]byte("ustar"), Uncompressed},
		{nil, Uncompressed},
		{[]byte{0x1f}, Uncompressed},
	} {
		if got := Detect(tc.in); got != tc.want {
			t.Errorf("Detect(%x) = %v", tc.in, got)
		}
		rc, got, err := DecompressStream(bytes.NewReader(tc.in))
		if tc.want == Uncompressed && (err != nil || got != Uncompressed) {
			t.Errorf("DecompressStream(%x): %v %v", tc.in, got, err)
		}
		if rc != nil {
			rc.Close()
		}
	}
}

func TestStreamDigestWithoutApply(t *testing.T) {
	blob := []byte("plain bytes")
	rc, _, err := DecompressStream(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	d, n, err := rc.(CompressedDigester).CompressedDigest()
	if err != nil || d != digest.FromBytes(blob) || n != int64(len(blob)) {
		t.Fatalf("%s %d %v", d, n, err)
	}
	_ = sha256.New
}

func TestApplyNoSameOwnerAndRefusedXattr(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	f := reg("f", "x")
	f.hdr.Uid, f.hdr.Gid = 1234, 5678
	ro := dirE("ro/")
	ro.hdr.Mode = 0o500
	link := sym("l", "f")
	link.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.onlink": "v"} // the kernel refuses user.* on symlinks
	res, err := Apply(context.Background(), dir, bytes.NewReader(buildTar(t, f, ro, reg("ro/inner", "i"), link)), ApplyOptions{NoSameOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(dir, "f")); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("owner %d:%d with NoSameOwner", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(dir, "ro")); st.Mode&0o7777 != 0o500 {
		t.Errorf("late directory mode %o", st.Mode&0o7777)
	}
	if len(res.SkippedXattrs) != 1 || res.SkippedXattrs[0].Key != "user.onlink" || res.SkippedXattrs[0].Path != "l" {
		t.Errorf("skipped %+v", res.SkippedXattrs)
	}
}
