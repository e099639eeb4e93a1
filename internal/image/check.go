package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/image/snapshot"
)

// CheckReport is what `system check` found in the image stores, and what
// it repaired. Lists are sorted.
type CheckReport struct {
	// CorruptBlobs hash to something else than their name.
	CorruptBlobs []digest.Digest
	// MissingBlobs are named by an image but not in the content store, as
	// "image-id: blob".
	MissingBlobs []string
	// MissingSnapshots are layer chains an image needs that are not
	// committed, as "image-id: chain-id".
	MissingSnapshots []string
	// BrokenParents are snapshots whose parent does not exist.
	BrokenParents []string
	// BrokenImages need a corrupt or missing blob or snapshot.
	BrokenImages []digest.Digest
	// DanglingRefs point at no image.
	DanglingRefs []string
	// OrphanBlobs and OrphanSnapshots are reached by no image nor holder
	// (GC would remove them).
	OrphanBlobs     []digest.Digest
	OrphanSnapshots []string
	// Repaired says what repair did, one line per action, e.g.
	// "removed image sha256:... (needs corrupt blob sha256:...)".
	Repaired []string
	// Freed is the space GC reclaimed during repair.
	Freed int64
}

// OK is true when nothing is wrong (orphans included).
func (r *CheckReport) OK() bool {
	return len(r.CorruptBlobs)+len(r.MissingBlobs)+len(r.MissingSnapshots)+len(r.BrokenParents)+
		len(r.BrokenImages)+len(r.DanglingRefs)+len(r.OrphanBlobs)+len(r.OrphanSnapshots) == 0
}

// Check verifies the image stores: every blob hashes to its name, every
// image's blobs and layer snapshots exist, every snapshot's parent exists,
// every reference names an image, and nothing is orphaned. With repair it
// deletes corrupt blobs, removes the images that need a corrupt or missing
// object (each removal is listed in Repaired: images are never dropped
// silently), deletes dangling references and collects garbage. Check holds
// the GC lock while it looks, so it sees no half-finished pull.
func (s *Service) Check(ctx context.Context, repair bool) (*CheckReport, error) {
	rep := &CheckReport{}
	s.gcLock.Lock()
	err := s.check(ctx, rep, repair)
	s.gcLock.Unlock()
	if err != nil {
		return rep, err
	}
	if repair && (len(rep.Repaired) > 0 || len(rep.OrphanBlobs)+len(rep.OrphanSnapshots)+len(rep.BrokenParents) > 0) {
		freed, err := s.GC(ctx)
		rep.Freed = freed
		if err != nil {
			return rep, fmt.Errorf("check: garbage collection: %w", err)
		}
		if len(rep.OrphanBlobs)+len(rep.OrphanSnapshots) > 0 {
			rep.Repaired = append(rep.Repaired, fmt.Sprintf("collected garbage: %d bytes", freed))
		}
	}
	return rep, nil
}

