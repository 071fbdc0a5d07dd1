/*
 * compactor_restart_test.c: the compactor's position and life cycle. A
 * restart resumes exactly where the last commit left off, also after a
 * kill -9 in the middle of projecting (the position commits with its
 * rows); a rebuild gives the same tables as incremental projection; the
 * thread catches up and keeps the WAL cursor, and waits while its hold
 * says so; retention's removals are counted as missed; and every error
 * the header lists. Issue #5.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/compactor_testlib.h"

static char          *tmp;
static evb_wal       *wal;
static ctl_log        lg;
static evb_compactor *comp;

/* poll_pause waits a millisecond between looks at a condition. */
static void
poll_pause(void)
{
	struct timespec ts = { 0, 1000000 };

	(void) nanosleep(&ts, NULL);
}

static evb_wal *
wal_open(bool read_only, uint64_t retain_bytes)
{
	evb_wal_opts o;
	evb_wal     *w = NULL;
	evb_diag     d = { "" };

	evb_wal_opts_default(&o);
	o.durability   = EVB_WAL_NONE;
	o.read_only    = read_only;
	o.retain_bytes = retain_bytes;
	cr_assert_eq(evb_wal_open(&w, tmp, &o, &d), EVB_OK, "%s", d.msg);
	return (w);
}

static void
setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&tmp), EVB_OK);
	wal = wal_open(false, 0);
	ctl_log_init(&lg, 11);
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

TestSuite(compactor_restart, .init = setup, .fini = teardown, .timeout = 120);

