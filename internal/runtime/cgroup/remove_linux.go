package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// destroyRetry bounds how long Destroy keeps retrying directories the
// kernel reports busy (tasks that were killed but are not fully gone yet).
const destroyRetry = 2 * time.Second

// removeDirs removes every cgroup directory in dirs with its sub-cgroups.
// A directory that is already gone counts as removed. Directories that stay
// busy (EBUSY) are retried together, with a growing delay, until budget is
// spent; other errors are final.
func removeDirs(dirs []string, budget time.Duration) error {
	// Deepest first, so a directory nested below another one in the list
	// never blocks its parent.
	pending := append([]string(nil), dirs...)
	sort.Slice(pending, func(i, j int) bool { return len(pending[i]) > len(pending[j]) })
	deadline := time.Now().Add(budget)
	delay := time.Millisecond
	var errs []error
	for {
		var busy []string
		var busyErr []error
		// One rmdir per hierarchy, in parallel: each waits for the
		// kernel to offline the css, and a v1 host has a dozen of them.
		results := make([]error, len(pending))
		var wg sync.WaitGroup
		for i, d := range pending {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = removeTree(d)
			}()
		}
		wg.Wait()
		for i, d := range pending {
			err := results[i]
			switch {
			case err == nil:
			case errors.Is(err, unix.EBUSY):
				busy = append(busy, d)
				busyErr = append(busyErr, err)
			default:
				errs = append(errs, err)
			}
		}
		if len(busy) == 0 || time.Now().After(deadline) {
			for _, err := range busyErr {
				errs = append(errs, fmt.Errorf("%w (processes still inside?)", err))
			}
			return errors.Join(errs...)
		}
		pending = busy
		time.Sleep(delay)
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// removeTree removes the cgroup directory dir after its sub-cgroups (cgroup
// directories can only be removed empty of sub-cgroups, and rmdir is the
// only way: their interface files cannot be unlinked).
func removeTree(dir string) error {
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		if errors.Is(rerr, os.ErrNotExist) {
			return nil
		}
		return rerr
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// removeEmptyDefaultParents removes the default parent ("berth") above the
// container directories dirs once the last container is gone, so that
// berth leaves no cgroup behind; while other containers live below it the
// kernel refuses (EBUSY) and it stays. One rmdir per hierarchy, in
// parallel, on the teardown path.
func removeEmptyDefaultParents(dirs []string) {
	var wg sync.WaitGroup
	for _, d := range dirs {
		parent := filepath.Dir(d)
		if filepath.Base(parent) != filepath.Base(defaultParent) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = unix.Rmdir(parent)
		}()
	}
	wg.Wait()
}
