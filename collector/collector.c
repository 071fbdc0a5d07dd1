/*
 * collector.c: the collector handle, its batch and the in-process loop.
 *
 * The collector thread is the WAL's only writer: it owns the batch (an
 * arena of payload and id bytes plus one coll_pending per record) and the
 * continuity state (epoch, next seq). Frames are decoded and checked
 * (coll_accept), queued, and appended with one evb_wal_append per batch
 * (coll_flush). A missing range that cannot be had any more becomes one
 * gap record (coll_gap); its payload is a small MessagePack map described
 * in docs/wal-format.md "Gap records" (evb_collector_gap_decode is the
 * decoder; change both together, with the doc).
 *
 * Invariant: the records appended by this handle have, within an epoch,
 * strictly increasing seqs with no hole that a gap record does not cover.
 *
 * One lock, mtx, guards only the counters, so evb_collector_stats can
 * read them from any thread.
 */
#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/collector_int.h"

#define COLL_BATCH_DEFAULT 8192    /* Records per append. */
#define COLL_IDLE_MS_DEFAULT 500   /* See evb_collector_opts.idle_ms. */
#define COLL_RETRY_NS 100000000L   /* Pause before retrying a failure. */
#define COLL_BATCH_LIMIT 1000000   /* A sanity bound on batch_max. */
#define COLL_BEHIND_DIV 8          /* Margin: 1/8 of the frames held, */
#define COLL_BEHIND_BATCHES 4      /* but at most 4 batches. */
#define COLL_RETAIN_PERIOD_MS 1000 /* Retention runs once a second. */

void
evb_collector_opts_default(evb_collector_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->durability    = EVB_WAL_SYNC;
	o->sub_url       = "tcp://127.0.0.1:5570";
	o->ctl_url       = "tcp://127.0.0.1:5573";
	o->batch_max     = COLL_BATCH_DEFAULT;
	o->idle_ms       = COLL_IDLE_MS_DEFAULT;
	o->heartbeat_ms  = 5000;
	o->heartbeat_url = "tcp://127.0.0.1:5571";
	o->component     = "collector";
	o->stats_log_ms  = 60000;
}

evb_wal *
evb_collector_wal(evb_collector *c)
{
	return c->wal;
}

void
coll_bump(evb_collector *c, uint64_t *field, uint64_t v)
{
	pthread_mutex_lock(&c->mtx);
	*field += v;
	pthread_mutex_unlock(&c->mtx);
}

void
evb_collector_stats(evb_collector *c, evb_collector_stat *out)
{
	pthread_mutex_lock(&c->mtx);
	*out = c->st;
	pthread_mutex_unlock(&c->mtx);
}

/* ---- Batch ---------------------------------------------------------- */

/*
 * pend_new returns a fresh pending record whose bytes are appended to
 * the arena, or NULL when out of memory. The caller checks for room. An
 * id inside the payload (the envelope's id field) is kept there, not
 * copied: the WAL then stores its place instead of its bytes (wal.h,
 * evb_wal_rec.id).
 */
static coll_pending *
pend_new(evb_collector *c, const void *pay, size_t pay_len, const void *id,
    size_t id_len)
{
	coll_pending *p  = &c->pend[c->npend];
	size_t        at = c->arena.len, id_at = 0;
	bool          in = evb_mem_within(id, id_len, pay, pay_len, &id_at);

	if (evb_buf_append(&c->arena, pay, pay_len) != EVB_OK ||
	    (!in && evb_buf_append(&c->arena, id, id_len) != EVB_OK)) {
		c->arena.len = at;
		return NULL;
	}
	memset(p, 0, sizeof(*p));
	p->pay_off = at;
	p->pay_len = pay_len;
	p->id_off  = at + (in ? id_at : pay_len);
	p->id_len  = id_len;
	c->npend++;
	return p;
}

/* pend_room flushes when the batch is full. */
static int
pend_room(evb_collector *c)
{
	return c->npend < c->batch_max ? EVB_OK : coll_flush(c);
}

