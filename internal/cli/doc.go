// Package cli implements the berth command-line client: a thin layer over the
// Docker Engine API Go client (github.com/moby/moby/client) that mirrors the
// docker CLI's commands, flags, output formats and exit codes.
//
// # What it owns
//
//   - Commands, one file per group: container_*.go (run, create, start,
//     stop, restart, kill, rm, ps, logs, exec, attach, inspect, wait, rename,
//     update, container prune), image_cmds.go (images, pull, push, tag, rmi,
//     save, load, import, history, image inspect, image prune), registry.go
//     (login, logout), system.go and system_df.go (info, version, system df,
//     system prune), completion.go (bash, zsh, fish via cobra), plus the
//     container/image/system management-command forms. compose.go is
//     `berth compose`, which execs the berth-compose binary (beside berth,
//     then on PATH) with berth's arguments; the Compose CLI itself is the
//     subpackage composecli, a binary of its own so that compose-go is not
//     linked into berth (TestBerthBinaryLinksNoCompose).
//   - The translation of docker's run/create flags into container.Config,
//     HostConfig and NetworkingConfig (container_opts.go, container_network.go,
//     container_optparse.go, opts_values.go, ports.go). The create-request
//     oracle test holds it to byte-for-byte what docker 28.2 sends.
//   - Output: --format Go templates with docker's functions (json, table,
//     join, lower, upper, title, split, truncate, pad), table headers,
//     "json", -q (format.go); JSON progress streams drawn like docker
//     (progress.go); hijacked attach/exec streams, raw terminal, detach keys,
//     stdin half-close, signal proxying, TTY resizing (stream.go).
//   - Endpoint selection (host.go, tls.go): -H, then --context, BERTH_HOST,
//     DOCKER_HOST, DOCKER_CONTEXT, config.json currentContext, then
//     unix:///run/berth/berth.sock; contexts are read from docker's store.
//   - Start-up (startup.go): Main builds only the command being run
//     (topCommands; the whole tree for help, completion and unknown names)
//     and, for commands that talk to the daemon, builds the API client and
//     sends its /_ping negotiation on another goroutine while the command
//     line is parsed; Client hands that client out when the parsed options
//     select the same endpoint. run sends attach and wait together and
//     starts once both have answered. BuildKit's parser and protobuf are
//     kept out of the binary (TestBerthBinaryLinksNoBuildKit): package
//     initialisation is on the path of every command.
//   - Credentials (config.go): config.json "auths" (base64 user:password,
//     identity tokens), sent as X-Registry-Auth on pull/push/run.
//   - Exit statuses, mapped in one place (exitStatus in cli.go): flag errors
//     125; run/create errors 125 with docker's "berth: ...\n\nRun 'berth run
//     --help'" message; run start failures 127 (command not found) or 126
//     (cannot be invoked); run returns the container's exit code; other
//     engine errors print the daemon's message ("Error response from
//     daemon: No such container: x") and exit 1, as docker does.
//
// # What it must not do
//
// It must not import berth's daemon internals: it talks to berthd only
// through the Engine API (TestNoDaemonImports enforces this). Nor may it
// import Compose: only composecli, below it, may use internal/compose.
// export.go is the small exported surface composecli builds on.
//
// # Entry point
//
// [Main] runs one invocation; cmd/berth is a two-line main around it.
//
// # Differences from docker
//
//   - No credential helpers or credential stores: credentials live in
//     config.json. TLS (--tls, --tlsverify, --tlscacert, --tlscert,
//     --tlskey, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) is supported for tcp://
//     endpoints, but not TLS settings stored in docker contexts.
//   - "info" and "version" describe berth in their client sections; the
//     server sections are laid out as docker's.
//   - Image rows for an image with several repositories keep the order of
//     RepoTags (docker's order is random); ps sorts network names.
//   - --isolation is passed through to the daemon as docker does (berthd
//     may ignore it).
//
// # Tests
//
// go test ./internal/cli runs everything against an in-process fake engine
// (fakeengine_test.go): a unix-socket httptest server with canned Engine API
// answers, hijacked multiplexed/raw streams and JSON progress streams.
// testdata/create and testdata/output hold what the real docker CLI sent and
// printed for the same command lines; regenerate them with
// "go test ./internal/cli -update" when /usr/local/bin/docker is present.
package cli
