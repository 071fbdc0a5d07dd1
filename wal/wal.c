/*
 * wal.c: opening and closing the log, and the read-only queries (last
 * offset, stats).
 *
 * The log is one LMDB environment (a directory holding data.mdb and
 * lock.mdb) with four named DBs: "log" (offset -> record, the event id
 * included), "cursors" (name -> offset), "meta" (the format version) and
 * "ts" (the time index). The duplicate window is not stored apart: the
 * appending handle rebuilds it in memory from the records (wal_dedup.c).
 * docs/wal-format.md has the bytes. Everything an open handle needs is in
 * struct evb_wal; there is no global state. The environment is opened with
 * MDB_NOTLS so that read txns are not tied to threads: an iterator keeps a
 * reset txn between refills and a thread may hold several iterators.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "wal/wal_int.h"

#define WAL_MAP_SIZE_DEFAULT (64u * 1024 * 1024) /* 64 MiB; grows. */
#define WAL_MAX_READERS_DEFAULT 126              /* LMDB's own default. */
/* Named DBs the env may hold: 4 today, and room for more without
 * reopening old logs with new settings. */
#define WAL_MAX_DBS 8
#define WAL_DEDUP_COUNT_DEFAULT 1000000              /* Records. */
#define WAL_DEDUP_AGE_MS_DEFAULT (24u * 3600 * 1000) /* 24 h. */
#define WAL_RETAIN_TXN_DEFAULT 10000 /* Records per retention txn. */
/* Largest age in ms whose value in ns fits an int64_t (292 years). */
#define WAL_AGE_MS_MAX ((uint64_t) INT64_MAX / WAL_NS_PER_MS)

void
evb_wal_opts_default(evb_wal_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->durability          = EVB_WAL_SYNC;
	o->sync_period_ms      = 100;
	o->map_size_initial    = WAL_MAP_SIZE_DEFAULT;
	o->map_size_max        = 0;
	o->read_only           = false;
	o->max_readers         = WAL_MAX_READERS_DEFAULT;
	o->dedup_window_count  = WAL_DEDUP_COUNT_DEFAULT;
	o->dedup_window_age_ms = WAL_DEDUP_AGE_MS_DEFAULT;
	o->retain_age_ms       = 0;
	o->retain_bytes        = 0;
	o->retain_period_ms    = 0;
	o->retain_txn_records  = WAL_RETAIN_TXN_DEFAULT;
	o->clock_ns            = NULL;
	o->clock_arg           = NULL;
}

int64_t
wal_now_ns(const evb_wal *w)
{
	if (w->opts.clock_ns != NULL) {
		return (w->opts.clock_ns(w->opts.clock_arg));
	}
	return (evb_clock_real_ns());
}

bool
wal_dedup_on(const evb_wal *w)
{
	return (w->opts.dedup_window_count != 0 ||
	    w->opts.dedup_window_age_ms != 0);
}

/* open_check_retain checks the retention and window options. */
static int
open_check_retain(const evb_wal_opts *o, evb_diag *d)
{
	if (o->dedup_window_age_ms > WAL_AGE_MS_MAX ||
	    o->retain_age_ms > WAL_AGE_MS_MAX) {
		evb_diag_set(d, "%s: expected <= %llu ms",
		    o->retain_age_ms > WAL_AGE_MS_MAX ? "retain_age_ms"
		                                      : "dedup_window_age_ms",
		    (unsigned long long) WAL_AGE_MS_MAX);
		return (EVB_EINVAL);
	}
	if (o->retain_period_ms == 0) {
		return (EVB_OK);
	}
	if (o->read_only) {
		evb_diag_set(d,
		    "retain_period_ms: a read-only handle "
		    "cannot remove records; expected 0");
		return (EVB_EINVAL);
	}
	if (o->retain_age_ms == 0 && o->retain_bytes == 0) {
		evb_diag_set(d,
		    "retain_period_ms: set retain_age_ms or "
		    "retain_bytes too, or there is nothing to do");
		return (EVB_EINVAL);
	}
	if (o->retain_txn_records == 0) {
		evb_diag_set(d, "retain_txn_records: expected > 0");
		return (EVB_EINVAL);
	}
	return (EVB_OK);
}

