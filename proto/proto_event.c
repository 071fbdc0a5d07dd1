/*
 * proto_event.c: decoding, encoding and accessing events, bus frames and
 * ingest messages.
 *
 * Decode path: the bytes are copied into the event's own allocation;
 * proto_decode.c checks them and builds msgpack-c's object tree over the
 * copy (strings point into it, nothing else is copied); the envelope is
 * read here and data is checked against its type in proto_schema.c.
 *
 * The canonical encoding (docs/protocol.md, "Envelope"):
 *
 *   map { "type", "id"?, "ts"?, "source"?, "corr"?, "seq"?, "epoch"?,
 *         "data", <unknown envelope keys in arrival order> }
 *
 * Keys are always written as str. When this changes, change with it the
 * decoder below, docs/protocol.md, and the fuzz corpus.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto_int.h"

/* Envelope keys, in canonical order. */
typedef enum env_key {
	ENV_TYPE,
	ENV_ID,
	ENV_TS,
	ENV_SOURCE,
	ENV_CORR,
	ENV_SEQ,
	ENV_EPOCH,
	ENV_DATA,
	ENV_UNKNOWN,
} env_key;

static const char *const env_names[] = { "type", "id", "ts", "source", "corr",
	"seq", "epoch", "data" };
static const size_t      env_name_len[] = { 4, 2, 2, 6, 4, 3, 5, 4 };

static env_key
env_key_find(const msgpack_object *key)
{
	evb_str k = proto_obj_key(key);

	for (int i = 0; i < ENV_UNKNOWN; i++) {
		if (proto_bytes_eq(
		        env_names[i], env_name_len[i], k.ptr, k.len)) {
			return ((env_key) i);
		}
	}
	return (ENV_UNKNOWN);
}

static int
env_expect(
    const char *key, const char *want, const msgpack_object *v, evb_diag *d)
{
	char got[64];

	proto_obj_describe(v, got, sizeof(got));
	evb_diag_set(d, "envelope.%s: expected %s, got %s", key, want, got);
	return (EVB_ESCHEMA);
}

static int
env_string(const char *key, const msgpack_object *v, evb_str *out, evb_diag *d)
{
	if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
	    v->via.str.size > EVB_PROTO_MAX_ID) {
		return (env_expect(key, "string of 1..128 bytes", v, d));
	}
	out->ptr = v->via.str.ptr;
	out->len = v->via.str.size;
	return (EVB_OK);
}

static int
env_uint(const char *key, const msgpack_object *v, uint64_t *out, evb_diag *d)
{
	// Below 2^63, so that JSON readers (and jansson) hold it exactly.
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    v->via.u64 > INT64_MAX) {
		return (env_expect(key, "integer in [0, 2^63)", v, d));
	}
	*out = v->via.u64;
	return (EVB_OK);
}

static int
env_type(evb_event *ev, const msgpack_object *v, evb_diag *d)
{
	if (v->type != MSGPACK_OBJECT_STR) {
		return (
		    env_expect("type", "string naming an event type", v, d));
	}
	if (evb_proto_type_find(v->via.str.ptr, v->via.str.size, &ev->type) !=
	    EVB_OK) {
		char got[64];

		proto_obj_describe(v, got, sizeof(got));
		evb_diag_set(d, "envelope.type: unknown event type %s", got);
		return (EVB_ESCHEMA);
	}
	return (EVB_OK);
}

