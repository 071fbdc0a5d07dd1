/*
 * proto: the event model, per-type validation, and the MessagePack and
 * JSON forms of an event. docs/protocol.md is the byte-by-byte spec.
 *
 * Pure: no I/O, threads or logging. Delivery and backpressure: none; this
 * is a codec. Every decoder here reads untrusted bytes: it bounds every
 * allocation by the input length and the EVB_PROTO_MAX_* limits, and
 * reports the first problem in an evb_diag as
 * "<type>.data.<field>: expected <what>, got <what came>".
 *
 * Thread-safety: all functions are reentrant. An evb_event is a plain
 * object: one thread at a time.
 */
#ifndef EVB_PROTO_H
#define EVB_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/*
 * Limits. Each bounds memory and time for hostile input; each is in
 * docs/protocol.md. Raising one is safe; lowering one may reject events
 * already stored, which replay would then refuse.
 */
#define EVB_PROTO_MAX_EVENT_BYTES 65536 /* One encoded event (envelope). */
#define EVB_PROTO_MAX_FIELDS 64         /* Entries in any one map. */
#define EVB_PROTO_MAX_ARRAY 1024        /* Elements in a nested array. */
#define EVB_PROTO_MAX_STR 4096          /* Bytes in any string or key. */
#define EVB_PROTO_MAX_DEPTH 8           /* Envelope map is depth 1. */
#define EVB_PROTO_MAX_ID 128            /* Bytes in id, source and corr. */
#define EVB_PROTO_MAX_TOPIC 192         /* Bytes in "<type>.<key>". */
#define EVB_PROTO_MAX_BATCH 1000000     /* Events in one ingest array. */

/* A borrowed byte string (not NUL-terminated unless stated). */
typedef struct evb_str {
	const char *ptr; /* Bytes; NULL when len is 0 and absent. */
	size_t      len; /* Length in bytes. */
} evb_str;

/* A growable byte buffer for encoders. Caller-allocated. */
typedef struct evb_buf {
	uint8_t *data; /* Bytes written so far; owned, free with fini. */
	size_t   len;  /* Bytes in use. */
	size_t   cap;  /* Bytes allocated. */
} evb_buf;

/* evb_buf_init makes an empty buffer (no allocation). */
void evb_buf_init(evb_buf *b);
/* evb_buf_fini frees the bytes; the buffer may be re-initialised. */
void evb_buf_fini(evb_buf *b);
/* evb_buf_reset empties the buffer, keeping its allocation. */
void evb_buf_reset(evb_buf *b);
/* evb_buf_append copies n bytes to the end. EVB_ENOMEM on failure. */
int evb_buf_append(evb_buf *b, const void *p, size_t n);

/* ---- Event types -------------------------------------------------------
 * The schema is one table in proto_schema.c. A type is an index in
 * 0 .. evb_proto_type_count()-1; indexes are stable (new types are added
 * at the end) because the WAL stores them.
 */
size_t evb_proto_type_count(void);

/* evb_proto_type_name returns the type's name, or NULL if out of range. */
const char *evb_proto_type_name(int type);

/*
 * evb_proto_type_find looks a name up. EVB_ENOTFOUND if no type has it.
 * OUT: *type is written only on success.
 */
int evb_proto_type_find(const char *name, size_t len, int *type);

/* ---- Events ------------------------------------------------------------ */

typedef struct evb_event evb_event;

/*
 * evb_proto_event_decode decodes and validates exactly one MessagePack map
 * (an envelope: type, data, and optional id, ts, source, corr, seq, epoch;
 * seq and epoch come together and are below 2^63).
 * Keys may be str or bin; integers of any width and float32/float64 are
 * accepted; unknown keys are kept. buf is borrowed for the call only.
 * Errors: EVB_EMALFORMED (not MessagePack, truncated, trailing bytes, bad
 * UTF-8, non-string key, NaN/Inf), EVB_ETOOBIG (a limit above),
 * EVB_ESCHEMA (breaks its type's schema), EVB_ENOMEM.
 * OUT: *out, on success only; free it with evb_proto_event_free.
 */
int evb_proto_event_decode(
    evb_event **out, const void *buf, size_t len, evb_diag *diag);

/*
 * evb_proto_event_from_json parses one JSON object with the same fields
 * (ts as an integer of nanoseconds) and validates it exactly as
 * evb_proto_event_decode does. Errors as there.
 * OUT: *out, on success only; free it with evb_proto_event_free.
 */
int evb_proto_event_from_json(
    evb_event **out, const char *text, size_t len, evb_diag *diag);

/* evb_proto_event_free releases ev and everything it owns; NULL is ok. */
void evb_proto_event_free(evb_event *ev);

/*
 * evb_proto_event_encode appends the event's canonical MessagePack map to
 * out: type, id, ts, source, corr, seq, epoch (those present), data, then
 * unknown envelope keys in arrival order. Keys are written as str.
 * Errors: EVB_ENOMEM (out keeps what it had before the call).
 */
