package runtime

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status values, as in the OCI runtime specification, plus "paused" as runc.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusPaused   = "paused"
)

// persisted is what the runtime writes to <root>/<id>/state.json. It is the
// runtime's private record; State is the public OCI view derived from it.
type persisted struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	InitPid     int               `json:"init_process_pid"`
	InitStart   uint64            `json:"init_process_start"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	CgroupPaths map[string]string `json:"cgroup_paths"`
	// NamespacePaths maps namespace type to the path a later exec joins.
	NamespacePaths map[specs.LinuxNamespaceType]string `json:"namespace_paths"`
	Config         *specs.Spec                         `json:"config"`
	// Started is set once start has handed the process over to exec.
	Started bool `json:"started"`
	// Creating is true until init reported ready.
	Creating bool `json:"creating,omitempty"`

	// configJSON, when set, is Config as the JSON it was parsed from
	// (the bundle's config.json, unchanged since): save writes these
	// bytes rather than encoding Config again.
	configJSON []byte
}

// State is the OCI state of a container, extended with runc's fields that
// `runc state` and `runc list` print.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}
