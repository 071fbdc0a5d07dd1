/*
 * compactor.c: the writer. It reads the WAL with an iterator from its
 * position + 1 and projects each batch of records in one write txn of the
 * tables environment (compactor_env.c), which also stores the new
 * position and counters (compactor_project.c says what a record becomes).
 *
 * Invariant: the tables hold exactly the projection of the WAL records
 * up to meta.position. Rows and position commit together, so a crash at
 * any point (kill -9 included) leaves tables that a later open resumes
 * from: nothing needs a clean close. A step that fails is aborted whole
 * and the iterator reopened at position + 1, so the records it read are
 * read again. When the map is full the step is aborted, the map doubled
 * (no other txn of this environment is open in this process: the writer
 * is its only user), and the step run again.
 *
 * The WAL cursor (opts.wal_cursor) is a second, lagging copy of the
 * position in the WAL's environment, for retention. It is stored after a
 * commit, at most every cursor_period_ms or cursor_records, because every
 * cursor store is a write txn of the WAL that waits for (and delays) the
 * collector's appends. It never runs ahead of what the tables would hold
 * after a machine crash: it is stored only with a position known to be
 * on disk (disk_pos, below).
 *
 * Threads: the controlling thread, or the compactor's own thread between
 * start and stop, runs the steps; evb_compactor_stats reads the committed
 * state under mtx from any thread. mtx guards meta (as committed), the
 * handle's counters and stop; it is never held during a step's txn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/collector.h"
#include "compactor/compactor_int.h"

/* Records per txn of the thread. Each commit rewrites the pages it
 * touches, and the per-user and per-symbol indexes touch a page per key
 * whatever the batch: 16384 writes a third of what 4096 does per event
 * (docs/benchmarks.md) for commits of about 0.1 s. */
#define COMP_BATCH_DEFAULT 16384
/* A thread that is behind doubles its step up to this many times
 * batch_records (see thread_main). */
#define COMP_BATCH_GROWTH 8
#define COMP_POLL_MS_DEFAULT 50
#define COMP_CURSOR_PERIOD_MS_DEFAULT 500
#define COMP_CURSOR_RECORDS_DEFAULT 100000
#define COMP_SYNC_PERIOD_MS_DEFAULT 1000
/* 64 GiB: address space, not disk; LMDB grows the file as it writes. */
#define COMP_MAP_SIZE_DEFAULT ((size_t) 64 << 30)
/* Log lines about bad records, failed steps and cursor stores: at most
 * COMP_LOG_BURST per COMP_LOG_WINDOW_MS each. */
#define COMP_LOG_WINDOW_MS 10000
#define COMP_LOG_BURST 5

struct evb_compactor {
	evb_wal           *wal;  /* Borrowed; outlives the handle. */
	comp_env           e;    /* The tables. */
	evb_compactor_opts opts; /* Copied at open; wal_cursor is NULL or
	                            cursor_name. */
	char          cursor_name[EVB_WAL_CURSOR_NAME_MAX + 1];
	evb_wal_iter *it;       /* At position + 1; NULL until needed or
	                           after a failed step. Stepping thread. */
	comp_batch *batch;      /* Scratch of a step. Stepping thread. */
	uint64_t    cur_off;    /* Last WAL cursor stored. Stepping thread. */
	uint64_t    cur_ms;     /* When it was stored (mono ms). Likewise. */
	bool        cur_noted;  /* cur_off was noted, not yet stored
	                           (opts.cursor_note). Likewise. */
	uint64_t      disk_pos; /* A position known to be on disk. Likewise. */
	uint64_t      flush_ms; /* Last flush (mono ms). Likewise. */
	evb_ratelimit bad_rl;   /* EVB-COMP-BAD. Stepping thread. */
	evb_ratelimit step_rl;  /* EVB-COMP-STEP. Compactor thread. */
	evb_ratelimit cur_rl;   /* EVB-COMP-CURSOR. Stepping thread. */

