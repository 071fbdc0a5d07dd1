/*
 * wal: the durable write-ahead log, an LMDB environment in one directory.
 * Every accepted event is appended here before anyone is told it is safe;
 * consumers replay it with iterators and remember their place with named
 * cursors. docs/wal-format.md describes the stored bytes.
 *
 * Delivery: evb_wal_append is all-or-nothing per batch. A batch is one
 * LMDB write transaction: after a crash either every record of it is
 * there, with consecutive offsets, or none is. Offsets start at 1 and grow
 * by one per stored record with no gaps, and are never reused. In
 * EVB_WAL_SYNC mode a batch is on disk when append returns EVB_OK; the
 * other modes trade a loss window (below) for speed. Nothing is dropped
 * silently: a batch that cannot be stored fails as a whole with an error
 * code, and a record that is not stored because its id is a duplicate
 * (evb_wal_append) is reported per record and counted in
 * evb_wal_stat.dup_count.
 *
 * Retention (evb_wal_retain) removes the oldest records, never one that a
 * consumer cursor has not passed and never the newest, so the log stays a
 * gap-free run of offsets from evb_wal_stat.first_off to last_off.
 *
 * Backpressure: append blocks the calling thread for the commit (and the
 * fsync in sync mode). When the map cannot grow (map_size_max) or the disk
 * is full, append fails with EVB_EFULL and the log is left as it was.
 *
 * Thread-safety: one evb_wal handle may be used by one writer thread
 * (append, cursor_set, retain) plus any number of reader threads (last,
 * stats, cursor_get, cursor_list, seek_time, verify, iterators); other
 * processes may open the same directory read-only at the same time.
 * Writes through one handle are serialised inside it, so a second writing
 * thread (or the handle's own retention thread) waits instead of
 * corrupting anything. An iterator belongs to one thread at a time.
 * Only one process may append to a log at a time: the duplicate window
 * lives in the appending handle's memory. Other processes may open the
 * log read-only, or read-write to call evb_wal_cursor_set.
 * Do not fork() with a handle open and use it in the child.
 */
#ifndef EVB_WAL_H
#define EVB_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/*
 * Limits. Each is checked on input and documented in docs/wal-format.md.
 */
/* Largest payload of one record. Far above EVB_PROTO_MAX_EVENT_BYTES; it
 * bounds how much one record can make a batch grow the map. */
#define EVB_WAL_MAX_PAYLOAD (16u * 1024 * 1024)
/* Longest cursor name, bytes. LMDB keys are at most 511 bytes. */
#define EVB_WAL_CURSOR_NAME_MAX 128
/* Longest event id, bytes: proto's EVB_PROTO_MAX_ID. An id is stored in
 * its record, its length in one byte (docs/wal-format.md). */
#define EVB_WAL_ID_MAX 128

/*
 * Durability modes and their loss windows on a machine crash or power cut
 * (a process crash alone loses nothing committed in any mode: the data is
 * in the OS page cache).
 */
typedef enum evb_wal_durability {
	/* fsync on every commit: nothing returned as committed is lost. */
	EVB_WAL_SYNC = 0,
	/* No fsync on commit; a background thread flushes the log every
	 * sync_period_ms. Loses up to the last sync_period_ms of batches
	 * (plus the length of one flush). LMDB warns that without sync a
	 * machine crash may also corrupt the environment if the filesystem
	 * reorders writes; run evb_wal_verify after one. */
	EVB_WAL_PERIODIC = 1,
	/* Never fsync'd except by evb_wal_close, meta pages included. A
	 * machine crash may lose everything since the last clean close or
	 * corrupt the environment. For tests and throwaway data. */
	EVB_WAL_NONE = 2,
} evb_wal_durability;

/*
 * The wall clock that stamps each batch's append time (evb_wal_entry's
 * append_ns), which the dedup age window and retention by age compare
 * with. Returns ns since the Unix epoch. Called from the appending thread
 * and the retention thread, so it must be thread-safe.
 */
typedef int64_t (*evb_wal_clock_fn)(void *arg);

