package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	apivolume "github.com/moby/moby/api/types/volume"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	// DriverLocal is the only driver: volumes are directories (or
	// mounts) under the data root.
	DriverLocal = "local"
	// AnonymousLabel marks anonymous volumes, as Docker 23+ does; prune
	// removes only those by default.
	AnonymousLabel = "com.docker.volume.anonymous"
)

var bucket = []byte("volumes")

// validName is Docker's rule for local volume names. It makes a name one
// path component that is never "." or "..".
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName applies Docker's local-driver name rule.
func ValidateName(name string) error {
	if len(name) == 1 {
		return errdefs.Newf(errdefs.InvalidArgument, "volume name is too short, names should be at least two alphanumeric characters")
	}
	if !validName.MatchString(name) {
		return errdefs.Newf(errdefs.InvalidArgument, "%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name)
	}
	return nil
}

// record is what is persisted for one volume (JSON in the "volumes"
// bucket, keyed by name).
type record struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// vol is the in-memory state of one volume; guarded by Service.mu.
type vol struct {
	rec    record
	refs   map[string]bool // containers that reference it
	active map[string]bool // running containers that have it mounted
}

// Config builds a Service.
type Config struct {
	// Root is the daemon's data root; volumes live in Root/volumes.
	Root string
	DB   *bolt.DB
	// Events receives volume events (create, destroy, mount, unmount)
	// with Docker's attributes; nil drops them.
	Events func(action, name string, attrs map[string]string)
	Log    *slog.Logger
}

// Service manages volumes. It is safe for concurrent use.
type Service struct {
	cfg  Config
	root string
	log  *slog.Logger

	mu   sync.Mutex
	vols map[string]*vol
	// deleting are volumes whose records are gone and whose directories
	// are being removed in the background; their names are not reusable
	// until that is done.
	deleting map[string]bool

	// spares are names of anonymous volumes whose directories are made
	// ahead of time (no record yet): taking one keeps the mkdirs off a
	// container's create. They are filled after the first anonymous
	// volume is made; a crash leaves them as leftovers New removes.
	spares chan string
	refill chan struct{}
	done   chan struct{}
	bg     sync.WaitGroup
	fillOn sync.Once
}

// spareCount is how many anonymous volume directories are kept ready.
const spareCount = 8

// New opens the volume store, loads every record and removes volume
// directories without a record (a crash between creating the directory
// and writing the record, or during a removal).
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Root == "" {
		return nil, fmt.Errorf("volume: config needs Root and DB")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Service{cfg: cfg, root: filepath.Join(cfg.Root, "volumes"), log: cfg.Log, vols: map[string]*vol{},
		deleting: map[string]bool{}, spares: make(chan string, spareCount), refill: make(chan struct{}, 1), done: make(chan struct{})}
	if err := os.MkdirAll(s.root, 0o701); err != nil {
		return nil, err
	}
	// Keys of records, even ones that do not decode: their data is kept.
	keys := map[string]bool{}
	err := cfg.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			keys[string(k)] = true
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				s.log.Error("volume: corrupt record skipped (its data is kept)", "name", string(k), "err", err)
				return nil
			}
			s.vols[r.Name] = &vol{rec: r, refs: map[string]bool{}, active: map[string]bool{}}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	ents, _ := os.ReadDir(s.root)
	for _, e := range ents {
		if keys[e.Name()] || !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.root, e.Name())
		s.log.Info("removing leftover volume directory", "path", dir)
		if err := removeDir(dir); err != nil {
			s.log.Warn("remove leftover volume directory", "path", dir, "err", err)
		}
	}
	return s, nil
}

// Close stops the background work (waiting for removals in flight) and
// removes the spare directories.
func (s *Service) Close() error {
	close(s.done)
	s.bg.Wait()
	var dirs []string
	for {
		select {
		case n := <-s.spares:
			dirs = append(dirs, filepath.Join(s.root, n))
			continue
		default:
		}
		break
	}
	if len(dirs) == 0 {
		return nil
	}
	return removeDirs(dirs)
}

// takeSpare returns a name for a new anonymous volume and whether its
// directories already exist.
func (s *Service) takeSpare() (string, bool) {
	s.fillOn.Do(func() {
		s.bg.Add(1)
		go s.fill()
	})
	defer func() {
		select {
		case s.refill <- struct{}{}:
		default:
		}
	}()
	select {
	case n := <-s.spares:
		return n, true
	default:
		return newName(), false
	}
}

