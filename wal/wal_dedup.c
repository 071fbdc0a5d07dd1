/*
 * wal_dedup.c: duplicate suppression. The ids of the records in the
 * window live in memory, in a table that the appending handle builds from
 * the log itself; on disk an id is only a field of its record
 * (docs/wal-format.md, "Duplicate window").
 *
 * Why in memory: an on-disk index from id to offset cost 120-145 ns and
 * about 20% more written pages per id (docs/benchmarks.md), because ids
 * arrive in no useful order and every commit rewrote index pages all over
 * its tree. The record already has to be written; its id adds 2 bytes to
 * it when the payload holds it (the collector's case) or its own length,
 * and nothing else to the commit. The price is a scan of the window's
 * records when the table is built (about 0.14 s for 1,000,000 records from
 * a warm page cache) and the memory (wal.h, dedup_window_count).
 *
 * When it is built: by evb_wal_dedup_load, which a writer calls before
 * it takes traffic, or else by the first append with ids of a handle;
 * either way inside a write txn (the writer lock guards the table),
 * scanning the log backwards from its last record until the window
 * ends. Not at open: read-only handles (replay) and
 * read-write handles that only set cursors (a compactor) never append, so
 * they never pay for it. Only one process appends (wal.h); the table
 * follows that process's own appends.
 *
 * The table: a ring of entries {hash of the id, offset, append time} in
 * offset order, so that ids leave the window at its front, and an open
 * addressing index (linear probing, load <= 1/2) of slots holding 32 bits
 * of the hash and the entry's position. The id bytes are not kept: a
 * matching hash is confirmed by reading the record at the entry's offset
 * (its id, its CRC, and that retention has not removed it) in the append's
 * txn. Matches are rare (a producer's retry), so that read costs nothing
 * in the common case, and a hash collision can only cost a read, never a
 * wrong answer. The hash is seeded per handle (getrandom, at open), so
 * producers cannot aim collisions at it. The index and the ring are
 * sized for the whole count window when the table is built (16 and 24
 * bytes per id, faulted in at once, on huge pages when large:
 * evb_mem_table_new), so the index does not rehash while the window fills
 * and no append after the first pays for fresh memory.
 *
 * An id may have several entries (it was stored again after its record
 * left the window); a lookup takes the newest confirmed one. One probe
 * per id both looks it up and, for a new id, inserts it where the probe
 * ended: a stored id joins the table at once, as pending, so a copy later
 * in the same batch finds it (and is compared with the batch's record,
 * not the log). Pending entries become the window's when the txn commits
 * (wal_dedup_commit, run under wlock by wal_write); the next pass takes
 * back any that were not (a txn retried after map growth, or failed), so
 * the table always describes the committed log.
 *
 * Cost per id at the window's steady state: the probe and the eviction of
 * the id that leaves the window each touch one random cache line of the
 * index; both are prefetched a few ids ahead so the misses overlap, and
 * huge pages keep them from missing the TLB as well
 * (docs/benchmarks.md has the measurements).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wal/wal_int.h"

/* Positions are 32-bit in the index slots, and the home slot is taken
 * from the 31 low bits of a tag: the ring holds at most 2^30 entries (40
 * GiB of table), the index 2^31 slots. */
#define IDTAB_MAX_CAP ((size_t) 1 << 30)
/* Smallest ring; the index has twice as many slots. */
#define IDTAB_MIN_CAP 1024
/* An index at least this big gets huge pages (2 MiB, x86-64's). */
/* How far ahead of the record being decided its index slot is fetched. */
#define IDTAB_PREFETCH 16

/* One id in the window. */
typedef struct idtab_ent {
	uint64_t hash; /* The id's hash (idtab_hash). */
	uint64_t off;  /* Its record's offset. */
	int64_t  ns;   /* Its record's append time. */
} idtab_ent;

