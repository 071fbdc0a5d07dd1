/*
 * cli_time_test: the times that --since and --until take
 * (cli_parse_time in cli/cli_num.c), ISO 8601 and relative, through
 * cli/cli.h only.
 *
 * Expected instants are written as seconds since the epoch that `date -u
 * -d TIME +%s` printed, so the test does not trust the parser's own
 * days_from_civil arithmetic to check itself.
 *
 * cli_num.c is linked alone: this file stands in for cli_usage_error
 * (cli_opts.c, which would pull in the rest of the command line), and
 * keeps the message so that a test can read it.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cli/cli.h"

/* Every test finishes in milliseconds; this only bounds a hang. */
#define TEST_TIMEOUT_S 10.0

#define NS INT64_C(1000000000)

/* 2026-11-25T01:50:35Z, the example in the help texts. */
#define T_EXAMPLE INT64_C(1795571435)

/* "now" for the relative forms. */
#define T_NOW (T_EXAMPLE * NS + 123)

/* What out holds before a call, to see that a failure leaves it alone. */
#define UNSET INT64_C(-42)

static const cli_cmd tt_cmd = { .name = "replay" };

/* The message of the last cli_usage_error call; "" if none. */
static char tt_message[512];

int
cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	int     n;

	cr_assert_eq(cmd, &tt_cmd);
	va_start(ap, fmt);
	n = vsnprintf(tt_message, sizeof(tt_message), fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && (size_t) n < sizeof(tt_message));
	return CLI_EXIT_USAGE;
}

/* tt_parse runs cli_parse_time on text as --since and returns its code. */
static int
tt_parse(const char *text, int64_t *out)
{
	tt_message[0] = '\0';
	*out          = UNSET;
	return cli_parse_time(&tt_cmd, "since", text, T_NOW, out);
}

/* tt_ok asserts that text is the instant want_ns. */
static void
tt_ok(const char *text, int64_t want_ns)
{
	int64_t got;
	int     rc = tt_parse(text, &got);

	cr_assert_eq(rc, CLI_CONTINUE, "'%s' was refused", text);
	cr_assert_eq(got, want_ns, "'%s': got %lld, want %lld", text,
	    (long long) got, (long long) want_ns);
}

/* tt_bad asserts that text is refused as a usage error, out untouched. */
static void
tt_bad(const char *text)
{
	int64_t got;
	int     rc = tt_parse(text, &got);

	cr_assert_eq(rc, CLI_EXIT_USAGE, "'%s' was accepted as %lld", text,
	    (long long) got);
	cr_assert_eq(got, UNSET, "'%s' wrote out on failure", text);
	cr_assert(strncmp(tt_message, "--since: expected an ISO 8601", 29) == 0,
	    "'%s': %s", text, tt_message);
}

TestSuite(cli_time, .timeout = TEST_TIMEOUT_S);

Test(cli_time, z_and_offsets_give_the_same_instant)
{
	int64_t want = T_EXAMPLE * NS;

	tt_ok("2026-11-25T01:50:35Z", want);
	tt_ok("2026-11-25T03:50:35+02:00", want);
	tt_ok("2026-11-25T03:50:35+0200", want);
	tt_ok("2026-11-25T03:50:35+02", want);
	tt_ok("2026-11-24T20:20:35-05:30", want);
	tt_ok("2026-11-24T20:20:35-0530", want);
	tt_ok("2026-11-25T01:50:35+00:00", want);
	tt_ok("2026-11-25T01:50:35-00:00", want);
	// Across a day and a year boundary.
	tt_ok("2027-01-01T00:30:00+01:00", INT64_C(1798759800) * NS);
	tt_ok("2026-12-31T23:59:59-23:59",
	    (INT64_C(1798761599) + 23 * 3600 + 59 * 60) * NS);
	tt_ok("2026-12-31T23:59:59+23:59",
	    (INT64_C(1798761599) - 23 * 3600 - 59 * 60) * NS);
}

Test(cli_time, lowercase_and_space_separators)
{
	int64_t want = T_EXAMPLE * NS;

	tt_ok("2026-11-25t01:50:35z", want);
	tt_ok("2026-11-25 01:50:35Z", want);
	tt_ok("2026-11-25 03:50:35+02:00", want);
}

