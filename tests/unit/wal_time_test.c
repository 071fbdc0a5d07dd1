/*
 * wal_time_test: evb_wal_seek_time (wal/wal.h), the first offset whose
 * record has ts >= T in offset order. Producer times go backwards and
 * jump, so the tests compare the WAL with a brute-force answer over every
 * record ever appended, before and after retention removes a prefix (and
 * with it, sometimes, the first match: wal.h then allows two answers), and
 * check the edges: an empty log, times before and after everything, a
 * far-future record, a damaged record inside the scanned range, and a
 * damaged index entry.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "tests/support/support.h"
#include "tests/support/wal_testlib.h"
#include "wal/wal.h"

#define MS 1000000LL                   /* ns */
#define BASE_NS (1764035435000LL * MS) /* Some time in 2025. */
#define MAX_RECS 4000

static char           *tmp;               /* Fresh per test. */
static char           *wal_dir;           /* tmp/wal. */
static int64_t         tss[MAX_RECS + 1]; /* tss[off]: ts appended there. */
static uint64_t        nrecs;             /* Records appended. */
static _Atomic int64_t now_ns;            /* The test clock. */

static void
setup(void)
{
	wtl_dir_make(&tmp, &wal_dir);
	nrecs = 0;
	atomic_store(&now_ns, BASE_NS);
}

static void
teardown(void)
{
	wtl_dir_remove(tmp, wal_dir);
}

TestSuite(wal_time, .init = setup, .fini = teardown, .timeout = 60);

static evb_wal *
wal_open_test(void)
{
	evb_wal_opts o;

	evb_wal_opts_default(&o);
	o.durability    = EVB_WAL_NONE;
	o.clock_ns      = wtl_clock;
	o.clock_arg     = &now_ns;
	o.retain_age_ms = 1000;
	return (wtl_open(wal_dir, &o));
}

/* append_ts appends one batch with these times, noting them in tss. */
static void
append_ts(evb_wal *w, const int64_t *ts, size_t n)
{
	evb_wal_rec recs[256];
	char        marks[256][24];

	cr_assert_leq(n, 256);
	cr_assert_leq(nrecs + n, MAX_RECS);
	memset(recs, 0, sizeof(recs));
	for (size_t i = 0; i < n; i++) {
		(void) snprintf(marks[i], sizeof(marks[i]), "MARK-%06llu",
		    (unsigned long long) (nrecs + 1 + i));
		recs[i].ts_ns   = ts[i];
		recs[i].payload = marks[i];
		recs[i].len     = strlen(marks[i]);
	}
	cr_assert_eq(evb_wal_append(w, recs, n, NULL, NULL), EVB_OK);
	for (size_t i = 0; i < n; i++) {
		tss[++nrecs] = ts[i];
	}
}

/* brute is the first offset >= from ever appended whose record has
 * ts >= t, or the offset after the last. */
static uint64_t
brute(int64_t t, uint64_t from)
{
	for (uint64_t off = from; off <= nrecs; off++) {
		if (tss[off] >= t) {
			return (off);
		}
	}
	return (nrecs + 1);
}

static uint64_t
seek(evb_wal *w, int64_t t)
{
	uint64_t off = 0;

	cr_assert_eq(evb_wal_seek_time(w, t, &off), EVB_OK);
	return (off);
}

/*
 * check_seek checks seek(t) against wal.h when the log starts at first:
 * A (brute from 1) if it is still there; else first or K (brute from
 * first), which of them depending on the index entries retention left.
 */
static void
check_seek(evb_wal *w, int64_t t, uint64_t first, const char *what)
{
	uint64_t a = brute(t, 1), k = brute(t, first), got = seek(w, t);

	if (a >= first) {
		cr_assert_eq(got, a, "T = %lld (%s)", (long long) t, what);
	} else {
		cr_assert(got == first || got == k,
		    "T = %lld (%s): got %llu, A %llu removed: want %llu or "
		    "%llu",
		    (long long) t, what, (unsigned long long) got,
		    (unsigned long long) a, (unsigned long long) first,
		    (unsigned long long) k);
	}
}

