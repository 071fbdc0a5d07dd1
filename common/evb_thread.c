/*
 * evb_thread.c: thread names and priorities (common.h, "Threads").
 *
 * Linux keeps both per thread: prctl(PR_SET_NAME) names the caller, and
 * setpriority(PRIO_PROCESS, tid) sets the nice value of one thread only
 * (a Linux departure from POSIX, documented in setpriority(2), "BUGS").
 * Both need the kernel's thread id, hence _GNU_SOURCE for gettid().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/common.h"

void
evb_thread_name(const char *name)
{
	char buf[EVB_THREAD_NAME_MAX + 1];

	(void) snprintf(buf, sizeof(buf), "%s", name);
	// A name is a diagnostic: failing to set one changes nothing else.
	(void) prctl(PR_SET_NAME, buf, 0, 0, 0);
}

int
evb_thread_nice(int inc)
{
	pid_t tid = gettid();
	int   now;

	if (inc < 1 || inc > 19) {
		return EVB_EINVAL;
	}
	errno = 0;
	now   = getpriority(PRIO_PROCESS, (id_t) tid);
	if (now == -1 && errno != 0) {
		return evb_err_errno(errno);
	}
	if (setpriority(PRIO_PROCESS, (id_t) tid,
	        now + inc > 19 ? 19 : now + inc) != 0) {
		return evb_err_errno(errno);
	}
	return EVB_OK;
}
