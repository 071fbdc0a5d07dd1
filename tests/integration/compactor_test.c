/*
 * compactor_test.c: the compactor and its queries end to end with the
 * real binary (issue #5): `evbus run` with its compactor thread, or
 * `evbus run --no-compactor` beside `evbus compactor`, fed by `evbus
 * publish`; `evbus query` and `evbus trace` are checked against `evbus
 * replay` of the same log filtered by hand, and, after kill -9 at random
 * moments under load (confirmed publish running), against `evbus compact
 * --rebuild` of a copy of the data directory, row for row.
 *
 * The events come from a generator (ct_gen) that writes blocks of twelve
 * events of every type, with a few symbols, users, components and
 * accounts, and chains signal -> two commands -> trades (one trade names
 * no command), at explicit times 50 ms apart within a block and 7 s
 * between blocks, so that a run covers several minutes.
 *
 * Synchronisation is by condition against a deadline, never by a sleep:
 * a server is ready when its stderr holds its ready line; published
 * events are stored once `evbus replay` shows them; the compactor has
 * caught up when `evbus query status` shows its position at the log's
 * last offset. The only sleeps are the random delays before a kill -9,
 * which are the point of the crash tests (their seed is printed; set
 * EVB_TEST_SEED to repeat one). Every process is killed by PID in .fini.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/support.h"

#define CT_TEST_TIMEOUT_S 240 /* criterion's limit, every test. */
#define CT_WAIT_MS 30000      /* Any one wait; scaled by the env. */
#define CT_POLL_NS 20000000L  /* Pause between two looks: 20 ms. */
#define CT_MAX_PIDS 16        /* Processes one test may hold. */
#define CT_MAX_ARGS 32        /* Arguments of one evbus run. */
#define CT_ATTEMPTS 8         /* Port picks before giving up. */
#define CT_PORT_CTL 5573      /* The default ctl port: never used. */

#define CT_T0 1758000000000000000LL /* ts of the first generated event. */
#define CT_BLOCK 12                 /* Events per generated block. */
#define CT_BLOCK_NS 7000000000LL    /* Between two blocks: 7 s. */
#define CT_STEP_NS 50000000LL       /* Within a block: 50 ms. */
#define CT_DAY_NS 86400000000000LL  /* Keeps crash rounds apart in time. */
#define CT_BLOCKS 40                /* Blocks of the functional tests. */

#define CT_NSYMS 3
#define CT_NUSERS 4
static const char *const ct_syms[CT_NSYMS]   = { "EURUSD", "GBPUSD", "USDJPY" };
static const char *const ct_users[CT_NUSERS] = { "u1", "u2", "u3", "u4" };
static const char *const ct_types[] = { "signal_generated", "fire_command",
	"trade_executed", "balance_update", "system_health", "user_action",
	"market_data", "pattern_detected" };
#define CT_NTYPES (sizeof(ct_types) / sizeof(ct_types[0]))

/* A bus (`evbus run`) started by a test, and its URLs. */
typedef struct ct_bus {
	pid_t *pid;
	char   pub[64];
	char   ingest[64];
	char   ctl[64];
	char   confirm[64];
} ct_bus;

static char *ct_dir;
static pid_t ct_pids[CT_MAX_PIDS];
static int   ct_npids;
static int   ct_nfiles; /* Names output files uniquely. */

static void
ct_setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&ct_dir), EVB_OK);
	cr_assert_not_null(evb_test_bin(), "EVB_BIN is not set");
	cr_assert_not_null(evb_test_source_dir(), "EVB_SOURCE_DIR is not set");
}

static void
ct_teardown(void)
{
	for (int i = 0; i < CT_MAX_PIDS; i++) {
		(void) evb_ts_kill(&ct_pids[i]);
	}
	ct_npids = 0;
	(void) evb_ts_tmpdir_remove(ct_dir);
	ct_dir = NULL;
}

TestSuite(compactor, .init = ct_setup, .fini = ct_teardown,
    .timeout = CT_TEST_TIMEOUT_S);

/* ---- Processes ----------------------------------------------------------- */

#define ARGS(...) ((const char *const[]) { __VA_ARGS__, NULL })

static char *
ct_path(const char *name)
{
	char *p = evb_ts_path(ct_dir, name);

	cr_assert_not_null(p);
	return p;
}

static void
ct_pause(void)
{
	struct timespec ts = { 0, CT_POLL_NS };

	// Paces a poll loop; every wait is bounded by a deadline.
	(void) nanosleep(&ts, NULL);
}

/* ct_slot returns a free PID slot (0 after a reap). */
static pid_t *
ct_slot(void)
{
	for (int i = 0; i < CT_MAX_PIDS; i++) {
		if (ct_pids[i] == 0) {
			return &ct_pids[i];
		}
	}
	cr_assert_fail("more than %d processes", CT_MAX_PIDS);
	return NULL;
}

/* ct_argv builds "evbus ARGS..." into argv. */
static void
ct_argv(char *argv[CT_MAX_ARGS + 2], const char *const *args)
{
	cr_assert_eq(evb_ts_evbus_argv(argv, CT_MAX_ARGS + 2, args), EVB_OK,
	    "more than %d arguments", CT_MAX_ARGS);
}

/*
 * ct_run runs evbus ARGS to its end and returns its exit code; *out and
 * *err (each may be NULL) get its stdout and stderr (free them).
 */
static int
ct_run(const char *const *args, char **out, char **err)
{
	char      name[32];
	char     *argv[CT_MAX_ARGS + 2];
	evb_ts_io io = { NULL, NULL, NULL };
	size_t    len;
	int       code;
	pid_t    *pid = ct_slot();

	ct_argv(argv, args);
	(void) snprintf(name, sizeof(name), "cmd%d.out", ct_nfiles);
	io.stdout_path = ct_path(name);
	(void) snprintf(name, sizeof(name), "cmd%d.err", ct_nfiles++);
	io.stderr_path = ct_path(name);
	cr_assert_eq(
	    evb_ts_run(pid, argv, &io, evb_ts_timeout_ms(CT_WAIT_MS), &code),
	    EVB_OK, "evbus %s did not finish", args[0]);
	if (out != NULL) {
		cr_assert_eq(
		    evb_ts_file_read(io.stdout_path, out, &len), EVB_OK);
	}
	// In a sanitizer build a report may share exit code 1 with "no
	// rows": look for it.
	cr_assert(!evb_ts_file_has(io.stderr_path, "Sanitizer") &&
	        !evb_ts_file_has(io.stderr_path, "runtime error:"),
	    "evbus %s %s: a sanitizer report", args[0], args[1]);
	if (err != NULL) {
		cr_assert_eq(
		    evb_ts_file_read(io.stderr_path, err, &len), EVB_OK);
	}
	free((char *) io.stdout_path);
	free((char *) io.stderr_path);
	return code;
}

/* ct_start starts evbus ARGS and waits for ready in its stderr; NULL
 * when it exited because a port was taken. */
static pid_t *
ct_start(const char *const *args, const char *err_path, const char *ready)
{
	char     *argv[CT_MAX_ARGS + 2];
	evb_ts_io io  = { NULL, NULL, err_path };
	pid_t    *pid = ct_slot();
	uint64_t  end = evb_clock_mono_ms() + evb_ts_timeout_ms(CT_WAIT_MS);
	int       status;

	ct_argv(argv, args);
	cr_assert_eq(evb_ts_spawn(pid, argv, &io), EVB_OK);
	while (!evb_ts_file_has(err_path, ready)) {
		if (evb_ts_wait(pid, 0, &status) == EVB_OK) {
			cr_assert(evb_ts_file_has(err_path, "in use"),
			    "evbus %s exited with %d", args[0],
			    evb_ts_exit_code(status));
			return NULL;
		}
		cr_assert_lt(evb_clock_mono_ms(), end, "no %s", ready);
		ct_pause();
	}
	return pid;
}

/* ct_url picks a free port for url. */
static void
ct_url(char url[64])
{
	uint16_t port;

	do {
		cr_assert_eq(evb_ts_port_pick(&port), EVB_OK);
	} while (port == CT_PORT_CTL);
	(void) snprintf(url, 64, "tcp://127.0.0.1:%u", (unsigned) port);
}

/* ct_bus_start starts `evbus run --data data EXTRA...` on fresh ports. */
static void
ct_bus_start(
    ct_bus *s, const char *data, const char *const *extra, const char *err)
{
	char *err_path = ct_path(err);

	for (int i = 0; i < CT_ATTEMPTS; i++) {
		const char *args[CT_MAX_ARGS + 1] = { "run", "--data", data,
			"--pub", s->pub, "--ingest", s->ingest, "--ctl", s->ctl,
			"--confirm", s->confirm, "--stats-log", "0",
			"--heartbeat", "0" };
		int         argc                  = 15;

		ct_url(s->pub);
		ct_url(s->ingest);
		ct_url(s->ctl);
		ct_url(s->confirm);
		for (const char *const *e = extra; e != NULL && *e != NULL;
		     e++) {
			cr_assert_lt(argc, CT_MAX_ARGS);
			args[argc++] = *e;
		}
		args[argc] = NULL;
		if ((s->pid = ct_start(args, err_path, "EVB-RUN-READY")) !=
		    NULL) {
			free(err_path);
			return;
		}
	}
	cr_assert_fail("no free ports after %d attempts", CT_ATTEMPTS);
}

/* ct_compactor_start starts `evbus compactor --data data`. */
static pid_t *
ct_compactor_start(const char *data, const char *err)
{
	char  *err_path = ct_path(err);
	pid_t *pid      = ct_start(
	         ARGS("compactor", "--data", data, "--stats-log", "0", "--no-sync"),
	         err_path, "EVB-COMPACTOR-READY");

	cr_assert_not_null(pid);
	free(err_path);
	return pid;
}

/* ct_stop sends SIGTERM to *pid and expects exit status 0. */
static void
ct_stop(pid_t *pid)
{
	int status;

	cr_assert_eq(kill(*pid, SIGTERM), 0);
	cr_assert_eq(evb_ts_wait(pid, evb_ts_timeout_ms(CT_WAIT_MS), &status),
	    EVB_OK, "did not stop on SIGTERM");
	cr_assert_eq(evb_ts_exit_code(status), 0);
}

/* ct_sleep_ms sleeps for a crash test's random delay. */
static void
ct_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	// The random moment of the kill is the point of the crash tests.
	(void) nanosleep(&ts, NULL);
}

/* ---- Events -------------------------------------------------------------- */

/*
 * ct_gen writes blocks events in blocks of CT_BLOCK, ids "<tag>-<b>-<j>",
 * block b at t0 + b * CT_BLOCK_NS, and returns the file's path.
 */
