/*
 * cmd_compact.c: `evbus compact [--rebuild]`, one pass of the compactor
 * (compactor/compactor.h) over a write-ahead log, then exit.
 *
 * Without --rebuild it projects what follows the stored position, up to
 * the log's last record when it starts (so a log that keeps growing does
 * not keep it running). With --rebuild it opens the tables with
 * opts.rebuild, the one way to open tables of another format version,
 * and projects the whole log again with evb_compactor_rebuild: this is
 * how a table format change is migrated, and how tables are checked
 * against the log (rebuild a copy, compare the answers).
 *
 * The log is opened read-only, so compact runs beside a writer and never
 * creates a log where there is none; the compactor then keeps no WAL
 * cursor (compactor.h allows that only on a read-only handle). Only one
 * compactor writes the tables at a time: open takes their writer lock
 * (compactor.c, open_lock) and fails with EVB_EBUSY while another
 * compactor (evbus run's, evbus compactor, another compact) holds it.
 *
 * A crash in the middle is harmless: the tables are consistent at every
 * commit, and the next compact or compactor resumes from there.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli/cli.h"
#include "compactor/compactor.h"
#include "wal/wal.h"

static int compact_run(int argc, char **argv);

const cli_cmd cli_cmd_compact = {
	.name    = "compact",
	.summary = "Project a log into the query tables once (or rebuild).",
	.help =
	    "usage: evbus compact [--rebuild] [--data DIR]\n"
	    "\n"
	    "Project the write-ahead log in DIR into the tables in\n"
	    "DIR/tables once, and exit: the records after the compactor's\n"
	    "position, up to the last one in the log when compact starts.\n"
	    "With --rebuild, drop every table and project the whole log\n"
	    "again from its first record: after a table format change (a\n"
	    "query then says to), or to check the tables against the log.\n"
	    "Only one compactor writes the tables at a time: while 'evbus\n"
	    "compactor' or an 'evbus run' without --no-compactor works on\n"
	    "DIR, compact refuses to start (exit 2). The log is opened\n"
	    "read-only. Prints the records projected (events, gap records,\n"
	    "bad records, records retention removed first), the position\n"
	    "reached and the time it took.\n"
	    "\n"
	    "Options:\n"
	    "  --rebuild     Drop the tables and project the whole log.\n"
	    "  --data DIR    The data directory (default ./evbus-data).\n"
	    "  -h, --help    Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success, 1 some records failed their check or\n"
	    "did not decode (counted as bad, not projected; see 'evbus wal\n"
	    "verify'), 2 usage error, no log in DIR, or tables that cannot\n"
	    "be opened or written.\n",
	.run = compact_run,
};

/* compact_catch_up projects the records after the position, up to the
 * log's last record now: each step is capped at the offsets left before
 * it, so records appended meanwhile (by a running collector) are left
 * for the next pass. */
static int
compact_catch_up(evb_compactor *c, evb_diag *d)
{
	evb_compactor_opts o;
	evb_compactor_stat st;
	size_t             done = 1;
	uint64_t           end;
	int                rc;

	evb_compactor_opts_default(&o);
	if ((rc = evb_compactor_stats(c, &st)) != EVB_OK) {
		return rc;
	}
	end = st.wal_last_off;
	while (done > 0 && st.position < end) {
		size_t max = end - st.position < o.batch_records
		    ? (size_t) (end - st.position)
		    : o.batch_records;

		if ((rc = evb_compactor_step(c, max, &done, d)) != EVB_OK ||
		    (rc = evb_compactor_stats(c, &st)) != EVB_OK) {
			return rc;
		}
	}
	return EVB_OK;
}

