/*
 * wal_dedup_test: duplicate suppression in evb_wal_append (wal/wal.h):
 * ids inside the window are not stored again and report the original's
 * offset, copies within one batch, the window's edges by count and by age
 * (with an injected clock, so nothing sleeps), reopen (the window is
 * rebuilt from the log), a window that stays bounded and exact over many
 * windows, records removed by retention, logs of the previous format, and
 * the errors.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/support/support.h"
#include "tests/support/wal_testlib.h"
#include "wal/wal.h"

#define MS 1000000LL /* ns */

static char           *tmp;     /* Fresh per test. */
static char           *wal_dir; /* tmp/wal. */
static _Atomic int64_t now_ns;  /* The test clock. */

static void
setup(void)
{
	wtl_dir_make(&tmp, &wal_dir);
	atomic_store(&now_ns, 1764035435000 * MS);
}

static void
teardown(void)
{
	wtl_dir_remove(tmp, wal_dir);
}

TestSuite(wal_dedup, .init = setup, .fini = teardown, .timeout = 60);

/* wal_open_window opens the log with the test clock and a window. */
static evb_wal *
wal_open_window(uint64_t count, uint64_t age_ms)
{
	evb_wal_opts o;

	evb_wal_opts_default(&o);
	o.durability          = EVB_WAL_NONE;
	o.dedup_window_count  = count;
	o.dedup_window_age_ms = age_ms;
	o.clock_ns            = wtl_clock;
	o.clock_arg           = &now_ns;
	return (wtl_open(wal_dir, &o));
}

/*
 * send appends one batch whose records carry the ids in the
 * space-separated list ids ("-" for a record without an id); each
 * payload is its id. res gets one result per record.
 */
static int
send(evb_wal *w, const char *ids, evb_wal_result *res, evb_diag *d)
{
	evb_wal_rec recs[64];
	char        buf[1024];
	size_t      n = 0;
	char       *save, *tok;

	cr_assert_lt(strlen(ids), sizeof(buf));
	strcpy(buf, ids);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		cr_assert_lt(n, 64);
		memset(&recs[n], 0, sizeof(recs[n]));
		recs[n].payload = tok;
		recs[n].len     = strlen(tok);
		if (strcmp(tok, "-") != 0) {
			recs[n].id     = tok;
			recs[n].id_len = strlen(tok);
		}
		n++;
	}
	return (evb_wal_append(w, recs, n, res, d));
}

/* expect checks one result. */
static void
expect(const evb_wal_result *r, int status, uint64_t off)
{
	cr_assert_eq(
	    r->status, status, "status %d, expected %d", r->status, status);
	cr_assert_eq(r->off, off, "offset %llu, expected %llu",
	    (unsigned long long) r->off, (unsigned long long) off);
}

/* send_one appends one record with id and checks its result. */
static void
send_one(evb_wal *w, const char *id, int status, uint64_t off)
{
	evb_wal_result r;
	evb_diag       d = { { 0 } };

	cr_assert_eq(send(w, id, &r, &d), EVB_OK, "%s", d.msg);
	expect(&r, status, off);
}

/* payload_at returns a copy of the payload stored at off. */
static char *
payload_at(evb_wal *w, uint64_t off)
{
	evb_wal_iter *it;
	evb_wal_entry e;
	char         *p;

	cr_assert_eq(evb_wal_iter_open(w, off, &it), EVB_OK);
	cr_assert_eq(evb_wal_iter_next(it, &e), EVB_OK);
	cr_assert_eq(e.off, off);
	p = strndup(e.payload, e.len);
	cr_assert_not_null(p);
	evb_wal_iter_close(it);
	return (p);
}

static uint64_t
last_off(evb_wal *w)
{
	uint64_t last = 0;

	cr_assert_eq(evb_wal_last(w, &last), EVB_OK);
	return (last);
}