static char *
ct_gen(const char *tag, int blocks, long long t0)
{
	char  name[64];
	char *path;
	FILE *f;

	(void) snprintf(name, sizeof(name), "%s.jsonl", tag);
	path = ct_path(name);
	cr_assert_not_null(f = fopen(path, "w"));
	for (int b = 0; b < blocks; b++) {
		const char *sym  = ct_syms[b % CT_NSYMS];
		const char *u    = ct_users[b % CT_NUSERS];
		const char *u2   = ct_users[(b + 1) % CT_NUSERS];
		const char *dir  = b % 2 == 0 ? "BUY" : "SELL";
		long long   t    = t0 + b * CT_BLOCK_NS;
		long long   tick = (long long) b * 10;
		char        pre[64];

#define TS(j) (t + (j) *CT_STEP_NS)
		(void) snprintf(pre, sizeof(pre), "\"id\":\"%s-%d", tag, b);
		fprintf(f,
		    "{\"type\":\"signal_generated\",%s-0\",\"ts\":%lld,"
		    "\"source\":\"ct\",\"data\":{\"signal_id\":\"%s-s%d\","
		    "\"symbol\":\"%s\",\"direction\":\"%s\",\"confidence\":%d,"
		    "\"timeframe\":\"M15\"}}\n",
		    pre, TS(0), tag, b, sym, dir, 50 + b % 50);
		for (int k = 0; k < 2; k++) {
			fprintf(f,
			    "{\"type\":\"fire_command\",%s-%d\",\"ts\":%lld,"
			    "\"source\":\"ct\",\"corr\":\"%s-%d-0\",\"data\":{"
			    "\"command_id\":\"%s-c%d%c\",\"user_id\":\"%s\","
			    "\"signal_id\":\"%s-s%d\",\"symbol\":\"%s\","
			    "\"direction\":\"%s\",\"volume\":%g}}\n",
			    pre, 1 + k, TS(1 + k), tag, b, tag, b, 'a' + k,
			    k == 0 ? u : u2, tag, b, sym, dir, 0.1 * (1 + k));
		}
		for (int k = 0; k < 2; k++) {
			fprintf(f,
			    "{\"type\":\"trade_executed\",%s-%d\",\"ts\":%lld,"
			    "\"source\":\"ct\",\"corr\":\"%s-%d-0\",\"data\":{"
			    "\"ticket\":%lld,\"user_id\":\"%s\",\"symbol\":\"%"
			    "s\","
			    "\"direction\":\"%s\",\"volume\":%g,\"price\":%g,"
			    "\"signal_id\":\"%s-s%d\",\"command_id\":\"%s-c%d%"
			    "c\"}"
			    "}\n",
			    pre, 3 + k, TS(3 + k), tag, b,
			    t0 / 1000000000 + tick + k, k == 0 ? u : u2, sym,
			    dir, 0.1 * (1 + k), 1.1 + b * 0.01, tag, b, tag, b,
			    'a' + k);
		}
		fprintf(f,
		    "{\"type\":\"balance_update\",%s-5\",\"ts\":%lld,\"data\":{"
		    "\"user_id\":\"%s\",\"balance\":%d,\"equity\":%d.5,"
		    "\"account_id\":\"acct-%d\"}}\n",
		    pre, TS(5), u, 1000 + b, 1000 + b, b % 3);
		fprintf(f,
		    "{\"type\":\"system_health\",%s-6\",\"ts\":%lld,\"data\":{"
		    "\"component\":\"comp-%d\",\"status\":\"%s\"}}\n",
		    pre, TS(6), b % 3, b % 4 == 0 ? "degraded" : "healthy");
		fprintf(f,
		    "{\"type\":\"user_action\",%s-7\",\"ts\":%lld,\"corr\":"
		    "\"%s-%d-0\",\"data\":{\"user_id\":\"%s\",\"action\":"
		    "\"view\"}}\n",
		    pre, TS(7), tag, b, u);
		fprintf(f,
		    "{\"type\":\"market_data\",%s-8\",\"ts\":%lld,\"data\":{"
		    "\"symbol\":\"%s\",\"bid\":1.%d,\"ask\":1.%d5,"
		    "\"volume\":%d}}\n",
		    pre, TS(8), sym, b, b, b);
		fprintf(f,
		    "{\"type\":\"pattern_detected\",%s-9\",\"ts\":%lld,"
		    "\"data\":{\"symbol\":\"%s\",\"pattern_type\":\"P%d\","
		    "\"confidence\":60}}\n",
		    pre, TS(9), ct_syms[(b + 1) % CT_NSYMS], b % 5);
		fprintf(f,
		    "{\"type\":\"market_data\",%s-10\",\"ts\":%lld,\"data\":{"
		    "\"symbol\":\"%s\",\"bid\":2.%d,\"ask\":2.%d5}}\n",
		    pre, TS(10), ct_syms[(b + 2) % CT_NSYMS], b, b);
		// A trade that names its signal but no command (even blocks)
		// or a command that is not in the log (odd blocks).
		fprintf(f,
		    "{\"type\":\"trade_executed\",%s-11\",\"ts\":%lld,\"data\":"
		    "{"
		    "\"ticket\":%lld,\"user_id\":\"%s\",\"symbol\":\"%s\","
		    "\"direction\":\"%s\",\"volume\":0.5,\"price\":1.5,"
		    "\"signal_id\":\"%s-s%d\"%s%s%s}}\n",
		    pre, TS(11), t0 / 1000000000 + tick + 2, u, sym, dir, tag,
		    b, b % 2 == 0 ? "" : ",\"command_id\":\"",
		    b % 2 == 0 ? "" : tag, b % 2 == 0 ? "" : "-missing\"");
#undef TS
	}
	cr_assert_eq(fclose(f), 0);
	return path;
}

/* ct_count_lines counts the events (non-blank lines) of a file. */
static size_t
ct_count_lines(const char *path)
{
	char  *text;
	size_t len, n = 0;
	char  *save = NULL;

	cr_assert_eq(evb_ts_file_read(path, &text, &len), EVB_OK);
	for (char *l = strtok_r(text, "\n", &save); l != NULL;
	     l       = strtok_r(NULL, "\n", &save)) {
		n++;
	}
	free(text);
	return n;
}

static json_t *ct_replay(const char *data);

/* ct_wait_stored waits until the log in data holds n events. */
static void
ct_wait_stored(const char *data, size_t n)
{
	uint64_t end = evb_clock_mono_ms() + evb_ts_timeout_ms(CT_WAIT_MS);

	for (;;) {
		json_t *log = ct_replay(data);
		size_t  got = json_array_size(log);

		json_decref(log);
		if (got >= n) {
			cr_assert_eq(got, n,
			    "the log holds %zu events, not %zu", got, n);
			return;
		}
		cr_assert_lt(evb_clock_mono_ms(), end,
		    "the log holds %zu events of %zu", got, n);
		ct_pause();
	}
}

/*
 * ct_publish sends a file (fire and forget) and waits until the log has
 * its events. Not --confirm: a test that waits for replies would fail on
 * a reply the broker could not send, which is not what it tests.
 */
static void
ct_publish(const ct_bus *s, const char *data, const char *path)
{
	json_t *log  = ct_replay(data);
	size_t  have = json_array_size(log);

	json_decref(log);
	cr_assert_eq(ct_run(ARGS("publish", "--ingest", s->ingest, "--batch",
	                        "100", path),
	                 NULL, NULL),
	    0);
	ct_wait_stored(data, have + ct_count_lines(path));
}

/* ---- Output ---------------------------------------------------------------
 */

/* ct_lines parses JSON lines into an array. */
static json_t *
ct_lines(char *out)
{
	json_t *a    = json_array();
	char   *save = NULL;

	for (char *line = strtok_r(out, "\n", &save); line != NULL;
	     line       = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);

		cr_assert_not_null(j, "not a JSON line: %s", line);
		json_array_append_new(a, j);
	}
	return a;
}

/* ct_query runs evbus ARGS, expects exit code code, parses its lines. */
static json_t *
ct_query(const char *const *args, int code)
{
	char   *out, *err;
	json_t *a;
	int     got = ct_run(args, &out, &err);

	cr_assert_eq(got, code, "evbus %s %s: exit %d, not %d: %s", args[0],
	    args[1], got, code, err);
	a = ct_lines(out);
	free(out);
	free(err);
	return a;
}

/* ct_replay returns the events of the log in data (gaps left out). */
static json_t *
ct_replay(const char *data)
{
	json_t *all = ct_query(ARGS("replay", "--data", data), 0);
	json_t *ev  = json_array();
	size_t  i;
	json_t *j;

	json_array_foreach(all, i, j)
	{
		if (json_object_get(j, "gap") == NULL) {
			json_array_append(ev, j);
		}
	}
	json_decref(all);
	return ev;
}

static long long
ct_ts(const json_t *ev)
{
	return (long long) json_integer_value(json_object_get(ev, "ts"));
}

/* ct_field returns data.<name> of ev as a string, or NULL. */
static const char *
ct_field(const json_t *ev, const char *name)
{
	return json_string_value(
	    json_object_get(json_object_get(ev, "data"), name));
}

static const char *
ct_str(const json_t *ev, const char *name)
{
	return json_string_value(json_object_get(ev, name));
}

static bool
ct_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* One event and its place in the log, for a stable sort by ts. */
typedef struct ct_ord {
	long long ts;
	size_t    idx;
	json_t   *ev;
} ct_ord;

