package snapshot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Snapshotter keeps overlay layer directories and their parent chains under
// <root>/snapshots:
//
//	snapshots/metadata.db      bbolt: key → id, kind, parent, created, labels, usage, children
//	snapshots/<id>/fs          the layer (Committed), upper (Active) or empty dir (View)
//	snapshots/<id>/work        overlay workdir, Active snapshots only
//
// Ids are short decimal numbers, so that long chains still fit in a mount's
// option string on old kernels. Metadata changes are bbolt transactions;
// directories are created inside the transaction that records them and
// removed after the one that forgets them, so a crash leaves at worst an
// unreferenced directory, which Cleanup removes.
//
// The usual life of a layer: Prepare(tmpKey, parentChainID) → unpack into
// Upper(tmpKey) with archive.Apply → Commit(chainID, tmpKey). A container's
// root filesystem is Prepare(containerKey, topChainID), mounted with
// MountAll, and its changes are archive.Diff(Upper(containerKey)).
//
// All methods are safe for concurrent use.
type Snapshotter struct {
	dir string // <root>/snapshots
	db  *bolt.DB

	overlayOnce sync.Once
	overlayOpts []string // options turning off kernel defaults a layer diff cannot express
}

var (
	bucketRoot      = []byte("v1")
	bucketSnapshots = []byte("snapshots")
	bucketLabels    = []byte("labels")
	bucketChildren  = []byte("children")
	keyID           = []byte("id")
	keyKind         = []byte("kind")
	keyParent       = []byte("parent")
	keyCreated      = []byte("created")
	keySize         = []byte("size")
	keyInodes       = []byte("inodes")
)

const metadataFile = "metadata.db"

// trashPrefix names directories on their way out (see Cleanup).
const trashPrefix = ".trash-"

// Open opens (creating if needed) the snapshotter whose files live in
// <root>/snapshots. Only one process may have it open: a second Open waits
// a second for the lock and fails with class Unavailable.
func Open(root string) (*Snapshotter, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(abs, "snapshots")
	if strings.ContainsAny(dir, ",:\\") {
		// Paths become overlay mount options, where these are separators.
		return nil, errdefs.Newf(errdefs.InvalidArgument, "snapshot root %q contains ',', ':' or '\\'", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot root: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, metadataFile), 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, errdefs.Newf(errdefs.Unavailable, "snapshot metadata %s is locked by another process", dir)
		}
		return nil, fmt.Errorf("snapshot metadata: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		rb, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err == nil {
			_, err = rb.CreateBucketIfNotExists(bucketSnapshots)
		}
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("snapshot metadata: %w", err)
	}
	return &Snapshotter{dir: dir, db: db}, nil
}

// Close releases the metadata database.
func (s *Snapshotter) Close() error { return s.db.Close() }

func (s *Snapshotter) idDir(id uint64) string {
	return filepath.Join(s.dir, strconv.FormatUint(id, 10))
}
func (s *Snapshotter) fsDir(id uint64) string { return filepath.Join(s.idDir(id), "fs") }
func (s *Snapshotter) workDir(id uint64) string {
	return filepath.Join(s.idDir(id), "work")
}

// record is the stored form of one snapshot.
type record struct {
	id      uint64
	kind    Kind
	parent  string
	created time.Time
	size    int64
	inodes  int64
}

