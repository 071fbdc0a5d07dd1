/*
 * compactor: projects the WAL (wal/wal.h) into per-type indexed tables, a
 * second LMDB environment in DATA_DIR/tables, and answers queries on them
 * (by type and time, by symbol, correlation id or user, latest state per
 * key, per-minute statistics, and the trace of a signal to its trades).
 * docs/tables.md describes every table and key byte by byte.
 *
 * Delivery: every record of the log is projected exactly once, in offset
 * order. The compactor's position (the last WAL offset projected) is
 * stored in the same write transaction as the rows projected from the
 * records up to it, so after a crash at any moment the tables hold
 * exactly the records up to the stored position and projection resumes
 * after it: no row is skipped or doubled, and nothing depends on a clean
 * close. A record is either an event (one row in its type's table, one in
 * the all-events index, its index entries, latest state and statistics),
 * a gap record of the collector (counted, not projected), or a record
 * that fails its check or does not decode (counted as bad and logged,
 * rate-limited, as EVB-COMP-BAD); records that retention removed before
 * they were projected are counted as missed. Nothing is dropped without a
 * count.
 *
 * Backpressure: the tables are a separate environment, so projection
 * never blocks an append. The compactor reads the log at its own pace;
 * while it is behind, its lag (last WAL offset minus position) grows and
 * is reported by evb_compactor_stats. It keeps the WAL cursor "compactor"
 * (opts.wal_cursor) at or behind its position, so WAL retention never
 * removes a record it has not projected.
 *
 * Thread-safety: evb_compactor_stats may be called from any thread; the
 * other evb_compactor_* functions from one controlling thread. The
 * compactor owns at most one thread: start creates it, stop joins it. A
 * tables handle (evb_compactor_tables_*) is thread-safe: any number of
 * threads may query one handle at once; each query runs in its own short
 * read transaction and sees one consistent snapshot.
 *
 * LMDB forbids opening one environment twice in one process: do not open
 * a tables handle on a directory for which this process holds an open
 * compactor (close the compactor first). Other processes may hold tables
 * handles on it at any time.
 */
#ifndef EVB_COMPACTOR_H
#define EVB_COMPACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "wal/wal.h"

/*
 * The tables' format version (key "format" in the meta table). A change
 * in any table's keys or values bumps it; tables of another version open
 * only for a rebuild (opts.rebuild, `evbus compact --rebuild`).
 */
#define EVB_COMPACTOR_FORMAT_VERSION 1

/* Subdirectory of the data directory that holds the tables. */
#define EVB_COMPACTOR_DIR "tables"

/* Default name of the compactor's WAL cursor. */
#define EVB_COMPACTOR_CURSOR "compactor"

/*
 * Room for per-type counters (evb_compactor_stat.per_type), indexed by
 * proto type index. Above evb_proto_type_count() so that types added
 * later fit without changing this struct.
 */
#define EVB_COMPACTOR_MAX_TYPES 16

typedef struct evb_compactor        evb_compactor;
typedef struct evb_compactor_tables evb_compactor_tables;

/* Options. Fill with evb_compactor_opts_default, then change what you
 * need. */
