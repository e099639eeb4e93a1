package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
)

const (
	// cgroupRoot is where the cgroup hierarchies are mounted: the tmpfs
	// holding one directory per v1 hierarchy, or the v2 mount itself.
	cgroupRoot = "/sys/fs/cgroup"
	// hybridUnifiedRoot is the mount point of the v2 hierarchy on a hybrid
	// host (the same place the library and systemd use).
	hybridUnifiedRoot = cgroupRoot + "/unified"
	// defaultParent is the parent of every container cgroup when the bundle
	// gives no cgroupsPath.
	defaultParent = "/berth"
)

// innerPath turns the OCI cgroupsPath (plus the container ID for the default)
// into a cleaned path. Absolute results are relative to each hierarchy's root;
// relative ones to the runtime's own cgroup in that hierarchy.
func innerPath(cgroupsPath, containerID string) (string, error) {
	if cgroupsPath == "" {
		if err := checkContainerID(containerID); err != nil {
			return "", err
		}
		return defaultParent + "/" + containerID, nil
	}
	if strings.ContainsRune(cgroupsPath, 0) {
		return "", fmt.Errorf("cgroup: cgroupsPath %q contains a NUL byte", cgroupsPath)
	}
	if looksLikeSystemd(cgroupsPath) {
		return "", fmt.Errorf("cgroup: cgroupsPath %q is in the systemd \"slice:prefix:name\" form, "+
			"but berth only supports the cgroupfs driver; use a path such as \"/berth/<id>\" instead", cgroupsPath)
	}
	if filepath.IsAbs(cgroupsPath) {
		p := filepath.Clean(cgroupsPath)
		if p == "/" {
			return "", fmt.Errorf("cgroup: cgroupsPath %q names the root cgroup, which cannot be managed per container", cgroupsPath)
		}
		return p, nil
	}
	// Clean a relative path as if it were rooted, so "../../x" cannot climb
	// above the runtime's own cgroup, then make it relative again.
	p := strings.TrimPrefix(filepath.Clean("/"+cgroupsPath), "/")
	if p == "" {
		return "", fmt.Errorf("cgroup: relative cgroupsPath %q names no cgroup below the runtime's own", cgroupsPath)
	}
	return p, nil
}

// looksLikeSystemd reports whether p has the systemd driver's
// "slice:prefix:name" shape.
func looksLikeSystemd(p string) bool {
	if filepath.IsAbs(p) {
		return false
	}
	return strings.Count(p, ":") == 2
}

func checkContainerID(id string) error {
	switch {
	case id == "":
		return errors.New("cgroup: empty container ID and no cgroupsPath given")
	case id == "." || id == "..", strings.ContainsAny(id, "/\x00"):
		return fmt.Errorf("cgroup: container ID %q cannot be used as a cgroup name", id)
	}
	return nil
}

// ownUnifiedCgroup returns the runtime's own cgroup in the v2 hierarchy (the
// "0::" line of /proc/self/cgroup).
func ownUnifiedCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if p, ok := strings.CutPrefix(s.Text(), "0::"); ok {
			return p, nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", errors.New("cgroup: no cgroup v2 entry in /proc/self/cgroup")
}

// unifiedDir resolves inner against a v2 hierarchy mounted at root.
//
// A relative path is placed below the parent of the runtime's own cgroup
// rather than the cgroup itself: the runtime's cgroup holds processes, and
// the v2 "no internal processes" rule forbids enabling domain controllers
// for children of such a cgroup. When the runtime sits in the root cgroup
// the root is used.
func unifiedDir(root, inner string) (string, error) {
	if filepath.IsAbs(inner) {
		return filepath.Join(root, inner), nil
	}
	own, err := ownUnifiedCgroup()
	if err != nil {
		return "", err
	}
	// Inside a cgroup namespace or a container the path may be
	// "/../something"; clean it and never go above the mount.
	own = filepath.Clean("/" + own)
	if own != "/" {
		own = filepath.Dir(own)
	}
	return filepath.Join(root, own, inner), nil
}

// checkDirUnder makes sure dir is a clean absolute path strictly below root.
func checkDirUnder(root, dir string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return fmt.Errorf("cgroup: %q is not a clean absolute path", dir)
	}
	if !strings.HasPrefix(dir, root+"/") {
		return fmt.Errorf("cgroup: %q is not below %s", dir, root)
	}
	return nil
}

// createUnified creates dir (and missing parents) in the v2 hierarchy
// mounted at root, delegating every controller available at each level to
// the level below, then moves pid into dir (pid -1: create only).
//
// Failures to delegate a controller are tolerated here: the hierarchy may be
// shared with other managers (e.g. systemd) and a missing controller surfaces
// later, as a clear error from Set, only if a limit actually needs it.
func createUnified(root, dir string, pid int) error {
	if err := checkDirUnder(root, dir); err != nil {
		return err
	}
	rel := strings.TrimPrefix(dir, root+"/")
	current := root
	for _, elem := range strings.Split(rel, "/") {
		enableControllers(current)
		current = filepath.Join(current, elem)
		if err := os.Mkdir(current, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroup: create %s: %w", current, err)
		}
	}
	if pid == -1 {
		return nil
	}
	if err := cgroups.WriteCgroupProc(dir, pid); err != nil {
		return fmt.Errorf("cgroup: move pid %d into %s: %w", pid, dir, err)
	}
	return nil
}

// enableControllers writes "+ctrl" to dir's cgroup.subtree_control for every
// controller listed in dir's cgroup.controllers that is not yet enabled.
func enableControllers(dir string) {
	avail, err := cgroups.ReadFile(dir, "cgroup.controllers")
	if err != nil {
		return
	}
	enabled, _ := cgroups.ReadFile(dir, "cgroup.subtree_control")
	on := make(map[string]bool)
	for _, c := range strings.Fields(enabled) {
		on[c] = true
	}
	for _, c := range strings.Fields(avail) {
		if !on[c] {
			_ = cgroups.WriteFile(dir, "cgroup.subtree_control", "+"+c)
		}
	}
}
