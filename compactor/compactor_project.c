/*
 * compactor_project.c: what one event becomes in the tables. Each event
 * record gives, in the step's write txn (docs/tables.md has the bytes):
 *
 *   - one row in its type's table: row key (ts, offset) -> the envelope
 *     exactly as stored in the WAL, so a query returns the full event and
 *     the payload is stored once;
 *   - one entry in "events", the all-events time index: row key -> type;
 *   - one entry per secondary index that its type has a field for (the
 *     schema bounds those fields to EVB_PROTO_MAX_ID bytes, so they fit
 *     an LMDB key; a longer one, which the broker would have refused,
 *     is treated as absent rather than failing the step): key -> type |
 *     row key, as sorted duplicates, so that one key's entries are
 *     ordered by type, then time, and a type's time range is one
 *     contiguous run;
 *   - the latest-state rows its key feeds, replaced only by an event
 *     whose row key (ts, then offset) is greater, so replaying the log in
 *     any order of ts ends in the same state;
 *   - its minute's count (and volume sum), gathered in memory during the
 *     step and added once per (minute, type) at the end of it.
 *
 * Records are read in place (evb_proto_env_head): the broker validated
 * each event before it was stored and the WAL checked its CRC, so only
 * the fields used here are read, not the whole event decoded again.
 *
 * Every row key ends with the WAL offset, which is unique, so no two
 * events share a key and a projection is idempotent except for counts;
 * counts are exact because the position commits with them.
 */
#include <string.h>

#include "compactor/compactor_int.h"

/* The secondary indexes a type feeds, by data field. */
#define SPEC_MAX_IX 5

typedef struct spec_ix {
	comp_db     db;     /* COMP_DB_IX_*. */
	const char *field;  /* data field. */
	bool        is_int; /* The field is an integer (ticket). */
} spec_ix;

typedef struct spec_type {
	spec_ix ix[SPEC_MAX_IX]; /* Ends at the first NULL field. */
	bool    has_volume;      /* Sum data.volume per minute. */
} spec_type;

#define IX_SYMBOL                                  \
	{                                          \
		COMP_DB_IX_SYMBOL, "symbol", false \
	}
#define IX_SIGNAL                                     \
	{                                             \
		COMP_DB_IX_SIGNAL, "signal_id", false \
	}
#define IX_USER                                   \
	{                                         \
		COMP_DB_IX_USER, "user_id", false \
	}
#define IX_COMMAND                                      \
	{                                               \
		COMP_DB_IX_COMMAND, "command_id", false \
	}
#define IX_TICKET                                 \
	{                                         \
		COMP_DB_IX_TICKET, "ticket", true \
	}

// In proto type order (compactor_env.c checks the names at open).
static const spec_type spec_types[COMP_NTYPES] = {
	{ { IX_SYMBOL, IX_SIGNAL }, false },                     /* signal */
	{ { IX_SYMBOL, IX_SIGNAL, IX_USER, IX_COMMAND }, true }, /* fire */
	{ { IX_SYMBOL, IX_SIGNAL, IX_USER, IX_COMMAND, IX_TICKET }, true },
	{ { IX_USER }, false },   /* balance_update */
	{ { { 0 } }, false },     /* system_health */
	{ { IX_USER }, false },   /* user_action */
	{ { IX_SYMBOL }, true },  /* market_data */
	{ { IX_SYMBOL }, false }, /* pattern_detected */
};

static const comp_latest_spec spec_latest[] = {
	{ COMP_DB_LATEST_BALANCE, 3, "user_id" },
	{ COMP_DB_LATEST_ACCOUNT, 3, "account_id" },
	{ COMP_DB_LATEST_HEALTH, 4, "component" },
	{ COMP_DB_LATEST_QUOTE, 6, "symbol" },
};

#define NLATEST (sizeof(spec_latest) / sizeof(spec_latest[0]))

bool
comp_type_indexes(int type, comp_db db)
{
	evb_assert(type >= 0 && type < COMP_NTYPES);
	if (db == COMP_DB_IX_CORR) {
		return (true);
	}
	for (const spec_ix *ix = spec_types[type].ix;
	     ix < spec_types[type].ix + SPEC_MAX_IX && ix->field != NULL;
	     ix++) {
		if (ix->db == db) {
			return (true);
		}
	}
	return (false);
}

const comp_latest_spec *
comp_latest_spec_of(evb_compactor_latest kind)
{
	if ((unsigned) kind >= NLATEST) {
		return (NULL);
	}
	return (&spec_latest[kind]);
}

