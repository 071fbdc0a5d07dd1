/*
 * support_test.c: the test fixtures themselves (tests/support/support.h),
 * since every other test trusts them: temporary directories go away
 * whole, children are waited for and killed by PID, deadlines scale, and
 * picked ports are free and never the reserved ones.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/support.h"

#define SUPPORT_TEST_TIMEOUT_S 30 /* criterion's limit for one test. */

static char *test_dir;
static pid_t test_pid;

static void
support_setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&test_dir), EVB_OK);
}

static void
support_teardown(void)
{
	(void) evb_ts_kill(&test_pid);
	(void) evb_ts_tmpdir_remove(test_dir);
	test_dir = NULL;
}

TestSuite(support, .init = support_setup, .fini = support_teardown,
    .timeout = SUPPORT_TEST_TIMEOUT_S);

/* exists reports whether path names anything (without following links). */
static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

Test(support, tmpdir_remove_deletes_nested_tree_but_not_link_targets)
{
	char *dir;
	char *copy;
	char *sub;
	char *deep;
	char *file;
	char *link;
	char *keep = evb_ts_path(test_dir, "keep.txt");

	cr_assert_eq(evb_ts_file_write(keep, "x", 1), EVB_OK);
	cr_assert_eq(evb_ts_tmpdir_make(&dir), EVB_OK);
	cr_assert(exists(dir));
	sub  = evb_ts_path(dir, "a");
	deep = evb_ts_path(sub, "b");
	file = evb_ts_path(deep, "f.txt");
	link = evb_ts_path(sub, "link");
	cr_assert_eq(mkdir(sub, 0700), 0);
	cr_assert_eq(mkdir(deep, 0700), 0);
	cr_assert_eq(evb_ts_file_write(file, "hello", 5), EVB_OK);
	cr_assert_eq(symlink(test_dir, link), 0);

	cr_assert_not_null(copy = strdup(dir));
	cr_assert_eq(evb_ts_tmpdir_remove(dir), EVB_OK);
	cr_assert_not(exists(copy));
	cr_assert(exists(keep), "the link's target was followed");
	cr_assert_eq(evb_ts_tmpdir_remove(NULL), EVB_OK);
	free(copy);
	free(sub);
	free(deep);
	free(file);
	free(link);
	free(keep);
}

Test(support, file_read_returns_bytes_with_a_nul_after_them)
{
	char  *path = evb_ts_path(test_dir, "bytes");
	char  *data;
	size_t len;

	cr_assert_eq(evb_ts_file_write(path, "a\0b", 3), EVB_OK);
	cr_assert_eq(evb_ts_file_read(path, &data, &len), EVB_OK);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(data, "a\0b", 4), 0);
	free(data);
	cr_assert_eq(evb_ts_file_read("/nonexistent/evb", &data, &len),
	    EVB_ESYSERR + ENOENT);
	free(path);
}

Test(support, file_has_finds_a_needle_and_is_false_for_no_file)
{
	char *path = evb_ts_path(test_dir, "text");

	cr_assert(!evb_ts_file_has(path, "x"), "no file yet");
	cr_assert_eq(evb_ts_file_write(path, "one two", 7), EVB_OK);
	cr_assert(evb_ts_file_has(path, "two"));
	cr_assert(!evb_ts_file_has(path, "three"));
	free(path);
}

Test(support, table_row_reads_the_number_of_a_line_that_starts_with_key)
{
	const char *t = "events 13\nevents_last_minute 4\ngap_seqs x\n";

	cr_assert_eq(evb_ts_table_row(t, "events"), 13);
	cr_assert_eq(evb_ts_table_row(t, "events_last_minute"), 4);
	cr_assert_eq(evb_ts_table_row(t, "gap_seqs"), -1);
	cr_assert_eq(evb_ts_table_row(t, "last_minute"), -1);
}

Test(support, evbus_argv_puts_the_binary_first_and_checks_room)
{
	char             *argv[4];
	const char *const two[]   = { "a", "b", NULL };
	const char *const three[] = { "a", "b", "c", NULL };

	cr_assert_eq(evb_ts_evbus_argv(argv, 4, two), EVB_OK);
	cr_assert_str_eq(argv[0], evb_test_bin());
	cr_assert_str_eq(argv[1], "a");
	cr_assert_str_eq(argv[2], "b");
	cr_assert_null(argv[3]);
	cr_assert_eq(evb_ts_evbus_argv(argv, 4, three), EVB_ETOOBIG);
}