static int
open_check_opts(const evb_wal_opts *o, evb_diag *d)
{
	if (o->durability != EVB_WAL_SYNC &&
	    o->durability != EVB_WAL_PERIODIC &&
	    o->durability != EVB_WAL_NONE) {
		evb_diag_set(d,
		    "durability: expected SYNC, PERIODIC or NONE, "
		    "got %d",
		    (int) o->durability);
		return (EVB_EINVAL);
	}
	if (o->durability == EVB_WAL_PERIODIC && o->sync_period_ms == 0) {
		evb_diag_set(
		    d, "sync_period_ms: expected > 0 in PERIODIC mode");
		return (EVB_EINVAL);
	}
	if (o->map_size_initial == 0) {
		evb_diag_set(d, "map_size_initial: expected > 0");
		return (EVB_EINVAL);
	}
	if (o->map_size_max != 0 && o->map_size_initial > o->map_size_max) {
		evb_diag_set(d,
		    "map_size_initial: expected <= map_size_max "
		    "(%zu), got %zu",
		    o->map_size_max, o->map_size_initial);
		return (EVB_EINVAL);
	}
	if (o->max_readers == 0) {
		evb_diag_set(d, "max_readers: expected > 0");
		return (EVB_EINVAL);
	}
	return (open_check_retain(o, d));
}

static int
open_env(evb_wal *w, const char *dir, evb_diag *d)
{
	unsigned int flags = MDB_NOTLS;
	int          dead;
	int          rc;

	if (w->opts.durability == EVB_WAL_PERIODIC) {
		flags |= MDB_NOSYNC;
	} else if (w->opts.durability == EVB_WAL_NONE) {
		flags |= MDB_NOSYNC | MDB_NOMETASYNC;
	}
	if (w->opts.read_only) {
		flags |= MDB_RDONLY;
	}
	if ((rc = mdb_env_create(&w->env)) != MDB_SUCCESS) {
		w->env = NULL;
		return (wal_err(rc, d, "mdb_env_create"));
	}
	if ((rc = mdb_env_set_maxdbs(w->env, WAL_MAX_DBS)) != MDB_SUCCESS ||
	    (rc = mdb_env_set_maxreaders(w->env, w->opts.max_readers)) !=
	        MDB_SUCCESS ||
	    (rc = mdb_env_set_mapsize(w->env, w->opts.map_size_initial)) !=
	        MDB_SUCCESS) {
		return (wal_err(rc, d, "configuring the LMDB environment"));
	}
	if ((rc = mdb_env_open(w->env, dir, flags, 0600)) != MDB_SUCCESS) {
		if (rc == ENOENT) {
			evb_diag_set(
			    d, "%s: no WAL there (%s)", dir, mdb_strerror(rc));
			return (EVB_ENOTFOUND);
		}
		return (wal_err(rc, d, dir));
	}
	w->is_env_open = true;
	// Slots of readers that died without closing would pin old pages
	// and count against max_readers until cleared.
	if ((rc = mdb_reader_check(w->env, &dead)) != MDB_SUCCESS) {
		return (wal_err(rc, d, "mdb_reader_check"));
	}
	return (EVB_OK);
}

/*
 * open_format_missing handles a log without meta/format: a new log gets
 * it written; a log with records is not ours or was damaged, whichever
 * way it is opened; an empty one is no log yet to a read-only handle,
 * which cannot write the version.
 */
static int
open_format_missing(evb_wal *w, MDB_txn *txn, MDB_val *k, evb_diag *d)
{
	MDB_stat st;
	MDB_val  v;
	uint8_t  buf[4];
	int      rc;

	if ((rc = mdb_stat(txn, w->dbi_log, &st)) != MDB_SUCCESS) {
		return (wal_err(rc, d, "mdb_stat"));
	}
	if (st.ms_entries != 0) {
		evb_diag_set(d,
		    "meta: the format version is missing "
		    "from a log with %zu records",
		    st.ms_entries);
		return (EVB_ECORRUPT);
	}
	if (w->opts.read_only) {
		evb_diag_set(d,
		    "no WAL here: the format version is missing "
		    "(open it read-write once to create it)");
		return (EVB_ENOTFOUND);
	}
	evb_put_be32(buf, WAL_FORMAT_VERSION);
	v.mv_size = sizeof(buf);
	v.mv_data = buf;
	return (wal_err(mdb_put(txn, w->dbi_meta, k, &v, 0), d,
	    "writing the format version"));
}