func snapshots(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketRoot).Bucket(bucketSnapshots) }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func be(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func readRecord(b *bolt.Bucket) record {
	r := record{
		id:     u64(b.Get(keyID)),
		parent: string(b.Get(keyParent)),
		size:   int64(u64(b.Get(keySize))),
		inodes: int64(u64(b.Get(keyInodes))),
	}
	if k := b.Get(keyKind); len(k) == 1 {
		r.kind = Kind(k[0])
	}
	r.created = time.Unix(0, int64(u64(b.Get(keyCreated)))).UTC()
	return r
}

func writeRecord(b *bolt.Bucket, r record) error {
	for k, v := range map[string][]byte{
		string(keyID): be(r.id), string(keyKind): {byte(r.kind)}, string(keyParent): []byte(r.parent),
		string(keyCreated): be(uint64(r.created.UnixNano())), string(keySize): be(uint64(r.size)),
		string(keyInodes): be(uint64(r.inodes)),
	} {
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

func writeLabels(b *bolt.Bucket, labels map[string]string) error {
	lb, err := b.CreateBucketIfNotExists(bucketLabels)
	if err != nil {
		return err
	}
	for k, v := range labels {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

func readLabels(b *bolt.Bucket) map[string]string {
	lb := b.Bucket(bucketLabels)
	if lb == nil {
		return nil
	}
	m := map[string]string{}
	lb.ForEach(func(k, v []byte) error { m[string(k)] = string(v); return nil })
	if len(m) == 0 {
		return nil
	}
	return m
}

// get returns the bucket and record of key, or a NotFound error.
func get(tx *bolt.Tx, key string) (*bolt.Bucket, record, error) {
	if key == "" {
		return nil, record{}, errdefs.Newf(errdefs.InvalidArgument, "empty snapshot key")
	}
	b := snapshots(tx).Bucket([]byte(key))
	if b == nil {
		return nil, record{}, errdefs.Newf(errdefs.NotFound, "snapshot %q not found", key)
	}
	return b, readRecord(b), nil
}

// parentIDs returns the ids of the ancestors of a snapshot whose parent is
// parent, nearest first.
func parentIDs(tx *bolt.Tx, parent string) ([]uint64, error) {
	var ids []uint64
	for p := parent; p != ""; {
		_, r, err := get(tx, p)
		if err != nil {
			return nil, fmt.Errorf("broken parent chain: %w", err)
		}
		ids = append(ids, r.id)
		p = r.parent
		if len(ids) > 1<<16 {
			return nil, errors.New("parent chain loops")
		}
	}
	return ids, nil
}

// Prepare creates an Active snapshot key on top of the committed parent
// ("" for none) and returns the mounts of its root: a bind mount of its fs
// directory without a parent, else an overlay with the parent chain as
// lower directories and fs as upper.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	return s.create(ctx, Active, key, parent, labels)
}

// View creates a read-only snapshot key of the committed parent and
// returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]Mount, error) {
	return s.create(ctx, View, key, parent, nil)
}

func (s *Snapshotter) create(ctx context.Context, kind Kind, key, parent string, labels map[string]string) ([]Mount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "empty snapshot key")
	}
	var made string
	var mounts []Mount
	err := s.db.Update(func(tx *bolt.Tx) error {
		sb := snapshots(tx)
		if sb.Bucket([]byte(key)) != nil {
			return errdefs.Newf(errdefs.AlreadyExists, "snapshot %q already exists", key)
		}
		var parents []uint64
		if parent != "" {
			pb, pr, err := get(tx, parent)
			if err != nil {
				return fmt.Errorf("parent: %w", err)
			}
			if pr.kind != Committed {
				return errdefs.Newf(errdefs.FailedPrecondition, "parent %q is %s, not committed", parent, pr.kind)
			}
			cb, err := pb.CreateBucketIfNotExists(bucketChildren)
			if err != nil {
				return err
			}
			if err := cb.Put([]byte(key), nil); err != nil {
				return err
			}
			if parents, err = parentIDs(tx, parent); err != nil {
				return err
			}
		}
		id, err := sb.NextSequence()
		if err != nil {
			return err
		}
		dir := s.idDir(id)
		// A directory with an id that was never committed is a crash
		// leftover: ids are only taken by committed transactions.
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		made = dir
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		if err := os.Mkdir(s.fsDir(id), 0o755); err != nil {
			return err
		}
		if kind == Active {
			if err := os.Mkdir(s.workDir(id), 0o700); err != nil {
				return err
			}
		}
		b, err := sb.CreateBucket([]byte(key))
		if err != nil {
			return err
		}
		if err := writeRecord(b, record{id: id, kind: kind, parent: parent, created: time.Now()}); err != nil {
			return err
		}
		if err := writeLabels(b, labels); err != nil {
			return err
		}
		mounts = s.mounts(kind, id, parents)
		return nil
	})
	if err != nil {
		if made != "" {
			os.RemoveAll(made)
		}
		return nil, err
	}
	return mounts, nil
}

// Commit turns the Active snapshot key into the Committed snapshot name
// (typically a layer's chain ID). key disappears; its content must not be
// mounted or changed any more.
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	return s.commit(ctx, name, key, "", false, nil)
}

