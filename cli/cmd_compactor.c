/*
 * cmd_compactor.c: `evbus compactor`, the compactor (compactor/compactor.h)
 * in its own process, beside `evbus run --no-compactor` or `evbus
 * collector` writing the same log.
 *
 * The main thread opens the log read-write (LMDB serialises its writers
 * across processes; the compactor writes only its named cursor there, so
 * that retention keeps what it has not projected), opens the compactor
 * on it, starts its thread, logs EVB-COMPACTOR-READY and then sleeps in
 * poll() on the signal pipe, waking every --stats-log ms to log
 * EVB-COMPACTOR-STATS. On SIGINT or SIGTERM it stops the thread (the
 * batch in hand commits), closes the compactor before the log it
 * borrows, and exits 0. A kill -9 loses nothing either: the position is
 * committed with the rows (compactor.h).
 *
 * The statistics line and the timed signal wait are shared with `evbus
 * run`, which runs the same compactor as a thread (cli.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>

#include "cli/cli.h"
#include "compactor/compactor.h"
#include "wal/wal.h"

#define COMPACTOR_STATS_MS 60000     /* --stats-log's default. */
#define COMPACTOR_MS_LIMIT 86400000u /* Longest --stats-log: a day. */

static int compactor_run(int argc, char **argv);

const cli_cmd cli_cmd_compactor = {
	.name    = "compactor",
	.summary = "Project a write-ahead log into query tables.",
	.help =
	    "usage: evbus compactor [--data DIR] [--no-sync] [--stats-log MS]\n"
	    "\n"
	    "Run the compactor in the foreground: project the write-ahead\n"
	    "log in DIR into the per-type tables in DIR/tables that 'evbus\n"
	    "query' and 'evbus trace' read (docs/tables.md), from where it\n"
	    "stopped, then every record as it is appended, until SIGINT or\n"
	    "SIGTERM. Run it beside 'evbus run --no-compactor' or 'evbus\n"
	    "collector' on the same DIR; it refuses to start (exit 2) while\n"
	    "another compactor writes DIR's tables. Its position is\n"
	    "committed with the rows it projected, so a crash loses or\n"
	    "doubles nothing: the next start resumes after the last row\n"
	    "stored. Once running, a line with the id\n"
	    "EVB-COMPACTOR-READY is logged on standard error, with its\n"
	    "position in the log and its lag (records not projected yet).\n"
	    "\n"
	    "Options:\n"
	    "  --data DIR         The data directory; its log is created\n"
	    "                     (mode 0700) if missing (default\n"
	    "                     ./evbus-data).\n"
	    "  --no-sync          Do not fsync the tables on each commit:\n"
	    "                     faster, but after a machine crash (not a\n"
	    "                     process crash) rebuild them with 'evbus\n"
	    "                     compact --rebuild'.\n"
	    "  --stats-log MS     Period of the EVB-COMPACTOR-STATS log line\n"
	    "                     (position, lag, counters, rate), 0 for\n"
	    "                     none (default 60000).\n"
	    "  -h, --help         Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 stopped by SIGINT or SIGTERM, 2 usage error, or\n"
	    "a log or tables that cannot be opened.\n",
	.run = compactor_run,
};

bool
cli_signal_wait_ms(int sig_fd, uint64_t timeout_ms)
{
	struct pollfd pfd = { .fd = sig_fd, .events = POLLIN };
	int           ms  = timeout_ms == 0 ? -1 : (int) timeout_ms;
	int           n;

	// EINTR comes with the signal's byte, which the next poll sees.
	while ((n = poll(&pfd, 1, ms)) < 0 && errno == EINTR) {
	}
	return n != 0;
}

