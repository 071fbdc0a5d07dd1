/*
 * collector_remote_test.c: the collector with a remote source
 * (collector_remote.c) against a fake broker written here: a pub0 bus and
 * a rep0 control endpoint on free loopback ports, answering repairs the
 * way broker_ctl.c does ({"error":"epoch","epoch":E} for another epoch,
 * else no frames). The fake decides what each answer says, so a broker
 * restart can land exactly between a bus frame and its repair.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "collector/collector.h"
#include "tests/support/support.h"

#define RT_EPOCH_OLD 7      /* The fake broker's epoch at first. */
#define RT_EPOCH_NEW 8      /* Its epoch after the "restart". */
#define RT_IDLE_MS 50       /* The collector's idle repair period. */
#define RT_IDLE_MAX 10000   /* "max" of an idle repair (collector_remote). */
#define RT_WAIT_MS 10000    /* Deadline of each wait, before scaling. */
#define RT_OPEN_ATTEMPTS 5  /* Listens on picked ports, in case of a race. */
#define RT_POLL_NS 10000000 /* 10 ms between polls. */

/* The fake broker. */
typedef struct rt_broker {
	nng_socket           pub; /* The bus. */
	nng_socket           rep; /* The control endpoint. */
	char                 pub_url[64];
	char                 ctl_url[64];
	pthread_t            thread; /* Answers the control endpoint. */
	bool                 has_thread;
	atomic_bool          stop;   /* Ends the thread. */
	atomic_int           subs;   /* Bus subscribers connected. */
	atomic_uint_fast64_t epoch;  /* The epoch it answers with. */
	atomic_uint_fast64_t served; /* Repairs answered. */
	/* Once set, the first repair that is not an idle one (it asks for a
	 * range before a frame in hand) finds the broker restarted in
	 * RT_EPOCH_NEW, and so does every later one. */
	atomic_bool          restart_at_gap;
	atomic_uint_fast64_t served_at_restart; /* served then. */
} rt_broker;

static char     *tmp;
static rt_broker fb;
static bool      has_fb;

static void
setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&tmp), EVB_OK);
}

static void
teardown(void)
{
	if (has_fb) {
		atomic_store(&fb.stop, true);
		if (fb.has_thread) {
			(void) pthread_join(fb.thread, NULL);
		}
		(void) nng_close(fb.pub);
		(void) nng_close(fb.rep);
		has_fb = false;
	}
	(void) evb_ts_tmpdir_remove(tmp);
	tmp = NULL;
}

TestSuite(collector_remote, .init = setup, .fini = teardown, .timeout = 60);

static void
rt_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void) p;
	(void) ev;
	atomic_fetch_add((atomic_int *) arg, 1);
}

/* rt_req_u64 reads key k of the request map m as an unsigned integer. */
static bool
rt_req_u64(const msgpack_object *m, const char *k, uint64_t *v)
{
	size_t kl = strlen(k);

	if (m->type != MSGPACK_OBJECT_MAP) {
		return false;
	}
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == kl &&
		    memcmp(kv->key.via.str.ptr, k, kl) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			*v = kv->val.via.u64;
			return true;
		}
	}
	return false;
}

static void
rt_pack_str(msgpack_packer *pk, const char *s)
{
	(void) msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* rt_answer packs the reply to one repair request as broker_ctl.c does. */
static void
rt_answer(const void *req, size_t len, msgpack_sbuffer *sb)
{
	msgpack_unpacked u;
	msgpack_packer   pk;
	uint64_t         e = 0, from = 0, max = 0, cur;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, req, len, NULL) == MSGPACK_UNPACK_SUCCESS) {
		(void) rt_req_u64(&u.data, "epoch", &e);
		(void) rt_req_u64(&u.data, "from", &from);
		(void) rt_req_u64(&u.data, "max", &max);
	}
	msgpack_unpacked_destroy(&u);
	if (max != RT_IDLE_MAX && atomic_load(&fb.restart_at_gap) &&
	    atomic_load(&fb.epoch) != RT_EPOCH_NEW) {
		atomic_store(&fb.served_at_restart, atomic_load(&fb.served));
		atomic_store(&fb.epoch, RT_EPOCH_NEW);
	}
	cur = atomic_load(&fb.epoch);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (e != cur) {
		(void) msgpack_pack_map(&pk, 2);
		rt_pack_str(&pk, "error");
		rt_pack_str(&pk, "epoch");
		rt_pack_str(&pk, "epoch");
		(void) msgpack_pack_uint64(&pk, cur);
		return;
	}
	(void) msgpack_pack_map(&pk, 3);
	rt_pack_str(&pk, "epoch");
	(void) msgpack_pack_uint64(&pk, cur);
	rt_pack_str(&pk, "first");
	(void) msgpack_pack_uint64(&pk, from);
	rt_pack_str(&pk, "frames");
	(void) msgpack_pack_array(&pk, 0); // Nothing more is published.
}

