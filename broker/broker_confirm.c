/*
 * broker_confirm.c: confirmed ingest. The confirm thread receives each
 * request on a raw rep0 socket (opts.confirm_url), publishes its events
 * through the same walk as fire-and-forget ingest (ingest_message, which
 * records each event's seq or rejection in a confirm_req), and queues the
 * request until the events are durable; evb_broker_durable, called by
 * whoever stores the log (the collector in `evbus run`), sends the
 * replies whose events it covers. docs/protocol.md "Confirmed ingest" has
 * the reply format.
 *
 * Contexts: each request is received on an nng context of its own and
 * keeps it until its reply has been sent on it, so any number of requests
 * wait at once and replies go back in any order. Why not raw rep0, which
 * routes a reply by its header: nng 1.5's raw rep0 takes a reply at once
 * into a queue of 64 per connection and frees, unsent and unreported, one
 * that finds the queue full (a requester with many requests in flight
 * that reads slowly lost replies that were counted as sent). A context's
 * send completes only when the connection takes the reply, waiting while
 * it writes the one before, and fails after BROKER_CONFIRM_SEND_MS; so a
 * reply is counted sent or unsent honestly.
 *
 * Order: requests are handled one at a time on one thread and seqs only
 * grow, so the queue is in order of each request's highest seq; the
 * durable position pops from its head. A request enters the queue, open,
 * before its first event is published: the collector may store an event
 * (and report it lost or a duplicate) before ingest_message returns, and
 * the report must find the request. An open request is never popped.
 *
 * Locks: confirm_mtx guards the queue, every queued request's results
 * and the durable position. It is never held together with
 * evb_broker.mtx: the notes take it after broker_publish has returned.
 *
 * Sending: a covered request moves to the ready list, and a sender thread
 * of its own encodes the replies and starts their sends, outside the
 * lock, so the collector's thread, which learns what is durable, neither
 * encodes nor waits. A send runs on its own aio; its callback moves the
 * request to the done list, which the sender frees (an aio cannot be
 * freed from its own callback). One slow requester delays only its own
 * replies.
 *
 * Stop: evb_broker_stop stops taking requests (it stops the confirm
 * thread's receive aio, which fails every later receive), but the sender and
 * the socket live on until evb_broker_close, so that requests which
 * become durable in between (the collector storing what the ring holds)
 * still get their replies. Close then waits for the sends in flight,
 * drops what never became durable, and gives the connections
 * CONFIRM_LINGER_MS to write the last replies before the socket closes
 * (nng 1.5 has no linger option).
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_int.h"

/* How often the confirm thread's receive wakes to look at the stop flag
 * (a safety net: the stop itself ends the receive). */
#define CONFIRM_RX_WAKE_MS 100
/* Time the connections get to write the last replies at close. */
#define CONFIRM_LINGER_MS 100

/* The error given for events stored as part of a gap. */
#define CONFIRM_LOST                                                     \
	"lost: the collector fell behind the broker's ring and did not " \
	"store it; publish it again"

/* confirm_req_free releases a request and its results; NULL is ok. */
static void
confirm_req_free(confirm_req *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		free(r->res[i].err);
	}
	free(r->res);
	free(r->refused);
	if (r->aio != NULL) {
		nng_aio_free(r->aio); // Waits for its callback.
	}
	if (r->msg != NULL) {
		nng_msg_free(r->msg);
	}
	(void) nng_ctx_close(r->ctx); // NNG_ECLOSED only: it was open.
	free(r);
}

/* confirm_req_free_all frees a list of requests. */
static void
confirm_req_free_all(confirm_req *r)
{
	confirm_req *next;

	for (; r != NULL; r = next) {
		next = r->next;
		confirm_req_free(r);
	}
}