Test(cli_time, fraction_of_a_second)
{
	int64_t want = T_EXAMPLE * NS;

	tt_ok("2026-11-25T01:50:35.5Z", want + 500000000);
	tt_ok(
	    "2026-11-25T01:50:35.250+02:00", want - 2 * 3600 * NS + 250000000);
	tt_ok("2026-11-25T01:50:35,25Z", want + 250000000);
	tt_ok("2026-11-25T01:50:35.000000001Z", want + 1);
	tt_ok("2026-11-25T01:50:35.123456789Z", want + 123456789);
	// Digits past ns are dropped, never rounded up into the next ns.
	tt_ok("2026-11-25T01:50:35.1234567899999Z", want + 123456789);
	tt_ok("2026-11-25T01:50:35.999999999Z", want + 999999999);
	tt_bad("2026-11-25T01:50:35.Z");
	tt_bad("2026-11-25T01:50:35,Z");
	tt_bad("2026-11-25T01:50:35.5.5Z");
	tt_bad("2026-11-25T01:50.5Z");
}

Test(cli_time, seconds_may_be_left_out)
{
	tt_ok("2026-11-25T01:50Z", (T_EXAMPLE - 35) * NS);
	tt_ok("2026-11-25T03:50+02:00", (T_EXAMPLE - 35) * NS);
	tt_bad("2026-11-25T01Z");
	tt_bad("2026-11-25T01:5Z");
}

Test(cli_time, date_alone_is_midnight_utc)
{
	tt_ok("2026-11-25", INT64_C(1795564800) * NS);
	tt_ok("1970-01-01", 0);
	tt_ok("2026-11-25T00:00:00Z", INT64_C(1795564800) * NS);
	tt_bad("2026-11-25Z");
	tt_bad("2026-11-25+02:00");
	tt_bad("2026-11-25T");
}

Test(cli_time, leap_days_follow_the_gregorian_rules)
{
	tt_ok("2024-02-29", INT64_C(1709164800) * NS);
	tt_ok("2024-02-29T23:59:59Z", INT64_C(1709251199) * NS);
	tt_ok("2000-02-29", INT64_C(951782400) * NS);
	tt_ok("2026-02-28", INT64_C(1772236800) * NS);
	tt_bad("2026-02-29");
	tt_bad("2026-02-29T00:00:00Z");
	tt_bad("2100-02-29");
	tt_bad("2024-02-30");
}

Test(cli_time, impossible_dates_are_refused)
{
	tt_bad("2026-02-31");
	tt_bad("2026-02-31T12:00:00Z");
	tt_bad("2026-04-31");
	tt_bad("2026-13-01");
	tt_bad("2026-13-01T00:00:00Z");
	tt_bad("2026-00-10");
	tt_bad("2026-01-00");
	tt_bad("2026-01-32");
	tt_ok("2026-12-31", INT64_C(1798675200) * NS);
	tt_ok("2026-04-30", INT64_C(1777507200) * NS);
}

Test(cli_time, impossible_times_are_refused)
{
	tt_bad("2026-11-25T25:00:00Z");
	tt_bad("2026-11-25T24:00:00Z");
	tt_bad("2026-11-25T23:60:00Z");
	tt_bad("2026-11-25T23:59:60Z");
	tt_bad("2026-11-25T23:59:99Z");
	tt_ok("2026-11-25T23:59:59Z", INT64_C(1795651199) * NS);
}

Test(cli_time, offsets_beyond_23_59_are_refused)
{
	tt_bad("2026-11-25T01:50:35+24:00");
	tt_bad("2026-11-25T01:50:35-24:00");
	tt_bad("2026-11-25T01:50:35+12:60");
	tt_bad("2026-11-25T01:50:35+2");
	tt_bad("2026-11-25T01:50:35+02:");
	tt_bad("2026-11-25T01:50:35+02:0");
	tt_bad("2026-11-25T01:50:35+020");
	tt_bad("2026-11-25T01:50:35+02:000");
	tt_bad("2026-11-25T01:50:35+");
}