Test(wal_dedup, duplicate_in_window_is_not_stored_and_names_the_original)
{
	evb_wal       *w = wal_open_window(1000, 0);
	evb_wal_result r[4];
	evb_wal_stat   s;

	cr_assert_eq(send(w, "a b c", r, NULL), EVB_OK);
	expect(&r[0], EVB_OK, 1);
	expect(&r[2], EVB_OK, 3);
	// b is a duplicate; the others are new and take 4 and 5, so the
	// stored records of a batch stay consecutive.
	cr_assert_eq(send(w, "d b e", r, NULL), EVB_OK);
	expect(&r[0], EVB_OK, 4);
	expect(&r[1], EVB_EEXIST, 2);
	expect(&r[2], EVB_OK, 5);
	cr_assert_eq(last_off(w), 5);
	cr_assert_str_eq(payload_at(w, 5), "e");
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.record_count, 5);
	cr_assert_eq(s.dup_count, 1);
	cr_assert_eq(s.id_count, 5);
	evb_wal_close(w);
}

Test(wal_dedup, copies_within_one_batch_keep_the_first)
{
	evb_wal       *w = wal_open_window(1000, 0);
	evb_wal_result r[6];

	send_one(w, "x", EVB_OK, 1);
	// "y" twice and "x" (stored before) twice.
	cr_assert_eq(send(w, "y x z y x -", r, NULL), EVB_OK);
	expect(&r[0], EVB_OK, 2);
	expect(&r[1], EVB_EEXIST, 1);
	expect(&r[2], EVB_OK, 3);
	expect(&r[3], EVB_EEXIST, 2);
	expect(&r[4], EVB_EEXIST, 1);
	expect(&r[5], EVB_OK, 4);
	cr_assert_eq(last_off(w), 4);
	cr_assert_str_eq(payload_at(w, 2), "y");
	cr_assert_str_eq(payload_at(w, 4), "-");
	evb_wal_close(w);
}

Test(wal_dedup, batch_of_only_duplicates_stores_nothing)
{
	evb_wal       *w = wal_open_window(1000, 0);
	evb_wal_result r[3];

	cr_assert_eq(send(w, "a b", r, NULL), EVB_OK);
	cr_assert_eq(send(w, "b a b", r, NULL), EVB_OK);
	expect(&r[0], EVB_EEXIST, 2);
	expect(&r[1], EVB_EEXIST, 1);
	expect(&r[2], EVB_EEXIST, 2);
	cr_assert_eq(last_off(w), 2);
	send_one(w, "c", EVB_OK, 3);
	evb_wal_close(w);
}

Test(wal_dedup, records_without_id_are_never_duplicates)
{
	evb_wal       *w = wal_open_window(1000, 0);
	evb_wal_result r[3];

	cr_assert_eq(send(w, "- - -", r, NULL), EVB_OK);
	cr_assert_eq(send(w, "- - -", r, NULL), EVB_OK);
	expect(&r[2], EVB_OK, 6);
	evb_wal_close(w);
}

Test(wal_dedup, outside_the_window_by_count_is_stored_again)
{
	evb_wal *w = wal_open_window(3, 0);

	send_one(w, "a", EVB_OK, 1);
	send_one(w, "b", EVB_OK, 2);
	send_one(w, "c", EVB_OK, 3);
	// The window is the last 3 records before the batch: 1..3.
	send_one(w, "a", EVB_EEXIST, 1);
	send_one(w, "d", EVB_OK, 4);
	// Now 2..4: a (at 1) has left it, b has not.
	send_one(w, "b", EVB_EEXIST, 2);
	send_one(w, "a", EVB_OK, 5);
	send_one(w, "a", EVB_EEXIST, 5);
	cr_assert_str_eq(payload_at(w, 5), "a");
	evb_wal_close(w);
}

