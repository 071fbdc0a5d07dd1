/*
 * compactor_testlib.h: helpers shared by the compactor_*_test.c files.
 *
 * A reproducible mix of events of every type (seeded PRNG), appended to a
 * WAL made by the test through evb_wal_append, and a model of what was
 * appended (offset, type, ts, the indexed fields, the payload bytes) that
 * the tests scan by brute force to know what each query must return.
 * Times jump back and forth by up to a minute and a half, so tables must
 * order by ts, not by offset, and latest state must not follow log order.
 * Also: row collectors for the query callbacks, and a canonical dump of
 * everything the tables answer, to compare two projections row for row.
 * Everything is static inline, as in tests/unit/proto_testlib.h.
 */
#ifndef EVB_COMPACTOR_TESTLIB_H
#define EVB_COMPACTOR_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "collector/collector.h"
#include "compactor/compactor.h"
#include "proto/proto.h"
#include "tests/support/support.h"
#include "wal/wal.h"

#define CTL_NTYPES 8
#define CTL_T0 INT64_C(1790000000000000000) /* Base time, ns. */
#define CTL_STR 40                          /* Field buffer bytes. */

static const char *const ctl_symbols[] = { "EURUSD", "GBPUSD", "USDJPY",
	"XAUUSD" };
#define CTL_NSYM 4
#define CTL_NUSER 6
#define CTL_NCORR 7

/* One appended record as the tests know it. */
typedef struct ctl_ev {
	uint64_t off;  /* Its WAL offset. */
	int      type; /* Proto type; -1 for a gap or a bad record. */
	int64_t  ts;   /* Event time, ns. */
	char     symbol[CTL_STR];
	char     user[CTL_STR];
	char     corr[CTL_STR];
	char     signal[CTL_STR];
	char     command[CTL_STR];
	char     account[CTL_STR];
	char     component[CTL_STR];
	int64_t  ticket; /* 0: none. */
	double   volume; /* 0 when none. */
	uint8_t *payload;
	size_t   len;
} ctl_ev;

typedef struct ctl_log {
	ctl_ev  *ev;   /* In offset order. */
	size_t   n;    /* Records. */
	size_t   cap;  /* Allocated. */
	uint64_t seq;  /* Last producer seq used. */
	uint64_t rng;  /* PRNG state. */
	uint64_t sigs; /* signal_ids made so far. */
	uint64_t cmds; /* command_ids made so far. */
} ctl_log;

static inline uint64_t
ctl_rand(ctl_log *l)
{
	// splitmix64: enough for test data, and the same on every machine.
	uint64_t z = (l->rng += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return (z ^ (z >> 31));
}

static inline void
ctl_log_init(ctl_log *l, uint64_t seed)
{
	memset(l, 0, sizeof(*l));
	l->rng = seed;
}

static inline void
ctl_log_fini(ctl_log *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->ev[i].payload);
	}
	free(l->ev);
	memset(l, 0, sizeof(*l));
}

static inline ctl_ev *
ctl_log_add(ctl_log *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 256 : l->cap * 2;
		l->ev  = realloc(l->ev, l->cap * sizeof(*l->ev));
		cr_assert_not_null(l->ev);
	}
	memset(&l->ev[l->n], 0, sizeof(l->ev[0]));
	return (&l->ev[l->n++]);
}

/* ctl_data writes the data object of a type-t event into buf and fills
 * the model's fields. */
