/*
 * compactor_env.c: the tables environment. Opening it (read-write for the
 * compactor, read-only for queries), its named DBs, the meta DB, the key
 * encodings, and the reset that a rebuild starts with.
 *
 * The tables are a second LMDB environment in DATA_DIR/tables, not more
 * DBs in the WAL's environment: LMDB allows one write txn per environment,
 * so projecting in the WAL's environment would make every append wait for
 * a projection commit. Separate, the collector's appends and the
 * compactor's commits never wait for each other; the WAL is only read.
 *
 * Every DB handle is opened once at open and kept (LMDB handles opened in
 * a committed txn are valid for the life of the environment). A reset
 * empties our DBs in place (mdb_drop with del 0), so that readers in
 * other processes keep valid handles across a rebuild; only DBs of an
 * older format, which readers of this version never open, are deleted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compactor/compactor_int.h"

/* Names of the DBs, in comp_db order. Part of the format. */
static const char *const comp_db_names[COMP_NDBS] = {
	"meta",
	"events",
	"minutes",
	"ix.symbol",
	"ix.signal_id",
	"ix.corr",
	"ix.user_id",
	"ix.ticket",
	"ix.command_id",
	"latest.balance",
	"latest.account",
	"latest.health",
	"latest.quote",
	"signal_events",
	"fire_commands",
	"trade_events",
	"balance_updates",
	"health_events",
	"user_actions",
	"market_data",
	"pattern_events",
};

/* The proto type each per-type table holds, checked against proto. */
static const char *const comp_type_names[COMP_NTYPES] = {
	"signal_generated",
	"fire_command",
	"trade_executed",
	"balance_update",
	"system_health",
	"user_action",
	"market_data",
	"pattern_detected",
};

const char *
comp_db_name(int i)
{
	evb_assert(i >= 0 && i < COMP_NDBS);
	return (comp_db_names[i]);
}

const char *
evb_compactor_table_name(int type)
{
	if (type < 0 || type >= COMP_NTYPES ||
	    (size_t) type >= evb_proto_type_count()) {
		return (NULL);
	}
	return (comp_db_names[COMP_DB_TYPE0 + type]);
}

static unsigned int
env_db_flags(int i)
{
	if (i >= COMP_DB_IX_SYMBOL && i <= COMP_DB_IX_COMMAND) {
		return (MDB_DUPSORT | MDB_DUPFIXED);
	}
	return (0);
}

int
comp_err(int rc, evb_diag *d, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return (EVB_OK);
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_EFULL);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INCOMPATIBLE:
		evb_diag_set(d,
		    "%s: %s: the tables are damaged; rebuild them "
		    "(evbus compact --rebuild)",
		    what, mdb_strerror(rc));
		return (EVB_ECORRUPT);
	case MDB_VERSION_MISMATCH:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_EVERSION);
	case ENOMEM:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_ENOMEM);
	default:
		evb_diag_set(d, "%s: %s", what, mdb_strerror(rc));
		return (EVB_ESTORAGE);
	}
}

/* ---- Keys ----------------------------------------------------------------
 * A signed time is stored with its sign bit flipped, big-endian, so that
 * byte order is numeric order for negative times too.
 */

void
comp_ts_put(uint8_t *p, int64_t ts)
{
	evb_put_be64(p, (uint64_t) ts ^ UINT64_C(0x8000000000000000));
}

int64_t
comp_ts_get(const uint8_t *p)
{
	return ((int64_t) (evb_get_be64(p) ^ UINT64_C(0x8000000000000000)));
}

void
comp_rowkey_put(uint8_t *p, int64_t ts, uint64_t off)
{
	comp_ts_put(p, ts);
	evb_put_be64(p + 8, off);
}

int64_t
comp_minute_of(int64_t ts)
{
	int64_t r = ts % COMP_NS_PER_MIN;

	if (ts < INT64_MIN + COMP_NS_PER_MIN) {
		return (INT64_MIN); // The first minute is cut short.
	}
	return (r < 0 ? ts - r - COMP_NS_PER_MIN : ts - r);
}

/* ---- Meta -----------------------------------------------------------------
 */

static int
meta_get(const comp_env *e, MDB_txn *txn, const char *key, MDB_val *v)
{
	MDB_val k = { strlen(key), (void *) key };

	return (mdb_get(txn, e->dbi[COMP_DB_META], &k, v));
}

