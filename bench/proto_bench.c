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
 * Latencies are per event, measured over chunks of BENCH_CHUNK events so
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

/* bench_raw_unpack times msgpack-c's msgpack_unpack() with a reused zone. */
static void
bench_raw_unpack(const evb_buf *wire, uint64_t n, double secs)
{
	bench_samples s = { 0 };
	msgpack_zone  zone;
	uint64_t      done, t0, start;

	if (!msgpack_zone_init(&zone, 4096)) {
		return;
	}
	start = evb_clock_mono_ns();
	for (done = 0; done < n; done += BENCH_CHUNK) {
		t0 = evb_clock_mono_ns();
		for (int i = 0; i < BENCH_CHUNK; i++) {
			msgpack_object obj;
			size_t         off = 0;

			(void) msgpack_unpack((const char *) wire->data,
			    wire->len, &off, &zone, &obj);
			msgpack_zone_clear(&zone);
		}
		bench_samples_add(&s,
		    (double) (evb_clock_mono_ns() - t0) / 1e3 / BENCH_CHUNK);
		if ((double) (evb_clock_mono_ns() - start) / 1e9 >= secs) {
			done += BENCH_CHUNK;
			break;
		}
	}
	bench_report("raw_msgpack_unpack", done,
	    (double) (evb_clock_mono_ns() - start) / 1e9, &s);
	msgpack_zone_destroy(&zone);
}