typedef struct evb_compactor_opts {
	/* Records per write transaction in the thread; default 16384, > 0.
	 * Larger batches write less per event (each commit rewrites the
	 * index pages it touches) but hold more dirty pages in memory.
	 * While the log stays ahead (each step fills), the thread doubles
	 * its step up to 8 times this; it goes back to this size after a
	 * step that caught up. */
	uint32_t batch_records;
	/* After a step that caught up with the log, the thread waits
	 * poll_ms before the next, so that a steady stream is projected in
	 * steps of poll_ms worth of records (the lag is then about poll_ms
	 * plus one step); default 50, > 0. */
	uint32_t poll_ms;
	/* Name of the WAL cursor that tells retention what the compactor
	 * has projected; default EVB_COMPACTOR_CURSOR. NULL: keep no cursor
	 * (needed with a read-only WAL handle; retention may then remove
	 * records before they are projected, counted as missed). Copied at
	 * open. */
	const char *wal_cursor;
	/* The cursor is stored after a commit at most every
	 * cursor_period_ms (default 500) or every cursor_records records
	 * (default 100,000), whichever comes first, so the WAL sees few
	 * write txns. It is stored only with a position that is on disk
	 * (see sync), so it lags the position, which is safe. Also stored
	 * at stop and close. */
	uint32_t cursor_period_ms;
	uint64_t cursor_records;
	/* true: another thread of this process appends to the WAL handle
	 * (`evbus run`'s collector), and the cursor goes into its next
	 * append (evb_wal_cursor_note) instead of a write txn of the
	 * compactor's own, so the compactor never takes the log's writer
	 * lock while it is behind: a thread that runs at a lower priority
	 * (nice) must not hold a lock the collector waits for. When it has
	 * caught up, and at stop and close, the cursor is stored at once.
	 * Default false. */
	bool cursor_note;
	/* true (default): each commit of the tables is flushed to disk
	 * (one fdatasync; LMDB's MDB_NOMETASYNC: a machine crash may undo
	 * the last commit, rows and position together, never more). false:
	 * commits are not flushed; the tables are flushed every
	 * sync_period_ms after a commit, and at stop and close; a machine
	 * crash may lose or damage them (a process crash loses nothing):
	 * rebuild them then. Match the WAL: true with EVB_WAL_SYNC, false
	 * with PERIODIC or NONE (a flush per commit costs about half the
	 * projection rate; docs/benchmarks.md). */
	bool sync;
	/* With sync false: flush interval, ms; default 1000; 0: only at
	 * stop and close. */
	uint32_t sync_period_ms;
	/* Map size of the tables, bytes; default 64 GiB. Address space
	 * only: the file grows with the data. Doubled when full. */
	size_t map_size;
	/* true: open drops every table and starts again from the first
	 * record of the log, as evb_compactor_rebuild does; the only way to
	 * open tables of another format version. Default false. */
	bool rebuild;
	/* The thread's scheduling priority is lowered by this much, 0..19
	 * (as nice(1)); default 0. Above 0, when the CPU is short the
	 * compactor yields to the threads producers wait on (ingest, the
	 * log) and catches up after; its lag grows meanwhile
	 * (evb_compactor_stat). A failure to lower it is logged, not
	 * fatal. */
	int nice;
	/* NULL (default), or asked by the thread before each step: while
	 * it returns true, the thread projects nothing and asks again
	 * after EVB_COMPACTOR_HOLD_MS, so that the CPU goes to what cannot
	 * wait (`evbus run`: the collector, when it falls so far behind
	 * the broker that its ring could evict frames not yet stored). The
	 * lag grows meanwhile, and is caught up once it returns false.
	 * Called on the compactor's thread with hold_arg; it must not
	 * block. evb_compactor_step does not ask it. */
	bool (*hold)(void *hold_arg);
	void *hold_arg;
} evb_compactor_opts;

/* How long the thread waits before asking hold again, ms. */
#define EVB_COMPACTOR_HOLD_MS 5

/* evb_compactor_opts_default fills *o with the defaults above. */
void evb_compactor_opts_default(evb_compactor_opts *o);

/*
 * evb_compactor_open opens (creating: directory 0700, files 0600) the
 * tables in data_dir/EVB_COMPACTOR_DIR and prepares to project wal from
 * the stored position + 1. wal is borrowed: it must stay open until
 * evb_compactor_close returns (close the compactor before the WAL). The
 * handle may be shared with a writer on another thread (the collector):
 * the compactor only reads records and stores its cursor. Open flushes
 * the tables (the last commit of a process that died may not be on disk
 * yet), then, with a wal_cursor, stores it at the position at once, so
 * retention holds back from then on. o may be NULL for the defaults.
 * Errors: EVB_EINVAL (NULL wal or data_dir, a bad option, or a read-only
 * WAL handle with a wal_cursor; the diag names it), EVB_EVERSION (the
 * tables have another format version: rebuild them), EVB_ECORRUPT (the
 * tables are not ours, or their position is past the end of the log:
 * they belong to another log; rebuild), EVB_EBUSY (another compactor,
 * in this process or another, has these tables open: one writer at a
 * time, enforced by a flock on writer.lock in the tables' directory),
 * EVB_ENOMEM, EVB_ESYSERR + errno (creating the directory), EVB_EFULL,
 * EVB_ESTORAGE (LMDB's text in the diag).
 * OUT: *out, on success only; release with evb_compactor_close.
 */
