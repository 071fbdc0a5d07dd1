/*
 * compactor_project_test.c: what the tables hold after a projection,
 * checked against a brute-force scan of the events the test appended to
 * its own WAL (compactor_testlib.h): every type in its table and in the
 * all-events index, byte for byte; every secondary index, with and
 * without a type and a time window, both directions; latest state with
 * times out of order; per-minute statistics; gap and bad records; trace.
 * Issue #5.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/compactor_testlib.h"

static char          *tmp;
static evb_wal       *wal;
static ctl_log        lg;
static evb_compactor *comp;

static void
setup(void)
{
	evb_wal_opts o;
	evb_diag     d = { "" };

	cr_assert_eq(evb_ts_tmpdir_make(&tmp), EVB_OK);
	evb_wal_opts_default(&o);
	o.durability = EVB_WAL_NONE;
	cr_assert_eq(evb_wal_open(&wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	ctl_log_init(&lg, 5);
}

static void
teardown(void)
{
	evb_compactor_close(comp);
	comp = NULL;
	evb_wal_close(wal);
	wal = NULL;
	ctl_log_fini(&lg);
	(void) evb_ts_tmpdir_remove(tmp);
	tmp = NULL;
}

TestSuite(compactor, .init = setup, .fini = teardown, .timeout = 120);

/* project_and_open projects the whole WAL, closes the compactor (one
 * process may not open the tables twice) and opens them read-only. */