/* Options. Fill with evb_wal_opts_default, then change what you need. */
typedef struct evb_wal_opts {
	/* Default EVB_WAL_SYNC. */
	evb_wal_durability durability;
	/* PERIODIC flush interval, ms; default 100; > 0 in that mode. */
	uint32_t sync_period_ms;
	/* Map size at open, bytes; default 64 MiB. An existing log keeps at
	 * least the size its pages use. Doubled whenever it is full. */
	size_t map_size_initial;
	/* Largest map, bytes; default 0 = unlimited. When the map cannot
	 * grow past it, append fails with EVB_EFULL. */
	size_t map_size_max;
	/* Open for reading only; default false. The log must exist. */
	bool read_only;
	/* Concurrent read txns over all processes; default 126 (LMDB's).
	 * Set by the first process to open the log. */
	uint32_t max_readers;
	/*
	 * Duplicate suppression (evb_wal_append): a record whose id was
	 * stored within the window is not stored again. The window is the
	 * last dedup_window_count records before the batch AND the last
	 * dedup_window_age_ms before it, so it ends at whichever limit comes
	 * first. 0 turns a limit off; both 0 turn suppression off (ids are
	 * then stored in their records but not checked). Defaults 1,000,000
	 * records and 86,400,000 ms (24 h). age <= INT64_MAX / 1,000,000.
	 * Memory: the handle that appends keeps the window's ids in memory
	 * from its first append with ids on (built from the log's records,
	 * so the window survives a reopen): about 40 bytes per id, in arrays
	 * sized and faulted in at that append for dedup_window_count ids
	 * rounded up to a power of 2 (40 MiB at the default, 42 bytes per
	 * id; the append takes about 0.1 s longer for it) and doubled
	 * when a batch or an age-only window needs more. Handles that never
	 * append ids (read-only ones) use none.
	 */
	uint64_t dedup_window_count;
	uint64_t dedup_window_age_ms;
	/*
	 * Retention (evb_wal_retain): remove records appended more than
	 * retain_age_ms ago, and the oldest records while the log's pages
	 * take more than retain_bytes. 0 turns a limit off; both default 0,
	 * keep everything. age <= INT64_MAX / 1,000,000.
	 */
	uint64_t retain_age_ms;
	uint64_t retain_bytes;
	/* > 0: a thread of the handle runs evb_wal_retain every
	 * retain_period_ms, removing at most retain_txn_records per write
	 * txn. Default 0: no thread, the owner calls evb_wal_retain. Needs
	 * retain_age_ms or retain_bytes, and a read-write handle. */
	uint32_t retain_period_ms;
	/* Records per retention txn of that thread; default 10,000. */
	uint32_t retain_txn_records;
	/* The clock for append times; default NULL: CLOCK_REALTIME. Tests
	 * inject one so that windows pass without sleeping. */
	evb_wal_clock_fn clock_ns;
	void            *clock_arg; /* Passed to clock_ns. */
} evb_wal_opts;

/* evb_wal_opts_default fills *o with the defaults above. */
void evb_wal_opts_default(evb_wal_opts *o);

typedef struct evb_wal evb_wal;

/*
 * evb_wal_open opens the log in directory dir, creating it (mode 0700) and
 * its files (0600) unless o->read_only. o may be NULL for the defaults.
 * Clears reader slots left by dead processes (mdb_reader_check). In
 * PERIODIC mode it starts the flush thread, and with retain_period_ms the
 * retention thread.
 * Errors: EVB_EINVAL (bad option, NULL dir; the diag names it),
 * EVB_ENOTFOUND (read_only and no log there, or an empty one without its
 * format version), EVB_EVERSION (the log's format version is unknown to
 * this build), EVB_ECORRUPT (records but no format version, read-write
 * or read-only alike; a malformed one), EVB_ENOMEM,
 * EVB_ESYSERR + errno (creating dir, starting a thread), EVB_ESTORAGE
 * (other LMDB failures, with mdb_strerror's text in the diag).
 * OUT: *out, on success only; release with evb_wal_close.
 */
int evb_wal_open(
    evb_wal **out, const char *dir, const evb_wal_opts *o, evb_diag *diag);

/*
 * evb_wal_close stops the handle's threads, flushes the log to disk (unless
 * read-only) and releases everything. NULL is ok. Close every iterator of
 * the handle first; closing with one open is a programming error (it
 * aborts).
 */
void evb_wal_close(evb_wal *w);

