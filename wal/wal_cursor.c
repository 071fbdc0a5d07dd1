/*
 * wal_cursor.c: named consumer cursors, one key per consumer in the
 * "cursors" DB: the name's bytes (no NUL) -> the offset, u64 big-endian.
 * A cursor write is its own write txn, so it is as durable as an append
 * in the same mode and grows the map the same way. Retention reads the
 * lowest cursor (wal_cursor_min) so that it never removes a record some
 * consumer has not finished.
 *
 * A note (evb_wal_cursor_note) rides in the handle's next append
 * instead: a consumer in the appender's process then never takes the
 * writer lock, so it never makes the appender wait for it, however the
 * scheduler treats it (the compactor thread runs at a lower priority in
 * `evbus run`, and a thread that holds a lock the appender wants while
 * the scheduler keeps it off the CPU would stall the log). Notes are
 * read under wlock by the append that stores them, and a set drops the
 * note of its name before its own txn, so a note made before a set is
 * never stored after it.
 */
#include <errno.h>
#include <stdlib.h>
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

/* cursor_store puts one cursor in txn. */
static int
cursor_store(
    evb_wal *w, MDB_txn *txn, const char *name, size_t len, uint64_t off)
{
	uint8_t vb[8];
	MDB_val k = { len, (void *) name };
	MDB_val v = { sizeof(vb), vb };

	evb_put_be64(vb, off);
	return (mdb_put(txn, w->dbi_cursors, &k, &v, 0));
}

/* note_find is the index of name's note, or w->nnotes; under note_mtx. */
static size_t
note_find(const evb_wal *w, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < w->nnotes; i++) {
		if (w->notes[i].len == len &&
		    memcmp(w->notes[i].name, name, len) == 0) {
			break;
		}
	}
	return (i);
}

/* note_drop removes note i; under note_mtx. */
static void
note_drop(evb_wal *w, size_t i)
{
	w->notes[i] = w->notes[--w->nnotes];
	atomic_store(&w->note_hint, w->nnotes);
}

static int
cursor_put(evb_wal *w, MDB_txn *txn, void *arg)
{
	cursor_arg *a = arg;

	return (cursor_store(w, txn, a->name, a->len, a->off));
}

int
evb_wal_cursor_set(evb_wal *w, const char *name, uint64_t off)
{
	cursor_arg a = { name, 0, off };
	size_t     i;
	int        rc;

	if (w == NULL || w->opts.read_only) {
		return (EVB_EINVAL);
	}
	if ((rc = cursor_name_check(name, &a.len)) != EVB_OK) {
		return (rc);
	}
	// The name's note goes first: no txn after this can store it, and
	// if the set fails, the value stored before stands (it lags, which
	// retention takes as holding back more, never less).
	evb_assert(pthread_mutex_lock(&w->note_mtx) == 0);
	if ((i = note_find(w, name, a.len)) < w->nnotes) {
		note_drop(w, i);
	}
	evb_assert(pthread_mutex_unlock(&w->note_mtx) == 0);
	return (wal_write(w, cursor_put, NULL, &a, NULL, "cursor set"));
}

int
evb_wal_cursor_note(evb_wal *w, const char *name, uint64_t off)
{
	size_t len, i;
	bool   full;

	if (w == NULL || w->opts.read_only) {
		return (EVB_EINVAL);
	}
	if (cursor_name_check(name, &len) != EVB_OK) {
		return (EVB_EINVAL);
	}
	evb_assert(pthread_mutex_lock(&w->note_mtx) == 0);
	i    = note_find(w, name, len);
	full = i == WAL_NOTES_MAX;
	if (!full) {
		memcpy(w->notes[i].name, name, len + 1);
		w->notes[i].len = len;
		w->notes[i].off = off;
		w->nnotes += i == w->nnotes;
		atomic_store(&w->note_hint, w->nnotes);
	}
	evb_assert(pthread_mutex_unlock(&w->note_mtx) == 0);
	return (full ? evb_wal_cursor_set(w, name, off) : EVB_OK);
}

int
wal_notes_put(evb_wal *w, MDB_txn *txn, wal_notes *t)
{
	int rc = MDB_SUCCESS;

	// Most txns find no note: skip the lock then. A note made after
	// this look waits for the next txn, as one made after the txn.
	t->n = 0;
	if (atomic_load(&w->note_hint) == 0) {
		return (MDB_SUCCESS);
	}
	evb_assert(pthread_mutex_lock(&w->note_mtx) == 0);
	t->n = w->nnotes;
	memcpy(t->note, w->notes, t->n * sizeof(t->note[0]));
	evb_assert(pthread_mutex_unlock(&w->note_mtx) == 0);
	for (size_t i = 0; i < t->n && rc == MDB_SUCCESS; i++) {
		rc = cursor_store(
		    w, txn, t->note[i].name, t->note[i].len, t->note[i].off);
	}
	return (rc);
}

