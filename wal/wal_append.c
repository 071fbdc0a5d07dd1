/*
 * wal_append.c: appending a batch of records in one write txn.
 *
 * One txn, in three steps (append_step):
 *   1. the next offset, from the log's last key;
 *   2. offsets for the records to store, consecutive in batch order: with
 *      duplicate suppression on and ids in the batch, wal_dedup.c decides
 *      which are duplicates from its in-memory window;
 *   3. the records themselves, ids included, each noted in the time index
 *      (wal_time.c).
 * The txn also stores the cursors consumers noted (wal_cursor.c).
 * Once the txn has committed, the stored ids join the window
 * (append_done, under the writer lock, so the next batch sees them).
 *
 * Write first, decide after: duplicates are rare (a producer's retry), so
 * once the window's table is built and while batches bring none, step 3
 * runs before step 2. Every record is stored at next + i, its id hashed
 * from the copy just written into the page, and then the window decides;
 * if it finds a duplicate, the txn is redone with the decision first
 * (WAL_STEP_AGAIN), and so is the next batch. Why: hashing the ids before
 * the txn read each id's cache line from the caller's batch a first time,
 * a miss per id for batches larger than the cache, and cost a third of
 * the window's time (docs/benchmarks.md); from the page it is in cache.
 *
 * The next offset is read inside the txn, not cached in the handle, so it
 * is right after a reopen, after another process wrote, and on every retry
 * after map growth; the step recomputes everything from the batch, as
 * wal_write requires. Keys are 8-byte big-endian offsets, so LMDB's byte
 * order is numeric order and MDB_APPEND can skip the search and fill pages
 * completely. MDB_RESERVE lets the record be encoded straight into the
 * page, with no staging buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "wal/wal_int.h"

typedef struct append_arg {
	const evb_wal_rec *recs;   /* The batch, borrowed. */
	size_t             n;      /* Records in it. */
	wal_dedup          dedup;  /* Its ids' hashes. */
	int64_t            now_ns; /* The batch's append time. */
	evb_wal_result    *res;    /* OUT: per record, n entries. */
	uint64_t           dups;   /* OUT: records not stored. */
	wal_notes         *notes;  /* Cursor notes stored with the batch. */
} append_arg;

/* append_records puts the stored records and notes their times; with
 * hash, it also hashes each one's id from its copy. */
static int
append_records(
    evb_wal *w, MDB_txn *txn, MDB_cursor *cur, append_arg *a, bool hash)
{
	const uint8_t *id;
	wal_time       t;
	MDB_val        k, v;
	uint8_t        kb[WAL_KEY_SIZE];
	int            rc;

	if ((rc = wal_time_begin(w, txn, &t)) != MDB_SUCCESS) {
		return (rc);
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->res[i].status != EVB_OK) {
			continue;
		}
		evb_put_be64(kb, a->res[i].off);
		k.mv_size = sizeof(kb);
		k.mv_data = kb;
		v.mv_size = evb_wal_record_size(&a->recs[i]);
		v.mv_data = NULL;
		rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND | MDB_RESERVE);
		if (rc != MDB_SUCCESS) {
			break;
		}
		id = wal_rec_encode(v.mv_data, &a->recs[i], a->now_ns);
		if (hash) {
			wal_dedup_hash(w, &a->dedup, i, id, a->recs[i].id_len);
		}
		if ((rc = wal_time_note(&t, a->res[i].off, a->recs[i].ts_ns)) !=
		    MDB_SUCCESS) {
			break;
		}
	}
	wal_time_end(&t);
	return (rc);
}

/* append_decide gives the batch's records their offsets from next on
 * (wal_dedup.c decides which are stored) and counts the duplicates. */
static int
append_decide(evb_wal *w, MDB_txn *txn, append_arg *a, uint64_t next)
{
	int rc;

	if (a->dedup.nids > 0) {
		rc = wal_dedup_assign(
		    w, txn, a->recs, &a->dedup, a->n, next, a->now_ns, a->res);
		if (rc != MDB_SUCCESS) {
			return (rc);
		}
	} else {
		for (size_t i = 0; i < a->n; i++) {
			a->res[i] = (evb_wal_result) { next + i, EVB_OK };
		}
	}
	a->dups = 0;
	for (size_t i = 0; i < a->n; i++) {
		a->dups += a->res[i].status != EVB_OK;
	}
	return (MDB_SUCCESS);
}

