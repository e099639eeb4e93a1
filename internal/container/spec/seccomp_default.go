//go:build linux

package spec

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The default seccomp profile: Docker's allowlist, written down here by
// theme rather than alphabetically. Everything not listed fails with
// EPERM. Names a given architecture lacks are skipped by the runtime.
//
// Compared with the profile of Docker 24, it follows the later changes
// of Docker's default: io_uring is refused (Docker 25), socket(2) is
// refused for AF_VSOCK, and cachestat, fchmodat2, map_shadow_stack and the
// futex2 calls (futex_wake/wait/requeue) are allowed.
var (
	// allowedFiles: files, directories, metadata, xattrs, links.
	allowedFiles = `
		access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2
		chown chown32 fchown fchown32 fchownat lchown lchown32 creat open openat openat2
		close close_range dup dup2 dup3 fcntl fcntl64 flock fsync fdatasync sync syncfs
		sync_file_range fadvise64 fadvise64_64 fallocate readahead cachestat
		ftruncate ftruncate64 truncate truncate64 getdents getdents64
		link linkat symlink symlinkat unlink unlinkat rename renameat renameat2
		mkdir mkdirat rmdir mknod mknodat readlink readlinkat umask
		stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
		statfs statfs64 fstatfs fstatfs64 utime utimes utimensat utimensat_time64 futimesat
		getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr
		listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
		inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark`

	// allowedIO: reading, writing, polling, pipes, async I/O (not io_uring).
	allowedIO = `
		read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
		lseek _llseek sendfile sendfile64 splice tee vmsplice copy_file_range
		pipe pipe2 ioctl select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
		epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old
		epoll_pwait epoll_pwait2 eventfd eventfd2 signalfd signalfd4
		timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
		io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
		ioprio_get ioprio_set`

	// allowedNet: sockets (socket itself is below, without AF_VSOCK).
	allowedNet = `
		accept accept4 bind connect listen shutdown socketpair socketcall
		getpeername getsockname getsockopt setsockopt
		recv recvfrom recvmsg recvmmsg recvmmsg_time64 send sendto sendmsg sendmmsg`

	// allowedMemory: address space and memory locking.
	allowedMemory = `
		brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages
		mlock mlock2 mlockall munlock munlockall membarrier memfd_create memfd_secret
		map_shadow_stack`

	// allowedProcess: processes, threads, credentials, scheduling, limits.
	allowedProcess = `
		execve execveat exit exit_group fork vfork wait4 waitid waitpid
		getpid getppid gettid getpgid getpgrp setpgid getsid setsid
		getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
		getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
		setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
		setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32
		setgroups setgroups32 capget capset prctl seccomp
		getrlimit setrlimit ugetrlimit prlimit64 getrusage getpriority setpriority
		sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr
		sched_getparam sched_setparam sched_getscheduler sched_setscheduler
		sched_get_priority_max sched_get_priority_min
		sched_rr_get_interval sched_rr_get_interval_time64 getcpu
		set_tid_address get_robust_list set_robust_list rseq
		get_thread_area set_thread_area pidfd_open pidfd_send_signal process_mrelease
		landlock_create_ruleset landlock_add_rule landlock_restrict_self
		futex futex_time64 futex_waitv futex_wake futex_wait futex_requeue`

	// allowedSignals: signals and timers.
	allowedSignals = `
		kill tkill tgkill pause restart_syscall alarm getitimer setitimer
		rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_tgsigqueueinfo
		rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
		sigaltstack sigprocmask sigreturn
		nanosleep clock_nanosleep clock_nanosleep_time64
		timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
		timer_settime timer_settime64`

	// allowedClockIPC: reading clocks, System V and POSIX IPC, misc.
	allowedClockIPC = `
		time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64
		adjtimex clock_adjtime clock_adjtime64 times sysinfo uname getrandom
		ipc msgget msgctl msgrcv msgsnd semget semctl semop semtimedop semtimedop_time64
		shmget shmctl shmat shmdt mq_open mq_unlink mq_notify mq_getsetattr
		mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64`
)

// personality(2) values a container may set: PER_LINUX, UNAME26,
// PER_LINUX32, UNAME26|PER_LINUX32, and 0xffffffff (query).
var allowedPersonalities = []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff}

// nsCloneFlags are the namespace flags clone(2) may not use without
// CAP_SYS_ADMIN.
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// afVsock is AF_VSOCK, refused by the default profile.
const afVsock = 40

// capRule is a set of syscalls a capability unlocks.
type capRule struct {
	cap   string
	names string
}