/*
 * open_format checks the format version in "meta", writing it into a new
 * log (open_format_missing).
 */
static int
open_format(evb_wal *w, MDB_txn *txn, evb_diag *d)
{
	MDB_val  k = { sizeof(WAL_META_FORMAT_KEY) - 1,
		 (void *) WAL_META_FORMAT_KEY };
	MDB_val  v;
	uint32_t ver;
	int      rc;

	rc = mdb_get(txn, w->dbi_meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		return (open_format_missing(w, txn, &k, d));
	}
	if (rc != MDB_SUCCESS) {
		return (wal_err(rc, d, "reading the format version"));
	}
	if (v.mv_size != 4) {
		evb_diag_set(
		    d, "meta.format: expected 4 bytes, got %zu", v.mv_size);
		return (EVB_ECORRUPT);
	}
	if ((ver = evb_get_be32(v.mv_data)) != WAL_FORMAT_VERSION) {
		evb_diag_set(d,
		    "meta.format: the log has format version %lu and this "
		    "build reads only version %d; there is no conversion: "
		    "read it with the evbus that wrote it, or move it aside "
		    "and start a new log",
		    (unsigned long) ver, WAL_FORMAT_VERSION);
		return (EVB_EVERSION);
	}
	return (EVB_OK);
}

/*
 * open_dbs opens (creating unless read-only) the four named DBs. "meta" is
 * opened and its version checked first, so that a log of another version
 * is refused with EVB_EVERSION before its missing or different DBs are
 * looked for.
 */
static int
open_dbs(evb_wal *w, evb_diag *d)
{
	unsigned int dflags = w->opts.read_only ? 0 : MDB_CREATE;
	MDB_txn     *txn;
	int          rc;

	rc = mdb_txn_begin(
	    w->env, NULL, w->opts.read_only ? MDB_RDONLY : 0, &txn);
	if (rc != MDB_SUCCESS) {
		return (wal_err(rc, d, "beginning the open txn"));
	}
	if ((rc = mdb_dbi_open(txn, "meta", dflags, &w->dbi_meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "log", dflags, &w->dbi_log)) != 0) {
		goto missing;
	}
	if ((rc = open_format(w, txn, d)) != EVB_OK) {
		goto txn_abort;
	}
	if ((rc = mdb_dbi_open(txn, "cursors", dflags, &w->dbi_cursors)) != 0 ||
	    (rc = mdb_dbi_open(txn, "ts", dflags, &w->dbi_ts)) != 0) {
		goto missing;
	}
	return (wal_err(mdb_txn_commit(txn), d, "committing the open txn"));

missing:
	if (rc == MDB_NOTFOUND) {
		evb_diag_set(d,
		    "no WAL here: its named DBs are "
		    "missing (open it read-write once to create them)");
		rc = EVB_ENOTFOUND;
	} else {
		rc = wal_err(rc, d, "mdb_dbi_open");
	}
txn_abort:
	mdb_txn_abort(txn);
	return (rc);
}

static int
open_locks(evb_wal *w)
{
	int rc;

	if ((rc = pthread_mutex_init(&w->wlock, NULL)) != 0) {
		return (evb_err_errno(rc));
	}
	if ((rc = pthread_rwlock_init(&w->map_lock, NULL)) != 0) {
		(void) pthread_mutex_destroy(&w->wlock);
		return (evb_err_errno(rc));
	}
	if ((rc = pthread_mutex_init(&w->note_mtx, NULL)) != 0) {
		(void) pthread_rwlock_destroy(&w->map_lock);
		(void) pthread_mutex_destroy(&w->wlock);
		return (evb_err_errno(rc));
	}
	w->has_locks = true;
	return (EVB_OK);
}

