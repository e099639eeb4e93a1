// Package api is berthd's Engine API server: the HTTP side of the Docker
// Engine API that the docker CLI, Compose and the SDKs speak.
//
// It owns the wire: listeners, version prefixes and negotiation, the
// headers dockerd sends, routing (net/http ServeMux method and wildcard
// patterns), the single mapping of error classes (package errdefs) to HTTP
// status codes (StatusFromError), JSON request and response helpers,
// connection hijacking for attach and exec, the multiplexed stdout/stderr
// framing and newline-delimited JSON streams. It must not know how
// containers or images work: each router under router/ declares the small
// backend interfaces it needs (router/<name>/backend.go) and the daemon's
// services implement them; requests and responses use the Go types of
// github.com/moby/moby/api, so JSON shapes match Docker's by construction.
//
// Entry point: NewServer(Config, routers...) then Serve on each listener
// the daemon opens (a unix socket), or ServeTLS for TCP with the daemon's
// tls.Config (mutual TLS: ClientAuth and ClientCAs set by the daemon).
// Shutdown and Close also end streams and hijacked connections.
//
// # Versions
//
// Unversioned paths and /v1.NN/ prefixes are served, from MinAPIVersion
// (1.40) to MaxAPIVersion (1.56, the vendored api types). Older and newer
// versions get dockerd's messages with 400. Handlers read the request's
// version with VersionFromContext / VersionAtLeast and shape answers for
// older clients as dockerd does (legacy event and df fields before 1.52,
// raw-stream media type before 1.42, ...). Every answer carries
// Api-Version, "Server: Docker/<version> (linux)" and Ostype: linux.
//
// # Errors
//
// Handlers return errors; the server maps the class once: NotFound 404,
// InvalidArgument 400, Conflict and AlreadyExists 409, FailedPrecondition
// 400 (dockerd's choice), Unauthorized 401, Forbidden 403, Unavailable
// 503, NotImplemented 501, NotModified 304 without body, anything else
// 500. The body is {"message": "..."}. An unknown path, or a known path
// with another method, is 404 "page not found" (dockerd's router answers
// 404 for both). A panicking handler is logged with its stack and answered
// 500; the daemon goes on. Once a stream has started, errors go in the
// stream: progress streams end with an errorDetail message, logs with
// "Error grabbing logs: ...", attach with "Error attaching: ..." on
// stderr, exec with the error on stdout (dockerd's choices).
//
// # Request bodies
//
// JSON bodies are decoded as dockerd does: unknown fields are accepted,
// an empty body is no body, malformed JSON or trailing content is 400.
// Bodies over MaxJSONBody (16 MiB) are 400. A Content-Type other than
// application/json is 400; a missing one is accepted (dockerd refuses it
// when there is a body; no client depends on that).
//
// # Routers and what they serve
//
//   - router/system: /_ping (GET, HEAD), /version, /info, /system/df,
//     /events, /auth. Swarm, node, service, task, secret and config
//     endpoints answer 503 with dockerd's "This node is not a swarm
//     manager..." (swarm init and join: 501, berth has no swarm mode;
//     leave: 503 "This node is not part of a swarm"). GET /plugins is [];
//     a named plugin is 404; installing one is 501. POST /session and
//     /grpc (BuildKit over the engine socket) are 501 with a hint to use
//     the classic builder; /_ping says Builder-Version 1 so the docker CLI
//     picks the classic builder by itself.
//   - router/container: list, create, inspect, top, logs, changes,
//     export, stats, resize, start, stop, restart, kill, update, rename,
//     pause, unpause, attach (hijacked), wait, delete, archive HEAD/GET/PUT,
//     prune. Attach over websocket is 501.
//   - router/exec: create, start (hijacked unless detached), resize,
//     inspect.
//   - router/image: list, create (pull; import from "-"), inspect,
//     history, push, tag, delete, prune, get (one and many), load, commit,
//     /distribution/{name}/json. Search is 501. Images adapts
//     *image.Service and Registry the registry client.
//   - router/volume: list, create, inspect, delete, prune (before API
//     1.42 prune removes every unused volume, as dockerd).
//   - router/network: list, inspect, create, delete, connect, disconnect,
//     prune; the daemon adapts the network and container services.
//   - router/build: /build (the classic builder's stream), /build/prune,
//     /build/cancel; the daemon adapts internal/build.Builder.
//
// Other routers plug in the same way: a value with a
// Routes method, passed to NewServer.
//
// The fakes layer (apitest) serves all routers over in-memory backends
// for router tests, Go client tests and real docker CLI tests.
package api