// CommitMeasured is Commit with the snapshot's disk usage (bytes and
// inodes, as Usage counts them) given by a caller that has just walked
// the quiescent directory anyway, so that Commit does not walk it again.
func (s *Snapshotter) CommitMeasured(ctx context.Context, name, key string, size, inodes int64) error {
	return s.commit(ctx, name, key, "", false, &[2]int64{size, inodes})
}

// CommitOn is Commit that also sets the parent: a layer can be unpacked
// into a parentless Active snapshot (so that the layers of an image unpack
// in parallel, each into its own directory) and put on its parent chain
// when committed. The snapshot must have no parent yet, or this one.
func (s *Snapshotter) CommitOn(ctx context.Context, name, key, parent string) error {
	return s.commit(ctx, name, key, parent, true, nil)
}

func (s *Snapshotter) commit(ctx context.Context, name, key, parent string, setParent bool, measured *[2]int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name == "" {
		return errdefs.Newf(errdefs.InvalidArgument, "empty snapshot name")
	}
	var id uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		_, r, err := get(tx, key)
		id = r.id
		return err
	}); err != nil {
		return err
	}
	// Measured outside the transaction: the snapshot is no longer written.
	var size, inodes int64
	var err error
	if measured != nil {
		size, inodes = measured[0], measured[1]
	} else if size, inodes, err = diskUsage(ctx, s.fsDir(id)); err != nil {
		return fmt.Errorf("measuring snapshot %q: %w", key, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		sb := snapshots(tx)
		b, r, err := get(tx, key)
		if err != nil {
			return err
		}
		if r.kind != Active {
			return errdefs.Newf(errdefs.FailedPrecondition, "snapshot %q is %s; only active snapshots can be committed", key, r.kind)
		}
		if r.id != id {
			return errdefs.Newf(errdefs.Conflict, "snapshot %q changed during commit", key)
		}
		if sb.Bucket([]byte(name)) != nil {
			return errdefs.Newf(errdefs.AlreadyExists, "snapshot %q already exists", name)
		}
		if !setParent {
			parent = r.parent
		} else if r.parent != "" && r.parent != parent {
			return errdefs.Newf(errdefs.FailedPrecondition, "snapshot %q already has parent %q", key, r.parent)
		}
		if r.parent != "" {
			if pb := sb.Bucket([]byte(r.parent)); pb != nil && pb.Bucket(bucketChildren) != nil {
				if err := pb.Bucket(bucketChildren).Delete([]byte(key)); err != nil {
					return err
				}
			}
		}
		if parent != "" {
			pb, pr, err := get(tx, parent)
			if err != nil {
				return fmt.Errorf("parent: %w", err)
			}
			if pr.kind != Committed {
				return errdefs.Newf(errdefs.FailedPrecondition, "parent %q is %s, not committed", parent, pr.kind)
			}
			cb, err := pb.CreateBucketIfNotExists(bucketChildren)
			if err != nil {
				return err
			}
			if err := cb.Put([]byte(name), nil); err != nil {
				return err
			}
		}
		labels := readLabels(b)
		nb, err := sb.CreateBucket([]byte(name))
		if err != nil {
			return err
		}
		r.kind, r.parent, r.size, r.inodes = Committed, parent, size, inodes
		if err := writeRecord(nb, r); err != nil {
			return err
		}
		if err := writeLabels(nb, labels); err != nil {
			return err
		}
		return sb.DeleteBucket([]byte(key))
	})
	if err != nil {
		return err
	}
	// The workdir is only needed while the snapshot is an overlay upper.
	os.RemoveAll(s.workDir(id))
	return nil
}

