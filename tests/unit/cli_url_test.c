/*
 * cli_url_test: the URL that `evbus run`'s collector dials for its
 * heartbeat, derived from the --ingest listen URL (cli_url_dialable in
 * cli/cli_url.c, linked alone), through cli/cli.h only.
 *
 * Review finding 5: run used the listen URL as it was, and nng cannot
 * dial a wildcard host, so `evbus run` with an --ingest host of "*" did
 * not start ("cannot open the log ... Address invalid").
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cli/cli.h"

/* Every test finishes in milliseconds; this only bounds a hang. */
#define TEST_TIMEOUT_S 10.0

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
