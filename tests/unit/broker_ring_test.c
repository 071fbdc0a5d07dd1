/*
 * broker_ring_test.c: the broker's repair ring, through its public face,
 * evb_broker_read, on a broker opened in this process with a small ring
 * and loopback ports from tests/support. Events go in through a push0
 * socket to the broker's ingest endpoint, as a producer's would.
 *
 * Covers eviction by bytes, O(1) lookup of any held seq, the limits of
 * one read, waiting for a seq not yet published (with a timeout, and
 * woken by stop), and the errors that evb_broker_open, evb_broker_start
 * and evb_broker_read list in broker/broker.h.
 */
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "tests/support/support.h"

#define RING_TEST_TIMEOUT_S 60
#define RING_WAIT_MS 20000              /* Waits for published frames. */
#define RING_BYTES ((size_t) 128 << 10) /* The smallest ring allowed. */
#define RING_ACTION_BYTES 1000          /* Makes each frame ~1.1 KiB. */
#define RING_OPEN_ATTEMPTS 8            /* Port picks before giving up. */

static evb_broker *test_broker;
static nng_socket  test_push;
static bool        has_push;
static char        test_urls[3][64]; /* pub, ingest, ctl. */

static void
ring_teardown(void)
{
	if (has_push) {
		(void) nng_close(test_push);
		has_push = false;
	}
	evb_broker_close(test_broker);
	test_broker = NULL;
}

TestSuite(ring, .fini = ring_teardown, .timeout = RING_TEST_TIMEOUT_S);

/* ring_opts fills o for loopback ports just picked, without timers. */
static void
ring_opts(evb_broker_opts *o, size_t ring_bytes)
{
	for (int i = 0; i < 3; i++) {
		uint16_t port;

		cr_assert_eq(evb_ts_port_pick(&port), EVB_OK);
		(void) snprintf(test_urls[i], sizeof(test_urls[i]),
		    "tcp://127.0.0.1:%u", (unsigned) port);
	}
	evb_broker_opts_default(o);
	o->pub_url      = test_urls[0];
	o->ingest_url   = test_urls[1];
	o->ctl_url      = test_urls[2];
	o->ring_bytes   = ring_bytes;
	o->heartbeat_ms = 0;
	o->stats_log_ms = 0;
}

/*
 * ring_start opens and starts a broker, picking new ports when another
 * process took one first, and dials a push0 socket to its ingest.
 */
static void
ring_start(size_t ring_bytes)
{
	evb_broker_opts o;
	evb_diag        diag = { "" };
	int             rc   = EVB_ETRANSPORT;

	for (int i = 0; i < RING_OPEN_ATTEMPTS && rc == EVB_ETRANSPORT; i++) {
		ring_opts(&o, ring_bytes);
		rc = evb_broker_open(&test_broker, &o, &diag);
	}
	cr_assert_eq(rc, EVB_OK, "open: %s", diag.msg);
	cr_assert_eq(evb_broker_start(test_broker), EVB_OK);
	cr_assert_eq(nng_push0_open(&test_push), 0);
	has_push = true;
	cr_assert_eq(nng_dial(test_push, test_urls[1], NULL, 0), 0);
}

/* ring_send pushes n user_action events in one batch message. */
static void
ring_send(size_t n)
{
	char    action[RING_ACTION_BYTES + 1];
	evb_buf b;
	uint8_t hdr[3] = { 0xdc, (uint8_t) (n >> 8), (uint8_t) n };

	cr_assert_leq(n, UINT16_MAX);
	memset(action, 'a', RING_ACTION_BYTES);
	action[RING_ACTION_BYTES] = '\0';
	evb_buf_init(&b);
	cr_assert_eq(evb_buf_append(&b, hdr, sizeof(hdr)), EVB_OK);
	for (size_t i = 0; i < n; i++) {
		char       json[RING_ACTION_BYTES + 128];
		evb_event *ev;

		(void) snprintf(json, sizeof(json),
		    "{\"type\":\"user_action\",\"data\":{\"user_id\":"
		    "\"u-%05zu\",\"action\":\"%s\"}}",
		    i, action);
		cr_assert_eq(
		    evb_proto_event_from_json(&ev, json, strlen(json), NULL),
		    EVB_OK);
		cr_assert_eq(evb_proto_event_encode(ev, &b), EVB_OK);
		evb_proto_event_free(ev);
	}
	cr_assert_eq(nng_send(test_push, b.data, b.len, 0), 0);
	evb_buf_fini(&b);
}

