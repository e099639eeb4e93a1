package shim

// OCIRuntime is an external OCI runtime with runc's command line (runc,
// crun, youki): the shim drives the container with `create`, `start`,
// `kill`, `delete`, `exec`, and berthd with `pause`, `resume`, `update`.
// A nil *OCIRuntime means berth's own runtime (the library, in-process).
type OCIRuntime struct {
	// Name is the runtime's name in daemon.json's "runtimes" (for errors).
	Name string `json:"name"`
	// Path is the runtime binary.
	Path string `json:"path"`
	// Args are daemon.json's runtimeArgs, given before the subcommand.
	Args []string `json:"args,omitempty"`
	// Root is the runtime's state directory (its --root): one per runtime
	// name under berthd's exec root.
	Root string `json:"root"`
}
