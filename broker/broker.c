/*
 * broker.c: the broker handle (open, start, stop, close, stats) and
 * broker_publish, the one path by which an event gets a seq.
 *
 * Sequencing: ingest (broker_ingest.c) and the heartbeat
 * (broker_heartbeat.c) both publish through broker_publish, which holds
 * the broker's mtx from the seq assignment to the pub0 send. So seqs
 * are contiguous, frames leave pub0 in seq order, the ring holds the
 * same frames in the same order, and the ULIDs stamped on events that
 * came without an id increase with seq. The cost is one uncontended
 * lock per event; the work under it is the frame encoding, a copy into
 * the ring and nng's pub0 send, which never waits for a subscriber.
 *
 * Shutdown order (evb_broker_stop): close pull0, so the ingest queue's
 * receive returns NNG_ECLOSED and the ingest thread exits once it has
 * published every message received; join it; close the confirm socket and join
 * its thread, dropping the requests still waiting; close rep0 and join the ctl
 * thread; wake and join the timer; then mark the broker closed, which ends
 * evb_broker_read waits. pub0 stays open until evb_broker_close, so nothing is
 * published into a closed socket.
 */
#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

#define BROKER_PUB_SENDBUF_MAX 8192 /* nng's limit for NNG_OPT_SENDBUF. */

/*
 * nng 1.5 drops a TCP connection whose next message is over the
 * socket's NNG_OPT_RECVMAXSZ, without telling the application (it only
 * moves the listener's generic "other errors" statistic, which every
 * ordinary disconnect moves too). So the broker asks nng for more than
 * the configured limit and refuses, and counts, what lies between the
 * two itself. For pull0 that is twice the limit, but at least
 * BROKER_RECV_NNG_MIN_BYTES: with a small --max-msg, twice the limit was
 * less than the 1 MiB messages `evbus publish` sends by default, and
 * every one of them vanished. Only a message over nng's limit goes
 * uncounted. The cost is memory: nng allocates a message of up to its
 * limit per connection before the broker sees it.
 */
#define BROKER_RECVMAX_FACTOR 2
#define BROKER_RECV_NNG_MIN_BYTES ((size_t) 16 << 20)
#define BROKER_RECV_MAX_LIMIT ((size_t) 1 << 30) /* Largest --max-msg. */

#define BROKER_PUB_LOG_WINDOW_MS 10000 /* pub0 send failure lines: */
#define BROKER_PUB_LOG_BURST 5         /* at most 5 per 10 s. */

void
evb_broker_opts_default(evb_broker_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pub_url        = "tcp://127.0.0.1:5570";
	o->ingest_url     = "tcp://127.0.0.1:5571";
	o->ctl_url        = "tcp://127.0.0.1:5573";
	o->recv_max_bytes = (size_t) 4 << 20;
	o->pub_sendbuf    = BROKER_PUB_SENDBUF_MAX;
	o->ring_bytes     = (size_t) 256 << 20;
	o->heartbeat_ms   = 5000;
	o->stats_log_ms   = 60000;
	o->component      = "broker";
	o->epoch          = 0;
}

int
broker_nng_err(int nng_rv, evb_diag *diag, const char *what)
{
	evb_diag_set(diag, "%s: %s", what, nng_strerror(nng_rv));
	switch (nng_rv) {
	case NNG_ENOMEM:
		return EVB_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
		return EVB_EINVAL;
	case NNG_ECLOSED:
		return EVB_ECLOSED;
	case NNG_ETIMEDOUT:
		return EVB_ETIMEDOUT;
	default:
		return EVB_ETRANSPORT;
	}
}