Test(wal_dedup, outside_the_window_by_age_is_stored_again)
{
	evb_wal *w = wal_open_window(0, 1000);

	send_one(w, "a", EVB_OK, 1);
	atomic_fetch_add(&now_ns, 999 * MS);
	send_one(w, "a", EVB_EEXIST, 1);
	send_one(w, "b", EVB_OK, 2);
	atomic_fetch_add(&now_ns, 1 * MS); // a is exactly 1000 ms old.
	send_one(w, "a", EVB_OK, 3);
	send_one(w, "b", EVB_EEXIST, 2);
	atomic_fetch_add(&now_ns, 999 * MS);
	send_one(w, "b", EVB_OK, 4);
	send_one(w, "a", EVB_EEXIST, 3);
	evb_wal_close(w);
}

Test(wal_dedup, window_ends_at_the_first_limit_reached)
{
	evb_wal *w = wal_open_window(2, 1000);

	send_one(w, "a", EVB_OK, 1);
	atomic_fetch_add(&now_ns, 1000 * MS);
	send_one(w, "a", EVB_OK, 2); // By age, within the count.
	send_one(w, "b", EVB_OK, 3);
	send_one(w, "c", EVB_OK, 4);
	send_one(w, "a", EVB_OK, 5); // By count, within the age.
	evb_wal_close(w);
}

Test(wal_dedup, both_limits_zero_turn_suppression_off)
{
	evb_wal     *w = wal_open_window(0, 0);
	evb_wal_stat s;

	send_one(w, "a", EVB_OK, 1);
	send_one(w, "a", EVB_OK, 2);
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.id_count, 0);
	cr_assert_eq(s.dup_count, 0);
	evb_wal_close(w);
}

Test(wal_dedup, window_survives_reopen)
{
	evb_wal *w = wal_open_window(1000, 60000);

	send_one(w, "a", EVB_OK, 1);
	send_one(w, "b", EVB_OK, 2);
	evb_wal_close(w);
	atomic_fetch_add(&now_ns, 30000 * MS);
	w = wal_open_window(1000, 60000);
	send_one(w, "b", EVB_EEXIST, 2);
	send_one(w, "c", EVB_OK, 3);
	evb_wal_close(w);
	atomic_fetch_add(&now_ns, 30000 * MS);
	w = wal_open_window(1000, 60000);
	send_one(w, "a", EVB_OK, 4); // 60 s old now.
	send_one(w, "c", EVB_EEXIST, 3);
	evb_wal_close(w);
}