/* One record to append. Everything is borrowed for the call. */
typedef struct evb_wal_rec {
	uint16_t    type;    /* Event type index (proto). */
	uint64_t    epoch;   /* Producer epoch. */
	uint64_t    seq;     /* Producer sequence number. */
	int64_t     ts_ns;   /* Event time, ns since the Unix epoch. */
	const void *payload; /* Encoded event (MessagePack); opaque here. */
	size_t      len;     /* Payload bytes, <= EVB_WAL_MAX_PAYLOAD. */
	const void *id;      /* Event id for duplicate suppression. When it
	                        points into the payload (an envelope's id
	                        field, within its first 64 KiB), the record
	                        refers to it there (2 bytes) instead of
	                        holding a copy. */
	size_t id_len;       /* Id bytes, <= EVB_WAL_ID_MAX; 0: no id, never
	                        a duplicate. Stored in the record. */
} evb_wal_rec;

/*
 * What became of one record of a batch. The status is an evb_err code so
 * that a reply to the producer can carry it as is: EVB_OK and EVB_EEXIST
 * today; later stages (the broker's validation) add their own codes for
 * records refused before they reach the WAL.
 */
typedef struct evb_wal_result {
	uint64_t off; /* EVB_OK: the record's offset. EVB_EEXIST: the
	                 offset of the record stored earlier with its id. */
	int status;   /* EVB_OK: stored. EVB_EEXIST: a duplicate, not
	                 stored. */
} evb_wal_result;

/*
 * evb_wal_append appends the records of recs[0..n-1] (n >= 1) in one
 * transaction, in order; the stored ones get consecutive offsets. If the
 * map is full it grows the map (doubling, capped by map_size_max) and
 * retries the whole batch, so a batch is never half-written. Durable on
 * return in EVB_WAL_SYNC mode.
 *
 * Duplicates: unless suppression is off (both dedup limits 0), a record
 * with an id (id_len > 0) is not stored when an earlier record of the
 * same batch has the same id, or when a record stored before the batch
 * has it and is still in the window: among the last dedup_window_count
 * records before the batch, appended less than dedup_window_age_ms before
 * the batch's append time, and not removed by retention. Ids compare as
 * bytes. A duplicate takes no offset; its result is EVB_EEXIST with the
 * offset of the record that holds the id. Duplicates are counted in
 * evb_wal_stat.dup_count.
 *
 * Errors (nothing of the batch is stored): EVB_EINVAL (n == 0, NULL
 * payload with len > 0, NULL id with id_len > 0, read-only handle),
 * EVB_ETOOBIG (a payload over EVB_WAL_MAX_PAYLOAD or an id over
 * EVB_WAL_ID_MAX), EVB_EFULL (map_size_max reached, or the disk is full:
 * ENOSPC, EDQUOT, EFBIG; later appends work once space returns),
 * EVB_ECORRUPT, EVB_ENOMEM, EVB_ESTORAGE. The diag (NULL allowed) says
 * which record or what LMDB said.
 * OUT: res (may be NULL), an array of n results, res[i] for recs[i], on
 * success only.
 */
int evb_wal_append(evb_wal *w, const evb_wal_rec *recs, size_t n,
    evb_wal_result *res, evb_diag *diag);

/*
 * evb_wal_dedup_load builds the duplicate window's table now, from the
 * window's records, which the handle's first append with ids would
 * otherwise do inside its commit: a scan of up to dedup_window_count
 * records and the table's memory (wal_opts.dedup_window_count), about
 * 0.1-0.2 s for the default window. A writer calls it before it takes
 * traffic so that its first batch does not wait for it. Nothing is
 * written to the log. Does nothing when the table is built already or
 * suppression is off. Errors: EVB_EINVAL (NULL or read-only handle),
 * EVB_ENOMEM, EVB_ECORRUPT, EVB_ESTORAGE.
 */
int evb_wal_dedup_load(evb_wal *w, evb_diag *diag);

/*
 * evb_wal_last gives the offset of the newest record, 0 when the log is
 * empty. Errors: EVB_ESTORAGE. OUT: *last_off, on success only.
 */
int evb_wal_last(evb_wal *w, uint64_t *last_off);

/* ---- Iterators ---------------------------------------------------------
 * An iterator reads records in offset order. It holds no LMDB read
 * transaction between calls: each refill renews one (mdb_txn_renew),
 * copies a chunk of records into the iterator and resets it at once, so
 * an idle iterator never pins old pages or blocks map growth. A refill
 * sees every batch committed before it, so after EVB_EOF a later call
 * returns records appended since (tailing).
 */
