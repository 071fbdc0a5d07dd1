/*
 * compactor_trace.c: the chain of a trade, signal_generated ->
 * fire_command(s) -> trade_executed(s), found through three indexes in
 * one read txn.
 *
 * The chain of signal S is every event in ix.signal_id under S (the
 * signal, the commands that cite it, the trades that cite it) plus, for
 * each such command C, every event in ix.command_id under C (trades that
 * cite only their command). An id that is not a signal is resolved to one
 * first: as a command_id, through its events' signal_id; as a ticket,
 * through its trades' signal_id or command_id. What is found is gathered
 * as index entries (type | ts | offset), sorted and de-duplicated, which
 * is exactly the order the caller gets: by type (signal, command, trade),
 * then time. The gathered set is bounded by the indexes' entries for at
 * most TRACE_MAX_KEYS keys.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compactor/compactor_int.h"

/* Keys one trace may follow (signals and commands); a chain with more
 * commands than this is cut there, which real chains never are. */
#define TRACE_MAX_KEYS 1024

#define T_SIGNAL 0 /* signal_generated. */
#define T_FIRE 1   /* fire_command. */
#define T_TRADE 2  /* trade_executed. */

typedef struct trace {
	evb_compactor_tables *t;
	MDB_txn              *txn;
	MDB_cursor           *cur[COMP_NDBS]; /* Opened on first use. */
	uint8_t              *items;          /* n entries of 18 bytes. */
	size_t                n;
	size_t                cap;
	size_t                keys; /* Keys followed so far. */
} trace;

static int
trace_push(trace *tr, const void *item)
{
	if (tr->n == tr->cap) {
		size_t   cap = tr->cap == 0 ? 64 : tr->cap * 2;
		uint8_t *p   = realloc(tr->items, cap * COMP_IXVAL_SIZE);

		if (p == NULL) {
			return (EVB_ENOMEM);
		}
		tr->items = p;
		tr->cap   = cap;
	}
	memcpy(tr->items + tr->n * COMP_IXVAL_SIZE, item, COMP_IXVAL_SIZE);
	tr->n++;
	return (EVB_OK);
}

/* trace_collect adds every entry of db under key; *found counts them. */
static int
trace_collect(trace *tr, comp_db db, const void *key, size_t len, size_t *found,
    evb_diag *d)
{
	MDB_val k = { len, (void *) key };
	MDB_val v;
	int     rc;
	int     rv;

	*found = 0;
	if (len == 0 || len > EVB_PROTO_MAX_ID ||
	    tr->keys++ >= TRACE_MAX_KEYS) {
		return (EVB_OK);
	}
	if (tr->cur[db] == NULL &&
	    (rc = mdb_cursor_open(tr->txn, tr->t->e.dbi[db], &tr->cur[db])) !=
	        0) {
		return (comp_err(rc, d, comp_db_name(db)));
	}
	for (rc = mdb_cursor_get(tr->cur[db], &k, &v, MDB_SET_KEY); rc == 0;
	     rc = mdb_cursor_get(tr->cur[db], &k, &v, MDB_NEXT_DUP)) {
		if (v.mv_size != COMP_IXVAL_SIZE) {
			evb_diag_set(d, "tables: %s: an entry of %zu bytes",
			    comp_db_name(db), v.mv_size);
			return (EVB_ECORRUPT);
		}
		if ((rv = trace_push(tr, v.mv_data)) != 0) {
			return (rv);
		}
		(*found)++;
	}
	return (rc == MDB_NOTFOUND ? EVB_OK : comp_err(rc, d, "trace"));
}

/*
 * trace_field copies data.field of the event at item into buf (cap
 * bytes); *len 0 when it has none.
 */
static int
trace_field(trace *tr, const uint8_t *item, const char *field, char *buf,
    size_t cap, size_t *len, evb_diag *d)
{
	evb_compactor_row row;
	evb_event        *ev;
	evb_str           s;
	int               rv;

	*len = 0;
	if ((rv = comp_row_fetch(&tr->t->e, tr->txn, item, &row, d)) != 0) {
		return (rv);
	}
	if ((rv = evb_proto_event_decode(&ev, row.envelope, row.len, d)) != 0) {
		return (rv == EVB_ENOMEM ? rv : EVB_ECORRUPT);
	}
	if (evb_proto_event_get_str(ev, field, &s) == 0 && s.len <= cap) {
		memcpy(buf, s.ptr, s.len);
		*len = s.len;
	}
	evb_proto_event_free(ev);
	return (EVB_OK);
}

/* trace_signal gathers the chain of signal sig. */
static int
trace_signal(trace *tr, const char *sig, size_t len, evb_diag *d)
{
	size_t start = tr->n;
	size_t found;
	int    rv;

	if ((rv = trace_collect(tr, COMP_DB_IX_SIGNAL, sig, len, &found, d)) !=
	    0) {
		return (rv);
	}
	// Commands of the signal: their trades may cite only the command.
	for (size_t i = start; i < start + found; i++) {
		uint8_t item[COMP_IXVAL_SIZE];
		char    cmd[EVB_PROTO_MAX_ID];
		size_t  n;
		size_t  more;

		memcpy(item, tr->items + i * COMP_IXVAL_SIZE, sizeof(item));
		if (evb_get_be16(item) != T_FIRE) {
			continue;
		}
		if ((rv = trace_field(tr, item, "command_id", cmd, sizeof(cmd),
		         &n, d)) != 0 ||
		    (rv = trace_collect(
		         tr, COMP_DB_IX_COMMAND, cmd, n, &more, d)) != 0) {
			return (rv);
		}
	}
	return (EVB_OK);
}

