/*
 * cmd_broker.c: `evbus broker`, the broker (broker/broker.h) in the
 * foreground of its own process.
 *
 * The main thread opens and starts the broker, logs EVB-BROKER-READY
 * (scripts and tests wait for that line: once it is written, every
 * endpoint listens), then sleeps in poll() on the signal pipe until
 * SIGINT or SIGTERM. It stops the broker from there, outside any
 * handler, so the shutdown runs as ordinary code.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "cli/cli.h"

#define BROKER_RING_LIMIT ((uint64_t) 64 << 30) /* A sanity bound. */
#define BROKER_MS_LIMIT ((uint64_t) 86400000)   /* One day. */

static int broker_run(int argc, char **argv);

const cli_cmd cli_cmd_broker = {
	.name    = "broker",
	.summary = "Run the broker: ingest, sequencing, the live bus.",
	.help =
	    "usage: evbus broker [--pub URL] [--ingest URL] [--ctl URL]\n"
	    "                    [--max-msg BYTES] [--ring BYTES]\n"
	    "                    [--heartbeat MS] [--stats-log MS]\n"
	    "\n"
	    "Run the broker in the foreground. It takes events from\n"
	    "producers on the ingest endpoint (nng pull0), validates each\n"
	    "one (a bad event is rejected alone, counted and logged), gives\n"
	    "it the next seq and the broker's epoch, and publishes it on the\n"
	    "bus (nng pub0) as one frame per event. Recent frames stay in a\n"
	    "ring; the control endpoint (nng rep0) answers repair requests\n"
	    "from it, and stats requests ('evbus stats'). Once every\n"
	    "endpoint listens, a line with the id EVB-BROKER-READY, naming\n"
	    "them and the epoch, is logged on standard error. SIGINT or\n"
	    "SIGTERM stops the broker gracefully.\n"
	    "\n"
	    "Options:\n"
	    "  --pub URL          Bus listen URL (default\n"
	    "                     tcp://127.0.0.1:5570).\n"
	    "  --ingest URL       Ingest listen URL (default\n"
	    "                     tcp://127.0.0.1:5571).\n"
	    "  --ctl URL          Control listen URL (default\n"
	    "                     tcp://127.0.0.1:5573).\n"
	    "  --max-msg BYTES    Largest ingest message; larger ones are\n"
	    "                     refused and counted (default 4M).\n"
	    "  --ring BYTES       Repair ring size, at least 128K (default\n"
	    "                     256M).\n"
	    "  --heartbeat MS     Period of the broker's system_health\n"
	    "                     event, 0 for none (default 5000).\n"
	    "  --stats-log MS     Period of the EVB-BROKER-STATS log line,\n"
	    "                     0 for none (default 60000).\n"
	    "  -h, --help         Print this help and exit.\n"
	    "\n"
	    "BYTES may end in K, M or G (KiB, MiB, GiB).\n"
	    "\n"
	    "Exit status: 0 stopped by SIGINT or SIGTERM, 2 usage error or\n"
	    "an endpoint that cannot listen (e.g. the address is in use).\n",
	.run = broker_run,
};

