/*
 * proto_bench: decode + validate, and encode, of the realistic 302-byte
 * signal_generated event (envelope with seq and epoch, 8 data fields), on
 * one core.
 *
 *   proto_bench [N] [secs]     (defaults: 5000000 events, 5 s per part)
 *
 * Then proto_frame_head times evb_proto_frame_head, what the in-process
 * collector reads of each frame (and the compactor of each record), on
 * the event's frame as the broker publishes it; and proto_ingest_b64 the
 * broker's ingest path over messages as producers send them (no seq or
 * epoch): each an array of BENCH_BATCH events with ids of their own,
 * taken in turn from a pool of BENCH_POOL messages (about 2.5 MB, more
 * than a core's L2, so read from L3 rather than L1 or L2), through
 * evb_proto_ingest_begin/next and evb_proto_event_free.
 *
 * For scale, it first times msgpack-c's own msgpack_unpack() of the same
 * bytes (no validation, and unsafe on untrusted input: see
 * proto/proto_decode.c), so the ratio is measured in the same run.
 *
 * Latencies are per event, measured over chunks of BENCH_CHUNK events
 * (for ingest, the whole messages that fit in one) so
 * the clock's own cost does not dominate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "bench/bench.h"
#include "bench/bench_event.h"
#include "proto/proto.h"

#define BENCH_CHUNK 1000 /* Events per timed chunk. */
#define BENCH_BATCH 64   /* Events per ingest message (<= 255). */
#define BENCH_POOL 128   /* Ingest messages, used in turn. */

static const char bench_event_json[] = BENCH_EVENT_JSON;

static int
bench_fail(const char *what, int rv, const evb_diag *d)
{
	fprintf(stderr, "proto_bench: %s: %s %s\n", what, evb_strerror(rv),
	    d != NULL ? d->msg : "");
	return (1);
}

/*
 * A case runs one chunk of its operation and returns the events it did
 * (0: it failed, and said why on stderr). bench_timed times chunks until
 * n events or secs, and prints the case's line.
 */
typedef uint64_t (*bench_chunk_fn)(void *arg);

static int
bench_timed(
    const char *name, uint64_t n, double secs, bench_chunk_fn fn, void *arg)
{
	bench_samples s     = { 0 };
	uint64_t      done  = 0, t0, k;
	uint64_t      start = evb_clock_mono_ns();

	while (done < n) {
		t0 = evb_clock_mono_ns();
		if ((k = fn(arg)) == 0) {
			free(s.us);
			return (1);
		}
		done += k;
		bench_samples_add(
		    &s, (double) (evb_clock_mono_ns() - t0) / 1e3 / (double) k);
		if ((double) (evb_clock_mono_ns() - start) / 1e9 >= secs) {
			break;
		}
	}
	bench_report(
	    name, done, (double) (evb_clock_mono_ns() - start) / 1e9, &s);
	return (0);
}

/* What the cases of one event read and write. */
typedef struct bench_one {
	const evb_buf   *wire;  /* The event, encoded. */
	const evb_event *ev;    /* The event. */
	evb_buf         *out;   /* Encode's output. */
	evb_buf         *frame; /* Its frame, as the broker publishes it. */
	msgpack_zone    *zone;  /* For msgpack_unpack. */
} bench_one;

/* chunk_raw_unpack: msgpack-c's msgpack_unpack() with a reused zone. */
static uint64_t
chunk_raw_unpack(void *arg)
{
	bench_one *b = arg;

	for (int i = 0; i < BENCH_CHUNK; i++) {
		msgpack_object obj;
		size_t         off = 0;

		(void) msgpack_unpack((const char *) b->wire->data,
		    b->wire->len, &off, b->zone, &obj);
		msgpack_zone_clear(b->zone);
	}
	return (BENCH_CHUNK);
}

static uint64_t
chunk_decode(void *arg)
{
	bench_one *b = arg;
	evb_diag   d = { { 0 } };
	evb_event *e2;
	int        rv;

	for (int i = 0; i < BENCH_CHUNK; i++) {
		rv = evb_proto_event_decode(
		    &e2, b->wire->data, b->wire->len, &d);
		if (rv != EVB_OK) {
			(void) bench_fail("decode", rv, &d);
			return (0);
		}
		evb_proto_event_free(e2);
	}
	return (BENCH_CHUNK);
}

static uint64_t
chunk_encode(void *arg)
{
	bench_one *b = arg;
	int        rv;

	for (int i = 0; i < BENCH_CHUNK; i++) {
		evb_buf_reset(b->out);
		if ((rv = evb_proto_event_encode(b->ev, b->out)) != EVB_OK) {
			(void) bench_fail("encode", rv, NULL);
			return (0);
		}
	}
	return (BENCH_CHUNK);
}

static uint64_t
chunk_frame_head(void *arg)
{
	bench_one     *b = arg;
	evb_proto_head h;
	int            rv;

	for (int i = 0; i < BENCH_CHUNK; i++) {
		rv = evb_proto_frame_head(
		    b->frame->data, b->frame->len, &h, NULL);
		if (rv != EVB_OK) {
			(void) bench_fail("frame head", rv, NULL);
			return (0);
		}
	}
	return (BENCH_CHUNK);
}

/*
 * bench_pool_make encodes BENCH_POOL messages of BENCH_BATCH copies of ev,
 * each copy with its own 26-character id, into msgs (all initialised,
 * also on failure).
 */