void
coll_epoch_switch(evb_collector *c, uint64_t e)
{
	if (c->epoch != 0) {
		evb_log(EVB_LOG_NOTICE, "EVB-COLL-EPOCH",
		    "broker epoch changed from %llu to %llu (broker "
		    "restarted): continuing from seq 1 of the new epoch; "
		    "the log holds the old epoch up to seq %llu (anything "
		    "the old broker published after that is not in the log)",
		    (unsigned long long) c->epoch, (unsigned long long) e,
		    (unsigned long long) (c->next - 1));
		coll_bump(c, &c->st.epochs, 1);
	}
	c->epoch = e;
	c->next  = 1;
}

/* frame_queue queues the event whose envelope and fields are in h. */
static coll_take
frame_queue(evb_collector *c, const evb_proto_head *h)
{
	coll_pending *p;

	if (pend_room(c) != EVB_OK ||
	    (p = pend_new(c, h->env, h->env_len, h->id.ptr, h->id.len)) ==
	        NULL) {
		coll_bump(c, &c->st.bad_frames, 1);
		evb_log(EVB_LOG_ERR, "EVB-COLL-LOST",
		    "cannot queue seq %llu (out of memory or storage "
		    "failing at stop): it will be recorded as a gap",
		    (unsigned long long) c->next);
		return COLL_BAD;
	}
	p->type  = (uint16_t) h->type;
	p->epoch = c->epoch;
	p->seq   = c->next;
	p->ts_ns = h->ts;
	c->next++;
	return COLL_QUEUED;
}

/*
 * frame_read fills h from a frame. Frames from the broker of this
 * process were validated when they were published, so only their
 * envelope fields are read (evb_proto_frame_head); a frame from another
 * process is decoded and validated in full, and *ev keeps the event
 * that h points into (the caller frees it).
 */
static int
frame_read(evb_collector *c, const void *frame, size_t len, evb_proto_head *h,
    evb_event **ev, evb_diag *diag)
{
	const uint8_t *nul;
	int            rc;

	*ev = NULL;
	if (c->read_fn != NULL) {
		return evb_proto_frame_head(frame, len, h, diag);
	}
	if ((rc = evb_proto_frame_decode(ev, frame, len, diag)) != EVB_OK) {
		return rc;
	}
	// frame_decode found the 0x00 after the topic.
	nul        = memchr(frame, 0, len);
	h->type    = evb_proto_event_type(*ev);
	h->id      = evb_proto_event_id(*ev);
	h->has_ts  = evb_proto_event_has_ts(*ev);
	h->ts      = evb_proto_event_ts(*ev);
	h->seq     = evb_proto_event_seq(*ev);
	h->epoch   = evb_proto_event_epoch(*ev);
	h->env     = nul + 1;
	h->env_len = len - (size_t) (h->env - (const uint8_t *) frame);
	return EVB_OK;
}

coll_take
coll_accept(evb_collector *c, const void *frame, size_t len, bool in_order,
    uint64_t *seq)
{
	evb_proto_head h;
	evb_event     *ev;
	evb_diag       diag = { "" };
	coll_take      t;
	uint64_t       s;
	int            rc;

	if ((rc = frame_read(c, frame, len, &h, &ev, &diag)) != EVB_OK) {
		coll_bump(c, &c->st.bad_frames, 1);
		evb_log(EVB_LOG_WARNING, "EVB-COLL-FRAME",
		    "a frame does not decode (%s): %s",
		    diag.msg[0] != '\0' ? diag.msg : evb_strerror(rc),
		    in_order && c->epoch != 0 ? "its seq becomes a gap"
		                              : "skipped");
		if (in_order && c->epoch != 0) {
			(void) coll_gap(c, c->next, COLL_GAP_UNDECODABLE);
		}
		return COLL_BAD;
	}
	if (h.epoch != c->epoch) {
		coll_epoch_switch(c, h.epoch);
	}
	s = h.seq;
	if (s < c->next) {
		coll_bump(c, &c->st.stale, 1);
		t = COLL_STALE;
	} else if (s > c->next) {
		*seq = s;
		t    = COLL_AHEAD;
	} else {
		t = frame_queue(c, &h);
	}
	evb_proto_event_free(ev);
	return t;
}

