// Package seccomp turns the seccomp section of an OCI runtime config
// (specs.LinuxSeccomp) into a kernel filter and installs it.
//
// It owns: checking a config (Validate, run at create time so a bad bundle
// is refused early), compiling it with libseccomp and loading the result
// with seccomp(2) on the calling thread (Load), handing a SCMP_ACT_NOTIFY
// listener fd to the seccomp agent at listenerPath (SendListener), and
// describing what the build supports for `berth-runtime features`
// (Features).
//
// It must not: set no_new_privs (that is the runtime's decision, from
// process.noNewPrivileges; Load only needs it set, or CAP_SYS_ADMIN, to
// succeed), lock or fork threads, exec, or decide when in container setup
// the filter goes in. Those belong to package runtime, which calls Load
// from the locked OS thread that will execve the container process.
//
// Entry point: Load. Its behaviour in brief:
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
//   - SCMP_ACT_NOTIFY (as a rule or the default) makes Load return the
//     listener fd. Every notified syscall blocks until the agent answers,
//     so the syscalls the runtime makes between Load and execve (passing
//     the fd on, execve itself) must not be notified. Validate refuses
//     NOTIFY without a listenerPath.
//
// Load exports the program from libseccomp and calls seccomp(2) itself
// rather than using libseccomp's loader, because libseccomp-golang always
// asks for TSYNC and has no switch for it, and libseccomp < 2.6 cannot set
// WAIT_KILLABLE_RECV.
package seccomp