int evb_compactor_open(evb_compactor **out, evb_wal *wal, const char *data_dir,
    const evb_compactor_opts *o, evb_diag *diag);

/*
 * evb_compactor_close stops the thread if it runs, stores the WAL cursor
 * at the position (a failure is logged as EVB-COMP-CURSOR), flushes the
 * tables and releases everything. NULL is ok.
 */
void evb_compactor_close(evb_compactor *c);

/*
 * evb_compactor_step projects up to max_records (>= 1) records following
 * the position in one write transaction, which also stores the new
 * position. It does not wait for records. Then it may store the WAL
 * cursor (see opts). For tests and tools; the thread does the same.
 * Errors (nothing of the step is stored, the position is unchanged):
 * EVB_EINVAL (max_records 0), EVB_EBUSY (the thread runs), EVB_EFULL
 * (the disk is full), EVB_ENOMEM, EVB_ESTORAGE (the diag says what).
 * A failure to store the WAL cursor is not an error of the step: it is
 * counted in cursor_failures and logged as EVB-COMP-CURSOR.
 * OUT: *done (may be NULL), records consumed (events, gaps, bad and
 * missed records alike; 0 when caught up), on success only.
 */
int evb_compactor_step(
    evb_compactor *c, size_t max_records, size_t *done, evb_diag *diag);

/*
 * evb_compactor_start starts the thread, which steps batch_records at a
 * time and, after a step that caught up (fewer records than that),
 * waits poll_ms before it looks again. A step
 * that fails is logged as EVB-COMP-STEP, counted in step_failures and
 * retried after poll_ms (the position has not moved, so nothing is lost).
 * Errors: EVB_EINVAL (already started), EVB_ESYSERR + errno.
 */
int evb_compactor_start(evb_compactor *c);

/*
 * evb_compactor_stop asks the thread to finish and joins it; the batch in
 * progress commits first. It then stores the WAL cursor at the position.
 * It does not project what is left: call evb_compactor_step for that.
 * Safe to call twice and on a compactor never started.
 */
void evb_compactor_stop(evb_compactor *c);

/*
 * evb_compactor_rebuild drops every table and index, resets the position
 * and counters (one write transaction), then projects the whole log from
 * its first record to the last record present when it was called, in
 * steps of batch_records. A crash in the middle leaves consistent tables
 * at some position, which a later open resumes from. Records that WAL
 * retention has removed cannot be projected again (counted as missed).
 * Errors: EVB_EBUSY (the thread runs), and those of evb_compactor_step.
 */
int evb_compactor_rebuild(evb_compactor *c, evb_diag *diag);

/* Counters and position. */
typedef struct evb_compactor_stat {
	uint64_t position;     /* Last WAL offset projected; 0: none. */
	uint64_t wal_last_off; /* Last offset in the log (0: empty, or not
	                          known: a tables handle has no log). */
	uint64_t lag;          /* wal_last_off - position (records), 0 when
	                          caught up or not known. */
	/* Stored in the tables, so they survive restarts (reset by a
	   rebuild): */
	uint64_t events; /* Event records projected. */
	uint64_t gaps;   /* Gap records seen (not projected). */
	uint64_t bad;    /* Records that failed their check or did not
	                    decode as an event (not projected). */
	uint64_t missed; /* Offsets removed by WAL retention before they
	                    were projected. */
	uint64_t per_type[EVB_COMPACTOR_MAX_TYPES]; /* Events projected, by
	                                               proto type index. */
	/* Since open, this handle only (0 for a tables handle): */
	uint64_t txns;            /* Write txns committed. */
	uint64_t step_failures;   /* Thread steps that failed. */
	uint64_t cursor_failures; /* WAL cursor stores that failed. */
	uint64_t map_grows;       /* Map size doublings. */
	uint64_t holds;           /* Steps put off because hold said so. */
} evb_compactor_stat;

/*
 * evb_compactor_stats fills *out; wal_last_off and lag are read from the
 * WAL now. Thread-safe. Errors: EVB_ESTORAGE (reading the WAL's end).
 * OUT: *out, on success only.
 */
int evb_compactor_stats(evb_compactor *c, evb_compactor_stat *out);