void
cli_compactor_log(struct evb_compactor *c, evb_log_level level,
    const char *msg_id, cli_compactor_prev *prev)
{
	evb_compactor_stat st;
	uint64_t           now      = evb_clock_mono_ms();
	char               rate[48] = "";
	int                rc;

	if ((rc = evb_compactor_stats(c, &st)) != EVB_OK) {
		evb_log(EVB_LOG_WARNING, msg_id,
		    "cannot read the compactor's counters: %s",
		    evb_strerror(rc));
		return;
	}
	if (prev != NULL) {
		double secs = prev->at_ms != 0 && now > prev->at_ms
		    ? (double) (now - prev->at_ms) / 1000.0
		    : 0.0;

		if (secs > 0) {
			(void) snprintf(rate, sizeof(rate), " rate=%.0f/s",
			    (double) (st.events - prev->events) / secs);
		}
		prev->events = st.events;
		prev->at_ms  = now;
	}
	evb_log(level, msg_id,
	    "position=%llu log_last=%llu lag=%llu events=%llu gaps=%llu "
	    "bad=%llu missed=%llu%s txns=%llu step_failures=%llu "
	    "cursor_failures=%llu holds=%llu",
	    (unsigned long long) st.position,
	    (unsigned long long) st.wal_last_off, (unsigned long long) st.lag,
	    (unsigned long long) st.events, (unsigned long long) st.gaps,
	    (unsigned long long) st.bad, (unsigned long long) st.missed, rate,
	    (unsigned long long) st.txns, (unsigned long long) st.step_failures,
	    (unsigned long long) st.cursor_failures,
	    (unsigned long long) st.holds);
}

/* compactor_serve runs an opened compactor until a signal. */
static int
compactor_serve(evb_compactor *c, uint64_t stats_ms, int sig_fd)
{
	cli_compactor_prev prev = { 0, 0 };
	int                rc;

	if ((rc = evb_compactor_start(c)) != EVB_OK) {
		cli_error(
		    &cli_cmd_compactor, "cannot start: %s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	cli_compactor_log(c, EVB_LOG_NOTICE, "EVB-COMPACTOR-READY", &prev);
	while (!cli_signal_wait_ms(sig_fd, stats_ms)) {
		cli_compactor_log(
		    c, EVB_LOG_INFO, "EVB-COMPACTOR-STATS", &prev);
	}
	evb_compactor_stop(c);
	cli_compactor_log(c, EVB_LOG_NOTICE, "EVB-COMPACTOR-STOPPED", NULL);
	return CLI_EXIT_OK;
}

/* compactor_open opens the log and the compactor on it, or neither. */
static int
compactor_open(const char *data, const evb_compactor_opts *co, evb_wal **w,
    evb_compactor **c)
{
	evb_wal_opts wo;
	evb_diag     d = { "" };
	int          rc;

	evb_wal_opts_default(&wo);
	if ((rc = evb_wal_open(w, data, &wo, &d)) != EVB_OK) {
		cli_error(&cli_cmd_compactor, "cannot open the log in %s: %s",
		    data, cli_diag_text(&d, rc));
		return CLI_EXIT_USAGE;
	}
	if ((rc = evb_compactor_open(c, *w, data, co, &d)) != EVB_OK) {
		cli_error(&cli_cmd_compactor,
		    "cannot open the tables in %s: %s%s", data,
		    cli_diag_text(&d, rc),
		    rc == EVB_EVERSION || rc == EVB_ECORRUPT
		        ? "; rebuild them with 'evbus compact --rebuild'"
		        : "");
		evb_wal_close(*w);
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

static int
compactor_run(int argc, char **argv)
{
	const char   *data      = NULL;
	const char   *stats_log = NULL;
	bool          no_sync   = false;
	const cli_opt opts[]    = {
		   { "data", 0, NULL, &data },
		   { "no-sync", 0, &no_sync, NULL },
		   { "stats-log", 0, NULL, &stats_log },
		   { NULL, 0, NULL, NULL },
	};
	evb_compactor_opts co;
	evb_compactor     *c;
	evb_wal           *w;
	uint64_t           stats_ms = COMPACTOR_STATS_MS;
	int                first;
	int                sig_fd;
	int                rc;

	rc =
	    cli_opts_parse_max(&cli_cmd_compactor, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE ||
	    (rc = cli_check_dir(&cli_cmd_compactor, "data", data)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	if (stats_log != NULL &&
	    (rc = cli_parse_u64(&cli_cmd_compactor, "stats-log", stats_log, 0,
	         COMPACTOR_MS_LIMIT, &stats_ms)) != CLI_CONTINUE) {
		return rc;
	}
	data = data != NULL ? data : CLI_DATA_DEFAULT;
	evb_compactor_opts_default(&co);
	co.sync = !no_sync;
	if ((rc = cli_sig_open(&cli_cmd_compactor, &sig_fd)) != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = compactor_open(data, &co, &w, &c)) == CLI_CONTINUE) {
		rc = compactor_serve(c, stats_ms, sig_fd);
		// The compactor borrows the log: close it first.
		evb_compactor_close(c);
		evb_wal_close(w);
	}
	cli_sig_close();
	return rc;
}
