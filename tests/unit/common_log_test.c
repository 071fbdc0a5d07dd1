/*
 * common_log_test: the log facility (sink, levels, the stderr line), the
 * rate limiter, the clocks and the big-endian helpers of common/common.h.
 *
 * Criterion runs each test in its own process, so a sink or level set by
 * one test never leaks into another.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "common/common.h"

/* Every test finishes in milliseconds; this only bounds a hang. */
#define TEST_TIMEOUT_S 10.0

#define CAPTURE_MAX 8 /* Lines one test may capture. */

/* What the capture sink saw, in order. */
typedef struct capture {
	int           count;                  /* Lines received. */
	evb_log_level level[CAPTURE_MAX];     /* Level of each line. */
	char          id[CAPTURE_MAX][64];    /* Message ID of each line. */
	char          msg[CAPTURE_MAX][2048]; /* Message of each line. */
} capture;

static void
capture_sink(void *arg, evb_log_level level, const char *id, const char *msg)
{
	capture *c = arg;

	cr_assert_lt(c->count, CAPTURE_MAX, "too many log lines");
	c->level[c->count] = level;
	(void) snprintf(c->id[c->count], sizeof(c->id[0]), "%s", id);
	(void) snprintf(c->msg[c->count], sizeof(c->msg[0]), "%s", msg);
	c->count++;
}

/* ---- Sink and levels ---------------------------------------------------- */

Test(common_log, sink_receives_level_id_and_message, .timeout = TEST_TIMEOUT_S)
{
	capture c = { 0 };

	evb_log_set_sink(capture_sink, &c);
	evb_log(EVB_LOG_WARNING, "EVB-TEST-ONE", "disk %s at %d%%", "wal", 93);
	cr_assert_eq(c.count, 1);
	cr_assert_eq(c.level[0], EVB_LOG_WARNING);
	cr_assert_str_eq(c.id[0], "EVB-TEST-ONE");
	cr_assert_str_eq(c.msg[0], "disk wal at 93%");
}

Test(common_log, sink_gets_lines_in_order, .timeout = TEST_TIMEOUT_S)
{
	capture c = { 0 };

	evb_log_set_sink(capture_sink, &c);
	evb_log(EVB_LOG_ERR, "EVB-TEST-A", "first");
	evb_log(EVB_LOG_INFO, "EVB-TEST-B", "second");
	cr_assert_eq(c.count, 2);
	cr_assert_eq(c.level[0], EVB_LOG_ERR);
	cr_assert_str_eq(c.id[0], "EVB-TEST-A");
	cr_assert_str_eq(c.msg[0], "first");
	cr_assert_eq(c.level[1], EVB_LOG_INFO);
	cr_assert_str_eq(c.id[1], "EVB-TEST-B");
	cr_assert_str_eq(c.msg[1], "second");
}

Test(common_log, default_level_drops_debug, .timeout = TEST_TIMEOUT_S)
{
	capture c = { 0 };

	evb_log_set_sink(capture_sink, &c);
	evb_log(EVB_LOG_DEBUG, "EVB-TEST-DBG", "hidden");
	evb_log(EVB_LOG_INFO, "EVB-TEST-INF", "shown");
	cr_assert_eq(c.count, 1);
	cr_assert_str_eq(c.id[0], "EVB-TEST-INF");
}

Test(common_log, set_level_debug_passes_everything, .timeout = TEST_TIMEOUT_S)
{
	capture c = { 0 };

	evb_log_set_sink(capture_sink, &c);
	evb_log_set_level(EVB_LOG_DEBUG);
	evb_log(EVB_LOG_DEBUG, "EVB-TEST-DBG", "now shown");
	cr_assert_eq(c.count, 1);
	cr_assert_eq(c.level[0], EVB_LOG_DEBUG);
	cr_assert_str_eq(c.msg[0], "now shown");
}

Test(common_log, set_level_err_drops_less_severe, .timeout = TEST_TIMEOUT_S)
{
	capture c = { 0 };

	evb_log_set_sink(capture_sink, &c);
	evb_log_set_level(EVB_LOG_ERR);
	evb_log(EVB_LOG_WARNING, "EVB-TEST-W", "dropped");
	evb_log(EVB_LOG_NOTICE, "EVB-TEST-N", "dropped");
	evb_log(EVB_LOG_INFO, "EVB-TEST-I", "dropped");
	evb_log(EVB_LOG_ERR, "EVB-TEST-E", "kept");
	cr_assert_eq(c.count, 1);
	cr_assert_eq(c.level[0], EVB_LOG_ERR);
	cr_assert_str_eq(c.id[0], "EVB-TEST-E");
}

