/*
 * wal_bench: WAL append throughput and commit latency for batch sizes 1,
 * 64, 1024 and 8192 in each durability mode, each next to raw LMDB doing
 * the least the same job needs; replay speed; and bytes on disk per
 * event. Payloads are the 302 bytes of proto_bench's realistic event.
 *
 *   wal_bench [N] [secs] [MODE/BATCH|steady|all] [ROUNDS]
 *
 * Defaults: 1000000 events, 2 s per case, every case, one round.
 * MODE/BATCH (e.g. none/8192) runs only the three append lines of that
 * mode and batch, for a profiler to look at one case. With ROUNDS > 1
 * (at most 64) each case's three append lines run ROUNDS times, in
 * turn forwards and backwards (so neither side always follows the
 * other), and the case ends with two ratio lines, for the WAL with ids
 * and without, over the rounds of the ratio of each round:
 *
 *   ratio_<append|noid>_<mode>_b<batch> rounds
 *       p50 <median> <least> <greatest> rate <median> <least> <greatest>
 *
 * p50 as the WAL's over raw LMDB's, rate as raw LMDB's over the WAL's:
 * 1.00 is as fast, the target of issue #3 is at most 1.5. On a shared
 * VM one case swings from run to run as much as the two sides differ
 * (docs/benchmarks.md), so a median over alternating rounds is the
 * figure to compare, with its spread.
 *
 * Each append case stops at N events or secs, whichever comes first, in
 * a fresh temporary directory (under $TMPDIR or /tmp) that it removes;
 * it starts after a sync(2), so no earlier case's writeback runs in it.
 * Lines, in the fixed format "name n secs rate p50_us p99_us":
 *
 *   lmdb_append_<mode>_b<batch>  the baseline: raw LMDB, one DB, 8-byte
 *                                big-endian keys, MDB_APPEND, the 302
 *                                bytes copied into an MDB_RESERVE'd value,
 *                                the WAL's env flags for the mode, and
 *                                in periodic mode the mode's flush as
 *                                the WAL does it: a thread calling
 *                                mdb_env_sync every sync_period_ms (the
 *                                WAL's default, 100 ms)
 *   wal_append_<mode>_b<batch>   evb_wal_append with default options:
 *                                each record has an id (checked against
 *                                the duplicate window; it is payload
 *                                bytes, where the envelope holds it, so
 *                                the record stores its place) and a ts
 *                                (time index)
 *   wal_noid_<mode>_b<batch>     the same without ids: the log and the
 *                                time index only, so the difference to
 *                                the line above is the duplicate window
 *   wal_replay                   an iterator over the none_b8192 log,
 *                                warm in the page cache; latencies per
 *                                chunk of BENCH_REPLAY_CHUNK records
 *   wal_disk_b1024               exactly N events appended in batches of
 *                                1024 (no time limit); the rate column is
 *                                the size of data.mdb divided by N, in
 *                                bytes per event, indexes included
 *   wal_dedup_rebuild            that log reopened, and its first append
 *                                of one event timed: it builds the
 *                                duplicate window's table from the last N
 *                                records (the default window is 1,000,000
 *                                records); n is the ids in the window,
 *                                rate ids per second, and the latencies
 *                                that one append
 *   wal_steady_dedup_b8192,      the duplicate window at its steady state
 *   wal_steady_nodedup_b8192,    (bench_steady): two logs in none mode
 *   dedup_steady_ns              filled with the default window's count
 *                                of records each (untimed), then the same
 *                                batches to each in turn, with the window
 *                                and without; the last line is "pairs p25
 *                                p50 p75" of the per-batch difference in
 *                                ns per id. MODE/BATCH "steady" runs only
 *                                these, once (ROUNDS does not apply).
 *
 * Append latencies are per commit (one batch), and secs is the sum of
 * them, so making the next batch's ids (the producers' work) is not
 * counted on either side. Both sides map 1 GiB up front, so map growth
 * is not part of the comparison. Each case starts with one batch that
 * is not timed, on both sides: a fresh handle's first append with ids
 * builds the duplicate window's table and faults in its 40 MiB, a
 * one-time cost that wal_dedup_rebuild reports on its own. Each record
 * of a batch has its own payload (both sides copy the same 8192 of them),
 * with its id at byte BENCH_ID_AT. Ids are what producers send: ULIDs (10
 * characters of millisecond time, 16 random) from BENCH_PRODUCERS producers
 * interleaved at random, each producer's ids increasing within a millisecond, a
 * millisecond every BENCH_EVENTS_PER_MS events; ts is the event's millisecond.
 */
