/*
 * cmd_stats.c: `evbus stats [--ctl URL] [--data DIR] [--json]`, the
 * counters of a running broker, of a write-ahead log, or both.
 *
 * --ctl asks the broker's control endpoint (nng req0 to the broker's
 * rep0; the request and reply are in docs/protocol.md, "Control
 * endpoint"). The reply is a MessagePack map: counters as integers, then
 * published_by_type and rejected_by_type. It is checked with
 * evb_proto_msg_extent before msgpack-c unpacks it, as everything read
 * from a socket is. The table prints the scalar counters in the order
 * the broker sent them, then one row per type; --json prints the map as
 * it came, converted to JSON.
 *
 * --data opens the log read-only (so the bus may be running) and takes
 * evb_wal_stats, then scans the records from the first offset to the
 * last one those stats gave, so that the counts and the offsets describe
 * the same records even while the log grows. The scan reads only the
 * record headers (type, append time), except for gap records, whose
 * payload says how many seqs they stand for: no event is decoded. The
 * rates are events appended in the last minute (hour) by the WAL's
 * append time, divided by 60 (3600). Rejected events never reach the
 * log, so their counts come from a running broker only.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "collector/collector.h"
#include "wal/wal.h"

#define STATS_TIMEOUT_MS 5000 /* For the connection, request and reply. */

static int stats_run(int argc, char **argv);

const cli_cmd cli_cmd_stats = {
	.name    = "stats",
	.summary = "Print a running broker's or a log's counters.",
	.help =
	    "usage: evbus stats [--ctl URL] [--data DIR] [--json]\n"
	    "\n"
	    "Print the counters of a running broker (--ctl), what the\n"
	    "write-ahead log in DIR holds (--data), or both, in that order.\n"
	    "\n"
	    "--ctl asks the broker's control endpoint (nng req0) for its\n"
	    "counters and prints them: the totals (last seq, messages and\n"
	    "events in, published, rejected, refused messages, the repair\n"
	    "ring and repairs), then one row per event type with the events\n"
	    "published and rejected by reason (malformed, schema, too_big).\n"
	    "Events whose type could not be read are counted as 'unknown'.\n"
	    "Rejected events are never stored, so rejects come from a\n"
	    "running bus only. 'evbus run' adds its collector's counters\n"
	    "(events and bytes stored, gaps, lost, commit times) as\n"
	    "collector.* lines.\n"
	    "\n"
	    "--data opens the log read-only (the bus may be running) and\n"
	    "prints its offsets, record count and sizes, then what a scan\n"
	    "of its records finds: the events of each type, the gap\n"
	    "records and the seqs they stand for, and the events stored in\n"
	    "the last minute and the last hour with their rates (events\n"
	    "per second).\n"
	    "\n"
	    "Options:\n"
	    "  --ctl URL   The broker's control URL, such as\n"
	    "              tcp://127.0.0.1:5573.\n"
	    "  --data DIR  The log's directory.\n"
	    "  -j, --json  Print one JSON object instead (with both\n"
	    "              options: {\"bus\":{...},\"log\":{...}}).\n"
	    "  -h, --help  Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success, 1 a record of the log failed its check\n"
	    "(counted as bad_records), 2 usage error, no reply from URL\n"
	    "within 5 s, URL is not a control endpoint, or no log in DIR.\n",
	.run = stats_run,
};

static const char stats_request[] = { (char) 0x81, (char) 0xa2, 'o', 'p',
	(char) 0xa5, 's', 't', 'a', 't', 's' }; /* {"op": "stats"} */

/* What stats --ctl dials, for cli_peer_error. */
static const cli_peer_want stats_want = {
	.kind    = "a control endpoint",
	.others  = "the broker's bus, ingest or confirm endpoint",
	.noun    = "control",
	.opt     = "--ctl",
	.run_opt = "--ctl",
	.def     = CLI_CTL_URL_DEFAULT,
};

/*
 * stats_wait polls the socket's descriptor opt (NNG_OPT_SENDFD or
 * NNG_OPT_RECVFD) and the peer watch until the socket is ready, the peer
 * turns out to speak another protocol, or end_ms (monotonic) passes.
 */
