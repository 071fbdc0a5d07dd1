/*
 * proto_corpus_test: replays the committed fuzz corpus in a normal build.
 *
 * Every file in fuzz/corpus/fuzz_proto_decode/ goes through the fuzz
 * target's own entry point (fuzz/fuzz_proto_decode.c is linked in), so
 * the properties it checks hold in every CI build, not only when someone
 * runs the fuzzer with clang. A file's name says what it must do:
 *   valid-*   evb_proto_event_decode accepts it;
 *   batch-*   the ingest iterator yields at least one event from it;
 *   frame-*   evb_proto_frame_decode accepts it;
 *   hostile-* evb_proto_event_decode refuses it;
 *   anything else (inputs libFuzzer saved: crash-*, or a hash) only has
 *   to get through the fuzz target without a crash or an abort.
 * EVB_SOURCE_DIR (set by evb_test) locates the corpus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto/proto.h"
#include "tests/support/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* corpus_open lists the corpus folder; the test fails if it is missing. */
static void
corpus_open(evb_ts_corpus *c)
{
	int rc = evb_ts_corpus_open(c, "fuzz_proto_decode");

	cr_assert_neq(
	    rc, EVB_EINVAL, "EVB_SOURCE_DIR is not set (run via ctest)");
	cr_assert_eq(rc, EVB_OK, "no corpus at %s", c->dir);
}

/* corpus_read returns the file's bytes (malloc'd, exactly *len long). */
static uint8_t *
corpus_read(const evb_ts_corpus *c, size_t i, size_t *len)
{
	char *p = NULL;

	cr_assert_eq(evb_ts_corpus_read(c, i, &p, len), EVB_OK,
	    "cannot open %s", c->names[i]);
	return ((uint8_t *) p);
}

/* check_named asserts what a file's name promises. */
static void
check_named(const char *name, const uint8_t *p, size_t len)
{
	evb_event *ev = NULL;
	evb_diag   d  = { { 0 } };

	if (evb_ts_has_prefix(name, "valid-")) {
		cr_assert_eq(evb_proto_event_decode(&ev, p, len, &d), EVB_OK,
		    "%s must decode: %s", name, d.msg);
		evb_proto_event_free(ev);
	} else if (evb_ts_has_prefix(name, "frame-")) {
		cr_assert_eq(evb_proto_frame_decode(&ev, p, len, &d), EVB_OK,
		    "%s must decode as a frame: %s", name, d.msg);
		evb_proto_event_free(ev);
	} else if (evb_ts_has_prefix(name, "hostile-")) {
		cr_assert_neq(evb_proto_event_decode(&ev, p, len, &d), EVB_OK,
		    "%s must be refused", name);
		cr_assert_neq(d.msg[0], '\0', "%s: empty diag", name);
	} else if (evb_ts_has_prefix(name, "batch-")) {
		evb_proto_ingest it;
		size_t           ok = 0;
		int              rc;

		cr_assert_eq(evb_proto_ingest_begin(&it, p, len, &d), EVB_OK,
		    "%s: %s", name, d.msg);
		cr_assert(it.is_batch, "%s is not an array", name);
		while ((rc = evb_proto_ingest_next(&it, &ev, &d)) != EVB_EOF) {
			if (rc == EVB_OK) {
				evb_proto_event_free(ev);
				ok++;
			}
		}
		cr_assert_gt(ok, 0, "%s yields no event", name);
	}
}

Test(corpus, every_seed_passes_the_fuzz_target, .timeout = 120)
{
	evb_ts_corpus c;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		size_t   len = 0;
		uint8_t *p   = corpus_read(&c, i, &len);

		/* Named first, so a crash in the target shows the file. */
		cr_log_info("replaying %s (%zu bytes)", c.names[i], len);
		(void) LLVMFuzzerTestOneInput(p, len);
		free(p);
	}
	evb_ts_corpus_close(&c);
}

Test(corpus, named_seeds_do_what_their_names_say, .timeout = 120)
{
	evb_ts_corpus c;
	size_t        valid = 0;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		size_t   len = 0;
		uint8_t *p   = corpus_read(&c, i, &len);

		check_named(c.names[i], p, len);
		if (evb_ts_has_prefix(c.names[i], "valid-")) {
			valid++;
		}
		free(p);
	}
	/* One valid seed per event type at least. */
	cr_assert_geq(
	    valid, evb_proto_type_count(), "only %zu valid seeds", valid);
	evb_ts_corpus_close(&c);
}

Test(corpus, seeds_stay_small, .timeout = 30)
{
	evb_ts_corpus c;
	size_t        total = 0;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		size_t   len = 0;
		uint8_t *p   = corpus_read(&c, i, &len);

		total += len;
		free(p);
	}
	cr_assert_lt(total, 100 * 1024,
	    "corpus is %zu bytes; merge it with "
	    "-merge=1 (see fuzz/README.md)",
	    total);
	evb_ts_corpus_close(&c);
}