static int
ct_ord_cmp(const void *a, const void *b)
{
	const ct_ord *x = a, *y = b;

	if (x->ts != y->ts) {
		return x->ts < y->ts ? -1 : 1;
	}
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* ct_keep selects the events a query should give. */
typedef bool (*ct_keep)(const json_t *ev, const void *arg);

/*
 * ct_expect is the answer a query should give, built from the replay by
 * hand: the events of type (NULL: any) that keep accepts (NULL: all), in
 * ts order, then log order.
 */
static json_t *
ct_expect(const json_t *log, const char *type, ct_keep keep, const void *arg)
{
	size_t  n = json_array_size(log), k = 0;
	ct_ord *o = calloc(n + 1, sizeof(*o));
	json_t *a = json_array();

	cr_assert_not_null(o);
	for (size_t i = 0; i < n; i++) {
		json_t *ev = json_array_get(log, i);

		if ((type == NULL || ct_eq(ct_str(ev, "type"), type)) &&
		    (keep == NULL || keep(ev, arg))) {
			o[k++] = (ct_ord) { ct_ts(ev), i, ev };
		}
	}
	qsort(o, k, sizeof(*o), ct_ord_cmp);
	for (size_t i = 0; i < k; i++) {
		json_array_append(a, o[i].ev);
	}
	free(o);
	return a;
}

/* ct_same asserts got equals want, element by element. */
static void
ct_same(json_t *got, json_t *want, const char *what)
{
	cr_assert_eq(json_array_size(got), json_array_size(want),
	    "%s: %zu rows, expected %zu", what, json_array_size(got),
	    json_array_size(want));
	for (size_t i = 0; i < json_array_size(want); i++) {
		char *g = json_dumps(json_array_get(got, i), JSON_COMPACT);
		char *w = json_dumps(json_array_get(want, i), JSON_COMPACT);

		cr_assert(
		    json_equal(json_array_get(got, i), json_array_get(want, i)),
		    "%s: row %zu is %s, expected %s", what, i, g, w);
		free(g);
		free(w);
	}
	json_decref(got);
	json_decref(want);
}

/* ct_check_query runs `query ARGS` and compares it with want (an empty
 * answer exits 1). */
static void
ct_check_query(const char *const *args, json_t *want, const char *what)
{
	int code = json_array_size(want) == 0 ? 1 : 0;

	ct_same(ct_query(args, code), want, what);
}

/* ct_status reads `evbus query status` as JSON. */
static json_t *
ct_status(const char *data)
{
	json_t *a = ct_query(ARGS("query", "status", "--data", data), 0);
	json_t *s = json_incref(json_array_get(a, 0));

	cr_assert_not_null(s);
	json_decref(a);
	return s;
}

static long long
ct_int(const json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	cr_assert(json_is_integer(v), "no integer %s", name);
	return (long long) json_integer_value(v);
}

/* ct_caught_up waits until the compactor of data has projected the
 * whole log, which holds at least min_last records. */
static void
ct_caught_up(const char *data, long long min_last)
{
	uint64_t end = evb_clock_mono_ms() + evb_ts_timeout_ms(CT_WAIT_MS);

	for (;;) {
		char     *err;
		char     *out;
		json_t   *s;
		long long pos, last;

		// The tables appear with the compactor's first commit.
		if (ct_run(ARGS("query", "status", "--data", data), &out,
		        &err) != 0) {
			cr_assert(strstr(err, "no tables") != NULL, "%s", err);
			free(out);
			free(err);
			cr_assert_lt(evb_clock_mono_ms(), end, "no tables");
			ct_pause();
			continue;
		}
		free(out);
		free(err);
		s    = ct_status(data);
		pos  = ct_int(s, "position");
		last = ct_int(s, "log_last");
		json_decref(s);
		if (pos == last && last >= min_last) {
			return;
		}
		cr_assert_lt(evb_clock_mono_ms(), end,
		    "the compactor stays at %lld of %lld", pos, last);
		ct_pause();
	}
}

/* ct_wait_projected waits until the compactor of data has committed. */
static void
ct_wait_projected(const char *data)
{
	uint64_t end = evb_clock_mono_ms() + evb_ts_timeout_ms(CT_WAIT_MS);

	for (;;) {
		char     *out;
		long long pos = 0;

		if (ct_run(ARGS("query", "status", "--data", data), &out,
		        NULL) == 0) {
			json_t *a = ct_lines(out);

			pos = ct_int(json_array_get(a, 0), "position");
			json_decref(a);
		}
		free(out);
		if (pos > 0) {
			return;
		}
		cr_assert_lt(evb_clock_mono_ms(), end, "nothing projected");
		ct_pause();
	}
}

/* ct_load starts a bus on data, publishes the examples, the test data
 * and CT_BLOCKS generated blocks, and waits for the compactor. */
static json_t *
ct_load(ct_bus *s, const char *data)
{
	char *ex = evb_ts_path(evb_test_source_dir(), "examples/events.jsonl");
	char *valid = evb_ts_path(
	    evb_test_source_dir(), "tests/integration/data/valid.jsonl");
	json_t *log;

	cr_assert_not_null(ex);
	cr_assert_not_null(valid);
	ct_bus_start(s, data, NULL, "run.err");
	ct_publish(s, data, ex);
	ct_publish(s, data, valid);
	ct_publish(s, data, ct_gen("f", CT_BLOCKS, CT_T0));
	log = ct_replay(data);
	ct_caught_up(data, (long long) json_array_size(log));
	free(ex);
	free(valid);
	return log;
}

/* ---- Query by type and filters -------------------------------------------
 */

Test(compactor, every_type_is_in_its_table_field_for_field)
{
	ct_bus    s;
	char     *data = ct_path("data");
	json_t   *log  = ct_load(&s, data);
	json_t   *st   = ct_status(data);
	json_t   *want, *got;
	char     *a, *b;
	long long total = 0;

	for (size_t t = 0; t < CT_NTYPES; t++) {
		want = ct_expect(log, ct_types[t], NULL, NULL);
		cr_assert_gt(json_array_size(want), 0);
		cr_assert_eq(
		    ct_int(json_object_get(st, "per_type"), ct_types[t]),
		    (long long) json_array_size(want), "%s", ct_types[t]);
		total += (long long) json_array_size(want);
		ct_check_query(ARGS("query", ct_types[t], "--data", data), want,
		    ct_types[t]);
	}
	cr_assert_eq(total, (long long) json_array_size(log));
	cr_assert_eq(ct_int(st, "events"), total);
	cr_assert_eq(ct_int(st, "gaps"), 0);
	cr_assert_eq(ct_int(st, "bad"), 0);
	cr_assert_eq(ct_int(st, "lag"), 0);
	json_decref(st);

	// Newest first, and a limit, either way.
	want = ct_expect(log, "trade_executed", NULL, NULL);
	got  = ct_query(
	     ARGS("query", "trade_executed", "--desc", "--data", data), 0);
	cr_assert_eq(json_array_size(got), json_array_size(want));
	for (size_t i = 0; i < json_array_size(want); i++) {
		cr_assert(json_equal(json_array_get(got, i),
		    json_array_get(want, json_array_size(want) - 1 - i)));
	}
	json_decref(got);
	got = ct_query(
	    ARGS("query", "trade_executed", "--limit", "3", "--data", data), 0);
	cr_assert_eq(json_array_size(got), 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert(json_equal(
		    json_array_get(got, i), json_array_get(want, i)));
	}
	json_decref(got);
	json_decref(want);

	// A table's name is the same query as its type's; options may come
	// first; the table format has a header and one line per event.
	cr_assert_eq(
	    ct_run(ARGS("query", "signal_generated", "--data", data), &a, NULL),
	    0);
	cr_assert_eq(
	    ct_run(ARGS("query", "--data", data, "signal_events"), &b, NULL),
	    0);
	cr_assert_str_eq(a, b);
	free(a);
	free(b);
	cr_assert_eq(ct_run(ARGS("query", "market_data", "--format", "table",
	                        "--data", data),
	                 &a, NULL),
	    0);
	cr_assert(strncmp(a, "TIME", 4) == 0, "%s", a);
	want      = ct_expect(log, "market_data", NULL, NULL);
	size_t nl = 0;
	for (char *p = a; *p != '\0'; p++) {
		nl += *p == '\n';
	}
	cr_assert_eq(nl, json_array_size(want) + 1, "%s", a);
	json_decref(want);
	free(a);
	json_decref(log);
	ct_stop(s.pid);
}

static bool
ct_keep_data(const json_t *ev, const void *arg)
{
	const char *const *kv = arg;

	return ct_eq(ct_field(ev, kv[0]), kv[1]);
}

static bool
ct_keep_corr(const json_t *ev, const void *arg)
{
	return ct_eq(ct_str(ev, "corr"), arg);
}

/* The range [since, until) of ct_keep_time. */
typedef struct ct_range {
	long long   since, until;
	const char *symbol; /* Also data.symbol, when not NULL. */
} ct_range;

static bool
ct_keep_time(const json_t *ev, const void *arg)
{
	const ct_range *r = arg;

	return ct_ts(ev) >= r->since && ct_ts(ev) < r->until &&
	    (r->symbol == NULL || ct_eq(ct_field(ev, "symbol"), r->symbol));
}

/* ct_iso writes ns (a whole second) as ISO 8601 UTC. */
static void
ct_iso(long long ns, char *buf, size_t cap)
{
	time_t    secs = (time_t) (ns / 1000000000LL);
	struct tm tm;

	cr_assert_not_null(gmtime_r(&secs, &tm));
	cr_assert_gt(strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm), 0);
}

Test(compactor, secondary_filters_give_what_replay_gives_by_hand)
{
	ct_bus  s;
	char   *data = ct_path("data");
	json_t *log  = ct_load(&s, data);
	char    what[128], since[32], until[32];

	for (size_t t = 0; t < CT_NTYPES; t++) {
		const char *ty = ct_types[t];

		for (int i = 0; i < CT_NSYMS; i++) {
			const char *kv[2] = { "symbol", ct_syms[i] };

			(void) snprintf(what, sizeof(what), "%s --symbol %s",
			    ty, ct_syms[i]);
			ct_check_query(ARGS("query", ty, "--symbol", ct_syms[i],
			                   "--data", data),
			    ct_expect(log, ty, ct_keep_data, kv), what);
		}
		for (int i = 0; i < CT_NUSERS; i++) {
			const char *kv[2] = { "user_id", ct_users[i] };

			(void) snprintf(what, sizeof(what), "%s --user %s", ty,
			    ct_users[i]);
			ct_check_query(ARGS("query", ty, "--user", ct_users[i],
			                   "--data", data),
			    ct_expect(log, ty, ct_keep_data, kv), what);
		}
		for (int b = 0; b < CT_BLOCKS; b += 13) {
			char corr[32];

			(void) snprintf(corr, sizeof(corr), "f-%d-0", b);
			(void) snprintf(
			    what, sizeof(what), "%s --corr %s", ty, corr);
			ct_check_query(
			    ARGS("query", ty, "--corr", corr, "--data", data),
			    ct_expect(log, ty, ct_keep_corr, corr), what);
		}
	}
	// Two filters at once, and a time range with and without one.
	{
		const char *kv[2] = { "user_id", "u2" };
		json_t     *want =
		    ct_expect(log, "trade_executed", ct_keep_data, kv);
		json_t *sym = json_array();
		size_t  i;
		json_t *j;

		json_array_foreach(want, i, j)
		{
			if (ct_eq(ct_field(j, "symbol"), "GBPUSD")) {
				json_array_append(sym, j);
			}
		}
		json_decref(want);
		ct_check_query(ARGS("query", "trade_executed", "--user", "u2",
		                   "--symbol", "GBPUSD", "--data", data),
		    sym, "trade_executed --user u2 --symbol GBPUSD");
	}
	ct_range r = { CT_T0 + 10 * CT_BLOCK_NS, CT_T0 + 20 * CT_BLOCK_NS,
		NULL };

	ct_iso(r.since, since, sizeof(since));
	ct_iso(r.until, until, sizeof(until));
	for (size_t t = 0; t < CT_NTYPES; t++) {
		(void) snprintf(what, sizeof(what), "%s --since %s --until %s",
		    ct_types[t], since, until);
		ct_check_query(ARGS("query", ct_types[t], "--since", since,
		                   "--until", until, "--data", data),
		    ct_expect(log, ct_types[t], ct_keep_time, &r), what);
	}
	r.symbol = "USDJPY";
	ct_check_query(ARGS("query", "market_data", "--since", since, "--until",
	                   until, "--symbol", "USDJPY", "--data", data),
	    ct_expect(log, "market_data", ct_keep_time, &r),
	    "market_data in a range for USDJPY");
	// Relative: the events the broker stamped (no ts) are recent.
	r = (ct_range) { evb_clock_real_ns() - 3600LL * 1000000000LL, INT64_MAX,
		NULL };
	ct_check_query(
	    ARGS("query", "system_health", "--since", "-1h", "--data", data),
	    ct_expect(log, "system_health", ct_keep_time, &r),
	    "system_health --since -1h");
	json_decref(log);
	ct_stop(s.pid);
}

