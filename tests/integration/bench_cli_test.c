/*
 * bench_cli_test.c: `evbus bench` against a real `evbus run` (issue #4):
 * every event it sends, fire and forget or confirmed, is counted durable
 * and is in the log; events that never reach the log it reads are
 * reported lost with exit status 1; bad usage exits 2; and an overload
 * against a tiny ring loses events to gap records, never silently.
 *
 * The runs are short, most of them slow (hundreds of events per second;
 * the overload runs unpaced for 2 s), and no figure of speed is
 * asserted: only counts. The bus is started on free
 * ports (never 5570-5573), ready when its stderr holds EVB-RUN-READY, and
 * killed by PID in .fini.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/collector.h"
#include "tests/support/support.h"
#include "wal/wal.h"

#define BT_TEST_TIMEOUT_S 120 /* criterion's limit, every test. */
#define BT_WAIT_MS 30000      /* Any one wait or run; scaled by the env. */
#define BT_POLL_NS 20000000L  /* Pause between two looks: 20 ms. */
#define BT_MAX_PIDS 8         /* Processes one test may start. */
#define BT_MAX_ARGS 24        /* Arguments of one evbus command. */
#define BT_ATTEMPTS 8         /* Port picks before giving up. */

/* The running bus: its URLs and log. */
typedef struct bt_bus {
	char        ingest[64];  /* Fire-and-forget ingest. */
	char        confirm[64]; /* Confirmed ingest. */
	char       *data;        /* The log's directory. */
	const char *ring;        /* --ring, or NULL for the default. */
} bt_bus;

static char *bt_dir;
static int   bt_code; /* The last bt_bench's exit code. */
static pid_t bt_pids[BT_MAX_PIDS];
static int   bt_npids;
static int   bt_nruns;

static void
bt_setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&bt_dir), EVB_OK);
	cr_assert_not_null(evb_test_bin(), "EVB_BIN is not set");
}

static void
bt_teardown(void)
{
	for (int i = 0; i < bt_npids; i++) {
		(void) evb_ts_kill(&bt_pids[i]);
	}
	bt_npids = 0;
	(void) evb_ts_tmpdir_remove(bt_dir);
	bt_dir = NULL;
}

TestSuite(bench_cli, .init = bt_setup, .fini = bt_teardown,
    .timeout = BT_TEST_TIMEOUT_S);

#define ARGS(...) ((const char *const[]) { __VA_ARGS__, NULL })

static char *
bt_path(const char *name)
{
	char *p = evb_ts_path(bt_dir, name);

	cr_assert_not_null(p);
	return p;
}

static pid_t *
bt_slot(void)
{
	cr_assert_lt(bt_npids, BT_MAX_PIDS);
	return &bt_pids[bt_npids++];
}

/* bt_argv builds "evbus ARGS..." into argv. */
static void
bt_argv(char *argv[BT_MAX_ARGS + 2], const char *const *args)
{
	cr_assert_eq(evb_ts_evbus_argv(argv, BT_MAX_ARGS + 2, args), EVB_OK,
	    "more than %d arguments", BT_MAX_ARGS);
}

/* bt_run runs evbus ARGS to its end; returns its exit code and stdout
   (its stderr is in bt_err_text's file). */
static int
bt_run(const char *const *args, char **out)
{
	char      name[32];
	char     *argv[BT_MAX_ARGS + 2];
	evb_ts_io io = { NULL, NULL, NULL };
	size_t    len;
	int       code;
	pid_t    *pid;

	bt_argv(argv, args);
	(void) snprintf(name, sizeof(name), "cmd%d.err", bt_nruns);
	io.stderr_path = bt_path(name);
	(void) snprintf(name, sizeof(name), "cmd%d.out", bt_nruns++);
	io.stdout_path = bt_path(name);
	pid            = bt_slot();
	cr_assert_eq(
	    evb_ts_run(pid, argv, &io, evb_ts_timeout_ms(BT_WAIT_MS), &code),
	    EVB_OK, "evbus %s did not finish", args[0]);
	bt_npids--; // It was reaped: give the slot back.
	if (out != NULL) {
		cr_assert_eq(
		    evb_ts_file_read(io.stdout_path, out, &len), EVB_OK);
	}
	return code;
}

/* bt_err_text returns what the last bt_run wrote on stderr (malloc'd). */
static char *
bt_err_text(void)
{
	char   name[32];
	char  *text;
	size_t len;

	(void) snprintf(name, sizeof(name), "cmd%d.err", bt_nruns - 1);
	cr_assert_eq(evb_ts_file_read(bt_path(name), &text, &len), EVB_OK);
	return text;
}