struct wal_idtab {
	idtab_ent *ring; /* cap entries; entry of position p at p & mask. */
	size_t     cap;  /* A power of 2. */
	uint64_t   head; /* Position of the oldest entry. */
	uint64_t   done; /* Position after the newest committed entry;
	                    done..tail are pending. */
	uint64_t  tail;  /* Position after the newest. */
	uint64_t *slots; /* nslots: hash >> 32 << 32 | (position + 1) mod
	                    2^32; 0 is empty. */
	size_t nslots;   /* A power of 2, >= 2 cap. */
	bool   had_dups; /* The last pass found a duplicate. */
};

/* ---- The table ------------------------------------------------------------
 */

/* idtab_mum multiplies to 128 bits and folds the halves together. */
static inline uint64_t
idtab_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t) a * b;

	return ((uint64_t) r ^ (uint64_t) (r >> 64));
}

static inline uint64_t
idtab_rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return (v);
}

static inline uint64_t
idtab_rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return (v);
}

/*
 * idtab_hash hashes an id with the handle's seed: one 64x64->128-bit
 * multiply per 16 bytes, the last 1 to 16 bytes read as two (possibly
 * overlapping) words, and a final multiply with the length, in the manner
 * of wyhash. A 26-byte ULID takes three multiplies. The seed is in both
 * operands of every multiply, so that no id bytes chosen without knowing
 * it can zero one (which would erase everything hashed before), and
 * which ids collide differs by handle. Its top bit
 * is always set, so neither the hash (0 marks a record without an id) nor
 * an index slot is ever 0. Words are read in host order: the hash is
 * never stored.
 */
static uint64_t
idtab_hash(uint64_t seed, const uint8_t *id, size_t len)
{
	const uint64_t k1 = 0xa0761d6478bd642full, k2 = 0xe7037ed1a0b428dbull;
	uint64_t       h = seed, a = 0, b = 0;
	size_t         r = len;

	for (; r > 16; r -= 16, id += 16) {
		h = idtab_mum(
		    idtab_rd64(id) ^ k1 ^ h, idtab_rd64(id + 8) ^ k2 ^ seed);
	}
	if (r >= 8) {
		a = idtab_rd64(id);
		b = idtab_rd64(id + r - 8);
	} else if (r >= 4) {
		a = idtab_rd32(id);
		b = idtab_rd32(id + r - 4);
	} else if (r > 0) {
		a = (uint64_t) id[0] << 16 | (uint64_t) id[r >> 1] << 8 |
		    id[r - 1];
	}
	h = idtab_mum(a ^ k1 ^ h, b ^ k2 ^ seed);
	return (idtab_mum(h ^ k1, len ^ k2 ^ seed) | 1ull << 63);
}

static inline idtab_ent *
idtab_at(const wal_idtab *t, uint64_t pos)
{
	return (&t->ring[pos & (t->cap - 1)]);
}

/*
 * idtab_tag is the part of a hash kept in a slot, its high 32 bits (never
 * 0). The home slot is taken from the same bits, so that a deletion can
 * find the home of every slot it shifts without reading its entry.
 */
static inline uint64_t
idtab_tag(uint64_t hash)
{
	return (hash >> 32);
}

/* idtab_home is the first slot probed for a hash (or a slot's tag). */
static inline size_t
idtab_home(const wal_idtab *t, uint64_t hash)
{
	return ((size_t) (hash >> 32) & (t->nslots - 1));
}

static inline uint64_t
idtab_slot_make(uint64_t hash, uint64_t pos)
{
	return (idtab_tag(hash) << 32 | (uint32_t) (pos + 1));
}

/* idtab_slot_pos is the position a slot holds; tail bounds it, as
 * positions in the table are within cap <= 2^31 below tail. */
static inline uint64_t
idtab_slot_pos(const wal_idtab *t, uint64_t slot)
{
	uint32_t low = (uint32_t) slot - 1;

	return (t->tail - (uint32_t) ((uint32_t) t->tail - low));
}

static void
idtab_index_put(wal_idtab *t, uint64_t hash, uint64_t pos)
{
	size_t mask = t->nslots - 1;
	size_t i    = idtab_home(t, hash);

	while (t->slots[i] != 0) {
		i = (i + 1) & mask;
	}
	t->slots[i] = idtab_slot_make(hash, pos);
}

