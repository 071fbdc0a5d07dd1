/*
 * cmd_collector.c: `evbus collector`, a collector (collector/collector.h)
 * in its own process, fed by a broker's bus and repaired through its
 * control endpoint.
 *
 * The main thread opens the collector (the WAL, then the sockets, which
 * dial in the background so the broker may come later), starts it, logs
 * EVB-COLLECTOR-READY and sleeps in poll() on the signal pipe until
 * SIGINT or SIGTERM; then it stops the collector (which stores the frames
 * in hand) and exits 0.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "collector/collector.h"

/* Longest --heartbeat and --stats-log: a day. */
#define COLLECTOR_MS_LIMIT 86400000u

static int collector_run(int argc, char **argv);

const cli_cmd cli_cmd_collector = {
	.name    = "collector",
	.summary = "Store a broker's events in a write-ahead log.",
	.help =
	    "usage: evbus collector --data DIR [--connect URL] [--ctl URL]\n"
	    "                       [--durability MODE] [--ingest URL]\n"
	    "                       [--heartbeat MS] [--stats-log MS]\n"
	    "                       [--retain-age AGE] [--retain-bytes BYTES]\n"
	    "\n"
	    "Subscribe to a broker's bus (nng sub0) and append every event,\n"
	    "in seq order, to the write-ahead log in DIR. A seq missing on\n"
	    "the bus (dropped, or published while the collector was down)\n"
	    "is fetched from the broker's ring through its control endpoint;\n"
	    "what the ring no longer holds is stored as a gap record. On\n"
	    "start it continues after the last event in the log. Once\n"
	    "running, a line with the id EVB-COLLECTOR-READY is logged on\n"
	    "standard error. SIGINT or SIGTERM stores what is in hand and\n"
	    "exits.\n"
	    "\n"
	    "Options:\n"
	    "  --data DIR         The log's directory, created (mode 0700)\n"
	    "                     if missing (required).\n"
	    "  --connect URL      The broker's bus URL (default\n"
	    "                     tcp://127.0.0.1:5570).\n"
	    "  --ctl URL          The broker's control URL (default\n"
	    "                     tcp://127.0.0.1:5573).\n"
	    "  --durability MODE  sync (fsync every batch), periodic\n"
	    "                     (fsync every 100 ms) or none (default\n"
	    "                     sync).\n"
	    "  --ingest URL       The broker's ingest URL, where the\n"
	    "                     collector sends its system_health\n"
	    "                     heartbeat (default tcp://127.0.0.1:5571).\n"
	    "  --heartbeat MS     Period of the heartbeat, 0 for none\n"
	    "                     (default 5000).\n"
	    "  --stats-log MS     Period of the EVB-COLL-STATS log line, 0\n"
	    "                     for none (default 60000).\n" CLI_RETAIN_HELP
	    "  -h, --help         Print this help and exit.\n"
	    "\n"
	    "BYTES may end in K, M or G (KiB, MiB, GiB).\n"
	    "\n"
	    "Exit status: 0 stopped by SIGINT or SIGTERM, 2 usage error or a\n"
	    "log that cannot be opened.\n",
	.run = collector_run,
};

