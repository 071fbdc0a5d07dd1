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
 *
 * --follow keeps the same iterator going after EVB_EOF: a later
 * evb_wal_iter_next returns the records committed since (wal.h,
 * "Iterators"), so the live part continues exactly where the stored part
 * ended, with no gap and no duplicate, and an idle follower holds no read
 * transaction. When it has caught up it flushes stdout (so a pipe reader
 * sees each burst at once), then waits on the signal pipe (cli_sig.c) for
 * an idle interval that doubles from REPLAY_IDLE_MIN_MS to
 * REPLAY_IDLE_MAX_MS: a new record waits at most that long, and an idle
 * follower wakes about 60 times a second. SIGINT or SIGTERM ends it at
 * once when idle, and within REPLAY_SIG_EVERY records in a burst.
 *
 * Two ways to lose records under a follower are reported, never silent.
 * Offsets are gap-free (wal.h), so a record whose offset is past the one
 * expected means retention removed the ones between before replay read
 * them (a follower that fell behind, or a start before the log's first
 * offset): "N records skipped" on stderr, exit status 1. And an open
 * LMDB environment keeps reading its old file when the directory's
 * data.mdb is deleted or replaced, where nothing new will ever come;
 * the follower checks the file's identity whenever it is idle and stops
 * with exit status 2 if it changed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "collector/collector.h"
#include "wal/wal.h"

#define REPLAY_IDLE_MIN_MS 1  /* First wait after catching up. */
#define REPLAY_IDLE_MAX_MS 16 /* Longest wait: a new record's delay. */
/* Records between two looks at the signal pipe while catching up. */
#define REPLAY_SIG_EVERY 1024
#define REPLAY_DATA_FILE "/data.mdb" /* docs/wal-format.md, "Files". */

static int replay_run(int argc, char **argv);

const cli_cmd cli_cmd_replay = {
	.name    = "replay",
	.summary = "Print the events stored in a write-ahead log.",
	.help =
	    "usage: evbus replay [--data DIR] [--from-offset N] [--since T]\n"
	    "                    [--type T] [--symbol S] [--follow]\n"
	    "\n"
	    "Read the write-ahead log in DIR (read-only, so the bus may be\n"
	    "running) and print each event, in log order, as one line of\n"
	    "JSON with its full envelope (type, id, ts, source, corr, seq,\n"
	    "epoch, data) on standard output. A gap record, which stands for\n"
	    "events the collector could not get, prints as\n"
	    "{\"gap\":{\"epoch\":E,\"first\":F,\"last\":L}} whatever the\n"
	    "filters. Replay stops at the end of the log, unless --follow.\n"
	    "Records that retention removed before replay could read them\n"
	    "(a start before the log's first offset, or a follower that\n"
	    "fell behind) are reported on standard error as 'N records\n"
	    "skipped, offsets F..L'.\n"
	    "\n"
	    "Options:\n"
	    "  --data DIR         The log's directory (default\n"
	    "                     ./evbus-data).\n"
	    "  --from-offset N    Start at log offset N (default the start\n"
	    "                     of the log).\n"
	    "  --since T          Start at the first event with a ts at or\n"
	    "                     after T: ISO 8601 with Z or a UTC offset,\n"
	    "                     to the minute or finer\n"
	    "                     (2026-11-25T01:50:35Z,\n"
	    "                     2026-11-25T03:50:35.250+02:00), a date\n"
	    "                     (2026-11-25: midnight UTC) or relative,\n"
	    "                     such as -15m (s, m, h or d ago). With\n"
	    "                     --from-offset, the later start wins.\n"
	    "  --type T           Only events of type T (a type name).\n"
	    "  --symbol S         Only events whose routing key is exactly\n"
	    "                     S: the symbol, or the user_id or\n"
	    "                     component for the types routed by those.\n"
	    "  -f, --follow       At the end of the log, go on: print each\n"
	    "                     record as it is stored, with no gap and\n"
	    "                     no duplicate, until SIGINT or SIGTERM.\n"
	    "                     Standard output is flushed each time\n"
	    "                     replay catches up.\n"
	    "  -h, --help         Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success (with --follow: stopped by SIGINT or\n"
	    "SIGTERM), 1 a record failed its check or did not decode, or\n"
	    "records were skipped (reported on standard error, the others\n"
	    "are printed), 2 usage error, no log in DIR, a read error, the\n"
	    "log was removed or replaced while followed, or standard output\n"
	    "cannot be written.\n",
	.run = replay_run,
};

/* What to print. */
typedef struct replay_filter {
	int         type;   /* Type index, or -1 for all. */
	const char *symbol; /* Routing key, or NULL for all. */
} replay_filter;

/* The state of one replay. */
typedef struct replay_ctx {
	replay_filter flt;       /* What to print. */
	evb_buf       json;      /* Scratch for cli_event_print. */
	uint64_t      next_off;  /* Offset expected next (skip check). */
	int           sig_fd;    /* --follow: the signal pipe; else -1. */
	char         *data_file; /* --follow: DIR/data.mdb. */
	struct stat   data_st;   /* --follow: data_file when opened. */
	int           idle_ms;   /* --follow: next wait; 0 when busy. */
} replay_ctx;

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

