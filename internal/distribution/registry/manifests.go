package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/content"
)

// The manifest media types the registry accepts.
const (
	mediaTypeOCIManifest    = ocispec.MediaTypeImageManifest
	mediaTypeOCIIndex       = ocispec.MediaTypeImageIndex
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func isImageManifest(mt string) bool {
	return mt == mediaTypeOCIManifest || mt == mediaTypeDockerManifest
}

func isIndex(mt string) bool { return mt == mediaTypeOCIIndex || mt == mediaTypeDockerList }

// maxManifestSize is the largest manifest accepted (the spec's suggested
// minimum limit is 4 MiB).
const maxManifestSize = 4 << 20

// manifestDoc is the union of the fields of the accepted manifest kinds
// that the registry checks.
type manifestDoc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// isDigestRef tells a digest reference from a tag (tags cannot hold ':').
func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }

// resolveManifest finds the manifest a tag or digest names in a repo.
func (s *Server) resolveManifest(name, ref string) (digest.Digest, manifestLink, error) {
	var d digest.Digest
	if isDigestRef(ref) {
		if content.ValidateDigest(digest.Digest(ref)) != nil {
			if digest.Digest(ref).Validate() == nil {
				return "", manifestLink{}, newError(codeManifestUnknown, "manifest %s unknown (only sha256 digests are supported)", ref)
			}
			return "", manifestLink{}, newError(codeDigestInvalid, "invalid digest %q", ref)
		}
		d = digest.Digest(ref)
	} else {
		if !validTag(ref) {
			return "", manifestLink{}, newError(codeTagInvalid, "invalid tag %q", ref)
		}
		td, ok, err := s.meta.tag(name, ref)
		if err != nil {
			return "", manifestLink{}, err
		}
		if !ok {
			return "", manifestLink{}, newError(codeManifestUnknown, "manifest %s:%s unknown", name, ref)
		}
		d = td
	}
	l, ok, err := s.meta.manifest(name, d)
	if err != nil {
		return "", manifestLink{}, err
	}
	if !ok {
		return "", manifestLink{}, newError(codeManifestUnknown, "manifest %s@%s unknown", name, d)
	}
	return d, l, nil
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	d, l, err := s.resolveManifest(rt.name, rt.ref)
	if err != nil {
		return err
	}
	rc, err := s.store.Open(r.Context(), d)
	if errdefs.Is(err, errdefs.NotFound) {
		return newError(codeManifestUnknown, "manifest %s@%s unknown to the content store", rt.name, d)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", l.MediaType)
	h.Set("Docker-Content-Digest", string(d))
	h.Set("ETag", `"`+string(d)+`"`)
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(rc, 0, rc.Size()))
	return nil
}

// manifestMediaType decides the manifest's type from its mediaType field
// and the request's Content-Type, which must agree when both are known.
func manifestMediaType(contentType string, doc *manifestDoc) (string, error) {
	known := func(mt string) bool { return isImageManifest(mt) || isIndex(mt) }
	ct, _, _ := mime.ParseMediaType(contentType)
	switch {
	case doc.MediaType != "":
		if !known(doc.MediaType) {
			return "", newError(codeManifestInvalid, "unsupported manifest media type %q", doc.MediaType)
		}
		if known(ct) && ct != doc.MediaType {
			return "", newError(codeManifestInvalid, "Content-Type %q does not match the manifest's mediaType %q", ct, doc.MediaType)
		}
		return doc.MediaType, nil
	case known(ct):
		return ct, nil
	case doc.Config != nil: // an OCI manifest need not carry its mediaType
		return mediaTypeOCIManifest, nil
	case doc.Manifests != nil:
		return mediaTypeOCIIndex, nil
	}
	return "", newError(codeManifestInvalid, "unsupported manifest media type %q", contentType)
}

// checkBlob verifies that a descriptor of a manifest names a blob of the
// repository, with the right size.
func (s *Server) checkBlob(r *http.Request, name string, desc ocispec.Descriptor) error {
	if content.ValidateDigest(desc.Digest) != nil {
		return newError(codeManifestInvalid, "invalid digest %q in manifest", desc.Digest)
	}
	if !s.meta.hasLayer(name, desc.Digest) {
		return blobUnknown(desc.Digest)
	}
	info, err := s.store.Info(r.Context(), desc.Digest)
	if errdefs.Is(err, errdefs.NotFound) {
		return blobUnknown(desc.Digest)
	}
	if err != nil {
		return err
	}
	if info.Size != desc.Size {
		return newError(codeManifestInvalid, "blob %s has size %d, the manifest says %d", desc.Digest, info.Size, desc.Size)
	}
	return nil
}