var capabilityRules = []capRule{
	{"CAP_DAC_READ_SEARCH", "open_by_handle_at"},
	{"CAP_SYS_ADMIN", `bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
		mount mount_setattr move_mount name_to_handle_at open_tree perf_event_open quotactl quotactl_fd
		setdomainname sethostname setns syslog umount umount2 unshare`},
	{"CAP_SYS_BOOT", "reboot"},
	{"CAP_SYS_CHROOT", "chroot"},
	{"CAP_SYS_MODULE", "delete_module init_module finit_module"},
	{"CAP_SYS_PACCT", "acct"},
	{"CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"},
	{"CAP_SYS_RAWIO", "iopl ioperm"},
	{"CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"},
	{"CAP_SYS_TTY_CONFIG", "vhangup"},
	{"CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"},
	{"CAP_SYSLOG", "syslog"},
	{"CAP_BPF", "bpf"},
	{"CAP_PERFMON", "perf_event_open"},
}

// archRules are syscalls only some architectures have (Go arch names).
var archRules = []struct {
	arches []string
	names  string
}{
	{[]string{"ppc64le"}, "sync_file_range2 swapcontext"},
	{[]string{"arm", "arm64"}, "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"},
	{[]string{"amd64", "x32"}, "arch_prctl"},
	{[]string{"amd64", "x32", "x86"}, "modify_ldt"},
	{[]string{"s390", "s390x"}, "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"},
	{[]string{"riscv64"}, "riscv_flush_icache"},
}

// defaultProfile builds the default profile in Docker's format, so that it
// goes through exactly the conversion a user profile does.
func defaultProfile() *profile {
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	allow := specs.ActAllow
	var names []string
	for _, group := range []string{allowedFiles, allowedIO, allowedNet, allowedMemory, allowedProcess, allowedSignals, allowedClockIPC} {
		names = append(names, strings.Fields(group)...)
	}
	p := &profile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		ArchMap: []archMap{
			{specs.ArchX86_64, []specs.Arch{specs.ArchX86, specs.ArchX32}},
			{specs.ArchAARCH64, []specs.Arch{specs.ArchARM}},
			{specs.ArchMIPS64, []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64N32}},
			{specs.ArchMIPS64N32, []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64}},
			{specs.ArchMIPSEL64, []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64N32}},
			{specs.ArchMIPSEL64N32, []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64}},
			{specs.ArchS390X, []specs.Arch{specs.ArchS390}},
			{specs.ArchRISCV64, nil},
		},
	}
	add := func(s profileSyscall) { p.Syscalls = append(p.Syscalls, s) }

	add(profileSyscall{Names: names, Action: allow})
	add(profileSyscall{Names: []string{"socket"}, Action: allow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: afVsock, Op: specs.OpNotEqual}}})
	// Since 4.8 seccomp runs after ptrace, so ptrace cannot bypass it.
	add(profileSyscall{Names: strings.Fields("process_vm_readv process_vm_writev ptrace"), Action: allow,
		Includes: &profileFilter{MinKernel: "4.8"}})
	for _, v := range allowedPersonalities {
		add(profileSyscall{Names: []string{"personality"}, Action: allow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}})
	}
	for _, r := range archRules {
		add(profileSyscall{Names: strings.Fields(r.names), Action: allow, Includes: &profileFilter{Arches: r.arches}})
	}
	for _, r := range capabilityRules {
		add(profileSyscall{Names: strings.Fields(r.names), Action: allow, Includes: &profileFilter{Caps: []string{r.cap}}})
	}
	// Without CAP_SYS_ADMIN, clone(2) may not create namespaces (its flags
	// are the second argument on s390), and clone3(2), whose flags seccomp
	// cannot see, reports ENOSYS so that libcs fall back to clone(2).
	add(profileSyscall{Names: []string{"clone"}, Action: allow,
		Args:     []specs.LinuxSeccompArg{{Index: 0, Value: nsCloneFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
		Excludes: &profileFilter{Caps: []string{"CAP_SYS_ADMIN"}, Arches: []string{"s390", "s390x"}}})
	add(profileSyscall{Names: []string{"clone"}, Action: allow,
		Args:     []specs.LinuxSeccompArg{{Index: 1, Value: nsCloneFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
		Includes: &profileFilter{Arches: []string{"s390", "s390x"}},
		Excludes: &profileFilter{Caps: []string{"CAP_SYS_ADMIN"}}})
	add(profileSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys,
		Excludes: &profileFilter{Caps: []string{"CAP_SYS_ADMIN"}}})
	return p
}