static int
meta_put(const comp_env *e, MDB_txn *txn, const char *key, const void *p,
    size_t n, evb_diag *d)
{
	MDB_val k = { strlen(key), (void *) key };
	MDB_val v = { n, (void *) p };
	int     rc;

	if ((rc = mdb_put(txn, e->dbi[COMP_DB_META], &k, &v, 0)) != 0) {
		return (comp_err(rc, d, "writing the meta table"));
	}
	return (EVB_OK);
}

int
comp_meta_read(const comp_env *e, MDB_txn *txn, comp_meta *m, evb_diag *d)
{
	MDB_val v;
	int     rc;

	memset(m, 0, sizeof(*m));
	rc = meta_get(e, txn, COMP_META_POSITION, &v);
	if (rc == MDB_SUCCESS && v.mv_size == 8) {
		m->position = evb_get_be64(v.mv_data);
	} else if (rc == MDB_SUCCESS) {
		evb_diag_set(d,
		    "tables: meta.position: expected 8 bytes, "
		    "got %zu; rebuild the tables",
		    v.mv_size);
		return (EVB_ECORRUPT);
	} else if (rc != MDB_NOTFOUND) {
		return (comp_err(rc, d, "reading meta.position"));
	}
	rc = meta_get(e, txn, COMP_META_COUNTERS, &v);
	if (rc == MDB_SUCCESS && v.mv_size == COMP_COUNTERS_SIZE) {
		for (size_t i = 0; i < COMP_CNT_COUNT; i++) {
			m->cnt[i] =
			    evb_get_be64((const uint8_t *) v.mv_data + i * 8);
		}
	} else if (rc == MDB_SUCCESS) {
		evb_diag_set(d,
		    "tables: meta.counters: expected %d bytes, "
		    "got %zu; rebuild the tables",
		    COMP_COUNTERS_SIZE, v.mv_size);
		return (EVB_ECORRUPT);
	} else if (rc != MDB_NOTFOUND) {
		return (comp_err(rc, d, "reading meta.counters"));
	}
	return (EVB_OK);
}

int
comp_meta_write(
    const comp_env *e, MDB_txn *txn, const comp_meta *m, evb_diag *d)
{
	uint8_t pos[8];
	uint8_t cnt[COMP_COUNTERS_SIZE];
	int     rv;

	evb_put_be64(pos, m->position);
	for (size_t i = 0; i < COMP_CNT_COUNT; i++) {
		evb_put_be64(cnt + i * 8, m->cnt[i]);
	}
	if ((rv = meta_put(e, txn, COMP_META_POSITION, pos, 8, d)) != 0) {
		return (rv);
	}
	return (meta_put(e, txn, COMP_META_COUNTERS, cnt, sizeof(cnt), d));
}

/* ---- Opening ----------------------------------------------------------------
 */

/* env_format reads the format version: 0 when the meta DB or key is
 * absent (new tables). */
static int
env_format(MDB_txn *txn, uint32_t *ver, evb_diag *d)
{
	MDB_dbi meta;
	MDB_val k = { sizeof(COMP_META_FORMAT) - 1, (void *) COMP_META_FORMAT };
	MDB_val v;
	int     rc;

	*ver = 0;
	rc   = mdb_dbi_open(txn, comp_db_names[COMP_DB_META], 0, &meta);
	if (rc == MDB_NOTFOUND) {
		return (EVB_OK);
	}
	if (rc != MDB_SUCCESS) {
		return (comp_err(rc, d, "opening tables DB meta"));
	}
	rc = mdb_get(txn, meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		return (EVB_OK);
	}
	if (rc != MDB_SUCCESS) {
		return (comp_err(rc, d, "reading meta.format"));
	}
	if (v.mv_size != 4) {
		evb_diag_set(d,
		    "tables: meta.format: expected 4 bytes, got %zu",
		    v.mv_size);
		return (EVB_ECORRUPT);
	}
	*ver = evb_get_be32(v.mv_data);
	return (EVB_OK);
}

/* env_names lists the named DBs in the main DB. OUT: *names (free each
 * and the array) and *n. */
