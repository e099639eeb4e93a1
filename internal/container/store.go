package container

import (
	"encoding/json"
	"fmt"
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
	// seq numbers every write of a record, to bbolt or to its run-state
	// file (runstate.go): at Restore the newer of the two wins.
	seq atomic.Uint64
	// later holds the deletions answered before they are committed
	// (deletelater.go).
	later laterDeletes
}

func openStore(db *bolt.DB) (*store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketContainers, bucketNames} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &store{db: db}, err
}

// create stores a new record and reserves its name, failing with Conflict
// when the name is taken. extra, when not nil, runs in the same
// transaction (records of the container's new anonymous volumes).
func (s *store) create(r *Record, extra func(*bolt.Tx) error) error {
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
	return s.db.Update(func(tx *bolt.Tx) error { return s.put(tx, r) })
}

// saveIfExists writes r's current value unless r is no longer stored (a
// remove came first): for writes made after the fact, which must not
// bring a removed container back.
func (s *store) saveIfExists(r *Record) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketContainers).Get([]byte(r.ID)) == nil {
			return nil
		}
		return s.put(tx, r)
	})
}

// rename moves r's name reservation from old to r.Name and saves r.
func (s *store) rename(r *Record, old string) error {
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

// all loads every record. A record that does not decode is reported and
// skipped, so one damaged entry cannot keep the daemon from starting.
func (s *store) all() ([]*Record, []error) {
	var out []*Record
	var errs []error
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
