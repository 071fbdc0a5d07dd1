/*
 * compactor_bench: projection speed from the WAL to the tables with every
 * index, and query latency on the result.
 *
 *   compactor_bench [N] [secs]   (defaults: 1000000 events, 2 s per query
 *                                 case)
 *
 * It fills a fresh WAL (durability none, no duplicate index: the fill is
 * not what is measured) in a temporary directory under $TMPDIR or /tmp
 * with N events of a realistic mix: 45% market_data, 40%
 * signal_generated, 5% fire_command (each citing a recent signal), 5%
 * trade_executed (citing a command and its signal), and 5% spread over
 * balance_update, system_health, user_action and pattern_detected; 28
 * symbols, 200 users; a third of them carry a corr, shared by events
 * close in time (a flow), so corr ids grow with time as request ids do;
 * 10,000 events a second of event time. Then it removes the directory. Lines,
 * in the fixed format "name n secs rate p50_us p99_us":
 *
 *   compactor_project      evb_compactor_step in steps of 16384 records
 *                          (the thread's batch) with default options (each
 *                          commit flushed) until caught up; latencies per
 *                          step; rate in events/s
 *   compactor_project_grow the same into fresh tables, the step doubling
 *                          up to 8 x 16384 while steps fill, as the
 *                          thread does when behind
 *   compactor_project_nosync  the first with opts.sync false, into fresh
 *                          tables
 *   compactor_query_symbol evb_compactor_tables_query for market_data of
 *                          one symbol from a random time, limit 100 (the
 *                          symbol index); latency per query, rate in
 *                          queries/s; n is queries
 *   compactor_trace        evb_compactor_tables_trace of a random
 *                          signal_id (most signals have no command; the
 *                          line after it shows rows per trace)
 *   compactor_trace_ticket the same from a random trade's ticket: the
 *                          ticket, its signal, then the whole chain
 *   compactor_disk         bytes of the tables' data.mdb per event
 *                          (rate column), indexes included
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "compactor/compactor.h"
#include "proto/proto.h"
#include "wal/wal.h"

#define BENCH_BATCH 1024     /* Events per WAL append of the fill. */
#define BENCH_STEP 16384     /* Records per step: the thread's. */
#define BENCH_STEP_GROWTH 8  /* The thread's largest step, in steps. */
#define BENCH_NSYM 28        /* Symbols. */
#define BENCH_NUSER 200      /* Users. */
#define BENCH_STEP_NS 100000 /* Event time between events: 100 us. */
#define BENCH_T0 INT64_C(1764035435123000000)
#define BENCH_QUERY_LIMIT 100    /* Rows per symbol query. */
#define BENCH_FLOW 8             /* Events per corr, about. */
#define BENCH_FLOW_SPREAD 4      /* Flows open at a time. */
#define BENCH_MAX_QUERIES 100000 /* Per query case, at most. */

static const char *const bench_syms[BENCH_NSYM] = { "EURUSD", "GBPUSD",
	"USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY",
	"GBPJPY", "AUDJPY", "EURAUD", "EURCHF", "GBPCHF", "CADJPY", "CHFJPY",
	"AUDCAD", "AUDNZD", "NZDJPY", "GBPAUD", "GBPCAD", "EURNZD", "EURCAD",
	"XAUUSD", "XAGUSD", "US30", "NAS100", "SPX500" };

typedef struct bench_fill {
	uint64_t x;       /* xorshift64 state. */
	uint64_t sigs;    /* signal_generated made. */
	uint64_t cmds;    /* fire_command made. */
	uint64_t trades;  /* trade_executed made (tickets 1..trades). */
	uint64_t made;    /* Events made. */
	uint64_t cmd_sig; /* Signal of the last command. */
} bench_fill;

static uint64_t
bench_rand(bench_fill *f)
{
	f->x ^= f->x << 13;
	f->x ^= f->x >> 7;
	f->x ^= f->x << 17;
	return (f->x);
}

