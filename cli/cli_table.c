/*
 * cli_table.c: aligned columns for people (`--format table` of query and
 * trace). The cells are kept until the end, because a column is as wide
 * as its widest cell and that is known only once every row is in; output
 * meant for programs (JSON lines) streams instead.
 *
 * A cell is for a terminal: control characters in it (a newline in an
 * event's message) are shown escaped, as \n, \t, \r or \xHH, so that a
 * row stays one line, and a column's width counts characters (UTF-8 code
 * points; a wide character still counts one), not bytes.
 *
 * Errors are sticky (an allocation that fails sets t->failed and later
 * adds do nothing), so callers add cells without checking each one and
 * learn of the failure once, from cli_table_print.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define TABLE_GAP 2 /* Spaces between two columns. */

void
cli_table_init(cli_table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	if ((t->width = calloc(ncols, sizeof(*t->width))) == NULL) {
		t->failed = true;
	}
}

void
cli_table_fini(cli_table *t)
{
	for (size_t i = 0; i < t->ncells; i++) {
		free(t->cells[i]);
	}
	free(t->cells);
	free(t->width);
	memset(t, 0, sizeof(*t));
}

/* table_grow makes room for one more cell. */
static bool
table_grow(cli_table *t)
{
	size_t cap;
	char **nc;

	if (t->ncells < t->cap) {
		return true;
	}
	cap = t->cap == 0 ? 64 : t->cap * 2;
	if ((nc = realloc(t->cells, cap * sizeof(*nc))) == NULL) {
		return false;
	}
	t->cells = nc;
	t->cap   = cap;
	return true;
}

/* table_cols counts the characters of s: bytes that do not continue a
   UTF-8 sequence. */
static size_t
table_cols(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		n += ((unsigned char) *s & 0xc0) != 0x80;
	}
	return n;
}

/* table_escape returns s (n bytes) with its control characters escaped,
   in new memory, or NULL when out of memory. */
static char *
table_escape(const char *s, size_t n)
{
	char  *out = malloc(n * 4 + 1); // "\xHH" is the longest form.
	size_t o   = 0;

	if (out == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c != 0x7f) {
			out[o++] = (char) c;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
		} else {
			o += (size_t) snprintf(out + o, 5, "\\x%02x", c);
		}
	}
	out[o] = '\0';
	return out;
}

void
cli_table_add(cli_table *t, const char *fmt, ...)
{
	va_list ap;
	char   *raw, *cell;
	int     n;
	size_t  col, cols;

	if (t->failed) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !table_grow(t) || (raw = malloc((size_t) n + 1)) == NULL) {
		t->failed = true;
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(raw, (size_t) n + 1, fmt, ap);
	va_end(ap);
	cell = table_escape(raw, (size_t) n);
	free(raw);
	if (cell == NULL) {
		t->failed = true;
		return;
	}
	col                   = t->ncells % t->ncols;
	cols                  = table_cols(cell);
	t->width[col]         = cols > t->width[col] ? cols : t->width[col];
	t->cells[t->ncells++] = cell;
}

int
cli_table_print(const cli_cmd *cmd, const cli_table *t)
{
	if (t->failed) {
		cli_error(cmd, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	for (size_t row = 0; row < t->ncells; row += t->ncols) {
		char *const *cells = t->cells + row;
		size_t       n =
                    t->ncells - row < t->ncols ? t->ncells - row : t->ncols;

		// Empty cells at the end of a row print nothing, so that no
		// line ends in spaces.
		while (n > 1 && cells[n - 1][0] == '\0') {
			n--;
		}
		for (size_t col = 0; col + 1 < n; col++) {
			// Padded by characters: printf's width counts bytes.
			printf("%s%*s", cells[col],
			    (int) (t->width[col] + TABLE_GAP -
			        table_cols(cells[col])),
			    "");
		}
		printf("%s\n", cells[n - 1]);
	}
	return CLI_EXIT_OK;
}
