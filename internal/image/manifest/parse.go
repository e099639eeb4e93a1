package manifest

import (
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Kind says which of the two document kinds Parse found.
type Kind int

// The kinds of document Parse returns.
const (
	KindUnknown  Kind = iota
	KindManifest      // an image manifest: config + layers
	KindIndex         // an index / manifest list: one manifest per platform
)

func (k Kind) String() string {
	switch k {
	case KindManifest:
		return "manifest"
	case KindIndex:
		return "index"
	}
	return "unknown"
}

// probe holds just enough of a document to tell what it is.
type probe struct {
	SchemaVersion *int            `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Manifests     json.RawMessage `json:"manifests"`
	Config        json.RawMessage `json:"config"`
	Layers        json.RawMessage `json:"layers"`
	FSLayers      json.RawMessage `json:"fsLayers"`
}

// Parse decodes a manifest or an index. mediaType is the Content-Type it
// was served with (or the descriptor's media type); when it is empty or
// generic (application/json, application/octet-stream, text/plain) the
// kind comes from the document: its mediaType field, else the presence of
// "manifests" (index) or "config" (manifest).
//
// Exactly one of the returned pointers is non-nil on success, as given by
// Kind, and its MediaType field holds the effective media type (the
// document's own field if set, else the one served).
//
// Parse refuses, with errdefs.InvalidArgument, documents that are not JSON,
// whose schemaVersion is not 2, that have both "manifests" and
// "config"/"layers" (an ambiguous document could be read differently by
// another client), or whose content contradicts mediaType. It refuses
// Docker schema 1 and unknown media types with errdefs.NotImplemented.
// It does not validate descriptors: call ValidateManifest or
// ValidateIndex for that.
func Parse(mediaType string, data []byte) (Kind, *ocispec.Manifest, *ocispec.Index, error) {
	var p probe
	if err := json.Unmarshal(data, &p); err != nil {
		return KindUnknown, nil, nil, errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: %w", err)
	}
	header := baseMediaType(mediaType)
	content := baseMediaType(p.MediaType)
	if isSchema1(header) || isSchema1(content) || p.FSLayers != nil || (p.SchemaVersion != nil && *p.SchemaVersion == 1) {
		return KindUnknown, nil, nil, errdefs.Newf(errdefs.NotImplemented,
			"Docker image manifest version 2, schema 1 is not supported: the image must be pushed again with a current client")
	}
	hasIndexFields := p.Manifests != nil
	hasManifestFields := p.Config != nil || p.Layers != nil
	if hasIndexFields && hasManifestFields {
		return KindUnknown, nil, nil, errdefs.Newf(errdefs.InvalidArgument,
			"invalid manifest: ambiguous document with both \"manifests\" and \"config\"/\"layers\"")
	}

	kind, err := kindOf(header, content, hasIndexFields, hasManifestFields)
	if err != nil {
		return KindUnknown, nil, nil, err
	}
	effective := content
	if effective == "" && !isGeneric(header) {
		effective = header
	}
	if p.SchemaVersion == nil || *p.SchemaVersion != 2 {
		v := "missing"
		if p.SchemaVersion != nil {
			v = fmt.Sprint(*p.SchemaVersion)
		}
		return KindUnknown, nil, nil, errdefs.Newf(errdefs.InvalidArgument, "invalid %s: schemaVersion is %s, want 2", kind, v)
	}

	switch kind {
	case KindManifest:
		var m ocispec.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return KindUnknown, nil, nil, errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: %w", err)
		}
		if effective == "" {
			effective = ocispec.MediaTypeImageManifest
		}
		m.MediaType = effective
		return KindManifest, &m, nil, nil
	default:
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return KindUnknown, nil, nil, errdefs.Newf(errdefs.InvalidArgument, "invalid index: %w", err)
		}
		if effective == "" {
			effective = ocispec.MediaTypeImageIndex
		}
		idx.MediaType = effective
		return KindIndex, nil, &idx, nil
	}
}

// kindOf decides the kind from the served media type, the document's own
// media type and its fields, refusing contradictions.
func kindOf(header, content string, indexFields, manifestFields bool) (Kind, error) {
	kindFor := func(mt string) Kind {
		switch {
		case IsManifest(mt):
			return KindManifest
		case IsIndex(mt):
			return KindIndex
		}
		return KindUnknown
	}
	var kind Kind
	switch {
	case !isGeneric(header):
		kind = kindFor(header)
		if kind == KindUnknown {
			return KindUnknown, errdefs.Newf(errdefs.NotImplemented, "%w: %q is not an image manifest or index", ErrUnsupportedMediaType, header)
		}
		if content != "" && kindFor(content) != kind {
			return KindUnknown, errdefs.Newf(errdefs.InvalidArgument,
				"invalid %s: served as %s but the document says %q", kind, header, content)
		}
	case content != "":
		kind = kindFor(content)
		if kind == KindUnknown {
			return KindUnknown, errdefs.Newf(errdefs.NotImplemented, "%w: %q is not an image manifest or index", ErrUnsupportedMediaType, content)
		}
	case indexFields:
		kind = KindIndex
	case manifestFields:
		kind = KindManifest
	default:
		return KindUnknown, errdefs.Newf(errdefs.InvalidArgument,
			"invalid manifest: no media type and neither \"manifests\" nor \"config\" to tell what the document is")
	}
	if kind == KindManifest && indexFields {
		return KindUnknown, errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: expected a manifest but the document has \"manifests\"")
	}
	if kind == KindIndex && manifestFields {
		return KindUnknown, errdefs.Newf(errdefs.InvalidArgument, "invalid index: expected an index but the document has \"config\" or \"layers\"")
	}
	return kind, nil
}

// ParseManifest decodes data, which must be an image manifest (Docker or
// OCI, the kind detected from the content), and validates it with
// ValidateManifest. Use Parse for documents that need not be runnable
// images.
func ParseManifest(data []byte) (*ocispec.Manifest, error) {
	kind, m, _, err := Parse("", data)
	if err != nil {
		return nil, err
	}
	if kind != KindManifest {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: the document is an %s", kind)
	}
	if err := ValidateManifest(m); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseIndex decodes data, which must be an index or manifest list, and
// validates it with ValidateIndex.
func ParseIndex(data []byte) (*ocispec.Index, error) {
	kind, _, idx, err := Parse("", data)
	if err != nil {
		return nil, err
	}
	if kind != KindIndex {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid index: the document is a %s", kind)
	}
	if err := ValidateIndex(idx); err != nil {
		return nil, err
	}
	return idx, nil
}