static evb_compactor *
comp_open(bool rebuild)
{
	evb_compactor_opts o;
	evb_compactor     *c = NULL;
	evb_diag           d = { "" };

	evb_compactor_opts_default(&o);
	o.sync    = false;
	o.rebuild = rebuild;
	cr_assert_eq(
	    evb_compactor_open(&c, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	return (c);
}

static evb_compactor_stat
comp_stat(evb_compactor *c)
{
	evb_compactor_stat st;

	cr_assert_eq(evb_compactor_stats(c, &st), EVB_OK);
	return (st);
}

static uint64_t
comp_position(evb_compactor *c)
{
	return (comp_stat(c).position);
}

/* dump closes comp (if open) and dumps the tables into out. */
static void
dump(evb_buf *out)
{
	evb_compactor_tables *t;
	evb_diag              d = { "" };

	evb_compactor_close(comp);
	comp = NULL;
	cr_assert_eq(
	    evb_compactor_tables_open(&t, tmp, &d), EVB_OK, "%s", d.msg);
	ctl_dump(t, out);
	evb_compactor_tables_close(t);
}

/* dump_rebuilt dumps the tables as a rebuild from the log makes them. */
static void
dump_rebuilt(evb_buf *out)
{
	evb_diag d = { "" };

	comp = comp_open(false);
	cr_assert_eq(evb_compactor_rebuild(comp, &d), EVB_OK, "%s", d.msg);
	dump(out);
}

static void
expect_same(const evb_buf *a, const evb_buf *b)
{
	cr_assert_gt(a->len, 1000);
	cr_assert_eq(
	    a->len, b->len, "dumps differ in length: %zu, %zu", a->len, b->len);
	cr_assert_eq(memcmp(a->data, b->data, a->len), 0, "dumps differ");
}

Test(compactor_restart, reopen_resumes_at_the_committed_position)
{
	evb_buf a, b;
	size_t  done;

	ctl_append_events(wal, &lg, 1000, -1);
	comp = comp_open(false);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(
		    evb_compactor_step(comp, 100, &done, NULL), EVB_OK);
		cr_assert_eq(done, 100);
	}
	evb_compactor_close(comp);
	comp = comp_open(false);
	cr_assert_eq(comp_position(comp), 300);
	ctl_project(comp, 128);
	cr_assert_eq(comp_position(comp), 1000);
	dump(&a);
	dump_rebuilt(&b);
	expect_same(&a, &b);
	evb_buf_fini(&a);
	evb_buf_fini(&b);
}

/* How long a crash child waits for its thread's first commit. */
#define CRASH_COMMIT_WAIT_MS 30000

/*
 * crash_thread_commit starts c's thread and returns once the thread has
 * committed: once the position has moved past where it was, which after
 * earlier rounds is not 0. It runs in the child, so it fails with an exit
 * status for the parent to report, never with cr_assert: 6 when stats or
 * start fail, 7 when nothing is committed within CRASH_COMMIT_WAIT_MS.
 */
static void
crash_thread_commit(evb_compactor *c)
{
	evb_compactor_stat st;
	uint64_t           from;
	uint64_t           deadline;

	if (evb_compactor_stats(c, &st) != EVB_OK ||
	    evb_compactor_start(c) != EVB_OK) {
		_exit(6);
	}
	from = st.position;
	deadline =
	    evb_clock_mono_ms() + evb_ts_timeout_ms(CRASH_COMMIT_WAIT_MS);
	for (;;) {
		if (evb_compactor_stats(c, &st) != EVB_OK) {
			_exit(6);
		}
		if (st.position > from) {
			return;
		}
		if (evb_clock_mono_ms() >= deadline) {
			_exit(7);
		}
		poll_pause();
	}
}

/*
 * crash_child projects in steps of step records, in a child process that
 * opens its own WAL handle, and kills itself with SIGKILL after steps
 * steps (or, with steps 0, after its thread has committed a batch of its
 * own, crash_thread_commit): no close, no flush. A child that fails
 * before the kill exits with a status from 3 up instead.
 */
static void
crash_child(int steps, size_t step)
{
	pid_t pid;
	int   status;

	evb_wal_close(wal); // No handle may cross a fork().
	wal = NULL;
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		evb_compactor_opts o;
		evb_compactor     *c;
		evb_wal           *w = wal_open(false, 0);

		evb_compactor_opts_default(&o);
		o.sync          = false;
		o.batch_records = (uint32_t) step;
		if (evb_compactor_open(&c, w, tmp, &o, NULL) != EVB_OK) {
			_exit(3);
		}
		for (int i = 0; i < steps; i++) {
			if (evb_compactor_step(c, step, NULL, NULL) != EVB_OK) {
				_exit(4);
			}
		}
		if (steps == 0) {
			crash_thread_commit(c);
		}
		(void) raise(SIGKILL);
		_exit(5);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "child status %d (exit code %d)", status,
	    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	wal = wal_open(false, 0);
}

Test(compactor_restart, kill_9_mid_projection_resumes_without_loss_or_doubles)
{
	static const int steps[] = { 1, 4, 0, 2 };
	evb_buf          a, b;
	uint64_t         pos = 0;
	uint64_t         end;

	ctl_append_events(wal, &lg, 600, -1);
	ctl_append_gap(wal, &lg, 4, 8);
	ctl_append_events(wal, &lg, 600, -1);
	end = lg.ev[lg.n - 1].off;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		uint64_t now, want;

		crash_child(steps[i], 97);
		comp = comp_open(false);
		now  = comp_position(comp);
		// Each step commits 97 records, up to the end of the log.
		want = pos + 97 * (uint64_t) steps[i];
		want = want < end ? want : end;
		cr_assert_geq(now, pos, "the position never goes back");
		cr_assert(steps[i] == 0 || now == want,
		    "crash %zu: position %llu after %llu", i,
		    (unsigned long long) now, (unsigned long long) pos);
		// The thread died after a commit of its own: it moved.
		cr_assert(steps[i] != 0 || now > pos,
		    "crash %zu: the thread committed nothing after %llu", i,
		    (unsigned long long) pos);
		pos = now;
		evb_compactor_close(comp);
		comp = NULL;
	}
	comp = comp_open(false);
	ctl_project(comp, 500);
	dump(&a);
	dump_rebuilt(&b);
	expect_same(&a, &b);
	evb_buf_fini(&a);
	evb_buf_fini(&b);
}

