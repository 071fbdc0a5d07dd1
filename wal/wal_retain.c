/*
 * wal_retain.c: retention, removing the oldest records by age and by the
 * size of the log's pages, in bounded write transactions.
 *
 * Each transaction (retain_step) removes at most max records from the
 * front of the log, then the index entries that only described them:
 * time index entries before the one covering the new first offset. The
 * ids of removed records go with them (an id is part of its record); once
 * the txn has committed, retain_done drops them from the appending
 * handle's in-memory window too. The writer
 * lock is released between transactions, so an append waits for at most
 * one of them, and LMDB puts the freed pages on its free list for later
 * transactions to reuse.
 *
 * Limits, checked in every transaction against its own snapshot:
 *   - never past the lowest consumer cursor (a cursor at X is done with
 *     X, so X may go, X + 1 may not);
 *   - never the newest record, so that the next offset, which append
 *     reads from the last key, survives a reopen and offsets are never
 *     reused;
 *   - by age: records whose append time is retain_age_ms or more before
 *     the call's clock reading, oldest first, stopping at the first
 *     younger one (append times follow offsets unless the clock steps
 *     back, and then retention waits for the clock);
 *   - by size: while the log's pages (branch, leaf and overflow) take
 *     more than retain_bytes, the oldest records, as many as the average
 *     record's share of those pages says; evb_wal_retain runs
 *     transactions until one has nothing to remove, so it converges even
 *     when pages free unevenly.
 */
#include "wal/wal_int.h"

typedef struct retain_arg {
	size_t   max;     /* Records per txn. */
	int64_t  now_ns;  /* The clock at the start of evb_wal_retain. */
	uint64_t removed; /* OUT: records this txn removed. */
	uint64_t bad_off; /* OUT: a record whose append time is unreadable
	                     stopped retention by age (0: none). */
	uint64_t first;   /* OUT: the first kept offset after this txn (0:
	                     nothing removed). */
} retain_arg;

/* retain_by_bytes is how many records the size limit condemns. */
static int
retain_by_bytes(evb_wal *w, MDB_txn *txn, uint64_t *need)
{
	uint64_t limit = w->opts.retain_bytes, used;
	MDB_stat st;
	int      rc;

	*need = 0;
	if (limit == 0) {
		return (MDB_SUCCESS);
	}
	if ((rc = mdb_stat(txn, w->dbi_log, &st)) != MDB_SUCCESS) {
		return (rc);
	}
	used = ((uint64_t) st.ms_branch_pages + st.ms_leaf_pages +
	           st.ms_overflow_pages) *
	    st.ms_psize;
	if (used > limit && st.ms_entries > 0) {
		uint64_t per = used / st.ms_entries;

		per   = per > 0 ? per : 1;
		*need = (used - limit + per - 1) / per;
	}
	return (MDB_SUCCESS);
}

/* retain_bound is the last offset retention may remove (0: none). */
static int
retain_bound(evb_wal *w, MDB_txn *txn, uint64_t *bound)
{
	uint64_t last, cmin;
	bool     has;
	int      rc;

	*bound = 0;
	if ((rc = wal_log_bound(w, txn, MDB_LAST, &last)) != 0 ||
	    (rc = wal_cursor_min(w, txn, &has, &cmin)) != 0 || last == 0) {
		return (rc);
	}
	*bound = last - 1;
	if (has && cmin < *bound) {
		*bound = cmin;
	}
	return (MDB_SUCCESS);
}

/* retain_eligible says whether the first record (off, v) goes. */
static bool
retain_eligible(
    evb_wal *w, retain_arg *a, uint64_t need, uint64_t off, const MDB_val *v)
{
	int64_t then;

	if (a->removed < need) {
		return (true);
	}
	if (w->opts.retain_age_ms == 0) {
		return (false);
	}
	if (wal_rec_peek(v->mv_data, v->mv_size, &then, NULL, NULL) != EVB_OK) {
		a->bad_off = off;
		return (false);
	}
	return (
	    wal_older(then, a->now_ns, wal_ms_to_ns(w->opts.retain_age_ms)));
}

/* retain_front removes eligible records from the front of the log. */
static int
retain_front(evb_wal *w, MDB_cursor *cur, retain_arg *a, uint64_t bound,
    uint64_t need, uint64_t *first)
{
	MDB_val k, v;
	int     rc;

	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == MDB_SUCCESS) {
		if (k.mv_size != WAL_KEY_SIZE) {
			return (MDB_CORRUPTED);
		}
		*first = evb_get_be64(k.mv_data);
		if (a->removed == a->max || *first > bound ||
		    !retain_eligible(w, a, need, *first, &v)) {
			return (MDB_SUCCESS);
		}
		if ((rc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS) {
			return (rc);
		}
		a->removed++;
	}
	return (rc);
}

static int
retain_step(evb_wal *w, MDB_txn *txn, void *arg)
{
	retain_arg *a = arg;
	MDB_cursor *cur;
	uint64_t    bound, need, first = 0;
	int         rc;

	a->removed = 0;
	a->bad_off = 0;
	a->first   = 0;
	if ((rc = retain_bound(w, txn, &bound)) != 0 ||
	    (rc = retain_by_bytes(w, txn, &need)) != 0 || bound == 0) {
		return (rc);
	}
	if ((rc = mdb_cursor_open(txn, w->dbi_log, &cur)) != MDB_SUCCESS) {
		return (rc);
	}
	rc = retain_front(w, cur, a, bound, need, &first);
	mdb_cursor_close(cur);
	if (rc != MDB_SUCCESS || a->removed == 0) {
		return (rc);
	}
	// The newest record is never removed, so first is a kept offset.
	a->first = first;
	return (wal_time_retained(w, txn, first));
}

/* retain_done drops the removed records' ids from the dedup window. */
static void
retain_done(evb_wal *w, void *arg)
{
	retain_arg *a = arg;

	if (a->first != 0) {
		wal_dedup_retained(w, a->first);
	}
}

int
evb_wal_retain(
    evb_wal *w, size_t max_records_per_txn, uint64_t *removed, evb_diag *diag)
{
	retain_arg a;
	uint64_t   total = 0;
	int        rc;

	if (w == NULL || max_records_per_txn == 0 || w->opts.read_only) {
		evb_diag_set(diag,
		    "retain: expected a read-write handle and "
		    "max_records_per_txn >= 1");
		return (EVB_EINVAL);
	}
	a.max    = max_records_per_txn;
	a.now_ns = wal_now_ns(w);
	do {
		if ((rc = wal_write(w, retain_step, retain_done, &a, diag,
		         "retain")) != EVB_OK) {
			return (rc);
		}
		total += a.removed;
		atomic_fetch_add(&w->retain_removed, a.removed);
		if (a.bad_off != 0) {
			evb_diag_set(diag,
			    "retain: offset %llu: its append time cannot be "
			    "read, so retention by age stops there; run evbus "
			    "wal verify",
			    (unsigned long long) a.bad_off);
			return (EVB_ECORRUPT);
		}
		// Until a txn finds nothing to do: the size limit is checked
		// again after each, since pages free unevenly.
	} while (a.removed > 0);
	if (removed != NULL) {
		*removed = total;
	}
	return (EVB_OK);
}