int evb_proto_event_encode(const evb_event *ev, evb_buf *out);

/*
 * evb_proto_event_to_json appends the event as one line of compact JSON
 * (no newline) to out, fields in the canonical order, with a NUL after it
 * that is not counted in out->len. Integers above INT64_MAX, which JSON
 * readers cannot hold exactly, are written as reals. Errors: EVB_ENOMEM.
 */
int evb_proto_event_to_json(const evb_event *ev, evb_buf *out);

/* Accessors. Strings point into ev and live until ev is freed or changed. */
int     evb_proto_event_type(const evb_event *ev);
evb_str evb_proto_event_id(const evb_event *ev);     /* len 0: absent */
evb_str evb_proto_event_source(const evb_event *ev); /* len 0: absent */
evb_str evb_proto_event_corr(const evb_event *ev);   /* len 0: absent */
/* The routing key: symbol, user_id or component (see docs). */
evb_str evb_proto_event_route(const evb_event *ev);
bool    evb_proto_event_has_ts(const evb_event *ev);
int64_t evb_proto_event_ts(const evb_event *ev); /* ns; 0 when absent */
/* True when seq and epoch are both present (a published event). */
bool     evb_proto_event_has_seq(const evb_event *ev);
uint64_t evb_proto_event_seq(const evb_event *ev);
uint64_t evb_proto_event_epoch(const evb_event *ev);

/*
 * evb_proto_event_get_str finds a string field of data. EVB_ENOTFOUND
 * when absent, EVB_ESCHEMA when present but not a string.
 * OUT: *val, on success only; it lives as long as ev.
 */
int evb_proto_event_get_str(
    const evb_event *ev, const char *field, evb_str *val);

/*
 * evb_proto_event_get_num finds a numeric field of data (any integer or
 * float, converted to double). Errors as evb_proto_event_get_str.
 */
int evb_proto_event_get_num(
    const evb_event *ev, const char *field, double *val);

/*
 * evb_proto_event_get_int finds an integer field of data. EVB_ESCHEMA
 * when present but not an integer that fits int64. Errors as above.
 */
int evb_proto_event_get_int(
    const evb_event *ev, const char *field, int64_t *val);

/* Setters for the broker, which stamps what producers left out. */
/* evb_proto_event_set_id copies id (1..EVB_PROTO_MAX_ID bytes): EVB_EINVAL. */
int  evb_proto_event_set_id(evb_event *ev, const char *id, size_t len);
void evb_proto_event_set_ts(evb_event *ev, int64_t ts_ns);
/* seq and epoch must be below 2^63 (decoders refuse larger ones). */
void evb_proto_event_set_seq(evb_event *ev, uint64_t seq, uint64_t epoch);

/*
 * evb_proto_event_topic writes "<type>.<routing key>" (no NUL) into buf,
 * which holds cap bytes; EVB_PROTO_MAX_TOPIC always suffices.
 * EVB_ETOOBIG if cap is too small. OUT: *len, on success only.
 */
int evb_proto_event_topic(
    const evb_event *ev, char *buf, size_t cap, size_t *len);

/* ---- Bus frames ----------------------------------------------------------
 * A frame on the bus (pub0) is: TOPIC, one 0x00 byte, one MessagePack map
 * (the envelope with seq and epoch). See docs/protocol.md.
 */

/* evb_proto_frame_encode appends the frame for ev to out. EVB_ENOMEM. */
int evb_proto_frame_encode(const evb_event *ev, evb_buf *out);

/*
 * evb_proto_frame_decode decodes a frame. Besides the event decode errors:
 * EVB_EMALFORMED when there is no 0x00 after the topic, the topic is not
 * the one the event implies, or the event has no seq and epoch.
 * OUT: *out, on success only; free it with evb_proto_event_free.
 */
int evb_proto_frame_decode(
    evb_event **out, const void *buf, size_t len, evb_diag *diag);

/*
 * The envelope fields a store needs from a frame, read by
 * evb_proto_frame_head without decoding the event. Strings point into
 * the frame and live as long as it.
 */
typedef struct evb_proto_head {
	int            type;     /* Type index. */
	evb_str        id;       /* len 0: absent. */
	evb_str        corr;     /* len 0: absent. */
	bool           has_ts;   /* ts is present. */
	int64_t        ts;       /* ns; 0 when absent. */
	uint64_t       seq;      /* Broker sequence number; 0: absent. */
	uint64_t       epoch;    /* Broker epoch; 0: absent. */
	const uint8_t *env;      /* The envelope map's bytes (after 0x00). */
	size_t         env_len;  /* Their length. */
	const uint8_t *data;     /* The data map's bytes; NULL: absent. */
	size_t         data_len; /* Their length. */
} evb_proto_head;