func blobUnknown(d digest.Digest) error {
	e := newError(codeManifestBlobUnknown, "manifest references %s, unknown to the repository", d)
	e.Detail = map[string]string{"digest": string(d)}
	return e
}

// checkReferences verifies that everything the manifest points to (other
// than its subject and foreign layers) is in the repository.
func (s *Server) checkReferences(r *http.Request, name, mt string, doc *manifestDoc) error {
	if doc.Subject != nil && content.ValidateDigest(doc.Subject.Digest) != nil {
		return newError(codeManifestInvalid, "invalid subject digest %q", doc.Subject.Digest)
	}
	if isImageManifest(mt) {
		if doc.Config == nil {
			return newError(codeManifestInvalid, "image manifest without a config")
		}
		if err := s.checkBlob(r, name, *doc.Config); err != nil {
			return err
		}
		for _, l := range doc.Layers {
			if len(l.URLs) > 0 && !s.meta.hasLayer(name, l.Digest) {
				continue // a foreign layer, fetched from its URLs
			}
			if err := s.checkBlob(r, name, l); err != nil {
				return err
			}
		}
		return nil
	}
	for _, m := range doc.Manifests {
		if content.ValidateDigest(m.Digest) != nil {
			return newError(codeManifestInvalid, "invalid digest %q in index", m.Digest)
		}
		l, ok, err := s.meta.manifest(name, m.Digest)
		if err != nil {
			return err
		}
		if !ok {
			return blobUnknown(m.Digest)
		}
		if l.Size != m.Size {
			return newError(codeManifestInvalid, "manifest %s has size %d, the index says %d", m.Digest, l.Size, m.Size)
		}
	}
	return nil
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return err
	}
	if len(body) > maxManifestSize {
		return newError(codeManifestInvalid, "manifest larger than %d bytes", maxManifestSize)
	}
	d := digest.FromBytes(body)
	tag := ""
	if isDigestRef(rt.ref) {
		want, err := parseDigest(rt.ref)
		if err != nil {
			return err
		}
		if want != d {
			return newError(codeDigestInvalid, "manifest has digest %s, not %s", d, want)
		}
	} else if !validTag(rt.ref) {
		return newError(codeTagInvalid, "invalid tag %q", rt.ref)
	} else {
		tag = rt.ref
	}
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return newError(codeManifestInvalid, "manifest is not valid JSON: %v", err)
	}
	if doc.SchemaVersion != 2 {
		return newError(codeManifestInvalid, "unsupported manifest schemaVersion %d", doc.SchemaVersion)
	}
	mt, err := manifestMediaType(r.Header.Get("Content-Type"), &doc)
	if err != nil {
		return err
	}
	lock := s.meta.repoLock(rt.name)
	lock.Lock()
	defer lock.Unlock()
	if err := s.checkReferences(r, rt.name, mt, &doc); err != nil {
		return err
	}
	if err := s.store.Put(r.Context(), bytes.NewReader(body), d, int64(len(body))); err != nil {
		return err
	}
	link := manifestLink{MediaType: mt, Size: int64(len(body))}
	var referrer *ocispec.Descriptor
	if doc.Subject != nil {
		link.Subject = doc.Subject.Digest
		referrer = &ocispec.Descriptor{
			MediaType:    mt,
			Digest:       d,
			Size:         int64(len(body)),
			ArtifactType: doc.ArtifactType,
			Annotations:  doc.Annotations,
		}
		if referrer.ArtifactType == "" && isImageManifest(mt) && doc.Config != nil {
			referrer.ArtifactType = doc.Config.MediaType
		}
	}
	if err := s.meta.putManifest(rt.name, d, link, referrer, tag); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", fmt.Sprintf("/v2/%s/manifests/%s", rt.name, d))
	h.Set("Docker-Content-Digest", string(d))
	if doc.Subject != nil {
		h.Set("OCI-Subject", string(doc.Subject.Digest))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteManifest deletes a manifest by digest (with its tags) or a tag.
func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	lock := s.meta.repoLock(rt.name)
	lock.Lock()
	defer lock.Unlock()
	var ok bool
	if isDigestRef(rt.ref) {
		d, err := parseDigest(rt.ref)
		if err != nil {
			return err
		}
		if ok, err = s.meta.deleteManifest(rt.name, d); err != nil {
			return err
		}
	} else {
		if !validTag(rt.ref) {
			return newError(codeTagInvalid, "invalid tag %q", rt.ref)
		}
		var err error
		if ok, err = s.meta.deleteTag(rt.name, rt.ref); err != nil {
			return err
		}
	}
	if !ok {
		return newError(codeManifestUnknown, "manifest %s:%s unknown", rt.name, rt.ref)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