// fill keeps spares full until Close.
func (s *Service) fill() {
	defer s.bg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.refill:
		}
		for len(s.spares) < cap(s.spares) {
			select {
			case <-s.done:
				return
			default:
			}
			n := newName()
			dir := filepath.Join(s.root, n)
			if err := os.Mkdir(dir, 0o701); err != nil {
				s.log.Warn("volume: make spare directory", "err", err)
				break
			}
			if err := os.Mkdir(filepath.Join(dir, "_data"), 0o755); err != nil {
				_ = os.Remove(dir)
				s.log.Warn("volume: make spare directory", "err", err)
				break
			}
			s.spares <- n
		}
	}
}

// Restore finishes start-up once the container service has registered its
// containers' references and active mounts: a driver-mounted volume that
// no running container uses any more (its containers stopped while berthd
// was down) is unmounted.
func (s *Service) Restore(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.vols {
		if len(v.active) == 0 && needsMount(v.rec.Options) && isMountPoint(s.dataPath(v.rec.Name)) {
			if err := unmount(s.dataPath(v.rec.Name)); err != nil {
				s.log.Warn("unmount unused volume", "name", v.rec.Name, "err", err)
			}
		}
	}
}

func (s *Service) dataPath(name string) string { return filepath.Join(s.root, name, "_data") }

// Path returns the host directory of a volume's data, whether or not it
// exists.
func (s *Service) Path(name string) string { return s.dataPath(name) }

func (s *Service) event(action, name string, attrs map[string]string) {
	if s.cfg.Events == nil {
		return
	}
	a := map[string]string{"driver": DriverLocal}
	for k, v := range attrs {
		a[k] = v
	}
	s.cfg.Events(action, name, a)
}

// CreateOptions are a volume's creation parameters.
type CreateOptions struct {
	// Name is the volume's name; "" makes an anonymous volume (64-hex
	// name, AnonymousLabel set).
	Name    string
	Driver  string
	Options map[string]string
	Labels  map[string]string
}

// Create makes a volume, or returns the existing one with that name (as
// Docker does) when the driver matches.
func (s *Service) Create(ctx context.Context, o CreateOptions) (*apivolume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.getOrCreate(o)
	if err != nil {
		return nil, err
	}
	out := s.describe(v)
	return &out, nil
}

