/*
 * broker_int.h: declarations shared by the broker/ sources. Not part of
 * the contract; only the sources in broker/ include it.
 *
 * Threads (all created by evb_broker_start, joined by evb_broker_stop
 * but one):
 *   ingest  takes messages from the ingest queue and publishes them
 *           (broker_ingest.c); one aio callback on pull0 fills the queue
 *   ctl     blocks in nng_recvmsg on rep0 and answers (broker_ctl.c)
 *   timer   heartbeat and statistics line (broker_heartbeat.c); only
 *           started when one of the two periods is non-zero
 *   confirm receives the requests of confirmed ingest, each on a rep0
 *           context of its own (broker_confirm.c); only with
 *           opts.confirm_url, and so is
 *   confirm-tx, which sends their replies; it outlives stop and is
 *           joined by close
 * Closing a socket makes its thread's blocking receive return
 * NNG_ECLOSED (for pull0: the aio callback marks the queue closed, and
 * the ingest thread exits once it has published what the queue held);
 * the timer waits on timer_cv and sees is_stopping.
 *
 * Locks: evb_broker.mtx guards sequencing (the ring, last_seq,
 * the ULID generator, the frame scratch buffer, the pub0 send that keeps
 * frames in seq order) and the stop flags. No nng callback takes mtx,
 * and none starts an nng operation while it holds a lock. There are
 * three: the ingest queue's (ingest_recv_cb, broker_ingest.c) takes
 * only inq_mtx; pub0's pipe events (pub_pipe_cb, broker.c) only move an
 * atomic; a confirm reply's send (confirm_sent_cb, broker_confirm.c)
 * takes only confirm_mtx. Counters moved outside mtx are atomics, read
 * without a lock.
 * evb_broker.confirm_mtx guards the confirmed requests waiting to be
 * durable; the two locks are never held together.
 */
#ifndef EVB_BROKER_INT_H
#define EVB_BROKER_INT_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>

#include "broker/broker.h"

/* Reason slots of rejected_by_type, in the order broker.h gives. */
#define BROKER_REASON_MALFORMED 0
#define BROKER_REASON_SCHEMA 1
#define BROKER_REASON_TOOBIG 2
#define BROKER_TYPE_UNKNOWN (EVB_BROKER_MAX_TYPES - 1) /* Its type slot. */

/*
 * Smallest ring: it must hold the largest possible frame, an event of
 * EVB_PROTO_MAX_EVENT_BYTES grown by the stamped id, ts, seq and epoch
 * plus a topic of EVB_PROTO_MAX_TOPIC bytes; twice the event limit
 * covers that with room to spare.
 */
#define BROKER_RING_MIN_BYTES ((size_t) 2 * EVB_PROTO_MAX_EVENT_BYTES)

/*
 * The ingest queue: messages pull0 has received and the ingest thread
 * has not yet taken. Past either bound the queue stops asking pull0 for
 * more, so producers feel TCP backpressure as before.
 */
#define BROKER_INQ_MAX 64                        /* Messages. */
#define BROKER_INQ_MAX_BYTES ((size_t) 64 << 20) /* Their bytes. */

/* Longest wait of one confirm reply for its requester's connection to
 * take it (broker_confirm.c). */
#define BROKER_CONFIRM_SEND_MS 5000

/* Largest control request; nng drops larger ones (a request is tiny). */
#define BROKER_CTL_REQ_MAX_BYTES 4096

/*
 * Longest wait of a control reply for its requester's connection
 * (NNG_OPT_SENDTIMEO on the ctl socket). rep0 writes one reply per
 * connection at a time, and the one ctl thread waits while an earlier
 * reply is still being written: without a bound, one requester that
 * sends several requests and stops reading would stall repair and
 * stats for everyone. A reply not taken in time is dropped and counted
 * (ctl_unsent); the requester's req0 times out and asks again. An
 * ordinary requester sends its next request only after reading the
 * reply, so its connection is free by then; the wait covers the moment
 * in which nng has not yet marked it so.
 */
#define BROKER_CTL_SEND_MS 100

/*
 * Where the frames of the ring sit. Slot i (circular, from slot_head)
 * holds seq first_seq + i: seqs in the ring are contiguous, because
 * every published frame enters it and only the oldest leave.
 */
typedef struct broker_slot {
	size_t off; /* Offset of the frame in broker_ring.bytes. */
	size_t len; /* Frame length, bytes. */
} broker_slot;

