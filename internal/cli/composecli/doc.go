// Package composecli implements `berth compose`, the Compose CLI: the
// commands, flags and output of Docker Compose v2 (up, down, ps, logs,
// exec, run, config, ...). The work (loading the project, converging the
// engine) is internal/compose.
//
// # Why a package (and a binary) of its own
//
// compose-go's loader brings a JSON schema validator whose package
// initialisation costs milliseconds. Linked into berth, every command (run,
// ps, exec...) paid it. So, as Docker Compose is a docker CLI plugin,
// Compose is the berth-compose binary (cmd/berth-compose, entry point
// [Main]); berth's `compose` command only execs it with berth's own
// argument list (internal/cli/compose.go). berth-compose's root command is
// berth's, with its global options (-H, --context, --config, --log-level,
// TLS) and the one compose command, so `berth -H x compose up` works.
//
// # What it must not do
//
// Like internal/cli it talks to the daemon only through the Engine API
// client; it may use internal/cli (through the small exported surface of
// internal/cli/export.go) and internal/compose, nothing else of berth.
// internal/cli's TestNoDaemonImports fences both packages, and
// TestBerthBinaryLinksNoCompose keeps Compose out of the berth binary.
package composecli