static inline void
ctl_data(ctl_log *l, ctl_ev *e, char *buf, size_t cap)
{
	uint64_t r = ctl_rand(l);

	(void) snprintf(e->symbol, CTL_STR, "%s", ctl_symbols[r % CTL_NSYM]);
	(void) snprintf(e->user, CTL_STR, "u%llu",
	    (unsigned long long) ((r >> 8) % CTL_NUSER));
	e->volume = (double) ((r >> 16) % 500 + 1) / 100.0;
	switch (e->type) {
	case 0:
		(void) snprintf(e->signal, CTL_STR, "s%llu",
		    (unsigned long long) l->sigs++);
		(void) snprintf(buf, cap,
		    "{\"signal_id\":\"%s\",\"symbol\":\"%s\",\"direction\":"
		    "\"BUY\",\"confidence\":70}",
		    e->signal, e->symbol);
		e->user[0] = '\0';
		e->volume  = 0;
		break;
	case 1:
		(void) snprintf(e->command, CTL_STR, "c%llu",
		    (unsigned long long) l->cmds++);
		(void) snprintf(e->signal, CTL_STR, "s%llu",
		    (unsigned long long) ((r >> 24) % (l->sigs + 1)));
		(void) snprintf(buf, cap,
		    "{\"command_id\":\"%s\",\"user_id\":\"%s\",\"signal_id\":"
		    "\"%s\",\"symbol\":\"%s\",\"direction\":\"SELL\","
		    "\"volume\":%.2f}",
		    e->command, e->user, e->signal, e->symbol, e->volume);
		break;
	case 2:
		e->ticket = 100000 + (int64_t) l->n;
		if ((r >> 32) % 2 == 0) {
			(void) snprintf(e->signal, CTL_STR, "s%llu",
			    (unsigned long long) ((r >> 40) % (l->sigs + 1)));
		}
		if ((r >> 33) % 2 == 0) {
			(void) snprintf(e->command, CTL_STR, "c%llu",
			    (unsigned long long) ((r >> 44) % (l->cmds + 1)));
		}
		(void) snprintf(buf, cap,
		    "{\"ticket\":%lld,\"user_id\":\"%s\",\"symbol\":\"%s\","
		    "\"direction\":\"BUY\",\"volume\":%.2f,\"price\":1.25%s%s%s"
		    "%s%s%s}",
		    (long long) e->ticket, e->user, e->symbol, e->volume,
		    e->signal[0] ? ",\"signal_id\":\"" : "", e->signal,
		    e->signal[0] ? "\"" : "",
		    e->command[0] ? ",\"command_id\":\"" : "", e->command,
		    e->command[0] ? "\"" : "");
		break;
	case 3:
		(void) snprintf(e->account, CTL_STR, "a%llu",
		    (unsigned long long) ((r >> 24) % 4));
		(void) snprintf(buf, cap,
		    "{\"user_id\":\"%s\",\"balance\":%llu,\"equity\":1,"
		    "\"account_id\":\"%s\"}",
		    e->user, (unsigned long long) (r >> 40), e->account);
		e->symbol[0] = '\0';
		e->volume    = 0;
		break;
	case 4:
		(void) snprintf(e->component, CTL_STR, "comp%llu",
		    (unsigned long long) ((r >> 24) % 3));
		(void) snprintf(buf, cap,
		    "{\"component\":\"%s\",\"status\":\"healthy\"}",
		    e->component);
		e->symbol[0] = e->user[0] = '\0';
		e->volume                 = 0;
		break;
	case 5:
		(void) snprintf(buf, cap,
		    "{\"user_id\":\"%s\",\"action\":\"login\"}", e->user);
		e->symbol[0] = '\0';
		e->volume    = 0;
		break;
	case 6:
		(void) snprintf(buf, cap,
		    "{\"symbol\":\"%s\",\"bid\":1.5,\"ask\":1.75,\"volume\":"
		    "%.2f}",
		    e->symbol, e->volume);
		e->user[0] = '\0';
		break;
	default:
		(void) snprintf(buf, cap,
		    "{\"symbol\":\"%s\",\"pattern_type\":\"flag\","
		    "\"confidence\":60}",
		    e->symbol);
		e->user[0] = '\0';
		e->volume  = 0;
		break;
	}
}

/*
 * ctl_append_events appends n random events (types uniformly at random,
 * or all of type only_type when >= 0) in batches of up to 64.
 */