/* confirm_slot returns a new result slot, or NULL when out of memory. */
static confirm_res *
confirm_slot(confirm_req *r)
{
	if (r->n == r->cap) {
		size_t       cap = r->cap == 0 ? 16 : r->cap * 2;
		confirm_res *res = realloc(r->res, cap * sizeof(*res));

		if (res == NULL) {
			return NULL;
		}
		r->res = res;
		r->cap = cap;
	}
	memset(&r->res[r->n], 0, sizeof(r->res[0]));
	return &r->res[r->n++];
}

/* late_apply applies the early reports about seq to its result s. */
static void
late_apply(const evb_broker *b, confirm_res *s, uint64_t seq)
{
	for (size_t i = 0; i < b->confirm_nlate; i++) {
		const confirm_late *l = &b->confirm_late[i];

		if (seq < l->first || seq > l->last) {
			continue;
		}
		if (l->is_lost) {
			s->is_lost = true;
		} else {
			s->epoch = l->orig_epoch;
			s->seq   = l->orig_seq;
		}
	}
}

/* late_add keeps a report for the open request (under confirm_mtx); out
 * of memory loses it, which is logged. */
static void
late_add(evb_broker *b, const confirm_late *l)
{
	if (b->confirm_tail == NULL || !b->confirm_tail->is_open) {
		return; // Every closed request has noted all its seqs.
	}
	if (b->confirm_nlate == b->confirm_late_cap) {
		size_t cap =
		    b->confirm_late_cap == 0 ? 8 : b->confirm_late_cap * 2;
		confirm_late *n = realloc(b->confirm_late, cap * sizeof(*n));

		if (n == NULL) {
			evb_log(EVB_LOG_ERR, "EVB-BROKER-NOMEM",
			    "out of memory: a confirmed reply may give seq "
			    "%llu, not what the log holds for it",
			    (unsigned long long) l->first);
			return;
		}
		b->confirm_late     = n;
		b->confirm_late_cap = cap;
	}
	b->confirm_late[b->confirm_nlate++] = *l;
}

