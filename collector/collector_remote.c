/*
 * collector_remote.c: the remote source of a collector in its own process
 * (`evbus collector`): the broker's bus through a sub0 socket, and its
 * control endpoint through req0 (docs/protocol.md, "Control endpoint").
 *
 * The bus is the fast path; the control endpoint makes it complete. A
 * frame whose seq is ahead of the next one expected means pub0 dropped
 * frames (or the collector was down): the range is fetched with repair
 * requests before the frame is taken. When the bus has been quiet for
 * idle_ms, the collector asks for frames past its last one all the same,
 * so a collector restarted while no one publishes still catches up, and
 * it learns the broker's epoch without waiting for a frame. Whatever the
 * ring answers as "evicted" becomes a gap record; an "epoch" answer means
 * the broker restarted.
 *
 * One thread (the collector's) does everything here with blocking nng
 * calls bounded by timeouts; no aio callbacks are used.
 */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector_int.h"

#define REMOTE_REQ_TIMEOUT_MS 5000 /* One repair request and its reply. */
#define REMOTE_REPAIR_MAX 10000    /* The broker's cap on "max". */
#define REMOTE_SUB_BUF 8192        /* sub0 receive queue (nng's max). */
#define REMOTE_REPLY_MAX ((size_t) 4 << 20) /* Largest repair reply. */

/* What one repair request came back with. */
typedef enum remote_got {
	REMOTE_FRAMES,  /* Frames taken; more may follow. */
	REMOTE_CAUGHT,  /* Nothing past next is published. */
	REMOTE_EVICTED, /* A gap was recorded; go on. */
	REMOTE_EPOCH,   /* The broker's epoch changed; switched. */
	REMOTE_FAILED,  /* No usable answer (logged). */
} remote_got;

/*
 * remote_pipe_event is the nng_pipe_notify callback of both sockets, on
 * an nng thread. When the peer turns out to speak another protocol it
 * says so once, until a connection is taken again: nng keeps dialling
 * the URL in silence, and the collector would wait for frames or
 * replies that never come.
 */
static void
remote_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	coll_peer         *p = arg;
	evb_peer_state     before, after;
	evb_collector_opts d;

	evb_assert(pthread_mutex_lock(&p->mtx) == 0);
	before = evb_peer_get(&p->st);
	after  = evb_peer_note(&p->st, (uint32_t) nng_pipe_id(pipe),
            ev == NNG_PIPE_EV_ADD_PRE        ? EVB_PEER_ADD_PRE
	         : ev == NNG_PIPE_EV_ADD_POST ? EVB_PEER_ADD_POST
	                                      : EVB_PEER_REM_POST);
	evb_assert(pthread_mutex_unlock(&p->mtx) == 0);
	if (after != EVB_PEER_WRONG || before == EVB_PEER_WRONG) {
		return;
	}
	evb_collector_opts_default(&d);
	if (p->is_bus) {
		evb_log(EVB_LOG_WARNING, "EVB-COLL-PEER",
		    "the bus URL %s speaks another protocol than pub0 (the "
		    "broker's ingest, confirm or control endpoint?): each "
		    "connection is refused and dialled again, and no frame "
		    "comes from it; give the collector (evbus collector "
		    "--connect) the broker's bus URL, its --pub (default %s)",
		    p->url, d.sub_url);
	} else {
		evb_log(EVB_LOG_WARNING, "EVB-COLL-PEER",
		    "the control URL %s speaks another protocol than rep0 "
		    "(the broker's bus, ingest or confirm endpoint?): each "
		    "connection is refused and dialled again, and no repair "
		    "can be asked; give the collector (evbus collector --ctl) "
		    "the broker's control URL, its --ctl (default %s)",
		    p->url, d.ctl_url);
	}
}