// sync(2) is not POSIX's base; glibc shows it with this.
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "bench/bench.h"
#include "wal/wal.h"

#define BENCH_PAYLOAD 302          /* Bytes, as the proto_bench event. */
#define BENCH_MAX_BATCH 8192       /* Largest batch measured. */
#define BENCH_REPLAY_CHUNK 1024    /* Records per timed replay chunk. */
#define BENCH_MAP_SIZE (1u << 30)  /* 1 GiB, for both sides. */
#define BENCH_ID_LEN 26            /* A ULID. */
#define BENCH_ID_AT 27             /* Its place in the envelope. */
#define BENCH_PRODUCERS 4          /* Interleaved id sources. */
#define BENCH_EVENTS_PER_MS 1000   /* Arrival rate: 1 M events/s. */
#define BENCH_DISK_BATCH 1024      /* Batch of the wal_disk case. */
#define BENCH_T0_MS 1764035435123u /* The first event's millisecond. */
#define BENCH_ROUNDS_MAX 64        /* Largest ROUNDS. */

static const size_t bench_batches[] = { 1, 64, 1024, 8192 };

static const struct {
	evb_wal_durability mode;
	const char        *name;
	unsigned int       lmdb_flags; /* The WAL's env flags for it. */
} bench_modes[] = {
	{ EVB_WAL_SYNC, "sync", 0 },
	{ EVB_WAL_PERIODIC, "periodic", MDB_NOSYNC },
	{ EVB_WAL_NONE, "none", MDB_NOSYNC | MDB_NOMETASYNC },
};

/* The events of one batch, refilled with new ids before each append.
 * Each payload holds its event's id at BENCH_ID_AT, as an envelope
 * does. */
typedef struct bench_events {
	evb_wal_rec recs[BENCH_MAX_BATCH];
	uint8_t     payloads[BENCH_MAX_BATCH][BENCH_PAYLOAD];
	uint8_t     rnd[BENCH_PRODUCERS][16]; /* Each producer's suffix. */
	uint64_t    prod_ms[BENCH_PRODUCERS]; /* Its last millisecond. */
	uint64_t    made;                     /* Events made so far. */
	uint64_t    x;                        /* xorshift64 state. */
} bench_events;

/* One append line's figures, for the ratios of the rounds mode. */
typedef struct bench_point {
	double rate; /* Events/s. */
	double p50;  /* Median commit, us. */
} bench_point;

typedef struct bench_dir {
	char base[256]; /* The mkdtemp directory. */
	char wal[280];  /* base/wal, the log. */
} bench_dir;

static uint64_t
bench_rand(bench_events *ev)
{
	ev->x ^= ev->x << 13;
	ev->x ^= ev->x >> 7;
	ev->x ^= ev->x << 17;
	return (ev->x);
}

/* bench_ulid writes the next id of producer p at millisecond ms. */
static void
bench_ulid(bench_events *ev, size_t p, uint64_t ms, uint8_t *out)
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint8_t          *r     = ev->rnd[p];

	if (ms != ev->prod_ms[p]) {
		ev->prod_ms[p] = ms;
		for (int i = 0; i < 16; i++) {
			r[i] = (uint8_t) (bench_rand(ev) % 32);
		}
	} else {
		// Monotonic within a millisecond: the suffix counts up.
		for (int i = 15; i >= 0 && ++r[i] == 32; i--) {
			r[i] = 0;
		}
	}
	for (int i = 9; i >= 0; i--, ms /= 32) {
		out[i] = (uint8_t) b32[ms % 32];
	}
	for (int i = 0; i < 16; i++) {
		out[10 + i] = (uint8_t) b32[r[i]];
	}
}

static void
bench_events_init(bench_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->x = 0x9E3779B97F4A7C15ull;
	for (size_t r = 0; r < BENCH_MAX_BATCH; r++) {
		for (size_t i = 0; i < BENCH_PAYLOAD; i++) {
			ev->payloads[r][i] = (uint8_t) (i * 131 + 7);
		}
	}
}

/*
 * bench_events_next fills the next batch of n events, their ids given to
 * the WAL or not. The id is the payload's, as the collector gives it, so
 * the record holds its place (docs/wal-format.md, ID_AT).
 */