/*
 * The repair ring: frames back to back in one buffer of cap bytes,
 * wrapping to offset 0 when a frame does not fit before the end (the
 * tail end is then left unused until the oldest frames move past it).
 * All fields are guarded by evb_broker.mtx.
 */
typedef struct broker_ring {
	uint8_t     *bytes;     /* cap bytes of frame storage. */
	size_t       cap;       /* Capacity, bytes (opts.ring_bytes). */
	size_t       head;      /* Offset of the oldest frame (count > 0). */
	size_t       tail;      /* Offset just past the newest frame. */
	size_t       used;      /* Sum of the held frames' lengths, bytes. */
	broker_slot *slots;     /* Circular index, slot_cap entries. */
	size_t       slot_cap;  /* A power of two; doubles when full. */
	size_t       slot_head; /* Index in slots of the oldest frame. */
	size_t       count;     /* Frames held. */
	uint64_t     first_seq; /* Seq of the oldest frame (count > 0). */
	uint64_t     evicted;   /* Frames evicted since open. */
} broker_ring;

/* One event's outcome in a confirmed request. */
typedef struct confirm_res {
	uint64_t epoch;   /* Its epoch (the original's for a duplicate). */
	uint64_t seq;     /* Its seq (the original's for a duplicate). */
	char    *err;     /* Owned rejection message, or NULL. */
	bool     is_lost; /* Published but recorded in a gap, not stored. */
} confirm_res;

/*
 * A report (lost range or duplicate) that arrived for seqs the open
 * request had not noted yet: the collector can store an event between
 * broker_publish and confirm_note_seq. Applied when the seq is noted.
 */
typedef struct confirm_late {
	uint64_t first;      /* First seq it covers. */
	uint64_t last;       /* Last seq it covers. */
	bool     is_lost;    /* Lost (else a duplicate of the original). */
	uint64_t orig_epoch; /* Duplicate: the original's epoch. */
	uint64_t orig_seq;   /* Duplicate: the original's seq. */
} confirm_late;

/* A confirmed request: its results, waiting until they are durable,
 * then its reply, being sent. */
typedef struct confirm_req {
	struct evb_broker *b;         /* Its broker (the send callback's). */
	nng_ctx            ctx;       /* The rep0 context it came on; the
	                                 reply goes back on it. */
	nng_msg            *msg;      /* The request, then the reply. */
	nng_aio            *aio;      /* The reply's send; NULL before. */
	confirm_res        *res;      /* One per event, in request order. */
	size_t              n;        /* Results in res. */
	size_t              cap;      /* Slots allocated in res. */
	char               *refused;  /* Whole-message refusal, or NULL. */
	bool                is_nomem; /* A result could not be recorded. */
	bool                is_open;  /* Still being filled: not sent. */
	uint64_t            max_seq;  /* Highest seq published; 0: none. */
	struct confirm_req *next;     /* Queue link; confirm_mtx. */
} confirm_req;

struct evb_broker {
	evb_broker_opts opts;    /* Copy of the options; URLs below. */
	char           *pub_url; /* Owned copies of the URLs. */
	char           *ingest_url;
	char           *ctl_url;
	char           *confirm_url; /* Or NULL: no confirmed ingest. */
	char           *component;
	uint64_t        epoch;   /* This broker's epoch, fixed at open. */
	uint64_t        open_ms; /* Monotonic ms at open (uptime_s). */

	nng_socket pub;     /* pub0, listening on pub_url. */
	nng_socket pull;    /* pull0, listening on ingest_url. */
	nng_socket ctl;     /* rep0, listening on ctl_url. */
	bool       has_pub; /* Each socket is open (close it once). */
	bool       has_pull;
	bool       has_ctl;
	/* The ingest queue (broker_ingest.c), guarded by inq_mtx. */
	nng_aio        *inq_aio;      /* Receives from pull0 into the queue. */
	pthread_mutex_t inq_mtx;      /* Guards the fields below. */
	pthread_cond_t  inq_cv;       /* Wakes the ingest thread. */
	bool            has_inq_sync; /* inq_mtx and inq_cv initialised. */
	nng_msg        *inq[BROKER_INQ_MAX]; /* Circular, from inq_head. */
	int64_t         inq_arrival[BROKER_INQ_MAX]; /* Wall ns received. */
	size_t          inq_head;    /* Oldest message's slot. */
	size_t          inq_n;       /* Messages queued. */
	size_t          inq_bytes;   /* Their bytes. */
	bool            inq_armed;   /* inq_aio is receiving. */
	bool            inq_closed;  /* pull0 closed: nothing more comes. */
	nng_socket      confirm;     /* Raw rep0 on confirm_url. */
	bool            has_confirm; /* confirm is open. */