Test(common_log, long_message_is_truncated_prefix, .timeout = TEST_TIMEOUT_S)
{
	static char big[8192];
	capture     c = { 0 };
	size_t      n;

	memset(big, 'z', sizeof(big) - 1);
	evb_log_set_sink(capture_sink, &c);
	evb_log(EVB_LOG_ERR, "EVB-TEST-LONG", "%s", big);
	cr_assert_eq(c.count, 1);
	n = strlen(c.msg[0]);
	cr_assert_gt(n, 0);
	cr_assert_lt(n, sizeof(big) - 1);
	cr_assert_eq(strncmp(c.msg[0], big, n), 0);
}

Test(common_log, null_sink_restores_stderr_default, .init = cr_redirect_stderr,
    .timeout = TEST_TIMEOUT_S)
{
	capture c = { 0 };
	char    line[256];
	FILE   *err;

	evb_log_set_sink(capture_sink, &c);
	evb_log(EVB_LOG_ERR, "EVB-TEST-CAP", "captured");
	evb_log_set_sink(NULL, NULL);
	evb_log(EVB_LOG_ERR, "EVB-TEST-STDERR", "to stderr %d", 42);
	cr_assert_eq(c.count, 1, "the old sink saw a line after restore");

	(void) fflush(stderr);
	err = cr_get_redirected_stderr();
	cr_assert_not_null(fgets(line, sizeof(line), err));
	// "<UTC time> <LEVEL> <ID> <message>": the time is 24 characters,
	// as in "2026-11-25T01:50:35.123Z".
	cr_assert_eq(strlen(line),
	    24 + strlen(" ERR EVB-TEST-STDERR to stderr 42\n"), "line: %s",
	    line);
	cr_assert_eq(line[4], '-');
	cr_assert_eq(line[10], 'T');
	cr_assert_eq(line[19], '.');
	cr_assert_eq(line[23], 'Z');
	cr_assert_str_eq(line + 24, " ERR EVB-TEST-STDERR to stderr 42\n");
}

Test(common_log, level_names_are_rfc5424, .timeout = TEST_TIMEOUT_S)
{
	cr_assert_str_eq(evb_log_level_name(EVB_LOG_ERR), "ERR");
	cr_assert_str_eq(evb_log_level_name(EVB_LOG_WARNING), "WARNING");
	cr_assert_str_eq(evb_log_level_name(EVB_LOG_NOTICE), "NOTICE");
	cr_assert_str_eq(evb_log_level_name(EVB_LOG_INFO), "INFO");
	cr_assert_str_eq(evb_log_level_name(EVB_LOG_DEBUG), "DEBUG");
	cr_assert_eq(EVB_LOG_ERR, 3);
	cr_assert_eq(EVB_LOG_DEBUG, 7);
}

Test(common_log, level_name_unknown_is_not_null, .timeout = TEST_TIMEOUT_S)
{
	cr_assert_str_eq(evb_log_level_name((evb_log_level) 0), "UNKNOWN");
	cr_assert_str_eq(evb_log_level_name((evb_log_level) 99), "UNKNOWN");
}

/* ---- Rate limiter -------------------------------------------------------- */

Test(common_ratelimit, allows_burst_then_refuses, .timeout = TEST_TIMEOUT_S)
{
	evb_ratelimit rl  = { .window_ms = 1000, .burst = 3 };
	uint64_t      sup = 99;

	cr_assert(evb_ratelimit_allow(&rl, 5000, &sup));
	cr_assert_eq(sup, 0);
	cr_assert(evb_ratelimit_allow(&rl, 5001, &sup));
	cr_assert(evb_ratelimit_allow(&rl, 5002, &sup));
	cr_assert_not(evb_ratelimit_allow(&rl, 5003, &sup));
	cr_assert_not(evb_ratelimit_allow(&rl, 5999, &sup));
	cr_assert_eq(rl.suppressed, 2);
}

