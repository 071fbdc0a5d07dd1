/*
 * cmd_publish.c: `evbus publish [--ingest URL] [--batch N] [--max-msg
 * BYTES] [FILE]`, JSON events (one per line) into a broker's ingest
 * endpoint, fire and forget over nng push0.
 *
 * Each line is checked here first with the broker's own validator
 * (evb_proto_event_from_json), so a bad line is reported by number and
 * never sent. Valid events are encoded and gathered into one MessagePack
 * array per message, closed at N events or before it would pass
 * --max-msg bytes, header included. The broker refuses (and counts) a
 * message over its own --max-msg, and publish cannot see that, so the
 * two limits must agree: an event that alone would make a message over
 * --max-msg is reported like an invalid line and not sent.
 *
 * Knowing that the last message left: push0 has no acknowledgement, and
 * nng_close may drop a message still being written. With push0's send
 * buffer at 0 (its default), the socket is writable again only once the
 * pipe has finished writing the previous message to the kernel, so
 * after the last send, publish polls NNG_OPT_SENDFD for that before it
 * closes; the kernel then delivers the bytes even after the close.
 *
 * With --confirm, the socket is req0 (to the confirmed ingest endpoint of
 * `evbus run`) and each message waits for its reply, which comes once the
 * events are in the log (docs/protocol.md "Confirmed ingest"); each
 * event's seq or rejection is printed against its line number. It never
 * resends (see PUBLISH_RESEND_MS): a reply that does not come within
 * PUBLISH_CONFIRM_TIMEOUT_MS is reported and makes the exit status 2.
 */
#include <errno.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/*
 * --max-msg's default: a message is closed before this size even before
 * N events. Well under the broker's default --max-msg of 4 MiB.
 */
#define PUBLISH_MAX_MSG_DEFAULT ((uint64_t) 1 << 20)
#define PUBLISH_BATCH_DEFAULT 1000
#define PUBLISH_TIMEOUT_MS 10000         /* A send or the final flush. */
#define PUBLISH_CONFIRM_TIMEOUT_MS 30000 /* A confirmed message's reply. */
/*
 * req0 never resends on its own: a reply may wait for a slow fsync, and a
 * resent request would publish its events again (events without an id
 * get new ones, so the log could not tell them apart). A lost reply is a
 * timeout, reported as such.
 */
#define PUBLISH_RESEND_MS NNG_DURATION_INFINITE

static int publish_run(int argc, char **argv);

const cli_cmd cli_cmd_publish = {
	.name    = "publish",
	.summary = "Send JSON events to a broker's ingest endpoint.",
	.help =
	    "usage: evbus publish [--ingest URL] [--batch N]\n"
	    "                     [--max-msg BYTES] [--confirm] [FILE]\n"
	    "\n"
	    "Read JSON events, one per line, from FILE, or standard input\n"
	    "when FILE is absent or '-', check each one as 'evbus validate'\n"
	    "does, and send the valid ones to a broker's ingest endpoint\n"
	    "(nng push0), fire and forget: up to N events per message, as\n"
	    "one MessagePack array, closed early so that no message is over\n"
	    "--max-msg bytes. Blank lines are skipped. An invalid line, or\n"
	    "an event too large for a message on its own, is printed on\n"
	    "standard output as 'line N: PROBLEM' and not sent; at the end,\n"
	    "'N sent in M messages, K invalid' is printed on standard error.\n"
	    "publish does not wait for the broker to accept the events:\n"
	    "'evbus stats' counts what it rejected. With --confirm, it\n"
	    "sends each message to the confirmed ingest endpoint of 'evbus\n"
	    "run' (nng req0) and waits for the reply, which comes once the\n"
	    "events are stored in the log; it prints 'line N: seq S epoch\n"
	    "E' for each stored event and 'line N: rejected: PROBLEM' for\n"
	    "each event the broker refused.\n"
	    "\n"
	    "Options:\n"
	    "  --ingest URL  Broker ingest URL (default\n"
	    "                tcp://127.0.0.1:5571, or tcp://127.0.0.1:5572\n"
	    "                with --confirm).\n"
	    "  --batch N     Events per message, 1 to 1000000 (default\n"
	    "                1000); with 1, each event is sent as a bare map.\n"
	    "  --max-msg BYTES\n"
	    "                Largest message to send (default 1M). The\n"
	    "                broker refuses a message over its own\n"
	    "                --max-msg, which publish cannot see: keep\n"
	    "                this at most the broker's.\n"
	    "  --confirm     Wait until each event is stored; print its seq.\n"
	    "  -h, --help    Print this help and exit.\n"
	    "\n"
	    "BYTES may end in K, M or G (KiB, MiB, GiB).\n"
	    "\n"
	    "Exit status: 0 every event valid and sent, 1 some lines invalid\n"
	    "or too large or, with --confirm, rejected (the others were\n"
	    "sent), 2 usage or I/O error, or the broker could not be\n"
	    "reached, did not take a message within 10 s, or (with\n"
	    "--confirm) did not reply within 30 s.\n",
	.run = publish_run,
};

