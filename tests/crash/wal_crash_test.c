/*
 * wal_crash_test: kill -9 a writer at random moments and check that the
 * WAL keeps every promise (tests/crash, as sqlite's test/crash9.test).
 *
 * The child, wal_crash_child, appends batches in SYNC mode and prints the
 * last offset of each batch after append returns. The parent kills it
 * after a random delay, reopens the log, and checks:
 *   - evb_wal_verify passes: offsets 1..last with no gap, every CRC good;
 *   - every offset the child printed is there (last >= the largest);
 *   - every record holds exactly the bytes derived from its offset
 *     (tests/crash/wal_crash.h), so nothing was torn or duplicated;
 *   - and, in the child, that the last batch sent again after a restart
 *     is recognised as duplicates (it exits with an error otherwise).
 * The seed is printed; EVB_CRASH_SEED=<n> repeats a run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/crash/wal_crash.h"
#include "tests/support/support.h"

#define CRASH_KILLS 25          /* Kill/restart rounds per run. */
#define CRASH_MAX_DELAY_MS 40   /* Longest random delay before a kill. */
#define CRASH_PROGRESS_MS 10000 /* Deadline for the child's first batch. */

static char *tmp;      /* Fresh per test. */
static char *wal_dir;  /* The log under test. */
static char *out_path; /* Child's stdout: one committed offset a line. */
static char *err_path; /* Child's stderr, shown when it fails. */
static pid_t child;    /* Running child, killed by teardown. */

static void
setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&tmp), EVB_OK);
	wal_dir  = evb_ts_path(tmp, "wal");
	out_path = evb_ts_path(tmp, "child.out");
	err_path = evb_ts_path(tmp, "child.err");
	cr_assert(wal_dir != NULL && out_path != NULL && err_path != NULL);
}

static void
teardown(void)
{
	(void) evb_ts_kill(&child);
	free(wal_dir);
	free(out_path);
	free(err_path);
	(void) evb_ts_tmpdir_remove(tmp);
}

TestSuite(wal_crash, .init = setup, .fini = teardown, .timeout = 100);

static uint64_t
crash_seed(void)
{
	const char *s = getenv("EVB_CRASH_SEED");

	if (s != NULL && *s != '\0') {
		return (strtoull(s, NULL, 10));
	}
	return ((uint64_t) evb_clock_real_ns() ^ (uint64_t) getpid());
}

/* crash_rand is xorshift64: a private, repeatable stream from the seed. */
static uint64_t
crash_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (*x);
}

static void
crash_sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t) (ms / 1000),
		(long) (ms % 1000) * 1000000L };

	(void) nanosleep(&ts, NULL);
}

/*
 * crash_reported returns the largest offset in the child's complete lines
 * (0 if none yet) and checks that the lines ascend.
 */
static uint64_t
crash_reported(void)
{
	char    *buf, *p, *nl;
	size_t   len;
	uint64_t max = 0, v;

	if (evb_ts_file_read(out_path, &buf, &len) != EVB_OK) {
		return (0);
	}
	for (p = buf; (nl = memchr(p, '\n', len - (size_t) (p - buf))) != NULL;
	     p = nl + 1) {
		v = strtoull(p, NULL, 10);
		cr_assert_gt(
		    v, max, "child printed %" PRIu64 " after %" PRIu64, v, max);
		max = v;
	}
	free(buf);
	return (max);
}

/* crash_child_error returns the child's stderr (for messages); free it. */
static char *
crash_child_error(void)
{
	char  *buf = NULL;
	size_t len;

	if (evb_ts_file_read(err_path, &buf, &len) != EVB_OK) {
		return (strdup("(no stderr)"));
	}
	return (buf);
}

/* crash_wait_progress polls until the child has committed past floor. */
static void
crash_wait_progress(uint64_t floor)
{
	uint64_t deadline =
	    evb_clock_mono_ms() + evb_ts_timeout_ms(CRASH_PROGRESS_MS);
	int status;

	while (crash_reported() <= floor) {
		if (evb_ts_wait(&child, 0, &status) == EVB_OK) {
			cr_assert_fail("child exited with %d: %s",
			    evb_ts_exit_code(status), crash_child_error());
		}
		cr_assert_lt(evb_clock_mono_ms(), deadline,
		    "child made no progress in %d ms", CRASH_PROGRESS_MS);
		crash_sleep_ms(1);
	}
}

