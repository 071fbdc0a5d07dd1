/*
 * wal_bench: WAL append throughput and commit latency for batch sizes 1,
 * 64, 1024 and 8192 in each durability mode, and replay speed, with the
 * 302-byte payload of proto_bench's realistic event.
 *
 *   wal_bench [N] [secs]   (defaults: 1000000 events, 2 s per case)
 *
 * Each case stops at N events or secs, whichever comes first, in a fresh
 * temporary directory (under $TMPDIR or /tmp) that it removes. Append
 * latencies are per commit (one batch); replay latencies are per chunk of
 * BENCH_REPLAY_CHUNK records. One line per case:
 *
 *   wal_append_<mode>_b<batch> n secs rate p50_us p99_us
 *   wal_replay n secs rate p50_us p99_us
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "wal/wal.h"

#define BENCH_PAYLOAD 302       /* Bytes, as the proto_bench event. */
#define BENCH_MAX_BATCH 8192    /* Largest batch measured. */
#define BENCH_REPLAY_CHUNK 1024 /* Records per timed replay chunk. */

static const size_t bench_batches[] = { 1, 64, 1024, 8192 };

static const struct {
	evb_wal_durability mode;
	const char        *name;
} bench_modes[] = {
	{ EVB_WAL_SYNC, "sync" },
	{ EVB_WAL_PERIODIC, "periodic" },
	{ EVB_WAL_NONE, "none" },
};

typedef struct bench_dir {
	char base[256]; /* The mkdtemp directory. */
	char wal[280];  /* base/wal, the log. */
} bench_dir;

static int
bench_dir_make(bench_dir *bd)
{
	const char *tmp = getenv("TMPDIR");

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
bench_fail(const char *what, int rv, const evb_diag *d)
{
	fprintf(stderr, "wal_bench: %s: %s %s\n", what, evb_strerror(rv),
	    d != NULL ? d->msg : "");
	return (-1);
}

static double
bench_now_s(void)
{
	return ((double) evb_clock_mono_ns() / 1e9);
}

/* bench_append runs one append case; *w stays open for the replay. */
static int
bench_append(evb_wal *w, const evb_wal_rec *recs, size_t batch, uint64_t n,
    double secs, const char *name)
{
	bench_samples s    = { NULL, 0, 0 };
	uint64_t      done = 0;
	double        t0   = bench_now_s(), t;
	evb_diag      d    = { { 0 } };
	int           rv;

	do {
		uint64_t c0 = evb_clock_mono_ns();

		if ((rv = evb_wal_append(w, recs, batch, NULL, &d)) != EVB_OK) {
			free(s.us);
			return (bench_fail(name, rv, &d));
		}
		bench_samples_add(
		    &s, (double) (evb_clock_mono_ns() - c0) / 1e3);
		done += batch;
		t = bench_now_s() - t0;
	} while (done < n && t < secs);
	bench_report(name, done, t, &s);
	return (0);
}

static int
bench_replay(evb_wal *w, uint64_t n, double secs)
{
	bench_samples s = { NULL, 0, 0 };
	evb_wal_iter *it;
	evb_wal_entry e;
	uint64_t      done = 0, sum = 0;
	double        t0 = bench_now_s(), t = 0;
	int           rv = EVB_OK;

	if ((rv = evb_wal_iter_open(w, 0, &it)) != EVB_OK) {
		return (bench_fail("iter_open", rv, NULL));
	}
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
		    "wal_bench: replay read %llu bytes, expected "
		    "%llu\n",
		    (unsigned long long) sum,
		    (unsigned long long) (done * BENCH_PAYLOAD));
		free(s.us);
		return (-1);
	}
	bench_report("wal_replay", done, t, &s);
	return (0);
}

/* bench_case opens a fresh log in mode, appends, and maybe replays it. */
static int
bench_case(size_t m, size_t batch, const evb_wal_rec *recs, uint64_t n,
    double secs, int replay)
{
	bench_dir    bd;
	evb_wal_opts o;
	evb_wal     *w = NULL;
	evb_diag     d = { { 0 } };
	char         name[64];
	int          rc;

	if (bench_dir_make(&bd) != 0) {
		return (-1);
	}
	evb_wal_opts_default(&o);
	o.durability = bench_modes[m].mode;
	if ((rc = evb_wal_open(&w, bd.wal, &o, &d)) != EVB_OK) {
		rc = bench_fail("open", rc, &d);
		goto dir_remove;
	}
	(void) snprintf(name, sizeof(name), "wal_append_%s_b%zu",
	    bench_modes[m].name, batch);
	rc = bench_append(w, recs, batch, n, secs, name);
	if (rc == 0 && replay) {
		rc = bench_replay(w, n, secs);
	}
	evb_wal_close(w);
dir_remove:
	bench_dir_remove(&bd);
	return (rc);
}

int
main(int argc, char **argv)
{
	static evb_wal_rec recs[BENCH_MAX_BATCH];
	static uint8_t     payload[BENCH_PAYLOAD];
	uint64_t           n    = 1000000;
	double             secs = 2.0;

	bench_args(argc, argv, &n, &secs);
	for (size_t i = 0; i < sizeof(payload); i++) {
		payload[i] = (uint8_t) (i * 131 + 7);
	}
	for (size_t i = 0; i < BENCH_MAX_BATCH; i++) {
		recs[i] = (evb_wal_rec) { 3, 1, i + 1,
			1764035435123456789LL + (int64_t) i, payload,
			sizeof(payload), NULL, 0 };
	}
	for (size_t m = 0; m < sizeof(bench_modes) / sizeof(bench_modes[0]);
	     m++) {
		for (size_t b = 0;
		     b < sizeof(bench_batches) / sizeof(bench_batches[0]);
		     b++) {
			// Replay the largest log written: none mode, b8192.
			int replay = bench_modes[m].mode == EVB_WAL_NONE &&
			    bench_batches[b] == BENCH_MAX_BATCH;

			if (bench_case(m, bench_batches[b], recs, n, secs,
			        replay) != 0) {
				return (1);
			}
		}
	}
	return (0);
}
