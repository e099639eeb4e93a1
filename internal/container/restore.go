package container

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/image/snapshot"
	"github.com/berth-dev/berth/internal/shim"
)

// Restore loads every container record and reconciles it with the world
// (live restore): a container whose shim still runs is re-attached and
// keeps running; one whose shim is gone gets the exit its shim recorded;
// files left by containers that have no record (a crash during create or
// remove) are removed.
func (s *Service) Restore(ctx context.Context) error {
	recs, errs := s.store.all()
	for _, err := range errs {
		s.log.Error("restore", "err", err)
	}
	known := map[string]bool{}
	ownSnap := map[string]bool{} // the snapshot keys records name
	var gone []*Record
	s.mu.Lock()
	for _, r := range recs {
		c := newContainer(*r)
		// The run state written since, if newer; a removal answered
		// before its deletion was committed is finished here.
		if s.restoreRun(r, c) {
			gone = append(gone, r)
			continue
		}
		known[r.ID] = true
		ownSnap[r.Snapshot] = true
		s.byID[r.ID] = c
		s.names[r.Name] = r.ID
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		if err := s.store.deleteAll(gone); err != nil {
			return err
		}
		recs = slices.DeleteFunc(recs, func(r *Record) bool { return !known[r.ID] })
		// What is left of them goes with the garbage below; a shim
		// whose teardown the crash cut short first.
		for _, r := range gone {
			s.log.Info("finishing the removal of container", "id", r.ID)
			s.killStale(ctx, r.ID)
			_ = unix.Unmount(s.rootfsDir(r.ID), unix.MNT_DETACH)
		}
	}
	for _, r := range recs {
		c := s.byID[r.ID]
		s.restoreMounts(ctx, r, r.State.Running() && !r.State.Removing)
		switch {
		case r.State.Removing:
			// A crash mid-remove: finish it.
			c.mu.Lock()
			c.rec.State.Removing = false
			c.mu.Unlock()
			go func() { _ = s.Remove(context.Background(), r.ID, RemoveOptions{Force: true}) }()
		case r.State.Running():
			s.reconnect(ctx, c)
		case r.State.Status == container.StateRestarting:
			// berthd stopped during a restart's back-off: the container
			// is exited (restartAtBoot applies its policy), and cleaned
			// up as any exited one.
			c.mu.Lock()
			c.rec.State.Status = container.StateExited
			c.rec.State.Restarting = false
			c.mu.Unlock()
			fallthrough
		case r.State.Status == container.StateCreated || r.State.Status == container.StateExited:
			// Nothing runs, unless a start was cut short: its shim and
			// created container go, and so does a stale mount.
			s.killStale(ctx, r.ID)
			_ = unix.Unmount(s.rootfsDir(r.ID), unix.MNT_DETACH)
			s.endRunMounts(ctx, r)
		}
	}
	s.restoreNetworks(ctx)
	s.sweepPreforks(ctx, known) // inits pre-forked for containers that never came
	// Garbage: writable snapshots of containers that have no record (a
	// crash between preparing the snapshot and writing the record, or
	// during a remove's background cleanup, a spare nobody took). A
	// record's snapshot key need not be "container-" + its id (a spare
	// snapshot's key is its own).
	var orphans []string
	_ = s.cfg.Snapshots.Walk(ctx, func(info snapshot.Info) error {
		if strings.HasPrefix(info.Key, "container-") && !ownSnap[info.Key] {
			orphans = append(orphans, info.Key)
		}
		return nil
	})
	for _, key := range orphans {
		// A spare's, mounted ahead (snapmount_linux.go), first.
		if id := strings.TrimPrefix(key, "container-"); !known[id] {
			s.unmountSpare(id)
		}
		s.log.Info("removing leftover container snapshot", "key", key)
		if err := s.cfg.Snapshots.Remove(ctx, key); err != nil {
			s.log.Warn("remove leftover snapshot", "key", key, "err", err)
		}
	}
	s.sweepStages(known)
	// Garbage: directories of containers that have no record.
	for _, dir := range []string{filepath.Join(s.cfg.Root, "containers"), filepath.Join(s.cfg.ExecRoot, "c")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !e.IsDir() || known[e.Name()] || len(e.Name()) != 64 {
				continue
			}
			p := filepath.Join(dir, e.Name())
			_ = unix.Unmount(filepath.Join(p, "rootfs"), unix.MNT_DETACH)
			s.log.Info("removing leftover container directory", "path", p)
			_ = os.RemoveAll(p)
		}
	}
	// Last, once everything else is in place: the restart policies.
	s.restartAtBoot(recs)
	return nil
}

// reconnect re-attaches to a running container's shim, or records the
// exit of one that ended while berthd was away.
func (s *Service) reconnect(ctx context.Context, c *Container) {
	id := c.ID()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	cl, err := shim.Connect(cctx, s.bundleDir(id))
	cancel()
	if err == nil {
		c.mu.Lock()
		c.shim = cl
		c.mu.Unlock()
		s.wg.Add(1)
		go s.monitor(c, cl, nil)
		s.startHealth(c)
		s.watchOOM(c, false)
		s.log.Info("restored container", "id", id)
		return
	}
	exit, rerr := shim.ReadExit(s.bundleDir(id))
	if rerr != nil {
		exit = &shim.Exit{Code: 255, ExitedAt: time.Now().UTC(), Error: "container's shim is gone and recorded no exit: " + err.Error()}
	}
	// handleExit expects the shim it is told about to be the current one.
	c.mu.Lock()
	c.shim = nil
	c.mu.Unlock()
	s.handleExit(c, nil, exit)
}