static inline void
ctl_append_events(evb_wal *w, ctl_log *l, size_t n, int only_type)
{
	enum { BATCH = 64 };
	evb_wal_rec    recs[BATCH];
	evb_wal_result res[BATCH];
	size_t         at[BATCH]; /* Model indexes (ev may move). */
	evb_buf        bufs[BATCH];

	for (size_t done = 0; done < n;) {
		size_t k = n - done < BATCH ? n - done : BATCH;

		for (size_t i = 0; i < k; i++) {
			ctl_ev    *e = ctl_log_add(l);
			char       data[512];
			char       json[1024];
			evb_event *ev;
			evb_diag   d   = { "" };
			uint64_t   r   = ctl_rand(l);
			int64_t    idx = (int64_t) l->n;

			e->type =
			    only_type >= 0 ? only_type : (int) (r % CTL_NTYPES);
			// Up to 90 s back or forth, and every 16th event at
			// the same ts as the one before: ties order by offset.
			e->ts = CTL_T0 + idx * INT64_C(500000000) +
			    (int64_t) ((r >> 8) % 180) * INT64_C(1000000000) -
			    INT64_C(90000000000);
			if (l->n > 1 && (r >> 20) % 16 == 0) {
				e->ts = l->ev[l->n - 2].ts;
			}
			ctl_data(l, e, data, sizeof(data));
			if ((r >> 48) % 3 == 0) {
				(void) snprintf(e->corr, CTL_STR, "k%llu",
				    (unsigned long long) ((r >> 52) %
				        CTL_NCORR));
			}
			(void) snprintf(json, sizeof(json),
			    "{\"type\":\"%s\",\"id\":\"ev-%llu\",\"ts\":%lld,"
			    "\"source\":\"test\"%s%s%s,\"data\":%s}",
			    evb_proto_type_name(e->type),
			    (unsigned long long) l->n, (long long) e->ts,
			    e->corr[0] ? ",\"corr\":\"" : "", e->corr,
			    e->corr[0] ? "\"" : "", data);
			cr_assert_eq(evb_proto_event_from_json(
			                 &ev, json, strlen(json), &d),
			    EVB_OK, "%s: %s", json, d.msg);
			evb_proto_event_set_seq(ev, ++l->seq, 1);
			evb_buf_init(&bufs[i]);
			cr_assert_eq(
			    evb_proto_event_encode(ev, &bufs[i]), EVB_OK);
			evb_proto_event_free(ev);
			e->len     = bufs[i].len;
			e->payload = malloc(e->len);
			cr_assert_not_null(e->payload);
			memcpy(e->payload, bufs[i].data, e->len);
			recs[i] = (evb_wal_rec) { .type = (uint16_t) e->type,
				.epoch                  = 1,
				.seq                    = l->seq,
				.ts_ns                  = e->ts,
				.payload                = bufs[i].data,
				.len                    = bufs[i].len };
			at[i]   = l->n - 1;
		}
		cr_assert_eq(evb_wal_append(w, recs, k, res, NULL), EVB_OK);
		for (size_t i = 0; i < k; i++) {
			cr_assert_eq(res[i].status, EVB_OK);
			l->ev[at[i]].off = res[i].off;
			evb_buf_fini(&bufs[i]);
		}
		done += k;
	}
}

/* ctl_model_str copies data.field of ev into buf ("" when absent). */
static inline void
ctl_model_str(const evb_event *ev, const char *field, char *buf)
{
	evb_str s;

	buf[0] = '\0';
	if (evb_proto_event_get_str(ev, field, &s) == EVB_OK &&
	    s.len < CTL_STR) {
		memcpy(buf, s.ptr, s.len);
		buf[s.len] = '\0';
	}
}

/*
 * ctl_append_json appends one event given as JSON (with its "ts"), and
 * its model, fields read back from the event.
 */
static inline uint64_t
ctl_append_json(evb_wal *w, ctl_log *l, const char *json)
{
	evb_event     *ev;
	evb_diag       d = { "" };
	evb_buf        b;
	evb_wal_result res;
	evb_wal_rec    r;
	ctl_ev        *e;

	cr_assert_eq(evb_proto_event_from_json(&ev, json, strlen(json), &d),
	    EVB_OK, "%s: %s", json, d.msg);
	evb_proto_event_set_seq(ev, ++l->seq, 1);
	evb_buf_init(&b);
	cr_assert_eq(evb_proto_event_encode(ev, &b), EVB_OK);
	e       = ctl_log_add(l);
	e->type = evb_proto_event_type(ev);
	e->ts   = evb_proto_event_ts(ev);
	ctl_model_str(ev, "symbol", e->symbol);
	ctl_model_str(ev, "user_id", e->user);
	ctl_model_str(ev, "signal_id", e->signal);
	ctl_model_str(ev, "command_id", e->command);
	ctl_model_str(ev, "account_id", e->account);
	ctl_model_str(ev, "component", e->component);
	(void) evb_proto_event_get_int(ev, "ticket", &e->ticket);
	if (e->type == 1 || e->type == 2 || e->type == 6) {
		(void) evb_proto_event_get_num(ev, "volume", &e->volume);
	}
	if (evb_proto_event_corr(ev).len > 0) {
		evb_str c = evb_proto_event_corr(ev);

		(void) snprintf(e->corr, CTL_STR, "%.*s", (int) c.len, c.ptr);
	}
	r = (evb_wal_rec) { .type = (uint16_t) e->type,
		.epoch            = 1,
		.seq              = l->seq,
		.ts_ns            = e->ts,
		.payload          = b.data,
		.len              = b.len };
	evb_proto_event_free(ev);
	cr_assert_eq(evb_wal_append(w, &r, 1, &res, NULL), EVB_OK);
	e->off     = res.off;
	e->len     = b.len;
	e->payload = b.data; // The model owns the bytes now.
	return (e->off);
}