static evb_compactor_tables *
project_and_open(size_t step)
{
	evb_compactor_opts    o;
	evb_compactor_tables *t = NULL;
	evb_diag              d = { "" };

	evb_compactor_opts_default(&o);
	o.sync = false;
	cr_assert_eq(
	    evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	ctl_project(comp, step);
	evb_compactor_close(comp);
	comp = NULL;
	cr_assert_eq(
	    evb_compactor_tables_open(&t, tmp, &d), EVB_OK, "%s", d.msg);
	return (t);
}

/* expect_rows checks that rs holds exactly want[0..n-1], in order. */
static void
expect_rows(
    const ctl_rows *rs, const ctl_ev *const *want, size_t n, const char *what)
{
	cr_assert_eq(rs->n, n, "%s: %zu rows, expected %zu", what, rs->n, n);
	for (size_t i = 0; i < n; i++) {
		const ctl_row *r = &rs->r[i];

		cr_assert_eq(r->off, want[i]->off, "%s: row %zu", what, i);
		cr_assert_eq(r->type, want[i]->type, "%s: row %zu", what, i);
		cr_assert_eq(r->ts, want[i]->ts, "%s: row %zu", what, i);
		cr_assert_eq(r->len, want[i]->len, "%s: row %zu", what, i);
		cr_assert_eq(memcmp(r->env, want[i]->payload, r->len), 0,
		    "%s: row %zu", what, i);
	}
}

/* long_key is longer than any stored key (and than LMDB's 511 bytes). */
static const char *
long_key(void)
{
	static char k[600];

	memset(k, 'x', sizeof(k) - 1);
	return (k);
}

/* A brute-force filter over the model, like evb_compactor_query. */
static bool
model_match(const ctl_ev *e, const evb_compactor_query *q)
{
	return (e->type >= 0 && (q->type < 0 || e->type == q->type) &&
	    e->ts >= q->since_ns &&
	    (e->ts < q->until_ns || q->until_ns == INT64_MAX) &&
	    (q->symbol == NULL || strcmp(e->symbol, q->symbol) == 0) &&
	    (q->user == NULL || strcmp(e->user, q->user) == 0) &&
	    (q->corr == NULL || strcmp(e->corr, q->corr) == 0));
}

/*
 * model_plan is the plan the query must choose: the index of its most
 * selective key (corr, else user, else symbol), else the type's table or
 * the all-events index. *ix is q with only that key kept: the rows the
 * plan walks, which is what it may examine.
 */
static const char *
model_plan(const evb_compactor_query *q, evb_compactor_query *ix)
{
	*ix = *q;
	if (q->corr != NULL) {
		ix->user = ix->symbol = NULL;
		return ("ix.corr");
	}
	if (q->user != NULL) {
		ix->symbol = NULL;
		return ("ix.user_id");
	}
	if (q->symbol != NULL) {
		return ("ix.symbol");
	}
	return (q->type < 0 ? "events" : evb_compactor_table_name(q->type));
}

/*
 * check_query runs q and compares it with the brute-force answer, and
 * what it read with the plan it must have chosen: an index walk examines
 * only its key's rows in the range, up to the last one returned, never a
 * table's other rows.
 */
static void
check_query(evb_compactor_tables *t, const evb_compactor_query *q)
{
	size_t                   n, m = 0, walked = 0;
	const ctl_ev           **all  = ctl_sorted(&lg, &n);
	const ctl_ev           **want = calloc(n + 1, sizeof(*want));
	ctl_rows                 rs   = { 0 };
	evb_diag                 d    = { "" };
	evb_compactor_query      run  = *q, ix;
	evb_compactor_query_stat st;
	const char              *source = model_plan(q, &ix);
	char                     what[160];

	cr_assert_not_null(want);
	for (size_t i = 0; i < n; i++) {
		const ctl_ev *e = all[q->descending ? n - 1 - i : i];

		if (q->limit != 0 && m == q->limit) {
			break;
		}
		walked += model_match(e, &ix);
		if (model_match(e, q)) {
			want[m++] = e;
		}
	}
	(void) snprintf(what, sizeof(what),
	    "type %d symbol %s user %s corr %s desc %d limit %llu", q->type,
	    q->symbol ? q->symbol : "-", q->user ? q->user : "-",
	    q->corr ? q->corr : "-", q->descending,
	    (unsigned long long) q->limit);
	run.stat = &st;
	cr_assert_eq(evb_compactor_tables_query(t, &run, ctl_rows_add, &rs, &d),
	    EVB_OK, "%s: %s", what, d.msg);
	expect_rows(&rs, want, m, what);
	if (q->since_ns < q->until_ns || q->until_ns == INT64_MAX) {
		cr_assert_str_eq(st.source, source, "%s", what);
	} else {
		cr_assert_null(
		    st.source, "%s: an empty range reads nothing", what);
	}
	cr_assert_eq(st.returned, m, "%s", what);
	cr_assert_eq(st.examined, walked,
	    "%s: examined %llu, plan %s walks %zu", what,
	    (unsigned long long) st.examined, source, walked);
	ctl_rows_fini(&rs);
	free(want);
	free(all);
}

Test(compactor, every_type_in_its_table_and_the_all_events_index)
{
	evb_compactor_tables *t;
	evb_compactor_query   q;
	size_t                n;
	const ctl_ev        **all;
	ctl_rows              rs = { 0 };

	ctl_append_events(wal, &lg, 1500, -1);
	t   = project_and_open(256);
	all = ctl_sorted(&lg, &n);
	cr_assert_eq(n, 1500);
	for (int type = -1; type < CTL_NTYPES; type++) {
		size_t per = 0;

		evb_compactor_query_init(&q);
		q.type = type;
		check_query(t, &q);
		q.descending = true;
		check_query(t, &q);
		for (size_t i = 0; i < n; i++) {
			per += type < 0 || all[i]->type == type;
		}
		cr_assert_gt(per, 100, "the mix has every type");
	}
	// Each row decodes to the event appended, with seq and epoch.
	evb_compactor_query_init(&q);
	q.limit = 20;
	cr_assert_eq(
	    evb_compactor_tables_query(t, &q, ctl_rows_add, &rs, NULL), EVB_OK);
	for (size_t i = 0; i < rs.n; i++) {
		evb_event *ev;

		cr_assert_eq(
		    evb_proto_event_decode(&ev, rs.r[i].env, rs.r[i].len, NULL),
		    EVB_OK);
		cr_assert_eq(evb_proto_event_type(ev), all[i]->type);
		cr_assert_eq(evb_proto_event_ts(ev), all[i]->ts);
		cr_assert(evb_proto_event_has_seq(ev));
		cr_assert_eq(evb_proto_event_epoch(ev), 1);
		evb_proto_event_free(ev);
	}
	ctl_rows_fini(&rs);
	// Time windows and limits.
	evb_compactor_query_init(&q);
	q.since_ns = all[100]->ts;
	q.until_ns = all[700]->ts;
	check_query(t, &q);
	q.type       = 6;
	q.descending = true;
	q.limit      = 17;
	check_query(t, &q);
	q.since_ns = q.until_ns;
	check_query(t, &q);
	free(all);
	evb_compactor_tables_close(t);
}

/* INT64_MAX is a valid ts, and the default until bounds nothing. */
Test(compactor, an_event_at_the_largest_ts_is_found_by_every_plan)
{
	static const char *const ts[] = { "9223372036854775807",
		"9223372036854775806", "0", "9223372036854775807" };
	evb_compactor_tables    *t;
	evb_compactor_query      q;
	char                     json[320];
	int                      pattern;

	cr_assert_eq(
	    evb_proto_type_find("pattern_detected", 16, &pattern), EVB_OK);
	ctl_append_events(wal, &lg, 200, -1);
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		(void) snprintf(json, sizeof(json),
		    "{\"type\":\"pattern_detected\",\"id\":\"edge-%zu\","
		    "\"ts\":%s,\"data\":{\"symbol\":\"EURUSD\","
		    "\"pattern_type\":\"x\",\"confidence\":1}}",
		    i, ts[i]);
		(void) ctl_append_json(wal, &lg, json);
	}
	t = project_and_open(64);
	for (int desc = 0; desc < 2; desc++) {
		evb_compactor_query_init(&q);
		q.descending = desc;
		check_query(t, &q); // The all-events index.
		q.type = pattern;   // Its table.
		check_query(t, &q);
		q.symbol = "EURUSD"; // Its index.
		check_query(t, &q);
		q.symbol   = NULL;
		q.since_ns = INT64_MAX - 1;
		check_query(t, &q);
		q.limit = 1;
		check_query(t, &q);
		q.since_ns = INT64_MAX; // The last instant alone.
		check_query(t, &q);
	}
	// An explicit bound below INT64_MAX still excludes it.
	evb_compactor_query_init(&q);
	q.until_ns = INT64_MAX - 1;
	check_query(t, &q);
	evb_compactor_tables_close(t);
}