typedef struct evb_wal_iter evb_wal_iter;

/* One record as read. Pointers are borrowed until the next call on the
 * iterator or its close. */
typedef struct evb_wal_entry {
	uint64_t off;        /* Offset (key) of the record. */
	uint16_t type;       /* As appended. */
	uint8_t  flags;      /* Record flags: how the record is stored
	                        (docs/wal-format.md). */
	uint64_t epoch;      /* As appended. */
	uint64_t seq;        /* As appended. */
	int64_t  ts_ns;      /* As appended. */
	int64_t  append_ns;  /* The batch's append time (the WAL's clock),
	                        ns since the Unix epoch. */
	const void *payload; /* As appended (NULL when len is 0). */
	size_t      len;     /* Payload bytes. */
	const void *id;      /* The event id as appended (NULL when id_len
	                        is 0). */
	size_t id_len;       /* Id bytes. */
} evb_wal_entry;

/*
 * evb_wal_iter_open makes an iterator that starts at the first record with
 * offset >= from_off (0 or 1: the start of the log). Records that
 * retention removed are simply not there: an iterator opened at, or
 * lagging behind, a removed offset continues at the first kept one.
 * Errors: EVB_EINVAL, EVB_ENOMEM, EVB_ESTORAGE (e.g. no reader slot).
 * OUT: *it, on success only; release with evb_wal_iter_close.
 */
int evb_wal_iter_open(evb_wal *w, uint64_t from_off, evb_wal_iter **it);

/*
 * evb_wal_iter_next reads the next record into *out.
 * Returns EVB_OK; EVB_EOF when no record follows yet (*out untouched);
 * EVB_ECORRUPT when the record fails its CRC-32C, is shorter than its
 * header says, or has an unknown version or flags: then only out->off is
 * set (to the bad record's offset, other fields zero) and the iterator
 * moves past it, so the next call reads the record after it.
 * Also EVB_ENOMEM, EVB_ESTORAGE.
 */
int evb_wal_iter_next(evb_wal_iter *it, evb_wal_entry *out);

/* evb_wal_iter_close releases the iterator; NULL is ok. */
void evb_wal_iter_close(evb_wal_iter *it);

/*
 * evb_wal_seek_time finds where to start reading for events at or after
 * time ts_ns. The ts of a record is the producer's and need not grow with
 * the offset, so "the first record at or after ts_ns" is defined in
 * offset order: let A be the smallest offset ever appended whose record
 * has ts >= ts_ns, and K the smallest offset still in the log whose
 * record has ts >= ts_ns; for either, last_off + 1 (where the next append
 * goes) if there is none. *off is A if that record is still in the log
 * (then A = K). If retention removed it, *off is first_off or K,
 * depending on which time index entries retention left (docs/wal-format.md,
 * "Time index"); do not count on either. So first_off <= *off <= K in
 * every case: no record in the log with ts >= ts_ns is before *off, and
 * every record in the log before *off has ts < ts_ns (an empty log gives
 * last_off + 1). Records after *off may have any ts. A record
 * in the scanned range that fails its check (evb_wal_iter_next's
 * EVB_ECORRUPT) ends the search at its offset, so that nothing is
 * skipped. Open an iterator at *off to read from there.
 *
 * Cost: one lookup in the time index plus a scan of at most the records
 * appended while the running maximum of ts stayed within one 1 ms bucket
 * of the index's key (docs/wal-format.md, "Time index"); read in chunks
 * like an iterator.
 * Errors: EVB_EINVAL, EVB_ECORRUPT (a bad index entry), EVB_ENOMEM,
 * EVB_ESTORAGE. OUT: *off, on success only.
 */
int evb_wal_seek_time(evb_wal *w, int64_t ts_ns, uint64_t *off);

/* ---- Named consumer cursors --------------------------------------------
 * A cursor is a consumer's confirmed offset, stored under its name in the
 * same environment (so it is as durable as the log in the same mode).
 */

/*
 * evb_wal_cursor_set stores off under name (1..EVB_WAL_CURSOR_NAME_MAX
 * bytes, NUL-terminated), replacing any earlier value. One transaction.
 * Errors: EVB_EINVAL (bad name, read-only handle), EVB_EFULL,
 * EVB_ESTORAGE.
 */