/* gap_encode writes {"gap": {"epoch": E, "first": F, "last": L}}. */
static int
gap_encode(msgpack_sbuffer *sb, uint64_t e, uint64_t f, uint64_t l)
{
	msgpack_packer pk;
	int            err = 0;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	err |= msgpack_pack_map(&pk, 1);
	err |= msgpack_pack_str_with_body(&pk, "gap", 3);
	err |= msgpack_pack_map(&pk, 3);
	err |= msgpack_pack_str_with_body(&pk, "epoch", 5);
	err |= msgpack_pack_uint64(&pk, e);
	err |= msgpack_pack_str_with_body(&pk, "first", 5);
	err |= msgpack_pack_uint64(&pk, f);
	err |= msgpack_pack_str_with_body(&pk, "last", 4);
	err |= msgpack_pack_uint64(&pk, l);
	return err != 0 ? EVB_ENOMEM : EVB_OK;
}

/* gap_why_text is the end of the EVB-COLL-GAP line for why. */
static const char *
gap_why_text(coll_gap_why why)
{
	switch (why) {
	case COLL_GAP_EVICTED:
		return "are no longer in the broker's ring (raise the "
		       "broker's --ring if this recurs)";
	case COLL_GAP_BEHIND:
		return "were evicted from the broker's ring, or given up with "
		       "them to resume ahead of its eviction (raise the "
		       "broker's --ring if this recurs)";
	case COLL_GAP_UNREPAIRED:
		return "were dropped by the bus and the broker's control "
		       "endpoint did not answer a repair";
	case COLL_GAP_UNDECODABLE:
		return "came in a frame that does not decode";
	}
	return "are missing";
}

int
coll_gap(evb_collector *c, uint64_t last, coll_gap_why why)
{
	msgpack_sbuffer sb;
	coll_pending   *p;
	uint64_t        first = c->next;
	int             rc;

	evb_assert(last >= first);
	msgpack_sbuffer_init(&sb);
	if ((rc = pend_room(c)) != EVB_OK ||
	    (rc = gap_encode(&sb, c->epoch, first, last)) != EVB_OK) {
		goto done;
	}
	if ((p = pend_new(c, sb.data, sb.size, NULL, 0)) == NULL) {
		rc = EVB_ENOMEM;
		goto done;
	}
	p->type  = EVB_COLLECTOR_GAP_TYPE;
	p->epoch = c->epoch;
	p->seq   = last;
	p->ts_ns = evb_clock_real_ns();
	p->gap_n = last - first + 1;
	evb_log(EVB_LOG_WARNING, "EVB-COLL-GAP",
	    "epoch %llu seqs %llu..%llu %s: recorded as a gap",
	    (unsigned long long) c->epoch, (unsigned long long) first,
	    (unsigned long long) last, gap_why_text(why));
done:
	msgpack_sbuffer_destroy(&sb);
	if (rc != EVB_OK) {
		// The seqs are gone either way, but with no gap record in the
		// log: count them, say so, and tell the broker, so no
		// confirmed request is answered with a seq the log lacks.
		coll_bump(c, &c->st.lost, last - first + 1);
		evb_log(EVB_LOG_ERR, "EVB-COLL-LOST",
		    "epoch %llu seqs %llu..%llu are lost and could not be "
		    "recorded as a gap (%s)",
		    (unsigned long long) c->epoch, (unsigned long long) first,
		    (unsigned long long) last, evb_strerror(rc));
		if (c->on_gap != NULL) {
			c->on_gap(c->durable_arg, c->epoch, first, last);
		}
	}
	c->next = last + 1;
	return rc;
}