/* bench_frame_head times evb_proto_frame_head on ev's frame. */
static int
bench_frame_head(const evb_event *ev, uint64_t n, double secs)
{
	bench_samples  s = { 0 };
	evb_buf        frame;
	evb_proto_head h;
	uint64_t       done, t0, start;
	int            rv;

	evb_buf_init(&frame);
	if ((rv = evb_proto_frame_encode(ev, &frame)) != EVB_OK) {
		evb_buf_fini(&frame);
		return (bench_fail("frame encode", rv, NULL));
	}
	start = evb_clock_mono_ns();
	for (done = 0; done < n; done += BENCH_CHUNK) {
		t0 = evb_clock_mono_ns();
		for (int i = 0; i < BENCH_CHUNK; i++) {
			rv = evb_proto_frame_head(
			    frame.data, frame.len, &h, NULL);
			if (rv != EVB_OK) {
				evb_buf_fini(&frame);
				return (bench_fail("frame head", rv, NULL));
			}
		}
		bench_samples_add(&s,
		    (double) (evb_clock_mono_ns() - t0) / 1e3 / BENCH_CHUNK);
		if ((double) (evb_clock_mono_ns() - start) / 1e9 >= secs) {
			done += BENCH_CHUNK;
			break;
		}
	}
	bench_report("proto_frame_head", done,
	    (double) (evb_clock_mono_ns() - start) / 1e9, &s);
	evb_buf_fini(&frame);
	return (0);
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

/* bench_ingest times the ingest path over a pool of messages of the
 * benchmark's event as a producer sends it (no seq or epoch). */
static int
bench_ingest(uint64_t n, double secs)
{
	evb_buf       msgs[BENCH_POOL];
	bench_samples s    = { 0 };
	evb_diag      d    = { { 0 } };
	evb_event    *ev   = NULL;
	uint64_t      done = 0, t0, start;
	int           rv, m = 0;

	rv = evb_proto_event_from_json(
	    &ev, bench_event_json, strlen(bench_event_json), &d);
	if (rv != EVB_OK) {
		return (bench_fail("sample event", rv, &d));
	}
	if ((rv = bench_pool_make(ev, msgs)) != EVB_OK) {
		(void) bench_fail("ingest pool", rv, NULL);
		goto done;
	}
	start = evb_clock_mono_ns();
	while (done < n) {
		t0 = evb_clock_mono_ns();
		for (int k = 0; k < BENCH_CHUNK / BENCH_BATCH; k++) {
			evb_proto_ingest it;
			evb_event       *e2;

			rv = evb_proto_ingest_begin(
			    &it, msgs[m].data, msgs[m].len, &d);
			while (rv == EVB_OK &&
			    (rv = evb_proto_ingest_next(&it, &e2, &d)) ==
			        EVB_OK) {
				evb_proto_event_free(e2);
			}
			if (rv != EVB_EOF) {
				(void) bench_fail("ingest", rv, &d);
				goto done;
			}
			m = (m + 1) % BENCH_POOL;
			done += BENCH_BATCH;
		}
		// A chunk is the whole messages that fit in BENCH_CHUNK.
		bench_samples_add(&s,
		    (double) (evb_clock_mono_ns() - t0) / 1e3 /
		        (BENCH_CHUNK / BENCH_BATCH * BENCH_BATCH));
		if ((double) (evb_clock_mono_ns() - start) / 1e9 >= secs) {
			break;
		}
	}
	bench_report("proto_ingest_b64", done,
	    (double) (evb_clock_mono_ns() - start) / 1e9, &s);
	rv = EVB_EOF;
done:
	for (int i = 0; i < BENCH_POOL; i++) {
		evb_buf_fini(&msgs[i]);
	}
	evb_proto_event_free(ev);
	return (rv == EVB_EOF ? 0 : 1);
}

int
main(int argc, char **argv)
{
	uint64_t      n    = 5000000;
	double        secs = 5.0;
	evb_event    *ev;
	evb_buf       wire, out;
	evb_diag      d = { { 0 } };
	bench_samples s = { 0 };
	uint64_t      done, t0, start;
	int           rv;

	bench_args(argc, argv, &n, &secs);
	rv = evb_proto_event_from_json(
	    &ev, bench_event_json, strlen(bench_event_json), &d);
	if (rv != EVB_OK) {
		return (bench_fail("sample event", rv, &d));
	}
	evb_proto_event_set_seq(ev, 123456789, 1764035400000000000ull);
	evb_buf_init(&wire);
	evb_buf_init(&out);
	if ((rv = evb_proto_event_encode(ev, &wire)) != EVB_OK) {
		return (bench_fail("encode", rv, NULL));
	}
	fprintf(stderr, "event: %zu bytes of MessagePack\n", wire.len);

	bench_raw_unpack(&wire, n, secs);

	start = evb_clock_mono_ns();
	for (done = 0; done < n; done += BENCH_CHUNK) {
		t0 = evb_clock_mono_ns();
		for (int i = 0; i < BENCH_CHUNK; i++) {
			evb_event *e2;

			rv = evb_proto_event_decode(
			    &e2, wire.data, wire.len, &d);
			if (rv != EVB_OK) {
				return (bench_fail("decode", rv, &d));
			}
			evb_proto_event_free(e2);
		}
		bench_samples_add(&s,
		    (double) (evb_clock_mono_ns() - t0) / 1e3 / BENCH_CHUNK);
		if ((double) (evb_clock_mono_ns() - start) / 1e9 >= secs) {
			done += BENCH_CHUNK;
			break;
		}
	}
	bench_report("proto_decode_validate", done,
	    (double) (evb_clock_mono_ns() - start) / 1e9, &s);

	start = evb_clock_mono_ns();
	for (done = 0; done < n; done += BENCH_CHUNK) {
		t0 = evb_clock_mono_ns();
		for (int i = 0; i < BENCH_CHUNK; i++) {
			evb_buf_reset(&out);
			if ((rv = evb_proto_event_encode(ev, &out)) != EVB_OK) {
				return (bench_fail("encode", rv, NULL));
			}
		}
		bench_samples_add(&s,
		    (double) (evb_clock_mono_ns() - t0) / 1e3 / BENCH_CHUNK);
		if ((double) (evb_clock_mono_ns() - start) / 1e9 >= secs) {
			done += BENCH_CHUNK;
			break;
		}
	}
	bench_report("proto_encode", done,
	    (double) (evb_clock_mono_ns() - start) / 1e9, &s);

	if (bench_frame_head(ev, n, secs) != 0 || bench_ingest(n, secs) != 0) {
		return (1);
	}

	evb_buf_fini(&wire);
	evb_buf_fini(&out);
	evb_proto_event_free(ev);
	return (0);
}
