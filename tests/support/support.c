/*
 * support.c: the test fixtures declared in tests/support/support.h.
 *
 * Children are started with posix_spawn, not fork, so a test process that
 * holds threads or criterion's own state never runs code between fork and
 * exec. Every wait is a poll of waitpid against CLOCK_MONOTONIC with a
 * deadline; the short nanosleep between polls only paces the loop and is
 * never relied on for ordering.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/support.h"

/* POSIX has applications declare it themselves. */
extern char **environ;

#define TS_POLL_NS 2000000L /* Pause between waitpid polls: 2 ms. */
#define TS_PORT_ATTEMPTS 64 /* Picks before giving up on a free port. */

const char *
evb_test_bin(void)
{
	return getenv("EVB_BIN");
}

const char *
evb_test_source_dir(void)
{
	return getenv("EVB_SOURCE_DIR");
}

uint64_t
evb_ts_timeout_ms(uint64_t base_ms)
{
	const char   *s = getenv("EVB_TEST_TIMEOUT_MULTIPLIER");
	char         *end;
	unsigned long m;

	if (s == NULL || *s == '\0') {
		return base_ms;
	}
	errno = 0;
	m     = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || m == 0) {
		return base_ms;
	}
	return base_ms * m;
}

/* ---- Temporary directories ---------------------------------------------- */

int
evb_ts_tmpdir_make(char **dir)
{
	const char *base = getenv("TMPDIR");
	char       *path;
	size_t      n;

	if (base == NULL || *base == '\0') {
		base = "/tmp";
	}
	n = strlen(base) + sizeof("/evb-test-XXXXXX");
	if ((path = malloc(n)) == NULL) {
		return EVB_ENOMEM;
	}
	(void) snprintf(path, n, "%s/evb-test-XXXXXX", base);
	if (mkdtemp(path) == NULL) {
		int e = errno;

		free(path);
		return evb_err_errno(e);
	}
	*dir = path;
	return EVB_OK;
}

char *
evb_ts_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char  *p;

	if ((p = malloc(n)) != NULL) {
		(void) snprintf(p, n, "%s/%s", dir, name);
	}
	return p;
}

/*
 * tmpdir_remove_tree removes path: a directory with its contents, or any
 * other file (links are unlinked, not followed). It keeps going after a
 * failure and returns the first one.
 */
static int
tmpdir_remove_tree(const char *path)
{
	struct stat    st;
	DIR           *d;
	struct dirent *de;
	int            rc = EVB_OK;

	if (lstat(path, &st) != 0) {
		return evb_err_errno(errno);
	}
	if (!S_ISDIR(st.st_mode)) {
		return unlink(path) == 0 ? EVB_OK : evb_err_errno(errno);
	}
	if ((d = opendir(path)) == NULL) {
		return evb_err_errno(errno);
	}
	while ((de = readdir(d)) != NULL) {
		char *child;
		int   crc;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0) {
			continue;
		}
		if ((child = evb_ts_path(path, de->d_name)) == NULL) {
			rc = rc != EVB_OK ? rc : EVB_ENOMEM;
			continue;
		}
		crc = tmpdir_remove_tree(child);
		rc  = rc != EVB_OK ? rc : crc;
		free(child);
	}
	(void) closedir(d);
	if (rmdir(path) != 0 && rc == EVB_OK) {
		rc = evb_err_errno(errno);
	}
	return rc;
}

int
evb_ts_tmpdir_remove(char *dir)
{
	int rc;

	if (dir == NULL) {
		return EVB_OK;
	}
	rc = tmpdir_remove_tree(dir);
	free(dir);
	return rc;
}

/* ---- Files -------------------------------------------------------------- */