Test(compactor, secondary_indexes_return_exactly_the_right_rows)
{
	evb_compactor_tables *t;
	evb_compactor_query   q;
	size_t                n;
	const ctl_ev        **all;
	char                  user[8], corr[8];

	ctl_append_events(wal, &lg, 1200, -1);
	t   = project_and_open(100);
	all = ctl_sorted(&lg, &n);
	for (int type = -1; type < CTL_NTYPES; type++) {
		for (int desc = 0; desc < 2; desc++) {
			evb_compactor_query_init(&q);
			q.type       = type;
			q.descending = desc != 0;
			q.since_ns   = all[n / 5]->ts;
			q.until_ns   = all[n - n / 5]->ts;
			for (int s = 0; s < CTL_NSYM; s++) {
				q.symbol = ctl_symbols[s];
				check_query(t, &q);
			}
			q.symbol = NULL;
			for (int u = 0; u < CTL_NUSER; u++) {
				(void) snprintf(user, sizeof(user), "u%d", u);
				q.user = user;
				check_query(t, &q);
				q.symbol = ctl_symbols[u % CTL_NSYM];
				check_query(t, &q); // user index + symbol check
				q.symbol = NULL;
			}
			q.user = NULL;
			for (int k = 0; k < CTL_NCORR; k++) {
				(void) snprintf(corr, sizeof(corr), "k%d", k);
				q.corr  = corr;
				q.limit = (uint64_t) k; // 0: no limit
				q.symbol =
				    k % 2 ? ctl_symbols[k % CTL_NSYM] : NULL;
				check_query(t, &q);
			}
		}
	}
	// A key nobody has gives nothing, also one longer than any key.
	evb_compactor_query_init(&q);
	q.symbol = "NZDCAD";
	check_query(t, &q);
	q.symbol = NULL;
	q.corr   = long_key();
	check_query(t, &q);
	free(all);
	evb_compactor_tables_close(t);
}

/* The newest event of kind's key, by brute force. */
static const ctl_ev *
model_latest(int type, size_t field_off, const char *key)
{
	const ctl_ev *best = NULL;

	for (size_t i = 0; i < lg.n; i++) {
		const ctl_ev *e = &lg.ev[i];

		if (e->type == type &&
		    strcmp((const char *) e + field_off, key) == 0 &&
		    (best == NULL || ctl_before(best, e))) {
			best = e;
		}
	}
	return (best);
}