/* flush_orig reads the epoch and seq of the record at off. */
static bool
flush_orig(evb_collector *c, uint64_t off, uint64_t *epoch, uint64_t *seq)
{
	evb_wal_iter *it;
	evb_wal_entry e;
	bool          ok = false;

	if (evb_wal_iter_open(c->wal, off, &it) != EVB_OK) {
		return false;
	}
	if (evb_wal_iter_next(it, &e) == EVB_OK && e.off == off) {
		*epoch = e.epoch;
		*seq   = e.seq;
		ok     = true;
	}
	evb_wal_iter_close(it);
	return ok;
}

/* flush_report tells the callbacks about the gaps and duplicates. */
static void
flush_report(evb_collector *c)
{
	for (size_t i = 0; i < c->npend; i++) {
		const coll_pending *p = &c->pend[i];
		uint64_t            oe, os;

		if (p->gap_n > 0 && c->on_gap != NULL) {
			c->on_gap(c->durable_arg, p->epoch,
			    p->seq - p->gap_n + 1, p->seq);
		}
		if (c->res[i].status != EVB_EEXIST || c->on_duplicate == NULL) {
			continue;
		}
		if (flush_orig(c, c->res[i].off, &oe, &os)) {
			c->on_duplicate(
			    c->durable_arg, p->epoch, p->seq, oe, os);
		} else {
			// Retention removed the original meanwhile, or it
			// cannot be read: the requester is told the seq of
			// the copy, which the log does not hold. Logged.
			evb_log(EVB_LOG_WARNING, "EVB-COLL-DUP",
			    "the original of duplicate seq %llu (offset "
			    "%llu) cannot be read back",
			    (unsigned long long) p->seq,
			    (unsigned long long) c->res[i].off);
		}
	}
}

/* flush_done counts a stored batch and reports the durable position. */
static void
flush_done(evb_collector *c, uint64_t took_us)
{
	const coll_pending *last = &c->pend[c->npend - 1];
	uint64_t            ok = 0, dup = 0, gaps = 0, gap_n = 0, bytes = 0;

	for (size_t i = 0; i < c->npend; i++) {
		if (c->res[i].status != EVB_EEXIST) {
			bytes += c->pend[i].pay_len;
		}
		if (c->res[i].status == EVB_EEXIST) {
			dup++;
		} else if (c->pend[i].type == EVB_COLLECTOR_GAP_TYPE) {
			gaps++;
			gap_n += c->pend[i].gap_n;
		} else {
			ok++;
		}
	}
	pthread_mutex_lock(&c->mtx);
	c->st.appended += ok;
	c->st.duplicates += dup;
	c->st.gaps += gaps;
	c->st.gap_events += gap_n;
	c->st.batches++;
	c->st.last_epoch     = last->epoch;
	c->st.last_seq       = last->seq;
	c->st.commit_last_us = took_us;
	c->st.bytes += bytes;
	if (took_us > c->st.commit_max_us) {
		c->st.commit_max_us = took_us;
	}
	pthread_mutex_unlock(&c->mtx);
	coll_ops_commit(c, took_us);
	flush_report(c);
	if (c->on_durable != NULL) {
		c->on_durable(c->durable_arg, last->epoch, last->seq);
	}
}

/*
 * flush_give_up drops the pending batch at stop, when it cannot be
 * appended: its seqs (events, and those that its gap records stand for)
 * are counted lost and reported through on_gap, run by run, so that no
 * confirmed request is answered for them; and the handle gives up every
 * later batch of the stop too (coll_flush). Why not store what comes
 * after: a later batch that did append would leave a hole no gap record
 * covers, and its on_durable would pass the dropped seqs. The log stays
 * a prefix of what was published.
 */
