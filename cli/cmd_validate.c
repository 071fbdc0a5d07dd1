/*
 * cmd_validate.c: `evbus validate [FILE]`, checking JSON events (one per
 * line) against their schemas exactly as the broker would check them.
 *
 * The per-line report goes to stdout, because it is what the user asked
 * for and scripts grep it; the summary goes to stderr so that stdout holds
 * nothing but the problems.
 */
#include <stdio.h>

#include "cli/cli.h"

static int validate_run(int argc, char **argv);

const cli_cmd cli_cmd_validate = {
	.name    = "validate",
	.summary = "Check JSON events, one per line, against their schemas.",
	.help    = "usage: evbus validate [FILE]\n"
	           "\n"
	           "Check JSON events, one per line, against their schemas. Read\n"
	           "FILE, or standard input when FILE is absent or '-'. Blank\n"
	           "lines are skipped. For each invalid line, print\n"
	           "'line N: PROBLEM' on standard output; at the end, print\n"
	           "'N valid, M invalid' on standard error.\n"
	           "\n"
	           "Options:\n"
	           "  -h, --help  Print this help and exit.\n"
	           "\n"
	           "Exit status: 0 all events valid, 1 some invalid, 2 usage or\n"
	           "I/O error.\n",
	.run     = validate_run,
};

/* validate_lines checks every line of f and prints the report. */
static int
validate_lines(FILE *f)
{
	cli_lines r;
	evb_diag  diag;
	size_t    valid   = 0;
	size_t    invalid = 0;
	int       exit_code;
	int       rc;

	cli_lines_init(&r, f);
	for (;;) {
		evb_event *ev;

		rc = cli_lines_next_event(&r, &ev, &diag);
		if (rc == EVB_EOF) {
			break;
		}
		if (rc == EVB_OK) {
			evb_proto_event_free(ev);
			valid++;
		} else if (cli_is_fatal(rc)) {
			exit_code = cli_lines_fatal(&cli_cmd_validate, &r, rc);
			goto done;
		} else {
			printf("line %zu: %s\n", r.lineno,
			    cli_diag_text(&diag, rc));
			invalid++;
		}
	}
	fprintf(stderr, "%zu valid, %zu invalid\n", valid, invalid);
	exit_code = invalid > 0 ? CLI_EXIT_DATA : CLI_EXIT_OK;
done:
	cli_lines_fini(&r);
	return exit_code;
}

static int
validate_run(int argc, char **argv)
{
	FILE *f;
	int   first;
	int   rc;

	rc = cli_opts_parse_max(&cli_cmd_validate, argc, argv, NULL, 1, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_input_open(&cli_cmd_validate, argv[first], &f)) !=
	    CLI_EXIT_OK) {
		return rc;
	}
	rc = validate_lines(f);
	cli_input_close(f);
	return cli_output_finish(&cli_cmd_validate, rc);
}
