/*
 * collector_local_test.c: the collector with an in-process source written
 * here (collector.h's read callback), so every case is exact: frames in
 * order, an evicted range, a restart in the same and in a new epoch, the
 * durable callback, bad options and gap payloads.
 *
 * The fake source serves seqs first_held..last of one epoch and then says
 * EVB_ECLOSED, so evb_collector_stop drains it completely.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "collector/collector.h"
#include "tests/support/support.h"

#define CT_EPOCH 7 /* The fake broker's epoch. */

static char *tmp;

static void
setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&tmp), EVB_OK);
}

static void
teardown(void)
{
	(void) evb_ts_tmpdir_remove(tmp);
	tmp = NULL;
}

TestSuite(collector, .init = setup, .fini = teardown, .timeout = 60);

/* The fake source. */
typedef struct ct_source {
	uint64_t first_held; /* Oldest seq held; older ones are evicted. */
	uint64_t last;       /* Newest seq published. */
	uint64_t epoch;      /* Its epoch. */
	uint64_t bad_a;      /* Seqs served as bytes that do not decode */
	uint64_t bad_b;      /* (0: none). */
} ct_source;

/* What the callbacks were told. */
typedef struct ct_durable {
	int      calls;        /* on_durable calls. */
	uint64_t epoch;        /* Its last epoch. */
	uint64_t seq;          /* Its last seq. */
	int      gaps;         /* on_gap calls. */
	int      calls_at_gap; /* on_durable calls before the first. */
	uint64_t gap_first;    /* The last gap's range. */
	uint64_t gap_last;
	int      dups;    /* on_duplicate calls. */
	uint64_t dup_seq; /* The last duplicate's seq and original. */
	uint64_t orig_epoch;
	uint64_t orig_seq;
} ct_durable;

static void
ct_frame(const ct_source *s, uint64_t seq, evb_buf *out)
{
	char       json[256];
	evb_event *ev;
	evb_buf    f;
	uint8_t    len[4];

	(void) snprintf(json, sizeof(json),
	    "{\"type\":\"market_data\",\"id\":\"e-%llu\",\"ts\":5,\"data\":"
	    "{\"symbol\":\"EURUSD\",\"bid\":1.5,\"ask\":1.75}}",
	    (unsigned long long) seq);
	cr_assert_eq(
	    evb_proto_event_from_json(&ev, json, strlen(json), NULL), EVB_OK);
	evb_proto_event_set_seq(ev, seq, s->epoch);
	evb_buf_init(&f);
	cr_assert_eq(evb_proto_frame_encode(ev, &f), EVB_OK);
	evb_put_be32(len, (uint32_t) f.len);
	cr_assert_eq(evb_buf_append(out, len, 4), EVB_OK);
	cr_assert_eq(evb_buf_append(out, f.data, f.len), EVB_OK);
	evb_buf_fini(&f);
	evb_proto_event_free(ev);
}

static int
ct_read(void *arg, uint64_t from, size_t max_frames, size_t max_bytes,
    uint64_t timeout_ms, evb_buf *out, size_t *n, uint64_t *first)
{
	const ct_source *s = arg;

	(void) max_bytes;
	(void) timeout_ms;
	if (from < s->first_held) {
		*n     = s->last - s->first_held + 1;
		*first = s->first_held;
		return EVB_ENOTFOUND;
	}
	if (from > s->last) {
		return EVB_ECLOSED;
	}
	*n     = 0;
	*first = from;
	for (uint64_t q = from; q <= s->last && *n < max_frames; q++) {
		if (q == s->bad_a || q == s->bad_b) {
			static const uint8_t junk[] = { 0, 0, 0, 3, 'x', 0,
				0xc1 };

			cr_assert_eq(
			    evb_buf_append(out, junk, sizeof(junk)), EVB_OK);
		} else {
			ct_frame(s, q, out);
		}
		(*n)++;
	}
	return EVB_OK;
}

static void
ct_on_durable(void *arg, uint64_t epoch, uint64_t seq)
{
	ct_durable *d = arg;

	d->calls++;
	d->epoch = epoch;
	d->seq   = seq;
}

