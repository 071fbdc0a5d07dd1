/*
 * compactor_int.h: declarations shared by the compactor/ sources. Not part
 * of the contract; only the sources in compactor/ include it.
 *
 * Every byte layout below is part of the tables' format (docs/tables.md):
 * changing one breaks existing tables. Bump EVB_COMPACTOR_FORMAT_VERSION
 * in the same commit, and update the encoders and decoders here,
 * docs/tables.md and tests/unit/compactor_*_test.c with it. Old tables
 * are then migrated by a rebuild (evb_compactor_rebuild drops every named
 * DB it does not know).
 */
#ifndef EVB_COMPACTOR_INT_H
#define EVB_COMPACTOR_INT_H

#include <pthread.h>

#include <lmdb.h>

#include "compactor/compactor.h"
#include "proto/proto.h"

/* The named DBs of the tables environment (docs/tables.md). */
typedef enum comp_db {
	COMP_DB_META = 0,       /* "meta": format, position, counters. */
	COMP_DB_EVENTS,         /* "events": row key -> type. */
	COMP_DB_MINUTES,        /* "minutes": minute|type -> count|volume. */
	COMP_DB_IX_SYMBOL,      /* "ix.symbol": symbol -> ix entries. */
	COMP_DB_IX_SIGNAL,      /* "ix.signal_id". */
	COMP_DB_IX_CORR,        /* "ix.corr". */
	COMP_DB_IX_USER,        /* "ix.user_id". */
	COMP_DB_IX_TICKET,      /* "ix.ticket": ticket (8 bytes). */
	COMP_DB_IX_COMMAND,     /* "ix.command_id". */
	COMP_DB_LATEST_BALANCE, /* "latest.balance": user_id -> row key. */
	COMP_DB_LATEST_ACCOUNT, /* "latest.account": account_id. */
	COMP_DB_LATEST_HEALTH,  /* "latest.health": component. */
	COMP_DB_LATEST_QUOTE,   /* "latest.quote": symbol. */
	COMP_DB_TYPE0,          /* The first per-type table; type t is
	                           COMP_DB_TYPE0 + t. */
} comp_db;

/* Event types with a table: the eight of proto_schema.c, in its order.
 * comp_env_open checks that proto agrees. */
#define COMP_NTYPES 8
#define COMP_NDBS (COMP_DB_TYPE0 + COMP_NTYPES)
/* Room for named DBs: ours, and old ones a rebuild must find and drop. */
#define COMP_MAX_DBS 64

/* Key and value sizes. */
#define COMP_ROWKEY_SIZE 16 /* ts (flipped, BE) | WAL offset (BE). */
#define COMP_IXVAL_SIZE 18  /* type (BE16) | row key. */
#define COMP_MINKEY_SIZE 10 /* minute start (flipped, BE) | type (BE16). */
#define COMP_MINVAL_SIZE 16 /* count (BE64) | volume sum (f64 bits BE). */

/* meta keys and the counters value: u64 BE each, in this order. */
#define COMP_META_FORMAT "format"     /* u32 BE. */
#define COMP_META_POSITION "position" /* u64 BE. */
#define COMP_META_COUNTERS "counters"
enum {
	COMP_CNT_EVENTS = 0,
	COMP_CNT_GAPS,
	COMP_CNT_BAD,
	COMP_CNT_MISSED,
	COMP_CNT_TYPE0, /* Per-type counts follow, EVB_COMPACTOR_MAX_TYPES. */
	COMP_CNT_COUNT = COMP_CNT_TYPE0 + EVB_COMPACTOR_MAX_TYPES,
};
#define COMP_COUNTERS_SIZE (COMP_CNT_COUNT * 8)

#define COMP_NS_PER_MIN INT64_C(60000000000)
#define COMP_NS_PER_MS 1000000

/* An open tables environment and its DB handles. */
typedef struct comp_env {
	MDB_env *env;            /* NULL until opened. */
	MDB_dbi  dbi[COMP_NDBS]; /* Valid after comp_env_open. */
	bool     read_only;      /* Opened with MDB_RDONLY. */
} comp_env;

/* What a writer keeps of the meta DB. */
typedef struct comp_meta {
	uint64_t position;            /* Last WAL offset projected. */
	uint64_t cnt[COMP_CNT_COUNT]; /* COMP_CNT_* counters. */
} comp_meta;

/* ---- compactor_env.c ---------------------------------------------------- */

/* comp_err translates an LMDB or errno code; the diag keeps its text. */
int comp_err(int rc, evb_diag *d, const char *what);

/* comp_db_name returns the name of DB i (0 <= i < COMP_NDBS). */
const char *comp_db_name(int i);

