/*
 * collector_int.h: what collector.c (the handle, the batch, the in-process
 * loop) and collector_remote.c (the sub0/req0 loop) share. Private to
 * collector/.
 */
#ifndef EVB_COLLECTOR_INT_H
#define EVB_COLLECTOR_INT_H

#include <msgpack.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "collector/collector.h"

/* What coll_accept did with a frame. */
typedef enum coll_take {
	COLL_QUEUED = 0, /* Added to the batch. */
	COLL_STALE  = 1, /* Its seq is stored already: skipped. */
	COLL_AHEAD  = 2, /* Seqs are missing before it: not taken. */
	COLL_BAD    = 3, /* Did not decode: logged, counted, skipped. */
} coll_take;

/* One record of the batch being built; its bytes live in the arena. */
typedef struct coll_pending {
	uint16_t type;    /* Type index, or EVB_COLLECTOR_GAP_TYPE. */
	uint64_t epoch;   /* The event's epoch, or the gap's. */
	uint64_t seq;     /* The event's seq, or the gap's last seq. */
	int64_t  ts_ns;   /* The event's ts; the gap's detection time. */
	size_t   pay_off; /* Payload's offset in the arena. */
	size_t   pay_len; /* Payload bytes. */
	size_t   id_off;  /* Id's offset in the arena. */
	size_t   id_len;  /* Id bytes; 0 for a gap. */
	uint64_t gap_n;   /* Seqs a gap covers; 0 for an event. */
} coll_pending;

/* The heartbeat and the statistics line (collector_ops.c). */
typedef struct coll_ops {
	uint64_t           hb_ms;         /* Heartbeat period; 0: none. */
	uint64_t           stats_ms;      /* Stats line period; 0: none. */
	char               component[64]; /* Heartbeat component. */
	nng_socket         hb;            /* push0 to the broker's ingest. */
	bool               has_hb;        /* hb is open. */
	uint64_t           open_ms;       /* Monotonic ms at open. */
	uint64_t           next_hb;       /* Monotonic ms of the next beat. */
	uint64_t           next_stats;    /* Monotonic ms of the next line. */
	evb_collector_stat at_hb;         /* Counters at the last beat. */
	evb_collector_stat at_stats;      /* Counters at the last line. */
	uint64_t           at_stats_ms;   /* When that line was logged. */
	evb_hist           commit_us;     /* Append times since that line. */
} coll_ops;

/*
 * A remote collector's watch on one of its sockets (collector_remote.c):
 * nng 1.5 gives no sign when the URL dialled speaks another protocol,
 * except in the pipe events, which evb_peer reads.
 */
typedef struct coll_peer {
	pthread_mutex_t mtx;     /* Guards st; callbacks on nng's threads. */
	bool            has_mtx; /* mtx was initialised. */
	evb_peer        st;      /* mtx. */
	char           *url;     /* The URL dialled (owned). */
	bool            is_bus;  /* The bus (sub0), else control (req0). */
} coll_peer;

struct evb_collector {
	evb_wal                 *wal;          /* Written by the thread only. */
	int                      lock_fd;      /* DIR/writer.lock, or -1. */
	evb_collector_read_fn    read_fn;      /* In-process source, or NULL. */
	void                    *read_arg;     /* Its argument. */
	nng_socket               sub;          /* Remote: the bus (sub0). */
	nng_socket               req;          /* Remote: control (req0). */
	bool                     has_sub;      /* sub is open. */
	bool                     has_req;      /* req is open. */
	coll_peer                peer_sub;     /* Remote: sub's peer. */
	coll_peer                peer_req;     /* Remote: req's peer. */
	size_t                   batch_max;    /* Records per append. */
	uint64_t                 idle_ms;      /* See the options. */
	evb_collector_durable_fn on_durable;   /* Or NULL. */
	evb_collector_gap_fn     on_gap;       /* Or NULL. */
	evb_collector_dup_fn     on_duplicate; /* Or NULL. */
	void                    *durable_arg;
	pthread_t                thread;     /* Valid while is_started. */
	bool                     is_started; /* Controlling thread only. */
	bool                     is_stopped; /* Controlling thread only. */
	atomic_bool              stopping;   /* Set by stop, read by thread. */
	bool                     gave_up;    /* A batch was given up at stop:
	                                        so is every later one. */
	uint64_t           epoch; /* Thread: current epoch (0: none). */
	uint64_t           next;  /* Thread: next seq expected. */
	evb_buf            arena; /* Thread: the batch's bytes. */
	coll_pending      *pend;  /* Thread: batch_max records. */
	size_t             npend; /* Thread: records in pend. */
	evb_wal_rec       *recs;  /* Thread: append's input. */
	evb_wal_result    *res;   /* Thread: append's output. */
	pthread_mutex_t    mtx;   /* Guards st. */
	evb_collector_stat st;    /* Guarded by mtx. */
	coll_ops           ops;   /* Heartbeat and stats line. */
};

