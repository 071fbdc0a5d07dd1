/*
 * cli_sig.c: SIGINT and SIGTERM as a readable pipe (the self-pipe
 * trick), for the commands that run until told to stop (broker, tail);
 * and the deadline on closing their sockets (cli_close_deadline).
 *
 * The handler only writes one byte to the pipe; the command polls the
 * read end next to its other descriptors (nng's receive fd, for tail),
 * so it wakes at once, with no flag checked on a timer. The pipe's write
 * end is the process's one shutdown flag (STYLE.md allows exactly that
 * global); both ends are non-blocking, so a burst of signals can never
 * block the handler.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define CLI_CLOSE_GRACE_S 5 /* See cli_close_deadline. */

static volatile sig_atomic_t sig_write_fd = -1; /* The pipe's write end. */
static volatile sig_atomic_t sig_exit_status;   /* cli_close_deadline's. */
static int                   sig_read_fd = -1;  /* Its read end. */

static void
sig_handler(int signo)
{
	int  saved = errno;
	char c     = (char) signo;

	// A full pipe already says "stop"; the byte is not needed.
	(void) !write(sig_write_fd, &c, 1);
	errno = saved;
}

static int
sig_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		return -1;
	}
	return 0;
}

int
cli_sig_open(const cli_cmd *cmd, int *fd)
{
	struct sigaction sa;
	sigset_t         set;
	int              p[2];

	if (pipe(p) != 0) {
		cli_error(cmd, "cannot create a pipe: %s", strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (sig_nonblock(p[0]) != 0 || sig_nonblock(p[1]) != 0) {
		cli_error(cmd, "cannot set up a pipe: %s", strerror(errno));
		(void) close(p[0]);
		(void) close(p[1]);
		return CLI_EXIT_USAGE;
	}
	sig_read_fd  = p[0];
	sig_write_fd = p[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sa.sa_flags   = SA_RESTART;
	(void) sigemptyset(&sa.sa_mask);
	// A parent may have blocked them (the mask survives exec); threads
	// started later (nng's, the broker's) inherit the unblocked mask.
	(void) sigemptyset(&set);
	(void) sigaddset(&set, SIGINT);
	(void) sigaddset(&set, SIGTERM);
	if (sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigprocmask(SIG_UNBLOCK, &set, NULL) != 0) {
		cli_error(cmd, "cannot catch signals: %s", strerror(errno));
		cli_sig_close();
		return CLI_EXIT_USAGE;
	}
	*fd = sig_read_fd;
	return CLI_CONTINUE;
}

void
cli_sig_close(void)
{
	struct sigaction sa;
	int              wfd = sig_write_fd;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	(void) sigemptyset(&sa.sa_mask);
	// Restore the default first, so no handler runs on a closed fd.
	(void) sigaction(SIGINT, &sa, NULL);
	(void) sigaction(SIGTERM, &sa, NULL);
	sig_write_fd = -1;
	if (wfd >= 0) {
		(void) close(wfd);
	}
	if (sig_read_fd >= 0) {
		(void) close(sig_read_fd);
		sig_read_fd = -1;
	}
}

static void
sig_alarm(int signo)
{
	static const char msg[] =
	    "evbus: closing the sockets did not finish in time (nng 1.5 "
	    "close race); exiting anyway, the data is safe\n";

	(void) signo;
	(void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(sig_exit_status);
}

void
cli_close_deadline(int status)
{
	struct sigaction sa;

	(void) fflush(stdout);
	(void) fflush(stderr);
	sig_exit_status = status;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_alarm;
	(void) sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) == 0) {
		(void) alarm(CLI_CLOSE_GRACE_S);
	}
}