/* crash_check_record compares one entry with what the child wrote. */
static void
crash_check_record(const evb_wal_entry *e, uint64_t off)
{
	uint8_t     want[WAL_CRASH_MAX_LEN];
	char        id[WAL_CRASH_ID_MAX];
	evb_wal_rec r;
	size_t      at;

	wal_crash_fill(want, off);
	wal_crash_rec(&r, off, want, id);
	cr_assert_eq(e->off, off);
	cr_assert_eq(e->type, r.type, "offset %" PRIu64, off);
	cr_assert_eq(e->epoch, r.epoch, "offset %" PRIu64, off);
	cr_assert_eq(e->seq, r.seq, "offset %" PRIu64, off);
	cr_assert_eq(e->ts_ns, r.ts_ns, "offset %" PRIu64, off);
	cr_assert_eq(e->len, r.len, "offset %" PRIu64, off);
	cr_assert(e->len == 0 || memcmp(e->payload, want, e->len) == 0,
	    "offset %" PRIu64 ": payload differs", off);
	cr_assert(e->id_len == r.id_len && memcmp(e->id, id, e->id_len) == 0,
	    "offset %" PRIu64 ": id differs", off);
	// An id inside the payload is read from there (docs/wal-format.md,
	// ID_AT), any other from after the header.
	at = wal_crash_id_at(off, r.id_len);
	cr_assert((at == SIZE_MAX) ==
	        (e->len == 0 ||
	            (const uint8_t *) e->id < (const uint8_t *) e->payload),
	    "offset %" PRIu64 ": the id is not where its form says", off);
	cr_assert(at == SIZE_MAX ||
	        (const uint8_t *) e->id == (const uint8_t *) e->payload + at,
	    "offset %" PRIu64 ": the id is not at payload byte %zu", off, at);
}

/* crash_check_log reopens the log and checks every invariant. */
static uint64_t
crash_check_log(uint64_t promised)
{
	evb_wal              *w = NULL;
	evb_wal_iter         *it;
	evb_wal_entry         e;
	evb_wal_verify_report r;
	evb_diag              d = { { 0 } };
	uint64_t              n = 0;
	int                   rc;

	cr_assert_eq(evb_wal_open(&w, wal_dir, NULL, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_wal_verify(w, &r, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(r.bad_count, 0);
	cr_assert_eq(r.first_off, r.record_count > 0 ? 1 : 0);
	cr_assert_eq(r.last_off, r.record_count);
	cr_assert_geq(r.last_off, promised,
	    "offset %" PRIu64
	    " was reported committed but the log ends at %" PRIu64,
	    promised, r.last_off);
	cr_assert_eq(evb_wal_iter_open(w, 0, &it), EVB_OK);
	while ((rc = evb_wal_iter_next(it, &e)) == EVB_OK) {
		crash_check_record(&e, ++n);
	}
	cr_assert_eq(rc, EVB_EOF);
	cr_assert_eq(n, r.last_off);
	evb_wal_iter_close(it);
	evb_wal_close(w);
	return (n);
}

Test(wal_crash, kill9_never_loses_or_damages_a_committed_batch)
{
	uint64_t  seed     = crash_seed();
	uint64_t  x        = seed | 1;
	uint64_t  promised = 0, last = 0;
	evb_ts_io io     = { NULL, out_path, err_path };
	char     *argv[] = { WAL_CRASH_CHILD, wal_dir, NULL };

	fprintf(stderr,
	    "wal_crash_test: seed %" PRIu64 " (EVB_CRASH_SEED=%" PRIu64
	    " repeats this run)\n",
	    seed, seed);
	for (int round = 0; round < CRASH_KILLS; round++) {
		uint64_t delay = crash_rand(&x) % (CRASH_MAX_DELAY_MS + 1);

		// evb_ts_spawn truncates child.out, so each round's lines are
		// its own; wait for one, then kill at a random moment.
		cr_assert_eq(evb_ts_spawn(&child, argv, &io), EVB_OK);
		crash_wait_progress(0);
		crash_sleep_ms(delay);
		cr_assert_eq(evb_ts_kill(&child), EVB_OK);
		promised = crash_reported();
		cr_assert_gt(promised, last,
		    "round %d: the child committed nothing new", round);
		last = crash_check_log(promised);
	}
	fprintf(stderr,
	    "wal_crash_test: %d kills, %" PRIu64 " records checked\n",
	    CRASH_KILLS, last);
}