static int
stats_wait(nng_socket sock, const char *opt, const char *url, cli_peer *peer,
    uint64_t end_ms)
{
	struct pollfd pfd[2] = { { .fd = -1, .events = POLLIN },
		{ .fd = peer->fds[0], .events = POLLIN } };
	int           rv;

	if ((rv = nng_socket_get_int(sock, opt, &pfd[0].fd)) != 0) {
		cli_error(&cli_cmd_stats, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	for (;;) {
		uint64_t now = evb_clock_mono_ms();

		if (cli_peer_get(peer) == EVB_PEER_WRONG) {
			return cli_peer_error(
			    &cli_cmd_stats, &stats_want, url, true);
		}
		if (now >= end_ms) {
			cli_error(&cli_cmd_stats,
			    "no reply from %s within %d s: is it the control "
			    "endpoint of a running broker (--ctl of 'evbus "
			    "run' or 'evbus broker', default %s)?",
			    url, STATS_TIMEOUT_MS / 1000, CLI_CTL_URL_DEFAULT);
			return CLI_EXIT_USAGE;
		}
		rv = poll(pfd, 2, (int) (end_ms - now));
		if (rv < 0 && errno != EINTR) {
			cli_error(&cli_cmd_stats, "poll: %s", strerror(errno));
			return CLI_EXIT_USAGE;
		}
		if (rv > 0 && (pfd[0].revents & POLLIN) != 0) {
			return CLI_EXIT_OK;
		}
	}
}

/*
 * stats_exchange dials url, sends the request and takes the reply, all
 * within STATS_TIMEOUT_MS. req0 waits for a connection its protocol
 * accepts before it sends, so a wrong peer would only show as a timeout:
 * every wait also watches the peer.
 */
static int
stats_exchange(
    nng_socket sock, const char *url, cli_peer *peer, nng_msg **reply)
{
	uint64_t end = evb_clock_mono_ms() + STATS_TIMEOUT_MS;
	int      rv  = nng_dial(sock, url, NULL, 0);
	int      rc;

	if (rv == NNG_EPROTO) {
		// The peer sent no SP header: not an nng endpoint at all.
		return cli_peer_error(&cli_cmd_stats, &stats_want, url, false);
	}
	if (rv != 0) {
		cli_error(&cli_cmd_stats,
		    "cannot connect to %s: %s (is the broker running?)", url,
		    nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	// A wait that fails has already said why.
	while ((rv = nng_send(sock, (void *) stats_request,
	            sizeof(stats_request), NNG_FLAG_NONBLOCK)) == NNG_EAGAIN) {
		if ((rc = stats_wait(sock, NNG_OPT_SENDFD, url, peer, end)) !=
		    CLI_EXIT_OK) {
			return rc;
		}
	}
	while (rv == 0 &&
	    (rv = nng_recvmsg(sock, reply, NNG_FLAG_NONBLOCK)) == NNG_EAGAIN) {
		if ((rc = stats_wait(sock, NNG_OPT_RECVFD, url, peer, end)) !=
		    CLI_EXIT_OK) {
			return rc;
		}
		rv = 0;
	}
	if (rv != 0) {
		cli_error(&cli_cmd_stats, "no answer from %s: %s", url,
		    nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* stats_ask sends the request to url and returns the reply. */
static int
stats_ask(const char *url, nng_msg **reply)
{
	cli_peer   peer = { .fds = { -1, -1 } };
	nng_socket sock;
	int        rv;
	int        rc;

	if ((rv = nng_req0_open(&sock)) != 0) {
		cli_error(&cli_cmd_stats, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	if ((rc = cli_peer_watch(&cli_cmd_stats, sock, &peer)) ==
	    CLI_CONTINUE) {
		rc = stats_exchange(sock, url, &peer, reply);
	}
	(void) nng_close(sock);
	cli_peer_fini(&peer);
	return rc;
}

/* stats_cell prints the unsigned value at key in map m, or "-". */
static void
stats_cell(const msgpack_object *m, const char *key, int width)
{
	const msgpack_object *v = m != NULL && m->type == MSGPACK_OBJECT_MAP
	    ? evb_proto_map_get(m, key)
	    : NULL;

	if (v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		printf(" %*llu", width, (unsigned long long) v->via.u64);
	} else {
		printf(" %*s", width, "-");
	}
}

/*
 * stats_sections prints each map of m other than the two per-type ones:
 * the counters of the other components in the broker's process (the
 * collector's in `evbus run`), as "section.key value" lines.
 */
static void
stats_sections(const msgpack_object *m)
{
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		const msgpack_object *v = &m->via.map.ptr[i].val;

		if (k->type != MSGPACK_OBJECT_STR ||
		    v->type != MSGPACK_OBJECT_MAP ||
		    evb_proto_map_get(m, "published_by_type") == v ||
		    evb_proto_map_get(m, "rejected_by_type") == v) {
			continue;
		}
		putchar('\n');
		for (uint32_t j = 0; j < v->via.map.size; j++) {
			const msgpack_object *ck = &v->via.map.ptr[j].key;
			const msgpack_object *cv = &v->via.map.ptr[j].val;
			char                  name[96];

			if (ck->type != MSGPACK_OBJECT_STR ||
			    cv->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
				continue;
			}
			(void) snprintf(name, sizeof(name), "%.*s.%.*s",
			    (int) k->via.str.size, k->via.str.ptr,
			    (int) ck->via.str.size, ck->via.str.ptr);
			printf("%-26s %llu\n", name,
			    (unsigned long long) cv->via.u64);
		}
	}
}

/* stats_table prints the reply m as a table. */
static void
stats_table(const msgpack_object *m)
{
	const msgpack_object *pub = evb_proto_map_get(m, "published_by_type");
	const msgpack_object *rej = evb_proto_map_get(m, "rejected_by_type");

	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		const msgpack_object *v = &m->via.map.ptr[i].val;

		if (k->type == MSGPACK_OBJECT_STR &&
		    v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			printf("%-16.*s %llu\n", (int) k->via.str.size,
			    k->via.str.ptr, (unsigned long long) v->via.u64);
		}
	}
	if (rej == NULL || rej->type != MSGPACK_OBJECT_MAP) {
		return;
	}
	printf("\n%-18s %10s %10s %10s %10s\n", "type", "published",
	    "malformed", "schema", "too_big");
	// Every type has a row in rejected_by_type, "unknown" last.
	for (uint32_t i = 0; i < rej->via.map.size; i++) {
		const msgpack_object *k = &rej->via.map.ptr[i].key;
		char                  name[EVB_PROTO_MAX_TOPIC];

		if (k->type != MSGPACK_OBJECT_STR) {
			continue;
		}
		(void) snprintf(name, sizeof(name), "%.*s",
		    (int) k->via.str.size, k->via.str.ptr);
		printf("%-18s", name);
		stats_cell(pub, name, 10);
		stats_cell(&rej->via.map.ptr[i].val, "malformed", 10);
		stats_cell(&rej->via.map.ptr[i].val, "schema", 10);
		stats_cell(&rej->via.map.ptr[i].val, "too_big", 10);
		putchar('\n');
	}
	stats_sections(m);
}

/* stats_json converts o to a new JSON value, or NULL (out of memory). */
static json_t *
stats_json(const msgpack_object *o)
{
	json_t *j;

	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return o->via.u64 <= INT64_MAX
		    ? json_integer((json_int_t) o->via.u64)
		    : json_real((double) o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t) o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_STR:
		return json_stringn(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		if ((j = json_array()) == NULL) {
			return NULL;
		}
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (json_array_append_new(
			        j, stats_json(&o->via.array.ptr[i])) != 0) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	case MSGPACK_OBJECT_MAP:
		if ((j = json_object()) == NULL) {
			return NULL;
		}
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;

			if (k->type != MSGPACK_OBJECT_STR ||
			    json_object_setn_new(j, k->via.str.ptr,
			        k->via.str.size,
			        stats_json(&o->via.map.ptr[i].val)) != 0) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	default:
		return json_null();
	}
}

/* stats_str returns the str o as a length and pointer ("" otherwise). */
static const char *
stats_str(const msgpack_object *o, int *len)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR) {
		*len = 0;
		return "";
	}
	*len = (int) o->via.str.size;
	return o->via.str.ptr;
}

/* stats_json_dump prints j as one line of JSON; NULL is out of memory. */
static int
stats_json_dump(const json_t *j)
{
	char *s  = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	int   rc = CLI_EXIT_OK;

	if (s != NULL) {
		printf("%s\n", s);
	} else {
		cli_error(&cli_cmd_stats, "%s", evb_strerror(EVB_ENOMEM));
		rc = CLI_EXIT_USAGE;
	}
	free(s);
	return rc;
}

/*
 * stats_is_stats says whether m is a stats reply (docs/protocol.md,
 * "Control endpoint"): its counters and its two per-type maps. Another
 * rep0 endpoint answers too, with a map of its own (the confirmed ingest
 * endpoint's {"results": [...]}), which must not pass for an empty set
 * of counters.
 */
static bool
stats_is_stats(const msgpack_object *m)
{
	const msgpack_object *seq = evb_proto_map_get(m, "last_seq");
	const msgpack_object *pub = evb_proto_map_get(m, "published_by_type");
	const msgpack_object *rej = evb_proto_map_get(m, "rejected_by_type");

	return seq != NULL && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    pub != NULL && pub->type == MSGPACK_OBJECT_MAP && rej != NULL &&
	    rej->type == MSGPACK_OBJECT_MAP;
}

/*
 * stats_print decodes the reply from url and prints it as a table, or
 * with is_json converts it to *out (NULL when out of memory).
 */
static int
stats_print(const char *url, nng_msg *reply, bool is_json, json_t **out)
{
	const char      *p   = nng_msg_body(reply);
	size_t           len = nng_msg_len(reply);
	size_t           n   = 0;
	msgpack_unpacked u;
	int              rc = CLI_EXIT_USAGE;

	msgpack_unpacked_init(&u);
	if (evb_proto_msg_extent(p, len, &n, NULL) != EVB_OK || n != len ||
	    msgpack_unpack_next(&u, p, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    u.data.type != MSGPACK_OBJECT_MAP) {
		cli_error(
		    &cli_cmd_stats, "the reply is not one MessagePack map");
	} else if (evb_proto_map_get(&u.data, "error") != NULL) {
		int         elen, mlen;
		const char *e =
		    stats_str(evb_proto_map_get(&u.data, "error"), &elen);
		const char *m =
		    stats_str(evb_proto_map_get(&u.data, "message"), &mlen);

		cli_error(&cli_cmd_stats, "the broker refused: %.*s: %.*s",
		    elen, e, mlen, m);
	} else if (!stats_is_stats(&u.data)) {
		cli_error(&cli_cmd_stats,
		    "the reply from %s is not a broker's counters: is it the "
		    "control endpoint (--ctl of evbus run or evbus broker)?",
		    url);
	} else if (is_json) {
		*out = stats_json(&u.data);
		rc   = *out != NULL ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		if (*out == NULL) {
			cli_error(
			    &cli_cmd_stats, "%s", evb_strerror(EVB_ENOMEM));
		}
	} else {
		stats_table(&u.data);
		rc = CLI_EXIT_OK;
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* stats_bus asks the broker at url and prints, or converts to *out. */
static int
stats_bus(const char *url, bool is_json, json_t **out)
{
	nng_msg *reply;
	int      rc;

	if ((rc = stats_ask(url, &reply)) != CLI_EXIT_OK) {
		return rc;
	}
	rc = stats_print(url, reply, is_json, out);
	nng_msg_free(reply);
	return rc;
}

/* ---- The log (--data) ---------------------------------------------------- */

#define STATS_MINUTE_NS INT64_C(60000000000) /* The short rate window. */
#define STATS_HOUR_NS INT64_C(3600000000000) /* The long rate window. */

/*
 * What --data found in a log. by_type has ntypes + 1 counters: one per
 * type index, then "unknown" (a type this build does not know). Bad
 * records fail their check, or are gap records that do not decode.
 */
typedef struct stats_log {
	evb_wal_stat wal;       /* The log's stats, taken before the scan. */
	uint64_t    *by_type;   /* Events per type index, then unknown. */
	size_t       ntypes;    /* evb_proto_type_count(). */
	uint64_t     events;    /* Event records. */
	uint64_t     gaps;      /* Gap records. */
	uint64_t     gap_seqs;  /* Seqs that the gap records stand for. */
	uint64_t     bad;       /* Bad records. */
	uint64_t     first_bad; /* The first one's offset; 0 when none. */
	int64_t      now_ns;    /* Wall clock when the scan began. */
	uint64_t     last_min;  /* Events appended since now - 1 min. */
	uint64_t     last_hour; /* Events appended since now - 1 h. */
} stats_log;

/* stats_log_bad counts a record at off that cannot be counted. */
static void
stats_log_bad(stats_log *l, uint64_t off)
{
	if (l->bad++ == 0) {
		l->first_bad = off;
	}
}

/* stats_log_count counts one record that passed its check. */
static void
stats_log_count(stats_log *l, const evb_wal_entry *e)
{
	uint64_t ep, f, last;

	if (e->type == EVB_COLLECTOR_GAP_TYPE) {
		if (evb_collector_gap_decode(
		        e->payload, e->len, &ep, &f, &last) != EVB_OK ||
		    last < f) {
			stats_log_bad(l, e->off);
			return;
		}
		l->gaps++;
		l->gap_seqs += last - f + 1;
		return;
	}
	l->events++;
	l->by_type[e->type < l->ntypes ? e->type : l->ntypes]++;
	// Later append times (a clock stepped back) count as recent.
	if (e->append_ns >= l->now_ns - STATS_MINUTE_NS) {
		l->last_min++;
	}
	if (e->append_ns >= l->now_ns - STATS_HOUR_NS) {
		l->last_hour++;
	}
}

/* stats_log_scan counts the records up to l->wal.last_off. */
static int
stats_log_scan(evb_wal *w, stats_log *l)
{
	evb_wal_iter *it;
	evb_wal_entry e;
	int           rc;

	if ((rc = evb_wal_iter_open(w, l->wal.first_off, &it)) != EVB_OK) {
		cli_error(&cli_cmd_stats, "cannot read the log: %s",
		    evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	while (
	    (rc = evb_wal_iter_next(it, &e)) == EVB_OK || rc == EVB_ECORRUPT) {
		// Records stored after the stats are left for the next run.
		if (e.off > l->wal.last_off) {
			break;
		}
		if (rc == EVB_ECORRUPT) {
			stats_log_bad(l, e.off);
		} else {
			stats_log_count(l, &e);
		}
	}
	evb_wal_iter_close(it);
	if (rc != EVB_OK && rc != EVB_ECORRUPT && rc != EVB_EOF) {
		cli_error(&cli_cmd_stats, "cannot read the log: %s",
		    evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	if (l->bad > 0) {
		cli_error(&cli_cmd_stats,
		    "%llu bad records, the first at offset %llu: a record "
		    "that fails its check (run 'evbus wal verify') or a gap "
		    "record that does not decode",
		    (unsigned long long) l->bad,
		    (unsigned long long) l->first_bad);
		return CLI_EXIT_DATA;
	}
	return CLI_EXIT_OK;
}

/* stats_type_name names by_type[i]: a type, or "unknown" past them. */
static const char *
stats_type_name(const stats_log *l, size_t i)
{
	return i < l->ntypes ? evb_proto_type_name((int) i) : "unknown";
}

/* stats_log_table prints l as "key value" lines and a table of types. */
static void
stats_log_table(const char *dir, const stats_log *l)
{
	const struct {
		const char *key;
		uint64_t    v;
	} rows[] = {
		{ "first_off", l->wal.first_off },
		{ "last_off", l->wal.last_off },
		{ "record_count", l->wal.record_count },
		{ "file_bytes", l->wal.file_bytes },
		{ "bytes_used", l->wal.bytes_used },
		{ "log_bytes", l->wal.log_bytes },
		{ "map_size", l->wal.map_size },
		{ "events", l->events },
		{ "gap_records", l->gaps },
		{ "gap_seqs", l->gap_seqs },
		{ "bad_records", l->bad },
		{ "events_last_minute", l->last_min },
		{ "events_last_hour", l->last_hour },
	};

	printf("%-20s %s\n", "log", dir);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		printf("%-20s %" PRIu64 "\n", rows[i].key, rows[i].v);
	}
	printf("%-20s %.3f\n", "rate_last_minute", (double) l->last_min / 60);
	printf("%-20s %.3f\n", "rate_last_hour", (double) l->last_hour / 3600);
	printf("\n%-20s %10s\n", "type", "events");
	for (size_t i = 0; i <= l->ntypes; i++) {
		printf("%-20s %10" PRIu64 "\n", stats_type_name(l, i),
		    l->by_type[i]);
	}
}

/* stats_log_json builds l's JSON object; NULL when out of memory. */
static json_t *
stats_log_json(const stats_log *l)
{
	json_t *types = json_object();

	for (size_t i = 0; types != NULL && i <= l->ntypes; i++) {
		if (json_object_set_new(types, stats_type_name(l, i),
		        json_integer((json_int_t) l->by_type[i])) != 0) {
			json_decref(types);
			types = NULL;
		}
	}
	if (types == NULL) {
		return NULL;
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, "
	                 "s:I, s:I, s:I, s:I, s:f, s:I, s:f}",
	    "first_off", (json_int_t) l->wal.first_off, "last_off",
	    (json_int_t) l->wal.last_off, "record_count",
	    (json_int_t) l->wal.record_count, "file_bytes",
	    (json_int_t) l->wal.file_bytes, "bytes_used",
	    (json_int_t) l->wal.bytes_used, "log_bytes",
	    (json_int_t) l->wal.log_bytes, "map_size",
	    (json_int_t) l->wal.map_size, "events", (json_int_t) l->events,
	    "events_by_type", types, "gap_records", (json_int_t) l->gaps,
	    "gap_seqs", (json_int_t) l->gap_seqs, "bad_records",
	    (json_int_t) l->bad, "events_last_minute", (json_int_t) l->last_min,
	    "rate_last_minute", (double) l->last_min / 60, "events_last_hour",
	    (json_int_t) l->last_hour, "rate_last_hour",
	    (double) l->last_hour / 3600);
}

/*
 * stats_log_read opens the log in dir, counts it into l and prints it
 * as a table, or with is_json converts it to *out.
 */
static int
stats_log_read(const char *dir, bool is_json, json_t **out)
{
	stats_log l = { .ntypes = evb_proto_type_count() };
	evb_wal  *w;
	int       rc;

	if ((rc = cli_wal_open_ro(&cli_cmd_stats, dir, &w)) != CLI_EXIT_OK) {
		return rc;
	}
	if ((l.by_type = calloc(l.ntypes + 1, sizeof(*l.by_type))) == NULL) {
		cli_error(&cli_cmd_stats, "%s", evb_strerror(EVB_ENOMEM));
		rc = CLI_EXIT_USAGE;
		goto close;
	}
	if ((rc = evb_wal_stats(w, &l.wal)) != EVB_OK) {
		cli_error(&cli_cmd_stats, "cannot read the log: %s",
		    evb_strerror(rc));
		rc = CLI_EXIT_USAGE;
		goto close;
	}
	l.now_ns = evb_clock_real_ns();
	if ((rc = stats_log_scan(w, &l)) == CLI_EXIT_USAGE) {
		goto close;
	}
	if (!is_json) {
		stats_log_table(dir, &l);
	} else if ((*out = stats_log_json(&l)) == NULL) {
		cli_error(&cli_cmd_stats, "%s", evb_strerror(EVB_ENOMEM));
		rc = CLI_EXIT_USAGE;
	}
close:
	free(l.by_type);
	evb_wal_close(w);
	return rc;
}

/*
 * stats_json_out prints what --json collected: one section as it is, or
 * both as {"bus": ..., "log": ...} (null for one that failed).
 */
static int
stats_json_out(json_t *bus_j, json_t *log_j, bool is_both)
{
	json_t *j;
	int     rc;

	if (!is_both) {
		return bus_j != NULL || log_j != NULL
		    ? stats_json_dump(bus_j != NULL ? bus_j : log_j)
		    : CLI_EXIT_OK;
	}
	j  = json_pack("{s:O?, s:O?}", "bus", bus_j, "log", log_j);
	rc = stats_json_dump(j);
	json_decref(j);
	return rc;
}

static int
stats_run(int argc, char **argv)
{
	const char   *url     = NULL;
	const char   *data    = NULL;
	bool          is_json = false;
	const cli_opt opts[]  = {
		 { "ctl", 0, NULL, &url },
		 { "data", 0, NULL, &data },
		 { "json", 'j', &is_json, NULL },
		 { NULL, 0, NULL, NULL },
	};
	json_t *bus_j = NULL;
	json_t *log_j = NULL;
	int     first;
	int     rc = CLI_EXIT_OK;
	int     r;

	r = cli_opts_parse_max(&cli_cmd_stats, argc, argv, opts, 0, &first);
	if (r != CLI_CONTINUE) {
		return r;
	}
	if (url == NULL && data == NULL) {
		return cli_usage_error(
		    &cli_cmd_stats, "give --ctl URL, --data DIR or both");
	}
	if ((r = cli_check_dir(&cli_cmd_stats, "data", data)) != CLI_CONTINUE ||
	    (r = cli_url_check(&cli_cmd_stats, "ctl", url)) != CLI_CONTINUE) {
		return r;
	}
	if (url != NULL) {
		rc = stats_bus(url, is_json, &bus_j);
	}
	if (data != NULL) {
		if (url != NULL && !is_json && rc == CLI_EXIT_OK) {
			putchar('\n');
		}
		r  = stats_log_read(data, is_json, &log_j);
		rc = r > rc ? r : rc;
	}
	if (is_json && (bus_j != NULL || log_j != NULL)) {
		r  = stats_json_out(bus_j, log_j, url != NULL && data != NULL);
		rc = r > rc ? r : rc;
	}
	json_decref(bus_j);
	json_decref(log_j);
	return cli_output_finish(&cli_cmd_stats, rc);
}