static int
bench_pool_make(evb_event *ev, evb_buf msgs[BENCH_POOL])
{
	// An array 16 header (0xdc, big-endian count): the count fits in
	// its low byte.
	const uint8_t hdr[3] = { 0xdc, 0, BENCH_BATCH };
	evb_buf       one;
	int           rv = EVB_OK;

	_Static_assert(BENCH_BATCH <= 255, "the header holds one byte");
	evb_buf_init(&one);
	for (int m = 0; m < BENCH_POOL; m++) {
		evb_buf_init(&msgs[m]);
	}
	for (int m = 0; m < BENCH_POOL && rv == EVB_OK; m++) {
		rv = evb_buf_append(&msgs[m], hdr, sizeof(hdr));
		for (int i = 0; i < BENCH_BATCH && rv == EVB_OK; i++) {
			char id[27];

			(void) snprintf(id, sizeof(id), "01JBENCH%018d",
			    m * BENCH_BATCH + i);
			evb_buf_reset(&one);
			if ((rv = evb_proto_event_set_id(ev, id, 26)) ==
			        EVB_OK &&
			    (rv = evb_proto_event_encode(ev, &one)) == EVB_OK) {
				rv =
				    evb_buf_append(&msgs[m], one.data, one.len);
			}
		}
	}
	evb_buf_fini(&one);
	return (rv);
}

/* The ingest case's pool and where it is in it. */
typedef struct bench_pool {
	evb_buf msgs[BENCH_POOL];
	int     m; /* Next message. */
} bench_pool;

/* chunk_ingest takes the whole messages that fit in BENCH_CHUNK. */
static uint64_t
chunk_ingest(void *arg)
{
	bench_pool *p = arg;
	evb_diag    d = { { 0 } };

	for (int k = 0; k < BENCH_CHUNK / BENCH_BATCH; k++) {
		evb_proto_ingest it;
		evb_event       *e2;
		int              rv;

		rv = evb_proto_ingest_begin(
		    &it, p->msgs[p->m].data, p->msgs[p->m].len, &d);
		while (rv == EVB_OK &&
		    (rv = evb_proto_ingest_next(&it, &e2, &d)) == EVB_OK) {
			evb_proto_event_free(e2);
		}
		if (rv != EVB_EOF) {
			(void) bench_fail("ingest", rv, &d);
			return (0);
		}
		p->m = (p->m + 1) % BENCH_POOL;
	}
	return (BENCH_CHUNK / BENCH_BATCH * BENCH_BATCH);
}

/* bench_ingest times the ingest path over a pool of messages of the
 * benchmark's event as a producer sends it (no seq or epoch). */
static int
bench_ingest(uint64_t n, double secs)
{
	bench_pool *p  = calloc(1, sizeof(*p));
	evb_diag    d  = { { 0 } };
	evb_event  *ev = NULL;
	int         rv;

	if (p == NULL) {
		return (bench_fail("ingest pool", EVB_ENOMEM, NULL));
	}
	rv = evb_proto_event_from_json(
	    &ev, bench_event_json, strlen(bench_event_json), &d);
	if (rv != EVB_OK) {
		free(p);
		return (bench_fail("sample event", rv, &d));
	}
	if ((rv = bench_pool_make(ev, p->msgs)) != EVB_OK) {
		rv = bench_fail("ingest pool", rv, NULL);
	} else {
		rv = bench_timed("proto_ingest_b64", n, secs, chunk_ingest, p);
	}
	for (int i = 0; i < BENCH_POOL; i++) {
		evb_buf_fini(&p->msgs[i]);
	}
	free(p);
	evb_proto_event_free(ev);
	return (rv);
}

int
main(int argc, char **argv)
{
	uint64_t     n    = 5000000;
	double       secs = 5.0;
	evb_event   *ev;
	evb_buf      wire, out, frame;
	evb_diag     d = { { 0 } };
	msgpack_zone zone;
	bench_one    b = { &wire, NULL, &out, &frame, &zone };
	int          rv;

	bench_args(argc, argv, &n, &secs);
	rv = evb_proto_event_from_json(
	    &ev, bench_event_json, strlen(bench_event_json), &d);
	if (rv != EVB_OK) {
		return (bench_fail("sample event", rv, &d));
	}
	evb_proto_event_set_seq(ev, 123456789, 1764035400000000000ull);
	b.ev = ev;
	evb_buf_init(&wire);
	evb_buf_init(&out);
	evb_buf_init(&frame);
	if (!msgpack_zone_init(&zone, 4096)) {
		rv = bench_fail("msgpack zone", EVB_ENOMEM, NULL);
		goto bufs_fini;
	}
	if ((rv = evb_proto_event_encode(ev, &wire)) != EVB_OK ||
	    (rv = evb_proto_frame_encode(ev, &frame)) != EVB_OK) {
		rv = bench_fail("encode", rv, NULL);
		goto zone_fini;
	}
	fprintf(stderr, "event: %zu bytes of MessagePack\n", wire.len);
	rv = bench_timed("raw_msgpack_unpack", n, secs, chunk_raw_unpack, &b) ||
	    bench_timed("proto_decode_validate", n, secs, chunk_decode, &b) ||
	    bench_timed("proto_encode", n, secs, chunk_encode, &b) ||
	    bench_timed("proto_frame_head", n, secs, chunk_frame_head, &b) ||
	    bench_ingest(n, secs);
zone_fini:
	msgpack_zone_destroy(&zone);
bufs_fini:
	evb_buf_fini(&wire);
	evb_buf_fini(&out);
	evb_buf_fini(&frame);
	evb_proto_event_free(ev);
	return (rv);
}