/* check_many checks seek for every stored ts, its neighbours, and
 * random times around the range. */
static void
check_many(evb_wal *w, uint64_t first, uint64_t *rng)
{
	for (uint64_t off = 1; off <= nrecs; off++) {
		for (int64_t d = -1; d <= 1; d++) {
			check_seek(w, tss[off] + d, first, "a record's ts");
		}
	}
	for (int i = 0; i < 2000; i++) {
		int64_t t;

		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		t = BASE_NS - 5 * MS + (int64_t) (*rng % (uint64_t) (400 * MS));
		check_seek(w, t, first, "random");
	}
}

/*
 * jittered fills n times that drift forward 40 us per record with up to
 * +-2 ms of noise and an occasional jump of -50..+50 ms: many records per
 * 1 ms bucket, going backwards within and across buckets.
 */
static void
jittered(int64_t *ts, size_t n, uint64_t *rng, uint64_t start)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r;

		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		r     = *rng;
		ts[i] = BASE_NS + (int64_t) (start + i) * 40000 +
		    (int64_t) (r % (4 * MS)) - 2 * MS;
		if (r % 97 == 0) {
			ts[i] += (int64_t) ((r >> 20) % (100 * MS)) - 50 * MS;
		}
	}
}

Test(wal_time, empty_log_seeks_to_offset_1)
{
	evb_wal *w = wal_open_test();

	cr_assert_eq(seek(w, 0), 1);
	cr_assert_eq(seek(w, INT64_MIN), 1);
	evb_wal_close(w);
}

Test(wal_time, monotonic_times_seek_exactly)
{
	evb_wal *w = wal_open_test();
	int64_t  ts[5];

	for (int i = 0; i < 5; i++) {
		ts[i] = BASE_NS + i * 10 * MS;
	}
	append_ts(w, ts, 5);
	cr_assert_eq(seek(w, INT64_MIN), 1);
	cr_assert_eq(seek(w, BASE_NS), 1);
	cr_assert_eq(seek(w, BASE_NS + 1), 2);
	cr_assert_eq(seek(w, BASE_NS + 20 * MS), 3);
	cr_assert_eq(seek(w, BASE_NS + 40 * MS), 5);
	cr_assert_eq(seek(w, BASE_NS + 40 * MS + 1), 6);
	cr_assert_eq(seek(w, INT64_MAX), 6);
	evb_wal_close(w);
}

Test(wal_time, non_monotonic_times_match_brute_force)
{
	evb_wal *w   = wal_open_test();
	uint64_t rng = 0x9E3779B97F4A7C15ull;
	int64_t  ts[200];

	for (int b = 0; b < 15; b++) {
		jittered(ts, 200, &rng, nrecs);
		append_ts(w, ts, 200);
	}
	check_many(w, 1, &rng);
	evb_wal_close(w);
	w = wal_open_test(); // The index is on disk, not in the handle.
	check_many(w, 1, &rng);
	evb_wal_close(w);
}

Test(wal_time, after_retention_seek_never_goes_below_the_first_kept)
{
	evb_wal     *w   = wal_open_test();
	uint64_t     rng = 0x2545F4914F6CDD1Dull, removed = 0;
	evb_wal_stat s;
	int64_t      ts[200];

	for (int b = 0; b < 10; b++) {
		jittered(ts, 200, &rng, nrecs);
		append_ts(w, ts, 200);
		// The first 6 batches become older than retain_age_ms.
		atomic_fetch_add(&now_ns, b == 5 ? 2000 * MS : 10 * MS);
	}
	cr_assert_eq(evb_wal_retain(w, 150, &removed, NULL), EVB_OK);
	cr_assert_eq(removed, 1200);
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.first_off, 1201);
	check_many(w, s.first_off, &rng);
	evb_wal_close(w);
}

