package image

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/content"
	"github.com/berth-dev/berth/internal/image/reference"
	"github.com/berth-dev/berth/internal/image/snapshot"
)

// Config builds a Service.
type Config struct {
	// Root holds content/ and snapshots/ (the daemon passes its data root).
	Root string
	// DB is the daemon's metadata database; the service uses the buckets
	// "images" and "image-refs".
	DB *bolt.DB
	// Registry is the registry client (mirrors, insecure hosts, auth).
	Registry *distribution.Client
	// Platform is the default platform images are pulled for.
	Platform ocispec.Platform
	// MaxConcurrentDownloads bounds the layers transferred at once (3 as
	// Docker when 0).
	MaxConcurrentDownloads int
	// Holders, if set, lists snapshot keys and blob digests that something
	// other than an image still uses (containers' writable snapshots); GC
	// keeps them and their ancestors.
	Holders func(ctx context.Context) (snapshots []string, blobs []digest.Digest, err error)
}

// Service is the image service. It is safe for concurrent use.
type Service struct {
	cfg     Config
	content *content.Store
	snaps   *snapshot.Snapshotter
	db      *bolt.DB
	// chainLocks serialises unpacking of one chain ID across concurrent
	// pulls sharing a layer.
	chainLocks sync.Map
	// gcLock: GC excludes every operation that adds references.
	gcLock sync.RWMutex
	// downloads is max-concurrent-downloads (SetMaxConcurrentDownloads).
	downloads atomic.Int32
}

// SetMaxConcurrentDownloads changes how many layers a pull transfers at
// once (a daemon reload); pulls that already started keep their limit.
func (s *Service) SetMaxConcurrentDownloads(n int) {
	if n <= 0 {
		n = 3
	}
	s.downloads.Store(int32(n))
}

var (
	bucketImages = []byte("images")
	bucketRefs   = []byte("image-refs")
)

// New opens the stores under cfg.Root.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Registry == nil {
		return nil, fmt.Errorf("image: config needs DB and Registry")
	}
	if cfg.MaxConcurrentDownloads <= 0 {
		cfg.MaxConcurrentDownloads = 3
	}
	if cfg.Platform.OS == "" {
		cfg.Platform = defaultPlatform()
	}
	cs, err := content.Open(filepath.Join(cfg.Root, "content"))
	if err != nil {
		return nil, err
	}
	sn, err := snapshot.Open(cfg.Root)
	if err != nil {
		return nil, err
	}
	if err := cfg.DB.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	svc := &Service{cfg: cfg, content: cs, snaps: sn, db: cfg.DB}
	svc.SetMaxConcurrentDownloads(cfg.MaxConcurrentDownloads)
	return svc, nil
}

// Content and Snapshots expose the stores to the container service
// (writable snapshots) and the API's export/commit paths.
func (s *Service) Content() *content.Store          { return s.content }
func (s *Service) Snapshots() *snapshot.Snapshotter { return s.snaps }

// record is what the service keeps for one image (one platform manifest),
// keyed by its ID, the digest of its config.
type record struct {
	ID digest.Digest `json:"id"`
	// Target is what a reference was resolved to when pulled: the index or
	// the manifest. Its digest is the image's RepoDigest.
	Target   ocispec.Descriptor `json:"target"`
	Manifest ocispec.Descriptor `json:"manifest"`
	Config   ocispec.Descriptor `json:"config"`
	Layers   []layer            `json:"layers"`
	Platform ocispec.Platform   `json:"platform"`
	// Size is the sum of the uncompressed layer sizes.
	Size int64 `json:"size"`
	// Added is when this image first appeared locally.
	Added time.Time `json:"added"`
	// LastTagTime is when a tag was last set on it.
	LastTagTime time.Time `json:"last_tag_time,omitempty"`
}

type layer struct {
	Blob    ocispec.Descriptor `json:"blob"`
	DiffID  digest.Digest      `json:"diff_id"`
	ChainID digest.Digest      `json:"chain_id"`
	Size    int64              `json:"size"`
}

// TopChainID is the snapshot a container's writable layer is prepared on.
func (r *record) TopChainID() string {
	if len(r.Layers) == 0 {
		return ""
	}
	return r.Layers[len(r.Layers)-1].ChainID.String()
}

func getRecord(tx *bolt.Tx, id digest.Digest) (*record, error) {
	b := tx.Bucket(bucketImages).Get([]byte(id.String()))
	if b == nil {
		return nil, errdefs.Newf(errdefs.NotFound, "No such image: %s", id)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("image %s: corrupt record: %w", id, err)
	}
	return &r, nil
}

func putRecord(tx *bolt.Tx, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(r.ID.String()), b)
}

func allRecords(tx *bolt.Tx) ([]*record, error) {
	var out []*record
	err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("image %s: corrupt record: %w", k, err)
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}

// refsOf returns the references (canonical strings) that point to id,
// split into tags and digests, sorted.
func refsOf(tx *bolt.Tx, id digest.Digest) (tags, digests []string) {
	_ = tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		if string(v) == id.String() {
			if strings.Contains(string(k), "@") {
				digests = append(digests, string(k))
			} else {
				tags = append(tags, string(k))
			}
		}
		return nil
	})
	sort.Strings(tags)
	sort.Strings(digests)
	return tags, digests
}

// lookup resolves what a user typed — a reference, a full or short image
// ID, with or without "sha256:" — to an image record, as Docker does.
func (s *Service) lookup(tx *bolt.Tx, name string) (*record, error) {
	if ref, err := reference.Parse(name); err == nil {
		if v := tx.Bucket(bucketRefs).Get([]byte(ref.String())); v != nil {
			return getRecord(tx, digest.Digest(v))
		}
	}
	hex := strings.TrimPrefix(name, "sha256:")
	if len(hex) >= 1 && len(hex) <= 64 && isHex(hex) {
		var found []digest.Digest
		c := tx.Bucket(bucketImages).Cursor()
		prefix := []byte("sha256:" + hex)
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
			found = append(found, digest.Digest(k))
		}
		switch len(found) {
		case 1:
			return getRecord(tx, found[0])
		case 0:
		default:
			return nil, errdefs.Newf(errdefs.InvalidArgument, "ambiguous image ID prefix %q", name)
		}
	}
	return nil, errdefs.Newf(errdefs.NotFound, "No such image: %s", name)
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// chainLock returns the mutex serialising work on one chain ID.
func (s *Service) chainLock(chain digest.Digest) *sync.Mutex {
	m, _ := s.chainLocks.LoadOrStore(chain, &sync.Mutex{})
	return m.(*sync.Mutex)
}

type (
	snapshotInfo = snapshot.Info
	contentInfo  = content.Info
)

func nowUTC() time.Time { return time.Now().UTC() }

// withDigest is the canonical "name@digest" reference of ref's repository.
func withDigest(ref reference.Reference, d digest.Digest) string {
	r, err := ref.Repository().WithDigest(d)
	if err != nil {
		return ref.Name() + "@" + d.String()
	}
	return r.String()
}
