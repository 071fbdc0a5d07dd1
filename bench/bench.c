/*
 * bench.c: argument parsing and the result line for the benchmarks.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"

void
bench_args(int argc, char **argv, uint64_t *n, double *secs)
{
	char *end;

	if (argc > 1) {
		*n = strtoull(argv[1], &end, 10);
		if (*end != '\0' || *n == 0) {
			fprintf(stderr, "usage: %s [N] [secs]\n", argv[0]);
			exit(2);
		}
	}
	if (argc > 2) {
		*secs = strtod(argv[2], &end);
		if (*end != '\0' || *secs <= 0) {
			fprintf(stderr, "usage: %s [N] [secs]\n", argv[0]);
			exit(2);
		}
	}
}

void
bench_samples_add(bench_samples *s, double us)
{
	if (s->len == s->cap) {
		size_t  cap = s->cap == 0 ? 4096 : s->cap * 2;
		double *nu  = realloc(s->us, cap * sizeof(*nu));

		if (nu == NULL) {
			return;
		}
		s->us  = nu;
		s->cap = cap;
	}
	s->us[s->len++] = us;
}

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return ((x > y) - (x < y));
}

double
bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof(double), bench_cmp);
	return (n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

double
bench_report(const char *name, uint64_t n, double secs, bench_samples *s)
{
	double p50 = 0, p99 = 0;

	if (s->len > 0) {
		qsort(s->us, s->len, sizeof(double), bench_cmp);
		p50 = s->us[s->len / 2];
		p99 = s->us[(size_t) ((double) s->len * 0.99)];
	}
	printf("%s %llu %.3f %.0f %.3f %.3f\n", name, (unsigned long long) n,
	    secs, secs > 0 ? (double) n / secs : 0.0, p50, p99);
	free(s->us);
	s->us  = NULL;
	s->len = s->cap = 0;
	return (p50);
}
