/*
 * broker_ingest.c: the ingest thread. It receives each message from
 * pull0, walks its events with proto's ingest iterator and publishes
 * each valid one (broker_publish); a bad event is rejected alone, its
 * neighbours go on. The confirm thread (broker_confirm.c) walks its
 * requests with the same ingest_message, which then also records each
 * event's seq or rejection for the reply.
 *
 * Decoding and validation run on this one thread, outside the broker's
 * lock; only the publication of each event takes it. A message arrives
 * whole (nng delivers messages, not bytes), so there is no partial
 * state between two receives.
 *
 * Why a queue in front of the thread: nng 1.5's pull0 holds one message
 * per connection and reads the connection's next one only once the
 * application has taken it, unless a receive is already waiting; every
 * message then costs the thread a wait on nng's chain of hand-offs
 * (poller, task threads), which on two cores bounded ingest far below
 * what the thread can process. So pull0 is read with one aio whose
 * callback (ingest_recv_cb, on an nng thread) only queues the message
 * and asks for the next: a receive is nearly always waiting, so each
 * connection reads ahead while the thread works, and the thread drains
 * what has queued without sleeping. One aio at a time keeps the
 * messages of a producer in their order. The queue is bounded
 * (BROKER_INQ_MAX, BROKER_INQ_MAX_BYTES); when full, nothing is asked
 * of pull0 until the thread catches up, so TCP pushes back on producers
 * as before. Stop only has to close pull0: the callback then marks the
 * queue closed, and the thread exits once it has published what the
 * queue held.
 *
 * Refusals and rejections are counted (broker.h, evb_broker_stat) and
 * logged at a rate limit, with the producer's address, the event's index
 * and proto's diagnostic, so the operator can find the producer. For
 * the count per type, the type of an event that failed validation is
 * read back from its bytes (reject_type); when even that fails it counts
 * as unknown.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"

#define INGEST_LOG_WINDOW_MS 10000 /* Reject lines: a burst per window. */
#define INGEST_LOG_BURST 10
#define INGEST_ADDR_MAX 64 /* "[v6 address]:port" and room to spare. */

/* ingest_peer writes the producer's address, or "unknown", into buf. */
static void
ingest_peer(nng_msg *msg, char *buf, size_t cap)
{
	nng_sockaddr sa;
	char         ip[INET6_ADDRSTRLEN];

	if (nng_pipe_get_addr(nng_msg_get_pipe(msg), NNG_OPT_REMADDR, &sa) !=
	    0) {
		(void) snprintf(buf, cap, "unknown");
	} else if (sa.s_family == NNG_AF_INET &&
	    inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip)) != NULL) {
		(void) snprintf(
		    buf, cap, "%s:%u", ip, (unsigned) ntohs(sa.s_in.sa_port));
	} else if (sa.s_family == NNG_AF_INET6 &&
	    inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip)) != NULL) {
		(void) snprintf(buf, cap, "[%s]:%u", ip,
		    (unsigned) ntohs(sa.s_in6.sa_port));
	} else {
		(void) snprintf(buf, cap, "a local peer");
	}
}

/*
 * ingest_str_view finds the bytes of the str or bin at p (n bytes, its
 * whole extent). Returns false for any other kind.
 */
static bool
ingest_str_view(const uint8_t *p, size_t n, const uint8_t **s, size_t *len)
{
	size_t hdr;

	if (n == 0) {
		return false;
	}
	if (p[0] >= 0xa0 && p[0] <= 0xbf) {
		hdr = 1;
	} else if (p[0] == 0xd9 || p[0] == 0xc4) {
		hdr = 2;
	} else if (p[0] == 0xda || p[0] == 0xc5) {
		hdr = 3;
	} else if (p[0] == 0xdb || p[0] == 0xc6) {
		hdr = 5;
	} else {
		return false;
	}
	if (n < hdr) {
		return false;
	}
	*s   = p + hdr;
	*len = n - hdr;
	return true;
}