Test(common_ratelimit, new_window_reports_suppressed, .timeout = TEST_TIMEOUT_S)
{
	evb_ratelimit rl  = { .window_ms = 1000, .burst = 2 };
	uint64_t      sup = 99;

	cr_assert(evb_ratelimit_allow(&rl, 0, NULL));
	cr_assert(evb_ratelimit_allow(&rl, 10, NULL));
	for (int i = 0; i < 5; i++) {
		cr_assert_not(
		    evb_ratelimit_allow(&rl, 20 + (uint64_t) i, &sup));
	}
	cr_assert_eq(sup, 99, "a refusal wrote *suppressed_out");

	// The window that began at 0 ends at 1000 exactly.
	cr_assert_not(evb_ratelimit_allow(&rl, 999, &sup));
	cr_assert(evb_ratelimit_allow(&rl, 1000, &sup));
	cr_assert_eq(sup, 6);

	// The count restarts after it is reported.
	cr_assert(evb_ratelimit_allow(&rl, 1001, &sup));
	cr_assert_eq(sup, 0);
	cr_assert_not(evb_ratelimit_allow(&rl, 1002, &sup));
	cr_assert(evb_ratelimit_allow(&rl, 2000, &sup));
	cr_assert_eq(sup, 1);
}

Test(common_ratelimit, full_burst_again_after_rollover,
    .timeout = TEST_TIMEOUT_S)
{
	evb_ratelimit rl = { .window_ms = 100, .burst = 4 };
	int           allowed;

	for (uint64_t w = 0; w < 3; w++) {
		allowed = 0;
		for (uint64_t i = 0; i < 10; i++) {
			if (evb_ratelimit_allow(&rl, w * 100 + i, NULL)) {
				allowed++;
			}
		}
		cr_assert_eq(allowed, 4, "window %d", (int) w);
	}
}

Test(common_ratelimit, null_out_still_restarts_count, .timeout = TEST_TIMEOUT_S)
{
	evb_ratelimit rl  = { .window_ms = 50, .burst = 1 };
	uint64_t      sup = 99;

	cr_assert(evb_ratelimit_allow(&rl, 0, NULL));
	cr_assert_not(evb_ratelimit_allow(&rl, 1, NULL));
	cr_assert(evb_ratelimit_allow(&rl, 50, NULL));
	cr_assert(evb_ratelimit_allow(&rl, 100, &sup));
	cr_assert_eq(sup, 0);
}

/* ---- Clocks -------------------------------------------------------------- */

Test(common_clock, mono_never_goes_back, .timeout = TEST_TIMEOUT_S)
{
	uint64_t prev = evb_clock_mono_ns();

	for (int i = 0; i < 100000; i++) {
		uint64_t now = evb_clock_mono_ns();

		cr_assert_geq(now, prev, "step %d", i);
		prev = now;
	}
}

Test(common_clock, mono_ms_matches_ns, .timeout = TEST_TIMEOUT_S)
{
	uint64_t ns0 = evb_clock_mono_ns();
	uint64_t ms  = evb_clock_mono_ms();
	uint64_t ns1 = evb_clock_mono_ns();

	cr_assert_geq(ms, ns0 / 1000000u);
	cr_assert_leq(ms, ns1 / 1000000u);
}

Test(common_clock, real_is_after_2020, .timeout = TEST_TIMEOUT_S)
{
	// 2020-01-01T00:00:00Z and 2200-01-01T00:00:00Z, in nanoseconds.
	const int64_t y2020 = INT64_C(1577836800) * 1000000000;
	const int64_t y2200 = INT64_C(7258118400) * 1000000000;
	int64_t       now   = evb_clock_real_ns();

	cr_assert_gt(now, y2020);
	cr_assert_lt(now, y2200);
}

static void
iso_check(int64_t ns, const char *want)
{
	char buf[EVB_CLOCK_ISO_MAX];

	memset(buf, '#', sizeof(buf));
	evb_clock_format_iso(ns, buf, sizeof(buf));
	cr_assert_str_eq(buf, want, "ns %lld", (long long) ns);
}

Test(common_clock, format_iso_epoch, .timeout = TEST_TIMEOUT_S)
{
	iso_check(0, "1970-01-01T00:00:00.000Z");
}

