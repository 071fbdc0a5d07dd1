/*
 * wal_cli_test: `evbus wal verify` and `evbus wal stats`, run as a user
 * runs them: the real binary (EVB_BIN) in a child process, on a log that
 * the test writes through wal/wal.h in a fresh temporary directory. Also
 * on a log damaged by hand (verify exits 1 and names the offset), on a
 * missing directory (exit 2), beside a writer that keeps the log open,
 * and through LMDB's own mdb_stat (MDB_STAT, found by CMake), which must
 * open every named DB of the environment.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/support.h"
#include "tests/support/wal_testlib.h"
#include "wal/wal.h"

#define WAL_CLI_RUN_TIMEOUT_MS 20000 /* One run; scaled by the env. */
#define WAL_CLI_MAX_RUNS 16          /* Runs one test may make. */
#define WAL_CLI_MAX_ARGS 8           /* Arguments after the program. */

/* One finished run. */
typedef struct run_result {
	int   code; /* Shell-style exit code (evb_ts_exit_code). */
	char *out;  /* Its stdout, NUL-terminated. */
	char *err;  /* Its stderr, NUL-terminated. */
} run_result;

static char      *test_dir;
static char      *wal_dir; /* test_dir/wal. */
static pid_t      test_pid;
static run_result runs[WAL_CLI_MAX_RUNS];
static int        nruns;

static void
setup(void)
{
	wtl_dir_make(&test_dir, &wal_dir);
	cr_assert_not_null(evb_test_bin(), "EVB_BIN is not set");
}

static void
teardown(void)
{
	(void) evb_ts_kill(&test_pid);
	for (int i = 0; i < nruns; i++) {
		free(runs[i].out);
		free(runs[i].err);
	}
	nruns = 0;
	wtl_dir_remove(test_dir, wal_dir);
}

TestSuite(wal_cli, .init = setup, .fini = teardown, .timeout = 60);

#define ARGS(...) ((const char *const[]) { __VA_ARGS__, NULL })

/* run_prog runs prog with args (NULL-terminated) and waits for it. */
static const run_result *
run_prog(const char *prog, const char *const *args)
{
	char       *argv[WAL_CLI_MAX_ARGS + 2];
	char        name[32];
	char       *out_path, *err_path;
	run_result *r;
	evb_ts_io   io   = { NULL, NULL, NULL };
	int         argc = 0;
	size_t      len;

	cr_assert_lt(nruns, WAL_CLI_MAX_RUNS);
	r            = &runs[nruns];
	argv[argc++] = (char *) prog;
	for (; *args != NULL; args++) {
		cr_assert_lt(argc, WAL_CLI_MAX_ARGS + 1);
		argv[argc++] = (char *) *args;
	}
	argv[argc] = NULL;
	(void) snprintf(name, sizeof(name), "run%d.out", nruns);
	out_path = evb_ts_path(test_dir, name);
	(void) snprintf(name, sizeof(name), "run%d.err", nruns);
	err_path = evb_ts_path(test_dir, name);
	cr_assert(out_path != NULL && err_path != NULL);
	nruns++;
	io.stdout_path = out_path;
	io.stderr_path = err_path;
	cr_assert_eq(evb_ts_run(&test_pid, argv, &io,
	                 evb_ts_timeout_ms(WAL_CLI_RUN_TIMEOUT_MS), &r->code),
	    EVB_OK, "%s did not finish", prog);
	cr_assert_eq(evb_ts_file_read(out_path, &r->out, &len), EVB_OK);
	cr_assert_eq(evb_ts_file_read(err_path, &r->err, &len), EVB_OK);
	free(out_path);
	free(err_path);
	return r;
}

static const run_result *
evbus(const char *const *args)
{
	return run_prog(evb_test_bin(), args);
}

/* ---- Making logs --------------------------------------------------------- */

static evb_wal *
wal_open_rw(void)
{
	evb_wal_opts o;

	evb_wal_opts_default(&o);
	o.durability = EVB_WAL_NONE;
	return wtl_open(wal_dir, &o);
}

/* append_marked appends count records from first on, each payload and id
 * "MARKER-<offset>". */
