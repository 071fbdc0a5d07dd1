/*
 * compactor_query.c: the read side. A tables handle opens the
 * environment read-only (any process, while a compactor writes it) and
 * answers each query in one short read txn, so a query sees one snapshot
 * and never holds old pages for long.
 *
 * Every query is an ordered walk over one or more "sources", each a range
 * of one DB in (ts, offset) order:
 *   - a type's table, over [since, until);
 *   - the all-events index, for every type;
 *   - one key of a secondary index, restricted to one type: its sorted
 *     duplicates are type | ts | offset, so [type|since, type|until) is
 *     one contiguous run (MDB_GET_BOTH_RANGE finds its start).
 * A query by index over every type merges the per-type runs (at most
 * COMP_NTYPES sources) on (ts, offset), so rows still come in time order.
 * Which source: the corr index, else the user index, else the symbol
 * index, else the type's table or the all-events index; filters that the
 * chosen source does not imply are checked on the decoded row. No query
 * scans a table when an index fits its filter.
 *
 * The map may have been grown by the writer since this process mapped
 * it; LMDB then refuses a new txn with MDB_MAP_RESIZED until the process
 * adopts the new size (mdb_env_set_mapsize(env, 0)) with no txn of its
 * own open. map_lock makes that safe for concurrent queries: each holds
 * it shared for its txn, the adoption holds it exclusively.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compactor/compactor_int.h"

/* ---- Txns -----------------------------------------------------------------
 */

int
comp_read_begin(evb_compactor_tables *t, MDB_txn **txn, evb_diag *d)
{
	int rc;

	for (;;) {
		evb_assert(pthread_rwlock_rdlock(&t->map_lock) == 0);
		rc = mdb_txn_begin(t->e.env, NULL, MDB_RDONLY, txn);
		if (rc == MDB_SUCCESS) {
			return (EVB_OK);
		}
		evb_assert(pthread_rwlock_unlock(&t->map_lock) == 0);
		if (rc != MDB_MAP_RESIZED) {
			return (comp_err(rc, d, "beginning a tables read txn"));
		}
		evb_assert(pthread_rwlock_wrlock(&t->map_lock) == 0);
		rc = mdb_env_set_mapsize(t->e.env, 0);
		evb_assert(pthread_rwlock_unlock(&t->map_lock) == 0);
		if (rc != MDB_SUCCESS) {
			return (
			    comp_err(rc, d, "adopting the tables' map size"));
		}
	}
}

void
comp_read_end(evb_compactor_tables *t, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	evb_assert(pthread_rwlock_unlock(&t->map_lock) == 0);
}

/* ---- Open and close ----------------------------------------------------- */

int
evb_compactor_tables_open(
    evb_compactor_tables **out, const char *data_dir, evb_diag *diag)
{
	evb_compactor_tables *t;
	char                 *path;
	size_t                n;
	int                   rv;

	if (data_dir == NULL) {
		evb_diag_set(diag, "data_dir: expected a value, got NULL");
		return (EVB_EINVAL);
	}
	n = strlen(data_dir) + sizeof(EVB_COMPACTOR_DIR) + 1;
	if ((t = calloc(1, sizeof(*t))) == NULL || (path = malloc(n)) == NULL) {
		free(t);
		return (EVB_ENOMEM);
	}
	(void) snprintf(path, n, "%s/%s", data_dir, EVB_COMPACTOR_DIR);
	if (pthread_rwlock_init(&t->map_lock, NULL) != 0) {
		rv = EVB_ENOMEM;
		goto fail;
	}
	t->has_lock = true;
	if ((rv = comp_env_open(&t->e, path, true, 0, false, false, diag)) !=
	    0) {
		goto fail;
	}
	free(path);
	*out = t;
	return (EVB_OK);

fail:
	free(path);
	evb_compactor_tables_close(t);
	return (rv);
}

