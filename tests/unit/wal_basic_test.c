/*
 * wal_basic_test: the write-ahead log through wal/wal.h: the stored record
 * bytes, batch atomicity and offsets across reopen, map growth and its
 * cap, named cursors, hand-made corruption and gaps found by the iterator
 * and verify, a read-only reader in another process, the format version
 * check, and every error the header lists.
 *
 * Files are damaged by hand with LMDB's own API or by flipping bytes in
 * data.mdb, never through a test hook in the WAL. A full disk is a small
 * tmpfs mounted for the test when it runs as root and may mount one (in a
 * mount namespace of its own), else RLIMIT_FSIZE.
 */
// unshare and CLONE_NEWNS, for the disk-full test's private tmpfs.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "tests/support/support.h"
#include "tests/support/wal_testlib.h"
#include "wal/wal.h"

static char *tmp;     /* Fresh per test. */
static char *wal_dir; /* tmp/wal, created by evb_wal_open. */
static char *mnt;     /* tmp/fs while a tmpfs is mounted there. */

static void
setup(void)
{
	wtl_dir_make(&tmp, &wal_dir);
}

static void
teardown(void)
{
	// Also after a failed assertion: the mount must not outlive the
	// test (its namespace dies with the process anyway).
	if (mnt != NULL) {
		if (umount2(mnt, MNT_DETACH) != 0) {
			fprintf(stderr, "wal_basic_test: unmounting %s: %s\n",
			    mnt, strerror(errno));
		}
		free(mnt);
		mnt = NULL;
	}
	wtl_dir_remove(tmp, wal_dir);
}

TestSuite(wal, .init = setup, .fini = teardown, .timeout = 60);

/* ---- Helpers ----------------------------------------------------------- */

static evb_wal *
wal_open_fast(void)
{
	evb_wal_opts o;

	evb_wal_opts_default(&o);
	o.durability = EVB_WAL_NONE;
	return (wtl_open(wal_dir, &o));
}

/* fill writes len bytes that depend only on off, so reads can be checked. */
static void
fill(uint8_t *p, size_t len, uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t) x;
	}
}

/*
 * append_n appends count records of len bytes each, in one batch, whose
 * payload is fill(off) for the offset they will get (expect_first).
 */
static int
append_n(
    evb_wal *w, uint64_t expect_first, size_t count, size_t len, evb_diag *d)
{
	evb_wal_rec    *recs = calloc(count, sizeof(*recs));
	evb_wal_result *res  = calloc(count, sizeof(*res));
	uint8_t        *data = malloc(count * len + 1);
	int             rc;

	cr_assert(recs != NULL && res != NULL && data != NULL);
	for (size_t i = 0; i < count; i++) {
		fill(data + i * len, len, expect_first + i);
		recs[i].type    = (uint16_t) (i % 7);
		recs[i].epoch   = 3;
		recs[i].seq     = expect_first + i;
		recs[i].ts_ns   = (int64_t) (expect_first + i) * 1000;
		recs[i].payload = data + i * len;
		recs[i].len     = len;
	}
	rc = evb_wal_append(w, recs, count, res, d);
	if (rc == EVB_OK) {
		for (size_t i = 0; i < count; i++) {
			cr_assert_eq(res[i].status, EVB_OK);
			cr_assert_eq(res[i].off, expect_first + i);
		}
	}
	free(data);
	free(res);
	free(recs);
	return (rc);
}

/* check_all iterates the whole log: offsets 1..last, payloads of len. */
static void
check_all(evb_wal *w, uint64_t last, size_t len)
{
	evb_wal_iter *it = NULL;
	evb_wal_entry e;
	uint8_t      *want = malloc(len + 1);
	uint64_t      n    = 0;
	int           rc;

	cr_assert_not_null(want);
	cr_assert_eq(evb_wal_iter_open(w, 0, &it), EVB_OK);
	while ((rc = evb_wal_iter_next(it, &e)) == EVB_OK) {
		n++;
		cr_assert_eq(e.off, n);
		cr_assert_eq(e.seq, n);
		cr_assert_eq(e.len, len);
		fill(want, len, n);
		cr_assert_eq(memcmp(e.payload, want, len), 0, "offset %llu",
		    (unsigned long long) n);
	}
	cr_assert_eq(rc, EVB_EOF);
	cr_assert_eq(n, last);
	evb_wal_iter_close(it);
	free(want);
}

