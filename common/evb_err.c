/*
 * evb_err.c: messages for the evb_err codes, diagnostics and assertions.
 * The table is indexed by code; docs/errors.md explains each one further.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static const char *const err_msgs[] = {
	[EVB_OK]         = "Success",
	[EVB_EINVAL]     = "Invalid argument",
	[EVB_ENOMEM]     = "Out of memory",
	[EVB_EMALFORMED] = "Malformed input",
	[EVB_ESCHEMA]    = "Event does not match its schema",
	[EVB_ETOOBIG]    = "Input exceeds a limit",
	[EVB_ENOTFOUND]  = "Not found",
	[EVB_EEXIST]     = "Already exists",
	[EVB_ECLOSED]    = "Object closed",
	[EVB_ETIMEDOUT]  = "Timed out",
	[EVB_EFULL]      = "Storage full",
	[EVB_ECORRUPT]   = "Data corrupted",
	[EVB_EBUSY]      = "Resource busy",
	[EVB_EAGAIN]     = "Try again",
	[EVB_EVERSION]   = "Unknown format version",
	[EVB_ETRANSPORT] = "Transport error",
	[EVB_ESTORAGE]   = "Storage engine error",
	[EVB_EUSAGE]     = "Usage error",
	[EVB_EOF]        = "End of data",
};

const char *
evb_strerror(int err)
{
	if (err >= EVB_ESYSERR) {
		// strerror may return a shared buffer, but glibc's messages for
		// known errno values are static strings; unknown ones still
		// give a non-NULL "Unknown error nnn".
		return strerror(err - EVB_ESYSERR);
	}
	if (err < 0 || (size_t) err >= sizeof(err_msgs) / sizeof(err_msgs[0]) ||
	    err_msgs[err] == NULL) {
		return "Unknown error";
	}
	return err_msgs[err];
}

int
evb_err_errno(int e)
{
	if (e == ENOMEM) {
		return EVB_ENOMEM;
	}
	return EVB_ESYSERR + e;
}

void
evb_diag_set(evb_diag *d, const char *fmt, ...)
{
	va_list ap;

	if (d == NULL) {
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
}

void
evb_assert_fail(const char *expr, const char *file, int line)
{
	evb_log(EVB_LOG_ERR, "EVB-ASSERT", "assertion failed: %s (%s:%d)", expr,
	    file, line);
	abort();
}
