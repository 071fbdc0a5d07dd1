/*
 * broker_ctl.c: the control endpoint, a rep0 socket answering repair and
 * stats requests, one at a time, on its own thread. The request and
 * reply bytes are specified in docs/protocol.md, "Control endpoint";
 * a change here changes that section, the `evbus stats` decoder
 * (cli/cmd_stats.c) and tests/integration/broker_test.c with it.
 *
 * Requests come from the network, so they are read with the same care
 * as events: at most BROKER_CTL_REQ_MAX_BYTES (nng refuses larger ones), and
 * evb_proto_msg_extent must find exactly one MessagePack object in them
 * before msgpack-c unpacks it. That bounds what msgpack-c allocates by
 * the request's length, whatever its headers claim.
 *
 * A reply waits at most BROKER_CTL_SEND_MS (the socket's send timeout)
 * for its requester's connection, which rep0 writes one reply at a time:
 * a peer that sent several requests and stopped reading costs the
 * thread that long per request, not forever. The reply is then dropped
 * and counted in ctl_unsent; the requester asks again.
 *
 * A repair reads the ring with evb_broker_read and no wait: the ring
 * either holds the range, or has evicted its start (the reply says so,
 * with the oldest seq it holds), or the range is not published yet (an
 * empty list of frames). Replies stay under nng's default receive limit
 * of 1 MiB, so any client can read them without raising it.
 */
#include <msgpack.h>
#include <string.h>

#include "broker/broker_int.h"

/*
 * Frame bytes in one repair reply: under nng's default NNG_OPT_RECVMAXSZ
 * (1 MiB) with room for the map and the bin headers. A frame is at most
 * about 66 KiB, so a reply always has room for at least one.
 */
#define CTL_REPAIR_MAX_BYTES ((size_t) 960 << 10)
#define CTL_REPAIR_MAX_FRAMES 10000 /* Frames in one reply ("max" cap). */
#define CTL_LOG_WINDOW_MS 10000     /* Bad-request lines: a burst per */
#define CTL_LOG_BURST 5             /* window. */
#define CTL_QUOTE_MAX 32            /* Bytes of an op or key in a message, */
#define CTL_QUOTE_CAP (4 * CTL_QUOTE_MAX + 1) /* escaped (\xNN each). */

/* A decoded request. */
typedef struct ctl_req {
	const char *op;        /* "repair", "stats" (points into the zone). */
	size_t      op_len;    /* Bytes in op. */
	uint64_t    epoch;     /* repair: the epoch the seqs belong to. */
	uint64_t    from;      /* repair: the first seq wanted. */
	uint64_t    max;       /* repair: frames wanted, 1..10000. */
	bool        has_epoch; /* Each field was present. */
	bool        has_from;
	bool        has_max;
} ctl_req;

/* ctl_key_is compares a map key (str or bin) with name. */
static bool
ctl_key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	if (k->type == MSGPACK_OBJECT_STR) {
		return k->via.str.size == n &&
		    memcmp(k->via.str.ptr, name, n) == 0;
	}
	if (k->type == MSGPACK_OBJECT_BIN) {
		return k->via.bin.size == n &&
		    memcmp(k->via.bin.ptr, name, n) == 0;
	}
	return false;
}

/* ctl_uint reads a non-negative integer field. */
static bool
ctl_uint(const msgpack_object *v, uint64_t *out, bool *has)
{
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		return false;
	}
	*out = v->via.u64;
	*has = true;
	return true;
}

/*
 * ctl_req_read fills r from the map o. On a bad request it writes why
 * into diag and returns EVB_EMALFORMED.
 */
static int
ctl_req_read(const msgpack_object *o, ctl_req *r, evb_diag *diag)
{
	memset(r, 0, sizeof(*r));
	if (o->type != MSGPACK_OBJECT_MAP) {
		evb_diag_set(diag, "a request is a map");
		return EVB_EMALFORMED;
	}
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k  = &o->via.map.ptr[i].key;
		const msgpack_object *v  = &o->via.map.ptr[i].val;
		bool                  ok = true;

		if (ctl_key_is(k, "op")) {
			ok = v->type == MSGPACK_OBJECT_STR;
			if (ok) {
				r->op     = v->via.str.ptr;
				r->op_len = v->via.str.size;
			}
		} else if (ctl_key_is(k, "epoch")) {
			ok = ctl_uint(v, &r->epoch, &r->has_epoch);
		} else if (ctl_key_is(k, "from")) {
			ok = ctl_uint(v, &r->from, &r->has_from);
		} else if (ctl_key_is(k, "max")) {
			ok = ctl_uint(v, &r->max, &r->has_max);
		}
		// Other keys are ignored, so clients may add some.
		if (!ok) {
			// Only the four known keys get here; they are str/bin.
			char key[CTL_QUOTE_CAP];

			(void) evb_diag_escape(key, sizeof(key), k->via.str.ptr,
			    k->via.str.size, CTL_QUOTE_MAX);
			evb_diag_set(diag, "%s: expected %s", key,
			    ctl_key_is(k, "op") ? "a string"
			                        : "a non-negative integer");
			return EVB_EMALFORMED;
		}
	}
	if (r->op == NULL) {
		evb_diag_set(diag, "op: required field missing");
		return EVB_EMALFORMED;
	}
	return EVB_OK;
}