/* ---- Trace --------------------------------------------------------------- */

/* ct_find returns the event of the log with this id. */
static json_t *
ct_find(const json_t *log, const char *id)
{
	size_t  i;
	json_t *j;

	json_array_foreach(log, i, j)
	{
		if (ct_eq(ct_str(j, "id"), id)) {
			return j;
		}
	}
	return NULL;
}

/* ct_chain is the chain of signal sig by hand: its signals, commands and
 * trades (by signal_id or by one of the commands' command_id). */
static json_t *
ct_chain(const json_t *log, const char *sig)
{
	json_t *chain = json_array();
	size_t  i;
	json_t *j;
	json_t *groups[3];

	groups[0] = ct_expect(log, "signal_generated", ct_keep_data,
	    (const char *[]) { "signal_id", sig });
	groups[1] = ct_expect(log, "fire_command", ct_keep_data,
	    (const char *[]) { "signal_id", sig });
	groups[2] = json_array();
	{
		json_t *trades = ct_expect(log, "trade_executed", NULL, NULL);

		json_array_foreach(trades, i, j)
		{
			bool    in = ct_eq(ct_field(j, "signal_id"), sig);
			size_t  k;
			json_t *c;

			json_array_foreach(groups[1], k, c)
			{
				in = in ||
				    ct_eq(ct_field(j, "command_id"),
				        ct_field(c, "command_id"));
			}
			if (in) {
				json_array_append(groups[2], j);
			}
		}
		json_decref(trades);
	}
	for (int g = 0; g < 3; g++) {
		json_array_extend(chain, groups[g]);
		json_decref(groups[g]);
	}
	return chain;
}

/* ct_check_trace runs `trace id` and checks it is sig's chain, with the
 * time of each step from its own predecessor. */
static void
ct_check_trace(
    const char *data, const json_t *log, const char *id, const char *sig)
{
	json_t *got   = ct_query(ARGS("trace", id, "--data", data), 0);
	json_t *want  = ct_chain(log, sig);
	json_t *first = json_object_get(json_array_get(got, 0), "event");

	cr_assert_eq(json_array_size(got), json_array_size(want),
	    "trace %s: %zu steps, expected %zu", id, json_array_size(got),
	    json_array_size(want));
	for (size_t i = 0; i < json_array_size(want); i++) {
		json_t     *step = json_array_get(got, i);
		json_t     *ev   = json_object_get(step, "event");
		json_t     *w    = json_array_get(want, i);
		const char *type = ct_str(w, "type");
		json_t     *from = NULL;

		cr_assert(
		    json_equal(ev, w), "trace %s: step %zu differs", id, i);
		cr_assert_str_eq(ct_str(step, "step"), type);
		if (strcmp(type, "fire_command") == 0) {
			from = first;
		} else if (strcmp(type, "trade_executed") == 0) {
			const char *cmd = ct_field(w, "command_id");

			// From its command when it names one (untimed when
			// that command is not in the log), else its signal.
			from = cmd == NULL ? first : NULL;
			for (size_t k = 0; cmd != NULL && k < i; k++) {
				json_t *c = json_object_get(
				    json_array_get(got, k), "event");

				if (ct_eq(ct_field(c, "command_id"), cmd) &&
				    ct_eq(ct_str(c, "type"), "fire_command")) {
					from = c;
				}
			}
			cr_assert_eq(ct_int(step, "signal_to_fill_us"),
			    (ct_ts(w) - ct_ts(first)) / 1000);
		}
		if (from != NULL) {
			cr_assert_eq(ct_int(step, "after_us"),
			    (ct_ts(w) - ct_ts(from)) / 1000,
			    "trace %s: step %zu", id, i);
		} else {
			cr_assert_null(json_object_get(step, "after_us"));
		}
	}
	json_decref(got);
	json_decref(want);
}

/*
 * ct_value returns ev's value of a key field as text: the envelope's corr
 * for "corr", else data.<field>, a string or an integer (written to buf);
 * NULL when ev has none.
 */
static const char *
ct_value(const json_t *ev, const char *field, char *buf, size_t cap)
{
	json_t *v;

	if (strcmp(field, "corr") == 0) {
		return ct_str(ev, "corr");
	}
	v = json_object_get(json_object_get(ev, "data"), field);
	if (json_is_integer(v)) {
		(void) snprintf(
		    buf, cap, "%lld", (long long) json_integer_value(v));
		return buf;
	}
	return json_string_value(v);
}

/*
 * ct_keys returns the distinct values of field (ct_value) in the log, in
 * log order, and sets bit t of *types (when not NULL) for each type t
 * (ct_types) that has one.
 */
static json_t *
ct_keys(const json_t *log, const char *field, unsigned *types)
{
	json_t *seen = json_object();
	json_t *keys = json_array();
	size_t  i;
	json_t *ev;

	if (types != NULL) {
		*types = 0;
	}
	json_array_foreach(log, i, ev)
	{
		char        buf[32];
		const char *v = ct_value(ev, field, buf, sizeof(buf));

		if (v == NULL) {
			continue;
		}
		for (size_t t = 0; types != NULL && t < CT_NTYPES; t++) {
			if (ct_eq(ct_str(ev, "type"), ct_types[t])) {
				*types |= 1u << t;
			}
		}
		if (json_object_get(seen, v) == NULL) {
			json_object_set_new(seen, v, json_true());
			json_array_append_new(keys, json_string(v));
		}
	}
	json_decref(seen);
	return keys;
}

/* Ids of a kind (signal_id, command_id, ticket) a test traces, at most. */
#define CT_ID_SAMPLE 20
/* Keys of a kind (corr, user_id, symbol) a rebuild check queries, at
 * most: each key costs a query per type on two data dirs. */
#define CT_KEY_SAMPLE 10

/*
 * ct_sample keeps at most max of keys (it takes them): all of them, or
 * one drawn at random from each of max equal stretches, so that the
 * sample spans the log, every crash round of it. A crash test's seed
 * repeats it.
 */
static json_t *
ct_sample(json_t *keys, size_t max)
{
	size_t  n = json_array_size(keys);
	json_t *s;

	if (n <= max) {
		return keys;
	}
	s = json_array();
	for (size_t i = 0; i < max; i++) {
		size_t lo = i * n / max;
		size_t hi = (i + 1) * n / max;

		json_array_append(
		    s, json_array_get(keys, lo + (size_t) rand() % (hi - lo)));
	}
	json_decref(keys);
	return s;
}

/* The id fields a trace follows. Field f is in the index that the types
 * of rank f and up feed (ct_rank): signal_id in the signal, command and
 * trade's, command_id in the command and trade's, ticket in the trade's. */
enum { CT_SIG, CT_CMD, CT_TICKET, CT_NIDS };

static const char *const ct_id_fields[CT_NIDS] = { "signal_id", "command_id",
	"ticket" };

/* One event of the log as a trace sees it. */
typedef struct ct_link {
	int         rank;           /* ct_rank. */
	const char *id[CT_NIDS];    /* Its ids as text, or NULL. */
	char        ticket_buf[32]; /* The text of id[CT_TICKET]. */
} ct_link;

/* ct_rank is an event's place in a trace (signal, command, trade), -1
 * for a type no trace gives. */
static int
ct_rank(const json_t *ev)
{
	for (int r = 0; r < 3; r++) {
		if (ct_eq(ct_str(ev, "type"), ct_types[r])) {
			return r;
		}
	}
	return -1;
}

/* ct_links reads the ids of every event of the log once, for the many
 * passes of ct_trace_want (free it). */
static ct_link *
ct_links(const json_t *log)
{
	size_t   n = json_array_size(log);
	ct_link *l = calloc(n + 1, sizeof(*l));

	cr_assert_not_null(l);
	for (size_t i = 0; i < n; i++) {
		json_t *ev = json_array_get(log, i);

		l[i].rank = ct_rank(ev);
		for (int f = 0; f <= l[i].rank; f++) {
			l[i].id[f] = ct_value(ev, ct_id_fields[f],
			    l[i].ticket_buf, sizeof(l[i].ticket_buf));
		}
	}
	return l;
}

/* ct_step_cmp orders a trace's steps: by rank, then ts, then log order. */
static int
ct_step_cmp(const void *a, const void *b)
{
	int ra = ct_rank(((const ct_ord *) a)->ev);
	int rb = ct_rank(((const ct_ord *) b)->ev);

	if (ra != rb) {
		return ra < rb ? -1 : 1;
	}
	return ct_ord_cmp(a, b);
}

/* ct_mark marks, in in[] and (when not NULL) found[], the n events of l
 * whose id field f is val, and returns how many. */
static size_t
ct_mark(
    const ct_link *l, size_t n, int f, const char *val, bool *in, bool *found)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (ct_eq(l[i].id[f], val)) {
			in[i] = true;
			if (found != NULL) {
				found[i] = true;
			}
			k++;
		}
	}
	return k;
}

/* ct_mark_signal marks the chain of signal sig: what names sig, and what
 * names the command_id of one of its commands. Returns how many name sig. */
static size_t
ct_mark_signal(const ct_link *l, size_t n, const char *sig, bool *in)
{
	size_t k = ct_mark(l, n, CT_SIG, sig, in, NULL);

	for (size_t i = 0; i < n; i++) {
		if (l[i].rank == 1 && ct_eq(l[i].id[CT_SIG], sig)) {
			(void) ct_mark(l, n, CT_CMD, l[i].id[CT_CMD], in, NULL);
		}
	}
	return k;
}

/*
 * ct_mark_follow marks the chains the events in found (those of a command
 * or a ticket) lead to: their signal's, or for a trade by ticket that
 * names no signal, those of the events of its command.
 */
