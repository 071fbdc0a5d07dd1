/*
 * wal_dedup.c: duplicate suppression, an index from event id to offset in
 * two generations, the named DBs "ids.0" and "ids.1" (docs/wal-format.md).
 *
 * Why generations: expiring ids one by one needs each old record's id
 * (stored a second time, in the record or a by-offset DB, about 40 bytes
 * per event) and a delete at a random place in the index per event. A
 * generation instead holds the ids of a run of offsets; new ids go into
 * the current one, and when it spans the window (dedup_window_count
 * offsets or dedup_window_age_ms) the older generation is emptied with
 * mdb_drop, which frees its pages without reading its leaves, and the two
 * swap roles. Every id stored within the window is in one of the two, so
 * a lookup is at most two searches; an entry found there is then checked
 * exactly against the window (the original's offset and append time), so
 * the coarse expiry never changes the answer.
 *
 * Invariant (why the drop is safe): the switch happens when the current
 * generation, starting at offset S and time T, has next - S >= count or
 * now - T >= age. The generation dropped then holds only offsets below S,
 * all outside the window by the limit that triggered the switch.
 *
 * A batch's ids are handled in sorted order (LMDB's key order, equal ids
 * in batch order), with one search each in the current generation: LMDB
 * checks the cursor's page before descending, so sorted keys mostly stay
 * on one page, and sorted inserts split pages near their end, which keeps
 * the index's pages fuller (about 440 instead of 450 bytes per event in
 * bench/wal_bench). The put with MDB_NOOVERWRITE inserts the id with the
 * offset its record would get if the batch had no duplicate (next + its
 * index), or finds the entry already there:
 *   - a value in this batch's range: a copy within the batch;
 *   - an older value: checked against the window;
 *   - a new id: looked up in the older generation.
 * A duplicate takes no offset, and its entry points at the original
 * (MDB_CURRENT rewrites the 8-byte value in place), so a later copy finds
 * it in the current generation. Then offsets are given in batch order;
 * only in a batch with duplicates do they differ from the guesses, and
 * only then is a second sorted pass needed to correct the entries. An
 * entry's value is always its id's latest stored record, so when that
 * one is outside the window, any older one is too.
 */
#include <stdlib.h>
#include <string.h>

#include "wal/wal_int.h"

/* A result status used inside a pass: a copy of an earlier record of the
 * batch, whose guessed offset is in off. Never returned. */
#define DEDUP_COPY (-1)

/* Fewer ids than this are merge sorted: a radix pass clears and sums 256
 * counters, more than the compares it saves on a short run. */
#define DEDUP_RADIX_MIN 256

/* The generation state, meta "dedup" (WAL_META_DEDUP_SIZE bytes). */
typedef struct dedup_gen {
	unsigned cur;      /* Index of the current generation, 0 or 1. */
	uint64_t start;    /* Its first offset. */
	int64_t  start_ns; /* Its start time. */
} dedup_gen;

/* The state of one batch's pass over its ids. */
typedef struct dedup_pass {
	evb_wal    *w;
	MDB_txn    *txn;
	MDB_cursor *gens[2]; /* Current generation, older one (or NULL). */
	uint64_t    next;    /* The batch's first offset. */
	size_t      n;       /* Records in the batch. */
	int64_t     now;     /* The batch's append time. */
} dedup_pass;

static const MDB_val dedup_meta_key = { sizeof(WAL_META_DEDUP_KEY) - 1,
	(void *) WAL_META_DEDUP_KEY };

/* dedup_gen_read reads the state; *found is false before the first use. */
static int
dedup_gen_read(evb_wal *w, MDB_txn *txn, dedup_gen *g, bool *found)
{
	MDB_val  k = dedup_meta_key, v;
	uint8_t *p;
	int      rc;

	*found = false;
	rc     = mdb_get(txn, w->dbi_meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		return (MDB_SUCCESS);
	}
	if (rc != MDB_SUCCESS) {
		return (rc);
	}
	p = v.mv_data;
	if (v.mv_size != WAL_META_DEDUP_SIZE || p[0] > 1) {
		return (MDB_CORRUPTED);
	}
	g->cur      = p[0];
	g->start    = evb_get_be64(p + 1);
	g->start_ns = (int64_t) evb_get_be64(p + 9);
	*found      = true;
	return (MDB_SUCCESS);
}

