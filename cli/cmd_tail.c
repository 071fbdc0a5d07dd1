/*
 * cmd_tail.c: `evbus tail`, live events from the bus (nng sub0) as JSON
 * lines, the full envelope with seq and epoch.
 *
 * Filtering: nng's sub0 matches a subscription against the first bytes
 * of each frame, its topic "<type>.<routing key>" and a 0x00. tail
 * subscribes to the narrowest prefix it can: "T." for --type, and with
 * --symbol too "T.S" and the 0x00, so the broker sends it only what it
 * prints. It still checks type and routing key after decoding, which is
 * what filters --symbol alone (subscribed to everything), and a prefix
 * such as "signal_generated.EUR" must never pass "signal_generated.EURUSD".
 *
 * Connecting: the first dial blocks, so that what it finds is reported
 * at once. No bus there yet (connection refused, or no ipc socket file)
 * is said once, and tail dials again in the background (nng redials every
 * 0.1 s), so a tail started before the bus sees it come up. A peer of
 * another protocol (the ingest, confirm or control endpoint of the same
 * broker) is a configuration error, exit 2: nng_dial returns NNG_EPROTO
 * for a peer that is no nng endpoint at all, and for an nng endpoint of
 * the wrong protocol cli_peer (cli_peer.c) reads it from the pipe events,
 * since nng 1.5 only closes those connections, silently, and redials.
 *
 * Waiting: one poll() on nng's receive descriptor (NNG_OPT_RECVFD,
 * readable while a frame waits), the signal pipe and the peer watch,
 * against the --timeout deadline, so SIGINT, the timeout and a wrong
 * peer end tail at once.
 * Standard output carries the events and nothing else; each line is
 * flushed as it is written, for pipes into grep or jq.
 */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define TAIL_MS_LIMIT ((uint64_t) 1 << 40) /* About 35 years. */

static int tail_run(int argc, char **argv);

const cli_cmd cli_cmd_tail = {
	.name    = "tail",
	.summary = "Print live events from the bus as JSON lines.",
	.help =
	    "usage: evbus tail [--bus URL] [--type T] [--symbol S]\n"
	    "                  [--count N] [--timeout MS]\n"
	    "\n"
	    "Subscribe to a broker's bus (nng sub0) and print each event as\n"
	    "one line of JSON with its full envelope, seq and epoch\n"
	    "included, on standard output, which carries nothing else. Each\n"
	    "line is flushed as it is written. Only events published while\n"
	    "tail is connected are seen. Without --type and --symbol, tail\n"
	    "sees every seq, and reports on standard error the events the\n"
	    "bus dropped because tail fell behind ('N events lost').\n"
	    "When no bus listens at URL yet, tail says so once and keeps\n"
	    "trying; when what answers at URL is not a bus (the broker's\n"
	    "ingest, confirm or control endpoint), it exits with status 2.\n"
	    "\n"
	    "Options:\n"
	    "  --bus URL     Broker bus URL (default tcp://127.0.0.1:5570).\n"
	    "  --type T      Only events of type T (a type name, such as\n"
	    "                signal_generated).\n"
	    "  --symbol S    Only events whose routing key is exactly S: the\n"
	    "                symbol, or the user_id or component for the\n"
	    "                types routed by those.\n"
	    "  --count N     Exit after N events.\n"
	    "  --timeout MS  Exit after MS milliseconds.\n"
	    "  -h, --help    Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 after N events, at the timeout, or on SIGINT or\n"
	    "SIGTERM; 2 usage error, URL is not a bus endpoint or cannot\n"
	    "be dialled (other than refused), or standard output cannot be\n"
	    "written.\n",
	.run = tail_run,
};

/* What to print and when to stop. */
typedef struct tail_filter {
	int         type;    /* Type index, or -1 for any. */
	const char *symbol;  /* Exact routing key, or NULL for any. */
	uint64_t    count;   /* Events to print; 0: no limit. */
	uint64_t    printed; /* Events printed so far. */
	uint64_t    epoch;   /* Of the last frame received (no filter). */
	uint64_t    seq;     /* Its seq; 0 before the first. */
} tail_filter;

/*
 * tail_gap reports frames the bus dropped for this reader. Only without
 * a filter does every seq reach tail, so only then is a jump a loss.
 */
static void
tail_gap(tail_filter *f, const evb_event *ev)
{
	uint64_t epoch = evb_proto_event_epoch(ev);
	uint64_t seq   = evb_proto_event_seq(ev);

	if (f->type >= 0 || f->symbol != NULL) {
		return;
	}
	if (f->seq != 0 && epoch == f->epoch && seq > f->seq + 1) {
		cli_error(&cli_cmd_tail,
		    "%llu events lost, seq %llu to %llu: the bus drops frames "
		    "for a reader that falls behind",
		    (unsigned long long) (seq - f->seq - 1),
		    (unsigned long long) (f->seq + 1),
		    (unsigned long long) (seq - 1));
	}
	f->epoch = epoch;
	f->seq   = seq;
}