static int
project_put(comp_batch *b, comp_db db, const void *k, size_t klen,
    const void *v, size_t vlen, evb_diag *d)
{
	MDB_val key = { klen, (void *) k };
	MDB_val val = { vlen, (void *) v };
	int     rc  = mdb_put(b->txn, b->e->dbi[db], &key, &val, 0);

	if (rc != MDB_SUCCESS) {
		return (comp_err(rc, d, comp_db_name(db)));
	}
	return (EVB_OK);
}

/* project_index adds the event's entries to the secondary indexes. */
static int
project_index(comp_batch *b, const evb_proto_head *ev, int type,
    const uint8_t *ixval, evb_diag *d)
{
	evb_str s = ev->corr;
	int     rv;

	if (s.len > 0 &&
	    (rv = project_put(b, COMP_DB_IX_CORR, s.ptr, s.len, ixval,
	         COMP_IXVAL_SIZE, d)) != 0) {
		return (rv);
	}
	for (const spec_ix *ix = spec_types[type].ix;
	     ix < spec_types[type].ix + SPEC_MAX_IX && ix->field != NULL;
	     ix++) {
		uint8_t tk[8];
		int64_t iv;

		if (ix->is_int) {
			if (evb_proto_head_get_int(ev, ix->field, &iv) != 0) {
				continue;
			}
			comp_ts_put(tk, iv);
			s.ptr = (const char *) tk;
			s.len = sizeof(tk);
		} else if (evb_proto_head_get_str(ev, ix->field, &s) != 0 ||
		    s.len == 0 || s.len > EVB_PROTO_MAX_ID) {
			continue; // An optional field the event lacks.
		}
		if ((rv = project_put(b, ix->db, s.ptr, s.len, ixval,
		         COMP_IXVAL_SIZE, d)) != 0) {
			return (rv);
		}
	}
	return (EVB_OK);
}

/* project_latest replaces a latest-state row when rowkey is newer. */
static int
project_latest(comp_batch *b, const evb_proto_head *ev, int type,
    const uint8_t *rowkey, evb_diag *d)
{
	for (size_t i = 0; i < NLATEST; i++) {
		const comp_latest_spec *ls = &spec_latest[i];
		evb_str                 s;
		MDB_val                 k, v;
		int                     rc;

		if (ls->type != type ||
		    evb_proto_head_get_str(ev, ls->field, &s) != 0 ||
		    s.len == 0 || s.len > EVB_PROTO_MAX_ID) {
			continue;
		}
		k.mv_size = s.len;
		k.mv_data = (void *) s.ptr;
		rc        = mdb_get(b->txn, b->e->dbi[ls->db], &k, &v);
		if (rc == MDB_SUCCESS && v.mv_size == COMP_ROWKEY_SIZE &&
		    memcmp(v.mv_data, rowkey, COMP_ROWKEY_SIZE) >= 0) {
			continue; // What is stored is newer: keep it.
		}
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
			return (comp_err(rc, d, comp_db_name(ls->db)));
		}
		if ((rc = project_put(b, ls->db, s.ptr, s.len, rowkey,
		         COMP_ROWKEY_SIZE, d)) != 0) {
			return (rc);
		}
	}
	return (EVB_OK);
}

static void
minute_val_put(uint8_t *p, uint64_t count, double volume)
{
	uint64_t bits;

	memcpy(&bits, &volume, sizeof(bits));
	evb_put_be64(p, count);
	evb_put_be64(p + 8, bits);
}

static double
minute_vol_get(const uint8_t *p)
{
	uint64_t bits = evb_get_be64(p + 8);
	double   v;

	memcpy(&v, &bits, sizeof(v));
	return (v);
}

int
comp_minutes_flush(comp_batch *b, evb_diag *d)
{
	for (size_t i = 0; i < b->nmin; i++) {
		comp_minute_slot *s = &b->min[i];
		uint8_t           val[COMP_MINVAL_SIZE];
		int               rv;

		minute_val_put(val, s->count, s->volume);
		if ((rv = project_put(b, COMP_DB_MINUTES, s->key,
		         COMP_MINKEY_SIZE, val, sizeof(val), d)) != 0) {
			return (rv);
		}
	}
	b->nmin = 0;
	return (EVB_OK);
}

