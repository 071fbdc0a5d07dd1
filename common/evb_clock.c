/*
 * evb_clock.c: monotonic and wall clocks. Durations and deadlines use the
 * monotonic clock; event timestamps use the wall clock in nanoseconds.
 */
#include <stdio.h>
#include <time.h>

#include "common/common.h"

uint64_t
evb_clock_mono_ns(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

uint64_t
evb_clock_mono_ms(void)
{
	return evb_clock_mono_ns() / 1000000u;
}

int64_t
evb_clock_real_ns(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + (int64_t) ts.tv_nsec;
}

void
evb_clock_format_iso(int64_t ns, char *buf, size_t cap)
{
	struct tm tm;
	time_t    secs = (time_t) (ns / 1000000000);
	int64_t   rem  = ns % 1000000000;

	if (rem < 0) {
		// Floor division, so times before 1970 still format correctly.
		rem += 1000000000;
		secs -= 1;
	}
	if (gmtime_r(&secs, &tm) == NULL) {
		(void) snprintf(buf, cap, "invalid-time");
		return;
	}
	(void) snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int) (rem / 1000000));
}