static void
bench_events_next(bench_events *ev, size_t n, bool with_ids)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t ms = BENCH_T0_MS + ev->made / BENCH_EVENTS_PER_MS;
		size_t   p  = (size_t) (bench_rand(ev) % BENCH_PRODUCERS);
		uint8_t *id = ev->payloads[i] + BENCH_ID_AT;

		bench_ulid(ev, p, ms, id);
		ev->recs[i] = (evb_wal_rec) { 3, 1, ev->made + 1,
			(int64_t) ms * 1000000, ev->payloads[i], BENCH_PAYLOAD,
			with_ids ? id : NULL, with_ids ? BENCH_ID_LEN : 0 };
		ev->made++;
	}
}

/*
 * bench_dir_make makes a case's directory. It first syncs the file
 * systems: the cases before left dirty pages (of files since deleted, in
 * none and periodic mode), and their writeback would otherwise run on the
 * two cores during the next case, charging one side for the other's I/O.
 */
static int
bench_dir_make(bench_dir *bd)
{
	const char *tmp = getenv("TMPDIR");

	sync();

	(void) snprintf(bd->base, sizeof(bd->base), "%s/evb-wal-bench-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(bd->base) == NULL) {
		perror("wal_bench: mkdtemp");
		return (-1);
	}
	(void) snprintf(bd->wal, sizeof(bd->wal), "%s/wal", bd->base);
	return (0);
}

/* bench_dir_remove deletes the two LMDB files and both directories. */
static void
bench_dir_remove(const bench_dir *bd)
{
	static const char *const files[] = { "data.mdb", "lock.mdb" };
	char                     path[320];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		(void) snprintf(path, sizeof(path), "%s/%s", bd->wal, files[i]);
		(void) unlink(path);
	}
	(void) rmdir(bd->wal);
	(void) rmdir(bd->base);
}

static int
bench_fail(const char *what, int rv, const char *msg)
{
	fprintf(stderr, "wal_bench: %s: %s %s\n", what, evb_strerror(rv),
	    msg != NULL ? msg : "");
	return (-1);
}

static double
bench_now_s(void)
{
	return ((double) evb_clock_mono_ns() / 1e9);
}

/* ---- Raw LMDB ------------------------------------------------------------ */

/* The periodic mode's flush for the baseline: mdb_env_sync every period. */
typedef struct lmdb_flusher {
	MDB_env        *env;
	uint32_t        period_ms;
	pthread_mutex_t mtx;
	pthread_cond_t  cv; /* Signalled to stop. */
	bool            stop;
	int             rc; /* The first failed sync's code, else 0. */
	pthread_t       thr;
} lmdb_flusher;

static void *
lmdb_flusher_main(void *arg)
{
	lmdb_flusher   *f = arg;
	struct timespec dl;
	int             rc;

	evb_assert(pthread_mutex_lock(&f->mtx) == 0);
	while (!f->stop) {
		evb_assert(clock_gettime(CLOCK_REALTIME, &dl) == 0);
		dl.tv_nsec += (long) f->period_ms * 1000000L;
		dl.tv_sec += dl.tv_nsec / 1000000000L;
		dl.tv_nsec %= 1000000000L;
		if (pthread_cond_timedwait(&f->cv, &f->mtx, &dl) == 0 ||
		    f->stop) {
			continue;
		}
		evb_assert(pthread_mutex_unlock(&f->mtx) == 0);
		rc = mdb_env_sync(f->env, 1);
		evb_assert(pthread_mutex_lock(&f->mtx) == 0);
		f->rc = f->rc != 0 ? f->rc : rc;
	}
	evb_assert(pthread_mutex_unlock(&f->mtx) == 0);
	return (NULL);
}

static int
lmdb_flusher_start(lmdb_flusher *f, MDB_env *env)
{
	evb_wal_opts o;

	evb_wal_opts_default(&o);
	memset(f, 0, sizeof(*f));
	f->env       = env;
	f->period_ms = o.sync_period_ms;
	evb_assert(pthread_mutex_init(&f->mtx, NULL) == 0);
	evb_assert(pthread_cond_init(&f->cv, NULL) == 0);
	return (pthread_create(&f->thr, NULL, lmdb_flusher_main, f));
}

