/*
 * cmd_version.c: `evbus version`, the program's version. EVB_VERSION comes
 * from the project version in the top-level CMakeLists.txt.
 */
#include <stdio.h>

#include "cli/cli.h"

#ifndef EVB_VERSION
#error "EVB_VERSION must be defined by the build (cli/CMakeLists.txt)"
#endif

static int version_run(int argc, char **argv);

const cli_cmd cli_cmd_version = {
	.name    = "version",
	.summary = "Print the evbus version.",
	.help    = "usage: evbus version\n"
	           "\n"
	           "Print 'evbus VERSION' on standard output.\n"
	           "\n"
	           "Options:\n"
	           "  -h, --help  Print this help and exit.\n"
	           "\n"
	           "Exit status: 0 success, 2 bad usage.\n",
	.run     = version_run,
};

static int
version_run(int argc, char **argv)
{
	int first;
	int rc;

	rc = cli_opts_parse_max(&cli_cmd_version, argc, argv, NULL, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	printf("evbus %s\n", EVB_VERSION);
	return cli_output_finish(&cli_cmd_version, CLI_EXIT_OK);
}