Test(wal_dedup, load_builds_the_window_before_the_first_append)
{
	evb_wal     *w = wal_open_window(1000, 60000);
	evb_wal_stat st;
	evb_wal_opts o;
	evb_diag     d = { { 0 } };

	send_one(w, "a", EVB_OK, 1);
	send_one(w, "b", EVB_OK, 2);
	send_one(w, "-", EVB_OK, 3);
	evb_wal_close(w);
	w = wal_open_window(1000, 60000);
	cr_assert_eq(evb_wal_dedup_load(w, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_wal_stats(w, &st), EVB_OK);
	cr_assert_eq(st.id_count, 2, "the table holds a and b");
	cr_assert_eq(last_off(w), 3, "nothing was written");
	cr_assert_eq(evb_wal_dedup_load(w, &d), EVB_OK, "a second load");
	send_one(w, "b", EVB_EEXIST, 2);
	send_one(w, "c", EVB_OK, 4);
	send_one(w, "c", EVB_EEXIST, 4);
	evb_wal_close(w);

	evb_wal_opts_default(&o);
	o.read_only = true;
	w           = wtl_open(wal_dir, &o);
	cr_assert_eq(evb_wal_dedup_load(w, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "writable") != NULL, "%s", d.msg);
	evb_wal_close(w);
	cr_assert_eq(evb_wal_dedup_load(NULL, NULL), EVB_EINVAL);
}

/*
 * Many windows' worth of ids: the window holds at most its count of ids,
 * and answers stay exact at the edge.
 */
Test(wal_dedup, window_stays_bounded_and_exact)
{
	evb_wal     *w = wal_open_window(100, 0);
	evb_wal_stat s;
	char         id[32];

	for (uint64_t i = 1; i <= 1000; i++) {
		(void) snprintf(
		    id, sizeof(id), "id-%llu", (unsigned long long) i);
		send_one(w, id, EVB_OK, i);
		cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
		cr_assert_leq(s.id_count, 100, "%llu ids after %llu records",
		    (unsigned long long) s.id_count, (unsigned long long) i);
	}
	// The window is 901..1000.
	send_one(w, "id-901", EVB_EEXIST, 901);
	send_one(w, "id-1000", EVB_EEXIST, 1000);
	send_one(w, "id-900", EVB_OK, 1001);
	send_one(w, "id-1", EVB_OK, 1002);
	evb_wal_close(w);
}

Test(wal_dedup, original_removed_by_retention_is_not_a_duplicate)
{
	evb_wal_opts o;
	evb_wal     *w       = NULL;
	uint64_t     removed = 0;

	evb_wal_opts_default(&o);
	o.durability    = EVB_WAL_NONE;
	o.clock_ns      = wtl_clock;
	o.clock_arg     = &now_ns;
	o.retain_age_ms = 1000;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, NULL), EVB_OK);
	send_one(w, "a", EVB_OK, 1);
	atomic_fetch_add(&now_ns, 2000 * MS);
	send_one(w, "b", EVB_OK, 2);
	cr_assert_eq(evb_wal_retain(w, 100, &removed, NULL), EVB_OK);
	cr_assert_eq(removed, 1);
	// Still inside the 24 h dedup window, but the record is gone.
	send_one(w, "a", EVB_OK, 3);
	send_one(w, "b", EVB_EEXIST, 2);
	evb_wal_close(w);
}

Test(wal_dedup, bad_ids_fail_the_batch_and_leave_results_alone)
{
	evb_wal       *w = wal_open_window(1000, 0);
	evb_wal_rec    rec;
	evb_wal_result r = { 77, 99 };
	evb_diag       d = { { 0 } };
	char           big[EVB_WAL_ID_MAX + 1];

	memset(big, 'i', sizeof(big));
	memset(&rec, 0, sizeof(rec));
	rec.id     = big;
	rec.id_len = sizeof(big);
	cr_assert_eq(evb_wal_append(w, &rec, 1, &r, &d), EVB_ETOOBIG);
	cr_assert(strstr(d.msg, "recs[0].id_len") != NULL, "%s", d.msg);
	cr_assert(r.off == 77 && r.status == 99);
	rec.id     = NULL;
	rec.id_len = 5;
	cr_assert_eq(evb_wal_append(w, &rec, 1, &r, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "recs[0].id") != NULL, "%s", d.msg);
	// The longest id is fine, and is found again.
	rec.id     = big;
	rec.id_len = EVB_WAL_ID_MAX;
	cr_assert_eq(evb_wal_append(w, &rec, 1, &r, &d), EVB_OK, "%s", d.msg);
	expect(&r, EVB_OK, 1);
	cr_assert_eq(evb_wal_append(w, &rec, 1, &r, &d), EVB_OK, "%s", d.msg);
	expect(&r, EVB_EEXIST, 1);
	cr_assert_eq(last_off(w), 1);
	evb_wal_close(w);
}

Test(wal_dedup, bad_window_options_are_einval)
{
	evb_wal_opts o;
	evb_wal     *w = NULL;
	evb_diag     d = { { 0 } };

	evb_wal_opts_default(&o);
	cr_assert_eq(o.dedup_window_count, 1000000);
	cr_assert_eq(o.dedup_window_age_ms, 86400000);
	o.dedup_window_age_ms = UINT64_MAX;
	cr_assert_eq(evb_wal_open(&w, wal_dir, &o, &d), EVB_EINVAL);
	cr_assert(strstr(d.msg, "dedup_window_age_ms") != NULL, "%s", d.msg);
	cr_assert_null(w);
}