void
evb_compactor_tables_close(evb_compactor_tables *t)
{
	if (t == NULL) {
		return;
	}
	comp_env_close(&t->e);
	if (t->has_lock) {
		(void) pthread_rwlock_destroy(&t->map_lock);
	}
	free(t);
}

int
evb_compactor_tables_counters(
    evb_compactor_tables *t, evb_compactor_stat *out, evb_diag *diag)
{
	MDB_txn  *txn;
	comp_meta m;
	int       rv;

	if ((rv = comp_read_begin(t, &txn, diag)) != 0) {
		return (rv);
	}
	rv = comp_meta_read(&t->e, txn, &m, diag);
	comp_read_end(t, txn);
	if (rv != 0) {
		return (rv);
	}
	memset(out, 0, sizeof(*out));
	out->position = m.position;
	out->events   = m.cnt[COMP_CNT_EVENTS];
	out->gaps     = m.cnt[COMP_CNT_GAPS];
	out->bad      = m.cnt[COMP_CNT_BAD];
	out->missed   = m.cnt[COMP_CNT_MISSED];
	for (int i = 0; i < EVB_COMPACTOR_MAX_TYPES; i++) {
		out->per_type[i] = m.cnt[COMP_CNT_TYPE0 + i];
	}
	return (EVB_OK);
}

/* ---- Rows ------------------------------------------------------------------
 */

int
comp_row_fetch(const comp_env *e, MDB_txn *txn, const uint8_t *item,
    evb_compactor_row *row, evb_diag *d)
{
	int     type = evb_get_be16(item);
	MDB_val k    = { COMP_ROWKEY_SIZE, (void *) (item + 2) };
	MDB_val v;
	int     rc;

	if (type >= COMP_NTYPES) {
		evb_diag_set(d, "tables: an index entry names type %d", type);
		return (EVB_ECORRUPT);
	}
	rc = mdb_get(txn, e->dbi[COMP_DB_TYPE0 + type], &k, &v);
	if (rc == MDB_NOTFOUND) {
		evb_diag_set(d,
		    "tables: an index entry points to WAL offset %llu, "
		    "missing from %s; rebuild the tables",
		    (unsigned long long) evb_get_be64(item + 10),
		    comp_db_name(COMP_DB_TYPE0 + type));
		return (EVB_ECORRUPT);
	}
	if (rc != MDB_SUCCESS) {
		return (comp_err(rc, d, comp_db_name(COMP_DB_TYPE0 + type)));
	}
	memset(row, 0, sizeof(*row));
	row->type     = type;
	row->ts_ns    = comp_ts_get(item + 2);
	row->off      = evb_get_be64(item + 10);
	row->envelope = v.mv_data;
	row->len      = v.mv_size;
	return (EVB_OK);
}

/* row_str_is says whether the row's field (data.field, or the envelope's
 * corr for "corr") equals want. */
static int
row_str_is(const evb_event *ev, const char *field, const char *want, bool *is)
{
	evb_str s;
	size_t  n = strlen(want);

	if (strcmp(field, "corr") == 0) {
		s = evb_proto_event_corr(ev);
	} else if (evb_proto_event_get_str(ev, field, &s) != 0) {
		*is = false;
		return (EVB_OK);
	}
	*is = s.len == n && memcmp(s.ptr, want, n) == 0;
	return (EVB_OK);
}

/* ---- Sources ----------------------------------------------------------------
 */

typedef enum src_kind {
	SRC_TABLE,  /* A type's table: key row key, value envelope. */
	SRC_EVENTS, /* The all-events index: key row key, value type. */
	SRC_IX,     /* One key of an index: dups type | row key. */
} src_kind;

typedef struct src {
	src_kind    kind;
	MDB_cursor *cur;
	MDB_val     key;                   /* SRC_IX: the index key. */
	uint8_t     lo[COMP_IXVAL_SIZE];   /* type | since | 0. */
	uint8_t     hi[COMP_IXVAL_SIZE];   /* type | until | 0 (or max). */
	bool        desc;                  /* Newest first. */
	bool        has;                   /* item is valid. */
	uint8_t     item[COMP_IXVAL_SIZE]; /* type | row key. */
} src;

