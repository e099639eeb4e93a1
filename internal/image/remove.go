package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apiimage "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/reference"
)

// Tag makes target (a reference) point to the image source names.
func (s *Service) Tag(ctx context.Context, source, target string) error {
	ref, err := reference.Parse(target)
	if err != nil {
		return errdefs.With(errdefs.InvalidArgument, err)
	}
	if ref.Digest() != "" {
		return errdefs.Newf(errdefs.InvalidArgument, "refusing to create a tag with a digest reference")
	}
	if ref.Tag() == "" {
		ref, _ = ref.WithTag("latest")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		r, err := s.lookup(tx, source)
		if err != nil {
			return err
		}
		r.LastTagTime = nowUTC()
		if err := putRecord(tx, r); err != nil {
			return err
		}
		return setRef(tx, ref.String(), r.ID)
	})
}

// UseChecker reports a container that uses image id, if any.
type UseChecker func(id string) (containerID string, running bool)

// RemoveOptions are rmi's flags.
type RemoveOptions struct {
	Force   bool
	NoPrune bool
	InUse   UseChecker
}

// Remove untags or deletes name with Docker's rules: removing one of
// several tags only untags; removing the last reference or the ID deletes
// the image (its blobs and snapshots go at the next GC, run here unless
// NoPrune); an ID referenced by several repositories needs Force; an image
// used by a container needs Force, and by a running one cannot be removed.
func (s *Service) Remove(ctx context.Context, name string, o RemoveOptions) ([]apiimage.DeleteResponse, error) {
	var out []apiimage.DeleteResponse
	s.gcLock.Lock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := s.lookup(tx, name)
		if err != nil {
			return err
		}
		tags, digests := refsOf(tx, r.ID)
		short := r.ID.Encoded()[:12]
		var byRef string
		if ref, err := reference.Parse(name); err == nil {
			if v := tx.Bucket(bucketRefs).Get([]byte(ref.String())); v != nil {
				byRef = ref.String()
			}
		}
		if o.InUse != nil {
			if cid, running := o.InUse(r.ID.String()); cid != "" {
				if running {
					if byRef == "" || len(tags)+len(digests) <= 1 {
						return errdefs.Newf(errdefs.Conflict, "conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", short, shortID(cid))
					}
				} else if !o.Force && (byRef == "" || len(tags)+len(digests) <= 1) {
					if byRef != "" {
						return errdefs.Newf(errdefs.Conflict, "conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", name, shortID(cid), short)
					}
					return errdefs.Newf(errdefs.Conflict, "conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", short, shortID(cid))
				}
			}
		}
		untag := func(ref string) error {
			if err := tx.Bucket(bucketRefs).Delete([]byte(ref)); err != nil {
				return err
			}
			out = append(out, apiimage.DeleteResponse{Untagged: familiarAll([]string{ref})[0]})
			return nil
		}
		if byRef != "" {
			// By reference: drop it; the image goes only if that was the
			// last tag (digest references die with it).
			if err := untag(byRef); err != nil {
				return err
			}
			remainingTags := 0
			for _, t := range tags {
				if t != byRef {
					remainingTags++
				}
			}
			if remainingTags > 0 || (strings.Contains(byRef, "@") && len(tags) > 0) {
				return nil
			}
		} else if len(repositories(tags, digests)) > 1 && !o.Force {
			return errdefs.Newf(errdefs.Conflict, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", short)
		}
		for _, ref := range append(tags, digests...) {
			if ref == byRef {
				continue
			}
			if err := untag(ref); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketImages).Delete([]byte(r.ID.String())); err != nil {
			return err
		}
		out = append(out, apiimage.DeleteResponse{Deleted: r.ID.String()})
		return nil
	})
	s.gcLock.Unlock()
	if err != nil {
		return nil, err
	}
	if !o.NoPrune {
		if _, err := s.GC(ctx); err != nil {
			return out, err
		}
	}
	return out, nil
}