static int
append_step(evb_wal *w, MDB_txn *txn, void *arg)
{
	append_arg *a     = arg;
	bool        first = wal_dedup_write_first(w, &a->dedup);
	MDB_cursor *cur;
	uint64_t    next;
	int         rc;

	if ((rc = wal_log_bound(w, txn, MDB_LAST, &next)) != MDB_SUCCESS) {
		return (rc);
	}
	next++;
	if (first) {
		for (size_t i = 0; i < a->n; i++) {
			a->res[i] = (evb_wal_result) { next + i, EVB_OK };
		}
		a->dups = 0;
	} else if ((rc = append_decide(w, txn, a, next)) != MDB_SUCCESS) {
		return (rc);
	}
	if ((rc = wal_notes_put(w, txn, a->notes)) != MDB_SUCCESS) {
		return (rc);
	}
	if (a->dups == a->n) {
		return (MDB_SUCCESS); // No record to store.
	}
	if ((rc = mdb_cursor_open(txn, w->dbi_log, &cur)) != MDB_SUCCESS) {
		return (rc);
	}
	rc = append_records(w, txn, cur, a, first);
	mdb_cursor_close(cur);
	if (rc != MDB_SUCCESS || !first) {
		return (rc);
	}
	// Every record is hashed now, so a redo decides first.
	a->dedup.hashed = true;
	if ((rc = append_decide(w, txn, a, next)) != MDB_SUCCESS) {
		return (rc);
	}
	return (a->dups == 0 ? MDB_SUCCESS : WAL_STEP_AGAIN);
}

/* append_done adds the committed batch's ids to the dedup window. */
static void
append_done(evb_wal *w, void *arg)
{
	append_arg *a    = arg;
	uint64_t    last = 0;

	wal_notes_done(w, a->notes);
	if (a->dedup.nids == 0) {
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		last = a->res[i].status == EVB_OK ? a->res[i].off : last;
	}
	wal_dedup_commit(w, last, a->now_ns);
}

/* append_check validates the batch before any txn; an evb_err. */
static int
append_check(evb_wal *w, const evb_wal_rec *recs, size_t n, evb_diag *diag)
{
	if (w == NULL || recs == NULL || n == 0) {
		evb_diag_set(
		    diag, "append: expected a handle and n >= 1 records");
		return (EVB_EINVAL);
	}
	if (w->opts.read_only) {
		evb_diag_set(diag, "append: the handle is read-only");
		return (EVB_EINVAL);
	}
	for (size_t i = 0; i < n; i++) {
		if (recs[i].len > EVB_WAL_MAX_PAYLOAD) {
			evb_diag_set(diag,
			    "recs[%zu].len: expected <= %u "
			    "(EVB_WAL_MAX_PAYLOAD), got %zu",
			    i, EVB_WAL_MAX_PAYLOAD, recs[i].len);
			return (EVB_ETOOBIG);
		}
		if (recs[i].payload == NULL && recs[i].len > 0) {
			evb_diag_set(diag,
			    "recs[%zu].payload: NULL with len %zu", i,
			    recs[i].len);
			return (EVB_EINVAL);
		}
		if (recs[i].id_len > EVB_WAL_ID_MAX) {
			evb_diag_set(diag,
			    "recs[%zu].id_len: expected <= %d "
			    "(EVB_WAL_ID_MAX), got %zu",
			    i, EVB_WAL_ID_MAX, recs[i].id_len);
			return (EVB_ETOOBIG);
		}
		if (recs[i].id == NULL && recs[i].id_len > 0) {
			evb_diag_set(diag, "recs[%zu].id: NULL with id_len %zu",
			    i, recs[i].id_len);
			return (EVB_EINVAL);
		}
	}
	return (EVB_OK);
}

int
evb_wal_append(evb_wal *w, const evb_wal_rec *recs, size_t n,
    evb_wal_result *res, evb_diag *diag)
{
	evb_wal_result one = { 0, EVB_OK };
	wal_notes      notes; // Filled by the txn (not zeroed: 2 KiB).
	append_arg     a;
	int            rc;

	if ((rc = append_check(w, recs, n, diag)) != EVB_OK) {
		return (rc);
	}
	memset(&a, 0, sizeof(a));
	a.recs   = recs;
	a.n      = n;
	a.now_ns = wal_now_ns(w);
	a.notes  = &notes;
	// Results are built in scratch space and copied out on success
	// only, so a failed append leaves the caller's array untouched.
	a.res = n == 1 ? &one : calloc(n, sizeof(*a.res));
	if (a.res == NULL || wal_dedup_prepare(w, recs, n, &a.dedup) != 0) {
		rc = EVB_ENOMEM;
		goto res_free;
	}
	if ((rc = wal_write(w, append_step, append_done, &a, diag, "append")) ==
	    EVB_OK) {
		atomic_fetch_add(&w->dup_count, a.dups);
		if (res != NULL) {
			memcpy(res, a.res, n * sizeof(*res));
		}
	}
	wal_dedup_fini(&a.dedup);
res_free:
	if (a.res != &one) {
		free(a.res);
	}
	return (rc);
}
