/*
 * cmd_replay.c: `evbus replay`, the events of a write-ahead log as JSON
 * lines, read directly from the log's directory.
 *
 * The log is opened read-only (wal.h allows that next to a running
 * writer in another process), and read with an iterator from
 * --from-offset, or from where evb_wal_seek_time puts --since (whose
 * contract is that no record with a ts at or after it comes before; a
 * record after the start may have an older ts, and is printed). Each stored
 * payload is the event's envelope as the broker published it, seq and epoch
 * included; it is decoded with proto's checked decoder and printed with
 * evb_proto_event_to_json. A gap record (collector.h) prints as {"gap": {...}}
 * whatever the filters, since the events it stands for could be of any type. A
 * record that fails its check, or an envelope that does not decode, is reported
 * on stderr and skipped, and makes the exit status 1.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "collector/collector.h"
#include "wal/wal.h"

static int replay_run(int argc, char **argv);

const cli_cmd cli_cmd_replay = {
	.name    = "replay",
	.summary = "Print the events stored in a write-ahead log.",
	.help =
	    "usage: evbus replay [--data DIR] [--from-offset N] [--since T]\n"
	    "                    [--type T] [--symbol S]\n"
	    "\n"
	    "Read the write-ahead log in DIR (read-only, so the bus may be\n"
	    "running) and print each event, in log order, as one line of\n"
	    "JSON with its full envelope (type, id, ts, source, corr, seq,\n"
	    "epoch, data) on standard output. A gap record, which stands for\n"
	    "events the collector could not get, prints as\n"
	    "{\"gap\":{\"epoch\":E,\"first\":F,\"last\":L}} whatever the\n"
	    "filters. Replay stops at the end of the log.\n"
	    "\n"
	    "Options:\n"
	    "  --data DIR         The log's directory (default\n"
	    "                     ./evbus-data).\n"
	    "  --from-offset N    Start at log offset N (default 1, the\n"
	    "                     start of the log).\n"
	    "  --since T          Start at the first event with a ts at or\n"
	    "                     after T: ISO 8601 in UTC\n"
	    "                     (2026-11-25T01:50:35Z) or relative, such\n"
	    "                     as -15m (s, m, h or d ago). With\n"
	    "                     --from-offset, the later start wins.\n"
	    "  --type T           Only events of type T (a type name).\n"
	    "  --symbol S         Only events whose routing key is exactly\n"
	    "                     S: the symbol, or the user_id or\n"
	    "                     component for the types routed by those.\n"
	    "  -h, --help         Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success, 1 a record failed its check or did not\n"
	    "decode (reported on standard error, the others are printed),\n"
	    "2 usage error, no log in DIR, or standard output cannot be\n"
	    "written.\n",
	.run = replay_run,
};

/* What to print. */
typedef struct replay_filter {
	int         type;   /* Type index, or -1 for all. */
	const char *symbol; /* Routing key, or NULL for all. */
} replay_filter;

/* replay_gap prints a gap record. */
static int
replay_gap(const evb_wal_entry *e)
{
	uint64_t ep, f, l;

	if (evb_collector_gap_decode(e->payload, e->len, &ep, &f, &l) !=
	    EVB_OK) {
		cli_error(&cli_cmd_replay,
		    "offset %llu: a gap record that does not decode",
		    (unsigned long long) e->off);
		return CLI_EXIT_DATA;
	}
	printf("{\"gap\":{\"epoch\":%llu,\"first\":%llu,\"last\":%llu}}\n",
	    (unsigned long long) ep, (unsigned long long) f,
	    (unsigned long long) l);
	return CLI_EXIT_OK;
}

/* replay_event prints one event record if it passes the filter. */
static int
replay_event(const evb_wal_entry *e, const replay_filter *flt, evb_buf *json)
{
	evb_event *ev;
	evb_diag   diag = { "" };
	int        rc;

	if (flt->type >= 0 && e->type != flt->type) {
		return CLI_EXIT_OK;
	}
	if ((rc = evb_proto_event_decode(&ev, e->payload, e->len, &diag)) !=
	    EVB_OK) {
		cli_error(&cli_cmd_replay, "offset %llu: %s",
		    (unsigned long long) e->off, cli_diag_text(&diag, rc));
		return cli_is_fatal(rc) ? CLI_EXIT_USAGE : CLI_EXIT_DATA;
	}
	// The type was checked on the record, before decoding.
	rc = cli_event_match(ev, -1, flt->symbol)
	    ? cli_event_print(&cli_cmd_replay, ev, json)
	    : CLI_EXIT_OK;
	evb_proto_event_free(ev);
	return rc;
}

