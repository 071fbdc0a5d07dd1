/*
 * broker: ingest, validation, sequencing and live publication.
 *
 * Producers send MessagePack events (docs/protocol.md) to the ingest
 * endpoint (nng pull0, default tcp://127.0.0.1:5571): one message is one
 * event map or one array of event maps. The broker validates each event
 * (a bad one is rejected alone, counted per type and reason, and logged
 * at a rate limit), stamps id (a ULID) and ts (wall-clock ns) when the
 * producer left them out, assigns seq (+1 per published event, from 1)
 * and the broker's epoch (fixed for the broker's life, new at each
 * start), and publishes one frame per event on pub0 (default
 * tcp://127.0.0.1:5570): TOPIC, 0x00, the envelope.
 *
 * Delivery and backpressure: publication never waits for a subscriber.
 * nng pub0 drops frames for a subscriber whose send queue is full
 * (pub_sendbuf frames deep); such loss is made visible, not silent: every
 * published frame also enters a bounded ring (ring_bytes, oldest frames
 * evicted first), and the control endpoint (rep0, default
 * tcp://127.0.0.1:5573; docs/protocol.md "Control endpoint") answers
 * repair requests for a seq range of the current epoch from the ring,
 * and stats requests, one at a time; a reply that the requester's
 * connection does not take within 100 ms (it has not read the previous
 * one) is dropped and counted, so that one peer that stops reading
 * cannot stall the endpoint for the others. A subscriber that sees a
 * seq jump fetches the missing range; what the ring no longer holds is
 * reported as evicted so the subscriber can record an explicit gap.
 * In-process consumers (the collector inside `evbus run`) read the ring
 * directly with evb_broker_read. Ingest messages above recv_max_bytes
 * are refused and counted. (nng is given twice that limit, and at least
 * 16 MiB: nng 1.5 drops a larger message together with the producer's
 * connection and reports it to no one, so the broker checks the size
 * itself; only a message over nng's limit goes uncounted.)
 *
 * Confirmed ingest (optional, confirm_url; docs/protocol.md "Confirmed
 * ingest"): a request (on a rep0 context of its own, so any number may
 * wait at once) is published like an ingest message, and its reply,
 * giving each event's seq or rejection, is held until the caller that
 * stores the log reports the events durable with evb_broker_durable (lost
 * ones with evb_broker_lost, duplicates with evb_broker_duplicate). A
 * reply that the requester's connection does not take within 5 s is
 * dropped and counted unsent. Requests still waiting at close get no
 * reply; the requester retries, and the log's duplicate suppression gives
 * the retry the original seqs.
 *
 * Every heartbeat_ms the broker publishes its own system_health event
 * (component, status, uptime_s) through the same path, so it is
 * sequenced and stored like any other event.
 *
 * Thread-safety: evb_broker_stats, evb_broker_read, evb_broker_durable,
 * evb_broker_lost and evb_broker_duplicate may be called from any thread; the
 * other functions from one controlling thread. The broker owns its threads:
 * start creates them, stop joins them.
 */
#ifndef EVB_BROKER_H
#define EVB_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "proto/proto.h"

typedef struct evb_broker evb_broker;

/*
 * Counters of other components for the stats reply (`evbus run` adds its
 * collector's and compactor's), so one control endpoint answers for the
 * whole process. One counter: section (the component, e.g. "collector"),
 * key and value; the strings must live until the callback returns.
 */
typedef struct evb_broker_extra {
	const char *section;
	const char *key;
	uint64_t    value;
} evb_broker_extra;

/*
 * Fills up to cap counters into out and returns how many. Those of one
 * section must be adjacent. Called on the control thread for each stats
 * request, so it must be thread-safe and quick.
 */
typedef size_t (*evb_broker_extra_fn)(
    void *arg, evb_broker_extra *out, size_t cap);