	pthread_mutex_t mtx;      /* Guards what follows. */
	pthread_cond_t  cv;       /* Signals stop. */
	bool            has_objs; /* mtx and cv initialised. */
	int             lock_fd;  /* The writer lock (open_lock), or -1. */
	bool            stop;     /* Asked to stop. */
	comp_meta       meta;     /* As committed. Written by the stepping
	                             thread under mtx; it reads it freely. */
	uint64_t txns;            /* Commits. */
	uint64_t step_failures;
	uint64_t cursor_failures;
	uint64_t map_grows;
	uint64_t holds; /* Steps put off by opts.hold. */

	pthread_t thr;     /* The thread, while has_thr. */
	bool      has_thr; /* Controlling thread only. */
};

/* Map doublings one step may ask for before it gives up (EVB_EFULL). */
#define COMP_MAP_FULL_RETRIES 8

void
evb_compactor_opts_default(evb_compactor_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->batch_records    = COMP_BATCH_DEFAULT;
	o->poll_ms          = COMP_POLL_MS_DEFAULT;
	o->wal_cursor       = EVB_COMPACTOR_CURSOR;
	o->cursor_period_ms = COMP_CURSOR_PERIOD_MS_DEFAULT;
	o->cursor_records   = COMP_CURSOR_RECORDS_DEFAULT;
	o->sync             = true;
	o->sync_period_ms   = COMP_SYNC_PERIOD_MS_DEFAULT;
	o->map_size         = COMP_MAP_SIZE_DEFAULT;
	o->rebuild          = false;
	o->nice             = 0;
	o->cursor_note      = false;
}

static void
comp_ratelimit_init(evb_ratelimit *rl)
{
	memset(rl, 0, sizeof(*rl));
	rl->window_ms = COMP_LOG_WINDOW_MS;
	rl->burst     = COMP_LOG_BURST;
}

/* comp_log_allowed applies rl and reports lines it held back. */
static bool
comp_log_allowed(evb_ratelimit *rl, const char *id)
{
	uint64_t supp = 0;

	if (!evb_ratelimit_allow(rl, evb_clock_mono_ms(), &supp)) {
		return (false);
	}
	if (supp > 0) {
		evb_log(EVB_LOG_WARNING, id, "%llu similar lines suppressed",
		    (unsigned long long) supp);
	}
	return (true);
}

/* ---- The WAL cursor --------------------------------------------------- */

/*
 * Durability. The WAL cursor must never be ahead of what the tables hold
 * after a machine crash, or retention could remove records that the
 * tables lost. With sync, a commit flushes its data and the previous
 * commit's meta page (MDB_NOMETASYNC), so the position before the last
 * commit is on disk; without, the position at the last flush is.
 */
static void
disk_flush(evb_compactor *c)
{
	int rc;

	if ((rc = mdb_env_sync(c->e.env, 1)) != 0) {
		if (comp_log_allowed(&c->cur_rl, "EVB-COMP-SYNC")) {
			evb_log(EVB_LOG_WARNING, "EVB-COMP-SYNC",
			    "flushing the tables failed (%s); the WAL cursor "
			    "stays behind, retried later",
			    mdb_strerror(rc));
		}
		return;
	}
	c->disk_pos = c->meta.position;
	c->flush_ms = evb_clock_mono_ms();
}

/* disk_tick flushes, without sync, when sync_period_ms has passed. */
static void
disk_tick(evb_compactor *c)
{
	if (!c->opts.sync && c->opts.sync_period_ms != 0 &&
	    c->disk_pos != c->meta.position &&
	    evb_clock_mono_ms() - c->flush_ms >= c->opts.sync_period_ms) {
		disk_flush(c);
	}
}

/* disk_committed notes a commit that moved the position from prev. */
static void
disk_committed(evb_compactor *c, uint64_t prev)
{
	if (c->opts.sync) {
		// This commit flushed its rows and the previous commit's meta
		// page, not its own: the position before it is on disk.
		c->disk_pos = prev;
		return;
	}
	disk_tick(c);
}