/*
 * idtab_index_del removes the slot of position pos (its entry's hash is
 * hash), shifting later slots of the probe run back so that no lookup
 * stops early (linear probing's deletion without tombstones).
 */
static void
idtab_index_del(wal_idtab *t, uint64_t hash, uint64_t pos)
{
	size_t   mask = t->nslots - 1;
	size_t   i    = idtab_home(t, hash), j, home;
	uint64_t want = idtab_slot_make(hash, pos);

	while (t->slots[i] != want) {
		evb_assert(t->slots[i] != 0);
		i = (i + 1) & mask;
	}
	for (j = (i + 1) & mask; t->slots[j] != 0; j = (j + 1) & mask) {
		home = idtab_home(t, t->slots[j]);
		// Move j back to the hole i unless its home lies in (i, j].
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->slots[i] = t->slots[j];
			i           = j;
		}
	}
	t->slots[i] = 0;
}

/*
 * idtab_reserve makes room for more entries beyond the ones held: the
 * ring and the index double until they fit. Both new arrays are
 * allocated before either replaces the old one, so a failure leaves the
 * table as it was. ENOMEM (also past IDTAB_MAX_CAP) or 0.
 */
static int
idtab_reserve(wal_idtab *t, size_t more)
{
	size_t     need = (size_t) (t->tail - t->head) + more, cap = t->cap;
	idtab_ent *ring;
	uint64_t  *slots;

	if (need <= t->cap) {
		return (0);
	}
	if (need > IDTAB_MAX_CAP) {
		return (ENOMEM);
	}
	while (cap < need) {
		cap *= 2;
	}
	ring  = evb_mem_table_new(cap * sizeof(*ring));
	slots = evb_mem_table_new(2 * cap * sizeof(*slots));
	if (ring == NULL || slots == NULL) {
		evb_mem_table_free(ring, cap * sizeof(*ring));
		evb_mem_table_free(slots, 2 * cap * sizeof(*slots));
		return (ENOMEM);
	}
	// An entry's place is its position modulo the size, and a slot
	// holds the position, so moved entries keep their positions.
	for (uint64_t p = t->head; p != t->tail; p++) {
		ring[p & (cap - 1)] = *idtab_at(t, p);
	}
	evb_mem_table_free(t->ring, t->cap * sizeof(*t->ring));
	evb_mem_table_free(t->slots, t->nslots * sizeof(*t->slots));
	t->ring   = ring;
	t->cap    = cap;
	t->slots  = slots;
	t->nslots = 2 * cap;
	for (uint64_t p = t->head; p != t->tail; p++) {
		idtab_index_put(t, idtab_at(t, p)->hash, p);
	}
	return (0);
}

/* idtab_new makes an empty table for at least want entries. */
static wal_idtab *
idtab_new(size_t want)
{
	wal_idtab *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		return (NULL);
	}
	for (t->cap = IDTAB_MIN_CAP; t->cap < want; t->cap *= 2) {
	}
	t->nslots = 2 * t->cap;
	t->ring   = evb_mem_table_new(t->cap * sizeof(*t->ring));
	t->slots  = evb_mem_table_new(t->nslots * sizeof(*t->slots));
	if (t->ring == NULL || t->slots == NULL) {
		wal_dedup_free(t);
		return (NULL);
	}
	return (t);
}

void
wal_dedup_free(wal_idtab *t)
{
	if (t == NULL) {
		return;
	}
	evb_mem_table_free(t->ring, t->cap * sizeof(*t->ring));
	evb_mem_table_free(t->slots, t->nslots * sizeof(*t->slots));
	free(t);
}

/* idtab_push adds an entry at the tail, its index slot at the empty
 * slot i; room was reserved. */
static void
idtab_push(wal_idtab *t, size_t i, uint64_t hash, uint64_t off, int64_t ns)
{
	*idtab_at(t, t->tail) = (idtab_ent) { hash, off, ns };
	t->slots[i]           = idtab_slot_make(hash, t->tail);
	t->tail++;
}