/* Options. evb_broker_opts_default fills every field with its default. */
typedef struct evb_broker_opts {
	const char *pub_url;     /* pub0 listen URL; "tcp://127.0.0.1:5570". */
	const char *ingest_url;  /* pull0 listen URL; "tcp://127.0.0.1:5571". */
	const char *ctl_url;     /* rep0 control (repair, stats) listen URL;
	                            "tcp://127.0.0.1:5573". */
	const char *confirm_url; /* Confirmed ingest listen URL (rep0);
	                            NULL, the default: none. Only useful
	                            when the caller stores the log and calls
	                            evb_broker_durable (`evbus run` listens
	                            on tcp://127.0.0.1:5572). */
	size_t recv_max_bytes;   /* Largest ingest message; 4 MiB. Up to
	                            max(2 x this, 16 MiB) larger ones are
	                            refused and counted; nng drops any
	                            beyond that, uncounted (see top). */
	int pub_sendbuf;         /* pub0 send queue per subscriber, frames;
	                            8192 (nng's maximum), enough for a
	                            1000-event batch read promptly. */
	size_t   ring_bytes;     /* Repair ring capacity, bytes; 256 MiB. */
	uint64_t heartbeat_ms;   /* system_health heartbeat period; 5000;
	                            0 disables. */
	uint64_t stats_log_ms;   /* Statistics log line period; 60000;
	                            0 disables. */
	const char         *component; /* Heartbeat component name; "broker". */
	uint64_t            epoch; /* 0: wall-clock ns at open (the default). */
	evb_broker_extra_fn stats_extra; /* More counters for the stats
	                                    reply; NULL (the default). */
	void *stats_extra_arg;           /* Passed to stats_extra. */
} evb_broker_opts;

/* Most counters stats_extra may give per request. */
#define EVB_BROKER_EXTRA_MAX 64

void evb_broker_opts_default(evb_broker_opts *o);

/*
 * Counters since open. Rejects are counted per type and per reason.
 * EVB_BROKER_MAX_TYPES is the number of type slots: open fails if the
 * schema has as many types, because the last slot counts the events
 * whose type could not be read.
 */
#define EVB_BROKER_MAX_TYPES 16
#define EVB_BROKER_REASONS 3 /* EMALFORMED, ESCHEMA, ETOOBIG, in order. */

typedef struct evb_broker_stat {
	uint64_t epoch;         /* This broker's epoch. */
	uint64_t last_seq;      /* Last seq published (0: none yet). */
	uint64_t msgs_in;       /* Ingest messages received. */
	uint64_t msgs_refused;  /* Whole messages refused (not a map or
	                           an array, an empty batch, or over
	                           recv_max_bytes). */
	uint64_t msgs_trailing; /* Messages with bytes after their map or
	                           array: the events in it were taken,
	                           the bytes after them were not. */
	uint64_t events_in;     /* Events received (valid or not). */
	uint64_t published;     /* Events published, heartbeats included. */
	/* Events published per type. */
	uint64_t published_by_type[EVB_BROKER_MAX_TYPES];
	uint64_t rejected; /* Events rejected (also those dropped for want
	                      of memory, which have no reason). */
	/* Per type and reason; events whose type could not be read count
	   in the last slot. */
	uint64_t rejected_by_type[EVB_BROKER_MAX_TYPES][EVB_BROKER_REASONS];
	uint64_t bytes_in;        /* Ingest bytes received. */
	uint64_t ring_first_seq;  /* Oldest seq the ring holds (0: empty). */
	uint64_t ring_bytes;      /* Bytes the ring holds now. */
	uint64_t ring_evicted;    /* Frames evicted from the ring. */
	uint64_t repairs_served;  /* Repair requests answered. */
	uint64_t repair_frames;   /* Frames sent in repair replies. */
	uint64_t ctl_unsent;      /* Control (repair, stats) replies
	                             dropped: the requester's connection
	                             was still writing an earlier reply
	                             100 ms later, or the send failed. */
	uint64_t recv_errors;     /* Ingest receives that failed (nng
	                             reports none in normal operation;
	                             ingest goes on). */
	uint64_t pub_send_failed; /* Frames not sent on pub0 because the
	                             send failed (out of memory): live
	                             subscribers miss them and repair
	                             them from the ring. */
	uint64_t confirm_msgs;    /* Confirmed ingest requests received. */
	uint64_t confirm_replies; /* Their replies sent. */
	uint64_t confirm_unsent;  /* Requests left without a reply (send
	                             failed or not taken within 5 s, out of
	                             memory, or waiting at close). */
	uint64_t subscribers;     /* Connections to pub0 now. Frames are
	                             sent on pub0 only while there is one;
	                             the ring has every frame either way. */
} evb_broker_stat;

