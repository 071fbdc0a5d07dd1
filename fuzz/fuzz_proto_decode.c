/*
 * fuzz_proto_decode: libFuzzer target for every proto entry point that
 * reads untrusted bytes (proto/proto.h): evb_proto_event_decode,
 * evb_proto_frame_decode, the ingest iterator and evb_proto_msg_extent.
 *
 * Besides "no crash, no sanitizer report", it checks properties that must
 * hold for any input, and abort()s when one fails, so libFuzzer saves
 * the input:
 *   - a failing call returns a documented code, fills the diag and leaves
 *     the out-param alone;
 *   - an accepted event re-encodes, decodes again, and re-encodes to the
 *     same bytes with the same accessors, and those bytes are what
 *     msgpack-c's packer writes for the same objects (with str keys): the
 *     encoding is canonical, whether proto copied the data's bytes or
 *     packed them;
 *     its topic fits EVB_PROTO_MAX_TOPIC; its frame decodes back;
 *   - bytes evb_proto_event_decode accepts are one whole object for
 *     evb_proto_msg_extent and one event for the ingest iterator;
 *   - the heads of frames and envelopes (evb_proto_frame_head,
 *     evb_proto_env_head) never crash, and where the decoder accepts the
 *     bytes they do too and read the same fields;
 *   - msg_extent fails only with EVB_EMALFORMED, its length is
 *     self-consistent, and no strict prefix of an object is an object;
 *   - the ingest iterator ends (EVB_EOF) within count + 2 calls (the
 *     elements, an error for trailing bytes, EVB_EOF).
 *
 * tests/unit/proto_corpus_test.c links this file into a criterion test
 * that replays fuzz/corpus/fuzz_proto_decode/ in every normal build.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_proto_decode"
#include <msgpack.h>

#include "fuzz/fuzz_check.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The out-param before a call, to prove a failed call left it alone. */
static int fuzz_sentinel_storage;
#define FUZZ_SENTINEL ((evb_event *) (void *) &fuzz_sentinel_storage)

/* fuzz_err_ok says whether rc is an error a decoder may return. */
static bool
fuzz_err_ok(int rc)
{
	return (rc == EVB_EMALFORMED || rc == EVB_ETOOBIG ||
	    rc == EVB_ESCHEMA || rc == EVB_ENOMEM);
}

/* fuzz_failed checks the shape of a failed call. */
static void
fuzz_failed(int rc, const evb_event *out, const evb_diag *d, const char *who)
{
	fuzz_check(fuzz_err_ok(rc), who);
	fuzz_check(out == FUZZ_SENTINEL, who);
	fuzz_check(d->msg[0] != '\0', who);
	fuzz_check(memchr(d->msg, '\0', sizeof(d->msg)) != NULL, who);
}

static bool
fuzz_str_eq(evb_str a, evb_str b)
{
	return (
	    a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0));
}

/* fuzz_same_event compares everything the accessors expose. */
static void
fuzz_same_event(const evb_event *a, const evb_event *b)
{
	fuzz_check(evb_proto_event_type(a) == evb_proto_event_type(b), "type");
	fuzz_check(
	    fuzz_str_eq(evb_proto_event_id(a), evb_proto_event_id(b)), "id");
	fuzz_check(
	    fuzz_str_eq(evb_proto_event_source(a), evb_proto_event_source(b)),
	    "source");
	fuzz_check(
	    fuzz_str_eq(evb_proto_event_corr(a), evb_proto_event_corr(b)),
	    "corr");
	fuzz_check(
	    fuzz_str_eq(evb_proto_event_route(a), evb_proto_event_route(b)),
	    "route");
	fuzz_check(
	    evb_proto_event_has_ts(a) == evb_proto_event_has_ts(b), "ts");
	fuzz_check(evb_proto_event_ts(a) == evb_proto_event_ts(b), "ts");
	fuzz_check(
	    evb_proto_event_has_seq(a) == evb_proto_event_has_seq(b), "seq");
	fuzz_check(evb_proto_event_seq(a) == evb_proto_event_seq(b), "seq");
	fuzz_check(
	    evb_proto_event_epoch(a) == evb_proto_event_epoch(b), "epoch");
}