/*
 * comp_env_open opens the environment in dir. Writers (read_only false)
 * create dir (0700) and every DB, write the format into new tables and
 * check it in old ones (EVB_EVERSION), unless rebuild: then every named
 * DB is dropped first (comp_env_reset). Readers need it all to exist
 * (EVB_ENOTFOUND). map_size 0 keeps the size the file has.
 */
int comp_env_open(comp_env *e, const char *dir, bool read_only, size_t map_size,
    bool sync, bool rebuild, evb_diag *d);

/* comp_env_close closes the environment; a zeroed e is ok. */
void comp_env_close(comp_env *e);

/*
 * comp_env_reset empties every DB of ours and deletes every other named
 * DB (an older format's) in txn, then writes the format, position 0 and
 * zero counters. Opens our DBs (creating them) into e->dbi.
 */
int comp_env_reset(comp_env *e, MDB_txn *txn, evb_diag *d);

/* comp_meta_read reads position and counters (zero when absent). */
int comp_meta_read(const comp_env *e, MDB_txn *txn, comp_meta *m, evb_diag *d);

/* comp_meta_write stores position and counters. */
int comp_meta_write(
    const comp_env *e, MDB_txn *txn, const comp_meta *m, evb_diag *d);

/* ---- Keys (compactor_env.c) --------------------------------------------- */

/* comp_ts_put writes ts as 8 bytes that sort like the signed value. */
void    comp_ts_put(uint8_t *p, int64_t ts);
int64_t comp_ts_get(const uint8_t *p);

/* comp_rowkey_put writes the 16-byte row key of (ts, off). */
void comp_rowkey_put(uint8_t *p, int64_t ts, uint64_t off);

/* comp_minute_of rounds ts down to the start of its minute. */
int64_t comp_minute_of(int64_t ts);

/* ---- compactor_project.c ------------------------------------------------ */

/* Per-minute counts gathered during one step, written at its end. */
#define COMP_MINUTE_SLOTS                                 \
	64 /* Distinct (minute, type) pairs held before a \
	      flush; a batch rarely spans more. */
typedef struct comp_minute_slot {
	uint8_t  key[COMP_MINKEY_SIZE]; /* minute | type. */
	uint64_t count;                 /* Stored count plus this step's. */
	double   volume;                /* Likewise, the volume sum. */
} comp_minute_slot;

/* One write step: the txn and what it has changed so far. */
typedef struct comp_batch {
	const comp_env  *e;    /* The environment. */
	MDB_txn         *txn;  /* The write txn of the step. */
	comp_meta        meta; /* Position and counters as of now. */
	comp_minute_slot min[COMP_MINUTE_SLOTS]; /* Pending minute rows. */
	size_t           nmin;                   /* Slots in use. */
	bool map_full; /* The step failed for want of map space (so a
	                  larger map lets it commit), not of disk. */
} comp_batch;

/*
 * comp_project_event projects the event record ent (not a gap record)
 * into b's txn and counts it. A record that does not decode as a known
 * event is counted as bad, not an error; *bad tells (and the diag why).
 * Errors are LMDB's (comp_err): the step must be aborted.
 */
int comp_project_event(
    comp_batch *b, const evb_wal_entry *ent, bool *bad, evb_diag *d);

/* comp_minutes_flush adds the pending minute counts to the DB. */
int comp_minutes_flush(comp_batch *b, evb_diag *d);

/* Which latest-state table a type feeds, by key field. */
typedef struct comp_latest_spec {
	comp_db     db;    /* COMP_DB_LATEST_*. */
	int         type;  /* Proto type index. */
	const char *field; /* data field whose value is the key. */
} comp_latest_spec;

/*
 * comp_type_indexes says whether events of type (0 <= type < COMP_NTYPES)
 * have entries in index db (a COMP_DB_IX_*): every type in ix.corr, and
 * in the others only the types whose schema has the field.
 */
bool comp_type_indexes(int type, comp_db db);

/* comp_latest_spec_of returns the spec of a latest table kind, or NULL. */
const comp_latest_spec *comp_latest_spec_of(evb_compactor_latest kind);

/* ---- compactor_query.c ------------------------------------------------- */

struct evb_compactor_tables {
	comp_env         e;        /* Read-only environment. */
	pthread_rwlock_t map_lock; /* Shared by every read txn, exclusive
	                              to adopt a grown map. */
	bool has_lock;             /* map_lock initialised. */
};

/* comp_read_begin starts a read txn (adopting a grown map); end it with
 * comp_read_end. */
int  comp_read_begin(evb_compactor_tables *t, MDB_txn **txn, evb_diag *d);
void comp_read_end(evb_compactor_tables *t, MDB_txn *txn);

/* comp_row_fetch reads the row that item (type | row key) points to;
 * EVB_ECORRUPT when it is missing. */
int comp_row_fetch(const comp_env *e, MDB_txn *txn, const uint8_t *item,
    evb_compactor_row *row, evb_diag *d);

#endif /* EVB_COMPACTOR_INT_H */
