package container

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OOM kills while a container runs: dockerd emits "oom" when the kernel
// reports one (containerd's OOM event), also when the container survives
// it (a child killed). berthd watches the container's memory cgroup: on
// cgroup v1 with an eventfd registered on memory.oom_control
// (cgroup.event_control), on v2 with inotify on memory.events; each time
// the oom_kill counter grows it emits "oom". The exit still records
// OOMKilled from the shim's reading of the same counter; handleExit emits
// "oom" itself only when no kill was reported while running.

// oomWatch is one run's watcher; guarded by the container's mu.
type oomWatch struct {
	f        *os.File // the eventfd or inotify descriptor; closing it ends the watch
	extra    *os.File // v1: memory.oom_control, kept open while registered
	reported bool     // an "oom" was emitted during this run
}

// watchOOM starts watching the running container's memory cgroup. fresh
// is a run that just started: its cgroup is new, so kills counted before
// the watch was in place (a process can be killed within milliseconds of
// the start) are this run's and are reported at once; on a re-attach
// (berthd restarted) only later ones are.
func (s *Service) watchOOM(c *Container, fresh bool) {
	id := c.ID()
	paths, err := s.runtimeOf(id).CgroupPaths(context.Background(), id)
	if err != nil {
		s.log.Debug("oom watch: cgroup paths", "id", id, "err", err)
		return
	}
	var (
		w       *oomWatch
		counter func() (uint64, error)
	)
	if dir := paths["memory"]; dir != "" {
		w, err = watchOOMv1(dir)
		counter = func() (uint64, error) { return readCounter(filepath.Join(dir, "memory.oom_control"), "oom_kill") }
	} else if dir := paths[""]; dir != "" {
		w, err = watchOOMv2(dir)
		counter = func() (uint64, error) { return readCounter(filepath.Join(dir, "memory.events"), "oom_kill") }
	} else {
		return
	}
	if err != nil {
		s.log.Debug("oom watch", "id", id, "err", err)
		return
	}
	c.mu.Lock()
	if c.oom != nil || c.shim == nil {
		c.mu.Unlock()
		w.close()
		return
	}
	c.oom = w
	c.mu.Unlock()
	var last uint64
	if !fresh {
		last, _ = counter()
	}
	go func() {
		buf := make([]byte, 4096)
		for first := true; ; first = false {
			if !first {
				if _, err := w.f.Read(buf); err != nil {
					return // closed at exit (or the cgroup went away)
				}
			}
			// v1 notifies when the cgroup enters OOM, before the kill
			// is counted: look again for a moment.
			var (
				n   uint64
				err error
			)
			for try := 0; try < 20; try++ {
				if try > 0 {
					time.Sleep(25 * time.Millisecond)
				}
				n, err = counter()
				if err != nil || n > last || first {
					break
				}
			}
			if err != nil {
				s.log.Debug("oom watch: counter", "id", id, "err", err)
				return
			}
			if n <= last {
				continue
			}
			last = n
			c.mu.Lock()
			if c.oom != w {
				c.mu.Unlock()
				return
			}
			w.reported = true
			rec := c.rec
			c.mu.Unlock()
			s.event("oom", &rec, nil)
		}
	}()
}

// stopOOM ends the run's watch and reports whether it emitted an "oom";
// c.mu held.
func stopOOM(c *Container) bool {
	w := c.oom
	c.oom = nil
	if w == nil {
		return false
	}
	w.close()
	return w.reported
}

func (w *oomWatch) close() {
	w.f.Close()
	if w.extra != nil {
		w.extra.Close()
	}
}

func watchOOMv1(dir string) (*oomWatch, error) {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ctl.Close()
		return nil, err
	}
	ev := os.NewFile(uintptr(efd), "oom-eventfd")
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(fmt.Sprintf("%d %d", efd, ctl.Fd())), 0); err != nil {
		ev.Close()
		ctl.Close()
		return nil, err
	}
	return &oomWatch{f: ev, extra: ctl}, nil
}

func watchOOMv2(dir string) (*oomWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(dir, "memory.events"), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &oomWatch{f: os.NewFile(uintptr(fd), "oom-inotify")}, nil
}

// readCounter reads "key N" from a cgroup's flat keyed file.
func readCounter(path, key string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, sc.Err()
}