/* open_check validates the options that need no resource. */
static int
open_check(const evb_broker_opts *o, evb_diag *diag)
{
	if (o == NULL || o->pub_url == NULL || o->ingest_url == NULL ||
	    o->ctl_url == NULL || o->component == NULL) {
		evb_diag_set(diag,
		    "broker options: a URL or the component "
		    "is missing");
		return EVB_EINVAL;
	}
	if (o->recv_max_bytes == 0 ||
	    o->recv_max_bytes > BROKER_RECV_MAX_LIMIT) {
		evb_diag_set(diag,
		    "recv_max_bytes: expected 1..%zu bytes, got %zu",
		    BROKER_RECV_MAX_LIMIT, o->recv_max_bytes);
		return EVB_EINVAL;
	}
	if (o->pub_sendbuf < 1 || o->pub_sendbuf > BROKER_PUB_SENDBUF_MAX) {
		evb_diag_set(diag, "pub_sendbuf: expected 1..%d frames, got %d",
		    BROKER_PUB_SENDBUF_MAX, o->pub_sendbuf);
		return EVB_EINVAL;
	}
	if (o->ring_bytes < BROKER_RING_MIN_BYTES) {
		evb_diag_set(diag,
		    "ring_bytes: expected at least %zu bytes (room for the "
		    "largest frame), got %zu",
		    BROKER_RING_MIN_BYTES, o->ring_bytes);
		return EVB_EINVAL;
	}
	if (o->epoch > (uint64_t) INT64_MAX) {
		evb_diag_set(diag, "epoch: expected at most 2^63-1, got %llu",
		    (unsigned long long) o->epoch);
		return EVB_EINVAL;
	}
	if (evb_proto_type_count() >= EVB_BROKER_MAX_TYPES) {
		evb_diag_set(diag,
		    "the schema has %zu types; the broker counts at most %d",
		    evb_proto_type_count(), EVB_BROKER_MAX_TYPES - 1);
		return EVB_EINVAL;
	}
	return EVB_OK;
}

/* open_sync initialises mtx and the two condvars (monotonic clock). */
static int
open_sync(evb_broker *b)
{
	pthread_condattr_t ca;
	int                rc;

	if ((rc = pthread_condattr_init(&ca)) != 0) {
		return evb_err_errno(rc);
	}
	// Deadlines are monotonic so a wall-clock step cannot stall a wait.
	if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0) {
		goto condattr_destroy;
	}
	if ((rc = pthread_mutex_init(&b->mtx, NULL)) != 0) {
		goto condattr_destroy;
	}
	if ((rc = pthread_cond_init(&b->ring_cv, &ca)) != 0) {
		goto mutex_destroy;
	}
	if ((rc = pthread_cond_init(&b->timer_cv, &ca)) != 0) {
		goto ring_cv_destroy;
	}
	(void) pthread_condattr_destroy(&ca);
	b->has_sync = true;
	return EVB_OK;
ring_cv_destroy:
	(void) pthread_cond_destroy(&b->ring_cv);
mutex_destroy:
	(void) pthread_mutex_destroy(&b->mtx);
condattr_destroy:
	(void) pthread_condattr_destroy(&ca);
	return evb_err_errno(rc);
}

/*
 * pub_pipe_cb counts pub0's subscribers. nng runs NNG_PIPE_EV_REM_POST
 * for exactly the pipes it ran NNG_PIPE_EV_ADD_PRE for, so the pair
 * keeps the count; a pipe counted from ADD_PRE may get a frame or two
 * before it is attached, which pub0 delivers or drops as usual.
 */
static void
pub_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	evb_broker *b = arg;

	(void) p;
	atomic_fetch_add(&b->pub_pipes, ev == NNG_PIPE_EV_ADD_PRE ? 1 : -1);
}

/* recv_nng_max is the NNG_OPT_RECVMAXSZ that pull0 and the confirm
 * socket get for a limit. */
static size_t
recv_nng_max(size_t recv_max_bytes)
{
	size_t twice = recv_max_bytes * BROKER_RECVMAX_FACTOR;

	return twice > BROKER_RECV_NNG_MIN_BYTES ? twice
	                                         : BROKER_RECV_NNG_MIN_BYTES;
}

