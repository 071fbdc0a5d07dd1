/*
 * cli_table_test: the aligned columns of `--format table` (cli/cli_table.c,
 * linked alone; this file stands in for cli_error). A cell with a newline
 * or a tab split its row, and a column with a two-byte character was
 * padded one short, because widths counted bytes (QA finding).
 */
#include <stdarg.h>
#include <stdio.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "cli/cli.h"

void
cli_error(const cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	(void) cmd;
	va_start(ap, fmt);
	(void) vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static const cli_cmd ut_cmd = { .name = "query" };

Test(cli_table, control_characters_are_escaped_and_rows_stay_one_line,
    .init = cr_redirect_stdout, .timeout = 10.0)
{
	cli_table t;

	cli_table_init(&t, 3);
	cli_table_add(&t, "%s", "KEY");
	cli_table_add(&t, "%s", "MESSAGE");
	cli_table_add(&t, "%s", "N");
	cli_table_add(&t, "%s", "a");
	cli_table_add(&t, "%s", "line\nbreak\ttab\r\x1b\x7f");
	cli_table_add(&t, "%d", 1);
	cr_assert_eq(cli_table_print(&ut_cmd, &t), CLI_EXIT_OK);
	cli_table_fini(&t);
	(void) fflush(stdout);
	cr_assert_stdout_eq_str("KEY  MESSAGE                     N\n"
	                        "a    line\\nbreak\\ttab\\r\\x1b\\x7f  1\n");
}

Test(cli_table, columns_are_as_wide_as_their_characters,
    .init = cr_redirect_stdout, .timeout = 10.0)
{
	cli_table t;

	cli_table_init(&t, 2);
	cli_table_add(&t, "%s", "\xc3\xbc-comp"); // "ü-comp": 6 characters.
	cli_table_add(&t, "%s", "x");
	cli_table_add(&t, "%s", "abcdefg");
	cli_table_add(&t, "%s", "y");
	cr_assert_eq(cli_table_print(&ut_cmd, &t), CLI_EXIT_OK);
	cli_table_fini(&t);
	(void) fflush(stdout);
	cr_assert_stdout_eq_str("\xc3\xbc-comp   x\n"
	                        "abcdefg  y\n");
}