int
evb_wal_open(evb_wal **out, const char *dir, const evb_wal_opts *o, evb_diag *d)
{
	evb_wal_opts def;
	evb_wal     *w;
	int          rc;

	if (out == NULL || dir == NULL || dir[0] == '\0') {
		evb_diag_set(d, "dir: expected a directory path");
		return (EVB_EINVAL);
	}
	if (o == NULL) {
		evb_wal_opts_default(&def);
		o = &def;
	}
	if ((rc = open_check_opts(o, d)) != EVB_OK) {
		return (rc);
	}
	if (!o->read_only && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = errno;
		evb_diag_set(d, "creating %s: %s", dir, strerror(rc));
		return (evb_err_errno(rc));
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		return (EVB_ENOMEM);
	}
	w->opts = *o;
	atomic_init(&w->open_iters, 0);
	atomic_init(&w->map_grows, 0);
	atomic_init(&w->sync_failures, 0);
	atomic_init(&w->dup_count, 0);
	atomic_init(&w->retain_removed, 0);
	atomic_init(&w->retain_failures, 0);
	atomic_init(&w->id_count, -1);
	// The seed of the dedup window's id hashes (wal_dedup.c). Without
	// getrandom (Linux < 3.17) the clock still makes it differ by run.
	if (getrandom(&w->id_seed, sizeof(w->id_seed), GRND_NONBLOCK) !=
	    (ssize_t) sizeof(w->id_seed)) {
		w->id_seed = (uint64_t) evb_clock_mono_ns() ^ (uintptr_t) w;
	}
	if ((rc = open_locks(w)) != EVB_OK ||
	    (rc = open_env(w, dir, d)) != EVB_OK ||
	    (rc = open_dbs(w, d)) != EVB_OK ||
	    (rc = wal_bg_start(w, d)) != EVB_OK) {
		goto fail;
	}
	*out = w;
	return (EVB_OK);

fail:
	evb_wal_close(w);
	return (rc);
}

void
evb_wal_close(evb_wal *w)
{
	int rc;

	if (w == NULL) {
		return;
	}
	evb_assert(atomic_load(&w->open_iters) == 0);
	wal_bg_stop(w);
	// An env whose mdb_env_open failed has no file to write or flush:
	// syncing it would fail (EBADF) and log a loss that never was.
	if (w->is_env_open && !w->opts.read_only &&
	    (rc = wal_notes_flush(w)) != EVB_OK) {
		evb_log(EVB_LOG_ERR, "EVB-WAL-CURSOR",
		    "storing the noted cursors at close failed: %s; they keep "
		    "their earlier values, so retention holds back more",
		    evb_strerror(rc));
	}
	if (w->env != NULL) {
		// In SYNC mode every commit is already on disk; in the others
		// this is the flush that makes a clean close durable.
		if (w->is_env_open && !w->opts.read_only &&
		    w->opts.durability != EVB_WAL_SYNC &&
		    (rc = mdb_env_sync(w->env, 1)) != MDB_SUCCESS) {
			evb_log(EVB_LOG_ERR, "EVB-WAL-SYNC",
			    "final flush of the WAL at close failed: %s; the "
			    "last batches may be lost on a power cut; check "
			    "the disk",
			    mdb_strerror(rc));
		}
		mdb_env_close(w->env);
	}
	wal_dedup_free(w->ids);
	if (w->has_locks) {
		(void) pthread_mutex_destroy(&w->note_mtx);
		(void) pthread_rwlock_destroy(&w->map_lock);
		(void) pthread_mutex_destroy(&w->wlock);
	}
	free(w);
}

int
wal_log_bound(evb_wal *w, MDB_txn *txn, MDB_cursor_op op, uint64_t *off)
{
	MDB_cursor *cur;
	MDB_val     k, v;
	int         rc;

	if ((rc = mdb_cursor_open(txn, w->dbi_log, &cur)) != MDB_SUCCESS) {
		return (rc);
	}
	rc = mdb_cursor_get(cur, &k, &v, op);
	if (rc == MDB_NOTFOUND) {
		*off = 0;
		rc   = MDB_SUCCESS;
	} else if (rc == MDB_SUCCESS) {
		if (k.mv_size == WAL_KEY_SIZE) {
			*off = evb_get_be64(k.mv_data);
		} else {
			rc = MDB_CORRUPTED;
		}
	}
	mdb_cursor_close(cur);
	return (rc);
}

int
evb_wal_last(evb_wal *w, uint64_t *last_off)
{
	MDB_txn *txn = NULL;
	uint64_t off;
	int      rc;

	if (w == NULL || last_off == NULL) {
		return (EVB_EINVAL);
	}
	if ((rc = wal_read_begin(w, &txn)) != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "last"));
	}
	rc = wal_log_bound(w, txn, MDB_LAST, &off);
	wal_read_end(w, &txn, false);
	if (rc != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "last"));
	}
	*last_off = off;
	return (EVB_OK);
}

