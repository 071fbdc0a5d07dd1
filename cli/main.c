/*
 * main.c: the evbus program's entry point and its command table.
 *
 * `evbus CMD [ARGS]` looks CMD up in cli_cmds[] and hands it argv from
 * CMD on. The table is the one place that lists the commands: `help`
 * builds its command list from it, so a new subcommand is one cmd_<name>.c
 * plus one line here (and its extern declaration in cli/cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* In the order `evbus help` lists them. */
static const cli_cmd *const cli_cmds[] = {
	&cli_cmd_help,
	&cli_cmd_validate,
	&cli_cmd_encode,
	&cli_cmd_decode,
	&cli_cmd_wal,
	&cli_cmd_broker,
	&cli_cmd_run,
	&cli_cmd_collector,
	&cli_cmd_compactor,
	&cli_cmd_publish,
	&cli_cmd_tail,
	&cli_cmd_replay,
	&cli_cmd_query,
	&cli_cmd_trace,
	&cli_cmd_compact,
	&cli_cmd_stats,
	&cli_cmd_bench,
	&cli_cmd_version,
};

#define CLI_CMD_COUNT (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

const cli_cmd *
cli_cmd_find(const char *name)
{
	for (size_t i = 0; i < CLI_CMD_COUNT; i++) {
		if (strcmp(cli_cmds[i]->name, name) == 0) {
			return cli_cmds[i];
		}
	}
	return NULL;
}

void
cli_overview_print(FILE *f)
{
	fputs("usage: evbus COMMAND [ARGS]\n"
	      "\n"
	      "evbus is a durable event bus. Commands:\n",
	    f);
	for (size_t i = 0; i < CLI_CMD_COUNT; i++) {
		fprintf(
		    f, "  %-10s %s\n", cli_cmds[i]->name, cli_cmds[i]->summary);
	}
	fputs("\n"
	      "Run 'evbus help COMMAND' or 'evbus COMMAND --help' for a\n"
	      "command's options.\n"
	      "\n"
	      "Exit status: 0 success, 1 invalid input data, 2 usage, I/O or\n"
	      "system error.\n",
	    f);
}

int
main(int argc, char **argv)
{
	const cli_cmd *cmd;

	if (argc < 2) {
		cli_overview_print(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		cli_overview_print(stdout);
		return cli_output_finish(&cli_cmd_help, CLI_EXIT_OK);
	}
	if ((cmd = cli_cmd_find(argv[1])) == NULL) {
		fprintf(stderr,
		    "evbus: unknown command '%s'\n"
		    "Try 'evbus help' for the list of commands.\n",
		    argv[1]);
		return CLI_EXIT_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}
