/*
 * replay_stats_test: `evbus stats --data` and `evbus replay` on logs that
 * the test writes itself through wal/wal.h, so that every record's type,
 * append time and offset is known: gap records with the payload of
 * docs/wal-format.md ("Gap records") encoded here by hand, records of a
 * type this build does not know, append times an hour, half an hour and
 * a moment before the run (an injected WAL clock), and records that
 * retention removes before replay reads them, also under a follower
 * held still with SIGSTOP while the log moves on (issue #4).
 *
 * The test process keeps its handle (read-write) open while evbus reads
 * the log read-only, as a running bus would.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/proto.h"
#include "tests/support/support.h"
#include "tests/support/wal_testlib.h"
#include "wal/wal.h"

#define RS_WAIT_MS 20000     /* Any one wait; scaled by the env. */
#define RS_POLL_NS 20000000L /* Pause between two looks: 20 ms. */
#define RS_MAX_ARGS 10       /* Arguments after the program. */
#define RS_GAP_TYPE 0xFFFF   /* docs/wal-format.md, "Gap records". */
#define RS_SEC INT64_C(1000000000)

/* One finished run of evbus. */
typedef struct rs_result {
	int   code; /* Shell-style exit code. */
	char *out;  /* Its stdout. */
	char *err;  /* Its stderr. */
} rs_result;

static char           *rs_tmp;
static char           *rs_wal;   /* rs_tmp/wal. */
static pid_t           rs_pid;   /* A run, or the follower. */
static rs_result       rs_res;   /* The last run. */
static _Atomic int64_t rs_clock; /* The WAL's clock, ns. */
static int             rs_runs;

static void
rs_setup(void)
{
	wtl_dir_make(&rs_tmp, &rs_wal);
	cr_assert_not_null(evb_test_bin(), "EVB_BIN is not set");
	atomic_store(&rs_clock, evb_clock_real_ns());
}

static void
rs_teardown(void)
{
	(void) evb_ts_kill(&rs_pid);
	free(rs_res.out);
	free(rs_res.err);
	wtl_dir_remove(rs_tmp, rs_wal);
}

TestSuite(replay_stats, .init = rs_setup, .fini = rs_teardown, .timeout = 60);

#define ARGS(...) ((const char *const[]) { __VA_ARGS__, NULL })

/* rs_argv builds "evbus ARGS..." into argv. */
static void
rs_argv(char *argv[RS_MAX_ARGS + 2], const char *const *args)
{
	cr_assert_eq(evb_ts_evbus_argv(argv, RS_MAX_ARGS + 2, args), EVB_OK,
	    "more than %d arguments", RS_MAX_ARGS);
}

/* rs_io names a fresh pair of output files for a run. */
static evb_ts_io
rs_io(void)
{
	char      name[32];
	evb_ts_io io = { NULL, NULL, NULL };

	(void) snprintf(name, sizeof(name), "run%d.out", rs_runs);
	io.stdout_path = evb_ts_path(rs_tmp, name);
	(void) snprintf(name, sizeof(name), "run%d.err", rs_runs++);
	io.stderr_path = evb_ts_path(rs_tmp, name);
	cr_assert(io.stdout_path != NULL && io.stderr_path != NULL);
	return io;
}

/* rs_collect reads a finished run's output into rs_res. */
static const rs_result *
rs_collect(const evb_ts_io *io, int code)
{
	size_t len;

	free(rs_res.out);
	free(rs_res.err);
	rs_res.code = code;
	cr_assert_eq(evb_ts_file_read(io->stdout_path, &rs_res.out, &len), 0);
	cr_assert_eq(evb_ts_file_read(io->stderr_path, &rs_res.err, &len), 0);
	free((char *) io->stdout_path);
	free((char *) io->stderr_path);
	return &rs_res;
}

/* rs_run runs evbus ARGS to its end. */
static const rs_result *
rs_run(const char *const *args)
{
	char     *argv[RS_MAX_ARGS + 2];
	evb_ts_io io = rs_io();
	int       code;

	rs_argv(argv, args);
	cr_assert_eq(evb_ts_run(&rs_pid, argv, &io,
	                 evb_ts_timeout_ms(RS_WAIT_MS), &code),
	    EVB_OK, "evbus %s did not finish", args[0]);
	return rs_collect(&io, code);
}

/* ---- Making logs ----------------------------------------------------------
 */