/* A stored id of the model in window_matches_a_model. */
typedef struct model_id {
	uint8_t  id[24]; /* The id bytes. */
	size_t   len;    /* Its length, 1..24. */
	uint64_t off;    /* The offset of its record. */
} model_id;

/* model_find is the index of id in model[0..n-1], n if it is not there. */
static size_t
model_find(const model_id *model, size_t n, const uint8_t *id, size_t len)
{
	size_t k = 0;

	while (k < n &&
	    (model[k].len != len || memcmp(model[k].id, id, len) != 0)) {
		k++;
	}
	return (k);
}

/* model_rand steps a xorshift64 state. */
static uint64_t
model_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (*x);
}

/* What model_run saw. */
typedef struct model_counts {
	size_t ids;   /* Distinct ids. */
	size_t dups;  /* Duplicates in the window. */
	size_t again; /* Ids stored again after they left it. */
} model_counts;

#define MODEL_BATCH_MAX 600
#define MODEL_IDS_MAX 24000

/*
 * model_run appends nbatch batches of 1 to max_n random ids each, with a
 * window of window records and a reopen every 6 batches, and checks every
 * answer against a plain model. The ids are prefixes of each other,
 * share 8 or 16 leading bytes, hold zero and 0xff bytes, and repeat
 * within and across batches.
 */
static model_counts
model_run(uint64_t window, int nbatch, size_t max_n)
{
	static const uint8_t  alphabet[] = { 0x00, 'a', 'b', 0xff };
	static evb_wal_rec    recs[MODEL_BATCH_MAX];
	static uint8_t        ids[MODEL_BATCH_MAX][24];
	static evb_wal_result res[MODEL_BATCH_MAX];
	static model_id       model[MODEL_IDS_MAX];
	evb_wal              *w = wal_open_window(window, 0);
	uint64_t              x = 0x2545F4914F6CDD1Dull, next = 1, first;
	size_t                nmodel = 0;
	model_counts          c      = { 0, 0, 0 };

	cr_assert_leq(max_n, MODEL_BATCH_MAX);
	cr_assert_leq((size_t) nbatch * max_n, MODEL_IDS_MAX);
	for (int b = 0; b < nbatch; b++) {
		size_t n      = 1 + (size_t) (model_rand(&x) % max_n);
		size_t shared = (size_t) (b % 3) * 8; // 0, 8 or 16 bytes.

		if (b % 6 == 5) {
			evb_wal_close(w);
			w = wal_open_window(window, 0);
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t r = model_rand(&x);

			memset(&recs[i], 0, sizeof(recs[i]));
			recs[i].id_len = 1 + (size_t) (model_rand(&x) % 24);
			for (size_t j = 0; j < recs[i].id_len; j++) {
				ids[i][j] = j < shared
				    ? 'p'
				    : alphabet[(r >> (2 * j)) & 3];
			}
			recs[i].id = ids[i];
		}
		cr_assert_eq(evb_wal_append(w, recs, n, res, NULL), EVB_OK);
		first = next;
		for (size_t i = 0; i < n; i++) {
			size_t k =
			    model_find(model, nmodel, ids[i], recs[i].id_len);

			// In the window: stored earlier in this batch, or
			// among the window's records before it.
			if (k < nmodel &&
			    (model[k].off >= first ||
			        first - model[k].off <= window)) {
				expect(&res[i], EVB_EEXIST, model[k].off);
				c.dups++;
				continue;
			}
			if (k == nmodel) {
				memcpy(
				    model[nmodel].id, ids[i], recs[i].id_len);
				model[nmodel++].len = recs[i].id_len;
			} else {
				c.again++;
			}
			model[k].off = next;
			expect(&res[i], EVB_OK, next++);
		}
	}
	cr_assert_eq(last_off(w), next - 1);
	evb_wal_close(w);
	c.ids = nmodel;
	return (c);
}