static void
cursor_store(evb_compactor *c, bool force)
{
	bool     note;
	uint64_t pos;
	uint64_t now = evb_clock_mono_ms();
	int      rv;

	if (force && c->disk_pos != c->meta.position) {
		disk_flush(c);
	}
	pos = c->disk_pos;
	// A forced store also stores a value that was only noted: the
	// appends that would carry it may not come.
	if (c->opts.wal_cursor == NULL ||
	    (pos == c->cur_off && !(force && c->cur_noted))) {
		return;
	}
	if (!force && now - c->cur_ms < c->opts.cursor_period_ms &&
	    pos - c->cur_off < c->opts.cursor_records) {
		return;
	}
	c->cur_ms = now;
	note      = !force && c->opts.cursor_note;
	rv        = note ? evb_wal_cursor_note(c->wal, c->cursor_name, pos)
	                 : evb_wal_cursor_set(c->wal, c->cursor_name, pos);
	if (rv != 0) {
		evb_assert(pthread_mutex_lock(&c->mtx) == 0);
		c->cursor_failures++;
		evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
		if (comp_log_allowed(&c->cur_rl, "EVB-COMP-CURSOR")) {
			evb_log(EVB_LOG_WARNING, "EVB-COMP-CURSOR",
			    "storing WAL cursor %s at %llu failed (%s); "
			    "retention holds back at its old value, retried "
			    "after the next step",
			    c->cursor_name, (unsigned long long) pos,
			    evb_strerror(rv));
		}
		return;
	}
	c->cur_off   = pos;
	c->cur_noted = note;
}

/* ---- Steps ------------------------------------------------------------ */

/* step_note_off advances the batch's position to off, counting offsets
 * that retention removed before they were projected. */
static void
step_note_off(comp_batch *b, uint64_t off)
{
	if (off > b->meta.position + 1) {
		b->meta.cnt[COMP_CNT_MISSED] += off - b->meta.position - 1;
	}
	b->meta.position = off;
}

static void
step_log_bad(evb_compactor *c, uint64_t off, const char *why)
{
	if (comp_log_allowed(&c->bad_rl, "EVB-COMP-BAD")) {
		evb_log(EVB_LOG_WARNING, "EVB-COMP-BAD",
		    "WAL offset %llu not projected: %s; counted as bad "
		    "(run evbus wal verify)",
		    (unsigned long long) off, why);
	}
}

/* How often, in records, a step of the thread asks opts.hold. */
#define COMP_HOLD_EVERY 1024

/*
 * step_records reads up to max records into the batch's txn, fewer when
 * may_hold and opts.hold asks for the CPU back: a step of the thread
 * that is behind can hold 8 x 16384 records, and taking a second or more
 * to end would keep it from the collector for as long.
 */
static int
step_records(
    evb_compactor *c, size_t max, bool may_hold, size_t *n, evb_diag *d)
{
	comp_batch   *b = c->batch;
	evb_wal_entry ent;
	evb_diag      bd;
	bool          bad;
	int           rv;

	for (*n = 0; *n < max; (*n)++) {
		if (may_hold && c->opts.hold != NULL && *n > 0 &&
		    *n % COMP_HOLD_EVERY == 0 &&
		    c->opts.hold(c->opts.hold_arg)) {
			break;
		}
		rv = evb_wal_iter_next(c->it, &ent);
		if (rv == EVB_EOF) {
			break;
		}
		if (rv == EVB_ECORRUPT) {
			step_note_off(b, ent.off);
			b->meta.cnt[COMP_CNT_BAD]++;
			step_log_bad(c, ent.off, "the record fails its check");
			continue;
		}
		if (rv != EVB_OK) {
			evb_diag_set(
			    d, "reading the WAL: %s", evb_strerror(rv));
			return (rv);
		}
		step_note_off(b, ent.off);
		if (ent.type == EVB_COLLECTOR_GAP_TYPE) {
			b->meta.cnt[COMP_CNT_GAPS]++;
			continue;
		}
		bd.msg[0] = '\0';
		if ((rv = comp_project_event(b, &ent, &bad, &bd)) != 0) {
			evb_diag_set(d, "offset %llu: %s",
			    (unsigned long long) ent.off, bd.msg);
			return (rv);
		}
		if (bad) {
			step_log_bad(c, ent.off, bd.msg);
		}
	}
	return (EVB_OK);
}