static void
ct_on_gap(void *arg, uint64_t epoch, uint64_t first, uint64_t last)
{
	ct_durable *d = arg;

	(void) epoch;
	if (d->gaps == 0) {
		d->calls_at_gap = d->calls;
	}
	d->gaps++;
	d->gap_first = first;
	d->gap_last  = last;
}

static void
ct_on_dup(void *arg, uint64_t epoch, uint64_t seq, uint64_t orig_epoch,
    uint64_t orig_seq)
{
	ct_durable *d = arg;

	(void) epoch;
	d->dups++;
	d->dup_seq    = seq;
	d->orig_epoch = orig_epoch;
	d->orig_seq   = orig_seq;
}

/* ct_run_fn opens a collector on read_fn (arg, serving epoch), lets it
 * drain the source, and returns its stats. */
static evb_collector_stat
ct_run_fn(evb_collector_read_fn read_fn, void *arg, uint64_t epoch,
    ct_durable *d, size_t batch_max)
{
	evb_collector_opts o;
	evb_collector     *c;
	evb_collector_stat st;
	evb_diag           diag = { "" };

	evb_collector_opts_default(&o);
	o.data_dir     = tmp;
	o.durability   = EVB_WAL_NONE;
	o.read_fn      = read_fn;
	o.read_arg     = arg;
	o.read_epoch   = epoch;
	o.batch_max    = batch_max;
	o.on_durable   = ct_on_durable;
	o.on_gap       = ct_on_gap;
	o.on_duplicate = ct_on_dup;
	o.durable_arg  = d;
	cr_assert_eq(evb_collector_open(&c, &o, &diag), EVB_OK, "%s", diag.msg);
	cr_assert_eq(evb_collector_start(c), EVB_OK);
	cr_assert_eq(evb_collector_start(c), EVB_EINVAL);
	evb_collector_stop(c);
	evb_collector_stop(c);
	evb_collector_stats(c, &st);
	evb_collector_close(c);
	return st;
}

/* ct_run runs a collector on the fake source s. */
static evb_collector_stat
ct_run(ct_source *s, ct_durable *d, size_t batch_max)
{
	return ct_run_fn(ct_read, s, s->epoch, d, batch_max);
}

/* ct_log reads the whole log: n entries' (type, epoch, seq). */
static size_t
ct_log(evb_wal_entry *out, size_t cap, char *gap_payload, size_t *gap_len)
{
	evb_wal_opts  o;
	evb_wal      *w;
	evb_wal_iter *it;
	evb_wal_entry e;
	size_t        n = 0;

	evb_wal_opts_default(&o);
	o.read_only = true;
	cr_assert_eq(evb_wal_open(&w, tmp, &o, NULL), EVB_OK);
	cr_assert_eq(evb_wal_iter_open(w, 1, &it), EVB_OK);
	while (evb_wal_iter_next(it, &e) == EVB_OK) {
		cr_assert_lt(n, cap);
		if (e.type == EVB_COLLECTOR_GAP_TYPE && gap_payload != NULL) {
			memcpy(gap_payload, e.payload, e.len);
			*gap_len = e.len;
		}
		if (e.type != EVB_COLLECTOR_GAP_TYPE) {
			char id[32];

			// The id is the envelope's, and the record holds its
			// place there, not a copy (docs/wal-format.md, flag
			// ID_AT = 0x01).
			(void) snprintf(id, sizeof(id), "e-%llu",
			    (unsigned long long) e.seq);
			cr_assert_eq(e.id_len, strlen(id));
			cr_assert_eq(memcmp(e.id, id, e.id_len), 0);
			cr_assert_eq(e.flags, 0x01);
			cr_assert_geq((const uint8_t *) e.id,
			    (const uint8_t *) e.payload);
			cr_assert_leq((const uint8_t *) e.id + e.id_len,
			    (const uint8_t *) e.payload + e.len);
		}
		e.payload = NULL;
		out[n++]  = e;
	}
	evb_wal_iter_close(it);
	evb_wal_close(w);
	return n;
}

