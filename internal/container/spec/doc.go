// Package spec turns a Docker container configuration (the Engine API's
// container.Config and container.HostConfig) into the OCI runtime spec that
// berth's runtime executes, with Docker's defaults, so that a container
// created through berthd looks from the inside as it does under dockerd:
// same capabilities, seccomp filter, mounts, masked paths, devices,
// namespaces, environment, user and groups, resources and sysctls.
//
// Entry points:
//
//	err := spec.MergeImageConfig(cfg, &img.Config) // at create time
//	s, err := spec.Generate(ctx, spec.Input{       // at start time
//		ID: id, Config: cfg, HostConfig: hc,
//		Rootfs: "/var/lib/berth/.../merged",
//		HostnamePath: ..., HostsPath: ..., ResolvConfPath: ...,
//		Mounts: resolvedVolumes,
//		ContainerNS: lookup,
//	})
//
// Every error caused by the user's configuration is classified
// errdefs.InvalidArgument with a Docker-like message ("unknown capability:
// \"CAP_FOO\"", "unable to find user xyz: no matching entries in passwd
// file"); errors from the host (a device that cannot be read) are
// classified where they arise.
//
// What Generate reads: the container's /etc/passwd and /etc/group (opened
// inside Input.Rootfs with openat2 RESOLVE_IN_ROOT via pathrs-lite, so a
// symlink in the image can never make it read a host file), host device
// nodes named by the configuration, /proc/sys (which default sysctls
// exist), /sys (cgroup version, CPU list) and the kernel version. The only
// thing it writes is the working directory inside Rootfs when it is
// missing, as dockerd does at start (created 0755 root:root, safely inside
// the root).
//
// Contract with the daemon (what this package must not do):
//
//   - Named and anonymous volumes, --volumes-from and `type=volume`/`image`
//     mounts are resolved by the daemon and passed as Input.Mounts (OCI
//     mounts, appended after Docker's defaults and sorted with the other
//     user mounts by destination depth). Binds whose source is not an
//     absolute host path are refused unless a mount for the same
//     destination is in Input.Mounts. HostConfig.Mounts of type bind and
//     tmpfs are handled here; every other type is skipped and must be in
//     Input.Mounts. The daemon creates missing -v bind sources on the host
//     (Docker does; --mount type=bind refuses a missing source, as here).
//   - --init: the daemon prepends its init to Config.Entrypoint/Cmd and
//     passes the binary's bind mount in Input.Mounts. The daemon also
//     writes the hostname, hosts and resolv.conf files, chooses the
//     network namespace (NetNSPath) and resolves container:<ref> modes
//     through Input.ContainerNS. For --ipc container:<ref> it should pass
//     the other container's /dev/shm as a bind mount in Input.Mounts.
//   - Daemon-wide defaults (default ulimits, a daemon seccomp profile,
//     default cgroupns mode) are merged into the HostConfig by the daemon
//     before Generate; Generate only applies Docker's built-in defaults.
//     Without ulimits the container inherits berthd's rlimits, as Docker
//     containers inherit containerd's.
//   - Config.Volumes (the image's VOLUMEs), legacy --link environment
//     variables, and the hostname of a container joining another's network
//     (container:<ref>) are the daemon's: it fills Config and Input.Mounts.
//
// Known differences from dockerd: a slave bind of a private host mount is
// refused even under the daemon's root (dockerd falls back to private
// propagation there); --ipc shareable gets a private
// /dev/shm tmpfs (sharing it is the daemon's business through
// Input.Mounts); device requests (--gpus) are refused; user namespaces
// (userns-mode other than host) are not supported; privileged containers
// get every capability the kernel has that berthd itself holds (the same
// as Docker on an ordinary host).
//
// Security options (HostConfig.SecurityOpt, "key=value" or the legacy
// "key:value"): no-new-privileges[=bool]; seccomp=unconfined | builtin |
// <profile JSON> (the docker CLI sends the file's content; the format is
// Docker's, with archMap and includes/excludes on caps, arches and
// minKernel); systempaths=unconfined (no masked or read-only paths; the
// CLI usually sends empty MaskedPaths/ReadonlyPaths instead);
// writable-cgroups=bool; apparmor=...; label=....
//
// LSMs: the host berth targets has neither AppArmor nor SELinux enforced,
// so "apparmor=..." and "label=..." security options are validated and
// accepted but change nothing (dockerd does the same on such a host: it
// leaves process.apparmorProfile empty when AppArmor is not enabled).
package spec