static void
ct_mark_follow(
    const ct_link *l, size_t n, const bool *found, bool by_command, bool *in)
{
	for (size_t i = 0; i < n; i++) {
		bool *cmd;

		if (!found[i]) {
			continue;
		}
		if (l[i].id[CT_SIG] != NULL) {
			(void) ct_mark_signal(l, n, l[i].id[CT_SIG], in);
		} else if (!by_command) {
			cr_assert_not_null(cmd = calloc(n + 1, sizeof(*cmd)));
			(void) ct_mark(l, n, CT_CMD, l[i].id[CT_CMD], in, cmd);
			ct_mark_follow(l, n, cmd, true, in);
			free(cmd);
		}
	}
}

/*
 * ct_trace_want is `trace id` by hand, from the log alone (l: its
 * ct_links; docs/tables.md, Queries): id as a signal_id gives its chain;
 * else as a command_id, or else as a ticket, the events that have it and
 * the chains they lead to. Each event once, by rank, then ts, then log
 * order.
 */
static json_t *
ct_trace_want(const json_t *log, const ct_link *l, const char *id)
{
	size_t  n = json_array_size(log), k = 0;
	bool   *in    = calloc(n + 1, sizeof(*in));
	bool   *found = calloc(n + 1, sizeof(*found));
	ct_ord *o     = calloc(n + 1, sizeof(*o));
	json_t *want  = json_array();

	cr_assert(in != NULL && found != NULL && o != NULL);
	if (ct_mark_signal(l, n, id, in) == 0) {
		if (ct_mark(l, n, CT_CMD, id, in, found) > 0) {
			ct_mark_follow(l, n, found, true, in);
		} else if (ct_mark(l, n, CT_TICKET, id, in, found) > 0) {
			ct_mark_follow(l, n, found, false, in);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (in[i]) {
			json_t *ev = json_array_get(log, i);

			o[k++] = (ct_ord) { ct_ts(ev), i, ev };
		}
	}
	qsort(o, k, sizeof(*o), ct_step_cmp);
	for (size_t i = 0; i < k; i++) {
		json_array_append(want, o[i].ev);
	}
	free(o);
	free(found);
	free(in);
	return want;
}

/* ct_same_steps asserts that the steps of a trace (got: its lines) are
 * the events of want, each once, in order; it releases both. */
static void
ct_same_steps(json_t *got, json_t *want, const char *id)
{
	json_t *events = json_array();
	char    what[160];
	size_t  i;
	json_t *step;

	json_array_foreach(got, i, step)
	{
		json_t *ev = json_object_get(step, "event");

		cr_assert_not_null(
		    ev, "trace %s: step %zu has no event", id, i);
		cr_assert(ct_eq(ct_str(step, "step"), ct_str(ev, "type")),
		    "trace %s: step %zu is not its event's type", id, i);
		json_array_append(events, ev);
	}
	json_decref(got);
	(void) snprintf(what, sizeof(what), "trace %s", id);
	ct_same(events, want, what);
}

/* ct_check_trace_log runs `trace id` and checks it against the log
 * (ct_trace_want; l: the log's ct_links). */
static void
ct_check_trace_log(
    const char *data, const json_t *log, const ct_link *l, const char *id)
{
	json_t *want = ct_trace_want(log, l, id);

	cr_assert_gt(json_array_size(want), 0, "no %s in the log", id);
	ct_same_steps(ct_query(ARGS("trace", id, "--data", data), 0), want, id);
}

Test(compactor, trace_follows_a_chain_from_each_kind_of_id)
{
	ct_bus   s;
	char    *data = ct_path("data");
	json_t  *log  = ct_load(&s, data);
	char    *out;
	ct_link *links = ct_links(log);
	size_t   i;
	json_t  *j;

	for (int b = 0; b < CT_BLOCKS; b += 9) {
		char sig[32], cmd[32], ticket[32], id[32];

		(void) snprintf(sig, sizeof(sig), "f-s%d", b);
		(void) snprintf(cmd, sizeof(cmd), "f-c%db", b);
		// The trade that names no command: found by its ticket.
		(void) snprintf(id, sizeof(id), "f-%d-11", b);
		(void) snprintf(ticket, sizeof(ticket), "%lld",
		    (long long) json_integer_value(json_object_get(
		        json_object_get(ct_find(log, id), "data"), "ticket")));
		ct_check_trace(data, log, sig, sig);
		ct_check_trace(data, log, cmd, sig);
		ct_check_trace(data, log, ticket, sig);
	}
	// Commands and trades of the log, each by its own id, against the log
	// itself: exactly the events that share its signal, command or
	// ticket, each once. A sample of each kind, and the hand-written
	// chains: the examples', and in valid.jsonl a trade that names
	// neither signal nor command (itself alone).
	for (int f = CT_CMD; f <= CT_TICKET; f++) {
		json_t *ids = ct_sample(
		    ct_keys(log, ct_id_fields[f], NULL), CT_ID_SAMPLE);

		json_array_foreach(ids, i, j)
		{
			ct_check_trace_log(
			    data, log, links, json_string_value(j));
		}
		cr_assert_eq(json_array_size(ids), CT_ID_SAMPLE);
		json_decref(ids);
	}
	ct_check_trace_log(data, log, links, "cmd-0001");
	ct_check_trace_log(data, log, links, "90210");
	ct_check_trace_log(data, log, links, "cmd-2001");
	ct_check_trace_log(data, log, links, "90001");
	free(links);
	// The examples' chain (evt-0001 -> cmd-0001 -> ticket 90210).
	ct_check_trace(data, log, "cmd-0001", "ELITE_GUARD_EURUSD_123");
	cr_assert_eq(ct_run(ARGS("trace", "ELITE_GUARD_EURUSD_123", "--format",
	                        "table", "--data", data),
	                 &out, NULL),
	    0);
	cr_assert(strstr(out, "+250.000 ms") != NULL, "%s", out);
	cr_assert(strstr(out, "+500.000 ms") != NULL, "%s", out);
	free(out);
	json_decref(ct_query(ARGS("trace", "no-such-id", "--data", data), 1));
	json_decref(log);
	ct_stop(s.pid);
}

/* ---- Latest state and statistics ---------------------------------------- */

static int
ct_key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * ct_latest is the newest event per key by hand: of type, keyed by
 * data.<field>, the one with the greatest ts (then the later in the
 * log), in key order.
 */
static json_t *
ct_latest(const json_t *log, const char *type, const char *field)
{
	json_t      *by  = json_object();
	json_t      *out = json_array();
	json_t      *all = ct_expect(log, type, NULL, NULL);
	const char  *key;
	size_t       i, n = 0;
	json_t      *j;
	const char **keys;

	// In ts then log order, so the last one seen per key is the newest.
	json_array_foreach(all, i, j)
	{
		if (ct_field(j, field) != NULL) {
			json_object_set(by, ct_field(j, field), j);
		}
	}
	keys = calloc(json_object_size(by) + 1, sizeof(*keys));
	cr_assert_not_null(keys);
	json_object_foreach(by, key, j)
	{
		keys[n++] = key;
	}
	qsort(keys, n, sizeof(*keys), ct_key_cmp);
	for (i = 0; i < n; i++) {
		json_array_append(out, json_object_get(by, keys[i]));
	}
	free(keys);
	json_decref(all);
	json_decref(by);
	return out;
}

Test(compactor, latest_state_follows_the_newest_event_per_key)
{
	static const struct {
		const char *kind, *type, *field;
	} kinds[] = {
		{ "balance", "balance_update", "user_id" },
		{ "account", "balance_update", "account_id" },
		{ "health", "system_health", "component" },
		{ "quote", "market_data", "symbol" },
	};
	ct_bus  s;
	char   *data = ct_path("data");
	char   *late = ct_path("late.jsonl");
	json_t *log;
	FILE   *f;

	ct_bus_start(&s, data, NULL, "run.err");
	ct_publish(&s, data, ct_gen("f", CT_BLOCKS, CT_T0));
	// Published last, but older than everything for u1: not the latest.
	// Newer than everything for u2 and for comp-1: the latest.
	cr_assert_not_null(f = fopen(late, "w"));
	fprintf(f,
	    "{\"type\":\"balance_update\",\"id\":\"old-u1\",\"ts\":%lld,"
	    "\"data\":{\"user_id\":\"u1\",\"balance\":1,\"equity\":1}}\n"
	    "{\"type\":\"balance_update\",\"id\":\"new-u2\",\"ts\":%lld,"
	    "\"data\":{\"user_id\":\"u2\",\"balance\":2,\"equity\":2,"
	    "\"account_id\":\"acct-9\"}}\n"
	    "{\"type\":\"system_health\",\"id\":\"new-c1\",\"ts\":%lld,"
	    "\"data\":{\"component\":\"comp-1\",\"status\":\"down\"}}\n",
	    CT_T0 - CT_DAY_NS, CT_T0 + CT_DAY_NS, CT_T0 + CT_DAY_NS);
	cr_assert_eq(fclose(f), 0);
	ct_publish(&s, data, late);
	log = ct_replay(data);
	ct_caught_up(data, (long long) json_array_size(log));
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		json_t *want = ct_latest(log, kinds[k].type, kinds[k].field);
		size_t  i;
		json_t *j;

		cr_assert_gt(json_array_size(want), 1);
		json_array_foreach(want, i, j)
		{
			const char *key = ct_field(j, kinds[k].field);
			json_t     *one = json_array();

			json_array_append(one, j);
			ct_check_query(ARGS("query", "latest", kinds[k].kind,
			                   key, "--data", data),
			    one, kinds[k].kind);
		}
		ct_check_query(
		    ARGS("query", "latest", kinds[k].kind, "--data", data),
		    want, kinds[k].kind);
		json_decref(ct_query(ARGS("query", "latest", kinds[k].kind,
		                         "nobody", "--data", data),
		    1));
	}
	json_t *u1 = ct_query(
	    ARGS("query", "latest", "balance", "u1", "--data", data), 0);
	json_t *u2 = ct_query(
	    ARGS("query", "latest", "balance", "u2", "--data", data), 0);

	cr_assert_str_neq(ct_str(json_array_get(u1, 0), "id"), "old-u1");
	cr_assert_str_eq(ct_str(json_array_get(u2, 0), "id"), "new-u2");
	json_decref(u1);
	json_decref(u2);
	json_decref(log);
	ct_stop(s.pid);
}

/* ct_minute writes the start of ts's minute as the stats print it. */
static void
ct_minute(long long ts, char *buf, size_t cap)
{
	char      day[32];
	time_t    secs = (time_t) (ts / 60000000000LL * 60);
	struct tm tm;

	cr_assert_not_null(gmtime_r(&secs, &tm));
	cr_assert_gt(strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm), 0);
	(void) snprintf(buf, cap, "%s.000Z", day);
}