int
evb_ts_file_read(const char *path, char **data, size_t *len)
{
	FILE  *f;
	char  *buf = NULL;
	size_t cap = 0;
	size_t n   = 0;
	int    rc  = EVB_OK;

	if ((f = fopen(path, "rb")) == NULL) {
		return evb_err_errno(errno);
	}
	for (;;) {
		if (cap - n < 2) {
			size_t ncap = cap == 0 ? 4096 : cap * 2;
			char  *nb;

			if ((nb = realloc(buf, ncap)) == NULL) {
				rc = EVB_ENOMEM;
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0) {
			break;
		}
	}
	if (ferror(f)) {
		rc = evb_err_errno(EIO);
		goto fail;
	}
	(void) fclose(f);
	buf[n] = '\0';
	*data  = buf;
	*len   = n;
	return EVB_OK;
fail:
	(void) fclose(f);
	free(buf);
	return rc;
}

int
evb_ts_file_write(const char *path, const void *data, size_t len)
{
	FILE *f;
	int   rc = EVB_OK;

	if ((f = fopen(path, "wb")) == NULL) {
		return evb_err_errno(errno);
	}
	if (len > 0 && fwrite(data, 1, len, f) != len) {
		rc = evb_err_errno(errno != 0 ? errno : EIO);
	}
	if (fclose(f) != 0 && rc == EVB_OK) {
		rc = evb_err_errno(errno);
	}
	return rc;
}

/* ---- Fuzz corpora ------------------------------------------------------- */

static int
corpus_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* corpus_add appends a copy of name to c->names, growing it by doubling. */
static int
corpus_add(evb_ts_corpus *c, size_t *cap, const char *name)
{
	if (c->count == *cap) {
		size_t ncap = *cap == 0 ? 64 : *cap * 2;
		char **nn;

		if ((nn = realloc(c->names, ncap * sizeof(*nn))) == NULL) {
			return EVB_ENOMEM;
		}
		c->names = nn;
		*cap     = ncap;
	}
	if ((c->names[c->count] = strdup(name)) == NULL) {
		return EVB_ENOMEM;
	}
	c->count++;
	return EVB_OK;
}

int
evb_ts_corpus_open(evb_ts_corpus *c, const char *target)
{
	const char    *src = evb_test_source_dir();
	char          *sub;
	DIR           *d;
	struct dirent *e;
	size_t         cap = 0;
	size_t         n;
	int            rc = EVB_OK;

	*c = (evb_ts_corpus) { 0 };
	if (src == NULL) {
		return EVB_EINVAL;
	}
	n = sizeof("fuzz/corpus/") + strlen(target);
	if ((sub = malloc(n)) == NULL) {
		return EVB_ENOMEM;
	}
	(void) snprintf(sub, n, "fuzz/corpus/%s", target);
	c->dir = evb_ts_path(src, sub);
	free(sub);
	if (c->dir == NULL) {
		return EVB_ENOMEM;
	}
	if ((d = opendir(c->dir)) == NULL) {
		return evb_err_errno(errno);
	}
	while (rc == EVB_OK && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			rc = corpus_add(c, &cap, e->d_name);
		}
	}
	(void) closedir(d);
	if (rc != EVB_OK) {
		return rc;
	}
	if (c->count > 0) {
		qsort(c->names, c->count, sizeof(c->names[0]), corpus_cmp);
	}
	return EVB_OK;
}

void
evb_ts_corpus_close(evb_ts_corpus *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free(c->names[i]);
	}
	free(c->names);
	free(c->dir);
	*c = (evb_ts_corpus) { 0 };
}

int
evb_ts_corpus_read(const evb_ts_corpus *c, size_t i, char **data, size_t *len)
{
	char *path;
	int   rc;

	if (i >= c->count) {
		return EVB_EINVAL;
	}
	if ((path = evb_ts_path(c->dir, c->names[i])) == NULL) {
		return EVB_ENOMEM;
	}
	rc = evb_ts_file_read(path, data, len);
	free(path);
	return rc;
}

bool
evb_ts_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

long long
evb_ts_table_row(const char *text, const char *key)
{
	size_t      n = strlen(key);
	long long   v;
	const char *p = text;

	for (; p != NULL; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL) {
		if (strncmp(p, key, n) == 0 && p[n] == ' ' &&
		    sscanf(p + n, "%lld", &v) == 1) {
			return v;
		}
	}
	return -1;
}

bool
evb_ts_file_has(const char *path, const char *needle)
{
	char  *data;
	size_t len;
	bool   found;

	if (evb_ts_file_read(path, &data, &len) != EVB_OK) {
		return false;
	}
	found = strstr(data, needle) != NULL;
	free(data);
	return found;
}

int
evb_ts_evbus_argv(char **argv, size_t cap, const char *const *args)
{
	size_t argc = 0;

	if (cap < 2) {
		return EVB_ETOOBIG;
	}
	argv[argc++] = (char *) evb_test_bin();
	for (; *args != NULL; args++) {
		if (argc + 1 >= cap) {
			return EVB_ETOOBIG;
		}
		argv[argc++] = (char *) *args;
	}
	argv[argc] = NULL;
	return EVB_OK;
}

/* ---- Child processes ---------------------------------------------------- */

/* spawn_redirect adds "open path (or /dev/null) as fd" to fa. */
static int
spawn_redirect(posix_spawn_file_actions_t *fa, int fd, const char *path)
{
	int flags =
	    fd == STDIN_FILENO ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;

	if (path == NULL) {
		path = "/dev/null";
	}
	return posix_spawn_file_actions_addopen(fa, fd, path, flags, 0644);
}

/*
 * spawn_exec starts argv through the evb_ts_exec launcher when
 * EVB_TS_EXEC names it (under ctest it always does), so the child is
 * killed if this process dies without running .fini; else directly.
 */