/* lmdb_flusher_stop joins the thread; returns the first sync failure. */
static int
lmdb_flusher_stop(lmdb_flusher *f)
{
	evb_assert(pthread_mutex_lock(&f->mtx) == 0);
	f->stop = true;
	evb_assert(pthread_cond_signal(&f->cv) == 0);
	evb_assert(pthread_mutex_unlock(&f->mtx) == 0);
	evb_assert(pthread_join(f->thr, NULL) == 0);
	evb_assert(pthread_cond_destroy(&f->cv) == 0);
	evb_assert(pthread_mutex_destroy(&f->mtx) == 0);
	return (f->rc);
}

/* lmdb_batch appends the payloads of recs[0..n-1] from key next on. */
static int
lmdb_batch(
    MDB_env *env, MDB_dbi dbi, const evb_wal_rec *recs, size_t n, uint64_t next)
{
	MDB_txn    *txn;
	MDB_cursor *cur;
	uint8_t     kb[8];
	int         rc;

	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		return (rc);
	}
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return (rc);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		MDB_val k = { sizeof(kb), kb }, v = { BENCH_PAYLOAD, NULL };

		evb_put_be64(kb, next + i);
		if ((rc = mdb_cursor_put(
		         cur, &k, &v, MDB_APPEND | MDB_RESERVE)) == 0) {
			memcpy(v.mv_data, recs[i].payload, BENCH_PAYLOAD);
		}
	}
	mdb_cursor_close(cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return (rc);
	}
	return (mdb_txn_commit(txn));
}