/* collector_serve runs an opened collector until a signal. */
static int
collector_serve(evb_collector *c, const evb_collector_opts *o, int sig_fd)
{
	evb_collector_stat st;
	int                rc;

	// Where it continues from, read before the thread moves it on.
	evb_collector_stats(c, &st);
	if ((rc = evb_collector_start(c)) != EVB_OK) {
		cli_error(
		    &cli_cmd_collector, "cannot start: %s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	evb_log(EVB_LOG_NOTICE, "EVB-COLLECTOR-READY",
	    "bus %s, ctl %s, log %s: continuing after epoch %llu seq %llu",
	    o->sub_url, o->ctl_url, o->data_dir,
	    (unsigned long long) st.last_epoch,
	    (unsigned long long) st.last_seq);
	cli_signal_wait(sig_fd);
	evb_collector_stop(c);
	evb_collector_stats(c, &st);
	evb_log(EVB_LOG_NOTICE, "EVB-COLLECTOR-STOPPED",
	    "stopped: %llu stored, last epoch %llu seq %llu, %llu gaps "
	    "(%llu events), %llu lost unrecorded, %llu frames repaired",
	    (unsigned long long) st.appended,
	    (unsigned long long) st.last_epoch,
	    (unsigned long long) st.last_seq, (unsigned long long) st.gaps,
	    (unsigned long long) st.gap_events, (unsigned long long) st.lost,
	    (unsigned long long) st.repaired);
	return CLI_EXIT_OK;
}

/* CLI_RETAIN_BYTES_MIN: smaller limits would keep one record or none. */
#define CLI_RETAIN_BYTES_MIN ((uint64_t) 1 << 20)
/* CLI_RETAIN_AGE_MS_MAX: ten years, a bound on typing mistakes (the
   WAL's own limit is about 292 years). */
#define CLI_RETAIN_AGE_MS_MAX ((uint64_t) 3650 * 86400 * 1000)

int
cli_retain_fill(const cli_cmd *cmd, const char *age, const char *bytes,
    evb_collector_opts *o)
{
	int rc;

	if (age != NULL) {
		if ((rc = cli_parse_duration(cmd, "retain-age", age,
		         &o->retain_age_ms)) != CLI_CONTINUE) {
			return rc;
		}
		if (o->retain_age_ms == 0 ||
		    o->retain_age_ms > CLI_RETAIN_AGE_MS_MAX) {
			return cli_usage_error(cmd,
			    "--retain-age: expected 1s..3650d, got '%s'", age);
		}
	}
	if (bytes != NULL) {
		return cli_parse_bytes(cmd, "retain-bytes", bytes,
		    CLI_RETAIN_BYTES_MIN, UINT64_MAX, &o->retain_bytes);
	}
	return CLI_CONTINUE;
}

static int
collector_run(int argc, char **argv)
{
	const char   *data       = NULL;
	const char   *connect    = NULL;
	const char   *ctl        = NULL;
	const char   *durability = NULL;
	const char   *ingest     = NULL;
	const char   *heartbeat  = NULL;
	const char   *stats_log  = NULL;
	const char   *ret_age    = NULL;
	const char   *ret_bytes  = NULL;
	const cli_opt opts[]     = {
		    { "data", 0, NULL, &data },
		    { "connect", 0, NULL, &connect },
		    { "ctl", 0, NULL, &ctl },
		    { "durability", 0, NULL, &durability },
		    { "ingest", 0, NULL, &ingest },
		    { "heartbeat", 0, NULL, &heartbeat },
		    { "stats-log", 0, NULL, &stats_log },
		    { "retain-age", 0, NULL, &ret_age },
		    { "retain-bytes", 0, NULL, &ret_bytes },
		    { NULL, 0, NULL, NULL },
	};
	evb_collector_opts o;
	evb_collector     *c;
	evb_diag           diag = { "" };
	int                mode = EVB_WAL_SYNC;
	int                first;
	int                sig_fd;
	int                rc;

	rc =
	    cli_opts_parse_max(&cli_cmd_collector, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (data == NULL) {
		return cli_usage_error(
		    &cli_cmd_collector, "--data is required");
	}
	if ((rc = cli_check_dir(&cli_cmd_collector, "data", data)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_url_check(&cli_cmd_collector, "connect", connect)) !=
	        CLI_CONTINUE ||
	    (rc = cli_url_check(&cli_cmd_collector, "ctl", ctl)) !=
	        CLI_CONTINUE ||
	    (rc = cli_url_check(&cli_cmd_collector, "ingest", ingest)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	if (durability != NULL &&
	    (rc = cli_parse_durability(
	         &cli_cmd_collector, durability, &mode)) != CLI_CONTINUE) {
		return rc;
	}
	evb_collector_opts_default(&o);
	if ((heartbeat != NULL &&
	        (rc = cli_parse_u64(&cli_cmd_collector, "heartbeat", heartbeat,
	             0, COLLECTOR_MS_LIMIT, &o.heartbeat_ms)) !=
	            CLI_CONTINUE) ||
	    (stats_log != NULL &&
	        (rc = cli_parse_u64(&cli_cmd_collector, "stats-log", stats_log,
	             0, COLLECTOR_MS_LIMIT, &o.stats_log_ms)) !=
	            CLI_CONTINUE) ||
	    (rc = cli_retain_fill(
	         &cli_cmd_collector, ret_age, ret_bytes, &o)) != CLI_CONTINUE) {
		return rc;
	}
	o.heartbeat_url = ingest != NULL ? ingest : o.heartbeat_url;
	o.data_dir      = data;
	o.durability    = (evb_wal_durability) mode;
	o.sub_url       = connect != NULL ? connect : o.sub_url;
	o.ctl_url       = ctl != NULL ? ctl : o.ctl_url;
	if ((rc = cli_sig_open(&cli_cmd_collector, &sig_fd)) != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = evb_collector_open(&c, &o, &diag)) != EVB_OK) {
		cli_error(&cli_cmd_collector, "cannot start: %s",
		    cli_diag_text(&diag, rc));
		cli_sig_close();
		return CLI_EXIT_USAGE;
	}
	rc = collector_serve(c, &o, sig_fd);
	evb_collector_stop(c);
	cli_close_deadline(rc);
	evb_collector_close(c);
	cli_sig_close();
	return rc;
}
