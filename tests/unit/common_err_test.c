/*
 * common_err_test: the evb_err codes and their messages, diagnostics and
 * evb_assert, through common/common.h only.
 *
 * The message table must cover every code: evb_strerror never returns
 * NULL, not even for codes it does not know (nng's errors_test.c checks
 * the same promise of nng_strerror).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "common/common.h"

/* Every test finishes in milliseconds; this only bounds a hang. */
#define TEST_TIMEOUT_S 10.0

/* The last defined code. Update it when a code is added at the end. */
#define LAST_CODE EVB_EOF

Test(common_err, ok_is_zero, .timeout = TEST_TIMEOUT_S)
{
	cr_assert_eq(EVB_OK, 0);
	cr_assert_str_eq(evb_strerror(EVB_OK), "Success");
}

Test(common_err, codes_are_stable, .timeout = TEST_TIMEOUT_S)
{
	// The numbers are part of the client ABI and of stored logs: a
	// renumbering must fail here, not in a user's program.
	cr_assert_eq(EVB_EINVAL, 1);
	cr_assert_eq(EVB_ENOMEM, 2);
	cr_assert_eq(EVB_EMALFORMED, 3);
	cr_assert_eq(EVB_ESCHEMA, 4);
	cr_assert_eq(EVB_ETOOBIG, 5);
	cr_assert_eq(EVB_ENOTFOUND, 6);
	cr_assert_eq(EVB_EEXIST, 7);
	cr_assert_eq(EVB_ECLOSED, 8);
	cr_assert_eq(EVB_ETIMEDOUT, 9);
	cr_assert_eq(EVB_EFULL, 10);
	cr_assert_eq(EVB_ECORRUPT, 11);
	cr_assert_eq(EVB_EBUSY, 12);
	cr_assert_eq(EVB_EAGAIN, 13);
	cr_assert_eq(EVB_EVERSION, 14);
	cr_assert_eq(EVB_ETRANSPORT, 15);
	cr_assert_eq(EVB_ESTORAGE, 16);
	cr_assert_eq(EVB_EUSAGE, 17);
	cr_assert_eq(EVB_EOF, 18);
	cr_assert_eq(EVB_ESYSERR, 0x10000000);
}

Test(common_err, strerror_known_codes_have_own_message,
    .timeout = TEST_TIMEOUT_S)
{
	for (int e = EVB_OK; e <= LAST_CODE; e++) {
		const char *m = evb_strerror(e);

		cr_assert_not_null(m, "code %d", e);
		cr_assert_gt(strlen(m), 0, "code %d", e);
		cr_assert_str_neq(m, "Unknown error", "code %d", e);
	}
}

Test(common_err, strerror_messages_are_distinct, .timeout = TEST_TIMEOUT_S)
{
	for (int a = EVB_OK; a <= LAST_CODE; a++) {
		for (int b = a + 1; b <= LAST_CODE; b++) {
			cr_assert_str_neq(evb_strerror(a), evb_strerror(b),
			    "codes %d and %d share a message", a, b);
		}
	}
}

Test(common_err, strerror_unknown_code_is_not_null, .timeout = TEST_TIMEOUT_S)
{
	const int unknown[] = { LAST_CODE + 1, 1000, EVB_ESYSERR - 1 };

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *m = evb_strerror(unknown[i]);

		cr_assert_not_null(m, "code %d", unknown[i]);
		cr_assert_str_eq(m, "Unknown error", "code %d", unknown[i]);
	}
}

Test(common_err, strerror_negative_is_unknown, .timeout = TEST_TIMEOUT_S)
{
	cr_assert_str_eq(evb_strerror(-1), "Unknown error");
	cr_assert_str_eq(evb_strerror(INT_MIN), "Unknown error");
}

Test(common_err, strerror_syserr_gives_os_message, .timeout = TEST_TIMEOUT_S)
{
	char want[256];

	// Copy first: strerror may reuse one buffer between calls.
	(void) snprintf(want, sizeof(want), "%s", strerror(ENOENT));
	cr_assert_str_eq(evb_strerror(EVB_ESYSERR + ENOENT), want);
	(void) snprintf(want, sizeof(want), "%s", strerror(EACCES));
	cr_assert_str_eq(evb_strerror(EVB_ESYSERR + EACCES), want);
}

Test(common_err, strerror_syserr_out_of_range_is_not_null,
    .timeout = TEST_TIMEOUT_S)
{
	cr_assert_not_null(evb_strerror(EVB_ESYSERR));
	cr_assert_not_null(evb_strerror(INT_MAX));
}