static int
dedup_gen_write(evb_wal *w, MDB_txn *txn, const dedup_gen *g)
{
	uint8_t buf[WAL_META_DEDUP_SIZE];
	MDB_val k = dedup_meta_key, v = { sizeof(buf), buf };

	buf[0] = (uint8_t) g->cur;
	evb_put_be64(buf + 1, g->start);
	evb_put_be64(buf + 9, (uint64_t) g->start_ns);
	return (mdb_put(txn, w->dbi_meta, &k, &v, 0));
}

/*
 * dedup_gen_update loads the state, starting the first generation on
 * first use and a new one when the current one spans the window.
 */
static int
dedup_gen_update(
    evb_wal *w, MDB_txn *txn, uint64_t next, int64_t now, dedup_gen *g)
{
	uint64_t count = w->opts.dedup_window_count;
	uint64_t age   = w->opts.dedup_window_age_ms;
	bool     found;
	int      rc;

	if ((rc = dedup_gen_read(w, txn, g, &found)) != MDB_SUCCESS) {
		return (rc);
	}
	if (!found) {
		g->cur = 0;
	} else if ((count != 0 && next - g->start >= count) ||
	    (age != 0 && wal_older(g->start_ns, now, wal_ms_to_ns(age)))) {
		rc = mdb_drop(txn, w->dbi_ids[g->cur ^ 1u], 0);
		if (rc != MDB_SUCCESS) {
			return (rc);
		}
		g->cur ^= 1u;
	} else {
		return (MDB_SUCCESS);
	}
	g->start    = next;
	g->start_ns = now;
	return (dedup_gen_write(w, txn, g));
}

/*
 * dedup_in_window decides whether the record at off, found under an id,
 * still counts: it is among the last dedup_window_count records before
 * next, it was appended less than dedup_window_age_ms before now, and it
 * is still in the log. A record whose header cannot be read does not
 * count, so its id's new record is stored rather than lost.
 */
static int
dedup_in_window(dedup_pass *p, uint64_t off, bool *in)
{
	uint64_t count = p->w->opts.dedup_window_count;
	uint64_t age   = p->w->opts.dedup_window_age_ms;
	uint8_t  kb[WAL_KEY_SIZE];
	MDB_val  k = { sizeof(kb), kb }, v;
	int64_t  then;
	int      rc;

	*in = false;
	if (off >= p->next || (count != 0 && p->next - off > count)) {
		return (MDB_SUCCESS);
	}
	evb_put_be64(kb, off);
	if ((rc = mdb_get(p->txn, p->w->dbi_log, &k, &v)) == MDB_NOTFOUND) {
		return (MDB_SUCCESS); // Removed by retention.
	}
	if (rc != MDB_SUCCESS) {
		return (rc);
	}
	if (wal_rec_append_ns(v.mv_data, v.mv_size, &then) != EVB_OK) {
		return (MDB_SUCCESS);
	}
	*in = age == 0 || !wal_older(then, p->now, wal_ms_to_ns(age));
	return (MDB_SUCCESS);
}

/* dedup_value decodes an entry's offset; MDB_CORRUPTED if malformed. */
static int
dedup_value(const MDB_val *v, uint64_t *off)
{
	if (v->mv_size != WAL_KEY_SIZE) {
		return (MDB_CORRUPTED);
	}
	*off = evb_get_be64(v->mv_data);
	return (MDB_SUCCESS);
}

/* dedup_in_older looks key up in the older generation: *orig is the
 * offset when it is there and in the window, else 0. */
static int
dedup_in_older(dedup_pass *p, const MDB_val *key, uint64_t *orig)
{
	MDB_val k = *key, v;
	bool    in;
	int     rc;

	*orig = 0;
	if (p->gens[1] == NULL) {
		return (MDB_SUCCESS);
	}
	rc = mdb_cursor_get(p->gens[1], &k, &v, MDB_SET);
	if (rc == MDB_NOTFOUND) {
		return (MDB_SUCCESS);
	}
	if (rc != MDB_SUCCESS || (rc = dedup_value(&v, orig)) != 0 ||
	    (rc = dedup_in_window(p, *orig, &in)) != 0) {
		return (rc);
	}
	*orig = in ? *orig : 0;
	return (MDB_SUCCESS);
}

/* dedup_repoint rewrites the value of the entry under the current
 * generation's cursor (just put or found) to off. */
