/*
 * wal_iter.c: reading the log in offset order.
 *
 * An iterator copies a chunk of records out of LMDB under a short read
 * txn, then resets the txn and serves the chunk from its own buffer. So
 * an idle iterator pins no pages and never holds map_lock, which the
 * writer needs exclusively to grow the map; the price is one memcpy per
 * record. Each refill is a fresh snapshot, so the iterator follows the
 * tail of a growing log.
 *
 * The iterator remembers the last raw key it copied and resumes strictly
 * after it, so even a key of the wrong size (which evb_wal_verify reports)
 * cannot make it loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wal/wal_int.h"

/* A chunk ends after this many records or bytes (at least one record):
 * large enough to amortise the txn renew, small enough to keep a reader's
 * memory and its snapshot short. */
#define ITER_CHUNK_RECORDS 256
#define ITER_CHUNK_BYTES (1024 * 1024)
#define ITER_KEY_MAX 511 /* LMDB's default largest key. */

typedef struct iter_slot {
	uint64_t off;    /* Offset when key_ok. */
	bool     key_ok; /* Key was WAL_KEY_SIZE bytes. */
	size_t   pos;    /* Value's start in buf. */
	size_t   len;    /* Value's bytes. */
} iter_slot;

struct evb_wal_iter {
	evb_wal  *w;
	MDB_txn  *txn;      /* Reset between refills; NULL before the first. */
	uint64_t  from_off; /* Start, until a key has been copied. */
	uint8_t   last_key[ITER_KEY_MAX];    /* Last raw key copied. */
	size_t    last_key_len;              /* 0 before the first. */
	uint8_t  *buf;                       /* Copied values. */
	size_t    buf_len;                   /* Bytes in use. */
	size_t    buf_cap;                   /* Bytes allocated. */
	iter_slot slots[ITER_CHUNK_RECORDS]; /* The chunk's records. */
	size_t    nslots;                    /* Records in the chunk. */
	size_t    cur;                       /* Next record to return. */
};

int
evb_wal_iter_open(evb_wal *w, uint64_t from_off, evb_wal_iter **it)
{
	evb_wal_iter *i;

	if (w == NULL || it == NULL) {
		return (EVB_EINVAL);
	}
	if ((i = calloc(1, sizeof(*i))) == NULL) {
		return (EVB_ENOMEM);
	}
	i->w        = w;
	i->from_off = from_off;
	atomic_fetch_add(&w->open_iters, 1);
	*it = i;
	return (EVB_OK);
}

void
evb_wal_iter_close(evb_wal_iter *it)
{
	if (it == NULL) {
		return;
	}
	if (it->txn != NULL) {
		mdb_txn_abort(it->txn); // A reset txn: only its slot is freed.
	}
	atomic_fetch_sub(&it->w->open_iters, 1);
	free(it->buf);
	free(it);
}

/* iter_keep copies one key/value into the chunk; an LMDB-style code. */
static int
iter_keep(evb_wal_iter *it, const MDB_val *k, const MDB_val *v)
{
	iter_slot *s = &it->slots[it->nslots];

	if (v->mv_size > it->buf_cap - it->buf_len) {
		size_t   cap = it->buf_cap == 0 ? 4096 : it->buf_cap;
		uint8_t *nb;

		while (cap - it->buf_len < v->mv_size) {
			cap *= 2;
		}
		if ((nb = realloc(it->buf, cap)) == NULL) {
			return (ENOMEM);
		}
		it->buf     = nb;
		it->buf_cap = cap;
	}
	memcpy(it->buf + it->buf_len, v->mv_data, v->mv_size);
	s->pos    = it->buf_len;
	s->len    = v->mv_size;
	s->key_ok = k->mv_size == WAL_KEY_SIZE;
	s->off    = s->key_ok ? evb_get_be64(k->mv_data) : 0;
	it->buf_len += v->mv_size;
	it->nslots++;
	it->last_key_len =
	    k->mv_size < ITER_KEY_MAX ? k->mv_size : ITER_KEY_MAX;
	memcpy(it->last_key, k->mv_data, it->last_key_len);
	return (MDB_SUCCESS);
}

/* iter_seek positions cur at the first key not yet copied. */
static int
iter_seek(evb_wal_iter *it, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
	uint8_t kb[WAL_KEY_SIZE];
	int     rc;

	if (it->last_key_len == 0) {
		evb_put_be64(kb, it->from_off);
		k->mv_size = sizeof(kb);
		k->mv_data = kb;
		return (mdb_cursor_get(cur, k, v, MDB_SET_RANGE));
	}
	k->mv_size = it->last_key_len;
	k->mv_data = it->last_key;
	rc         = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS && k->mv_size == it->last_key_len &&
	    memcmp(k->mv_data, it->last_key, it->last_key_len) == 0) {
		rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
	}
	return (rc);
}

static int
iter_refill(evb_wal_iter *it)
{
	MDB_cursor *cur;
	MDB_val     k, v;
	int         rc;

	it->nslots = it->cur = it->buf_len = 0;
	if ((rc = wal_read_begin(it->w, &it->txn)) != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "iterator"));
	}
	if ((rc = mdb_cursor_open(it->txn, it->w->dbi_log, &cur)) != 0) {
		goto txn_end;
	}
	rc = iter_seek(it, cur, &k, &v);
	while (rc == MDB_SUCCESS) {
		if ((rc = iter_keep(it, &k, &v)) != MDB_SUCCESS) {
			break;
		}
		if (it->nslots == ITER_CHUNK_RECORDS ||
		    it->buf_len >= ITER_CHUNK_BYTES) {
			break;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		rc = MDB_SUCCESS;
	}
	mdb_cursor_close(cur);
txn_end:
	wal_read_end(it->w, &it->txn, rc == MDB_SUCCESS);
	return (wal_err(rc, NULL, "iterator"));
}

int
wal_iter_next_raw(evb_wal_iter *it, uint64_t *off, bool *key_ok,
    const uint8_t **val, size_t *len)
{
	iter_slot *s;
	int        rc;

	if (it->cur == it->nslots) {
		if ((rc = iter_refill(it)) != EVB_OK) {
			return (rc);
		}
		if (it->nslots == 0) {
			return (EVB_EOF);
		}
	}
	s       = &it->slots[it->cur++];
	*off    = s->off;
	*key_ok = s->key_ok;
	*val    = it->buf + s->pos;
	*len    = s->len;
	return (EVB_OK);
}

int
evb_wal_iter_next(evb_wal_iter *it, evb_wal_entry *out)
{
	evb_wal_entry  e;
	const uint8_t *val;
	uint64_t       off;
	size_t         len;
	bool           key_ok;
	int            rc;

	if (it == NULL || out == NULL) {
		return (EVB_EINVAL);
	}
	if ((rc = wal_iter_next_raw(it, &off, &key_ok, &val, &len)) != EVB_OK) {
		return (rc);
	}
	if (!key_ok ||
	    (rc = evb_wal_record_decode(off, val, len, &e, NULL)) != EVB_OK) {
		memset(out, 0, sizeof(*out));
		out->off = off;
		return (EVB_ECORRUPT);
	}
	*out = e;
	return (EVB_OK);
}
