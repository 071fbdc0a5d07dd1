/*
 * cmd_run.c: `evbus run`, the broker (broker/broker.h), an in-process
 * collector (collector/collector.h) and the compactor
 * (compactor/compactor.h) as threads of one process.
 *
 * The collector reads the broker's ring directly (evb_broker_read, passed
 * to it as its read callback), so the WAL receives batches without the
 * per-message cost of the bus. The main thread opens both, starts them,
 * logs EVB-RUN-READY and sleeps in poll() on the signal pipe. On SIGINT
 * or SIGTERM it stops the broker first (no more ingest; the message in
 * hand is still published), then the collector, which drains the ring to
 * the WAL until the broker reports it closed, and exits 0.
 *
 * The compactor projects the WAL into the query tables through the
 * collector's own WAL handle (evb_collector_wal: LMDB allows one handle
 * per environment and process), so it is opened and started after the
 * collector, and stopped and closed before it: projecting what the
 * collector stores while it stops is left to the next start (the
 * position is durable with the rows). While they run, the main thread
 * wakes every --stats-log ms to log EVB-COMPACTOR-STATS.
 *
 * Confirmed ingest: the collector's callbacks report to the broker what
 * is durable (and what was lost or was a duplicate), and the broker sends
 * the held replies (broker.h, evb_broker_durable).
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "collector/collector.h"
#include "compactor/compactor.h"

#define RUN_CONFIRM_URL "tcp://127.0.0.1:5572" /* --confirm's default. */
#define RUN_URL_MAX 512 /* The heartbeat's URL, derived from --ingest. */

static int run_run(int argc, char **argv);

/* The components of the process, for the stats callback and the
 * compactor's hold. Set before the broker starts, so its control thread
 * and the compactor's only read them. */
typedef struct run_parts {
	evb_broker    *b;
	evb_collector *c;
	size_t         ring_cap; /* The ring's capacity, bytes. */
} run_parts;

const cli_cmd cli_cmd_run = {
	.name    = "run",
	.summary = "Run the broker, collector and compactor in one process.",
	.help =
	    "usage: evbus run [--data DIR] [--durability MODE] [--pub URL]\n"
	    "                 [--ingest URL] [--confirm URL] [--ctl URL]\n"
	    "                 [--max-msg BYTES] [--ring BYTES]\n"
	    "                 [--heartbeat MS] [--stats-log MS]\n"
	    "                 [--no-compactor] [--compactor-nice N]\n"
	    "                 [--retain-age AGE] [--retain-bytes BYTES]\n"
	    "\n"
	    "Run the whole bus in the foreground: the broker (as 'evbus\n"
	    "broker') and a collector that reads the broker's ring in\n"
	    "process and appends every event, in seq order, to the\n"
	    "write-ahead log in DIR. Events the ring no longer held when the\n"
	    "collector came to them are stored as a gap record. Confirmed\n"
	    "ingest (nng req0 to the confirm endpoint, 'evbus publish\n"
	    "--confirm') replies with each event's seq once the event is in\n"
	    "the log. A compactor projects the log into the tables in\n"
	    "DIR/tables that 'evbus query' and 'evbus trace' read (fsync'd\n"
	    "per commit in sync mode only). Once they all run, a line with\n"
	    "the id EVB-RUN-READY is logged on standard error. SIGINT or\n"
	    "SIGTERM stops ingest, lets the collector store everything\n"
	    "published, and exits. The next start continues the log (in a\n"
	    "new epoch), and the compactor where it stopped.\n"
	    "\n"
	    "Options:\n"
	    "  --data DIR         The log's directory, created (mode 0700)\n"
	    "                     if missing (default ./evbus-data).\n"
	    "  --durability MODE  sync (fsync every batch), periodic\n"
	    "                     (fsync every 100 ms) or none (default\n"
	    "                     sync).\n"
	    "  --pub URL          Bus listen URL (default\n"
	    "                     tcp://127.0.0.1:5570).\n"
	    "  --ingest URL       Ingest listen URL (default\n"
	    "                     tcp://127.0.0.1:5571).\n"
	    "  --confirm URL      Confirmed ingest listen URL (default\n"
	    "                     tcp://127.0.0.1:5572).\n"
	    "  --ctl URL          Control listen URL (default\n"
	    "                     tcp://127.0.0.1:5573).\n"
	    "  --max-msg BYTES    Largest ingest message (default 4M).\n"
	    "  --ring BYTES       Repair ring size, at least 128K (default\n"
	    "                     256M).\n"
	    "  --heartbeat MS     Period of the broker's and the collector's\n"
	    "                     system_health events, 0 for none\n"
	    "                     (default 5000).\n"
	    "  --stats-log MS     Period of the EVB-BROKER-STATS,\n"
	    "                     EVB-COLL-STATS and EVB-COMPACTOR-STATS\n"
	    "                     log lines, 0 for none (default 60000).\n"
	    "  --no-compactor     Run no compactor (run 'evbus compactor'\n"
	    "                     on DIR instead, or none).\n"
	    "  --compactor-nice N Run the compactor thread N lower (0-19,\n"
	    "                     as nice(1); default 10), so that when the\n"
	    "                     CPU is short ingest and the log come\n"
	    "                     first and the tables fall "
	    "behind.\n" CLI_RETAIN_HELP
	    "  -h, --help         Print this help and exit.\n"
	    "\n"
	    "BYTES may end in K, M or G (KiB, MiB, GiB).\n"
	    "\n"
	    "Exit status: 0 stopped by SIGINT or SIGTERM, 2 usage error, an\n"
	    "endpoint that cannot listen, or a log that cannot be opened.\n",
	.run = run_run,
};

