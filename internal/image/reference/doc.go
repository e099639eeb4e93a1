// Package reference parses and prints image references the way Docker
// does: "busybox" means docker.io/library/busybox:latest, "user/app" means
// docker.io/user/app:latest, and a first component containing '.' or ':'
// (or equal to "localhost") names a registry.
//
// It owns the reference grammar, the Docker Hub normalisation rules, the
// familiar (short) form shown to users, pattern matching for the Engine
// API's reference= filters, and the mapping from the canonical Docker Hub
// domain to the host that serves its registry API.
//
// One deliberate difference from recent Docker: a first component with
// upper-case letters ("Foo/bar") is not taken as a registry host; such a
// name fails the lowercase rule with a message that says so.
//
// What it must not do: it never talks to a registry, never resolves a tag
// to a digest and never looks at the image store. Deciding whether a string
// is an image ID or a reference is the image store's job.
//
// Entry points:
//
//	ref, err := reference.Parse("busybox")   // docker.io/library/busybox:latest
//	ref.Familiar()                            // "busybox:latest"
//	repo, err := reference.ParseRepository("localhost:5000/app")
//	reference.FamiliarMatch("busy*", ref)     // true
//	reference.RegistryHost(ref.Domain())      // "registry-1.docker.io"
//
// Errors are classified errdefs.InvalidArgument and wrap ErrInvalidFormat,
// with Docker's wording ("invalid reference format: repository name
// (library/Busybox) must be lowercase").
package reference
