/*
 * collector: reads the broker's frames in seq order and appends them to
 * the WAL (wal/wal.h) in batches, one write transaction per batch.
 *
 * Two sources, chosen by the options:
 * - in process (`evbus run`): a read callback that hands over frames of
 *   seq from, from+1, ... straight from the broker's ring (the caller
 *   wires it to evb_broker_read; the collector does not depend on the
 *   broker component);
 * - remote (`evbus collector`): a sub0 socket dialled to the broker's bus,
 *   plus req0 requests to its control endpoint (docs/protocol.md,
 *   "Control endpoint") to repair a seq range the bus dropped, and to
 *   poll for frames when the bus has been quiet.
 *
 * Delivery: every frame of the current epoch is stored exactly once, in
 * seq order, or its absence is stored: the collector checks that each
 * frame's seq is the next one of its epoch; a frame it already has is
 * skipped; a missing range is fetched from the broker's ring, and what
 * the ring no longer holds is appended as one GAP record (type
 * EVB_COLLECTOR_GAP_TYPE, docs/wal-format.md "Gap records") and counted.
 * Never a silent hole. When the broker's epoch changes (a broker
 * restart), the collector logs EVB-COLL-EPOCH and continues from seq 1 of
 * the new epoch; seqs of the old epoch it had not stored are gone with
 * the old broker's ring (they are not recorded as a gap, since their
 * number is unknown). A record whose id the WAL has stored recently is
 * not stored again (evb_wal_append's duplicate suppression) and counted.
 *
 * Restart: open reads the WAL's last record; the collector resumes at its
 * seq + 1 if the broker's epoch is the same, else at seq 1 of the
 * broker's epoch.
 *
 * Backpressure: the collector never slows the broker: it reads the ring
 * (or the bus) at its own pace; while it is behind, frames wait in the
 * ring, and if they are evicted before it reads them they become a gap;
 * an in-process collector then also gives up a margin after them, so as
 * to resume ahead of the ring's eviction (collector.c, local_behind).
 * A batch that the WAL cannot store (EVB_EFULL, a storage error) is
 * logged as EVB-COLL-APPEND, counted, and retried after a pause until it
 * is stored; only once stop has been asked is a batch that still fails
 * given up, logged as EVB-COLL-LOST.
 *
 * Thread-safety: evb_collector_stats may be called from any thread; the
 * other functions from one controlling thread. The collector owns one
 * thread: start creates it, stop joins it. The callbacks (on_gap,
 * on_duplicate, then on_durable, after each append) run on it and must
 * not call back into the collector.
 */
#ifndef EVB_COLLECTOR_H
#define EVB_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wal/wal.h"

/*
 * The type index of a gap record. Above every proto type index, so no
 * event can have it. Changing this breaks existing logs.
 */
#define EVB_COLLECTOR_GAP_TYPE 0xFFFFu

typedef struct evb_collector evb_collector;

/*
 * An in-process frame source with evb_broker_read's contract: append to
 * out the frames of seq from, from+1, ..., each as a 4-byte big-endian
 * length and the frame bytes, up to max_frames or max_bytes; wait up to
 * timeout_ms for from. Returns EVB_OK (*n >= 1, *first = from),
 * EVB_ETIMEDOUT, EVB_ENOTFOUND (from was evicted; *first is the oldest
 * seq held and *n the number of frames held), EVB_ECLOSED (the source stopped
 * and is drained) or EVB_ENOMEM.
 */
typedef int (*evb_collector_read_fn)(void *arg, uint64_t from,
    size_t max_frames, size_t max_bytes, uint64_t timeout_ms, evb_buf *out,
    size_t *n, uint64_t *first);

/* Called after each successful append with the last seq stored. */
typedef void (*evb_collector_durable_fn)(
    void *arg, uint64_t epoch, uint64_t seq);

/* Called, before on_durable, for each gap record of the batch. */
typedef void (*evb_collector_gap_fn)(
    void *arg, uint64_t epoch, uint64_t first, uint64_t last);

/* Called, before on_durable, for each record the WAL refused as a
 * duplicate, with the epoch and seq of the stored original. */
typedef void (*evb_collector_dup_fn)(void *arg, uint64_t epoch, uint64_t seq,
    uint64_t orig_epoch, uint64_t orig_seq);