/* src_take copies the cursor's position into item and checks bounds. */
static int
src_take(src *s, int rc, const MDB_val *k, const MDB_val *v, evb_diag *d)
{
	size_t o = s->kind == SRC_IX ? 0 : 2;

	s->has = false;
	if (rc == MDB_NOTFOUND) {
		return (EVB_OK);
	}
	if (rc != MDB_SUCCESS) {
		return (comp_err(rc, d, "reading the tables"));
	}
	if (s->kind == SRC_IX) {
		if (v->mv_size != COMP_IXVAL_SIZE) {
			evb_diag_set(d, "tables: an index entry of %zu bytes",
			    v->mv_size);
			return (EVB_ECORRUPT);
		}
		memcpy(s->item, v->mv_data, COMP_IXVAL_SIZE);
	} else {
		if (k->mv_size != COMP_ROWKEY_SIZE ||
		    (s->kind == SRC_EVENTS && v->mv_size != 2)) {
			evb_diag_set(
			    d, "tables: a row key of %zu bytes", k->mv_size);
			return (EVB_ECORRUPT);
		}
		if (s->kind == SRC_EVENTS) {
			memcpy(s->item, v->mv_data, 2);
		} else {
			memcpy(s->item, s->lo, 2);
		}
		memcpy(s->item + 2, k->mv_data, COMP_ROWKEY_SIZE);
	}
	s->has = s->desc
	    ? memcmp(s->item + o, s->lo + o, sizeof(s->lo) - o) >= 0
	    : memcmp(s->item + o, s->hi + o, sizeof(s->hi) - o) < 0;
	return (EVB_OK);
}

static int
src_first_ix(src *s, evb_diag *d)
{
	MDB_val v = { sizeof(s->lo), s->desc ? s->hi : s->lo };
	MDB_val k = s->key;
	int     rc;

	rc = mdb_cursor_get(s->cur, &k, &v, MDB_GET_BOTH_RANGE);
	if (!s->desc) {
		return (src_take(s, rc, &k, &v, d));
	}
	if (rc == MDB_SUCCESS) {
		rc = mdb_cursor_get(s->cur, &k, &v, MDB_PREV_DUP);
		return (src_take(s, rc, &k, &v, d));
	}
	if (rc != MDB_NOTFOUND) {
		return (src_take(s, rc, &k, &v, d));
	}
	// Nothing at or after hi: start from the key's last entry, if any.
	k  = s->key;
	rc = mdb_cursor_get(s->cur, &k, &v, MDB_SET);
	if (rc == MDB_SUCCESS) {
		rc = mdb_cursor_get(s->cur, &k, &v, MDB_LAST_DUP);
	}
	return (src_take(s, rc, &k, &v, d));
}

static int
src_first(src *s, evb_diag *d)
{
	MDB_val k = { COMP_ROWKEY_SIZE, (s->desc ? s->hi : s->lo) + 2 };
	MDB_val v;
	int     rc;

	if (s->kind == SRC_IX) {
		return (src_first_ix(s, d));
	}
	rc = mdb_cursor_get(s->cur, &k, &v, MDB_SET_RANGE);
	if (s->desc && rc == MDB_SUCCESS) {
		rc = mdb_cursor_get(s->cur, &k, &v, MDB_PREV);
	} else if (s->desc && rc == MDB_NOTFOUND) {
		rc = mdb_cursor_get(s->cur, &k, &v, MDB_LAST);
	}
	return (src_take(s, rc, &k, &v, d));
}