int evb_wal_cursor_set(evb_wal *w, const char *name, uint64_t off);

/*
 * evb_wal_cursor_note asks for off to be stored under name by the
 * handle's next append, in its transaction, instead of one of its own: for a
 * consumer that runs in the process that appends (the compactor in `evbus
 * run`), so that it never takes the log's writer lock and the appender never
 * waits for it. Until then evb_wal_cursor_get, evb_wal_cursor_list and
 * retention see the value stored before, which is older, so retention holds
 * back a little longer. A later note of the name replaces this one, and an
 * evb_wal_cursor_set of it drops it first (so a failed set leaves the
 * value stored before); evb_wal_close stores what is still noted. One name's
 * notes and sets are meant to come from one thread. When WAL_NOTES_MAX (8)
 * other names are noted already, the value is stored at once, as
 * evb_wal_cursor_set does. Errors: EVB_EINVAL (bad name, read-only handle), and
 * those of evb_wal_cursor_set in that case.
 */
int evb_wal_cursor_note(evb_wal *w, const char *name, uint64_t off);

/*
 * evb_wal_cursor_get reads the offset stored under name.
 * Errors: EVB_ENOTFOUND (never set), EVB_EINVAL, EVB_ESTORAGE.
 * OUT: *off, on success only.
 */
int evb_wal_cursor_get(evb_wal *w, const char *name, uint64_t *off);

/* One cursor as listed by evb_wal_cursor_list. */
typedef struct evb_wal_cursor_info {
	char     name[EVB_WAL_CURSOR_NAME_MAX + 1]; /* NUL-terminated. */
	uint64_t off;                               /* Its stored offset. */
} evb_wal_cursor_info;

/*
 * evb_wal_cursor_list reads every cursor, in name order (bytes).
 * Errors: EVB_EINVAL, EVB_ECORRUPT (a stored cursor is malformed),
 * EVB_ENOMEM, EVB_ESTORAGE.
 * OUT: *list and *n, on success only; *list is NULL when *n is 0.
 * Release the list with evb_wal_cursor_list_free.
 */
int evb_wal_cursor_list(evb_wal *w, evb_wal_cursor_info **list, size_t *n);

/* evb_wal_cursor_list_free releases a list; NULL is ok. */
void evb_wal_cursor_list_free(evb_wal_cursor_info *list);

/* ---- Retention ---------------------------------------------------------
 * Retention removes the oldest records in bounded write transactions,
 * with their entries in the time index; between transactions the lock is
 * released, so an append waits for at most one of them. LMDB reuses the
 * freed pages, so at a steady rate the data file stops growing (it never
 * shrinks: LMDB keeps the high-water mark).
 */

/*
 * evb_wal_retain removes, oldest first, every record that the limits in
 * the options condemn: appended more than retain_age_ms before now (the
 * scan stops at the first younger record), or the oldest ones while the
 * log's pages take more than retain_bytes. It never removes a record
 * after the lowest consumer cursor (a cursor at X means its consumer is
 * done with X, so X itself may go), nor the newest record (so the next
 * offset survives a reopen). Each write txn removes at most
 * max_records_per_txn records (>= 1); it loops until nothing is left to
 * do. With neither limit set it removes nothing.
 * Errors: EVB_EINVAL (max_records_per_txn 0, read-only handle),
 * EVB_ECORRUPT (a record whose append time cannot be read, with its
 * offset in the diag, stops retention by age there), EVB_EFULL,
 * EVB_ENOMEM, EVB_ESTORAGE; transactions committed before the error stay
 * committed. OUT: *removed (may be NULL), records removed, on success
 * only.
 */
int evb_wal_retain(
    evb_wal *w, size_t max_records_per_txn, uint64_t *removed, evb_diag *diag);

/* ---- Stats and verification --------------------------------------------
 * The stats type is evb_wal_stat, singular, because C gives a typedef and
 * a function one namespace (the same split as lmdb.h's MDB_stat and
 * mdb_stat).
 */

