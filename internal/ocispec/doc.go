// Package ocispec owns berth's view of the OCI runtime-spec config.json:
// generating the default configuration (Default, Rootless), reading a
// bundle's config.json (Load) and rejecting configurations that cannot be
// run (Validate).
//
// Entry points:
//
//	spec := ocispec.Default()           // what `berth-runtime spec` writes
//	ocispec.Rootless(spec)              // adjust it for an unprivileged user
//	spec, err := ocispec.Load(bundle)   // read <bundle>/config.json
//	err = ocispec.Validate(spec, bundle)
//
// Validate reports the first problem it finds as a *ValidationError that
// names the offending field (for example "process.args") so that users can
// fix their config.json without reading runtime code.
//
// What this package must not do: it never creates namespaces, mounts,
// cgroups or processes, and it does not validate seccomp profiles (the
// seccomp package owns that). Validate only reads the filesystem to check
// that the rootfs exists and that namespace paths refer to namespaces of the
// right type; it never writes anything.
//
// The name tables used by Validate (capabilities, rlimits, namespaces) are
// exported through CapabilityNumber, CapabilityNames, RlimitResource and
// NamespaceCloneFlag so that the runtime resolves names exactly the way
// validation accepted them.
package ocispec