/* step_once runs one step in one txn. */
static int
step_once(
    evb_compactor *c, size_t max, bool may_hold, size_t *done, evb_diag *d)
{
	comp_batch *b = c->batch;
	uint64_t    prev;
	int         rc;
	int         rv;

	memset(b, 0, sizeof(*b));
	if (c->it == NULL &&
	    (rv = evb_wal_iter_open(c->wal, c->meta.position + 1, &c->it)) !=
	        0) {
		evb_diag_set(d, "opening a WAL iterator: %s", evb_strerror(rv));
		return (rv);
	}
	b->e    = &c->e;
	b->meta = c->meta;
	if ((rc = mdb_txn_begin(c->e.env, NULL, 0, &b->txn)) != 0) {
		return (comp_err(rc, d, "beginning a tables txn"));
	}
	if ((rv = step_records(c, max, may_hold, done, d)) != 0) {
		goto txn_abort;
	}
	if (*done == 0) {
		mdb_txn_abort(b->txn);
		return (EVB_OK);
	}
	if ((rv = comp_minutes_flush(b, d)) != 0 ||
	    (rv = comp_meta_write(&c->e, b->txn, &b->meta, d)) != 0) {
		goto txn_abort;
	}
	if ((rc = mdb_txn_commit(b->txn)) != 0) {
		// The commit writes the pages (ENOSPC: the disk is full) and
		// may still allocate some for the free list (MDB_MAP_FULL).
		b->map_full = rc == MDB_MAP_FULL;
		rv          = comp_err(rc, d, "committing a tables txn");
		goto iter_reset; // The txn is freed, committed or not.
	}
	prev = c->meta.position;
	evb_assert(pthread_mutex_lock(&c->mtx) == 0);
	c->meta = b->meta;
	c->txns++;
	evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
	disk_committed(c, prev);
	return (EVB_OK);

txn_abort:
	// Before the commit nothing is written to the file, so EVB_EFULL
	// there is LMDB's MDB_MAP_FULL: a put found no page left in the map.
	// (Only a txn with more dirty pages than LMDB keeps in memory
	// writes some early, and could meet a full disk here; growing the
	// map then fails again, COMP_MAP_FULL_RETRIES times at most.)
	b->map_full = rv == EVB_EFULL;
	mdb_txn_abort(b->txn);
iter_reset:
	// The iterator has read past the position; read those again.
	evb_wal_iter_close(c->it);
	c->it = NULL;
	return (rv);
}

/* step_grow doubles the map after MDB_MAP_FULL. */
static int
step_grow(evb_compactor *c, evb_diag *d)
{
	MDB_envinfo info;
	int         rc;

	if ((rc = mdb_env_info(c->e.env, &info)) != 0 ||
	    (rc = mdb_env_set_mapsize(c->e.env, info.me_mapsize * 2)) != 0) {
		return (comp_err(rc, d, "growing the tables' map"));
	}
	evb_assert(pthread_mutex_lock(&c->mtx) == 0);
	c->map_grows++;
	evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
	evb_log(EVB_LOG_NOTICE, "EVB-COMP-GROW",
	    "tables map grown to %zu bytes", info.me_mapsize * 2);
	return (EVB_OK);
}

/* step_run runs one step, growing the map if it fills (may_hold: see
 * step_records). */
static int
step_run(evb_compactor *c, size_t max, bool may_hold, size_t *done, evb_diag *d)
{
	int rv;

	for (int i = 0;; i++) {
		rv = step_once(c, max, may_hold, done, d);
		if (rv != EVB_EFULL || !c->batch->map_full ||
		    i == COMP_MAP_FULL_RETRIES) {
			break;
		}
		if ((rv = step_grow(c, d)) != 0) {
			break;
		}
	}
	if (rv == EVB_OK) {
		cursor_store(c, false);
	}
	return (rv);
}