/* open_listen makes s listen on url; what names it in the diag. */
static int
open_listen(nng_socket s, const char *url, const char *what, evb_diag *diag)
{
	char ctx[EVB_DIAG_MAX / 2];
	int  rv;

	if ((rv = nng_listen(s, url, NULL, 0)) != 0) {
		(void) snprintf(
		    ctx, sizeof(ctx), "%s: listening on %s", what, url);
		return broker_nng_err(rv, diag, ctx);
	}
	return EVB_OK;
}

/*
 * open_sockets opens and binds pub0, pull0 and rep0, setting each
 * option before listening so that every pipe gets it.
 */
static int
open_sockets(evb_broker *b, evb_diag *diag)
{
	const evb_broker_opts *o = &b->opts;
	int                    rv;

	if ((rv = nng_pub0_open(&b->pub)) != 0) {
		return broker_nng_err(rv, diag, "opening pub0");
	}
	b->has_pub = true;
	if ((rv = nng_aio_alloc(&b->pub_aio, NULL, NULL)) != 0) {
		return broker_nng_err(rv, diag, "pub0 aio");
	}
	if ((rv = nng_socket_set_int(
	         b->pub, NNG_OPT_SENDBUF, o->pub_sendbuf)) != 0) {
		return broker_nng_err(rv, diag, "pub0 send buffer");
	}
	if ((rv = nng_pipe_notify(
	         b->pub, NNG_PIPE_EV_ADD_PRE, pub_pipe_cb, b)) != 0 ||
	    (rv = nng_pipe_notify(
	         b->pub, NNG_PIPE_EV_REM_POST, pub_pipe_cb, b)) != 0) {
		return broker_nng_err(rv, diag, "pub0 pipe events");
	}
	if ((rv = nng_pull0_open(&b->pull)) != 0) {
		return broker_nng_err(rv, diag, "opening pull0");
	}
	b->has_pull = true;
	if ((rv = nng_aio_alloc(&b->inq_aio, ingest_recv_cb, b)) != 0) {
		return broker_nng_err(rv, diag, "pull0 aio");
	}
	if ((rv = nng_socket_set_size(b->pull, NNG_OPT_RECVMAXSZ,
	         recv_nng_max(o->recv_max_bytes))) != 0) {
		return broker_nng_err(rv, diag, "pull0 receive limit");
	}
	if ((rv = nng_rep0_open(&b->ctl)) != 0) {
		return broker_nng_err(rv, diag, "opening rep0");
	}
	b->has_ctl = true;
	if ((rv = nng_socket_set_size(
	         b->ctl, NNG_OPT_RECVMAXSZ, BROKER_CTL_REQ_MAX_BYTES)) != 0) {
		return broker_nng_err(rv, diag, "rep0 receive limit");
	}
	if ((rv = nng_socket_set_ms(
	         b->ctl, NNG_OPT_SENDTIMEO, BROKER_CTL_SEND_MS)) != 0) {
		return broker_nng_err(rv, diag, "rep0 send timeout");
	}
	if (o->confirm_url != NULL) {
		if ((rv = nng_rep0_open(&b->confirm)) != 0) {
			return broker_nng_err(rv, diag, "opening rep0");
		}
		b->has_confirm = true;
		if ((rv = nng_socket_set_size(b->confirm, NNG_OPT_RECVMAXSZ,
		         recv_nng_max(o->recv_max_bytes))) != 0) {
			return broker_nng_err(
			    rv, diag, "confirm socket options");
		}
		if ((rv = nng_aio_alloc(&b->confirm_rx, NULL, NULL)) != 0) {
			return broker_nng_err(rv, diag, "confirm aio");
		}
		if ((rv = open_listen(b->confirm, o->confirm_url, "confirm",
		         diag)) != EVB_OK) {
			return rv;
		}
	}
	if ((rv = open_listen(b->pub, o->pub_url, "pub", diag)) != EVB_OK ||
	    (rv = open_listen(b->pull, o->ingest_url, "ingest", diag)) !=
	        EVB_OK ||
	    (rv = open_listen(b->ctl, o->ctl_url, "ctl", diag)) != EVB_OK) {
		return rv;
	}
	return EVB_OK;
}

