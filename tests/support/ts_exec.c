/*
 * ts_exec: `evb_ts_exec PARENT_PID PROGRAM [ARG...]` runs PROGRAM in its
 * own place (execv, same PID) after asking the kernel to SIGKILL it when
 * the process that spawned it dies.
 *
 * Why: a test's .fini kills what the test started, but when ctest kills
 * a test binary on timeout no .fini runs, and the brokers it started
 * would live on. evb_ts_spawn (support.c) starts children through this
 * program when EVB_TS_EXEC names it, so they cannot outlive their test.
 * posix_spawn has no hook to set this itself, and support.c keeps
 * posix_spawn so no test code runs between fork and exec.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

int
main(int argc, char **argv)
{
	char *end;
	long  parent;

	if (argc < 3) {
		fprintf(
		    stderr, "usage: evb_ts_exec PARENT_PID PROGRAM [ARG...]\n");
		return 127;
	}
	parent = strtol(argv[1], &end, 10);
	if (*end != '\0' || parent <= 1) {
		fprintf(stderr, "evb_ts_exec: bad parent pid '%s'\n", argv[1]);
		return 127;
	}
#ifdef __linux__
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
		fprintf(stderr, "evb_ts_exec: prctl: %s\n", strerror(errno));
		return 127;
	}
#endif
	// The parent may have died before prctl took effect: then no
	// signal will come, so stop here.
	if ((long) getppid() != parent) {
		return 127;
	}
	execv(argv[2], argv + 2);
	fprintf(stderr, "evb_ts_exec: %s: %s\n", argv[2], strerror(errno));
	return 127;
}
