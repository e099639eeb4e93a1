// Package compose implements the Compose Specification on top of the Docker
// Engine API: it loads a project (compose-go), turns services into Engine
// API requests labelled exactly as Docker Compose v2 labels them, and
// converges the engine's state towards the project (up, down, start, stop,
// run, ...).
//
// It owns: project loading rules (files, .env, profiles, project name),
// resource naming (<project>-<service>-<n>, <project>_default,
// <project>_<volume>), the com.docker.compose.* labels and config hashes,
// the service dependency graph and the service → container conversion.
//
// It must not import berth's engine packages: like the CLI, it talks to the
// daemon only through the Engine API client (the API interface below is the
// subset of *client.Client it uses), so it works against berthd and against
// any dockerd. TestNoEngineImports fences this.
//
// Entry points: Load builds a *types.Project; Engine runs the commands
// (Engine.Up, Engine.Down, ...); ContainerCreateOptions is the pure
// conversion of one service replica into a POST /containers/create body.
package compose
