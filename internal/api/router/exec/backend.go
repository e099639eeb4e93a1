package exec

import (
	"context"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/api"
)

// Backend is what the exec router needs; the daemon's container service
// implements it.
//
// Errors are classified with package errdefs: an unknown container is
// NotFound ("No such container: <name>"), an unknown exec NotFound ("No
// such exec instance: <id>"), a container that is not running Conflict
// ("container <id> is not running"), an exec started twice Conflict.
type Backend interface {
	// ExecCreate registers (does not start) a process in container name
	// and returns its ID. opts.Cmd is not empty (checked by the router).
	ExecCreate(ctx context.Context, name string, opts container.ExecCreateRequest) (string, error)

	// ExecStart starts exec id. With opts.Detach it returns once the
	// process runs. Otherwise it checks the exec can start (errors then
	// are answered as normal HTTP errors), calls opts.Streams exactly once
	// with the exec's TTY setting to take the connection over, copies
	// stdin to the process (closing the process's stdin when the client
	// half-closes) and its output to the client, and returns when the
	// process has exited and its output is drained, or when ctx ends (the
	// client went away). An error after Streams is written to the client
	// by the router.
	ExecStart(ctx context.Context, id string, opts StartOptions) error

	// ExecInspect is GET /exec/{id}/json.
	ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error)

	// ExecResize sets the exec's TTY size.
	ExecResize(ctx context.Context, id string, height, width uint32) error
}

// StartOptions are POST /exec/{id}/start's body plus the stream setup.
type StartOptions struct {
	Detach bool
	// ConsoleSize is the initial [height, width] of the TTY (nil: none,
	// and always nil without a TTY or before API 1.42).
	ConsoleSize *[2]uint
	// Streams is nil with Detach. Stdin is set when the exec was created
	// with AttachStdin, Stdout and Stderr with AttachStdout/AttachStderr:
	// Streams(tty, stdin, stdout, stderr).
	Streams func(tty, stdin, stdout, stderr bool) (*api.Streams, error)
}