Test(support, run_captures_stdout_stderr_and_exit_code)
{
	char *in     = evb_ts_path(test_dir, "in");
	char *out    = evb_ts_path(test_dir, "out");
	char *err    = evb_ts_path(test_dir, "err");
	char *argv[] = { "/bin/sh", "-c", "cat; echo oops >&2; exit 3", NULL };
	evb_ts_io io = { in, out, err };
	char     *text;
	size_t    len;
	int       code;

	cr_assert_eq(evb_ts_file_write(in, "piped\n", 6), EVB_OK);
	cr_assert_eq(
	    evb_ts_run(&test_pid, argv, &io, evb_ts_timeout_ms(10000), &code),
	    EVB_OK);
	cr_assert_eq(code, 3);
	cr_assert_eq(test_pid, 0, "a reaped child's PID must be cleared");
	cr_assert_eq(evb_ts_file_read(out, &text, &len), EVB_OK);
	cr_assert_str_eq(text, "piped\n");
	free(text);
	cr_assert_eq(evb_ts_file_read(err, &text, &len), EVB_OK);
	cr_assert_str_eq(text, "oops\n");
	free(text);
	free(in);
	free(out);
	free(err);
}

Test(support, wait_times_out_and_kill_reaps_the_child)
{
	// A child that outlives any wait of this test.
	char *argv[] = { "/bin/sleep", "600", NULL };
	int   status;
	pid_t pid;

	cr_assert_eq(evb_ts_spawn(&test_pid, argv, NULL), EVB_OK);
	cr_assert_gt(test_pid, 0);
	pid = test_pid;
	cr_assert_eq(evb_ts_wait(&test_pid, 50, &status), EVB_ETIMEDOUT);
	cr_assert_eq(test_pid, pid);
	cr_assert_eq(evb_ts_kill(&test_pid), EVB_OK);
	cr_assert_eq(test_pid, 0);
	cr_assert_eq(waitpid(pid, &status, WNOHANG), -1, "child not reaped");
	cr_assert_eq(evb_ts_kill(&test_pid), EVB_OK, "kill of 0 is a no-op");
	cr_assert_eq(evb_ts_wait(&test_pid, 50, &status), EVB_EINVAL);
}

Test(support, spawn_of_a_missing_program_fails)
{
	char *argv[] = { "/nonexistent/evb-program", NULL };

	cr_assert_eq(evb_ts_spawn(&test_pid, argv, NULL), EVB_ESYSERR + ENOENT);
	cr_assert_eq(test_pid, 0);
}

Test(support, exit_code_of_a_signalled_child_is_128_plus_signal)
{
	char *argv[] = { "/bin/sh", "-c", "kill -9 $$", NULL };
	int   code;

	cr_assert_eq(
	    evb_ts_run(&test_pid, argv, NULL, evb_ts_timeout_ms(10000), &code),
	    EVB_OK);
	cr_assert_eq(code, 128 + 9);
}

Test(support, timeout_scales_with_the_multiplier)
{
	cr_assert_eq(setenv("EVB_TEST_TIMEOUT_MULTIPLIER", "3", 1), 0);
	cr_assert_eq(evb_ts_timeout_ms(1000), 3000);
	cr_assert_eq(setenv("EVB_TEST_TIMEOUT_MULTIPLIER", "junk", 1), 0);
	cr_assert_eq(evb_ts_timeout_ms(1000), 1000);
	cr_assert_eq(unsetenv("EVB_TEST_TIMEOUT_MULTIPLIER"), 0);
	cr_assert_eq(evb_ts_timeout_ms(1000), 1000);
}

Test(support, picked_port_is_free_and_never_reserved)
{
	for (int i = 0; i < 50; i++) {
		struct sockaddr_in sa;
		uint16_t           port = 0;
		int                fd;

		cr_assert_eq(evb_ts_port_pick(&port), EVB_OK);
		cr_assert_gt(port, 0);
		cr_assert(port < EVB_TS_PORT_RESERVED_LO ||
		    port > EVB_TS_PORT_RESERVED_HI);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_geq(fd, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family      = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port        = htons(port);
		cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0,
		    "port %u: %s", port, strerror(errno));
		cr_assert_eq(close(fd), 0);
	}
}

Test(support, bin_and_source_dir_come_from_the_environment)
{
	cr_assert_not_null(evb_test_bin());
	cr_assert_not_null(evb_test_source_dir());
	cr_assert_eq(setenv("EVB_BIN", "/x/evbus", 1), 0);
	cr_assert_str_eq(evb_test_bin(), "/x/evbus");
}