/* remote_watch starts the watch p on sock, before it dials url. */
static int
remote_watch(coll_peer *p, nng_socket sock, const char *url, bool is_bus)
{
	static const nng_pipe_ev evs[] = { NNG_PIPE_EV_ADD_PRE,
		NNG_PIPE_EV_ADD_POST, NNG_PIPE_EV_REM_POST };
	int                      rv;

	p->is_bus = is_bus;
	if ((p->url = strdup(url)) == NULL ||
	    pthread_mutex_init(&p->mtx, NULL) != 0) {
		return NNG_ENOMEM;
	}
	p->has_mtx = true;
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if ((rv = nng_pipe_notify(
		         sock, evs[i], remote_pipe_event, p)) != 0) {
			return rv;
		}
	}
	return 0;
}

/*
 * remote_unwatch releases p, after its socket is closed (no callback
 * runs after nng_close).
 */
static void
remote_unwatch(coll_peer *p)
{
	if (p->has_mtx) {
		(void) pthread_mutex_destroy(&p->mtx);
		p->has_mtx = false;
	}
	free(p->url);
	p->url = NULL;
}

int
coll_remote_open(evb_collector *c, const evb_collector_opts *o, evb_diag *diag)
{
	int rv;

	if ((rv = nng_sub0_open(&c->sub)) != 0) {
		goto fail;
	}
	c->has_sub = true;
	if ((rv = nng_req0_open(&c->req)) != 0) {
		goto fail;
	}
	c->has_req = true;
	if ((rv = remote_watch(&c->peer_sub, c->sub, o->sub_url, true)) != 0 ||
	    (rv = remote_watch(&c->peer_req, c->req, o->ctl_url, false)) != 0) {
		goto fail;
	}
	// Dialling without NNG_FLAG_NONBLOCK would fail at once when the
	// broker is down; in the background nng keeps retrying.
	if ((rv = nng_socket_set(c->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
	    (rv = nng_socket_set_int(
	         c->sub, NNG_OPT_RECVBUF, REMOTE_SUB_BUF)) != 0 ||
	    (rv = nng_socket_set_ms(
	         c->sub, NNG_OPT_RECVTIMEO, (nng_duration) c->idle_ms)) != 0 ||
	    (rv = nng_socket_set_ms(
	         c->req, NNG_OPT_RECVTIMEO, REMOTE_REQ_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_ms(
	         c->req, NNG_OPT_SENDTIMEO, REMOTE_REQ_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_size(
	         c->req, NNG_OPT_RECVMAXSZ, REMOTE_REPLY_MAX)) != 0 ||
	    (rv = nng_dial(c->sub, o->sub_url, NULL, NNG_FLAG_NONBLOCK)) != 0 ||
	    (rv = nng_dial(c->req, o->ctl_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		goto fail;
	}
	return EVB_OK;
fail:
	evb_diag_set(diag, "bus %s, control %s: %s", o->sub_url, o->ctl_url,
	    nng_strerror(rv));
	return rv == NNG_ENOMEM ? EVB_ENOMEM : EVB_ETRANSPORT;
}

void
coll_remote_close(evb_collector *c)
{
	if (c->has_sub) {
		(void) nng_close(c->sub);
		c->has_sub = false;
	}
	if (c->has_req) {
		(void) nng_close(c->req);
		c->has_req = false;
	}
	remote_unwatch(&c->peer_sub);
	remote_unwatch(&c->peer_req);
}

/* remote_ask sends a repair request for up to max frames from next. */
static int
remote_ask(evb_collector *c, uint64_t max, nng_msg **reply)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	int             err = 0;
	int             rv;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	err |= msgpack_pack_map(&pk, 4);
	err |= msgpack_pack_str_with_body(&pk, "op", 2);
	err |= msgpack_pack_str_with_body(&pk, "repair", 6);
	err |= msgpack_pack_str_with_body(&pk, "epoch", 5);
	err |= msgpack_pack_uint64(&pk, c->epoch);
	err |= msgpack_pack_str_with_body(&pk, "from", 4);
	err |= msgpack_pack_uint64(&pk, c->next);
	err |= msgpack_pack_str_with_body(&pk, "max", 3);
	err |= msgpack_pack_uint64(&pk, max);
	rv = err != 0 ? NNG_ENOMEM : nng_send(c->req, sb.data, sb.size, 0);
	msgpack_sbuffer_destroy(&sb);
	if (rv == 0) {
		coll_bump(c, &c->st.repairs, 1);
		rv = nng_recvmsg(c->req, reply, 0);
	}
	return rv;
}

/* remote_frames takes the frames of a repair answer. */
static remote_got
remote_frames(evb_collector *c, const msgpack_object *frames)
{
	uint64_t s;

	if (frames->type != MSGPACK_OBJECT_ARRAY) {
		return REMOTE_FAILED;
	}
	if (frames->via.array.size == 0) {
		return REMOTE_CAUGHT;
	}
	coll_bump(c, &c->st.repaired, frames->via.array.size);
	for (uint32_t i = 0; i < frames->via.array.size; i++) {
		const msgpack_object *f = &frames->via.array.ptr[i];

		if (f->type != MSGPACK_OBJECT_BIN) {
			return REMOTE_FAILED;
		}
		if (coll_accept(c, f->via.bin.ptr, f->via.bin.size, true, &s) ==
		    COLL_AHEAD) {
			// The ring answers from next on; anything else is
			// a hole it cannot fill.
			(void) coll_gap(c, s - 1, COLL_GAP_EVICTED);
			(void) coll_accept(
			    c, f->via.bin.ptr, f->via.bin.size, true, &s);
		}
	}
	return REMOTE_FRAMES;
}

/* remote_answer reads a repair reply. */
static remote_got
remote_answer(evb_collector *c, const msgpack_object *m, uint64_t upto)
{
	const msgpack_object *err = evb_proto_map_get(m, "error");
	const msgpack_object *frames;
	uint64_t              v;

	if (err == NULL) {
		frames = evb_proto_map_get(m, "frames");
		return frames != NULL ? remote_frames(c, frames)
		                      : REMOTE_FAILED;
	}
	if (err->type != MSGPACK_OBJECT_STR) {
		return REMOTE_FAILED;
	}
	if (err->via.str.size == 7 &&
	    memcmp(err->via.str.ptr, "evicted", 7) == 0 &&
	    coll_map_u64(m, "first", &v) && v > c->next) {
		(void) coll_gap(
		    c, v - 1 < upto ? v - 1 : upto, COLL_GAP_EVICTED);
		return REMOTE_EVICTED;
	}
	if (err->via.str.size == 5 &&
	    memcmp(err->via.str.ptr, "epoch", 5) == 0 &&
	    coll_map_u64(m, "epoch", &v) && v != c->epoch) {
		coll_epoch_switch(c, v);
		return REMOTE_EPOCH;
	}
	return REMOTE_FAILED;
}

/* remote_repair_once asks for frames next..upto and takes the answer. */
static remote_got
remote_repair_once(evb_collector *c, uint64_t upto)
{
	msgpack_unpacked u;
	nng_msg         *reply;
	uint64_t         max = upto - c->next + 1;
	remote_got       got = REMOTE_FAILED;
	int              rv;

	if (max > REMOTE_REPAIR_MAX || max == 0) {
		max = REMOTE_REPAIR_MAX;
	}
	if ((rv = remote_ask(c, max, &reply)) != 0) {
		evb_log(EVB_LOG_WARNING, "EVB-COLL-REPAIR",
		    "no answer from the broker's control endpoint: %s",
		    nng_strerror(rv));
		return REMOTE_FAILED;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, nng_msg_body(reply), nng_msg_len(reply),
	        NULL) == MSGPACK_UNPACK_SUCCESS) {
		got = remote_answer(c, &u.data, upto);
	}
	if (got == REMOTE_FAILED) {
		evb_log(EVB_LOG_WARNING, "EVB-COLL-REPAIR",
		    "the broker's control endpoint gave an unexpected answer "
		    "to a repair from seq %llu of epoch %llu",
		    (unsigned long long) c->next,
		    (unsigned long long) c->epoch);
	}
	msgpack_unpacked_destroy(&u);
	nng_msg_free(reply);
	return got;
}

/*
 * remote_repair fetches seqs next..upto (UINT64_MAX: everything
 * published). Returns false if the control endpoint failed first.
 */
static bool
remote_repair(evb_collector *c, uint64_t upto)
{
	remote_got got;

	while (c->next <= upto && !atomic_load(&c->stopping)) {
		got = remote_repair_once(c, upto);
		if (got == REMOTE_FAILED) {
			return false;
		}
		// After an epoch change, the seqs wanted for a frame in hand
		// belong to a broker that is gone; a catch-up goes on from
		// seq 1 of the new epoch.
		if (got == REMOTE_CAUGHT ||
		    (got == REMOTE_EPOCH && upto != UINT64_MAX)) {
			break;
		}
		(void) coll_flush(c);
	}
	return true;
}

/* remote_take takes one frame of the bus, repairing what is before it. */
static void
remote_take(evb_collector *c, nng_msg *m)
{
	uint64_t epoch;
	uint64_t s;

	if (coll_accept(c, nng_msg_body(m), nng_msg_len(m), false, &s) !=
	    COLL_AHEAD) {
		return;
	}
	epoch = c->epoch;
	if (!remote_repair(c, s - 1) && c->epoch == epoch && c->next < s) {
		// The bus works but the control endpoint does not: the
		// frames in between cannot be had from here.
		(void) coll_gap(c, s - 1, COLL_GAP_UNREPAIRED);
	}
	// The repair found the broker restarted: the frame in hand is of
	// the epoch that is gone, and taking it would switch back to it.
	if (c->epoch != epoch) {
		return;
	}
	(void) coll_accept(c, nng_msg_body(m), nng_msg_len(m), false, &s);
}

/*
 * remote_bus_failed handles a receive from the bus that failed with rv,
 * neither a timeout nor a closed socket (nng_recvmsg's NNG_ENOMEM, say).
 * Such a failure is taken to be passing: giving up would leave the
 * process up but storing nothing, with no repairs, heartbeats or stats
 * lines to show it. So it is logged, rate-limited, and the loop goes on
 * after a pause; what the bus drops meanwhile, repairs fetch.
 */
static void
remote_bus_failed(evb_ratelimit *rl, int rv)
{
	uint64_t suppressed = 0;

	if (evb_ratelimit_allow(rl, evb_clock_mono_ms(), &suppressed)) {
		evb_log(EVB_LOG_ERR, "EVB-COLL-BUS",
		    "receiving from the bus failed: %s; retrying (%llu "
		    "similar lines suppressed)",
		    nng_strerror(rv), (unsigned long long) suppressed);
	}
	coll_pause();
}

void
coll_remote_run(evb_collector *c)
{
	evb_ratelimit rl = { .window_ms = 10000, .burst = 10 };
	nng_msg      *m;
	int           rv;

	// The first look goes to the control endpoint: it gives the
	// broker's epoch and everything published while we were away.
	(void) remote_repair(c, UINT64_MAX);
	(void) coll_flush(c);
	while (!atomic_load(&c->stopping)) {
		rv = nng_recvmsg(c->sub, &m, 0);
		if (rv == NNG_ETIMEDOUT) {
			(void) remote_repair(c, UINT64_MAX);
		} else if (rv == NNG_ECLOSED) {
			// Closed under us (evb_collector_close closes it only
			// after joining this thread): nothing more can come.
			evb_log(EVB_LOG_ERR, "EVB-COLL-BUS",
			    "the bus socket was closed: nothing more is "
			    "stored");
			break;
		} else if (rv != 0) {
			remote_bus_failed(&rl, rv);
		}
		// Take what the bus has queued, up to a batch, then append.
		while (rv == 0 && c->npend < c->batch_max) {
			remote_take(c, m);
			nng_msg_free(m);
			rv = nng_recvmsg(c->sub, &m, NNG_FLAG_NONBLOCK);
		}
		if (rv == 0) {
			remote_take(c, m);
			nng_msg_free(m);
		}
		(void) coll_flush(c);
		coll_ops_tick(c);
	}
	(void) coll_flush(c);
}