void
confirm_note_seq(evb_broker *b, confirm_req *r, uint64_t epoch, uint64_t seq)
{
	confirm_res *s;

	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	if ((s = confirm_slot(r)) == NULL) {
		r->is_nomem = true;
	} else {
		s->epoch   = epoch;
		s->seq     = seq;
		r->max_seq = seq;
		late_apply(b, s, seq);
	}
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

void
confirm_note_err(evb_broker *b, confirm_req *r, const char *msg)
{
	confirm_res *s;

	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	if ((s = confirm_slot(r)) == NULL || (s->err = strdup(msg)) == NULL) {
		r->is_nomem = true;
	}
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

void
confirm_note_refused(evb_broker *b, confirm_req *r, const char *msg)
{
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	free(r->refused);
	if ((r->refused = strdup(msg)) == NULL) {
		r->is_nomem = true;
	}
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

/* confirm_encode packs the reply body. */
static int
confirm_encode(const confirm_req *r, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	const char    *err =
            r->is_nomem ? "internal: out of memory; retry" : r->refused;
	int e = 0;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (err != NULL) {
		e |= msgpack_pack_map(&pk, 1);
		e |= msgpack_pack_str_with_body(&pk, "error", 5);
		e |= msgpack_pack_str_with_body(&pk, err, strlen(err));
		return e;
	}
	e |= msgpack_pack_map(&pk, 1);
	e |= msgpack_pack_str_with_body(&pk, "results", 7);
	e |= msgpack_pack_array(&pk, (uint32_t) r->n);
	for (size_t i = 0; i < r->n; i++) {
		const confirm_res *s = &r->res[i];

		if (s->err != NULL || s->is_lost) {
			const char *m = s->is_lost ? CONFIRM_LOST : s->err;

			e |= msgpack_pack_map(&pk, 1);
			e |= msgpack_pack_str_with_body(&pk, "error", 5);
			e |= msgpack_pack_str_with_body(&pk, m, strlen(m));
			continue;
		}
		e |= msgpack_pack_map(&pk, 2);
		e |= msgpack_pack_str_with_body(&pk, "seq", 3);
		e |= msgpack_pack_uint64(&pk, s->seq);
		e |= msgpack_pack_str_with_body(&pk, "epoch", 5);
		e |= msgpack_pack_uint64(&pk, s->epoch);
	}
	return e;
}

/*
 * confirm_sent_cb ends the send of r's reply (an nng callback): it
 * counts it and hands r to the sender thread to free.
 */
static void
confirm_sent_cb(void *arg)
{
	confirm_req *r = arg;
	evb_broker  *b = r->b;

	if (nng_aio_result(r->aio) != 0) {
		// Timed out behind a requester that does not read, or the
		// socket closed. The requester retries; the WAL's duplicate
		// suppression gives the retry the original seqs.
		r->msg = nng_aio_get_msg(r->aio);
		atomic_fetch_add(&b->confirm_unsent, 1);
	} else {
		atomic_fetch_add(&b->confirm_replies, 1);
	}
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	r->next         = b->confirm_done;
	b->confirm_done = r;
	b->confirm_sending--;
	evb_assert(pthread_cond_broadcast(&b->confirm_cv) == 0);
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

/*
 * confirm_send encodes r's reply and starts its send on r's context, at
 * most BROKER_CONFIRM_SEND_MS (confirm_sent_cb ends it). On the sender
 * thread, without confirm_mtx.
 */
static void
confirm_send(evb_broker *b, confirm_req *r)
{
	msgpack_sbuffer sb;
	nng_msg        *m = r->msg;
	int             e;

	msgpack_sbuffer_init(&sb);
	nng_msg_clear(m);
	e = confirm_encode(r, &sb) != 0 ||
	    nng_msg_append(m, sb.data, sb.size) != 0 ||
	    nng_aio_alloc(&r->aio, confirm_sent_cb, r) != 0;
	msgpack_sbuffer_destroy(&sb);
	if (e) {
		atomic_fetch_add(&b->confirm_unsent, 1);
		confirm_req_free(r);
		return;
	}
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	b->confirm_sending++;
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
	r->msg = NULL; // The aio's until the callback.
	nng_aio_set_msg(r->aio, m);
	nng_aio_set_timeout(r->aio, BROKER_CONFIRM_SEND_MS);
	nng_ctx_send(r->ctx, r->aio);
}

/* confirm_pop hands every queued reply that the durable position covers
 * to the sender thread. Under confirm_mtx. */
static void
confirm_pop(evb_broker *b)
{
	confirm_req *r;
	bool         any = false;

	while ((r = b->confirm_head) != NULL && !r->is_open &&
	    r->max_seq <= b->confirm_durable) {
		b->confirm_head = r->next;
		if (b->confirm_head == NULL) {
			b->confirm_tail = NULL;
		}
		r->next = NULL;
		if (b->confirm_ready_tail != NULL) {
			b->confirm_ready_tail->next = r;
		} else {
			b->confirm_ready = r;
		}
		b->confirm_ready_tail = r;
		any                   = true;
	}
	if (any) {
		evb_assert(pthread_cond_signal(&b->confirm_cv) == 0);
	}
}

void *
confirm_sender_main(void *arg)
{
	evb_broker  *b = arg;
	confirm_req *r;

	evb_thread_name("evb:confirm-tx");
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	for (;;) {
		if ((r = b->confirm_done) != NULL) {
			b->confirm_done = NULL;
			evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
			confirm_req_free_all(r);
			evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
			continue;
		}
		if ((r = b->confirm_ready) != NULL) {
			b->confirm_ready = r->next;
			if (b->confirm_ready == NULL) {
				b->confirm_ready_tail = NULL;
			}
			evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
			confirm_send(b, r);
			evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
			continue;
		}
		if (b->confirm_stopping && b->confirm_sending == 0) {
			break; // Every reply handed over has ended.
		}
		evb_assert(
		    pthread_cond_wait(&b->confirm_cv, &b->confirm_mtx) == 0);
	}
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
	return NULL;
}

void
confirm_sender_stop(evb_broker *b)
{
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	b->confirm_stopping = true;
	evb_assert(pthread_cond_broadcast(&b->confirm_cv) == 0);
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

void
confirm_intake_stop(evb_broker *b)
{
	atomic_store(&b->confirm_rx_stop, true);
	if (b->confirm_rx != NULL) {
		// Stop, not cancel: a cancel that lands between the thread's
		// check of the flag and its receive being scheduled is lost,
		// and the receive's wake-up timeout was then all that ended
		// the stop (in ASan runs under load, sometimes not for a
		// minute). A stopped aio fails every later operation at once.
		nng_aio_stop(b->confirm_rx);
	}
}

void
confirm_linger(evb_broker *b, uint64_t replies_before)
{
	struct timespec ts = { 0, CONFIRM_LINGER_MS * 1000000L };

	if (atomic_load(&b->confirm_replies) != replies_before) {
		(void) nanosleep(&ts, NULL);
	}
}

/* confirm_open queues r, open, before its events are published. */
static void
confirm_open(evb_broker *b, confirm_req *r)
{
	r->is_open = true;
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	if (b->confirm_tail != NULL) {
		b->confirm_tail->next = r;
	} else {
		b->confirm_head = r;
	}
	b->confirm_tail = r;
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

/* confirm_close marks r complete; it is sent once durable (at once when
 * it published nothing, or was refused: max_seq is then 0). */
static void
confirm_close(evb_broker *b, confirm_req *r, nng_msg *msg)
{
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	r->msg           = msg; // Reused for the reply.
	r->is_open       = false;
	b->confirm_nlate = 0;
	if (r->is_nomem || r->refused != NULL) {
		r->max_seq = 0;
	}
	confirm_pop(b);
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

void
evb_broker_durable(evb_broker *b, uint64_t epoch, uint64_t seq)
{
	if (epoch != b->epoch || !b->has_confirm_sync) {
		return;
	}
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	if (seq > b->confirm_durable) {
		b->confirm_durable = seq;
	}
	confirm_pop(b);
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

/* confirm_each calls fn on every queued result of this epoch's seqs
 * first..last. Under confirm_mtx. */
static void
confirm_each(evb_broker *b, uint64_t first, uint64_t last,
    void (*fn)(confirm_res *, void *), void *arg)
{
	for (confirm_req *r = b->confirm_head; r != NULL; r = r->next) {
		for (size_t i = 0; i < r->n; i++) {
			confirm_res *s = &r->res[i];

			if (s->err == NULL && s->epoch == b->epoch &&
			    s->seq >= first && s->seq <= last) {
				fn(s, arg);
			}
		}
	}
}

static void
confirm_mark_lost(confirm_res *s, void *arg)
{
	(void) arg;
	s->is_lost = true;
}

void
evb_broker_lost(evb_broker *b, uint64_t epoch, uint64_t first, uint64_t last)
{
	confirm_late l = { .first = first, .last = last, .is_lost = true };

	if (epoch != b->epoch || !b->has_confirm_sync) {
		return;
	}
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	confirm_each(b, first, last, confirm_mark_lost, NULL);
	late_add(b, &l);
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

static void
confirm_mark_dup(confirm_res *s, void *arg)
{
	const uint64_t *orig = arg;

	s->epoch = orig[0];
	s->seq   = orig[1];
}

void
evb_broker_duplicate(evb_broker *b, uint64_t epoch, uint64_t seq,
    uint64_t orig_epoch, uint64_t orig_seq)
{
	uint64_t     orig[2] = { orig_epoch, orig_seq };
	confirm_late l       = { .first = seq,
		      .last             = seq,
		      .orig_epoch       = orig_epoch,
		      .orig_seq         = orig_seq };

	if (epoch != b->epoch || !b->has_confirm_sync) {
		return;
	}
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	confirm_each(b, seq, seq, confirm_mark_dup, orig);
	late_add(b, &l);
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

void
confirm_drop_all(evb_broker *b)
{
	confirm_req *waiting, *ready, *done;

	if (!b->has_confirm_sync) {
		return;
	}
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	waiting         = b->confirm_head;
	ready           = b->confirm_ready;
	done            = b->confirm_done;
	b->confirm_head = b->confirm_tail = NULL;
	b->confirm_ready = b->confirm_ready_tail = NULL;
	b->confirm_done                          = NULL;
	free(b->confirm_late);
	b->confirm_late     = NULL;
	b->confirm_nlate    = 0;
	b->confirm_late_cap = 0;
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
	for (confirm_req *r = waiting; r != NULL; r = r->next) {
		atomic_fetch_add(&b->confirm_unsent, 1);
	}
	for (confirm_req *r = ready; r != NULL; r = r->next) {
		atomic_fetch_add(&b->confirm_unsent, 1);
	}
	// Outside the lock: freeing a sent one waits for its callback,
	// which takes the lock.
	confirm_req_free_all(waiting);
	confirm_req_free_all(ready);
	confirm_req_free_all(done);
}

/*
 * confirm_recv receives the next request on a context of its own. A stop
 * (confirm_intake_stop) stops the receive's aio, which fails this receive
 * and every later one; the wake-up every CONFIRM_RX_WAKE_MS only checks
 * the flag again, a safety net should nng 1.5 miss that. Returns 0 with
 * *ctx and *msg, NNG_ECLOSED to stop, or another nng error.
 */
static int
confirm_recv(evb_broker *b, nng_ctx *ctx, bool *has_ctx, nng_msg **msg)
{
	int rv;

	for (;;) {
		if (atomic_load(&b->confirm_rx_stop)) {
			return NNG_ECLOSED;
		}
		if (!*has_ctx) {
			if ((rv = nng_ctx_open(ctx, b->confirm)) != 0) {
				return rv;
			}
			*has_ctx = true;
		}
		nng_aio_set_timeout(b->confirm_rx, CONFIRM_RX_WAKE_MS);
		nng_ctx_recv(*ctx, b->confirm_rx);
		nng_aio_wait(b->confirm_rx);
		rv = nng_aio_result(b->confirm_rx);
		if (rv == 0) {
			*msg     = nng_aio_get_msg(b->confirm_rx);
			*has_ctx = false; // The request's now.
			return 0;
		}
		if (rv != NNG_ETIMEDOUT && rv != NNG_ECANCELED) {
			return rv;
		}
	}
}

void *
confirm_main(void *arg)
{
	evb_broker     *b     = arg;
	evb_ratelimit   rl    = { .window_ms = 10000, .burst = 10 };
	ingest_ctx      c     = { .b = b, .rl = &rl };
	struct timespec pause = { 0, CONFIRM_RX_WAKE_MS * 1000000L };
	nng_ctx         ctx   = NNG_CTX_INITIALIZER;
	bool            has   = false;
	confirm_req    *r;
	int             rv;

	evb_thread_name("evb:confirm");
	for (;;) {
		if ((rv = confirm_recv(b, &ctx, &has, &c.msg)) != 0) {
			if (rv == NNG_ECLOSED) {
				break;
			}
			if (evb_ratelimit_allow(
			        &rl, evb_clock_mono_ms(), NULL)) {
				evb_log(EVB_LOG_ERR, "EVB-BROKER-RECV",
				    "confirm receive failed: %s",
				    nng_strerror(rv));
			}
			(void) nanosleep(&pause, NULL); // Not a busy loop.
			continue;
		}
		atomic_fetch_add(&b->confirm_msgs, 1);
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			// No reply: the requester retries.
			atomic_fetch_add(&b->confirm_unsent, 1);
			nng_msg_free(c.msg);
			(void) nng_ctx_close(ctx);
			continue;
		}
		r->b      = b;
		r->ctx    = ctx;
		c.arrival = evb_clock_real_ns();
		c.req     = r;
		confirm_open(b, r);
		ingest_message(&c);
		confirm_close(b, r, c.msg);
	}
	if (has) {
		(void) nng_ctx_close(ctx);
	}
	return NULL;
}