/* fuzz_frame_round_trip: the event's frame decodes to the same event. */
static void
fuzz_frame_round_trip(const evb_event *ev, const evb_buf *enc)
{
	evb_buf    frame;
	evb_buf    again;
	evb_event *back = NULL;
	evb_diag   d    = { { 0 } };
	char       topic[EVB_PROTO_MAX_TOPIC];
	size_t     tlen = 0;

	fuzz_check(
	    evb_proto_event_topic(ev, topic, sizeof(topic), &tlen) == EVB_OK,
	    "EVB_PROTO_MAX_TOPIC must always suffice");
	evb_buf_init(&frame);
	evb_buf_init(&again);
	fuzz_check(
	    evb_proto_frame_encode(ev, &frame) == EVB_OK, "frame_encode");
	fuzz_check(frame.len == tlen + 1 + enc->len, "frame length");
	fuzz_check(memcmp(frame.data, topic, tlen) == 0, "frame topic");
	fuzz_check(frame.data[tlen] == 0x00, "frame separator");
	if (!evb_proto_event_has_seq(ev)) {
		// Only published events (with seq and epoch) are frames.
		fuzz_check(evb_proto_frame_decode(&back, frame.data, frame.len,
		               &d) == EVB_EMALFORMED,
		    "a frame without seq must be refused");
		evb_buf_fini(&frame);
		evb_buf_fini(&again);
		return;
	}
	fuzz_check(
	    evb_proto_frame_decode(&back, frame.data, frame.len, &d) == EVB_OK,
	    "our own frame must decode");
	fuzz_same_event(ev, back);
	fuzz_check(evb_proto_event_encode(back, &again) == EVB_OK, "encode");
	fuzz_check(again.len == enc->len &&
	        memcmp(again.data, enc->data, enc->len) == 0,
	    "frame round trip changed the event");
	evb_proto_event_free(back);
	evb_buf_fini(&again);
	evb_buf_fini(&frame);
}

/* fuzz_pack_canonical writes o with msgpack-c's packer, keys as str. */
static void
fuzz_pack_canonical(msgpack_packer *pk, const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_MAP) {
		fuzz_check(msgpack_pack_map(pk, o->via.map.size) == 0, "pack");
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;

			fuzz_check(k->type == MSGPACK_OBJECT_STR,
			    "our encoding wrote a key that is not a str");
			fuzz_check(msgpack_pack_str_with_body(pk,
			               k->via.str.ptr, k->via.str.size) == 0,
			    "pack");
			fuzz_pack_canonical(pk, &o->via.map.ptr[i].val);
		}
	} else if (o->type == MSGPACK_OBJECT_ARRAY) {
		fuzz_check(
		    msgpack_pack_array(pk, o->via.array.size) == 0, "pack");
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			fuzz_pack_canonical(pk, &o->via.array.ptr[i]);
		}
	} else {
		fuzz_check(msgpack_pack_object(pk, *o) == 0, "pack");
	}
}

/* fuzz_canonical checks enc against msgpack-c's own unpack and pack. */
static void
fuzz_canonical(const evb_buf *enc)
{
	msgpack_unpacked u;
	msgpack_sbuffer  sb;
	msgpack_packer   pk;

	msgpack_unpacked_init(&u);
	msgpack_sbuffer_init(&sb);
	fuzz_check(msgpack_unpack_next(&u, (const char *) enc->data, enc->len,
	               NULL) == MSGPACK_UNPACK_SUCCESS,
	    "msgpack-c cannot unpack our encoding");
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fuzz_pack_canonical(&pk, &u.data);
	fuzz_check(
	    sb.size == enc->len && memcmp(sb.data, enc->data, enc->len) == 0,
	    "our encoding is not msgpack-c's canonical form");
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&u);
}

/*
 * fuzz_round_trip: encode, decode, encode again; the two encodings and
 * the two JSON forms are identical, and the encoding is canonical.
 */
static void
fuzz_round_trip(const evb_event *ev)
{
	evb_buf    enc1;
	evb_buf    enc2;
	evb_buf    js1;
	evb_buf    js2;
	evb_event *ev2 = NULL;
	evb_diag   d   = { { 0 } };

	evb_buf_init(&enc1);
	evb_buf_init(&enc2);
	evb_buf_init(&js1);
	evb_buf_init(&js2);
	fuzz_check(evb_proto_event_encode(ev, &enc1) == EVB_OK, "encode");
	fuzz_canonical(&enc1);
	fuzz_check(
	    evb_proto_event_decode(&ev2, enc1.data, enc1.len, &d) == EVB_OK,
	    "our own encoding must decode");
	fuzz_same_event(ev, ev2);
	fuzz_check(evb_proto_event_encode(ev2, &enc2) == EVB_OK, "encode");
	fuzz_check(
	    enc1.len == enc2.len && memcmp(enc1.data, enc2.data, enc1.len) == 0,
	    "encode(decode(encode(ev))) != encode(ev)");
	fuzz_check(evb_proto_event_to_json(ev, &js1) == EVB_OK, "to_json");
	fuzz_check(evb_proto_event_to_json(ev2, &js2) == EVB_OK, "to_json");
	fuzz_check(js1.data[js1.len] == '\0', "to_json NUL");
	fuzz_check(
	    js1.len == js2.len && memcmp(js1.data, js2.data, js1.len) == 0,
	    "to_json differs after a round trip");
	fuzz_frame_round_trip(ev, &enc1);
	evb_proto_event_free(ev2);
	evb_buf_fini(&js2);
	evb_buf_fini(&js1);
	evb_buf_fini(&enc2);
	evb_buf_fini(&enc1);
}