static double
bench_now_s(void)
{
	return ((double) evb_clock_mono_ns() / 1e9);
}

static int
bench_fail(const char *what, int rv, const char *msg)
{
	fprintf(stderr, "compactor_bench: %s: %s %s\n", what, evb_strerror(rv),
	    msg != NULL ? msg : "");
	return (-1);
}

/* bench_data writes one event's data for the mix, and returns its type
 * name. */
static const char *
bench_data(bench_fill *f, char *buf, size_t cap)
{
	uint64_t    r   = bench_rand(f);
	unsigned    pct = (unsigned) (r % 100);
	const char *sym = bench_syms[(r >> 8) % BENCH_NSYM];
	unsigned    usr = (unsigned) ((r >> 16) % BENCH_NUSER);

	if (pct < 45) {
		(void) snprintf(buf, cap,
		    "{\"symbol\":\"%s\",\"bid\":1.0841,\"ask\":1.0843,"
		    "\"volume\":%u}",
		    sym, (unsigned) (r >> 24) % 1000);
		return ("market_data");
	}
	if (pct < 85) {
		(void) snprintf(buf, cap,
		    "{\"signal_id\":\"sig-%llu\",\"symbol\":\"%s\","
		    "\"direction\":"
		    "\"BUY\",\"confidence\":75,\"pattern_type\":\"breakout\","
		    "\"entry_price\":1.0842,\"stop_loss\":1.08,\"take_profit\":"
		    "1.09,\"timeframe\":\"M5\"}",
		    (unsigned long long) ++f->sigs, sym);
		return ("signal_generated");
	}
	if (pct < 90 && f->sigs > 0) {
		f->cmd_sig =
		    f->sigs - (r >> 24) % (f->sigs < 50 ? f->sigs : 50);
		(void) snprintf(buf, cap,
		    "{\"command_id\":\"cmd-%llu\",\"user_id\":\"u%u\","
		    "\"signal_id\":\"sig-%llu\",\"symbol\":\"%s\","
		    "\"direction\":"
		    "\"BUY\",\"volume\":0.5}",
		    (unsigned long long) ++f->cmds, usr,
		    (unsigned long long) f->cmd_sig, sym);
		return ("fire_command");
	}
	if (pct < 95 && f->cmds > 0) {
		(void) snprintf(buf, cap,
		    "{\"ticket\":%llu,\"user_id\":\"u%u\",\"symbol\":\"%s\","
		    "\"direction\":\"BUY\",\"volume\":0.5,\"price\":1.0843,"
		    "\"signal_id\":\"sig-%llu\",\"command_id\":\"cmd-%llu\","
		    "\"commission\":0.7}",
		    (unsigned long long) ++f->trades, usr, sym,
		    (unsigned long long) f->cmd_sig,
		    (unsigned long long) f->cmds);
		return ("trade_executed");
	}
	switch (pct % 4) {
	case 0:
		(void) snprintf(buf, cap,
		    "{\"user_id\":\"u%u\",\"balance\":10000.5,\"equity\":"
		    "10010.25,\"account_id\":\"acc-%u\",\"currency\":\"USD\"}",
		    usr, usr % 50);
		return ("balance_update");
	case 1:
		(void) snprintf(buf, cap,
		    "{\"component\":\"comp-%u\",\"status\":\"healthy\","
		    "\"cpu_percent\":12.5}",
		    usr % 10);
		return ("system_health");
	case 2:
		(void) snprintf(buf, cap,
		    "{\"user_id\":\"u%u\",\"action\":\"login\"}", usr);
		return ("user_action");
	default:
		(void) snprintf(buf, cap,
		    "{\"symbol\":\"%s\",\"pattern_type\":\"flag\","
		    "\"confidence\":60}",
		    sym);
		return ("pattern_detected");
	}
}

