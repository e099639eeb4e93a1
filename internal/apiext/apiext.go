// Package apiext defines berth's extensions to the Engine API: what
// berthd offers beyond Docker's API and only the berth CLI uses. Both
// sides import it (it holds names and wire types only). A client that
// does not ask for an extension never sees one; the berth CLI uses one
// only when the daemon announced it, so it still works against dockerd.
package apiext

import "github.com/moby/moby/api/types/container"

// Header is the response header in which berthd lists its extensions
// (comma-separated names), on every answer.
const Header = "Berth-Extensions"

// AttachRun is `run` in one request: POST /containers/{id}/attach with
// stream=1, the usual stdin/stdout/stderr, and RunParam set to a wait
// condition (next-exit, removed) on a created container without a TTY.
// berthd registers the wait, hijacks the connection as for any attach,
// starts the container once the stream is attached, streams its output
// in Docker's multiplexed frames, and ends the stream with one frame of
// type ResultFrame holding a RunResult (JSON): the start's error, or the
// wait's answer. A client saves the separate wait and start requests and
// the round trips between them (docker run sends attach and wait, waits
// for both answers, then sends start).
const (
	AttachRun = "attach-run"
	RunParam  = "berth-run"
)

// ResultFrame is the stream type of the frame that ends an AttachRun
// stream (Docker's frames use 0-3).
const ResultFrame byte = 'r'

// RunResult ends an AttachRun stream: exactly one field is set.
type RunResult struct {
	// Wait is the wait's answer (the exit, and for "removed" the
	// removal, as POST /containers/{id}/wait would have sent it).
	Wait *container.WaitResponse `json:"wait,omitempty"`
	// StartError is why the start failed.
	StartError *StartError `json:"start_error,omitempty"`
}

// StartError is a failed start as POST /containers/{id}/start would
// have answered it: its HTTP status and message.
type StartError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}