/*
 * tail_subscribe subscribes sock to the narrowest prefix of f: "T." for
 * a type, and "T.S" and its 0x00 separator for a type and a key, which
 * matches that one topic only (docs/protocol.md, "Subscribing").
 */
static int
tail_subscribe(nng_socket sock, const tail_filter *f)
{
	char   prefix[EVB_PROTO_MAX_TOPIC + 2];
	size_t len = 0;

	if (f->type >= 0) {
		const char *name = evb_proto_type_name(f->type);
		const char *key  = f->symbol != NULL ? f->symbol : "";
		int n = snprintf(prefix, sizeof(prefix), "%s.%s", name, key);

		if (n < 0 || (size_t) n + 1 >= sizeof(prefix)) {
			// No topic is that long: subscribe to the type alone
			// and let the exact check drop everything.
			len = strlen(name) + 1;
		} else {
			// With a key, the NUL snprintf wrote is the separator.
			len = (size_t) n + (f->symbol != NULL ? 1 : 0);
		}
	}
	return nng_socket_set(sock, NNG_OPT_SUB_SUBSCRIBE, prefix, len);
}

/*
 * tail_frame decodes one frame and prints it if it passes the filter.
 * A frame that does not decode is reported on stderr and skipped.
 */
static int
tail_frame(nng_msg *msg, tail_filter *f, evb_buf *json)
{
	evb_event *ev;
	evb_diag   diag = { "" };
	int        rc;

	rc = evb_proto_frame_decode(
	    &ev, nng_msg_body(msg), nng_msg_len(msg), &diag);
	if (rc != EVB_OK) {
		cli_error(&cli_cmd_tail, "a frame did not decode: %s",
		    cli_diag_text(&diag, rc));
		return cli_is_fatal(rc) ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	tail_gap(f, ev);
	if (!cli_event_match(ev, f->type, f->symbol)) {
		evb_proto_event_free(ev);
		return CLI_EXIT_OK;
	}
	rc = cli_event_print(&cli_cmd_tail, ev, json);
	evb_proto_event_free(ev);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (fflush(stdout) != 0) {
		// Reported once, by cli_output_finish at the end.
		return CLI_EXIT_USAGE;
	}
	f->printed++;
	return CLI_EXIT_OK;
}

/*
 * tail_drain prints every frame waiting on sock. *done turns true when
 * the count is reached.
 */
static int
tail_drain(nng_socket sock, tail_filter *f, evb_buf *json, bool *done)
{
	nng_msg *msg;
	int      rv;

	while ((rv = nng_recvmsg(sock, &msg, NNG_FLAG_NONBLOCK)) == 0) {
		int rc = tail_frame(msg, f, json);

		nng_msg_free(msg);
		if (rc != CLI_EXIT_OK) {
			return rc;
		}
		if (f->count > 0 && f->printed >= f->count) {
			*done = true;
			return CLI_EXIT_OK;
		}
	}
	if (rv != NNG_EAGAIN) {
		cli_error(&cli_cmd_tail, "receive: %s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* What tail dials, for cli_peer_error. */
static const cli_peer_want tail_want = {
	.kind    = "a pub0 bus endpoint",
	.others  = "the broker's ingest, confirm or control endpoint",
	.noun    = "bus",
	.opt     = "--bus",
	.run_opt = "--pub",
	.def     = CLI_BUS_URL_DEFAULT,
};

/*
 * tail_loop waits for frames, a signal, a wrong peer at url (seen by
 * peer) or the deadline.
 */
static int
tail_loop(nng_socket sock, const char *url, cli_peer *peer, int sig_fd,
    tail_filter *f, uint64_t timeout_ms)
{
	struct pollfd pfd[3] = { { .fd = sig_fd, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
		{ .fd = peer->fds[0], .events = POLLIN } };
	uint64_t      end    = evb_clock_mono_ms() + timeout_ms;
	evb_buf       json;
	bool          done = false;
	int           rc   = CLI_EXIT_OK;
	int           rv;

	if ((rv = nng_socket_get_int(sock, NNG_OPT_RECVFD, &pfd[1].fd)) != 0) {
		cli_error(&cli_cmd_tail, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	evb_buf_init(&json);
	while (!done && rc == CLI_EXIT_OK) {
		int      wait_ms = -1;
		uint64_t now     = evb_clock_mono_ms();

		if (timeout_ms > 0) {
			if (now >= end) {
				break;
			}
			wait_ms = end - now > INT32_MAX ? INT32_MAX
			                                : (int) (end - now);
		}
		if ((rv = poll(pfd, 3, wait_ms)) < 0 && errno != EINTR) {
			cli_error(&cli_cmd_tail, "poll: %s", strerror(errno));
			rc = CLI_EXIT_USAGE;
		} else if (rv > 0 && (pfd[0].revents & POLLIN) != 0) {
			break;
		} else if (rv > 0 && (pfd[2].revents & POLLIN) != 0 &&
		    cli_peer_get(peer) == EVB_PEER_WRONG) {
			rc = cli_peer_error(
			    &cli_cmd_tail, &tail_want, url, true);
		} else if (rv > 0 && (pfd[1].revents & POLLIN) != 0) {
			rc = tail_drain(sock, f, &json, &done);
		}
	}
	evb_buf_fini(&json);
	return rc;
}

/* tail_filter_fill checks the options and fills f. */
static int
tail_filter_fill(
    const char *type, const char *symbol, const char *count, tail_filter *f)
{
	int rc;

	f->type   = -1;
	f->symbol = symbol;
	if (type != NULL &&
	    evb_proto_type_find(type, strlen(type), &f->type) != EVB_OK) {
		return cli_usage_error(
		    &cli_cmd_tail, "--type: unknown event type '%s'", type);
	}
	if (count != NULL &&
	    (rc = cli_parse_u64(&cli_cmd_tail, "count", count, 1, UINT64_MAX,
	         &f->count)) != CLI_CONTINUE) {
		return rc;
	}
	return CLI_CONTINUE;
}

/*
 * tail_dial dials url: at once, and when no bus listens there yet, again
 * in the background after saying so.
 */
static int
tail_dial(nng_socket sock, const char *url)
{
	int rv = nng_dial(sock, url, NULL, 0);

	switch (rv) {
	case 0:
		return CLI_EXIT_OK;
	case NNG_EPROTO:
		// The peer sent no SP header: not an nng endpoint at all.
		return cli_peer_error(&cli_cmd_tail, &tail_want, url, false);
	case NNG_ECONNREFUSED:
	case NNG_ENOENT:
		// Nothing listens (ENOENT: no ipc socket file): the bus may
		// not be up yet. A non-blocking dial retries until it is.
		cli_error(&cli_cmd_tail, "no bus at %s yet (%s); retrying", url,
		    nng_strerror(rv));
		if ((rv = nng_dial(sock, url, NULL, NNG_FLAG_NONBLOCK)) == 0) {
			return CLI_EXIT_OK;
		}
		break;
	default:
		break;
	}
	cli_error(
	    &cli_cmd_tail, "cannot connect to %s: %s", url, nng_strerror(rv));
	return CLI_EXIT_USAGE;
}

/*
 * tail_connect opens sub0, subscribes, starts watching its peer and dials
 * url. On failure it closes the socket; the caller finishes the watch.
 */
static int
tail_connect(
    const char *url, const tail_filter *f, nng_socket *sock, cli_peer *peer)
{
	int rv;
	int rc;

	if ((rv = nng_sub0_open(sock)) != 0) {
		cli_error(&cli_cmd_tail, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	// sub0 drops the oldest waiting frame beyond NNG_OPT_RECVBUF (128
	// by default): take nng's maximum, to ride out a burst as large
	// as the broker's own per-subscriber queue.
	if ((rv = nng_socket_set_int(*sock, NNG_OPT_RECVBUF, 8192)) != 0 ||
	    (rv = tail_subscribe(*sock, f)) != 0) {
		cli_error(&cli_cmd_tail, "%s", nng_strerror(rv));
		rc = CLI_EXIT_USAGE;
	} else if ((rc = cli_peer_watch(&cli_cmd_tail, *sock, peer)) ==
	    CLI_CONTINUE) {
		rc = tail_dial(*sock, url);
	}
	if (rc != CLI_EXIT_OK) {
		(void) nng_close(*sock);
	}
	return rc;
}

static int
tail_run(int argc, char **argv)
{
	const char   *url     = CLI_BUS_URL_DEFAULT;
	const char   *type    = NULL;
	const char   *symbol  = NULL;
	const char   *count   = NULL;
	const char   *timeout = NULL;
	const cli_opt opts[]  = {
		 { "bus", 0, NULL, &url },
		 { "type", 0, NULL, &type },
		 { "symbol", 0, NULL, &symbol },
		 { "count", 0, NULL, &count },
		 { "timeout", 0, NULL, &timeout },
		 { NULL, 0, NULL, NULL },
	};
	tail_filter f          = { 0 };
	uint64_t    timeout_ms = 0;
	cli_peer    peer       = { .fds = { -1, -1 } };
	nng_socket  sock;
	int         first;
	int         sig_fd;
	int         rc;

	rc = cli_opts_parse_max(&cli_cmd_tail, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_url_check(&cli_cmd_tail, "bus", url)) != CLI_CONTINUE ||
	    (rc = tail_filter_fill(type, symbol, count, &f)) != CLI_CONTINUE) {
		return rc;
	}
	if (timeout != NULL &&
	    (rc = cli_parse_u64(&cli_cmd_tail, "timeout", timeout, 1,
	         TAIL_MS_LIMIT, &timeout_ms)) != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_sig_open(&cli_cmd_tail, &sig_fd)) != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = tail_connect(url, &f, &sock, &peer)) == CLI_EXIT_OK) {
		rc = tail_loop(sock, url, &peer, sig_fd, &f, timeout_ms);
		cli_close_deadline(rc);
		(void) nng_close(sock);
	}
	cli_peer_fini(&peer);
	cli_sig_close();
	return cli_output_finish(&cli_cmd_tail, rc);
}