/* idtab_pop removes the oldest entry. */
static void
idtab_pop(wal_idtab *t)
{
	idtab_index_del(t, idtab_at(t, t->head)->hash, t->head);
	t->head++;
}

/* idtab_rollback removes the pending entries, newest first. */
static void
idtab_rollback(wal_idtab *t)
{
	while (t->tail != t->done) {
		t->tail--;
		idtab_index_del(t, idtab_at(t, t->tail)->hash, t->tail);
	}
}

/* idtab_live is the number of committed entries. */
static int_least64_t
idtab_live(const wal_idtab *t)
{
	return ((int_least64_t) (t->done - t->head));
}

static void
idtab_prefetch_home(const wal_idtab *t, uint64_t hash)
{
	__builtin_prefetch(&t->slots[idtab_home(t, hash)]);
}

/* ---- The window -----------------------------------------------------------
 */

/*
 * dedup_in_window says whether the record at off, appended at ns, is in
 * the window of a batch whose first offset is next, appended at now: among
 * the last dedup_window_count records before next, and appended less than
 * dedup_window_age_ms before now.
 */
static bool
dedup_in_window(
    const evb_wal *w, uint64_t off, int64_t ns, uint64_t next, int64_t now)
{
	uint64_t count = w->opts.dedup_window_count;
	uint64_t age   = w->opts.dedup_window_age_ms;

	if (off >= next || (count != 0 && next - off > count)) {
		return (false);
	}
	return (age == 0 || !wal_older(ns, now, wal_ms_to_ns(age)));
}

/* dedup_evict drops the oldest entries while they are out of the window
 * of a batch at (next, now). Append times follow offsets unless the clock
 * steps back, so the scan stops at the first entry still in. */
static void
dedup_evict(evb_wal *w, uint64_t next, int64_t now)
{
	wal_idtab *t = w->ids;

	while (t->head != t->done) {
		idtab_ent *e = idtab_at(t, t->head);

		if (dedup_in_window(w, e->off, e->ns, next, now)) {
			break;
		}
		if (t->done - t->head > IDTAB_PREFETCH) {
			idtab_prefetch_home(
			    t, idtab_at(t, t->head + IDTAB_PREFETCH)->hash);
		}
		idtab_pop(t);
	}
	atomic_store(&w->id_count, idtab_live(t));
}

/*
 * dedup_scan walks the log backwards from its last record while the
 * records are in the window of a batch at (next, now), calling fn for
 * each record with an id, newest first. A record whose header cannot be
 * read is skipped (it cannot be an original). Returns an LMDB code, or
 * fn's.
 */
typedef int (*dedup_scan_fn)(
    void *arg, uint64_t off, int64_t ns, const uint8_t *id, size_t id_len);

static int
dedup_scan(evb_wal *w, MDB_txn *txn, uint64_t next, int64_t now,
    dedup_scan_fn fn, void *arg)
{
	MDB_cursor    *cur;
	MDB_val        k, v;
	MDB_cursor_op  op = MDB_LAST;
	const uint8_t *id;
	size_t         id_len;
	uint64_t       off;
	int64_t        ns;
	int            rc;

	if ((rc = mdb_cursor_open(txn, w->dbi_log, &cur)) != MDB_SUCCESS) {
		return (rc);
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == MDB_SUCCESS) {
		op = MDB_PREV;
		if (k.mv_size != WAL_KEY_SIZE) {
			rc = MDB_CORRUPTED;
			break;
		}
		off = evb_get_be64(k.mv_data);
		if (w->opts.dedup_window_count != 0 &&
		    next - off > w->opts.dedup_window_count) {
			break;
		}
		// A record whose header cannot be read is no original.
		if (wal_rec_peek(v.mv_data, v.mv_size, &ns, &id, &id_len) !=
		    EVB_OK) {
			continue;
		}
		if (!dedup_in_window(w, off, ns, next, now)) {
			break;
		}
		if (id_len > 0 &&
		    (rc = fn(arg, off, ns, id, id_len)) != MDB_SUCCESS) {
			break;
		}
	}
	mdb_cursor_close(cur);
	return (rc == MDB_NOTFOUND ? MDB_SUCCESS : rc);
}

