/*
 * cli_num.c: option values that are numbers: counts, milliseconds and
 * byte sizes. One parser, so every command refuses "12x", "-1" and
 * overflow the same way and names the option that was wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "wal/wal.h"

/*
 * num_read parses decimal digits at text and an optional K, M or G
 * (powers of 1024) when has_suffix. Returns false unless the whole text
 * is that, without overflow.
 */
static bool
num_read(const char *text, bool has_suffix, uint64_t *out)
{
	char              *end;
	unsigned long long v;
	unsigned           shift = 0;

	if (!isdigit((unsigned char) text[0])) {
		return false;
	}
	errno = 0;
	v     = strtoull(text, &end, 10);
	if (errno != 0) {
		return false;
	}
	if (has_suffix && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'K':
		case 'k':
			shift = 10;
			break;
		case 'M':
		case 'm':
			shift = 20;
			break;
		case 'G':
		case 'g':
			shift = 30;
			break;
		default:
			return false;
		}
		end++;
	}
	if (*end != '\0' || (shift > 0 && v > (UINT64_MAX >> shift))) {
		return false;
	}
	*out = (uint64_t) v << shift;
	return true;
}

/* num_parse is cli_parse_u64 and cli_parse_bytes. */
static int
num_parse(const cli_cmd *cmd, const char *name, const char *text,
    bool has_suffix, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (!num_read(text, has_suffix, &v)) {
		return cli_usage_error(cmd, "--%s: expected %s, got '%s'", name,
		    has_suffix ? "a size in bytes (e.g. 4096, 64K, 4M)"
		               : "a non-negative integer",
		    text);
	}
	if (v < min || v > max) {
		return cli_usage_error(cmd,
		    "--%s: expected %llu..%llu, got '%s'", name,
		    (unsigned long long) min, (unsigned long long) max, text);
	}
	*out = v;
	return CLI_CONTINUE;
}

int
cli_parse_u64(const cli_cmd *cmd, const char *name, const char *text,
    uint64_t min, uint64_t max, uint64_t *out)
{
	return num_parse(cmd, name, text, false, min, max, out);
}

int
cli_parse_bytes(const cli_cmd *cmd, const char *name, const char *text,
    uint64_t min, uint64_t max, uint64_t *out)
{
	return num_parse(cmd, name, text, true, min, max, out);
}

int
cli_parse_durability(const cli_cmd *cmd, const char *text, int *mode)
{
	if (strcmp(text, "sync") == 0) {
		*mode = EVB_WAL_SYNC;
	} else if (strcmp(text, "periodic") == 0) {
		*mode = EVB_WAL_PERIODIC;
	} else if (strcmp(text, "none") == 0) {
		*mode = EVB_WAL_NONE;
	} else {
		return cli_usage_error(cmd,
		    "--durability: expected sync, periodic or none, got '%s'",
		    text);
	}
	return CLI_CONTINUE;
}

/* time_days is the days from 1970-01-01 to y-m-d (proleptic Gregorian),
 * Howard Hinnant's days_from_civil. */
static int64_t
time_days(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* time_iso reads "YYYY-MM-DDTHH:MM:SS[.fraction]Z" as ns since the epoch. */
static bool
time_iso(const char *t, int64_t *ns)
{
	int    y, mo, d, h, mi, s, n = 0;
	double frac = 0;

	if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s,
	        &n) != 6 ||
	    n != 19 || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || s > 60 || h < 0 || mi < 0 || s < 0) {
		return false;
	}
	t += n;
	if (*t == '.') {
		char *end;

		frac = strtod(t, &end);
		if (end == t + 1) {
			return false;
		}
		t = end;
	}
	if (strcmp(t, "Z") != 0) {
		return false;
	}
	*ns = ((time_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) *
	          (int64_t) 1000000000) +
	    (int64_t) (frac * 1e9);
	return true;
}

/* time_rel reads "-N[smhd]" as that long before now_ns. */
static bool
time_rel(const char *t, int64_t now_ns, int64_t *ns)
{
	static const char    units[] = "smhd";
	static const int64_t secs[]  = { 1, 60, 3600, 86400 };
	char                 num[24];
	uint64_t             v;
	size_t               len = strlen(t);
	const char          *u;

	if (len < 3 || len > sizeof(num) || t[0] != '-' ||
	    (u = strchr(units, t[len - 1])) == NULL) {
		return false;
	}
	memcpy(num, t + 1, len - 2);
	num[len - 2] = '\0';
	if (!num_read(num, false, &v) ||
	    v > (uint64_t) INT64_MAX / 1000000000 / secs[u - units]) {
		return false;
	}
	*ns = now_ns - (int64_t) v * secs[u - units] * 1000000000;
	return true;
}

int
cli_parse_time(const cli_cmd *cmd, const char *name, const char *text,
    int64_t now_ns, int64_t *out)
{
	if (!time_iso(text, out) && !time_rel(text, now_ns, out)) {
		return cli_usage_error(cmd,
		    "--%s: expected an ISO 8601 UTC time "
		    "(2026-11-25T01:50:35Z) or -N followed by s, m, h or d, "
		    "got '%s'",
		    name, text);
	}
	return CLI_CONTINUE;
}
