/*
 * wal_corpus_test: replays the committed seeds of the WAL record fuzzer,
 * fuzz/corpus/fuzz_wal_record/, in a normal build.
 *
 * Every file goes through the fuzz target's own entry point
 * (fuzz/fuzz_wal_record.c is linked in), so the properties it checks hold
 * in every CI build, not only when someone runs the fuzzer with clang. A
 * file's name says what it must do:
 *   valid-*   evb_wal_record_decode accepts it;
 *   hostile-* evb_wal_record_decode refuses it with EVB_ECORRUPT;
 *   anything else (inputs libFuzzer saved: crash-*, or a hash) only has
 *   to get through the fuzz target without a crash or an abort.
 * fuzz/gen_wal_corpus.py writes the named seeds. EVB_SOURCE_DIR (set by
 * evb_test) locates the corpus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/support/support.h"
#include "wal/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CORPUS_MAX_BYTES (100 * 1024) /* fuzz/README.md: stay small. */

TestSuite(wal_corpus, .timeout = 60);

/* corpus_open lists the corpus folder; the test fails if it is missing. */
static void
corpus_open(evb_ts_corpus *c)
{
	int rc = evb_ts_corpus_open(c, "fuzz_wal_record");

	cr_assert_neq(
	    rc, EVB_EINVAL, "EVB_SOURCE_DIR is not set (run via ctest)");
	cr_assert_eq(rc, EVB_OK, "no corpus at %s", c->dir);
}

/* corpus_read returns the file's bytes (free them) and their count. */
static char *
corpus_read(const evb_ts_corpus *c, size_t i, size_t *len)
{
	char *p = NULL;

	cr_assert_eq(evb_ts_corpus_read(c, i, &p, len), EVB_OK, "reading %s",
	    c->names[i]);
	return (p);
}

Test(wal_corpus, every_seed_passes_the_fuzz_target)
{
	evb_ts_corpus c;

	corpus_open(&c);
	cr_assert_gt(c.count, 0, "the corpus is empty");
	for (size_t i = 0; i < c.count; i++) {
		size_t len = 0;
		char  *p   = corpus_read(&c, i, &len);

		// Named first, so a crash in the target shows the file.
		cr_log_info("replaying %s (%zu bytes)", c.names[i], len);
		(void) LLVMFuzzerTestOneInput((const uint8_t *) p, len);
		free(p);
	}
	evb_ts_corpus_close(&c);
}

Test(wal_corpus, named_seeds_do_what_their_names_say)
{
	evb_ts_corpus c;
	size_t        valid = 0, hostile = 0, total = 0;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		const char   *name = c.names[i];
		size_t        len  = 0;
		char         *p    = corpus_read(&c, i, &len);
		evb_wal_entry e;
		evb_diag      d = { { 0 } };
		int           rc;

		total += len;
		rc = evb_wal_record_decode(1, p, len, &e, &d);
		if (evb_ts_has_prefix(name, "valid-")) {
			cr_assert_eq(
			    rc, EVB_OK, "%s must decode: %s", name, d.msg);
			valid++;
		} else if (evb_ts_has_prefix(name, "hostile-")) {
			cr_assert_eq(
			    rc, EVB_ECORRUPT, "%s must be refused", name);
			cr_assert_neq(d.msg[0], '\0', "%s: empty diag", name);
			hostile++;
		}
		free(p);
	}
	cr_assert_geq(valid, 3, "only %zu valid seeds", valid);
	cr_assert_eq(
	    evb_wal_record_decode(1, NULL, 0, &(evb_wal_entry) { 0 }, NULL),
	    EVB_ECORRUPT);
	cr_assert_eq(
	    evb_wal_record_decode(1, NULL, 5, &(evb_wal_entry) { 0 }, NULL),
	    EVB_EINVAL);
	cr_assert_eq(evb_wal_record_decode(1, "x", 1, NULL, NULL), EVB_EINVAL);
	cr_assert_geq(hostile, 8, "only %zu hostile seeds", hostile);
	cr_assert_lt(total, CORPUS_MAX_BYTES,
	    "corpus is %zu bytes; merge it with -merge=1 (fuzz/README.md)",
	    total);
	evb_ts_corpus_close(&c);
}