/* The table being built, newest entry first, in a growing array. */
typedef struct dedup_builder {
	uint64_t   seed; /* The handle's. */
	wal_idtab *t;
	idtab_ent *ents;
	size_t     n, cap;
} dedup_builder;

static int
dedup_build_one(
    void *arg, uint64_t off, int64_t ns, const uint8_t *id, size_t id_len)
{
	dedup_builder *b = arg;
	idtab_ent     *ents;

	if (b->n == b->cap) {
		if (b->cap >= IDTAB_MAX_CAP) {
			return (ENOMEM);
		}
		ents = realloc(b->ents, 2 * b->cap * sizeof(*ents));
		if (ents == NULL) {
			return (ENOMEM);
		}
		b->ents = ents;
		b->cap *= 2;
	}
	b->ents[b->n++] =
	    (idtab_ent) { idtab_hash(b->seed, id, id_len), off, ns };
	return (MDB_SUCCESS);
}

/*
 * dedup_build makes w->ids from the records in the window of a batch at
 * (next, now): a scan of the log backwards, then the entries in offset
 * order. Returns an LMDB code (or ENOMEM); w->ids stays NULL on failure.
 */
static int
dedup_build(evb_wal *w, MDB_txn *txn, uint64_t next, int64_t now)
{
	uint64_t      count = w->opts.dedup_window_count;
	dedup_builder b     = { w->id_seed,
		    idtab_new(count < IDTAB_MAX_CAP ? count : IDTAB_MAX_CAP), NULL,
		    0, IDTAB_MIN_CAP };
	int           rc;

	if (b.t == NULL || (b.ents = malloc(b.cap * sizeof(*b.ents))) == NULL) {
		rc = ENOMEM;
		goto fail;
	}
	if ((rc = dedup_scan(w, txn, next, now, dedup_build_one, &b)) != 0 ||
	    (rc = idtab_reserve(b.t, b.n)) != 0) {
		goto fail;
	}
	for (size_t i = b.n; i-- > 0;) {
		*idtab_at(b.t, b.t->tail) = b.ents[i];
		idtab_index_put(b.t, b.ents[i].hash, b.t->tail++);
	}
	b.t->done = b.t->tail;
	free(b.ents);
	w->ids = b.t;
	atomic_store(&w->id_count, idtab_live(b.t));
	return (MDB_SUCCESS);

fail:
	free(b.ents);
	wal_dedup_free(b.t);
	return (rc);
}

static int
dedup_count_one(
    void *arg, uint64_t off, int64_t ns, const uint8_t *id, size_t id_len)
{
	(void) off;
	(void) ns;
	(void) id;
	(void) id_len;
	(*(uint64_t *) arg)++;
	return (MDB_SUCCESS);
}

int
wal_dedup_count(evb_wal *w, MDB_txn *txn, uint64_t *count)
{
	int_least64_t built = atomic_load(&w->id_count);
	uint64_t      last;
	int           rc;

	*count = 0;
	if (built >= 0) {
		*count = (uint64_t) built;
		return (MDB_SUCCESS);
	}
	if (!wal_dedup_on(w)) {
		return (MDB_SUCCESS);
	}
	if ((rc = wal_log_bound(w, txn, MDB_LAST, &last)) != MDB_SUCCESS) {
		return (rc);
	}
	return (dedup_scan(
	    w, txn, last + 1, wal_now_ns(w), dedup_count_one, count));
}

/* ---- A batch --------------------------------------------------------------
 */

/* The state of one batch's pass over its ids. */
typedef struct dedup_pass {
	evb_wal           *w;
	MDB_txn           *txn;
	const evb_wal_rec *recs;
	wal_dedup         *d;
	uint64_t           next; /* The batch's first offset. */
	int64_t            now;  /* The batch's append time. */
} dedup_pass;