/* ---- Replies ----------------------------------------------------------- */

/*
 * The reply buffer. msgpack-c's packer ignores a failed write and goes
 * on, so the writer makes a failure sticky: after one, nothing more is
 * written and ctl_reply sends ctl_nomem_reply instead of a torn map.
 */
typedef struct ctl_out {
	msgpack_sbuffer sb;        /* The reply so far. */
	bool            is_failed; /* A write failed (out of memory). */
} ctl_out;

/* {"error": "internal", "message": "Out of memory"} */
static const uint8_t ctl_nomem_reply[] = { 0x82, 0xa5, 'e', 'r', 'r', 'o', 'r',
	0xa8, 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0xa7, 'm', 'e', 's', 's',
	'a', 'g', 'e', 0xad, 'O', 'u', 't', ' ', 'o', 'f', ' ', 'm', 'e', 'm',
	'o', 'r', 'y' };

static int
ctl_write(void *data, const char *buf, size_t len)
{
	ctl_out *o = data;

	if (o->is_failed || msgpack_sbuffer_write(&o->sb, buf, len) != 0) {
		o->is_failed = true;
		return -1;
	}
	return 0;
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	(void) msgpack_pack_str(pk, n);
	(void) msgpack_pack_str_body(pk, s, n);
}

static void
pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
	pack_str(pk, key);
	(void) msgpack_pack_uint64(pk, v);
}

/* ctl_error packs {"error": what, "message": text}. */
static void
ctl_error(msgpack_packer *pk, const char *what, const char *text)
{
	(void) msgpack_pack_map(pk, 2);
	pack_str(pk, "error");
	pack_str(pk, what);
	pack_str(pk, "message");
	pack_str(pk, text);
}

/* ctl_pack_types packs published_by_type and rejected_by_type. */
static void
ctl_pack_types(msgpack_packer *pk, const evb_broker_stat *st)
{
	static const char *const reasons[EVB_BROKER_REASONS] = { "malformed",
		"schema", "too_big" };
	size_t                   nt = evb_proto_type_count();

	pack_str(pk, "published_by_type");
	(void) msgpack_pack_map(pk, nt);
	for (size_t t = 0; t < nt; t++) {
		pack_kv_u64(
		    pk, evb_proto_type_name((int) t), st->published_by_type[t]);
	}
	pack_str(pk, "rejected_by_type");
	(void) msgpack_pack_map(pk, nt + 1);
	for (size_t t = 0; t <= nt; t++) {
		size_t slot = t < nt ? t : BROKER_TYPE_UNKNOWN;

		pack_str(pk, t < nt ? evb_proto_type_name((int) t) : "unknown");
		(void) msgpack_pack_map(pk, EVB_BROKER_REASONS);
		for (int r = 0; r < EVB_BROKER_REASONS; r++) {
			pack_kv_u64(
			    pk, reasons[r], st->rejected_by_type[slot][r]);
		}
	}
}

/* ctl_sections counts the sections of the n extra counters in x. */
static size_t
ctl_sections(const evb_broker_extra *x, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		k += i == 0 || strcmp(x[i].section, x[i - 1].section) != 0;
	}
	return k;
}

/* ctl_pack_extra packs each section of x as a map of its counters. */
static void
ctl_pack_extra(msgpack_packer *pk, const evb_broker_extra *x, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j < n && strcmp(x[j].section, x[i].section) == 0) {
			j++;
		}
		(void) msgpack_pack_str_with_body(
		    pk, x[i].section, strlen(x[i].section));
		(void) msgpack_pack_map(pk, (uint32_t) (j - i));
		for (; i < j; i++) {
			pack_kv_u64(pk, x[i].key, x[i].value);
		}
	}
}

/*
 * ctl_pack_counters opens the stats reply's map, of the counters and
 * more entries after them, and packs the counters of st in the order
 * docs/protocol.md gives (add a counter there too).
 */