/*
 * reject_type reads the "type" of the event map at p (len bytes, its
 * element in the message) without allocating: map header, then each
 * key and value delimited by evb_proto_msg_extent. Returns the type's
 * index, or BROKER_TYPE_UNKNOWN when the bytes do not name a known type.
 */
static int
reject_type(const uint8_t *p, size_t len)
{
	size_t   pos;
	uint64_t n;

	if (len == 0) {
		return BROKER_TYPE_UNKNOWN;
	}
	if (p[0] >= 0x80 && p[0] <= 0x8f) {
		n   = p[0] & 0x0f;
		pos = 1;
	} else if (p[0] == 0xde && len >= 3) {
		n   = evb_get_be16(p + 1);
		pos = 3;
	} else if (p[0] == 0xdf && len >= 5) {
		n   = evb_get_be32(p + 1);
		pos = 5;
	} else {
		return BROKER_TYPE_UNKNOWN;
	}
	for (uint64_t i = 0; i < n && pos < len; i++) {
		const uint8_t *s;
		size_t         kn, vn, slen;
		bool           is_type;
		int            t;

		if (evb_proto_msg_extent(p + pos, len - pos, &kn, NULL) !=
		    EVB_OK) {
			break;
		}
		is_type = ingest_str_view(p + pos, kn, &s, &slen) &&
		    slen == 4 && memcmp(s, "type", 4) == 0;
		pos += kn;
		if (evb_proto_msg_extent(p + pos, len - pos, &vn, NULL) !=
		    EVB_OK) {
			break;
		}
		if (is_type) {
			if (ingest_str_view(p + pos, vn, &s, &slen) &&
			    evb_proto_type_find((const char *) s, slen, &t) ==
			        EVB_OK) {
				return t;
			}
			break;
		}
		pos += vn;
	}
	return BROKER_TYPE_UNKNOWN;
}

static int
reject_reason(int rc)
{
	switch (rc) {
	case EVB_ESCHEMA:
		return BROKER_REASON_SCHEMA;
	case EVB_ETOOBIG:
		return BROKER_REASON_TOOBIG;
	default:
		return BROKER_REASON_MALFORMED;
	}
}

/* ingest_log writes one rate-limited line about bad input. */
static void
ingest_log(
    const ingest_ctx *c, const char *id, const char *what, const char *detail)
{
	char     peer[INGEST_ADDR_MAX];
	char     more[64]   = "";
	uint64_t suppressed = 0;

	if (!evb_ratelimit_allow(c->rl, evb_clock_mono_ms(), &suppressed)) {
		return;
	}
	if (suppressed > 0) {
		(void) snprintf(more, sizeof(more),
		    " (%llu lines like this left out)",
		    (unsigned long long) suppressed);
	}
	ingest_peer(c->msg, peer, sizeof(peer));
	evb_log(EVB_LOG_WARNING, id,
	    "%s from %s: %s; counted in 'evbus stats', fix the producer "
	    "('evbus validate' runs the same checks)%s",
	    what, peer, detail, more);
}

/*
 * ingest_reject counts and logs the event that ingest_next refused with
 * rc; its bytes are it->buf[off .. it->off].
 */
static void
ingest_reject(const ingest_ctx *c, const evb_proto_ingest *it, size_t off,
    int rc, const evb_diag *diag)
{
	evb_broker *b = c->b;
	char        what[96];
	int         type;

	if (rc == EVB_ENOMEM) {
		// Not the event's fault, but it is lost all the same.
		atomic_fetch_add(&b->rejected, 1);
		if (!evb_ratelimit_allow(c->rl, evb_clock_mono_ms(), NULL)) {
			return;
		}
		evb_log(EVB_LOG_ERR, "EVB-BROKER-NOMEM",
		    "out of memory decoding an ingest event; it is dropped "
		    "and counted as rejected. Check the process's memory "
		    "limit and lower --max-msg");
		return;
	}
	type = reject_type(it->buf + off, it->off - off);
	atomic_fetch_add(&b->rejected, 1);
	atomic_fetch_add(&b->rejected_by_type[type][reject_reason(rc)], 1);
	if (it->is_batch) {
		(void) snprintf(what, sizeof(what),
		    "rejected event %zu of a batch of %zu", it->index - 1,
		    it->count);
	} else {
		(void) snprintf(what, sizeof(what), "rejected an event");
	}
	ingest_log(c, "EVB-BROKER-REJECT", what,
	    diag->msg[0] != '\0' ? diag->msg : evb_strerror(rc));
}