/* env_field reads one known envelope entry into ev. */
static int
env_field(evb_event *ev, env_key k, const msgpack_object *v, bool *has_epoch,
    evb_diag *d)
{
	switch (k) {
	case ENV_TYPE:
		return (env_type(ev, v, d));
	case ENV_ID:
		return (env_string("id", v, &ev->id, d));
	case ENV_SOURCE:
		return (env_string("source", v, &ev->source, d));
	case ENV_CORR:
		return (env_string("corr", v, &ev->corr, d));
	case ENV_TS:
		if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    v->via.u64 > INT64_MAX) {
			return (env_expect("ts",
			    "integer nanoseconds since the Unix epoch", v, d));
		}
		ev->ts     = (int64_t) v->via.u64;
		ev->has_ts = true;
		return (EVB_OK);
	case ENV_SEQ:
		ev->has_seq = true;
		return (env_uint("seq", v, &ev->seq, d));
	case ENV_EPOCH:
		*has_epoch = true;
		return (env_uint("epoch", v, &ev->epoch, d));
	case ENV_DATA:
		if (v->type != MSGPACK_OBJECT_MAP) {
			return (env_expect("data", "map", v, d));
		}
		ev->data = v;
		return (EVB_OK);
	default:
		return (EVB_OK);
	}
}

/* env_extra_dup reports a duplicate among the unknown envelope keys. */
static int
env_extra_dup(const evb_event *ev, evb_diag *d)
{
	const msgpack_object_kv *kv = ev->root->via.map.ptr;

	for (uint32_t i = 0; ev->extra_mask >> i != 0; i++) {
		evb_str a;

		if (!(ev->extra_mask & ((uint64_t) 1 << i))) {
			continue;
		}
		a = proto_obj_key(&kv[i].key);
		for (uint32_t j = 0; j < i; j++) {
			evb_str b = proto_obj_key(&kv[j].key);

			if ((ev->extra_mask & ((uint64_t) 1 << j)) &&
			    proto_bytes_eq(a.ptr, a.len, b.ptr, b.len)) {
				char k[PROTO_QUOTE_CAP];

				evb_diag_set(d,
				    "envelope: duplicate key \"%s\"",
				    proto_key_text(&kv[i].key, k));
				return (EVB_EMALFORMED);
			}
		}
	}
	return (EVB_OK);
}

static int
env_read(evb_event *ev, evb_diag *d)
{
	const msgpack_object *root      = ev->root;
	bool                  has_epoch = false;
	bool                  has_type  = false;
	unsigned              seen      = 0;
	int                   rv;

	if (root->type != MSGPACK_OBJECT_MAP) {
		char got[64];

		// Not an event at all, rather than an event that breaks its
		// schema.
		proto_obj_describe(root, got, sizeof(got));
		evb_diag_set(d, "event: expected a map, got %s", got);
		return (EVB_EMALFORMED);
	}
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object_kv *kv = &root->via.map.ptr[i];
		env_key                  k  = env_key_find(&kv->key);

		if (k == ENV_UNKNOWN) {
			ev->extra_mask |= (uint64_t) 1 << i;
			continue;
		}
		if (seen & (1u << k)) {
			evb_diag_set(
			    d, "envelope: duplicate key \"%s\"", env_names[k]);
			return (EVB_EMALFORMED);
		}
		seen |= 1u << k;
		has_type |= (k == ENV_TYPE);
		if ((rv = env_field(ev, k, &kv->val, &has_epoch, d)) !=
		    EVB_OK) {
			return (rv);
		}
	}
	if (!has_type || ev->data == NULL) {
		evb_diag_set(d, "envelope.%s: required field missing",
		    has_type ? "data" : "type");
		return (EVB_ESCHEMA);
	}
	if ((rv = env_extra_dup(ev, d)) != EVB_OK) {
		return (rv);
	}
	if (ev->has_seq != has_epoch) {
		evb_diag_set(d, "envelope.%s: required when %s is present",
		    has_epoch ? "seq" : "epoch", has_epoch ? "epoch" : "seq");
		return (EVB_ESCHEMA);
	}
	return (proto_schema_validate(ev->type, ev->data, &ev->route, d));
}

/* An event is one envelope map (depth 1); an array gets "expected a map". */
static const proto_scan_opts event_scan_opts = {
	.max_depth     = EVB_PROTO_MAX_DEPTH,
	.top_array_max = EVB_PROTO_MAX_ARRAY,
};