static int
src_next(src *s, evb_diag *d)
{
	MDB_cursor_op op;
	MDB_val       k, v;
	int           rc;

	if (s->kind == SRC_IX) {
		op = s->desc ? MDB_PREV_DUP : MDB_NEXT_DUP;
	} else {
		op = s->desc ? MDB_PREV : MDB_NEXT;
	}
	rc = mdb_cursor_get(s->cur, &k, &v, op);
	return (src_take(s, rc, &k, &v, d));
}

/* ---- Queries
 * ----------------------------------------------------------------- */

/* What one query walks and checks. */
typedef struct query_run {
	const evb_compactor_query *q;
	const comp_env            *e;
	MDB_txn                   *txn;
	src                        srcs[COMP_NTYPES];
	size_t                     nsrc;
	const char                *check_field[3]; /* Filters to check on */
	const char                *check_want[3];  /* decoded rows, */
	comp_db                    check_db[3];    /* and their indexes. */
	size_t                     ncheck;
	evb_compactor_query_stat   stat; /* What it read. */
} query_run;

static void
query_bounds(src *s, int type, const evb_compactor_query *q)
{
	evb_put_be16(s->lo, (uint16_t) type);
	evb_put_be16(s->hi, (uint16_t) type);
	comp_rowkey_put(s->lo + 2, q->since_ns, 0);
	// until_ns is exclusive, but INT64_MAX means no bound: a row at ts
	// INT64_MAX (a valid ts) sorts below type | INT64_MAX | UINT64_MAX,
	// an offset no record has.
	comp_rowkey_put(
	    s->hi + 2, q->until_ns, q->until_ns == INT64_MAX ? UINT64_MAX : 0);
	s->desc = q->descending;
}

static int
query_add_src(query_run *r, src_kind kind, comp_db db, int type,
    const char *key, evb_diag *d)
{
	src *s = &r->srcs[r->nsrc];
	int  rc;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	if (key != NULL) {
		s->key.mv_size = strlen(key);
		s->key.mv_data = (void *) key;
	}
	query_bounds(s, type, r->q);
	if ((rc = mdb_cursor_open(r->txn, r->e->dbi[db], &s->cur)) != 0) {
		return (comp_err(rc, d, comp_db_name(db)));
	}
	r->nsrc++;
	if (kind == SRC_IX &&
	    (s->key.mv_size == 0 || s->key.mv_size > EVB_PROTO_MAX_ID)) {
		return (EVB_OK); // No stored key is empty or that long.
	}
	return (src_first(s, d));
}

static void
query_check(query_run *r, comp_db db, const char *field, const char *want)
{
	if (want != NULL) {
		r->check_field[r->ncheck] = field;
		r->check_want[r->ncheck]  = want;
		r->check_db[r->ncheck]    = db;
		r->ncheck++;
	}
}

/* query_plan picks the sources and the filters left to check. */
static int
query_plan(query_run *r, evb_diag *d)
{
	const evb_compactor_query *q  = r->q;
	comp_db                    db = COMP_DB_META;
	const char                *key;
	int                        rv;

	if ((key = q->corr) != NULL) {
		db = COMP_DB_IX_CORR;
	} else if ((key = q->user) != NULL) {
		db = COMP_DB_IX_USER;
	} else if ((key = q->symbol) != NULL) {
		db = COMP_DB_IX_SYMBOL;
	}
	query_check(
	    r, COMP_DB_IX_CORR, "corr", db == COMP_DB_IX_CORR ? NULL : q->corr);
	query_check(r, COMP_DB_IX_USER, "user_id",
	    db == COMP_DB_IX_USER ? NULL : q->user);
	query_check(r, COMP_DB_IX_SYMBOL, "symbol",
	    db == COMP_DB_IX_SYMBOL ? NULL : q->symbol);
	if (key == NULL) {
		r->stat.source = comp_db_name(
		    q->type >= 0 ? COMP_DB_TYPE0 + q->type : COMP_DB_EVENTS);
		return (q->type >= 0
		        ? query_add_src(r, SRC_TABLE, COMP_DB_TYPE0 + q->type,
		              q->type, NULL, d)
		        : query_add_src(
		              r, SRC_EVENTS, COMP_DB_EVENTS, 0, NULL, d));
	}
	r->stat.source = comp_db_name(db);
	for (int t = 0; t < COMP_NTYPES; t++) {
		if ((q->type < 0 || q->type == t) &&
		    (rv = query_add_src(r, SRC_IX, db, t, key, d)) != 0) {
			return (rv);
		}
	}
	return (EVB_OK);
}