Test(common_err, err_errno_adds_syserr, .timeout = TEST_TIMEOUT_S)
{
	cr_assert_eq(evb_err_errno(ENOENT), EVB_ESYSERR + ENOENT);
	cr_assert_eq(evb_err_errno(EIO), EVB_ESYSERR + EIO);
	cr_assert_eq(evb_err_errno(ENOSPC), EVB_ESYSERR + ENOSPC);
}

Test(common_err, err_errno_maps_enomem, .timeout = TEST_TIMEOUT_S)
{
	// Callers test for EVB_ENOMEM alone, whatever ran out of memory.
	cr_assert_eq(evb_err_errno(ENOMEM), EVB_ENOMEM);
}

Test(common_err, diag_set_formats_message, .timeout = TEST_TIMEOUT_S)
{
	evb_diag d = { .msg = "stale" };

	evb_diag_set(&d, "%s.data.%s: expected %s, got %d", "trade_executed",
	    "price", "number", 7);
	cr_assert_str_eq(
	    d.msg, "trade_executed.data.price: expected number, got 7");
}

Test(common_err, diag_set_null_is_noop, .timeout = TEST_TIMEOUT_S)
{
	// Reaching the next line without a crash is the behaviour under test.
	evb_diag_set(NULL, "%s", "ignored");
	cr_assert(true);
}

Test(common_err, diag_set_truncates_long_message, .timeout = TEST_TIMEOUT_S)
{
	char     longer[EVB_DIAG_MAX * 3];
	evb_diag d;

	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	memset(&d, 0x55, sizeof(d));
	evb_diag_set(&d, "%s", longer);
	cr_assert_eq(strlen(d.msg), EVB_DIAG_MAX - 1);
	cr_assert_eq(strncmp(d.msg, longer, EVB_DIAG_MAX - 1), 0);
}

Test(common_err, diag_set_exact_fit_is_kept, .timeout = TEST_TIMEOUT_S)
{
	char     fit[EVB_DIAG_MAX];
	evb_diag d;

	memset(fit, 'y', sizeof(fit) - 1);
	fit[sizeof(fit) - 1] = '\0';
	evb_diag_set(&d, "%s", fit);
	cr_assert_str_eq(d.msg, fit);
}

/* Input quoted in a log line must not start a line of its own. */
Test(common_err, diag_escape_writes_control_bytes_as_hex,
    .timeout = TEST_TIMEOUT_S)
{
	static const char in[] = "k\n2026 NOTICE\r\x1b[1m\x7f\t~";
	char              buf[128];

	cr_assert_not(evb_diag_escape(
	    buf, sizeof(buf), in, sizeof(in) - 1, sizeof(in) - 1));
	cr_assert_str_eq(buf, "k\\x0a2026 NOTICE\\x0d\\x1b[1m\\x7f\\x09~");
	// A NUL byte is input like any other.
	cr_assert_not(evb_diag_escape(buf, sizeof(buf), "a\0b", 3, 3));
	cr_assert_str_eq(buf, "a\\x00b");
	// Empty input may come as NULL (msgpack-c's empty str).
	cr_assert_not(evb_diag_escape(buf, sizeof(buf), NULL, 0, 40));
	cr_assert_str_eq(buf, "");
}

Test(common_err, diag_escape_cuts_at_a_character, .timeout = TEST_TIMEOUT_S)
{
	// "é" is c3 a9: a cut at 2 bytes would split it, so it is left out.
	static const char in[] = "a\xc3\xa9z";
	char              buf[16];

	cr_assert(evb_diag_escape(buf, sizeof(buf), in, 4, 2));
	cr_assert_str_eq(buf, "a");
	cr_assert(evb_diag_escape(buf, sizeof(buf), in, 4, 3));
	cr_assert_str_eq(buf, "a\xc3\xa9");
	// Room, not max_bytes, ends it: an escape is written whole or not.
	cr_assert(evb_diag_escape(buf, 4, "ab\n", 3, 3));
	cr_assert_str_eq(buf, "ab");
	cr_assert(evb_diag_escape(buf, 1, "ab", 2, 2));
	cr_assert_str_eq(buf, "");
	// A lead byte without its continuation bytes is one byte: the
	// newline after it is still escaped.
	cr_assert_not(evb_diag_escape(buf, sizeof(buf), "\xc3\n", 2, 2));
	cr_assert_str_eq(buf, "\xc3\\x0a");
}

Test(common_err, assert_true_does_nothing, .timeout = TEST_TIMEOUT_S)
{
	int n = 1;

	evb_assert(n == 1);
	cr_assert_eq(n, 1);
}

/* The redirect keeps the EVB-ASSERT line out of the test output. */
Test(common_err, assert_false_aborts, .signal = SIGABRT,
    .init = cr_redirect_stderr, .timeout = TEST_TIMEOUT_S)
{
	int n = 1;

	evb_assert(n == 2);
	cr_assert_fail("evb_assert returned");
}