static void
ctl_pack_counters(msgpack_packer *pk, const evb_broker_stat *st, size_t more)
{
	const struct {
		const char *key;
		uint64_t    value;
	} sc[] = {
		{ "epoch", st->epoch },
		{ "last_seq", st->last_seq },
		{ "msgs_in", st->msgs_in },
		{ "msgs_refused", st->msgs_refused },
		{ "msgs_trailing", st->msgs_trailing },
		{ "events_in", st->events_in },
		{ "published", st->published },
		{ "rejected", st->rejected },
		{ "bytes_in", st->bytes_in },
		{ "ring_first_seq", st->ring_first_seq },
		{ "ring_bytes", st->ring_bytes },
		{ "ring_evicted", st->ring_evicted },
		{ "repairs_served", st->repairs_served },
		{ "repair_frames", st->repair_frames },
		{ "confirm_msgs", st->confirm_msgs },
		{ "confirm_replies", st->confirm_replies },
		{ "confirm_unsent", st->confirm_unsent },
		{ "subscribers", st->subscribers },
		{ "ctl_unsent", st->ctl_unsent },
		{ "recv_errors", st->recv_errors },
		{ "pub_send_failed", st->pub_send_failed },
	};
	size_t n = sizeof(sc) / sizeof(sc[0]);

	(void) msgpack_pack_map(pk, (uint32_t) (n + more));
	for (size_t i = 0; i < n; i++) {
		pack_kv_u64(pk, sc[i].key, sc[i].value);
	}
}

/* ctl_stats packs the stats reply: every counter of evb_broker_stat,
 * then the sections of the extra counters. */
static void
ctl_stats(evb_broker *b, msgpack_packer *pk)
{
	evb_broker_stat  st;
	evb_broker_extra x[EVB_BROKER_EXTRA_MAX];
	size_t           nx = 0;

	evb_broker_stats(b, &st);
	if (b->opts.stats_extra != NULL) {
		nx = b->opts.stats_extra(
		    b->opts.stats_extra_arg, x, EVB_BROKER_EXTRA_MAX);
		nx = nx < EVB_BROKER_EXTRA_MAX ? nx : EVB_BROKER_EXTRA_MAX;
	}
	// The two per-type maps and one entry per section follow them.
	ctl_pack_counters(pk, &st, 2 + ctl_sections(x, nx));
	ctl_pack_types(pk, &st);
	ctl_pack_extra(pk, x, nx);
}

/* ctl_frames packs the n frames of buf (4-byte length, bytes) as bins. */
static void
ctl_frames(msgpack_packer *pk, const evb_buf *buf, size_t n)
{
	size_t pos = 0;

	(void) msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++) {
		uint32_t len = evb_get_be32(buf->data + pos);

		(void) msgpack_pack_bin(pk, len);
		(void) msgpack_pack_bin_body(pk, buf->data + pos + 4, len);
		pos += 4 + (size_t) len;
	}
}

/* ctl_repair answers a repair request. */
static void
ctl_repair(evb_broker *b, const ctl_req *r, msgpack_packer *pk)
{
	evb_buf  buf;
	size_t   n     = 0;
	uint64_t first = r->from;
	uint64_t max   = r->has_max ? r->max : CTL_REPAIR_MAX_FRAMES;
	int      rc;

	if (!r->has_epoch || !r->has_from) {
		ctl_error(pk, "request", "repair needs epoch and from");
		return;
	}
	if (max == 0 || max > CTL_REPAIR_MAX_FRAMES) {
		max = CTL_REPAIR_MAX_FRAMES;
	}
	atomic_fetch_add(&b->repairs_served, 1);
	if (r->epoch != b->epoch) {
		(void) msgpack_pack_map(pk, 2);
		pack_str(pk, "error");
		pack_str(pk, "epoch");
		pack_kv_u64(pk, "epoch", b->epoch);
		return;
	}
	evb_buf_init(&buf);
	rc = evb_broker_read(b, r->from, (size_t) max, CTL_REPAIR_MAX_BYTES, 0,
	    &buf, &n, &first);
	if (rc == EVB_ENOTFOUND) {
		(void) msgpack_pack_map(pk, 2);
		pack_str(pk, "error");
		pack_str(pk, "evicted");
		pack_kv_u64(pk, "first", first);
	} else if (rc == EVB_OK || rc == EVB_ETIMEDOUT) {
		// ETIMEDOUT: from is not published yet; nothing to send.
		(void) msgpack_pack_map(pk, 3);
		pack_kv_u64(pk, "epoch", b->epoch);
		pack_kv_u64(pk, "first", r->from);
		pack_str(pk, "frames");
		ctl_frames(pk, &buf, n);
	} else {
		ctl_error(pk, "internal", evb_strerror(rc));
	}
	if (rc == EVB_OK) {
		// (With EVB_ENOTFOUND, n is what the ring holds, not sent.)
		atomic_fetch_add(&b->repair_frames, n);
	}
	evb_buf_fini(&buf);
}

