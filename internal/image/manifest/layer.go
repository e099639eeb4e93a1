package manifest

import (
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is how a layer blob is compressed.
type Compression int

// The compressions berth can unpack.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// ErrForeignLayer is wrapped by the error for a foreign (Docker) or
// non-distributable (OCI) layer, which must be fetched from URLs outside
// the registry; berth does not do that.
var ErrForeignLayer = errors.New("foreign layers are not supported")

// ErrUnsupportedMediaType is wrapped by errors about media types berth
// does not know, such as encrypted layers.
var ErrUnsupportedMediaType = errors.New("unsupported media type")

type layerType struct {
	compression Compression
	foreign     bool
}

var layerTypes = map[string]layerType{
	MediaTypeDockerLayer:             {Gzip, false},
	MediaTypeDockerLayerZstd:         {Zstd, false},
	MediaTypeDockerLayerUncompressed: {Uncompressed, false},
	MediaTypeDockerForeignLayer:      {Gzip, true},
	MediaTypeDockerForeignLayerTar:   {Uncompressed, true},
	ocispec.MediaTypeImageLayer:      {Uncompressed, false},
	ocispec.MediaTypeImageLayerGzip:  {Gzip, false},
	ocispec.MediaTypeImageLayerZstd:  {Zstd, false},
	mediaTypeOCINonDistributable:     {Uncompressed, true},
	mediaTypeOCINonDistributableGzip: {Gzip, true},
	mediaTypeOCINonDistributableZstd: {Zstd, true},
}

// LayerCompression returns the compression of a layer of media type mt.
// Foreign and non-distributable layers are refused with an error wrapping
// ErrForeignLayer, unknown types with one wrapping ErrUnsupportedMediaType;
// both are classified errdefs.NotImplemented. Use CheckLayer when the
// descriptor is at hand: its errors also name the digest.
func LayerCompression(mt string) (Compression, error) {
	lt, ok := layerTypes[baseMediaType(mt)]
	switch {
	case !ok:
		return 0, errdefs.Newf(errdefs.NotImplemented, "%w: layer media type %q", ErrUnsupportedMediaType, mt)
	case lt.foreign:
		return 0, errdefs.Newf(errdefs.NotImplemented, "%w: %s", ErrForeignLayer, mt)
	}
	return lt.compression, nil
}

// CheckLayer is LayerCompression for a descriptor; its errors read
// "foreign layers are not supported: <mediatype> <digest>".
func CheckLayer(desc ocispec.Descriptor) (Compression, error) {
	lt, ok := layerTypes[baseMediaType(desc.MediaType)]
	switch {
	case !ok:
		return 0, errdefs.Newf(errdefs.NotImplemented, "%w: layer media type %q of %s", ErrUnsupportedMediaType, desc.MediaType, desc.Digest)
	case lt.foreign:
		return 0, errdefs.Newf(errdefs.NotImplemented, "%w: %s %s", ErrForeignLayer, desc.MediaType, desc.Digest)
	}
	return lt.compression, nil
}