// getOrCreate runs with mu held.
func (s *Service) getOrCreate(o CreateOptions) (*vol, error) {
	vs, _, err := s.getOrCreateAll([]CreateOptions{o}, false)
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// getOrCreateAll finds or creates several volumes, writing the records of
// the new ones in one transaction. It runs with mu held; on error nothing
// new is left.
//
// With deferAnonymous, the records of new anonymous volumes are not
// written but returned, for the caller to write in its own transaction
// (a container's create writes them with the container's record: one
// transaction for both, and a crash leaves both or neither).
func (s *Service) getOrCreateAll(os_ []CreateOptions, deferAnonymous bool) (_ []*vol, deferred []record, retErr error) {
	names := make([]string, len(os_))
	premade := map[string]bool{}
	anonymous := map[string]bool{}
	var created []record
	defer func() {
		if retErr != nil {
			for _, r := range created {
				_ = removeDir(filepath.Join(s.root, r.Name))
			}
		}
	}()
	pending := map[string]int{}
	for i, o := range os_ {
		if o.Driver != "" && o.Driver != DriverLocal {
			return nil, nil, errdefs.Newf(errdefs.NotFound, "error looking up volume plugin %s: plugin %q not found", o.Driver, o.Driver)
		}
		labels := o.Labels
		if o.Name == "" {
			var spare bool
			o.Name, spare = s.takeSpare()
			if spare {
				premade[o.Name] = true
			}
			anonymous[o.Name] = true
			labels = map[string]string{}
			for k, v := range o.Labels {
				labels[k] = v
			}
			labels[AnonymousLabel] = ""
		}
		if err := ValidateName(o.Name); err != nil {
			return nil, nil, err
		}
		if s.deleting[o.Name] {
			return nil, nil, errdefs.Newf(errdefs.Conflict, "volume %s is being removed, try again", o.Name)
		}
		names[i] = o.Name
		if _, ok := s.vols[o.Name]; ok {
			continue
		}
		if _, ok := pending[o.Name]; ok {
			continue
		}
		if err := validateOptions(o.Options); err != nil {
			return nil, nil, err
		}
		rec := record{Name: o.Name, Driver: DriverLocal, Labels: labels, Options: o.Options, CreatedAt: time.Now()}
		created = append(created, rec)
		pending[o.Name] = len(created) - 1
	}
	// Directories first, then the records: a crash in between leaves
	// directories without a record, which New removes. Several volumes'
	// directories are made concurrently (mkdir latency dominates on a
	// busy disk).
	errs := make([]error, len(created))
	var wg sync.WaitGroup
	for i, r := range created {
		if premade[r.Name] {
			continue
		}
		mk := func() {
			dir := filepath.Join(s.root, r.Name)
			if err := os.Mkdir(dir, 0o701); err != nil && !os.IsExist(err) {
				errs[i] = err
				return
			}
			if err := os.Mkdir(filepath.Join(dir, "_data"), 0o755); err != nil && !os.IsExist(err) {
				errs[i] = err
			}
		}
		if len(created) == 1 {
			mk()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); mk() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	var now []record
	for _, r := range created {
		if deferAnonymous && anonymous[r.Name] {
			deferred = append(deferred, r)
		} else {
			now = append(now, r)
		}
	}
	if len(now) > 0 {
		if err := s.cfg.DB.Update(func(tx *bolt.Tx) error { return putRecords(tx, now) }); err != nil {
			return nil, nil, err
		}
	}
	for _, r := range created {
		s.vols[r.Name] = &vol{rec: r, refs: map[string]bool{}, active: map[string]bool{}}
		s.event("create", r.Name, nil)
	}
	out := make([]*vol, len(names))
	for i, n := range names {
		out[i] = s.vols[n]
	}
	return out, deferred, nil
}

func putRecords(tx *bolt.Tx, recs []record) error {
	b := tx.Bucket(bucket)
	for _, r := range recs {
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(r.Name), data); err != nil {
			return err
		}
	}
	return nil
}

func newName() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Acquired is one volume AcquireAll got.
type Acquired struct {
	Name, DataPath string
}

// AcquireAll gets or creates the volumes os name (Name "" makes an
// anonymous one) and records ref as referencing each, in one step: a
// volume cannot be removed between the two. The new ones' records are
// written in one transaction. On error none is acquired.
//
// The records of new anonymous volumes are left to the caller: put, when
// not nil, writes them and must run in the transaction that records ref
// (a container's create). Should that transaction not happen, the caller
// removes the anonymous volumes (RemoveUnused), as for any failed create.
func (s *Service) AcquireAll(ctx context.Context, os_ []CreateOptions, ref string) (_ []Acquired, put func(*bolt.Tx) error, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, deferred, err := s.getOrCreateAll(os_, true)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Acquired, len(vs))
	for i, v := range vs {
		v.refs[ref] = true
		out[i] = Acquired{Name: v.rec.Name, DataPath: s.dataPath(v.rec.Name)}
	}
	if len(deferred) > 0 {
		put = func(tx *bolt.Tx) error { return putRecords(tx, deferred) }
	}
	return out, put, nil
}

// Release drops ref's reference to volume name (no error if either is
// unknown).
func (s *Service) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[name]; ok {
		delete(v.refs, ref)
	}
}

// Mount records ref as an active user of volume name, mounts the volume's
// device on its first user, and returns the host directory to bind-mount
// into the container. attrs are added to the "mount" event (Docker's:
// destination, read/write, propagation).
func (s *Service) Mount(ctx context.Context, name, ref string, attrs map[string]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return "", errdefs.Newf(errdefs.NotFound, "get %s: no such volume", name)
	}
	p := s.dataPath(name)
	if needsMount(v.rec.Options) && !isMountPoint(p) {
		if err := mountDevice(v.rec.Options, p); err != nil {
			return "", err
		}
	}
	if !v.active[ref] {
		v.active[ref] = true
		a := map[string]string{"container": ref}
		for k, v := range attrs {
			a[k] = v
		}
		s.event("mount", name, a)
	}
	return p, nil
}

// Unmount drops ref as an active user; the last one unmounts the device.
func (s *Service) Unmount(ctx context.Context, name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok || !v.active[ref] {
		return nil
	}
	delete(v.active, ref)
	s.event("unmount", name, map[string]string{"container": ref})
	if len(v.active) == 0 && needsMount(v.rec.Options) && isMountPoint(s.dataPath(name)) {
		return unmount(s.dataPath(name))
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
