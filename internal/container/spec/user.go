//go:build linux

package spec

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxID is the largest uid or gid accepted, as runc's user package does.
const maxID = math.MaxInt32

type passwdEntry struct {
	name string
	uid  int
	gid  int
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// openInRoot opens path inside rootfs without ever leaving it, whatever
// symlinks the image contains (openat2 RESOLVE_IN_ROOT, or pathrs-lite's
// checked fallback). A missing file is (nil, nil).
func openInRoot(rootfs, path string) (*os.File, error) {
	if rootfs == "" {
		return nil, nil
	}
	h, err := pathrs.OpenInRoot(rootfs, path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, errdefs.With(errdefs.Internal, err)
	}
	defer h.Close()
	// The handle is O_PATH: check it is a regular file before opening it
	// for reading (a FIFO planted by the image would block the daemon).
	fi, err := h.Stat()
	if err != nil {
		return nil, errdefs.With(errdefs.Internal, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "%s in the container is not a regular file", path)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return nil, errdefs.With(errdefs.Internal, err)
	}
	return f, nil
}

// readColonFile parses a passwd/group style file: one entry per line,
// fields separated by colons, comments and blank lines skipped.
func readColonFile(rootfs, path string) ([][]string, error) {
	f, err := openInRoot(rootfs, path)
	if err != nil || f == nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, errdefs.Newf(errdefs.Internal, "reading %s in the container: %w", path, err)
	}
	return out, nil
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	lines, err := readColonFile(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []passwdEntry
	for _, l := range lines {
		if len(l) < 4 {
			continue
		}
		uid, err1 := strconv.Atoi(l[2])
		gid, err2 := strconv.Atoi(l[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: l[0], uid: uid, gid: gid})
	}
	return out, nil
}

func readGroup(rootfs string) ([]groupEntry, error) {
	lines, err := readColonFile(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, l := range lines {
		if len(l) < 3 {
			continue
		}
		gid, err := strconv.Atoi(l[2])
		if err != nil {
			continue
		}
		g := groupEntry{name: l[0], gid: gid}
		if len(l) > 3 && l[3] != "" {
			for _, m := range strings.Split(l[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.members = append(g.members, m)
				}
			}
		}
		out = append(out, g)
	}
	return out, nil
}

func parseID(s string) (int, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

func rangeErr() error {
	return errdefs.Newf(errdefs.InvalidArgument, "uids and gids must be in range 0-%d", maxID)
}

// resolveUser resolves Docker's --user ("", "uid", "name", "uid:gid",
// "name:group", ...) against the container's /etc/passwd and /etc/group
// with runc's rules, then adds --group-add. The result has the primary
// gid first in AdditionalGids, then the user's supplementary groups (only
// when no group was given explicitly), then the added groups, as dockerd
// builds it.
func resolveUser(rootfs, spec string, groupAdd []string) (specs.User, error) {
	var u specs.User
	users, err := readPasswd(rootfs)
	if err != nil {
		return u, err
	}
	groups, err := readGroup(rootfs)
	if err != nil {
		return u, err
	}

	userArg, groupArg, _ := strings.Cut(spec, ":")
	uid, gid := 0, 0
	uidArg, uidNumeric := parseID(userArg)

	var matched *passwdEntry
	for i := range users {
		e := &users[i]
		switch {
		case userArg == "":
			if e.uid == 0 {
				matched = e
			}
		case uidNumeric:
			if e.uid == uidArg {
				matched = e
			}
		default:
			if e.name == userArg {
				matched = e
			}
		}
		if matched != nil {
			break
		}
	}
	switch {
	case matched != nil:
		uid, gid = matched.uid, matched.gid
	case userArg != "":
		if !uidNumeric {
			return u, errdefs.Newf(errdefs.InvalidArgument, "unable to find user %s: no matching entries in passwd file", userArg)
		}
		uid = uidArg
		if uid < 0 || uid > maxID {
			return u, rangeErr()
		}
	}

	var sgids []int
	if groupArg != "" {
		gidArg, gidNumeric := parseID(groupArg)
		found := false
		for _, g := range groups {
			if (gidNumeric && g.gid == gidArg) || g.name == groupArg {
				gid, found = g.gid, true
				break
			}
		}
		if !found {
			if !gidNumeric {
				return u, errdefs.Newf(errdefs.InvalidArgument, "unable to find group %s: no matching entries in group file", groupArg)
			}
			gid = gidArg
			if gid < 0 || gid > maxID {
				return u, rangeErr()
			}
		}
	} else if matched != nil {
		for _, g := range groups {
			for _, m := range g.members {
				if m == matched.name {
					sgids = append(sgids, g.gid)
					break
				}
			}
		}
	}

	added, err := additionalGroups(groupAdd, groups)
	if err != nil {
		return u, err
	}
	u.UID, u.GID = uint32(uid), uint32(gid)
	// The primary group first, then the others, each once.
	u.AdditionalGids = []uint32{uint32(gid)}
	for _, g := range append(sgids, added...) {
		if !slices.Contains(u.AdditionalGids, uint32(g)) {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}

// additionalGroups resolves --group-add entries (names or numbers) the way
// runc's GetAdditionalGroups does, deduplicated, in the order given.
func additionalGroups(add []string, groups []groupEntry) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, ag := range add {
		gid, ok := -1, false
		for _, g := range groups {
			if g.name == ag || strconv.Itoa(g.gid) == ag {
				gid, ok = g.gid, true
				break
			}
		}
		if !ok {
			n, numeric := parseID(ag)
			if !numeric {
				return nil, errdefs.Newf(errdefs.InvalidArgument, "unable to find group %s: no matching entries in group file", ag)
			}
			if n < 0 || n > maxID {
				return nil, rangeErr()
			}
			gid = n
		}
		if !seen[gid] {
			seen[gid] = true
			out = append(out, gid)
		}
	}
	return out, nil
}