static int
lmdb_open(const char *dir, unsigned int flags, MDB_env **env, MDB_dbi *dbi)
{
	MDB_txn *txn;
	int      rc;

	if ((rc = mkdir(dir, 0700)) != 0) {
		return (rc);
	}
	if ((rc = mdb_env_create(env)) != 0) {
		return (rc);
	}
	if ((rc = mdb_env_set_maxdbs(*env, 1)) != 0 ||
	    (rc = mdb_env_set_mapsize(*env, BENCH_MAP_SIZE)) != 0 ||
	    (rc = mdb_env_open(*env, dir, flags | MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(*env, NULL, 0, &txn)) != 0) {
		mdb_env_close(*env);
		return (rc);
	}
	if ((rc = mdb_dbi_open(txn, "log", MDB_CREATE, dbi)) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(*env);
		return (rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdb_env_close(*env);
	}
	return (rc);
}

static int
bench_lmdb(size_t m, size_t batch, bench_events *ev, uint64_t n, double secs,
    bench_point *pt)
{
	bench_samples s = { NULL, 0, 0 };
	bench_dir     bd;
	MDB_env      *env;
	MDB_dbi       dbi;
	lmdb_flusher  fl;
	bool          flush = bench_modes[m].mode == EVB_WAL_PERIODIC;
	uint64_t      done  = 0;
	double        t;
	char          name[64];
	int           rc, frc = 0;

	if (bench_dir_make(&bd) != 0) {
		return (-1);
	}
	if ((rc = lmdb_open(bd.wal, bench_modes[m].lmdb_flags, &env, &dbi)) !=
	    0) {
		bench_dir_remove(&bd);
		return (
		    bench_fail("lmdb open", EVB_ESTORAGE, mdb_strerror(rc)));
	}
	if (flush && (rc = lmdb_flusher_start(&fl, env)) != 0) {
		mdb_env_close(env);
		bench_dir_remove(&bd);
		return (bench_fail("lmdb flusher", EVB_ENOMEM, strerror(rc)));
	}
	t = 0;
	// The warm-up batch, untimed, as on the WAL's side.
	bench_events_next(ev, batch, false);
	rc = lmdb_batch(env, dbi, ev->recs, batch, 1);
	while (rc == 0) {
		uint64_t c0, us;

		bench_events_next(ev, batch, false);
		c0 = evb_clock_mono_ns();
		if ((rc = lmdb_batch(
		         env, dbi, ev->recs, batch, batch + done + 1)) != 0) {
			break;
		}
		us = evb_clock_mono_ns() - c0;
		bench_samples_add(&s, (double) us / 1e3);
		done += batch;
		t += (double) us / 1e9;
		if (done >= n || t >= secs) {
			break;
		}
	}
	if (flush && (frc = lmdb_flusher_stop(&fl)) != 0 && rc == 0) {
		rc = frc;
	}
	if (rc == 0) {
		(void) snprintf(name, sizeof(name), "lmdb_append_%s_b%zu",
		    bench_modes[m].name, batch);
		pt->rate = t > 0 ? (double) done / t : 0;
		pt->p50  = bench_report(name, done, t, &s);
	}
	free(s.us);
	mdb_env_close(env);
	bench_dir_remove(&bd);
	return (
	    rc == 0 ? 0 : bench_fail("lmdb", EVB_ESTORAGE, mdb_strerror(rc)));
}

/* ---- The WAL ------------------------------------------------------------- */

/* bench_wal_open_with opens a log with default options in mode; without
 * the duplicate window when dedup is false (ids are still stored). */
static int
bench_wal_open_with(
    const char *dir, evb_wal_durability mode, bool dedup, evb_wal **w)
{
	evb_wal_opts o;
	evb_diag     d = { { 0 } };
	int          rc;

	evb_wal_opts_default(&o);
	o.durability       = mode;
	o.map_size_initial = BENCH_MAP_SIZE;
	if (!dedup) {
		o.dedup_window_count  = 0;
		o.dedup_window_age_ms = 0;
	}
	if ((rc = evb_wal_open(w, dir, &o, &d)) != EVB_OK) {
		return (bench_fail("open", rc, d.msg));
	}
	return (0);
}

static int
bench_wal_open(const char *dir, evb_wal_durability mode, evb_wal **w)
{
	return (bench_wal_open_with(dir, mode, true, w));
}

/* bench_append appends batches until n events or secs of appending. */
static int
bench_append(evb_wal *w, bench_events *ev, size_t batch, bool with_ids,
    uint64_t n, double secs, bench_samples *s, uint64_t *done, double *elapsed)
{
	double   t = 0;
	evb_diag d = { { 0 } };
	int      rv;

	// The warm-up batch, untimed: the handle's one-time setup (the
	// duplicate window's table; wal_dedup_rebuild times it).
	bench_events_next(ev, batch, with_ids);
	if ((rv = evb_wal_append(w, ev->recs, batch, NULL, &d)) != EVB_OK) {
		return (bench_fail("append", rv, d.msg));
	}
	*done = 0;
	do {
		uint64_t c0, ns;

		bench_events_next(ev, batch, with_ids);
		c0 = evb_clock_mono_ns();
		rv = evb_wal_append(w, ev->recs, batch, NULL, &d);
		if (rv != EVB_OK) {
			return (bench_fail("append", rv, d.msg));
		}
		ns = evb_clock_mono_ns() - c0;
		bench_samples_add(s, (double) ns / 1e3);
		*done += batch;
		t += (double) ns / 1e9;
	} while (*done < n && t < secs);
	*elapsed = t;
	return (0);
}

static int
bench_replay(evb_wal *w, uint64_t n, double secs)
{
	bench_samples s = { NULL, 0, 0 };
	evb_wal_iter *it;
	evb_wal_entry e;
	uint64_t      done = 0, sum = 0;
	double        t0, t         = 0;
	int           rv = EVB_OK;

	// One pass first, so that the timed one reads a warm page cache.
	if ((rv = evb_wal_iter_open(w, 0, &it)) != EVB_OK) {
		return (bench_fail("iter_open", rv, NULL));
	}
	while (evb_wal_iter_next(it, &e) == EVB_OK) {
	}
	evb_wal_iter_close(it);
	if ((rv = evb_wal_iter_open(w, 0, &it)) != EVB_OK) {
		return (bench_fail("iter_open", rv, NULL));
	}
	t0 = bench_now_s();
	while (rv == EVB_OK && done < n && t < secs) {
		uint64_t c0 = evb_clock_mono_ns();

		for (int i = 0; i < BENCH_REPLAY_CHUNK; i++) {
			if ((rv = evb_wal_iter_next(it, &e)) != EVB_OK) {
				break;
			}
			sum += e.len; // Touch the entry so the loop is real.
			done++;
		}
		bench_samples_add(
		    &s, (double) (evb_clock_mono_ns() - c0) / 1e3);
		t = bench_now_s() - t0;
	}
	evb_wal_iter_close(it);
	if (rv != EVB_OK && rv != EVB_EOF) {
		free(s.us);
		return (bench_fail("iter_next", rv, NULL));
	}
	if (sum != done * BENCH_PAYLOAD) {
		fprintf(stderr,
		    "wal_bench: replay read %llu bytes, expected %llu\n",
		    (unsigned long long) sum,
		    (unsigned long long) (done * BENCH_PAYLOAD));
		free(s.us);
		return (-1);
	}
	bench_report("wal_replay", done, t, &s);
	return (0);
}

/* bench_wal opens a fresh log in mode, appends, and maybe replays it. */
static int
bench_wal(size_t m, size_t batch, bool with_ids, bench_events *ev, uint64_t n,
    double secs, bool replay, bench_point *pt)
{
	bench_samples s = { NULL, 0, 0 };
	bench_dir     bd;
	evb_wal      *w = NULL;
	char          name[64];
	uint64_t      done;
	double        t;
	int           rc;

	if (bench_dir_make(&bd) != 0) {
		return (-1);
	}
	if ((rc = bench_wal_open(bd.wal, bench_modes[m].mode, &w)) != 0) {
		goto dir_remove;
	}
	rc = bench_append(w, ev, batch, with_ids, n, secs, &s, &done, &t);
	if (rc == 0) {
		(void) snprintf(name, sizeof(name), "wal_%s_%s_b%zu",
		    with_ids ? "append" : "noid", bench_modes[m].name, batch);
		pt->rate = t > 0 ? (double) done / t : 0;
		pt->p50  = bench_report(name, done, t, &s);
		rc       = replay ? bench_replay(w, n, secs) : 0;
	}
	free(s.us);
	evb_wal_close(w);
dir_remove:
	bench_dir_remove(&bd);
	return (rc);
}

/*
 * bench_rebuild times the first append of a handle just opened on a log
 * full of ids, which builds the duplicate window from the records.
 */
static int
bench_rebuild(evb_wal *w, bench_events *ev)
{
	evb_wal_stat  st;
	evb_diag      d = { { 0 } };
	uint64_t      c0, ns;
	bench_samples s = { NULL, 0, 0 };
	int           rc;

	bench_events_next(ev, 1, true);
	c0 = evb_clock_mono_ns();
	if ((rc = evb_wal_append(w, ev->recs, 1, NULL, &d)) != EVB_OK) {
		return (bench_fail("append", rc, d.msg));
	}
	ns = evb_clock_mono_ns() - c0;
	if ((rc = evb_wal_stats(w, &st)) != EVB_OK) {
		return (bench_fail("stats", rc, NULL));
	}
	bench_samples_add(&s, (double) ns / 1e3);
	bench_report("wal_dedup_rebuild", st.id_count, (double) ns / 1e9, &s);
	return (0);
}

/* bench_disk appends exactly n events and reports bytes on disk each,
 * then times the rebuild of the duplicate window. */
static int
bench_disk(bench_events *ev, uint64_t n)
{
	bench_dir    bd;
	evb_wal     *w = NULL;
	evb_wal_stat st;
	evb_diag     d = { { 0 } };
	double       t0, t;
	uint64_t     done;
	int          rc;

	if (bench_dir_make(&bd) != 0) {
		return (-1);
	}
	if ((rc = bench_wal_open(bd.wal, EVB_WAL_NONE, &w)) != 0) {
		goto dir_remove;
	}
	t0 = bench_now_s();
	for (done = 0; done < n && rc == 0; done += BENCH_DISK_BATCH) {
		size_t b = n - done < BENCH_DISK_BATCH ? (size_t) (n - done)
		                                       : BENCH_DISK_BATCH;

		bench_events_next(ev, b, true);
		if ((rc = evb_wal_append(w, ev->recs, b, NULL, &d)) != EVB_OK) {
			rc = bench_fail("append", rc, d.msg);
		}
	}
	t = bench_now_s() - t0;
	evb_wal_close(w); // The final flush: data.mdb is complete.
	w = NULL;
	if (rc == 0 && (rc = bench_wal_open(bd.wal, EVB_WAL_NONE, &w)) == 0) {
		if ((rc = evb_wal_stats(w, &st)) != EVB_OK) {
			rc = bench_fail("stats", rc, NULL);
		} else {
			// rate = bytes per event; there are no latencies.
			printf("wal_disk_b%d %llu %.3f %.1f 0.000 0.000\n",
			    BENCH_DISK_BATCH, (unsigned long long) n, t,
			    (double) st.file_bytes / (double) n);
			rc = bench_rebuild(w, ev);
		}
		evb_wal_close(w);
	}
dir_remove:
	bench_dir_remove(&bd);
	return (rc);
}

/* bench_append_timed appends ev's batch of n to w; *ns its duration. */
static int
bench_append_timed(evb_wal *w, bench_events *ev, size_t n, double *ns)
{
	evb_diag d  = { { 0 } };
	uint64_t c0 = evb_clock_mono_ns();
	int      rc;

	if ((rc = evb_wal_append(w, ev->recs, n, NULL, &d)) != EVB_OK) {
		return (bench_fail("append", rc, d.msg));
	}
	*ns = (double) (evb_clock_mono_ns() - c0);
	return (0);
}

/*
 * bench_steady measures the duplicate window at its steady state, which
 * the append lines never reach (a case stops at N records, and the
 * default window holds 1,000,000): two logs in none mode, one with the
 * default window and one without (ids stored alike), are each filled
 * with as many records as that window holds first, untimed, so that it
 * is full and every id of a later batch evicts one. Then the same batch of
 * BENCH_MAX_BATCH records goes to each in turn (which first alternates) until
 * secs of appending on each, or N records each. Lines: wal_steady_dedup_b8192
 * and wal_steady_nodedup_b8192 (as the append lines), then
 *
 *   dedup_steady_ns pairs p25 p50 p75
 *
 * the per-batch difference of the two commits over the batch's records,
 * in ns per id: paired in time, so the machine's drift cancels out.
 */
static int
bench_steady(bench_events *ev, uint64_t n, double secs)
{
	bench_samples s[2] = { { NULL, 0, 0 }, { NULL, 0, 0 } };
	bench_dir     bd[2];
	evb_wal      *w[2] = { NULL, NULL };
	double       *diff = NULL, t[2] = { 0, 0 }, ns[2];
	size_t        pairs = 0, cap = 0;
	evb_wal_opts  o;
	int           rc = 0;

	for (int i = 0; i < 2; i++) {
		if (bench_dir_make(&bd[i]) != 0) {
			if (i == 1) {
				bench_dir_remove(&bd[0]);
			}
			return (-1);
		}
	}
	for (int i = 0; i < 2 && rc == 0; i++) {
		rc =
		    bench_wal_open_with(bd[i].wal, EVB_WAL_NONE, i == 0, &w[i]);
	}
	evb_wal_opts_default(&o);
	for (uint64_t done = 0; rc == 0 && done < o.dedup_window_count;
	     done += BENCH_MAX_BATCH) {
		bench_events_next(ev, BENCH_MAX_BATCH, true);
		for (int i = 0; i < 2 && rc == 0; i++) {
			rc = bench_append_timed(
			    w[i], ev, BENCH_MAX_BATCH, &ns[i]);
		}
	}
	while (rc == 0 && (t[0] < secs || t[1] < secs) &&
	    pairs * BENCH_MAX_BATCH < n) {
		double *d;

		if (pairs == cap) {
			cap = cap == 0 ? 256 : 2 * cap;
			if ((d = realloc(diff, cap * sizeof(*diff))) == NULL) {
				rc = bench_fail("steady", EVB_ENOMEM, NULL);
				break;
			}
			diff = d;
		}
		bench_events_next(ev, BENCH_MAX_BATCH, true);
		for (int k = 0; k < 2 && rc == 0; k++) {
			int i = (int) (pairs % 2) ^ k;

			rc = bench_append_timed(
			    w[i], ev, BENCH_MAX_BATCH, &ns[i]);
		}
		for (int i = 0; i < 2 && rc == 0; i++) {
			bench_samples_add(&s[i], ns[i] / 1e3);
			t[i] += ns[i] / 1e9;
		}
		if (rc == 0) {
			diff[pairs++] = (ns[0] - ns[1]) / BENCH_MAX_BATCH;
		}
	}
	if (rc == 0) {
		static const char *const name[] = { "wal_steady_dedup_b8192",
			"wal_steady_nodedup_b8192" };

		for (int i = 0; i < 2; i++) {
			(void) bench_report(
			    name[i], pairs * BENCH_MAX_BATCH, t[i], &s[i]);
		}
		double med = bench_median(diff, pairs); // Sorts it.

		printf("dedup_steady_ns %zu %.1f %.1f %.1f\n", pairs,
		    diff[pairs / 4], med, diff[3 * pairs / 4]);
	}
	for (int i = 0; i < 2; i++) {
		free(s[i].us);
		evb_wal_close(w[i]);
		bench_dir_remove(&bd[i]);
	}
	free(diff);
	return (rc);
}

/*
 * bench_ratios prints, for the WAL's lines of one case (with ids, then
 * without), the median, least and greatest over the rounds of the
 * ratios to raw LMDB of the same round: p50 as WAL over LMDB, rate as
 * LMDB over WAL (1.00: as fast; above: the WAL is slower).
 */
static void
bench_ratios(size_t m, size_t batch, bench_point (*pt)[3], size_t rounds)
{
	static const char *const what[] = { "append", "noid" };

	for (size_t k = 1; k <= 2; k++) {
		double p50[BENCH_ROUNDS_MAX], rate[BENCH_ROUNDS_MAX];

		for (size_t r = 0; r < rounds; r++) {
			p50[r] =
			    pt[r][0].p50 > 0 ? pt[r][k].p50 / pt[r][0].p50 : 0;
			rate[r] = pt[r][k].rate > 0
			    ? pt[r][0].rate / pt[r][k].rate
			    : 0;
		}
		// bench_median sorts, so [0] and [rounds - 1] are the bounds
		// once it has run (not in the same call's arguments).
		double p50_med  = bench_median(p50, rounds);
		double rate_med = bench_median(rate, rounds);

		printf("ratio_%s_%s_b%zu %zu p50 %.2f %.2f %.2f rate %.2f %.2f "
		       "%.2f\n",
		    what[k - 1], bench_modes[m].name, batch, rounds, p50_med,
		    p50[0], p50[rounds - 1], rate_med, rate[0],
		    rate[rounds - 1]);
	}
}

/*
 * bench_case runs the three append lines of one mode and batch rounds
 * times, in turn forwards (LMDB, with ids, without) and backwards, so
 * that neither side always runs right after the other; with rounds > 1
 * it then prints the ratios.
 */
static int
bench_case(size_t m, size_t b, bench_events *ev, uint64_t n, double secs,
    bool replay, size_t rounds)
{
	bench_point pt[BENCH_ROUNDS_MAX][3];
	size_t      batch = bench_batches[b];

	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < 3; i++) {
			size_t j = r % 2 == 0 ? i : 2 - i;
			int    rc;

			rc = j == 0
			    ? bench_lmdb(m, batch, ev, n, secs, &pt[r][0])
			    : bench_wal(m, batch, j == 1, ev, n, secs,
			          replay && r == 0 && j == 1, &pt[r][j]);
			if (rc != 0) {
				return (rc);
			}
		}
	}
	if (rounds > 1) {
		bench_ratios(m, batch, pt, rounds);
	}
	return (0);
}