static void
flush_give_up(evb_collector *c)
{
	uint64_t epoch = 0, lo = 0, hi = 0, n = 0;
	bool     open = false;

	for (size_t i = 0; i <= c->npend; i++) {
		const coll_pending *p = i < c->npend ? &c->pend[i] : NULL;
		uint64_t            plo;

		plo =
		    p == NULL ? 0 : p->seq - (p->gap_n > 0 ? p->gap_n - 1 : 0);
		if (open && (p == NULL || p->epoch != epoch || plo != hi + 1)) {
			n += hi - lo + 1;
			if (c->on_gap != NULL) {
				c->on_gap(c->durable_arg, epoch, lo, hi);
			}
			open = false;
		}
		if (p == NULL) {
			break;
		}
		if (!open) {
			epoch = p->epoch;
			lo    = plo;
			open  = true;
		}
		hi = p->seq;
	}
	coll_bump(c, &c->st.lost, n);
	c->gave_up = true;
}

void
coll_pause(void)
{
	struct timespec ts = { 0, COLL_RETRY_NS };

	// Backs off a failing append (full disk), ring read or bus receive
	// instead of spinning.
	(void) nanosleep(&ts, NULL);
}

int
coll_flush(evb_collector *c)
{
	evb_diag diag = { "" };
	uint64_t t0;
	int      rc;

	if (c->npend == 0) {
		return EVB_OK;
	}
	if (c->gave_up) {
		flush_give_up(c); // A batch after one given up at stop.
		goto reset;
	}
	for (size_t i = 0; i < c->npend; i++) {
		const coll_pending *p = &c->pend[i];

		c->recs[i] = (evb_wal_rec) { .type = p->type,
			.epoch                     = p->epoch,
			.seq                       = p->seq,
			.ts_ns                     = p->ts_ns,
			.payload                   = c->arena.data + p->pay_off,
			.len                       = p->pay_len,
			.id = p->id_len > 0 ? c->arena.data + p->id_off : NULL,
			.id_len = p->id_len };
	}
	for (;;) {
		t0 = evb_clock_mono_ns();
		rc = evb_wal_append(c->wal, c->recs, c->npend, c->res, &diag);
		if (rc == EVB_OK) {
			flush_done(c, (evb_clock_mono_ns() - t0) / 1000);
			break;
		}
		coll_bump(c, &c->st.append_errors, 1);
		if (atomic_load(&c->stopping)) {
			evb_log(EVB_LOG_ERR, "EVB-COLL-LOST",
			    "giving up a batch of %zu records at stop, seqs "
			    "up to %llu of epoch %llu, and what the rest of "
			    "the stop brings: %s",
			    c->npend,
			    (unsigned long long) c->pend[c->npend - 1].seq,
			    (unsigned long long) c->epoch,
			    diag.msg[0] != '\0' ? diag.msg : evb_strerror(rc));
			flush_give_up(c);
			rc = EVB_OK; // Handled: counted and reported lost.
			break;
		}
		evb_log(EVB_LOG_ERR, "EVB-COLL-APPEND",
		    "cannot append a batch of %zu records (%s); retrying: "
		    "free disk space or raise the map limit",
		    c->npend,
		    diag.msg[0] != '\0' ? diag.msg : evb_strerror(rc));
		coll_pause();
	}
reset:
	c->npend = 0;
	evb_buf_reset(&c->arena);
	return rc;
}

/* ---- In-process source ------------------------------------------------ */

/* local_frames takes the frames of one read, as 4-byte length + bytes. */
static void
local_frames(evb_collector *c, const evb_buf *b, size_t n)
{
	size_t   at = 0;
	uint64_t s;

	for (size_t i = 0; i < n && at + 4 <= b->len; i++) {
		size_t flen = evb_get_be32(b->data + at);

		at += 4;
		if (flen > b->len - at) {
			break;
		}
		if (coll_accept(c, b->data + at, flen, true, &s) ==
		    COLL_AHEAD) {
			// The source returns seqs from next on, so this
			// cannot happen unless it breaks its contract.
			(void) coll_gap(c, s - 1, COLL_GAP_EVICTED);
			(void) coll_accept(c, b->data + at, flen, true, &s);
		}
		at += flen;
	}
}