void
wal_notes_done(evb_wal *w, const wal_notes *t)
{
	size_t j;

	if (t->n == 0) {
		return;
	}
	evb_assert(pthread_mutex_lock(&w->note_mtx) == 0);
	for (size_t i = 0; i < t->n; i++) {
		j = note_find(w, t->note[i].name, t->note[i].len);
		if (j < w->nnotes && w->notes[j].off == t->note[i].off) {
			note_drop(w, j);
		}
	}
	evb_assert(pthread_mutex_unlock(&w->note_mtx) == 0);
}

static int
notes_step(evb_wal *w, MDB_txn *txn, void *arg)
{
	return (wal_notes_put(w, txn, arg));
}

static void
notes_done(evb_wal *w, void *arg)
{
	wal_notes_done(w, arg);
}

int
wal_notes_flush(evb_wal *w)
{
	wal_notes t;

	if (atomic_load(&w->note_hint) == 0) {
		return (EVB_OK);
	}
	return (wal_write(w, notes_step, notes_done, &t, NULL, "cursor notes"));
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

/* cursor_value decodes a stored cursor; MDB_CORRUPTED if malformed. */
static int
cursor_value(const MDB_val *k, const MDB_val *v, uint64_t *off)
{
	if (k->mv_size == 0 || k->mv_size > EVB_WAL_CURSOR_NAME_MAX ||
	    v->mv_size != 8) {
		return (MDB_CORRUPTED);
	}
	*off = evb_get_be64(v->mv_data);
	return (MDB_SUCCESS);
}

int
wal_cursor_min(evb_wal *w, MDB_txn *txn, bool *has, uint64_t *min)
{
	MDB_cursor *cur;
	MDB_val     k, v;
	uint64_t    off;
	int         rc;

	*has = false;
	if ((rc = mdb_cursor_open(txn, w->dbi_cursors, &cur)) != 0) {
		return (rc);
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
		if ((rc = cursor_value(&k, &v, &off)) != MDB_SUCCESS) {
			break;
		}
		if (!*has || off < *min) {
			*min = off;
		}
		*has = true;
	}
	mdb_cursor_close(cur);
	return (rc == MDB_NOTFOUND ? MDB_SUCCESS : rc);
}

/* cursor_collect copies every cursor of txn into a new array. */
static int
cursor_collect(evb_wal *w, MDB_txn *txn, evb_wal_cursor_info **list, size_t *n)
{
	evb_wal_cursor_info *l = NULL, *nl;
	MDB_cursor          *cur;
	MDB_stat             st;
	MDB_val              k, v;
	size_t               cap, used = 0;
	int                  rc;

	if ((rc = mdb_stat(txn, w->dbi_cursors, &st)) != 0 ||
	    (rc = mdb_cursor_open(txn, w->dbi_cursors, &cur)) != 0) {
		return (rc);
	}
	cap = st.ms_entries;
	if (cap > 0 && (l = calloc(cap, sizeof(*l))) == NULL) {
		mdb_cursor_close(cur);
		return (ENOMEM);
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
		evb_assert(used < cap); // The txn's snapshot does not change.
		nl = &l[used];
		if ((rc = cursor_value(&k, &v, &nl->off)) != MDB_SUCCESS) {
			break;
		}
		memcpy(nl->name, k.mv_data, k.mv_size);
		nl->name[k.mv_size] = '\0';
		used++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		free(l);
		return (rc);
	}
	*list = l;
	*n    = used;
	return (MDB_SUCCESS);
}

int
evb_wal_cursor_list(evb_wal *w, evb_wal_cursor_info **list, size_t *n)
{
	MDB_txn *txn = NULL;
	int      rc;

	if (w == NULL || list == NULL || n == NULL) {
		return (EVB_EINVAL);
	}
	if ((rc = wal_read_begin(w, &txn)) != MDB_SUCCESS) {
		return (wal_err(rc, NULL, "cursor list"));
	}
	rc = cursor_collect(w, txn, list, n);
	wal_read_end(w, &txn, false);
	return (wal_err(rc, NULL, "cursor list"));
}

void
evb_wal_cursor_list_free(evb_wal_cursor_info *list)
{
	free(list);
}
