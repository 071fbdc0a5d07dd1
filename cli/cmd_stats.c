/*
 * cmd_stats.c: `evbus stats --ctl URL [--json]`, a running broker's
 * counters, asked of its control endpoint (nng req0 to the broker's
 * rep0; the request and reply are in docs/protocol.md, "Control
 * endpoint").
 *
 * The reply is a MessagePack map: counters as integers, then
 * published_by_type and rejected_by_type. It is checked with
 * evb_proto_msg_extent before msgpack-c unpacks it, as everything read
 * from a socket is. The table prints the scalar counters in the order
 * the broker sent them, then one row per type; --json prints the map as
 * it came, converted to JSON.
 */
#include <jansson.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define STATS_TIMEOUT_MS 5000 /* For the connection, request and reply. */

static int stats_run(int argc, char **argv);

const cli_cmd cli_cmd_stats = {
	.name    = "stats",
	.summary = "Print a running broker's counters.",
	.help =
	    "usage: evbus stats --ctl URL [--json]\n"
	    "\n"
	    "Ask a running broker's control endpoint (nng req0) for its\n"
	    "counters and print them: the totals (last seq, messages and\n"
	    "events in, published, rejected, refused messages, the repair\n"
	    "ring and repairs), then one row per event type with the events\n"
	    "published and rejected by reason (malformed, schema, too_big).\n"
	    "Events whose type could not be read are counted as 'unknown'.\n"
	    "\n"
	    "Options:\n"
	    "  --ctl URL   The broker's control URL, such as\n"
	    "              tcp://127.0.0.1:5573 (required).\n"
	    "  -j, --json  Print the counters as one JSON object instead.\n"
	    "  -h, --help  Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success, 2 usage error, or no answer from the\n"
	    "broker within 5 s.\n",
	.run = stats_run,
};

static const char stats_request[] = { (char) 0x81, (char) 0xa2, 'o', 'p',
	(char) 0xa5, 's', 't', 'a', 't', 's' }; /* {"op": "stats"} */

/* stats_ask sends the request to url and returns the reply. */
static int
stats_ask(const char *url, nng_msg **reply)
{
	nng_socket sock;
	int        rv;

	if ((rv = nng_req0_open(&sock)) != 0) {
		cli_error(&cli_cmd_stats, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	if ((rv = nng_socket_set_ms(
	         sock, NNG_OPT_RECVTIMEO, STATS_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_ms(
	         sock, NNG_OPT_SENDTIMEO, STATS_TIMEOUT_MS)) != 0 ||
	    (rv = nng_dial(sock, url, NULL, 0)) != 0 ||
	    (rv = nng_send(sock, (void *) stats_request, sizeof(stats_request),
	         0)) != 0 ||
	    (rv = nng_recvmsg(sock, reply, 0)) != 0) {
		cli_error(&cli_cmd_stats, "no answer from %s: %s", url,
		    nng_strerror(rv));
		(void) nng_close(sock);
		return CLI_EXIT_USAGE;
	}
	(void) nng_close(sock);
	return CLI_EXIT_OK;
}

/* stats_get finds key in the map m, or NULL. */
static const msgpack_object *
stats_get(const msgpack_object *m, const char *key)
{
	size_t n = strlen(key);

	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0) {
			return &m->via.map.ptr[i].val;
		}
	}
	return NULL;
}

/* stats_cell prints the unsigned value at key in map m, or "-". */
static void
stats_cell(const msgpack_object *m, const char *key, int width)
{
	const msgpack_object *v = m != NULL && m->type == MSGPACK_OBJECT_MAP
	    ? stats_get(m, key)
	    : NULL;

	if (v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		printf(" %*llu", width, (unsigned long long) v->via.u64);
	} else {
		printf(" %*s", width, "-");
	}
}

/* stats_table prints the reply m as a table. */
static void
stats_table(const msgpack_object *m)
{
	const msgpack_object *pub = stats_get(m, "published_by_type");
	const msgpack_object *rej = stats_get(m, "rejected_by_type");

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

/* stats_json_print prints m as one line of JSON. */
static int
stats_json_print(const msgpack_object *m)
{
	json_t *j  = stats_json(m);
	char   *s  = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	int     rc = CLI_EXIT_OK;

	if (s != NULL) {
		printf("%s\n", s);
	} else {
		cli_error(&cli_cmd_stats, "%s", evb_strerror(EVB_ENOMEM));
		rc = CLI_EXIT_USAGE;
	}
	free(s);
	json_decref(j);
	return rc;
}

/* stats_print decodes the reply and prints it. */
static int
stats_print(nng_msg *reply, bool is_json)
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
	} else if (stats_get(&u.data, "error") != NULL) {
		int         elen, mlen;
		const char *e = stats_str(stats_get(&u.data, "error"), &elen);
		const char *m = stats_str(stats_get(&u.data, "message"), &mlen);

		cli_error(&cli_cmd_stats, "the broker refused: %.*s: %.*s",
		    elen, e, mlen, m);
	} else if (is_json) {
		rc = stats_json_print(&u.data);
	} else {
		stats_table(&u.data);
		rc = CLI_EXIT_OK;
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

static int
stats_run(int argc, char **argv)
{
	const char   *url     = NULL;
	bool          is_json = false;
	const cli_opt opts[]  = {
		 { "ctl", 0, NULL, &url },
		 { "json", 'j', &is_json, NULL },
		 { NULL, 0, NULL, NULL },
	};
	nng_msg *reply;
	int      first;
	int      rc;

	rc = cli_opts_parse_max(&cli_cmd_stats, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (url == NULL) {
		return cli_usage_error(&cli_cmd_stats, "--ctl URL is required");
	}
	if ((rc = stats_ask(url, &reply)) != CLI_EXIT_OK) {
		return rc;
	}
	rc = stats_print(reply, is_json);
	nng_msg_free(reply);
	return cli_output_finish(&cli_cmd_stats, rc);
}