/*
 * Issue #3: the window lives in memory, in a hash table that grows,
 * evicts ids as they leave the window, and is rebuilt from the log by
 * the first append after a reopen. Its answers must be exactly those of a
 * plain model (model_run), with a window of 1500 records.
 */
Test(wal_dedup, window_matches_a_model)
{
	model_counts c = model_run(1500, 24, 600);

	// Every kind is common: new ids, duplicates, and ids stored again
	// after they left the window.
	cr_assert_gt(c.ids, 1000);
	cr_assert_gt(c.dups, 1000);
	cr_assert_gt(c.again, 100, "%zu", c.again);
}

/*
 * Issue #3: a window of 50 records in the smallest table, through about
 * 12,000 ids: its index slots are vacated and reused hundreds of times
 * over, and the answers must still be the model's.
 */
Test(wal_dedup, a_small_window_reuses_its_index_and_matches_a_model)
{
	model_counts c = model_run(50, 200, 120);

	cr_assert_gt(c.ids, 4000);
	cr_assert_gt(c.dups, 500);
	cr_assert_gt(c.again, 1000, "%zu", c.again);
}

/* A batch of records with 1000-byte payloads that start with their ids
 * (where the records take the ids from). */
typedef struct big_batch {
	evb_wal_rec    recs[101];
	char           pay[101][1000];
	evb_wal_result res[101];
	size_t         n;
} big_batch;

/* big_add adds a record whose id is "<tag><num>". */
static void
big_add(big_batch *b, const char *tag, size_t num)
{
	evb_wal_rec *r = &b->recs[b->n];
	char        *p = b->pay[b->n++];
	int          len;

	memset(p, '.', sizeof(b->pay[0]));
	len = snprintf(p, 32, "%s%zu", tag, num);
	memset(r, 0, sizeof(*r));
	r->payload = p;
	r->len     = sizeof(b->pay[0]);
	r->id      = p;
	r->id_len  = (size_t) len;
}

/* big_send appends b and empties it for the next batch. */
static void
big_send(evb_wal *w, big_batch *b)
{
	evb_diag d = { { 0 } };

	cr_assert_eq(
	    evb_wal_append(w, b->recs, b->n, b->res, &d), EVB_OK, "%s", d.msg);
	b->n = 0;
}

/*
 * Issue #3: once the table is built and batches bring no duplicate, an
 * append stores every record first and decides after (wal_append.c). A
 * duplicate found then must not be stored: the batch is redone with the
 * decision first, and its other records keep consecutive offsets. The
 * map starts at 64 KiB, so stores are also cut short by map growth and
 * run again.
 */