	pthread_mutex_t mtx;      /* The broker's one lock (see top). */
	pthread_cond_t  ring_cv;  /* evb_broker_read waiters; guarded by mtx. */
	pthread_cond_t  timer_cv; /* Wakes the timer at stop; mtx. */
	bool            has_sync; /* mtx and both cvs initialised. */
	broker_ring     ring;     /* mtx. */
	uint64_t        last_seq; /* Last seq published, 0: none; mtx. */
	evb_ulid        ulid;     /* Id generator; mtx. */
	evb_buf         frame;    /* Scratch for the frame being sent; mtx. */
	nng_aio        *pub_aio;  /* Reused for every pub0 send; mtx. */
	_Atomic int64_t pub_pipes; /* Subscribers connected to pub0, from
	                              nng's pipe events (broker.c). */
	uint64_t      published;   /* Events published; mtx. */
	uint64_t      published_by_type[EVB_BROKER_MAX_TYPES]; /* mtx. */
	size_t        waiters; /* Threads in evb_broker_read's wait; mtx. */
	uint64_t      pub_send_failed; /* pub0 sends that failed; mtx. */
	evb_ratelimit pub_rl;      /* Log limiter for those failures; mtx. */
	bool          is_started;  /* start ran; mtx. */
	bool          is_stopping; /* stop began: the timer exits; mtx. */
	bool          is_closed;   /* stop finished: reads end; mtx. */

	pthread_t ingest_thr; /* The threads, while has_*_thr. */
	pthread_t ctl_thr;
	pthread_t timer_thr;
	pthread_t confirm_thr;      /* Joined by stop. */
	pthread_t confirm_send_thr; /* Sends the ready replies; joined by
	                               close. */
	bool has_confirm_thr;
	bool has_confirm_send_thr;
	bool has_ingest_thr;
	bool has_ctl_thr;
	bool has_timer_thr;

	/* Counters moved by one thread and read by evb_broker_stats. */
	_Atomic uint64_t msgs_in;       /* Ingest messages received. */
	_Atomic uint64_t msgs_refused;  /* Whole messages refused. */
	_Atomic uint64_t msgs_trailing; /* Messages with trailing bytes. */
	_Atomic uint64_t events_in;     /* Events received. */
	_Atomic uint64_t rejected;      /* Events rejected. */
	_Atomic uint64_t
	    rejected_by_type[EVB_BROKER_MAX_TYPES][EVB_BROKER_REASONS];
	_Atomic uint64_t bytes_in;       /* Ingest bytes received. */
	_Atomic uint64_t recv_errors;    /* pull0 receives that failed. */
	_Atomic uint64_t repairs_served; /* Repair replies sent. */
	_Atomic uint64_t repair_frames;  /* Frames in those replies. */
	_Atomic uint64_t ctl_unsent;     /* Control replies not sent. */

	/* Confirmed ingest (broker_confirm.c). */
	nng_aio         *confirm_rx;       /* The confirm thread's receive. */
	atomic_bool      confirm_rx_stop;  /* It exits at its next wake. */
	pthread_mutex_t  confirm_mtx;      /* Guards the fields below. */
	bool             has_confirm_sync; /* confirm_mtx initialised. */
	confirm_req     *confirm_head;     /* Oldest waiting request. */
	confirm_req     *confirm_tail;     /* Newest waiting request. */
	confirm_req     *confirm_ready;    /* Replies to send, oldest first. */
	confirm_req     *confirm_ready_tail;
	pthread_cond_t   confirm_cv;       /* Wakes the reply sender. */
	bool             confirm_stopping; /* The sender exits when idle. */
	size_t           confirm_sending;  /* Replies in nng's hands. */
	confirm_req     *confirm_done;     /* Sent or failed: to free. */
	uint64_t         confirm_durable;  /* Durable seq of this epoch. */
	confirm_late    *confirm_late;     /* Reports for the open request. */
	size_t           confirm_nlate;    /* Entries in confirm_late. */
	size_t           confirm_late_cap; /* Slots allocated. */
	_Atomic uint64_t confirm_msgs;     /* Requests received. */
	_Atomic uint64_t confirm_replies;  /* Replies sent. */
	_Atomic uint64_t confirm_unsent;   /* Requests left unanswered. */
	uint64_t         confirm_replies_at_stop; /* confirm_replies then. */
};