Test(compactor_restart, rebuild_equals_incremental_projection)
{
	evb_buf            a, b;
	evb_compactor_stat st;

	ctl_append_events(wal, &lg, 700, -1);
	comp = comp_open(false);
	ctl_project(comp, 37);
	ctl_append_junk(wal, &lg);
	ctl_append_gap(wal, &lg, 1, 2);
	ctl_append_events(wal, &lg, 700, -1);
	ctl_project(comp, 1);
	cr_assert_eq(evb_compactor_step(comp, 5, NULL, NULL), EVB_OK);
	ctl_project(comp, 4096);
	cr_assert_eq(evb_compactor_stats(comp, &st), EVB_OK);
	cr_assert_eq(st.events, 1400);
	cr_assert_eq(st.gaps, 1);
	cr_assert_eq(st.bad, 1);
	dump(&a);
	dump_rebuilt(&b);
	expect_same(&a, &b);
	// A rebuild at open (opts.rebuild) too.
	evb_buf_fini(&b);
	comp = comp_open(true);
	cr_assert_eq(comp_position(comp), 0);
	ctl_project(comp, 999);
	dump(&b);
	expect_same(&a, &b);
	evb_buf_fini(&a);
	evb_buf_fini(&b);
}

Test(compactor_restart, tables_open_without_tables_is_enotfound)
{
	evb_compactor_tables *t = NULL;
	evb_diag              d = { "" };
	char                 *dir;

	cr_assert_eq(evb_compactor_tables_open(&t, tmp, &d), EVB_ENOTFOUND);
	cr_assert_neq(strstr(d.msg, "no tables yet"), NULL, "%s", d.msg);
	dir = evb_ts_path(tmp, EVB_COMPACTOR_DIR);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(evb_compactor_tables_open(&t, tmp, &d), EVB_ENOTFOUND);
	free(dir);
	cr_assert_null(t);
	cr_assert_eq(evb_compactor_tables_open(&t, NULL, &d), EVB_EINVAL);
}

/* task_nice finds the thread called name in this process and returns
 * its nice value (field 19 of its stat), or 100 if there is none. */
static int
task_nice(const char *name)
{
	DIR           *dir = opendir("/proc/self/task");
	struct dirent *de;
	int            nice = 100;

	cr_assert_not_null(dir);
	while (nice == 100 && (de = readdir(dir)) != NULL) {
		char  path[300], comm[32] = "", stat[512] = "";
		FILE *f;

		if (de->d_name[0] == '.') {
			continue;
		}
		(void) snprintf(
		    path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		if ((f = fopen(path, "r")) == NULL) {
			continue;
		}
		if (fgets(comm, sizeof(comm), f) == NULL) {
			comm[0] = '\0';
		}
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, name) != 0) {
			continue;
		}
		(void) snprintf(
		    path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		cr_assert_not_null(f = fopen(path, "r"));
		cr_assert_not_null(fgets(stat, sizeof(stat), f));
		fclose(f);
		// After the ")" that ends comm come state (field 3) and 16
		// numbers, of which nice (field 19) is the last.
		{
			const char *p = strrchr(stat, ')');
			long        v[17];

			cr_assert_not_null(p);
			cr_assert_eq(
			    sscanf(p + 2,
			        "%*c %ld %ld %ld %ld %ld %ld %ld %ld "
			        "%ld %ld %ld %ld %ld %ld %ld %ld",
			        &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			        &v[7], &v[8], &v[9], &v[10], &v[11], &v[12],
			        &v[13], &v[14], &v[15]),
			    16);
			nice = (int) v[15];
		}
	}
	closedir(dir);
	return (nice);
}

Test(compactor_restart, thread_runs_named_and_at_the_nice_asked)
{
	evb_compactor_opts o;
	evb_diag           d    = { "" };
	int                base = getpriority(PRIO_PROCESS, 0);
	int                got  = 100;
	uint64_t           deadline;

	evb_compactor_opts_default(&o);
	o.sync = false;
	o.nice = 7;
	cr_assert_eq(
	    evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_compactor_start(comp), EVB_OK);
	// The thread names itself and lowers its priority as it starts.
	deadline = evb_clock_mono_ms() + 5000;
	while ((got = task_nice("evb:compactor")) != base + 7 &&
	    evb_clock_mono_ms() < deadline) {
		nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
	}
	cr_assert_eq(got, base + 7 > 19 ? 19 : base + 7);
	cr_assert_eq(getpriority(PRIO_PROCESS, 0), base,
	    "the calling thread's priority moved");
	evb_compactor_stop(comp);
}