/*
 * evb_broker_open validates o, allocates the ring and opens the sockets
 * (listening on each URL). Errors: EVB_EINVAL (bad option, with diag),
 * EVB_ETRANSPORT (cannot listen: the diag has nng's message, e.g. the
 * address in use), EVB_ENOMEM. OUT: *out, on success only; close it with
 * evb_broker_close.
 */
int evb_broker_open(evb_broker **out, const evb_broker_opts *o, evb_diag *diag);

/*
 * evb_broker_start starts the ingest, control (repair and stats) and
 * timer threads; the timer only when heartbeat_ms or stats_log_ms is
 * not 0. EVB_EINVAL if already started or stopped; EVB_ESYSERR + errno
 * when a thread cannot be created (the broker is then stopped).
 */
int evb_broker_start(evb_broker *b);

/*
 * evb_broker_stop stops accepting ingest (both paths), finishes the
 * message in hand, and joins the threads, but for the sender of confirmed
 * replies: requests that evb_broker_durable covers between stop and
 * evb_broker_close (a collector storing what the ring holds) are still
 * answered. Safe to call twice, and on a broker never started.
 */
void evb_broker_stop(evb_broker *b);

/*
 * evb_broker_close stops the broker if needed, waits for the confirmed
 * replies being sent (each at most 5 s) and frees it; NULL is ok.
 */
void evb_broker_close(evb_broker *b);

/* evb_broker_stats copies the counters. Thread-safe. */
void evb_broker_stats(evb_broker *b, evb_broker_stat *out);

/*
 * evb_broker_read appends to out the frames of seq from, from+1, ...
 * that the ring holds, each as a 4-byte big-endian length and the frame
 * bytes, up to max_frames frames or max_bytes bytes (at least one frame
 * is returned if any is available). If from is not yet published it
 * waits up to timeout_ms for it. Thread-safe; used by in-process
 * consumers and by the control endpoint.
 * Returns EVB_OK with *n >= 1 and *first = from; EVB_ETIMEDOUT when
 * nothing arrived in time (at once for a timeout_ms of 0); EVB_ENOTFOUND
 * when from is older than the ring's oldest frame (evicted), with *n set
 * to the number of frames the ring holds and *first to the oldest seq
 * held (or to last_seq + 1, with *n = 0, when the ring is empty), so a
 * consumer that fell behind can choose where to resume; EVB_ECLOSED when from
 * is not published and the broker has stopped (frames the ring holds can still
 * be read after stop, so a consumer can drain it); EVB_ENOMEM (out keeps what
 * it had). max_frames must be at least 1. OUT: *n, *first.
 */
int evb_broker_read(evb_broker *b, uint64_t from, size_t max_frames,
    size_t max_bytes, uint64_t timeout_ms, evb_buf *out, size_t *n,
    uint64_t *first);

/*
 * evb_broker_durable reports that every event of epoch up to seq is
 * stored (or recorded lost through evb_broker_lost): the replies of the
 * confirmed requests whose events all lie at or below seq are sent. A
 * different epoch (an old broker's) is ignored. Thread-safe; never
 * blocks on the network.
 */
void evb_broker_durable(evb_broker *b, uint64_t epoch, uint64_t seq);

/*
 * evb_broker_lost reports that seqs first..last of epoch will never be
 * stored (the ring evicted them before they were, or the collector gave
 * them up with evicted ones to catch up): a waiting confirmed
 * request's result for one of them becomes an error. Call it before
 * evb_broker_durable passes last. Thread-safe.
 */
void evb_broker_lost(
    evb_broker *b, uint64_t epoch, uint64_t first, uint64_t last);

/*
 * evb_broker_duplicate reports that seq of epoch was not stored because
 * its id was stored before, as orig_seq of orig_epoch: a waiting
 * confirmed request's result for it gives the original. Call it before
 * evb_broker_durable passes seq. Thread-safe.
 */
void evb_broker_duplicate(evb_broker *b, uint64_t epoch, uint64_t seq,
    uint64_t orig_epoch, uint64_t orig_seq);

#endif /* EVB_BROKER_H */