static void
append_marked(evb_wal *w, uint64_t first, size_t count)
{
	evb_wal_rec    recs[100];
	evb_wal_result res[100];
	char           marks[100][32];

	cr_assert_leq(count, 100);
	memset(recs, 0, sizeof(recs));
	for (size_t i = 0; i < count; i++) {
		(void) snprintf(marks[i], sizeof(marks[i]), "MARKER-%06llu",
		    (unsigned long long) (first + i));
		recs[i].payload = marks[i];
		recs[i].len     = strlen(marks[i]);
		recs[i].id      = marks[i];
		recs[i].id_len  = strlen(marks[i]);
		recs[i].ts_ns   = (int64_t) (first + i) * 1000;
	}
	cr_assert_eq(evb_wal_append(w, recs, count, res, NULL), EVB_OK);
	cr_assert_eq(res[0].off, first);
}

/* make_log writes a closed log of n records (n a multiple of 100) with
 * two cursors. */
static void
make_log(uint64_t n)
{
	evb_wal *w = wal_open_rw();

	for (uint64_t off = 1; off <= n; off += 100) {
		append_marked(w, off, 100);
	}
	cr_assert_eq(evb_wal_cursor_set(w, "compactor", n - 10), EVB_OK);
	cr_assert_eq(evb_wal_cursor_set(w, "replay", 3), EVB_OK);
	evb_wal_close(w);
}

/* ---- verify ---------------------------------------------------------------
 */

Test(wal_cli, verify_of_a_clean_log_exits_0)
{
	const run_result *r;

	make_log(1000);
	r = evbus(ARGS("wal", "verify", "--data", wal_dir));
	cr_assert_eq(r->code, 0, "stderr: %s", r->err);
	cr_assert_str_eq(r->out, "ok: 1000 records, offsets 1..1000\n");
	cr_assert_str_empty(r->err);
}

Test(wal_cli, verify_of_a_damaged_log_exits_1_naming_the_offset)
{
	const run_result *r;

	make_log(100);
	// The payload is also the id, so the mark is in the log and in the
	// index; only the log's copy is covered by a CRC.
	wtl_flip_marker(wal_dir, "MARKER-000077");
	r = evbus(ARGS("wal", "verify", "-d", wal_dir));
	cr_assert_eq(r->code, 1, "stdout: %s stderr: %s", r->out, r->err);
	cr_assert(
	    strstr(r->out, "corrupt: offset 77: CRC-32C mismatch") != NULL,
	    "%s", r->out);
	cr_assert(
	    strstr(r->out, "first bad offset 77\n") != NULL, "%s", r->out);
}

Test(wal_cli, missing_directory_exits_2)
{
	const run_result *r;
	char             *none = evb_ts_path(test_dir, "none");

	r = evbus(ARGS("wal", "verify", "--data", none));
	cr_assert_eq(r->code, 2);
	cr_assert_str_empty(r->out);
	cr_assert(strstr(r->err, "no WAL there") != NULL, "%s", r->err);
	r = evbus(ARGS("wal", "stats", "--data", none));
	cr_assert_eq(r->code, 2);
	free(none);
}

Test(wal_cli, bad_usage_exits_2)
{
	make_log(100);
	cr_assert_eq(evbus(ARGS("wal"))->code, 2);
	cr_assert_eq(evbus(ARGS("wal", "verify"))->code, 2);
	cr_assert_eq(evbus(ARGS("wal", "fix", "--data", wal_dir))->code, 2);
	cr_assert_eq(
	    evbus(ARGS("wal", "verify", "--data", wal_dir, "x"))->code, 2);
	cr_assert_eq(
	    evbus(ARGS("wal", "verify", "--json", "--data", wal_dir))->code, 2);
	cr_assert_eq(evbus(ARGS("wal", "stats", "--data"))->code, 2);
	cr_assert_eq(evbus(ARGS("wal", "stats", "--nope"))->code, 2);
	cr_assert_eq(evbus(ARGS("wal", "stats", "--data=", wal_dir))->code, 2);
}

/* ---- stats ----------------------------------------------------------------
 */