/* ctl_append_gap appends one collector gap record (docs/wal-format.md). */
static inline void
ctl_append_gap(evb_wal *w, ctl_log *l, uint8_t first, uint8_t last)
{
	// {"gap": {"epoch": 1, "first": F, "last": L}}, F and L < 128.
	uint8_t p[] = { 0x81, 0xa3, 'g', 'a', 'p', 0x83, 0xa5, 'e', 'p', 'o',
		'c', 'h', 0x01, 0xa5, 'f', 'i', 'r', 's', 't', first, 0xa4, 'l',
		'a', 's', 't', last };
	evb_wal_rec    r = { .type = EVB_COLLECTOR_GAP_TYPE,
		   .epoch          = 1,
		   .seq            = last,
		   .ts_ns          = CTL_T0,
		   .payload        = p,
		   .len            = sizeof(p) };
	evb_wal_result res;
	ctl_ev        *e = ctl_log_add(l);

	cr_assert_eq(evb_wal_append(w, &r, 1, &res, NULL), EVB_OK);
	e->off  = res.off;
	e->type = -1;
}

/* ctl_append_junk appends a record of an event type whose payload is not
 * MessagePack. */
static inline void
ctl_append_junk(evb_wal *w, ctl_log *l)
{
	static const char junk[] = "not msgpack";
	evb_wal_rec       r      = { .type = 0,
		           .epoch          = 1,
		           .seq            = ++l->seq,
		           .ts_ns          = CTL_T0,
		           .payload        = junk,
		           .len            = sizeof(junk) - 1 };
	evb_wal_result    res;
	ctl_ev           *e = ctl_log_add(l);

	cr_assert_eq(evb_wal_append(w, &r, 1, &res, NULL), EVB_OK);
	e->off  = res.off;
	e->type = -1;
}

/* ctl_project steps c until it is caught up, max records a step. */
static inline void
ctl_project(evb_compactor *c, size_t max)
{
	size_t   done;
	evb_diag d = { "" };

	do {
		cr_assert_eq(
		    evb_compactor_step(c, max, &done, &d), EVB_OK, "%s", d.msg);
	} while (done > 0);
}

/* ---- Collected rows ------------------------------------------------------ */

typedef struct ctl_row {
	uint64_t off;
	int      type;
	int64_t  ts;
	uint8_t *env; /* Copy of the envelope. */
	size_t   len;
	char     key[CTL_STR]; /* Latest rows' key. */
} ctl_row;

typedef struct ctl_rows {
	ctl_row *r;
	size_t   n;
	size_t   cap;
} ctl_rows;

static inline int
ctl_rows_add(void *arg, const evb_compactor_row *row)
{
	ctl_rows *rs = arg;
	ctl_row  *r;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap == 0 ? 64 : rs->cap * 2;
		rs->r   = realloc(rs->r, rs->cap * sizeof(*rs->r));
		cr_assert_not_null(rs->r);
	}
	r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	r->off  = row->off;
	r->type = row->type;
	r->ts   = row->ts_ns;
	r->len  = row->len;
	r->env  = malloc(row->len);
	cr_assert_not_null(r->env);
	memcpy(r->env, row->envelope, row->len);
	if (row->key != NULL) {
		cr_assert_lt(row->key_len, (size_t) CTL_STR);
		memcpy(r->key, row->key, row->key_len);
	}
	return (EVB_OK);
}

static inline void
ctl_rows_fini(ctl_rows *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->r[i].env);
	}
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