static void *
rt_ctl_main(void *arg)
{
	(void) arg;
	while (!atomic_load(&fb.stop)) {
		msgpack_sbuffer sb;
		nng_msg        *m;

		if (nng_recvmsg(fb.rep, &m, 0) != 0) {
			continue; // A timeout: look at stop again.
		}
		msgpack_sbuffer_init(&sb);
		rt_answer(nng_msg_body(m), nng_msg_len(m), &sb);
		nng_msg_free(m);
		if (nng_send(fb.rep, sb.data, sb.size, 0) == 0) {
			atomic_fetch_add(&fb.served, 1);
		}
		msgpack_sbuffer_destroy(&sb);
	}
	return NULL;
}

/* rt_listen listens on a port just picked; false if it was taken. */
static bool
rt_listen(nng_socket s, char *url, size_t cap)
{
	uint16_t port;

	cr_assert_eq(evb_ts_port_pick(&port), EVB_OK);
	(void) snprintf(url, cap, "tcp://127.0.0.1:%u", (unsigned) port);
	return nng_listen(s, url, NULL, 0) == 0;
}

/* rt_broker_start opens the fake broker in epoch RT_EPOCH_OLD. */
static void
rt_broker_start(void)
{
	bool ok = false;

	memset(&fb, 0, sizeof(fb));
	atomic_init(&fb.epoch, RT_EPOCH_OLD);
	cr_assert_eq(nng_pub0_open(&fb.pub), 0);
	cr_assert_eq(nng_rep0_open(&fb.rep), 0);
	has_fb = true;
	cr_assert_eq(nng_pipe_notify(
	                 fb.pub, NNG_PIPE_EV_ADD_POST, rt_pipe_added, &fb.subs),
	    0);
	cr_assert_eq(nng_socket_set_ms(fb.rep, NNG_OPT_RECVTIMEO, 20), 0);
	for (int i = 0; i < RT_OPEN_ATTEMPTS && !ok; i++) {
		ok = rt_listen(fb.pub, fb.pub_url, sizeof(fb.pub_url));
	}
	cr_assert(ok, "no free port for the bus");
	ok = false;
	for (int i = 0; i < RT_OPEN_ATTEMPTS && !ok; i++) {
		ok = rt_listen(fb.rep, fb.ctl_url, sizeof(fb.ctl_url));
	}
	cr_assert(ok, "no free port for the control endpoint");
	cr_assert_eq(pthread_create(&fb.thread, NULL, rt_ctl_main, NULL), 0);
	fb.has_thread = true;
}

/* rt_send publishes the frame of event seq of epoch on the bus. */
static void
rt_send(uint64_t epoch, uint64_t seq)
{
	char       json[256];
	evb_event *ev;
	evb_buf    f;

	(void) snprintf(json, sizeof(json),
	    "{\"type\":\"market_data\",\"id\":\"e-%llu-%llu\",\"ts\":5,"
	    "\"data\":{\"symbol\":\"EURUSD\",\"bid\":1.5,\"ask\":1.75}}",
	    (unsigned long long) epoch, (unsigned long long) seq);
	cr_assert_eq(
	    evb_proto_event_from_json(&ev, json, strlen(json), NULL), EVB_OK);
	evb_proto_event_set_seq(ev, seq, epoch);
	evb_buf_init(&f);
	cr_assert_eq(evb_proto_frame_encode(ev, &f), EVB_OK);
	cr_assert_eq(nng_send(fb.pub, f.data, f.len, 0), 0);
	evb_buf_fini(&f);
	evb_proto_event_free(ev);
}