Test(collector, stores_every_frame_in_seq_order_in_batches)
{
	ct_source          s = { 1, 100, CT_EPOCH, 0, 0 };
	ct_durable         d = { 0 };
	evb_collector_stat st;
	evb_wal_entry      log[128];
	int                md;

	cr_assert_eq(evb_proto_type_find("market_data", 11, &md), EVB_OK);
	st = ct_run(&s, &d, 30);
	cr_assert_eq(st.appended, 100);
	cr_assert_eq(st.batches, 4);
	cr_assert_eq(st.gaps, 0);
	cr_assert_eq(st.last_epoch, CT_EPOCH);
	cr_assert_eq(st.last_seq, 100);
	cr_assert_eq(d.calls, 4);
	cr_assert_eq(d.epoch, CT_EPOCH);
	cr_assert_eq(d.seq, 100);
	cr_assert_eq(ct_log(log, 128, NULL, NULL), 100);
	for (size_t i = 0; i < 100; i++) {
		cr_assert_eq(log[i].seq, i + 1);
		cr_assert_eq(log[i].epoch, CT_EPOCH);
		cr_assert_eq(log[i].type, md);
		cr_assert_eq(log[i].ts_ns, 5);
	}
}

Test(collector, an_evicted_range_becomes_one_gap_record)
{
	// 7 frames held: a margin of 7 / 8 = 0, the gap is the evicted 50.
	ct_source          s = { 51, 57, CT_EPOCH, 0, 0 };
	ct_durable         d = { 0 };
	evb_collector_stat st;
	evb_wal_entry      log[16];
	char               gap[64];
	size_t             gap_len = 0;
	uint64_t           e, f, l;

	st = ct_run(&s, &d, 8192);
	cr_assert_eq(st.gaps, 1);
	cr_assert_eq(st.gap_events, 50);
	cr_assert_eq(st.appended, 7);
	cr_assert_eq(st.batches, 1, "the gap commits with the frames after it");
	cr_assert_eq(ct_log(log, 16, gap, &gap_len), 8);
	cr_assert_eq(log[0].type, EVB_COLLECTOR_GAP_TYPE);
	cr_assert_eq(log[0].epoch, CT_EPOCH);
	cr_assert_eq(log[0].seq, 50);
	cr_assert_eq(
	    evb_collector_gap_decode(gap, gap_len, &e, &f, &l), EVB_OK);
	cr_assert_eq(e, CT_EPOCH);
	cr_assert_eq(f, 1);
	cr_assert_eq(l, 50);
	cr_assert_eq(d.gaps, 1);
	cr_assert_eq(d.calls_at_gap, 0, "on_gap came after on_durable");
	cr_assert_eq(d.gap_first, 1);
	cr_assert_eq(d.gap_last, 50);
	cr_assert_eq(log[1].seq, 51);
	cr_assert_eq(log[7].seq, 57);
}

/*
 * A collector that fell behind the ring resumes an eighth of the frames
 * held past the oldest, not at it, so that it does not chase the ring's
 * eviction in small batches: 800 held, 100 given up with the evicted 100.
 */
Test(collector, a_collector_behind_the_ring_resumes_with_a_margin)
{
	ct_source            s = { 101, 900, CT_EPOCH, 0, 0 };
	ct_durable           d = { 0 };
	evb_collector_stat   st;
	static evb_wal_entry log[1024];
	char                 gap[64];
	size_t               gap_len = 0;
	uint64_t             e, f, l;

	st = ct_run(&s, &d, 8192);
	cr_assert_eq(st.gaps, 1);
	cr_assert_eq(st.gap_events, 200);
	cr_assert_eq(st.appended, 700);
	cr_assert_eq(st.batches, 1);
	cr_assert_eq(ct_log(log, 1024, gap, &gap_len), 701);
	cr_assert_eq(
	    evb_collector_gap_decode(gap, gap_len, &e, &f, &l), EVB_OK);
	cr_assert_eq(f, 1);
	cr_assert_eq(l, 200);
	cr_assert_eq(d.gap_first, 1);
	cr_assert_eq(d.gap_last, 200);
	for (size_t i = 1; i < 701; i++) {
		cr_assert_eq(log[i].seq, 200 + i);
	}
}