/*
 * event_decode decodes exactly buf[0..len) as one event: bytes left over
 * after the envelope map are an error.
 */
/*
 * Arena bytes allocated with each event, per input byte, plus a constant.
 * An event's maps take about 2.6 times its bytes (48 bytes per entry of
 * msgpack_object_kv against ~18 input bytes); an event denser in maps
 * than this gets an overflow block. A tuning knob, not a format constant.
 */
#define EVENT_ARENA_PER_BYTE 3
#define EVENT_ARENA_EXTRA 128

struct proto_arena_block {
	proto_arena_block *next;   /* Older overflow block. */
	max_align_t        data[]; /* Its bytes. */
};

void *
proto_arena_alloc(proto_arena *a, size_t n)
{
	const size_t align = sizeof(max_align_t);
	size_t       at    = (a->used + align - 1) & ~(align - 1);

	if (at > a->cap || n > a->cap - at) {
		// Overflow: a block of its own for big requests, else 4 KiB.
		size_t             cap = n > 4096 ? n : 4096;
		proto_arena_block *b   = malloc(sizeof(*b) + cap);

		if (b == NULL) {
			return (NULL);
		}
		b->next  = a->extra;
		a->extra = b;
		a->base  = (uint8_t *) b->data;
		a->cap   = cap;
		at       = 0;
	}
	a->used = at + n;
	return (a->base + at);
}

/*
 * event_decode decodes exactly buf[0..len) as one event: bytes left over
 * after the envelope map are an error.
 */
