package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// meta is the registry's repository metadata: small files, each replaced
// by an atomic rename, under dir:
//
//	repositories/<name>/_layers/sha256/<hex>     the repo may serve blob <hex> (empty file)
//	repositories/<name>/_manifests/sha256/<hex>  manifest link: JSON manifestLink
//	repositories/<name>/_tags/<tag>              the tag's manifest digest
//	repositories/<name>/_referrers/sha256/<subject-hex>/<hex>  JSON descriptor of a referrer
//	uploads/<uuid>                               JSON uploadSession
//
// Repository name components never start with "_", so the "_" directories
// cannot collide with a nested repository. The bytes of blobs and
// manifests live in the content store. Writers order their steps so that
// a crash leaves only harmless extras (a link without a tag, a referrer
// entry whose manifest link is missing is skipped on read).
type meta struct {
	dir string

	mu    sync.Mutex
	repos map[string]*sync.Mutex // serialises manifest/tag mutations per repo
}

type manifestLink struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Subject   digest.Digest `json:"subject,omitempty"`
}

type uploadSession struct {
	Repo      string    `json:"repo"`
	StartedAt time.Time `json:"startedAt"`
}

func openMeta(dir string) (*meta, error) {
	for _, d := range []string{"repositories", "uploads"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("registry metadata %s: %w", dir, err)
		}
	}
	return &meta{dir: dir, repos: map[string]*sync.Mutex{}}, nil
}

// repoLock returns the mutex of repo name.
func (m *meta) repoLock(name string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.repos[name]
	if !ok {
		l = &sync.Mutex{}
		m.repos[name] = l
	}
	return l
}

// repoDir is the directory of a validated repository name.
func (m *meta) repoDir(name string) string {
	return filepath.Join(m.dir, "repositories", filepath.FromSlash(name))
}

func (m *meta) layerPath(name string, d digest.Digest) string {
	return filepath.Join(m.repoDir(name), "_layers", "sha256", d.Encoded())
}

func (m *meta) manifestPath(name string, d digest.Digest) string {
	return filepath.Join(m.repoDir(name), "_manifests", "sha256", d.Encoded())
}

func (m *meta) tagPath(name, tag string) string {
	return filepath.Join(m.repoDir(name), "_tags", tag)
}

func (m *meta) referrerDir(name string, subject digest.Digest) string {
	return filepath.Join(m.repoDir(name), "_referrers", "sha256", subject.Encoded())
}

// repoExists reports whether anything was ever pushed to name.
func (m *meta) repoExists(name string) bool {
	for _, sub := range []string{"_layers", "_manifests", "_tags"} {
		if _, err := os.Stat(filepath.Join(m.repoDir(name), sub)); err == nil {
			return true
		}
	}
	return false
}

func (m *meta) hasLayer(name string, d digest.Digest) bool {
	_, err := os.Lstat(m.layerPath(name, d))
	return err == nil
}

func (m *meta) linkLayer(name string, d digest.Digest) error {
	if m.hasLayer(name, d) {
		return nil
	}
	return writeFileAtomic(m.layerPath(name, d), nil)
}

// unlinkLayer removes the blob link; false if there was none.
func (m *meta) unlinkLayer(name string, d digest.Digest) (bool, error) {
	err := os.Remove(m.layerPath(name, d))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// manifest returns the link of manifest d in name; ok false if none.
func (m *meta) manifest(name string, d digest.Digest) (manifestLink, bool, error) {
	b, err := os.ReadFile(m.manifestPath(name, d))
	if errors.Is(err, fs.ErrNotExist) {
		return manifestLink{}, false, nil
	}
	if err != nil {
		return manifestLink{}, false, err
	}
	var l manifestLink
	if err := json.Unmarshal(b, &l); err != nil {
		return manifestLink{}, false, fmt.Errorf("manifest link %s in %s: %w", d, name, err)
	}
	return l, true, nil
}

// putManifest links manifest d into name, records it as a referrer of its
// subject, then (if tag is set) points tag at it — in that order, so a
// tag never names a manifest the repository does not have.
func (m *meta) putManifest(name string, d digest.Digest, l manifestLink, referrer *ocispec.Descriptor, tag string) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(m.manifestPath(name, d), b); err != nil {
		return err
	}
	if referrer != nil && l.Subject != "" {
		rb, err := json.Marshal(referrer)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(m.referrerDir(name, l.Subject), d.Encoded()), rb); err != nil {
			return err
		}
	}
	if tag != "" {
		return writeFileAtomic(m.tagPath(name, tag), []byte(d))
	}
	return nil
}