Test(compactor_restart, thread_catches_up_and_stores_the_wal_cursor)
{
	uint64_t last, off;
	uint64_t deadline;

	comp = comp_open(false);
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, 0);
	cr_assert_eq(evb_compactor_start(comp), EVB_OK);
	cr_assert_eq(evb_compactor_start(comp), EVB_EINVAL);
	cr_assert_eq(evb_compactor_step(comp, 1, NULL, NULL), EVB_EBUSY);
	cr_assert_eq(evb_compactor_rebuild(comp, NULL), EVB_EBUSY);
	for (int i = 0; i < 10; i++) {
		ctl_append_events(wal, &lg, 300, -1);
	}
	cr_assert_eq(evb_wal_last(wal, &last), EVB_OK);
	deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(60000);
	while (comp_position(comp) < last) {
		cr_assert_lt(evb_clock_mono_ms(), deadline, "never caught up");
		poll_pause();
	}
	evb_compactor_stop(comp);
	evb_compactor_stop(comp);
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, last);
	// Stopped, it steps by hand again.
	ctl_append_events(wal, &lg, 10, -1);
	ctl_project(comp, 3);
	cr_assert_eq(comp_position(comp), last + 10);
	evb_compactor_close(comp);
	comp = NULL;
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, last + 10);
}

/*
 * comp_open_noting opens comp as `evbus run` does, with cursor_note, and
 * a cursor stored after every step; with sync false, the tables are
 * flushed at each commit at least 1 ms after the last.
 */