/*
 * dedup_confirm says whether the committed record at off holds the id of
 * r (bytes equal) and is intact. A record that retention removed, or that
 * fails its check, is no original: the new one is stored rather than
 * lost.
 */
static int
dedup_confirm(dedup_pass *p, uint64_t off, const evb_wal_rec *r, bool *same)
{
	uint8_t       kb[WAL_KEY_SIZE];
	MDB_val       k = { sizeof(kb), kb }, v;
	evb_wal_entry e;
	int           rc;

	*same = false;
	evb_put_be64(kb, off);
	rc = mdb_get(p->txn, p->w->dbi_log, &k, &v);
	if (rc == MDB_NOTFOUND) {
		return (MDB_SUCCESS);
	}
	if (rc != MDB_SUCCESS) {
		return (rc);
	}
	if (evb_wal_record_decode(off, v.mv_data, v.mv_size, &e, NULL) ==
	    EVB_OK) {
		*same = e.id_len == r->id_len &&
		    memcmp(e.id, r->id, r->id_len) == 0;
	}
	return (MDB_SUCCESS);
}

/* dedup_same_pending says whether the pending entry at off (a record
 * stored earlier in this batch) has the id of r. */
static bool
dedup_same_pending(const dedup_pass *p, uint64_t off, const evb_wal_rec *r)
{
	const evb_wal_rec *o = &p->recs[p->d->stored[off - p->next]];

	return (o->id_len == r->id_len && memcmp(o->id, r->id, r->id_len) == 0);
}

/*
 * dedup_probe looks up the id of r (hash h): *orig is the offset of the
 * record that holds it in the window (a copy earlier in the batch, or the
 * newest confirmed committed record), else 0; then *empty is the index
 * slot where the probe ended, for the insert.
 */
static int
dedup_probe(dedup_pass *p, const evb_wal_rec *r, uint64_t h, uint64_t *orig,
    size_t *empty)
{
	wal_idtab *t    = p->w->ids;
	size_t     mask = t->nslots - 1, i;
	bool       same;
	int        rc;

	*orig = 0;
	for (i = idtab_home(t, h); t->slots[i] != 0; i = (i + 1) & mask) {
		idtab_ent *e;

		if (t->slots[i] >> 32 != idtab_tag(h)) {
			continue;
		}
		e = idtab_at(t, idtab_slot_pos(t, t->slots[i]));
		if (e->hash != h) {
			continue;
		}
		if (e->off >= p->next) {
			if (dedup_same_pending(p, e->off, r)) {
				*orig = e->off;
				return (MDB_SUCCESS);
			}
			continue;
		}
		if (e->off <= *orig ||
		    !dedup_in_window(p->w, e->off, e->ns, p->next, p->now)) {
			continue;
		}
		if ((rc = dedup_confirm(p, e->off, r, &same)) != MDB_SUCCESS) {
			return (rc);
		}
		*orig = same ? e->off : *orig;
	}
	*empty = i;
	return (MDB_SUCCESS);
}

