/*
 * common_ulid_test.c: evb_ulid, the ids the broker stamps on events.
 * Format (26 Crockford base32 characters, time first), sort order,
 * monotonicity within a millisecond and across a clock step back, and
 * uniqueness over a million ids.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define ULID_TEST_TIMEOUT_S 60
#define ULID_MANY 1000000 /* Ids in the uniqueness test. */

static const char ulid_chars[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

TestSuite(ulid, .timeout = ULID_TEST_TIMEOUT_S);

/* ulid_decode_ms reads the 48-bit time back from the first 10 chars. */
static uint64_t
ulid_decode_ms(const char *id)
{
	uint64_t v = 0;

	for (int i = 0; i < 10; i++) {
		const char *p = strchr(ulid_chars, id[i]);

		cr_assert_not_null(p, "bad character '%c'", id[i]);
		v = (v << 5) | (uint64_t) (p - ulid_chars);
	}
	return v;
}

Test(ulid, has_26_crockford_characters_and_the_time_first)
{
	evb_ulid u;
	char     id[EVB_ULID_LEN + 1];
	int64_t  ts = INT64_C(1758000000123456789);

	evb_ulid_init(&u, 0);
	evb_ulid_next(&u, ts, id);
	cr_assert_eq(strlen(id), 26);
	cr_assert_eq(strspn(id, ulid_chars), 26, "id %s", id);
	cr_assert_leq(id[0], '7', "id %s", id);
	cr_assert_eq(ulid_decode_ms(id), 1758000000123u);
}

Test(ulid, time_zero_and_negative_time_encode_as_zero)
{
	evb_ulid u;
	char     id[EVB_ULID_LEN + 1];

	evb_ulid_init(&u, 1);
	evb_ulid_next(&u, -5, id);
	cr_assert_eq(strncmp(id, "0000000000", 10), 0, "id %s", id);
}

Test(ulid, ids_of_later_milliseconds_sort_after_earlier_ones)
{
	evb_ulid a, b;
	char     early[EVB_ULID_LEN + 1];
	char     late[EVB_ULID_LEN + 1];

	// Two generators, so the random parts are unrelated: only the
	// time part can order them.
	evb_ulid_init(&a, 11);
	evb_ulid_init(&b, 12);
	for (int64_t ms = 1; ms < 2000000; ms = ms * 3 + 1) {
		evb_ulid_next(&a, ms * 1000000, early);
		evb_ulid_next(&b, (ms + 1) * 1000000, late);
		cr_assert_lt(strcmp(early, late), 0, "%s !< %s", early, late);
	}
}

Test(ulid, ids_within_one_millisecond_increase)
{
	evb_ulid u;
	char     prev[EVB_ULID_LEN + 1];
	char     id[EVB_ULID_LEN + 1];
	int64_t  ts = INT64_C(1758000000000000000);

	evb_ulid_init(&u, 0);
	evb_ulid_next(&u, ts, prev);
	for (int i = 1; i < 10000; i++) {
		// Nanoseconds move, the millisecond does not.
		evb_ulid_next(&u, ts + i % 1000000, id);
		cr_assert_gt(strcmp(id, prev), 0, "%s !> %s", id, prev);
		cr_assert_eq(strncmp(id, prev, 10), 0, "time part changed");
		memcpy(prev, id, sizeof(id));
	}
}

Test(ulid, a_clock_step_back_keeps_ids_increasing)
{
	evb_ulid u;
	char     a[EVB_ULID_LEN + 1];
	char     b[EVB_ULID_LEN + 1];

	evb_ulid_init(&u, 0);
	evb_ulid_next(&u, INT64_C(1758000005000000000), a);
	evb_ulid_next(&u, INT64_C(1758000001000000000), b);
	cr_assert_gt(strcmp(b, a), 0, "%s !> %s", b, a);
}

Test(ulid, the_same_seed_gives_the_same_ids)
{
	evb_ulid a, b;
	char     x[EVB_ULID_LEN + 1];
	char     y[EVB_ULID_LEN + 1];

	evb_ulid_init(&a, 42);
	evb_ulid_init(&b, 42);
	evb_ulid_next(&a, 1000000, x);
	evb_ulid_next(&b, 1000000, y);
	cr_assert_str_eq(x, y);
}

static int
ulid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, EVB_ULID_LEN);
}

Test(ulid, a_million_ids_are_unique)
{
	evb_ulid u;
	char    *ids = malloc((size_t) ULID_MANY * EVB_ULID_LEN);
	char     id[EVB_ULID_LEN + 1];
	int64_t  ts = INT64_C(1758000000000000000);

	cr_assert_not_null(ids);
	evb_ulid_init(&u, 0);
	for (size_t i = 0; i < ULID_MANY; i++) {
		// A few hundred ids per millisecond, as under load.
		evb_ulid_next(&u, ts + (int64_t) (i / 300) * 1000000, id);
		memcpy(ids + i * EVB_ULID_LEN, id, EVB_ULID_LEN);
	}
	qsort(ids, ULID_MANY, EVB_ULID_LEN, ulid_cmp);
	for (size_t i = 1; i < ULID_MANY; i++) {
		cr_assert_neq(memcmp(ids + (i - 1) * EVB_ULID_LEN,
		                  ids + i * EVB_ULID_LEN, EVB_ULID_LEN),
		    0, "duplicate id at %zu", i);
	}
	free(ids);
}

Test(ulid, two_generators_seeded_from_the_kernel_differ)
{
	evb_ulid a, b;
	char     x[EVB_ULID_LEN + 1];
	char     y[EVB_ULID_LEN + 1];

	evb_ulid_init(&a, 0);
	evb_ulid_init(&b, 0);
	evb_ulid_next(&a, 1000000, x);
	evb_ulid_next(&b, 1000000, y);
	cr_assert_str_neq(x, y);
}
