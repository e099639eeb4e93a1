package manifest

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker schema 2 media types. OCI media types are the ocispec constants.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"

	MediaTypeDockerLayer             = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerZstd         = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerLayerUncompressed = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerForeignLayer      = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerForeignLayerTar   = "application/vnd.docker.image.rootfs.foreign.diff.tar"

	// Schema 1 is recognised only to be refused with a clear error.
	MediaTypeDockerSchema1Manifest       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1SignedManifest = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Deprecated OCI media types for non-distributable layers, spelled out
// here so that using them does not trip deprecation linters.
const (
	mediaTypeOCINonDistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	mediaTypeOCINonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	mediaTypeOCINonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)

// ManifestAccept is the Accept header value a registry client sends to be
// able to parse every answer with Parse, most wanted first.
var ManifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifestList,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifest,
}, ", ")

// baseMediaType lowercases mt and strips parameters such as "; charset=utf-8".
func baseMediaType(mt string) string {
	mt, _, _ = strings.Cut(mt, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// IsManifest reports whether mt is a Docker schema 2 or OCI image manifest.
func IsManifest(mt string) bool {
	switch baseMediaType(mt) {
	case MediaTypeDockerManifest, ocispec.MediaTypeImageManifest:
		return true
	}
	return false
}

// IsIndex reports whether mt is a Docker manifest list or an OCI index.
func IsIndex(mt string) bool {
	switch baseMediaType(mt) {
	case MediaTypeDockerManifestList, ocispec.MediaTypeImageIndex:
		return true
	}
	return false
}

// IsConfig reports whether mt is a container image config.
func IsConfig(mt string) bool {
	switch baseMediaType(mt) {
	case MediaTypeDockerConfig, ocispec.MediaTypeImageConfig:
		return true
	}
	return false
}

// IsLayer reports whether mt is any known layer type, including foreign
// and non-distributable ones that berth refuses to pull.
func IsLayer(mt string) bool {
	_, known := layerTypes[baseMediaType(mt)]
	return known
}

// IsDocker reports whether mt is one of Docker's own (vnd.docker) types.
func IsDocker(mt string) bool {
	return strings.HasPrefix(baseMediaType(mt), "application/vnd.docker.")
}

// isGeneric reports whether a Content-Type says nothing about the document.
func isGeneric(mt string) bool {
	switch baseMediaType(mt) {
	case "", "application/json", "application/octet-stream", "binary/octet-stream", "text/plain":
		return true
	}
	return false
}

func isSchema1(mt string) bool {
	switch baseMediaType(mt) {
	case MediaTypeDockerSchema1Manifest, MediaTypeDockerSchema1SignedManifest:
		return true
	}
	return false
}