static int
dedup_repoint(dedup_pass *p, const MDB_val *key, uint64_t off)
{
	uint8_t vb[WAL_KEY_SIZE];
	MDB_val k = *key, v = { sizeof(vb), vb };

	evb_put_be64(vb, off);
	return (mdb_cursor_put(p->gens[0], &k, &v, MDB_CURRENT));
}

/*
 * dedup_one handles the record at idx with key k: res gets {its guessed
 * offset, EVB_OK}, {original, EVB_EEXIST}, or {the guessed offset of an
 * earlier copy in the batch, DEDUP_COPY}.
 */
static int
dedup_one(dedup_pass *p, const MDB_val *key, size_t idx, evb_wal_result *res)
{
	uint64_t guess = p->next + idx, orig;
	uint8_t  vb[WAL_KEY_SIZE];
	MDB_val  k = *key, v = { sizeof(vb), vb };
	bool     in;
	int      rc;

	evb_put_be64(vb, guess);
	rc = mdb_cursor_put(p->gens[0], &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_SUCCESS) {
		// New to the current generation; the older one may have it.
		if ((rc = dedup_in_older(p, key, &orig)) != MDB_SUCCESS) {
			return (rc);
		}
		if (orig != 0) {
			*res = (evb_wal_result) { orig, EVB_EEXIST };
			return (dedup_repoint(p, key, orig));
		}
		*res = (evb_wal_result) { guess, EVB_OK };
		return (MDB_SUCCESS);
	}
	if (rc != MDB_KEYEXIST || (rc = dedup_value(&v, &orig)) != 0) {
		return (rc);
	}
	if (orig >= p->next && orig - p->next < p->n) {
		*res = (evb_wal_result) { orig, DEDUP_COPY };
		return (MDB_SUCCESS);
	}
	if ((rc = dedup_in_window(p, orig, &in)) != MDB_SUCCESS) {
		return (rc);
	}
	if (in) {
		*res = (evb_wal_result) { orig, EVB_EEXIST };
		return (MDB_SUCCESS);
	}
	// Its record left the window: this one is stored, and the entry
	// points at it from now on.
	*res = (evb_wal_result) { guess, EVB_OK };
	return (dedup_repoint(p, key, guess));
}

/*
 * dedup_number gives the stored records their offsets in batch order and
 * resolves copies to their first record's; returns whether any stored
 * record's offset differs from its guess.
 */
static bool
dedup_number(dedup_pass *p, evb_wal_result *res)
{
	uint64_t off   = p->next;
	bool     moved = false;

	for (size_t i = 0; i < p->n; i++) {
		if (res[i].status == EVB_OK) {
			moved      = moved || res[i].off != off;
			res[i].off = off++;
		} else if (res[i].status == DEDUP_COPY) {
			// The first copy has a lower index: already numbered.
			res[i] =
			    (evb_wal_result) { res[res[i].off - p->next].off,
				    EVB_EEXIST };
		}
	}
	return (moved);
}

/* dedup_correct points the entries of stored records whose offset moved
 * at the offset they got (sorted order, so the searches stay local). */
static int
dedup_correct(dedup_pass *p, const wal_dedup *d, const evb_wal_result *res)
{
	int rc = MDB_SUCCESS;

	for (size_t k = 0; k < d->nents && rc == MDB_SUCCESS; k++) {
		const wal_dedup_ent *e   = &d->ents[k];
		MDB_val              key = { e->len, (void *) e->id }, v;

		if (res[e->idx].status != EVB_OK ||
		    res[e->idx].off == p->next + e->idx) {
			continue;
		}
		if ((rc = mdb_cursor_get(p->gens[0], &key, &v, MDB_SET)) == 0) {
			rc = dedup_repoint(p, &key, res[e->idx].off);
		}
	}
	return (rc);
}

/* dedup_open_gens opens cursors on the current generation and, when it
 * holds anything, the older one (else gens[1] stays NULL). */
static int
dedup_open_gens(evb_wal *w, MDB_txn *txn, unsigned cur, MDB_cursor *gens[2])
{
	MDB_stat st;
	int      rc;

	if ((rc = mdb_cursor_open(txn, w->dbi_ids[cur], &gens[0])) != 0) {
		gens[0] = NULL;
		return (rc);
	}
	if ((rc = mdb_stat(txn, w->dbi_ids[cur ^ 1u], &st)) != 0) {
		return (rc);
	}
	if (st.ms_entries > 0 &&
	    (rc = mdb_cursor_open(txn, w->dbi_ids[cur ^ 1u], &gens[1])) != 0) {
		gens[1] = NULL;
	}
	return (rc);
}