/*
 * After the gap, reads are sized to fill the batch: 1900 held, a margin
 * of 237, the gap and the 1663 frames after it in ceil(1664 / 700) = 3
 * commits, none of them a lone frame.
 */
Test(collector, a_gap_and_the_frames_after_it_commit_in_full_batches)
{
	ct_source          s = { 101, 2000, CT_EPOCH, 0, 0 };
	ct_durable         d = { 0 };
	evb_collector_stat st;

	st = ct_run(&s, &d, 700);
	cr_assert_eq(st.gaps, 1);
	cr_assert_eq(st.gap_events, 337);
	cr_assert_eq(st.appended, 1663);
	cr_assert_eq(
	    st.batches, 3, "%llu commits", (unsigned long long) st.batches);
	cr_assert_eq(d.gap_last, 337);
	cr_assert_eq(d.seq, 2000);
}

/* The margin is at most four batches: 1900 held / 8 = 237 > 4 x 32. */
Test(collector, the_margin_is_at_most_four_batches)
{
	ct_source          s = { 101, 2000, CT_EPOCH, 0, 0 };
	ct_durable         d = { 0 };
	evb_collector_stat st;

	st = ct_run(&s, &d, 32);
	cr_assert_eq(st.gaps, 1);
	cr_assert_eq(d.gap_first, 1);
	cr_assert_eq(d.gap_last, 100 + 4 * 32);
	cr_assert_eq(st.appended, 2000 - (100 + 4 * 32));
	cr_assert_eq(d.seq, 2000);
}

Test(collector, a_frame_that_does_not_decode_becomes_a_one_seq_gap)
{
	// Seq 4 in the middle, and seq 10, the last one: before, the
	// collector asked the source for the last one again and again.
	ct_source          s = { 1, 10, CT_EPOCH, 4, 10 };
	ct_durable         d = { 0 };
	evb_collector_stat st;
	evb_wal_entry      log[16];
	char               gap[64];
	size_t             gap_len = 0;
	uint64_t           e, f, l;

	st = ct_run(&s, &d, 3);
	cr_assert_eq(st.bad_frames, 2);
	cr_assert_eq(st.gaps, 2);
	cr_assert_eq(st.gap_events, 2);
	cr_assert_eq(st.appended, 8);
	cr_assert_eq(st.last_seq, 10);
	cr_assert_eq(ct_log(log, 16, gap, &gap_len), 10);
	for (size_t i = 0; i < 10; i++) {
		bool is_bad = i + 1 == 4 || i + 1 == 10;

		cr_assert_eq(log[i].seq, i + 1);
		cr_assert_eq(log[i].type == EVB_COLLECTOR_GAP_TYPE, is_bad,
		    "seq %zu", i + 1);
	}
	// The last gap record read is seq 10's.
	cr_assert_eq(
	    evb_collector_gap_decode(gap, gap_len, &e, &f, &l), EVB_OK);
	cr_assert_eq(e, CT_EPOCH);
	cr_assert_eq(f, 10);
	cr_assert_eq(l, 10);
	cr_assert_eq(d.gaps, 2);
}

/*
 * A source that breaks its contract (collector.h: frames from the seq
 * asked for on): it leaves out seqs hole_a..hole_b, answering a read of
 * them with the frames after, and with replay it starts every read after
 * the first with the frame before the one asked for, already stored.
 */
typedef struct ct_bent {
	ct_source s;
	uint64_t  hole_a, hole_b; /* Seqs never served (0: none). */
	bool      replay;         /* Resend the frame before from. */
} ct_bent;

static int
ct_bent_read(void *arg, uint64_t from, size_t max_frames, size_t max_bytes,
    uint64_t timeout_ms, evb_buf *out, size_t *n, uint64_t *first)
{
	ct_bent  *b    = arg;
	ct_source part = b->s;
	size_t    old  = 0;
	int       rc;

	if (b->replay && from > 1 && from <= b->s.last) {
		ct_frame(&b->s, from - 1, out);
		old = 1;
	}
	if (b->hole_a != 0 && from >= b->hole_a && from <= b->hole_b) {
		from = b->hole_b + 1;
	} else if (b->hole_a != 0 && from < b->hole_a) {
		part.last = b->hole_a - 1;
	}
	rc = ct_read(
	    &part, from, max_frames, max_bytes, timeout_ms, out, n, first);
	if (rc == EVB_OK) {
		*n += old;
	}
	return rc;
}

