/*
 * common_hist_test.c: the latency histogram's percentiles against values
 * whose true percentiles are known.
 */
#include <criterion/criterion.h>

#include "common/common.h"

TestSuite(hist, .timeout = 30);

Test(hist, empty_gives_zero)
{
	evb_hist h;

	evb_hist_reset(&h);
	cr_assert_eq(evb_hist_pct(&h, 50), 0);
	cr_assert_eq(evb_hist_pct(&h, 100), 0);
}

Test(hist, small_values_are_exact)
{
	evb_hist h;

	evb_hist_reset(&h);
	for (uint64_t v = 1; v <= 7; v++) {
		evb_hist_add(&h, v);
	}
	cr_assert_eq(h.n, 7);
	cr_assert_eq(evb_hist_pct(&h, 50), 4);
	cr_assert_eq(evb_hist_pct(&h, 100), 7);
	cr_assert_eq(evb_hist_pct(&h, 1), 1);
}

Test(hist, percentiles_are_within_an_eighth_above_the_truth)
{
	evb_hist h;
	// 1..100000: the true p50 is 50000, p99 99000, p99.9 99900.
	const double   pcts[] = { 50, 90, 99, 99.9 };
	const uint64_t want[] = { 50000, 90000, 99000, 99900 };

	evb_hist_reset(&h);
	for (uint64_t v = 100000; v >= 1; v--) {
		evb_hist_add(&h, v);
	}
	for (size_t i = 0; i < 4; i++) {
		uint64_t got = evb_hist_pct(&h, pcts[i]);

		cr_assert_geq(got, want[i], "p%g: %llu", pcts[i],
		    (unsigned long long) got);
		cr_assert_leq(got, want[i] + want[i] / 8, "p%g: %llu", pcts[i],
		    (unsigned long long) got);
	}
	cr_assert_eq(evb_hist_pct(&h, 100), 100000);
}

Test(hist, extreme_values_do_not_overflow)
{
	evb_hist h;

	evb_hist_reset(&h);
	evb_hist_add(&h, UINT64_MAX);
	evb_hist_add(&h, 0);
	cr_assert_eq(evb_hist_pct(&h, 100), UINT64_MAX);
	cr_assert_eq(evb_hist_pct(&h, 50), 0);
}
