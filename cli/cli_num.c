/*
 * cli_num.c: option values that are numbers: counts, milliseconds, byte
 * sizes and times. One parser, so every command refuses "12x", "-1" and
 * overflow the same way and names the option that was wrong.
 *
 * A time is ISO 8601 or relative to now. An ISO date and time must name
 * its zone (Z or an offset): the bus stores UTC and a time read as the
 * machine's local time would silently shift a query by hours. Dates are
 * checked against the Gregorian calendar and turned into days with
 * days_from_civil, not timegm or mktime, which would need TZ games.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "wal/wal.h"

/* What num_read found. */
typedef enum num_result {
	NUM_OK,   /* A number, in *out. */
	NUM_BAD,  /* Not a number of that form. */
	NUM_HUGE, /* The right form, but past UINT64_MAX. */
} num_result;

/*
 * num_read parses decimal digits at text and an optional K, M or G
 * (powers of 1024) when has_suffix. Returns NUM_OK only when the whole
 * text is that and fits in 64 bits, and tells a number too large for
 * them (NUM_HUGE) from text that is no number (NUM_BAD), so that the
 * message can give the range instead of the form.
 */
static num_result
num_read(const char *text, bool has_suffix, uint64_t *out)
{
	char              *end;
	unsigned long long v;
	unsigned           shift = 0;
	bool               is_huge;

	if (!isdigit((unsigned char) text[0])) {
		return NUM_BAD;
	}
	errno   = 0;
	v       = strtoull(text, &end, 10);
	is_huge = errno == ERANGE;
	if (errno != 0 && !is_huge) {
		return NUM_BAD;
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
			return NUM_BAD;
		}
		end++;
	}
	if (*end != '\0') {
		return NUM_BAD;
	}
	if (is_huge || (shift > 0 && v > (UINT64_MAX >> shift))) {
		return NUM_HUGE;
	}
	*out = (uint64_t) v << shift;
	return NUM_OK;
}