Test(compactor, latest_state_follows_the_newest_event_per_key)
{
	static const struct {
		int    type;
		size_t field_off;
	} kinds[] = {
		{ 3, offsetof(ctl_ev, user) },
		{ 3, offsetof(ctl_ev, account) },
		{ 4, offsetof(ctl_ev, component) },
		{ 6, offsetof(ctl_ev, symbol) },
	};
	evb_compactor_tables *t;
	uint64_t              newest;

	ctl_append_events(wal, &lg, 1500, -1);
	// u0's newest balance comes first in the log, an older one after.
	newest = ctl_append_json(wal, &lg,
	    "{\"type\":\"balance_update\",\"ts\":1890000000000000000,"
	    "\"data\":{\"user_id\":\"u0\",\"balance\":5,\"equity\":5}}");
	(void) ctl_append_json(wal, &lg,
	    "{\"type\":\"balance_update\",\"ts\":1800000000000000000,"
	    "\"data\":{\"user_id\":\"u0\",\"balance\":5,\"equity\":5}}");
	ctl_append_events(wal, &lg, 200, 3);
	t = project_and_open(64);
	for (int k = 0; k < 4; k++) {
		ctl_rows rs   = { 0 };
		size_t   keys = 0;

		cr_assert_eq(
		    evb_compactor_tables_latest(t, (evb_compactor_latest) k,
		        NULL, ctl_rows_add, &rs, NULL),
		    EVB_OK);
		cr_assert_gt(rs.n, 1);
		for (size_t i = 0; i < rs.n; i++) {
			const ctl_ev *want = model_latest(
			    kinds[k].type, kinds[k].field_off, rs.r[i].key);
			ctl_rows one = { 0 };

			cr_assert_not_null(want, "key %s", rs.r[i].key);
			cr_assert_eq(rs.r[i].off, want->off, "kind %d key %s",
			    k, rs.r[i].key);
			cr_assert_eq(rs.r[i].ts, want->ts);
			cr_assert(
			    i == 0 || strcmp(rs.r[i - 1].key, rs.r[i].key) < 0);
			cr_assert_eq(evb_compactor_tables_latest(t,
			                 (evb_compactor_latest) k, rs.r[i].key,
			                 ctl_rows_add, &one, NULL),
			    EVB_OK);
			cr_assert_eq(one.n, 1);
			cr_assert_eq(one.r[0].off, want->off);
			ctl_rows_fini(&one);
			keys++;
		}
		// Every key of the model has a row.
		for (size_t i = 0; i < lg.n; i++) {
			const char *key =
			    (const char *) &lg.ev[i] + kinds[k].field_off;
			bool found = false;

			if (lg.ev[i].type != kinds[k].type || key[0] == '\0') {
				continue;
			}
			for (size_t j = 0; j < rs.n && !found; j++) {
				found = strcmp(rs.r[j].key, key) == 0;
			}
			cr_assert(found, "kind %d: no row for %s", k, key);
		}
		cr_assert_eq(keys, rs.n);
		if (k == 0) {
			const ctl_ev *u0 =
			    model_latest(3, offsetof(ctl_ev, user), "u0");

			cr_assert_eq(u0->off, newest);
		}
		ctl_rows_fini(&rs);
	}
	cr_assert_eq(evb_compactor_tables_latest(t, EVB_COMPACTOR_LATEST_QUOTE,
	                 "NZDCAD", ctl_rows_add, NULL, NULL),
	    EVB_ENOTFOUND);
	cr_assert_eq(evb_compactor_tables_latest(t, EVB_COMPACTOR_LATEST_HEALTH,
	                 long_key(), ctl_rows_add, NULL, NULL),
	    EVB_ENOTFOUND);
	cr_assert_eq(evb_compactor_tables_latest(t, (evb_compactor_latest) 9,
	                 NULL, ctl_rows_add, NULL, NULL),
	    EVB_EINVAL);
	evb_compactor_tables_close(t);
}

/* Collects minute rows. */
typedef struct minutes {
	evb_compactor_minute m[4096];
	size_t               n;
} minutes;