Test(cli_time, missing_zone_is_refused)
{
	tt_bad("2026-11-25T01:50:35");
	tt_bad("2026-11-25T01:50");
	tt_bad("2026-11-25T01:50:35.5");
	tt_bad("2026-11-25 01:50:35");
}

Test(cli_time, trailing_and_leading_garbage_is_refused)
{
	tt_bad("2026-11-25T01:50:35Zx");
	tt_bad("2026-11-25T01:50:35Z ");
	tt_bad("2026-11-25T01:50:35ZZ");
	tt_bad("2026-11-25T01:50:35+02:00x");
	tt_bad("2026-11-25x");
	tt_bad("2026-11-25 ");
	tt_bad(" 2026-11-25");
	tt_bad("+2026-11-25");
	tt_bad("2026-1-25");
	tt_bad("2026-11-5");
	tt_bad("26-11-25");
	tt_bad("2026-11-25T1:50:35Z");
	tt_bad("2026/11/25");
	tt_bad("20261125");
	tt_bad("");
	tt_bad("yesterday");
}

Test(cli_time, outside_the_int64_ns_range_is_refused)
{
	tt_ok("2262-04-11T23:47:16.854775807Z", INT64_MAX);
	tt_bad("2262-04-11T23:47:16.854775808Z");
	tt_bad("2262-04-12");
	tt_bad("9999-12-31T23:59:59Z");
	tt_bad("1969-12-31T23:59:59Z");
	tt_bad("1970-01-01T00:30:00+01:00");
	tt_ok("1970-01-01T00:30:00-01:00", 5400 * NS);
}

Test(cli_time, relative_forms_still_count_back_from_now)
{
	tt_ok("-15m", T_NOW - 15 * 60 * NS);
	tt_ok("-2h", T_NOW - 2 * 3600 * NS);
	tt_ok("-1d", T_NOW - 86400 * NS);
	tt_ok("-30s", T_NOW - 30 * NS);
	tt_ok("-0s", T_NOW);
	tt_bad("-5x");
	tt_bad("-m");
	tt_bad("15m");
	tt_bad("--5m");
	tt_bad("-1.5h");
}

/* tt_why asserts that text is refused with message's ending. */
static void
tt_why(const char *text, const char *ending)
{
	size_t n, e = strlen(ending);

	tt_bad(text);
	n = strlen(tt_message);
	cr_assert(n >= e && strcmp(tt_message + n - e, ending) == 0, "'%s': %s",
	    text, tt_message);
}

Test(cli_time, refusal_says_what_is_expected_and_why)
{
	tt_bad("2026-02-31");
	cr_assert_str_eq(tt_message,
	    "--since: expected an ISO 8601 time with Z or a UTC offset "
	    "(2026-11-25T01:50:35Z, 2026-11-25T03:50:35.250+02:00), a date "
	    "(2026-11-25, midnight UTC) or -N followed by s, m, h or d, got "
	    "'2026-02-31': no such day in that month");
	tt_why("2026-13-01", "got '2026-13-01': no such month");
	tt_why("2026-11-25T01:50:35",
	    "got '2026-11-25T01:50:35': no Z or UTC offset (local time is "
	    "not accepted)");
	tt_why("2026-11-25T25:00Z",
	    "got '2026-11-25T25:00Z': hour beyond 23 or minute beyond 59");
	tt_why("2026-11-25T23:59:60Z",
	    "got '2026-11-25T23:59:60Z': second beyond 59 (leap seconds are "
	    "not accepted)");
	tt_why("2026-11-25T01:50:35+24:00",
	    "got '2026-11-25T01:50:35+24:00': UTC offset beyond 23:59");
	tt_why("1969-12-31",
	    "got '1969-12-31': outside 1970-01-01T00:00:00Z..2262-04-11 (ns "
	    "since 1970 in 64 bits)");
	// Text that is no time at all gets no reason, only what is expected.
	tt_why("2026-11-25T01:50:35Zx", "got '2026-11-25T01:50:35Zx'");
	tt_why("-5x", "got '-5x'");
}