int
evb_compactor_step(
    evb_compactor *c, size_t max_records, size_t *done, evb_diag *diag)
{
	size_t n = 0;
	int    rv;

	if (max_records == 0) {
		evb_diag_set(diag, "max_records: expected >= 1");
		return (EVB_EINVAL);
	}
	if (c->has_thr) {
		evb_diag_set(
		    diag, "the compactor's thread runs: stop it first");
		return (EVB_EBUSY);
	}
	if ((rv = step_run(c, max_records, false, &n, diag)) != 0) {
		return (rv);
	}
	if (done != NULL) {
		*done = n;
	}
	return (EVB_OK);
}

/* ---- The thread ------------------------------------------------------- */

static void
thread_wait(evb_compactor *c, uint32_t ms)
{
	struct timespec ts;

	evb_assert(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	evb_assert(pthread_mutex_lock(&c->mtx) == 0);
	if (!c->stop) {
		(void) pthread_cond_timedwait(&c->cv, &c->mtx, &ts);
	}
	evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
}

static bool
thread_stopping(evb_compactor *c)
{
	bool stop;

	evb_assert(pthread_mutex_lock(&c->mtx) == 0);
	stop = c->stop;
	evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
	return (stop);
}

static void *
thread_main(void *arg)
{
	evb_compactor *c    = arg;
	size_t         step = c->opts.batch_records;
	int            rc;

	evb_thread_name("evb:compactor");
	if (c->opts.nice > 0 && (rc = evb_thread_nice(c->opts.nice)) != 0) {
		evb_log(EVB_LOG_WARNING, "EVB-COMP-NICE",
		    "cannot lower the compactor thread's priority by %d (%s); "
		    "it runs at the process's priority",
		    c->opts.nice, evb_strerror(rc));
	}
	while (!thread_stopping(c)) {
		evb_diag d    = { "" };
		size_t   done = 0;
		int      rv;

		if (c->opts.hold != NULL && c->opts.hold(c->opts.hold_arg)) {
			evb_assert(pthread_mutex_lock(&c->mtx) == 0);
			c->holds++;
			evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
			thread_wait(c, EVB_COMPACTOR_HOLD_MS);
			continue;
		}
		rv = step_run(c, step, true, &done, &d);

		if (rv != EVB_OK) {
			evb_assert(pthread_mutex_lock(&c->mtx) == 0);
			c->step_failures++;
			evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
			if (comp_log_allowed(&c->step_rl, "EVB-COMP-STEP")) {
				evb_log(EVB_LOG_ERR, "EVB-COMP-STEP",
				    "projecting after WAL offset %llu failed "
				    "(%s: %s); retrying, nothing is skipped",
				    (unsigned long long) c->meta.position,
				    evb_strerror(rv), d.msg);
			}
		}
		// A full step means the log is further ahead: go on at once,
		// with a step twice as large (up to COMP_BATCH_GROWTH times
		// the option), since each commit rewrites every index page it
		// touches whatever it holds, so a larger step writes fewer
		// bytes per event and a compactor that fell behind catches
		// up faster. After a partial step (caught up) wait for more
		// records, so that a steady stream is projected in steps of
		// poll_ms worth of records rather than a commit per handful.
		if (rv == EVB_OK && done == step) {
			if (step < (size_t) c->opts.batch_records *
			        COMP_BATCH_GROWTH) {
				step *= 2;
			}
			continue;
		}
		step = c->opts.batch_records;
		disk_tick(c);
		// Idle (nothing new in the log): store the cursor now, with a
		// flush if the last commit is not yet on disk, rather than at
		// the next commit, which may be long in coming; until then
		// retention would hold back records already projected. When
		// nothing changed since the last store this does nothing.
		cursor_store(c, rv == EVB_OK && done == 0);
		thread_wait(c, c->opts.poll_ms);
	}
	return (NULL);
}

int
evb_compactor_start(evb_compactor *c)
{
	int rc;

	if (c->has_thr) {
		return (EVB_EINVAL);
	}
	c->stop = false;
	if ((rc = pthread_create(&c->thr, NULL, thread_main, c)) != 0) {
		return (evb_err_errno(rc));
	}
	c->has_thr = true;
	return (EVB_OK);
}

void
evb_compactor_stop(evb_compactor *c)
{
	if (!c->has_thr) {
		return;
	}
	evb_assert(pthread_mutex_lock(&c->mtx) == 0);
	c->stop = true;
	evb_assert(pthread_cond_signal(&c->cv) == 0);
	evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
	evb_assert(pthread_join(c->thr, NULL) == 0);
	c->has_thr = false;
	cursor_store(c, true);
}

/* ---- Open, close, rebuild --------------------------------------------- */

static int
open_check(const evb_compactor_opts *o, evb_diag *d)
{
	if (o->batch_records == 0) {
		evb_diag_set(d, "batch_records: expected > 0");
		return (EVB_EINVAL);
	}
	if (o->poll_ms == 0) {
		evb_diag_set(d, "poll_ms: expected > 0");
		return (EVB_EINVAL);
	}
	if (o->map_size == 0) {
		evb_diag_set(d, "map_size: expected > 0");
		return (EVB_EINVAL);
	}
	if (o->nice < 0 || o->nice > 19) {
		evb_diag_set(d, "nice: expected 0..19, got %d", o->nice);
		return (EVB_EINVAL);
	}
	if (o->wal_cursor != NULL &&
	    (o->wal_cursor[0] == '\0' ||
	        strlen(o->wal_cursor) > EVB_WAL_CURSOR_NAME_MAX)) {
		evb_diag_set(d, "wal_cursor: expected 1..%d bytes",
		    EVB_WAL_CURSOR_NAME_MAX);
		return (EVB_EINVAL);
	}
	return (EVB_OK);
}

static int
open_objs(evb_compactor *c)
{
	pthread_condattr_t ca;
	int                rc;

	if ((rc = pthread_mutex_init(&c->mtx, NULL)) != 0) {
		return (evb_err_errno(rc));
	}
	if ((rc = pthread_condattr_init(&ca)) != 0) {
		(void) pthread_mutex_destroy(&c->mtx);
		return (evb_err_errno(rc));
	}
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0) {
		rc = pthread_cond_init(&c->cv, &ca);
	}
	(void) pthread_condattr_destroy(&ca);
	if (rc != 0) {
		(void) pthread_mutex_destroy(&c->mtx);
		return (evb_err_errno(rc));
	}
	c->has_objs = true;
	return (EVB_OK);
}

