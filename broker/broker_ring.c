/*
 * broker_ring.c: the repair ring, the bounded memory of recently
 * published frames, and evb_broker_read, its one reader.
 *
 * Every published frame is appended here (broker_publish, under the
 * broker's mtx), so the ring always holds a contiguous run of seqs, the
 * newest last_seq. It is bounded by bytes, not frames: frames are copied
 * back to back into one buffer allocated at open, and when the next one
 * does not fit, the oldest are evicted until it does. Memory therefore
 * stays at ring_bytes plus a small index, whatever the event sizes. The
 * buffer is faulted in at open (evb_mem_table_new), so publishing never
 * waits on a first touch of the ring's memory.
 *
 *   bytes: |..... free .....| oldest ... newest |.. free ..|   (tail > head)
 *   bytes: | ... newest |....... free ......| oldest ... |     (tail <= head)
 *                       tail                head
 *
 * The index is a circular array of (offset, length) slots, one per held
 * frame: the frame of seq s is slot (slot_head + s - first_seq), an O(1)
 * lookup. It doubles when full, so its size follows the number of frames
 * held (ring_bytes over the mean frame size).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_int.h"

#define RING_FIRST_SLOTS 1024 /* Index entries allocated at open. */

int
ring_init(broker_ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	if ((r->bytes = evb_mem_table_new(cap)) == NULL) {
		return EVB_ENOMEM;
	}
	if ((r->slots = calloc(RING_FIRST_SLOTS, sizeof(*r->slots))) == NULL) {
		evb_mem_table_free(r->bytes, cap);
		r->bytes = NULL;
		return EVB_ENOMEM;
	}
	r->cap      = cap;
	r->slot_cap = RING_FIRST_SLOTS;
	return EVB_OK;
}

void
ring_fini(broker_ring *r)
{
	evb_mem_table_free(r->bytes, r->cap);
	free(r->slots);
	memset(r, 0, sizeof(*r));
}

static broker_slot *
ring_slot(const broker_ring *r, uint64_t seq)
{
	return &r->slots[(r->slot_head + (size_t) (seq - r->first_seq)) &
	    (r->slot_cap - 1)];
}

/* ring_evict_oldest drops the oldest frame; the ring must not be empty. */
static void
ring_evict_oldest(broker_ring *r)
{
	broker_slot *s = &r->slots[r->slot_head];

	r->used -= s->len;
	r->slot_head = (r->slot_head + 1) & (r->slot_cap - 1);
	r->count--;
	r->first_seq++;
	r->evicted++;
	if (r->count == 0) {
		r->head = r->tail = 0;
	} else {
		r->head = r->slots[r->slot_head].off;
	}
}

/*
 * ring_grow_slots doubles the index, unrolling it so the oldest slot is
 * at 0. EVB_ENOMEM leaves the index as it was.
 */
static int
ring_grow_slots(broker_ring *r)
{
	size_t       cap = r->slot_cap * 2;
	broker_slot *s   = malloc(cap * sizeof(*s));
	size_t       first;

	if (s == NULL) {
		return EVB_ENOMEM;
	}
	first = r->slot_cap - r->slot_head;
	if (first > r->count) {
		first = r->count;
	}
	memcpy(s, r->slots + r->slot_head, first * sizeof(*s));
	memcpy(s + first, r->slots, (r->count - first) * sizeof(*s));
	free(r->slots);
	r->slots     = s;
	r->slot_cap  = cap;
	r->slot_head = 0;
	return EVB_OK;
}

/* ring_place finds where len bytes go, evicting until they fit. */
static size_t
ring_place(broker_ring *r, size_t len)
{
	for (;;) {
		if (r->count == 0) {
			r->head = r->tail = 0;
			return 0;
		}
		if (r->tail > r->head) {
			// Not wrapped: free space after tail, then before head.
			if (r->cap - r->tail >= len) {
				return r->tail;
			}
			if (r->head >= len) {
				return 0;
			}
		} else if (r->head - r->tail >= len) {
			return r->tail;
		}
		ring_evict_oldest(r);
	}
}

