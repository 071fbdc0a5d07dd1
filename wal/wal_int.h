/*
 * wal_int.h: declarations shared by the wal/ sources. Not part of the
 * contract; only the sources in wal/ include it.
 *
 * Locks, in the order they are taken:
 *   1. evb_wal.wlock     serialises write transactions of this handle.
 *   2. evb_wal.map_lock  held shared for the life of every read txn and
 *                        exclusively by mdb_env_set_mapsize, which remaps
 *                        the file and must not run under any open txn of
 *                        this process (lmdb.h mdb_env_set_mapsize).
 * A thread holding map_lock never takes wlock. The tickers' own mutexes
 * (wal_ticker.mtx) are leaves: nothing else is taken while one is held.
 */
#ifndef EVB_WAL_INT_H
#define EVB_WAL_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <lmdb.h>

#include "wal/wal.h"

/*
 * Record value layout, all big-endian (docs/wal-format.md). These are part
 * of the format: changing one breaks existing logs; bump WAL_REC_VERSION
 * and WAL_FORMAT_VERSION in the same commit, and update rec_layout_read
 * in wal_rec.c (the checks that evb_wal_record_decode, wal_rec_peek and
 * evb_wal_verify share) and the encoder, docs/wal-format.md, the
 * byte-exact tests in tests/unit/wal_basic_test.c and the fuzz corpus
 * (fuzz/gen_wal_corpus.py) with it.
 *
 *   0     1     2     4       12      20      28          36    40     44
 *   +-----+-----+-----+-------+-------+-------+-----------+-----+------+---
 *   | ver |flags| type| epoch | seq   | ts_ns | append_ns | len |crc32c|
 *   +-----+-----+-----+-------+-------+-------+-----------+-----+------+---
 *   44      45                45 + id_len
 *   +-------+-----------------+-----------------
 *   |id_len | id (id_len)     | payload (len)         flags 0
 *   +-------+-----------------+-----------------
 *   44      45      47
 *   +-------+-------+-----------------
 *   |id_len | id_at | payload (len)                   flags ID_AT: the id
 *   +-------+-------+-----------------                is payload[id_at..]
 *
 * The CRC covers bytes 0..39, then everything from byte 44 to the end.
 */
#define WAL_REC_VERSION 4 /* Record header version byte. */
#define WAL_REC_OFF_VER 0
#define WAL_REC_OFF_FLAGS 1
#define WAL_REC_OFF_TYPE 2
#define WAL_REC_OFF_EPOCH 4
#define WAL_REC_OFF_SEQ 12
#define WAL_REC_OFF_TS 20
#define WAL_REC_OFF_APPEND 28
#define WAL_REC_OFF_LEN 36
#define WAL_REC_OFF_CRC 40
#define WAL_REC_OFF_IDLEN 44
#define WAL_REC_HDR_SIZE 45 /* Header bytes before the id or id_at. */
/* The id is bytes id_at..id_at + id_len - 1 of the payload; a u16 id_at
 * follows id_len in place of the id's bytes. */
#define WAL_REC_FLAG_ID_AT 0x01
#define WAL_REC_ID_AT_SIZE 2
#define WAL_REC_ID_AT_MAX 0xFFFF
#define WAL_REC_FLAGS_KNOWN WAL_REC_FLAG_ID_AT

/* The environment's format version, key "format" in the meta DB. */
#define WAL_FORMAT_VERSION 4
#define WAL_META_FORMAT_KEY "format"
#define WAL_KEY_SIZE 8 /* Log keys: the offset, u64 big-endian. */

/*
 * The time index ("ts" DB) keeps one entry each time the running maximum
 * of ts enters a later bucket of WAL_TS_BUCKET_NS. A bucket is of the
 * key (ts XOR 2^63), not of ts, so its edges are at ts = 224,192 mod
 * 10^6 (docs/wal-format.md, "Time index"). Part of the format: changing
 * it breaks existing logs, which could not be searched with another.
 */
#define WAL_TS_BUCKET_NS 1000000 /* 1 ms. */

#define WAL_NS_PER_MS 1000000

/* The dedup window's ids in memory (wal_dedup.c). */
typedef struct wal_idtab wal_idtab;

/*
 * A thread that runs fn every period_ms until stopped (wal_bg.c). The
 * handle has two: the PERIODIC flush and retention.
 */