static void
comp_open_noting(bool sync)
{
	evb_compactor_opts o;
	evb_diag           d = { "" };

	evb_compactor_opts_default(&o);
	o.sync             = sync;
	o.sync_period_ms   = 1;
	o.cursor_period_ms = 0;
	o.cursor_note      = true;
	cr_assert_eq(
	    evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
}

/*
 * With cursor_note (as `evbus run` opens it), a compactor that is behind
 * leaves its cursor to the next append on its WAL handle instead of a
 * write txn of its own, which a lower-priority thread must not hold.
 */
Test(compactor_restart, a_noted_cursor_rides_in_the_next_append)
{
	evb_diag d = { "" };
	uint64_t off;
	size_t   n = 0;

	comp_open_noting(true);
	ctl_append_events(wal, &lg, 300, -1);
	// With sync, a step's position is on disk after the next commit:
	// the second step makes the first one's position the cursor's.
	cr_assert_eq(
	    evb_compactor_step(comp, 100, &n, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(
	    evb_compactor_step(comp, 100, &n, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(comp_position(comp), 200);
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, 0, "the cursor was written, not noted");
	ctl_append_events(wal, &lg, 1, -1);
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, 100, "the append did not store the noted cursor");
	evb_compactor_close(comp);
	comp = NULL;
}

/*
 * A value only noted is stored at close all the same: the appends that
 * would carry it may never come (here the tables are flushed at each
 * commit, so the step's own position is noted at once).
 */
Test(compactor_restart, a_noted_cursor_is_stored_at_close)
{
	evb_diag d = { "" };
	uint64_t off;
	size_t   n = 0;

	comp_open_noting(false);
	ctl_append_events(wal, &lg, 100, -1);
	nanosleep(&(struct timespec) { 0, 2000000 }, NULL); // > 1 ms.
	cr_assert_eq(
	    evb_compactor_step(comp, 100, &n, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(comp_position(comp), 100);
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, 0, "the step wrote its cursor instead of noting it");
	evb_compactor_close(comp);
	comp = NULL;
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, 100, "close left the noted cursor unstored");
}

/*
 * With sync, a commit's position reaches the disk only with the next
 * commit, and the cursor is stored only with a position on disk: a
 * thread that goes idle must flush and store it then, or retention holds
 * back records already projected until the next event arrives.
 */
Test(compactor_restart, an_idle_synced_thread_stores_its_cursor_at_the_end)
{
	evb_compactor_opts o;
	evb_diag           d = { "" };
	uint64_t           last, off = 0;
	uint64_t           deadline;

	evb_compactor_opts_default(&o);
	o.sync = true;
	cr_assert_eq(
	    evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_compactor_start(comp), EVB_OK);
	for (int i = 0; i < 5; i++) {
		ctl_append_events(wal, &lg, 300, -1);
	}
	cr_assert_eq(evb_wal_last(wal, &last), EVB_OK);
	deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(30000);
	while (off < last) {
		cr_assert_lt(evb_clock_mono_ms(), deadline,
		    "the cursor stayed at %llu of %llu while idle",
		    (unsigned long long) off, (unsigned long long) last);
		poll_pause();
		cr_assert_eq(
		    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off),
		    EVB_OK);
	}
	cr_assert_eq(off, last);
	evb_compactor_stop(comp);
}

/* A hold that lets `free` asks pass, then holds until released. */
typedef struct hold_ctl {
	atomic_int  asks;
	int         free;
	atomic_bool released;
} hold_ctl;

static bool
hold_fn(void *arg)
{
	hold_ctl *h = arg;

	return (atomic_fetch_add(&h->asks, 1) >= h->free &&
	    !atomic_load(&h->released));
}

/*
 * run_held starts the thread with a hold that lets `free` asks pass, and
 * returns the position once the thread has been held 20 times in a row;
 * then it releases the hold and waits for the thread to catch up.
 */
static uint64_t
run_held(int free, uint32_t batch_records)
{
	evb_compactor_opts o;
	hold_ctl           h = { .free = free };
	evb_diag           d = { "" };
	uint64_t           last, at, deadline;

	atomic_init(&h.asks, 0);
	atomic_init(&h.released, false);
	for (int i = 0; i < 10; i++) {
		ctl_append_events(wal, &lg, 300, -1);
	}
	cr_assert_eq(evb_wal_last(wal, &last), EVB_OK);
	evb_compactor_opts_default(&o);
	o.sync          = false;
	o.batch_records = batch_records;
	o.hold          = hold_fn;
	o.hold_arg      = &h;
	cr_assert_eq(
	    evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_compactor_start(comp), EVB_OK);
	deadline = evb_clock_mono_ms() + evb_ts_timeout_ms(60000);
	while (comp_stat(comp).holds < 20) {
		cr_assert_lt(evb_clock_mono_ms(), deadline, "never held");
		poll_pause();
	}
	at = comp_position(comp);
	cr_assert_lt(at, last, "a held thread projected everything");
	// Still held: the position does not move.
	for (int i = 0; i < 50; i++) {
		poll_pause();
	}
	cr_assert_eq(comp_position(comp), at);
	atomic_store(&h.released, true);
	while (comp_position(comp) < last) {
		cr_assert_lt(evb_clock_mono_ms(), deadline, "never caught up");
		poll_pause();
	}
	evb_compactor_stop(comp);
	return (at);
}

Test(compactor_restart, thread_waits_while_held_and_catches_up_after)
{
	cr_assert_eq(run_held(0, 16384), 0, "projected before the first ask");
}

Test(compactor_restart, a_step_ends_early_when_the_hold_asks)
{
	// The first ask (before the step) passes; the step of up to 100000
	// records then asks again as it goes, and ends where it was held.
	uint64_t at = run_held(1, 100000);

	cr_assert_gt(at, 0, "the first step projected nothing");
}

Test(compactor_restart, records_retention_removed_first_are_counted_missed)
{
	evb_compactor_opts o;
	evb_compactor_stat st;
	uint64_t           removed;

	evb_wal_close(wal);
	wal = wal_open(false, 1); // Keep as little as retention may.
	ctl_append_events(wal, &lg, 100, -1);
	cr_assert_eq(evb_wal_retain(wal, 1000, &removed, NULL), EVB_OK);
	cr_assert_eq(removed, 99);
	evb_compactor_opts_default(&o);
	o.wal_cursor = NULL;
	cr_assert_eq(evb_compactor_open(&comp, wal, tmp, &o, NULL), EVB_OK);
	ctl_project(comp, 10);
	cr_assert_eq(evb_compactor_stats(comp, &st), EVB_OK);
	cr_assert_eq(st.missed, 99);
	cr_assert_eq(st.events, 1);
	cr_assert_eq(st.position, 100);
	// With its cursor, the compactor holds retention back.
	evb_compactor_close(comp);
	comp = comp_open(false);
	ctl_append_events(wal, &lg, 50, -1);
	cr_assert_eq(evb_wal_retain(wal, 1000, &removed, NULL), EVB_OK);
	cr_assert_eq(removed, 1, "only what the compactor projected goes");
	ctl_project(comp, 10);
	cr_assert_eq(evb_compactor_stats(comp, &st), EVB_OK);
	cr_assert_eq(st.missed, 99);
	cr_assert_eq(st.events, 51);
}

Test(compactor_restart, open_and_step_errors)
{
	evb_compactor_opts o;
	evb_compactor     *c = NULL;
	evb_diag           d = { "" };

	evb_compactor_opts_default(&o);
	cr_assert_eq(evb_compactor_open(&c, NULL, tmp, &o, &d), EVB_EINVAL);
	cr_assert_eq(evb_compactor_open(&c, wal, NULL, &o, &d), EVB_EINVAL);
	o.batch_records = 0;
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EINVAL);
	cr_assert_neq(strstr(d.msg, "batch_records"), NULL);
	evb_compactor_opts_default(&o);
	o.poll_ms = 0;
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EINVAL);
	evb_compactor_opts_default(&o);
	o.wal_cursor = "";
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EINVAL);
	evb_compactor_opts_default(&o);
	o.nice = 20;
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EINVAL);
	cr_assert_neq(strstr(d.msg, "nice"), NULL, "%s", d.msg);
	o.nice = -1;
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EINVAL);
	cr_assert_null(c);
	ctl_append_events(wal, &lg, 10, -1);
	// A read-only WAL handle cannot keep a cursor; without one it works.
	evb_wal_close(wal);
	wal = wal_open(true, 0);
	evb_compactor_opts_default(&o);
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EINVAL);
	cr_assert_neq(strstr(d.msg, "wal_cursor"), NULL, "%s", d.msg);
	o.wal_cursor = NULL;
	cr_assert_eq(
	    evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_compactor_step(comp, 0, NULL, &d), EVB_EINVAL);
	// One writer at a time: a second compactor on the same tables
	// would project the same records again.
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EBUSY);
	cr_assert_neq(strstr(d.msg, "another compactor"), NULL, "%s", d.msg);
	ctl_project(comp, 4);
	cr_assert_eq(comp_position(comp), 10);
	evb_compactor_close(comp);
	comp = NULL;
	cr_assert_eq(
	    evb_compactor_open(&c, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	evb_compactor_close(c);
	cr_assert_eq(
	    evb_compactor_tables_query(NULL, NULL, ctl_rows_add, NULL, &d),
	    EVB_EINVAL);
}

/* set_format writes version into the closed tables' meta.format. */
static void
set_format(uint32_t version)
{
	char    *dir = evb_ts_path(tmp, EVB_COMPACTOR_DIR);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi  dbi;
	uint8_t  v[4];
	MDB_val  k   = { 6, "format" };
	MDB_val  val = { 4, v };

	evb_put_be32(v, version);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 64), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &val, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(dir);
}