/*
 * replay_skipped reports the offsets between the one expected and off,
 * the next one read. Offsets have no gaps, so only retention removes
 * records from under a reader (the iterator then continues at the first
 * kept one).
 */
static int
replay_skipped(replay_ctx *c, uint64_t off)
{
	uint64_t from = c->next_off;

	c->next_off = off + 1;
	if (off <= from) {
		return CLI_EXIT_OK;
	}
	cli_error(&cli_cmd_replay,
	    "%llu records skipped, offsets %llu..%llu: retention removed "
	    "them before replay read them",
	    (unsigned long long) (off - from), (unsigned long long) from,
	    (unsigned long long) (off - 1));
	return CLI_EXIT_DATA;
}

/* replay_record handles what evb_wal_iter_next returned (rc, e). */
static int
replay_record(replay_ctx *c, int rc, const evb_wal_entry *e)
{
	int r = CLI_EXIT_OK;

	if (rc == EVB_OK || rc == EVB_ECORRUPT) {
		r = replay_skipped(c, e->off);
	}
	if (rc == EVB_ECORRUPT) {
		cli_error(&cli_cmd_replay,
		    "offset %llu: the record fails its check; run "
		    "'evbus wal verify'",
		    (unsigned long long) e->off);
		return CLI_EXIT_DATA;
	}
	if (rc != EVB_OK) {
		cli_error(&cli_cmd_replay, "cannot read the log: %s",
		    evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	rc = e->type == EVB_COLLECTOR_GAP_TYPE
	    ? replay_gap(e)
	    : replay_event(e, &c->flt, &c->json);
	return rc > r ? rc : r;
}

/*
 * replay_same_log checks that DIR/data.mdb is still the file that was
 * opened. Returns CLI_CONTINUE, or CLI_EXIT_USAGE after saying why.
 */
static int
replay_same_log(const replay_ctx *c)
{
	struct stat st;

	if (stat(c->data_file, &st) != 0) {
		int e = errno;

		cli_error(&cli_cmd_replay, "%s (%s: %s)",
		    e == ENOENT || e == ENOTDIR
		        ? "the log was removed while followed"
		        : "cannot check the log",
		    c->data_file, strerror(e));
		return CLI_EXIT_USAGE;
	}
	if (st.st_dev != c->data_st.st_dev || st.st_ino != c->data_st.st_ino) {
		cli_error(&cli_cmd_replay,
		    "%s: the log was replaced while followed; run replay "
		    "again to read the new one",
		    c->data_file);
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

/* replay_signalled waits up to wait_ms for SIGINT or SIGTERM. */
static int
replay_signalled(const replay_ctx *c, int wait_ms)
{
	struct pollfd pfd = { .fd = c->sig_fd, .events = POLLIN };
	int           rv  = poll(&pfd, 1, wait_ms);

	if (rv < 0 && errno != EINTR) {
		cli_error(&cli_cmd_replay, "poll: %s", strerror(errno));
		return CLI_EXIT_USAGE;
	}
	return rv > 0 ? CLI_EXIT_OK : CLI_CONTINUE;
}

/*
 * replay_idle is a follower's turn at the end of the log: flush, check
 * the log, wait. Returns CLI_CONTINUE to read on, CLI_EXIT_OK on a
 * signal, CLI_EXIT_USAGE on an error.
 */
static int
replay_idle(replay_ctx *c)
{
	int rc;

	if (fflush(stdout) != 0) {
		// Reported by cli_output_finish.
		return CLI_EXIT_USAGE;
	}
	if ((rc = replay_same_log(c)) != CLI_CONTINUE) {
		return rc;
	}
	c->idle_ms = c->idle_ms == 0 ? REPLAY_IDLE_MIN_MS : c->idle_ms * 2;
	if (c->idle_ms > REPLAY_IDLE_MAX_MS) {
		c->idle_ms = REPLAY_IDLE_MAX_MS;
	}
	return replay_signalled(c, c->idle_ms);
}

/* replay_scan prints the log from off, and with --follow goes on. */
static int
replay_scan(evb_wal *w, uint64_t off, replay_ctx *c)
{
	evb_wal_iter *it;
	evb_wal_entry e;
	uint64_t      n     = 0;
	int           worst = CLI_EXIT_OK;
	int           r     = CLI_CONTINUE;
	int           rc;

	if ((rc = evb_wal_iter_open(w, off, &it)) != EVB_OK) {
		cli_error(&cli_cmd_replay, "%s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	while (worst != CLI_EXIT_USAGE) {
		if ((rc = evb_wal_iter_next(it, &e)) == EVB_EOF) {
			if (c->sig_fd < 0 ||
			    (r = replay_idle(c)) != CLI_CONTINUE) {
				break;
			}
			continue;
		}
		c->idle_ms = 0;
		r          = replay_record(c, rc, &e);
		worst      = r > worst ? r : worst;
		if (c->sig_fd >= 0 && ++n % REPLAY_SIG_EVERY == 0 &&
		    (r = replay_signalled(c, 0)) != CLI_CONTINUE) {
			break;
		}
	}
	evb_wal_iter_close(it);
	return r != CLI_CONTINUE && r > worst ? r : worst;
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

/*
 * replay_start finds where to begin: --from-offset and --since as
 * given (the later wins), else the log's first offset now, so that
 * records removed from then on are reported as skipped.
 */
static int
replay_start(evb_wal *w, const char *since, int64_t since_ns, uint64_t *off)
{
	evb_wal_stat st;
	int          rc;

	if (since != NULL) {
		if ((rc = replay_since(w, since_ns, off)) != EVB_OK) {
			cli_error(
			    &cli_cmd_replay, "--since: %s", evb_strerror(rc));
			return CLI_EXIT_USAGE;
		}
	} else if (*off == 0) {
		if ((rc = evb_wal_stats(w, &st)) != EVB_OK) {
			cli_error(&cli_cmd_replay, "cannot read the log: %s",
			    evb_strerror(rc));
			return CLI_EXIT_USAGE;
		}
		*off = st.first_off > 0 ? st.first_off : 1;
	}
	return CLI_CONTINUE;
}

/*
 * replay_follow_open prepares --follow: the signal pipe and the identity
 * of the log's data file, taken right after the log was opened.
 */
static int
replay_follow_open(replay_ctx *c, const char *data)
{
	size_t n = strlen(data) + sizeof(REPLAY_DATA_FILE);

	if ((c->data_file = malloc(n)) == NULL) {
		cli_error(&cli_cmd_replay, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	(void) snprintf(c->data_file, n, "%s%s", data, REPLAY_DATA_FILE);
	if (stat(c->data_file, &c->data_st) != 0) {
		cli_error(
		    &cli_cmd_replay, "%s: %s", c->data_file, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

/* replay_parse reads the options into c and *off (0: not given). */
static int
replay_parse(int argc, char **argv, replay_ctx *c, const char **data,
    const char **since, int64_t *since_ns, bool *follow, uint64_t *off)
{
	const char   *from   = NULL;
	const char   *type   = NULL;
	const cli_opt opts[] = {
		{ "data", 0, NULL, data },
		{ "from-offset", 0, NULL, &from },
		{ "since", 0, NULL, since },
		{ "type", 0, NULL, &type },
		{ "symbol", 0, NULL, &c->flt.symbol },
		{ "follow", 'f', follow, NULL },
		{ NULL, 0, NULL, NULL },
	};
	int first;
	int rc;

	rc = cli_opts_parse_max(&cli_cmd_replay, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (from != NULL &&
	    (rc = cli_parse_u64(&cli_cmd_replay, "from-offset", from, 1,
	         UINT64_MAX, off)) != CLI_CONTINUE) {
		return rc;
	}
	if (*since != NULL &&
	    (rc = cli_parse_time(&cli_cmd_replay, "since", *since,
	         evb_clock_real_ns(), since_ns)) != CLI_CONTINUE) {
		return rc;
	}
	if (type != NULL &&
	    evb_proto_type_find(type, strlen(type), &c->flt.type) != EVB_OK) {
		return cli_usage_error(
		    &cli_cmd_replay, "--type: unknown type '%s'", type);
	}
	if ((rc = cli_check_dir(&cli_cmd_replay, "data", *data)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	*data = *data != NULL ? *data : CLI_DATA_DEFAULT;
	return CLI_CONTINUE;
}

static int
replay_run(int argc, char **argv)
{
	replay_ctx  c        = { .flt = { -1, NULL }, .sig_fd = -1 };
	const char *data     = NULL;
	const char *since    = NULL;
	int64_t     since_ns = 0;
	bool        follow   = false;
	uint64_t    off      = 0;
	evb_wal    *w        = NULL;
	int         rc;

	rc = replay_parse(
	    argc, argv, &c, &data, &since, &since_ns, &follow, &off);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	// Signals first: cli_sig_open wants no thread started yet.
	if (follow &&
	    (rc = cli_sig_open(&cli_cmd_replay, &c.sig_fd)) != CLI_CONTINUE) {
		return rc;
	}
	if ((rc = cli_wal_open_ro(&cli_cmd_replay, data, &w)) != CLI_EXIT_OK ||
	    (rc = replay_start(w, since, since_ns, &off)) != CLI_CONTINUE ||
	    (follow && (rc = replay_follow_open(&c, data)) != CLI_CONTINUE)) {
		goto done;
	}
	c.next_off = off;
	evb_buf_init(&c.json);
	rc = replay_scan(w, off, &c);
	evb_buf_fini(&c.json);
done:
	evb_wal_close(w);
	free(c.data_file);
	if (follow) {
		cli_sig_close();
	}
	return cli_output_finish(&cli_cmd_replay, rc);
}
