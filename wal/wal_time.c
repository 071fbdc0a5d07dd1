/*
 * wal_time.c: the time index ("ts" DB) and evb_wal_seek_time.
 *
 * The question: the first offset whose record has ts >= T. Producers
 * stamp ts, so it may go backwards between offsets, and neither a binary
 * search over offsets nor an index sorted by ts answers it in one step
 * (the latter finds the smallest ts >= T, not the smallest offset). What
 * does: the running maximum M(off) = max ts of records 1..off. M never
 * decreases, and the first offset with ts >= T is exactly the first one
 * with M >= T. So the index only has to record where M grows; keyed by M,
 * it is append-only, and every put is MDB_APPEND.
 *
 * To stay small it records M only when M enters a later bucket of
 * WAL_TS_BUCKET_NS (1 ms) of the key: entry (M, off) says that the
 * record at off raised the running maximum to M, into a bucket no earlier
 * record reached. Between two entries M stays in the first one's bucket. At a
 * million events a second that is about one 26-byte entry per thousand
 * records. Keys are the ts flipped to an unsigned order (time_key);
 * values are the offset, both 8 bytes big-endian.
 *
 * Seeking T: let e1 be the last entry with key < T and e2 the next one.
 * If T is in a later bucket than e1, every record before e2 has ts < T
 * and the answer is e2 (or the end). If T is in e1's bucket, the answer
 * is among e1.off+1 .. e2.off, found by reading those records: at most
 * one bucket's worth of arrivals.
 *
 * Retention keeps the entry that covers the new first offset and deletes
 * the ones before it, so the search never needs a removed record. It can
 * remove A (wal.h) though: the answer is then the first kept offset or the
 * first kept record with ts >= T, whichever the entries left give.
 */
#include "wal/wal_int.h"

/* time_key maps ts to an unsigned key with the same order. */
static uint64_t
time_key(int64_t ts)
{
	return ((uint64_t) ts ^ (UINT64_C(1) << 63));
}

/*
 * time_bucket is the key's bucket: floor(key / 10^6), so the edges are at
 * ts = 224,192 mod 10^6 (2^63 mod 10^6 = 775,808), not at whole ms of ts.
 * docs/wal-format.md documents exactly this; it is part of the format.
 */
static uint64_t
time_bucket(uint64_t key)
{
	return (key / WAL_TS_BUCKET_NS);
}

/* time_entry decodes an entry; MDB_CORRUPTED unless both are 8 bytes. */
static int
time_entry(const MDB_val *k, const MDB_val *v, uint64_t *key, uint64_t *off)
{
	if (k->mv_size != 8 || v->mv_size != WAL_KEY_SIZE) {
		return (MDB_CORRUPTED);
	}
	*key = evb_get_be64(k->mv_data);
	*off = evb_get_be64(v->mv_data);
	return (MDB_SUCCESS);
}

int
wal_time_begin(evb_wal *w, MDB_txn *txn, wal_time *t)
{
	MDB_val  k, v;
	uint64_t off;
	int      rc;

	t->has_last = false;
	if ((rc = mdb_cursor_open(txn, w->dbi_ts, &t->cur)) != MDB_SUCCESS) {
		t->cur = NULL;
		return (rc);
	}
	rc = mdb_cursor_get(t->cur, &k, &v, MDB_LAST);
	if (rc == MDB_NOTFOUND) {
		return (MDB_SUCCESS);
	}
	if (rc == MDB_SUCCESS &&
	    (rc = time_entry(&k, &v, &t->last_key, &off)) == MDB_SUCCESS) {
		t->has_last = true;
	}
	return (rc);
}

int
wal_time_note(wal_time *t, uint64_t off, int64_t ts_ns)
{
	uint64_t key = time_key(ts_ns);
	uint8_t  kb[8], vb[WAL_KEY_SIZE];
	MDB_val  k = { sizeof(kb), kb }, v = { sizeof(vb), vb };
	int      rc;

	if (t->has_last && time_bucket(key) <= time_bucket(t->last_key)) {
		return (MDB_SUCCESS);
	}
	evb_put_be64(kb, key);
	evb_put_be64(vb, off);
	if ((rc = mdb_cursor_put(t->cur, &k, &v, MDB_APPEND)) == 0) {
		t->has_last = true;
		t->last_key = key;
	}
	return (rc);
}

void
wal_time_end(wal_time *t)
{
	if (t->cur != NULL) {
		mdb_cursor_close(t->cur);
		t->cur = NULL;
	}
}

