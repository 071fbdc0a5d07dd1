/*
 * broker_heartbeat.c: the timer thread. Every heartbeat_ms it publishes
 * the broker's own system_health event through broker_publish, so the
 * heartbeat is sequenced, framed, kept in the ring and stored like any
 * producer's event; every stats_log_ms it logs one statistics line
 * (EVB-BROKER-STATS) with the counters and the publish rate since the
 * last line.
 *
 * The thread sleeps on timer_cv under the broker's mtx against a
 * monotonic deadline, and runs its tasks without the lock: stop sets
 * is_stopping and signals timer_cv, so it waits for at most one run.
 */
#include <errno.h>
#include <msgpack.h>
#include <string.h>
#include <time.h>

#include "broker/broker_int.h"

#define HEARTBEAT_SOURCE "evbus" /* The heartbeat's envelope source. */

/* The state of the statistics line between two lines. */
typedef struct stats_prev {
	uint64_t published; /* Events published at the last line. */
	uint64_t at_ms;     /* Monotonic ms of the last line. */
} stats_prev;

static int
hb_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	if (msgpack_pack_str(pk, n) != 0 ||
	    msgpack_pack_str_body(pk, s, n) != 0) {
		return EVB_ENOMEM;
	}
	return EVB_OK;
}

/* hb_pack writes the heartbeat's event map. */
static int
hb_pack(const evb_broker *b, msgpack_packer *pk)
{
	uint64_t up_s = (evb_clock_mono_ms() - b->open_ms) / 1000;

	if (msgpack_pack_map(pk, 3) != 0 || hb_pack_str(pk, "type") != 0 ||
	    hb_pack_str(pk, "system_health") != 0 ||
	    hb_pack_str(pk, "source") != 0 ||
	    hb_pack_str(pk, HEARTBEAT_SOURCE) != 0 ||
	    hb_pack_str(pk, "data") != 0 || msgpack_pack_map(pk, 3) != 0 ||
	    hb_pack_str(pk, "component") != 0 ||
	    hb_pack_str(pk, b->opts.component) != 0 ||
	    hb_pack_str(pk, "status") != 0 || hb_pack_str(pk, "healthy") != 0 ||
	    hb_pack_str(pk, "uptime_s") != 0 ||
	    msgpack_pack_uint64(pk, up_s) != 0) {
		return EVB_ENOMEM;
	}
	return EVB_OK;
}

int
heartbeat_event(evb_broker *b, evb_event **out, evb_diag *diag)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	evb_diag        d = { "" };
	int             rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if ((rc = hb_pack(b, &pk)) == EVB_OK) {
		rc = evb_proto_event_decode(out, sb.data, sb.size, &d);
	}
	msgpack_sbuffer_destroy(&sb);
	if (rc != EVB_OK && rc != EVB_ENOMEM) {
		// Only the component comes from outside; it broke the schema.
		evb_diag_set(diag, "component: %s", d.msg);
		return EVB_EINVAL;
	}
	return rc;
}

static void
heartbeat_send(evb_broker *b)
{
	evb_event *ev;
	int        rc;

	if ((rc = heartbeat_event(b, &ev, NULL)) == EVB_OK) {
		rc = broker_publish(b, ev, evb_clock_real_ns());
		evb_proto_event_free(ev);
	}
	if (rc != EVB_OK) {
		evb_log(EVB_LOG_ERR, "EVB-BROKER-HEARTBEAT",
		    "the heartbeat was not published: %s; it is retried in "
		    "%llu ms",
		    evb_strerror(rc),
		    (unsigned long long) b->opts.heartbeat_ms);
	}
}

static void
stats_log(evb_broker *b, stats_prev *prev)
{
	evb_broker_stat st;
	uint64_t        now = evb_clock_mono_ms();
	double          secs;

	evb_broker_stats(b, &st);
	secs = now > prev->at_ms ? (double) (now - prev->at_ms) / 1000.0 : 1.0;
	evb_log(EVB_LOG_INFO, "EVB-BROKER-STATS",
	    "epoch=%llu last_seq=%llu published=%llu rate=%.0f/s "
	    "events_in=%llu rejected=%llu msgs_in=%llu msgs_refused=%llu "
	    "msgs_trailing=%llu "
	    "bytes_in=%llu ring_first_seq=%llu ring_bytes=%llu "
	    "ring_evicted=%llu repairs_served=%llu repair_frames=%llu",
	    (unsigned long long) st.epoch, (unsigned long long) st.last_seq,
	    (unsigned long long) st.published,
	    (double) (st.published - prev->published) / secs,
	    (unsigned long long) st.events_in, (unsigned long long) st.rejected,
	    (unsigned long long) st.msgs_in,
	    (unsigned long long) st.msgs_refused,
	    (unsigned long long) st.msgs_trailing,
	    (unsigned long long) st.bytes_in,
	    (unsigned long long) st.ring_first_seq,
	    (unsigned long long) st.ring_bytes,
	    (unsigned long long) st.ring_evicted,
	    (unsigned long long) st.repairs_served,
	    (unsigned long long) st.repair_frames);
	prev->published = st.published;
	prev->at_ms     = now;
}

/* timer_next returns now + period_ms, or UINT64_MAX for a period of 0. */
static uint64_t
timer_next(uint64_t now_ms, uint64_t period_ms)
{
	if (period_ms == 0 || period_ms > UINT64_MAX - now_ms) {
		return UINT64_MAX;
	}
	return now_ms + period_ms;
}

/* timer_wait waits on timer_cv until at_ms (monotonic) or a signal. */
static void
timer_wait(evb_broker *b, uint64_t at_ms)
{
	struct timespec ts;
	int             rc;

	// UINT64_MAX (no task due) becomes a far but valid deadline.
	if (at_ms > (uint64_t) INT32_MAX * 1000u) {
		at_ms = (uint64_t) INT32_MAX * 1000u;
	}
	ts.tv_sec  = (time_t) (at_ms / 1000);
	ts.tv_nsec = (long) (at_ms % 1000) * 1000000L;
	rc         = pthread_cond_timedwait(&b->timer_cv, &b->mtx, &ts);
	evb_assert(rc == 0 || rc == ETIMEDOUT);
}

void *
heartbeat_main(void *arg)
{
	evb_broker *b       = arg;
	uint64_t    now     = evb_clock_mono_ms();
	uint64_t    next_hb = timer_next(now, b->opts.heartbeat_ms);
	uint64_t    next_st = timer_next(now, b->opts.stats_log_ms);
	stats_prev  prev    = { .published = 0, .at_ms = now };

	evb_thread_name("evb:timer");
	evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	while (!b->is_stopping) {
		timer_wait(b, next_hb < next_st ? next_hb : next_st);
		if (b->is_stopping) {
			break;
		}
		now = evb_clock_mono_ms();
		if (now < next_hb && now < next_st) {
			continue; // Woken early; wait again.
		}
		evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
		if (now >= next_hb) {
			heartbeat_send(b);
			next_hb = timer_next(now, b->opts.heartbeat_ms);
		}
		if (now >= next_st) {
			stats_log(b, &prev);
			next_st = timer_next(now, b->opts.stats_log_ms);
		}
		evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	}
	evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
	return NULL;
}