/* The events gathered for the next message. */
typedef struct publish_batch {
	nng_socket  sock;      /* push0, dialled. */
	const char *url;       /* The URL dialled (for messages). */
	size_t      max;       /* N, events per message. */
	size_t      max_bytes; /* --max-msg: bytes per message, header
	                          included. */
	evb_buf body;          /* Their maps, back to back. */
	size_t  count;         /* Events in body. */
	size_t  sent;          /* Events sent so far. */
	size_t  messages;      /* Messages sent so far. */
	bool    is_confirm;    /* req0: wait for each reply. */
	size_t *lines;         /* Line number of each event in body. */
	size_t  rejected;      /* Events the broker rejected (confirm). */
} publish_batch;

static int publish_confirm(publish_batch *pb);

/* publish_header_len is the header's size in a message of n events. */
static size_t
publish_header_len(const publish_batch *pb, size_t n)
{
	if (pb->max == 1) {
		return 0; // A bare map.
	}
	return n < 16 ? 1 : n <= UINT16_MAX ? 3 : 5;
}

/* publish_array_header writes the array header for n into hdr. */
static size_t
publish_array_header(uint8_t hdr[5], size_t n)
{
	if (n < 16) {
		hdr[0] = (uint8_t) (0x90 | n);
		return 1;
	}
	if (n <= UINT16_MAX) {
		hdr[0] = 0xdc;
		evb_put_be16(hdr + 1, (uint16_t) n);
		return 3;
	}
	hdr[0] = 0xdd;
	evb_put_be32(hdr + 1, (uint32_t) n);
	return 5;
}

