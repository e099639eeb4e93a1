// Package build is berth's image builder: it turns a Dockerfile and a
// build context into an image, with BuildKit's semantics behind the
// classic builder's API (POST /build).
//
// What it owns: the build cache (the "build-cache" bucket of the daemon's
// metadata database: one entry per step, keyed by what the step does,
// holding the resulting state's config and layers), RUN cache-mount
// directories and per-build scratch space under <data-root>/build.
// What it must not do: speak HTTP (internal/api/router/build does), run
// processes itself (RUN goes through a Runner: the daemon's container
// service) or write image records other than through Images.WriteImage.
//
// Entry point: New, then Builder.Build(ctx, Options, context, Output).
// A build reads the context into a spool with an index (tarFS), parses
// the Dockerfile with BuildKit's parser, builds the stages the target
// needs as a DAG (one goroutine per stage, identical steps computed once
// through a singleflight on their cache key) and writes the target's
// state as an image. Holders, DiskUsage and Prune serve the image GC,
// system df and builder prune. Options.CacheFrom/CacheTo import and
// export the cache (cacheio.go; the format in docs/build-cache.md):
// imported steps are taken on a local miss, classic cache-from images
// match by history. ADD of a git repository resolves its ref before
// the cache lookup and fetches with the git binary on a miss
// (gitsource.go); a COPY miss hard-links the files its previous result
// already has byte for byte (copylink_linux.go).
package build