/* bench_encode makes event number f->made into out. */
static int
bench_encode(bench_fill *f, evb_buf *out, evb_wal_rec *rec)
{
	char        data[512], json[768], corr[48];
	evb_event  *ev;
	evb_diag    d = { "" };
	int64_t     ts;
	const char *type = bench_data(f, data, sizeof(data));
	uint64_t    r    = bench_rand(f);
	int         rv;

	ts = BENCH_T0 + (int64_t) f->made * BENCH_STEP_NS +
	    (int64_t) (r % 1000) * 1000;
	corr[0] = '\0';
	if (r % 3 == 0) {
		// A flow: events close in time share a corr, as a request's
		// or a signal's events do.
		(void) snprintf(corr, sizeof(corr), ",\"corr\":\"%012llu\"",
		    (unsigned long long) (f->made / BENCH_FLOW +
		        (r >> 32) % BENCH_FLOW_SPREAD));
	}
	(void) snprintf(json, sizeof(json),
	    "{\"type\":\"%s\",\"id\":\"01JBENCH%018llu\",\"ts\":%lld,"
	    "\"source\":\"bench\"%s,\"data\":%s}",
	    type, (unsigned long long) f->made, (long long) ts, corr, data);
	if ((rv = evb_proto_event_from_json(&ev, json, strlen(json), &d)) !=
	    0) {
		return (bench_fail(json, rv, d.msg));
	}
	evb_proto_event_set_seq(ev, f->made + 1, 1);
	rv   = evb_proto_event_encode(ev, out);
	*rec = (evb_wal_rec) { .type = (uint16_t) evb_proto_event_type(ev),
		.epoch               = 1,
		.seq                 = f->made + 1,
		.ts_ns               = ts };
	evb_proto_event_free(ev);
	f->made++;
	return (rv == 0 ? 0 : bench_fail("encode", rv, NULL));
}

static int
bench_fill_wal(evb_wal *w, uint64_t n, bench_fill *f)
{
	static evb_wal_rec recs[BENCH_BATCH];
	evb_buf            buf;
	size_t             offs[BENCH_BATCH];
	evb_diag           d = { "" };
	int                rv;

	evb_buf_init(&buf);
	while (f->made < n) {
		size_t k = 0;

		evb_buf_reset(&buf);
		for (; k < BENCH_BATCH && f->made < n; k++) {
			offs[k] = buf.len;
			if (bench_encode(f, &buf, &recs[k]) != 0) {
				evb_buf_fini(&buf);
				return (-1);
			}
			recs[k].len = buf.len - offs[k];
		}
		for (size_t i = 0; i < k; i++) {
			recs[i].payload = buf.data + offs[i];
		}
		if ((rv = evb_wal_append(w, recs, k, NULL, &d)) != 0) {
			evb_buf_fini(&buf);
			return (bench_fail("append", rv, d.msg));
		}
	}
	evb_buf_fini(&buf);
	return (0);
}

/* bench_written reads the bytes this process has caused to be written to
 * storage (Linux /proc/self/io), 0 when unknown. */
static uint64_t
bench_written(void)
{
	FILE              *fp = fopen("/proc/self/io", "r");
	char               line[128];
	unsigned long long v = 0;

	if (fp == NULL) {
		return (0);
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "write_bytes: %llu", &v) == 1) {
			break;
		}
	}
	(void) fclose(fp);
	return ((uint64_t) v);
}

/*
 * bench_project projects the whole log into fresh tables in steps of
 * BENCH_STEP records, or, with grow, in steps that double up to
 * BENCH_STEP_GROWTH times that while they fill, as the compactor's
 * thread does when it is behind.
 */