/* A hole in what the source serves is stored as a gap record, even when
 * the source, not the ring's eviction, made it: the log never skips a
 * seq that no gap record covers. */
Test(collector, a_seq_the_source_skips_becomes_a_gap_record)
{
	ct_bent            b = { { 1, 10, CT_EPOCH, 0, 0 }, 4, 6, false };
	ct_durable         d = { 0 };
	evb_collector_stat st;
	evb_wal_entry      log[16];
	char               gap[64];
	size_t             gap_len = 0;
	uint64_t           e, f, l;

	st = ct_run_fn(ct_bent_read, &b, CT_EPOCH, &d, 8192);
	cr_assert_eq(st.appended, 7);
	cr_assert_eq(st.gaps, 1);
	cr_assert_eq(st.gap_events, 3);
	cr_assert_eq(ct_log(log, 16, gap, &gap_len), 8);
	for (size_t i = 0; i < 8; i++) {
		cr_assert_eq(log[i].seq, i < 3 ? i + 1 : i + 3, "entry %zu", i);
		cr_assert_eq(log[i].type == EVB_COLLECTOR_GAP_TYPE, i == 3);
	}
	cr_assert_eq(
	    evb_collector_gap_decode(gap, gap_len, &e, &f, &l), EVB_OK);
	cr_assert_eq(e, CT_EPOCH);
	cr_assert_eq(f, 4);
	cr_assert_eq(l, 6);
	cr_assert_eq(d.gaps, 1);
	cr_assert_eq(d.gap_first, 4);
	cr_assert_eq(d.gap_last, 6);
	cr_assert_eq(d.seq, 10);
}

/* A frame whose seq is already stored is skipped and counted stale: each
 * seq is stored once, under its own seq and id. */
Test(collector, a_frame_already_stored_is_skipped_as_stale)
{
	ct_bent            b = { { 1, 20, CT_EPOCH, 0, 0 }, 0, 0, true };
	ct_durable         d = { 0 };
	evb_collector_stat st;
	evb_wal_entry      log[32];

	st = ct_run_fn(ct_bent_read, &b, CT_EPOCH, &d, 5);
	cr_assert_eq(st.appended, 20);
	cr_assert_eq(st.gaps, 0);
	cr_assert_geq(st.stale, 3, "a replayed frame per read after the first");
	// ct_log checks that each record's id is that of its own seq.
	cr_assert_eq(ct_log(log, 32, NULL, NULL), 20);
	for (size_t i = 0; i < 20; i++) {
		cr_assert_eq(log[i].seq, i + 1);
	}
	cr_assert_eq(d.seq, 20);
}

Test(collector, reopen_resumes_after_the_last_record_of_the_same_epoch)
{
	ct_source          s = { 1, 10, CT_EPOCH, 0, 0 };
	ct_durable         d = { 0 };
	evb_collector_stat st;
	evb_wal_entry      log[32];

	(void) ct_run(&s, &d, 8192);
	s.last = 25;
	st     = ct_run(&s, &d, 8192);
	cr_assert_eq(st.appended, 15);
	cr_assert_eq(st.duplicates, 0);
	cr_assert_eq(st.epochs, 0);
	cr_assert_eq(ct_log(log, 32, NULL, NULL), 25);
	for (size_t i = 0; i < 25; i++) {
		cr_assert_eq(log[i].seq, i + 1);
	}
}