/* open_strings copies the caller's strings into the handle. */
static int
open_strings(evb_broker *b, const evb_broker_opts *o)
{
	if ((b->pub_url = strdup(o->pub_url)) == NULL ||
	    (b->ingest_url = strdup(o->ingest_url)) == NULL ||
	    (b->ctl_url = strdup(o->ctl_url)) == NULL ||
	    (o->confirm_url != NULL &&
	        (b->confirm_url = strdup(o->confirm_url)) == NULL) ||
	    (b->component = strdup(o->component)) == NULL) {
		return EVB_ENOMEM;
	}
	b->opts.pub_url     = b->pub_url;
	b->opts.ingest_url  = b->ingest_url;
	b->opts.ctl_url     = b->ctl_url;
	b->opts.confirm_url = b->confirm_url;
	b->opts.component   = b->component;
	return EVB_OK;
}

int
evb_broker_open(evb_broker **out, const evb_broker_opts *o, evb_diag *diag)
{
	evb_broker *b;
	evb_event  *hb;
	int         rc;

	if ((rc = open_check(o, diag)) != EVB_OK) {
		return rc;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		return EVB_ENOMEM;
	}
	b->opts    = *o;
	b->epoch   = o->epoch != 0 ? o->epoch : (uint64_t) evb_clock_real_ns();
	b->open_ms = evb_clock_mono_ms();
	evb_buf_init(&b->frame);
	evb_ulid_init(&b->ulid, 0);
	b->pub_rl.window_ms = BROKER_PUB_LOG_WINDOW_MS;
	b->pub_rl.burst     = BROKER_PUB_LOG_BURST;
	if ((rc = open_strings(b, o)) != EVB_OK) {
		goto fail;
	}
	// The heartbeat is built now once, so a bad component name fails
	// here and not every heartbeat_ms.
	if ((rc = heartbeat_event(b, &hb, diag)) != EVB_OK) {
		goto fail;
	}
	evb_proto_event_free(hb);
	if ((rc = open_sync(b)) != EVB_OK) {
		goto fail;
	}
	if ((rc = pthread_mutex_init(&b->confirm_mtx, NULL)) != 0) {
		rc = evb_err_errno(rc);
		goto fail;
	}
	if ((rc = pthread_cond_init(&b->confirm_cv, NULL)) != 0) {
		(void) pthread_mutex_destroy(&b->confirm_mtx);
		rc = evb_err_errno(rc);
		goto fail;
	}
	b->has_confirm_sync = true;
	if ((rc = pthread_mutex_init(&b->inq_mtx, NULL)) != 0) {
		rc = evb_err_errno(rc);
		goto fail;
	}
	if ((rc = pthread_cond_init(&b->inq_cv, NULL)) != 0) {
		(void) pthread_mutex_destroy(&b->inq_mtx);
		rc = evb_err_errno(rc);
		goto fail;
	}
	b->has_inq_sync = true;
	if ((rc = ring_init(&b->ring, o->ring_bytes)) != EVB_OK) {
		goto fail;
	}
	if ((rc = open_sockets(b, diag)) != EVB_OK) {
		goto fail;
	}
	*out = b;
	return EVB_OK;
fail:
	evb_broker_close(b);
	return rc;
}

/* start_thread starts one thread; a failure is an errno code. */
static int
start_thread(pthread_t *thr, bool *has, void *(*fn)(void *), evb_broker *b)
{
	int rc;

	if ((rc = pthread_create(thr, NULL, fn, b)) != 0) {
		evb_log(EVB_LOG_ERR, "EVB-BROKER-THREAD",
		    "cannot start a broker thread: %s; check the process's "
		    "thread and memory limits",
		    strerror(rc));
		return evb_err_errno(rc);
	}
	*has = true;
	return EVB_OK;
}