/* ingest_refuse counts and logs a message refused as a whole. */
static void
ingest_refuse(const ingest_ctx *c, const char *detail)
{
	if (c->req != NULL) {
		confirm_note_refused(c->b, c->req, detail);
	}
	atomic_fetch_add(&c->b->msgs_refused, 1);
	ingest_log(c, "EVB-BROKER-REFUSE", "refused an ingest message", detail);
}

/*
 * ingest_trailing counts and logs a message with bytes after its map or
 * array. Its events stand (they were published as they came), so it is
 * neither a refused message nor a rejected event; a confirmed request
 * gets one error result after its events' (docs/protocol.md, section 11).
 */
static void
ingest_trailing(const ingest_ctx *c, const evb_diag *diag)
{
	if (c->req != NULL) {
		confirm_note_err(c->b, c->req, diag->msg);
	}
	atomic_fetch_add(&c->b->msgs_trailing, 1);
	ingest_log(c, "EVB-BROKER-TRAILING",
	    "took the events of an ingest message but not the bytes after "
	    "them",
	    diag->msg);
}

void
ingest_message(const ingest_ctx *c)
{
	evb_broker      *b   = c->b;
	const uint8_t   *p   = nng_msg_body(c->msg);
	size_t           len = nng_msg_len(c->msg);
	evb_proto_ingest it;
	evb_diag         diag = { "" };

	atomic_fetch_add(&b->msgs_in, 1);
	atomic_fetch_add(&b->bytes_in, len);
	if (len > b->opts.recv_max_bytes) {
		(void) snprintf(diag.msg, sizeof(diag.msg),
		    "message of %zu bytes is over the limit of %zu (--max-msg)",
		    len, b->opts.recv_max_bytes);
		ingest_refuse(c, diag.msg);
		return;
	}
	if (evb_proto_ingest_begin(&it, p, len, &diag) != EVB_OK) {
		ingest_refuse(c, diag.msg);
		return;
	}
	for (;;) {
		size_t     off = it.off;
		evb_event *ev;
		int        rc;

		diag.msg[0] = '\0';
		if ((rc = evb_proto_ingest_next(&it, &ev, &diag)) == EVB_EOF) {
			break;
		}
		if (rc != EVB_OK && it.index - 1 == it.count) {
			ingest_trailing(c, &diag);
			continue;
		}
		atomic_fetch_add(&b->events_in, 1);
		if (rc == EVB_OK) {
			rc = broker_publish(b, ev, c->arrival);
			if (rc == EVB_ETOOBIG) {
				evb_diag_set(&diag,
				    "event is over the limit of %d bytes once "
				    "stamped with id, ts, seq and epoch",
				    EVB_PROTO_MAX_EVENT_BYTES);
			}
			if (rc == EVB_OK && c->req != NULL) {
				confirm_note_seq(b, c->req,
				    evb_proto_event_epoch(ev),
				    evb_proto_event_seq(ev));
			}
			evb_proto_event_free(ev);
		}
		if (rc != EVB_OK) {
			ingest_reject(c, &it, off, rc, &diag);
			if (c->req != NULL) {
				confirm_note_err(b, c->req,
				    diag.msg[0] != '\0' ? diag.msg
				                        : evb_strerror(rc));
			}
		}
	}
}

/* inq_has_room says whether the queue may take another message. */
static bool
inq_has_room(const evb_broker *b)
{
	return b->inq_n < BROKER_INQ_MAX && b->inq_bytes < BROKER_INQ_MAX_BYTES;
}

/* inq_is_low says whether the queue has drained to its low-water mark. */
static bool
inq_is_low(const evb_broker *b)
{
	return b->inq_n <= BROKER_INQ_MAX / 2 &&
	    b->inq_bytes <= BROKER_INQ_MAX_BYTES / 2;
}

