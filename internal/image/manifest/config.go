package manifest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Config is an image config blob: the OCI image config (ocispec.Image)
// with the fields Docker adds. JSON members it does not know are kept in
// Extra and written back by MarshalJSON, so a config read and written by
// berth loses nothing (member order may change: known members first, in
// struct order, then the others sorted by name).
//
// The blob a digest was computed over is the content store's business:
// never re-marshal a pulled config to store or hash it.
type Config struct {
	Created *time.Time `json:"created,omitempty"`
	Author  string     `json:"author,omitempty"`
	// Platform holds architecture, os, os.version, os.features, variant.
	ocispec.Platform
	Config  ContainerConfig   `json:"config"`
	RootFS  ocispec.RootFS    `json:"rootfs"`
	History []ocispec.History `json:"history,omitempty"`

	// Docker's legacy members, written by the classic builder and commit.
	Comment         string           `json:"comment,omitempty"`
	Parent          string           `json:"parent,omitempty"`
	Container       string           `json:"container,omitempty"`
	ContainerConfig *ContainerConfig `json:"container_config,omitempty"`
	DockerVersion   string           `json:"docker_version,omitempty"`

	// Extra holds members not listed above, raw.
	Extra map[string]json.RawMessage `json:"-"`
}

// ContainerConfig is the "config" (and legacy "container_config") member:
// the OCI ImageConfig keys plus Docker's.
type ContainerConfig struct {
	Hostname     string              `json:"Hostname,omitempty"`
	Domainname   string              `json:"Domainname,omitempty"`
	User         string              `json:"User,omitempty"`
	AttachStdin  bool                `json:"AttachStdin,omitempty"`
	AttachStdout bool                `json:"AttachStdout,omitempty"`
	AttachStderr bool                `json:"AttachStderr,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty          bool                `json:"Tty,omitempty"`
	OpenStdin    bool                `json:"OpenStdin,omitempty"`
	StdinOnce    bool                `json:"StdinOnce,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Cmd          StrSlice            `json:"Cmd,omitempty"`
	Healthcheck  *HealthConfig       `json:"Healthcheck,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	Image        string              `json:"Image,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Entrypoint   StrSlice            `json:"Entrypoint,omitempty"`
	// NetworkDisabled and MacAddress are container settings Docker once
	// recorded in images; kept for round trips only.
	NetworkDisabled bool              `json:"NetworkDisabled,omitempty"`
	MacAddress      string            `json:"MacAddress,omitempty"`
	OnBuild         []string          `json:"OnBuild,omitempty"`
	Labels          map[string]string `json:"Labels,omitempty"`
	StopSignal      string            `json:"StopSignal,omitempty"`
	StopTimeout     *int              `json:"StopTimeout,omitempty"`
	Shell           StrSlice          `json:"Shell,omitempty"`

	// Extra holds members not listed above, raw.
	Extra map[string]json.RawMessage `json:"-"`
}

// HealthConfig is Docker's HEALTHCHECK. Durations are nanoseconds in JSON.
// Test is ["NONE"] to disable a check inherited from the base image,
// ["CMD", args...] or ["CMD-SHELL", command].
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

// StrSlice is a list of strings that also accepts a single JSON string, as
// old Docker versions wrote Cmd and Entrypoint.
type StrSlice []string

// UnmarshalJSON accepts null, a string or an array of strings.
func (s *StrSlice) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = StrSlice{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// ParseConfig decodes an image config blob. It checks only that the blob
// is a JSON object; ValidateConfig checks the content.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid image config: %w", err)
	}
	return &c, nil
}

// ValidateConfig checks that rootfs.type is "layers", every diff ID is a
// valid digest, and history has no more non-empty entries than there are
// layers (Docker refuses such images in `history`; fewer is allowed, old
// images lack history).
func ValidateConfig(c *Config) error {
	if c == nil {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid image config: missing")
	}
	if c.RootFS.Type != "layers" {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid image config: rootfs.type is %q, want \"layers\"", c.RootFS.Type)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid image config: rootfs.diff_ids[%d] %q: %w", i, d, err)
		}
	}
	nonEmpty := 0
	for _, h := range c.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty > len(c.RootFS.DiffIDs) {
		return errdefs.Newf(errdefs.InvalidArgument,
			"invalid image config: history has %d entries with layers but rootfs has %d layers", nonEmpty, len(c.RootFS.DiffIDs))
	}
	return nil
}

// OCI returns the config as the OCI image-spec type, dropping Docker's
// extra members.
func (c *Config) OCI() ocispec.Image {
	cc := c.Config
	return ocispec.Image{
		Created:  c.Created,
		Author:   c.Author,
		Platform: c.Platform,
		Config: ocispec.ImageConfig{
			User:         cc.User,
			ExposedPorts: cc.ExposedPorts,
			Env:          cc.Env,
			Entrypoint:   cc.Entrypoint,
			Cmd:          cc.Cmd,
			Volumes:      cc.Volumes,
			WorkingDir:   cc.WorkingDir,
			Labels:       cc.Labels,
			StopSignal:   cc.StopSignal,
			ArgsEscaped:  cc.ArgsEscaped,
		},
		RootFS:  c.RootFS,
		History: c.History,
	}
}

