package volume

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	apivolume "github.com/moby/moby/api/types/volume"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Remove deletes a volume and its data. A volume referenced by a container
// is a Conflict even with force, as with Docker; force makes a missing
// volume and failures to delete the data not errors (the record goes).
func (s *Service) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(name, force)
}

func (s *Service) removeLocked(name string, force bool) error {
	v, ok := s.vols[name]
	if !ok {
		if force {
			return nil
		}
		return errdefs.Newf(errdefs.NotFound, "get %s: no such volume", name)
	}
	if len(v.refs) > 0 {
		ids := sortedKeys(v.refs)
		return errdefs.Newf(errdefs.Conflict, "remove %s: volume is in use - [%s]", name, strings.Join(ids, ", "))
	}
	dir := filepath.Join(s.root, name)
	p := s.dataPath(name)
	if isMountPoint(p) {
		if err := unmount(p); err != nil && !force {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	if err := s.cfg.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(name)) }); err != nil {
		return err
	}
	delete(s.vols, name)
	// The record is gone: the directory is garbage New would remove too.
	if err := removeDir(dir); err != nil {
		s.log.Warn("remove volume data", "name", name, "err", err)
		if !force {
			s.event("destroy", name, nil)
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	s.event("destroy", name, nil)
	return nil
}

// RemoveUnused removes those of names that no container references
// (referenced and unknown ones are skipped), with one metadata
// transaction: rm -v's removal of a container's anonymous volumes.
func (s *Service) RemoveUnused(ctx context.Context, names []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for _, n := range names {
		if v, ok := s.vols[n]; ok && len(v.refs) == 0 {
			gone = append(gone, n)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	mounted := map[string]bool{}
	for _, m := range mountsUnder(s.root) {
		mounted[m] = true
	}
	for _, n := range gone {
		if p := s.dataPath(n); mounted[p] {
			if err := unmount(p); err != nil {
				return fmt.Errorf("remove %s: %w", n, err)
			}
		}
	}
	err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, n := range gone {
			if err := b.Delete([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The records are gone: the directories go in the background (a
	// crash leaves them as leftovers New removes). Until then the names
	// are reserved.
	dirs := make([]string, len(gone))
	for i, n := range gone {
		delete(s.vols, n)
		s.deleting[n] = true
		dirs[i] = filepath.Join(s.root, n)
		s.event("destroy", n, nil)
	}
	s.removeInBackground(gone, dirs)
	return nil
}

// Removal is the removal of a container's anonymous volumes planned
// with the container's own removal: Delete runs in the transaction that
// deletes the container's record, Finish after it. A nil *Removal does
// nothing.
type Removal struct {
	s     *Service
	names []string
}

// PlanRemoval picks those of names (a container's anonymous volumes) that
// only ref references, and reserves them: until Finish nothing can
// acquire them.
func (s *Service) PlanRemoval(names []string, ref string) *Removal {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Removal{s: s}
	for _, n := range names {
		v, ok := s.vols[n]
		if !ok || s.deleting[n] {
			continue
		}
		only := true
		for other := range v.refs {
			only = only && other == ref
		}
		if only {
			s.deleting[n] = true
			r.names = append(r.names, n)
		}
	}
	if len(r.names) == 0 {
		return nil
	}
	return r
}

// Delete deletes the planned volumes' records in tx.
func (r *Removal) Delete(tx *bolt.Tx) error {
	if r == nil {
		return nil
	}
	b := tx.Bucket(bucket)
	for _, n := range r.names {
		if err := b.Delete([]byte(n)); err != nil {
			return err
		}
	}
	return nil
}

// Finish completes the removal once the transaction committed (the
// volumes leave the index, their data goes in the background), or
// cancels it.
func (r *Removal) Finish(committed bool) {
	if r == nil {
		return
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !committed {
		for _, n := range r.names {
			delete(s.deleting, n)
		}
		return
	}
	var dirs []string
	for _, n := range r.names {
		if p := s.dataPath(n); isMountPoint(p) {
			if err := unmount(p); err != nil {
				s.log.Warn("unmount removed volume", "name", n, "err", err)
			}
		}
		delete(s.vols, n)
		dirs = append(dirs, filepath.Join(s.root, n))
		s.event("destroy", n, nil)
	}
	s.removeInBackground(r.names, dirs)
}

func (s *Service) removeInBackground(names, dirs []string) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := removeDirs(dirs); err != nil {
			s.log.Warn("remove volume data", "err", err)
		}
		s.mu.Lock()
		for _, n := range names {
			delete(s.deleting, n)
		}
		s.mu.Unlock()
	}()
}

// PruneFilters are the filters Prune accepts.
var PruneFilters = []string{"label", "label!", "all"}

// Prune removes unused volumes: anonymous ones only, unless the filter
// all=true is given (Docker 23+). Label filters restrict it further.
func (s *Service) Prune(ctx context.Context, f filters.Args) (*apivolume.PruneReport, error) {
	if err := f.Validate(PruneFilters...); err != nil {
		return nil, err
	}
	all, err := f.GetBoolOrDefault("all", false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &apivolume.PruneReport{}
	names := make([]string, 0, len(s.vols))
	for n := range s.vols {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := s.vols[n]
		if len(v.refs) > 0 {
			continue
		}
		if _, anon := v.rec.Labels[AnonymousLabel]; !anon && !all {
			continue
		}
		if !f.MatchKVList("label", v.rec.Labels) {
			continue
		}
		if neg := f.Get("label!"); len(neg) > 0 && matchesAnyLabel(neg, v.rec.Labels) {
			continue
		}
		size, _ := dirSize(s.dataPath(n))
		if err := s.removeLocked(n, false); err != nil {
			s.log.Warn("prune volume", "name", n, "err", err)
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, n)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

func matchesAnyLabel(terms []string, labels map[string]string) bool {
	for _, t := range terms {
		k, v, hasV := strings.Cut(t, "=")
		if got, ok := labels[k]; ok && (!hasV || got == v) {
			return true
		}
	}
	return false
}