/* bt_try starts `evbus run` on fresh ports; false if one was taken. */
static bool
bt_try(bt_bus *b, const char *err_path)
{
	char      urls[4][64];
	char     *argv[BT_MAX_ARGS + 2];
	evb_ts_io io  = { NULL, NULL, err_path };
	uint64_t  end = evb_clock_mono_ms() + evb_ts_timeout_ms(BT_WAIT_MS);
	pid_t    *pid = bt_slot();
	int       status;

	for (int i = 0; i < 4; i++) {
		uint16_t port;

		cr_assert_eq(evb_ts_port_pick(&port), EVB_OK);
		(void) snprintf(urls[i], sizeof(urls[i]), "tcp://127.0.0.1:%u",
		    (unsigned) port);
	}
	bt_argv(argv,
	    ARGS("run", "--data", b->data, "--pub", urls[0], "--ingest",
	        urls[1], "--confirm", urls[2], "--ctl", urls[3], "--heartbeat",
	        "0", "--stats-log", "0", "--ring",
	        b->ring != NULL ? b->ring : "256M"));
	cr_assert_eq(evb_ts_spawn(pid, argv, &io), EVB_OK);
	while (!evb_ts_file_has(err_path, "EVB-RUN-READY")) {
		struct timespec pause = { 0, BT_POLL_NS };

		if (evb_ts_wait(pid, 0, &status) == EVB_OK) {
			cr_assert(evb_ts_file_has(err_path, "in use"),
			    "evbus run exited with %d",
			    evb_ts_exit_code(status));
			bt_npids--;
			return false;
		}
		cr_assert_lt(evb_clock_mono_ms(), end, "no EVB-RUN-READY");
		(void) nanosleep(&pause, NULL);
	}
	memcpy(b->ingest, urls[1], sizeof(b->ingest));
	memcpy(b->confirm, urls[2], sizeof(b->confirm));
	return true;
}

/* bt_bus_start starts `evbus run` with its log in <tmp>/data; b->ring
   (NULL for the default) is its --ring. */
static void
bt_bus_start(bt_bus *b)
{
	b->data = bt_path("data");
	for (int i = 0; i < BT_ATTEMPTS; i++) {
		if (bt_try(b, bt_path("run.err"))) {
			return;
		}
	}
	cr_assert_fail("no free ports after %d attempts", BT_ATTEMPTS);
}

/* bt_bench runs `evbus bench ... --json`; returns the parsed report.
   want_code -1 takes 0 or 1 (lost events); bt_code says which. */
static json_t *
bt_bench(const char *const *args, int want_code)
{
	const char *all[BT_MAX_ARGS + 1] = { "bench", "--json" };
	int         n                    = 2;
	char       *out;
	json_t     *j;

	for (; *args != NULL; args++) {
		cr_assert_lt(n, BT_MAX_ARGS);
		all[n++] = *args;
	}
	all[n]  = NULL;
	bt_code = bt_run(all, &out);
	if (want_code >= 0) {
		cr_assert_eq(bt_code, want_code);
	} else {
		cr_assert(bt_code == 0 || bt_code == 1, "exit %d", bt_code);
	}
	j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "bench printed no JSON object: %s", out);
	free(out);
	return j;
}

static json_int_t
bt_int(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	cr_assert(json_is_integer(v), "no integer '%s' in the report", key);
	return json_integer_value(v);
}

/* bt_in_log counts the events in the log whose id starts with tag. */
static json_int_t
bt_in_log(const char *data, const char *tag)
{
	char       needle[64];
	char      *out;
	char      *p;
	json_int_t n = 0;

	(void) snprintf(needle, sizeof(needle), "\"id\":\"%s", tag);
	cr_assert_eq(bt_run(ARGS("replay", "--data", data), &out), 0);
	for (p = out; (p = strstr(p, needle)) != NULL; p++) {
		n++;
	}
	free(out);
	return n;
}

static double
bt_real(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	cr_assert(json_is_real(v), "no number '%s' in the report", key);
	return json_real_value(v);
}

/* bt_check asserts a clean run: all sent is durable, once, in the log. */
static void
bt_check(json_t *j, const char *data)
{
	json_int_t sent = bt_int(j, "sent");

	cr_assert_gt(sent, 0);
	cr_assert_eq(bt_int(j, "lost"), 0);
	cr_assert_eq(bt_int(j, "durable"), sent);
	cr_assert_eq(bt_int(j, "duplicates"), 0);
	cr_assert_eq(bt_int(j, "gaps"), 0);
	cr_assert_eq(
	    bt_in_log(data, json_string_value(json_object_get(j, "tag"))), sent,
	    "the log does not hold what bench counted durable");
	// The bench's own CPU: some was spent, and per event is its share.
	cr_assert_gt(bt_real(j, "cpu_s"), 0);
	cr_assert_float_eq(bt_real(j, "cpu_us_per_event"),
	    bt_real(j, "cpu_s") * 1e6 / (double) sent, 1e-6);
}