static int
minutes_add(void *arg, const evb_compactor_minute *m)
{
	minutes *ms = arg;

	cr_assert_lt(ms->n, 4096);
	ms->m[ms->n++] = *m;
	return (EVB_OK);
}

/* model_minutes counts by brute force, in offset order. */
static void
model_minutes(minutes *ms, int type, int64_t since, int64_t until)
{
	ms->n = 0;
	for (size_t i = 0; i < lg.n; i++) {
		const ctl_ev *e = &lg.ev[i];
		int64_t       min;
		size_t        j;

		if (e->type < 0 || (type >= 0 && e->type != type)) {
			continue;
		}
		min = e->ts - (e->ts % INT64_C(60000000000));
		// The tables round since down to its minute.
		if (min < since - since % INT64_C(60000000000) ||
		    min >= until) {
			continue;
		}
		for (j = 0; j < ms->n; j++) {
			if (ms->m[j].minute_ns == min &&
			    ms->m[j].type == e->type) {
				break;
			}
		}
		if (j == ms->n) {
			cr_assert_lt(ms->n, 4096);
			memset(&ms->m[ms->n++], 0, sizeof(ms->m[0]));
			ms->m[j].minute_ns = min;
			ms->m[j].type      = e->type;
		}
		ms->m[j].count++;
		ms->m[j].volume_sum += e->volume;
	}
	// Sort by (minute, type), as the tables return them.
	for (size_t i = 1; i < ms->n; i++) {
		evb_compactor_minute x = ms->m[i];
		size_t               j = i;

		for (; j > 0 &&
		     (ms->m[j - 1].minute_ns > x.minute_ns ||
		         (ms->m[j - 1].minute_ns == x.minute_ns &&
		             ms->m[j - 1].type > x.type));
		     j--) {
			ms->m[j] = ms->m[j - 1];
		}
		ms->m[j] = x;
	}
}

static void
check_minutes(evb_compactor_tables *t, int type, int64_t since, int64_t until)
{
	static minutes want, got;

	model_minutes(&want, type, since, until);
	got.n = 0;
	cr_assert_eq(evb_compactor_tables_minutes(
	                 t, type, since, until, minutes_add, &got, NULL),
	    EVB_OK);
	cr_assert_eq(got.n, want.n, "type %d: %zu minutes, expected %zu", type,
	    got.n, want.n);
	for (size_t i = 0; i < got.n; i++) {
		cr_assert_eq(got.m[i].minute_ns, want.m[i].minute_ns);
		cr_assert_eq(got.m[i].type, want.m[i].type);
		cr_assert_eq(got.m[i].count, want.m[i].count);
		// Summed in log order on both sides: equal to the bit.
		cr_assert_eq(got.m[i].volume_sum, want.m[i].volume_sum);
	}
}

Test(compactor, minute_stats_equal_counts_from_the_log)
{
	evb_compactor_tables *t;
	int64_t               since = CTL_T0 + INT64_C(120000000017);

	ctl_append_events(wal, &lg, 2000, -1);
	t = project_and_open(300);
	for (int type = -1; type < CTL_NTYPES; type++) {
		check_minutes(t, type, INT64_MIN, INT64_MAX);
	}
	check_minutes(t, 2, since, since + INT64_C(300000000000));
	check_minutes(t, -1, since, since + INT64_C(60000000000));
	cr_assert_eq(
	    evb_compactor_tables_minutes(t, 8, 0, 1, minutes_add, NULL, NULL),
	    EVB_EINVAL);
	evb_compactor_tables_close(t);
}