void
ring_append(broker_ring *r, uint64_t seq, const void *frame, size_t len)
{
	broker_slot *s;
	size_t       off;

	evb_assert(len > 0 && len <= r->cap);
	evb_assert(r->count == 0 || seq == r->first_seq + r->count);
	if (r->count == r->slot_cap && ring_grow_slots(r) != EVB_OK) {
		// Out of memory for a bigger index: drop the oldest frames
		// instead. Repairs of them will answer "evicted", which is
		// visible; a hole in the middle of the ring would not be.
		while (r->count > r->slot_cap / 2) {
			ring_evict_oldest(r);
		}
	}
	off = ring_place(r, len);
	if (r->count == 0) {
		r->first_seq = seq;
		r->slot_head = 0;
	}
	r->count++;
	s      = ring_slot(r, seq);
	s->off = off;
	s->len = len;
	memcpy(r->bytes + off, frame, len);
	r->tail = off + len;
	r->used += len;
	r->head = r->slots[r->slot_head].off;
}

/*
 * ring_copy appends to out the frames from seq from on (from is held),
 * each as a 4-byte big-endian length and the frame, stopping after
 * max_frames frames or before max_bytes would be passed (but never
 * before the first frame). EVB_ENOMEM leaves out as it was.
 */
static int
ring_copy(const broker_ring *r, uint64_t from, size_t max_frames,
    size_t max_bytes, evb_buf *out, size_t *n)
{
	uint64_t end   = r->first_seq + r->count;
	size_t   mark  = out->len;
	size_t   k     = 0;
	size_t   bytes = 0;

	for (uint64_t seq = from; seq < end && k < max_frames; seq++) {
		const broker_slot *s = ring_slot(r, seq);
		uint8_t            len[4];

		if (k > 0 && bytes + 4 + s->len > max_bytes) {
			break;
		}
		evb_put_be32(len, (uint32_t) s->len);
		if (evb_buf_append(out, len, sizeof(len)) != EVB_OK ||
		    evb_buf_append(out, r->bytes + s->off, s->len) != EVB_OK) {
			out->len = mark;
			return EVB_ENOMEM;
		}
		bytes += 4 + s->len;
		k++;
	}
	*n = k;
	return EVB_OK;
}

/* read_deadline returns now + timeout_ms on CLOCK_MONOTONIC. */
static struct timespec
read_deadline(uint64_t timeout_ms)
{
	struct timespec ts;
	uint64_t        ns;

	evb_assert(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
	ns = (uint64_t) ts.tv_nsec + (timeout_ms % 1000) * 1000000u;
	ts.tv_sec += (time_t) (timeout_ms / 1000 + ns / 1000000000u);
	ts.tv_nsec = (long) (ns % 1000000000u);
	return ts;
}

int
evb_broker_read(evb_broker *b, uint64_t from, size_t max_frames,
    size_t max_bytes, uint64_t timeout_ms, evb_buf *out, size_t *n,
    uint64_t *first)
{
	struct timespec deadline;
	bool            has_deadline = false;
	int             rc;

	evb_assert(b != NULL && out != NULL && n != NULL && first != NULL);
	evb_assert(max_frames > 0);
	evb_assert(pthread_mutex_lock(&b->mtx) == 0);
	for (;;) {
		const broker_ring *r = &b->ring;

		if (r->count > 0 ? from < r->first_seq : from <= b->last_seq) {
			*n     = r->count;
			*first = r->count > 0 ? r->first_seq : b->last_seq + 1;
			rc     = EVB_ENOTFOUND;
			break;
		}
		if (from <= b->last_seq) {
			if ((rc = ring_copy(r, from, max_frames, max_bytes, out,
			         n)) == EVB_OK) {
				*first = from;
			}
			break;
		}
		if (b->is_closed) {
			rc = EVB_ECLOSED;
			break;
		}
		if (timeout_ms == 0) {
			rc = EVB_ETIMEDOUT;
			break;
		}
		if (!has_deadline) {
			deadline     = read_deadline(timeout_ms);
			has_deadline = true;
		}
		b->waiters++;
		rc = pthread_cond_timedwait(&b->ring_cv, &b->mtx, &deadline);
		b->waiters--;
		evb_assert(rc == 0 || rc == ETIMEDOUT);
		if (rc == ETIMEDOUT && from > b->last_seq && !b->is_closed) {
			rc = EVB_ETIMEDOUT;
			break;
		}
	}
	evb_assert(pthread_mutex_unlock(&b->mtx) == 0);
	return rc;
}