/*
 * docs/wal-format.md's example, byte for byte: buckets are of the key
 * (ts XOR 2^63), so their edges are at ts = 224,192 mod 10^6, not at
 * whole milliseconds (a review found the doc describing the latter).
 */
Test(wal_time, index_entries_match_the_documented_example)
{
	static const uint8_t want[2][16] = {
		{ 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 0x80, 0, 0, 0, 0, 0x03, 0x6b, 0xc0, 0, 0, 0, 0, 0, 0, 0, 2 },
	};
	int64_t     ts[5] = { 0, 224192, 999999, 1000000, 1224191 };
	evb_wal    *w     = wal_open_test();
	wtl_raw     raw;
	MDB_cursor *cur;
	MDB_val     k, v;
	size_t      n = 0;

	append_ts(w, ts, 5);
	cr_assert_eq(seek(w, 1050000), 5);
	cr_assert_eq(seek(w, 224192), 2);
	cr_assert_eq(seek(w, 1224192), 6);
	evb_wal_close(w);
	wtl_raw_begin(&raw, wal_dir, "ts", false);
	cr_assert_eq(mdb_cursor_open(raw.txn, raw.dbi, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		cr_assert_lt(n, 2, "a third entry");
		cr_assert_eq(k.mv_size, 8);
		cr_assert_eq(v.mv_size, 8);
		cr_assert_eq(memcmp(k.mv_data, want[n], 8), 0, "entry %zu", n);
		cr_assert_eq(
		    memcmp(v.mv_data, want[n] + 8, 8), 0, "entry %zu", n);
		n++;
	}
	cr_assert_eq(n, 2);
	mdb_cursor_close(cur);
	wtl_raw_end(&raw);
}

/*
 * When retention removed A, the answer is first_off or the first kept
 * record with ts >= T, by what the index kept. A review found wal.h
 * promising first_off only, which the code never gave for T in the bucket
 * of an entry that starts before the log, nor could it without more in
 * the index: whether A was removed depends on the ts of records that are
 * gone. This pins both ends of what wal.h now says. b starts a bucket of
 * the key space (docs/wal-format.md, "Time index").
 */
Test(wal_time, after_retention_removed_a_the_seek_is_first_or_the_first_match)
{
	evb_wal *w      = wal_open_test();
	int64_t  b      = BASE_NS - (BASE_NS + 775808) % MS;
	int64_t  ts[5]  = { b, b + MS / 2, 0, b + 10 * MS, b + 11 * MS };
	uint64_t remove = 0;

	// Entries at 1 (bucket of b) and 4; records 1..2 become older than
	// retain_age_ms and a cursor lets them go.
	append_ts(w, ts, 5);
	cr_assert_eq(evb_wal_cursor_set(w, "c", 2), EVB_OK);
	atomic_fetch_add(&now_ns, 2000 * MS);
	cr_assert_eq(evb_wal_retain(w, 100, &remove, NULL), EVB_OK);
	cr_assert_eq(remove, 2);
	// T in entry 1's bucket, A = 2 removed: the scan from 3 finds 4
	// (record 3 has ts 0).
	cr_assert_eq(seek(w, b + MS / 2 - 100000), 4);
	// T before entry 1's key, A = 1 removed: e2 is entry 1, raised to
	// the first kept offset, 3, whose ts is below T.
	cr_assert_eq(seek(w, b - 5 * MS), 3);
	// A kept: exact.
	cr_assert_eq(seek(w, b + 10 * MS), 4);
	cr_assert_eq(seek(w, b + 11 * MS), 5);
	cr_assert_eq(seek(w, b + 11 * MS + 1), 6);
	evb_wal_close(w);
}

Test(wal_time, far_future_record_holds_later_seeks)
{
	evb_wal *w     = wal_open_test();
	int64_t  ts[4] = { BASE_NS, BASE_NS + 3600000 * MS, BASE_NS + 1 * MS,
		 BASE_NS + 2 * MS };

	append_ts(w, ts, 4);
	// Record 2 is the first at or after any time up to an hour ahead.
	cr_assert_eq(seek(w, BASE_NS + 1 * MS), 2);
	cr_assert_eq(seek(w, BASE_NS + 60000 * MS), 2);
	cr_assert_eq(seek(w, BASE_NS + 3600000 * MS + 1), 5);
	evb_wal_close(w);
}

Test(wal_time, seek_then_iterate_reads_from_there)
{
	evb_wal      *w = wal_open_test();
	evb_wal_iter *it;
	evb_wal_entry e;
	int64_t       ts[6] = { BASE_NS, BASE_NS + 5 * MS, BASE_NS + 1 * MS,
		      BASE_NS + 9 * MS, BASE_NS + 2 * MS, BASE_NS + 10 * MS };
	uint64_t      off;

	append_ts(w, ts, 6);
	off = seek(w, BASE_NS + 3 * MS);
	cr_assert_eq(off, 2);
	cr_assert_eq(evb_wal_iter_open(w, off, &it), EVB_OK);
	for (uint64_t want = 2; want <= 6; want++) {
		cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
		cr_assert_eq(e.off, want);
		cr_assert_eq(e.ts_ns, tss[want]);
	}
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	evb_wal_iter_close(it);
	evb_wal_close(w);
}

Test(wal_time, damaged_record_in_the_scan_stops_the_seek_there)
{
	evb_wal *w     = wal_open_test();
	int64_t  ts[4] = { BASE_NS + 500000, BASE_NS + 100000, BASE_NS + 200000,
		 BASE_NS + 600000 };

	// All in one 1 ms bucket: seeking BASE + 550 us scans 2..4.
	append_ts(w, ts, 4);
	cr_assert_eq(seek(w, BASE_NS + 550000), 4);
	evb_wal_close(w);
	wtl_flip_marker(wal_dir, "MARK-000003");
	w = wal_open_test();
	cr_assert_eq(seek(w, BASE_NS + 550000), 3);
	evb_wal_close(w);
}

Test(wal_time, damaged_index_entry_is_ecorrupt)
{
	evb_wal *w     = wal_open_test();
	int64_t  ts[1] = { BASE_NS };
	uint64_t off   = 42;
	uint8_t  kb[8] = { 0xff, 0, 0, 0, 0, 0, 0, 0 }, vb[3] = { 1, 2, 3 };
	MDB_val  k = { sizeof(kb), kb }, v = { sizeof(vb), vb };
	wtl_raw  r;

	append_ts(w, ts, 1);
	evb_wal_close(w);
	wtl_raw_begin(&r, wal_dir, "ts", true);
	cr_assert_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	wtl_raw_end(&r);

	w = wal_open_test();
	cr_assert_eq(evb_wal_seek_time(w, INT64_MAX, &off), EVB_ECORRUPT);
	cr_assert_eq(off, 42);
	cr_assert_eq(evb_wal_seek_time(w, 0, NULL), EVB_EINVAL);
	cr_assert_eq(evb_wal_seek_time(NULL, 0, &off), EVB_EINVAL);
	evb_wal_close(w);
}

/*
 * A record whose ts equals T is the answer, also when it is found by
 * reading the records of e1's bucket rather than by an index entry: the
 * seek is for ts >= T, not ts > T. All three records are in one bucket,
 * so only the first has an index entry.
 */
Test(wal_time, a_record_at_exactly_t_inside_a_bucket_is_the_answer)
{
	evb_wal *w     = wal_open_test();
	int64_t  b     = BASE_NS - (BASE_NS + 775808) % MS;
	int64_t  ts[4] = { b, b + 100, b + 200, b + 300 };

	append_ts(w, ts, 4);
	cr_assert_eq(seek(w, b), 1);
	cr_assert_eq(seek(w, b + 100), 2);
	cr_assert_eq(seek(w, b + 200), 3);
	cr_assert_eq(seek(w, b + 201), 4);
	cr_assert_eq(seek(w, b + 300), 4);
	cr_assert_eq(seek(w, b + 301), 5);
	evb_wal_close(w);
}