/* ct_stats is `query stats` by hand: per minute and type (in type
 * order) the count, and for trades the volume. */
static json_t *
ct_stats(const json_t *log, const char *only)
{
	json_t *rows = json_array();
	json_t *by   = json_object(); // "minute type-index" -> row
	size_t  i;
	json_t *j;

	json_array_foreach(log, i, j)
	{
		const char *type = ct_str(j, "type");
		char        minute[40], key[64];
		json_t     *row;
		size_t      t;

		for (t = 0; t < CT_NTYPES && !ct_eq(ct_types[t], type); t++) {
		}
		if (only != NULL && !ct_eq(type, only)) {
			continue;
		}
		ct_minute(ct_ts(j), minute, sizeof(minute));
		(void) snprintf(key, sizeof(key), "%s %zu", minute, t);
		if ((row = json_object_get(by, key)) == NULL) {
			row = json_pack("{s:s, s:s, s:I}", "minute", minute,
			    "type", type, "count", (json_int_t) 0);
			if (strcmp(type, "trade_executed") == 0) {
				json_object_set_new(
				    row, "volume", json_real(0));
			}
			json_object_set_new(by, key, row);
		}
		json_object_set_new(row, "count",
		    json_integer(
		        json_integer_value(json_object_get(row, "count")) + 1));
		if (json_object_get(row, "volume") != NULL) {
			json_object_set_new(row, "volume",
			    json_real(json_number_value(
			                  json_object_get(row, "volume")) +
			        json_number_value(json_object_get(
			            json_object_get(j, "data"), "volume"))));
		}
	}
	{
		const char **keys =
		    calloc(json_object_size(by) + 1, sizeof(*keys));
		const char *key;
		size_t      n = 0;

		cr_assert_not_null(keys);
		json_object_foreach(by, key, j)
		{
			keys[n++] = key;
		}
		// ISO minutes and one-digit type indexes sort as text.
		qsort(keys, n, sizeof(*keys), ct_key_cmp);
		for (i = 0; i < n; i++) {
			json_array_append(rows, json_object_get(by, keys[i]));
		}
		free(keys);
	}
	json_decref(by);
	return rows;
}

/* ct_same_stats compares stats rows; volumes may differ in the last
 * bits, as they are summed in another order. */
static void
ct_same_stats(json_t *got, json_t *want)
{
	cr_assert_eq(json_array_size(got), json_array_size(want),
	    "%zu stats rows, expected %zu", json_array_size(got),
	    json_array_size(want));
	for (size_t i = 0; i < json_array_size(want); i++) {
		json_t *g  = json_array_get(got, i);
		json_t *w  = json_array_get(want, i);
		json_t *gv = json_object_get(g, "volume");
		json_t *wv = json_object_get(w, "volume");

		cr_assert_str_eq(ct_str(g, "minute"), ct_str(w, "minute"));
		cr_assert_str_eq(ct_str(g, "type"), ct_str(w, "type"));
		cr_assert_eq(ct_int(g, "count"), ct_int(w, "count"), "%s %s",
		    ct_str(w, "minute"), ct_str(w, "type"));
		cr_assert_eq(gv == NULL, wv == NULL);
		if (wv != NULL) {
			double d =
			    json_number_value(gv) - json_number_value(wv);

			cr_assert(d < 1e-9 && d > -1e-9, "volume %f, not %f",
			    json_number_value(gv), json_number_value(wv));
		}
	}
	json_decref(got);
	json_decref(want);
}

Test(compactor, stats_per_minute_equal_counts_from_replay)
{
	ct_bus   s;
	char    *data = ct_path("data");
	json_t  *log  = ct_load(&s, data);
	ct_range r    = { CT_T0 + 60000000000LL, CT_T0 + 180000000000LL, NULL };
	char     since[32], until[32];
	json_t  *want, *sub = json_array();
	size_t   i;
	json_t  *j;

	ct_same_stats(ct_query(ARGS("query", "stats", "--data", data), 0),
	    ct_stats(log, NULL));
	ct_same_stats(ct_query(ARGS("query", "stats", "--type",
	                           "trade_executed", "--data", data),
	                  0),
	    ct_stats(log, "trade_executed"));
	// Two whole minutes (CT_T0 is a minute's start).
	ct_iso(r.since, since, sizeof(since));
	ct_iso(r.until, until, sizeof(until));
	want = ct_expect(log, NULL, ct_keep_time, &r);
	json_array_foreach(want, i, j)
	{
		json_array_append(sub, j);
	}
	json_decref(want);
	ct_same_stats(ct_query(ARGS("query", "stats", "--since", since,
	                           "--until", until, "--data", data),
	                  0),
	    ct_stats(sub, NULL));
	json_decref(sub);
	json_decref(log);
	ct_stop(s.pid);
}

/* ---- Errors -------------------------------------------------------------- */

/* ct_fails runs evbus ARGS and expects exit 2 and msg in its stderr. */
static void
ct_fails(const char *const *args, const char *msg)
{
	char *out, *err;

	cr_assert_eq(ct_run(args, &out, &err), 2, "evbus %s %s: %s", args[0],
	    args[1], err);
	cr_assert(strstr(err, msg) != NULL, "evbus %s %s: no '%s' in: %s",
	    args[0], args[1], msg, err);
	cr_assert_str_empty(out);
	free(out);
	free(err);
}

Test(compactor, no_tables_unknown_type_and_bad_time_exit_2)
{
	ct_bus s;
	char  *empty = ct_path("empty");
	char  *data  = ct_path("data");
	char  *ex = evb_ts_path(evb_test_source_dir(), "examples/events.jsonl");
	char  *out;

	cr_assert_not_null(ex);
	// Nothing at all in the directory, then a log but no tables.
	ct_fails(
	    ARGS("query", "signal_generated", "--data", empty), "no tables");
	ct_fails(ARGS("trace", "x", "--data", empty), "no tables");
	ct_fails(ARGS("compact", "--data", empty), "cannot open the log");
	ct_bus_start(&s, data, ARGS("--no-compactor"), "run.err");
	ct_publish(&s, data, ex);
	ct_stop(s.pid);
	ct_fails(
	    ARGS("query", "signal_generated", "--data", data), "no tables");
	ct_fails(
	    ARGS("query", "latest", "balance", "--data", data), "no tables");
	ct_fails(ARGS("query", "stats", "--data", data), "no tables");
	ct_fails(ARGS("query", "status", "--data", data), "no tables");

	// compact makes the tables: then each bad argument is named.
	cr_assert_eq(ct_run(ARGS("compact", "--data", data), &out, NULL), 0);
	cr_assert(
	    strstr(out, "compacted: 8 records projected (8 events") != NULL,
	    "%s", out);
	free(out);
	ct_fails(ARGS("query", "nope", "--data", data), "unknown type 'nope'");
	ct_fails(ARGS("query", "stats", "--type", "nope", "--data", data),
	    "unknown type 'nope'");
	ct_fails(ARGS("query", "market_data", "--since", "yesterday", "--data",
	             data),
	    "--since: expected an ISO 8601");
	ct_fails(ARGS("query", "market_data", "--until", "2026-13-01T00:00:00Z",
	             "--data", data),
	    "--until: expected an ISO 8601");
	ct_fails(ARGS("query", "stats", "--since", "-5x", "--data", data),
	    "--since: expected an ISO 8601");
	ct_fails(
	    ARGS("query", "market_data", "--format", "xml", "--data", data),
	    "--format");
	ct_fails(ARGS("query", "market_data", "--limit", "0", "--data", data),
	    "--limit");
	ct_fails(ARGS("query", "latest", "nope", "--data", data),
	    "unknown table 'nope'");
	ct_fails(ARGS("query", "latest", "balance", "--desc", "--data", data),
	    "--desc does not apply");
	ct_fails(ARGS("query", "--data", data), "expected a type");
	ct_fails(ARGS("trace", "--data", data), "expected an ID");
	ct_fails(ARGS("query", "market_data", "extra", "--data", data),
	    "too many arguments");
	// What compact projected answers like replay.
	json_t *log = ct_replay(data);

	for (size_t t = 0; t < CT_NTYPES; t++) {
		ct_check_query(ARGS("query", ct_types[t], "--data", data),
		    ct_expect(log, ct_types[t], NULL, NULL), ct_types[t]);
	}
	json_decref(log);
	free(ex);
}

/*
 * query status names what it could not read in the tables, as the other
 * queries do with the compactor's diagnostic; it printed only "cannot
 * read the counters: Data corrupted". LMDB's mdb_load rewrites
 * meta.position (8 bytes, docs/tables.md) as 3.
 */
Test(compactor, status_names_the_damaged_record_of_the_tables)
{
	ct_bus s;
	char  *data   = ct_path("data");
	char  *in     = ct_path("meta.txt");
	char  *tables = evb_ts_path(data, "tables");
	char  *ex = evb_ts_path(evb_test_source_dir(), "examples/events.jsonl");
	char  *argv[] = { MDB_LOAD, "-T", "-s", "meta", tables, NULL };
	evb_ts_io io  = { in, NULL, NULL };
	int       code;

	cr_assert_not_null(ex);
	cr_assert_not_null(tables);
	ct_bus_start(&s, data, ARGS("--no-compactor"), "run.err");
	ct_publish(&s, data, ex);
	ct_stop(s.pid);
	cr_assert_eq(ct_run(ARGS("compact", "--data", data), NULL, NULL), 0);
	cr_assert_eq(evb_ts_file_write(in, "position\nabc\n", 13), EVB_OK);
	cr_assert_eq(evb_ts_run(ct_slot(), argv, &io,
	                 evb_ts_timeout_ms(CT_WAIT_MS), &code),
	    EVB_OK);
	cr_assert_eq(code, 0, "mdb_load failed");
	ct_fails(ARGS("query", "status", "--data", data),
	    "tables: meta.position: expected 8 bytes, got 3; rebuild the "
	    "tables");
	free(tables);
	free(in);
	free(ex);
}

/* ---- kill -9 ------------------------------------------------------------- */

#define CT_CRASH_ROUNDS 5
#define CT_CRASH_BLOCKS 150 /* 1800 events a round. */
#define CT_CRASH_MAX_DELAY_MS 400

/* ct_seed reads EVB_TEST_SEED, or draws a seed, and prints it. */
static unsigned
ct_seed(const char *what)
{
	const char *env  = getenv("EVB_TEST_SEED");
	unsigned    seed = env != NULL ? (unsigned) strtoul(env, NULL, 10)
	                               : (unsigned) evb_clock_mono_ns();

	cr_log_info("%s: seed %u", what, seed);
	fprintf(stderr, "compactor %s: seed %u\n", what, seed);
	srand(seed);
	return seed;
}