Test(collector, a_new_epoch_starts_again_from_seq_one)
{
	ct_source          s = { 1, 10, CT_EPOCH, 0, 0 };
	ct_durable         d = { 0 };
	evb_collector_stat st;
	evb_wal_entry      log[32];

	(void) ct_run(&s, &d, 8192);
	s.epoch = CT_EPOCH + 1;
	s.last  = 5;
	st      = ct_run(&s, &d, 8192);
	cr_assert_eq(st.epochs, 1);
	// The ids e-1..e-5 were stored in the old epoch: the WAL refuses
	// them as duplicates, and says so per record.
	cr_assert_eq(st.duplicates, 5);
	cr_assert_eq(st.appended, 0);
	cr_assert_eq(ct_log(log, 32, NULL, NULL), 10);
	cr_assert_eq(d.epoch, CT_EPOCH + 1);
	cr_assert_eq(d.seq, 5);
	cr_assert_eq(d.dups, 5);
	cr_assert_eq(d.dup_seq, 5);
	cr_assert_eq(d.orig_epoch, CT_EPOCH);
	cr_assert_eq(d.orig_seq, 5);
}

/* A source whose disk fills at stop: seqs 1..5 come once stop has been
 * asked, with the log's file held at its size (RLIMIT_FSIZE, as a full
 * disk); seqs 6..10 come with the limit lifted again. */
typedef struct ct_full {
	ct_source     s;
	atomic_bool   stop_asked;
	struct rlimit saved;
	char         *data_mdb;
} ct_full;

static int
ct_full_read(void *arg, uint64_t from, size_t max_frames, size_t max_bytes,
    uint64_t timeout_ms, evb_buf *out, size_t *n, uint64_t *first)
{
	ct_full        *f    = arg;
	struct timespec tick = { 0, 10000000L };
	struct rlimit   rl   = f->saved;
	struct stat     st;

	if (from == 1) {
		while (!atomic_load(&f->stop_asked)) {
			(void) nanosleep(&tick, NULL);
		}
		// evb_collector_stop sets its flag first thing.
		tick.tv_nsec = 300000000L;
		(void) nanosleep(&tick, NULL);
		cr_assert_eq(stat(f->data_mdb, &st), 0);
		rl.rlim_cur = (rlim_t) st.st_size;
		cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	} else if (from == 6) {
		cr_assert_eq(setrlimit(RLIMIT_FSIZE, &f->saved), 0);
	}
	return ct_read(
	    &f->s, from, max_frames, max_bytes, timeout_ms, out, n, first);
}

/*
 * A batch that cannot be stored at stop is given up, and so is every
 * batch after it in that stop, even one that could be stored: otherwise
 * the log would hold 6..10 after a hole no gap record covers, and
 * on_durable(10) would tell the broker that 1..5 are stored (confirmed
 * requests answered for events the log lacks). Every seq given up is
 * counted lost and reported through on_gap before any on_durable.
 */
Test(collector, a_batch_given_up_at_stop_ends_what_the_stop_stores)
{
	static ct_full     f = { .s = { 1, 10, CT_EPOCH, 0, 0 } };
	ct_durable         d = { 0 };
	evb_collector_opts o;
	evb_collector     *c;
	evb_collector_stat st;
	evb_wal_entry      log[4];
	evb_diag           diag = { "" };

	cr_assert_neq(signal(SIGXFSZ, SIG_IGN), SIG_ERR);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &f.saved), 0);
	f.data_mdb = evb_ts_path(tmp, "data.mdb");
	evb_collector_opts_default(&o);
	o.data_dir    = tmp;
	o.read_fn     = ct_full_read;
	o.read_arg    = &f;
	o.read_epoch  = CT_EPOCH;
	o.batch_max   = 5;
	o.on_durable  = ct_on_durable;
	o.on_gap      = ct_on_gap;
	o.durable_arg = &d;
	cr_assert_eq(evb_collector_open(&c, &o, &diag), EVB_OK, "%s", diag.msg);
	cr_assert_eq(evb_collector_start(c), EVB_OK);
	atomic_store(&f.stop_asked, true);
	evb_collector_stop(c);
	evb_collector_stats(c, &st);
	evb_collector_close(c);
	cr_assert_geq(st.append_errors, 1);
	cr_assert_eq(d.calls, 0, "on_durable(%llu) after seqs given up",
	    (unsigned long long) d.seq);
	cr_assert_eq(st.lost, 10);
	cr_assert_eq(d.gaps, 2);
	cr_assert_eq(d.gap_first, 6);
	cr_assert_eq(d.gap_last, 10);
	cr_assert_eq(ct_log(log, 4, NULL, NULL), 0, "the log is not a prefix");
	free(f.data_mdb);
}