/*
 * evb_compactor_table_name returns the name of type's table
 * ("signal_events", "fire_commands", ...; docs/tables.md), or NULL if
 * type is not a proto type index. Static storage.
 */
const char *evb_compactor_table_name(int type);

/* ---- Read side: querying the tables ------------------------------------
 * A tables handle reads the tables read-only, from any process, while a
 * compactor writes them. Rows are handed to a callback; everything the
 * row points to is borrowed until the callback returns (copy to keep).
 */

/* One row as read. */
typedef struct evb_compactor_row {
	uint64_t off;         /* WAL offset of the event. */
	int      type;        /* Proto type index. */
	int64_t  ts_ns;       /* Event time, ns since the Unix epoch (the
	                         envelope's ts, else the record's). */
	const void *envelope; /* The event's MessagePack envelope exactly as
	                         stored in the WAL (type, id, ts, source, corr,
	                         seq, epoch, data): decode it with
	                         evb_proto_event_decode. */
	size_t      len;      /* Envelope bytes. */
	const char *key;      /* Latest-state rows: the key (user, account,
	                         component or symbol), not NUL-terminated;
	                         NULL for other rows. */
	size_t key_len;       /* Key bytes. */
} evb_compactor_row;

/*
 * A row callback. Return EVB_OK for the next row, EVB_EOF to stop with
 * success, any other code to stop: the query then returns that code.
 */
typedef int (*evb_compactor_row_fn)(void *arg, const evb_compactor_row *row);

/*
 * evb_compactor_tables_open opens data_dir/EVB_COMPACTOR_DIR read-only.
 * Errors: EVB_EINVAL (NULL data_dir), EVB_ENOTFOUND (no tables there yet:
 * the compactor has not run; the diag says so), EVB_EVERSION (another
 * format version: rebuild), EVB_ECORRUPT (not our tables), EVB_ENOMEM,
 * EVB_ESTORAGE. OUT: *out, on success only; release with
 * evb_compactor_tables_close.
 */
int evb_compactor_tables_open(
    evb_compactor_tables **out, const char *data_dir, evb_diag *diag);

/* evb_compactor_tables_close releases t; NULL is ok. */
void evb_compactor_tables_close(evb_compactor_tables *t);

/*
 * evb_compactor_tables_counters reads the position and the stored
 * counters (events, gaps, bad, missed, per_type); other fields are 0.
 * Errors: EVB_ECORRUPT, EVB_ESTORAGE, with what failed in diag (which
 * may be NULL). OUT: *out, on success only.
 */
int evb_compactor_tables_counters(
    evb_compactor_tables *t, evb_compactor_stat *out, evb_diag *diag);

/*
 * What a query read: the plan it chose and the rows it had to look at,
 * like SQL's EXPLAIN ANALYZE. A query served by an index examines only
 * the rows of its key in the time range (examined == returned when no
 * other filter is left to check); a table walk examines the time range.
 */
typedef struct evb_compactor_query_stat {
	const char *source; /* The table or index walked ("market_data",
	                       "events", "ix.symbol", ...; docs/tables.md).
	                       Static storage; NULL if nothing was read. */
	uint64_t examined;  /* Rows fetched from it. */
	uint64_t returned;  /* Rows that matched every filter (handed to
	                       fn). */
} evb_compactor_query_stat;

/* A query by type and time. Fill with evb_compactor_query_init. */
typedef struct evb_compactor_query {
	int     type;       /* Proto type index; -1: every type (default). */
	int64_t since_ns;   /* Rows with ts >= since_ns; default INT64_MIN. */
	int64_t until_ns;   /* ... and ts < until_ns; default INT64_MAX,
	                       which bounds nothing (rows at INT64_MAX too). */
	const char *symbol; /* data.symbol equals this; NULL: any (default). */
	const char *corr;   /* The envelope's corr equals this; NULL: any. */
	const char *user;   /* data.user_id equals this; NULL: any. */
	uint64_t    limit;  /* At most this many rows; 0: no limit. */
	bool descending;    /* Newest first; default false (oldest first). */
	evb_compactor_query_stat *stat; /* OUT if not NULL: what the query
	                                   read, filled also when it fails or
	                                   fn stops it; default NULL. */
} evb_compactor_query;

/* evb_compactor_query_init fills *q with the defaults above. */
void evb_compactor_query_init(evb_compactor_query *q);