/* ct_publisher starts a publish of file in the background: confirmed
 * (one message of 20 events at a time, each stored before the next) or
 * fire and forget. */
static pid_t *
ct_publisher(
    const ct_bus *s, const char *file, bool confirm, const char *out_name)
{
	char     *argv[CT_MAX_ARGS + 2];
	char     *out = ct_path(out_name);
	evb_ts_io io  = { NULL, out, NULL };
	pid_t    *pid = ct_slot();

	if (confirm) {
		ct_argv(argv,
		    ARGS("publish", "--confirm", "--ingest", s->confirm,
		        "--batch", "20", file));
	} else {
		ct_argv(argv,
		    ARGS("publish", "--ingest", s->ingest, "--batch", "20",
		        file));
	}
	cr_assert_eq(evb_ts_spawn(pid, argv, &io), EVB_OK);
	free(out);
	return pid;
}

/* ct_copy copies directory from to to (cp -a: the files are closed). */
static void
ct_copy(const char *from, const char *to)
{
	char  *argv[] = { "/bin/cp", "-a", (char *) from, (char *) to, NULL };
	pid_t *pid    = ct_slot();
	int    code;

	cr_assert_eq(
	    evb_ts_run(pid, argv, NULL, evb_ts_timeout_ms(CT_WAIT_MS), &code),
	    EVB_OK);
	cr_assert_eq(code, 0, "cp -a %s %s failed", from, to);
}

/*
 * ct_dump_tables returns every DB of data/tables as `mdb_dump -a` prints
 * it (meta, rows, each index, latest state, minutes), less the map size
 * of the header lines, which differs between a grown map and a new one.
 */
static char *
ct_dump_tables(const char *data, const char *name)
{
	char     *dir    = evb_ts_path(data, "tables");
	char     *out    = ct_path(name);
	char     *argv[] = { "/usr/bin/mdb_dump", "-a", dir, NULL };
	evb_ts_io io     = { NULL, out, NULL };
	pid_t    *pid    = ct_slot();
	char     *text   = NULL, *w;
	size_t    len;
	int       code;

	cr_assert_eq(
	    evb_ts_run(pid, argv, &io, evb_ts_timeout_ms(CT_WAIT_MS), &code),
	    EVB_OK);
	cr_assert_eq(code, 0, "mdb_dump -a %s failed", dir);
	cr_assert_eq(evb_ts_file_read(out, &text, &len), EVB_OK);
	w = text;
	for (char *line = text; *line != '\0';) {
		char  *nl = strchr(line, '\n');
		size_t n = nl != NULL ? (size_t) (nl - line) + 1 : strlen(line);

		if (strncmp(line, "mapsize=", 8) != 0) {
			memmove(w, line, n);
			w += n;
		}
		line += n;
	}
	*w = '\0';
	free(dir);
	free(out);
	return text;
}

/*
 * ct_same_rows asserts evbus ARGS prints the same on data dirs a and b
 * (args[data_at] is replaced by each), row for row and byte for byte, and
 * returns a's lines as JSON.
 */
static json_t *
ct_same_rows(const char **args, int data_at, const char *a, const char *b)
{
	char    cmd[256] = "";
	char   *oa, *ob, *ea, *eb;
	int     ca, cb;
	bool    same;
	json_t *ra, *rb;

	// The command line for messages, without "--data DIR".
	for (int i = 0; i < data_at - 1; i++) {
		size_t len = strlen(cmd);

		(void) snprintf(cmd + len, sizeof(cmd) - len, "%s%s",
		    i == 0 ? "" : " ", args[i]);
	}
	args[data_at] = a;
	ca            = ct_run(args, &oa, &ea);
	args[data_at] = b;
	cb            = ct_run(args, &ob, &eb);
	cr_assert_eq(ca, cb, "evbus %s: exit %d and %d", cmd, ca, cb);
	cr_assert(ca == 0 || ca == 1, "evbus %s: %s", cmd, ea);
	same = strcmp(oa, ob) == 0;
	ra   = ct_lines(oa);
	rb   = ct_lines(ob);
	// Row by row first, for a message that names the row.
	ct_same(json_incref(ra), rb, cmd);
	cr_assert(same, "evbus %s differs after a rebuild", cmd);
	free(oa);
	free(ob);
	free(ea);
	free(eb);
	return ra;
}

/* ct_same_output asserts evbus ARGS prints the same on data dirs a and
 * b (args[data_at] is replaced by each). */
static void
ct_same_output(const char **args, int data_at, const char *a, const char *b)
{
	json_decref(ct_same_rows(args, data_at, a, b));
}

/* ct_keep_value keeps the events whose kv[0] (ct_value) is kv[1]. */
static bool
ct_keep_value(const json_t *ev, const void *arg)
{
	const char *const *kv = arg;
	char               buf[32];

	return ct_eq(ct_value(ev, kv[0], buf, sizeof(buf)), kv[1]);
}

/*
 * ct_check_rebuild_indexes asserts that `query TYPE --corr/--user/--symbol
 * KEY`, answered from the secondary indexes, is the same on data and on
 * its rebuilt copy, and what replay gives by hand: for the log's keys of
 * each (a sample of CT_KEY_SAMPLE when there are more) and every type
 * that has the field in the log. So a missing or doubled index entry
 * shows.
 */
static void
ct_check_rebuild_indexes(const json_t *log, const char *data, const char *copy)
{
	static const struct {
		const char *opt, *field;
	} filters[] = {
		{ "--corr", "corr" },
		{ "--user", "user_id" },
		{ "--symbol", "symbol" },
	};

	for (size_t f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
		unsigned types;
		json_t  *keys = ct_sample(
		     ct_keys(log, filters[f].field, &types), CT_KEY_SAMPLE);
		size_t  i;
		json_t *k;

		cr_assert_gt(json_array_size(keys), 0, "no %s in the log",
		    filters[f].field);
		json_array_foreach(keys, i, k)
		{
			const char *kv[2] = { filters[f].field,
				json_string_value(k) };

			for (size_t t = 0; t < CT_NTYPES; t++) {
				const char *args[] = { "query", ct_types[t],
					filters[f].opt, kv[1], "--data", NULL,
					NULL };
				char        what[160];

				if ((types & (1u << t)) == 0) {
					continue;
				}
				(void) snprintf(what, sizeof(what), "%s %s %s",
				    ct_types[t], filters[f].opt, kv[1]);
				ct_same(ct_same_rows(args, 5, data, copy),
				    ct_expect(
				        log, ct_types[t], ct_keep_value, kv),
				    what);
			}
		}
		json_decref(keys);
	}
}

/*
 * ct_check_rebuild_traces asserts that `trace ID` is the same on data and
 * on its rebuilt copy, and exactly the chain the log gives by hand
 * (ct_trace_want), for the log's signal_ids, command_ids and tickets (a
 * sample of CT_ID_SAMPLE of each when there are more).
 */
static void
ct_check_rebuild_traces(const json_t *log, const char *data, const char *copy)
{
	ct_link *links = ct_links(log);

	for (int f = 0; f < CT_NIDS; f++) {
		json_t *ids = ct_sample(
		    ct_keys(log, ct_id_fields[f], NULL), CT_ID_SAMPLE);
		size_t  i;
		json_t *id;

		cr_assert_gt(json_array_size(ids), 0, "no %s in the log",
		    ct_id_fields[f]);
		json_array_foreach(ids, i, id)
		{
			const char *args[] = { "trace", json_string_value(id),
				"--data", NULL, NULL };

			ct_same_steps(ct_same_rows(args, 3, data, copy),
			    ct_trace_want(log, links, json_string_value(id)),
			    json_string_value(id));
		}
		json_decref(ids);
	}
	free(links);
}

/*
 * ct_check_rebuild stops nothing: with every process of data stopped, it
 * copies data, rebuilds the copy's tables from its log, and asserts that
 * every query answers the same on both (by type, by each secondary index,
 * latest, stats) and so does trace, and that each type, index and trace
 * answers as the log does by hand.
 */
static void
ct_check_rebuild(const char *data, const char *copy_name)
{
	static const char *const kinds[] = { "balance", "account", "health",
		"quote" };
	char                    *copy    = ct_path(copy_name);
	json_t                  *log     = ct_replay(data);
	json_t                  *st      = ct_status(data);
	char                    *out;

	cr_assert_eq(ct_int(st, "position"), ct_int(st, "log_last"));
	cr_assert_eq(ct_int(st, "events"), (long long) json_array_size(log));
	cr_assert_eq(ct_int(st, "bad"), 0);
	cr_log_info("%zu events in the log, %lld gap records",
	    json_array_size(log), ct_int(st, "gaps"));
	json_decref(st);
	ct_copy(data, copy);
	cr_assert_eq(
	    ct_run(ARGS("compact", "--rebuild", "--data", copy), &out, NULL),
	    0);
	cr_assert(strstr(out, "rebuilt: ") != NULL, "%s", out);
	free(out);
	for (size_t t = 0; t < CT_NTYPES; t++) {
		const char *args[] = { "query", ct_types[t], "--data", NULL,
			NULL };

		ct_same_output(args, 3, data, copy);
		// No row missing, none doubled: the log's events, each once.
		ct_check_query(ARGS("query", ct_types[t], "--data", data),
		    ct_expect(log, ct_types[t], NULL, NULL), ct_types[t]);
	}
	for (size_t k = 0; k < 4; k++) {
		const char *args[] = { "query", "latest", kinds[k], "--data",
			NULL, NULL };

		ct_same_output(args, 4, data, copy);
	}
	{
		const char *args[] = { "query", "stats", "--data", NULL, NULL };

		ct_same_output(args, 3, data, copy);
	}
	ct_check_rebuild_indexes(log, data, copy);
	ct_check_rebuild_traces(log, data, copy);
	// And byte for byte, every entry of every DB: also the ones no
	// query reaches alone (a command_id entry, when trace can still
	// get to the command through its signal).
	{
		char *a = ct_dump_tables(data, "tables.dump");
		char *b = ct_dump_tables(copy, "rebuilt.dump");

		cr_assert(strstr(a, "database=ix.command_id\n") != NULL &&
		        strstr(a, "database=meta\n") != NULL,
		    "mdb_dump -a shows every DB");
		cr_assert(strcmp(a, b) == 0,
		    "mdb_dump -a of the tables and of their rebuild differ "
		    "(%zu and %zu bytes)",
		    strlen(a), strlen(b));
		free(a);
		free(b);
	}
	json_decref(log);
	free(copy);
}

