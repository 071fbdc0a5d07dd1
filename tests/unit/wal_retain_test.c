/*
 * wal_retain_test: retention (evb_wal_retain and the retention thread,
 * wal/wal.h): by age and by size, never past a consumer cursor or the
 * newest record, in bounded transactions, with the index entries of the
 * removed records, reusing freed pages so that the data file stops
 * growing, bytes_used counting only the pages in use, iteration from a
 * removed offset, and the errors. The clock is
 * injected, so no test sleeps; the thread test polls against a deadline.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "tests/support/support.h"
#include "tests/support/wal_testlib.h"
#include "wal/wal.h"

#define MS 1000000LL                   /* ns */
#define BASE_NS (1764035435000LL * MS) /* Some time in 2025. */
#define POLL_DEADLINE_MS 10000         /* For the retention thread. */

static char           *tmp;     /* Fresh per test. */
static char           *wal_dir; /* tmp/wal. */
static _Atomic int64_t now_ns;  /* The test clock. */

static void
setup(void)
{
	wtl_dir_make(&tmp, &wal_dir);
	atomic_store(&now_ns, BASE_NS);
}

static void
teardown(void)
{
	evb_log_set_sink(NULL, NULL);
	wtl_dir_remove(tmp, wal_dir);
}

TestSuite(wal_retain, .init = setup, .fini = teardown, .timeout = 60);

/* opts_test: NONE mode, the test clock, and the given limits. */
static evb_wal_opts
opts_test(uint64_t age_ms, uint64_t bytes)
{
	evb_wal_opts o;

	evb_wal_opts_default(&o);
	o.durability    = EVB_WAL_NONE;
	o.clock_ns      = wtl_clock;
	o.clock_arg     = &now_ns;
	o.retain_age_ms = age_ms;
	o.retain_bytes  = bytes;
	return (o);
}

/*
 * append_n appends count records of len bytes in one batch, with ts
 * 1 ms apart, ids "r<off>" (when with_ids), and payloads that start
 * with their offset.
 */
static void
append_n(evb_wal *w, size_t count, size_t len, bool with_ids)
{
	evb_wal_rec *recs = calloc(count, sizeof(*recs));
	char        *data = calloc(count, len + 24);
	char        *ids  = calloc(count, 24);
	uint64_t     last = 0;

	cr_assert(recs != NULL && data != NULL && ids != NULL);
	cr_assert_eq(evb_wal_last(w, &last), EVB_OK);
	for (size_t i = 0; i < count; i++) {
		char *p = data + i * (len + 24);

		(void) snprintf(
		    p, 24, "%llu", (unsigned long long) (last + 1 + i));
		recs[i].ts_ns   = BASE_NS + (int64_t) (last + 1 + i) * MS;
		recs[i].payload = p;
		recs[i].len     = len;
		if (with_ids) {
			(void) snprintf(ids + i * 24, 24, "r%llu",
			    (unsigned long long) (last + 1 + i));
			recs[i].id     = ids + i * 24;
			recs[i].id_len = strlen(ids + i * 24);
		}
	}
	cr_assert_eq(evb_wal_append(w, recs, count, NULL, NULL), EVB_OK);
	free(ids);
	free(data);
	free(recs);
}

static evb_wal_stat
stats(evb_wal *w)
{
	evb_wal_stat s;

	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	return (s);
}

static uint64_t
retain(evb_wal *w, size_t max)
{
	uint64_t removed = 0;
	evb_diag d       = { { 0 } };

	cr_assert_eq(evb_wal_retain(w, max, &removed, &d), EVB_OK, "%s", d.msg);
	return (removed);
}