/*
 * local_behind records the gap of a collector that fell behind the ring:
 * next was evicted, the oldest seq held is first and n frames are held.
 * Resuming at first would chase the eviction front: by the time a batch
 * is read and committed, the ring has evicted its start again, and the
 * collector goes on storing a few frames and a gap record per commit,
 * a fraction of what full batches store. So it also gives up a margin,
 * COLL_BEHIND_DIV-th of the frames held but no more than
 * COLL_BEHIND_BATCHES batches, and resumes ahead of the front with room
 * for full batches. Under sustained overload this loses no more than
 * chasing would (what the collector cannot store is lost either way) and
 * stores more; after a short burst it loses the margin, which the cap
 * keeps small next to a large ring.
 */
static void
local_behind(evb_collector *c, uint64_t first, size_t n)
{
	uint64_t margin = n / COLL_BEHIND_DIV;

	if (margin > (uint64_t) COLL_BEHIND_BATCHES * c->batch_max) {
		margin = (uint64_t) COLL_BEHIND_BATCHES * c->batch_max;
	}
	if (margin > 0) {
		evb_log(EVB_LOG_WARNING, "EVB-COLL-BEHIND",
		    "epoch %llu: the broker's ring no longer holds seqs "
		    "%llu..%llu; seqs %llu..%llu, which it holds, are given up "
		    "with them so as to resume ahead of its eviction",
		    (unsigned long long) c->epoch, (unsigned long long) c->next,
		    (unsigned long long) (first - 1),
		    (unsigned long long) first,
		    (unsigned long long) (first + margin - 1));
	}
	(void) coll_gap(c, first + margin - 1,
	    margin > 0 ? COLL_GAP_BEHIND : COLL_GAP_EVICTED);
}

static void
local_run(evb_collector *c)
{
	evb_buf  b;
	size_t   n;
	uint64_t first;
	int      rc;

	evb_buf_init(&b);
	for (;;) {
		// Read what fills the batch: after a gap record (which waits
		// for the frames after it) that is one frame less, so the
		// batch commits full instead of leaving one frame for a commit
		// of its own.
		size_t room = c->batch_max - c->npend;

		if (room == 0) {
			(void) coll_flush(c);
			room = c->batch_max;
		}
		evb_buf_reset(&b);
		rc = c->read_fn(c->read_arg, c->next, room, COLL_READ_MAX_BYTES,
		    c->idle_ms, &b, &n, &first);
		if (rc == EVB_OK) {
			local_frames(c, &b, n);
		} else if (rc == EVB_ENOTFOUND && first > c->next) {
			local_behind(c, first, n);
			continue; // The gap commits with the frames after it.
		} else if (rc == EVB_ECLOSED ||
		    (rc == EVB_ETIMEDOUT && atomic_load(&c->stopping))) {
			break;
		} else if (rc != EVB_ETIMEDOUT) {
			evb_log(EVB_LOG_ERR, "EVB-COLL-READ",
			    "reading the broker's ring failed: %s; retrying",
			    evb_strerror(rc));
			coll_pause();
		}
		(void) coll_flush(c);
		coll_ops_tick(c);
	}
	(void) coll_flush(c);
	evb_buf_fini(&b);
}

/* ---- Handle ------------------------------------------------------------ */

static void *
coll_main(void *arg)
{
	evb_collector *c = arg;

	evb_thread_name("evb:collector");
	if (c->read_fn != NULL) {
		local_run(c);
	} else {
		coll_remote_run(c);
	}
	return NULL;
}