typedef struct wal_ticker {
	evb_wal *w;                /* Set when it starts. */
	void (*fn)(evb_wal *w);    /* The periodic task. */
	uint32_t        period_ms; /* Between the end of a run and the next. */
	pthread_t       thr;       /* The thread, while has_thr. */
	bool            has_thr;   /* Started; join at stop. */
	bool            has_objs;  /* mtx and cv initialised. */
	pthread_mutex_t mtx;       /* Guards stop. */
	pthread_cond_t  cv;        /* Signals stop. */
	bool            stop;      /* Guarded by mtx. */
} wal_ticker;

/* Cursor values waiting for the handle's next write txn
 * (evb_wal_cursor_note); at most WAL_NOTES_MAX names at once. */
#define WAL_NOTES_MAX 8

typedef struct wal_note {
	char     name[EVB_WAL_CURSOR_NAME_MAX + 1]; /* NUL-terminated. */
	size_t   len;                               /* Bytes of name. */
	uint64_t off;
} wal_note;

/* The notes one write txn stored (wal_notes_put), for wal_notes_done. */
typedef struct wal_notes {
	wal_note note[WAL_NOTES_MAX];
	size_t   n;
} wal_notes;

struct evb_wal {
	MDB_env              *env;         /* Set once at open. */
	bool                  is_env_open; /* mdb_env_open succeeded. */
	MDB_dbi               dbi_log;     /* "log": offset -> record. */
	MDB_dbi               dbi_cursors; /* "cursors": name -> offset. */
	MDB_dbi               dbi_meta;    /* "meta": format, dedup state. */
	MDB_dbi               dbi_ts;      /* "ts": time index. */
	evb_wal_opts          opts;       /* Copied at open; read-only after. */
	pthread_mutex_t       wlock;      /* Serialises write txns. */
	pthread_rwlock_t      map_lock;   /* See the top comment. */
	bool                  has_locks;  /* wlock, map_lock, note_mtx made. */
	atomic_int            open_iters; /* Iterators not yet closed. */
	atomic_uint_least64_t map_grows;  /* Growths since open. */
	atomic_uint_least64_t sync_failures;   /* Failed periodic flushes. */
	atomic_uint_least64_t dup_count;       /* Duplicates not stored. */
	atomic_uint_least64_t retain_removed;  /* Records retention removed. */
	atomic_uint_least64_t retain_failures; /* Failed retention runs. */
	wal_idtab            *ids;     /* The dedup window's ids; built by the
	                                  first append with ids (wal_dedup.c),
	                                  guarded by wlock. NULL until then. */
	atomic_int_least64_t id_count; /* Ids in *ids; -1 until built. */
	uint64_t             id_seed;  /* Seeds id hashes; set at open. */

	/* Cursor notes (wal_cursor.c). note_mtx is taken inside wlock,
	 * never wlock inside it; note_hint is nnotes, read without the
	 * mutex to skip it when 0. */
	pthread_mutex_t note_mtx;
	wal_note        notes[WAL_NOTES_MAX];
	size_t          nnotes;
	atomic_size_t   note_hint;

	wal_ticker    sync_tk;   /* PERIODIC flushes. */
	wal_ticker    retain_tk; /* Retention, with retain_period_ms. */
	evb_ratelimit sync_rl;   /* EVB-WAL-SYNC lines; flush thread only. */
	evb_ratelimit retain_rl; /* EVB-WAL-RETAIN lines; retention thread
	                            only. */
};

/* ---- wal.c -------------------------------------------------------------- */

/* wal_now_ns reads the handle's clock (opts.clock_ns or CLOCK_REALTIME). */
int64_t wal_now_ns(const evb_wal *w);

/* wal_dedup_on says whether duplicate suppression is on. */
bool wal_dedup_on(const evb_wal *w);

/* wal_ms_to_ns converts a window or age in ms (validated at open). */
static inline int64_t
wal_ms_to_ns(uint64_t ms)
{
	return (int64_t) ms * WAL_NS_PER_MS;
}

/* wal_older says whether at least age_ns passed from then to now. */
static inline bool
wal_older(int64_t then, int64_t now, int64_t age_ns)
{
	// Unsigned difference: exact for now >= then, whatever the signs.
	return (now >= then &&
	    (uint64_t) now - (uint64_t) then >= (uint64_t) age_ns);
}

/*
 * wal_log_bound reads the first (MDB_FIRST) or last (MDB_LAST) offset of
 * the log in txn, 0 when it is empty. Returns an LMDB code.
 */
int wal_log_bound(evb_wal *w, MDB_txn *txn, MDB_cursor_op op, uint64_t *off);

/* ---- wal_bg.c ----------------------------------------------------------- */

/*
 * wal_bg_start starts the threads the options ask for: the PERIODIC flush
 * and the retention ticker. wal_bg_stop stops and joins them; it is safe
 * on a handle whose threads never started.
 */