int
wal_dedup_assign(evb_wal *w, MDB_txn *txn, const wal_dedup *d, size_t n,
    uint64_t next, int64_t now_ns, evb_wal_result *res)
{
	dedup_pass p = { w, txn, { NULL, NULL }, next, n, now_ns };
	dedup_gen  g;
	int        rc;

	for (size_t i = 0; i < n; i++) {
		res[i] = (evb_wal_result) { next + i, EVB_OK };
	}
	if ((rc = dedup_gen_update(w, txn, next, now_ns, &g)) != 0 ||
	    (rc = dedup_open_gens(w, txn, g.cur, p.gens)) != 0) {
		goto cursors_close;
	}
	for (size_t k = 0; k < d->nents && rc == MDB_SUCCESS; k++) {
		const wal_dedup_ent *e   = &d->ents[k];
		MDB_val              key = { e->len, (void *) e->id };

		rc = dedup_one(&p, &key, e->idx, &res[e->idx]);
	}
	if (rc == MDB_SUCCESS && dedup_number(&p, res)) {
		rc = dedup_correct(&p, d, res);
	}
cursors_close:
	for (int i = 0; i < 2; i++) {
		if (p.gens[i] != NULL) {
			mdb_cursor_close(p.gens[i]);
		}
	}
	return (rc);
}

/* dedup_cmp orders ids as LMDB orders keys (bytes, then the shorter
 * first); every id has the first skip bytes in common. */
static int
dedup_cmp(const wal_dedup_ent *a, const wal_dedup_ent *b, size_t skip)
{
	size_t n = a->len < b->len ? a->len : b->len;
	size_t i = skip;
	int    c;

	// Eight bytes at a time as big-endian words: one compare usually
	// settles ids that share a time prefix, such as ULIDs.
	for (; i + 8 <= n; i += 8) {
		uint64_t x = evb_get_be64(a->id + i),
		         y = evb_get_be64(b->id + i);

		if (x != y) {
			return (x < y ? -1 : 1);
		}
	}
	if ((c = memcmp(a->id + i, b->id + i, n - i)) != 0) {
		return (c);
	}
	return ((a->len > b->len) - (a->len < b->len));
}

/* dedup_merge is a bottom-up merge sort by the full ids: stable, so
 * equal ids keep batch order; tmp holds n entries. */
static void
dedup_merge(wal_dedup_ent *a, wal_dedup_ent *tmp, size_t n, size_t skip)
{
	wal_dedup_ent *src = a, *dst = tmp, *t;

	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n;
			size_t hi  = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi) {
				dst[k++] = dedup_cmp(&src[j], &src[i], skip) < 0
				    ? src[j++]
				    : src[i++];
			}
			while (i < mid) {
				dst[k++] = src[i++];
			}
			while (j < hi) {
				dst[k++] = src[j++];
			}
		}
		t   = src;
		src = dst;
		dst = t;
	}
	if (src != a) {
		memcpy(a, src, n * sizeof(*a));
	}
}

/*
 * dedup_radix sorts a[0..n-1] by key, stably, with tmp (n entries) as
 * scratch: a least-significant-byte-first radix sort, one pass per key
 * byte, skipping the bytes every key shares. Unlike the merge sort it
 * has no data-dependent branches to mispredict: for batches of 1024 and
 * 8192 ULIDs, wal_dedup_prepare went from 55-60 to 46 ns per id
 * (docs/benchmarks.md).
 */
static void
dedup_radix(wal_dedup_ent *a, wal_dedup_ent *tmp, size_t n)
{
	wal_dedup_ent *src = a, *dst = tmp, *t;
	size_t         count[256];

	for (unsigned shift = 0; shift < 64; shift += 8) {
		size_t pos = 0;

		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++) {
			count[(src[i].key >> shift) & 0xff]++;
		}
		if (count[(src[0].key >> shift) & 0xff] == n) {
			continue; // Every key has this byte: order unchanged.
		}
		for (size_t b = 0; b < 256; b++) {
			size_t c = count[b];

			count[b] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++) {
			dst[count[(src[i].key >> shift) & 0xff]++] = src[i];
		}
		t   = src;
		src = dst;
		dst = t;
	}
	if (src != a) {
		memcpy(a, src, n * sizeof(*a));
	}
}