/*
 * fuzz_head_agrees checks a head read from bytes that decode as ev: its
 * envelope fields, and some data fields (of every kind the compactor
 * reads) through each accessor.
 */
static void
fuzz_head_agrees(const evb_proto_head *h, const evb_event *ev)
{
	static const char *const fields[] = { "symbol", "volume", "ticket",
		"user_id", "bid", "details" };

	fuzz_check(h->type == evb_proto_event_type(ev), "head type");
	fuzz_check(fuzz_str_eq(h->id, evb_proto_event_id(ev)), "head id");
	fuzz_check(fuzz_str_eq(h->corr, evb_proto_event_corr(ev)), "head corr");
	fuzz_check(h->has_ts == evb_proto_event_has_ts(ev), "head has_ts");
	fuzz_check(h->ts == evb_proto_event_ts(ev), "head ts");
	fuzz_check(h->data != NULL, "head data");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		evb_str hs = { 0 }, es = { 0 };
		double  hn = 0, en = 0;
		int64_t hi = 0, ei = 0;

		fuzz_check(evb_proto_head_get_str(h, fields[i], &hs) ==
		            evb_proto_event_get_str(ev, fields[i], &es) &&
		        fuzz_str_eq(hs, es),
		    "head get_str");
		fuzz_check(evb_proto_head_get_num(h, fields[i], &hn) ==
		            evb_proto_event_get_num(ev, fields[i], &en) &&
		        hn == en,
		    "head get_num");
		fuzz_check(evb_proto_head_get_int(h, fields[i], &hi) ==
		            evb_proto_event_get_int(ev, fields[i], &ei) &&
		        hi == ei,
		    "head get_int");
	}
}

/*
 * fuzz_env_head reads an event's head from its bytes alone, which must
 * never crash on any input and, for bytes that decode (ev not NULL),
 * must succeed and agree with the decoder.
 */
static void
fuzz_env_head(const uint8_t *data, size_t size, const evb_event *ev)
{
	evb_proto_head h  = { .type = -2 };
	evb_diag       d  = { { 0 } };
	int            rc = evb_proto_env_head(data, size, &h, &d);

	if (rc != EVB_OK) {
		fuzz_check(rc == EVB_EMALFORMED, "env_head code");
		fuzz_check(h.type == -2, "env_head wrote its out-param");
		fuzz_check(d.msg[0] != '\0', "env_head diag");
		fuzz_check(
		    ev == NULL, "env_head refused an event that decodes");
		return;
	}
	fuzz_check(h.env == data && h.env_len == size, "env_head bounds");
	if (ev != NULL) {
		fuzz_head_agrees(&h, ev);
	}
}

static void
fuzz_event(const uint8_t *data, size_t size)
{
	evb_event       *ev  = FUZZ_SENTINEL;
	evb_event       *one = FUZZ_SENTINEL;
	evb_diag         d   = { { 0 } };
	evb_proto_ingest it;
	size_t           n = 0;
	int              rc;

	rc = evb_proto_event_decode(&ev, data, size, &d);
	if (rc != EVB_OK) {
		fuzz_failed(rc, ev, &d, "event_decode");
		fuzz_env_head(data, size, NULL);
		return;
	}
	fuzz_env_head(data, size, ev);
	fuzz_check(ev != FUZZ_SENTINEL && ev != NULL, "event_decode out");
	fuzz_check(evb_proto_event_type(ev) >= 0 &&
	        (size_t) evb_proto_event_type(ev) < evb_proto_type_count(),
	    "type index");
	fuzz_round_trip(ev);
	/* What decode accepts is one whole object and one ingest event. */
	fuzz_check(evb_proto_msg_extent(data, size, &n, &d) == EVB_OK,
	    "extent refuses an accepted event");
	fuzz_check(n == size, "extent disagrees with decode on the length");
	fuzz_check(evb_proto_ingest_begin(&it, data, size, &d) == EVB_OK,
	    "ingest refuses an accepted event");
	fuzz_check(!it.is_batch && it.count == 1, "ingest count");
	fuzz_check(evb_proto_ingest_next(&it, &one, &d) == EVB_OK,
	    "ingest refuses an accepted event");
	fuzz_same_event(ev, one);
	evb_proto_event_free(one);
	one = FUZZ_SENTINEL;
	fuzz_check(
	    evb_proto_ingest_next(&it, &one, &d) == EVB_EOF, "ingest EOF");
	fuzz_check(one == FUZZ_SENTINEL, "ingest EOF out");
	evb_proto_event_free(ev);
}

