/*
 * cli_opts.c: option parsing and error messages shared by every command.
 *
 * getopt_long is a GNU extension and POSIX getopt has no long options, so
 * commands describe their options (flags, or options with a value) in a
 * small cli_opt table instead. Every
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

/* opts_set records that o was given, with its value if it takes one. */
static void
opts_set(const cli_opt *o, const char *value)
{
	if (o->is_set != NULL) {
		*o->is_set = true;
	}
	if (o->value != NULL) {
		*o->value = value;
	}
}

/*
 * opts_next_value takes argv[*i + 1] as the value of option opt (its
 * name as the user wrote it, "--since" or "-d"), unless that argument is
 * one of the command's own long options: a value left out would
 * otherwise swallow the next option silently ("--since --data DIR" set
 * the time to "--data"). A value that really starts with "--" and names
 * an option can still be given inline ("--corr=--data").
 */
static int
opts_next_value(const cli_cmd *cmd, char **argv, int *i, const cli_opt *o,
    const cli_opt *opts, const char *opt)
{
	const char *next = argv[*i + 1];
	char        name[64];
	size_t      len;

	if (strncmp(next, "--", 2) == 0 && next[2] != '\0') {
		len = strcspn(next + 2, "=");
		if (len < sizeof(name)) {
			memcpy(name, next + 2, len);
			name[len] = '\0';
			if (opts_find_long(opts, name) != NULL ||
			    strcmp(name, "help") == 0) {
				return cli_usage_error(cmd,
				    "option '%s' needs a value, got the "
				    "option '%s' (write %s=VALUE for a value "
				    "that starts with --)",
				    opt, next, opt);
			}
		}
	}
	opts_set(o, argv[++*i]);
	return CLI_CONTINUE;
}

/*
 * opts_parse_long handles "--name" and "--name=value" at argv[*i],
 * taking the value from the next argument when it is not inline.
 */
static int
opts_parse_long(
    const cli_cmd *cmd, int argc, char **argv, int *i, const cli_opt *opts)
{
	const char    *arg = argv[*i] + 2;
	const char    *eq  = strchr(arg, '=');
	char           name[64];
	size_t         len = eq != NULL ? (size_t) (eq - arg) : strlen(arg);
	const cli_opt *o;

	if (strcmp(arg, "help") == 0) {
		fputs(cmd->help, stdout);
		return cli_output_finish(cmd, CLI_EXIT_OK);
	}
	if (len >= sizeof(name)) {
		return cli_usage_error(cmd, "unknown option '%s'", argv[*i]);
	}
	memcpy(name, arg, len);
	name[len] = '\0';
	if ((o = opts_find_long(opts, name)) == NULL) {
		return cli_usage_error(cmd, "unknown option '--%s'", name);
	}
	if (o->value == NULL) {
		if (eq != NULL) {
			return cli_usage_error(
			    cmd, "option '--%s' takes no value", name);
		}
		opts_set(o, NULL);
		return CLI_CONTINUE;
	}
	if (eq != NULL) {
		opts_set(o, eq + 1);
		return CLI_CONTINUE;
	}
	if (*i + 1 >= argc) {
		return cli_usage_error(
		    cmd, "option '--%s' needs a value", name);
	}
	return opts_next_value(cmd, argv, i, o, opts, argv[*i]);
}

/*
 * opts_parse_one handles one argument that starts with '-' and is not "-"
 * or "--". Short flags may be bundled ("-bh"); a short option that takes
 * a value takes the rest of the bundle, or else the next argument.
 */
static int
opts_parse_one(
    const cli_cmd *cmd, int argc, char **argv, int *i, const cli_opt *opts)
{
	const char    *arg = argv[*i];
	const cli_opt *o;

	if (arg[1] == '-') {
		return opts_parse_long(cmd, argc, argv, i, opts);
	}
	for (const char *p = arg + 1; *p != '\0'; p++) {
		if (*p == 'h') {
			fputs(cmd->help, stdout);
			return cli_output_finish(cmd, CLI_EXIT_OK);
		}
		if ((o = opts_find_short(opts, *p)) == NULL) {
			return cli_usage_error(cmd, "unknown option '-%c'", *p);
		}
		if (o->value == NULL) {
			opts_set(o, NULL);
			continue;
		}
		if (p[1] != '\0') {
			opts_set(o, p + 1);
		} else if (*i + 1 < argc) {
			char flag[3] = { '-', *p, '\0' };

			return opts_next_value(cmd, argv, i, o, opts, flag);
		} else {
			return cli_usage_error(
			    cmd, "option '-%c' needs a value", *p);
		}
		break;
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
		rc = opts_parse_one(cmd, argc, argv, &i, opts);
		if (rc != CLI_CONTINUE) {
			return rc;
		}
	}
	*first = i;
	return CLI_CONTINUE;
}

int
cli_opts_parse_max(const cli_cmd *cmd, int argc, char **argv,
    const cli_opt *opts, int max_operands, int *first)
{
	int rc = cli_opts_parse(cmd, argc, argv, opts, first);

	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (argc - *first > max_operands) {
		return cli_usage_error(cmd, "too many arguments");
	}
	return CLI_CONTINUE;
}

int
cli_opts_parse_mixed(const cli_cmd *cmd, int argc, char **argv,
    const cli_opt *opts, const char **operands, int max_operands, int *n)
{
	int at    = 0; // argv[at] is the command or the last operand taken.
	int count = 0;
	int first;
	int rc;

	for (;;) {
		// cli_opts_parse skips its argv[0], so each call reads the
		// options that follow the operand before them.
		rc = cli_opts_parse(cmd, argc - at, argv + at, opts, &first);
		if (rc != CLI_CONTINUE) {
			return rc;
		}
		at += first;
		if (at >= argc) {
			break;
		}
		if (first >= 2 && strcmp(argv[at - 1], "--") == 0) {
			// After "--" everything is an operand.
			for (; at < argc; at++) {
				if (count == max_operands) {
					return cli_usage_error(
					    cmd, "too many arguments");
				}
				operands[count++] = argv[at];
			}
			break;
		}
		if (count == max_operands) {
			return cli_usage_error(cmd, "too many arguments");
		}
		operands[count++] = argv[at];
	}
	*n = count;
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

void
cli_error_not_taken(const cli_cmd *cmd, const char *what, const char *url,
    bool is_confirm, int secs)
{
	cli_error(cmd,
	    "%s: nothing at %s took it within %d s: is it the %s endpoint of "
	    "a running %s (default %s)?",
	    what, url, secs, is_confirm ? "confirmed ingest" : "ingest",
	    is_confirm ? "'evbus run' (--confirm)"
	               : "'evbus run' or 'evbus broker' (--ingest)",
	    is_confirm ? CLI_CONFIRM_URL_DEFAULT : CLI_INGEST_URL_DEFAULT);
}

const char *
cli_diag_text(const evb_diag *diag, int rc)
{
	return diag->msg[0] != '\0' ? diag->msg : evb_strerror(rc);
}
