package build

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	apibuild "github.com/moby/moby/api/types/build"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/image"
)

var bucketCache = []byte("build-cache")

// cacheEntry is the result of one build step, keyed by the step's cache
// key: the state (config and layers) the step produced.
type cacheEntry struct {
	State       *image.State `json:"state"`
	Parent      string       `json:"parent,omitempty"`
	Description string       `json:"description"`
	// Size is the disk usage of the layer this step added (0 for
	// metadata-only steps).
	Size       int64     `json:"size"`
	Created    time.Time `json:"created"`
	LastUsed   time.Time `json:"last_used"`
	UsageCount int       `json:"usage_count"`
	// Canonical, for an alias (COPY --from keyed by its source stage),
	// is the key of the entry keyed by content: the chain continues
	// from there.
	Canonical string `json:"canonical,omitempty"`
}

// cache is the build cache: entries in the daemon's metadata database,
// so it survives restarts. The layers entries reference are kept from
// garbage collection through Holders.
type cache struct {
	db *bolt.DB
}

func openCache(db *bolt.DB) (*cache, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketCache)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cache{db: db}, nil
}

// get returns the entry of key, or nil. It only reads (a write per
// step would cost an fsync each): touch records the use later.
func (c *cache) get(key string) *cacheEntry {
	var e *cacheEntry
	_ = c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCache).Get([]byte(key))
		if v == nil {
			return nil
		}
		var ce cacheEntry
		if err := json.Unmarshal(v, &ce); err != nil {
			return nil
		}
		e = &ce
		return nil
	})
	return e
}

// touch marks the entries keys used now, in one transaction.
func (c *cache) touch(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	now := time.Now().UTC()
	return c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		for _, k := range keys {
			v := b.Get([]byte(k))
			if v == nil {
				continue
			}
			var ce cacheEntry
			if err := json.Unmarshal(v, &ce); err != nil {
				continue
			}
			ce.LastUsed = now
			ce.UsageCount++
			nb, err := json.Marshal(&ce)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(k), nb); err != nil {
				return err
			}
		}
		return nil
	})
}

func (c *cache) put(key string, e *cacheEntry) error {
	now := time.Now().UTC()
	e.Created, e.LastUsed, e.UsageCount = now, now, 1
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCache).Put([]byte(key), b)
	})
}

func (c *cache) all() (map[string]*cacheEntry, error) {
	out := map[string]*cacheEntry{}
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCache).ForEach(func(k, v []byte) error {
			var e cacheEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("build cache entry %s: %w", k, err)
			}
			out[string(k)] = &e
			return nil
		})
	})
	return out, err
}

// holders lists the snapshots and blobs the cache references.
func (c *cache) holders() ([]string, []digest.Digest, error) {
	all, err := c.all()
	if err != nil {
		return nil, nil, err
	}
	var snaps []string
	var blobs []digest.Digest
	for _, e := range all {
		for _, l := range e.State.Layers {
			snaps = append(snaps, l.ChainID.String())
			blobs = append(blobs, l.Blob.Digest)
		}
	}
	return snaps, blobs, nil
}

// remove deletes the entries keys (all when keys is nil) and returns the
// removed keys.
func (c *cache) remove(keep func(k string, e *cacheEntry) bool) ([]string, int64, error) {
	var removed []string
	var size int64
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		var del [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var e cacheEntry
			if json.Unmarshal(v, &e) == nil && keep != nil && keep(string(k), &e) {
				return nil
			}
			del = append(del, append([]byte(nil), k...))
			size += e.Size
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
			removed = append(removed, string(k))
		}
		return nil
	})
	sort.Strings(removed)
	return removed, size, err
}

// usage is the build cache part of system df.
func (c *cache) usage() (*apibuild.DiskUsage, error) {
	all, err := c.all()
	if err != nil {
		return nil, err
	}
	du := &apibuild.DiskUsage{}
	for k, e := range all {
		lu := e.LastUsed
		r := apibuild.CacheRecord{
			ID: k[:25], Type: "regular", Description: e.Description, Size: e.Size,
			CreatedAt: e.Created, LastUsedAt: &lu, UsageCount: e.UsageCount,
		}
		if e.Parent != "" && len(e.Parent) >= 25 {
			r.Parents = []string{e.Parent[:25]}
		}
		du.Items = append(du.Items, r)
		du.TotalSize += e.Size
		du.Reclaimable += e.Size
	}
	sort.Slice(du.Items, func(i, j int) bool { return du.Items[i].CreatedAt.Before(du.Items[j].CreatedAt) })
	du.TotalCount = int64(len(du.Items))
	return du, nil
}

// evict removes least recently used entries until the entries' total
// size is at most keep; it returns the removed keys.
func (c *cache) evict(keep int64) ([]string, error) {
	all, err := c.all()
	if err != nil {
		return nil, err
	}
	var total int64
	keys := make([]string, 0, len(all))
	for k, e := range all {
		total += e.Size
		keys = append(keys, k)
	}
	if total <= keep {
		return nil, nil
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := all[keys[i]], all[keys[j]]
		if !a.LastUsed.Equal(b.LastUsed) {
			return a.LastUsed.Before(b.LastUsed)
		}
		return keys[i] < keys[j]
	})
	// An entry's layers are in every later step's state: dropping one
	// drops the steps built on it too, or nothing would be freed.
	children := map[string][]string{}
	for k, e := range all {
		if e.Parent != "" {
			children[e.Parent] = append(children[e.Parent], k)
		}
		if e.Canonical != "" {
			// An alias goes with the entry it stands for.
			children[e.Canonical] = append(children[e.Canonical], k)
		}
	}
	drop := map[string]bool{}
	var dropTree func(k string)
	dropTree = func(k string) {
		if drop[k] {
			return
		}
		drop[k] = true
		total -= all[k].Size
		for _, c := range children[k] {
			dropTree(c)
		}
	}
	for _, k := range keys {
		if total <= keep {
			break
		}
		if all[k].Size == 0 || drop[k] {
			continue // metadata entries cost nothing
		}
		dropTree(k)
	}
	removed, _, err := c.remove(func(k string, _ *cacheEntry) bool { return !drop[k] })
	return removed, err
}