static int
event_decode(evb_event **out, const uint8_t *buf, size_t len, evb_diag *d)
{
	evb_event     *ev;
	msgpack_object obj;
	size_t         used = 0;
	size_t         copy =
	    (len + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	size_t arena = EVENT_ARENA_PER_BYTE * len + EVENT_ARENA_EXTRA;
	int    rv;

	if (len > EVB_PROTO_MAX_EVENT_BYTES) {
		evb_diag_set(d, "event is %zu bytes, over the limit of %d", len,
		    EVB_PROTO_MAX_EVENT_BYTES);
		return (EVB_ETOOBIG);
	}
	// One allocation: the header, the input's copy, the arena.
	if ((ev = malloc(sizeof(*ev) + copy + arena)) == NULL) {
		return (EVB_ENOMEM);
	}
	memset(ev, 0, offsetof(evb_event, id_buf));
	memcpy(ev->mem, buf, len);
	ev->arena.base = (uint8_t *) ev->mem + copy;
	ev->arena.cap  = arena;
	rv = proto_decode((const uint8_t *) ev->mem, len, &event_scan_opts,
	    &ev->arena, &obj, &used, &ev->data_raw, d);
	if (rv != EVB_OK) {
		goto fail;
	}
	if (used != len) {
		evb_diag_set(d,
		    "%zu bytes of trailing data after the event's %zu bytes",
		    len - used, used);
		rv = EVB_EMALFORMED;
		goto fail;
	}
	if ((ev->root = proto_arena_alloc(&ev->arena, sizeof(obj))) == NULL) {
		rv = EVB_ENOMEM;
		goto fail;
	}
	memcpy((msgpack_object *) ev->root, &obj, sizeof(obj));
	if ((rv = env_read(ev, d)) != EVB_OK) {
		goto fail;
	}
	*out = ev;
	return (EVB_OK);

fail:
	evb_proto_event_free(ev);
	return (rv);
}

int
evb_proto_event_decode(
    evb_event **out, const void *buf, size_t len, evb_diag *diag)
{
	if (len == 0) {
		evb_diag_set(diag, "empty input: expected a MessagePack map");
		return (EVB_EMALFORMED);
	}
	return (event_decode(out, buf, len, diag));
}

void
evb_proto_event_free(evb_event *ev)
{
	if (ev == NULL) {
		return;
	}
	while (ev->arena.extra != NULL) {
		proto_arena_block *b = ev->arena.extra;

		ev->arena.extra = b->next;
		free(b);
	}
	free(ev);
}

/* ---- Encoding ------------------------------------------------------------ */

int
proto_pack_object(msgpack_packer *pk, const msgpack_object *o)
{
	int rv = 0;

	switch (o->type) {
	case MSGPACK_OBJECT_MAP:
		rv = msgpack_pack_map(pk, o->via.map.size);
		for (uint32_t i = 0; rv == 0 && i < o->via.map.size; i++) {
			evb_str k = proto_obj_key(&o->via.map.ptr[i].key);

			rv = msgpack_pack_str_with_body(pk, k.ptr, k.len);
			if (rv == 0) {
				rv = proto_pack_object(
				    pk, &o->via.map.ptr[i].val);
			}
		}
		return (rv);
	case MSGPACK_OBJECT_ARRAY:
		rv = msgpack_pack_array(pk, o->via.array.size);
		for (uint32_t i = 0; rv == 0 && i < o->via.array.size; i++) {
			rv = proto_pack_object(pk, &o->via.array.ptr[i]);
		}
		return (rv);
	default:
		return (msgpack_pack_object(pk, *o));
	}
}

static int
pack_key(msgpack_packer *pk, env_key k)
{
	return (msgpack_pack_str_with_body(pk, env_names[k], env_name_len[k]));
}

static int
pack_str_field(msgpack_packer *pk, env_key k, evb_str s)
{
	if (s.len == 0) {
		return (0);
	}
	if (pack_key(pk, k) != 0) {
		return (-1);
	}
	return (msgpack_pack_str_with_body(pk, s.ptr, s.len));
}

/* env_known_count is the envelope's entries other than unknown keys. */
static size_t
env_known_count(const evb_event *ev)
{
	return (2 + (ev->id.len > 0) + ev->has_ts + (ev->source.len > 0) +
	    (ev->corr.len > 0) + 2 * (size_t) ev->has_seq); // 2: type, data
}

static int
pack_envelope(msgpack_packer *pk, const evb_event *ev)
{
	const msgpack_object *root = ev->root;
	const char           *name = evb_proto_type_name(ev->type);
	size_t                n    = env_known_count(ev);
	int                   rv;

	n += (size_t) __builtin_popcountll(ev->extra_mask);
	rv = msgpack_pack_map(pk, n);
	rv = rv != 0 ? rv : pack_key(pk, ENV_TYPE);
	rv = rv != 0 ? rv : msgpack_pack_str_with_body(pk, name, strlen(name));
	rv = rv != 0 ? rv : pack_str_field(pk, ENV_ID, ev->id);
	if (rv == 0 && ev->has_ts) {
		rv = pack_key(pk, ENV_TS);
		rv = rv != 0 ? rv : msgpack_pack_int64(pk, ev->ts);
	}
	rv = rv != 0 ? rv : pack_str_field(pk, ENV_SOURCE, ev->source);
	rv = rv != 0 ? rv : pack_str_field(pk, ENV_CORR, ev->corr);
	if (rv == 0 && ev->has_seq) {
		rv = pack_key(pk, ENV_SEQ);
		rv = rv != 0 ? rv : msgpack_pack_uint64(pk, ev->seq);
		rv = rv != 0 ? rv : pack_key(pk, ENV_EPOCH);
		rv = rv != 0 ? rv : msgpack_pack_uint64(pk, ev->epoch);
	}
	rv = rv != 0 ? rv : pack_key(pk, ENV_DATA);
	if (rv == 0 && ev->data_raw.len > 0) {
		// The input's bytes are what packing the tree would write
		// (proto_decode checked); copying them is a third of the
		// cost of an encode.
		rv = pk->callback(pk->data,
		    (const char *) ev->mem + ev->data_raw.off,
		    ev->data_raw.len);
	} else if (rv == 0) {
		rv = proto_pack_object(pk, ev->data);
	}
	for (uint32_t i = 0; rv == 0 && i < root->via.map.size; i++) {
		if (ev->extra_mask & ((uint64_t) 1 << i)) {
			evb_str k = proto_obj_key(&root->via.map.ptr[i].key);

			rv = msgpack_pack_str_with_body(pk, k.ptr, k.len);
			rv = rv != 0
			    ? rv
			    : proto_pack_object(pk, &root->via.map.ptr[i].val);
		}
	}
	return (rv);
}

/*
 * The direct writer. msgpack-c's packer hands every header and string to
 * its write callback, about 25 calls per envelope, each a capacity check
 * and a small memcpy: a fifth of the broker's ingest time went there
 * (perf, docs/benchmarks.md). The common envelope, the known fields and a
 * data map already in canonical form (data_raw) with no unknown keys, is
 * written here instead into room reserved once, in the bytes msgpack-c
 * writes for the same calls: each wr_* below is the form the matching
 * msgpack_pack_* picks (the smallest that holds the value). The unit
 * tests and the fuzz target compare the result with msgpack-c's own
 * unpack and pack, so the two cannot drift apart unnoticed.
 */
#define WR_STR_HDR_MAX 5 /* str32: marker and 4 length bytes. */
#define WR_INT_MAX 9     /* uint64 / int64: marker and 8 bytes. */

static uint8_t *
wr_be(uint8_t *w, uint8_t marker, uint64_t v, int nbytes)
{
	*w++ = marker;
	for (int i = nbytes - 1; i >= 0; i--) {
		*w++ = (uint8_t) (v >> (8 * i));
	}
	return (w);
}

static uint8_t *
wr_str(uint8_t *w, const char *s, size_t n)
{
	if (n < 32) {
		*w++ = (uint8_t) (0xa0 | n);
	} else if (n < 256) {
		w = wr_be(w, 0xd9, n, 1);
	} else if (n < 65536) {
		w = wr_be(w, 0xda, n, 2);
	} else {
		w = wr_be(w, 0xdb, n, 4);
	}
	memcpy(w, s, n);
	return (w + n);
}

static uint8_t *
wr_uint(uint8_t *w, uint64_t v)
{
	if (v < 128) {
		*w++ = (uint8_t) v;
		return (w);
	}
	if (v < 256) {
		return (wr_be(w, 0xcc, v, 1));
	}
	if (v < 65536) {
		return (wr_be(w, 0xcd, v, 2));
	}
	if (v < ((uint64_t) 1 << 32)) {
		return (wr_be(w, 0xce, v, 4));
	}
	return (wr_be(w, 0xcf, v, 8));
}

static uint8_t *
wr_int(uint8_t *w, int64_t v)
{
	if (v >= 0) {
		return (wr_uint(w, (uint64_t) v));
	}
	if (v >= -32) {
		*w++ = (uint8_t) v;
		return (w);
	}
	if (v >= INT8_MIN) {
		return (wr_be(w, 0xd0, (uint64_t) v, 1));
	}
	if (v >= INT16_MIN) {
		return (wr_be(w, 0xd1, (uint64_t) v, 2));
	}
	if (v >= INT32_MIN) {
		return (wr_be(w, 0xd2, (uint64_t) v, 4));
	}
	return (wr_be(w, 0xd3, (uint64_t) v, 8));
}

static uint8_t *
wr_key_str(uint8_t *w, env_key k, evb_str s)
{
	if (s.len == 0) {
		return (w);
	}
	w = wr_str(w, env_names[k], env_name_len[k]);
	return (wr_str(w, s.ptr, s.len));
}

/* envelope_write writes the common envelope (see above); EVB_ENOMEM. */
static int
envelope_write(const evb_event *ev, evb_buf *out)
{
	const char *name = evb_proto_type_name(ev->type);
	size_t      nlen = strlen(name);
	size_t      n    = env_known_count(ev);
	// At most: the map header; 8 keys (a fixstr of up to 6 bytes each);
	// four strings and three integers at their largest forms; data.
	size_t max = 1 + ENV_UNKNOWN * (1 + 6) + 4 * WR_STR_HDR_MAX + nlen +
	    ev->id.len + ev->source.len + ev->corr.len + 3 * WR_INT_MAX +
	    ev->data_raw.len;
	uint8_t *w;

	if (proto_buf_reserve(out, max) != EVB_OK) {
		return (EVB_ENOMEM);
	}
	w    = out->data + out->len;
	*w++ = (uint8_t) (0x80 | n); // n <= 8: a fixmap.
	w    = wr_str(w, env_names[ENV_TYPE], env_name_len[ENV_TYPE]);
	w    = wr_str(w, name, nlen);
	w    = wr_key_str(w, ENV_ID, ev->id);
	if (ev->has_ts) {
		w = wr_str(w, env_names[ENV_TS], env_name_len[ENV_TS]);
		w = wr_int(w, ev->ts);
	}
	w = wr_key_str(w, ENV_SOURCE, ev->source);
	w = wr_key_str(w, ENV_CORR, ev->corr);
	if (ev->has_seq) {
		w = wr_str(w, env_names[ENV_SEQ], env_name_len[ENV_SEQ]);
		w = wr_uint(w, ev->seq);
		w = wr_str(w, env_names[ENV_EPOCH], env_name_len[ENV_EPOCH]);
		w = wr_uint(w, ev->epoch);
	}
	w = wr_str(w, env_names[ENV_DATA], env_name_len[ENV_DATA]);
	memcpy(w, (const char *) ev->mem + ev->data_raw.off, ev->data_raw.len);
	w += ev->data_raw.len;
	out->len = (size_t) (w - out->data);
	evb_assert(out->len <= out->cap);
	return (EVB_OK);
}

int
evb_proto_event_encode(const evb_event *ev, evb_buf *out)
{
	msgpack_packer pk;
	size_t         mark = out->len;

	if (ev->data_raw.len > 0 && ev->extra_mask == 0) {
		return (envelope_write(ev, out));
	}
	msgpack_packer_init(&pk, out, proto_buf_write);
	if (pack_envelope(&pk, ev) != 0) {
		out->len = mark;
		return (EVB_ENOMEM);
	}
	return (EVB_OK);
}

/* ---- Accessors ----------------------------------------------------------- */

int
evb_proto_event_type(const evb_event *ev)
{
	return (ev->type);
}

evb_str
evb_proto_event_id(const evb_event *ev)
{
	return (ev->id);
}

evb_str
evb_proto_event_source(const evb_event *ev)
{
	return (ev->source);
}

evb_str
evb_proto_event_corr(const evb_event *ev)
{
	return (ev->corr);
}

evb_str
evb_proto_event_route(const evb_event *ev)
{
	return (ev->route);
}

bool
evb_proto_event_has_ts(const evb_event *ev)
{
	return (ev->has_ts);
}

int64_t
evb_proto_event_ts(const evb_event *ev)
{
	return (ev->has_ts ? ev->ts : 0);
}

bool
evb_proto_event_has_seq(const evb_event *ev)
{
	return (ev->has_seq);
}

uint64_t
evb_proto_event_seq(const evb_event *ev)
{
	return (ev->seq);
}

uint64_t
evb_proto_event_epoch(const evb_event *ev)
{
	return (ev->epoch);
}

static const msgpack_object *
event_field(const evb_event *ev, const char *field)
{
	const msgpack_object *data = ev->data;

	for (uint32_t i = 0; i < data->via.map.size; i++) {
		if (proto_key_is(&data->via.map.ptr[i].key, field)) {
			return (&data->via.map.ptr[i].val);
		}
	}
	return (NULL);
}

int
evb_proto_event_get_str(const evb_event *ev, const char *field, evb_str *val)
{
	const msgpack_object *v = event_field(ev, field);

	if (v == NULL) {
		return (EVB_ENOTFOUND);
	}
	if (v->type != MSGPACK_OBJECT_STR) {
		return (EVB_ESCHEMA);
	}
	val->ptr = v->via.str.ptr;
	val->len = v->via.str.size;
	return (EVB_OK);
}

int
evb_proto_event_get_num(const evb_event *ev, const char *field, double *val)
{
	const msgpack_object *v = event_field(ev, field);

	if (v == NULL) {
		return (EVB_ENOTFOUND);
	}
	switch (v->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*val = (double) v->via.u64;
		return (EVB_OK);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*val = (double) v->via.i64;
		return (EVB_OK);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*val = v->via.f64;
		return (EVB_OK);
	default:
		return (EVB_ESCHEMA);
	}
}

int
evb_proto_event_get_int(const evb_event *ev, const char *field, int64_t *val)
{
	const msgpack_object *v = event_field(ev, field);

	if (v == NULL) {
		return (EVB_ENOTFOUND);
	}
	if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*val = v->via.i64;
		return (EVB_OK);
	}
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 <= INT64_MAX) {
		*val = (int64_t) v->via.u64;
		return (EVB_OK);
	}
	return (EVB_ESCHEMA);
}