/* open_state reads the committed state and checks it against the log. */
static int
open_state(evb_compactor *c, evb_diag *d)
{
	MDB_txn *txn;
	uint64_t last;
	int      rc;
	int      rv;

	if ((rc = mdb_txn_begin(c->e.env, NULL, MDB_RDONLY, &txn)) != 0) {
		return (comp_err(rc, d, "beginning a tables read txn"));
	}
	rv = comp_meta_read(&c->e, txn, &c->meta, d);
	mdb_txn_abort(txn);
	if (rv != 0) {
		return (rv);
	}
	// The last commit may not be on disk yet (its process died before
	// the next commit or a flush, or ran without sync). open_cursor
	// stores the WAL cursor at this position at once, so flush first:
	// one fdatasync per open.
	if ((rc = mdb_env_sync(c->e.env, 1)) != 0) {
		return (comp_err(rc, d, "flushing the tables"));
	}
	c->disk_pos = c->meta.position;
	c->flush_ms = evb_clock_mono_ms();
	if ((rv = evb_wal_last(c->wal, &last)) != 0) {
		evb_diag_set(d, "reading the WAL's end: %s", evb_strerror(rv));
		return (rv);
	}
	if (c->meta.position > last) {
		evb_diag_set(d,
		    "the tables have projected up to WAL offset %llu but the "
		    "log ends at %llu: they belong to another log; rebuild "
		    "them (evbus compact --rebuild)",
		    (unsigned long long) c->meta.position,
		    (unsigned long long) last);
		return (EVB_ECORRUPT);
	}
	return (EVB_OK);
}