/* ---- Tests ---------------------------------------------------------------
 */

Test(bench_cli, fire_and_forget_every_event_is_durable)
{
	bt_bus  b = { .ring = NULL };
	json_t *j;

	bt_bus_start(&b);
	j = bt_bench(
	    ARGS("--producers", "2", "--batch", "16", "--rate", "2000",
	        "--duration", "2", "--ingest", b.ingest, "--data", b.data),
	    0);
	bt_check(j, b.data);
	cr_assert_eq(json_is_false(json_object_get(j, "confirm")), true);
	// Paced: no more than the events of the messages due in 2 s (4000
	// here: each producer's 125 messages of 16, one every 16 ms), sent
	// over about 2 s. A message due after the end is not sent, and one
	// still unsent at the end is not either, hence the loose lower bound.
	cr_assert_leq(bt_int(j, "sent"), 4000);
	cr_assert_geq(bt_int(j, "sent"), 2000);
	cr_assert_geq(bt_real(j, "send_s"), 1.9);
	json_decref(j);
	// Messages 0.5 ms apart, where a producer sends those due within
	// 1 ms at once: still no more than the 2000 messages of 8 due in 1 s,
	// and none sent more than 1 ms before its turn, so over about 1 s.
	j = bt_bench(
	    ARGS("--producers", "1", "--batch", "8", "--rate", "16000",
	        "--duration", "1", "--ingest", b.ingest, "--data", b.data),
	    0);
	bt_check(j, b.data);
	cr_assert_leq(bt_int(j, "sent"), 16000);
	cr_assert_geq(bt_int(j, "sent"), 8000);
	cr_assert_geq(bt_real(j, "send_s"), 0.95);
	json_decref(j);
}

Test(bench_cli, confirmed_every_event_is_replied_and_durable)
{
	bt_bus  b = { .ring = NULL };
	json_t *j;

	bt_bus_start(&b);
	// A first run leaves events in the log; the second counts its own.
	j = bt_bench(ARGS("--batch", "1", "--rate", "300", "--duration", "1",
	                 "--ingest", b.ingest, "--data", b.data),
	    0);
	json_decref(j);
	j = bt_bench(
	    ARGS("--confirm", "--batch", "4", "--rate", "800", "--duration",
	        "2", "--confirm-url", b.confirm, "--data", b.data),
	    0);
	bt_check(j, b.data);
	cr_assert_eq(bt_int(j, "rejected"), 0);
	cr_assert_eq(bt_int(j, "unanswered"), 0);
	cr_assert(json_is_object(json_object_get(j, "confirm_latency_us")));
	json_decref(j);
}

Test(bench_cli, events_missing_from_the_log_are_lost_exit_1)
{
	bt_bus       b = { .ring = NULL };
	evb_wal     *w;
	evb_wal_opts o;
	char        *other = bt_path("other");
	json_t      *j;

	// An empty log that the bus does not write: nothing sent lands.
	evb_wal_opts_default(&o);
	o.durability = EVB_WAL_NONE;
	cr_assert_eq(evb_wal_open(&w, other, &o, NULL), EVB_OK);
	evb_wal_close(w);
	bt_bus_start(&b);
	j = bt_bench(ARGS("--rate", "200", "--duration", "1", "--ingest",
	                 b.ingest, "--data", other),
	    1);
	cr_assert_gt(bt_int(j, "sent"), 0);
	cr_assert_eq(bt_int(j, "lost"), bt_int(j, "sent"));
	cr_assert_eq(bt_int(j, "durable"), 0);
	json_decref(j);
}

/*
 * Overload: two unpaced producers against a ring of 128 KiB (about 400
 * frames), which evicts long before the collector can store what they
 * send, so the in-process collector falls behind it again and again and
 * resumes ahead of its eviction (collector.c, local_behind). Whatever was
 * lost, nothing is lost silently: the log holds every seq from 1 to the
 * last exactly once and in order, as an event or inside a gap record;
 * the events are what bench counted durable and the gap records' seqs
 * what it counted lost. (If this machine stored everything, the same
 * holds with no gap record.)
 */
