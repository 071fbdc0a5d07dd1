/*
 * wal_txn.c: the boundary between evbus and LMDB. It translates LMDB and
 * errno codes, starts read transactions that survive map growth, and runs
 * write transactions that grow the map when it is full.
 *
 * Invariant: a write transaction is committed whole or not at all. When a
 * step hits MDB_MAP_FULL the txn is aborted, the map grows, and the whole
 * step runs again in a fresh txn; nothing is ever continued half-done.
 *
 * A full disk: LMDB (0.9, without MDB_WRITEMAP, as the WAL opens it)
 * writes the txn's pages with pwrite before it writes the meta page that
 * commits them, so a failed write leaves the last committed txn in
 * place. It returns ENOSPC (EDQUOT, EFBIG) when a write fails outright,
 * but EIO when one writes only part of its pages, which is how a disk
 * usually fills up; so an EIO from a write txn is taken for a full disk
 * when the file system then has less than WAL_FULL_BYTES free
 * (txn_disk_full), and stays a storage error otherwise.
 * Lock order (wal_int.h): wlock, then map_lock.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "wal/wal_int.h"

/* Below this many free bytes after a short write, the disk is full: a
 * short write stops where the space ran out, so what is left is less
 * than a file system block or two. */
#define WAL_FULL_BYTES (1024 * 1024)

int
wal_err(int rc, evb_diag *d, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return (EVB_OK);
	case MDB_MAP_FULL:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_EFULL);
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		evb_diag_set(d,
		    "%s: %s: the disk is full; free space and "
		    "retry, nothing of this transaction was written",
		    what, mdb_strerror(rc));
		return (EVB_EFULL);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		evb_diag_set(
		    d, "%s: %s: run evbus wal verify", what, mdb_strerror(rc));
		return (EVB_ECORRUPT);
	case MDB_VERSION_MISMATCH:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_EVERSION);
	case ENOMEM:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_ENOMEM);
	default:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_ESTORAGE);
	}
}

/*
 * txn_adopt_size follows a map grown by another process: LMDB reports
 * MDB_MAP_RESIZED and wants mdb_env_set_mapsize(env, 0) with no txn of
 * ours open. wlock keeps our writer out, map_lock our readers.
 */
static int
txn_adopt_size(evb_wal *w, bool have_wlock)
{
	int rc;

	if (!have_wlock) {
		evb_assert(pthread_mutex_lock(&w->wlock) == 0);
	}
	evb_assert(pthread_rwlock_wrlock(&w->map_lock) == 0);
	rc = mdb_env_set_mapsize(w->env, 0);
	evb_assert(pthread_rwlock_unlock(&w->map_lock) == 0);
	if (!have_wlock) {
		evb_assert(pthread_mutex_unlock(&w->wlock) == 0);
	}
	return (rc);
}

int
wal_read_begin(evb_wal *w, MDB_txn **txn)
{
	int rc;

	for (;;) {
		evb_assert(pthread_rwlock_rdlock(&w->map_lock) == 0);
		if (*txn != NULL) {
			rc = mdb_txn_renew(*txn);
		} else {
			rc = mdb_txn_begin(w->env, NULL, MDB_RDONLY, txn);
		}
		if (rc == MDB_SUCCESS) {
			return (rc);
		}
		// A txn whose renew failed is finished; drop it and begin a
		// fresh one next time rather than reason about its state.
		if (*txn != NULL) {
			mdb_txn_abort(*txn);
			*txn = NULL;
		}
		evb_assert(pthread_rwlock_unlock(&w->map_lock) == 0);
		if (rc != MDB_MAP_RESIZED) {
			return (rc);
		}
		if ((rc = txn_adopt_size(w, false)) != MDB_SUCCESS) {
			return (rc);
		}
	}
}

void
wal_read_end(evb_wal *w, MDB_txn **txn, bool keep)
{
	if (keep) {
		mdb_txn_reset(*txn);
	} else {
		mdb_txn_abort(*txn);
		*txn = NULL;
	}
	evb_assert(pthread_rwlock_unlock(&w->map_lock) == 0);
}