typedef struct evb_wal_stat {
	uint64_t first_off;       /* Oldest record's offset; 0 when empty. */
	uint64_t last_off;        /* Newest record's offset; 0 when empty. */
	uint64_t record_count;    /* Records in the log. */
	uint64_t bytes_used;      /* Pages in use (whole env) x page size:
	                             LMDB's two meta pages and every DB's
	                             tree, its free-page DB's included.
	                             The rest of file_bytes is free pages
	                             that later writes reuse. */
	uint64_t log_bytes;       /* Pages of the log's records x page size
	                             (what retain_bytes limits). */
	uint64_t file_bytes;      /* Size of data.mdb on disk, bytes. */
	uint64_t map_size;        /* Current map size, bytes. */
	uint64_t id_count;        /* Ids in the duplicate window for the
	                             next append: the appending handle's
	                             table; other handles count them in the
	                             log (up to dedup_window_count records
	                             read). */
	uint64_t map_grows;       /* Map growths by this handle since open. */
	uint64_t sync_failures;   /* PERIODIC flushes that failed (logged
	                             as EVB-WAL-SYNC). */
	uint64_t dup_count;       /* Duplicates this handle did not store. */
	uint64_t retain_removed;  /* Records this handle's retention
	                             removed since open. */
	uint64_t retain_failures; /* Retention thread runs that failed
	                             (logged as EVB-WAL-RETAIN). */
} evb_wal_stat;

/*
 * evb_wal_stats fills *out. Errors: EVB_ESTORAGE.
 * OUT: *out, on success only.
 */
int evb_wal_stats(evb_wal *w, evb_wal_stat *out);

typedef struct evb_wal_verify_report {
	uint64_t record_count;  /* Records scanned. */
	uint64_t first_off;     /* First offset seen; 0 when empty. */
	uint64_t last_off;      /* Last offset seen; 0 when empty. */
	uint64_t bad_count;     /* Bad records plus missing offsets. */
	uint64_t first_bad_off; /* First bad or missing offset; 0 if none. */
} evb_wal_verify_report;

/*
 * evb_wal_verify scans every record (in chunks, like an iterator, so it
 * does not block the writer) and checks: keys are 8 bytes, ascending and
 * gap-free; each value has the known version, no reserved flag, an id
 * length and a payload length matching its size, an id inside the
 * payload when the record says so, and a valid CRC-32C.
 * Returns EVB_OK when the log is clean; EVB_ECORRUPT when it is not, and
 * then *out is still filled and the diag describes the first problem.
 * Also EVB_ENOMEM, EVB_ESTORAGE.
 * OUT: *out, on EVB_OK and EVB_ECORRUPT.
 */
int evb_wal_verify(evb_wal *w, evb_wal_verify_report *out, evb_diag *diag);

/* ---- Records -----------------------------------------------------------
 * The stored form of one record (docs/wal-format.md), for tools and the
 * fuzzer that check records by hand. The log uses exactly these.
 */

/* evb_wal_record_size is the stored size of r: its header, its id (or
 * the id's place in the payload, evb_wal_rec.id) and its payload. */
size_t evb_wal_record_size(const evb_wal_rec *r);

/*
 * evb_wal_record_encode writes r (its type, epoch, seq, ts_ns, id and
 * payload) stamped with append_ns to dst, which holds
 * evb_wal_record_size(r) bytes.
 * r->len <= EVB_WAL_MAX_PAYLOAD, r->id_len <= EVB_WAL_ID_MAX.
 */
void evb_wal_record_encode(
    uint8_t *dst, const evb_wal_rec *r, int64_t append_ns);

/*
 * evb_wal_record_decode checks the stored value val (len bytes) of offset
 * off: its size against the header, the version, the flags, the id
 * length, the payload length, the id's place in the payload (flag ID_AT)
 * and the CRC-32C, in that order. Returns EVB_OK, or
 * EVB_ECORRUPT with the first problem in the diag (NULL allowed); EVB_EINVAL
 * for a NULL out, or a NULL val with len > 0. OUT: *out, on success only;
 * out->id and out->payload borrow val.
 */
int evb_wal_record_decode(uint64_t off, const void *val, size_t len,
    evb_wal_entry *out, evb_diag *diag);

/*
 * evb_wal_crc32c extends crc (0 to start) over the n bytes at p with the
 * records' checksum, CRC-32C (docs/wal-format.md). Uses the CPU's crc32
 * instruction when it has one.
 */
uint32_t evb_wal_crc32c(uint32_t crc, const void *p, size_t n);

#endif /* EVB_WAL_H */
