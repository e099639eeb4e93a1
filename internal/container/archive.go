package container

import (
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// cpPath is a path given to the archive API (docker cp), read with
// Docker's rules: it is absolute inside the container; a trailing "/"
// or "/." is kept, and means the last element is followed (it must be a
// directory) instead of being taken as it is (a symlink as the last
// element is then the symlink itself).
type cpPath struct {
	// abs is the cleaned absolute path with a trailing "/" or "/." kept.
	abs string
	// dir is the parent to resolve: clean and relative to the root ("."
	// for the root).
	dir string
	// base is the last element, looked up in dir without following it;
	// "" when follow is set.
	base string
	// follow is set when the path ends in "/", "/." or is the root: dir
	// is then the whole path, followed.
	follow bool
	// name is Docker's PathStat.Name: the last element of abs ("/" for
	// the root, "." for "x/.").
	name string
}

// parseCpPath reads p as Docker's archive endpoints do.
func parseCpPath(p string) (cpPath, error) {
	if p == "" {
		return cpPath{}, errdefs.Newf(errdefs.InvalidArgument, "path cannot be empty")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return cpPath{}, errdefs.Newf(errdefs.InvalidArgument, "path contains a NUL byte")
	}
	abs := path.Clean("/" + p)
	switch {
	case path.Base(p) == "." && path.Base(abs) != ".":
		if !strings.HasSuffix(abs, "/") {
			abs += "/"
		}
		abs += "."
	case strings.HasSuffix(p, "/") && !strings.HasSuffix(abs, "/"):
		abs += "/"
	}
	cp := cpPath{abs: abs, name: path.Base(abs)}
	parent, base := abs[:strings.LastIndexByte(abs, '/')+1], abs[strings.LastIndexByte(abs, '/')+1:]
	cp.dir = rel(parent)
	if base == "" || base == "." {
		cp.follow = true
	} else {
		cp.base = base
	}
	return cp, nil
}

// full is the whole path, relative to the root ("." for the root).
func (p cpPath) full() string {
	if p.follow {
		return p.dir
	}
	if p.dir == "." {
		return p.base
	}
	return p.dir + "/" + p.base
}

// rel turns an absolute container path into a clean relative one.
func rel(abs string) string {
	r := strings.TrimLeft(path.Clean("/"+abs), "/")
	if r == "" {
		return "."
	}
	return r
}

// archiveName is the name the top entry of a GET archive gets: the last
// element of the path asked for (not of where symlinks led); "." for
// "dir/." (entries are then "./...") and "/" for the root (entries
// "/bin"...), as dockerd names them and the docker CLI rebases them.
func (p cpPath) archiveName() string { return p.name }

// fileNotFound is Docker's error for a missing path.
func fileNotFound(p, container string) error {
	return errdefs.Newf(errdefs.NotFound, "Could not find the file %s in container %s", p, container)
}