/*
 * ctl_answer decodes the request in req and packs the reply into pk.
 * diag gets the reason of a bad request, for the log.
 */
static void
ctl_answer(evb_broker *b, nng_msg *req, msgpack_packer *pk, evb_diag *diag)
{
	const char      *p   = nng_msg_body(req);
	size_t           len = nng_msg_len(req);
	size_t           n   = 0;
	msgpack_unpacked u;
	ctl_req          r;

	if (evb_proto_msg_extent(p, len, &n, diag) != EVB_OK || n != len) {
		if (diag->msg[0] == '\0') {
			evb_diag_set(
			    diag, "%zu bytes after the request", len - n);
		}
		ctl_error(pk, "request", diag->msg);
		return;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, p, len, NULL) != MSGPACK_UNPACK_SUCCESS) {
		evb_diag_set(diag, "not a MessagePack object");
		ctl_error(pk, "request", diag->msg);
	} else if (ctl_req_read(&u.data, &r, diag) != EVB_OK) {
		ctl_error(pk, "request", diag->msg);
	} else if (r.op_len == 6 && memcmp(r.op, "repair", 6) == 0) {
		ctl_repair(b, &r, pk);
	} else if (r.op_len == 5 && memcmp(r.op, "stats", 5) == 0) {
		ctl_stats(b, pk);
	} else {
		// op is the requester's bytes, not even checked as UTF-8: it
		// goes into the reply and the log line escaped.
		char op[CTL_QUOTE_CAP];

		(void) evb_diag_escape(
		    op, sizeof(op), r.op, r.op_len, CTL_QUOTE_MAX);
		evb_diag_set(diag, "op: unknown operation \"%s\"", op);
		ctl_error(pk, "request", diag->msg);
	}
	msgpack_unpacked_destroy(&u);
}

/*
 * ctl_reply puts the reply in msg (the request's, reused) and sends it,
 * waiting at most BROKER_CTL_SEND_MS for the requester's connection. A
 * reply not sent is counted in ctl_unsent; returns nng's error.
 */
static int
ctl_reply(evb_broker *b, nng_msg *msg, const ctl_out *out)
{
	const void *p   = out->sb.data;
	size_t      len = out->sb.size;
	int         rv;

	if (out->is_failed) {
		p   = ctl_nomem_reply;
		len = sizeof(ctl_nomem_reply);
	}
	nng_msg_clear(msg);
	if ((rv = nng_msg_append(msg, p, len)) == 0) {
		rv = nng_sendmsg(b->ctl, msg, 0);
	}
	if (rv != 0) {
		// nng keeps the message only when the send succeeds.
		nng_msg_free(msg);
		atomic_fetch_add(&b->ctl_unsent, 1);
	}
	return rv;
}

void *
ctl_main(void *arg)
{
	evb_broker    *b   = arg;
	evb_ratelimit  rl  = { 0 };
	ctl_out        out = { .is_failed = false };
	msgpack_packer pk;

	evb_thread_name("evb:ctl");
	rl.window_ms = CTL_LOG_WINDOW_MS;
	rl.burst     = CTL_LOG_BURST;
	msgpack_sbuffer_init(&out.sb);
	msgpack_packer_init(&pk, &out, ctl_write);
	for (;;) {
		nng_msg *msg;
		evb_diag diag = { "" };
		int      rv;

		if ((rv = nng_recvmsg(b->ctl, &msg, 0)) == NNG_ECLOSED) {
			break;
		}
		if (rv == 0) {
			msgpack_sbuffer_clear(&out.sb);
			out.is_failed = false;
			ctl_answer(b, msg, &pk, &diag);
			rv = ctl_reply(b, msg, &out);
		}
		if (rv == NNG_ECLOSED) {
			break;
		}
		if (rv == NNG_ETIMEDOUT &&
		    evb_ratelimit_allow(&rl, evb_clock_mono_ms(), NULL)) {
			evb_log(EVB_LOG_WARNING, "EVB-BROKER-CTL",
			    "a control reply was dropped: its requester had "
			    "not "
			    "read its previous reply within %d ms (counted in "
			    "ctl_unsent; a requester should read each reply "
			    "before it sends the next request)",
			    BROKER_CTL_SEND_MS);
		} else if ((rv != 0 || diag.msg[0] != '\0') &&
		    evb_ratelimit_allow(&rl, evb_clock_mono_ms(), NULL)) {
			evb_log(EVB_LOG_WARNING, "EVB-BROKER-CTL",
			    "control request failed: %s; see docs/protocol.md, "
			    "\"Control endpoint\"",
			    rv != 0 ? nng_strerror(rv) : diag.msg);
		}
	}
	msgpack_sbuffer_destroy(&out.sb);
	return NULL;
}