static int
bench_project(evb_wal *w, const char *dir, bool sync, bool grow,
    const char *name, uint64_t n)
{
	size_t             step = BENCH_STEP;
	evb_compactor_opts o;
	evb_compactor     *c;
	evb_diag           d       = { "" };
	bench_samples      s       = { 0 };
	double             total   = 0;
	uint64_t           records = 0;
	size_t             done;
	int                rv;

	uint64_t wrote = bench_written();

	evb_compactor_opts_default(&o);
	o.sync    = sync;
	o.rebuild = true;
	if ((rv = evb_compactor_open(&c, w, dir, &o, &d)) != 0) {
		return (bench_fail("open", rv, d.msg));
	}
	do {
		double t0 = bench_now_s();

		if ((rv = evb_compactor_step(c, step, &done, &d)) != 0) {
			evb_compactor_close(c);
			return (bench_fail("step", rv, d.msg));
		}
		if (grow && done == step &&
		    step < (size_t) BENCH_STEP * BENCH_STEP_GROWTH) {
			step *= 2;
		}
		if (done > 0) {
			double dt = bench_now_s() - t0;

			total += dt;
			records += done;
			bench_samples_add(&s, dt * 1e6);
		}
	} while (done > 0);
	evb_compactor_close(c);
	if (records != n) {
		fprintf(stderr, "compactor_bench: projected %llu of %llu\n",
		    (unsigned long long) records, (unsigned long long) n);
		return (-1);
	}
	fprintf(stderr, "compactor_bench: %s wrote %.0f bytes per event\n",
	    name, (double) (bench_written() - wrote) / (double) n);
	bench_report(name, records, total, &s);
	return (0);
}

static int
bench_count(void *arg, const evb_compactor_row *row)
{
	(void) row;
	(*(uint64_t *) arg)++;
	return (EVB_OK);
}

static int
bench_queries(evb_compactor_tables *t, const bench_fill *f, double secs)
{
	evb_compactor_query q;
	bench_samples       s     = { 0 };
	bench_fill          r     = { .x = 0x2545F4914F6CDD1Dull };
	double              start = bench_now_s(), total = 0;
	uint64_t            n = 0, rows = 0;
	int                 type;
	int                 rv;

	(void) evb_proto_type_find("market_data", 11, &type);
	while (n < BENCH_MAX_QUERIES && bench_now_s() - start < secs) {
		double t0;

		evb_compactor_query_init(&q);
		q.type     = type;
		q.symbol   = bench_syms[bench_rand(&r) % BENCH_NSYM];
		q.since_ns = BENCH_T0 +
		    (int64_t) (bench_rand(&r) % f->made) * BENCH_STEP_NS;
		q.limit = BENCH_QUERY_LIMIT;
		t0      = bench_now_s();
		if ((rv = evb_compactor_tables_query(
		         t, &q, bench_count, &rows, NULL)) != 0) {
			return (bench_fail("query", rv, NULL));
		}
		total += bench_now_s() - t0;
		bench_samples_add(&s, (bench_now_s() - t0) * 1e6);
		n++;
	}
	fprintf(stderr, "compactor_bench: %.1f rows per symbol query\n",
	    n > 0 ? (double) rows / (double) n : 0.0);
	bench_report("compactor_query_symbol", n, total, &s);
	return (0);
}

static int
bench_traces(
    evb_compactor_tables *t, const bench_fill *f, double secs, bool by_ticket)
{
	bench_samples s     = { 0 };
	bench_fill    r     = { .x = 0x9E3779B97F4A7C15ull };
	double        start = bench_now_s(), total = 0;
	uint64_t      n = 0, rows = 0;
	char          id[64];
	int           rv;

	if (f->trades == 0) {
		return (0);
	}
	while (n < BENCH_MAX_QUERIES && bench_now_s() - start < secs) {
		double t0;

		if (by_ticket) {
			(void) snprintf(id, sizeof(id), "%llu",
			    (unsigned long long) (bench_rand(&r) % f->trades +
			        1));
		} else {
			(void) snprintf(id, sizeof(id), "sig-%llu",
			    (unsigned long long) (bench_rand(&r) % f->sigs +
			        1));
		}
		t0 = bench_now_s();
		rv =
		    evb_compactor_tables_trace(t, id, bench_count, &rows, NULL);
		if (rv != 0 && rv != EVB_ENOTFOUND) {
			return (bench_fail("trace", rv, NULL));
		}
		total += bench_now_s() - t0;
		bench_samples_add(&s, (bench_now_s() - t0) * 1e6);
		n++;
	}
	fprintf(stderr, "compactor_bench: %.2f rows per trace (%s)\n",
	    n > 0 ? (double) rows / (double) n : 0.0,
	    by_ticket ? "ticket" : "signal");
	bench_report(by_ticket ? "compactor_trace_ticket" : "compactor_trace",
	    n, total, &s);
	return (0);
}