/* publish_flush sends the gathered events as one message. */
static int
publish_flush(publish_batch *pb)
{
	nng_msg *msg;
	uint8_t  hdr[5];
	size_t   hlen = 0;
	int      rv;

	if (pb->count == 0) {
		return CLI_EXIT_OK;
	}
	if (pb->max > 1) {
		hlen = publish_array_header(hdr, pb->count);
	}
	if ((rv = nng_msg_alloc(&msg, 0)) != 0) {
		cli_error(&cli_cmd_publish, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	if ((rv = nng_msg_append(msg, hdr, hlen)) != 0 ||
	    (rv = nng_msg_append(msg, pb->body.data, pb->body.len)) != 0) {
		nng_msg_free(msg);
		cli_error(&cli_cmd_publish, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	if ((rv = nng_sendmsg(pb->sock, msg, 0)) != 0) {
		// nng took the message only if the send succeeded.
		char what[64];

		nng_msg_free(msg);
		(void) snprintf(
		    what, sizeof(what), "sending %zu events", pb->count);
		if (rv == NNG_ETIMEDOUT) {
			cli_error_not_taken(&cli_cmd_publish, what, pb->url,
			    pb->is_confirm, PUBLISH_TIMEOUT_MS / 1000);
		} else {
			cli_error(
			    &cli_cmd_publish, "%s: %s", what, nng_strerror(rv));
		}
		return CLI_EXIT_USAGE;
	}
	if (pb->is_confirm && (rv = publish_confirm(pb)) != CLI_EXIT_OK) {
		return rv;
	}
	pb->sent += pb->count;
	pb->messages++;
	pb->count = 0;
	evb_buf_reset(&pb->body);
	return CLI_EXIT_OK;
}

/* publish_result prints one element of a confirm reply's results. */
static void
publish_result(publish_batch *pb, size_t i, const msgpack_object *o)
{
	const msgpack_object *seq   = evb_proto_map_get(o, "seq");
	const msgpack_object *epoch = evb_proto_map_get(o, "epoch");
	const msgpack_object *err   = evb_proto_map_get(o, "error");

	if (err != NULL && err->type == MSGPACK_OBJECT_STR) {
		printf("line %zu: rejected: %.*s\n", pb->lines[i],
		    (int) err->via.str.size, err->via.str.ptr);
		pb->rejected++;
	} else if (seq != NULL && epoch != NULL &&
	    seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    epoch->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		printf("line %zu: seq %llu epoch %llu\n", pb->lines[i],
		    (unsigned long long) seq->via.u64,
		    (unsigned long long) epoch->via.u64);
	} else {
		printf("line %zu: rejected: no result in the reply\n",
		    pb->lines[i]);
		pb->rejected++;
	}
}

/* publish_reply prints a confirm reply for the batch in pb. */
static int
publish_reply(publish_batch *pb, const msgpack_object *m)
{
	const msgpack_object *res = evb_proto_map_get(m, "results");
	const msgpack_object *err = evb_proto_map_get(m, "error");

	if (res == NULL || res->type != MSGPACK_OBJECT_ARRAY) {
		// A refusal of the whole message, {"error": M}, rejects every
		// event. Any other map comes from another endpoint (the
		// control endpoint refuses with {"error", "message"}), which
		// says nothing about the events: not that they were refused.
		msgpack_object one = *m;

		if (err == NULL || err->type != MSGPACK_OBJECT_STR ||
		    m->via.map.size != 1) {
			cli_error(&cli_cmd_publish,
			    "the reply is not a confirmation ({\"results\": "
			    "[...]} or {\"error\": M}): is --ingest the "
			    "--confirm endpoint of evbus run?");
			return CLI_EXIT_USAGE;
		}

		for (size_t i = 0; i < pb->count; i++) {
			publish_result(pb, i, &one);
		}
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < pb->count; i++) {
		if (i < res->via.array.size) {
			publish_result(pb, i, &res->via.array.ptr[i]);
		} else {
			printf("line %zu: rejected: no result in the reply\n",
			    pb->lines[i]);
			pb->rejected++;
		}
	}
	return CLI_EXIT_OK;
}

/* publish_confirm waits for the reply to the message just sent. */
static int
publish_confirm(publish_batch *pb)
{
	msgpack_unpacked u;
	nng_msg         *reply;
	int              rv;

	if ((rv = nng_recvmsg(pb->sock, &reply, 0)) != 0) {
		cli_error(&cli_cmd_publish,
		    "no confirmation for %zu events: %s", pb->count,
		    nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, nng_msg_body(reply), nng_msg_len(reply),
	        NULL) != MSGPACK_UNPACK_SUCCESS) {
		cli_error(
		    &cli_cmd_publish, "the confirmation is not MessagePack");
		rv = CLI_EXIT_USAGE;
	} else {
		rv = publish_reply(pb, &u.data);
	}
	msgpack_unpacked_destroy(&u);
	nng_msg_free(reply);
	return rv;
}

/*
 * publish_add appends one event, sending the batch first if it is due.
 * An event that alone would make a message over --max-msg is not sent:
 * it is printed as a problem of its line and *is_too_big set.
 */
static int
publish_add(publish_batch *pb, const evb_event *ev, evb_buf *scratch,
    size_t lineno, bool *is_too_big)
{
	int rc;

	*is_too_big = false;
	evb_buf_reset(scratch);
	if (evb_proto_event_encode(ev, scratch) != EVB_OK) {
		cli_error(&cli_cmd_publish, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	if (publish_header_len(pb, 1) + scratch->len > pb->max_bytes) {
		printf("line %zu: the event is %zu bytes, too large for a "
		       "message of at most %zu bytes (--max-msg)\n",
		    lineno, scratch->len, pb->max_bytes);
		*is_too_big = true;
		return CLI_EXIT_OK;
	}
	if (pb->count > 0 &&
	    (pb->count == pb->max ||
	        publish_header_len(pb, pb->count + 1) + pb->body.len +
	                scratch->len >
	            pb->max_bytes)) {
		if ((rc = publish_flush(pb)) != CLI_EXIT_OK) {
			return rc;
		}
	}
	if (evb_buf_append(&pb->body, scratch->data, scratch->len) != EVB_OK) {
		cli_error(&cli_cmd_publish, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	pb->lines[pb->count++] = lineno;
	return CLI_EXIT_OK;
}

/* publish_lines reads every line of f and sends the valid events. */
static int
publish_lines(FILE *f, publish_batch *pb, size_t *invalid)
{
	cli_lines r;
	evb_buf   scratch;
	evb_diag  diag;
	int       exit_code = CLI_EXIT_OK;

	cli_lines_init(&r, f);
	evb_buf_init(&scratch);
	for (;;) {
		evb_event *ev;
		int        rc = cli_lines_next_event(&r, &ev, &diag);

		if (rc == EVB_EOF) {
			break;
		}
		if (rc == EVB_OK) {
			bool is_too_big;

			exit_code = publish_add(
			    pb, ev, &scratch, r.lineno, &is_too_big);
			evb_proto_event_free(ev);
			if (exit_code != CLI_EXIT_OK) {
				break;
			}
			*invalid += is_too_big;
		} else if (cli_is_fatal(rc)) {
			exit_code = cli_lines_fatal(&cli_cmd_publish, &r, rc);
			break;
		} else {
			printf("line %zu: %s\n", r.lineno,
			    cli_diag_text(&diag, rc));
			(*invalid)++;
		}
	}
	if (exit_code == CLI_EXIT_OK) {
		exit_code = publish_flush(pb);
	}
	evb_buf_fini(&scratch);
	cli_lines_fini(&r);
	return exit_code;
}

/*
 * publish_drain waits until push0 is writable again, that is, until the
 * last message has been written to the kernel (see the top comment).
 */
static int
publish_drain(nng_socket sock, const char *url)
{
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	uint64_t      end = evb_clock_mono_ms() + PUBLISH_TIMEOUT_MS;
	int           rv;

	if ((rv = nng_socket_get_int(sock, NNG_OPT_SENDFD, &pfd.fd)) != 0) {
		cli_error(&cli_cmd_publish, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	for (;;) {
		uint64_t now = evb_clock_mono_ms();

		if (now >= end) {
			cli_error_not_taken(&cli_cmd_publish,
			    "the last message", url, false,
			    PUBLISH_TIMEOUT_MS / 1000);
			return CLI_EXIT_USAGE;
		}
		rv = poll(&pfd, 1, (int) (end - now));
		if (rv > 0) {
			return CLI_EXIT_OK;
		}
		if (rv < 0 && errno != EINTR) {
			cli_error(
			    &cli_cmd_publish, "poll: %s", strerror(errno));
			return CLI_EXIT_USAGE;
		}
	}
}

/* publish_connect opens push0 (req0 with confirm) and dials url. */
static int
publish_connect(const char *url, bool confirm, nng_socket *sock)
{
	int rv;

	if ((rv = confirm ? nng_req0_open(sock) : nng_push0_open(sock)) != 0) {
		cli_error(&cli_cmd_publish, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	if ((confirm &&
	        ((rv = nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO,
	              PUBLISH_CONFIRM_TIMEOUT_MS)) != 0 ||
	            (rv = nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME,
	                 PUBLISH_RESEND_MS)) != 0)) ||
	    (rv = nng_socket_set_ms(
	         *sock, NNG_OPT_SENDTIMEO, PUBLISH_TIMEOUT_MS)) != 0 ||
	    (rv = nng_dial(*sock, url, NULL, 0)) != 0) {
		cli_error(&cli_cmd_publish, "cannot connect to %s: %s", url,
		    nng_strerror(rv));
		(void) nng_close(*sock);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int
publish_run(int argc, char **argv)
{
	const char   *url     = NULL;
	const char   *batch   = NULL;
	const char   *max_msg = NULL;
	bool          confirm = false;
	const cli_opt opts[]  = {
		 { "ingest", 0, NULL, &url },
		 { "batch", 0, NULL, &batch },
		 { "max-msg", 0, NULL, &max_msg },
		 { "confirm", 0, &confirm, NULL },
		 { NULL, 0, NULL, NULL },
	};
	publish_batch pb = {
		.max       = PUBLISH_BATCH_DEFAULT,
		.max_bytes = PUBLISH_MAX_MSG_DEFAULT,
	};
	size_t   invalid = 0;
	uint64_t n;
	FILE    *f;
	int      first;
	int      rc;

	rc = cli_opts_parse_max(&cli_cmd_publish, argc, argv, opts, 1, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_url_check(&cli_cmd_publish, "ingest", url)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	if (batch != NULL) {
		if ((rc = cli_parse_u64(&cli_cmd_publish, "batch", batch, 1,
		         EVB_PROTO_MAX_BATCH, &n)) != CLI_CONTINUE) {
			return rc;
		}
		pb.max = (size_t) n;
	}
	if (max_msg != NULL) {
		if ((rc = cli_parse_bytes(&cli_cmd_publish, "max-msg", max_msg,
		         1, CLI_MAX_MSG_LIMIT, &n)) != CLI_CONTINUE) {
			return rc;
		}
		pb.max_bytes = (size_t) n;
	}
	if (url == NULL) {
		url =
		    confirm ? CLI_CONFIRM_URL_DEFAULT : CLI_INGEST_URL_DEFAULT;
	}
	pb.is_confirm = confirm;
	pb.url        = url;
	if ((pb.lines = calloc(pb.max, sizeof(*pb.lines))) == NULL) {
		cli_error(&cli_cmd_publish, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	if ((rc = cli_input_open(&cli_cmd_publish, argv[first], &f)) !=
	    CLI_EXIT_OK) {
		free(pb.lines);
		return rc;
	}
	if ((rc = publish_connect(url, confirm, &pb.sock)) == CLI_EXIT_OK) {
		evb_buf_init(&pb.body);
		rc = publish_lines(f, &pb, &invalid);
		if (rc == CLI_EXIT_OK && pb.messages > 0 && !confirm) {
			rc = publish_drain(pb.sock, url);
		}
		(void) nng_close(pb.sock);
		evb_buf_fini(&pb.body);
		if (confirm) {
			fprintf(stderr,
			    "%zu sent in %zu messages, %zu invalid, %zu "
			    "rejected\n",
			    pb.sent, pb.messages, invalid, pb.rejected);
		} else {
			fprintf(stderr,
			    "%zu sent in %zu messages, %zu invalid\n", pb.sent,
			    pb.messages, invalid);
		}
		if (rc == CLI_EXIT_OK && invalid + pb.rejected > 0) {
			rc = CLI_EXIT_DATA;
		}
	}
	free(pb.lines);
	cli_input_close(f);
	return cli_output_finish(&cli_cmd_publish, rc);
}
