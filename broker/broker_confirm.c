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
 * Why raw rep0: nng 1.5 offers many requests in flight on one cooked
 * socket only through contexts and aio callbacks. In raw mode a request
 * arrives with its route back in the message header, and a reply sent
 * with that header goes to the right requester in any order, so one
 * thread with blocking receives serves any number of waiting requests.
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
 * of its own sends the replies, outside the lock, with a send that may
 * wait. Why not send on the spot, without waiting: the collector's thread
 * is the one that learns what is durable, and rep0 takes one reply per
 * pipe at a time; when the requester's previous reply is still being
 * written, a send that must not wait fails, and the reply was lost (a
 * requester that does not resend then hangs). The sender waits for the
 * pipe instead, at most BROKER_CONFIRM_SEND_MS.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

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
	if (r->msg != NULL) {
		nng_msg_free(r->msg);
	}
	free(r);
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
 * confirm_send sends r's reply (with the request's route) and frees r. On
 * the sender thread, without confirm_mtx: the send may wait, for at most
 * BROKER_CONFIRM_SEND_MS, until the requester's pipe has written the reply
 * before (rep0 holds one reply per pipe in flight and queues the next).
 */
static void
confirm_send(evb_broker *b, confirm_req *r)
{
	msgpack_sbuffer sb;
	nng_msg        *m = r->msg;

	msgpack_sbuffer_init(&sb);
	nng_msg_clear(m);
	if (confirm_encode(r, &sb) != 0 ||
	    nng_msg_append(m, sb.data, sb.size) != 0 ||
	    nng_sendmsg(b->confirm, m, 0) != 0) {
		// The requester times out and retries; the WAL's duplicate
		// suppression gives the retry the original seqs.
		atomic_fetch_add(&b->confirm_unsent, 1);
	} else {
		r->msg = NULL; // nng owns it now.
		atomic_fetch_add(&b->confirm_replies, 1);
	}
	msgpack_sbuffer_destroy(&sb);
	confirm_req_free(r);
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
		while (b->confirm_ready == NULL && !b->confirm_stopping) {
			evb_assert(pthread_cond_wait(
			               &b->confirm_cv, &b->confirm_mtx) == 0);
		}
		if ((r = b->confirm_ready) == NULL) {
			break; // Stopping, and nothing left to try.
		}
		b->confirm_ready = r->next;
		if (b->confirm_ready == NULL) {
			b->confirm_ready_tail = NULL;
		}
		evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
		confirm_send(b, r);
		evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
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
	r->msg           = msg; // Its header is the route back.
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
	confirm_req *r;

	if (!b->has_confirm_sync) {
		return;
	}
	evb_assert(pthread_mutex_lock(&b->confirm_mtx) == 0);
	while ((r = b->confirm_head) != NULL) {
		b->confirm_head = r->next;
		atomic_fetch_add(&b->confirm_unsent, 1);
		confirm_req_free(r);
	}
	b->confirm_tail = NULL;
	while ((r = b->confirm_ready) != NULL) {
		b->confirm_ready = r->next;
		atomic_fetch_add(&b->confirm_unsent, 1);
		confirm_req_free(r);
	}
	b->confirm_ready_tail = NULL;
	free(b->confirm_late);
	b->confirm_late     = NULL;
	b->confirm_nlate    = 0;
	b->confirm_late_cap = 0;
	evb_assert(pthread_mutex_unlock(&b->confirm_mtx) == 0);
}

void *
confirm_main(void *arg)
{
	evb_broker   *b  = arg;
	evb_ratelimit rl = { .window_ms = 10000, .burst = 10 };
	ingest_ctx    c  = { .b = b, .rl = &rl };
	confirm_req  *r;
	int           rv;

	evb_thread_name("evb:confirm");
	for (;;) {
		if ((rv = nng_recvmsg(b->confirm, &c.msg, 0)) != 0) {
			if (rv == NNG_ECLOSED) {
				break;
			}
			if (evb_ratelimit_allow(
			        &rl, evb_clock_mono_ms(), NULL)) {
				evb_log(EVB_LOG_ERR, "EVB-BROKER-RECV",
				    "confirm receive failed: %s",
				    nng_strerror(rv));
			}
			continue;
		}
		atomic_fetch_add(&b->confirm_msgs, 1);
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			// No reply: the requester retries.
			atomic_fetch_add(&b->confirm_unsent, 1);
			nng_msg_free(c.msg);
			continue;
		}
		c.arrival = evb_clock_real_ns();
		c.req     = r;
		confirm_open(b, r);
		ingest_message(&c);
		confirm_close(b, r, c.msg);
	}
	return NULL;
}
