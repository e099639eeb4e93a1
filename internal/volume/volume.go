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
	"strings"
	"sync"
	"time"

	apivolume "github.com/moby/moby/api/types/volume"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/api/filters"
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
// into the container.
func (s *Service) Mount(ctx context.Context, name, ref string) (string, error) {
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
		s.event("mount", name, map[string]string{"container": ref})
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

// Get returns one volume in Docker's inspect shape. UsageData carries the
// reference count; its Size is -1 (computed only by DiskUsage).
func (s *Service) Get(ctx context.Context, name string) (*apivolume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return nil, errdefs.Newf(errdefs.NotFound, "get %s: no such volume", name)
	}
	out := s.describe(v)
	out.UsageData = &apivolume.UsageData{RefCount: int64(len(v.refs)), Size: -1}
	return &out, nil
}

// Users returns the IDs of the containers that reference volume name.
func (s *Service) Users(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return nil
	}
	return sortedKeys(v.refs)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Service) describe(v *vol) apivolume.Volume {
	return apivolume.Volume{
		Name: v.rec.Name, Driver: v.rec.Driver, Mountpoint: s.dataPath(v.rec.Name),
		CreatedAt: v.rec.CreatedAt.Format(time.RFC3339), Labels: v.rec.Labels, Options: v.rec.Options,
		Scope: "local",
	}
}

// ListFilters are the filters List accepts.
var ListFilters = []string{"dangling", "driver", "label", "name"}

// List returns the volumes matching f (dangling, driver, label, name), by
// name.
func (s *Service) List(ctx context.Context, f filters.Args) ([]apivolume.Volume, error) {
	if err := f.Validate(ListFilters...); err != nil {
		return nil, err
	}
	dangling, err := f.GetBoolOrDefault("dangling", false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []apivolume.Volume{}
	for _, v := range s.vols {
		if f.Contains("dangling") && (len(v.refs) == 0) != dangling {
			continue
		}
		if !f.ExactMatch("driver", v.rec.Driver) || !f.Match("name", v.rec.Name) || !f.MatchKVList("label", v.rec.Labels) {
			continue
		}
		out = append(out, s.describe(v))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

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

// DiskUsage returns every volume with its size and reference count, for
// /system/df.
func (s *Service) DiskUsage(ctx context.Context) (*apivolume.DiskUsage, error) {
	s.mu.Lock()
	type item struct {
		v    apivolume.Volume
		refs int64
	}
	items := make([]item, 0, len(s.vols))
	for _, v := range s.vols {
		items = append(items, item{s.describe(v), int64(len(v.refs))})
	}
	s.mu.Unlock()
	sort.Slice(items, func(i, j int) bool { return items[i].v.Name < items[j].v.Name })
	du := &apivolume.DiskUsage{}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		size, err := dirSize(it.v.Mountpoint)
		if err != nil {
			size = -1
		}
		it.v.UsageData = &apivolume.UsageData{RefCount: it.refs, Size: size}
		du.Items = append(du.Items, it.v)
		du.TotalCount++
		if size > 0 {
			du.TotalSize += size
		}
		if it.refs > 0 {
			du.ActiveCount++
		} else if size > 0 {
			du.Reclaimable += size
		}
	}
	return du, nil
}
