/*
 * common_thread_test.c: thread names and priorities, read back from the
 * kernel (prctl and getpriority), on a thread of the test's own so the
 * runner's thread keeps its name and priority.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/common.h"

TestSuite(thread, .timeout = 30);

typedef struct name_case {
	const char *set;     /* Passed to evb_thread_name. */
	char        got[17]; /* What the kernel then reports. */
} name_case;

static void *
name_main(void *arg)
{
	name_case *c = arg;

	evb_thread_name(c->set);
	cr_assert_eq(prctl(PR_GET_NAME, c->got, 0, 0, 0), 0);
	return NULL;
}

static void
name_run(name_case *c)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, name_main, c), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

Test(thread, name_is_what_the_kernel_reports)
{
	name_case c = { .set = "evb:ingest" };

	name_run(&c);
	cr_assert_str_eq(c.got, "evb:ingest");
}

Test(thread, long_names_are_cut_to_fifteen_bytes)
{
	name_case c = { .set = "evb:a-very-long-thread-name" };

	name_run(&c);
	cr_assert_eq(strlen(c.got), EVB_THREAD_NAME_MAX);
	cr_assert_str_eq(c.got, "evb:a-very-long");
}

typedef struct nice_case {
	int inc;    /* Passed to evb_thread_nice. */
	int rc;     /* Its result. */
	int before; /* The thread's nice value before. */
	int after;  /* And after. */
	int other;  /* The process's main thread's after. */
} nice_case;

static void *
nice_main(void *arg)
{
	nice_case *c = arg;

	c->before = getpriority(PRIO_PROCESS, (id_t) gettid());
	c->rc     = evb_thread_nice(c->inc);
	c->after  = getpriority(PRIO_PROCESS, (id_t) gettid());
	c->other  = getpriority(PRIO_PROCESS, (id_t) getpid());
	return NULL;
}

static void
nice_run(nice_case *c)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, nice_main, c), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

Test(thread, nice_lowers_this_thread_only)
{
	int       main_before = getpriority(PRIO_PROCESS, (id_t) getpid());
	nice_case c           = { .inc = 5 };

	nice_run(&c);
	cr_assert_eq(c.rc, EVB_OK, "%s", evb_strerror(c.rc));
	cr_assert_eq(c.after, c.before + 5 > 19 ? 19 : c.before + 5);
	cr_assert_eq(c.other, main_before, "the main thread moved too");
}

Test(thread, nice_stops_at_nineteen)
{
	nice_case c = { .inc = 19 };

	nice_run(&c);
	cr_assert_eq(c.rc, EVB_OK);
	cr_assert_eq(c.after, 19);
}

Test(thread, nice_refuses_increments_out_of_range)
{
	static const int bad[] = { 0, -1, 20, 1000 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		nice_case c = { .inc = bad[i] };

		nice_run(&c);
		cr_assert_eq(c.rc, EVB_EINVAL, "inc %d", bad[i]);
		cr_assert_eq(c.after, c.before, "inc %d moved it", bad[i]);
	}
}