void
ingest_recv_cb(void *arg)
{
	evb_broker *b  = arg;
	int         rv = nng_aio_result(b->inq_aio);
	bool        rearm;

	evb_assert(pthread_mutex_lock(&b->inq_mtx) == 0);
	b->inq_armed = false;
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		// pull0 closed (stop), or the aio stopped (close).
		b->inq_closed = true;
	} else if (rv == 0) {
		nng_msg *m = nng_aio_get_msg(b->inq_aio);
		size_t   i = (b->inq_head + b->inq_n) % BROKER_INQ_MAX;

		b->inq[i]         = m;
		b->inq_arrival[i] = evb_clock_real_ns();
		b->inq_n++;
		b->inq_bytes += nng_msg_len(m);
	}
	// Any other error is pull0's and passing: logged by the thread.
	rearm        = !b->inq_closed && inq_has_room(b);
	b->inq_armed = rearm;
	if (rv != 0 && rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
		atomic_fetch_add(&b->recv_errors, 1);
	}
	evb_assert(pthread_cond_signal(&b->inq_cv) == 0);
	evb_assert(pthread_mutex_unlock(&b->inq_mtx) == 0);
	if (rearm) {
		nng_recv_aio(b->pull, b->inq_aio);
	}
}

/*
 * inq_take waits for the next queued message. Returns false once the
 * queue is closed and empty. OUT: *m and *arrival when true.
 */
static bool
inq_take(evb_broker *b, nng_msg **m, int64_t *arrival)
{
	bool rearm = false;

	evb_assert(pthread_mutex_lock(&b->inq_mtx) == 0);
	while (b->inq_n == 0 && !b->inq_closed) {
		evb_assert(pthread_cond_wait(&b->inq_cv, &b->inq_mtx) == 0);
	}
	if (b->inq_n == 0) {
		evb_assert(pthread_mutex_unlock(&b->inq_mtx) == 0);
		return false;
	}
	*m          = b->inq[b->inq_head];
	*arrival    = b->inq_arrival[b->inq_head];
	b->inq_head = (b->inq_head + 1) % BROKER_INQ_MAX;
	b->inq_n--;
	b->inq_bytes -= nng_msg_len(*m);
	// The callback stopped asking when the queue filled: ask again once
	// it is down to half (and on a closed socket, to learn so). Asking
	// at every take would cost this thread a hand-off to nng's threads
	// per message; from half, nng refills the queue while this thread
	// works through the other half.
	if (!b->inq_armed && !b->inq_closed && inq_is_low(b)) {
		b->inq_armed = rearm = true;
	}
	evb_assert(pthread_mutex_unlock(&b->inq_mtx) == 0);
	if (rearm) {
		nng_recv_aio(b->pull, b->inq_aio);
	}
	return true;
}

void *
ingest_main(void *arg)
{
	evb_broker   *b         = arg;
	evb_ratelimit rl        = { 0 };
	ingest_ctx    c         = { .b = b, .rl = &rl };
	uint64_t      errs_seen = 0;

	evb_thread_name("evb:ingest");
	rl.window_ms = INGEST_LOG_WINDOW_MS;
	rl.burst     = INGEST_LOG_BURST;
	evb_assert(pthread_mutex_lock(&b->inq_mtx) == 0);
	b->inq_armed = true;
	evb_assert(pthread_mutex_unlock(&b->inq_mtx) == 0);
	nng_recv_aio(b->pull, b->inq_aio);
	while (inq_take(b, &c.msg, &c.arrival)) {
		uint64_t errs = atomic_load(&b->recv_errors);

		// pull0 reports no other error in normal operation; the
		// queue keeps receiving rather than stop ingest for good.
		if (errs != errs_seen &&
		    evb_ratelimit_allow(&rl, evb_clock_mono_ms(), NULL)) {
			evb_log(EVB_LOG_ERR, "EVB-BROKER-RECV",
			    "%llu ingest receives failed",
			    (unsigned long long) (errs - errs_seen));
			errs_seen = errs;
		}
		ingest_message(&c);
		nng_msg_free(c.msg);
	}
	return NULL;
}