/* query_pick returns the source whose item comes next, or NULL. */
static src *
query_pick(query_run *r)
{
	src *best = NULL;

	for (size_t i = 0; i < r->nsrc; i++) {
		src *s = &r->srcs[i];
		int  c;

		if (!s->has) {
			continue;
		}
		if (best == NULL) {
			best = s;
			continue;
		}
		c = memcmp(s->item + 2, best->item + 2, COMP_ROWKEY_SIZE);
		if (r->q->descending ? c > 0 : c < 0) {
			best = s;
		}
	}
	return (best);
}

/* query_row_ok checks the remaining filters on a row. */
static int
query_row_ok(query_run *r, const evb_compactor_row *row, bool *ok, evb_diag *d)
{
	evb_event *ev;
	int        rv;

	// A filter checked on the row matches only where its index would
	// have: a field outside the type's schema (a market_data's user_id)
	// is never indexed, so the answer does not depend on the plan.
	*ok = true;
	for (size_t i = 0; i < r->ncheck; i++) {
		if (!comp_type_indexes(row->type, r->check_db[i])) {
			*ok = false;
			return (EVB_OK);
		}
	}
	if (r->ncheck == 0) {
		return (EVB_OK);
	}
	if ((rv = evb_proto_event_decode(&ev, row->envelope, row->len, d)) !=
	    0) {
		evb_diag_set(d,
		    "tables: the row of WAL offset %llu does not "
		    "decode; rebuild the tables",
		    (unsigned long long) row->off);
		return (rv == EVB_ENOMEM ? rv : EVB_ECORRUPT);
	}
	for (size_t i = 0; i < r->ncheck && *ok; i++) {
		(void) row_str_is(ev, r->check_field[i], r->check_want[i], ok);
	}
	evb_proto_event_free(ev);
	return (EVB_OK);
}

static int
query_walk(query_run *r, evb_compactor_row_fn fn, void *arg, evb_diag *d)
{
	uint64_t n = 0;
	src     *s;
	int      rv;

	while ((s = query_pick(r)) != NULL) {
		evb_compactor_row row;
		bool              ok;

		if ((rv = comp_row_fetch(r->e, r->txn, s->item, &row, d)) !=
		        0 ||
		    (rv = query_row_ok(r, &row, &ok, d)) != 0) {
			return (rv);
		}
		r->stat.examined++;
		if (ok) {
			r->stat.returned++;
			if ((rv = fn(arg, &row)) != EVB_OK) {
				return (rv == EVB_EOF ? EVB_OK : rv);
			}
			if (r->q->limit != 0 && ++n == r->q->limit) {
				return (EVB_OK);
			}
		}
		if ((rv = src_next(s, d)) != 0) {
			return (rv);
		}
	}
	return (EVB_OK);
}

void
evb_compactor_query_init(evb_compactor_query *q)
{
	memset(q, 0, sizeof(*q));
	q->type       = -1;
	q->since_ns   = INT64_MIN;
	q->until_ns   = INT64_MAX;
	q->symbol     = NULL;
	q->corr       = NULL;
	q->user       = NULL;
	q->limit      = 0;
	q->descending = false;
	q->stat       = NULL;
}

static int
check_type(int type, evb_diag *d)
{
	if (type < -1 || type >= COMP_NTYPES ||
	    (type >= 0 && (size_t) type >= evb_proto_type_count())) {
		evb_diag_set(d,
		    "type: expected -1 or a type index below %d, "
		    "got %d",
		    COMP_NTYPES, type);
		return (EVB_EINVAL);
	}
	return (EVB_OK);
}