int
evb_proto_event_set_id(evb_event *ev, const char *id, size_t len)
{
	if (len == 0 || len > sizeof(ev->id_buf)) {
		return (EVB_EINVAL);
	}
	memcpy(ev->id_buf, id, len);
	ev->id.ptr = ev->id_buf;
	ev->id.len = len;
	return (EVB_OK);
}

void
evb_proto_event_set_ts(evb_event *ev, int64_t ts_ns)
{
	ev->ts     = ts_ns;
	ev->has_ts = true;
}

void
evb_proto_event_set_seq(evb_event *ev, uint64_t seq, uint64_t epoch)
{
	ev->seq     = seq;
	ev->epoch   = epoch;
	ev->has_seq = true;
}

int
evb_proto_event_topic(const evb_event *ev, char *buf, size_t cap, size_t *len)
{
	const char *name = evb_proto_type_name(ev->type);
	size_t      nl   = strlen(name);
	size_t      n    = nl + 1 + ev->route.len;

	if (n > cap) {
		return (EVB_ETOOBIG);
	}
	memcpy(buf, name, nl);
	buf[nl] = '.';
	memcpy(buf + nl + 1, ev->route.ptr, ev->route.len);
	*len = n;
	return (EVB_OK);
}

/* ---- Frames -------------------------------------------------------------- */

