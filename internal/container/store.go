package container

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

var (
	bucketContainers = []byte("containers")
	bucketNames      = []byte("container-names")
)

// store persists records in the daemon's metadata database. Every write is
// one bbolt transaction, so a crash leaves the previous or the next state,
// never a mix (a record and its name reservation change together).
type store struct {
	db *bolt.DB
	// dir holds the containers' data directories, where ephemeral
	// records live (ephemeral.go); boot is this boot's id.
	dir, boot string
	// ephMu orders the writes and the deletion of ephemeral records (a
	// late write must not bring a deleted one back).
	ephMu sync.Mutex
	// seq numbers every write of a record, to bbolt or to its run-state
	// file (runstate.go): at Restore the newer of the two wins.
	seq atomic.Uint64
	// later holds the deletions answered before they are committed
	// (deletelater.go).
	later laterDeletes
}

func openStore(db *bolt.DB, dir string) (*store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketContainers, bucketNames} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &store{db: db, dir: dir, boot: bootID()}, err
}

// create stores a new record and reserves its name, failing with Conflict
// when the name is taken. extra, when not nil, runs in the same
// transaction (records of the container's new anonymous volumes).
func (s *store) create(r *Record, extra func(*bolt.Tx) error) error {
	if r.Ephemeral {
		if extra != nil {
			return fmt.Errorf("container %s: an ephemeral record cannot hold volume references", r.ID)
		}
		s.ephMu.Lock()
		defer s.ephMu.Unlock()
		return s.writeEphemeral(r, true)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		names := tx.Bucket(bucketNames)
		if err := s.freeName(tx, r.Name); err != nil {
			return err
		}
		if owner := names.Get([]byte(r.Name)); owner != nil {
			return errdefs.Newf(errdefs.Conflict, "Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", r.Name, string(owner))
		}
		if err := names.Put([]byte(r.Name), []byte(r.ID)); err != nil {
			return err
		}
		return s.put(tx, r)
	})
}

// save writes r's current value.
func (s *store) save(r *Record) error {
	if r.Ephemeral {
		s.ephMu.Lock()
		defer s.ephMu.Unlock()
		return s.writeEphemeral(r, false)
	}
	return s.db.Update(func(tx *bolt.Tx) error { return s.put(tx, r) })
}

// saveIfExists writes r's current value unless r is no longer stored (a
// remove came first): for writes made after the fact, which must not
// bring a removed container back.
func (s *store) saveIfExists(r *Record) error {
	if r.Ephemeral {
		s.ephMu.Lock()
		defer s.ephMu.Unlock()
		if !s.ephemeralExists(r.ID) {
			return nil
		}
		return s.writeEphemeral(r, false)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketContainers).Get([]byte(r.ID)) == nil {
			return nil
		}
		return s.put(tx, r)
	})
}

// rename moves r's name reservation from old to r.Name and saves r.
func (s *store) rename(r *Record, old string) error {
	if r.Ephemeral {
		// Its name is reserved in memory only (ephemeral.go).
		return s.save(r)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketNames)
		if err := s.freeName(tx, r.Name); err != nil {
			return err
		}
		if owner := names.Get([]byte(r.Name)); owner != nil {
			return errdefs.Newf(errdefs.Conflict, "Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", r.Name, string(owner))
		}
		if err := names.Delete([]byte(old)); err != nil {
			return err
		}
		if err := names.Put([]byte(r.Name), []byte(r.ID)); err != nil {
			return err
		}
		return s.put(tx, r)
	})
}

// delete removes r and its name. extra, when not nil, runs in the same
// transaction (deleting the records of the container's anonymous volumes).
func (s *store) delete(r *Record, extra func(*bolt.Tx) error) error {
	if r.Ephemeral {
		if extra != nil {
			if err := s.db.Update(extra); err != nil {
				return err
			}
		}
		s.ephMu.Lock()
		defer s.ephMu.Unlock()
		return s.deleteEphemeral(r.ID)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		return deleteTx(tx, r.ID, r.Name)
	})
}

// deleteTx deletes the record id and its name in tx.
func deleteTx(tx *bolt.Tx, id, name string) error {
	names := tx.Bucket(bucketNames)
	if owner := names.Get([]byte(name)); string(owner) == id {
		if err := names.Delete([]byte(name)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketContainers).Delete([]byte(id))
}

// all loads every record, bbolt's and the ephemeral ones. A record that
// does not decode is reported and skipped, so one damaged entry cannot
// keep the daemon from starting.
func (s *store) all() ([]*Record, []error) {
	out, errs := s.allEphemeral()
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				errs = append(errs, fmt.Errorf("container %s: corrupt record: %w", k, err))
				return nil
			}
			out = append(out, &r)
			return nil
		})
	})
	return out, errs
}

// put writes r in the containers bucket, with the next write number.
func (s *store) put(tx *bolt.Tx, r *Record) error {
	r.Seq = s.seq.Add(1)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketContainers).Put([]byte(r.ID), b)
}