int
evb_compactor_tables_query(evb_compactor_tables *t,
    const evb_compactor_query *q, evb_compactor_row_fn fn, void *arg,
    evb_diag *diag)
{
	query_run r;
	int       rv;

	if (q == NULL || fn == NULL) {
		evb_diag_set(diag, "%s: expected a value, got NULL",
		    q == NULL ? "q" : "fn");
		return (EVB_EINVAL);
	}
	if (q->stat != NULL) {
		memset(q->stat, 0, sizeof(*q->stat));
	}
	if ((rv = check_type(q->type, diag)) != 0) {
		return (rv);
	}
	memset(&r, 0, sizeof(r));
	r.q = q;
	r.e = &t->e;
	if (q->since_ns >= q->until_ns && q->until_ns != INT64_MAX) {
		return (EVB_OK); // An empty range.
	}
	if ((rv = comp_read_begin(t, &r.txn, diag)) != 0) {
		return (rv);
	}
	if ((rv = query_plan(&r, diag)) == 0) {
		rv = query_walk(&r, fn, arg, diag);
	}
	for (size_t i = 0; i < r.nsrc; i++) {
		mdb_cursor_close(r.srcs[i].cur);
	}
	comp_read_end(t, r.txn);
	if (q->stat != NULL) {
		*q->stat = r.stat;
	}
	return (rv);
}

/* ---- Latest state
 * -------------------------------------------------------------- */

static int
latest_emit(const comp_env *e, MDB_txn *txn, const comp_latest_spec *ls,
    const MDB_val *k, const MDB_val *v, evb_compactor_row_fn fn, void *arg,
    evb_diag *d)
{
	uint8_t           item[COMP_IXVAL_SIZE];
	evb_compactor_row row;
	int               rv;

	if (v->mv_size != COMP_ROWKEY_SIZE) {
		evb_diag_set(d, "tables: %s: a value of %zu bytes",
		    comp_db_name(ls->db), v->mv_size);
		return (EVB_ECORRUPT);
	}
	evb_put_be16(item, (uint16_t) ls->type);
	memcpy(item + 2, v->mv_data, COMP_ROWKEY_SIZE);
	if ((rv = comp_row_fetch(e, txn, item, &row, d)) != 0) {
		return (rv);
	}
	row.key     = k->mv_data;
	row.key_len = k->mv_size;
	return (fn(arg, &row));
}

static int
latest_all(const comp_env *e, MDB_txn *txn, const comp_latest_spec *ls,
    evb_compactor_row_fn fn, void *arg, evb_diag *d)
{
	MDB_cursor *cur;
	MDB_val     k, v;
	int         rc;
	int         rv = EVB_OK;

	if ((rc = mdb_cursor_open(txn, e->dbi[ls->db], &cur)) != 0) {
		return (comp_err(rc, d, comp_db_name(ls->db)));
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		rv = latest_emit(e, txn, ls, &k, &v, fn, arg, d);
	}
	mdb_cursor_close(cur);
	if (rv != EVB_OK) {
		return (rv == EVB_EOF ? EVB_OK : rv);
	}
	return (rc == MDB_NOTFOUND ? EVB_OK : comp_err(rc, d, "latest"));
}