Test(compactor, gap_and_bad_records_are_counted_not_projected)
{
	evb_compactor_opts    o;
	evb_compactor_stat    st;
	evb_compactor_tables *t;
	evb_compactor_query   q;
	uint64_t              sum = 0;

	ctl_append_events(wal, &lg, 50, -1);
	ctl_append_gap(wal, &lg, 3, 9);
	ctl_append_events(wal, &lg, 50, -1);
	ctl_append_junk(wal, &lg);
	ctl_append_gap(wal, &lg, 20, 20);
	ctl_append_events(wal, &lg, 10, -1);
	evb_compactor_opts_default(&o);
	o.sync = false;
	cr_assert_eq(evb_compactor_open(&comp, wal, tmp, &o, NULL), EVB_OK);
	ctl_project(comp, 7);
	cr_assert_eq(evb_compactor_stats(comp, &st), EVB_OK);
	cr_assert_eq(st.position, lg.ev[lg.n - 1].off);
	cr_assert_eq(st.wal_last_off, st.position);
	cr_assert_eq(st.lag, 0);
	cr_assert_eq(st.events, 110);
	cr_assert_eq(st.gaps, 2);
	cr_assert_eq(st.bad, 1);
	cr_assert_eq(st.missed, 0);
	for (int i = 0; i < EVB_COMPACTOR_MAX_TYPES; i++) {
		sum += st.per_type[i];
	}
	cr_assert_eq(sum, 110);
	evb_compactor_close(comp);
	comp = NULL;
	cr_assert_eq(evb_compactor_tables_open(&t, tmp, NULL), EVB_OK);
	evb_compactor_query_init(&q);
	check_query(t, &q);
	cr_assert_eq(evb_compactor_tables_counters(t, &st, NULL), EVB_OK);
	cr_assert_eq(st.events, 110);
	cr_assert_eq(st.gaps, 2);
	cr_assert_eq(st.bad, 1);
	cr_assert_eq(st.position, lg.ev[lg.n - 1].off);
	evb_compactor_tables_close(t);
}

/* Trace rows as "type:offset" pairs. */
static void
trace_expect(evb_compactor_tables *t, const char *id, const uint64_t *offs,
    const int *types, size_t n)
{
	ctl_rows rs = { 0 };
	evb_diag d  = { "" };

	cr_assert_eq(evb_compactor_tables_trace(t, id, ctl_rows_add, &rs, &d),
	    EVB_OK, "%s: %s", id, d.msg);
	cr_assert_eq(rs.n, n, "trace %s: %zu rows, expected %zu", id, rs.n, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(rs.r[i].off, offs[i], "trace %s: row %zu", id, i);
		cr_assert_eq(
		    rs.r[i].type, types[i], "trace %s: row %zu", id, i);
	}
	ctl_rows_fini(&rs);
}

Test(compactor, trace_finds_the_chain_from_any_of_its_ids)
{
	evb_compactor_tables *t;
	uint64_t              o[5];
	static const int      types[5] = { 0, 1, 1, 2, 2 };

	ctl_append_events(wal, &lg, 100, -1); // Noise with other ids.
	// Appended out of order: the chain is ordered by type, then time.
	o[3] = ctl_append_json(wal, &lg,
	    "{\"type\":\"trade_executed\",\"ts\":3000,\"data\":{\"ticket\":"
	    "777,\"user_id\":\"u1\",\"symbol\":\"EURUSD\",\"direction\":"
	    "\"BUY\",\"volume\":1,\"price\":1.1,\"signal_id\":\"S1\","
	    "\"command_id\":\"C1\"}}");
	o[0] = ctl_append_json(wal, &lg,
	    "{\"type\":\"signal_generated\",\"ts\":1000,\"data\":{"
	    "\"signal_id\":\"S1\",\"symbol\":\"EURUSD\",\"direction\":\"BUY\","
	    "\"confidence\":80}}");
	o[2] = ctl_append_json(wal, &lg,
	    "{\"type\":\"fire_command\",\"ts\":2500,\"data\":{\"command_id\":"
	    "\"C2\",\"user_id\":\"u2\",\"signal_id\":\"S1\",\"symbol\":"
	    "\"EURUSD\",\"direction\":\"BUY\",\"volume\":2}}");
	o[1] = ctl_append_json(wal, &lg,
	    "{\"type\":\"fire_command\",\"ts\":2000,\"data\":{\"command_id\":"
	    "\"C1\",\"user_id\":\"u1\",\"signal_id\":\"S1\",\"symbol\":"
	    "\"EURUSD\",\"direction\":\"BUY\",\"volume\":1}}");
	o[4] = ctl_append_json(wal, &lg,
	    "{\"type\":\"trade_executed\",\"ts\":3500,\"data\":{\"ticket\":"
	    "778,\"user_id\":\"u2\",\"symbol\":\"EURUSD\",\"direction\":"
	    "\"BUY\",\"volume\":2,\"price\":1.1,\"command_id\":\"C2\"}}");
	(void) ctl_append_json(wal, &lg,
	    "{\"type\":\"trade_executed\",\"ts\":3600,\"data\":{\"ticket\":"
	    "779,\"user_id\":\"u2\",\"symbol\":\"EURUSD\",\"direction\":"
	    "\"BUY\",\"volume\":2,\"price\":1.1,\"signal_id\":\"S2\"}}");
	t = project_and_open(50);
	trace_expect(t, "S1", o, types, 5);
	trace_expect(t, "C1", o, types, 5);
	trace_expect(t, "C2", o, types, 5);
	trace_expect(t, "777", o, types, 5);
	trace_expect(t, "778", o, types, 5);
	trace_expect(t, "779", &lg.ev[lg.n - 1].off, &types[3], 1);
	cr_assert_eq(
	    evb_compactor_tables_trace(t, "nothing", ctl_rows_add, NULL, NULL),
	    EVB_ENOTFOUND);
	cr_assert_eq(
	    evb_compactor_tables_trace(t, long_key(), ctl_rows_add, NULL, NULL),
	    EVB_ENOTFOUND);
	cr_assert_eq(
	    evb_compactor_tables_trace(t, "", ctl_rows_add, NULL, NULL),
	    EVB_EINVAL);
	evb_compactor_tables_close(t);
}

