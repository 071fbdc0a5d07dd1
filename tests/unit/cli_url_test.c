/*
 * cli_url_test: the URL that `evbus run`'s collector dials for its
 * heartbeat, derived from the --ingest listen URL (cli_url_dialable in
 * cli/cli_url.c, linked alone), and the check every URL option makes
 * (cli_url_check), through cli/cli.h only.
 *
 * Review finding 5: run used the listen URL as it was, and nng cannot
 * dial a wildcard host, so `evbus run` with an --ingest host of "*" did
 * not start ("cannot open the log ... Address invalid").
 *
 * cli_url.c is linked alone: this file stands in for cli_usage_error
 * (cli_opts.c), as cli_time_test does, and keeps the message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cli/cli.h"

/* Every test finishes in milliseconds; this only bounds a hang. */
#define TEST_TIMEOUT_S 10.0

static const cli_cmd ut_cmd = { .name = "tail" };

/* The message of the last cli_usage_error call; "" if none. */
static char ut_message[512];

int
cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	int     n;

	cr_assert_eq(cmd, &ut_cmd);
	va_start(ap, fmt);
	n = vsnprintf(ut_message, sizeof(ut_message), fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && (size_t) n < sizeof(ut_message));
	return CLI_EXIT_USAGE;
}

/* expect_dial asserts that listen_url gives want. */
static void
expect_dial(const char *listen_url, const char *want)
{
	char out[128];

	cr_assert_eq(cli_url_dialable(listen_url, out, sizeof(out)), EVB_OK,
	    "%s", listen_url);
	cr_assert_str_eq(out, want, "from %s", listen_url);
}

Test(cli_url, a_wildcard_host_becomes_loopback, .timeout = TEST_TIMEOUT_S)
{
	expect_dial("tcp://*:5571", "tcp://127.0.0.1:5571");
	expect_dial("tcp://:5571", "tcp://127.0.0.1:5571");
	expect_dial("tcp://0.0.0.0:5571", "tcp://127.0.0.1:5571");
	expect_dial("tcp4://*:5571", "tcp4://127.0.0.1:5571");
	expect_dial("tls+tcp://*:5571", "tls+tcp://127.0.0.1:5571");
	expect_dial("ws://*:8080/ingest", "ws://127.0.0.1:8080/ingest");
}

Test(cli_url, an_ipv6_wildcard_becomes_ipv6_loopback, .timeout = TEST_TIMEOUT_S)
{
	expect_dial("tcp://[::]:5571", "tcp://[::1]:5571");
	expect_dial("tcp6://*:5571", "tcp6://[::1]:5571");
	expect_dial("tcp6://:5571", "tcp6://[::1]:5571");
	expect_dial("ws6://[::]:80/x", "ws6://[::1]:80/x");
}

Test(cli_url, other_urls_are_kept, .timeout = TEST_TIMEOUT_S)
{
	expect_dial("tcp://127.0.0.1:5571", "tcp://127.0.0.1:5571");
	expect_dial("tcp://10.1.2.3:5571", "tcp://10.1.2.3:5571");
	expect_dial("tcp://bus.example:5571", "tcp://bus.example:5571");
	expect_dial("tcp://[::1]:5571", "tcp://[::1]:5571");
	expect_dial("tcp://[fe80::1]:5571", "tcp://[fe80::1]:5571");
	expect_dial("ipc:///run/evbus/ingest", "ipc:///run/evbus/ingest");
	expect_dial("inproc://ingest", "inproc://ingest");
	expect_dial("nonsense", "nonsense");
}

Test(cli_url, a_result_too_long_is_refused, .timeout = TEST_TIMEOUT_S)
{
	char out[21];

	// "tcp://127.0.0.1:5571" is 20 bytes: it fits 21, not 20.
	cr_assert_eq(
	    cli_url_dialable("tcp://*:5571", out, sizeof(out)), EVB_OK);
	cr_assert_str_eq(out, "tcp://127.0.0.1:5571");
	cr_assert_eq(cli_url_dialable("tcp://*:5571", out, sizeof(out) - 1),
	    EVB_ETOOBIG);
	cr_assert_eq(
	    cli_url_dialable("ipc:///a/rather/long/path", out, sizeof(out)),
	    EVB_ETOOBIG);
}

/* expect_url asserts that cli_url_check takes text as a URL. */
static void
expect_url(const char *text)
{
	ut_message[0] = '\0';
	cr_assert_eq(cli_url_check(&ut_cmd, "bus", text), CLI_CONTINUE,
	    "'%s' was refused: %s", text, ut_message);
	cr_assert_str_empty(ut_message);
}

/* expect_not_url asserts that text is refused, naming --bus and text. */
static void
expect_not_url(const char *text)
{
	char want[256];

	ut_message[0] = '\0';
	cr_assert_eq(cli_url_check(&ut_cmd, "bus", text), CLI_EXIT_USAGE,
	    "'%s' was taken", text);
	snprintf(want, sizeof(want),
	    "--bus: '%s' is not a URL (expected tcp://HOST:PORT, ipc://PATH "
	    "or inproc://NAME)",
	    text);
	cr_assert_str_eq(ut_message, want);
}

/*
 * A host and port without a scheme used to reach nng, whose "Invalid
 * argument" named no option: "cannot connect to 127.0.0.1:5570".
 */
Test(cli_url, an_address_without_a_scheme_is_named_as_no_url,
    .timeout = TEST_TIMEOUT_S)
{
	expect_not_url("127.0.0.1:5570");
	expect_not_url("localhost:5570");
	expect_not_url("[::1]:5570");
	expect_not_url("5570");
	expect_not_url("");
	expect_not_url("tcp:127.0.0.1:5570");
	expect_not_url("://127.0.0.1:5570");
	expect_not_url("1tcp://127.0.0.1:5570");
}

Test(cli_url, urls_with_a_scheme_pass, .timeout = TEST_TIMEOUT_S)
{
	expect_url("tcp://127.0.0.1:5570");
	expect_url("tcp6://[::1]:5570");
	expect_url("tls+tcp://bus.example:5570");
	expect_url("ipc:///run/evbus/bus");
	expect_url("inproc://bus");
	expect_url("ws://127.0.0.1:8080/bus");
	// Not given at all: the default applies.
	cr_assert_eq(cli_url_check(&ut_cmd, "bus", NULL), CLI_CONTINUE);
}
