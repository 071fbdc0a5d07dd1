/*
 * support: fixtures shared by the criterion tests (unit, integration and
 * crash): fresh temporary directories, child processes started by argv and
 * tracked by PID, deadlines that scale with EVB_TEST_TIMEOUT_MULTIPLIER,
 * whole-file reads, committed fuzz corpora and free loopback ports.
 *
 * The usual shape of a test that runs evbus:
 *
 *   static char *dir;
 *   static pid_t pid;
 *   static void setup(void) { cr_assert_eq(evb_ts_tmpdir_make(&dir), 0); }
 *   static void teardown(void) { evb_ts_kill(&pid); evb_ts_tmpdir_remove(dir);
 * }
 *   ... evb_ts_spawn(&pid, argv, &io); evb_ts_wait(&pid, ms, &status) ...
 *
 * Functions return an evb_err code (EVB_ESYSERR + errno for OS errors) and
 * never abort, so a test can assert on them with cr_assert_eq(..., 0).
 *
 * Thread-safety: none needed; criterion runs each test in its own process.
 */
#ifndef EVB_TEST_SUPPORT_H
#define EVB_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

/*
 * evb_test_bin returns the path of the evbus binary under test, from the
 * environment variable EVB_BIN that evb_test() sets, or NULL if unset.
 */
const char *evb_test_bin(void);

/*
 * evb_test_source_dir returns the top of the source tree, from
 * EVB_SOURCE_DIR (set by evb_test()), or NULL if unset.
 */
const char *evb_test_source_dir(void);

/*
 * evb_ts_timeout_ms returns base_ms multiplied by the positive integer in
 * EVB_TEST_TIMEOUT_MULTIPLIER (1 when unset or not a positive integer),
 * for slow machines and sanitizer builds.
 */
uint64_t evb_ts_timeout_ms(uint64_t base_ms);

/* ---- Temporary directories ---------------------------------------------- */

/*
 * evb_ts_tmpdir_make creates a fresh, private directory with mkdtemp under
 * $TMPDIR (or /tmp). OUT: *dir, on success only; the caller removes it
 * with evb_ts_tmpdir_remove and frees the string with it.
 */
int evb_ts_tmpdir_make(char **dir);

/*
 * evb_ts_tmpdir_remove deletes dir and everything below it (symbolic
 * links are removed, never followed), then frees the string. NULL is ok,
 * so .fini can call it whether or not .init got that far.
 */
int evb_ts_tmpdir_remove(char *dir);

/*
 * evb_ts_path joins dir and name into a new string ("dir/name"), or NULL
 * when out of memory. Free it with free().
 */
char *evb_ts_path(const char *dir, const char *name);

/* ---- Files -------------------------------------------------------------- */

/*
 * evb_ts_file_read reads a whole file. The buffer has a NUL after the last
 * byte, not counted in *len, so text can be used as a C string.
 * OUT: *data (free it with free()) and *len, on success only.
 */
int evb_ts_file_read(const char *path, char **data, size_t *len);

/* evb_ts_file_write creates or truncates path and writes len bytes. */
int evb_ts_file_write(const char *path, const void *data, size_t len);

/* ---- Fuzz corpora ------------------------------------------------------- */

/*
 * A committed fuzz corpus, fuzz/corpus/<target>/: the folder and the names
 * of its files (dot files skipped), sorted so runs replay in one order.
 * Fill it with evb_ts_corpus_open; release it with evb_ts_corpus_close.
 */
typedef struct evb_ts_corpus {
	char  *dir;   /* The corpus folder. */
	char **names; /* File names, sorted; count entries. */
	size_t count; /* Entries used in names. */
} evb_ts_corpus;

/*
 * evb_ts_corpus_open lists fuzz/corpus/<target>/ under evb_test_source_dir.
 * EVB_EINVAL if EVB_SOURCE_DIR is unset; EVB_ESYSERR + errno if the folder
 * cannot be read. OUT: *c, always: close it even after a failure (then
 * c->dir names the folder when known, for the test's message).
 */
int evb_ts_corpus_open(evb_ts_corpus *c, const char *target);

/* evb_ts_corpus_close frees what evb_ts_corpus_open filled in. */
void evb_ts_corpus_close(evb_ts_corpus *c);

