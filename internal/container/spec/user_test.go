//go:build linux

package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestResolveUser(t *testing.T) {
	root := fakeRootfs(t, alpinePasswd, alpineGroup)
	tests := []struct {
		user     string
		groupAdd []string
		uid, gid uint32
		gids     []uint32
		err      string
	}{
		{user: "", uid: 0, gid: 0, gids: []uint32{0, 1, 2, 10, 27}},
		{user: "root", uid: 0, gid: 0, gids: []uint32{0, 1, 2, 10, 27}},
		{user: "0", uid: 0, gid: 0, gids: []uint32{0, 1, 2, 10, 27}},
		{user: "app", uid: 1000, gid: 1000, gids: []uint32{1000, 10, 18}},
		{user: "1000", uid: 1000, gid: 1000, gids: []uint32{1000, 10, 18}},
		{user: "app:audio", uid: 1000, gid: 18, gids: []uint32{18}},
		{user: "app:27", uid: 1000, gid: 27, gids: []uint32{27}},
		{user: "app:5555", uid: 1000, gid: 5555, gids: []uint32{5555}},
		{user: "4242", uid: 4242, gid: 0, gids: []uint32{0}},
		{user: "4242:4242", uid: 4242, gid: 4242, gids: []uint32{4242}},
		{user: "nobody", uid: 65534, gid: 65534, gids: []uint32{65534}},
		{user: "app", groupAdd: []string{"video", "1234", "audio", "wheel"}, uid: 1000, gid: 1000, gids: []uint32{1000, 10, 18, 27, 1234}},
		{user: "xyz", err: "unable to find user xyz: no matching entries in passwd file"},
		{user: "app:nogrp", err: "unable to find group nogrp: no matching entries in group file"},
		{user: "app", groupAdd: []string{"nogrp"}, err: "unable to find group nogrp: no matching entries in group file"},
		{user: "-1", err: "uids and gids must be in range"},
		{user: "app:99999999999", err: "uids and gids must be in range"},
	}
	for _, tc := range tests {
		t.Run(tc.user+"+"+strings.Join(tc.groupAdd, ","), func(t *testing.T) {
			u, err := resolveUser(root, tc.user, tc.groupAdd)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.Is(err, errdefs.InvalidArgument) {
					t.Fatalf("err = %v, want invalid argument containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.UID != tc.uid || u.GID != tc.gid || !reflect.DeepEqual(u.AdditionalGids, tc.gids) {
				t.Errorf("got %d:%d %v, want %d:%d %v", u.UID, u.GID, u.AdditionalGids, tc.uid, tc.gid, tc.gids)
			}
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	root := t.TempDir() // no /etc at all: numeric ids work, names do not
	u, err := resolveUser(root, "1000:1000", []string{"50"})
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1000 || u.GID != 1000 || !reflect.DeepEqual(u.AdditionalGids, []uint32{1000, 50}) {
		t.Errorf("got %+v", u)
	}
	if _, err := resolveUser(root, "app", nil); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("name without passwd: err = %v", err)
	}
	u, err = resolveUser("", "", nil)
	if err != nil || u.UID != 0 || u.GID != 0 {
		t.Errorf("no rootfs: %+v, %v", u, err)
	}
}

// TestResolveUserStaysInRoot makes the image's /etc/passwd and /etc/group
// symlinks to host files, absolute and relative: they must resolve inside
// the container root, never to the host's files.
func TestResolveUserStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	hostPasswd := filepath.Join(outside, "passwd")
	if err := os.WriteFile(hostPasswd, []byte("hostuser:x:4321:4321::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{hostPasswd, "../../../../../../../../" + strings.TrimPrefix(hostPasswd, "/")} {
		link := filepath.Join(root, "etc", "passwd")
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if u, err := resolveUser(root, "hostuser", nil); err == nil {
			t.Errorf("symlink to %s: resolved the host's user: %+v", target, u)
		}
	}

	// A FIFO where /etc/group should be must not block.
	os.Remove(filepath.Join(root, "etc", "passwd"))
	if err := syscall.Mkfifo(filepath.Join(root, "etc", "group"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveUser(root, "", nil); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("fifo group file: err = %v, want invalid argument", err)
	}
}