/* open_cursor registers the WAL cursor at the position right away. */
static int
open_cursor(evb_compactor *c, evb_diag *d)
{
	int rv;

	if (c->opts.wal_cursor == NULL) {
		return (EVB_OK);
	}
	rv = evb_wal_cursor_set(c->wal, c->cursor_name, c->meta.position);
	if (rv == EVB_EINVAL) {
		evb_diag_set(d,
		    "wal_cursor: cannot store cursor %s (a read-only WAL "
		    "handle?); open the WAL read-write or set wal_cursor "
		    "to NULL",
		    c->cursor_name);
		return (rv);
	}
	if (rv != 0) {
		evb_diag_set(d, "storing WAL cursor %s: %s", c->cursor_name,
		    evb_strerror(rv));
		return (rv);
	}
	c->cur_off = c->meta.position;
	c->cur_ms  = evb_clock_mono_ms();
	return (EVB_OK);
}

static char *
open_path(const char *data_dir)
{
	size_t n = strlen(data_dir) + sizeof(EVB_COMPACTOR_DIR) + 1;
	char  *p = malloc(n);

	if (p != NULL) {
		(void) snprintf(p, n, "%s/%s", data_dir, EVB_COMPACTOR_DIR);
	}
	return (p);
}

/*
 * open_lock takes the tables' writer lock (evb_dir_lock on
 * DIR/EVB_COMPACTOR_DIR), held until close. Why: the compactor keeps its
 * position in memory between commits, so a second writer on the same
 * tables (a standalone `evbus compactor` beside an `evbus run` that runs
 * its own, or `evbus compact` beside either) would project the same
 * records again and double rows and counts.
 */
static int
open_lock(evb_compactor *c, const char *path, evb_diag *d)
{
	int rc = evb_dir_lock(path, "tables", &c->lock_fd, d);

	if (rc == EVB_EBUSY) {
		evb_diag_set(d,
		    "another compactor writes the tables in %s (evbus run, "
		    "evbus compactor or evbus compact): stop it first, or "
		    "run evbus run with --no-compactor",
		    path);
	}
	return (rc);
}

int
evb_compactor_open(evb_compactor **out, evb_wal *wal, const char *data_dir,
    const evb_compactor_opts *o, evb_diag *diag)
{
	evb_compactor_opts def;
	evb_compactor     *c;
	char              *path = NULL;
	int                rv;

	if (o == NULL) {
		evb_compactor_opts_default(&def);
		o = &def;
	}
	if (wal == NULL || data_dir == NULL) {
		evb_diag_set(diag, "%s: expected a value, got NULL",
		    wal == NULL ? "wal" : "data_dir");
		return (EVB_EINVAL);
	}
	if ((rv = open_check(o, diag)) != 0) {
		return (rv);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->batch = calloc(1, sizeof(*c->batch))) == NULL ||
	    (path = open_path(data_dir)) == NULL) {
		rv = EVB_ENOMEM;
		goto fail;
	}
	c->lock_fd = -1;
	c->wal     = wal;
	c->opts    = *o;
	if (o->wal_cursor != NULL) {
		(void) snprintf(c->cursor_name, sizeof(c->cursor_name), "%s",
		    o->wal_cursor);
		c->opts.wal_cursor = c->cursor_name;
	}
	comp_ratelimit_init(&c->bad_rl);
	comp_ratelimit_init(&c->step_rl);
	comp_ratelimit_init(&c->cur_rl);
	if ((rv = open_objs(c)) != 0 || (rv = open_lock(c, path, diag)) != 0 ||
	    (rv = comp_env_open(&c->e, path, false, o->map_size, o->sync,
	         o->rebuild, diag)) != 0 ||
	    (rv = open_state(c, diag)) != 0 ||
	    (rv = open_cursor(c, diag)) != 0) {
		goto fail;
	}
	free(path);
	*out = c;
	return (EVB_OK);

fail:
	free(path);
	if (c != NULL) {
		// Close must not store the cursor of a handle that failed to
		// open: the position read may be another log's (open_state),
		// past this log's end, and retention would take it as done.
		c->opts.wal_cursor = NULL;
	}
	evb_compactor_close(c);
	return (rv);
}

