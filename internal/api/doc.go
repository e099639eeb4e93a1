// Package api is berthd's Engine API server: the HTTP side of the Docker
// Engine API that the docker CLI, Compose and the SDKs speak.
//
// It owns the wire: listeners, version prefixes and negotiation, the
// headers dockerd sends, routing (net/http ServeMux method and wildcard
// patterns), the single mapping of error classes (package errdefs) to HTTP
// status codes, JSON request and response helpers, connection hijacking
// for attach and exec, the multiplexed stdout/stderr framing and
// newline-delimited JSON streams. It must not know how containers or images
// work: each router under router/ declares the small backend interface it
// needs (router/<name>/backend.go) and the daemon's services implement
// them; requests and responses use the Go types of
// github.com/moby/moby/api, so JSON shapes match Docker's by construction.
//
// Entry point: NewServer(Config, routers...) then Serve on each listener the
// daemon opens (a unix socket, or TCP with mutual TLS via ServeTLS).
//
// Routers: system, container, exec and image live in router/; volume,
// network and build routers plug in the same way (a value with a Routes
// method). Paths are written without the /v1.NN prefix; the server strips
// it, checks the version and puts it in the request context
// (VersionFromContext).
package api
