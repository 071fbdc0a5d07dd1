/*
 * proto_int.h: declarations shared by the files of proto/ only.
 */
#ifndef EVB_PROTO_INT_H
#define EVB_PROTO_INT_H

#include <string.h>

#include <msgpack.h>

#include "proto/proto.h"

/*
 * A bump allocator for an event's tree. The first block lives inside the
 * event's own allocation; if a tree outgrows it (rare: only events far
 * denser in maps than usual), further blocks are malloc'd and chained.
 * One malloc per event instead of msgpack_zone's two matters at millions
 * of events a second, and keeps the cost steady.
 */
typedef struct proto_arena_block proto_arena_block;

typedef struct proto_arena {
	uint8_t           *base;  /* Current block's bytes. */
	size_t             used;  /* Bytes handed out from it. */
	size_t             cap;   /* Its size. */
	proto_arena_block *extra; /* Overflow blocks, newest first. */
} proto_arena;

/* proto_arena_alloc returns n bytes aligned for any object, or NULL. */
void *proto_arena_alloc(proto_arena *a, size_t n);

/*
 * Where an event's data map lies in its input bytes, when those bytes
 * are already exactly what proto_pack_object writes for it (keys as str,
 * every header in its shortest form, as msgpack-c's packer writes them),
 * so that encoding can copy them; len 0 when they are not, or unknown.
 */
typedef struct proto_span {
	size_t off; /* From the start of the input. */
	size_t len; /* Bytes; 0: re-pack the tree. */
} proto_span;

/*
 * An event. The input bytes are copied into mem[] and the tree (built by
 * proto_decode in the arena, also in mem[]) points into that copy, so the
 * event owns everything it references and the caller's buffer is only
 * borrowed for the decode.
 */
struct evb_event {
	proto_arena           arena;   /* Owns the tree (and mem[]). */
	const msgpack_object *root;    /* Envelope map. */
	const msgpack_object *data;    /* Envelope's data map. */
	int                   type;    /* Index into the schema table. */
	evb_str               id;      /* Envelope id; len 0 if absent. */
	evb_str               source;  /* Envelope source; len 0 if absent. */
	evb_str               corr;    /* Envelope corr; len 0 if absent. */
	evb_str               route;   /* Routing key, inside data. */
	int64_t               ts;      /* ns since the epoch. */
	uint64_t              seq;     /* Broker sequence number. */
	uint64_t              epoch;   /* Broker epoch. */
	uint64_t   extra_mask;         /* Root entries that are unknown keys. */
	proto_span data_raw;           /* data's canonical bytes in mem[]. */
	bool       has_ts;             /* ts is present. */
	bool       has_seq;            /* seq and epoch are present. */
	char id_buf[EVB_PROTO_MAX_ID]; /* Storage for evb_proto_event_set_id. */
	max_align_t mem[];             /* The input's copy, then the arena. */
};

/* ---- proto_decode.c: MessagePack to msgpack-c objects, checked ------- */

typedef struct proto_scan_opts {
	size_t max_depth;     /* Deepest container; the root is depth 1. */
	size_t top_array_max; /* Elements allowed in a root array. */
} proto_scan_opts;

/*
 * proto_decode decodes the first object of p[0..len) into *out, with
 * every node allocated in arena and every string pointing into p (which
 * must outlive the tree). It enforces the limits in o and the rules in
 * proto_decode.c's top comment. Errors: EVB_EMALFORMED, EVB_ETOOBIG (d
 * names the path and byte), EVB_ENOMEM. OUT: *used, bytes decoded, and
 * *data, the span of the root map's "data" map if it is canonical (see
 * proto_span), on success only.
 */
int proto_decode(const uint8_t *p, size_t len, const proto_scan_opts *o,
    proto_arena *arena, msgpack_object *out, size_t *used, proto_span *data,
    evb_diag *d);

/*
 * proto_delimit finds the length of the first object of p without
 * allocating or recursing (any depth). EVB_EMALFORMED when truncated.
 * OUT: *n, on success only.
 */
int proto_delimit(const uint8_t *p, size_t len, size_t *n);

/*
 * proto_frame_topic finds the 0x00 that ends a frame's topic within its
 * first EVB_PROTO_MAX_TOPIC + 1 bytes. EVB_EMALFORMED (diag set) when
 * there is none. OUT: *nul, on success only.
 */