static int
env_names(MDB_txn *txn, char ***names, size_t *n, evb_diag *d)
{
	MDB_dbi     main_dbi;
	MDB_cursor *cur = NULL;
	MDB_val     k, v;
	char      **list = NULL;
	size_t      cnt  = 0;
	int         rc;
	int         rv = EVB_OK;

	if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0 ||
	    (rc = mdb_cursor_open(txn, main_dbi, &cur)) != 0) {
		return (comp_err(rc, d, "listing the tables' DBs"));
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char **grown = realloc(list, (cnt + 1) * sizeof(*list));

		if (grown == NULL ||
		    (grown[cnt] = calloc(1, k.mv_size + 1)) == NULL) {
			list = grown != NULL ? grown : list;
			rv   = EVB_ENOMEM;
			goto fail;
		}
		list = grown;
		memcpy(list[cnt++], k.mv_data, k.mv_size);
	}
	if (rc != MDB_NOTFOUND) {
		rv = comp_err(rc, d, "listing the tables' DBs");
		goto fail;
	}
	mdb_cursor_close(cur);
	*names = list;
	*n     = cnt;
	return (EVB_OK);

fail:
	mdb_cursor_close(cur);
	for (size_t i = 0; i < cnt; i++) {
		free(list[i]);
	}
	free(list);
	return (rv);
}

static int
env_name_index(const char *name)
{
	for (int i = 0; i < COMP_NDBS; i++) {
		if (strcmp(name, comp_db_names[i]) == 0) {
			return (i);
		}
	}
	return (-1);
}

/*
 * env_drop_names empties our DBs (keep_ours) or deletes them, and deletes
 * every other named DB.
 */