/* stat_pages is the bytes of the pages one DB uses. */
static uint64_t
stat_pages(const MDB_stat *st)
{
	return (((uint64_t) st->ms_branch_pages + st->ms_leaf_pages +
	            st->ms_overflow_pages) *
	    st->ms_psize);
}

/* LMDB's meta pages (pages 0 and 1), in no DB's tree. */
#define WAL_META_PAGES 2
/* LMDB's free-page DB: lmdb.h has no name for it, and mdb_stat(1) opens
 * it as dbi 0 too. */
#define WAL_FREE_DBI 0

/*
 * stat_env_bytes sums the pages that txn's snapshot uses: the meta pages
 * and the trees of the free-page DB, the main DB (which names the others)
 * and the four named DBs. Every other page below the file's high-water
 * mark is listed in the free-page DB, to be reused (the identity LMDB's
 * own mdb_audit checks), so this is exact, and it is six mdb_stat calls,
 * each a copy of the DB's root record. A new named DB must be added here.
 */
static int
stat_env_bytes(evb_wal *w, MDB_txn *txn, uint64_t *bytes)
{
	MDB_dbi  dbis[] = { WAL_FREE_DBI, 0, w->dbi_log, w->dbi_cursors,
		 w->dbi_meta, w->dbi_ts };
	MDB_stat st;
	uint64_t sum = 0;
	int      rc;

	if ((rc = mdb_dbi_open(txn, NULL, 0, &dbis[1])) != MDB_SUCCESS) {
		return (rc);
	}
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		if ((rc = mdb_stat(txn, dbis[i], &st)) != MDB_SUCCESS) {
			return (rc);
		}
		sum += stat_pages(&st);
	}
	*bytes = sum + (uint64_t) WAL_META_PAGES * st.ms_psize;
	return (MDB_SUCCESS);
}

/* stat_read fills what one read txn can see; an LMDB code. */
static int
stat_read(evb_wal *w, MDB_txn *txn, evb_wal_stat *s)
{
	MDB_stat st;
	int      rc;

	if ((rc = wal_log_bound(w, txn, MDB_FIRST, &s->first_off)) != 0 ||
	    (rc = wal_log_bound(w, txn, MDB_LAST, &s->last_off)) != 0 ||
	    (rc = mdb_stat(txn, w->dbi_log, &st)) != 0 ||
	    (rc = stat_env_bytes(w, txn, &s->bytes_used)) != 0 ||
	    (rc = wal_dedup_count(w, txn, &s->id_count)) != 0) {
		return (rc);
	}
	s->record_count = st.ms_entries;
	s->log_bytes    = stat_pages(&st);
	return (MDB_SUCCESS);
}

int
evb_wal_stats(evb_wal *w, evb_wal_stat *out)
{
	evb_wal_stat     s;
	MDB_txn         *txn = NULL;
	MDB_envinfo      info;
	mdb_filehandle_t fd;
	struct stat      fst;
	int              rc;

	if (w == NULL || out == NULL) {
		return (EVB_EINVAL);
	}
	memset(&s, 0, sizeof(s));
	if ((rc = wal_read_begin(w, &txn)) != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "stats"));
	}
	if ((rc = stat_read(w, txn, &s)) == 0 &&
	    (rc = mdb_env_info(w->env, &info)) == 0) {
		rc = mdb_env_get_fd(w->env, &fd);
	}
	wal_read_end(w, &txn, false);
	if (rc != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "stats"));
	}
	if (fstat(fd, &fst) != 0) {
		return (evb_err_errno(errno));
	}
	s.file_bytes      = (uint64_t) fst.st_size;
	s.map_size        = info.me_mapsize;
	s.map_grows       = atomic_load(&w->map_grows);
	s.sync_failures   = atomic_load(&w->sync_failures);
	s.dup_count       = atomic_load(&w->dup_count);
	s.retain_removed  = atomic_load(&w->retain_removed);
	s.retain_failures = atomic_load(&w->retain_failures);
	*out              = s;
	return (EVB_OK);
}