Test(collector, open_refuses_bad_options)
{
	ct_source          s = { 1, 1, CT_EPOCH, 0, 0 };
	evb_collector_opts o;
	evb_collector     *c = NULL;
	evb_diag           diag;

	evb_collector_opts_default(&o);
	cr_assert_eq(evb_collector_open(&c, &o, &diag), EVB_EINVAL);
	cr_assert(strstr(diag.msg, "data_dir") != NULL);
	o.data_dir  = tmp;
	o.batch_max = 0;
	cr_assert_eq(evb_collector_open(&c, &o, &diag), EVB_EINVAL);
	o.batch_max = 10;
	o.read_fn   = ct_read;
	o.read_arg  = &s;
	cr_assert_eq(evb_collector_open(&c, &o, &diag), EVB_EINVAL);
	cr_assert(strstr(diag.msg, "read_epoch") != NULL);
	cr_assert_null(c);
	evb_collector_close(NULL);
}

Test(collector, a_second_collector_on_the_same_log_gets_ebusy)
{
	ct_source          s = { 1, 1, CT_EPOCH, 0, 0 };
	evb_collector_opts o;
	evb_collector     *c1 = NULL;
	evb_collector     *c2 = NULL;
	evb_diag           diag;

	evb_collector_opts_default(&o);
	o.data_dir   = tmp;
	o.durability = EVB_WAL_NONE;
	o.read_fn    = ct_read;
	o.read_arg   = &s;
	o.read_epoch = s.epoch;
	cr_assert_eq(
	    evb_collector_open(&c1, &o, &diag), EVB_OK, "%s", diag.msg);
	cr_assert_eq(evb_collector_open(&c2, &o, &diag), EVB_EBUSY);
	cr_assert(strstr(diag.msg, "another collector writes the log") != NULL,
	    "%s", diag.msg);
	cr_assert_null(c2);
	evb_collector_close(c1);
	// Closing the first releases the lock.
	cr_assert_eq(
	    evb_collector_open(&c2, &o, &diag), EVB_OK, "%s", diag.msg);
	evb_collector_close(c2);
}

/* ct_pack packs {"gap": {"epoch": e, "first": f, "last": l}} (n keys). */
static void
ct_pack(msgpack_sbuffer *sb, const char *outer, uint64_t f, uint64_t l)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, outer, strlen(outer));
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "epoch", 5);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_str_with_body(&pk, "first", 5);
	msgpack_pack_uint64(&pk, f);
	msgpack_pack_str_with_body(&pk, "last", 4);
	msgpack_pack_uint64(&pk, l);
}

Test(collector, gap_decode_refuses_anything_but_a_gap)
{
	msgpack_sbuffer sb;
	uint64_t        e = 0, f = 0, l = 0;

	ct_pack(&sb, "gap", 3, 4);
	cr_assert_eq(
	    evb_collector_gap_decode(sb.data, sb.size, &e, &f, &l), EVB_OK);
	cr_assert_eq(e, 1);
	cr_assert_eq(f, 3);
	cr_assert_eq(l, 4);
	cr_assert_eq(evb_collector_gap_decode(sb.data, sb.size - 1, &e, &f, &l),
	    EVB_EMALFORMED);
	msgpack_sbuffer_destroy(&sb);
	ct_pack(&sb, "gap", 5, 4);
	cr_assert_eq(evb_collector_gap_decode(sb.data, sb.size, &e, &f, &l),
	    EVB_EMALFORMED);
	msgpack_sbuffer_destroy(&sb);
	ct_pack(&sb, "gop", 3, 4);
	cr_assert_eq(evb_collector_gap_decode(sb.data, sb.size, &e, &f, &l),
	    EVB_EMALFORMED);
	msgpack_sbuffer_destroy(&sb);
}