/*
 * evb_proto_frame_head reads type, id, corr, ts, seq and epoch, and
 * where data lies, from a frame whose event was validated before, by
 * this process (the in-process collector reading its broker's ring): it
 * delimits the envelope and checks the fields it reads, and skips what
 * data holds and every other field without checking them. It allocates
 * nothing and costs a fraction of evb_proto_frame_decode; bytes from
 * outside the process must go through evb_proto_frame_decode. Errors:
 * EVB_EMALFORMED (no 0x00 after the topic, an envelope that is not one
 * map filling the rest of the frame, a non-string key, type missing or
 * unknown, seq and epoch missing or not integers below 2^63, id or corr
 * not a string of 1..EVB_PROTO_MAX_ID bytes, ts not an integer below
 * 2^63, data not a map).
 * OUT: *out, on success only.
 */
int evb_proto_frame_head(
    const void *buf, size_t len, evb_proto_head *out, evb_diag *diag);

/*
 * evb_proto_env_head reads the same fields from an envelope alone (the
 * MessagePack map a frame carries after its topic, as the WAL stores
 * it), for an event this system validated before it stored it (the
 * compactor reading the log); seq and epoch may be absent. It checks
 * what evb_proto_frame_head checks of the envelope. Errors:
 * EVB_EMALFORMED.
 * OUT: *out, on success only; env and env_len are buf and len.
 */
int evb_proto_env_head(
    const void *buf, size_t len, evb_proto_head *out, evb_diag *diag);

/*
 * evb_proto_head_get_str, _num and _int find a field of the head's data
 * map by scanning its bytes, with the results and errors of
 * evb_proto_event_get_str, _num and _int (EVB_ENOTFOUND also when the
 * head has no data). OUT: *val, on success only; a string points into
 * the bytes the head was read from.
 */
int evb_proto_head_get_str(
    const evb_proto_head *h, const char *field, evb_str *val);
int evb_proto_head_get_num(
    const evb_proto_head *h, const char *field, double *val);
int evb_proto_head_get_int(
    const evb_proto_head *h, const char *field, int64_t *val);

/*
 * evb_proto_msg_extent finds where the first MessagePack object in buf
 * ends, without allocating or recursing: use it to split a stream of
 * concatenated messages (e.g. `evbus decode`), then decode each one. It
 * delimits only; the content is checked when the events are decoded.
 * Errors: EVB_EMALFORMED when the bytes end before the object does.
 * OUT: *n, bytes of the first object, on success only.
 */
int evb_proto_msg_extent(
    const void *buf, size_t len, size_t *n, evb_diag *diag);

/* ---- Ingest messages -----------------------------------------------------
 * An ingest message is ONE event map, or ONE array of event maps (a
 * batch). The iterator yields each event in turn, so one bad event rejects
 * that event alone. Caller-allocated; the bytes are borrowed until the
 * last call to next.
 */
typedef struct evb_proto_ingest {
	const uint8_t *buf;      /* The message (borrowed). */
	size_t         len;      /* Its length in bytes. */
	size_t         off;      /* Offset of the next element. */
	size_t         count;    /* Events the message holds (1 for a map). */
	size_t         index;    /* Index of the next element. */
	bool           is_batch; /* True when the message is an array. */
} evb_proto_ingest;

/*
 * evb_proto_ingest_begin checks the outer framing. EVB_EMALFORMED when
 * the message is neither a map nor an array, or is empty; EVB_ETOOBIG when
 * the array claims more than EVB_PROTO_MAX_BATCH events.
 */
int evb_proto_ingest_begin(
    evb_proto_ingest *it, const void *buf, size_t len, evb_diag *diag);

/*
 * evb_proto_ingest_next decodes the next event. Returns EVB_OK with *out
 * set; an event error (EVB_ESCHEMA, EVB_ETOOBIG, EVB_EMALFORMED for that
 * element) with *out untouched, after which next may be called again for
 * the following element; or EVB_EOF after the last element. When an
 * element's bytes cannot be delimited (truncated), the rest of the
 * message is lost: next returns EVB_EMALFORMED for it and then EVB_EOF.
 * Bytes after the last element make one more call return EVB_EMALFORMED
 * (its index is it->count) before EVB_EOF; the events stand.
 * The 0-based index of the element just returned is it->index - 1.
 */
int evb_proto_ingest_next(
    evb_proto_ingest *it, evb_event **out, evb_diag *diag);

/* ---- Replies and other maps ----------------------------------------------
 */

struct msgpack_object;

/*
 * evb_proto_map_get returns the value of the first entry of map m whose
 * key is the str key, or NULL when m is no map or has no such key (a key
 * of another kind never matches). For maps msgpack-c unpacked itself:
 * the replies of the confirm and control endpoints.
 */
const struct msgpack_object *evb_proto_map_get(
    const struct msgpack_object *m, const char *key);

#endif /* EVB_PROTO_H */