int
evb_compactor_tables_latest(evb_compactor_tables *t, evb_compactor_latest kind,
    const char *key, evb_compactor_row_fn fn, void *arg, evb_diag *diag)
{
	const comp_latest_spec *ls = comp_latest_spec_of(kind);
	MDB_txn                *txn;
	MDB_val                 k, v;
	int                     rc;
	int                     rv;

	if (ls == NULL || fn == NULL) {
		evb_diag_set(diag,
		    ls == NULL ? "kind: unknown latest table"
		               : "fn: expected a value, got NULL");
		return (EVB_EINVAL);
	}
	if ((rv = comp_read_begin(t, &txn, diag)) != 0) {
		return (rv);
	}
	if (key == NULL) {
		rv = latest_all(&t->e, txn, ls, fn, arg, diag);
		comp_read_end(t, txn);
		return (rv);
	}
	k.mv_size = strlen(key);
	k.mv_data = (void *) key;
	rc        = k.mv_size == 0 || k.mv_size > EVB_PROTO_MAX_ID
	           ? MDB_NOTFOUND
	           : mdb_get(txn, t->e.dbi[ls->db], &k, &v);
	if (rc == MDB_SUCCESS) {
		rv = latest_emit(&t->e, txn, ls, &k, &v, fn, arg, diag);
		rv = rv == EVB_EOF ? EVB_OK : rv;
	} else if (rc == MDB_NOTFOUND) {
		evb_diag_set(diag, "%s: no event has %s \"%s\"",
		    comp_db_name(ls->db), ls->field, key);
		rv = EVB_ENOTFOUND;
	} else {
		rv = comp_err(rc, diag, comp_db_name(ls->db));
	}
	comp_read_end(t, txn);
	return (rv);
}

/* ---- Per-minute statistics
 * ------------------------------------------------------- */

static int
minutes_walk(MDB_cursor *cur, int type, int64_t since, int64_t until,
    evb_compactor_minute_fn fn, void *arg, evb_diag *d)
{
	uint8_t kb[COMP_MINKEY_SIZE];
	MDB_val k = { sizeof(kb), kb };
	MDB_val v;
	int     rc;
	int     rv;

	comp_ts_put(kb, comp_minute_of(since));
	evb_put_be16(kb + 8, 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		evb_compactor_minute m;
		uint64_t             bits;

		if (k.mv_size != COMP_MINKEY_SIZE ||
		    v.mv_size != COMP_MINVAL_SIZE) {
			evb_diag_set(d, "tables: minutes: a malformed entry");
			return (EVB_ECORRUPT);
		}
		m.minute_ns = comp_ts_get(k.mv_data);
		m.type      = evb_get_be16((const uint8_t *) k.mv_data + 8);
		if (m.minute_ns >= until) {
			break;
		}
		if (type >= 0 && m.type != type) {
			continue;
		}
		m.count = evb_get_be64(v.mv_data);
		bits    = evb_get_be64((const uint8_t *) v.mv_data + 8);
		memcpy(&m.volume_sum, &bits, sizeof(bits));
		if ((rv = fn(arg, &m)) != EVB_OK) {
			return (rv == EVB_EOF ? EVB_OK : rv);
		}
	}
	return (rc == 0 || rc == MDB_NOTFOUND ? EVB_OK
	                                      : comp_err(rc, d, "minutes"));
}

int
evb_compactor_tables_minutes(evb_compactor_tables *t, int type,
    int64_t since_ns, int64_t until_ns, evb_compactor_minute_fn fn, void *arg,
    evb_diag *diag)
{
	MDB_txn    *txn;
	MDB_cursor *cur;
	int         rc;
	int         rv;

	if (fn == NULL) {
		evb_diag_set(diag, "fn: expected a value, got NULL");
		return (EVB_EINVAL);
	}
	if ((rv = check_type(type, diag)) != 0) {
		return (rv);
	}
	if ((rv = comp_read_begin(t, &txn, diag)) != 0) {
		return (rv);
	}
	if ((rc = mdb_cursor_open(txn, t->e.dbi[COMP_DB_MINUTES], &cur)) != 0) {
		comp_read_end(t, txn);
		return (comp_err(rc, diag, "minutes"));
	}
	rv = minutes_walk(cur, type, since_ns, until_ns, fn, arg, diag);
	mdb_cursor_close(cur);
	comp_read_end(t, txn);
	return (rv);
}
