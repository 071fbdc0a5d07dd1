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
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/support/support.h"
#include "wal/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CORPUS_MAX_FILES 4096
#define CORPUS_MAX_BYTES (100 * 1024) /* fuzz/README.md: stay small. */

typedef struct corpus {
	char  *dir;                     /* The corpus folder. */
	char  *names[CORPUS_MAX_FILES]; /* File names, sorted. */
	size_t count;                   /* Entries used in names. */
} corpus;

TestSuite(wal_corpus, .timeout = 60);

static int
corpus_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *) a, *(char *const *) b));
}

/* corpus_open lists the corpus folder; the test fails if it is missing. */
static void
corpus_open(corpus *c)
{
	const char    *src = evb_test_source_dir();
	DIR           *d;
	struct dirent *e;

	cr_assert_not_null(src, "EVB_SOURCE_DIR is not set (run via ctest)");
	c->dir = evb_ts_path(src, "fuzz/corpus/fuzz_wal_record");
	cr_assert_not_null(c->dir);
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

/* corpus_read returns the file's bytes (free them) and their count. */
static char *
corpus_read(const corpus *c, const char *name, size_t *len)
{
	char *path = evb_ts_path(c->dir, name);
	char *p    = NULL;

	cr_assert_not_null(path);
	cr_assert_eq(
	    evb_ts_file_read(path, &p, len), EVB_OK, "reading %s", path);
	free(path);
	return (p);
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return (strncmp(s, prefix, strlen(prefix)) == 0);
}

Test(wal_corpus, every_seed_passes_the_fuzz_target)
{
	corpus c;

	corpus_open(&c);
	cr_assert_gt(c.count, 0, "the corpus is empty");
	for (size_t i = 0; i < c.count; i++) {
		size_t len = 0;
		char  *p   = corpus_read(&c, c.names[i], &len);

		// Named first, so a crash in the target shows the file.
		cr_log_info("replaying %s (%zu bytes)", c.names[i], len);
		(void) LLVMFuzzerTestOneInput((const uint8_t *) p, len);
		free(p);
	}
	corpus_close(&c);
}

Test(wal_corpus, named_seeds_do_what_their_names_say)
{
	corpus c;
	size_t valid = 0, hostile = 0, total = 0;

	corpus_open(&c);
	for (size_t i = 0; i < c.count; i++) {
		const char   *name = c.names[i];
		size_t        len  = 0;
		char         *p    = corpus_read(&c, name, &len);
		evb_wal_entry e;
		evb_diag      d = { { 0 } };
		int           rc;

		total += len;
		rc = evb_wal_record_decode(1, p, len, &e, &d);
		if (has_prefix(name, "valid-")) {
			cr_assert_eq(
			    rc, EVB_OK, "%s must decode: %s", name, d.msg);
			valid++;
		} else if (has_prefix(name, "hostile-")) {
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
	corpus_close(&c);
}
