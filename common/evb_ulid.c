/*
 * evb_ulid.c: ULIDs, the ids the broker stamps on events that arrive
 * without one.
 *
 * A ULID is 128 bits: a 48-bit time in milliseconds since the Unix
 * epoch, then 80 random bits, written as 26 characters of Crockford's
 * base32 (0-9, A-Z without I, L, O, U), most significant first. The
 * first character carries only 3 bits (26 * 5 = 130), so it is at most
 * '7'. Because the time comes first and the alphabet is in ASCII order,
 * ids sort by time as plain strings.
 *
 * Randomness: splitmix64, seeded once from getrandom(). It is not a
 * cryptographic generator and need not be: ids must be unique and
 * sortable, not secret. Monotonicity: an id made in the same millisecond
 * as the one before (or in an earlier one, when the wall clock steps
 * back) keeps the previous time and adds 1 to the previous random part,
 * so a generator's ids strictly increase. If those 80 bits ever wrap,
 * the time part moves on by one millisecond.
 */
#include <errno.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/common.h"

#define ULID_TIME_MAX ((UINT64_C(1) << 48) - 1) /* Largest 48-bit time. */
#define ULID_HI_MASK UINT64_C(0xffff) /* The top 16 of 80 random bits. */

static const char ulid_alphabet[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* ulid_splitmix64 advances the state and returns 64 random bits. */
static uint64_t
ulid_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/*
 * ulid_seed returns 64 bits from getrandom(). Should the kernel refuse
 * (a seccomp filter, a very old kernel), the clocks and the PID still
 * make two processes' seeds differ, which is all uniqueness needs.
 */
static uint64_t
ulid_seed(void)
{
	uint64_t seed;
	ssize_t  n;

	do {
		n = getrandom(&seed, sizeof(seed), 0);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t) sizeof(seed)) {
		return seed;
	}
	return (uint64_t) evb_clock_real_ns() ^ (evb_clock_mono_ns() << 17) ^
	    ((uint64_t) getpid() << 40);
}

void
evb_ulid_init(evb_ulid *u, uint64_t seed)
{
	u->rng      = seed != 0 ? seed : ulid_seed();
	u->last_ms  = 0;
	u->rand_hi  = 0;
	u->rand_lo  = 0;
	u->has_last = false;
}

/* ulid_fresh draws a new 80-bit random part. */
static void
ulid_fresh(evb_ulid *u)
{
	u->rand_lo = ulid_splitmix64(&u->rng);
	u->rand_hi = ulid_splitmix64(&u->rng) & ULID_HI_MASK;
}

void
evb_ulid_next(evb_ulid *u, int64_t ts_ns, char out[EVB_ULID_LEN + 1])
{
	uint64_t ms = ts_ns > 0 ? (uint64_t) ts_ns / 1000000u : 0;
	uint64_t hi, lo;

	if (ms > ULID_TIME_MAX) {
		ms = ULID_TIME_MAX;
	}
	if (!u->has_last || ms > u->last_ms) {
		u->last_ms = ms;
		ulid_fresh(u);
	} else if (++u->rand_lo == 0 &&
	    (u->rand_hi = (u->rand_hi + 1) & ULID_HI_MASK) == 0) {
		// All 80 bits wrapped: borrow the next millisecond.
		u->last_ms =
		    u->last_ms < ULID_TIME_MAX ? u->last_ms + 1 : ULID_TIME_MAX;
		ulid_fresh(u);
	}
	u->has_last = true;

	// The 128 bits as hi:lo, written 5 bits at a time from the end.
	hi = (u->last_ms << 16) | u->rand_hi;
	lo = u->rand_lo;
	for (int i = EVB_ULID_LEN - 1; i >= 0; i--) {
		out[i] = ulid_alphabet[lo & 31];
		lo     = (lo >> 5) | (hi << 59);
		hi >>= 5;
	}
	out[EVB_ULID_LEN] = '\0';
}
