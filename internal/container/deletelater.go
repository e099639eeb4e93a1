package container

import (
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/volume"
)

// Removing a container answers before its record's deletion is committed
// (two fdatasyncs off the path of rm, and of run --rm's wait):
//
//   - first a tombstone goes to its run-state file (runstate.go: page
//     cache, no fsync), so that a kill -9 of berthd after the answer finds
//     the removal at Restore, which finishes it before serving;
//   - then the deletion is committed in the background, batched with any
//     other pending ones into one transaction;
//   - only after that commit are its files and snapshot removed: a power
//     loss before it can lose the tombstone and the deletion, and the
//     container then comes back whole (record, files, snapshot), stopped.
//
// The name is free at once: a create or rename that takes a name still
// held in bbolt by a pending deletion deletes that record in its own
// (synced) transaction. Containers with a restart policy, and removals
// with anonymous volumes to delete (-v), commit before answering as
// before: a restart policy must never bring back a removed container
// after a power loss.
type laterDeletes struct {
	mu      sync.Mutex
	pending map[string]*laterDelete // by container ID
	// inflight is the batch the flusher is committing (still held in
	// bbolt until that commit).
	inflight map[string]*laterDelete
	running  bool
	idle     sync.WaitGroup // the flusher, while it runs
}

type laterDelete struct {
	name string
	done chan error // gets the commit's result
}

// deleteLater queues the deletion of record id (named name) and returns
// where its commit's result will be sent.
func (s *store) deleteLater(id, name string) <-chan error {
	l := &s.later
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		l.pending = map[string]*laterDelete{}
	}
	d := &laterDelete{name: name, done: make(chan error, 1)}
	l.pending[id] = d
	if !l.running {
		l.running = true
		l.idle.Add(1)
		go s.flushLater()
	}
	return d.done
}

// flushLater commits the pending deletions, as many as are queued per
// transaction, until none is left.
func (s *store) flushLater() {
	l := &s.later
	defer l.idle.Done()
	for {
		l.mu.Lock()
		batch := l.pending
		l.pending, l.inflight = nil, batch
		if len(batch) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		failpoint.Crash("remove-before-commit")
		err := s.db.Update(func(tx *bolt.Tx) error {
			for id, d := range batch {
				if err := deleteTx(tx, id, d.name); err != nil {
					return err
				}
			}
			return nil
		})
		l.mu.Lock()
		l.inflight = nil
		l.mu.Unlock()
		for _, d := range batch {
			d.done <- err
		}
	}
}

// waitLater waits for the pending deletions to be committed (Close).
func (s *store) waitLater() { s.later.idle.Wait() }

// freeName deletes, in tx, the record that holds name in bbolt when its
// deletion is pending (it is gone for everyone already).
func (s *store) freeName(tx *bolt.Tx, name string) error {
	owner := tx.Bucket(bucketNames).Get([]byte(name))
	if owner == nil {
		return nil
	}
	id := string(owner)
	l := &s.later
	l.mu.Lock()
	_, pending := l.pending[id]
	_, inflight := l.inflight[id]
	pending = pending || inflight
	l.mu.Unlock()
	if !pending {
		return nil
	}
	// Deleting twice is harmless: the flusher's own deletion of id
	// finds nothing (and deleteTx only drops a name its owner holds).
	return deleteTx(tx, id, name)
}

// deleteAll deletes records in one (synced) transaction.
func (s *store) deleteAll(recs []*Record) error {
	var durable []*Record
	for _, r := range recs {
		if !r.Ephemeral {
			durable = append(durable, r)
		} else if err := s.delete(r, nil); err != nil {
			return err
		}
	}
	if len(durable) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range durable {
			if err := deleteTx(tx, r.ID, r.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteRecord deletes rec's record for Remove: now (synced), or after a
// tombstone, later (see above). committed waits for the commit; files may
// be removed only once it returned nil.
func (s *Service) deleteRecord(c *Container, rec *Record, plan *volume.Removal) (committed func() error, err error) {
	if rec.Ephemeral && plan == nil {
		// No transaction: its record file goes (ephemeral.go).
		if err := s.store.delete(rec, nil); err != nil {
			return nil, err
		}
		return func() error { return nil }, nil
	}
	if plan == nil && !keepsRunDurable(rec) {
		if err := s.writeRun(c, rec, true); err == nil {
			ch := s.store.deleteLater(rec.ID, rec.Name)
			return sync.OnceValue(func() error { return <-ch }), nil
		}
	}
	if err := s.store.delete(rec, plan.Delete); err != nil {
		return nil, err
	}
	return func() error { return nil }, nil
}
