package container

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/shim"
	"github.com/berth-dev/berth/internal/volume"
)

// RemoveOptions are rm's flags.
type RemoveOptions struct {
	Force   bool
	Volumes bool
	Link    bool
}

// Remove deletes a container: a running one only with Force (killed
// first). Its writable snapshot, files and record go; the name is free
// again once Remove returns.
func (s *Service) Remove(ctx context.Context, ref string, o RemoveOptions) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	if o.Link {
		return errdefs.Newf(errdefs.InvalidArgument, "Conflict, cannot remove the default link name of the container")
	}
	c.mu.Lock()
	if c.rec.State.Removing {
		c.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "removal of container %s is already in progress", ref)
	}
	running := c.rec.State.Running()
	paused := c.rec.State.Paused
	name := strings.TrimPrefix(c.rec.Name, "/")
	c.mu.Unlock()
	if isRestarting(c) {
		if !o.Force {
			return errdefs.Newf(errdefs.Conflict, "cannot remove container %q: container is restarting: stop the container before removing or force remove", "/"+name)
		}
		s.cancelRestart(c)
	}
	if running && !o.Force {
		if paused {
			return errdefs.Newf(errdefs.Conflict, "cannot remove container %q: container is paused and must be unpaused first", "/"+name)
		}
		return errdefs.Newf(errdefs.Conflict, "cannot remove container %q: container is running: stop the container before removing or force remove", "/"+name)
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	c.mu.Lock()
	if c.rec.State.Removing {
		c.mu.Unlock()
		return errRemovalInProgress
	}
	select {
	case <-c.removed:
		c.mu.Unlock()
		return errdefs.Newf(errdefs.NotFound, "No such container: %s", ref)
	default:
	}
	c.rec.State.Removing = true
	c.mu.Unlock()
	if c.rec.State.Running() {
		zero := 0
		if err := s.stop(ctx, c, StopOptions{Signal: "KILL", Timeout: &zero}); err != nil && !errdefs.Is(err, errdefs.NotModified) {
			c.mu.Lock()
			c.rec.State.Removing = false
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	// The record goes first: from then on the container does not exist,
	// and what is left on disk is garbage Restore would remove too. With
	// -v, the records of its anonymous volumes go in the same
	// transaction.
	var plan *volume.Removal
	if o.Volumes {
		plan = s.planVolumeRemoval(&rec)
	}
	committed, err := s.deleteRecord(c, &rec, plan) // deletelater.go
	if err != nil {
		plan.Finish(false)
		c.mu.Lock()
		c.rec.State.Removing = false
		c.mu.Unlock()
		return err
	}
	failpoint.Crash("remove-deleted")
	s.mu.Lock()
	delete(s.byID, rec.ID)
	if s.names[rec.Name] == rec.ID {
		delete(s.names, rec.Name)
	}
	for id, owner := range s.execs {
		if owner == c {
			delete(s.execs, id)
		}
	}
	s.mu.Unlock()
	// Volumes are released before waiters learn of the removal, so that
	// `run --rm` returns with the volumes free (and anonymous ones gone).
	s.releaseVolumes(context.WithoutCancel(ctx), rec.ID, rec.MountPoints, false)
	plan.Finish(true)
	c.mu.Lock()
	c.rec.State.Status = container.StateRemoving
	close(c.removed)
	c.notify()
	c.mu.Unlock()
	s.event("destroy", &rec, nil)
	// The files go after the caller is answered: the container no longer
	// exists, and Restore removes what a crash would leave.
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := committed(); err != nil {
			// Still recorded (with a tombstone): Restore finishes it.
			s.log.Error("delete container record", "id", rec.ID, "err", err)
			return
		}
		c.waitTeardown()
		s.cleanupFiles(context.Background(), rec.ID, rec.Snapshot)
	}()
	return nil
}

// killStale ends whatever a run of container id left behind that is not
// tracked as running: a shim whose start was cut short (berthd killed
// between Spawn and recording the run, or a start that failed after
// Spawn) and the created container it holds. Without this, removing the
// bundle would orphan that shim and its waiting init.
func (s *Service) killStale(ctx context.Context, id string) {
	s.dropAhead(id) // a shim prepared at create, never started
	// One prepared at create and let go meanwhile (a later create took
	// the slot) may still hold this id's runtime state.
	s.awaitRelease(id)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if cl, err := shim.Connect(cctx, s.bundleDir(id)); err == nil {
		if err := cl.Shutdown(cctx); err != nil {
			s.log.Warn("stale shim shutdown", "id", id, "err", err)
		}
		cl.Close()
	}
	// A shim that lost its socket still holds the runtime's state: delete
	// it by force, which kills the container's processes.
	if err := s.runtimeOf(id).Delete(cctx, id, true); err != nil && !errdefs.Is(err, errdefs.NotFound) {
		s.log.Warn("stale runtime state", "id", id, "err", err)
	}
}

// cleanupFiles removes what a container has on disk.
func (s *Service) cleanupFiles(ctx context.Context, id, snap string) {
	s.killStale(ctx, id)
	_ = unix.Unmount(s.rootfsDir(id), unix.MNT_DETACH)
	if err := os.RemoveAll(s.bundleDir(id)); err != nil {
		s.log.Warn("remove bundle", "id", id, "err", err)
	}
	if err := os.RemoveAll(s.dataDir(id)); err != nil {
		s.log.Warn("remove container dir", "id", id, "err", err)
	}
	if snap != "" {
		if err := s.cfg.Snapshots.Remove(ctx, snap); err != nil && !errdefs.Is(err, errdefs.NotFound) {
			s.log.Warn("remove snapshot", "id", id, "err", err)
		}
	}
}