Test(compactor_restart, another_format_opens_only_for_a_rebuild)
{
	evb_compactor_tables *t = NULL;
	evb_compactor_opts    o;
	evb_compactor        *c = NULL;
	evb_diag              d = { "" };
	evb_buf               a, b;

	ctl_append_events(wal, &lg, 300, -1);
	comp = comp_open(false);
	ctl_project(comp, 100);
	dump(&a);
	set_format(EVB_COMPACTOR_FORMAT_VERSION + 1);
	evb_compactor_opts_default(&o);
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_EVERSION);
	cr_assert_neq(strstr(d.msg, "--rebuild"), NULL, "%s", d.msg);
	cr_assert_eq(evb_compactor_tables_open(&t, tmp, &d), EVB_EVERSION);
	cr_assert_null(c);
	cr_assert_null(t);
	comp = comp_open(true);
	ctl_project(comp, 64);
	dump(&b);
	expect_same(&a, &b);
	evb_buf_fini(&a);
	evb_buf_fini(&b);
}

Test(compactor_restart, tables_of_another_log_are_refused)
{
	evb_compactor_opts o;
	evb_compactor     *c = NULL;
	evb_diag           d = { "" };
	char              *p;
	uint64_t           off = 0;

	ctl_append_events(wal, &lg, 20, -1);
	comp = comp_open(false);
	ctl_project(comp, 100);
	evb_compactor_close(comp);
	comp = NULL;
	evb_wal_close(wal);
	p = evb_ts_path(tmp, "data.mdb");
	cr_assert_eq(unlink(p), 0);
	free(p);
	wal = wal_open(false, 0);
	ctl_append_events(wal, &lg, 5, -1);
	evb_compactor_opts_default(&o);
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_ECORRUPT);
	cr_assert_neq(strstr(d.msg, "another log"), NULL, "%s", d.msg);
	// The refused open must leave the new log's cursors alone: a
	// "compactor" cursor at the old tables' position (20, past this
	// log's end) would let retention remove records never projected.
	cr_assert_eq(evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off),
	    EVB_ENOTFOUND, "the refused open stored the cursor at %llu",
	    (unsigned long long) off);
	o.rebuild = true;
	cr_assert_eq(evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK);
	ctl_project(comp, 100);
	cr_assert_eq(comp_position(comp), 5);
}

