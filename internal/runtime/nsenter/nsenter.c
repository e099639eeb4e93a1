// The constructor in this file runs before the Go runtime starts, while the
// process still has exactly one thread. Only a single-threaded process may
// join a user, mount or time namespace (setns(2) refuses otherwise), so the
// runtime asks for those joins through the environment and they happen here.
//
// Protocol (environment, set by the parent only on the init/exec re-exec):
//   _BERTH_NSENTER  comma-separated "type:path" pairs, applied in order; the
//                   parent puts "user" first so that later joins and unshares
//                   happen with the capabilities of the joined user namespace.
//   _BERTH_UNSHARE  decimal clone flags to unshare(2) after the joins.
//   _BERTH_CGROUP_TASKS  newline-separated cgroup v1 "tasks" files; "0" (this
//                   thread, i.e. the whole process while single-threaded)
//                   is written to each, before any namespace is joined.
//   _BERTH_SYNC_FD  descriptor of the sync socket; on failure a JSON error
//                   message is written there and the process exits 1.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

static void berth_fail(const char *what, const char *arg, int err)
{
	char buf[1024];
	const char *fd_env = getenv("_BERTH_SYNC_FD");
	int n = snprintf(buf, sizeof(buf),
			 "{\"type\":\"error\",\"message\":\"nsenter: %s %s: %s\"}",
			 what, arg ? arg : "", strerror(err));
	if (fd_env != NULL && n > 0) {
		int fd = atoi(fd_env);
		if (write(fd, buf, (size_t)n) < 0) {
			/* nothing more we can do */
		}
	} else {
		fprintf(stderr, "%s\n", buf);
	}
	_exit(1);
}

static void berth_trace(const char *what)
{
	struct timespec ts;
	if (getenv("BERTH_TRACE_INIT") == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "[trace %ld.%06ld %d] nsenter: %s\n", (long)(ts.tv_sec % 100),
		ts.tv_nsec / 1000, (int)getpid(), what);
}

static int berth_ns_flag(const char *type)
{
	if (strcmp(type, "user") == 0) return CLONE_NEWUSER;
	if (strcmp(type, "mnt") == 0 || strcmp(type, "mount") == 0) return CLONE_NEWNS;
	if (strcmp(type, "time") == 0) return CLONE_NEWTIME;
	if (strcmp(type, "net") == 0 || strcmp(type, "network") == 0) return CLONE_NEWNET;
	if (strcmp(type, "uts") == 0) return CLONE_NEWUTS;
	if (strcmp(type, "ipc") == 0) return CLONE_NEWIPC;
	if (strcmp(type, "pid") == 0) return CLONE_NEWPID;
	if (strcmp(type, "cgroup") == 0) return CLONE_NEWCGROUP;
	return -1;
}

__attribute__((constructor)) static void berth_nsenter(void)
{
	const char *spec = getenv("_BERTH_NSENTER");
	const char *unshare_env = getenv("_BERTH_UNSHARE");
	const char *tasks = getenv("_BERTH_CGROUP_TASKS");
	if (spec == NULL && unshare_env == NULL && tasks == NULL)
		return;

	berth_trace("start");
	if (tasks != NULL && *tasks != '\0') {
		char *copy = strdup(tasks);
		char *save = NULL;
		if (copy == NULL)
			berth_fail("strdup", NULL, ENOMEM);
		for (char *path = strtok_r(copy, "\n", &save); path != NULL;
		     path = strtok_r(NULL, "\n", &save)) {
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				berth_fail("open cgroup", path, errno);
			if (write(fd, "0", 1) != 1)
				berth_fail("join cgroup", path, errno);
			close(fd);
		}
		free(copy);
		unsetenv("_BERTH_CGROUP_TASKS");
		berth_trace("cgroups joined");
	}

	if (spec != NULL && *spec != '\0') {
		char *copy = strdup(spec);
		char *save = NULL;
		if (copy == NULL)
			berth_fail("strdup", NULL, ENOMEM);
		for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			char *colon = strchr(tok, ':');
			if (colon == NULL)
				berth_fail("malformed entry", tok, EINVAL);
			*colon = '\0';
			const char *path = colon + 1;
			int flag = berth_ns_flag(tok);
			if (flag < 0)
				berth_fail("unknown namespace type", tok, EINVAL);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				berth_fail("open", path, errno);
			if (setns(fd, flag) < 0)
				berth_fail("setns", path, errno);
			close(fd);
			if (flag == CLONE_NEWUSER) {
				/* Become the namespace's root: files created from now
				 * on (and the credentials execve computes capabilities
				 * from) must be mapped in the joined namespace. */
				if (setresgid(0, 0, 0) < 0)
					berth_fail("setresgid in", path, errno);
				if (setgroups(0, NULL) < 0 && errno != EPERM)
					berth_fail("setgroups in", path, errno);
				if (setresuid(0, 0, 0) < 0)
					berth_fail("setresuid in", path, errno);
			}
		}
		free(copy);
	}
	if (unshare_env != NULL && *unshare_env != '\0') {
		int flags = atoi(unshare_env);
		if (flags != 0 && unshare(flags) < 0)
			berth_fail("unshare", unshare_env, errno);
	}
	unsetenv("_BERTH_NSENTER");
	unsetenv("_BERTH_UNSHARE");
}