Test(common_clock, format_iso_truncates_to_ms, .timeout = TEST_TIMEOUT_S)
{
	iso_check(INT64_C(1700000000123456789), "2023-11-14T22:13:20.123Z");
	iso_check(INT64_C(1700000000999999999), "2023-11-14T22:13:20.999Z");
	iso_check(999999, "1970-01-01T00:00:00.000Z");
}

Test(common_clock, format_iso_leap_day, .timeout = TEST_TIMEOUT_S)
{
	// 2024-02-29T12:00:00.5Z.
	iso_check(INT64_C(1709208000500000000), "2024-02-29T12:00:00.500Z");
}

Test(common_clock, format_iso_negative_floors, .timeout = TEST_TIMEOUT_S)
{
	// Before the epoch the fraction still counts up within its second.
	iso_check(-1, "1969-12-31T23:59:59.999Z");
	iso_check(-1500000000, "1969-12-31T23:59:58.500Z");
	iso_check(INT64_C(-1000000000), "1969-12-31T23:59:59.000Z");
}

Test(common_clock, format_iso_small_buffer_is_terminated,
    .timeout = TEST_TIMEOUT_S)
{
	char buf[11];

	evb_clock_format_iso(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1970-01-01");
}

/* ---- Big-endian helpers -------------------------------------------------- */

Test(common_be, put_writes_exact_bytes, .timeout = TEST_TIMEOUT_S)
{
	const uint8_t w16[] = { 0x01, 0x02 };
	const uint8_t w32[] = { 0x01, 0x02, 0x03, 0x04 };
	const uint8_t w64[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
		0x08 };
	uint8_t       b[8];

	evb_put_be16(b, 0x0102);
	cr_assert_arr_eq(b, w16, sizeof(w16));
	evb_put_be32(b, 0x01020304u);
	cr_assert_arr_eq(b, w32, sizeof(w32));
	evb_put_be64(b, UINT64_C(0x0102030405060708));
	cr_assert_arr_eq(b, w64, sizeof(w64));
}

Test(common_be, put_touches_only_its_width, .timeout = TEST_TIMEOUT_S)
{
	uint8_t b[10];

	memset(b, 0xee, sizeof(b));
	evb_put_be16(b + 1, 0xffff);
	cr_assert_eq(b[0], 0xee);
	cr_assert_eq(b[3], 0xee);
	memset(b, 0xee, sizeof(b));
	evb_put_be64(b + 1, 0);
	cr_assert_eq(b[0], 0xee);
	cr_assert_eq(b[9], 0xee);
}

Test(common_be, get_reads_exact_bytes, .timeout = TEST_TIMEOUT_S)
{
	const uint8_t b[] = { 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };

	cr_assert_eq(evb_get_be16(b), 0xfedc);
	cr_assert_eq(evb_get_be32(b), 0xfedcba98u);
	cr_assert_eq(evb_get_be64(b), UINT64_C(0xfedcba9876543210));
}

Test(common_be, round_trip_edge_values, .timeout = TEST_TIMEOUT_S)
{
	const uint64_t v64[] = { 0, 1, 0xff, 0x100, UINT32_MAX,
		UINT64_C(0x100000000), INT64_MAX, UINT64_MAX - 1, UINT64_MAX };
	uint8_t        b[8];

	for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
		evb_put_be64(b, v64[i]);
		cr_assert_eq(evb_get_be64(b), v64[i]);
		evb_put_be32(b, (uint32_t) v64[i]);
		cr_assert_eq(evb_get_be32(b), (uint32_t) v64[i]);
		evb_put_be16(b, (uint16_t) v64[i]);
		cr_assert_eq(evb_get_be16(b), (uint16_t) v64[i]);
	}
}

Test(common_be, byte_order_equals_numeric_order, .timeout = TEST_TIMEOUT_S)
{
	// WAL keys rely on this: LMDB compares keys with memcmp.
	const uint64_t v[] = { 0, 1, 255, 256, 65535, 65536, UINT64_C(1) << 32,
		(UINT64_C(1) << 56) + 1, UINT64_MAX };
	uint8_t        a[8];
	uint8_t        b[8];

	for (size_t i = 0; i + 1 < sizeof(v) / sizeof(v[0]); i++) {
		evb_put_be64(a, v[i]);
		evb_put_be64(b, v[i + 1]);
		cr_assert_lt(memcmp(a, b, sizeof(a)), 0, "%zu", i);
	}
}
