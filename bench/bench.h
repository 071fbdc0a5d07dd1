/*
 * bench.h: what every bench/<path>_bench.c shares: argument parsing, a
 * latency sample set and the one fixed-format result line
 *
 *   name n secs rate p50_us p99_us
 *
 * Benchmarks talk only to loopback and stop by themselves (N events or a
 * duration, whichever comes first).
 */
#ifndef EVB_BENCH_H
#define EVB_BENCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_samples {
	double *us;  /* Per-operation latencies, microseconds. */
	size_t  len; /* Samples taken. */
	size_t  cap; /* Samples allocated. */
} bench_samples;

/* bench_args reads "[N] [secs]" with defaults; exits 2 on bad input. */
void bench_args(int argc, char **argv, uint64_t *n, double *secs);

/* bench_samples_add records one latency; drops it when out of memory. */
void bench_samples_add(bench_samples *s, double us);

/* bench_report prints the result line, frees the samples and returns
   their p50 (0 with no samples). */
double bench_report(
    const char *name, uint64_t n, double secs, bench_samples *s);

/* bench_median sorts v[0..n) and returns its median (n >= 1). */
double bench_median(double *v, size_t n);

#endif /* EVB_BENCH_H */
