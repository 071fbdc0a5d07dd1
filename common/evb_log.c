/*
 * evb_log.c: the one logging facility. A line is formatted once into a
 * stack buffer and handed to the sink, so concurrent threads never
 * interleave within a line (the stderr sink writes it with one fputs).
 *
 * The sink and level are the only globals evbus allows besides the
 * shutdown flag; they are set before threads start and read after.
 */
#include <stdio.h>

#include "common/common.h"

#define LOG_LINE_MAX 1024 /* Longest message; longer ones are truncated. */

static void log_stderr_sink(
    void *arg, evb_log_level level, const char *id, const char *msg);

static evb_log_sink  log_sink      = log_stderr_sink;
static void         *log_sink_arg  = NULL;
static evb_log_level log_max_level = EVB_LOG_INFO;

const char *
evb_log_level_name(evb_log_level level)
{
	switch (level) {
	case EVB_LOG_ERR:
		return "ERR";
	case EVB_LOG_WARNING:
		return "WARNING";
	case EVB_LOG_NOTICE:
		return "NOTICE";
	case EVB_LOG_INFO:
		return "INFO";
	case EVB_LOG_DEBUG:
		return "DEBUG";
	}
	return "UNKNOWN";
}

static void
log_stderr_sink(void *arg, evb_log_level level, const char *id, const char *msg)
{
	char ts[EVB_CLOCK_ISO_MAX];
	char line[LOG_LINE_MAX + 128];

	(void) arg;
	evb_clock_format_iso(evb_clock_real_ns(), ts, sizeof(ts));
	(void) snprintf(line, sizeof(line), "%s %s %s %s\n", ts,
	    evb_log_level_name(level), id, msg);
	(void) fputs(line, stderr);
}

void
evb_log_set_sink(evb_log_sink sink, void *arg)
{
	log_sink     = sink != NULL ? sink : log_stderr_sink;
	log_sink_arg = sink != NULL ? arg : NULL;
}

void
evb_log_set_level(evb_log_level level)
{
	log_max_level = level;
}

void
evb_log(evb_log_level level, const char *id, const char *fmt, ...)
{
	char    msg[LOG_LINE_MAX];
	va_list ap;

	if (level > log_max_level) {
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_sink(log_sink_arg, level, id, msg);
}

bool
evb_ratelimit_allow(
    evb_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed_out)
{
	if (rl->used == 0 || now_ms - rl->window_start >= rl->window_ms) {
		rl->window_start = now_ms;
		rl->used         = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return false;
	}
	rl->used++;
	if (suppressed_out != NULL) {
		*suppressed_out = rl->suppressed;
	}
	rl->suppressed = 0;
	return true;
}