Test(wal_cli, stats_prints_offsets_counts_and_cursor_lag)
{
	const run_result *r;

	make_log(1000);
	r = evbus(ARGS("wal", "stats", "--data", wal_dir));
	cr_assert_eq(r->code, 0, "stderr: %s", r->err);
	cr_assert(strstr(r->out, "first offset:   1\n") != NULL, "%s", r->out);
	cr_assert(strstr(r->out, "last offset:    1000\n") != NULL);
	cr_assert(strstr(r->out, "records:        1000\n") != NULL);
	cr_assert(strstr(r->out, "map size:       67108864\n") != NULL);
	cr_assert(strstr(r->out, "dedup ids:      1000\n") != NULL);
	cr_assert(strstr(r->out,
	              "cursors:        2\n"
	              "  compactor: offset 990, lag 10\n"
	              "  replay: offset 3, lag 997\n") != NULL,
	    "%s", r->out);
}

Test(wal_cli, stats_json_has_every_field)
{
	const run_result *r;
	json_error_t      jerr;
	json_t           *j, *c;

	make_log(200);
	r = evbus(ARGS("wal", "stats", "--data", wal_dir, "--json"));
	cr_assert_eq(r->code, 0, "stderr: %s", r->err);
	j = json_loads(r->out, 0, &jerr);
	cr_assert_not_null(j, "%s: %s", jerr.text, r->out);
	cr_assert_eq(json_integer_value(json_object_get(j, "first_off")), 1);
	cr_assert_eq(json_integer_value(json_object_get(j, "last_off")), 200);
	cr_assert_eq(
	    json_integer_value(json_object_get(j, "record_count")), 200);
	cr_assert_eq(json_integer_value(json_object_get(j, "id_count")), 200);
	cr_assert_gt(json_integer_value(json_object_get(j, "file_bytes")), 0);
	cr_assert_gt(json_integer_value(json_object_get(j, "bytes_used")), 0);
	cr_assert_gt(json_integer_value(json_object_get(j, "log_bytes")), 0);
	cr_assert_eq(
	    json_integer_value(json_object_get(j, "map_size")), 64 << 20);
	c = json_object_get(j, "cursors");
	cr_assert_eq(json_array_size(c), 2);
	cr_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(c, 0), "name")),
	    "compactor");
	cr_assert_eq(
	    json_integer_value(json_object_get(json_array_get(c, 0), "lag")),
	    10);
	cr_assert_eq(
	    json_integer_value(json_object_get(json_array_get(c, 1), "off")),
	    3);
	json_decref(j);
}

Test(wal_cli, works_beside_a_writer_that_keeps_the_log_open)
{
	evb_wal          *w = wal_open_rw();
	const run_result *r;

	append_marked(w, 1, 100);
	r = evbus(ARGS("wal", "verify", "--data", wal_dir));
	cr_assert_eq(r->code, 0, "stderr: %s", r->err);
	cr_assert_str_eq(r->out, "ok: 100 records, offsets 1..100\n");
	append_marked(w, 101, 100);
	r = evbus(ARGS("wal", "stats", "--data", wal_dir));
	cr_assert_eq(r->code, 0, "stderr: %s", r->err);
	cr_assert(
	    strstr(r->out, "last offset:    200\n") != NULL, "%s", r->out);
	// The writer goes on after the readers.
	append_marked(w, 201, 100);
	evb_wal_close(w);
	cr_assert_str_eq(evbus(ARGS("wal", "verify", "--data", wal_dir))->out,
	    "ok: 300 records, offsets 1..300\n");
}

/* ---- LMDB's own tools ------------------------------------------------------
 */

Test(wal_cli, mdb_stat_opens_every_named_db)
{
	static const char *const dbs[] = { "cursors", "log", "meta", "ts" };
	const run_result        *r;
	char                     want[64];

	make_log(300);
	r = run_prog(MDB_STAT, ARGS("-a", wal_dir));
	cr_assert_eq(r->code, 0, "mdb_stat: %s", r->err);
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		(void) snprintf(want, sizeof(want), "Status of %s\n", dbs[i]);
		cr_assert(strstr(r->out, want) != NULL, "no '%s' in:\n%s",
		    dbs[i], r->out);
	}
	cr_assert(strstr(r->out, "Status of log\n  Tree depth: 2\n") != NULL,
	    "%s", r->out);
	cr_assert(strstr(r->out, "  Entries: 300\n") != NULL, "%s", r->out);
}