// FromOCI converts an OCI image config to a Config.
func FromOCI(img ocispec.Image) *Config {
	ic := img.Config
	return &Config{
		Created:  img.Created,
		Author:   img.Author,
		Platform: img.Platform,
		Config: ContainerConfig{
			User:         ic.User,
			ExposedPorts: ic.ExposedPorts,
			Env:          ic.Env,
			Entrypoint:   ic.Entrypoint,
			Cmd:          ic.Cmd,
			Volumes:      ic.Volumes,
			WorkingDir:   ic.WorkingDir,
			Labels:       ic.Labels,
			StopSignal:   ic.StopSignal,
			ArgsEscaped:  ic.ArgsEscaped,
		},
		RootFS:  img.RootFS,
		History: img.History,
	}
}

// The aliases drop the methods so that encoding/json handles the known
// members; the wrappers add Extra.
type (
	configFields          Config
	containerConfigFields ContainerConfig
)

// UnmarshalJSON decodes the known members and keeps the others in Extra.
func (c *Config) UnmarshalJSON(b []byte) error {
	var f configFields
	extra, err := unmarshalKeepingExtra(b, &f)
	if err != nil {
		return err
	}
	*c = Config(f)
	c.Extra = extra
	return nil
}

// MarshalJSON encodes the known members followed by Extra.
func (c Config) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(configFields(c), c.Extra)
}

// UnmarshalJSON decodes the known members and keeps the others in Extra.
func (c *ContainerConfig) UnmarshalJSON(b []byte) error {
	var f containerConfigFields
	extra, err := unmarshalKeepingExtra(b, &f)
	if err != nil {
		return err
	}
	*c = ContainerConfig(f)
	c.Extra = extra
	return nil
}

// MarshalJSON encodes the known members followed by Extra.
func (c ContainerConfig) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(containerConfigFields(c), c.Extra)
}

// knownMembers caches, per struct type, the lower-cased JSON names of its
// fields (encoding/json matches names case-insensitively).
var knownMembers sync.Map // reflect.Type → map[string]bool

func membersOf(t reflect.Type) map[string]bool {
	if m, ok := knownMembers.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			m[strings.ToLower(name)] = true
		}
	}
	walk(t)
	knownMembers.Store(t, m)
	return m
}

func unmarshalKeepingExtra(b []byte, v any) (map[string]json.RawMessage, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	known := membersOf(reflect.TypeOf(v).Elem())
	var extra map[string]json.RawMessage
	for k, raw := range all {
		if known[strings.ToLower(k)] {
			continue
		}
		if extra == nil {
			extra = map[string]json.RawMessage{}
		}
		extra[k] = raw
	}
	return extra, nil
}

func marshalWithExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	known := membersOf(reflect.TypeOf(v))
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !known[strings.ToLower(k)] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // without the closing '}'
	for _, k := range keys {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(k)
		buf.Write(name)
		buf.WriteByte(':')
		raw := extra[k]
		if len(raw) == 0 {
			raw = json.RawMessage("null")
		}
		if !json.Valid(raw) {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "image config member %q holds invalid JSON", k)
		}
		buf.Write(raw)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// ChainIDs returns the chain ID of every layer prefix: chain[0] is
// diffIDs[0] and chain[n] = sha256(chain[n-1] + " " + diffIDs[n]). A chain
// ID names the filesystem that results from applying layers 0..n, so
// snapshots are shared between images with the same base layers.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	if len(diffIDs) == 0 {
		return nil
	}
	out := make([]digest.Digest, len(diffIDs))
	out[0] = diffIDs[0]
	for i := 1; i < len(diffIDs); i++ {
		out[i] = digest.FromString(out[i-1].String() + " " + diffIDs[i].String())
	}
	return out
}

// ChainID returns the chain ID of the whole stack, "" for no layers.
func ChainID(diffIDs []digest.Digest) digest.Digest {
	ids := ChainIDs(diffIDs)
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// HistoryEntry is a history entry with the index of the layer it created
// in rootfs.diff_ids, or -1 for an entry that created no layer
// (empty_layer) or for which no layer is left.
type HistoryEntry struct {
	ocispec.History
	LayerIndex int
}

// LayerHistory pairs history entries with layers: non-empty entries take
// the layers in order. Entries in excess of the layers get -1 (see
// ValidateConfig, which refuses that case).
func LayerHistory(c *Config) []HistoryEntry {
	if c == nil {
		return nil
	}
	out := make([]HistoryEntry, len(c.History))
	next := 0
	for i, h := range c.History {
		out[i] = HistoryEntry{History: h, LayerIndex: -1}
		if !h.EmptyLayer && next < len(c.RootFS.DiffIDs) {
			out[i].LayerIndex = next
			next++
		}
	}
	return out
}