/* ring_wait_seq waits until seq is published (it reads it). */
static void
ring_wait_seq(uint64_t seq)
{
	evb_buf  out;
	size_t   n;
	uint64_t first;

	evb_buf_init(&out);
	cr_assert_eq(evb_broker_read(test_broker, seq, 1, SIZE_MAX,
	                 evb_ts_timeout_ms(RING_WAIT_MS), &out, &n, &first),
	    EVB_OK, "seq %llu never came", (unsigned long long) seq);
	evb_buf_fini(&out);
}

/*
 * ring_check_frames decodes the n frames of out (4-byte big-endian
 * length, then the frame) and checks they are seqs from, from+1, ...
 */
static void
ring_check_frames(const evb_buf *out, size_t n, uint64_t from)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		evb_event *ev;
		uint32_t   len;
		evb_diag   diag = { "" };

		cr_assert_leq(pos + 4, out->len);
		len = evb_get_be32(out->data + pos);
		cr_assert_leq(pos + 4 + len, out->len);
		cr_assert_eq(evb_proto_frame_decode(
		                 &ev, out->data + pos + 4, len, &diag),
		    EVB_OK, "frame %zu: %s", i, diag.msg);
		cr_assert_eq(evb_proto_event_seq(ev), from + i);
		cr_assert_eq(evb_proto_event_type(ev), 5); // user_action
		evb_proto_event_free(ev);
		pos += 4 + len;
	}
	cr_assert_eq(pos, out->len, "bytes after the last frame");
}

Test(ring, evicts_oldest_frames_to_stay_within_its_bytes)
{
	evb_broker_stat st;
	evb_buf         out;
	size_t          n     = 0;
	uint64_t        first = 0;

	ring_start(RING_BYTES);
	ring_send(400);
	ring_wait_seq(400);
	evb_broker_stats(test_broker, &st);
	cr_assert_eq(st.last_seq, 400);
	cr_assert_gt(st.ring_first_seq, 1);
	cr_assert_eq(st.ring_evicted, st.ring_first_seq - 1);
	cr_assert_leq(st.ring_bytes, RING_BYTES);
	// Frames are about 1.1 KiB: a wrap wastes less than one, and one
	// more would not have fitted.
	cr_assert_gt(st.ring_bytes, RING_BYTES - 3 * 1200, "ring holds %llu",
	    (unsigned long long) st.ring_bytes);

	evb_buf_init(&out);
	cr_assert_eq(
	    evb_broker_read(test_broker, 1, 10, SIZE_MAX, 0, &out, &n, &first),
	    EVB_ENOTFOUND);
	cr_assert_eq(n, 400 - st.ring_first_seq + 1,
	    "an evicted read reports the frames held: %zu", n);
	cr_assert_eq(first, st.ring_first_seq);
	cr_assert_eq(out.len, 0);

	cr_assert_eq(evb_broker_read(test_broker, first, SIZE_MAX, SIZE_MAX, 0,
	                 &out, &n, &first),
	    EVB_OK);
	cr_assert_eq(n, 400 - st.ring_first_seq + 1);
	cr_assert_eq(first, st.ring_first_seq);
	ring_check_frames(&out, n, first);
	cr_assert_eq(out.len, st.ring_bytes + 4 * n);
	evb_buf_fini(&out);
}

/*
 * A ring of exactly k frames' bytes holds k frames: a frame that fits
 * exactly in the space left at the end is placed there, evicting
 * nothing; only the next frame evicts the oldest, and once the ring has
 * wrapped each frame evicts exactly one. Frames of seqs
 * 1..127 all have the same length (fixint seq, fixed-width user_id), L,
 * measured on a first broker.
 */