int
main(int argc, char **argv)
{
	static bench_events ev;
	uint64_t            n      = 1000000;
	double              secs   = 2.0;
	const char         *only   = NULL;
	size_t              rounds = 1;

	bench_args(argc > 3 ? 3 : argc, argv, &n, &secs);
	if (argc > 3 && strcmp(argv[3], "all") != 0) {
		only = argv[3];
	}
	if (argc > 4) {
		char *end;

		rounds = (size_t) strtoul(argv[4], &end, 10);
		if (*end != '\0' || rounds < 1 || rounds > BENCH_ROUNDS_MAX) {
			fprintf(stderr,
			    "usage: %s [N] [secs] [MODE/BATCH|steady|all] "
			    "[ROUNDS]: "
			    "ROUNDS: expected 1 to %d, got %s\n",
			    argv[0], BENCH_ROUNDS_MAX, argv[4]);
			return (2);
		}
	}
	bench_events_init(&ev);
	for (size_t m = 0; m < sizeof(bench_modes) / sizeof(bench_modes[0]);
	     m++) {
		for (size_t b = 0;
		     b < sizeof(bench_batches) / sizeof(bench_batches[0]);
		     b++) {
			// Replay the largest log written: none mode, b8192.
			bool replay = bench_modes[m].mode == EVB_WAL_NONE &&
			    bench_batches[b] == BENCH_MAX_BATCH && only == NULL;
			char this[32];

			(void) snprintf(this, sizeof(this), "%s/%zu",
			    bench_modes[m].name, bench_batches[b]);
			if (only != NULL && strcmp(only, this) != 0) {
				continue;
			}
			if (bench_case(m, b, &ev, n, secs, replay, rounds) !=
			    0) {
				return (1);
			}
		}
	}
	if (only != NULL && strcmp(only, "steady") != 0) {
		return (0);
	}
	if (only == NULL && bench_disk(&ev, n) != 0) {
		return (1);
	}
	return (bench_steady(&ev, n, secs) == 0 ? 0 : 1);
}