static evb_wal *
rs_open(uint64_t retain_age_ms)
{
	evb_wal_opts o;

	evb_wal_opts_default(&o);
	o.durability    = EVB_WAL_NONE;
	o.clock_ns      = wtl_clock;
	o.clock_arg     = &rs_clock;
	o.retain_age_ms = retain_age_ms;
	return wtl_open(rs_wal, &o);
}

/* rs_append appends one record of type with payload p (n bytes). */
static void
rs_append(evb_wal *w, uint16_t type, uint64_t seq, const void *p, size_t n)
{
	evb_wal_rec r = { .type = type,
		.epoch          = 7,
		.seq            = seq,
		.ts_ns          = atomic_load(&rs_clock),
		.payload        = p,
		.len            = n };
	evb_diag    d = { "" };

	cr_assert_eq(evb_wal_append(w, &r, 1, NULL, &d), EVB_OK, "%s", d.msg);
}

/*
 * rs_gap appends a gap record for seqs first..last of epoch 7, its
 * payload {"gap": {"epoch": 7, "first": F, "last": L}} encoded by hand,
 * as docs/wal-format.md gives it (F and L below 128: positive fixints).
 */
static void
rs_gap(evb_wal *w, uint8_t first, uint8_t last)
{
	const uint8_t p[] = { 0x81, 0xa3, 'g', 'a', 'p', 0x83, 0xa5, 'e', 'p',
		'o', 'c', 'h', 0x07, 0xa5, 'f', 'i', 'r', 's', 't', first, 0xa4,
		'l', 'a', 's', 't', last };

	cr_assert_lt(first, 128);
	cr_assert_lt(last, 128);
	rs_append(w, RS_GAP_TYPE, last, p, sizeof(p));
}

/* rs_events appends n market_data events with ids <tag>-<i>, seqs from
 * seq on, as the broker stores them (the envelope, seq and epoch in). */
static void
rs_events(evb_wal *w, const char *tag, int n, uint64_t seq)
{
	for (int i = 0; i < n; i++) {
		char       line[256];
		evb_event *ev;
		evb_buf    b;
		int        len;

		len = snprintf(line, sizeof(line),
		    "{\"type\":\"market_data\",\"id\":\"%s-%d\",\"ts\":1,"
		    "\"source\":\"rs\",\"data\":{\"symbol\":\"EURUSD\","
		    "\"bid\":1.5,\"ask\":1.75,\"volume\":%d}}",
		    tag, i, i);
		cr_assert_eq(
		    evb_proto_event_from_json(&ev, line, (size_t) len, NULL),
		    EVB_OK);
		evb_proto_event_set_seq(ev, seq + (uint64_t) i, 7);
		evb_buf_init(&b);
		cr_assert_eq(evb_proto_event_encode(ev, &b), EVB_OK);
		rs_append(w, (uint16_t) evb_proto_event_type(ev),
		    seq + (uint64_t) i, b.data, b.len);
		evb_buf_fini(&b);
		evb_proto_event_free(ev);
	}
}

/* rs_type appends n records of a type index (their payload is not read
 * by stats, which counts by the record's type). */
static void
rs_type(evb_wal *w, const char *name, int n)
{
	int type;

	cr_assert_eq(evb_proto_type_find(name, strlen(name), &type), EVB_OK);
	for (int i = 0; i < n; i++) {
		rs_append(w, (uint16_t) type, 1, "x", 1);
	}
}

/* ---- Reading results ------------------------------------------------------
 */

static json_int_t
rs_int(const json_t *j, const char *key)
{
	const json_t *v = json_object_get(j, key);

	cr_assert(json_is_integer(v), "no integer %s", key);
	return json_integer_value(v);
}

static size_t
rs_count(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		n += *s == c;
	}
	return n;
}

/* ---- stats --data -------------------------------------------------------- */