static void
verify_clean(evb_wal *w, uint64_t count)
{
	evb_wal_verify_report r;
	evb_diag              d = { { 0 } };

	cr_assert_eq(evb_wal_verify(w, &r, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(r.record_count, count);
	cr_assert_eq(r.bad_count, 0);
	cr_assert_eq(r.first_bad_off, 0);
	cr_assert_eq(r.last_off, count);
}

/* ---- Records and offsets ----------------------------------------------- */

Test(wal, crc32c_reference_matches_the_check_value)
{
	// Guards the test's own reference before it is used to judge the WAL.
	cr_assert_eq(
	    wtl_ref_crc32c(0, (const uint8_t *) "123456789", 9), 0xE3069283u);
}

Test(wal, empty_log_has_no_records)
{
	evb_wal      *w = wal_open_fast();
	evb_wal_iter *it;
	evb_wal_entry e;
	uint64_t      last = 99;

	cr_assert_eq(evb_wal_last(w, &last), EVB_OK);
	cr_assert_eq(last, 0);
	cr_assert_eq(evb_wal_iter_open(w, 0, &it), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	evb_wal_iter_close(it);
	verify_clean(w, 0);
	evb_wal_close(w);
}

Test(wal, append_then_read_round_trips_every_field)
{
	static const uint8_t p0[]    = { 0x82, 0x00, 0xff, 0x00, 0x7f };
	evb_wal_rec          recs[3] = {
		         { 65535, UINT64_MAX, 1, INT64_MIN, p0, sizeof(p0), NULL, 0 },
		         { 2, 7, 2, -1, NULL, 0, NULL, 0 },
		         { 3, 0, UINT64_MAX, INT64_MAX, "abc", 3, NULL, 0 },
	};
	evb_wal       *w = wal_open_fast();
	evb_wal_iter  *it;
	evb_wal_entry  e;
	evb_wal_result res[3];
	int64_t        t0   = evb_clock_real_ns(), t1;
	uint64_t       last = 0;

	cr_assert_eq(evb_wal_append(w, recs, 3, res, NULL), EVB_OK);
	t1 = evb_clock_real_ns();
	for (uint64_t i = 0; i < 3; i++) {
		cr_assert_eq(res[i].status, EVB_OK);
		cr_assert_eq(res[i].off, i + 1);
	}
	cr_assert_eq(evb_wal_last(w, &last), EVB_OK);
	cr_assert_eq(last, 3);
	cr_assert_eq(evb_wal_iter_open(w, 0, &it), EVB_OK);
	for (uint64_t i = 0; i < 3; i++) {
		cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
		cr_assert_eq(e.off, i + 1);
		cr_assert_eq(e.flags, 0);
		cr_assert_eq(e.type, recs[i].type);
		cr_assert_eq(e.epoch, recs[i].epoch);
		cr_assert_eq(e.seq, recs[i].seq);
		cr_assert_eq(e.ts_ns, recs[i].ts_ns);
		// The default clock is the wall clock, read once per batch.
		cr_assert(e.append_ns >= t0 && e.append_ns <= t1);
		cr_assert_eq(e.len, recs[i].len);
		if (e.len > 0) {
			cr_assert_eq(
			    memcmp(e.payload, recs[i].payload, e.len), 0);
		} else {
			cr_assert_null(e.payload);
		}
	}
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	evb_wal_iter_close(it);
	evb_wal_close(w);
}

/* fixed_clock is a clock that always reads *arg. */
static int64_t
fixed_clock(void *arg)
{
	return (*(const int64_t *) arg);
}

/*
 * check_stored_bytes appends rec alone to a fresh log at a fixed append
 * time and checks that the log holds want (its CRC field, bytes 40..43,
 * filled in here with the test's own bitwise CRC-32C), and that the
 * public encoder writes the same bytes.
 */
static void
check_stored_bytes(const evb_wal_rec *rec, uint8_t *want, size_t n)
{
	int64_t      append_ns = 0x2122232425262728LL;
	uint8_t      key[8]    = { 0, 0, 0, 0, 0, 0, 0, 1 };
	uint8_t     *enc       = malloc(n);
	uint32_t     crc;
	evb_wal_opts o;
	evb_wal     *w;
	wtl_raw      r;
	MDB_val      k = { sizeof(key), key }, v;

	cr_assert_not_null(enc);
	evb_wal_opts_default(&o);
	o.durability = EVB_WAL_NONE;
	o.clock_ns   = fixed_clock;
	o.clock_arg  = &append_ns;
	w            = wtl_open(wal_dir, &o);
	cr_assert_eq(evb_wal_append(w, rec, 1, NULL, NULL), EVB_OK);
	evb_wal_close(w);

	crc      = wtl_ref_crc32c(0, want, 40);
	crc      = wtl_ref_crc32c(crc, want + 44, n - 44);
	want[40] = (uint8_t) (crc >> 24);
	want[41] = (uint8_t) (crc >> 16);
	want[42] = (uint8_t) (crc >> 8);
	want[43] = (uint8_t) crc;

	wtl_raw_begin(&r, wal_dir, "log", false);
	cr_assert_eq(mdb_get(r.txn, r.dbi, &k, &v), 0);
	cr_assert_eq(v.mv_size, n);
	cr_assert_eq(memcmp(v.mv_data, want, n), 0);
	wtl_raw_end(&r);

	cr_assert_eq(evb_wal_record_size(rec), n);
	evb_wal_record_encode(enc, rec, append_ns);
	cr_assert_eq(memcmp(enc, want, n), 0);
	free(enc);
}

/* The header of the documented examples, before the CRC: flags, then
 * the payload length. */
#define DOC_HEADER(flags, len)                                             \
	4, (flags), 0x01, 0x02, /* version, type */                        \
	    0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10, /* epoch */    \
	    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* seq */      \
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* ts_ns -2 */ \
	    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, /* append */   \
	    0x00, 0x00, 0x00, (len), 0, 0, 0, 0 /* length, CRC below */

Test(wal, stored_record_bytes_match_the_documented_format)
{
	static const uint8_t payload[] = { 0x81, 0xa1, 'k', 0x01, 0x00 };
	evb_wal_rec          rec       = { 0x0102, 0x0304050607080910ull,
		               0x1112131415161718ull, -2, payload, sizeof(payload), "id-1",
		               4 };
	uint8_t want[] = { DOC_HEADER(0, sizeof(payload)), 4, 'i', 'd', '-',
		'1', // id length, id
		0x81, 0xa1, 'k', 0x01, 0x00 };

	check_stored_bytes(&rec, want, sizeof(want));
}

Test(wal, an_id_inside_the_payload_is_stored_as_its_place)
{
	// {"id": "id-1"}: the id is bytes 5..8 of the payload.
	static const uint8_t payload[] = { 0x81, 0xa2, 'i', 'd', 0xa4, 'i', 'd',
		'-', '1' };
	evb_wal_rec          rec       = { 0x0102, 0x0304050607080910ull,
		               0x1112131415161718ull, -2, payload, sizeof(payload),
		               payload + 5, 4 };
	uint8_t        want[] = { DOC_HEADER(0x01, sizeof(payload)), 4, 0x00,
		       0x05, // id length, its place
		       0x81, 0xa2, 'i', 'd', 0xa4, 'i', 'd', '-', '1' };
	evb_wal       *w;
	evb_wal_iter  *it;
	evb_wal_entry  e;
	evb_wal_result res;

	check_stored_bytes(&rec, want, sizeof(want));
	// Read back, the id is the payload's bytes, and a copy of the
	// event with its id elsewhere is still a duplicate.
	w = wal_open_fast();
	cr_assert_eq(evb_wal_iter_open(w, 1, &it), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.id_len, 4);
	cr_assert_eq(memcmp(e.id, "id-1", 4), 0);
	cr_assert_eq((const uint8_t *) e.id, (const uint8_t *) e.payload + 5);
	cr_assert_eq(e.len, sizeof(payload));
	evb_wal_iter_close(it);
	rec.id = "id-1";
	cr_assert_eq(evb_wal_append(w, &rec, 1, &res, NULL), EVB_OK);
	cr_assert_eq(res.status, EVB_EEXIST);
	cr_assert_eq(res.off, 1);
	evb_wal_close(w);
}

/*
 * The encoder refers to the id only when all of it lies inside the
 * payload at a place a u16 holds; otherwise it copies it. Each case is
 * encoded, checked for its form and size, decoded, and encoded again
 * from what was decoded to the same bytes.
 */
Test(wal, the_id_is_referred_to_only_inside_the_payload_within_reach)
{
	enum { BIG = 65536 + 4 };
	static uint8_t pay[BIG];
	static const struct {
		size_t at;     /* The id's first byte, from the payload's. */
		size_t id_len; /* Its bytes. */
		size_t len;    /* The payload's bytes. */
		bool   ref;    /* Stored as its place (flag 0x01). */
	} cases[] = {
		{ 0, 4, 4, true },             // the whole payload
		{ 6, 4, 10, true },            // ending at the payload's end
		{ 65535, 4, 65535 + 4, true }, // the farthest place
		{ 65536, 4, BIG, false },      // one byte beyond it
		{ 8, 4, 10, false },           // across the payload's end
		{ 0, 4, 3, false },            // longer than the payload
		{ 0, 4, 0, false },            // an empty payload
	};

	for (size_t i = 0; i < sizeof(pay); i++) {
		pay[i] = (uint8_t) (i * 131 + 7);
	}
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		evb_wal_rec   r   = { 9, 1, 2, 3, pay, cases[c].len,
			    pay + cases[c].at, cases[c].id_len };
		size_t        n   = evb_wal_record_size(&r);
		uint8_t      *enc = malloc(n), *again = malloc(n);
		evb_wal_entry e;
		evb_wal_rec   back;

		cr_assert(enc != NULL && again != NULL);
		cr_assert_eq(n,
		    45 + (cases[c].ref ? 2 : cases[c].id_len) + cases[c].len,
		    "case %zu", c);
		evb_wal_record_encode(enc, &r, 5);
		cr_assert_eq(enc[1], cases[c].ref ? 0x01 : 0x00, "case %zu", c);
		cr_assert_eq(evb_wal_record_decode(1, enc, n, &e, NULL), EVB_OK,
		    "case %zu", c);
		cr_assert_eq(e.id_len, cases[c].id_len);
		cr_assert_eq(memcmp(e.id, pay + cases[c].at, e.id_len), 0);
		cr_assert_eq(e.len, cases[c].len);
		cr_assert(e.len == 0 || memcmp(e.payload, pay, e.len) == 0);
		back = (evb_wal_rec) { e.type, e.epoch, e.seq, e.ts_ns,
			e.payload, e.len, e.id, e.id_len };
		cr_assert_eq(evb_wal_record_size(&back), n, "case %zu", c);
		evb_wal_record_encode(again, &back, e.append_ns);
		cr_assert_eq(memcmp(again, enc, n), 0, "case %zu", c);
		free(enc);
		free(again);
	}
}

Test(wal, reopen_keeps_next_offset)
{
	evb_wal *w    = wal_open_fast();
	uint64_t last = 0;

	cr_assert_eq(append_n(w, 1, 5, 40, NULL), EVB_OK);
	evb_wal_close(w);
	w = wal_open_fast();
	cr_assert_eq(evb_wal_last(w, &last), EVB_OK);
	cr_assert_eq(last, 5);
	cr_assert_eq(append_n(w, 6, 3, 40, NULL), EVB_OK);
	evb_wal_close(w);
	w = wal_open_fast();
	check_all(w, 8, 40);
	verify_clean(w, 8);
	evb_wal_close(w);
}

Test(wal, iterator_starts_at_from_off_and_follows_the_tail)
{
	evb_wal      *w = wal_open_fast();
	evb_wal_iter *it;
	evb_wal_entry e;

	// 600 records span three iterator chunks.
	cr_assert_eq(append_n(w, 1, 600, 10, NULL), EVB_OK);
	cr_assert_eq(evb_wal_iter_open(w, 598, &it), EVB_OK);
	for (uint64_t off = 598; off <= 600; off++) {
		cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
		cr_assert_eq(e.off, off);
	}
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	cr_assert_eq(append_n(w, 601, 2, 10, NULL), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, 601);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, 602);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	evb_wal_iter_close(it);
	check_all(w, 602, 10);
	evb_wal_close(w);
}

/* ---- Map growth -------------------------------------------------------- */

Test(wal, batch_needing_map_growth_lands_whole)
{
	evb_wal_opts o;
	evb_wal_stat s;
	evb_wal     *w;
	evb_diag     d = { { 0 } };

	evb_wal_opts_default(&o);
	o.durability       = EVB_WAL_NONE;
	o.map_size_initial = 64 * 1024;
	w                  = wtl_open(wal_dir, &o);
	cr_assert_eq(append_n(w, 1, 10, 100, &d), EVB_OK, "%s", d.msg);
	// One batch of about 4 MB in a 64 KiB map: several growths, each
	// followed by a retry of the whole batch.
	cr_assert_eq(append_n(w, 11, 4000, 1000, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_geq(s.map_grows, 6);
	cr_assert_eq(s.record_count, 4010);
	cr_assert_eq(s.first_off, 1);
	cr_assert_eq(s.last_off, 4010);
	evb_wal_close(w);

	w = wtl_open(wal_dir, &o);
	cr_assert_eq(append_n(w, 4011, 1, 1000, &d), EVB_OK, "%s", d.msg);
	verify_clean(w, 4011);
	evb_wal_close(w);
}

Test(wal, map_grows_from_64k_to_hold_50mb)
{
	evb_wal_opts o;
	evb_wal_stat s;
	evb_wal     *w;
	evb_diag     d = { { 0 } };

	evb_wal_opts_default(&o);
	o.durability       = EVB_WAL_NONE;
	o.map_size_initial = 64 * 1024;
	w                  = wtl_open(wal_dir, &o);
	for (uint64_t b = 0; b < 50; b++) {
		cr_assert_eq(append_n(w, b * 1000 + 1, 1000, 1000, &d), EVB_OK,
		    "batch %llu: %s", (unsigned long long) b, d.msg);
	}
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.record_count, 50000);
	cr_assert_geq(s.bytes_used, 50u * 1000 * 1000);
	cr_assert_geq(s.map_size, s.bytes_used);
	cr_assert_geq(s.map_grows, 10);
	check_all(w, 50000, 1000);
	verify_clean(w, 50000);
	evb_wal_close(w);
}

Test(wal, map_size_max_gives_efull_and_keeps_the_log)
{
	evb_wal_opts o;
	evb_wal     *w;
	evb_diag     d    = { { 0 } };
	uint64_t     good = 0, last = 0;
	int          rc;

	evb_wal_opts_default(&o);
	o.map_size_initial = 64 * 1024;
	o.map_size_max     = 512 * 1024;
	w                  = wtl_open(wal_dir, &o);
	while ((rc = append_n(w, good + 1, 10, 1000, &d)) == EVB_OK) {
		good += 10;
		cr_assert_lt(good, 1000, "map_size_max was not enforced");
	}
	cr_assert_eq(rc, EVB_EFULL, "%s", d.msg);
	cr_assert(strstr(d.msg, "map_size_max") != NULL, "%s", d.msg);
	cr_assert_gt(good, 0);
	cr_assert_eq(evb_wal_last(w, &last), EVB_OK);
	cr_assert_eq(last, good);
	// A batch far over the cap fails whole as well.
	cr_assert_eq(append_n(w, good + 1, 1000, 1000, &d), EVB_EFULL);
	cr_assert_eq(evb_wal_last(w, &last), EVB_OK);
	cr_assert_eq(last, good);
	check_all(w, good, 1000);
	verify_clean(w, good);
	evb_wal_close(w);

	o.map_size_max = 0;
	w              = wtl_open(wal_dir, &o);
	cr_assert_eq(append_n(w, good + 1, 10, 1000, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(
	    append_n(w, good + 11, 100, 1000, &d), EVB_OK, "%s", d.msg);
	check_all(w, good + 110, 1000);
	verify_clean(w, good + 110);
	evb_wal_close(w);
}

/* The tmpfs of the disk-full test: small enough to fill in a moment. */
#define FULL_FS_KIB 1024
#define FULL_FILLER_BYTES (256 * 1024) /* Freed to make room again. */
#define FULL_REC_BYTES 500             /* Payload of each record. */
#define FULL_BATCH 16                  /* Records per append. */

/*
 * full_mount mounts a FULL_FS_KIB tmpfs on tmp/fs in a mount namespace
 * of the test's own, and says why not when it cannot (not root, or the
 * container refuses). OUT: mnt on success.
 */
static bool
full_mount(char *why, size_t n)
{
	char *dir = evb_ts_path(tmp, "fs");
	char  opts[64];

	cr_assert_not_null(dir);
	if (geteuid() != 0) {
		(void) snprintf(why, n, "not root");
	} else if (unshare(CLONE_NEWNS) != 0) {
		(void) snprintf(why, n, "unshare: %s", strerror(errno));
	} else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		(void) snprintf(
		    why, n, "making / private: %s", strerror(errno));
	} else if (mkdir(dir, 0700) != 0) {
		(void) snprintf(why, n, "mkdir: %s", strerror(errno));
	} else {
		(void) snprintf(
		    opts, sizeof(opts), "size=%dk,mode=0700", FULL_FS_KIB);
		if (mount("evb-test", dir, "tmpfs", MS_NOSUID | MS_NODEV,
		        opts) == 0) {
			mnt = dir;
			return (true);
		}
		(void) snprintf(why, n, "mount: %s", strerror(errno));
	}
	free(dir);
	return (false);
}

/* full_filler writes a file of FULL_FILLER_BYTES at path. */
static void
full_filler(const char *path)
{
	static const uint8_t buf[4096];
	FILE                *f = fopen(path, "wb");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	for (size_t i = 0; i < FULL_FILLER_BYTES / sizeof(buf); i++) {
		cr_assert_eq(fwrite(buf, sizeof(buf), 1, f), 1);
	}
	cr_assert_eq(fclose(f), 0);
}

/*
 * full_tmpfs: a log on the tmpfs (behind a filler file) is appended to
 * until the disk is full. The append fails whole with EVB_EFULL, the log
 * verifies and holds every committed record intact, and once the filler
 * is deleted appends work again, also after a reopen.
 */
static void
full_tmpfs(void)
{
	char        *dir    = evb_ts_path(mnt, "wal");
	char        *filler = evb_ts_path(mnt, "filler");
	evb_wal_opts o;
	evb_wal     *w;
	evb_diag     d    = { { 0 } };
	uint64_t     good = 0;
	int          rc   = EVB_OK;

	cr_assert(dir != NULL && filler != NULL);
	full_filler(filler);
	evb_wal_opts_default(&o);
	o.map_size_initial = 64 * 1024; // It grows on the way, too.
	w                  = wtl_open(dir, &o);
	for (int i = 0; i < 1000 && rc == EVB_OK; i++) {
		rc = append_n(w, good + 1, FULL_BATCH, FULL_REC_BYTES, &d);
		good += rc == EVB_OK ? FULL_BATCH : 0;
	}
	cr_assert_eq(rc, EVB_EFULL, "got %d: %s", rc, d.msg);
	cr_assert(strstr(d.msg, "the disk is full") != NULL, "%s", d.msg);
	cr_assert_gt(good, 0);
	fprintf(stderr, "wal_basic_test: full disk: %s\n", d.msg);
	// Nothing of the failed batch, nothing damaged; it fails again
	// while the disk stays full.
	verify_clean(w, good);
	check_all(w, good, FULL_REC_BYTES);
	cr_assert_eq(
	    append_n(w, good + 1, FULL_BATCH, FULL_REC_BYTES, &d), EVB_EFULL);

	cr_assert_eq(unlink(filler), 0);
	cr_assert_eq(append_n(w, good + 1, FULL_BATCH, FULL_REC_BYTES, &d),
	    EVB_OK, "%s", d.msg);
	good += FULL_BATCH;
	evb_wal_close(w);
	w = wtl_open(dir, &o);
	cr_assert_eq(append_n(w, good + 1, FULL_BATCH, FULL_REC_BYTES, &d),
	    EVB_OK, "%s", d.msg);
	good += FULL_BATCH;
	verify_clean(w, good);
	check_all(w, good, FULL_REC_BYTES);
	evb_wal_close(w);
	free(filler);
	free(dir);
}

/*
 * full_rlimit: where no tmpfs can be mounted, RLIMIT_FSIZE stands in for
 * a full disk: writes past it fail with EFBIG (SIGXFSZ is ignored), as
 * ENOSPC would.
 */
static void
full_rlimit(void)
{
	evb_wal      *w = wtl_open(wal_dir, NULL);
	evb_diag      d = { { 0 } };
	struct rlimit rl;
	struct stat   st;
	char         *data = evb_ts_path(wal_dir, "data.mdb");
	int           rc;

	cr_assert_eq(append_n(w, 1, 10, 100, NULL), EVB_OK);
	cr_assert_eq(stat(data, &st), 0);
	cr_assert_neq(signal(SIGXFSZ, SIG_IGN), SIG_ERR);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = (rlim_t) st.st_size;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	rc = append_n(w, 11, 2000, 1000, &d);
	cr_assert_eq(rc, EVB_EFULL, "got %d: %s", rc, d.msg);
	cr_assert(strstr(d.msg, "free space") != NULL, "%s", d.msg);
	verify_clean(w, 10);
	check_all(w, 10, 100);

	rl.rlim_cur = rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cr_assert_eq(append_n(w, 11, 2000, 1000, &d), EVB_OK, "%s", d.msg);
	evb_wal_close(w);
	w = wal_open_fast();
	verify_clean(w, 2010);
	evb_wal_close(w);
	free(data);
}

/* Issue #3: a full disk is a clear error, corrupts nothing, and appends
 * resume when space returns. */
Test(wal, full_disk_gives_efull_and_later_appends_work)
{
	char why[160];

	if (full_mount(why, sizeof(why))) {
		fprintf(stderr,
		    "wal_basic_test: full disk: on a %d KiB tmpfs mounted "
		    "for the test\n",
		    FULL_FS_KIB);
		full_tmpfs();
	} else {
		fprintf(stderr,
		    "wal_basic_test: full disk: RLIMIT_FSIZE stands in, no "
		    "tmpfs (%s)\n",
		    why);
		full_rlimit();
	}
}

/* ---- Durability modes -------------------------------------------------- */

static void
durability_round_trip(evb_wal_durability mode)
{
	evb_wal_opts o;
	evb_wal_stat s;
	evb_wal     *w;

	evb_wal_opts_default(&o);
	o.durability     = mode;
	o.sync_period_ms = 5;
	w                = wtl_open(wal_dir, &o);
	for (uint64_t b = 0; b < 20; b++) {
		cr_assert_eq(append_n(w, b * 8 + 1, 8, 64, NULL), EVB_OK);
	}
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.sync_failures, 0);
	evb_wal_close(w);
	w = wtl_open(wal_dir, &o);
	check_all(w, 160, 64);
	evb_wal_close(w);
}

Test(wal, sync_mode_keeps_every_batch)
{
	durability_round_trip(EVB_WAL_SYNC);
}

Test(wal, periodic_mode_keeps_every_batch_after_close)
{
	durability_round_trip(EVB_WAL_PERIODIC);
}

Test(wal, none_mode_keeps_every_batch_after_close)
{
	durability_round_trip(EVB_WAL_NONE);
}

/* ---- Cursors ----------------------------------------------------------- */

Test(wal, cursors_set_get_and_notfound)
{
	evb_wal *w = wal_open_fast();
	char     longname[EVB_WAL_CURSOR_NAME_MAX + 2];
	uint64_t off = 77;

	cr_assert_eq(evb_wal_cursor_get(w, "compactor", &off), EVB_ENOTFOUND);
	cr_assert_eq(off, 77);
	cr_assert_eq(evb_wal_cursor_set(w, "compactor", 12), EVB_OK);
	cr_assert_eq(evb_wal_cursor_set(w, "replay", 3), EVB_OK);
	cr_assert_eq(evb_wal_cursor_get(w, "compactor", &off), EVB_OK);
	cr_assert_eq(off, 12);
	cr_assert_eq(evb_wal_cursor_set(w, "compactor", 40), EVB_OK);
	evb_wal_close(w);

	w = wal_open_fast();
	cr_assert_eq(evb_wal_cursor_get(w, "compactor", &off), EVB_OK);
	cr_assert_eq(off, 40);
	cr_assert_eq(evb_wal_cursor_get(w, "replay", &off), EVB_OK);
	cr_assert_eq(off, 3);
	cr_assert_eq(evb_wal_cursor_get(w, "compacto", &off), EVB_ENOTFOUND);

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(evb_wal_cursor_set(w, longname, 1), EVB_EINVAL);
	cr_assert_eq(evb_wal_cursor_set(w, "", 1), EVB_EINVAL);
	cr_assert_eq(evb_wal_cursor_set(w, NULL, 1), EVB_EINVAL);
	cr_assert_eq(evb_wal_cursor_get(w, "", &off), EVB_EINVAL);
	longname[EVB_WAL_CURSOR_NAME_MAX] = '\0';
	cr_assert_eq(evb_wal_cursor_set(w, longname, 9), EVB_OK);
	cr_assert_eq(evb_wal_cursor_get(w, longname, &off), EVB_OK);
	cr_assert_eq(off, 9);
	evb_wal_close(w);
}

Test(wal, a_noted_cursor_is_stored_by_the_next_append)
{
	evb_wal *w   = wal_open_fast();
	uint64_t off = 0;

	cr_assert_eq(evb_wal_cursor_set(w, "compactor", 5), EVB_OK);
	cr_assert_eq(evb_wal_cursor_note(w, "compactor", 9), EVB_OK);
	cr_assert_eq(evb_wal_cursor_note(w, "replay", 2), EVB_OK);
	// Not stored yet: the earlier value stands.
	cr_assert_eq(evb_wal_cursor_get(w, "compactor", &off), EVB_OK);
	cr_assert_eq(off, 5);
	cr_assert_eq(evb_wal_cursor_get(w, "replay", &off), EVB_ENOTFOUND);
	cr_assert_eq(evb_wal_cursor_note(w, "compactor", 12), EVB_OK);
	cr_assert_eq(append_n(w, 1, 3, 40, NULL), EVB_OK);
	cr_assert_eq(evb_wal_cursor_get(w, "compactor", &off), EVB_OK);
	cr_assert_eq(off, 12);
	cr_assert_eq(evb_wal_cursor_get(w, "replay", &off), EVB_OK);
	cr_assert_eq(off, 2);

	// A set drops an earlier note of its name: no later append brings
	// the older value back.
	cr_assert_eq(evb_wal_cursor_note(w, "compactor", 20), EVB_OK);
	cr_assert_eq(evb_wal_cursor_set(w, "compactor", 30), EVB_OK);
	cr_assert_eq(append_n(w, 4, 1, 40, NULL), EVB_OK);
	cr_assert_eq(evb_wal_cursor_get(w, "compactor", &off), EVB_OK);
	cr_assert_eq(off, 30);

	// Close stores what no append took.
	cr_assert_eq(evb_wal_cursor_note(w, "compactor", 44), EVB_OK);
	evb_wal_close(w);
	w = wal_open_fast();
	cr_assert_eq(evb_wal_cursor_get(w, "compactor", &off), EVB_OK);
	cr_assert_eq(off, 44);
	cr_assert_eq(evb_wal_cursor_note(w, "", 1), EVB_EINVAL);
	cr_assert_eq(evb_wal_cursor_note(NULL, "c", 1), EVB_EINVAL);
	evb_wal_close(w);
}

Test(wal, notes_beyond_the_limit_are_stored_at_once)
{
	static const char *const name[] = { "c0", "c1", "c2", "c3", "c4", "c5",
		"c6", "c7", "c8" };
	evb_wal                 *w      = wal_open_fast();
	uint64_t                 off    = 0;
	size_t                   stored = 0;

	// Eight names wait for an append; the ninth is stored at once.
	for (int i = 0; i < 9; i++) {
		cr_assert_eq(evb_wal_cursor_note(w, name[i], 100 + i), EVB_OK);
	}
	for (int i = 0; i < 9; i++) {
		stored += evb_wal_cursor_get(w, name[i], &off) == EVB_OK;
	}
	cr_assert_eq(stored, 1);
	cr_assert_eq(evb_wal_cursor_get(w, "c8", &off), EVB_OK);
	cr_assert_eq(off, 108);
	cr_assert_eq(append_n(w, 1, 1, 40, NULL), EVB_OK);
	for (int i = 0; i < 9; i++) {
		cr_assert_eq(evb_wal_cursor_get(w, name[i], &off), EVB_OK);
		cr_assert_eq(off, 100 + (uint64_t) i);
	}
	evb_wal_close(w);
}

Test(wal, cursor_list_gives_every_cursor_in_name_order)
{
	evb_wal             *w = wal_open_fast();
	evb_wal_cursor_info *l = NULL;
	size_t               n = 99;

	cr_assert_eq(evb_wal_cursor_list(w, &l, &n), EVB_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(l);
	cr_assert_eq(evb_wal_cursor_set(w, "replay", 3), EVB_OK);
	cr_assert_eq(evb_wal_cursor_set(w, "compactor", 12), EVB_OK);
	cr_assert_eq(evb_wal_cursor_set(w, "b", 7), EVB_OK);
	cr_assert_eq(evb_wal_cursor_list(w, &l, &n), EVB_OK);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(l[0].name, "b");
	cr_assert_eq(l[0].off, 7);
	cr_assert_str_eq(l[1].name, "compactor");
	cr_assert_eq(l[1].off, 12);
	cr_assert_str_eq(l[2].name, "replay");
	cr_assert_eq(l[2].off, 3);
	evb_wal_cursor_list_free(l);
	evb_wal_cursor_list_free(NULL);
	cr_assert_eq(evb_wal_cursor_list(w, NULL, &n), EVB_EINVAL);
	cr_assert_eq(evb_wal_cursor_list(NULL, &l, &n), EVB_EINVAL);
	evb_wal_close(w);
}

/* ---- Corruption -------------------------------------------------------- */

Test(wal, flipped_payload_byte_is_reported_at_its_offset)
{
	char                  payloads[10][32];
	evb_wal_rec           recs[10];
	evb_wal_iter         *it;
	evb_wal_entry         e;
	evb_wal_verify_report r;
	evb_diag              d = { { 0 } };
	evb_wal              *w = wtl_open(wal_dir, NULL);

	memset(recs, 0, sizeof(recs));
	for (int i = 0; i < 10; i++) {
		(void) snprintf(payloads[i], sizeof(payloads[i]),
		    "MARKER-%04d-payload", i + 1);
		recs[i].payload = payloads[i];
		recs[i].len     = strlen(payloads[i]);
	}
	cr_assert_eq(evb_wal_append(w, recs, 10, NULL, NULL), EVB_OK);
	evb_wal_close(w);
	wtl_flip_marker(wal_dir, "MARKER-0007-payload");

	w = wtl_open(wal_dir, NULL);
	cr_assert_eq(evb_wal_iter_open(w, 0, &it), EVB_OK);
	for (uint64_t off = 1; off <= 10; off++) {
		int rc = evb_wal_iter_next(it, &e);

		cr_assert_eq(e.off, off);
		if (off == 7) {
			cr_assert_eq(rc, EVB_ECORRUPT);
			cr_assert_eq(e.len, 0);
		} else {
			cr_assert_eq(rc, EVB_OK, "offset %llu",
			    (unsigned long long) off);
			cr_assert_eq(
			    memcmp(e.payload, payloads[off - 1], e.len), 0);
		}
	}
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	evb_wal_iter_close(it);

	cr_assert_eq(evb_wal_verify(w, &r, &d), EVB_ECORRUPT);
	cr_assert_eq(r.record_count, 10);
	cr_assert_eq(r.bad_count, 1);
	cr_assert_eq(r.first_bad_off, 7);
	cr_assert(
	    strstr(d.msg, "offset 7: CRC-32C mismatch") != NULL, "%s", d.msg);
	evb_wal_close(w);
}

Test(wal, verify_reports_a_gap)
{
	evb_wal              *w = wal_open_fast();
	evb_wal_verify_report r;
	evb_diag              d      = { { 0 } };
	uint8_t               key[8] = { 0, 0, 0, 0, 0, 0, 0, 3 };
	MDB_val               k      = { sizeof(key), key };
	wtl_raw               raw;

	cr_assert_eq(append_n(w, 1, 5, 20, NULL), EVB_OK);
	evb_wal_close(w);
	wtl_raw_begin(&raw, wal_dir, "log", true);
	cr_assert_eq(mdb_del(raw.txn, raw.dbi, &k, NULL), 0);
	wtl_raw_end(&raw);

	w = wal_open_fast();
	cr_assert_eq(evb_wal_verify(w, &r, &d), EVB_ECORRUPT);
	cr_assert_eq(r.record_count, 4);
	cr_assert_eq(r.first_off, 1);
	cr_assert_eq(r.last_off, 5);
	cr_assert_eq(r.bad_count, 1);
	cr_assert_eq(r.first_bad_off, 3);
	cr_assert_str_eq(d.msg, "offsets 3..3 are missing");
	evb_wal_close(w);
}

Test(wal, truncated_record_is_corrupt)
{
	evb_wal              *w = wal_open_fast();
	evb_wal_verify_report r;
	evb_wal_iter         *it;
	evb_wal_entry         e;
	evb_diag              d            = { { 0 } };
	uint8_t               key[8]       = { 0, 0, 0, 0, 0, 0, 0, 2 };
	uint8_t               shortval[20] = { 1 };
	MDB_val               k            = { sizeof(key), key };
	MDB_val               v            = { sizeof(shortval), shortval };
	wtl_raw               raw;

	cr_assert_eq(append_n(w, 1, 3, 20, NULL), EVB_OK);
	evb_wal_close(w);
	wtl_raw_begin(&raw, wal_dir, "log", true);
	cr_assert_eq(mdb_put(raw.txn, raw.dbi, &k, &v, 0), 0);
	wtl_raw_end(&raw);

	w = wal_open_fast();
	cr_assert_eq(evb_wal_iter_open(w, 2, &it), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_ECORRUPT);
	cr_assert_eq(e.off, 2);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, 3);
	evb_wal_iter_close(it);
	cr_assert_eq(evb_wal_verify(w, &r, &d), EVB_ECORRUPT);
	cr_assert_eq(r.first_bad_off, 2);
	cr_assert(strstr(d.msg, "shorter than its 45-byte header") != NULL,
	    "%s", d.msg);
	evb_wal_close(w);
}

Test(wal, unknown_format_version_is_refused)
{
	evb_wal *w      = wal_open_fast();
	evb_diag d      = { { 0 } };
	uint8_t  ver[4] = { 0, 0, 0, 99 };
	MDB_val  k = { 6, "format" }, v = { sizeof(ver), ver };
	wtl_raw  raw;

	evb_wal_close(w);
	wtl_raw_begin(&raw, wal_dir, "meta", true);
	cr_assert_eq(mdb_put(raw.txn, raw.dbi, &k, &v, 0), 0);
	wtl_raw_end(&raw);

	w = NULL;
	cr_assert_eq(evb_wal_open(&w, wal_dir, NULL, &d), EVB_EVERSION);
	cr_assert_null(w);
	cr_assert(strstr(d.msg, "version 99") != NULL, "%s", d.msg);
}

/* format_delete deletes meta/format from the closed log by hand. */
static void
format_delete(void)
{
	MDB_val k = { 6, "format" };
	wtl_raw raw;

	wtl_raw_begin(&raw, wal_dir, "meta", true);
	cr_assert_eq(mdb_del(raw.txn, raw.dbi, &k, NULL), 0);
	wtl_raw_end(&raw);
}

/*
 * A review found that a read-only open (verify, replay, stats) of a log
 * with records but no meta/format got EVB_ESTORAGE ("MDB_NOTFOUND"),
 * while the read-write open and docs/wal-format.md say EVB_ECORRUPT.
 */
Test(wal, records_without_a_format_version_are_ecorrupt_in_both_modes)
{
	evb_wal     *w = wal_open_fast();
	evb_diag     d = { { 0 } };
	evb_wal_opts o;

	cr_assert_eq(append_n(w, 1, 2, 8, NULL), EVB_OK);
	evb_wal_close(w);
	format_delete();
	evb_wal_opts_default(&o);
	for (int ro = 1; ro >= 0; ro--) {
		o.read_only = ro == 1;
		w           = NULL;
		d.msg[0]    = '\0';
		cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_ECORRUPT,
		    "read_only %d: %s", ro, d.msg);
		cr_assert_null(w);
		cr_assert_str_eq(d.msg,
		    "meta: the format version is missing from a log with 2 "
		    "records");
	}
}

/* An empty log without its version is no log yet to a read-only open,
 * and a read-write open writes the version. */
Test(wal, empty_log_without_a_format_version_is_enotfound_read_only)
{
	evb_wal     *w = wal_open_fast();
	evb_diag     d = { { 0 } };
	evb_wal_opts o;

	evb_wal_close(w);
	format_delete();
	evb_wal_opts_default(&o);
	o.read_only = true;
	w           = NULL;
	cr_assert_eq(
	    evb_wal_open(&w, wal_dir, &o, &d), EVB_ENOTFOUND, "%s", d.msg);
	cr_assert_null(w);
	cr_assert(
	    strstr(d.msg, "format version is missing") != NULL, "%s", d.msg);
	w = wal_open_fast();
	evb_wal_close(w);
	w = wtl_open(wal_dir, &o);
	evb_wal_close(w);
}

/*
 * Issue #3: format 3 moved the event ids into the records and dropped the
 * on-disk id index ("ids.0", "ids.1"). A log of format 2 is refused, by
 * read-write and read-only opens alike, with EVB_EVERSION and a diag that
 * says what to do, and is left as it was.
 */
Test(wal, format_2_log_is_refused_and_left_alone)
{
	evb_wal     *w = wal_open_fast();
	evb_diag     d = { { 0 } };
	evb_wal_opts o;
	uint8_t      ver[4] = { 0, 0, 0, 2 };
	uint8_t      off[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	MDB_val      k = { 6, "format" }, v = { sizeof(ver), ver };
	MDB_val      ik = { 4, "id-1" }, iv = { sizeof(off), off };
	MDB_dbi      ids;
	wtl_raw      raw;

	cr_assert_eq(append_n(w, 1, 3, 20, NULL), EVB_OK);
	evb_wal_close(w);
	// What a format 2 log held besides: the two id index generations.
	wtl_raw_begin(&raw, wal_dir, "meta", true);
	cr_assert_eq(mdb_put(raw.txn, raw.dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_dbi_open(raw.txn, "ids.0", MDB_CREATE, &ids), 0);
	cr_assert_eq(mdb_put(raw.txn, ids, &ik, &iv, 0), 0);
	cr_assert_eq(mdb_dbi_open(raw.txn, "ids.1", MDB_CREATE, &ids), 0);
	wtl_raw_end(&raw);

	evb_wal_opts_default(&o);
	for (int ro = 0; ro < 2; ro++) {
		o.read_only = ro == 1;
		w           = NULL;
		d.msg[0]    = '\0';
		cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EVERSION);
		cr_assert_null(w);
		cr_assert(strstr(d.msg, "format version 2") != NULL &&
		        strstr(d.msg, "reads only version 4") != NULL &&
		        strstr(d.msg, "start a new log") != NULL,
		    "%s", d.msg);
	}
	wtl_raw_begin(&raw, wal_dir, "meta", false);
	cr_assert_eq(mdb_get(raw.txn, raw.dbi, &k, &v), 0);
	cr_assert_eq(((const uint8_t *) v.mv_data)[3], 2);
	cr_assert_eq(mdb_dbi_open(raw.txn, "ids.0", 0, &ids), 0);
	wtl_raw_end(&raw);
}

/* ---- Readers in other processes ---------------------------------------- */

/* child_read opens the log read-only and checks it holds 1..want. */
static int
child_read(evb_wal *r, uint64_t want)
{
	evb_wal_iter *it;
	evb_wal_entry e;
	uint64_t      n = 0, last = 0;
	int           rc;

	if (evb_wal_last(r, &last) != EVB_OK || last != want ||
	    evb_wal_iter_open(r, 0, &it) != EVB_OK) {
		return (1);
	}
	while ((rc = evb_wal_iter_next(it, &e)) == EVB_OK && e.off == n + 1) {
		n++;
	}
	evb_wal_iter_close(it);
	return (rc == EVB_EOF && n == want ? 0 : 2);
}

/*
 * child_main runs in a child forked before the parent opens the log (LMDB
 * forbids using an env across fork). It waits for "go" bytes on in and
 * answers each with a status byte on out.
 */
static int
child_main(int in, int out)
{
	evb_wal_opts o;
	evb_wal     *r = NULL;
	char         go;
	char         st;

	evb_wal_opts_default(&o);
	o.read_only = true;
	if (read(in, &go, 1) != 1) {
		return (10);
	}
	st = (char) (evb_wal_open(&r, wal_dir, &o, NULL) == EVB_OK ? 0 : 3);
	if (st == 0) {
		st = (char) child_read(r, 3);
	}
	if (write(out, &st, 1) != 1 || read(in, &go, 1) != 1) {
		return (11);
	}
	// The writer has grown the map meanwhile: the reader must follow it.
	st = st == 0 ? (char) child_read(r, 3 + 3000) : st;
	evb_wal_close(r);
	return (write(out, &st, 1) == 1 ? 0 : 12);
}

Test(wal, read_only_open_works_while_a_writer_is_open)
{
	int          to_child[2], to_parent[2];
	pid_t        pid;
	int          status;
	char         st = 0;
	evb_wal_opts o;
	evb_wal     *w;

	cr_assert_eq(pipe(to_child), 0);
	cr_assert_eq(pipe(to_parent), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		// Only the parent holds to_child's write end, so a parent that
		// fails an assertion and exits ends the child's read too: no
		// orphan keeps the runner's output pipe open.
		close(to_child[1]);
		close(to_parent[0]);
		_exit(child_main(to_child[0], to_parent[1]));
	}
	close(to_child[0]);
	close(to_parent[1]);
	evb_wal_opts_default(&o);
	o.map_size_initial = 64 * 1024;
	w                  = wtl_open(wal_dir, &o);
	cr_assert_eq(append_n(w, 1, 3, 100, NULL), EVB_OK);
	cr_assert_eq(write(to_child[1], "g", 1), 1);
	cr_assert_eq(read(to_parent[0], &st, 1), 1);
	cr_assert_eq(st, 0, "reader status %d", st);
	cr_assert_eq(append_n(w, 4, 3000, 1000, NULL), EVB_OK);
	cr_assert_eq(write(to_child[1], "g", 1), 1);
	cr_assert_eq(read(to_parent[0], &st, 1), 1);
	cr_assert_eq(st, 0, "reader status after growth %d", st);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(evb_ts_exit_code(status), 0);
	evb_wal_close(w);
}

/*
 * A payload of exactly EVB_WAL_MAX_PAYLOAD bytes is within the limit
 * (wal.h: len <= EVB_WAL_MAX_PAYLOAD): it is stored and read back whole.
 * One byte more is refused in bad_arguments_are_einval.
 */
Test(wal, a_payload_of_exactly_the_maximum_is_stored)
{
	evb_wal       *w = wal_open_fast();
	evb_wal_iter  *it;
	evb_wal_entry  e;
	evb_wal_result res;
	evb_wal_rec    rec;
	evb_diag       d = { "" };
	uint8_t       *pay;

	cr_assert_not_null(pay = malloc(EVB_WAL_MAX_PAYLOAD));
	memset(pay, 0x5a, EVB_WAL_MAX_PAYLOAD);
	pay[EVB_WAL_MAX_PAYLOAD - 1] = 0xa5;
	memset(&rec, 0, sizeof(rec));
	rec.payload = pay;
	rec.len     = EVB_WAL_MAX_PAYLOAD;
	cr_assert_eq(evb_wal_append(w, &rec, 1, &res, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(res.off, 1);
	cr_assert_eq(evb_wal_iter_open(w, 1, &it), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, 1);
	cr_assert_eq(e.len, EVB_WAL_MAX_PAYLOAD);
	cr_assert_eq(memcmp(e.payload, pay, EVB_WAL_MAX_PAYLOAD), 0);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_EOF);
	evb_wal_iter_close(it);
	evb_wal_close(w);
	free(pay);
}

/* ---- Errors ------------------------------------------------------------ */

Test(wal, bad_arguments_are_einval)
{
	evb_wal_opts o;
	evb_wal     *w   = NULL;
	evb_wal_rec  rec = { 0, 0, 0, 0, NULL, 5, NULL, 0 };
	evb_diag     d   = { { 0 } };

	evb_wal_opts_default(&o);
	o.durability     = EVB_WAL_PERIODIC;
	o.sync_period_ms = 0;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "sync_period_ms") != NULL, "%s", d.msg);
	evb_wal_opts_default(&o);
	o.map_size_max = 4096;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EINVAL);
	cr_assert_eq(evb_wal_open(&w, NULL, NULL, &d), EVB_EINVAL);
	cr_assert_null(w);

	w = wal_open_fast();
	cr_assert_eq(evb_wal_append(w, &rec, 0, NULL, &d), EVB_EINVAL);
	cr_assert_eq(evb_wal_append(w, &rec, 1, NULL, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "recs[0].payload") != NULL, "%s", d.msg);
	rec.payload = "x";
	rec.len     = EVB_WAL_MAX_PAYLOAD + 1;
	cr_assert_eq(evb_wal_append(w, &rec, 1, NULL, &d), EVB_ETOOBIG);
	cr_assert(strstr(d.msg, "recs[0].len") != NULL, "%s", d.msg);
	evb_wal_close(w);
	evb_wal_close(NULL);
}

