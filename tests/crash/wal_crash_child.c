/*
 * wal_crash_child: the writer that wal_crash_test kills. It opens the WAL
 * in directory argv[1] in SYNC mode and appends batches as fast as it can,
 * forever. After each append returns EVB_OK it writes the batch's last
 * offset as one line to stdout, so every line is a promise that the
 * offset is durable. Exits non-zero only on an error.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/crash/wal_crash.h"

static int
child_batch(evb_wal *w, uint64_t first)
{
	static uint8_t data[WAL_CRASH_MAX_BATCH][WAL_CRASH_MAX_LEN];
	evb_wal_rec    recs[WAL_CRASH_MAX_BATCH];
	size_t         n   = wal_crash_batch(first);
	uint64_t       got = 0;
	evb_diag       d   = { { 0 } };
	char           line[32];
	int            len;
	int            rc;

	for (size_t i = 0; i < n; i++) {
		wal_crash_fill(data[i], first + i);
		wal_crash_rec(&recs[i], first + i, data[i]);
	}
	if ((rc = evb_wal_append(w, recs, n, &got, &d)) != EVB_OK) {
		fprintf(stderr, "append: %s: %s\n", evb_strerror(rc), d.msg);
		return (rc);
	}
	if (got != first) {
		fprintf(stderr, "append: first offset %llu, expected %llu\n",
		    (unsigned long long) got, (unsigned long long) first);
		return (EVB_ECORRUPT);
	}
	len = snprintf(
	    line, sizeof(line), "%llu\n", (unsigned long long) (first + n - 1));
	// One write(2) per line: a kill lands before or after it, never
	// inside, so the parent sees whole lines only.
	return (write(STDOUT_FILENO, line, (size_t) len) == len ? EVB_OK
	                                                        : EVB_ESTORAGE);
}

int
main(int argc, char **argv)
{
	evb_wal *w    = NULL;
	evb_diag d    = { { 0 } };
	uint64_t last = 0;
	int      rc;

	if (argc != 2) {
		fprintf(stderr, "usage: wal_crash_child DIR\n");
		return (2);
	}
	if ((rc = evb_wal_open(&w, argv[1], NULL, &d)) != EVB_OK ||
	    (rc = evb_wal_last(w, &last)) != EVB_OK) {
		fprintf(stderr, "open: %s: %s\n", evb_strerror(rc), d.msg);
		evb_wal_close(w);
		return (1);
	}
	while ((rc = child_batch(w, last + 1)) == EVB_OK) {
		last += wal_crash_batch(last + 1);
	}
	evb_wal_close(w);
	return (1);
}