/* count_rows runs q and returns how many rows it gave. */
static size_t
count_rows(evb_compactor_tables *t, const evb_compactor_query *q)
{
	ctl_rows rs = { 0 };
	evb_diag d  = { "" };
	size_t   n;

	cr_assert_eq(evb_compactor_tables_query(t, q, ctl_rows_add, &rs, &d),
	    EVB_OK, "%s", d.msg);
	n = rs.n;
	ctl_rows_fini(&rs);
	return (n);
}

Test(compactor, a_filter_checked_on_rows_matches_only_what_its_index_holds)
{
	evb_compactor_tables *t;
	evb_compactor_query   q;

	// Fields outside a type's schema are kept but never indexed
	// (docs/tables.md): a market_data event's user_id, a user_action's
	// symbol. So --user u1 does not find the first, nor --symbol EURUSD
	// the second. A query that reads another index and checks the
	// field on the row must not find them either: adding a filter
	// never adds rows, whatever plan the query picks.
	ctl_append_json(wal, &lg,
	    "{\"type\":\"market_data\",\"id\":\"x1\",\"ts\":"
	    "1790000000000000000,\"source\":\"t\",\"corr\":\"kx\",\"data\":"
	    "{\"symbol\":\"EURUSD\",\"bid\":1.5,\"ask\":1.75,\"user_id\":"
	    "\"u1\"}}");
	ctl_append_json(wal, &lg,
	    "{\"type\":\"user_action\",\"id\":\"x2\",\"ts\":"
	    "1790000000000000001,\"source\":\"t\",\"corr\":\"ky\",\"data\":"
	    "{\"user_id\":\"u2\",\"action\":\"login\",\"symbol\":"
	    "\"GBPUSD\"}}");
	t = project_and_open(10);
	for (int type = -1; type < CTL_NTYPES; type++) {
		evb_compactor_query_init(&q);
		q.type = type;
		q.user = "u1";
		cr_assert_eq(count_rows(t, &q), 0, "type %d: user u1", type);
		q.corr = "kx";
		cr_assert_eq(
		    count_rows(t, &q), 0, "type %d: corr kx, user u1", type);
		evb_compactor_query_init(&q);
		q.type   = type;
		q.symbol = "GBPUSD";
		cr_assert_eq(count_rows(t, &q), 0, "type %d: symbol", type);
		q.user = "u2";
		cr_assert_eq(
		    count_rows(t, &q), 0, "type %d: user u2, symbol", type);
		q.user = NULL;
		q.corr = "ky";
		cr_assert_eq(
		    count_rows(t, &q), 0, "type %d: corr ky, symbol", type);
	}
	// The fields the schemas do have still match, by index or on rows.
	evb_compactor_query_init(&q);
	q.corr   = "kx";
	q.symbol = "EURUSD";
	cr_assert_eq(count_rows(t, &q), 1);
	q.corr   = "ky";
	q.symbol = NULL;
	q.user   = "u2";
	cr_assert_eq(count_rows(t, &q), 1);
	evb_compactor_tables_close(t);
}