Test(replay_stats, stats_data_counts_types_gaps_and_rates)
{
	evb_wal         *w   = rs_open(0);
	int64_t          now = atomic_load(&rs_clock);
	const rs_result *r;
	json_t          *j, *types;

	// Two hours ago, half an hour ago, and now.
	atomic_store(&rs_clock, now - 7200 * RS_SEC);
	rs_type(w, "signal_generated", 3);
	atomic_store(&rs_clock, now - 1800 * RS_SEC);
	rs_type(w, "market_data", 4);
	rs_gap(w, 10, 14);
	atomic_store(&rs_clock, now);
	rs_type(w, "pattern_detected", 5);
	rs_append(w, 200, 1, "x", 1); // A type this build does not know.
	rs_gap(w, 20, 20);

	r = rs_run(ARGS("stats", "--data", rs_wal, "--json"));
	cr_assert_eq(r->code, 0, "%s", r->err);
	cr_assert_not_null(j = json_loads(r->out, 0, NULL), "%s", r->out);
	cr_assert_eq(rs_int(j, "first_off"), 1);
	cr_assert_eq(rs_int(j, "last_off"), 15);
	cr_assert_eq(rs_int(j, "record_count"), 15);
	cr_assert_eq(rs_int(j, "events"), 13);
	cr_assert_eq(rs_int(j, "gap_records"), 2);
	cr_assert_eq(rs_int(j, "gap_seqs"), 6);
	cr_assert_eq(rs_int(j, "bad_records"), 0);
	cr_assert_eq(rs_int(j, "events_last_minute"), 6);
	cr_assert_eq(rs_int(j, "events_last_hour"), 10);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "rate_last_minute")), 0.1, 1e-9);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "rate_last_hour")), 10.0 / 3600,
	    1e-9);
	types = json_object_get(j, "events_by_type");
	cr_assert_eq(json_object_size(types), evb_proto_type_count() + 1);
	cr_assert_eq(rs_int(types, "signal_generated"), 3);
	cr_assert_eq(rs_int(types, "market_data"), 4);
	cr_assert_eq(rs_int(types, "pattern_detected"), 5);
	cr_assert_eq(rs_int(types, "fire_command"), 0);
	cr_assert_eq(rs_int(types, "unknown"), 1);
	json_decref(j);

	r = rs_run(ARGS("stats", "--data", rs_wal));
	cr_assert_eq(r->code, 0, "%s", r->err);
	cr_assert_eq(evb_ts_table_row(r->out, "events"), 13, "%s", r->out);
	cr_assert_eq(evb_ts_table_row(r->out, "gap_records"), 2, "%s", r->out);
	cr_assert_eq(evb_ts_table_row(r->out, "gap_seqs"), 6, "%s", r->out);
	cr_assert_eq(evb_ts_table_row(r->out, "market_data"), 4, "%s", r->out);
	cr_assert_eq(evb_ts_table_row(r->out, "unknown"), 1, "%s", r->out);
	cr_assert(strstr(r->out, "rate_last_minute     0.100\n") != NULL, "%s",
	    r->out);
	evb_wal_close(w);
}

Test(replay_stats, stats_data_counts_a_gap_record_that_does_not_decode)
{
	evb_wal         *w = rs_open(0);
	const rs_result *r;

	rs_type(w, "market_data", 2);
	rs_append(w, RS_GAP_TYPE, 9, "nope", 4);
	r = rs_run(ARGS("stats", "--data", rs_wal));
	cr_assert_eq(r->code, 1, "%s", r->err);
	cr_assert_eq(evb_ts_table_row(r->out, "bad_records"), 1, "%s", r->out);
	cr_assert_eq(evb_ts_table_row(r->out, "gap_records"), 0, "%s", r->out);
	cr_assert_eq(evb_ts_table_row(r->out, "events"), 2, "%s", r->out);
	cr_assert(
	    strstr(r->err, "1 bad records, the first at offset 3") != NULL,
	    "%s", r->err);
	evb_wal_close(w);
}

Test(replay_stats, stats_data_without_a_log_exits_2)
{
	char            *missing = evb_ts_path(rs_tmp, "nothing-here");
	const rs_result *r;

	cr_assert_not_null(missing);
	r = rs_run(ARGS("stats", "--data", missing, "--json"));
	cr_assert_eq(r->code, 2);
	cr_assert_str_eq(r->out, "");
	cr_assert(
	    strstr(r->err, "evbus stats: cannot open the log in ") == r->err,
	    "%s", r->err);
	cr_assert(strstr(r->err, "no WAL there") != NULL, "%s", r->err);
	free(missing);
	r = rs_run(ARGS("stats", "--json"));
	cr_assert_eq(r->code, 2);
	cr_assert(
	    strstr(r->err, "--ctl URL, --data DIR") != NULL, "%s", r->err);
}

/* ---- replay and retention ------------------------------------------------ */

/* rs_retained makes a log whose offsets 1..10 retention removed and
 * 11..20 (ids b-0..b-9) it kept. Returns the open handle. */