/*
 * The state one ingest message's walk needs (broker_ingest.c). With req,
 * each event's seq or rejection is also recorded there (confirmed
 * ingest).
 */
typedef struct ingest_ctx {
	evb_broker    *b;
	nng_msg       *msg;     /* The message (its pipe names the peer). */
	evb_ratelimit *rl;      /* The thread's log limiter. */
	int64_t        arrival; /* Wall-clock ns at receipt (stamped ts). */
	confirm_req   *req;     /* Confirmed ingest's results, or NULL. */
} ingest_ctx;

/* ingest_message validates and publishes the events of c->msg. */
void ingest_message(const ingest_ctx *c);

/* ingest_recv_cb is inq_aio's callback (broker_ingest.c). */
void ingest_recv_cb(void *arg);

/* ---- broker_confirm.c -----------------------------------------------------
 */

/* Record an outcome in r (out of memory sets r->is_nomem). */
void confirm_note_seq(
    evb_broker *b, confirm_req *r, uint64_t epoch, uint64_t seq);
void confirm_note_err(evb_broker *b, confirm_req *r, const char *msg);
void confirm_note_refused(evb_broker *b, confirm_req *r, const char *msg);

/* confirm_intake_stop makes the confirm thread exit without taking
 * another request (its receive's aio is stopped); the socket stays
 * open. */
void confirm_intake_stop(evb_broker *b);

/* confirm_sender_stop makes the reply sender exit once every reply
 * ready so far has been sent or has failed (its send times out after
 * BROKER_CONFIRM_SEND_MS). */
void confirm_sender_stop(evb_broker *b);

/* confirm_drop_all frees the requests still waiting, unanswered and
 * counted unsent (close, once the sender has exited). */
void confirm_drop_all(evb_broker *b);

/* confirm_linger gives the connections time to write the last replies
 * if any was sent since confirm_replies read replies_before. */
void confirm_linger(evb_broker *b, uint64_t replies_before);

/* ---- broker.c ----------------------------------------------------------- */

/*
 * broker_publish stamps ev (id and ts when missing, from arrival_ns),
 * gives it the next seq and the epoch, encodes its frame, puts the frame
 * in the ring and sends it on pub0, all under mtx, so frames leave in seq
 * order whoever publishes. ev stays the caller's. Returns EVB_OK,
 * EVB_ETOOBIG when the stamped event is over EVB_PROTO_MAX_EVENT_BYTES,
 * or EVB_ENOMEM (on error nothing is published and no seq is used).
 */
int broker_publish(evb_broker *b, evb_event *ev, int64_t arrival_ns);

/* broker_nng_err translates an nng error, with its text in diag. */
int broker_nng_err(int nng_rv, evb_diag *diag, const char *what);

/* ---- broker_ring.c: all under evb_broker.mtx ---------------------------- */

/* ring_init allocates cap bytes and the first slots. EVB_ENOMEM. */
int  ring_init(broker_ring *r, size_t cap);
void ring_fini(broker_ring *r);

/*
 * ring_append stores the frame of seq, which must follow the newest held
 * one, evicting the oldest frames until it fits (len <= cap).
 */
void ring_append(broker_ring *r, uint64_t seq, const void *frame, size_t len);

/* ---- Threads: each file's entry point ----------------------------------- */

void *ingest_main(void *arg);         /* broker_ingest.c */
void *ctl_main(void *arg);            /* broker_ctl.c */
void *heartbeat_main(void *arg);      /* broker_heartbeat.c */
void *confirm_main(void *arg);        /* broker_confirm.c */
void *confirm_sender_main(void *arg); /* broker_confirm.c */

/*
 * heartbeat_event builds the broker's system_health event (broker_
 * heartbeat.c); open calls it once to check opts.component.
 * OUT: *out, on success only; free it with evb_proto_event_free.
 */
int heartbeat_event(evb_broker *b, evb_event **out, evb_diag *diag);

#endif /* EVB_BROKER_INT_H */