/* run_read is the collector's read callback: the broker's ring. */
static int
run_read(void *arg, uint64_t from, size_t max_frames, size_t max_bytes,
    uint64_t timeout_ms, evb_buf *out, size_t *n, uint64_t *first)
{
	return evb_broker_read(
	    arg, from, max_frames, max_bytes, timeout_ms, out, n, first);
}

static void
run_durable(void *arg, uint64_t epoch, uint64_t seq)
{
	evb_broker_durable(arg, epoch, seq);
}

static void
run_gap(void *arg, uint64_t epoch, uint64_t first, uint64_t last)
{
	evb_broker_lost(arg, epoch, first, last);
}

static void
run_dup(void *arg, uint64_t epoch, uint64_t seq, uint64_t orig_epoch,
    uint64_t orig_seq)
{
	evb_broker_duplicate(arg, epoch, seq, orig_epoch, orig_seq);
}

/* run_extra_add appends one counter of section to x (n of cap used). */
static void
run_extra_add(evb_broker_extra *x, size_t cap, size_t *n, const char *section,
    const char *key, uint64_t v)
{
	if (*n < cap) {
		x[*n] = (evb_broker_extra) { section, key, v };
		(*n)++;
	}
}

/*
 * run_stats_extra gives the control endpoint's stats reply the
 * collector's counters (arg: a run_parts), so `evbus stats --ctl` shows
 * the whole process.
 */
static size_t
run_stats_extra(void *arg, evb_broker_extra *x, size_t cap)
{
	const run_parts   *p = arg;
	evb_collector_stat s;
	size_t             n = 0;

	if (p->c == NULL) {
		return 0;
	}
	evb_collector_stats(p->c, &s);
#define RUN_COLL(f) run_extra_add(x, cap, &n, "collector", #f, s.f)
	RUN_COLL(appended);
	RUN_COLL(bytes);
	RUN_COLL(batches);
	RUN_COLL(duplicates);
	RUN_COLL(stale);
	RUN_COLL(gaps);
	RUN_COLL(gap_events);
	RUN_COLL(lost);
	RUN_COLL(bad_frames);
	RUN_COLL(append_errors);
	RUN_COLL(epochs);
	RUN_COLL(last_epoch);
	RUN_COLL(last_seq);
	RUN_COLL(commit_last_us);
	RUN_COLL(commit_max_us);
	RUN_COLL(heartbeats);
#undef RUN_COLL
	return n;
}