static void
bench_remove(const char *base)
{
	static const char *const files[] = { "tables/data.mdb",
		"tables/lock.mdb", "data.mdb", "lock.mdb" };
	char                     path[512];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		(void) snprintf(path, sizeof(path), "%s/%s", base, files[i]);
		(void) unlink(path);
	}
	(void) snprintf(path, sizeof(path), "%s/tables", base);
	(void) rmdir(path);
	(void) rmdir(base);
}

static int
bench_disk(const char *base, uint64_t n)
{
	char          path[512];
	FILE         *fp;
	long          size;
	bench_samples s = { 0 };

	(void) snprintf(path, sizeof(path), "%s/tables/data.mdb", base);
	if ((fp = fopen(path, "rb")) == NULL || fseek(fp, 0, SEEK_END) != 0 ||
	    (size = ftell(fp)) < 0) {
		if (fp != NULL) {
			(void) fclose(fp);
		}
		return (bench_fail(path, EVB_ESYSERR, NULL));
	}
	(void) fclose(fp);
	// rate = n / secs: pass secs = n / bytes-per-event.
	bench_report(
	    "compactor_disk", n, (double) n * (double) n / (double) size, &s);
	return (0);
}

static int
bench_read(const char *base, const bench_fill *f, double secs)
{
	evb_compactor_tables *t;
	evb_diag              d = { "" };
	int                   rv;

	if ((rv = evb_compactor_tables_open(&t, base, &d)) != 0) {
		return (bench_fail("tables open", rv, d.msg));
	}
	rv = bench_queries(t, f, secs) != 0 ||
	        bench_traces(t, f, secs, false) != 0 ||
	        bench_traces(t, f, secs, true) != 0
	    ? -1
	    : 0;
	evb_compactor_tables_close(t);
	return (rv);
}

int
main(int argc, char **argv)
{
	uint64_t     n    = 1000000;
	double       secs = 2.0;
	const char  *tmp  = getenv("TMPDIR");
	char         base[256];
	evb_wal_opts wo;
	evb_wal     *w = NULL;
	evb_diag     d = { "" };
	bench_fill   f = { .x = 0x9E3779B97F4A7C15ull };
	int          rv;
	int          st = 1;

	bench_args(argc, argv, &n, &secs);
	(void) snprintf(base, sizeof(base), "%s/evb-comp-bench-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(base) == NULL) {
		perror("compactor_bench: mkdtemp");
		return (1);
	}
	evb_wal_opts_default(&wo);
	wo.durability          = EVB_WAL_NONE;
	wo.dedup_window_count  = 0;
	wo.dedup_window_age_ms = 0;
	wo.map_size_initial    = (size_t) 1 << 30;
	if ((rv = evb_wal_open(&w, base, &wo, &d)) != 0) {
		(void) bench_fail("wal open", rv, d.msg);
		goto done;
	}
	if (bench_fill_wal(w, n, &f) != 0) {
		goto done;
	}
	fprintf(stderr,
	    "compactor_bench: the WAL fill wrote %.0f bytes per "
	    "event\n",
	    (double) bench_written() / (double) n);
	if (bench_project(w, base, true, false, "compactor_project", n) != 0 ||
	    bench_project(w, base, true, true, "compactor_project_grow", n) !=
	        0 ||
	    bench_project(
	        w, base, false, false, "compactor_project_nosync", n) != 0 ||
	    bench_disk(base, n) != 0) {
		goto done;
	}
	evb_wal_close(w);
	w = NULL;
	if (bench_read(base, &f, secs) == 0) {
		st = 0;
	}
done:
	evb_wal_close(w);
	bench_remove(base);
	return (st);
}