static void
verify_clean(evb_wal *w, uint64_t first, uint64_t last)
{
	evb_wal_verify_report r;
	evb_diag              d = { { 0 } };

	cr_assert_eq(evb_wal_verify(w, &r, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(r.first_off, first);
	cr_assert_eq(r.last_off, last);
	cr_assert_eq(r.record_count, last - first + 1);
}

/* raw_stat reads a named DB's stat and the last txn id of the closed
 * log with LMDB's own API. */
static void
raw_stat(const char *db, MDB_stat *st, size_t *txnid)
{
	wtl_raw     r;
	MDB_envinfo info;

	wtl_raw_begin(&r, wal_dir, db, false);
	cr_assert_eq(mdb_stat(r.txn, r.dbi, st), 0);
	cr_assert_eq(mdb_env_info(r.env, &info), 0);
	*txnid = info.me_last_txnid;
	mdb_txn_abort(r.txn);
	mdb_env_close(r.env);
}

Test(wal_retain, by_age_removes_old_records_and_moves_first)
{
	evb_wal_opts  o = opts_test(1000, 0);
	evb_wal      *w = wtl_open(wal_dir, &o);
	evb_wal_iter *it;
	evb_wal_entry e;
	evb_wal_stat  s;

	append_n(w, 10, 50, false);
	atomic_fetch_add(&now_ns, 500 * MS);
	append_n(w, 10, 50, false);
	atomic_fetch_add(&now_ns, 499 * MS);
	cr_assert_eq(retain(w, 100), 0); // The first batch is 999 ms old.
	atomic_fetch_add(&now_ns, 1 * MS);
	cr_assert_eq(retain(w, 100), 10);
	s = stats(w);
	cr_assert_eq(s.first_off, 11);
	cr_assert_eq(s.last_off, 20);
	cr_assert_eq(s.record_count, 10);
	cr_assert_eq(s.retain_removed, 10);
	verify_clean(w, 11, 20);
	// An iterator from a removed offset starts at the first kept one.
	cr_assert_eq(evb_wal_iter_open(w, 3, &it), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, 11);
	cr_assert_str_eq(e.payload, "11");
	evb_wal_iter_close(it);
	evb_wal_close(w);
}

Test(wal_retain, iterator_behind_retention_continues_at_the_first_kept)
{
	evb_wal_opts  o = opts_test(1000, 0);
	evb_wal      *w = wtl_open(wal_dir, &o);
	evb_wal_iter *it;
	evb_wal_entry e;

	append_n(w, 600, 10, false); // Three iterator chunks.
	cr_assert_eq(evb_wal_iter_open(w, 0, &it), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, 1);
	atomic_fetch_add(&now_ns, 1000 * MS);
	append_n(w, 1, 10, false);
	cr_assert_eq(retain(w, 1000), 600);
	// The rest of the first chunk was copied before retention ran.
	for (uint64_t off = 2; off <= 256; off++) {
		cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
		cr_assert_eq(e.off, off);
	}
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, 601);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	evb_wal_iter_close(it);
	evb_wal_close(w);
}

Test(wal_retain, by_size_keeps_the_log_under_retain_bytes)
{
	evb_wal_opts o = opts_test(0, 256 * 1024);
	evb_wal     *w = wtl_open(wal_dir, &o);
	evb_wal_stat s;

	for (int b = 0; b < 10; b++) {
		append_n(w, 100, 1000, false);
	}
	cr_assert_gt(stats(w).log_bytes, 1000 * 1000);
	cr_assert_gt(retain(w, 64), 700);
	s = stats(w);
	cr_assert_leq(s.log_bytes, 256 * 1024);
	// Not far below either: three of these records fit in a page, so
	// 256 KiB holds about 190.
	cr_assert_geq(s.record_count, 150, "%llu records",
	    (unsigned long long) s.record_count);
	cr_assert_eq(s.last_off, 1000);
	verify_clean(w, s.first_off, 1000);
	cr_assert_eq(retain(w, 64), 0);
	evb_wal_close(w);
}

/*
 * free_listed_bytes reads the closed log's free-page DB (LMDB's dbi 0)
 * by hand: each value is a page list whose first word is its length.
 * OUT: *high, the high-water mark (last page + 1), in bytes.
 */
static uint64_t
free_listed_bytes(uint64_t *high)
{
	wtl_raw     raw;
	MDB_envinfo info;
	MDB_stat    est;
	MDB_cursor *cur;
	MDB_val     k, v;
	uint64_t    pages = 0;

	wtl_raw_begin(&raw, wal_dir, "log", false);
	cr_assert_eq(mdb_env_info(raw.env, &info), 0);
	cr_assert_eq(mdb_env_stat(raw.env, &est), 0);
	cr_assert_eq(mdb_cursor_open(raw.txn, 0, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		size_t n;

		cr_assert_geq(v.mv_size, sizeof(n));
		memcpy(&n, v.mv_data, sizeof(n));
		pages += n;
	}
	mdb_cursor_close(cur);
	wtl_raw_end(&raw);
	*high = ((uint64_t) info.me_last_pgno + 1) * est.ms_psize;
	return (pages * est.ms_psize);
}

/*
 * A review found bytes_used to be the file's high-water mark (LMDB's last
 * page + 1), which retention never lowers: it went up after retention
 * removed 98% of the log. It is the pages in use: retention lowers it
 * below file_bytes, and with the pages on LMDB's free list it makes up
 * the high-water mark exactly.
 */
Test(wal_retain, bytes_used_drops_with_retention_and_excludes_free_pages)
{
	evb_wal_opts o = opts_test(0, 64 * 1024);
	evb_wal     *w = wtl_open(wal_dir, &o);
	evb_wal_stat before, after;
	uint64_t     high, free_bytes;

	for (int b = 0; b < 20; b++) {
		append_n(w, 100, 1000, false);
	}
	before = stats(w);
	cr_assert_gt(retain(w, 10000), 1900);
	after = stats(w);
	evb_wal_close(w);
	free_bytes = free_listed_bytes(&high);
	fprintf(stderr,
	    "before: used %llu file %llu; after: used %llu log %llu "
	    "file %llu; free-listed %llu of %llu\n",
	    (unsigned long long) before.bytes_used,
	    (unsigned long long) before.file_bytes,
	    (unsigned long long) after.bytes_used,
	    (unsigned long long) after.log_bytes,
	    (unsigned long long) after.file_bytes,
	    (unsigned long long) free_bytes, (unsigned long long) high);
	cr_assert_leq(before.bytes_used, before.file_bytes);
	cr_assert_gt(before.bytes_used, 2000 * 1000);
	cr_assert_geq(after.bytes_used, after.log_bytes);
	cr_assert_lt(after.bytes_used, after.file_bytes / 4);
	cr_assert_lt(after.bytes_used, before.bytes_used);
	cr_assert_eq(after.bytes_used + free_bytes, high);
}

Test(wal_retain, never_past_the_lowest_cursor)
{
	evb_wal_opts o = opts_test(1000, 0);
	evb_wal     *w = wtl_open(wal_dir, &o);

	append_n(w, 20, 50, false);
	atomic_fetch_add(&now_ns, 5000 * MS);
	cr_assert_eq(evb_wal_cursor_set(w, "slow", 7), EVB_OK);
	cr_assert_eq(evb_wal_cursor_set(w, "fast", 15), EVB_OK);
	// "slow" is done with 7: 1..7 may go, 8 must stay.
	cr_assert_eq(retain(w, 100), 7);
	cr_assert_eq(stats(w).first_off, 8);
	cr_assert_eq(evb_wal_cursor_set(w, "slow", 18), EVB_OK);
	cr_assert_eq(retain(w, 100), 8);
	cr_assert_eq(stats(w).first_off, 16);
	evb_wal_close(w);
}

Test(wal_retain, never_the_newest_so_offsets_are_not_reused)
{
	evb_wal_opts   o = opts_test(1000, 0);
	evb_wal       *w = wtl_open(wal_dir, &o);
	evb_wal_rec    rec;
	evb_wal_result r;

	append_n(w, 5, 50, false);
	atomic_fetch_add(&now_ns, 5000 * MS);
	cr_assert_eq(retain(w, 100), 4);
	cr_assert_eq(stats(w).first_off, 5);
	cr_assert_eq(retain(w, 100), 0);
	evb_wal_close(w);
	w = wtl_open(wal_dir, &o);
	memset(&rec, 0, sizeof(rec));
	cr_assert_eq(evb_wal_append(w, &rec, 1, &r, NULL), EVB_OK);
	cr_assert_eq(r.off, 6);
	evb_wal_close(w);
}

Test(wal_retain, works_in_transactions_of_at_most_max_records)
{
	evb_wal_opts o = opts_test(1000, 0);
	evb_wal     *w = wtl_open(wal_dir, &o);
	MDB_stat     st;
	size_t       before, after;

	append_n(w, 101, 20, false);
	evb_wal_close(w);
	raw_stat("log", &st, &before);
	atomic_fetch_add(&now_ns, 5000 * MS);
	w = wtl_open(wal_dir, &o);
	cr_assert_eq(retain(w, 7), 100);
	evb_wal_close(w);
	raw_stat("log", &st, &after);
	cr_assert_eq(st.ms_entries, 1);
	// 14 txns of 7 records and one of 2 (the open, and the last txn
	// that finds nothing to remove, write nothing and take no id).
	cr_assert_eq(after - before, 15, "%zu txns", after - before);
}

/* dup_of appends one record with id and says what became of it. */
static evb_wal_result
dup_of(evb_wal *w, const char *id)
{
	evb_wal_rec    rec = { 0 };
	evb_wal_result r;

	rec.payload = id;
	rec.len     = strlen(id);
	rec.id      = id;
	rec.id_len  = strlen(id);
	cr_assert_eq(evb_wal_append(w, &rec, 1, &r, NULL), EVB_OK);
	return (r);
}

Test(wal_retain, removes_the_ids_of_removed_records_from_the_window)
{
	evb_wal_opts   o = opts_test(1000, 0);
	evb_wal       *w;
	evb_wal_result r;
	MDB_stat       st;
	size_t         txnid;

	o.dedup_window_count = 10;
	w                    = wtl_open(wal_dir, &o);
	for (int i = 0; i < 25; i++) {
		append_n(w, 1, 20, true);
	}
	// The window is the last 10 records: r16..r25.
	cr_assert_eq(stats(w).id_count, 10);
	atomic_fetch_add(&now_ns, 5000 * MS);
	cr_assert_eq(evb_wal_cursor_set(w, "c", 22), EVB_OK);
	cr_assert_eq(retain(w, 100), 22);
	cr_assert_eq(stats(w).id_count, 3);
	evb_wal_close(w);
	// One time entry per record (1 ms apart); the one for 23 on stay.
	raw_stat("ts", &st, &txnid);
	cr_assert_eq(st.ms_entries, 3);
	// A handle that has not appended counts the window in the log.
	w = wtl_open(wal_dir, &o);
	cr_assert_eq(stats(w).id_count, 3);
	r = dup_of(w, "r24");
	cr_assert(r.status == EVB_EEXIST && r.off == 24);
	r = dup_of(w, "r20"); // Its record is gone: stored again.
	cr_assert(r.status == EVB_OK && r.off == 26);
	cr_assert_eq(stats(w).id_count, 4); // r23, r24, r25, r20.
	evb_wal_close(w);
}

/*
 * At a steady rate with retention, LMDB reuses the freed pages: after a
 * few rounds of append and retain, the data file stops growing.
 */
Test(wal_retain, steady_state_data_file_stops_growing)
{
	evb_wal_opts o = opts_test(0, 1024 * 1024);
	evb_wal     *w;
	uint64_t     size[7];

	o.dedup_window_count = 3000;
	w                    = wtl_open(wal_dir, &o);
	for (int round = 1; round <= 6; round++) {
		for (int b = 0; b < 10; b++) {
			append_n(w, 300, 300, true);
		}
		(void) retain(w, 1000);
		size[round] = stats(w).file_bytes;
		cr_assert_leq(stats(w).log_bytes, 1024 * 1024);
	}
	cr_assert_gt(size[1], 1024 * 1024);
	for (int round = 4; round <= 6; round++) {
		cr_assert_leq(size[round], size[3] + 4 * 4096,
		    "round %d: %llu bytes, round 3: %llu", round,
		    (unsigned long long) size[round],
		    (unsigned long long) size[3]);
	}
	evb_wal_close(w);
}

/* ---- The retention thread ----------------------------------------------- */

static void
sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	(void) nanosleep(&ts, NULL);
}

Test(wal_retain, thread_removes_old_records_without_being_called)
{
	evb_wal_opts o = opts_test(1000, 0);
	evb_wal     *w;
	uint64_t     deadline;

	o.retain_period_ms   = 5;
	o.retain_txn_records = 3;
	w                    = wtl_open(wal_dir, &o);
	append_n(w, 10, 50, false);
	atomic_fetch_add(&now_ns, 1000 * MS);
	append_n(w, 1, 50, false);
	deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(POLL_DEADLINE_MS);
	while (stats(w).first_off != 11) {
		cr_assert_lt(evb_clock_mono_ms(), deadline,
		    "retention thread did not run: first_off %llu",
		    (unsigned long long) stats(w).first_off);
		sleep_ms(1);
	}
	cr_assert_eq(stats(w).retain_removed, 10);
	cr_assert_eq(stats(w).retain_failures, 0);
	evb_wal_close(w);
}

/* A sink that keeps the last EVB-WAL-RETAIN line. */
typedef struct log_catch {
	_Atomic int count;    /* EVB-WAL-RETAIN lines seen. */
	char        msg[512]; /* The first one. */
} log_catch;

static void
log_sink(void *arg, evb_log_level level, const char *id, const char *msg)
{
	log_catch *c = arg;

	if (level == EVB_LOG_ERR && strcmp(id, "EVB-WAL-RETAIN") == 0 &&
	    atomic_fetch_add(&c->count, 1) == 0) {
		(void) snprintf(c->msg, sizeof(c->msg), "%s", msg);
	}
}

/* damage_value replaces the record at off with a value too short for a
 * header, using LMDB's own API on the closed log. */
static void
damage_value(uint64_t off)
{
	uint8_t kb[8], vb[10] = { 2 };
	MDB_val k = { sizeof(kb), kb }, v = { sizeof(vb), vb };
	wtl_raw r;

	for (int i = 0; i < 8; i++) {
		kb[i] = (uint8_t) (off >> (56 - 8 * i));
	}
	wtl_raw_begin(&r, wal_dir, "log", true);
	cr_assert_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	wtl_raw_end(&r);
}

Test(wal_retain, unreadable_record_stops_retention_by_age_with_ecorrupt)
{
	evb_wal_opts o       = opts_test(1000, 0);
	evb_wal     *w       = wtl_open(wal_dir, &o);
	uint64_t     removed = 99;
	evb_diag     d       = { { 0 } };

	append_n(w, 10, 50, false);
	evb_wal_close(w);
	damage_value(4);
	atomic_fetch_add(&now_ns, 5000 * MS);
	w = wtl_open(wal_dir, &o);
	cr_assert_eq(evb_wal_retain(w, 100, &removed, &d), EVB_ECORRUPT);
	cr_assert_eq(removed, 99);
	cr_assert(strstr(d.msg, "offset 4:") != NULL, "%s", d.msg);
	cr_assert(strstr(d.msg, "evbus wal verify") != NULL, "%s", d.msg);
	// The records before it went.
	cr_assert_eq(stats(w).first_off, 4);
	evb_wal_close(w);
}

Test(wal_retain, thread_failure_is_counted_and_logged)
{
	static log_catch c;
	evb_wal_opts     o = opts_test(1000, 0);
	evb_wal         *w = wtl_open(wal_dir, &o);
	uint64_t         deadline;

	append_n(w, 10, 50, false);
	evb_wal_close(w);
	damage_value(1);
	atomic_fetch_add(&now_ns, 5000 * MS);
	evb_log_set_sink(log_sink, &c);
	o.retain_period_ms = 5;
	w                  = wtl_open(wal_dir, &o);
	deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(POLL_DEADLINE_MS);
	while (stats(w).retain_failures == 0) {
		cr_assert_lt(evb_clock_mono_ms(), deadline);
		sleep_ms(1);
	}
	evb_wal_close(w);
	cr_assert_geq(atomic_load(&c.count), 1);
	cr_assert(strstr(c.msg, "offset 1:") != NULL, "%s", c.msg);
}

Test(wal_retain, bad_calls_and_options_are_einval)
{
	evb_wal_opts o = opts_test(1000, 0);
	evb_wal     *w = NULL;
	evb_diag     d = { { 0 } };

	o.retain_period_ms = 5;
	o.retain_age_ms    = 0;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "retain_period_ms") != NULL, "%s", d.msg);
	o.retain_age_ms      = 1000;
	o.retain_txn_records = 0;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "retain_txn_records") != NULL, "%s", d.msg);
	o.retain_txn_records = 10;
	o.retain_age_ms      = UINT64_MAX;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "retain_age_ms") != NULL, "%s", d.msg);
	cr_assert_null(w);

	o = opts_test(1000, 0);
	w = wtl_open(wal_dir, &o);
	append_n(w, 2, 10, false);
	cr_assert_eq(evb_wal_retain(w, 0, NULL, &d), EVB_EINVAL);
	cr_assert_eq(evb_wal_retain(NULL, 1, NULL, &d), EVB_EINVAL);
	evb_wal_close(w);

	o.read_only = true;
	w           = wtl_open(wal_dir, &o);
	cr_assert_eq(evb_wal_retain(w, 1, NULL, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "read-write") != NULL, "%s", d.msg);
	evb_wal_close(w);
	w                  = NULL;
	o.retain_period_ms = 5;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "read-only") != NULL, "%s", d.msg);
}
