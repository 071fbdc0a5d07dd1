/*
 * wal_bg.c: the handle's background threads. Both are tickers, a thread
 * that runs one task every period until the handle closes:
 *   - the PERIODIC flush (durability EVB_WAL_PERIODIC): mdb_env_sync;
 *   - retention (retain_period_ms > 0): evb_wal_retain.
 * wal_bg_start starts them at open and wal_bg_stop joins them at close,
 * so no thread outlives its handle. A task's failure has no caller to
 * return to, so it is counted in the stats and logged here, rate-limited.
 *
 * Each ticker's mutex guards only its stop flag, and a task runs without
 * it, so close waits for at most one run of each task.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "wal/wal_int.h"

#define BG_LOG_WINDOW_MS 60000 /* Failure lines: burst per minute. */
#define BG_LOG_BURST 5

static void
ticker_deadline(struct timespec *ts, uint32_t period_ms)
{
	evb_assert(clock_gettime(CLOCK_MONOTONIC, ts) == 0);
	ts->tv_sec += period_ms / 1000;
	ts->tv_nsec += (long) (period_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *
ticker_main(void *arg)
{
	wal_ticker     *t = arg;
	struct timespec deadline;
	int             rc;

	evb_thread_name("evb:wal-bg");
	evb_assert(pthread_mutex_lock(&t->mtx) == 0);
	ticker_deadline(&deadline, t->period_ms);
	while (!t->stop) {
		rc = pthread_cond_timedwait(&t->cv, &t->mtx, &deadline);
		if (rc == ETIMEDOUT && !t->stop) {
			// Run without the mutex so close is never held up by
			// more than one run of the task.
			evb_assert(pthread_mutex_unlock(&t->mtx) == 0);
			t->fn(t->w);
			evb_assert(pthread_mutex_lock(&t->mtx) == 0);
			ticker_deadline(&deadline, t->period_ms);
		}
	}
	evb_assert(pthread_mutex_unlock(&t->mtx) == 0);
	return (NULL);
}

static int
ticker_start(wal_ticker *t, evb_wal *w, uint32_t period_ms,
    void (*fn)(evb_wal *), evb_diag *d)
{
	pthread_condattr_t ca;
	int                rc;

	t->w         = w;
	t->fn        = fn;
	t->period_ms = period_ms;
	t->stop      = false;
	if ((rc = pthread_condattr_init(&ca)) != 0) {
		return (evb_err_errno(rc));
	}
	// The deadline is monotonic so a clock step cannot stall the task.
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0 && (rc = pthread_cond_init(&t->cv, &ca)) == 0) {
		if ((rc = pthread_mutex_init(&t->mtx, NULL)) != 0) {
			(void) pthread_cond_destroy(&t->cv);
		}
	}
	(void) pthread_condattr_destroy(&ca);
	if (rc != 0) {
		return (evb_err_errno(rc));
	}
	t->has_objs = true;
	if ((rc = pthread_create(&t->thr, NULL, ticker_main, t)) != 0) {
		evb_diag_set(d, "starting a WAL thread: %s", strerror(rc));
		return (evb_err_errno(rc));
	}
	t->has_thr = true;
	return (EVB_OK);
}

static void
ticker_stop(wal_ticker *t)
{
	if (t->has_thr) {
		evb_assert(pthread_mutex_lock(&t->mtx) == 0);
		t->stop = true;
		evb_assert(pthread_cond_signal(&t->cv) == 0);
		evb_assert(pthread_mutex_unlock(&t->mtx) == 0);
		evb_assert(pthread_join(t->thr, NULL) == 0);
		t->has_thr = false;
	}
	if (t->has_objs) {
		(void) pthread_cond_destroy(&t->cv);
		(void) pthread_mutex_destroy(&t->mtx);
		t->has_objs = false;
	}
}

/* bg_sync flushes the log (the PERIODIC task). */
static void
bg_sync(evb_wal *w)
{
	uint64_t suppressed = 0;
	int      rc;

	if ((rc = mdb_env_sync(w->env, 1)) == MDB_SUCCESS) {
		return;
	}
	atomic_fetch_add(&w->sync_failures, 1);
	if (evb_ratelimit_allow(
	        &w->sync_rl, evb_clock_mono_ms(), &suppressed)) {
		evb_log(EVB_LOG_ERR, "EVB-WAL-SYNC",
		    "periodic flush of the WAL failed: %s; batches since the "
		    "last good flush are not yet durable; check the disk "
		    "(%llu similar lines suppressed)",
		    mdb_strerror(rc), (unsigned long long) suppressed);
	}
}

/* bg_retain runs retention (the retain_period_ms task). */
static void
bg_retain(evb_wal *w)
{
	evb_diag d          = { { 0 } };
	uint64_t suppressed = 0;
	int      rc;

	rc = evb_wal_retain(w, w->opts.retain_txn_records, NULL, &d);
	if (rc == EVB_OK) {
		return;
	}
	atomic_fetch_add(&w->retain_failures, 1);
	if (evb_ratelimit_allow(
	        &w->retain_rl, evb_clock_mono_ms(), &suppressed)) {
		evb_log(EVB_LOG_ERR, "EVB-WAL-RETAIN",
		    "WAL retention failed: %s: %s; the log keeps growing "
		    "until it succeeds; run evbus wal verify and check the "
		    "disk (%llu similar lines suppressed)",
		    evb_strerror(rc), d.msg, (unsigned long long) suppressed);
	}
}

int
wal_bg_start(evb_wal *w, evb_diag *d)
{
	int rc;

	if (w->opts.read_only) {
		return (EVB_OK);
	}
	if (w->opts.durability == EVB_WAL_PERIODIC) {
		w->sync_rl.window_ms = BG_LOG_WINDOW_MS;
		w->sync_rl.burst     = BG_LOG_BURST;
		rc                   = ticker_start(
		                      &w->sync_tk, w, w->opts.sync_period_ms, bg_sync, d);
		if (rc != EVB_OK) {
			return (rc);
		}
	}
	if (w->opts.retain_period_ms > 0) {
		w->retain_rl.window_ms = BG_LOG_WINDOW_MS;
		w->retain_rl.burst     = BG_LOG_BURST;
		rc                     = ticker_start(
		                        &w->retain_tk, w, w->opts.retain_period_ms, bg_retain, d);
		if (rc != EVB_OK) {
			return (rc);
		}
	}
	return (EVB_OK);
}

void
wal_bg_stop(evb_wal *w)
{
	// Retention first: its task writes, and the flush after it is
	// what makes its last transaction durable at close.
	ticker_stop(&w->retain_tk);
	ticker_stop(&w->sync_tk);
}
