/*
 * cmd_decode.c: `evbus decode [FILE]`, MessagePack events back to JSON
 * lines: a stream of ingest messages (what `evbus encode` writes), or one
 * bus frame (what a subscriber receives, e.g. from nngcat).
 *
 * Telling them apart: a frame starts with its topic, "<type>.<key>", and
 * every type name starts with a lowercase ASCII letter. As MessagePack,
 * such a byte would be a positive fixint, which no ingest message starts
 * with; so the first byte decides, and no guessing is needed.
 *
 * Splitting the stream: evb_proto_msg_extent delimits each message
 * without allocating (msgpack-c's own unpacker would allocate whatever a
 * hostile header claims), then an ingest iterator decodes its events, so
 * one bad event costs only itself. Bytes that cannot be delimited end the
 * stream.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

/*
 * Largest input decode reads. It holds the whole input in memory, so the
 * limit keeps a runaway pipe from exhausting it; 64 MiB is far above one
 * ingest message (EVB_PROTO_MAX_EVENT_BYTES per event), and bigger
 * captures can be decoded file by file.
 */
#define DECODE_MAX_BYTES ((size_t) 64 << 20)

static int decode_run(int argc, char **argv);

const cli_cmd cli_cmd_decode = {
	.name    = "decode",
	.summary = "Turn MessagePack events or a bus frame into JSON lines.",
	.help =
	    "usage: evbus decode [FILE]\n"
	    "\n"
	    "Read MessagePack from FILE, or standard input when FILE is\n"
	    "absent or '-', and print each event as one line of JSON. The\n"
	    "input is either a stream of ingest messages (event maps and\n"
	    "arrays of event maps, back to back, as 'evbus encode' writes\n"
	    "them) or, when its first byte is a lowercase ASCII letter,\n"
	    "one bus frame (TOPIC, a 0x00 byte, an event map). Inputs over\n"
	    "64 MiB are refused. An invalid event is reported on standard\n"
	    "error as 'message M: PROBLEM' or, inside an array,\n"
	    "'message M, event E: PROBLEM' (both counted from 0), and\n"
	    "decoding goes on; bytes that cannot be split into messages\n"
	    "end the input.\n"
	    "\n"
	    "Options:\n"
	    "  -h, --help  Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 all events decoded, 1 some invalid, 2 usage or\n"
	    "I/O error.\n",
	.run = decode_run,
};

/* decode_print writes ev as one JSON line, using json as scratch. */
static int
decode_print(const evb_event *ev, evb_buf *json)
{
	int rc;

	evb_buf_reset(json);
	if ((rc = evb_proto_event_to_json(ev, json)) != EVB_OK) {
		return rc;
	}
	// Write errors are sticky on stdout; cli_output_finish reports them.
	(void) fwrite(json->data, 1, json->len, stdout);
	(void) putchar('\n');
	return EVB_OK;
}

static int
decode_frame(const uint8_t *buf, size_t len, evb_buf *json)
{
	evb_event *ev;
	evb_diag   diag = { "" };
	int        rc;

	if ((rc = evb_proto_frame_decode(&ev, buf, len, &diag)) != EVB_OK) {
		if (cli_is_fatal(rc)) {
			cli_error(&cli_cmd_decode, "%s", evb_strerror(rc));
			return CLI_EXIT_USAGE;
		}
		// proto's frame diagnostics already start with "frame:".
		cli_error(&cli_cmd_decode, "%s", cli_diag_text(&diag, rc));
		return CLI_EXIT_DATA;
	}
	rc = decode_print(ev, json);
	evb_proto_event_free(ev);
	if (rc != EVB_OK) {
		cli_error(&cli_cmd_decode, "%s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/*
 * decode_message decodes the events of the ingest message it was begun
 * on, message number msg. It counts bad events in *bad and returns EVB_OK
 * or EVB_ENOMEM.
 */
static int
decode_message(evb_proto_ingest *it, size_t msg, evb_buf *json, size_t *bad)
{
	while (it->index < it->count) {
		evb_event *ev;
		evb_diag   diag = { "" };
		int        rc;

		rc = evb_proto_ingest_next(it, &ev, &diag);
		if (rc == EVB_OK) {
			rc = decode_print(ev, json);
			evb_proto_event_free(ev);
		}
		if (cli_is_fatal(rc)) {
			return rc;
		}
		if (rc == EVB_EOF) {
			break;
		}
		if (rc == EVB_OK) {
			continue;
		}
		if (it->is_batch) {
			cli_error(&cli_cmd_decode, "message %zu, event %zu: %s",
			    msg, it->index - 1, cli_diag_text(&diag, rc));
		} else {
			cli_error(&cli_cmd_decode, "message %zu: %s", msg,
			    cli_diag_text(&diag, rc));
		}
		(*bad)++;
	}
	return EVB_OK;
}

static int
decode_stream(const uint8_t *buf, size_t len, evb_buf *json)
{
	size_t pos = 0;
	size_t bad = 0;
	int    rc;

	for (size_t msg = 0; pos < len; msg++) {
		evb_proto_ingest it;
		evb_diag         diag = { "" };
		size_t           n;

		rc = evb_proto_msg_extent(buf + pos, len - pos, &n, &diag);
		if (rc == EVB_OK) {
			rc = evb_proto_ingest_begin(&it, buf + pos, n, &diag);
		}
		if (rc != EVB_OK) {
			// Without a valid header the message's extent is
			// unknown, so nothing after it can be split reliably.
			cli_error(&cli_cmd_decode,
			    "message %zu: %s; the remaining %zu bytes are "
			    "skipped",
			    msg, cli_diag_text(&diag, rc), len - pos);
			bad++;
			break;
		}
		if ((rc = decode_message(&it, msg, json, &bad)) != EVB_OK) {
			cli_error(&cli_cmd_decode, "%s", evb_strerror(rc));
			return CLI_EXIT_USAGE;
		}
		pos += n;
	}
	return bad > 0 ? CLI_EXIT_DATA : CLI_EXIT_OK;
}

/* decode_input reads all of f and decodes it. */
static int
decode_input(FILE *f)
{
	uint8_t *buf = NULL;
	size_t   len = 0;
	evb_buf  json;
	int      rc;

	rc = cli_input_read_all(f, DECODE_MAX_BYTES, &buf, &len);
	if (rc == EVB_ETOOBIG) {
		cli_error(&cli_cmd_decode,
		    "input is over the limit of %zu MiB; decode smaller files",
		    DECODE_MAX_BYTES >> 20);
		return CLI_EXIT_USAGE;
	}
	if (rc != EVB_OK) {
		cli_error(&cli_cmd_decode, "cannot read the input: %s",
		    evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	evb_buf_init(&json);
	if (len > 0 && buf[0] >= 'a' && buf[0] <= 'z') {
		rc = decode_frame(buf, len, &json);
	} else {
		rc = decode_stream(buf, len, &json);
	}
	evb_buf_fini(&json);
	free(buf);
	return rc;
}

static int
decode_run(int argc, char **argv)
{
	FILE *f;
	int   first;
	int   rc;

	rc = cli_opts_parse_max(&cli_cmd_decode, argc, argv, NULL, 1, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_input_open(&cli_cmd_decode, argv[first], &f)) !=
	    CLI_EXIT_OK) {
		return rc;
	}
	rc = decode_input(f);
	cli_input_close(f);
	return cli_output_finish(&cli_cmd_decode, rc);
}
