/*
 * cmd_encode.c: `evbus encode [--batch] [FILE]`, JSON events (one per
 * line) to their canonical MessagePack maps, the bytes the broker ingests
 * (docs/protocol.md).
 *
 * Without --batch each map is written as soon as its line is read, so the
 * output is a stream of maps and memory stays flat. With --batch the maps
 * are kept until the end, because the array header in front of them needs
 * their count. An invalid line is reported and left out whole; the output
 * holds the valid events only, and the exit status says something was
 * left out.
 */
#include <msgpack.h>
#include <stdio.h>

#include "cli/cli.h"

static int encode_run(int argc, char **argv);

const cli_cmd cli_cmd_encode = {
	.name    = "encode",
	.summary = "Turn JSON events into MessagePack ingest messages.",
	.help =
	    "usage: evbus encode [--batch] [FILE]\n"
	    "\n"
	    "Read JSON events, one per line, from FILE, or standard input\n"
	    "when FILE is absent or '-', and write their canonical\n"
	    "MessagePack maps to standard output: one map after another,\n"
	    "or with --batch one array holding every event (an ingest\n"
	    "batch). Blank lines are skipped. An invalid line is reported\n"
	    "on standard error as 'line N: PROBLEM' and left out of the\n"
	    "output.\n"
	    "\n"
	    "Options:\n"
	    "  -b, --batch  Write one MessagePack array of all events.\n"
	    "  -h, --help   Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 all events encoded, 1 some lines invalid (they\n"
	    "are not in the output) or more than 1000000 events with\n"
	    "--batch (nothing is written), 2 usage or I/O error.\n",
	.run = encode_run,
};

/*
 * encode_batch_write writes the array header for count events, then the
 * maps in body.
 */
static int
encode_batch_write(size_t count, const evb_buf *body)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	int             rc = EVB_OK;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, count) != 0) {
		rc = EVB_ENOMEM;
		goto sbuffer_destroy;
	}
	// Write errors are sticky on stdout; cli_output_finish reports them.
	(void) fwrite(sb.data, 1, sb.size, stdout);
	if (body->len > 0) {
		(void) fwrite(body->data, 1, body->len, stdout);
	}
sbuffer_destroy:
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/*
 * encode_one appends ev's map to out and, unless batching, writes it out
 * at once.
 */
static int
encode_one(const evb_event *ev, bool is_batch, evb_buf *out)
{
	int rc;

	if ((rc = evb_proto_event_encode(ev, out)) != EVB_OK) {
		return rc;
	}
	if (!is_batch) {
		(void) fwrite(out->data, 1, out->len, stdout);
		evb_buf_reset(out);
	}
	return EVB_OK;
}

static int
encode_lines(FILE *f, bool is_batch)
{
	cli_lines r;
	evb_buf   out;
	evb_diag  diag;
	size_t    count   = 0;
	size_t    invalid = 0;
	int       exit_code;
	int       rc;

	cli_lines_init(&r, f);
	evb_buf_init(&out);
	for (;;) {
		evb_event *ev;

		rc = cli_lines_next_event(&r, &ev, &diag);
		if (rc == EVB_EOF) {
			break;
		}
		if (rc == EVB_OK) {
			rc = encode_one(ev, is_batch, &out);
			evb_proto_event_free(ev);
		}
		if (cli_is_fatal(rc)) {
			exit_code = cli_lines_fatal(&cli_cmd_encode, &r, rc);
			goto done;
		}
		if (rc != EVB_OK) {
			cli_error(&cli_cmd_encode, "line %zu: %s", r.lineno,
			    cli_diag_text(&diag, rc));
			invalid++;
			continue;
		}
		if (++count > EVB_PROTO_MAX_BATCH && is_batch) {
			cli_error(&cli_cmd_encode,
			    "line %zu: a batch holds at most %d events; split "
			    "the "
			    "input",
			    r.lineno, EVB_PROTO_MAX_BATCH);
			exit_code = CLI_EXIT_DATA;
			goto done;
		}
	}
	if (is_batch && (rc = encode_batch_write(count, &out)) != EVB_OK) {
		cli_error(&cli_cmd_encode, "%s", evb_strerror(rc));
		exit_code = CLI_EXIT_USAGE;
		goto done;
	}
	exit_code = invalid > 0 ? CLI_EXIT_DATA : CLI_EXIT_OK;
done:
	evb_buf_fini(&out);
	cli_lines_fini(&r);
	return exit_code;
}

static int
encode_run(int argc, char **argv)
{
	bool          is_batch = false;
	const cli_opt opts[]   = {
		  { "batch", 'b', &is_batch, NULL },
		  { NULL, 0, NULL, NULL },
	};
	FILE *f;
	int   first;
	int   rc;

	rc = cli_opts_parse_max(&cli_cmd_encode, argc, argv, opts, 1, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_input_open(&cli_cmd_encode, argv[first], &f)) !=
	    CLI_EXIT_OK) {
		return rc;
	}
	rc = encode_lines(f, is_batch);
	cli_input_close(f);
	return cli_output_finish(&cli_cmd_encode, rc);
}