int
evb_broker_start(evb_broker *b)
{
	int rc;

	evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	if (b->is_started || b->is_stopping) {
		evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
		return EVB_EINVAL;
	}
	b->is_started = true;
	evb_assert(pthread_mutex_unlock(&b->mtx) == 0);

	if ((rc = start_thread(&b->ingest_thr, &b->has_ingest_thr, ingest_main,
	         b)) != EVB_OK ||
	    (rc = start_thread(&b->ctl_thr, &b->has_ctl_thr, ctl_main, b)) !=
	        EVB_OK ||
	    (b->has_confirm &&
	        ((rc = start_thread(&b->confirm_send_thr,
	              &b->has_confirm_send_thr, confirm_sender_main, b)) !=
	                EVB_OK ||
	            (rc = start_thread(&b->confirm_thr, &b->has_confirm_thr,
	                 confirm_main, b)) != EVB_OK))) {
		evb_broker_stop(b);
		return rc;
	}
	if (b->opts.heartbeat_ms > 0 || b->opts.stats_log_ms > 0) {
		rc = start_thread(
		    &b->timer_thr, &b->has_timer_thr, heartbeat_main, b);
		if (rc != EVB_OK) {
			evb_broker_stop(b);
			return rc;
		}
	}
	return EVB_OK;
}

/* stop_socket closes s if it is open; its blocked receiver returns. */
static void
stop_socket(nng_socket s, bool *has)
{
	if (*has) {
		// NNG_ECLOSED only: the socket was open, so it is ours.
		(void) nng_close(s);
		*has = false;
	}
}

static void
stop_join(pthread_t thr, bool *has)
{
	if (*has) {
		evb_assert(pthread_join(thr, NULL) == 0);
		*has = false;
	}
}

void
evb_broker_stop(evb_broker *b)
{
	if (b == NULL || !b->has_sync) {
		return;
	}
	evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	if (b->is_closed) {
		evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
		return;
	}
	b->is_stopping = true;
	evb_assert(pthread_cond_broadcast(&b->timer_cv) == 0);
	evb_assert(pthread_mutex_unlock(&b->mtx) == 0);

	stop_socket(b->pull, &b->has_pull);
	stop_join(b->ingest_thr, &b->has_ingest_thr);
	// Confirmed ingest takes no more requests, but its replies go on
	// until close (broker_confirm.c).
	confirm_intake_stop(b);
	stop_join(b->confirm_thr, &b->has_confirm_thr);
	b->confirm_replies_at_stop = atomic_load(&b->confirm_replies);
	stop_socket(b->ctl, &b->has_ctl);
	stop_join(b->ctl_thr, &b->has_ctl_thr);
	stop_join(b->timer_thr, &b->has_timer_thr);

	evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	b->is_closed = true;
	evb_assert(pthread_cond_broadcast(&b->ring_cv) == 0);
	evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
}