Test(wal_dedup, a_duplicate_found_after_storing_first_is_redone)
{
	static big_batch b;
	evb_wal_opts     o;
	evb_wal_stat     s;
	evb_wal_entry    e;
	evb_wal_iter    *it;
	evb_wal         *w;
	char             want[32];
	uint64_t         off = 0;

	evb_wal_opts_default(&o);
	o.durability         = EVB_WAL_NONE;
	o.dedup_window_count = 1000;
	o.map_size_initial   = 64 * 1024;
	w                    = wtl_open(wal_dir, &o);
	for (int k = 0; k < 2; k++) { // a0..a99 build the table, b0..b99.
		for (size_t i = 0; i < 100; i++) {
			big_add(&b, k == 0 ? "a" : "b", i);
		}
		big_send(w, &b);
		for (size_t i = 0; i < 100; i++) {
			expect(&b.res[i], EVB_OK, 1 + 100 * (uint64_t) k + i);
		}
	}
	// c0..c49, a7, c50..c98, b3: two duplicates among new ids.
	for (size_t i = 0; i < 99; i++) {
		big_add(&b, "c", i);
		if (i == 49) {
			big_add(&b, "a", 7);
		}
	}
	big_add(&b, "b", 3);
	big_send(w, &b);
	for (size_t i = 0; i < 101; i++) {
		if (i == 50 || i == 100) {
			expect(&b.res[i], EVB_EEXIST, i == 50 ? 8 : 104);
		} else {
			expect(&b.res[i], EVB_OK, 201 + i - (i > 50));
		}
	}
	// A batch of new ids after one with duplicates.
	for (size_t i = 0; i < 100; i++) {
		big_add(&b, "d", i);
	}
	big_send(w, &b);
	expect(&b.res[99], EVB_OK, 399);
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.dup_count, 2);
	cr_assert_eq(s.id_count, 399);
	cr_assert_gt(s.map_grows, 0);
	// The log: a0..a99, b0..b99, c0..c98, d0..d99, nothing else.
	cr_assert_eq(evb_wal_iter_open(w, 1, &it), EVB_OK);
	while (evb_wal_iter_next(it, &e) == EVB_OK) {
		size_t k = (size_t) off / 100, i = (size_t) off % 100;

		cr_assert_eq(e.off, ++off);
		if (off > 200) { // c0..c98 take 99 offsets.
			k = off <= 299 ? 2 : 3;
			i = off <= 299 ? (size_t) off - 201
			               : (size_t) off - 300;
		}
		(void) snprintf(want, sizeof(want), "%c%zu", "abcd"[k], i);
		cr_assert_eq(e.id_len, strlen(want));
		cr_assert_arr_eq(e.id, want, e.id_len, "offset %llu",
		    (unsigned long long) e.off);
	}
	cr_assert_eq(off, 399);
	evb_wal_iter_close(it);
	evb_wal_close(w);
}

/*
 * Issue #3: with an age window only, the table starts small and doubles
 * as ids arrive (batches larger than its free room included); every id
 * stays found with its offset, and all leave together when they age out.
 */
Test(wal_dedup, table_grows_and_stays_exact_with_an_age_window)
{
	static evb_wal_rec    recs[700];
	static char           ids[700][16];
	static evb_wal_result res[700];
	evb_wal              *w    = wal_open_window(0, 60000);
	uint64_t              next = 1;
	evb_wal_stat          s;

	for (int b = 0; b < 8; b++) {
		for (size_t i = 0; i < 700; i++) {
			(void) snprintf(ids[i], sizeof(ids[i]), "g%zu",
			    (size_t) b * 700 + i);
			memset(&recs[i], 0, sizeof(recs[i]));
			recs[i].id     = ids[i];
			recs[i].id_len = strlen(ids[i]);
		}
		cr_assert_eq(evb_wal_append(w, recs, 700, res, NULL), EVB_OK);
		for (size_t i = 0; i < 700; i++) {
			expect(&res[i], EVB_OK, next++);
		}
	}
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.id_count, 5600);
	// Every eighth id again, all in one batch: all duplicates.
	for (size_t i = 0; i < 700; i++) {
		(void) snprintf(ids[i], sizeof(ids[i]), "g%zu", i * 8);
		recs[i].id_len = strlen(ids[i]);
	}
	cr_assert_eq(evb_wal_append(w, recs, 700, res, NULL), EVB_OK);
	for (size_t i = 0; i < 700; i++) {
		expect(&res[i], EVB_EEXIST, i * 8 + 1);
	}
	atomic_fetch_add(&now_ns, 60000 * MS);
	cr_assert_eq(evb_wal_append(w, recs, 700, res, NULL), EVB_OK);
	for (size_t i = 0; i < 700; i++) {
		expect(&res[i], EVB_OK, next++);
	}
	cr_assert_eq(evb_wal_stats(w, &s), EVB_OK);
	cr_assert_eq(s.id_count, 700);
	evb_wal_close(w);
}