Test(compactor, kill_9_of_run_under_load_leaves_tables_equal_to_a_rebuild)
{
	char *data = ct_path("data");
	char  tag[16], name[32];

	(void) ct_seed("kill -9 of run");
	for (int round = 0; round < CT_CRASH_ROUNDS; round++) {
		ct_bus s;
		pid_t *pub;
		long   delay = rand() % CT_CRASH_MAX_DELAY_MS;

		(void) snprintf(tag, sizeof(tag), "r%d", round);
		(void) snprintf(name, sizeof(name), "run%d.err", round);
		ct_bus_start(&s, data, ARGS("--durability", "none"), name);
		(void) snprintf(name, sizeof(name), "pub%d.out", round);
		pub = ct_publisher(&s,
		    ct_gen(tag, CT_CRASH_BLOCKS, CT_T0 + round * CT_DAY_NS),
		    true, name);
		if (round == 0) {
			// One round dies only once the compactor has
			// committed rows, so that it surely had some to lose.
			ct_wait_projected(data);
		}
		ct_sleep_ms(delay);
		cr_assert_eq(evb_ts_kill(s.pid), EVB_OK);
		(void) evb_ts_kill(pub);
	}
	// A clean start catches up; a clean stop leaves the files closed.
	ct_bus s;

	ct_bus_start(&s, data, NULL, "final.err");
	json_t *log = ct_replay(data);

	ct_caught_up(data, (long long) json_array_size(log));
	json_decref(log);
	ct_stop(s.pid);
	ct_check_rebuild(data, "copy");
}

Test(compactor, kill_9_of_the_compactor_process_loses_and_doubles_nothing)
{
	char  *data = ct_path("data");
	ct_bus s;
	pid_t *pub, *comp;
	char   name[32];
	int    status;
	int    code;

	(void) ct_seed("kill -9 of evbus compactor");
	ct_bus_start(&s, data, ARGS("--no-compactor", "--durability", "none"),
	    "run.err");
	comp = ct_compactor_start(data, "comp0.err");
	// Fire and forget: the test waits for the publisher to finish.
	pub = ct_publisher(
	    &s, ct_gen("k", 2 * CT_CRASH_BLOCKS, CT_T0), false, "pub.out");
	for (int round = 1; round <= CT_CRASH_ROUNDS; round++) {
		ct_sleep_ms(20 + rand() % CT_CRASH_MAX_DELAY_MS);
		cr_assert_eq(evb_ts_kill(comp), EVB_OK);
		(void) snprintf(name, sizeof(name), "comp%d.err", round);
		comp = ct_compactor_start(data, name);
	}
	cr_assert_eq(evb_ts_wait(pub, evb_ts_timeout_ms(CT_WAIT_MS), &status),
	    EVB_OK, "publish did not finish");
	code = evb_ts_exit_code(status);
	cr_assert_eq(code, 0, "publish exited with %d", code);
	ct_wait_stored(data, 2 * CT_CRASH_BLOCKS * CT_BLOCK);
	ct_caught_up(data, 2 * CT_CRASH_BLOCKS * CT_BLOCK);
	ct_stop(comp);
	ct_stop(s.pid);
	ct_check_rebuild(data, "copy");
}

/* ---- Every type: query all ----------------------------------------------- */

Test(compactor, query_all_gives_every_event_of_replay_in_ts_order)
{
	ct_bus      s;
	char       *data = ct_path("data");
	json_t     *log  = ct_load(&s, data);
	json_t     *st   = ct_status(data);
	json_t     *want = ct_expect(log, NULL, NULL, NULL);
	size_t      n    = json_array_size(want);
	const char *kv[2];
	json_t     *got, *part, *j;
	char        since[32], until[32], num[32], corr[32], *out;
	size_t      i, nl = 0;

	// Every event of the replay (gaps left out), each once, field for
	// field, in ts order then log order, of every type.
	cr_assert_eq(n, json_array_size(log));
	cr_assert_eq(ct_int(st, "events"), (long long) n);
	json_decref(st);
	got = ct_query(ARGS("query", "all", "--data", data), 0);
	for (size_t t = 0; t < CT_NTYPES; t++) {
		bool seen = false;

		json_array_foreach(got, i, j)
		{
			seen = seen || ct_eq(ct_str(j, "type"), ct_types[t]);
		}
		cr_assert(seen, "query all has no %s", ct_types[t]);
	}
	for (i = 1; i < json_array_size(got); i++) {
		cr_assert_geq(ct_ts(json_array_get(got, i)),
		    ct_ts(json_array_get(got, i - 1)), "row %zu", i);
	}
	ct_same(got, json_incref(want), "all");

	// Newest first is the exact reverse; a limit cuts either end.
	part = json_array();
	for (i = n; i-- > 0;) {
		json_array_append(part, json_array_get(want, i));
	}
	ct_check_query(
	    ARGS("query", "all", "--desc", "--data", data), part, "all --desc");
	part = json_array();
	for (i = 0; i < 7; i++) {
		json_array_append(part, json_array_get(want, i));
	}
	ct_check_query(ARGS("query", "all", "--limit", "7", "--data", data),
	    part, "all --limit 7");
	part = json_array();
	for (i = 0; i < 7; i++) {
		json_array_append(part, json_array_get(want, n - 1 - i));
	}
	ct_check_query(
	    ARGS("query", "--desc", "all", "--limit", "7", "--data", data),
	    part, "all --desc --limit 7");
	(void) snprintf(num, sizeof(num), "%zu", n + 5);
	ct_check_query(ARGS("query", "all", "--limit", num, "--data", data),
	    json_incref(want), "all --limit past the end");

	// A time range, alone, newest first with a limit, and empty.
	ct_range r = { CT_T0 + 10 * CT_BLOCK_NS, CT_T0 + 20 * CT_BLOCK_NS,
		NULL };

	ct_iso(r.since, since, sizeof(since));
	ct_iso(r.until, until, sizeof(until));
	ct_check_query(ARGS("query", "all", "--since", since, "--until", until,
	                   "--data", data),
	    ct_expect(log, NULL, ct_keep_time, &r), "all in a range");
	{
		json_t *in   = ct_expect(log, NULL, ct_keep_time, &r);
		size_t  m    = json_array_size(in);
		json_t *tail = json_array();

		cr_assert_gt(m, 5);
		for (i = 0; i < 5; i++) {
			json_array_append(tail, json_array_get(in, m - 1 - i));
		}
		json_decref(in);
		ct_check_query(
		    ARGS("query", "all", "--since", since, "--until", until,
		        "--desc", "--limit", "5", "--data", data),
		    tail, "all in a range --desc --limit 5");
	}
	r = (ct_range) { INT64_MIN, CT_T0 + 10 * CT_BLOCK_NS, NULL };
	ct_check_query(ARGS("query", "all", "--until", since, "--data", data),
	    ct_expect(log, NULL, ct_keep_time, &r), "all --until");
	ct_check_query(
	    ARGS("query", "all", "--until", "2000-01-01", "--data", data),
	    json_array(), "all before anything");

	// The filters of a typed query, over every type from their index.
	(void) snprintf(corr, sizeof(corr), "f-%d-0", 13);
	part = ct_expect(log, NULL, ct_keep_corr, corr);
	cr_assert_gt(json_array_size(part), 3);
	ct_check_query(ARGS("query", "all", "--corr", corr, "--data", data),
	    part, "all --corr");
	kv[0] = "user_id";
	kv[1] = "u2";
	ct_check_query(ARGS("query", "all", "--user", "u2", "--data", data),
	    ct_expect(log, NULL, ct_keep_data, kv), "all --user u2");
	kv[0] = "symbol";
	kv[1] = "GBPUSD";
	ct_check_query(
	    ARGS("query", "all", "--symbol", "GBPUSD", "--data", data),
	    ct_expect(log, NULL, ct_keep_data, kv), "all --symbol GBPUSD");
	r = (ct_range) { CT_T0 + 10 * CT_BLOCK_NS, CT_T0 + 20 * CT_BLOCK_NS,
		"GBPUSD" };
	{
		json_t *in = ct_expect(log, NULL, ct_keep_time, &r);
		json_t *u2 = json_array();

		json_array_foreach(in, i, j)
		{
			if (ct_eq(ct_field(j, "user_id"), "u2")) {
				json_array_append(u2, j);
			}
		}
		json_decref(in);
		cr_assert_gt(json_array_size(u2), 0);
		ct_check_query(
		    ARGS("query", "all", "--user", "u2", "--symbol", "GBPUSD",
		        "--since", since, "--until", until, "--data", data),
		    u2, "all --user u2 --symbol GBPUSD in a range");
	}

	// --explain names the index read, and an index read examines only
	// its key's rows: here GBPUSD's, of every type.
	{
		json_t *sym;
		char   *err = NULL;
		char    line[128];

		kv[0] = "symbol";
		kv[1] = "GBPUSD";
		sym   = ct_expect(log, NULL, ct_keep_data, kv);
		cr_assert_eq(ct_run(ARGS("query", "all", "--symbol", "GBPUSD",
		                        "--explain", "--data", data),
		                 NULL, &err),
		    0);
		(void) snprintf(line, sizeof(line),
		    "plan: ix.symbol, examined %zu, returned %zu\n",
		    json_array_size(sym), json_array_size(sym));
		cr_assert(
		    strstr(err, line) != NULL, "want %s in: %s", line, err);
		free(err);
		err = NULL;
		cr_assert_eq(ct_run(ARGS("query", "market_data", "--limit", "5",
		                        "--explain", "--data", data),
		                 NULL, &err),
		    0);
		cr_assert(strstr(err,
		              "plan: market_data, examined 5, "
		              "returned 5\n") != NULL,
		    "%s", err);
		free(err);
		json_decref(sym);
	}

	// --type is for stats: refused, naming it; the table has a type
	// and an id column and one line per event.
	ct_fails(ARGS("query", "all", "--type", "market_data", "--data", data),
	    "--type does not apply to 'query all'");
	cr_assert_eq(ct_run(ARGS("query", "all", "--format", "table", "--limit",
	                        "10", "--data", data),
	                 &out, NULL),
	    0);
	cr_assert(strncmp(out, "TIME", 4) == 0 && strstr(out, "TYPE") != NULL &&
	        strstr(out, " ID ") != NULL,
	    "%s", out);
	for (char *p = out; *p != '\0'; p++) {
		nl += *p == '\n';
	}
	cr_assert_eq(nl, 11, "%s", out);
	for (i = 0; i < 10; i++) {
		j = json_array_get(want, i);
		cr_assert(strstr(out, ct_str(j, "type")) != NULL &&
		        strstr(out, ct_str(j, "id")) != NULL,
		    "no %s in: %s", ct_str(j, "id"), out);
	}
	free(out);
	json_decref(want);
	json_decref(log);
	ct_stop(s.pid);
}
