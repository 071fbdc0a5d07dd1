/*
 * evb_hist.c: the log-linear histogram (common.h).
 *
 * Bucket of v: v itself below 8; otherwise, with m the index of v's top
 * bit (m >= 3), 8 + 8 * (m - 3) + the three bits below the top one. So
 * each power of two [2^m, 2^(m+1)) is split in 8 equal parts, and the
 * relative width of a bucket is at most 1/8. The largest bucket index is
 * 8 + 8 * 60 + 7 = 495.
 *
 * Why not keep samples and sort them: a component's periodic stats line
 * would need unbounded memory or a sample, and a bench's millions of
 * commits the same; 12.5% resolution is plenty for p50/p99 lines.
 */
#include <string.h>

#include "common/common.h"

static unsigned
hist_bucket(uint64_t v)
{
	unsigned m;

	if (v < 8) {
		return (unsigned) v;
	}
	m = 63u - (unsigned) __builtin_clzll(v);
	return 8u + 8u * (m - 3u) + (unsigned) ((v >> (m - 3u)) & 7u);
}

/* hist_upper is the largest value of bucket i. */
static uint64_t
hist_upper(unsigned i)
{
	unsigned m;
	uint64_t sub;

	if (i < 8) {
		return i;
	}
	m   = (i - 8u) / 8u + 3u;
	sub = (i - 8u) % 8u;
	// [2^m + sub * 2^(m-3), 2^m + (sub + 1) * 2^(m-3) - 1]
	return (UINT64_C(1) << m) + ((sub + 1) << (m - 3u)) - 1;
}

void
evb_hist_reset(evb_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void
evb_hist_add(evb_hist *h, uint64_t v)
{
	h->count[hist_bucket(v)]++;
	h->n++;
	if (v > h->max) {
		h->max = v;
	}
}

uint64_t
evb_hist_pct(const evb_hist *h, double pct)
{
	uint64_t rank;
	uint64_t seen = 0;

	if (h->n == 0) {
		return 0;
	}
	// The rank-th smallest value (1-based), rounding up: p50 of 3 is the
	// 2nd, p100 the last.
	rank = (uint64_t) ((pct / 100.0) * (double) h->n + 0.999999);
	if (rank == 0) {
		rank = 1;
	}
	if (rank > h->n) {
		rank = h->n;
	}
	for (unsigned i = 0; i < EVB_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t up = hist_upper(i);

			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}
