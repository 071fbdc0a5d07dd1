/*
 * wal_crash_child: the writer that wal_crash_test kills. It opens the WAL
 * in directory argv[1] in SYNC mode and appends batches as fast as it can,
 * forever. After each append returns EVB_OK it writes the batch's last
 * offset as one line to stdout, so every line is a promise that the
 * offset is durable. Exits non-zero only on an error.
 *
 * Every record has an id. On start, the child first sends again the last
 * batch in the log, as a producer does that was killed before it saw the
 * reply: every record of it must come back as a duplicate of itself, or
 * the child exits with an error (duplicate suppression across a kill -9).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/crash/wal_crash.h"

/*
 * child_send appends the batch that starts at first; every record must
 * come back with its own offset and status want (EVB_OK for a new batch,
 * EVB_EEXIST for one sent again).
 */
static int
child_send(evb_wal *w, uint64_t first, int want)
{
	static uint8_t data[WAL_CRASH_MAX_BATCH][WAL_CRASH_MAX_LEN];
	static char    ids[WAL_CRASH_MAX_BATCH][WAL_CRASH_ID_MAX];
	evb_wal_rec    recs[WAL_CRASH_MAX_BATCH];
	evb_wal_result res[WAL_CRASH_MAX_BATCH];
	size_t         n = wal_crash_batch(first);
	evb_diag       d = { { 0 } };
	int            rc;

	for (size_t i = 0; i < n; i++) {
		wal_crash_fill(data[i], first + i);
		wal_crash_rec(&recs[i], first + i, data[i], ids[i]);
	}
	if ((rc = evb_wal_append(w, recs, n, res, &d)) != EVB_OK) {
		fprintf(stderr, "append: %s: %s\n", evb_strerror(rc), d.msg);
		return (rc);
	}
	for (size_t i = 0; i < n; i++) {
		if (res[i].off != first + i || res[i].status != want) {
			fprintf(stderr,
			    "append: record %zu: offset %llu status %d, "
			    "expected offset %llu status %d\n",
			    i, (unsigned long long) res[i].off, res[i].status,
			    (unsigned long long) (first + i), want);
			return (EVB_ECORRUPT);
		}
	}
	return (EVB_OK);
}

static int
child_batch(evb_wal *w, uint64_t first)
{
	size_t n = wal_crash_batch(first);
	char   line[32];
	int    len;
	int    rc;

	if ((rc = child_send(w, first, EVB_OK)) != EVB_OK) {
		return (rc);
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
	if (last > 0 &&
	    child_send(w, wal_crash_first(last), EVB_EEXIST) != EVB_OK) {
		evb_wal_close(w);
		return (1);
	}
	while ((rc = child_batch(w, last + 1)) == EVB_OK) {
		last += wal_crash_batch(last + 1);
	}
	evb_wal_close(w);
	return (1);
}