/*
 * trace_follow resolves the entries [start, start + n) found for a
 * command or a ticket to their signal's chain: through signal_id, else
 * (a trade found by ticket) through command_id.
 */
static int
trace_follow(trace *tr, size_t start, size_t n, bool by_command, evb_diag *d)
{
	for (size_t i = start; i < start + n; i++) {
		uint8_t item[COMP_IXVAL_SIZE];
		char    buf[EVB_PROTO_MAX_ID];
		size_t  len;
		size_t  more;
		size_t  start2;
		int     rv;

		memcpy(item, tr->items + i * COMP_IXVAL_SIZE, sizeof(item));
		if ((rv = trace_field(tr, item, "signal_id", buf, sizeof(buf),
		         &len, d)) != 0) {
			return (rv);
		}
		if (len > 0) {
			if ((rv = trace_signal(tr, buf, len, d)) != 0) {
				return (rv);
			}
			continue;
		}
		if (by_command) {
			continue; // A command without a signal: itself.
		}
		// A trade without a signal_id: through its command, whose
		// fire_command names the signal.
		start2 = tr->n;
		if ((rv = trace_field(tr, item, "command_id", buf, sizeof(buf),
		         &len, d)) != 0 ||
		    (rv = trace_collect(
		         tr, COMP_DB_IX_COMMAND, buf, len, &more, d)) != 0 ||
		    (rv = trace_follow(tr, start2, more, true, d)) != 0) {
			return (rv);
		}
	}
	return (EVB_OK);
}

/* trace_ticket parses id as a ticket, the key of ix.ticket. */
static bool
trace_ticket(const char *id, uint8_t key[8])
{
	char     *end;
	long long v;

	if (id[0] < '0' || id[0] > '9') {
		return (false);
	}
	errno = 0;
	v     = strtoll(id, &end, 10);
	if (errno != 0 || *end != '\0') {
		return (false);
	}
	comp_ts_put(key, (int64_t) v);
	return (true);
}

static int
trace_resolve(trace *tr, const char *id, evb_diag *d)
{
	size_t  len = strlen(id);
	size_t  found;
	uint8_t tk[8];
	int     rv;

	if ((rv = trace_signal(tr, id, len, d)) != 0 || tr->n > 0) {
		return (rv);
	}
	if ((rv = trace_collect(tr, COMP_DB_IX_COMMAND, id, len, &found, d)) !=
	    0) {
		return (rv);
	}
	if (found > 0) {
		return (trace_follow(tr, 0, found, true, d));
	}
	if (!trace_ticket(id, tk)) {
		return (EVB_OK);
	}
	if ((rv = trace_collect(
	         tr, COMP_DB_IX_TICKET, tk, sizeof(tk), &found, d)) != 0) {
		return (rv);
	}
	return (trace_follow(tr, 0, found, false, d));
}

static int
trace_cmp(const void *a, const void *b)
{
	return (memcmp(a, b, COMP_IXVAL_SIZE));
}

static int
trace_emit(trace *tr, evb_compactor_row_fn fn, void *arg, evb_diag *d)
{
	qsort(tr->items, tr->n, COMP_IXVAL_SIZE, trace_cmp);
	for (size_t i = 0; i < tr->n; i++) {
		const uint8_t    *item = tr->items + i * COMP_IXVAL_SIZE;
		evb_compactor_row row;
		int               rv;

		if (i > 0 &&
		    memcmp(item - COMP_IXVAL_SIZE, item, COMP_IXVAL_SIZE) ==
		        0) {
			continue; // Found through two keys.
		}
		if (evb_get_be16(item) > T_TRADE) {
			continue;
		}
		if ((rv = comp_row_fetch(&tr->t->e, tr->txn, item, &row, d)) !=
		        0 ||
		    (rv = fn(arg, &row)) != 0) {
			return (rv == EVB_EOF ? EVB_OK : rv);
		}
	}
	return (EVB_OK);
}

int
evb_compactor_tables_trace(evb_compactor_tables *t, const char *id,
    evb_compactor_row_fn fn, void *arg, evb_diag *diag)
{
	trace tr;
	int   rv;

	if (id == NULL || id[0] == '\0' || fn == NULL) {
		evb_diag_set(diag,
		    fn == NULL ? "fn: expected a value, got NULL"
		               : "id: expected a non-empty id");
		return (EVB_EINVAL);
	}
	memset(&tr, 0, sizeof(tr));
	tr.t = t;
	if ((rv = comp_read_begin(t, &tr.txn, diag)) != 0) {
		return (rv);
	}
	if ((rv = trace_resolve(&tr, id, diag)) == 0) {
		if (tr.n == 0) {
			evb_diag_set(diag,
			    "%s: no signal_id, command_id or ticket has "
			    "this value",
			    id);
			rv = EVB_ENOTFOUND;
		} else {
			rv = trace_emit(&tr, fn, arg, diag);
		}
	}
	for (int i = 0; i < COMP_NDBS; i++) {
		if (tr.cur[i] != NULL) {
			mdb_cursor_close(tr.cur[i]);
		}
	}
	comp_read_end(t, tr.txn);
	free(tr.items);
	return (rv);
}