Test(compactor_restart, foreign_or_unreachable_tables_are_refused)
{
	char                 *dir     = evb_ts_path(tmp, EVB_COMPACTOR_DIR);
	char                 *missing = evb_ts_path(tmp, "no/such/dir");
	evb_compactor_opts    o;
	evb_compactor        *c = NULL;
	evb_compactor_tables *t = NULL;
	evb_diag              d = { "" };
	MDB_env              *env;
	MDB_txn              *txn;
	MDB_dbi               dbi;

	evb_compactor_opts_default(&o);
	cr_assert_eq(evb_compactor_open(&c, wal, missing, &o, &d),
	    EVB_ESYSERR + ENOENT, "%s", d.msg);
	// An LMDB environment with DBs of its own is not ours.
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "foo", MDB_CREATE, &dbi), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	cr_assert_eq(evb_compactor_open(&c, wal, tmp, &o, &d), EVB_ECORRUPT);
	cr_assert_neq(strstr(d.msg, "not evbus tables"), NULL, "%s", d.msg);
	cr_assert_null(c);
	cr_assert_eq(evb_compactor_tables_open(&t, tmp, &d), EVB_ECORRUPT);
	cr_assert_null(t);
	free(dir);
	free(missing);
}

/* stop_after stops a query after its arg rows with EVB_EOF, or with
 * EVB_ETIMEDOUT (any code) when the count is negative. */
static int
stop_after(void *arg, const evb_compactor_row *row)
{
	int *left = arg;

	(void) row;
	if (*left < 0) {
		return (EVB_ETIMEDOUT);
	}
	return (--(*left) == 0 ? EVB_EOF : EVB_OK);
}

