package container

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// A writable snapshot prepared ahead of time: preparing a container's
// snapshot is directories plus a synced bbolt transaction in the
// snapshotter's own database (two fdatasyncs), 0.7–2 ms of create. While
// create commits a container's record, berthd prepares the next one in
// the background, on the same image's top layer and under a key of its
// own ("container-<random id>"); the next create of that image takes it
// (the record's Snapshot names it: the key need not match the container's
// id, which the warm spare shim may choose, see prefork.go) and only
// records the container.
//
// Nothing else changes for the snapshot: it is the container's from the
// moment create takes it, as if create had prepared it. Until then it is
// held (Holders) while its image exists, so an image GC does not take it
// from under a create, and let go (removed) once its image is gone, so it
// never keeps a removed image's layers. A berthd that stops or dies
// leaves it as a snapshot without a container, which Restore removes (as
// it removes those of a create cut short). One spare at a time: a create
// of another image replaces it.
type snapSpare struct {
	// id and key name the spare ("" when there is none); image and chain
	// are the image it was prepared for and its top layer.
	id, key, image, chain string
	// filling, when not nil, is closed when the fill in progress ends;
	// fillChain is its layer.
	filling   chan struct{}
	fillChain string
	// mounted: the spare's mount ahead is done or under way
	// (mountSpareAhead); wantMount: a start asked for it while a fill or
	// a mount ran (snapmount_linux.go).
	mounted, wantMount bool
}