static int
env_drop_names(MDB_txn *txn, bool keep_ours, evb_diag *d)
{
	char  **names = NULL;
	size_t  n     = 0;
	int     rv;
	MDB_dbi dbi;
	int     rc;

	if ((rv = env_names(txn, &names, &n, d)) != 0) {
		return (rv);
	}
	for (size_t i = 0; i < n && rv == EVB_OK; i++) {
		bool ours = env_name_index(names[i]) >= 0;

		if ((rc = mdb_dbi_open(txn, names[i], 0, &dbi)) != 0 ||
		    (rc = mdb_drop(txn, dbi, ours && keep_ours ? 0 : 1)) != 0) {
			rv = comp_err(rc, d, names[i]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
	return (rv);
}

/* env_dbs_open opens (creating when create) every DB of ours. */
static int
env_dbs_open(comp_env *e, MDB_txn *txn, bool create, evb_diag *d)
{
	for (int i = 0; i < COMP_NDBS; i++) {
		unsigned int fl = env_db_flags(i) | (create ? MDB_CREATE : 0);
		int rc = mdb_dbi_open(txn, comp_db_names[i], fl, &e->dbi[i]);

		if (rc == MDB_NOTFOUND) {
			evb_diag_set(d,
			    "tables: DB %s is missing: these are not "
			    "complete evbus tables; rebuild them",
			    comp_db_names[i]);
			return (EVB_ECORRUPT);
		}
		if (rc != MDB_SUCCESS) {
			return (comp_err(rc, d, comp_db_names[i]));
		}
	}
	return (EVB_OK);
}

static int
env_format_write(comp_env *e, MDB_txn *txn, evb_diag *d)
{
	uint8_t ver[4];

	evb_put_be32(ver, EVB_COMPACTOR_FORMAT_VERSION);
	return (meta_put(e, txn, COMP_META_FORMAT, ver, sizeof(ver), d));
}

int
comp_env_reset(comp_env *e, MDB_txn *txn, evb_diag *d)
{
	uint32_t  ver;
	comp_meta zero;
	int       rv;

	memset(&zero, 0, sizeof(zero));
	if ((rv = env_format(txn, &ver, d)) != 0) {
		return (rv);
	}
	// Within one format our DBs are emptied in place (readers keep their
	// handles); across formats their flags may differ, so all go.
	if ((rv = env_drop_names(
	         txn, ver == EVB_COMPACTOR_FORMAT_VERSION, d)) != 0 ||
	    (rv = env_dbs_open(e, txn, true, d)) != 0 ||
	    (rv = env_format_write(e, txn, d)) != 0) {
		return (rv);
	}
	return (comp_meta_write(e, txn, &zero, d));
}

/* env_setup checks or writes the format and opens the DBs, in txn. */
static int
env_setup(comp_env *e, MDB_txn *txn, const char *dir, bool rebuild, evb_diag *d)
{
	uint32_t ver;
	int      rv;

	if (rebuild && !e->read_only) {
		return (comp_env_reset(e, txn, d));
	}
	if ((rv = env_format(txn, &ver, d)) != 0) {
		return (rv);
	}
	if (ver == 0) {
		char **names = NULL;
		size_t n     = 0;

		if ((rv = env_names(txn, &names, &n, d)) != 0) {
			return (rv);
		}
		for (size_t i = 0; i < n; i++) {
			free(names[i]);
		}
		free(names);
		if (n != 0) {
			evb_diag_set(d,
			    "%s: holds LMDB DBs but no tables format; "
			    "not evbus tables",
			    dir);
			return (EVB_ECORRUPT);
		}
		if (e->read_only) {
			evb_diag_set(d,
			    "%s: no tables yet: the compactor has not run on "
			    "this data directory",
			    dir);
			return (EVB_ENOTFOUND);
		}
		return (comp_env_reset(e, txn, d));
	}
	if (ver != EVB_COMPACTOR_FORMAT_VERSION) {
		evb_diag_set(d,
		    "%s: tables format %u, this build reads %d: rebuild "
		    "them (evbus compact --rebuild)",
		    dir, ver, EVB_COMPACTOR_FORMAT_VERSION);
		return (EVB_EVERSION);
	}
	return (env_dbs_open(e, txn, false, d));
}

/* env_check_proto checks that proto's types are the ones we have tables
 * for: a mismatch is a build that changed one without the other. */
static void
env_check_proto(void)
{
	for (int t = 0; t < COMP_NTYPES; t++) {
		const char *name = evb_proto_type_name(t);

		evb_assert(
		    name != NULL && strcmp(name, comp_type_names[t]) == 0);
	}
}

static int
env_create(
    comp_env *e, const char *dir, size_t map_size, bool sync, evb_diag *d)
{
	unsigned int flags = MDB_NOTLS;
	int          rc;
	int          dead;

	if (!e->read_only && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		int err = errno;

		evb_diag_set(d, "%s: cannot create: %s", dir, strerror(err));
		return (evb_err_errno(err));
	}
	// Either way a commit keeps the environment consistent; see
	// compactor.c, "Durability".
	if (e->read_only) {
		flags |= MDB_RDONLY;
	} else if (!sync) {
		flags |= MDB_NOSYNC | MDB_NOMETASYNC;
	} else {
		flags |= MDB_NOMETASYNC;
	}
	if ((rc = mdb_env_create(&e->env)) != 0) {
		e->env = NULL;
		return (comp_err(rc, d, "mdb_env_create"));
	}
	if ((rc = mdb_env_set_maxdbs(e->env, COMP_MAX_DBS)) != 0 ||
	    (map_size != 0 &&
	        (rc = mdb_env_set_mapsize(e->env, map_size)) != 0)) {
		return (comp_err(rc, d, "configuring the tables environment"));
	}
	if ((rc = mdb_env_open(e->env, dir, flags, 0600)) != 0) {
		if (rc == ENOENT) {
			evb_diag_set(d,
			    "%s: no tables yet: the compactor has not run on "
			    "this data directory",
			    dir);
			return (EVB_ENOTFOUND);
		}
		return (comp_err(rc, d, dir));
	}
	// Reader slots of dead processes would pin old pages.
	if ((rc = mdb_reader_check(e->env, &dead)) != 0) {
		return (comp_err(rc, d, "mdb_reader_check"));
	}
	return (EVB_OK);
}

int
comp_env_open(comp_env *e, const char *dir, bool read_only, size_t map_size,
    bool sync, bool rebuild, evb_diag *d)
{
	MDB_txn *txn = NULL;
	int      rc;
	int      rv;

	env_check_proto();
	memset(e, 0, sizeof(*e));
	e->read_only = read_only;
	if ((rv = env_create(e, dir, map_size, sync, d)) != 0) {
		goto fail;
	}
	rc = mdb_txn_begin(e->env, NULL, read_only ? MDB_RDONLY : 0, &txn);
	if (rc != 0) {
		rv = comp_err(rc, d, "beginning the open txn");
		goto fail;
	}
	if ((rv = env_setup(e, txn, dir, rebuild, d)) != 0) {
		goto txn_abort;
	}
	// A read txn is committed, not aborted, so that the DB handles it
	// opened stay valid (lmdb.h mdb_dbi_open).
	if ((rc = mdb_txn_commit(txn)) != 0) {
		rv = comp_err(rc, d, "committing the open txn");
		goto fail;
	}
	return (EVB_OK);

txn_abort:
	mdb_txn_abort(txn);
fail:
	comp_env_close(e);
	return (rv);
}

void
comp_env_close(comp_env *e)
{
	if (e->env != NULL) {
		mdb_env_close(e->env);
		e->env = NULL;
	}
}