/* num_parse is cli_parse_u64 and cli_parse_bytes. */
static int
num_parse(const cli_cmd *cmd, const char *name, const char *text,
    bool has_suffix, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t   v  = 0;
	num_result nr = num_read(text, has_suffix, &v);

	if (nr == NUM_BAD) {
		return cli_usage_error(cmd, "--%s: expected %s, got '%s'", name,
		    has_suffix ? "a size in bytes (e.g. 4096, 64K, 4M)"
		               : "a non-negative integer",
		    text);
	}
	// A number past 64 bits is past max too: say the range.
	if (nr == NUM_HUGE || v < min || v > max) {
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

int
cli_check_dir(const cli_cmd *cmd, const char *name, const char *text)
{
	if (text != NULL && text[0] == '\0') {
		return cli_usage_error(
		    cmd, "--%s: expected a directory, got ''", name);
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

/*
 * The parts of an ISO 8601 time as read, before they become an instant.
 * Each time_read_* function fills its own fields.
 */
typedef struct time_fields {
	int     year;       /* 0000..9999. */
	int     month;      /* 1..12. */
	int     day;        /* 1..the month's length. */
	int     hour;       /* 0..23. */
	int     min;        /* 0..59. */
	int     sec;        /* 0..59: no leap seconds, as in Unix time. */
	int64_t frac_ns;    /* Fraction of the second, truncated to ns. */
	int     offset_min; /* The zone's offset east of UTC, minutes. */
} time_fields;

#define TIME_NS_PER_S INT64_C(1000000000)

/* ISO 8601 offsets go to 23:59 either way; 24:00 would be a day. */
#define TIME_OFFSET_MAX_H 23

/*
 * time_digits reads exactly width ASCII digits at *p into *v and moves *p
 * past them. (sscanf's %d would also take a sign, spaces or fewer digits.)
 */
static bool
time_digits(const char **p, int width, int *v)
{
	int n = 0;

	for (int i = 0; i < width; i++) {
		if (!isdigit((unsigned char) (*p)[i])) {
			return false;
		}
		n = n * 10 + ((*p)[i] - '0');
	}
	*p += width;
	*v = n;
	return true;
}

/* time_char moves *p past c if c is there. */
static bool
time_char(const char **p, char c)
{
	if (**p != c) {
		return false;
	}
	(*p)++;
	return true;
}

/* time_month_days is the length of month (1..12) in year (Gregorian). */
static int
time_month_days(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
		31 };
	bool             is_leap;

	is_leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
	return month == 2 && is_leap ? 29 : days[month - 1];
}

/*
 * time_read_date reads "YYYY-MM-DD" at *p and moves *p past it. Returns
 * false if that is not there, also setting *why when it names no day.
 */
static bool
time_read_date(const char **p, time_fields *f, const char **why)
{
	if (!time_digits(p, 4, &f->year) || !time_char(p, '-') ||
	    !time_digits(p, 2, &f->month) || !time_char(p, '-') ||
	    !time_digits(p, 2, &f->day)) {
		return false;
	}
	if (f->month < 1 || f->month > 12) {
		*why = "no such month";
		return false;
	}
	if (f->day < 1 || f->day > time_month_days(f->year, f->month)) {
		*why = "no such day in that month";
		return false;
	}
	return true;
}

/*
 * time_read_clock reads "HH:MM[:SS[.fraction]]" at *p and moves *p past
 * it; a comma may stand for the dot, as ISO 8601 allows. Returns false if
 * that is not there, also setting *why when a field is out of range.
 */
static bool
time_read_clock(const char **p, time_fields *f, const char **why)
{
	int64_t scale = TIME_NS_PER_S;

	if (!time_digits(p, 2, &f->hour) || !time_char(p, ':') ||
	    !time_digits(p, 2, &f->min)) {
		return false;
	}
	if (time_char(p, ':')) {
		if (!time_digits(p, 2, &f->sec)) {
			return false;
		}
		if ((**p == '.' || **p == ',') &&
		    isdigit((unsigned char) (*p)[1])) {
			// Digits past the ninth are read and dropped, so the
			// instant is truncated to ns, never rounded up.
			for ((*p)++; isdigit((unsigned char) **p); (*p)++) {
				scale /= 10;
				f->frac_ns += (**p - '0') * scale;
			}
		}
	}
	if (f->hour > 23 || f->min > 59) {
		*why = "hour beyond 23 or minute beyond 59";
		return false;
	}
	if (f->sec > 59) {
		*why = "second beyond 59 (leap seconds are not accepted)";
		return false;
	}
	return true;
}

/*
 * time_read_zone reads the zone designator that must end the text at p:
 * "Z", or an offset from UTC "+HH:MM", "+HHMM" or "+HH" (or with '-').
 * Returns false if that is not there, also setting *why when it is
 * missing or out of range.
 */
static bool
time_read_zone(const char *p, time_fields *f, const char **why)
{
	int sign, hh, mm = 0;

	if (*p == 'Z' || *p == 'z') {
		return p[1] == '\0';
	}
	if (*p == '\0') {
		*why = "no Z or UTC offset (local time is not accepted)";
		return false;
	}
	if (*p != '+' && *p != '-') {
		return false;
	}
	sign = *p++ == '-' ? -1 : 1;
	if (!time_digits(&p, 2, &hh)) {
		return false;
	}
	if (*p != '\0') {
		(void) time_char(&p, ':');
		if (!time_digits(&p, 2, &mm) || *p != '\0') {
			return false;
		}
	}
	if (hh > TIME_OFFSET_MAX_H || mm > 59) {
		*why = "UTC offset beyond 23:59";
		return false;
	}
	f->offset_min = sign * (hh * 60 + mm);
	return true;
}

/*
 * time_iso reads an ISO 8601 time as ns since the epoch:
 * "YYYY-MM-DDTHH:MM[:SS[.fraction]]" and a zone designator ('t' or a
 * space may stand for the 'T'), or "YYYY-MM-DD" alone for midnight UTC.
 * Returns false if text is not one, also setting *why when it has the
 * form but names no instant that can be used: the date or time does not
 * exist, the zone is missing, or the instant is before 1970 or past the
 * last ns an int64_t counts (2262-04-11T23:47:16.854775807Z).
 */
static bool
time_iso(const char *t, int64_t *ns, const char **why)
{
	time_fields f = { 0 };
	int64_t     secs;

	if (!time_read_date(&t, &f, why)) {
		return false;
	}
	if (*t != '\0') {
		if (*t != 'T' && *t != 't' && *t != ' ') {
			return false;
		}
		t++;
		if (!time_read_clock(&t, &f, why) ||
		    !time_read_zone(t, &f, why)) {
			return false;
		}
	}
	secs = time_days(f.year, f.month, f.day) * 86400 + f.hour * 3600 +
	    f.min * 60 + f.sec - (int64_t) f.offset_min * 60;
	if (secs < 0 || secs > INT64_MAX / TIME_NS_PER_S ||
	    (secs == INT64_MAX / TIME_NS_PER_S &&
	        f.frac_ns > INT64_MAX % TIME_NS_PER_S)) {
		*why = "outside 1970-01-01T00:00:00Z..2262-04-11 (ns since "
		       "1970 in 64 bits)";
		return false;
	}
	*ns = secs * TIME_NS_PER_S + f.frac_ns;
	return true;
}

/*
 * dur_read reads "N[smhd]" (N seconds, minutes, hours or days) as ns.
 * NUM_HUGE: the right form, but longer than 64 bits of ns hold (about
 * 106751 days).
 */
static num_result
dur_read(const char *t, int64_t *ns)
{
	static const char    units[] = "smhd";
	static const int64_t secs[]  = { 1, 60, 3600, 86400 };
	size_t               len     = strlen(t);
	const char          *u;
	char                *end;
	unsigned long long   v;

	if (len < 2 || !isdigit((unsigned char) t[0]) ||
	    (u = strchr(units, t[len - 1])) == NULL ||
	    strspn(t, "0123456789") != len - 1) {
		return NUM_BAD;
	}
	errno = 0;
	v     = strtoull(t, &end, 10);
	if (errno == ERANGE ||
	    v > (uint64_t) INT64_MAX / 1000000000 / secs[u - units]) {
		return NUM_HUGE;
	}
	*ns = (int64_t) v * secs[u - units] * 1000000000;
	return NUM_OK;
}

/*
 * time_rel reads "-N[smhd]" as that long before now_ns. Returns false if
 * text is not one, also setting *why when it has the form but is too
 * long ago to count.
 */
static bool
time_rel(const char *t, int64_t now_ns, int64_t *ns, const char **why)
{
	int64_t    d  = 0;
	num_result nr = t[0] == '-' ? dur_read(t + 1, &d) : NUM_BAD;

	if (nr == NUM_HUGE) {
		*why = "too long ago (ns in 64 bits count about 106751d)";
	}
	if (nr != NUM_OK) {
		return false;
	}
	*ns = now_ns - d;
	return true;
}

int
cli_parse_duration(
    const cli_cmd *cmd, const char *name, const char *text, uint64_t *ms)
{
	int64_t    ns = 0;
	num_result nr = dur_read(text, &ns);

	if (nr == NUM_BAD) {
		return cli_usage_error(cmd,
		    "--%s: expected N followed by s, m, h or d (e.g. 90s, "
		    "15m, 24h, 7d), got '%s'",
		    name, text);
	}
	// Too long for 64 bits of ns is too long for every caller's range,
	// which then names it.
	*ms = nr == NUM_HUGE ? UINT64_MAX : (uint64_t) (ns / 1000000);
	return CLI_CONTINUE;
}

int
cli_parse_time(const cli_cmd *cmd, const char *name, const char *text,
    int64_t now_ns, int64_t *out)
{
	const char *why = NULL;

	if (!time_iso(text, out, &why) && !time_rel(text, now_ns, out, &why)) {
		return cli_usage_error(cmd,
		    "--%s: expected an ISO 8601 time with Z or a UTC offset "
		    "(2026-11-25T01:50:35Z, 2026-11-25T03:50:35.250+02:00), "
		    "a date (2026-11-25, midnight UTC) or -N followed by s, "
		    "m, h or d, got '%s'%s%s",
		    name, text, why != NULL ? ": " : "",
		    why != NULL ? why : "");
	}
	return CLI_CONTINUE;
}
