// Package manifest owns berth's reading of image manifests, image indexes
// (manifest lists), platforms and image configs, in both the Docker
// schema 2 and the OCI flavours. Docker documents are mapped onto the OCI
// Go types (ocispec.Manifest, ocispec.Index), whose JSON they share.
//
// It provides:
//
//   - media type constants and classification (IsManifest, IsIndex, ...);
//   - Parse, which decodes a manifest or index, detecting the kind from the
//     content when the Content-Type is missing or generic and refusing
//     ambiguous documents and schema 1; ParseManifest and ParseIndex,
//     which expect one kind and validate it;
//   - ValidateManifest, ValidateIndex and ValidateConfig, the invariants an
//     image must satisfy after every pull, load, commit or build;
//   - platforms: DefaultPlatform, ParsePlatform, Normalize, FormatPlatform
//     and SelectPlatform with containerd-like matching (arm v7 and arm64 v8
//     defaults, amd64 microarchitecture levels, os.version ignored);
//   - layers: LayerCompression and CheckLayer, which refuse foreign and
//     non-distributable layers;
//   - Config, Docker's image config (ocispec.Image plus Docker's fields),
//     which round-trips fields it does not know, with ChainIDs and
//     LayerHistory.
//
// What it must not do: it performs no I/O (no registry, no content store,
// no files), never computes or checks the digest of the bytes it is given
// (the content store verifies blobs) and never decompresses layers.
//
// Entry points:
//
//	kind, m, idx, err := manifest.Parse(resp.Header.Get("Content-Type"), body)
//	if kind == manifest.KindIndex {
//		desc, err := manifest.SelectPlatform(idx, manifest.DefaultPlatform())
//		// fetch desc, Parse again
//	}
//	err = manifest.ValidateManifest(m)
//	cfg, err := manifest.ParseConfig(configBlob)
//	chain := manifest.ChainIDs(cfg.RootFS.DiffIDs)
package manifest