Test(bench_cli, overload_with_a_tiny_ring_accounts_for_every_seq)
{
	bt_bus        b = { .ring = "128K" };
	evb_wal_opts  o;
	evb_wal      *w;
	evb_wal_iter *it;
	evb_wal_entry e;
	json_t       *j;
	uint64_t      next = 1, events = 0, in_gaps = 0, gaps = 0;
	uint64_t      epoch = 0;

	bt_bus_start(&b);
	j = bt_bench(ARGS("--producers", "2", "--batch", "64", "--duration",
	                 "2", "--ingest", b.ingest, "--data", b.data),
	    -1);
	cr_assert_eq(bt_code, bt_int(j, "lost") > 0 ? 1 : 0);
	cr_assert_gt(bt_int(j, "sent"), 0);
	cr_assert_eq(
	    bt_int(j, "durable") + bt_int(j, "lost"), bt_int(j, "sent"));
	cr_assert_eq(bt_int(j, "duplicates"), 0);

	evb_wal_opts_default(&o);
	o.read_only = true;
	cr_assert_eq(evb_wal_open(&w, b.data, &o, NULL), EVB_OK);
	cr_assert_eq(evb_wal_iter_open(w, 1, &it), EVB_OK);
	while (evb_wal_iter_next(it, &e) == EVB_OK) {
		epoch = epoch != 0 ? epoch : e.epoch;
		cr_assert_eq(e.epoch, epoch, "one broker, one epoch");
		if (e.type == EVB_COLLECTOR_GAP_TYPE) {
			uint64_t ge, f, l;

			cr_assert_eq(evb_collector_gap_decode(
			                 e.payload, e.len, &ge, &f, &l),
			    EVB_OK);
			cr_assert_eq(f, next, "gap from %llu, expected %llu",
			    (unsigned long long) f, (unsigned long long) next);
			cr_assert(l >= f && l == e.seq);
			in_gaps += l - f + 1;
			gaps++;
			next = l + 1;
		} else {
			cr_assert_eq(e.seq, next, "seq %llu, expected %llu",
			    (unsigned long long) e.seq,
			    (unsigned long long) next);
			events++;
			next++;
		}
	}
	evb_wal_iter_close(it);
	evb_wal_close(w);
	cr_assert_eq(next - 1, (uint64_t) bt_int(j, "sent"),
	    "the log covers seqs 1..%llu, bench sent %lld",
	    (unsigned long long) (next - 1), (long long) bt_int(j, "sent"));
	cr_assert_eq(events, (uint64_t) bt_int(j, "durable"));
	cr_assert_eq(in_gaps, (uint64_t) bt_int(j, "lost"));
	cr_assert_eq(gaps > 0, bt_code == 1);
	cr_log_info("overload: %llu events stored, %llu in %llu gap records",
	    (unsigned long long) events, (unsigned long long) in_gaps,
	    (unsigned long long) gaps);
	json_decref(j);
}

Test(bench_cli, bad_usage_no_log_or_no_bus_exit_2)
{
	char    *none = bt_path("none");
	char    *data = bt_path("data");
	char     url[64];
	uint16_t port;
	evb_wal *w;

	cr_assert_eq(bt_run(ARGS("bench", "--producers", "0"), NULL), 2);
	cr_assert_eq(bt_run(ARGS("bench", "--batch", "10001"), NULL), 2);
	cr_assert_eq(bt_run(ARGS("bench", "--rate", "fast"), NULL), 2);
	cr_assert_eq(bt_run(ARGS("bench", "--duration", "0"), NULL), 2);
	cr_assert_eq(bt_run(ARGS("bench", "--nope"), NULL), 2);
	cr_assert_eq(bt_run(ARGS("bench", "operand"), NULL), 2);
	// No log in DIR.
	cr_assert_eq(
	    bt_run(ARGS("bench", "--duration", "1", "--data", none), NULL), 2);
	// A log, but nothing listens at the ingest URL.
	cr_assert_eq(evb_wal_open(&w, data, NULL, NULL), EVB_OK);
	evb_wal_close(w);
	cr_assert_eq(evb_ts_port_pick(&port), EVB_OK);
	(void) snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	cr_assert_eq(bt_run(ARGS("bench", "--duration", "1", "--data", data,
	                        "--ingest", url),
	                 NULL),
	    2);
}

/*
 * A bench aimed at an endpoint of another protocol (here the confirmed
 * ingest, rep0, for fire-and-forget producers) is connected to and then
 * refused in silence by nng: it says that nothing there took its
 * messages, and which endpoint it should be, instead of a bare
 * "Timed out".
 */
Test(bench_cli, a_wrong_endpoint_is_named_with_the_ingest_default,
    .timeout = 120)
{
	bt_bus b = { 0 };
	char   want[128];
	char  *err;

	bt_bus_start(&b);
	cr_assert_eq(bt_run(ARGS("bench", "--duration", "1", "--data", b.data,
	                        "--ingest", b.confirm),
	                 NULL),
	    2);
	err = bt_err_text();
	(void) snprintf(
	    want, sizeof(want), "nothing at %s took it within 10 s", b.confirm);
	cr_assert_not_null(strstr(err, want), "%s", err);
	cr_assert_not_null(
	    strstr(err, "default tcp://127.0.0.1:5571"), "%s", err);
	free(err);
}
