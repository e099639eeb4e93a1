package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Path resolution inside a container root. Every lookup is one openat2(2)
// with RESOLVE_IN_ROOT: the kernel resolves "..", absolute symlinks and
// relative ones as if root were "/", so a path from the image can never
// name a host file, with no check-then-use race. Magic links (/proc/*/fd)
// are refused outright.

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens path inside root with flags (O_CLOEXEC is added).
func openInRoot(root *os.File, path string, flags int) (*os.File, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot}
	for {
		fd, err := unix.Openat2(int(root.Fd()), path, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// mkdirAllInRoot creates path inside root like mkdir -p and returns an
// O_PATH handle to it. Symlinks on the way are followed inside the root; a
// dangling one is resolved lexically (as runc does) and the directory it
// names is created inside the root.
func mkdirAllInRoot(root *os.File, rootPath, path string, mode uint32) (*os.File, error) {
	path = filepath.Clean("/" + path)
	if h, err := openInRoot(root, path, unix.O_PATH|unix.O_DIRECTORY); err == nil {
		return h, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, err
	}
	h, err := mkdirWalk(root, path, mode)
	if err == nil || !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOENT) {
		return h, err
	}
	// A dangling symlink: resolve it lexically inside the root and retry on
	// the resolved path, which has no symlinks left.
	resolved, jerr := securejoin.SecureJoin(rootPath, path)
	if jerr != nil {
		return nil, err
	}
	rel := "/" + strings.TrimPrefix(strings.TrimPrefix(resolved, rootPath), "/")
	return mkdirWalk(root, rel, mode)
}

// mkdirWalk creates each missing component of path, opening every parent
// through the root.
func mkdirWalk(root *os.File, path string, mode uint32) (*os.File, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	cur := "/"
	for _, p := range parts {
		if p == "" {
			continue
		}
		next := filepath.Join(cur, p)
		h, err := openInRoot(root, next, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			h.Close()
			cur = next
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return nil, err
		}
		parent, err := openInRoot(root, cur, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return nil, err
		}
		err = unix.Mkdirat(int(parent.Fd()), p, mode)
		parent.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("mkdir %s: %w", next, err)
		}
		cur = next
	}
	return openInRoot(root, path, unix.O_PATH|unix.O_DIRECTORY)
}