/* compact_report prints what the pass did: the counters' growth. */
static int
compact_report(evb_compactor *c, const evb_compactor_stat *before,
    bool is_rebuild, uint64_t start_ms)
{
	evb_compactor_stat st;
	uint64_t           ev, gaps, bad, missed;
	int                rc;

	if ((rc = evb_compactor_stats(c, &st)) != EVB_OK) {
		cli_error(&cli_cmd_compact, "cannot read the counters: %s",
		    evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	ev     = st.events - before->events;
	gaps   = st.gaps - before->gaps;
	bad    = st.bad - before->bad;
	missed = st.missed - before->missed;
	printf("%s: %" PRIu64 " records projected (%" PRIu64 " events, %" PRIu64
	       " gap records, %" PRIu64 " bad, %" PRIu64
	       " missed); position %" PRIu64 ", log last %" PRIu64
	       ", lag %" PRIu64 "; %.3f s\n",
	    is_rebuild ? "rebuilt" : "compacted", ev + gaps + bad + missed, ev,
	    gaps, bad, missed, st.position, st.wal_last_off, st.lag,
	    (double) (evb_clock_mono_ms() - start_ms) / 1000.0);
	if (bad > 0) {
		cli_error(&cli_cmd_compact,
		    "%" PRIu64 " records failed their check or did not decode "
		    "(logged as EVB-COMP-BAD); run 'evbus wal verify'",
		    bad);
		return CLI_EXIT_DATA;
	}
	return CLI_EXIT_OK;
}

/* compact_pass runs one pass on the opened log. */
static int
compact_pass(evb_wal *w, const char *data, bool is_rebuild)
{
	evb_compactor_opts co;
	evb_compactor_stat before = { 0 };
	evb_compactor     *c;
	evb_diag           d     = { "" };
	uint64_t           start = evb_clock_mono_ms();
	int                rc;

	evb_compactor_opts_default(&co);
	co.wal_cursor = NULL;
	co.rebuild    = is_rebuild;
	if ((rc = evb_compactor_open(&c, w, data, &co, &d)) != EVB_OK) {
		cli_error(&cli_cmd_compact,
		    "cannot open the tables in %s: %s%s", data,
		    cli_diag_text(&d, rc),
		    !is_rebuild && (rc == EVB_EVERSION || rc == EVB_ECORRUPT)
		        ? "; rebuild them with 'evbus compact --rebuild'"
		        : "");
		return CLI_EXIT_USAGE;
	}
	if (!is_rebuild && (rc = evb_compactor_stats(c, &before)) != EVB_OK) {
		cli_error(&cli_cmd_compact, "cannot read the counters: %s",
		    evb_strerror(rc));
		evb_compactor_close(c);
		return CLI_EXIT_USAGE;
	}
	rc =
	    is_rebuild ? evb_compactor_rebuild(c, &d) : compact_catch_up(c, &d);
	if (rc != EVB_OK) {
		cli_error(&cli_cmd_compact, "%s: %s",
		    is_rebuild ? "rebuild" : "projection",
		    cli_diag_text(&d, rc));
		rc = CLI_EXIT_USAGE;
	} else {
		rc = compact_report(c, &before, is_rebuild, start);
	}
	evb_compactor_close(c);
	return rc;
}

static int
compact_run(int argc, char **argv)
{
	const char   *data       = NULL;
	bool          is_rebuild = false;
	const cli_opt opts[]     = {
		    { "rebuild", 0, &is_rebuild, NULL },
		    { "data", 0, NULL, &data },
		    { NULL, 0, NULL, NULL },
	};
	evb_wal_opts wo;
	evb_wal     *w;
	evb_diag     d = { "" };
	int          first;
	int          rc;

	rc = cli_opts_parse_max(&cli_cmd_compact, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE ||
	    (rc = cli_check_dir(&cli_cmd_compact, "data", data)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	data = data != NULL ? data : CLI_DATA_DEFAULT;
	evb_wal_opts_default(&wo);
	wo.read_only = true;
	if ((rc = evb_wal_open(&w, data, &wo, &d)) != EVB_OK) {
		cli_error(&cli_cmd_compact, "cannot open the log in %s: %s",
		    data, cli_diag_text(&d, rc));
		return CLI_EXIT_USAGE;
	}
	rc = compact_pass(w, data, is_rebuild);
	// The compactor borrowed the log; it is closed by now.
	evb_wal_close(w);
	return cli_output_finish(&cli_cmd_compact, rc);
}