Test(compactor_restart, callbacks_stop_queries_and_bad_types_are_refused)
{
	evb_compactor_tables *t;
	evb_compactor_query   q;
	evb_diag              d = { "" };
	int                   left;

	ctl_append_events(wal, &lg, 100, -1);
	comp = comp_open(false);
	ctl_project(comp, 100);
	evb_compactor_close(comp);
	comp = NULL;
	cr_assert_eq(
	    evb_compactor_tables_open(&t, tmp, &d), EVB_OK, "%s", d.msg);
	evb_compactor_query_init(&q);
	left = 7;
	cr_assert_eq(
	    evb_compactor_tables_query(t, &q, stop_after, &left, &d), EVB_OK);
	cr_assert_eq(left, 0, "EVB_EOF stops at once");
	left = -1;
	cr_assert_eq(evb_compactor_tables_query(t, &q, stop_after, &left, &d),
	    EVB_ETIMEDOUT);
	cr_assert_eq(evb_compactor_tables_latest(t, EVB_COMPACTOR_LATEST_QUOTE,
	                 NULL, stop_after, &left, &d),
	    EVB_ETIMEDOUT);
	q.type = CTL_NTYPES;
	cr_assert_eq(evb_compactor_tables_query(t, &q, stop_after, &left, &d),
	    EVB_EINVAL);
	cr_assert_neq(strstr(d.msg, "type"), NULL, "%s", d.msg);
	q.type = -2;
	cr_assert_eq(evb_compactor_tables_query(t, &q, stop_after, &left, &d),
	    EVB_EINVAL);
	q.type = 0;
	cr_assert_eq(
	    evb_compactor_tables_query(t, &q, NULL, NULL, &d), EVB_EINVAL);
	cr_assert_str_eq(evb_compactor_table_name(0), "signal_events");
	cr_assert_str_eq(evb_compactor_table_name(7), "pattern_events");
	cr_assert_null(evb_compactor_table_name(8));
	cr_assert_null(evb_compactor_table_name(-1));
	evb_compactor_tables_close(t);
}

Test(compactor_restart, a_step_larger_than_the_map_grows_it_and_commits)
{
	evb_compactor_opts o;
	evb_compactor_stat st;
	evb_buf            a, b;
	evb_diag           d = { "" };
	size_t             done;

	// One step of 4000 events needs a few MB of pages; a fresh 1 MiB
	// map is far from its end, yet the step cannot fit: the compactor
	// must grow the map (header: "Doubled when full"), not fail with
	// EVB_EFULL as if the disk were full.
	ctl_append_events(wal, &lg, 4000, -1);
	evb_compactor_opts_default(&o);
	o.sync     = false;
	o.map_size = (size_t) 1 << 20;
	cr_assert_eq(
	    evb_compactor_open(&comp, wal, tmp, &o, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(
	    evb_compactor_step(comp, 4000, &done, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(done, 4000);
	st = comp_stat(comp);
	cr_assert_eq(st.position, 4000);
	cr_assert_gt(st.map_grows, 0);
	dump(&a);
	dump_rebuilt(&b);
	expect_same(&a, &b);
	evb_buf_fini(&a);
	evb_buf_fini(&b);
}

/*
 * The fdatasync calls on one file (sync_ino; 0: none), counted by the
 * wrapper below, which LMDB's calls reach instead of libc's (the test
 * binary defines the symbol, so the dynamic linker binds liblmdb's
 * reference to it) and which then calls libc's.
 */
static ino_t sync_ino;
static int   sync_count;

int
fdatasync(int fd)
{
	static int (*real)(int);
	struct stat st;

	if (real == NULL) {
		*(void **) (&real) = dlsym(RTLD_NEXT, "fdatasync");
	}
	if (sync_ino != 0 && fstat(fd, &st) == 0 && st.st_ino == sync_ino) {
		sync_count++;
	}
	return (real(fd));
}

Test(compactor_restart, open_flushes_the_tables_before_storing_the_cursor)
{
	char       *file = evb_ts_path(tmp, EVB_COMPACTOR_DIR "/data.mdb");
	struct stat st;
	uint64_t    off = 0;

	// A compactor without sync commits 200 records and dies: its
	// commits are in the page cache, not on disk. A new open must not
	// store the WAL cursor at 200 before 200 is on disk, or a machine
	// crash could leave tables at an older position with a cursor
	// that let retention remove the records between.
	ctl_append_events(wal, &lg, 300, -1);
	crash_child(2, 100);
	cr_assert_eq(stat(file, &st), 0);
	sync_ino   = st.st_ino;
	sync_count = 0;
	comp       = comp_open(false);
	cr_assert_eq(
	    evb_wal_cursor_get(wal, EVB_COMPACTOR_CURSOR, &off), EVB_OK);
	cr_assert_eq(off, 200);
	cr_assert_gt(sync_count, 0,
	    "the cursor was stored at 200 with the tables not flushed");
	sync_ino = 0;
	free(file);
}