static void
rt_sleep_poll(void)
{
	struct timespec ts = { 0, RT_POLL_NS };

	(void) nanosleep(&ts, NULL);
}

/* rt_wait_served waits until the fake has answered n repairs in all. */
static void
rt_wait_served(uint64_t n)
{
	uint64_t deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(RT_WAIT_MS);

	while (atomic_load(&fb.served) < n) {
		cr_assert_lt(evb_clock_mono_ms(), deadline,
		    "%llu repairs answered, waiting for %llu",
		    (unsigned long long) atomic_load(&fb.served),
		    (unsigned long long) n);
		rt_sleep_poll();
	}
}

/* rt_wait_appended waits until the collector has stored n events. */
static evb_collector_stat
rt_wait_appended(evb_collector *c, uint64_t n)
{
	uint64_t deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(RT_WAIT_MS);
	evb_collector_stat st;

	for (;;) {
		evb_collector_stats(c, &st);
		if (st.appended >= n) {
			return st;
		}
		cr_assert_lt(evb_clock_mono_ms(), deadline,
		    "%llu events stored, waiting for %llu",
		    (unsigned long long) st.appended, (unsigned long long) n);
		rt_sleep_poll();
	}
}

/*
 * A review found that a bus frame of the old epoch, whose repair learnt
 * that the broker had restarted, was accepted again after the repair and
 * switched the collector back to the dead epoch: two spurious epoch
 * changes (EVB-COLL-EPOCH lines) and an extra repair, until the next
 * repair switched it forward again. The frame in hand is now dropped:
 * one epoch change, and the collector stays in the new epoch.
 */
Test(collector_remote, a_frame_of_the_old_epoch_is_dropped_after_a_restart)
{
	evb_collector_opts o;
	evb_collector     *c;
	evb_collector_stat st;
	evb_diag           diag = { "" };
	uint64_t           deadline;

	rt_broker_start();
	evb_collector_opts_default(&o);
	o.data_dir     = tmp;
	o.durability   = EVB_WAL_NONE;
	o.sub_url      = fb.pub_url;
	o.ctl_url      = fb.ctl_url;
	o.idle_ms      = RT_IDLE_MS;
	o.heartbeat_ms = 0;
	o.stats_log_ms = 0;
	cr_assert_eq(evb_collector_open(&c, &o, &diag), EVB_OK, "%s", diag.msg);
	cr_assert_eq(evb_collector_start(c), EVB_OK);
	// Caught up in the old epoch: its first repair (epoch 0) learnt
	// it, the second found nothing published. And the bus is connected.
	rt_wait_served(2);
	deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(RT_WAIT_MS);
	while (atomic_load(&fb.subs) < 1) {
		cr_assert_lt(evb_clock_mono_ms(), deadline, "no subscriber");
		rt_sleep_poll();
	}
	// Seqs 1..4 were lost on the bus, and the broker restarts before
	// the collector asks for them.
	atomic_store(&fb.restart_at_gap, true);
	rt_send(RT_EPOCH_OLD, 5);
	deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(RT_WAIT_MS);
	while (atomic_load(&fb.epoch) != RT_EPOCH_NEW) {
		cr_assert_lt(evb_clock_mono_ms(), deadline, "no gap repair");
		rt_sleep_poll();
	}
	// Three more answers: the frame in hand is long dealt with.
	rt_wait_served(atomic_load(&fb.served_at_restart) + 4);
	evb_collector_stats(c, &st);
	cr_assert_eq(
	    st.epochs, 1, "%llu epoch changes", (unsigned long long) st.epochs);
	cr_assert_eq(st.appended, 0);
	// The new epoch's first event is stored, with no other change.
	rt_send(RT_EPOCH_NEW, 1);
	st = rt_wait_appended(c, 1);
	cr_assert_eq(st.last_epoch, RT_EPOCH_NEW);
	cr_assert_eq(st.last_seq, 1);
	cr_assert_eq(st.epochs, 1);
	cr_assert_eq(st.gaps, 0);
	evb_collector_stop(c);
	evb_collector_close(c);
}