void
evb_broker_close(evb_broker *b)
{
	if (b == NULL) {
		return;
	}
	evb_broker_stop(b);
	if (b->has_confirm_send_thr) {
		// The last replies: of requests made durable since stop.
		confirm_sender_stop(b);
		stop_join(b->confirm_send_thr, &b->has_confirm_send_thr);
		confirm_linger(b, b->confirm_replies_at_stop);
	}
	stop_socket(b->pull, &b->has_pull);
	stop_socket(b->ctl, &b->has_ctl);
	stop_socket(b->confirm, &b->has_confirm);
	stop_socket(b->pub, &b->has_pub);
	if (b->confirm_rx != NULL) {
		nng_aio_free(b->confirm_rx);
		b->confirm_rx = NULL;
	}
	if (b->pub_aio != NULL) {
		nng_aio_free(b->pub_aio);
		b->pub_aio = NULL;
	}
	// pull0 is closed, so the aio's last callback has run or runs now;
	// nng_aio_free waits for it. Messages a stopped thread left queued
	// (none, unless the broker was never started) are freed after.
	if (b->inq_aio != NULL) {
		nng_aio_free(b->inq_aio);
		b->inq_aio = NULL;
	}
	for (; b->inq_n > 0; b->inq_n--) {
		nng_msg_free(b->inq[b->inq_head]);
		b->inq_head = (b->inq_head + 1) % BROKER_INQ_MAX;
	}
	if (b->has_inq_sync) {
		(void) pthread_cond_destroy(&b->inq_cv);
		(void) pthread_mutex_destroy(&b->inq_mtx);
	}
	confirm_drop_all(b);
	if (b->has_confirm_sync) {
		(void) pthread_cond_destroy(&b->confirm_cv);
		(void) pthread_mutex_destroy(&b->confirm_mtx);
	}
	if (b->has_sync) {
		(void) pthread_cond_destroy(&b->timer_cv);
		(void) pthread_cond_destroy(&b->ring_cv);
		(void) pthread_mutex_destroy(&b->mtx);
	}
	ring_fini(&b->ring);
	evb_buf_fini(&b->frame);
	free(b->pub_url);
	free(b->ingest_url);
	free(b->ctl_url);
	free(b->confirm_url);
	free(b->component);
	free(b);
}

void
evb_broker_stats(evb_broker *b, evb_broker_stat *out)
{
	memset(out, 0, sizeof(*out));
	evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	out->epoch          = b->epoch;
	out->last_seq       = b->last_seq;
	out->published      = b->published;
	out->ring_first_seq = b->ring.count > 0 ? b->ring.first_seq : 0;
	out->ring_bytes     = b->ring.used;
	out->ring_evicted   = b->ring.evicted;
	memcpy(out->published_by_type, b->published_by_type,
	    sizeof(out->published_by_type));
	out->pub_send_failed = b->pub_send_failed;
	evb_assert(pthread_mutex_unlock(&b->mtx) == 0);

	out->msgs_in       = atomic_load(&b->msgs_in);
	out->msgs_refused  = atomic_load(&b->msgs_refused);
	out->msgs_trailing = atomic_load(&b->msgs_trailing);
	out->events_in     = atomic_load(&b->events_in);
	out->rejected      = atomic_load(&b->rejected);
	for (int t = 0; t < EVB_BROKER_MAX_TYPES; t++) {
		for (int r = 0; r < EVB_BROKER_REASONS; r++) {
			out->rejected_by_type[t][r] =
			    atomic_load(&b->rejected_by_type[t][r]);
		}
	}
	out->bytes_in        = atomic_load(&b->bytes_in);
	out->recv_errors     = atomic_load(&b->recv_errors);
	out->repairs_served  = atomic_load(&b->repairs_served);
	out->repair_frames   = atomic_load(&b->repair_frames);
	out->ctl_unsent      = atomic_load(&b->ctl_unsent);
	out->confirm_msgs    = atomic_load(&b->confirm_msgs);
	out->confirm_replies = atomic_load(&b->confirm_replies);
	out->confirm_unsent  = atomic_load(&b->confirm_unsent);
	{
		int64_t n = atomic_load(&b->pub_pipes);

		out->subscribers = n > 0 ? (uint64_t) n : 0;
	}
}

/*
 * publish_stamp gives ev what the broker sets: ts and id when missing,
 * then seq and epoch. Under mtx, so ULIDs follow seq order.
 */