/* dedup_common is the length of the prefix every id of e[0..n-1]
 * shares, knowing that they share the first skip bytes. */
static size_t
dedup_common(const wal_dedup_ent *e, size_t n, size_t skip)
{
	size_t common = e[0].len;

	for (size_t k = 1; k < n && common > skip; k++) {
		size_t i = skip;

		common = common < e[k].len ? common : e[k].len;
		while (i < common && e[k].id[i] == e[0].id[i]) {
			i++;
		}
		common = i;
	}
	return (common);
}

/*
 * dedup_sort puts a[0..n-1] (ids sharing their first skip bytes) in
 * LMDB's key order, equal ids in batch order; tmp holds n entries. It
 * radix sorts by the 8 bytes after the common prefix, zero-padded, which
 * orders as LMDB does (a shorter id sorts before a longer one it
 * starts). A run of ids that tie on those 8 bytes shares 8 more bytes,
 * so the run is sorted the same way from there: ULIDs from one producer
 * in one millisecond differ only in their last bytes. A run that has an
 * id ending within the 8 bytes is copies or ids that differ only in
 * length or padding, and is merge sorted by the full ids. The depth is
 * at most EVB_WAL_ID_MAX / 8.
 */
static void
dedup_sort(wal_dedup_ent *a, wal_dedup_ent *tmp, size_t n, size_t skip)
{
	skip = dedup_common(a, n, skip);
	if (n < DEDUP_RADIX_MIN) {
		dedup_merge(a, tmp, n, skip);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		uint8_t b[8] = { 0 };
		size_t  m    = a[k].len - skip < 8 ? a[k].len - skip : 8;

		memcpy(b, a[k].id + skip, m);
		a[k].key = evb_get_be64(b);
	}
	dedup_radix(a, tmp, n);
	for (size_t lo = 0, hi; lo < n; lo = hi) {
		bool is_long = a[lo].len > skip + 8;

		for (hi = lo + 1; hi < n && a[hi].key == a[lo].key; hi++) {
			is_long = is_long && a[hi].len > skip + 8;
		}
		if (hi - lo > 1 && is_long) {
			dedup_sort(a + lo, tmp, hi - lo, skip + 8);
		} else if (hi - lo > 1) {
			dedup_merge(a + lo, tmp, hi - lo, skip);
		}
	}
}

int
wal_dedup_prepare(evb_wal *w, const evb_wal_rec *recs, size_t n, wal_dedup *d)
{
	size_t m = 0;

	d->ents  = NULL;
	d->nents = 0;
	if (!wal_dedup_on(w)) {
		return (EVB_OK);
	}
	for (size_t i = 0; i < n; i++) {
		m += recs[i].id_len > 0;
	}
	if (m == 0) {
		return (EVB_OK);
	}
	if ((d->ents = malloc(2 * m * sizeof(*d->ents))) == NULL) {
		return (EVB_ENOMEM);
	}
	for (size_t i = 0; i < n; i++) {
		if (recs[i].id_len > 0) {
			d->ents[d->nents++] = (wal_dedup_ent) { recs[i].id,
				recs[i].id_len, i, 0 };
		}
	}
	dedup_sort(d->ents, d->ents + m, m, 0);
	return (EVB_OK);
}

void
wal_dedup_fini(wal_dedup *d)
{
	free(d->ents);
	d->ents  = NULL;
	d->nents = 0;
}

int
wal_dedup_retained(evb_wal *w, MDB_txn *txn, uint64_t first)
{
	dedup_gen g;
	MDB_stat  st;
	bool      found;
	int       rc;

	if ((rc = dedup_gen_read(w, txn, &g, &found)) != MDB_SUCCESS ||
	    !found || first < g.start) {
		return (rc);
	}
	// Every offset of the older generation is below g.start: all gone.
	if ((rc = mdb_stat(txn, w->dbi_ids[g.cur ^ 1u], &st)) != 0 ||
	    st.ms_entries == 0) {
		return (rc);
	}
	return (mdb_drop(txn, w->dbi_ids[g.cur ^ 1u], 0));
}