/* How much lower the compactor thread runs than ingest and the log,
 * by default (--compactor-nice). The tables are a projection of the log
 * that can catch up; events waiting for the log cannot. On two busy cores
 * asked for 500 k events/s, 10 stored 11-28% more events in 8 s than 0;
 * at 100 k events/s the compactor kept up either way (docs/benchmarks.md,
 * "The compactor's priority"). */
#define RUN_COMPACTOR_NICE 10

/* run_wait sleeps until a signal, logging the compactor's line. */
static void
run_wait(evb_compactor *cp, uint64_t stats_ms, int sig_fd)
{
	cli_compactor_prev prev = { 0, 0 };

	if (cp == NULL || stats_ms == 0) {
		cli_signal_wait(sig_fd);
		return;
	}
	cli_compactor_log(cp, EVB_LOG_INFO, "EVB-COMPACTOR-STATS", &prev);
	while (!cli_signal_wait_ms(sig_fd, stats_ms)) {
		cli_compactor_log(
		    cp, EVB_LOG_INFO, "EVB-COMPACTOR-STATS", &prev);
	}
}

/*
 * run_serve starts them all (the compactor cp may be NULL), waits for a
 * signal and stops them all.
 */
static int
run_serve(evb_broker *b, evb_collector *c, evb_compactor *cp,
    const evb_broker_opts *bo, const char *dir, int sig_fd)
{
	evb_broker_stat    bs;
	evb_collector_stat cs;
	int                rc;

	if ((rc = evb_broker_start(b)) != EVB_OK ||
	    (rc = evb_collector_start(c)) != EVB_OK ||
	    (cp != NULL && (rc = evb_compactor_start(cp)) != EVB_OK)) {
		cli_error(&cli_cmd_run, "cannot start: %s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	evb_broker_stats(b, &bs);
	evb_log(EVB_LOG_NOTICE, "EVB-RUN-READY",
	    "listening: pub %s, ingest %s, confirm %s, ctl %s; epoch %llu; "
	    "log %s",
	    bo->pub_url, bo->ingest_url, bo->confirm_url, bo->ctl_url,
	    (unsigned long long) bs.epoch, dir);
	run_wait(cp, bo->stats_log_ms, sig_fd);
	evb_log(EVB_LOG_NOTICE, "EVB-RUN-STOPPING",
	    "signal received: no more ingest; storing what was published");
	evb_broker_stop(b);
	if (cp != NULL) {
		evb_compactor_stop(cp);
		cli_compactor_log(
		    cp, EVB_LOG_NOTICE, "EVB-COMPACTOR-STOPPED", NULL);
	}
	evb_collector_stop(c);
	evb_broker_stats(b, &bs);
	evb_collector_stats(c, &cs);
	evb_log(EVB_LOG_NOTICE, "EVB-RUN-STOPPED",
	    "stopped: epoch %llu, last seq %llu published; %llu stored, "
	    "the log's last at seq %llu of epoch %llu; %llu gaps (%llu "
	    "events), %llu lost unrecorded",
	    (unsigned long long) bs.epoch, (unsigned long long) bs.last_seq,
	    (unsigned long long) cs.appended, (unsigned long long) cs.last_seq,
	    (unsigned long long) cs.last_epoch, (unsigned long long) cs.gaps,
	    (unsigned long long) cs.gap_events, (unsigned long long) cs.lost);
	return CLI_EXIT_OK;
}

/* run_open opens the broker and the collector, or neither. */
static int
run_open(const evb_broker_opts *bo, evb_collector_opts *co, evb_broker **b,
    evb_collector **c)
{
	evb_broker_stat st;
	evb_diag        diag = { "" };
	int             rc;

	if ((rc = evb_broker_open(b, bo, &diag)) != EVB_OK) {
		cli_error(&cli_cmd_run, "cannot start the broker: %s",
		    cli_diag_text(&diag, rc));
		return CLI_EXIT_USAGE;
	}
	evb_broker_stats(*b, &st);
	co->read_fn      = run_read;
	co->read_arg     = *b;
	co->read_epoch   = st.epoch;
	co->on_durable   = run_durable;
	co->on_gap       = run_gap;
	co->on_duplicate = run_dup;
	co->durable_arg  = *b;
	if ((rc = evb_collector_open(c, co, &diag)) != EVB_OK) {
		if (rc == EVB_ETRANSPORT) {
			// With read_fn, the collector's one socket is its
			// heartbeat's, dialling the ingest endpoint.
			cli_error(&cli_cmd_run,
			    "cannot start the collector's heartbeat, which "
			    "dials the ingest endpoint (--ingest): %s",
			    cli_diag_text(&diag, rc));
		} else {
			cli_error(&cli_cmd_run, "cannot open the log in %s: %s",
			    co->data_dir, cli_diag_text(&diag, rc));
		}
		evb_broker_close(*b);
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

/*
 * run_hold holds the compactor back while the collector is more than a
 * quarter of the ring behind the broker. On two cores the three threads
 * share the CPU evenly, and the compactor costs the most per event: under
 * a load above what all three can do, the collector fell so far behind
 * that the ring evicted frames it had not stored, which became gap
 * records (docs/benchmarks.md). The tables are derived and catch up
 * later; the log cannot. Its bytes behind are estimated from the frames
 * behind and the ring's mean frame size.
 */
static bool
run_hold(void *arg)
{
	const run_parts   *p = arg;
	evb_broker_stat    bs;
	evb_collector_stat cs;
	uint64_t           behind;
	uint64_t           held;

	evb_broker_stats(p->b, &bs);
	evb_collector_stats(p->c, &cs);
	if (bs.ring_first_seq == 0 || bs.last_seq < bs.ring_first_seq) {
		return false;
	}
	// Until the collector stores its first frame of this epoch, all of
	// it is behind.
	behind = cs.last_epoch == bs.epoch && cs.last_seq <= bs.last_seq
	    ? bs.last_seq - cs.last_seq
	    : bs.last_seq;
	held   = bs.last_seq - bs.ring_first_seq + 1;
	return (double) behind * ((double) bs.ring_bytes / (double) held) >
	    (double) p->ring_cap / 4;
}

/* run_compactor opens the compactor on the collector's WAL handle. */
static int
run_compactor(
    run_parts *parts, const char *dir, int mode, int nice, evb_compactor **cp)
{
	evb_compactor_opts o;
	evb_diag           diag = { "" };
	int                rc;

	evb_compactor_opts_default(&o);
	// The tables are derived data: as durable as the log, no more.
	o.sync = mode == EVB_WAL_SYNC;
	o.nice = nice;
	// The collector appends to the same WAL handle: the cursor rides
	// in its appends, so the (lower-priority) compactor thread never
	// holds the log's writer lock while behind.
	o.cursor_note = true;
	o.hold        = run_hold;
	o.hold_arg    = parts;
	if ((rc = evb_compactor_open(
	         cp, evb_collector_wal(parts->c), dir, &o, &diag)) != EVB_OK) {
		cli_error(&cli_cmd_run, "cannot open the tables in %s: %s%s",
		    dir, cli_diag_text(&diag, rc),
		    rc == EVB_EVERSION || rc == EVB_ECORRUPT
		        ? "; rebuild them with 'evbus compact --rebuild', or "
		          "run with --no-compactor"
		        : "");
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

static int
run_run(int argc, char **argv)
{
	cli_broker_args a            = { 0 };
	const char     *data         = NULL;
	const char     *durability   = NULL;
	const char     *confirm      = NULL;
	const char     *cnice        = NULL;
	const char     *ret_age      = NULL;
	const char     *ret_bytes    = NULL;
	uint64_t        nice         = RUN_COMPACTOR_NICE;
	bool            no_compactor = false;
	const cli_opt   opts[]       = {
		        { "data", 0, NULL, &data },
		        { "durability", 0, NULL, &durability },
		        { "pub", 0, NULL, &a.pub },
		        { "ingest", 0, NULL, &a.ingest },
		        { "confirm", 0, NULL, &confirm },
		        { "ctl", 0, NULL, &a.ctl },
		        { "max-msg", 0, NULL, &a.max_msg },
		        { "ring", 0, NULL, &a.ring },
		        { "heartbeat", 0, NULL, &a.heartbeat },
		        { "stats-log", 0, NULL, &a.stats_log },
		        { "no-compactor", 0, &no_compactor, NULL },
		        { "compactor-nice", 0, NULL, &cnice },
		        { "retain-age", 0, NULL, &ret_age },
		        { "retain-bytes", 0, NULL, &ret_bytes },
		        { NULL, 0, NULL, NULL },
	};
	evb_broker_opts    bo;
	evb_collector_opts co;
	char               hb_url[RUN_URL_MAX];
	evb_broker        *b;
	evb_collector     *c;
	evb_compactor     *cp    = NULL;
	run_parts          parts = { NULL };
	int                mode  = EVB_WAL_SYNC;
	int                first;
	int                sig_fd;
	int                rc;

	rc = cli_opts_parse_max(&cli_cmd_run, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_check_dir(&cli_cmd_run, "data", data)) != CLI_CONTINUE ||
	    (rc = cli_broker_opts_fill(&cli_cmd_run, &a, &bo)) !=
	        CLI_CONTINUE ||
	    (rc = cli_url_check(&cli_cmd_run, "confirm", confirm)) !=
	        CLI_CONTINUE ||
	    (durability != NULL &&
	        (rc = cli_parse_durability(&cli_cmd_run, durability, &mode)) !=
	            CLI_CONTINUE) ||
	    (cnice != NULL &&
	        (rc = cli_parse_u64(&cli_cmd_run, "compactor-nice", cnice, 0,
	             19, &nice)) != CLI_CONTINUE)) {
		return rc;
	}
	bo.confirm_url     = confirm != NULL ? confirm : RUN_CONFIRM_URL;
	bo.stats_extra     = run_stats_extra;
	bo.stats_extra_arg = &parts;
	evb_collector_opts_default(&co);
	if ((rc = cli_retain_fill(&cli_cmd_run, ret_age, ret_bytes, &co)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	co.data_dir   = data != NULL ? data : CLI_DATA_DEFAULT;
	co.durability = (evb_wal_durability) mode;
	// The collector's heartbeat goes in through the broker's own ingest,
	// dialled where --ingest listens ("tcp://*:..." cannot be dialled).
	if (cli_url_dialable(bo.ingest_url, hb_url, sizeof(hb_url)) != EVB_OK) {
		return cli_usage_error(&cli_cmd_run,
		    "--ingest: a URL of at most %d bytes, got %zu",
		    RUN_URL_MAX - 1, strlen(bo.ingest_url));
	}
	co.heartbeat_ms  = bo.heartbeat_ms;
	co.heartbeat_url = hb_url;
	co.stats_log_ms  = bo.stats_log_ms;
	if ((rc = cli_sig_open(&cli_cmd_run, &sig_fd)) != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = run_open(&bo, &co, &b, &c)) == CLI_CONTINUE) {
		parts.b        = b;
		parts.c        = c;
		parts.ring_cap = bo.ring_bytes;
		if (no_compactor ||
		    (rc = run_compactor(&parts, co.data_dir, mode, (int) nice,
		         &cp)) == CLI_CONTINUE) {
			rc = run_serve(b, c, cp, &bo, co.data_dir, sig_fd);
		}
		evb_broker_stop(b);
		// The compactor borrows the collector's WAL: close it first.
		evb_compactor_close(cp);
		evb_collector_stop(c);
		cli_close_deadline(rc);
		evb_collector_close(c);
		evb_broker_close(b);
	}
	cli_sig_close();
	return rc;
}
