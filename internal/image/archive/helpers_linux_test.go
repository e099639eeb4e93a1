package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry of a test layer.
type ent struct {
	hdr  tar.Header
	body string
}

var t0 = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func reg(name, body string) ent {
	return ent{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: t0}, body}
}
func dirE(name string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t0}}
}
func sym(name, target string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: t0}}
}
func hard(name, target string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: t0}}
}
func chr(name string, major, minor int64) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: t0}}
}
func wh(name string) ent { return reg(name, "") }

func buildTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func applyBytes(t testing.TB, dir string, data []byte) (ApplyResult, error) {
	t.Helper()
	return Apply(context.Background(), dir, bytes.NewReader(data), ApplyOptions{})
}

func mustApply(t testing.TB, dir string, ents ...ent) ApplyResult {
	t.Helper()
	res, err := applyBytes(t, dir, buildTar(t, ents...))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// requireRoot skips tests that need CAP_SYS_ADMIN / CAP_MKNOD.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// treeState describes every entry below dir, for before/after comparisons.
func treeState(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		kind := st.Mode & unix.S_IFMT
		// (Not for a directory, whose mtime its entries change, nor an
		// overlay whiteout, a 0:0 character device: a layer's ".wh." entry
		// carries no time of its own, and applying one makes the node
		// anew, so its mtime is that of the apply.)
		if whiteout := kind == unix.S_IFCHR && st.Rdev == 0; kind != unix.S_IFDIR && !whiteout {
			desc += fmt.Sprintf(" mtime=%d", st.Mtim.Sec)
		}
		switch kind {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					desc += " link=" + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFDIR:
			if rel != "." {
				desc += fmt.Sprintf(" mtime=%d", st.Mtim.Sec)
			}
		}
		keys, _ := listXattrs(-1, p)
		slices.Sort(keys)
		for _, k := range keys {
			if strings.HasPrefix(k, "security.selinux") {
				continue
			}
			v, _ := getXattr(-1, p, k)
			desc += fmt.Sprintf(" %s=%q", k, v)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffStates(a, b map[string]string) string {
	var lines []string
	for k, v := range a {
		if b[k] != v {
			lines = append(lines, fmt.Sprintf("%s:\n\t- %s\n\t+ %s", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			lines = append(lines, fmt.Sprintf("%s:\n\t- (none)\n\t+ %s", k, v))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func xattr(p, key string) string {
	v, err := getXattr(-1, p, key)
	if err != nil {
		return ""
	}
	return string(v)
}