static evb_wal *
rs_retained(void)
{
	evb_wal *w   = rs_open(5000);
	int64_t  t0  = atomic_load(&rs_clock);
	uint64_t got = 0;
	evb_diag d   = { "" };

	rs_events(w, "a", 10, 1);
	atomic_store(&rs_clock, t0 + 10 * RS_SEC);
	rs_events(w, "b", 10, 11);
	atomic_store(&rs_clock, t0 + 12 * RS_SEC);
	cr_assert_eq(evb_wal_retain(w, 100, &got, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(got, 10);
	return w;
}

Test(replay_stats, replay_reports_records_retention_removed_before_its_start)
{
	evb_wal         *w = rs_retained();
	const rs_result *r;

	// From the start of the log, whatever it is now: nothing skipped.
	r = rs_run(ARGS("replay", "--data", rs_wal));
	cr_assert_eq(r->code, 0, "%s", r->err);
	cr_assert_eq(rs_count(r->out, '\n'), 10);
	cr_assert_str_eq(r->err, "");
	// From an offset retention removed: the output lacks 3..10.
	r = rs_run(ARGS("replay", "--data", rs_wal, "--from-offset", "3"));
	cr_assert_eq(r->code, 1, "%s", r->err);
	cr_assert_eq(rs_count(r->out, '\n'), 10);
	cr_assert(strstr(r->out, "\"id\":\"b-0\"") != NULL, "%s", r->out);
	cr_assert(strstr(r->err, "8 records skipped, offsets 3..10") != NULL,
	    "%s", r->err);
	evb_wal_close(w);
}

/* rs_wait_lines waits until the follower's output holds n lines. */
static void
rs_wait_lines(const char *path, size_t n)
{
	uint64_t end = evb_clock_mono_ms() + evb_ts_timeout_ms(RS_WAIT_MS);
	struct timespec ts = { 0, RS_POLL_NS };
	char           *data;
	size_t          len, have = 0;
	int             status;

	for (;;) {
		if (evb_ts_file_read(path, &data, &len) == EVB_OK) {
			have = rs_count(data, '\n');
			free(data);
		}
		if (have >= n) {
			return;
		}
		cr_assert_neq(evb_ts_wait(&rs_pid, 0, &status), EVB_OK,
		    "the follower exited with %d", evb_ts_exit_code(status));
		cr_assert_lt(evb_clock_mono_ms(), end,
		    "the follower printed %zu lines, not %zu", have, n);
		(void) nanosleep(&ts, NULL);
	}
}

Test(replay_stats, replay_follow_reports_records_removed_while_it_lagged)
{
	evb_wal         *w  = rs_retained();
	int64_t          t0 = atomic_load(&rs_clock);
	char            *argv[RS_MAX_ARGS + 2];
	evb_ts_io        io = rs_io();
	uint64_t         got;
	int              status;
	const rs_result *r;

	rs_argv(argv, ARGS("replay", "--follow", "--data", rs_wal));
	cr_assert_eq(evb_ts_spawn(&rs_pid, argv, &io), EVB_OK);
	rs_wait_lines(io.stdout_path, 10);
	// Held still at the end of the log, it falls behind: 21..40 are
	// stored and removed before it reads on; 41..50 are kept.
	cr_assert_eq(kill(rs_pid, SIGSTOP), 0);
	rs_events(w, "c", 20, 21);
	atomic_store(&rs_clock, t0 + 60 * RS_SEC);
	rs_events(w, "d", 10, 41);
	atomic_store(&rs_clock, t0 + 62 * RS_SEC);
	cr_assert_eq(evb_wal_retain(w, 100, &got, NULL), EVB_OK);
	cr_assert_eq(got, 30);
	cr_assert_eq(kill(rs_pid, SIGCONT), 0);
	rs_wait_lines(io.stdout_path, 20);
	cr_assert_eq(kill(rs_pid, SIGINT), 0);
	cr_assert_eq(
	    evb_ts_wait(&rs_pid, evb_ts_timeout_ms(RS_WAIT_MS), &status),
	    EVB_OK);
	r = rs_collect(&io, evb_ts_exit_code(status));
	cr_assert_eq(r->code, 1, "%s", r->err);
	cr_assert(strstr(r->err, "20 records skipped, offsets 21..40") != NULL,
	    "%s", r->err);
	cr_assert(strstr(r->out, "\"id\":\"b-9\"") != NULL, "%s", r->out);
	cr_assert(strstr(r->out, "\"id\":\"d-0\"") != NULL, "%s", r->out);
	cr_assert(strstr(r->out, "\"id\":\"c-") == NULL, "%s", r->out);
	evb_wal_close(w);
}