// Mounts returns the mounts of an existing snapshot: as Prepare or View
// returned them, or for a Committed one, a read-only view of it.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var mounts []Mount
	err := s.db.View(func(tx *bolt.Tx) error {
		_, r, err := get(tx, key)
		if err != nil {
			return err
		}
		parents, err := parentIDs(tx, r.parent)
		if err != nil {
			return err
		}
		mounts = s.mounts(r.kind, r.id, parents)
		return nil
	})
	return mounts, err
}

// Upper returns the directory holding a snapshot's own content (the
// overlay upper of an Active snapshot, the layer of a Committed one) and
// the directories of its ancestors, nearest first: the arguments of
// archive.Diff and archive.Apply. A View has no upper.
func (s *Snapshotter) Upper(ctx context.Context, key string) (string, []string, error) {
	var upper string
	var lowers []string
	err := s.db.View(func(tx *bolt.Tx) error {
		_, r, err := get(tx, key)
		if err != nil {
			return err
		}
		if r.kind == View {
			return errdefs.Newf(errdefs.FailedPrecondition, "snapshot %q is a view and has no upper directory", key)
		}
		parents, err := parentIDs(tx, r.parent)
		if err != nil {
			return err
		}
		upper = s.fsDir(r.id)
		for _, p := range parents {
			lowers = append(lowers, s.fsDir(p))
		}
		return nil
	})
	return upper, lowers, err
}

// Stat describes one snapshot.
func (s *Snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	var info Info
	err := s.db.View(func(tx *bolt.Tx) error {
		b, r, err := get(tx, key)
		if err != nil {
			return err
		}
		info = Info{Key: key, Parent: r.parent, Kind: r.kind, Created: r.created, Labels: readLabels(b)}
		return nil
	})
	return info, err
}