/*
 * evb_compactor_tables_query calls fn for each row that matches q, in ts
 * order (then offset order), ascending or descending. It reads an index
 * whenever a filter has one, never scanning a table when an index fits:
 * corr, else user, else symbol index, restricted to the type and time
 * range; with no filter, the type's table (or the all-events index for
 * type -1) over the time range. Other filters are checked on each row,
 * matching as their index would: symbol and user only in the types whose
 * schema has the field (docs/tables.md), so the rows do not depend on
 * the index chosen.
 * Errors: EVB_EINVAL (type out of range, NULL fn; the diag names it),
 * EVB_ECORRUPT (a row or index entry is malformed), EVB_ENOMEM,
 * EVB_ESTORAGE, or the code fn returned to stop.
 */
int evb_compactor_tables_query(evb_compactor_tables *t,
    const evb_compactor_query *q, evb_compactor_row_fn fn, void *arg,
    evb_diag *diag);

/* Latest-state tables: the newest event per key (by ts, then offset). */
typedef enum evb_compactor_latest {
	EVB_COMPACTOR_LATEST_BALANCE = 0, /* balance_update per user_id. */
	EVB_COMPACTOR_LATEST_ACCOUNT = 1, /* balance_update per account_id. */
	EVB_COMPACTOR_LATEST_HEALTH  = 2, /* system_health per component. */
	EVB_COMPACTOR_LATEST_QUOTE   = 3, /* market_data per symbol. */
} evb_compactor_latest;

/*
 * evb_compactor_tables_latest calls fn with the newest event of key (NUL-
 * terminated), or of every key in key order when key is NULL; row->key is
 * set. Errors: EVB_EINVAL (bad kind, NULL fn), EVB_ENOTFOUND (key given
 * and unknown), EVB_ECORRUPT, EVB_ENOMEM, EVB_ESTORAGE, or fn's code.
 */
int evb_compactor_tables_latest(evb_compactor_tables *t,
    evb_compactor_latest kind, const char *key, evb_compactor_row_fn fn,
    void *arg, evb_diag *diag);

/* One per-minute statistics row. */
typedef struct evb_compactor_minute {
	int64_t  minute_ns;  /* Start of the minute (UTC), ns since epoch. */
	int      type;       /* Proto type index. */
	uint64_t count;      /* Events of type with ts in the minute. */
	double   volume_sum; /* Sum of data.volume over those events that
	                        have one (trade_executed, fire_command,
	                        market_data); 0 otherwise. */
} evb_compactor_minute;

/* Return as for evb_compactor_row_fn. */
typedef int (*evb_compactor_minute_fn)(
    void *arg, const evb_compactor_minute *m);

/*
 * evb_compactor_tables_minutes calls fn for each (minute, type) with
 * events, for minutes that start in [since_ns, until_ns), in minute then
 * type order; type -1 for every type. since_ns is rounded down to its
 * minute. Errors: EVB_EINVAL (type out of range, NULL fn),
 * EVB_ECORRUPT, EVB_ESTORAGE, or fn's code.
 */
int evb_compactor_tables_minutes(evb_compactor_tables *t, int type,
    int64_t since_ns, int64_t until_ns, evb_compactor_minute_fn fn, void *arg,
    evb_diag *diag);

/*
 * evb_compactor_tables_trace finds the chain signal_generated ->
 * fire_command(s) -> trade_executed(s) of id, which is tried as a
 * signal_id, then a command_id, then (if it is a decimal integer) a trade
 * ticket. From a command or a ticket it follows the signal_id (or the
 * command_id) of what it found to the whole chain. fn gets each event of
 * the chain once: the signal_generated events, then the fire_commands,
 * then the trades, each group in ts order; the caller computes the time
 * between steps from row->ts_ns. A chain may lack a step (a trade whose
 * signal never arrived).
 * Errors: EVB_EINVAL (NULL or empty id, NULL fn), EVB_ENOTFOUND (id is
 * none of these), EVB_ECORRUPT, EVB_ENOMEM, EVB_ESTORAGE, or fn's code.
 */
int evb_compactor_tables_trace(evb_compactor_tables *t, const char *id,
    evb_compactor_row_fn fn, void *arg, evb_diag *diag);

#endif /* EVB_COMPACTOR_H */
