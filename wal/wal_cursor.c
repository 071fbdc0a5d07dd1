/*
 * wal_cursor.c: named consumer cursors, one key per consumer in the
 * "cursors" DB: the name's bytes (no NUL) -> the offset, u64 big-endian.
 * A cursor write is its own write txn, so it is as durable as an append
 * in the same mode and grows the map the same way.
 */
#include <string.h>

#include "wal/wal_int.h"

typedef struct cursor_arg {
	const char *name; /* Borrowed. */
	size_t      len;  /* Bytes of name. */
	uint64_t    off;  /* Value to store. */
} cursor_arg;

static int
cursor_name_check(const char *name, size_t *len)
{
	if (name == NULL) {
		return (EVB_EINVAL);
	}
	*len = strnlen(name, EVB_WAL_CURSOR_NAME_MAX + 1);
	if (*len == 0 || *len > EVB_WAL_CURSOR_NAME_MAX) {
		return (EVB_EINVAL);
	}
	return (EVB_OK);
}

static int
cursor_put(evb_wal *w, MDB_txn *txn, void *arg)
{
	cursor_arg *a = arg;
	uint8_t     vb[8];
	MDB_val     k = { a->len, (void *) a->name };
	MDB_val     v = { sizeof(vb), vb };

	evb_put_be64(vb, a->off);
	return (mdb_put(txn, w->dbi_cursors, &k, &v, 0));
}

int
evb_wal_cursor_set(evb_wal *w, const char *name, uint64_t off)
{
	cursor_arg a = { name, 0, off };
	int        rc;

	if (w == NULL || w->opts.read_only) {
		return (EVB_EINVAL);
	}
	if ((rc = cursor_name_check(name, &a.len)) != EVB_OK) {
		return (rc);
	}
	return (wal_write(w, cursor_put, &a, NULL, "cursor set"));
}

int
evb_wal_cursor_get(evb_wal *w, const char *name, uint64_t *off)
{
	MDB_txn *txn = NULL;
	MDB_val  k, v;
	size_t   len;
	uint64_t val = 0;
	int      rc;

	if (w == NULL || off == NULL) {
		return (EVB_EINVAL);
	}
	if ((rc = cursor_name_check(name, &len)) != EVB_OK) {
		return (rc);
	}
	if ((rc = wal_read_begin(w, &txn)) != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "cursor get"));
	}
	k.mv_size = len;
	k.mv_data = (void *) name;
	rc        = mdb_get(txn, w->dbi_cursors, &k, &v);
	if (rc == MDB_SUCCESS) {
		// Copy before the txn ends: v points into the map.
		if (v.mv_size == sizeof(val)) {
			val = evb_get_be64(v.mv_data);
		} else {
			rc = MDB_CORRUPTED;
		}
	}
	wal_read_end(w, &txn, false);
	if (rc == MDB_NOTFOUND) {
		return (EVB_ENOTFOUND);
	}
	if (rc != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "cursor get"));
	}
	*off = val;
	return (EVB_OK);
}