Test(ring, a_frame_that_fits_exactly_evicts_nothing)
{
	evb_broker_stat st;
	evb_buf         out;
	size_t          n     = 0, len, k;
	uint64_t        first = 0;

	ring_start(RING_BYTES);
	ring_send(1);
	ring_wait_seq(1);
	evb_broker_stats(test_broker, &st);
	len = (size_t) st.ring_bytes;
	ring_teardown();

	k = (RING_BYTES + len - 1) / len;
	cr_assert_lt(k, 127);
	ring_start(k * len);
	ring_send(k);
	ring_wait_seq(k);
	evb_buf_init(&out);
	cr_assert_eq(evb_broker_read(test_broker, 1, SIZE_MAX, SIZE_MAX, 0,
	                 &out, &n, &first),
	    EVB_OK, "seq 1 was evicted from a ring with room for it");
	cr_assert_eq(n, k);
	cr_assert_eq(out.len, k * (len + 4), "frames of unequal length");
	ring_check_frames(&out, n, 1);
	evb_broker_stats(test_broker, &st);
	cr_assert_eq(st.ring_first_seq, 1);
	cr_assert_eq(st.ring_evicted, 0);
	cr_assert_eq(st.ring_bytes, k * len);

	ring_send(1);
	ring_wait_seq(k + 1);
	evb_broker_stats(test_broker, &st);
	cr_assert_eq(st.ring_first_seq, 2);
	cr_assert_eq(st.ring_evicted, 1);
	// Wrapped, the next frame fits exactly in the gap its one eviction
	// leaves between tail and head.
	ring_send(1);
	ring_wait_seq(k + 2);
	evb_broker_stats(test_broker, &st);
	cr_assert_eq(st.ring_first_seq, 3);
	cr_assert_eq(st.ring_evicted, 2);
	cr_assert_eq(st.ring_bytes, k * len);
	evb_buf_fini(&out);
}

Test(ring, finds_any_held_seq_and_honours_the_read_limits)
{
	evb_buf  out;
	size_t   n     = 0;
	uint64_t first = 0;

	ring_start(RING_BYTES);
	ring_send(50);
	ring_wait_seq(50);
	evb_buf_init(&out);
	for (uint64_t seq = 1; seq <= 50; seq += 7) {
		evb_buf_reset(&out);
		cr_assert_eq(evb_broker_read(test_broker, seq, 3, SIZE_MAX, 0,
		                 &out, &n, &first),
		    EVB_OK);
		cr_assert_eq(first, seq);
		cr_assert_eq(n, seq + 3 <= 51 ? 3 : 51 - seq);
		ring_check_frames(&out, n, seq);
	}
	// A byte limit below one frame still returns that frame.
	evb_buf_reset(&out);
	cr_assert_eq(
	    evb_broker_read(test_broker, 10, 5, 1, 0, &out, &n, &first),
	    EVB_OK);
	cr_assert_eq(n, 1);
	ring_check_frames(&out, n, 10);
	// A limit of two frames' bytes returns two.
	evb_buf_reset(&out);
	cr_assert_eq(
	    evb_broker_read(test_broker, 10, 1, SIZE_MAX, 0, &out, &n, &first),
	    EVB_OK);
	cr_assert_eq(evb_broker_read(
	                 test_broker, 10, 10, 2 * out.len, 0, &out, &n, &first),
	    EVB_OK);
	cr_assert_eq(n, 2);
	evb_buf_fini(&out);
}

Test(ring, read_of_an_unpublished_seq_times_out)
{
	evb_buf  out;
	size_t   n     = 7;
	uint64_t first = 7;

	ring_start(RING_BYTES);
	evb_buf_init(&out);
	cr_assert_eq(
	    evb_broker_read(test_broker, 1, 1, SIZE_MAX, 0, &out, &n, &first),
	    EVB_ETIMEDOUT);
	cr_assert_eq(
	    evb_broker_read(test_broker, 1, 1, SIZE_MAX, 50, &out, &n, &first),
	    EVB_ETIMEDOUT);
	cr_assert_eq(out.len, 0);
	// Before anything is published, seq 0 is "older than the oldest",
	// and the oldest to come is 1.
	cr_assert_eq(
	    evb_broker_read(test_broker, 0, 1, SIZE_MAX, 0, &out, &n, &first),
	    EVB_ENOTFOUND);
	cr_assert_eq(first, 1);
	cr_assert_eq(n, 0);
	evb_buf_fini(&out);
}

/* A reader thread's request and result. */
typedef struct ring_reader {
	uint64_t  from;
	uint64_t  timeout_ms;
	int       rc;
	size_t    n;
	evb_buf   out;
	pthread_t thr;
} ring_reader;

static void *
ring_reader_main(void *arg)
{
	ring_reader *r = arg;
	uint64_t     first;

	r->rc = evb_broker_read(test_broker, r->from, 100, SIZE_MAX,
	    r->timeout_ms, &r->out, &r->n, &first);
	return NULL;
}