func repositories(tags, digests []string) map[string]bool {
	repos := map[string]bool{}
	for _, r := range append(append([]string{}, tags...), digests...) {
		if ref, err := reference.Parse(r); err == nil {
			repos[ref.Name()] = true
		}
	}
	return repos
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// PruneOptions select what image prune removes.
type PruneOptions struct {
	// All removes every image no container uses, not only dangling ones.
	All    bool
	Labels []string
	InUse  UseChecker
}

// Prune removes dangling (or, with All, unused) images, then collects
// garbage.
func (s *Service) Prune(ctx context.Context, o PruneOptions) (*apiimage.PruneReport, error) {
	report := &apiimage.PruneReport{ImagesDeleted: []apiimage.DeleteResponse{}}
	var ids []digest.Digest
	err := s.db.View(func(tx *bolt.Tx) error {
		recs, err := allRecords(tx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			tags, _ := refsOf(tx, r.ID)
			if len(tags) > 0 && !o.All {
				continue
			}
			if o.InUse != nil {
				if cid, _ := o.InUse(r.ID.String()); cid != "" {
					continue
				}
			}
			ids = append(ids, r.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if len(o.Labels) > 0 {
			var r *record
			_ = s.db.View(func(tx *bolt.Tx) error { r, err = getRecord(tx, id); return err })
			if r == nil {
				continue
			}
			c, err := s.config(ctx, r)
			if err != nil || !matchLabels(c.Config.Labels, o.Labels) {
				continue
			}
		}
		del, err := s.Remove(ctx, id.String(), RemoveOptions{Force: true, NoPrune: true, InUse: o.InUse})
		if err != nil {
			if errdefs.Is(err, errdefs.NotFound) {
				continue
			}
			return report, err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, del...)
	}
	freed, err := s.GC(ctx)
	report.SpaceReclaimed = uint64(freed)
	return report, err
}

// GC removes every blob and snapshot that no image record (and no holder
// declared in Config.Holders) reaches: mark from the records, sweep the
// stores. It returns the bytes freed.
func (s *Service) GC(ctx context.Context) (int64, error) {
	s.gcLock.Lock()
	defer s.gcLock.Unlock()
	blobs := map[digest.Digest]bool{}
	snaps := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		recs, err := allRecords(tx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			blobs[r.Target.Digest], blobs[r.Manifest.Digest], blobs[r.Config.Digest] = true, true, true
			for _, l := range r.Layers {
				blobs[l.Blob.Digest] = true
				snaps[l.ChainID.String()] = true
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The snapshots are listed before the holders are asked: a snapshot
	// made after the listing is not swept, and one made before it was
	// already held (containers hold theirs from before they prepare it).
	infos := map[string]string{}
	if err := s.snaps.Walk(ctx, func(i snapshotInfo) error {
		infos[i.Key] = i.Parent
		return nil
	}); err != nil {
		return 0, err
	}
	if s.cfg.Holders != nil {
		hs, hb, err := s.cfg.Holders(ctx)
		if err != nil {
			return 0, err
		}
		for _, k := range hs {
			snaps[k] = true
		}
		for _, d := range hb {
			blobs[d] = true
		}
	}
	// Every ancestor of a kept snapshot is kept.
	for k := range snaps {
		for p := infos[k]; p != "" && !snaps[p]; p = infos[p] {
			snaps[p] = true
		}
	}
	var freed int64
	var errs []error
	// Remove unreferenced snapshots children first.
	for {
		removed := 0
		children := map[string]int{}
		for _, p := range infos {
			if p != "" {
				children[p]++
			}
		}
		for k := range infos {
			if snaps[k] || children[k] > 0 {
				continue
			}
			size, _, _ := s.snaps.Usage(ctx, k)
			if err := s.snaps.Remove(ctx, k); err != nil {
				// A container's snapshot may go meanwhile: its container's
				// removal deletes it in the background (its record, and so
				// the hold, went first).
				if !errdefs.Is(err, errdefs.NotFound) {
					errs = append(errs, err)
				}
				delete(infos, k)
				continue
			}
			freed += size
			delete(infos, k)
			removed++
		}
		if removed == 0 {
			break
		}
	}
	if err := s.content.Walk(ctx, func(i contentInfo) error {
		if blobs[i.Digest] {
			return nil
		}
		if err := s.content.Delete(ctx, i.Digest); err != nil {
			errs = append(errs, err)
			return nil
		}
		freed += i.Size
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	if err := s.snaps.Cleanup(ctx); err != nil {
		errs = append(errs, err)
	}
	return freed, errors.Join(errs...)
}

// DiskUsage is what `system df` shows for images.
func (s *Service) DiskUsage(ctx context.Context, inUse UseChecker) (*apiimage.DiskUsage, error) {
	list, err := s.List(ctx, ListFilters{All: true})
	if err != nil {
		return nil, err
	}
	du := &apiimage.DiskUsage{Items: list, TotalCount: int64(len(list))}
	shared, total, err := s.layerSharing()
	if err != nil {
		return nil, err
	}
	du.TotalSize = total
	var used int64
	for i := range list {
		it := &list[i]
		it.SharedSize = shared[it.ID]
		inuse := false
		if inUse != nil {
			cid, _ := inUse(it.ID)
			inuse = cid != ""
		}
		if inuse {
			du.ActiveCount++
			used += it.Size - it.SharedSize
		}
	}
	// What removing every unused image would free: the layers no image
	// in use holds (shared layers count as used when any user holds them,
	// as the docker CLI reckons it).
	du.Reclaimable = max(total-used, 0)
	return du, nil
}

// layerSharing returns, per image ID, the size of its layers that other
// images share, and the size of all distinct layers.
func (s *Service) layerSharing() (map[string]int64, int64, error) {
	var recs []*record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		recs, err = allRecords(tx)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	users := map[digest.Digest]int{}
	sizes := map[digest.Digest]int64{}
	for _, r := range recs {
		for _, l := range r.Layers {
			users[l.ChainID]++
			sizes[l.ChainID] = l.Size
		}
	}
	shared := map[string]int64{}
	for _, r := range recs {
		var n int64
		for _, l := range r.Layers {
			if users[l.ChainID] > 1 {
				n += l.Size
			}
		}
		shared[r.ID.String()] = n
	}
	var total int64
	for _, sz := range sizes {
		total += sz
	}
	return shared, total, nil
}

var _ = fmt.Sprintf