// claimSpare returns the key of a spare prepared on img's top layer and
// hands its snapshot to the caller (held as creating; the caller deletes
// it from creating and removes the snapshot if its create fails), or ""
// when there is none. A fill of that layer in progress is waited for
// (briefly): it is ahead of any Prepare create would start.
func (s *Service) claimSpare(ctx context.Context, img *image.Resolved) string {
	if img.ChainID == "" {
		return ""
	}
	s.mu.Lock()
	if f := s.spare.filling; f != nil && s.spare.fillChain == img.ChainID {
		s.mu.Unlock()
		s.cfg.Quiet.Hurry() // it may be held until the daemon is quiet
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-f:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	sp := s.spare
	if sp.key == "" || sp.chain != img.ChainID || sp.image != img.ID.String() {
		return ""
	}
	s.spare.id, s.spare.key, s.spare.image, s.spare.chain = "", "", "", ""
	s.creating[sp.key] = true
	return sp.key
}

// fillSpare prepares a spare for img unless there is one already (or a
// fill runs); one of another image is removed. Create asks for it just
// before it commits its record; it runs in the background (s.bg) once the
// daemon is quiet (s.cfg.Quiet: not beside this container's start, exit
// and removal), or at once when creates come back to back (a claim that
// finds the fill held hurries it).
func (s *Service) fillSpare(img *image.Resolved) {
	if img.ChainID == "" {
		return
	}
	imageID, chain := img.ID.String(), img.ChainID
	if s.isClosing() {
		return
	}
	s.mu.Lock()
	if s.spare.filling != nil || (s.spare.key != "" && s.spare.image == imageID) {
		s.mu.Unlock()
		return
	}
	done := make(chan struct{})
	s.spare.filling, s.spare.fillChain = done, chain
	old, oldID := s.spare.key, s.spare.id
	s.spare.id, s.spare.key, s.spare.image, s.spare.chain = "", "", "", ""
	s.mu.Unlock()
	s.bg.Add(1)
	// Held until the daemon is quiet: not beside this create's start.
	s.cfg.Quiet.Go(func() {
		defer s.bg.Done()
		ctx := context.Background()
		var sp snapSpare
		defer func() {
			s.mu.Lock()
			published := false
			if sp.key != "" {
				delete(s.creating, sp.key)
				if !s.isClosing() {
					s.spare.id, s.spare.key, s.spare.image, s.spare.chain = sp.id, sp.key, sp.image, sp.chain
					s.spare.mounted = sp.mounted
					published = true
					s.log.Debug("spare snapshot prepared", "id", shortID(sp.id))
				}
			}
			s.spare.filling, s.spare.fillChain = nil, ""
			s.mu.Unlock()
			if !published && sp.key != "" {
				s.unmountSpare(sp.id) // left for Restore, unmounted
			}
			close(done)
			if published {
				s.recheckSpare(ctx, sp)
			}
		}()
		if old != "" {
			s.unmountSpare(oldID)
			if err := s.cfg.Snapshots.Remove(ctx, old); err != nil && !errdefs.Is(err, errdefs.NotFound) {
				s.log.Warn("remove spare snapshot", "key", old, "err", err)
			}
		}
		if s.isClosing() {
			return
		}
		sp = snapSpare{id: newID(), image: imageID, chain: chain}
		sp.key = "container-" + sp.id
		s.mu.Lock()
		s.creating[sp.key] = true // held while it is prepared (Holders)
		s.mu.Unlock()
		if _, err := s.cfg.Snapshots.Prepare(ctx, sp.key, chain, map[string]string{"berth.container": sp.id}); err != nil {
			s.log.Warn("prepare spare snapshot", "image", imageID, "err", err)
			s.mu.Lock()
			delete(s.creating, sp.key)
			s.mu.Unlock()
			sp.key = ""
			return
		}
		s.mu.Lock()
		want := s.spare.wantMount
		s.spare.wantMount = false
		s.mu.Unlock()
		if want && !noPremount && !s.isClosing() {
			// A start that ended meanwhile asked for the mount ahead
			// (snapmount_linux.go).
			sp.mounted = true
			if err := s.mountSpare(ctx, sp.id, sp.key); err != nil {
				s.log.Warn("mount spare snapshot", "image", imageID, "err", err)
			} else {
				s.log.Debug("spare snapshot mounted ahead", "id", shortID(sp.id), "by", "fill")
			}
		}
		if s.isClosing() {
			s.unmountSpare(sp.id)
			_ = s.cfg.Snapshots.Remove(ctx, sp.key)
			s.mu.Lock()
			delete(s.creating, sp.key)
			s.mu.Unlock()
			sp.key = ""
		}
	})
}

// spareHeld returns the spare's key for Holders, after letting go of a
// spare whose image is gone. s.mu must not be held.
func (s *Service) spareHeld(ctx context.Context) string {
	s.mu.Lock()
	sp := s.spare
	s.mu.Unlock()
	if sp.key == "" {
		return ""
	}
	_, err := s.cfg.Images.Resolve(ctx, sp.image)
	if err == nil || !errdefs.Is(err, errdefs.NotFound) {
		return sp.key
	}
	s.mu.Lock()
	if s.spare.key != sp.key {
		// Taken meanwhile: its create holds it now.
		s.mu.Unlock()
		return ""
	}
	s.spare.id, s.spare.key, s.spare.image, s.spare.chain = "", "", "", ""
	s.mu.Unlock()
	s.unmountSpare(sp.id)
	// Not held, and no create can take it any more: the GC asking sweeps
	// it with the image's layers (it listed it before asking).
	s.log.Debug("spare snapshot of a removed image let go", "id", shortID(sp.id))
	return ""
}

// recheckSpare runs once a fill published sp. An image GC that asked
// Holders while sp was being prepared held it (as creating) and so kept
// its image's layers; if that GC was the image's removal, the image is
// gone now: sp goes, and the GC runs again for the layers. (A GC asking
// after this point lets sp go itself: spareHeld.)
func (s *Service) recheckSpare(ctx context.Context, sp snapSpare) {
	if _, err := s.cfg.Images.Resolve(ctx, sp.image); err == nil || !errdefs.Is(err, errdefs.NotFound) {
		return
	}
	s.mu.Lock()
	mine := s.spare.key == sp.key
	if mine {
		s.spare.id, s.spare.key, s.spare.image, s.spare.chain = "", "", "", ""
	}
	s.mu.Unlock()
	if !mine {
		return // taken, or let go by spareHeld
	}
	s.unmountSpare(sp.id)
	if err := s.cfg.Snapshots.Remove(ctx, sp.key); err != nil && !errdefs.Is(err, errdefs.NotFound) {
		s.log.Warn("remove spare snapshot", "key", sp.key, "err", err)
	}
	if _, err := s.cfg.Images.GC(ctx); err != nil {
		s.log.Warn("image GC after a spare snapshot of a removed image", "err", err)
	}
}