int
evb_proto_frame_encode(const evb_event *ev, evb_buf *out)
{
	char   topic[EVB_PROTO_MAX_TOPIC + 1];
	size_t tlen;
	size_t mark = out->len;
	int    rv;

	// The schema bounds routing keys to EVB_PROTO_MAX_ID bytes, so the
	// topic always fits.
	rv = evb_proto_event_topic(ev, topic, sizeof(topic) - 1, &tlen);
	evb_assert(rv == EVB_OK);
	topic[tlen++] = '\0';
	if ((rv = evb_buf_append(out, topic, tlen)) != EVB_OK) {
		return (rv);
	}
	if ((rv = evb_proto_event_encode(ev, out)) != EVB_OK) {
		out->len = mark;
	}
	return (rv);
}

int
evb_proto_frame_decode(
    evb_event **out, const void *buf, size_t len, evb_diag *diag)
{
	const uint8_t *p = buf;
	const uint8_t *nul;
	char           want[EVB_PROTO_MAX_TOPIC];
	size_t         tlen, wlen;
	evb_event     *ev;
	int            rv;

	if ((rv = proto_frame_topic(p, len, &nul, diag)) != EVB_OK) {
		return (rv);
	}
	tlen = (size_t) (nul - p);
	rv   = evb_proto_event_decode(&ev, nul + 1, len - tlen - 1, diag);
	if (rv != EVB_OK) {
		return (rv);
	}
	if (!ev->has_seq) {
		evb_diag_set(diag, "frame: the event has no seq and epoch");
		evb_proto_event_free(ev);
		return (EVB_EMALFORMED);
	}
	rv = evb_proto_event_topic(ev, want, sizeof(want), &wlen);
	evb_assert(rv == EVB_OK);
	if (wlen != tlen || memcmp(want, p, tlen) != 0) {
		// A routing key may hold any character but NUL: both topics
		// are escaped, as keys are, to keep the message one line.
		char got_text[EVB_DIAG_MAX];
		char want_text[EVB_DIAG_MAX];

		(void) evb_diag_escape(
		    got_text, sizeof(got_text), (const char *) p, tlen, tlen);
		(void) evb_diag_escape(
		    want_text, sizeof(want_text), want, wlen, wlen);
		evb_diag_set(diag,
		    "frame: topic \"%s\" does not match the event's \"%s\"",
		    got_text, want_text);
		evb_proto_event_free(ev);
		return (EVB_EMALFORMED);
	}
	*out = ev;
	return (EVB_OK);
}

