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

/*
 * diag_char_len is the length of the UTF-8 character at p (at most n
 * bytes): 1 for ASCII, and for a byte that does not begin a whole
 * sequence, so that no byte after it is copied unchecked.
 */
static size_t
diag_char_len(const unsigned char *p, size_t n)
{
	size_t want = 1;

	if (p[0] >= 0xf0) {
		want = 4;
	} else if (p[0] >= 0xe0) {
		want = 3;
	} else if (p[0] >= 0xc0) {
		want = 2;
	}
	if (want > n) {
		return 1;
	}
	for (size_t k = 1; k < want; k++) {
		if ((p[k] & 0xc0) != 0x80) {
			return 1;
		}
	}
	return want;
}

bool
evb_diag_escape(
    char *buf, size_t cap, const char *s, size_t len, size_t max_bytes)
{
	size_t cut = len > max_bytes ? max_bytes : len;
	size_t n   = 0;
	size_t i   = 0;

	if (cap == 0) {
		return len > 0;
	}
	while (
	    cut < len && cut > 0 && ((unsigned char) s[cut] & 0xc0) == 0x80) {
		cut--; // Back off to the start of a character.
	}
	while (i < cut) {
		unsigned char c = (unsigned char) s[i];
		size_t        step;

		if (c < 0x20 || c == 0x7f) {
			if (n + 4 >= cap) {
				break;
			}
			(void) snprintf(buf + n, cap - n, "\\x%02x", c);
			n += 4;
			i++;
			continue;
		}
		step = diag_char_len((const unsigned char *) s + i, cut - i);
		if (n + step >= cap) {
			break;
		}
		memcpy(buf + n, s + i, step);
		n += step;
		i += step;
	}
	buf[n] = '\0';
	return i < len;
}

void
evb_assert_fail(const char *expr, const char *file, int line)
{
	evb_log(EVB_LOG_ERR, "EVB-ASSERT", "assertion failed: %s (%s:%d)", expr,
	    file, line);
	abort();
}