// Walk calls fn for every snapshot, in key order. fn runs outside any
// transaction and may call the Snapshotter; it sees the snapshots as they
// were when Walk started. An error from fn stops the walk and is returned.
func (s *Snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return snapshots(tx).ForEachBucket(func(k []byte) error {
			b := snapshots(tx).Bucket(k)
			r := readRecord(b)
			infos = append(infos, Info{Key: string(k), Parent: r.parent, Kind: r.kind, Created: r.created, Labels: readLabels(b)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, i := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Usage returns the disk space (allocated blocks) and inodes of a
// snapshot's own content, not its parents'. For a Committed snapshot the
// figures were measured at commit; otherwise they are measured now.
func (s *Snapshotter) Usage(ctx context.Context, key string) (int64, int64, error) {
	var r record
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		_, r, err = get(tx, key)
		return err
	}); err != nil {
		return 0, 0, err
	}
	if r.kind == Committed {
		return r.size, r.inodes, nil
	}
	return diskUsage(ctx, s.fsDir(r.id))
}

// Remove deletes a snapshot and its directory. A snapshot with children is
// refused (FailedPrecondition): remove them first. The caller must have
// unmounted it.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		sb := snapshots(tx)
		b, r, err := get(tx, key)
		if err != nil {
			return err
		}
		if cb := b.Bucket(bucketChildren); cb != nil {
			var kids []string
			cb.ForEach(func(k, _ []byte) error { kids = append(kids, string(k)); return nil })
			if len(kids) > 0 {
				return errdefs.Newf(errdefs.FailedPrecondition, "snapshot %q has %d children (%s); remove them first",
					key, len(kids), strings.Join(kids[:min(len(kids), 3)], ", "))
			}
		}
		if r.parent != "" {
			if pb := sb.Bucket([]byte(r.parent)); pb != nil && pb.Bucket(bucketChildren) != nil {
				if err := pb.Bucket(bucketChildren).Delete([]byte(key)); err != nil {
					return err
				}
			}
		}
		id = r.id
		return sb.DeleteBucket([]byte(key))
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(s.idDir(id)); err != nil {
		return fmt.Errorf("snapshot %q removed, but not its directory (Cleanup will retry): %w", key, err)
	}
	return nil
}

// Cleanup removes what no metadata references: directories of snapshots
// whose creation or removal was interrupted by a crash, and workdirs of
// committed snapshots. Unknown names are left alone.
func (s *Snapshotter) Cleanup(ctx context.Context) error {
	var trash []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		kinds := map[uint64]Kind{}
		snapshots(tx).ForEachBucket(func(k []byte) error {
			r := readRecord(snapshots(tx).Bucket(k))
			kinds[r.id] = r.kind
			return nil
		})
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, trashPrefix) {
				trash = append(trash, filepath.Join(s.dir, name))
				continue
			}
			id, err := strconv.ParseUint(name, 10, 64)
			if err != nil || !e.IsDir() {
				continue
			}
			kind, ok := kinds[id]
			if !ok {
				// Renamed inside the transaction, so a Prepare cannot
				// be handed this id while it is being deleted.
				t := filepath.Join(s.dir, fmt.Sprintf("%s%s-%d", trashPrefix, name, time.Now().UnixNano()))
				if err := os.Rename(filepath.Join(s.dir, name), t); err != nil {
					return err
				}
				trash = append(trash, t)
			} else if kind == Committed {
				if _, err := os.Lstat(s.workDir(id)); err == nil {
					trash = append(trash, s.workDir(id))
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range trash {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.RemoveAll(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mounts describes how to mount a snapshot whose ancestors are parents.
func (s *Snapshotter) mounts(kind Kind, id uint64, parents []uint64) []Mount {
	bind := func(dir string, ro bool) []Mount {
		opt := "rw"
		if ro {
			opt = "ro"
		}
		return []Mount{{Type: "bind", Source: dir, Options: []string{opt, "rbind"}}}
	}
	lowerdir := func(ids []uint64) string {
		dirs := make([]string, len(ids))
		for i, p := range ids {
			dirs[i] = s.fsDir(p)
		}
		return "lowerdir=" + strings.Join(dirs, ":")
	}
	switch kind {
	case Active:
		if len(parents) == 0 {
			return bind(s.fsDir(id), false)
		}
		opts := append(slices.Clone(s.defaultOverlayOptions()),
			"workdir="+s.workDir(id), "upperdir="+s.fsDir(id), lowerdir(parents))
		return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	case Committed:
		parents = append([]uint64{id}, parents...)
	}
	// Read-only: a View's parents, or a Committed snapshot and its own.
	switch len(parents) {
	case 0:
		return bind(s.fsDir(id), true)
	case 1:
		return bind(s.fsDir(parents[0]), true)
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", lowerdir(parents)}}}
}

// defaultOverlayOptions turns off overlay features the host's kernel may
// enable by default but that archive.Diff cannot express in a layer
// (renamed directories, metadata-only copy-up). On kernels that leave them
// off (the usual case) nothing is added.
func (s *Snapshotter) defaultOverlayOptions() []string {
	s.overlayOnce.Do(func() {
		for _, p := range []string{"redirect_dir", "metacopy"} {
			b, err := os.ReadFile("/sys/module/overlay/parameters/" + p)
			if v := strings.TrimSpace(string(b)); err == nil && v != "N" && v != "off" {
				s.overlayOpts = append(s.overlayOpts, p+"=off")
			}
		}
	})
	return s.overlayOpts
}

// diskUsage sums the allocated blocks and counts the distinct inodes under
// dir, without following symlinks.
func diskUsage(ctx context.Context, dir string) (int64, int64, error) {
	seen := map[uint64]struct{}{}
	var size, inodes int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if _, dup := seen[st.Ino]; dup {
			return nil
		}
		seen[st.Ino] = struct{}{}
		inodes++
		size += st.Blocks * 512
		return nil
	})
	return size, inodes, err
}