/* minute_load starts a slot from the stored count and sum of key. */
static int
minute_load(comp_batch *b, comp_minute_slot *s, evb_diag *d)
{
	MDB_val k = { COMP_MINKEY_SIZE, s->key };
	MDB_val v;
	int     rc;

	s->count  = 0;
	s->volume = 0;
	rc        = mdb_get(b->txn, b->e->dbi[COMP_DB_MINUTES], &k, &v);
	if (rc == MDB_NOTFOUND) {
		return (EVB_OK);
	}
	if (rc != MDB_SUCCESS) {
		return (comp_err(rc, d, "minutes"));
	}
	if (v.mv_size != COMP_MINVAL_SIZE) {
		evb_diag_set(d,
		    "tables: minutes: a value of %zu bytes, expected %d; "
		    "rebuild the tables",
		    v.mv_size, COMP_MINVAL_SIZE);
		return (EVB_ECORRUPT);
	}
	s->count  = evb_get_be64(v.mv_data);
	s->volume = minute_vol_get(v.mv_data);
	return (EVB_OK);
}

/*
 * project_minute counts the event in its (minute, type) slot. A slot
 * starts from the stored values and adds each event's volume in log
 * order, so the floating-point sum is the same however the log is cut
 * into steps: a rebuild equals an incremental projection bit for bit.
 */
static int
project_minute(
    comp_batch *b, const evb_proto_head *ev, int type, int64_t ts, evb_diag *d)
{
	uint8_t key[COMP_MINKEY_SIZE];
	double  vol = 0;
	size_t  i;
	int     rv;

	comp_ts_put(key, comp_minute_of(ts));
	evb_put_be16(key + 8, (uint16_t) type);
	if (spec_types[type].has_volume &&
	    evb_proto_head_get_num(ev, "volume", &vol) != 0) {
		vol = 0;
	}
	for (i = b->nmin; i > 0; i--) {
		if (memcmp(b->min[i - 1].key, key, sizeof(key)) == 0) {
			break;
		}
	}
	if (i == 0) {
		if (b->nmin == COMP_MINUTE_SLOTS &&
		    (rv = comp_minutes_flush(b, d)) != 0) {
			return (rv);
		}
		i = ++b->nmin;
		memcpy(b->min[i - 1].key, key, sizeof(key));
		if ((rv = minute_load(b, &b->min[i - 1], d)) != 0) {
			return (rv);
		}
	}
	b->min[i - 1].count++;
	b->min[i - 1].volume += vol;
	return (EVB_OK);
}

static int
project_rows(comp_batch *b, const evb_wal_entry *ent, const evb_proto_head *ev,
    int type, evb_diag *d)
{
	int64_t  ts = ev->has_ts ? ev->ts : ent->ts_ns;
	uint8_t  ixval[COMP_IXVAL_SIZE];
	uint8_t *rowkey = ixval + 2;
	uint8_t  t16[2];
	int      rv;

	evb_put_be16(ixval, (uint16_t) type);
	comp_rowkey_put(rowkey, ts, ent->off);
	evb_put_be16(t16, (uint16_t) type);
	if ((rv = project_put(b, COMP_DB_TYPE0 + type, rowkey, COMP_ROWKEY_SIZE,
	         ent->payload, ent->len, d)) != 0 ||
	    (rv = project_put(b, COMP_DB_EVENTS, rowkey, COMP_ROWKEY_SIZE, t16,
	         sizeof(t16), d)) != 0 ||
	    (rv = project_index(b, ev, type, ixval, d)) != 0 ||
	    (rv = project_latest(b, ev, type, rowkey, d)) != 0) {
		return (rv);
	}
	return (project_minute(b, ev, type, ts, d));
}

int
comp_project_event(
    comp_batch *b, const evb_wal_entry *ent, bool *bad, evb_diag *d)
{
	evb_proto_head h;
	int            rv;

	// The event was validated when it was published and the record's
	// CRC has been checked: its envelope and the few data fields the
	// tables need are read in place, without decoding the event.
	*bad = false;
	if (evb_proto_env_head(ent->payload, ent->len, &h, d) != EVB_OK) {
		*bad = true;
		b->meta.cnt[COMP_CNT_BAD]++;
		return (EVB_OK);
	}
	if (h.type != (int) ent->type || h.type >= COMP_NTYPES ||
	    h.data == NULL) {
		evb_diag_set(d,
		    "record type %u, event type %d%s: expected equal types "
		    "with a table, and data",
		    ent->type, h.type, h.data == NULL ? ", no data" : "");
		*bad = true;
		b->meta.cnt[COMP_CNT_BAD]++;
		return (EVB_OK);
	}
	rv = project_rows(b, ent, &h, h.type, d);
	if (rv == EVB_OK) {
		b->meta.cnt[COMP_CNT_EVENTS]++;
		b->meta.cnt[COMP_CNT_TYPE0 + h.type]++;
	}
	return (rv);
}