void
evb_compactor_close(evb_compactor *c)
{
	if (c == NULL) {
		return;
	}
	evb_compactor_stop(c);
	if (c->e.env != NULL) {
		// Flushes the tables, then stores the cursor. A failed flush
		// leaves what a crash would: tables the next open resumes.
		cursor_store(c, true);
	}
	evb_wal_iter_close(c->it);
	comp_env_close(&c->e);
	if (c->has_objs) {
		(void) pthread_cond_destroy(&c->cv);
		(void) pthread_mutex_destroy(&c->mtx);
	}
	evb_dir_unlock(c->lock_fd);
	free(c->batch);
	free(c);
}

/* rebuild_reset empties the tables in one txn. */
static int
rebuild_reset(evb_compactor *c, evb_diag *d)
{
	MDB_txn *txn;
	int      rc;
	int      rv;

	if ((rc = mdb_txn_begin(c->e.env, NULL, 0, &txn)) != 0) {
		return (comp_err(rc, d, "beginning the rebuild txn"));
	}
	if ((rv = comp_env_reset(&c->e, txn, d)) != 0) {
		mdb_txn_abort(txn);
		return (rv);
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		return (comp_err(rc, d, "committing the rebuild txn"));
	}
	evb_wal_iter_close(c->it);
	c->it = NULL;
	evb_assert(pthread_mutex_lock(&c->mtx) == 0);
	memset(&c->meta, 0, sizeof(c->meta));
	evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
	// Until the reset is on disk the tables may hold either state.
	c->disk_pos = 0;
	disk_flush(c);
	return (EVB_OK);
}

int
evb_compactor_rebuild(evb_compactor *c, evb_diag *diag)
{
	uint64_t last;
	size_t   done;
	int      rv;

	if (c->has_thr) {
		evb_diag_set(
		    diag, "the compactor's thread runs: stop it first");
		return (EVB_EBUSY);
	}
	if ((rv = evb_wal_last(c->wal, &last)) != 0) {
		evb_diag_set(
		    diag, "reading the WAL's end: %s", evb_strerror(rv));
		return (rv);
	}
	if ((rv = rebuild_reset(c, diag)) != 0) {
		return (rv);
	}
	// Hold retention back from the whole log while it is read again.
	c->cur_off = UINT64_MAX;
	cursor_store(c, true);
	do {
		rv = step_run(c, c->opts.batch_records, false, &done, diag);
	} while (rv == EVB_OK && done > 0 && c->meta.position < last);
	if (rv == EVB_OK) {
		cursor_store(c, true);
	}
	return (rv);
}

int
evb_compactor_stats(evb_compactor *c, evb_compactor_stat *out)
{
	evb_compactor_stat st;
	uint64_t           last;
	int                rv;

	memset(&st, 0, sizeof(st));
	evb_assert(pthread_mutex_lock(&c->mtx) == 0);
	st.position = c->meta.position;
	st.events   = c->meta.cnt[COMP_CNT_EVENTS];
	st.gaps     = c->meta.cnt[COMP_CNT_GAPS];
	st.bad      = c->meta.cnt[COMP_CNT_BAD];
	st.missed   = c->meta.cnt[COMP_CNT_MISSED];
	for (int t = 0; t < EVB_COMPACTOR_MAX_TYPES; t++) {
		st.per_type[t] = c->meta.cnt[COMP_CNT_TYPE0 + t];
	}
	st.txns            = c->txns;
	st.step_failures   = c->step_failures;
	st.cursor_failures = c->cursor_failures;
	st.map_grows       = c->map_grows;
	st.holds           = c->holds;
	evb_assert(pthread_mutex_unlock(&c->mtx) == 0);
	if ((rv = evb_wal_last(c->wal, &last)) != 0) {
		return (rv);
	}
	st.wal_last_off = last;
	st.lag          = last > st.position ? last - st.position : 0;
	*out            = st;
	return (EVB_OK);
}
