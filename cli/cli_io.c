/*
 * cli_io.c: reading the commands' input and finishing their output.
 *
 * Lines are read with POSIX getline, which grows its buffer to fit, so a
 * line has no length limit other than memory; proto then bounds what an
 * event may hold. Whole inputs (decode) are read up to a caller's limit so
 * that a huge or endless stdin fails with a message instead of exhausting
 * memory. A write-ahead log is input too: the commands that read one
 * (replay, stats) open it read-only through cli_wal_open_ro.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "common/common.h"
#include "wal/wal.h"

#define IO_CHUNK_BYTES 65536 /* First read buffer; it doubles as needed. */

int
cli_input_open(const cli_cmd *cmd, const char *path, FILE **f)
{
	FILE *fp;

	if (path == NULL || strcmp(path, "-") == 0) {
		*f = stdin;
		return CLI_EXIT_OK;
	}
	if ((fp = fopen(path, "rb")) == NULL) {
		cli_error(cmd, "cannot open '%s': %s", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	*f = fp;
	return CLI_EXIT_OK;
}

void
cli_input_close(FILE *f)
{
	if (f != NULL && f != stdin) {
		// A failed fclose of a stream only read loses nothing.
		(void) fclose(f);
	}
}

int
cli_wal_open_ro(const cli_cmd *cmd, const char *dir, evb_wal **w)
{
	evb_wal_opts o;
	evb_diag     diag = { "" };
	int          rc;

	evb_wal_opts_default(&o);
	o.read_only = true;
	if ((rc = evb_wal_open(w, dir, &o, &diag)) != EVB_OK) {
		cli_error(cmd, "cannot open the log in %s: %s", dir,
		    cli_diag_text(&diag, rc));
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

void
cli_lines_init(cli_lines *r, FILE *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
}

void
cli_lines_fini(cli_lines *r)
{
	free(r->line);
	r->line = NULL;
	r->cap  = 0;
	r->len  = 0;
}

bool
cli_lines_next(cli_lines *r)
{
	ssize_t n;

	errno = 0;
	if ((n = getline(&r->line, &r->cap, r->f)) < 0) {
		r->err = ferror(r->f) ? evb_err_errno(errno != 0 ? errno : EIO)
		                      : EVB_OK;
		r->len = 0;
		return false;
	}
	r->lineno++;
	if (n > 0 && r->line[n - 1] == '\n') {
		n--;
		if (n > 0 && r->line[n - 1] == '\r') {
			n--;
		}
	}
	r->line[n] = '\0';
	r->len     = (size_t) n;
	return true;
}

int
cli_lines_next_event(cli_lines *r, evb_event **ev, evb_diag *diag)
{
	while (cli_lines_next(r)) {
		if (!cli_blank(r->line, r->len)) {
			if (diag != NULL) {
				diag->msg[0] = '\0';
			}
			return evb_proto_event_from_json(
			    ev, r->line, r->len, diag);
		}
	}
	return r->err != EVB_OK ? r->err : EVB_EOF;
}

int
cli_lines_fatal(const cli_cmd *cmd, const cli_lines *r, int rc)
{
	if (r->err != EVB_OK) {
		cli_error(cmd, "cannot read the input after line %zu: %s",
		    r->lineno, evb_strerror(r->err));
	} else {
		cli_error(cmd, "line %zu: %s", r->lineno, evb_strerror(rc));
	}
	return CLI_EXIT_USAGE;
}

bool
cli_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != ' ' && p[i] != '\t') {
			return false;
		}
	}
	return true;
}

int
cli_input_read_all(FILE *f, size_t max_bytes, uint8_t **data, size_t *len)
{
	uint8_t *buf = NULL;
	size_t   cap = 0;
	size_t   n   = 0;

	for (;;) {
		size_t got;

		if (n == cap) {
			// Read one byte past the limit so "exactly max_bytes"
			// and "longer" can be told apart.
			size_t   want = cap == 0 ? IO_CHUNK_BYTES : cap * 2;
			uint8_t *nb;

			if (want > max_bytes + 1) {
				want = max_bytes + 1;
			}
			if (want <= cap) {
				free(buf);
				return EVB_ETOOBIG;
			}
			if ((nb = realloc(buf, want)) == NULL) {
				free(buf);
				return EVB_ENOMEM;
			}
			buf = nb;
			cap = want;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max_bytes) {
			free(buf);
			return EVB_ETOOBIG;
		}
		if (got == 0) {
			break;
		}
	}
	if (ferror(f)) {
		int e = errno != 0 ? errno : EIO;

		free(buf);
		return evb_err_errno(e);
	}
	*data = buf;
	*len  = n;
	return EVB_OK;
}

int
cli_output_finish(const cli_cmd *cmd, int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error(cmd, "cannot write the output: %s", strerror(errno));
		return CLI_EXIT_USAGE;
	}
	return rc;
}
