// Package seccomp turns the seccomp section of an OCI runtime config
// (specs.LinuxSeccomp) into a kernel filter.
//
// It owns: checking a config and compiling it with libseccomp, once per
// distinct config on the host (Compile, run by the runtime at create time
// so a bad bundle is refused early; Validate is Compile without a file
// cache), installing a config on the calling thread (Load, for callers
// that compile and install in one process), handing a SCMP_ACT_NOTIFY
// listener fd to the seccomp agent at listenerPath (SendListener), and
// describing what the build supports for `berth-runtime features`
// (Features). Subpackage bpf installs a compiled program with seccomp(2)
// alone; it is all the container init links.
//
// It must not: set no_new_privs (that is the runtime's decision, from
// process.noNewPrivileges; installing only needs it set, or
// CAP_SYS_ADMIN, to succeed), lock or fork threads, exec, or decide when
// in container setup the filter goes in. Those belong to package runtime
// and its init (initproc), which installs the compiled program from the
// locked OS thread that will execve the container process.
//
// Compiling Docker's default profile takes libseccomp about 10 ms here;
// Compile keeps each result in the process and in a file cache the caller
// names (the runtime uses <root>-seccomp), keyed by a SHA-256 of the
// config and of everything else that shapes the program, and verified on
// every read (cache_linux.go). A hit costs a JSON encoding and a hash of
// the config, and for the file a read of a few KiB.
//
// Entry points: Compile and Load. What they build, in brief:
//
//   - defaultAction/defaultErrnoRet and every syscalls[] action, with
//     errnoRet for SCMP_ACT_ERRNO and SCMP_ACT_TRACE (default EPERM);
//     errnoRet on any other action is an error, as runtime-spec requires.
//   - SCMP_ACT_KILL means SECCOMP_RET_KILL, i.e. kill the thread.
//   - Syscall names this architecture does not have are skipped. Rules
//     whose action equals the default action are dropped (no-ops).
//   - args: all conditions of an entry must match, except when one
//     argument index appears more than once; then each condition is its
//     own rule and any of them matching is enough (what runc and crun do).
//     SCMP_CMP_MASKED_EQ takes the mask in value and the datum in valueTwo.
//   - architectures are added to the native one; syscalls from any other
//     ABI hit libseccomp's bad-arch action (kill).
//   - flags map to seccomp(2) flags; the kernel must know them.
//     SECCOMP_FILTER_FLAG_TSYNC is the only way the filter reaches other
//     threads. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only matters, and is
//     only passed, when the filter has a listener.
//   - SCMP_ACT_NOTIFY (as a rule or the default) adds
//     SECCOMP_FILTER_FLAG_NEW_LISTENER, and installing returns the
//     listener fd. Every notified syscall blocks until the agent answers,
//     so the syscalls the runtime makes between installing the filter and
//     execve (passing the fd on, execve itself) must not be notified.
//     Compile and Validate refuse NOTIFY without a listenerPath.
//
// The program is laid out as a binary tree over the syscall numbers
// (libseccomp's optimize level 2) rather than its default linear chain:
// the same decisions (TestOptimizedProgramDecidesAlike runs both layouts
// in an interpreter over every syscall number and architecture), and
// installing it costs the kernel about 0.3 ms instead of 0.7 for Docker's
// profile, because seccomp(2) runs the filter once per syscall number to
// precompute which are always allowed.
//
// The program is exported from libseccomp (seccomp_export_bpf: the very
// program its own loader would pass to the kernel) and installed with
// seccomp(2) directly rather than with libseccomp's loader, because
// libseccomp-golang always asks for TSYNC and has no switch for it,
// libseccomp < 2.6 cannot set WAIT_KILLABLE_RECV, and the container init
// must not compile anything.
package seccomp
