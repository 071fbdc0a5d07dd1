/*
 * wal_testlib.h: helpers shared by the tests that drive wal/wal.h
 * (tests/unit/wal_*_test.c and tests/integration/wal_cli_test.c).
 *
 * A fresh log directory per test, opening a log and failing the test with
 * the diag if that fails, an injected clock read from the test's own
 * atomic counter (so nothing sleeps), reading and damaging a closed log
 * by hand (flipping a byte of data.mdb, or LMDB's own API), and a
 * reference CRC-32C independent of wal_crc.c.
 * Everything is static inline, as in tests/unit/proto_testlib.h: each
 * test file is its own executable and uses a different subset, and
 * wal_crc_portable_test links wal_crc.c alone, without evb_wal.
 */
#ifndef EVB_WAL_TESTLIB_H
#define EVB_WAL_TESTLIB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "tests/support/support.h"
#include "wal/wal.h"

/*
 * wtl_dir_make makes a fresh temporary directory for .init.
 * OUT: *tmp, and *wal_dir: tmp/wal, not created (evb_wal_open does that).
 * Release both with wtl_dir_remove.
 */
static inline void
wtl_dir_make(char **tmp, char **wal_dir)
{
	cr_assert_eq(evb_ts_tmpdir_make(tmp), EVB_OK);
	*wal_dir = evb_ts_path(*tmp, "wal");
	cr_assert_not_null(*wal_dir);
}

/* wtl_dir_remove frees wal_dir and removes tmp with all below it. */
static inline void
wtl_dir_remove(char *tmp, char *wal_dir)
{
	free(wal_dir);
	(void) evb_ts_tmpdir_remove(tmp);
}

/*
 * wtl_clock is an evb_wal_clock_fn for tests: it returns the value of the
 * _Atomic int64_t that clock_arg points at (nanoseconds), which the test
 * moves forward with atomic_store or atomic_fetch_add.
 */
static inline int64_t
wtl_clock(void *arg)
{
	return (atomic_load((_Atomic int64_t *) arg));
}

/* wtl_open opens the log at dir with o (NULL: defaults); it must work. */
static inline evb_wal *
wtl_open(const char *dir, const evb_wal_opts *o)
{
	evb_wal *w = NULL;
	evb_diag d = { { 0 } };

	cr_assert_eq(evb_wal_open(&w, dir, o, &d), EVB_OK, "%s", d.msg);
	cr_assert_not_null(w);
	return (w);
}

/*
 * wtl_flip_marker flips the last byte of every copy of marker in
 * wal_dir/data.mdb (the log must be closed); at least one must be there.
 */
static inline void
wtl_flip_marker(const char *wal_dir, const char *marker)
{
	char  *path = evb_ts_path(wal_dir, "data.mdb");
	char  *buf;
	size_t len, mlen = strlen(marker), hits = 0;

	cr_assert_not_null(path);
	cr_assert_eq(evb_ts_file_read(path, &buf, &len), EVB_OK);
	for (size_t i = 0; i + mlen <= len; i++) {
		if (memcmp(buf + i, marker, mlen) == 0) {
			buf[i + mlen - 1] ^= 0x20;
			hits++;
		}
	}
	cr_assert_geq(hits, 1, "marker %s not found in data.mdb", marker);
	cr_assert_eq(evb_ts_file_write(path, buf, len), EVB_OK);
	free(buf);
	free(path);
}

/*
 * Raw LMDB access to a closed log, for reading it and damaging it by hand
 * (a test that uses it links LMDB). wtl_raw_begin opens wal_dir's env
 * and a txn (a write txn when is_write) on the named DB db;
 * wtl_raw_end commits it and closes the env.
 */
typedef struct wtl_raw {
	MDB_env *env; /* The log's environment. */
	MDB_txn *txn; /* The open txn. */
	MDB_dbi  dbi; /* The named DB. */
} wtl_raw;

static inline void
wtl_raw_begin(wtl_raw *r, const char *wal_dir, const char *db, bool is_write)
{
	cr_assert_eq(mdb_env_create(&r->env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(r->env, 8), 0);
	cr_assert_eq(
	    mdb_env_open(r->env, wal_dir, is_write ? 0 : MDB_RDONLY, 0600), 0);
	cr_assert_eq(
	    mdb_txn_begin(r->env, NULL, is_write ? 0 : MDB_RDONLY, &r->txn), 0);
	cr_assert_eq(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0);
}

static inline void
wtl_raw_end(wtl_raw *r)
{
	cr_assert_eq(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

/* wtl_ref_crc32c is a bit-at-a-time CRC-32C, independent of wal_crc.c. */
static inline uint32_t
wtl_ref_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++) {
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
		}
	}
	return (~crc);
}

#endif /* EVB_WAL_TESTLIB_H */