/* coll_resume reads the WAL's last record: where to continue. */
static int
coll_resume(evb_collector *c, evb_diag *diag)
{
	evb_wal_iter *it;
	evb_wal_entry e;
	uint64_t      off;
	int           rc;

	if ((rc = evb_wal_last(c->wal, &off)) != EVB_OK || off == 0) {
		return rc;
	}
	if ((rc = evb_wal_iter_open(c->wal, off, &it)) != EVB_OK) {
		return rc;
	}
	if ((rc = evb_wal_iter_next(it, &e)) == EVB_OK) {
		c->epoch         = e.epoch;
		c->next          = e.seq + 1;
		c->st.last_epoch = e.epoch;
		c->st.last_seq   = e.seq;
	} else {
		evb_diag_set(diag,
		    "the WAL's last record (offset %llu) cannot be read: %s; "
		    "run 'evbus wal verify'",
		    (unsigned long long) off, evb_strerror(rc));
	}
	evb_wal_iter_close(it);
	return rc;
}

/* coll_alloc allocates the batch arrays. */
static int
coll_alloc(evb_collector *c, size_t batch_max)
{
	c->batch_max = batch_max;
	c->pend      = calloc(batch_max, sizeof(*c->pend));
	c->recs      = calloc(batch_max, sizeof(*c->recs));
	c->res       = calloc(batch_max, sizeof(*c->res));
	return c->pend == NULL || c->recs == NULL || c->res == NULL ? EVB_ENOMEM
	                                                            : EVB_OK;
}

static int
coll_opts_check(const evb_collector_opts *o, evb_diag *diag)
{
	if (o->data_dir == NULL || o->data_dir[0] == '\0') {
		evb_diag_set(diag, "data_dir: expected a directory");
		return EVB_EINVAL;
	}
	if (o->batch_max == 0 || o->batch_max > COLL_BATCH_LIMIT) {
		evb_diag_set(
		    diag, "batch_max: expected 1..%d", COLL_BATCH_LIMIT);
		return EVB_EINVAL;
	}
	if (o->idle_ms == 0) {
		evb_diag_set(diag, "idle_ms: expected at least 1");
		return EVB_EINVAL;
	}
	if (o->read_fn != NULL && o->read_epoch == 0) {
		evb_diag_set(diag, "read_epoch: required with read_fn");
		return EVB_EINVAL;
	}
	if (o->read_fn == NULL && (o->sub_url == NULL || o->ctl_url == NULL)) {
		evb_diag_set(
		    diag, "sub_url, ctl_url: required without read_fn");
		return EVB_EINVAL;
	}
	return EVB_OK;
}

/*
 * coll_lock takes the log's writer lock (evb_dir_lock), held until close.
 * Why: the collector is the log's only writer (docs/architecture.md),
 * and LMDB would let a second one in another process (a second `evbus
 * run`, or `evbus collector`, on the same --data) append beside it, each
 * in its own epoch, after the same last record. Taken before the log is
 * opened, so a refused collector reads and writes nothing.
 */
static int
coll_lock(evb_collector *c, const char *dir, evb_diag *diag)
{
	int rc = evb_dir_lock(dir, "log", &c->lock_fd, diag);

	if (rc == EVB_EBUSY) {
		evb_diag_set(diag,
		    "another collector writes the log in %s (evbus run or "
		    "evbus collector): stop it first, or give this one "
		    "another data directory",
		    dir);
	}
	return rc;
}