Test(ring, waiting_read_returns_when_the_seq_is_published)
{
	ring_reader r = { .from = 1 };

	ring_start(RING_BYTES);
	r.timeout_ms = evb_ts_timeout_ms(RING_WAIT_MS);
	evb_buf_init(&r.out);
	cr_assert_eq(pthread_create(&r.thr, NULL, ring_reader_main, &r), 0);
	ring_send(3);
	cr_assert_eq(pthread_join(r.thr, NULL), 0);
	cr_assert_eq(r.rc, EVB_OK);
	cr_assert_geq(r.n, 1);
	ring_check_frames(&r.out, r.n, 1);
	evb_buf_fini(&r.out);
}

Test(ring, stop_ends_a_waiting_read_with_eclosed)
{
	ring_reader r = { .from = 2 };
	evb_buf     out;
	size_t      n;
	uint64_t    first;

	ring_start(RING_BYTES);
	ring_send(1);
	ring_wait_seq(1);
	r.timeout_ms = evb_ts_timeout_ms(RING_WAIT_MS) * 10;
	evb_buf_init(&r.out);
	cr_assert_eq(pthread_create(&r.thr, NULL, ring_reader_main, &r), 0);
	evb_broker_stop(test_broker);
	cr_assert_eq(pthread_join(r.thr, NULL), 0);
	cr_assert_eq(r.rc, EVB_ECLOSED);
	cr_assert_eq(r.out.len, 0);
	evb_buf_fini(&r.out);
	// What the ring holds can still be read after stop (a consumer
	// drains it); only waiting ends.
	evb_buf_init(&out);
	cr_assert_eq(evb_broker_read(
	                 test_broker, 1, 10, SIZE_MAX, 1000, &out, &n, &first),
	    EVB_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(evb_broker_read(
	                 test_broker, 2, 10, SIZE_MAX, 1000, &out, &n, &first),
	    EVB_ECLOSED);
	evb_buf_fini(&out);
	evb_broker_stop(test_broker); // A second stop is harmless.
}

/* ---- evb_broker_open's errors ---------------------------------------- */

Test(ring, open_refuses_a_ring_smaller_than_the_largest_frame)
{
	evb_broker_opts o;
	evb_diag        diag = { "" };

	ring_opts(&o, RING_BYTES - 1);
	cr_assert_eq(evb_broker_open(&test_broker, &o, &diag), EVB_EINVAL);
	cr_assert_null(test_broker);
	cr_assert_not_null(strstr(diag.msg, "ring_bytes"), "%s", diag.msg);
}

Test(ring, open_refuses_bad_options_with_einval)
{
	evb_broker_opts o;
	evb_diag        diag = { "" };

	ring_opts(&o, RING_BYTES);
	o.recv_max_bytes = 0;
	cr_assert_eq(evb_broker_open(&test_broker, &o, &diag), EVB_EINVAL);
	ring_opts(&o, RING_BYTES);
	o.pub_sendbuf = 0;
	cr_assert_eq(evb_broker_open(&test_broker, &o, &diag), EVB_EINVAL);
	ring_opts(&o, RING_BYTES);
	o.component = "";
	cr_assert_eq(evb_broker_open(&test_broker, &o, &diag), EVB_EINVAL);
	cr_assert_not_null(strstr(diag.msg, "component"), "%s", diag.msg);
	ring_opts(&o, RING_BYTES);
	o.pub_url = "nosuchscheme://x";
	cr_assert_eq(evb_broker_open(&test_broker, &o, &diag), EVB_EINVAL);
	cr_assert_null(test_broker);
}

Test(ring, open_on_a_port_in_use_fails_with_etransport)
{
	evb_broker_opts o;
	evb_broker     *second = NULL;
	evb_diag        diag   = { "" };

	ring_start(RING_BYTES);
	evb_broker_opts_default(&o);
	o.pub_url    = test_urls[0]; // Taken by the first broker.
	o.ingest_url = "tcp://127.0.0.1:0";
	o.ctl_url    = "tcp://127.0.0.1:0";
	o.ring_bytes = RING_BYTES;
	cr_assert_eq(evb_broker_open(&second, &o, &diag), EVB_ETRANSPORT);
	cr_assert_null(second);
	cr_assert_not_null(strstr(diag.msg, test_urls[0]), "%s", diag.msg);
	cr_assert_not_null(strstr(diag.msg, "in use"), "%s", diag.msg);
}

Test(ring, start_twice_or_after_stop_is_einval)
{
	ring_start(RING_BYTES);
	cr_assert_eq(evb_broker_start(test_broker), EVB_EINVAL);
	evb_broker_stop(test_broker);
	cr_assert_eq(evb_broker_start(test_broker), EVB_EINVAL);
}