static int
spawn_exec(pid_t *child, char *const argv[], posix_spawn_file_actions_t *fa)
{
	const char *launcher = getenv("EVB_TS_EXEC");
	char        ppid[24];
	char      **full;
	size_t      n = 0;
	int         e;

	if (launcher == NULL || launcher[0] == '\0') {
		return posix_spawn(child, argv[0], fa, NULL, argv, environ);
	}
	// The launcher would start and then fail to exec; report a missing
	// program here, as posix_spawn does without the launcher.
	if (access(argv[0], X_OK) != 0) {
		return errno;
	}
	while (argv[n] != NULL) {
		n++;
	}
	if ((full = calloc(n + 3, sizeof(*full))) == NULL) {
		return ENOMEM;
	}
	(void) snprintf(ppid, sizeof(ppid), "%ld", (long) getpid());
	full[0] = (char *) launcher;
	full[1] = ppid;
	for (size_t i = 0; i < n; i++) {
		full[i + 2] = argv[i];
	}
	e = posix_spawn(child, launcher, fa, NULL, full, environ);
	free(full);
	return e;
}

int
evb_ts_spawn(pid_t *pid, char *const argv[], const evb_ts_io *io)
{
	static const evb_ts_io     none = { NULL, NULL, NULL };
	posix_spawn_file_actions_t fa;
	pid_t                      child;
	int                        e;

	if (argv == NULL || argv[0] == NULL) {
		return EVB_EINVAL;
	}
	if (io == NULL) {
		io = &none;
	}
	if ((e = posix_spawn_file_actions_init(&fa)) != 0) {
		return evb_err_errno(e);
	}
	if ((e = spawn_redirect(&fa, STDIN_FILENO, io->stdin_path)) != 0 ||
	    (e = spawn_redirect(&fa, STDOUT_FILENO, io->stdout_path)) != 0 ||
	    (e = spawn_redirect(&fa, STDERR_FILENO, io->stderr_path)) != 0) {
		goto actions_destroy;
	}
	e = spawn_exec(&child, argv, &fa);
	if (e == 0) {
		*pid = child;
	}
actions_destroy:
	(void) posix_spawn_file_actions_destroy(&fa);
	return e == 0 ? EVB_OK : evb_err_errno(e);
}

int
evb_ts_wait(pid_t *pid, uint64_t timeout_ms, int *status)
{
	uint64_t        deadline = evb_clock_mono_ms() + timeout_ms;
	struct timespec pause    = { 0, TS_POLL_NS };

	if (*pid <= 0) {
		return EVB_EINVAL;
	}
	for (;;) {
		int   st;
		pid_t r = waitpid(*pid, &st, WNOHANG);

		if (r == *pid) {
			*pid    = 0;
			*status = st;
			return EVB_OK;
		}
		if (r < 0 && errno != EINTR) {
			return evb_err_errno(errno);
		}
		if (evb_clock_mono_ms() >= deadline) {
			return EVB_ETIMEDOUT;
		}
		(void) nanosleep(&pause, NULL);
	}
}

int
evb_ts_kill(pid_t *pid)
{
	int rc = EVB_OK;

	if (*pid <= 0) {
		return EVB_OK;
	}
	if (kill(*pid, SIGKILL) != 0 && errno != ESRCH) {
		rc = evb_err_errno(errno);
	}
	// Reap it even if it had already exited, so no zombie is left.
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR) {
	}
	*pid = 0;
	return rc;
}

int
evb_ts_exit_code(int status)
{
	if (WIFEXITED(status)) {
		return WEXITSTATUS(status);
	}
	if (WIFSIGNALED(status)) {
		return 128 + WTERMSIG(status);
	}
	return -1;
}

int
evb_ts_run(pid_t *pid, char *const argv[], const evb_ts_io *io,
    uint64_t timeout_ms, int *exit_code)
{
	int status;
	int rc;

	if ((rc = evb_ts_spawn(pid, argv, io)) != EVB_OK) {
		return rc;
	}
	if ((rc = evb_ts_wait(pid, timeout_ms, &status)) != EVB_OK) {
		return rc;
	}
	*exit_code = evb_ts_exit_code(status);
	return EVB_OK;
}

/* ---- Network ------------------------------------------------------------ */

/* port_probe binds 127.0.0.1:0 and reads back the port the kernel chose. */
static int
port_probe(uint16_t *port)
{
	struct sockaddr_in sa;
	socklen_t          salen = sizeof(sa);
	int                fd;
	int                rc = EVB_OK;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		return evb_err_errno(errno);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port        = 0;
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *) &sa, &salen) != 0) {
		rc = evb_err_errno(errno);
	} else {
		*port = ntohs(sa.sin_port);
	}
	(void) close(fd);
	return rc;
}

int
evb_ts_port_pick(uint16_t *port)
{
	for (int i = 0; i < TS_PORT_ATTEMPTS; i++) {
		uint16_t p = 0;
		int      rc;

		if ((rc = port_probe(&p)) != EVB_OK) {
			return rc;
		}
		if (p < EVB_TS_PORT_RESERVED_LO ||
		    p > EVB_TS_PORT_RESERVED_HI) {
			*port = p;
			return EVB_OK;
		}
	}
	return EVB_EAGAIN;
}
