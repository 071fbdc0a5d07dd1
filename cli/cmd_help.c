/*
 * cmd_help.c: `evbus help [COMMAND]`, the command list or one command's
 * help text. The text comes from the command table, so `evbus help X` and
 * `evbus X --help` print the same bytes.
 */
#include <stdio.h>

#include "cli/cli.h"

static int help_run(int argc, char **argv);

const cli_cmd cli_cmd_help = {
	.name    = "help",
	.summary = "Show the command list, or one command's help.",
	.help    = "usage: evbus help [COMMAND]\n"
	           "\n"
	           "Print the list of commands, or the help text of COMMAND (the\n"
	           "same text as 'evbus COMMAND --help').\n"
	           "\n"
	           "Options:\n"
	           "  -h, --help  Print this help and exit.\n"
	           "\n"
	           "Exit status: 0 success, 2 unknown command or bad usage.\n",
	.run     = help_run,
};

static int
help_run(int argc, char **argv)
{
	const cli_cmd *cmd;
	int            first;
	int            rc;

	rc = cli_opts_parse_max(&cli_cmd_help, argc, argv, NULL, 1, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (argc - first == 0) {
		cli_overview_print(stdout);
		return cli_output_finish(&cli_cmd_help, CLI_EXIT_OK);
	}
	if ((cmd = cli_cmd_find(argv[first])) == NULL) {
		return cli_usage_error(
		    &cli_cmd_help, "unknown command '%s'", argv[first]);
	}
	fputs(cmd->help, stdout);
	return cli_output_finish(&cli_cmd_help, CLI_EXIT_OK);
}