/* log_count counts the log lines it is given, printing each. */
static void
log_count(void *arg, evb_log_level level, const char *id, const char *msg)
{
	(*(int *) arg)++;
	fprintf(
	    stderr, "logged: %s %s %s\n", evb_log_level_name(level), id, msg);
}

/*
 * A review found that a failed open in PERIODIC or NONE mode logged
 * "final flush of the WAL at close failed ... the last batches may be
 * lost": close synced an env that mdb_env_open never opened (EBADF). A
 * failed open returns its error and logs nothing, in every mode.
 */
Test(wal, failed_open_logs_no_flush_failure_in_any_mode)
{
	evb_wal_durability modes[] = { EVB_WAL_SYNC, EVB_WAL_PERIODIC,
		EVB_WAL_NONE };
	evb_wal_opts       o;
	evb_wal           *w     = NULL;
	evb_diag           d     = { { 0 } };
	int                lines = 0;

	// A regular file where the log's directory goes.
	cr_assert_eq(evb_ts_file_write(wal_dir, "x", 1), EVB_OK);
	evb_log_set_level(EVB_LOG_DEBUG);
	evb_log_set_sink(log_count, &lines);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		evb_wal_opts_default(&o);
		o.durability = modes[i];
		d.msg[0]     = '\0';
		cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_ESTORAGE,
		    "durability %d: %s", (int) modes[i], d.msg);
		cr_assert_null(w);
		cr_assert(
		    strstr(d.msg, "Not a directory") != NULL, "%s", d.msg);
	}
	evb_log_set_sink(NULL, NULL);
	cr_assert_eq(lines, 0, "a failed open logged %d lines", lines);
}

Test(wal, read_only_open_of_missing_log_is_enotfound)
{
	evb_wal_opts o;
	evb_wal     *w = NULL;
	evb_diag     d = { { 0 } };

	evb_wal_opts_default(&o);
	o.read_only = true;
	cr_assert_eq(
	    evb_wal_open(&w, wal_dir, &o, &d), EVB_ENOTFOUND, "%s", d.msg);
	cr_assert_null(w);
}

Test(wal, read_only_handle_refuses_writes)
{
	evb_wal_opts o;
	evb_wal     *w = wal_open_fast();
	evb_diag     d = { { 0 } };

	cr_assert_eq(append_n(w, 1, 2, 8, NULL), EVB_OK);
	evb_wal_close(w);
	evb_wal_opts_default(&o);
	o.read_only = true;
	w           = wtl_open(wal_dir, &o);
	cr_assert_eq(append_n(w, 3, 1, 8, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "read-only") != NULL, "%s", d.msg);
	cr_assert_eq(evb_wal_cursor_set(w, "c", 1), EVB_EINVAL);
	check_all(w, 2, 8);
	evb_wal_close(w);
}