/* replay_scan prints the log from off. */
static int
replay_scan(evb_wal *w, uint64_t off, const replay_filter *flt)
{
	evb_wal_iter *it;
	evb_wal_entry e;
	evb_buf       json;
	int           worst = CLI_EXIT_OK;
	int           r;
	int           rc;

	if ((rc = evb_wal_iter_open(w, off, &it)) != EVB_OK) {
		cli_error(&cli_cmd_replay, "%s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	evb_buf_init(&json);
	while ((rc = evb_wal_iter_next(it, &e)) != EVB_EOF &&
	    worst != CLI_EXIT_USAGE) {
		if (rc == EVB_ECORRUPT) {
			cli_error(&cli_cmd_replay,
			    "offset %llu: the record fails its check; run "
			    "'evbus wal verify'",
			    (unsigned long long) e.off);
			r = CLI_EXIT_DATA;
		} else if (rc != EVB_OK) {
			cli_error(&cli_cmd_replay, "%s", evb_strerror(rc));
			r = CLI_EXIT_USAGE;
		} else if (e.type == EVB_COLLECTOR_GAP_TYPE) {
			r = replay_gap(&e);
		} else {
			r = replay_event(&e, flt, &json);
		}
		worst = r > worst ? r : worst;
	}
	evb_buf_fini(&json);
	evb_wal_iter_close(it);
	return worst;
}

/* replay_since moves *off to where events at or after ts_ns begin. */
static int
replay_since(evb_wal *w, int64_t ts_ns, uint64_t *off)
{
	uint64_t at;
	int      rc;

	if ((rc = evb_wal_seek_time(w, ts_ns, &at)) == EVB_OK && at > *off) {
		*off = at;
	}
	return rc;
}

static int
replay_run(int argc, char **argv)
{
	const char   *data   = NULL;
	const char   *from   = NULL;
	const char   *type   = NULL;
	const char   *symbol = NULL;
	const char   *since  = NULL;
	const cli_opt opts[] = {
		{ "data", 0, NULL, &data },
		{ "from-offset", 0, NULL, &from },
		{ "since", 0, NULL, &since },
		{ "type", 0, NULL, &type },
		{ "symbol", 0, NULL, &symbol },
		{ NULL, 0, NULL, NULL },
	};
	replay_filter flt      = { -1, NULL };
	int64_t       since_ns = 0;
	evb_wal_opts  o;
	evb_wal      *w;
	evb_diag      diag = { "" };
	uint64_t      off  = 1;
	int           first;
	int           rc;

	rc = cli_opts_parse_max(&cli_cmd_replay, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (from != NULL &&
	    (rc = cli_parse_u64(&cli_cmd_replay, "from-offset", from, 1,
	         UINT64_MAX, &off)) != CLI_CONTINUE) {
		return rc;
	}
	if (since != NULL &&
	    (rc = cli_parse_time(&cli_cmd_replay, "since", since,
	         evb_clock_real_ns(), &since_ns)) != CLI_CONTINUE) {
		return rc;
	}
	if (type != NULL &&
	    evb_proto_type_find(type, strlen(type), &flt.type) != EVB_OK) {
		return cli_usage_error(
		    &cli_cmd_replay, "--type: unknown type '%s'", type);
	}
	flt.symbol = symbol;
	data       = data != NULL ? data : CLI_DATA_DEFAULT;
	evb_wal_opts_default(&o);
	o.read_only = true;
	if ((rc = evb_wal_open(&w, data, &o, &diag)) != EVB_OK) {
		cli_error(&cli_cmd_replay, "cannot open the log in %s: %s",
		    data, cli_diag_text(&diag, rc));
		return CLI_EXIT_USAGE;
	}
	if (since != NULL && (rc = replay_since(w, since_ns, &off)) != EVB_OK) {
		cli_error(&cli_cmd_replay, "--since: %s", evb_strerror(rc));
		evb_wal_close(w);
		return CLI_EXIT_USAGE;
	}
	rc = replay_scan(w, off, &flt);
	evb_wal_close(w);
	return cli_output_finish(&cli_cmd_replay, rc);
}