// tag returns the digest tag points at; ok false if no such tag.
func (m *meta) tag(name, tag string) (digest.Digest, bool, error) {
	b, err := os.ReadFile(m.tagPath(name, tag))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	d := digest.Digest(strings.TrimSpace(string(b)))
	if d.Validate() != nil {
		return "", false, fmt.Errorf("tag %s:%s holds a bad digest", name, tag)
	}
	return d, true, nil
}

// tags lists name's tags in lexical order.
func (m *meta) tags(name string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(m.repoDir(name), "_tags"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() && validTag(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// deleteTag removes tag; false if it did not exist.
func (m *meta) deleteTag(name, tag string) (bool, error) {
	err := os.Remove(m.tagPath(name, tag))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// deleteManifest removes every tag naming d, its referrer entry, then its
// link; false if the repository did not have it.
func (m *meta) deleteManifest(name string, d digest.Digest) (bool, error) {
	l, ok, err := m.manifest(name, d)
	if err != nil || !ok {
		return false, err
	}
	tags, err := m.tags(name)
	if err != nil {
		return false, err
	}
	for _, t := range tags {
		if td, ok, _ := m.tag(name, t); ok && td == d {
			if _, err := m.deleteTag(name, t); err != nil {
				return false, err
			}
		}
	}
	if l.Subject != "" {
		err := os.Remove(filepath.Join(m.referrerDir(name, l.Subject), d.Encoded()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	if err := os.Remove(m.manifestPath(name, d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// referrers lists the descriptors of manifests in name whose subject is d,
// ordered by digest.
func (m *meta) referrers(name string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	dir := m.referrerDir(name, subject)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := []ocispec.Descriptor{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a temporary file
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		var desc ocispec.Descriptor
		if json.Unmarshal(b, &desc) != nil {
			continue
		}
		if _, ok, _ := m.manifest(name, desc.Digest); !ok {
			continue // crash between writes: not a visible manifest
		}
		out = append(out, desc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// catalog lists every repository name in lexical order.
func (m *meta) catalog(ctx context.Context) ([]string, error) {
	root := filepath.Join(m.dir, "repositories")
	var out []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.IsDir() || path == root {
			return nil
		}
		if strings.HasPrefix(e.Name(), "_") {
			return fs.SkipDir
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if m.repoExists(name) {
			out = append(out, name)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func (m *meta) uploadPath(id string) string { return filepath.Join(m.dir, "uploads", id) }

func (m *meta) putUpload(id string, u uploadSession) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return writeFileAtomic(m.uploadPath(id), b)
}

// upload loads session id; ok false if none.
func (m *meta) upload(id string) (uploadSession, bool, error) {
	b, err := os.ReadFile(m.uploadPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return uploadSession{}, false, nil
	}
	if err != nil {
		return uploadSession{}, false, err
	}
	var u uploadSession
	if err := json.Unmarshal(b, &u); err != nil {
		return uploadSession{}, false, fmt.Errorf("upload session %s: %w", id, err)
	}
	return u, true, nil
}

func (m *meta) deleteUpload(id string) error {
	err := os.Remove(m.uploadPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// uploads lists every session id.
func (m *meta) uploads() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(m.dir, "uploads"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if validUploadID(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// writeFileAtomic replaces path with b: temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