/* Bytes one in-process read may return: a batch of large events. */
#define COLL_READ_MAX_BYTES ((size_t) 8 << 20)

/*
 * coll_accept decodes one frame and queues it if its seq is the next one
 * (switching to the frame's epoch first if it differs). COLL_AHEAD sets
 * *seq to the frame's seq. in_order says the source vouches that the
 * frame is seq next of the current epoch (a ring read or a repair answer,
 * which start at next): a frame that does not decode then becomes a
 * one-seq gap, so the collector moves on instead of asking for the same
 * frame forever. From the bus, where the seq of a frame that does not
 * decode is unknown, it is only skipped; the continuity check finds the
 * hole and a repair fetches it. Thread only. OUT: *seq on COLL_AHEAD.
 */
coll_take coll_accept(evb_collector *c, const void *frame, size_t len,
    bool in_order, uint64_t *seq);

/* Why seqs became a gap; it picks the log line. */
typedef enum coll_gap_why {
	COLL_GAP_EVICTED,     /* The broker's ring no longer holds them. */
	COLL_GAP_BEHIND,      /* Evicted, and a margin after them given up. */
	COLL_GAP_UNREPAIRED,  /* The control endpoint did not answer. */
	COLL_GAP_UNDECODABLE, /* The frame for the seq did not decode. */
} coll_gap_why;

/* coll_gap queues a gap record for seqs next..last of the current epoch
 * (last >= next) and moves next past it. Thread only. */
int coll_gap(evb_collector *c, uint64_t last, coll_gap_why why);

/* coll_epoch_switch makes e the current epoch, from seq 1, and logs it.
 * Thread only. */
void coll_epoch_switch(evb_collector *c, uint64_t e);

/* coll_flush appends the batch, if any, retrying a failed append until
 * stop has been asked; then it gives the batch up instead, and every
 * later one, counted lost and reported through on_gap. Thread only.
 * Returns EVB_OK. */
int coll_flush(evb_collector *c);

/* coll_pause sleeps COLL_RETRY_NS (0.1 s) before a failed step is
 * retried. Thread only. */
void coll_pause(void);

/* coll_bump adds v to the counter at *field under the mutex. */
void coll_bump(evb_collector *c, uint64_t *field, uint64_t v);

/* coll_map_u64 reads key k of map m as an unsigned integer. */
bool coll_map_u64(const msgpack_object *m, const char *k, uint64_t *v);

/* Operations (collector_ops.c). coll_ops_open validates and opens
 * (EVB_EINVAL, EVB_ETRANSPORT with diag); coll_ops_close is safe on a
 * zeroed coll_ops; the others run on the collector's thread only. */
int coll_ops_open(
    evb_collector *c, const evb_collector_opts *o, evb_diag *diag);
void coll_ops_close(evb_collector *c);
/* coll_ops_tick sends the heartbeat and logs the stats line when due. */
void coll_ops_tick(evb_collector *c);
/* coll_ops_commit records one append's duration. */
void coll_ops_commit(evb_collector *c, uint64_t took_us);

/* Remote source (collector_remote.c). */
int coll_remote_open(
    evb_collector *c, const evb_collector_opts *o, evb_diag *diag);
void coll_remote_close(evb_collector *c);
void coll_remote_run(evb_collector *c);

#endif /* EVB_COLLECTOR_INT_H */