/*
 * evb_ts_corpus_read reads the corpus file c->names[i] whole, as
 * evb_ts_file_read does. OUT: *data (free it with free()) and *len, on
 * success only.
 */
int evb_ts_corpus_read(
    const evb_ts_corpus *c, size_t i, char **data, size_t *len);

/* evb_ts_has_prefix says whether s begins with prefix. */
bool evb_ts_has_prefix(const char *s, const char *prefix);

/*
 * evb_ts_table_row reads the number after "KEY " at the start of a line
 * of text (a table of counters, as `evbus stats` prints); -1 when no line
 * starts with it.
 */
long long evb_ts_table_row(const char *text, const char *key);

/* evb_ts_file_has says whether the file at path holds needle (false when
 * it cannot be read, e.g. not written yet). */
bool evb_ts_file_has(const char *path, const char *needle);

/*
 * evb_ts_evbus_argv fills argv (cap slots) with the evbus binary
 * (evb_test_bin), then args (NULL-terminated), then NULL, for
 * evb_ts_spawn and evb_ts_run. EVB_ETOOBIG when they do not fit.
 */
int evb_ts_evbus_argv(char **argv, size_t cap, const char *const *args);

/* ---- Child processes ---------------------------------------------------- */

/* Where a child's standard streams go. NULL means /dev/null. */
typedef struct evb_ts_io {
	const char *stdin_path;  /* File read as stdin. */
	const char *stdout_path; /* File created or truncated for stdout. */
	const char *stderr_path; /* File created or truncated for stderr. */
} evb_ts_io;

/*
 * evb_ts_spawn starts argv[0] (a path; PATH is not searched) with the
 * arguments argv (NULL-terminated) and the streams in io (NULL: all
 * /dev/null), inheriting the environment. The child is not waited for:
 * pass the PID to evb_ts_wait, and to evb_ts_kill in .fini.
 * OUT: *pid, on success only.
 */
int evb_ts_spawn(pid_t *pid, char *const argv[], const evb_ts_io *io);

/*
 * evb_ts_wait waits up to timeout_ms (use evb_ts_timeout_ms) for the child
 * *pid to end, polling waitpid against a monotonic deadline. On EVB_OK it
 * has reaped the child, set *pid to 0 (so evb_ts_kill will not touch a
 * recycled PID) and written the waitpid status to *status.
 * EVB_ETIMEDOUT if the child is still running; EVB_EINVAL if *pid <= 0.
 */
int evb_ts_wait(pid_t *pid, uint64_t timeout_ms, int *status);

/*
 * evb_ts_kill sends SIGKILL to *pid, reaps it and sets *pid to 0. A *pid
 * of 0 or less is a no-op, so .fini may call it unconditionally.
 */
int evb_ts_kill(pid_t *pid);

/*
 * evb_ts_exit_code turns a waitpid status into a shell-style code: the
 * exit status, or 128 + the signal number for a child killed by one.
 */
int evb_ts_exit_code(int status);

/*
 * evb_ts_run is spawn plus wait: it runs argv with io and waits up to
 * timeout_ms. While it runs, *pid holds the child's PID so that .fini can
 * kill it if the test fails meanwhile. OUT: *exit_code (as
 * evb_ts_exit_code), on success only. On EVB_ETIMEDOUT the child is left
 * running in *pid.
 */
int evb_ts_run(pid_t *pid, char *const argv[], const evb_ts_io *io,
    uint64_t timeout_ms, int *exit_code);

/* ---- Network ------------------------------------------------------------ */

/* Ports kept for a developer's own evbus (5570-5572); never handed out. */
#define EVB_TS_PORT_RESERVED_LO 5570
#define EVB_TS_PORT_RESERVED_HI 5572

/*
 * evb_ts_port_pick asks the kernel for a free TCP port on 127.0.0.1 (bind
 * port 0, read it back, close), skipping the reserved range. Another
 * process may take it before the test binds it; tests retry on EADDRINUSE.
 * OUT: *port, on success only.
 */
int evb_ts_port_pick(uint16_t *port);

#endif /* EVB_TEST_SUPPORT_H */