/*
 * fuzz_head reads the frame's head, which must never crash on any input
 * and, for a frame that decodes (ev not NULL), must succeed and agree
 * with the decoder on every field it reads.
 */
static void
fuzz_head(const uint8_t *data, size_t size, const evb_event *ev)
{
	evb_proto_head h  = { .type = -2 };
	evb_diag       d  = { { 0 } };
	int            rc = evb_proto_frame_head(data, size, &h, &d);

	if (rc != EVB_OK) {
		fuzz_check(rc == EVB_EMALFORMED, "frame_head code");
		fuzz_check(h.type == -2, "frame_head wrote its out-param");
		fuzz_check(d.msg[0] != '\0', "frame_head diag");
		fuzz_check(
		    ev == NULL, "frame_head refused a frame that decodes");
		return;
	}
	fuzz_check(h.env >= data && h.env + h.env_len == data + size,
	    "frame_head envelope bounds");
	if (ev == NULL) {
		return;
	}
	fuzz_head_agrees(&h, ev);
	fuzz_check(h.seq == evb_proto_event_seq(ev), "head seq");
	fuzz_check(h.epoch == evb_proto_event_epoch(ev), "head epoch");
}

static void
fuzz_frame(const uint8_t *data, size_t size)
{
	evb_event *ev = FUZZ_SENTINEL;
	evb_diag   d  = { { 0 } };
	int        rc;

	rc = evb_proto_frame_decode(&ev, data, size, &d);
	if (rc != EVB_OK) {
		fuzz_failed(rc, ev, &d, "frame_decode");
		fuzz_head(data, size, NULL);
		return;
	}
	fuzz_head(data, size, ev);
	fuzz_round_trip(ev);
	evb_proto_event_free(ev);
}

static void
fuzz_ingest(const uint8_t *data, size_t size)
{
	evb_proto_ingest it;
	evb_diag         d     = { { 0 } };
	size_t           calls = 0;
	size_t           limit;
	int              rc;

	rc = evb_proto_ingest_begin(&it, data, size, &d);
	if (rc != EVB_OK) {
		fuzz_check(rc == EVB_EMALFORMED || rc == EVB_ETOOBIG,
		    "ingest_begin code");
		fuzz_check(d.msg[0] != '\0', "ingest_begin diag");
		return;
	}
	fuzz_check(
	    it.count >= 1 && it.count <= EVB_PROTO_MAX_BATCH, "ingest count");
	/*
	 * Every element takes a byte at least, so size bounds the calls:
	 * the elements, one EVB_EMALFORMED for trailing bytes, then EVB_EOF.
	 */
	limit = (it.count < size ? it.count : size) + 2;
	for (;;) {
		evb_event *ev    = FUZZ_SENTINEL;
		size_t     index = it.index;

		memset(&d, 0, sizeof(d));
		rc = evb_proto_ingest_next(&it, &ev, &d);
		calls++;
		fuzz_check(calls <= limit, "ingest iterator does not end");
		if (rc == EVB_EOF) {
			fuzz_check(ev == FUZZ_SENTINEL, "ingest EOF out");
			break;
		}
		fuzz_check(it.index == index + 1, "ingest index");
		if (it.index > it.count) {
			/* Only trailing bytes after the last element. */
			fuzz_check(
			    it.index == it.count + 1 && rc == EVB_EMALFORMED,
			    "ingest index past count");
		}
		if (rc != EVB_OK) {
			fuzz_failed(rc, ev, &d, "ingest_next");
			continue;
		}
		fuzz_check(ev != FUZZ_SENTINEL && ev != NULL, "ingest out");
		evb_proto_event_free(ev);
	}
	fuzz_check(
	    evb_proto_ingest_next(&it, &(evb_event *) { NULL }, &d) == EVB_EOF,
	    "ingest EOF is sticky");
}

static void
fuzz_extent(const uint8_t *data, size_t size)
{
	evb_diag d  = { { 0 } };
	size_t   n  = 0;
	size_t   n2 = 0;
	int      rc;

	rc = evb_proto_msg_extent(data, size, &n, &d);
	if (rc != EVB_OK) {
		/* Extent only delimits: its one failure is running out. */
		fuzz_check(rc == EVB_EMALFORMED, "extent code");
		fuzz_check(d.msg[0] != '\0', "extent diag");
		return;
	}
	fuzz_check(n >= 1 && n <= size, "extent length");
	fuzz_check(evb_proto_msg_extent(data, n, &n2, &d) == EVB_OK && n2 == n,
	    "extent of exactly the object");
	/* MessagePack is self-delimiting: no strict prefix is an object. */
	fuzz_check(evb_proto_msg_extent(data, n - 1, &n2, &d) != EVB_OK,
	    "a strict prefix of an object is an object");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_event(data, size);
	fuzz_frame(data, size);
	fuzz_ingest(data, size);
	fuzz_extent(data, size);
	return (0);
}