/* Options. evb_collector_opts_default fills every field with its default. */
typedef struct evb_collector_opts {
	const char        *data_dir; /* WAL directory; required (no default). */
	evb_wal_durability durability; /* WAL durability; EVB_WAL_SYNC. */
	/* In-process source: read_fn with read_arg, and the source's epoch
	   (read_epoch, required with read_fn). NULL by default. */
	evb_collector_read_fn read_fn;
	void                 *read_arg;
	uint64_t              read_epoch;
	/* Remote source, used when read_fn is NULL: the bus URL to dial
	   (sub0) and the broker's control URL (req0). */
	const char *sub_url;   /* "tcp://127.0.0.1:5570". */
	const char *ctl_url;   /* "tcp://127.0.0.1:5573". */
	size_t      batch_max; /* Records per append, at most; 8192. */
	uint64_t    idle_ms;   /* Remote: after this long without a frame,
	                          ask the control endpoint for frames past
	                          the last one stored; 500. */
	evb_collector_durable_fn on_durable;   /* NULL: not called. */
	evb_collector_gap_fn     on_gap;       /* NULL: not called. */
	evb_collector_dup_fn     on_duplicate; /* NULL: not called. */
	void *durable_arg; /* Passed to the three callbacks. */
	/* Operations. Every heartbeat_ms (5000; 0: none) the collector sends
	   its own system_health event (component, status, uptime_s, message)
	   with push0 to heartbeat_url (the broker's ingest,
	   "tcp://127.0.0.1:5571"; NULL: none), so it is published and
	   stored like any event; status is "degraded" while appends fail or
	   seqs were lost since the last one. A send never blocks: a
	   heartbeat the socket cannot take is dropped and counted. Every
	   stats_log_ms (60000; 0: none) it logs one EVB-COLL-STATS line. */
	uint64_t    heartbeat_ms;
	const char *heartbeat_url;
	const char *component; /* The heartbeat's component; "collector". */
	uint64_t    stats_log_ms;
	/* Retention (wal.h, evb_wal_retain): once a second a thread of the
	   log removes records appended more than retain_age_ms ago and the
	   oldest while the log's pages take more than retain_bytes, never
	   one a registered consumer cursor (the compactor's) has not passed,
	   nor the newest. 0 turns a limit off; both 0 by default: keep
	   everything. */
	uint64_t retain_age_ms;
	uint64_t retain_bytes;
} evb_collector_opts;

void evb_collector_opts_default(evb_collector_opts *o);

/* Counters since open. */
typedef struct evb_collector_stat {
	uint64_t appended;         /* Event records stored. */
	uint64_t batches;          /* Successful appends. */
	uint64_t duplicates;       /* Records the WAL refused as duplicates. */
	uint64_t stale;            /* Frames skipped: seq already stored. */
	uint64_t gaps;             /* Gap records stored. */
	uint64_t gap_events;       /* Seqs those gap records cover. */
	uint64_t lost;             /* Seqs lost with no gap record either
	                              (out of memory; logged EVB-COLL-LOST). */
	uint64_t repairs;          /* Repair requests sent (remote). */
	uint64_t repaired;         /* Frames received in repair replies. */
	uint64_t bad_frames;       /* Frames that did not decode (logged). */
	uint64_t append_errors;    /* Appends that failed and were retried. */
	uint64_t epochs;           /* Epoch changes seen. */
	uint64_t last_epoch;       /* Epoch of the last record stored. */
	uint64_t last_seq;         /* Seq of the last record stored. */
	uint64_t commit_last_us;   /* Duration of the last append, us. */
	uint64_t commit_max_us;    /* Longest append, us. */
	uint64_t bytes;            /* Payload bytes of the records stored. */
	uint64_t heartbeats;       /* Heartbeats sent. */
	uint64_t heartbeat_errors; /* Heartbeats the socket did not take. */
} evb_collector_stat;

/*
 * evb_collector_open validates o, takes the log's writer lock (an
 * exclusive flock on o->data_dir/writer.lock, held until close, so that
 * one collector at a time writes a log), opens the WAL in o->data_dir
 * (creating it), reads where to resume, and for a remote source opens the
 * sockets (dialling does not wait for the broker). Errors: EVB_EINVAL
 * (bad option, with diag), EVB_EBUSY (another collector, in this process
 * or another, holds the lock; diag says so), the errors of evb_wal_open
 * (with its diag), EVB_ETRANSPORT (nng's message in diag), EVB_ENOMEM.
 * OUT: *out, on success only; close it with evb_collector_close.
 */
int evb_collector_open(
    evb_collector **out, const evb_collector_opts *o, evb_diag *diag);

/*
 * evb_collector_start starts the thread. EVB_EINVAL if already started;
 * EVB_ESYSERR + errno when the thread cannot be created.
 */
int evb_collector_start(evb_collector *c);

/*
 * evb_collector_stop asks the thread to finish and joins it. In process,
 * it first drains the source: it stores every frame the source still
 * gives until the source reports EVB_ECLOSED or has nothing for
 * idle_ms (so stop the broker first to store everything it published).
 * Remote, it stores the frames in hand. Safe to call twice and on a
 * collector never started.
 */
void evb_collector_stop(evb_collector *c);

/* evb_collector_close stops if needed, closes the WAL; NULL is ok. */
void evb_collector_close(evb_collector *c);

/* evb_collector_stats copies the counters. Thread-safe. */
void evb_collector_stats(evb_collector *c, evb_collector_stat *out);

/*
 * evb_collector_wal gives the collector's WAL handle, so that another
 * component of the same process (the compactor) reads the log and sets
 * its named cursor through the one handle LMDB allows per process. Use
 * it under wal.h's thread rules (the collector's thread is the writer;
 * evb_wal_cursor_set from another thread waits for it). Valid until
 * evb_collector_close.
 */
evb_wal *evb_collector_wal(evb_collector *c);

/*
 * evb_collector_gap_decode reads a gap record's payload (len bytes):
 * {"gap": {"epoch": E, "first": F, "last": L}}. EVB_EMALFORMED if it is
 * not one. OUT: *epoch, *first, *last, on success only.
 */
int evb_collector_gap_decode(const void *payload, size_t len, uint64_t *epoch,
    uint64_t *first, uint64_t *last);

#endif /* EVB_COLLECTOR_H */