int  wal_bg_start(evb_wal *w, evb_diag *d);
void wal_bg_stop(evb_wal *w);

/* ---- wal_txn.c ---------------------------------------------------------- */

/*
 * wal_err translates an LMDB or errno code rc into an evb_err and writes
 * "<what>: <mdb_strerror>" to d. MDB_MAP_FULL and ENOSPC/EDQUOT/EFBIG give
 * EVB_EFULL; MDB_CORRUPTED and MDB_PAGE_NOTFOUND give EVB_ECORRUPT.
 */
int wal_err(int rc, evb_diag *d, const char *what);

/*
 * wal_read_begin starts (or, when *txn is not NULL, renews) a read txn and
 * takes map_lock shared; it follows a map grown by another process
 * (MDB_MAP_RESIZED). Returns an LMDB code; on failure *txn is NULL and no
 * lock is held.
 */
int wal_read_begin(evb_wal *w, MDB_txn **txn);

/*
 * wal_read_end ends the read txn and drops map_lock. keep resets the txn
 * so that wal_read_begin can renew it; otherwise it is aborted and *txn
 * set to NULL.
 */
void wal_read_end(evb_wal *w, MDB_txn **txn, bool keep);

/* A write step: fills txn; returns an LMDB code (0 to commit), or
 * WAL_STEP_AGAIN to have its txn aborted and the step run again. */
typedef int (*wal_write_fn)(evb_wal *w, MDB_txn *txn, void *arg);

/* Outside LMDB's codes (-30799..-30780) and errno's (> 0). */
#define WAL_STEP_AGAIN (-30700)

/* What to do once a write step's txn has committed (still under wlock,
 * before any other write txn of the handle); it cannot fail. */
typedef void (*wal_done_fn)(evb_wal *w, void *arg);

/*
 * wal_write runs fn in one write txn and commits it, then calls done (may
 * be NULL) with wlock still held. On MDB_MAP_FULL it aborts, grows the map
 * and runs fn again from the start, so fn must depend only on arg and the
 * txn; on WAL_STEP_AGAIN it aborts and runs fn again (fn must not ask
 * twice in a row). Returns an evb_err; the diag starts with what ("append",
 * "cursor set").
 */
int wal_write(evb_wal *w, wal_write_fn fn, wal_done_fn done, void *arg,
    evb_diag *d, const char *what);

/* ---- wal_cursor.c ------------------------------------------------------ */

/*
 * wal_notes_put stores the pending cursor notes in txn, the handle's
 * write txn (under wlock), and copies what it stored into *t. Returns an
 * LMDB code.
 */
int wal_notes_put(evb_wal *w, MDB_txn *txn, wal_notes *t);

/* wal_notes_done drops the notes of *t once their txn has committed,
 * unless a newer note of the same name came meanwhile. */
void wal_notes_done(evb_wal *w, const wal_notes *t);

/* wal_notes_flush stores what is still noted in a write txn of its own
 * (at close). Returns an evb_err. */
int wal_notes_flush(evb_wal *w);

/* ---- wal_crc.c / wal_rec.c ---------------------------------------------- */

/*
 * wal_rec_encode is evb_wal_record_encode, and returns where the id's
 * bytes lie in dst (NULL for a record without an id): the appender hashes
 * them there, just written and still in cache.
 */
const uint8_t *wal_rec_encode(
    uint8_t *dst, const evb_wal_rec *r, int64_t append_ns);

/*
 * wal_rec_peek reads the append time and the id of the stored value val
 * without checking its CRC (for retention and the dedup window, which
 * read many records and only need these fields). EVB_ECORRUPT when val
 * fails any other check of evb_wal_record_decode (size, version, flags,
 * id length, payload length, the id's place in the payload). OUT: *ns,
 * and *id (borrowing val: after the header, or inside the payload) and
 * *id_len when id is not NULL, on success only.
 */
int wal_rec_peek(const uint8_t *val, size_t len, int64_t *ns,
    const uint8_t **id, size_t *id_len);

/* ---- wal_dedup.c -------------------------------------------------------- */

/* A batch's ids, hashed once (they depend only on the batch), used by
 * wal_dedup_assign, maybe in more than one txn (wal_write). */
typedef struct wal_dedup {
	uint64_t *hash;   /* n hashes; 0 for a record without an id. NULL
	                     when nids is 0. */
	uint32_t *stored; /* n: the batch index of the k-th stored record
	                     (offset next + k); filled by the pass. */
	size_t nids;      /* Records with an id. */
	bool   hashed;    /* hash is filled. */
} wal_dedup;

