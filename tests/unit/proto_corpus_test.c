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
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CORPUS_MAX_FILES 4096

typedef struct corpus {
	char  *dir;                     /* The corpus folder. */
	char  *names[CORPUS_MAX_FILES]; /* File names, sorted. */
	size_t count;                   /* Entries used in names. */
} corpus;

static int
corpus_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *) a, *(char *const *) b));
}

/* corpus_open lists the corpus folder; the test fails if it is missing. */
static void
corpus_open(corpus *c)
{
	const char    *src = getenv("EVB_SOURCE_DIR");
	DIR           *d;
	struct dirent *e;
	size_t         n;

	cr_assert_not_null(src, "EVB_SOURCE_DIR is not set (run via ctest)");
	n      = strlen(src) + sizeof("/fuzz/corpus/fuzz_proto_decode");
	c->dir = malloc(n);
	cr_assert_not_null(c->dir);
	(void) snprintf(c->dir, n, "%s/fuzz/corpus/fuzz_proto_decode", src);
	c->count = 0;
	d        = opendir(c->dir);
	cr_assert_not_null(d, "no corpus at %s", c->dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') {
			continue;
		}
		cr_assert_lt(c->count, CORPUS_MAX_FILES);
		c->names[c->count] = strdup(e->d_name);
		cr_assert_not_null(c->names[c->count]);
		c->count++;
	}
	(void) closedir(d);
	qsort(c->names, c->count, sizeof(c->names[0]), corpus_cmp);
}

static void
corpus_close(corpus *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free(c->names[i]);
	}
	free(c->dir);
}

/* corpus_read returns the file's bytes (malloc'd, exactly *len long). */
static uint8_t *
corpus_read(const corpus *c, const char *name, size_t *len)
{
	char     path[4096];
	FILE    *f;
	long     n;
	uint8_t *p;

	(void) snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	cr_assert_eq(fseek(f, 0, SEEK_SET), 0);
	p = malloc(n > 0 ? (size_t) n : 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, (size_t) n, f), (size_t) n);
	(void) fclose(f);
	*len = (size_t) n;
	return (p);
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return (strncmp(s, prefix, strlen(prefix)) == 0);
}

/* check_named asserts what a file's name promises. */
static void
check_named(const char *name, const uint8_t *p, size_t len)
{
	evb_event *ev = NULL;
	evb_diag   d  = { { 0 } };

	if (has_prefix(name, "valid-")) {
		cr_assert_eq(evb_proto_event_decode(&ev, p, len, &d), EVB_OK,
		    "%s must decode: %s", name, d.msg);
		evb_proto_event_free(ev);
	} else if (has_prefix(name, "frame-")) {
		cr_assert_eq(evb_proto_frame_decode(&ev, p, len, &d), EVB_OK,
		    "%s must decode as a frame: %s", name, d.msg);
		evb_proto_event_free(ev);
	} else if (has_prefix(name, "hostile-")) {
		cr_assert_neq(evb_proto_event_decode(&ev, p, len, &d), EVB_OK,
		    "%s must be refused", name);
		cr_assert_neq(d.msg[0], '\0', "%s: empty diag", name);
	} else if (has_prefix(name, "batch-")) {
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
	corpus c;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		size_t   len = 0;
		uint8_t *p   = corpus_read(&c, c.names[i], &len);

		/* Named first, so a crash in the target shows the file. */
		cr_log_info("replaying %s (%zu bytes)", c.names[i], len);
		(void) LLVMFuzzerTestOneInput(p, len);
		free(p);
	}
	corpus_close(&c);
}

Test(corpus, named_seeds_do_what_their_names_say, .timeout = 120)
{
	corpus c;
	size_t valid = 0;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		size_t   len = 0;
		uint8_t *p   = corpus_read(&c, c.names[i], &len);

		check_named(c.names[i], p, len);
		if (has_prefix(c.names[i], "valid-")) {
			valid++;
		}
		free(p);
	}
	/* One valid seed per event type at least. */
	cr_assert_geq(
	    valid, evb_proto_type_count(), "only %zu valid seeds", valid);
	corpus_close(&c);
}

Test(corpus, seeds_stay_small, .timeout = 30)
{
	corpus c;
	size_t total = 0;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		size_t   len = 0;
		uint8_t *p   = corpus_read(&c, c.names[i], &len);

		total += len;
		free(p);
	}
	cr_assert_lt(total, 100 * 1024,
	    "corpus is %zu bytes; merge it with "
	    "-merge=1 (see fuzz/README.md)",
	    total);
	corpus_close(&c);
}
