package build

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The wire format of an exported build cache (docs/build-cache.md): an
// OCI image manifest whose artifactType and config media type say what it
// is, whose config is a cacheConfig and whose layers are the layer blobs
// the cache's steps use plus one gzip tar per exported cache mount.
const (
	cacheArtifactType    = "application/vnd.berth.build.cache.v1"
	cacheConfigMediaType = "application/vnd.berth.build.cache.config.v1+json"
	// cacheDiffIDAnnotation, on each layer descriptor, is the layer's
	// uncompressed digest (also in the config: readers use the config's).
	cacheDiffIDAnnotation = "dev.berth.build.cache.diff-id"
	// cacheMountAnnotation, on a cache mount's blob, is the mount's id.
	cacheMountAnnotation = "dev.berth.build.cache.mount"
	cacheSchemaVersion   = 1
	// maxCacheConfig bounds the config a reader accepts.
	maxCacheConfig = 64 << 20
)

// cacheConfig is the config blob of a cache manifest.
type cacheConfig struct {
	SchemaVersion int `json:"schemaVersion"`
	// Platform is what the steps were built for: an importer on another
	// platform ignores the cache.
	Platform ocispec.Platform `json:"platform"`
	// Layers are the manifest's blobs' diff IDs, by blob digest.
	Layers map[digest.Digest]digest.Digest `json:"layers"`
	Steps  []cacheStep                     `json:"steps"`
	Mounts []cacheMountRecord              `json:"mounts,omitempty"`
}

// cacheStep is one build cache entry: the step's key (the same function
// of the step and its parent's key on every daemon), the parent's key,
// and the state it produced: the image config (with history) and its
// layers, bottom first, as blob digests of the manifest.
type cacheStep struct {
	Key         string                    `json:"key"`
	Parent      string                    `json:"parent,omitempty"`
	Description string                    `json:"description,omitempty"`
	Config      dockerspec.DockerOCIImage `json:"config"`
	Layers      []digest.Digest           `json:"layers"`
}

// cacheMountRecord is an exported RUN --mount=type=cache directory: its
// id and the digest of its gzip tar among the manifest's layers.
type cacheMountRecord struct {
	ID   string        `json:"id"`
	Blob digest.Digest `json:"blob"`
}

// importedCache is a parsed, checked cache manifest.
type importedCache struct {
	steps  map[string]*cacheStep
	blobs  map[digest.Digest]ocispec.Descriptor
	diffs  map[digest.Digest]digest.Digest
	mounts []cacheMountRecord
}

// parseCacheManifest checks a cache manifest and its config: anything
// that is not a berth build cache of a known version, or that refers to
// blobs it does not list, is refused with the reason (the importer warns
// and builds without it).
func parseCacheManifest(mb, cb []byte, platform ocispec.Platform) (*importedCache, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("not a build cache: a %s", m.MediaType)
	}
	if m.Config.MediaType != cacheConfigMediaType {
		return nil, fmt.Errorf("not a berth build cache (config media type %q)", m.Config.MediaType)
	}
	if len(cb) > maxCacheConfig || digest.FromBytes(cb) != m.Config.Digest {
		return nil, fmt.Errorf("config does not match its digest %s", m.Config.Digest)
	}
	var c cacheConfig
	if err := json.Unmarshal(cb, &c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.SchemaVersion != cacheSchemaVersion {
		return nil, fmt.Errorf("unsupported build cache schema version %d", c.SchemaVersion)
	}
	if c.Platform.OS != platform.OS || c.Platform.Architecture != platform.Architecture {
		return nil, fmt.Errorf("cache is for %s/%s, this daemon builds for %s/%s", c.Platform.OS, c.Platform.Architecture, platform.OS, platform.Architecture)
	}
	ic := &importedCache{steps: map[string]*cacheStep{}, blobs: map[digest.Digest]ocispec.Descriptor{}, diffs: map[digest.Digest]digest.Digest{}}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("layer %q: %w", l.Digest, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("layer %s: negative size", l.Digest)
		}
		ic.blobs[l.Digest] = l
	}
	for b, d := range c.Layers {
		if _, ok := ic.blobs[b]; !ok {
			return nil, fmt.Errorf("config names layer %s the manifest does not list", b)
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("layer %s: diff ID: %w", b, err)
		}
		ic.diffs[b] = d
	}
	for i := range c.Steps {
		st := &c.Steps[i]
		if !validKey(st.Key) || st.Parent != "" && !validKey(st.Parent) {
			return nil, fmt.Errorf("step %d: malformed cache key", i)
		}
		for _, l := range st.Layers {
			if _, ok := ic.diffs[l]; !ok {
				return nil, fmt.Errorf("step %s: layer %s is not in the cache", st.Key[:12], l)
			}
		}
		ic.steps[st.Key] = st
	}
	for _, mr := range c.Mounts {
		if mr.ID == "" {
			return nil, fmt.Errorf("cache mount without an id")
		}
		if _, ok := ic.blobs[mr.Blob]; !ok {
			return nil, fmt.Errorf("cache mount %s: blob %s is not in the manifest", mr.ID, mr.Blob)
		}
		ic.mounts = append(ic.mounts, mr)
	}
	return ic, nil
}

// validKey: cache keys are hex SHA-256.
func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil
}