int
wal_time_retained(evb_wal *w, MDB_txn *txn, uint64_t first)
{
	MDB_cursor *cur;
	MDB_val     k, v;
	uint64_t    key, off;
	int         rc;

	if ((rc = mdb_cursor_open(txn, w->dbi_ts, &cur)) != MDB_SUCCESS) {
		return (rc);
	}
	// Delete the first entry while the one after it still starts at
	// or below first: then the first entry covers only removed records.
	for (;;) {
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) != 0 ||
		    (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) != 0 ||
		    (rc = time_entry(&k, &v, &key, &off)) != 0 || off > first) {
			break;
		}
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) != 0 ||
		    (rc = mdb_cursor_del(cur, 0)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	return (rc == MDB_NOTFOUND ? MDB_SUCCESS : rc);
}

/* The part of a seek done in one read txn. */
typedef struct time_seek {
	uint64_t first;   /* The log's first offset (0: empty). */
	uint64_t last;    /* Its last offset. */
	uint64_t answer;  /* Where to start when no scan is needed. */
	uint64_t scan_lo; /* Scan offsets scan_lo..scan_hi when scan_lo */
	uint64_t scan_hi; /* is not 0, for the first ts >= T. */
} time_seek;

/* seek_index finds e1 and e2 (top comment) and what to do next. */
static int
seek_index(MDB_cursor *cur, int64_t ts_ns, time_seek *s)
{
	uint64_t key = time_key(ts_ns), k1, off1, k2 = 0, off2 = 0;
	uint8_t  kb[8];
	MDB_val  k = { sizeof(kb), kb }, v;
	bool     has2;
	int      rc;

	evb_put_be64(kb, key);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		return (rc);
	}
	if ((has2 = rc == MDB_SUCCESS) &&
	    (rc = time_entry(&k, &v, &k2, &off2)) != MDB_SUCCESS) {
		return (rc);
	}
	s->answer = has2 ? off2 : s->last + 1;
	rc        = mdb_cursor_get(cur, &k, &v, has2 ? MDB_PREV : MDB_LAST);
	if (rc == MDB_NOTFOUND) {
		return (MDB_SUCCESS); // No e1: T is at or before the start.
	}
	if (rc != MDB_SUCCESS ||
	    (rc = time_entry(&k, &v, &k1, &off1)) != MDB_SUCCESS) {
		return (rc);
	}
	if (time_bucket(k1) == time_bucket(key)) {
		s->scan_lo = off1 + 1;
		s->scan_hi = s->answer - 1;
	}
	return (MDB_SUCCESS);
}

/* seek_scan reads scan_lo..scan_hi for the first record with ts >= T. */
static int
seek_scan(evb_wal *w, int64_t ts_ns, time_seek *s)
{
	evb_wal_iter  *it;
	evb_wal_entry  e;
	const uint8_t *val;
	uint64_t       off;
	size_t         len;
	bool           key_ok;
	int            rc;

	if ((rc = evb_wal_iter_open(w, s->scan_lo, &it)) != EVB_OK) {
		return (rc);
	}
	while (
	    (rc = wal_iter_next_raw(it, &off, &key_ok, &val, &len)) == EVB_OK) {
		if (!key_ok || off > s->scan_hi) {
			break;
		}
		// A bad record could hide a match: stop at it.
		if (evb_wal_record_decode(off, val, len, &e, NULL) != EVB_OK ||
		    e.ts_ns >= ts_ns) {
			s->answer = off;
			break;
		}
	}
	evb_wal_iter_close(it);
	return (rc == EVB_EOF ? EVB_OK : rc);
}

int
evb_wal_seek_time(evb_wal *w, int64_t ts_ns, uint64_t *off)
{
	time_seek   s   = { 0, 0, 0, 0, 0 };
	MDB_txn    *txn = NULL;
	MDB_cursor *cur;
	int         rc;

	if (w == NULL || off == NULL) {
		return (EVB_EINVAL);
	}
	if ((rc = wal_read_begin(w, &txn)) != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "seek time"));
	}
	if ((rc = wal_log_bound(w, txn, MDB_FIRST, &s.first)) == 0 &&
	    (rc = wal_log_bound(w, txn, MDB_LAST, &s.last)) == 0 &&
	    (rc = mdb_cursor_open(txn, w->dbi_ts, &cur)) == 0) {
		rc = seek_index(cur, ts_ns, &s);
		mdb_cursor_close(cur);
	}
	wal_read_end(w, &txn, false);
	if (rc != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "seek time"));
	}
	// The scan runs in an iterator's short txns, not in this one, so a
	// long bucket never holds a snapshot or blocks map growth.
	if (s.scan_lo != 0 && s.scan_lo <= s.scan_hi &&
	    (rc = seek_scan(w, ts_ns, &s)) != EVB_OK) {
		return (rc);
	}
	*off = s.answer > s.first ? s.answer : s.first;
	if (s.first == 0) {
		*off = s.last + 1; // Empty log.
	}
	return (EVB_OK);
}
