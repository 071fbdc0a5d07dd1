/*
 * cli_opts.c: option parsing and error messages shared by every command.
 *
 * getopt_long is a GNU extension and POSIX getopt has no long options, so
 * commands describe their flags in a small cli_opt table instead. Every
 * command gets -h/--help for free, and every usage error looks the same:
 * "evbus CMD: what was wrong" plus where to read the help.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const cli_opt *
opts_find_long(const cli_opt *opts, const char *name)
{
	for (; opts != NULL && opts->long_name != NULL; opts++) {
		if (strcmp(opts->long_name, name) == 0) {
			return opts;
		}
	}
	return NULL;
}

static const cli_opt *
opts_find_short(const cli_opt *opts, char c)
{
	for (; opts != NULL && opts->long_name != NULL; opts++) {
		if (opts->short_name != 0 && opts->short_name == c) {
			return opts;
		}
	}
	return NULL;
}

/*
 * opts_parse_one handles one argument that starts with '-' and is not "-"
 * or "--". Short flags may be bundled ("-bh").
 */
static int
opts_parse_one(const cli_cmd *cmd, const char *arg, const cli_opt *opts)
{
	const cli_opt *o;

	if (arg[1] == '-') {
		if (strcmp(arg, "--help") == 0) {
			fputs(cmd->help, stdout);
			return cli_output_finish(cmd, CLI_EXIT_OK);
		}
		if ((o = opts_find_long(opts, arg + 2)) == NULL) {
			return cli_usage_error(cmd, "unknown option '%s'", arg);
		}
		*o->is_set = true;
		return CLI_CONTINUE;
	}
	for (const char *p = arg + 1; *p != '\0'; p++) {
		if (*p == 'h') {
			fputs(cmd->help, stdout);
			return cli_output_finish(cmd, CLI_EXIT_OK);
		}
		if ((o = opts_find_short(opts, *p)) == NULL) {
			return cli_usage_error(cmd, "unknown option '-%c'", *p);
		}
		*o->is_set = true;
	}
	return CLI_CONTINUE;
}

int
cli_opts_parse(
    const cli_cmd *cmd, int argc, char **argv, const cli_opt *opts, int *first)
{
	int i;
	int rc;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			break;
		}
		if ((rc = opts_parse_one(cmd, arg, opts)) != CLI_CONTINUE) {
			return rc;
		}
	}
	*first = i;
	return CLI_CONTINUE;
}

static void opts_message(const cli_cmd *cmd, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
opts_message(const cli_cmd *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "evbus %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opts_message(cmd, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'evbus help %s'.\n", cmd->name);
	return CLI_EXIT_USAGE;
}

void
cli_error(const cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opts_message(cmd, fmt, ap);
	va_end(ap);
}

const char *
cli_diag_text(const evb_diag *diag, int rc)
{
	return diag->msg[0] != '\0' ? diag->msg : evb_strerror(rc);
}