/* ---- Ingest messages ----------------------------------------------------- */

int
evb_proto_ingest_begin(
    evb_proto_ingest *it, const void *buf, size_t len, evb_diag *diag)
{
	const uint8_t *p = buf;
	uint64_t       n;

	memset(it, 0, sizeof(*it));
	it->buf = p;
	it->len = len;
	if (len == 0) {
		evb_diag_set(diag,
		    "empty message: expected an event map or an "
		    "array of event maps");
		return (EVB_EMALFORMED);
	}
	if ((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf) {
		it->count = 1;
		return (EVB_OK);
	}
	if (p[0] >= 0x90 && p[0] <= 0x9f) {
		n       = p[0] & 0x0f;
		it->off = 1;
	} else if (p[0] == 0xdc || p[0] == 0xdd) {
		it->off = p[0] == 0xdc ? 3 : 5;
		if (len < it->off) {
			evb_diag_set(diag,
			    "truncated MessagePack: the batch's "
			    "array header is cut short");
			return (EVB_EMALFORMED);
		}
		n = p[0] == 0xdc ? evb_get_be16(p + 1) : evb_get_be32(p + 1);
	} else {
		evb_diag_set(diag,
		    "expected an event map or an array of event "
		    "maps (first byte 0x%02x)",
		    p[0]);
		return (EVB_EMALFORMED);
	}
	if (n > EVB_PROTO_MAX_BATCH) {
		evb_diag_set(diag,
		    "batch of %llu events is over the limit of %d",
		    (unsigned long long) n, EVB_PROTO_MAX_BATCH);
		return (EVB_ETOOBIG);
	}
	if (n == 0) {
		evb_diag_set(diag, "empty batch (an array of no events)");
		return (EVB_EMALFORMED);
	}
	it->count    = (size_t) n;
	it->is_batch = true;
	return (EVB_OK);
}

int
evb_proto_ingest_next(evb_proto_ingest *it, evb_event **out, evb_diag *diag)
{
	size_t n = 0;
	int    rv;

	if (it->index >= it->count) {
		if (it->index == it->count && it->off != it->len) {
			// Trailing bytes after the last element.
			it->index++;
			evb_diag_set(diag,
			    "%zu bytes of trailing data after the last event",
			    it->len - it->off);
			return (EVB_EMALFORMED);
		}
		return (EVB_EOF);
	}
	it->index++;
	if (proto_delimit(it->buf + it->off, it->len - it->off, &n) != EVB_OK) {
		// The element cannot be delimited: nothing after it can be
		// trusted, so the iteration ends here.
		evb_diag_set(diag,
		    "truncated MessagePack: the message ends inside event %zu",
		    it->index - 1);
		it->count = it->index;
		it->off   = it->len;
		return (EVB_EMALFORMED);
	}
	rv = event_decode(out, it->buf + it->off, n, diag);
	it->off += n;
	return (rv);
}