/*
 * txn_grow doubles the map, capped by map_size_max. Called with wlock held
 * and no write txn open, as mdb_env_set_mapsize requires.
 */
static int
txn_grow(evb_wal *w, evb_diag *d, const char *what)
{
	MDB_envinfo info;
	size_t      cur, next;
	size_t      max = w->opts.map_size_max;
	int         rc;

	if ((rc = mdb_env_info(w->env, &info)) != MDB_SUCCESS) {
		return (wal_err(rc, d, "mdb_env_info"));
	}
	cur  = info.me_mapsize;
	next = cur > SIZE_MAX / 2 ? SIZE_MAX : cur * 2;
	if (max != 0 && next > max) {
		next = max;
	}
	if (next <= cur) {
		evb_diag_set(d,
		    "%s: the map is full at %zu bytes "
		    "(map_size_max %zu): raise map_size_max or trim the log; "
		    "nothing of this transaction was written",
		    what, cur, max);
		return (EVB_EFULL);
	}
	evb_assert(pthread_rwlock_wrlock(&w->map_lock) == 0);
	rc = mdb_env_set_mapsize(w->env, next);
	evb_assert(pthread_rwlock_unlock(&w->map_lock) == 0);
	if (rc != MDB_SUCCESS) {
		return (wal_err(rc, d, "mdb_env_set_mapsize"));
	}
	atomic_fetch_add(&w->map_grows, 1);
	return (EVB_OK);
}

/*
 * txn_disk_full says whether the file system of the log has less than
 * WAL_FULL_BYTES available to this process (an EIO then was a short
 * write on a full disk). OUT: *avail, bytes available.
 */
static bool
txn_disk_full(evb_wal *w, uint64_t *avail)
{
	mdb_filehandle_t fd;
	struct statvfs   sv;

	*avail = 0;
	if (mdb_env_get_fd(w->env, &fd) != MDB_SUCCESS ||
	    fstatvfs(fd, &sv) != 0) {
		return (false);
	}
	*avail = (uint64_t) sv.f_bavail * sv.f_frsize;
	return (*avail < WAL_FULL_BYTES);
}

/* txn_once runs fn in one write txn; returns an LMDB code. */
static int
txn_once(evb_wal *w, wal_write_fn fn, void *arg)
{
	MDB_txn *txn;
	int      rc;

	if ((rc = mdb_txn_begin(w->env, NULL, 0, &txn)) != MDB_SUCCESS) {
		return (rc);
	}
	if ((rc = fn(w, txn, arg)) != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		return (rc);
	}
	// mdb_txn_commit frees the txn whether or not it succeeds.
	return (mdb_txn_commit(txn));
}

int
wal_write(evb_wal *w, wal_write_fn fn, wal_done_fn done, void *arg, evb_diag *d,
    const char *what)
{
	uint64_t avail;
	int      rc;

	evb_assert(pthread_mutex_lock(&w->wlock) == 0);
	for (;;) {
		rc = txn_once(w, fn, arg);
		if (rc == WAL_STEP_AGAIN) {
			continue;
		}
		if (rc == MDB_MAP_FULL) {
			if ((rc = txn_grow(w, d, what)) != EVB_OK) {
				goto unlock;
			}
			continue;
		}
		if (rc == MDB_MAP_RESIZED) {
			if ((rc = txn_adopt_size(w, true)) != MDB_SUCCESS) {
				rc = wal_err(rc, d, "mdb_env_set_mapsize");
				goto unlock;
			}
			continue;
		}
		break;
	}
	if (rc == MDB_SUCCESS && done != NULL) {
		done(w, arg);
	}
	if (rc == EIO && txn_disk_full(w, &avail)) {
		evb_diag_set(d,
		    "%s: %s after a short write, with %llu bytes left on the "
		    "file system: the disk is full; free space and retry, "
		    "nothing of this transaction was written",
		    what, mdb_strerror(rc), (unsigned long long) avail);
		rc = EVB_EFULL;
		goto unlock;
	}
	rc = wal_err(rc, d, what);
unlock:
	evb_assert(pthread_mutex_unlock(&w->wlock) == 0);
	return (rc);
}
