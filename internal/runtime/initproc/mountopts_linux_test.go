package initproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	for _, tc := range []struct {
		opts           []string
		flags, clear   uintptr
		data           string
		bind, rec      bool
		nprop          int
		recSet, recClr uint64
		wantErr        string
	}{
		{opts: []string{"nosuid", "noexec", "nodev", "ro"}, flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY},
		{opts: []string{"ro", "rw"}, clear: unix.MS_RDONLY},
		{opts: []string{"rbind", "rprivate", "size=10m", "mode=755"}, bind: true, rec: true, nprop: 1, data: "size=10m,mode=755"},
		{opts: []string{"bind", "rro", "rnosuid", "rexec"}, bind: true, recSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID, recClr: unix.MOUNT_ATTR_NOEXEC},
		{opts: []string{"idmap"}, wantErr: "id-mapped"},
		{opts: []string{"tmpcopyup"}, wantErr: "not supported"},
	} {
		o, err := parseMountOptions(tc.opts)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want %q", tc.opts, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.opts, err)
		}
		if o.flags != tc.flags || o.clear != tc.clear || o.dataString() != tc.data || o.bind != tc.bind || o.recursive != tc.rec ||
			len(o.propagate) != tc.nprop || o.recAttrSet != tc.recSet || o.recAttrClr != tc.recClr {
			t.Errorf("%v: got %+v", tc.opts, o)
		}
	}
	if _, err := parsePropagation("bogus"); err == nil {
		t.Error("bad rootfsPropagation accepted")
	}
}

// Lookups inside a root can never leave it, whatever the image's symlinks.
func TestResolveStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink(outside, filepath.Join(root, "abs"))
	os.Symlink("../../../../../../"+outside, filepath.Join(root, "rel"))
	os.Symlink("/proc/self/root"+outside, filepath.Join(root, "magic"))
	rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	for _, p := range []string{"/abs/secret", "/rel/secret", "../../../" + outside + "/secret", "/magic/secret"} {
		if f, err := openInRoot(rf, p, unix.O_RDONLY); err == nil {
			f.Close()
			t.Errorf("%s resolved to a host file", p)
		}
	}
	// mkdir through the absolute and relative links creates inside the root.
	for _, p := range []string{"/abs/made", "/rel/made2"} {
		h, err := mkdirAllInRoot(rf, root, p, 0o755)
		if err != nil {
			t.Fatalf("mkdir %s: %v", p, err)
		}
		h.Close()
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Fatalf("host directory changed: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root, outside, "made")); err != nil {
		t.Fatalf("directory not created inside the root: %v", err)
	}
}