/*
 * wal_dedup_prepare makes room for the hashes of the ids of
 * recs[0..n-1]. With suppression off or no id in the batch it allocates
 * nothing and d->nids is 0. Returns EVB_OK or EVB_ENOMEM. Release with
 * wal_dedup_fini.
 */
int wal_dedup_prepare(
    evb_wal *w, const evb_wal_rec *recs, size_t n, wal_dedup *d);
void wal_dedup_fini(wal_dedup *d);

/* wal_dedup_hash sets the hash of record i, whose id is id[0..len-1]
 * (NULL: none). */
void wal_dedup_hash(
    const evb_wal *w, wal_dedup *d, size_t i, const uint8_t *id, size_t len);

/*
 * wal_dedup_write_first says whether an append of the batch d should
 * store every record first, hashing each id from its stored copy, and
 * then decide (wal_dedup_assign): the table is built, the batch is not
 * hashed yet, and the last batch had no duplicate. When the decision
 * finds one, the txn is redone with the batch decided first.
 */
bool wal_dedup_write_first(const evb_wal *w, const wal_dedup *d);

/*
 * wal_dedup_assign decides which records of the batch recs[0..n-1] (ids
 * hashed in d, here unless d->hashed) are stored and gives those consecutive
 * offsets from next on, in batch order: res[i] is {offset, EVB_OK}, or {the
 * original's offset, EVB_EEXIST} for a duplicate. It builds the window's table
 * on first use and adds the stored ids to it as pending: wal_dedup_commit keeps
 * them once the txn has committed, and the next wal_dedup_assign takes back any
 * that were not kept (a retried or failed txn). now_ns is the batch's append
 * time. Returns an LMDB code (or ENOMEM).
 */
int wal_dedup_assign(evb_wal *w, MDB_txn *txn, const evb_wal_rec *recs,
    wal_dedup *d, size_t n, uint64_t next, int64_t now_ns, evb_wal_result *res);

/* wal_dedup_commit keeps the pending ids of a committed batch whose last
 * stored offset is last (0: none) and drops the ids that left the
 * window. */
void wal_dedup_commit(evb_wal *w, uint64_t last, int64_t now_ns);

/* wal_dedup_retained drops the table's ids of records below first, which
 * retention has removed (committed). */
void wal_dedup_retained(evb_wal *w, uint64_t first);

/*
 * wal_dedup_count is the number of ids in the window for the next append:
 * the table's when it is built, else counted from the log in txn. Returns
 * an LMDB code. OUT: *count.
 */
int wal_dedup_count(evb_wal *w, MDB_txn *txn, uint64_t *count);

/* wal_dedup_free releases the table; NULL is ok. */
void wal_dedup_free(wal_idtab *t);

/* ---- wal_time.c --------------------------------------------------------- */

/* The time index's position in one append txn. */
typedef struct wal_time {
	MDB_cursor *cur;      /* On "ts", open for the txn. */
	bool        has_last; /* The index has an entry. */
	uint64_t    last_key; /* Its newest key (a flipped ts). */
} wal_time;

/* wal_time_begin opens the index in txn; an LMDB code. */
int wal_time_begin(evb_wal *w, MDB_txn *txn, wal_time *t);

/* wal_time_note indexes a stored record (offset off, time ts_ns) if it
 * raises the running maximum into a later bucket; an LMDB code. */
int wal_time_note(wal_time *t, uint64_t off, int64_t ts_ns);

/* wal_time_end closes the cursor. */
void wal_time_end(wal_time *t);

/* wal_time_retained removes the entries that only describe offsets below
 * first (the log's new first offset); an LMDB code. */
int wal_time_retained(evb_wal *w, MDB_txn *txn, uint64_t first);

/* ---- wal_cursor.c ------------------------------------------------------- */

/*
 * wal_cursor_min finds the lowest cursor offset in txn. *has is false when
 * there is no cursor. Returns an LMDB code (MDB_CORRUPTED for a malformed
 * value).
 */
int wal_cursor_min(evb_wal *w, MDB_txn *txn, bool *has, uint64_t *min);

/* ---- wal_iter.c --------------------------------------------------------- */

/*
 * wal_iter_next_raw returns the next stored key and value, copied into
 * the iterator (valid until the next call), without checking the value.
 * *key_ok is false when the key is not WAL_KEY_SIZE bytes (then *off is
 * 0). Returns EVB_OK, EVB_EOF, EVB_ENOMEM or EVB_ESTORAGE.
 */
int wal_iter_next_raw(evb_wal_iter *it, uint64_t *off, bool *key_ok,
    const uint8_t **val, size_t *len);

#endif /* EVB_WAL_INT_H */
