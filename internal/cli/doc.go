// Package cli implements the berth command-line client: a thin layer over the
// Docker Engine API Go client (github.com/moby/moby/client) that mirrors the
// docker CLI's commands, flags, output formats and exit codes.
//
// It owns flag parsing, the translation of docker's run/create flags into
// container.Config/HostConfig, Go-template output formatting, attaching to
// hijacked streams, registry credentials in ~/.docker/config.json and the
// selection of the daemon endpoint (-H, BERTH_HOST, DOCKER_HOST, contexts).
//
// It must not import berth's daemon internals: it talks to berthd only through
// the Engine API (a test enforces this). The entry point is [Main]; one file
// per command group (container_*.go, image_*.go, system.go, registry.go).
package cli