int
wal_dedup_assign(evb_wal *w, MDB_txn *txn, const evb_wal_rec *recs,
    wal_dedup *d, size_t n, uint64_t next, int64_t now_ns, evb_wal_result *res)
{
	dedup_pass p     = { w, txn, recs, d, next, now_ns };
	uint64_t   off   = next, orig;
	size_t     empty = 0;
	int        rc;

	if (w->ids == NULL &&
	    (rc = dedup_build(w, txn, next, now_ns)) != MDB_SUCCESS) {
		return (rc);
	}
	for (size_t i = 0; !d->hashed && i < n; i++) {
		wal_dedup_hash(w, d, i, recs[i].id, recs[i].id_len);
	}
	d->hashed        = true;
	w->ids->had_dups = false;
	idtab_rollback(w->ids);
	dedup_evict(w, next, now_ns);
	if ((rc = idtab_reserve(w->ids, d->nids)) != 0) {
		return (rc);
	}
	for (size_t i = 0; i < n; i++) {
		if (i + IDTAB_PREFETCH < n && d->hash[i + IDTAB_PREFETCH]) {
			idtab_prefetch_home(
			    w->ids, d->hash[i + IDTAB_PREFETCH]);
		}
		if (d->hash[i] != 0) {
			rc = dedup_probe(
			    &p, &recs[i], d->hash[i], &orig, &empty);
			if (rc != MDB_SUCCESS) {
				return (rc);
			}
			if (orig != 0) {
				res[i] = (evb_wal_result) { orig, EVB_EEXIST };
				w->ids->had_dups = true;
				continue;
			}
			idtab_push(w->ids, empty, d->hash[i], off, now_ns);
		}
		d->stored[off - next] = (uint32_t) i;
		res[i]                = (evb_wal_result) { off++, EVB_OK };
	}
	return (MDB_SUCCESS);
}

/* dedup_load_step builds the table in a write txn that writes nothing
 * (so its commit writes nothing either): the writer lock that wal_write
 * holds is what guards w->ids. */
static int
dedup_load_step(evb_wal *w, MDB_txn *txn, void *arg)
{
	uint64_t last;
	int      rc;

	(void) arg;
	if (w->ids != NULL) {
		return (MDB_SUCCESS);
	}
	if ((rc = wal_log_bound(w, txn, MDB_LAST, &last)) != MDB_SUCCESS) {
		return (rc);
	}
	return (dedup_build(w, txn, last + 1, wal_now_ns(w)));
}

int
evb_wal_dedup_load(evb_wal *w, evb_diag *diag)
{
	if (w == NULL || w->opts.read_only) {
		evb_diag_set(diag, "dedup load: expected a writable handle");
		return (EVB_EINVAL);
	}
	if (!wal_dedup_on(w)) {
		return (EVB_OK);
	}
	return (wal_write(w, dedup_load_step, NULL, NULL, diag, "dedup load"));
}

void
wal_dedup_commit(evb_wal *w, uint64_t last, int64_t now_ns)
{
	w->ids->done = w->ids->tail;
	if (last != 0) {
		dedup_evict(w, last + 1, now_ns);
	}
	atomic_store(&w->id_count, idtab_live(w->ids));
}

void
wal_dedup_retained(evb_wal *w, uint64_t first)
{
	wal_idtab *t = w->ids;

	if (t == NULL) {
		return;
	}
	while (t->head != t->done && idtab_at(t, t->head)->off < first) {
		idtab_pop(t);
	}
	atomic_store(&w->id_count, idtab_live(t));
}

int
wal_dedup_prepare(evb_wal *w, const evb_wal_rec *recs, size_t n, wal_dedup *d)
{
	size_t m = 0;

	memset(d, 0, sizeof(*d));
	if (!wal_dedup_on(w)) {
		return (EVB_OK);
	}
	for (size_t i = 0; i < n; i++) {
		m += recs[i].id_len > 0;
	}
	if (m == 0) {
		return (EVB_OK);
	}
	d->nids = m;
	if ((d->hash = malloc(n * sizeof(*d->hash))) == NULL ||
	    (d->stored = malloc(n * sizeof(*d->stored))) == NULL) {
		wal_dedup_fini(d);
		return (EVB_ENOMEM);
	}
	return (EVB_OK);
}

void
wal_dedup_hash(
    const evb_wal *w, wal_dedup *d, size_t i, const uint8_t *id, size_t len)
{
	d->hash[i] = len == 0 ? 0 : idtab_hash(w->id_seed, id, len);
}

bool
wal_dedup_write_first(const evb_wal *w, const wal_dedup *d)
{
	return (
	    d->nids > 0 && !d->hashed && w->ids != NULL && !w->ids->had_dups);
}

void
wal_dedup_fini(wal_dedup *d)
{
	free(d->hash);
	free(d->stored);
	memset(d, 0, sizeof(*d));
}