int proto_frame_topic(
    const uint8_t *p, size_t len, const uint8_t **nul, evb_diag *d);

/* ---- proto_schema.c: the type table and validation ---------------------- */

/*
 * proto_schema_validate checks data (a map) against type's schema and
 * returns the routing key. EVB_ESCHEMA with the field path in d.
 */
int proto_schema_validate(
    int type, const msgpack_object *data, evb_str *route, evb_diag *d);

/* proto_obj_key returns a map key as bytes (keys are str or bin). */
static inline evb_str
proto_obj_key(const msgpack_object *k)
{
	evb_str s;

	if (k->type == MSGPACK_OBJECT_BIN) {
		s.ptr = k->via.bin.ptr;
		s.len = k->via.bin.size;
	} else {
		s.ptr = k->via.str.ptr;
		s.len = k->via.str.size;
	}
	return (s);
}

/*
 * Input quoted in a message (a map key, a bad string value) is cut at
 * PROTO_QUOTE_MAX bytes and escaped (evb_diag_escape), so a message stays
 * one short line whatever a producer sent; PROTO_QUOTE_CAP holds the
 * result, every byte an escape at worst.
 */
#define PROTO_QUOTE_MAX 40
#define PROTO_QUOTE_CAP (4 * PROTO_QUOTE_MAX + 1)

/*
 * proto_key_text writes the map key k for a message: its first
 * PROTO_QUOTE_MAX bytes, escaped. Returns buf.
 */
static inline const char *
proto_key_text(const msgpack_object *k, char buf[PROTO_QUOTE_CAP])
{
	evb_str key = proto_obj_key(k);

	(void) evb_diag_escape(
	    buf, PROTO_QUOTE_CAP, key.ptr, key.len, PROTO_QUOTE_MAX);
	return (buf);
}

/*
 * proto_bytes_eq compares two byte strings. Empty strings may have a NULL
 * pointer (msgpack-c gives one for an empty str), which memcmp must not
 * see.
 */
static inline bool
proto_bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	uint64_t x, y;
	uint32_t x4, y4, u4, v4;
	size_t   i;

	if (alen != blen) {
		return (false);
	}
	// Keys and names are short: whole words, the last one overlapping
	// the one before, beat both a call to memcmp and a loop over bytes
	// (which was a third of schema validation in perf of the broker's
	// ingest thread). Every load stays inside both strings.
	if (alen >= 8) {
		for (i = 0; i + 8 < alen; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y) {
				return (false);
			}
		}
		memcpy(&x, a + (alen - 8), 8);
		memcpy(&y, b + (alen - 8), 8);
		return (x == y);
	}
	if (alen >= 4) {
		memcpy(&x4, a, 4);
		memcpy(&y4, b, 4);
		memcpy(&u4, a + (alen - 4), 4);
		memcpy(&v4, b + (alen - 4), 4);
		return (x4 == y4 && u4 == v4);
	}
	for (i = 0; i < alen; i++) {
		if (a[i] != b[i]) {
			return (false);
		}
	}
	return (true);
}

/*
 * proto_fmt_double writes v in the shortest form that reads back to the
 * same value (float32 values compare as float), with ".0" added to whole
 * numbers so they read as reals. buf holds at least 32 bytes.
 */
void proto_fmt_double(double v, bool is_float32, char *buf, size_t cap);

/* proto_key_is compares a key with a NUL-terminated name. */
bool proto_key_is(const msgpack_object *k, const char *name);

/* proto_obj_kind names an object's kind for messages ("string", "map"). */
const char *proto_obj_kind(const msgpack_object *o);

/* proto_obj_describe writes "string \"abc\"" / "250" / "map" into buf. */
void proto_obj_describe(const msgpack_object *o, char *buf, size_t cap);

/* ---- proto_event.c ------------------------------------------------------ */

/* proto_pack_object packs o, with every map key written as str. */
int proto_pack_object(msgpack_packer *pk, const msgpack_object *o);

/* proto_buf_reserve makes room for n more bytes in b (data may move);
   EVB_ENOMEM leaves b as it was. */
int proto_buf_reserve(evb_buf *b, size_t n);

/* proto_buf_write is a msgpack_packer write callback into an evb_buf. */
int proto_buf_write(void *data, const char *buf, size_t len);

#endif /* EVB_PROTO_INT_H */