int
evb_collector_open(
    evb_collector **out, const evb_collector_opts *o, evb_diag *diag)
{
	evb_wal_opts   wo;
	evb_collector *c;
	int            rc;

	if ((rc = coll_opts_check(o, diag)) != EVB_OK) {
		return rc;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return EVB_ENOMEM;
	}
	c->lock_fd = -1;
	pthread_mutex_init(&c->mtx, NULL);
	atomic_init(&c->stopping, false);
	evb_buf_init(&c->arena);
	c->read_fn      = o->read_fn;
	c->read_arg     = o->read_arg;
	c->idle_ms      = o->idle_ms;
	c->on_durable   = o->on_durable;
	c->on_gap       = o->on_gap;
	c->on_duplicate = o->on_duplicate;
	c->durable_arg  = o->durable_arg;
	c->next         = 1;
	evb_wal_opts_default(&wo);
	wo.durability    = o->durability;
	wo.retain_age_ms = o->retain_age_ms;
	wo.retain_bytes  = o->retain_bytes;
	if (o->retain_age_ms > 0 || o->retain_bytes > 0) {
		wo.retain_period_ms = COLL_RETAIN_PERIOD_MS;
	}
	if ((rc = coll_alloc(c, o->batch_max)) != EVB_OK ||
	    (rc = coll_lock(c, o->data_dir, diag)) != EVB_OK ||
	    (rc = evb_wal_open(&c->wal, o->data_dir, &wo, diag)) != EVB_OK ||
	    (rc = coll_resume(c, diag)) != EVB_OK ||
	    // The duplicate window now, before any traffic, not inside the
	    // first batch's commit (0.1-0.2 s at the default window).
	    (rc = evb_wal_dedup_load(c->wal, diag)) != EVB_OK) {
		goto fail;
	}
	if (o->read_fn != NULL && o->read_epoch != c->epoch) {
		coll_epoch_switch(c, o->read_epoch);
	}
	if ((rc = coll_ops_open(c, o, diag)) != EVB_OK ||
	    (o->read_fn == NULL &&
	        (rc = coll_remote_open(c, o, diag)) != EVB_OK)) {
		goto fail;
	}
	*out = c;
	return EVB_OK;
fail:
	evb_collector_close(c);
	return rc;
}

int
evb_collector_start(evb_collector *c)
{
	int rv;

	if (c->is_started || c->is_stopped) {
		return EVB_EINVAL;
	}
	if ((rv = pthread_create(&c->thread, NULL, coll_main, c)) != 0) {
		c->is_stopped = true;
		return evb_err_errno(rv);
	}
	c->is_started = true;
	return EVB_OK;
}

void
evb_collector_stop(evb_collector *c)
{
	if (c == NULL || c->is_stopped) {
		return;
	}
	atomic_store(&c->stopping, true);
	if (c->is_started) {
		(void) pthread_join(c->thread, NULL);
	}
	c->is_stopped = true;
}

void
evb_collector_close(evb_collector *c)
{
	if (c == NULL) {
		return;
	}
	evb_collector_stop(c);
	// The log first: it is what matters if a socket's close hangs.
	evb_wal_close(c->wal);
	c->wal = NULL;
	evb_dir_unlock(c->lock_fd);
	c->lock_fd = -1;
	coll_remote_close(c);
	coll_ops_close(c);
	evb_buf_fini(&c->arena);
	free(c->pend);
	free(c->recs);
	free(c->res);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

/* ---- Gap records --------------------------------------------------------- */

bool
coll_map_u64(const msgpack_object *m, const char *k, uint64_t *v)
{
	const msgpack_object *o = evb_proto_map_get(m, k);

	if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		return false;
	}
	*v = o->via.u64;
	return true;
}

int
evb_collector_gap_decode(const void *payload, size_t len, uint64_t *epoch,
    uint64_t *first, uint64_t *last)
{
	msgpack_unpacked u;
	size_t           off = 0;
	uint64_t         e, f, l;
	int              rc = EVB_EMALFORMED;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, payload, len, &off) ==
	        MSGPACK_UNPACK_SUCCESS &&
	    off == len && u.data.type == MSGPACK_OBJECT_MAP &&
	    u.data.via.map.size == 1) {
		const msgpack_object *g = evb_proto_map_get(&u.data, "gap");

		if (g != NULL && coll_map_u64(g, "epoch", &e) &&
		    coll_map_u64(g, "first", &f) &&
		    coll_map_u64(g, "last", &l) && f <= l) {
			*epoch = e;
			*first = f;
			*last  = l;
			rc     = EVB_OK;
		}
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}