int
cli_broker_opts_fill(
    const cli_cmd *c, const cli_broker_args *a, evb_broker_opts *o)
{
	uint64_t v;
	int      rc;

	if ((rc = cli_url_check(c, "pub", a->pub)) != CLI_CONTINUE ||
	    (rc = cli_url_check(c, "ingest", a->ingest)) != CLI_CONTINUE ||
	    (rc = cli_url_check(c, "ctl", a->ctl)) != CLI_CONTINUE) {
		return rc;
	}
	evb_broker_opts_default(o);
	o->pub_url    = a->pub != NULL ? a->pub : o->pub_url;
	o->ingest_url = a->ingest != NULL ? a->ingest : o->ingest_url;
	o->ctl_url    = a->ctl != NULL ? a->ctl : o->ctl_url;
	if (a->max_msg != NULL) {
		rc = cli_parse_bytes(
		    c, "max-msg", a->max_msg, 1, CLI_MAX_MSG_LIMIT, &v);
		if (rc != CLI_CONTINUE) {
			return rc;
		}
		o->recv_max_bytes = (size_t) v;
	}
	if (a->ring != NULL) {
		rc = cli_parse_bytes(
		    c, "ring", a->ring, 128 << 10, BROKER_RING_LIMIT, &v);
		if (rc != CLI_CONTINUE) {
			return rc;
		}
		o->ring_bytes = (size_t) v;
	}
	if (a->heartbeat != NULL &&
	    (rc = cli_parse_u64(c, "heartbeat", a->heartbeat, 0,
	         BROKER_MS_LIMIT, &o->heartbeat_ms)) != CLI_CONTINUE) {
		return rc;
	}
	if (a->stats_log != NULL &&
	    (rc = cli_parse_u64(c, "stats-log", a->stats_log, 0,
	         BROKER_MS_LIMIT, &o->stats_log_ms)) != CLI_CONTINUE) {
		return rc;
	}
	return CLI_CONTINUE;
}

void
cli_signal_wait(int sig_fd)
{
	struct pollfd pfd = { .fd = sig_fd, .events = POLLIN };

	while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
	}
}

/* broker_serve runs an opened broker until a signal. */
static int
broker_serve(evb_broker *b, const evb_broker_opts *o, int sig_fd)
{
	evb_broker_stat st;
	int             rc;

	if ((rc = evb_broker_start(b)) != EVB_OK) {
		cli_error(
		    &cli_cmd_broker, "cannot start: %s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	evb_broker_stats(b, &st);
	evb_log(EVB_LOG_NOTICE, "EVB-BROKER-READY",
	    "listening: pub %s, ingest %s, ctl %s; epoch %llu", o->pub_url,
	    o->ingest_url, o->ctl_url, (unsigned long long) st.epoch);
	cli_signal_wait(sig_fd);
	evb_log(EVB_LOG_NOTICE, "EVB-BROKER-STOPPING",
	    "signal received: no more ingest; finishing the message in hand");
	evb_broker_stop(b);
	evb_broker_stats(b, &st);
	evb_log(EVB_LOG_NOTICE, "EVB-BROKER-STOPPED",
	    "stopped: epoch %llu, last seq %llu, %llu published, %llu "
	    "rejected, %llu messages refused",
	    (unsigned long long) st.epoch, (unsigned long long) st.last_seq,
	    (unsigned long long) st.published, (unsigned long long) st.rejected,
	    (unsigned long long) st.msgs_refused);
	return CLI_EXIT_OK;
}

static int
broker_run(int argc, char **argv)
{
	cli_broker_args a      = { 0 };
	const cli_opt   opts[] = {
		  { "pub", 0, NULL, &a.pub },
		  { "ingest", 0, NULL, &a.ingest },
		  { "ctl", 0, NULL, &a.ctl },
		  { "max-msg", 0, NULL, &a.max_msg },
		  { "ring", 0, NULL, &a.ring },
		  { "heartbeat", 0, NULL, &a.heartbeat },
		  { "stats-log", 0, NULL, &a.stats_log },
		  { NULL, 0, NULL, NULL },
	};
	evb_broker_opts o;
	evb_broker     *b;
	evb_diag        diag = { "" };
	int             first;
	int             sig_fd;
	int             rc;

	rc = cli_opts_parse_max(&cli_cmd_broker, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_broker_opts_fill(&cli_cmd_broker, &a, &o)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_sig_open(&cli_cmd_broker, &sig_fd)) != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = evb_broker_open(&b, &o, &diag)) != EVB_OK) {
		cli_error(&cli_cmd_broker, "cannot start: %s",
		    cli_diag_text(&diag, rc));
		cli_sig_close();
		return CLI_EXIT_USAGE;
	}
	rc = broker_serve(b, &o, sig_fd);
	evb_broker_stop(b);
	cli_close_deadline(rc);
	evb_broker_close(b);
	cli_sig_close();
	return rc;
}
