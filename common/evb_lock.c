/*
 * evb_lock.c: a directory's writer lock (common.h, "Writer locks").
 *
 * Why flock on a file of its own: LMDB serialises write transactions but
 * lets any number of processes open an environment for writing, and
 * evbus's writers keep state in memory between transactions (the
 * collector its epoch and next seq, the compactor its position), so a
 * second writer would interleave with the first rather than wait. flock
 * belongs to the open file description, so a second open in the same
 * process is refused too, and the kernel drops it when the process
 * dies, so kill -9 leaves no stale lock behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

int
evb_dir_lock(const char *dir, const char *what, int *fd, evb_diag *diag)
{
	size_t n = strlen(dir) + sizeof("/" EVB_DIR_LOCK_FILE);
	char  *lp;
	int    e;

	*fd = -1;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		e = errno;
		evb_diag_set(diag, "creating %s: %s", dir, strerror(e));
		return evb_err_errno(e);
	}
	if ((lp = malloc(n)) == NULL) {
		return EVB_ENOMEM;
	}
	(void) snprintf(lp, n, "%s/" EVB_DIR_LOCK_FILE, dir);
	*fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	e   = errno;
	free(lp);
	if (*fd < 0) {
		evb_diag_set(diag, "opening the %s's writer lock in %s: %s",
		    what, dir, strerror(e));
		return evb_err_errno(e);
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0) {
		return EVB_OK;
	}
	e = errno;
	(void) close(*fd);
	*fd = -1;
	if (e == EWOULDBLOCK) {
		evb_diag_set(
		    diag, "another writer holds the %s in %s", what, dir);
		return EVB_EBUSY;
	}
	evb_diag_set(diag, "locking the %s in %s: %s", what, dir, strerror(e));
	return evb_err_errno(e);
}

void
evb_dir_unlock(int fd)
{
	if (fd >= 0) {
		(void) close(fd); // Closing the descriptor drops the flock.
	}
}