static void
publish_stamp(evb_broker *b, evb_event *ev, int64_t arrival_ns, uint64_t seq)
{
	if (!evb_proto_event_has_ts(ev)) {
		evb_proto_event_set_ts(ev, arrival_ns);
	}
	if (evb_proto_event_id(ev).len == 0) {
		char id[EVB_ULID_LEN + 1];

		// The arrival time, not the producer's ts, which may be
		// anything: the ids then sort by arrival, as seqs do.
		evb_ulid_next(&b->ulid, arrival_ns, id);
		evb_assert(
		    evb_proto_event_set_id(ev, id, EVB_ULID_LEN) == EVB_OK);
	}
	evb_proto_event_set_seq(ev, seq, b->epoch);
}

/*
 * pub_send sends b->frame on pub0 through the one aio kept for it. Why
 * not nng_send: in nng 1.5 each call allocates and frees an aio, whose
 * setup asks the kernel for random bytes, and that was a third of the
 * broker thread's time per event. pub0 completes a send at once (it
 * drops a slow subscriber's oldest frame rather than wait), so the wait
 * is short. Under b->mtx.
 */
static int
pub_send(evb_broker *b)
{
	nng_msg *m;
	int      rv;

	if ((rv = nng_msg_alloc(&m, 0)) != 0) {
		return rv;
	}
	if ((rv = nng_msg_append(m, b->frame.data, b->frame.len)) != 0) {
		nng_msg_free(m);
		return rv;
	}
	nng_aio_set_msg(b->pub_aio, m);
	nng_send_aio(b->pub, b->pub_aio);
	nng_aio_wait(b->pub_aio);
	if ((rv = nng_aio_result(b->pub_aio)) != 0) {
		nng_msg_free(nng_aio_get_msg(b->pub_aio));
	}
	return rv;
}

int
broker_publish(evb_broker *b, evb_event *ev, int64_t arrival_ns)
{
	uint64_t seq;
	uint64_t suppressed = 0;
	bool     log_fail   = false;
	int      type       = evb_proto_event_type(ev);
	int      rv;

	evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	seq = b->last_seq + 1;
	publish_stamp(b, ev, arrival_ns, seq);
	evb_buf_reset(&b->frame);
	if (evb_proto_frame_encode(ev, &b->frame) != EVB_OK) {
		// The seq is not used, so the sequence stays contiguous.
		evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
		return EVB_ENOMEM;
	}
	// Stamping adds id, ts, seq and epoch. An event accepted just under
	// EVB_PROTO_MAX_EVENT_BYTES can grow past it, and then every
	// subscriber and the collector would refuse its frame; it is
	// refused here instead, before it takes a seq.
	if (b->frame.len - strlen((const char *) b->frame.data) - 1 >
	    EVB_PROTO_MAX_EVENT_BYTES) {
		evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
		return EVB_ETOOBIG;
	}
	ring_append(&b->ring, seq, b->frame.data, b->frame.len);
	b->last_seq = seq;
	b->published++;
	b->published_by_type[type]++;
	// pub0 never waits for a subscriber (it drops their oldest queued
	// frame instead), so this send does not hold the lock for long. A
	// failure loses the frame on the live bus only: it is in the ring,
	// where a subscriber that sees the seq jump repairs it. With no
	// subscriber, pub0 would only free the copy: the send is skipped
	// (in `evbus run` the collector reads the ring, not pub0).
	rv = atomic_load(&b->pub_pipes) != 0 ? pub_send(b) : 0;
	if (rv != 0) {
		b->pub_send_failed++;
		log_fail = evb_ratelimit_allow(
		    &b->pub_rl, evb_clock_mono_ms(), &suppressed);
	}
	if (b->waiters > 0) {
		evb_assert(pthread_cond_broadcast(&b->ring_cv) == 0);
	}
	evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
	if (log_fail) {
		evb_log(EVB_LOG_WARNING, "EVB-BROKER-PUBFAIL",
		    "seq %llu was not sent on pub0: %s; subscribers repair "
		    "it from the ring (%llu lines like this left out before)",
		    (unsigned long long) seq, nng_strerror(rv),
		    (unsigned long long) suppressed);
	}
	return EVB_OK;
}