/* ctl_find returns the model record of off. */
static inline const ctl_ev *
ctl_find(const ctl_log *l, uint64_t off)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->ev[i].off == off) {
			return (&l->ev[i]);
		}
	}
	cr_assert_fail("no record at offset %llu", (unsigned long long) off);
	return (NULL);
}

/* ctl_before orders model records as the tables do: ts, then offset. */
static inline bool
ctl_before(const ctl_ev *a, const ctl_ev *b)
{
	return (a->ts < b->ts || (a->ts == b->ts && a->off < b->off));
}

/* ctl_sorted returns the model's events (no gaps or bad records) in
 * (ts, offset) order; free() it. */
static inline const ctl_ev **
ctl_sorted(const ctl_log *l, size_t *n)
{
	const ctl_ev **v = calloc(l->n + 1, sizeof(*v));

	cr_assert_not_null(v);
	*n = 0;
	for (size_t i = 0; i < l->n; i++) {
		size_t j;

		if (l->ev[i].type < 0) {
			continue;
		}
		for (j = *n; j > 0 && ctl_before(&l->ev[i], v[j - 1]); j--) {
			v[j] = v[j - 1];
		}
		v[j] = &l->ev[i];
		(*n)++;
	}
	return (v);
}

/*
 * ctl_dump writes everything the tables answer (every row through the
 * all-events index, each latest table, every minute) as text, to compare
 * two projections (the envelopes make it binary: compare with memcmp).
 * Release b with evb_buf_fini.
 */
static inline int
ctl_dump_minute(void *arg, const evb_compactor_minute *m)
{
	evb_buf *b = arg;
	char     line[128];
	int      n = snprintf(line, sizeof(line), "m %lld %d %llu %a\n",
	         (long long) m->minute_ns, m->type, (unsigned long long) m->count,
	         m->volume_sum);

	cr_assert_eq(evb_buf_append(b, line, (size_t) n), EVB_OK);
	return (EVB_OK);
}

static inline void
ctl_dump_rows(evb_buf *b, const char *tag, const ctl_rows *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		char line[160];
		int  n = snprintf(line, sizeof(line), "%s %s %llu %d %lld %zu ",
		     tag, rs->r[i].key, (unsigned long long) rs->r[i].off,
		     rs->r[i].type, (long long) rs->r[i].ts, rs->r[i].len);

		cr_assert_eq(evb_buf_append(b, line, (size_t) n), EVB_OK);
		cr_assert_eq(
		    evb_buf_append(b, rs->r[i].env, rs->r[i].len), EVB_OK);
		cr_assert_eq(evb_buf_append(b, "\n", 1), EVB_OK);
	}
}

static inline void
ctl_dump(evb_compactor_tables *t, evb_buf *out)
{
	evb_compactor_query q;
	ctl_rows            rs = { 0 };
	evb_buf             b;
	evb_compactor_stat  st;
	char                line[256];
	int                 n;

	evb_buf_init(&b);
	evb_compactor_query_init(&q);
	cr_assert_eq(
	    evb_compactor_tables_query(t, &q, ctl_rows_add, &rs, NULL), EVB_OK);
	ctl_dump_rows(&b, "row", &rs);
	ctl_rows_fini(&rs);
	for (int k = 0; k <= EVB_COMPACTOR_LATEST_QUOTE; k++) {
		cr_assert_eq(
		    evb_compactor_tables_latest(t, (evb_compactor_latest) k,
		        NULL, ctl_rows_add, &rs, NULL),
		    EVB_OK);
		ctl_dump_rows(&b, "latest", &rs);
		ctl_rows_fini(&rs);
	}
	cr_assert_eq(evb_compactor_tables_minutes(t, -1, INT64_MIN, INT64_MAX,
	                 ctl_dump_minute, &b, NULL),
	    EVB_OK);
	cr_assert_eq(evb_compactor_tables_counters(t, &st, NULL), EVB_OK);
	n = snprintf(line, sizeof(line),
	    "pos %llu ev %llu gaps %llu bad %llu\n",
	    (unsigned long long) st.position, (unsigned long long) st.events,
	    (unsigned long long) st.gaps, (unsigned long long) st.bad);
	cr_assert_eq(evb_buf_append(&b, line, (size_t) n), EVB_OK);
	*out = b;
}

#endif /* EVB_COMPACTOR_TESTLIB_H */