func (s *Service) check(ctx context.Context, rep *CheckReport, repair bool) error {
	// Blobs: hash every one.
	blobs := map[digest.Digest]bool{} // present and sound
	corrupt := map[digest.Digest]bool{}
	if err := s.content.Walk(ctx, func(i contentInfo) error {
		ok, err := s.blobSound(ctx, i.Digest)
		if err != nil {
			return err
		}
		if ok {
			blobs[i.Digest] = true
		} else {
			corrupt[i.Digest] = true
			rep.CorruptBlobs = append(rep.CorruptBlobs, i.Digest)
		}
		return nil
	}); err != nil {
		return err
	}
	// Snapshots and their parents.
	snaps := map[string]snapshotInfo{}
	if err := s.snaps.Walk(ctx, func(i snapshotInfo) error {
		snaps[i.Key] = i
		return nil
	}); err != nil {
		return err
	}
	brokenSnap := map[string]bool{}
	for k, i := range snaps {
		if i.Parent != "" {
			if _, ok := snaps[i.Parent]; !ok {
				rep.BrokenParents = append(rep.BrokenParents, k)
				brokenSnap[k] = true
			}
		}
	}
	// A snapshot is unusable if any ancestor is broken.
	unusable := func(k string) bool {
		for n := 0; k != "" && n < 1000; n++ {
			if brokenSnap[k] {
				return true
			}
			k = snaps[k].Parent
		}
		return false
	}
	// Images and references.
	var recs []*record
	var refs map[string]digest.Digest
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if recs, err = allRecords(tx); err != nil {
			return err
		}
		refs = map[string]digest.Digest{}
		return tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			refs[string(k)] = digest.Digest(v)
			return nil
		})
	}); err != nil {
		return err
	}
	ids := map[digest.Digest]bool{}
	reachBlobs := map[digest.Digest]bool{}
	reachSnaps := map[string]bool{}
	broken := map[digest.Digest]string{} // image → reason
	for _, r := range recs {
		ids[r.ID] = true
		need := []digest.Digest{r.Target.Digest, r.Manifest.Digest, r.Config.Digest}
		for _, l := range r.Layers {
			need = append(need, l.Blob.Digest)
		}
		for _, d := range need {
			reachBlobs[d] = true
			switch {
			case corrupt[d]:
				broken[r.ID] = "needs corrupt blob " + d.String()
			case !blobs[d]:
				rep.MissingBlobs = append(rep.MissingBlobs, r.ID.String()+": "+d.String())
				broken[r.ID] = "needs missing blob " + d.String()
			}
		}
		for _, l := range r.Layers {
			k := l.ChainID.String()
			reachSnaps[k] = true
			i, ok := snaps[k]
			switch {
			case !ok || i.Kind != snapshot.Committed:
				rep.MissingSnapshots = append(rep.MissingSnapshots, r.ID.String()+": "+k)
				broken[r.ID] = "needs missing layer snapshot " + k
			case unusable(k):
				broken[r.ID] = "needs layer snapshot " + k + " whose parent is missing"
			}
		}
	}
	for id := range broken {
		rep.BrokenImages = append(rep.BrokenImages, id)
	}
	for ref, id := range refs {
		if !ids[id] {
			rep.DanglingRefs = append(rep.DanglingRefs, ref)
		}
	}
	// Orphans, as GC sees them.
	if s.cfg.Holders != nil {
		hs, hb, err := s.cfg.Holders(ctx)
		if err != nil {
			return err
		}
		for _, k := range hs {
			reachSnaps[k] = true
		}
		for _, d := range hb {
			reachBlobs[d] = true
		}
	}
	for k := range reachSnaps {
		for n, p := 0, snaps[k].Parent; p != "" && n < 1000; n, p = n+1, snaps[p].Parent {
			reachSnaps[p] = true
		}
	}
	for k := range snaps {
		if !reachSnaps[k] {
			rep.OrphanSnapshots = append(rep.OrphanSnapshots, k)
		}
	}
	for d := range blobs {
		if !reachBlobs[d] {
			rep.OrphanBlobs = append(rep.OrphanBlobs, d)
		}
	}
	rep.sort()
	if !repair {
		return nil
	}

	var errs []error
	for _, d := range rep.CorruptBlobs {
		if err := s.content.Delete(ctx, d); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Repaired = append(rep.Repaired, "deleted corrupt blob "+d.String())
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, id := range rep.BrokenImages {
			tags, digests := refsOf(tx, id)
			for _, ref := range append(tags, digests...) {
				if err := tx.Bucket(bucketRefs).Delete([]byte(ref)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketImages).Delete([]byte(id.String())); err != nil {
				return err
			}
			line := fmt.Sprintf("removed image %s (%s)", id, broken[id])
			if len(tags) > 0 {
				line += fmt.Sprintf(", untagged %v", familiarAll(tags))
			}
			rep.Repaired = append(rep.Repaired, line)
		}
		for _, ref := range rep.DanglingRefs {
			if err := tx.Bucket(bucketRefs).Delete([]byte(ref)); err != nil {
				return err
			}
			rep.Repaired = append(rep.Repaired, "deleted dangling reference "+ref)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// blobSound reports whether blob d hashes to its name.
func (s *Service) blobSound(ctx context.Context, d digest.Digest) (bool, error) {
	rc, err := s.content.Open(ctx, d)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if err := d.Validate(); err != nil {
		return false, nil
	}
	v := d.Verifier()
	n, err := io.Copy(v, &checkReader{ctx: ctx, r: io.NewSectionReader(rc, 0, rc.Size())})
	if err != nil {
		return false, fmt.Errorf("check: blob %s: %w", d, err)
	}
	return v.Verified() && n == rc.Size(), nil
}

func (r *CheckReport) sort() {
	sortDigests := func(ds []digest.Digest) {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	}
	sortDigests(r.CorruptBlobs)
	sortDigests(r.BrokenImages)
	sortDigests(r.OrphanBlobs)
	sort.Strings(r.MissingBlobs)
	sort.Strings(r.MissingSnapshots)
	sort.Strings(r.BrokenParents)
	sort.Strings(r.DanglingRefs)
	sort.Strings(r.OrphanSnapshots)
}

// checkReader stops a long read when ctx ends.
type checkReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *checkReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
