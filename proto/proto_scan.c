/*
 * proto_scan.c: checks on untrusted MessagePack, before and after
 * msgpack-c builds its object tree.
 *
 * Why: msgpack-c's unpacker allocates what a header claims before it
 * knows the bytes exist (a map32 header claiming 2^32-1 entries asks for
 * 64 GiB), and it accepts what JSON and our schema cannot hold (NaN,
 * integer keys, invalid UTF-8). So:
 *
 *   1. Before: proto_scan_extent delimits the object in one iterative
 *      pass with a fixed stack (no recursion, no allocation), enforcing
 *      nesting depth, map/array/string sizes, and that every claimed
 *      item fits in the bytes that remain. msgpack-c's allocation is then
 *      bounded by the sizes the pass adds up.
 *   2. After: proto_scan_tree walks msgpack-c's tree (depth already
 *      bounded) for what only the content shows: UTF-8, NUL, string keys,
 *      duplicate keys, finite floats, no bin or ext values. Its messages
 *      name the path ("data.details.note").
 *
 * The format summary is in docs/protocol.md; the MessagePack spec is the
 * reference.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto_int.h"

typedef enum scan_kind {
	SK_NIL,
	SK_BOOL,
	SK_INT,
	SK_FLOAT32,
	SK_FLOAT64,
	SK_STR,
	SK_BIN,
	SK_EXT,
	SK_ARRAY,
	SK_MAP,
	SK_INVALID, /* 0xc1, never used by the spec. */
} scan_kind;

typedef struct scan_head {
	scan_kind kind;
	size_t    size; /* Header plus payload bytes (children excluded). */
	uint64_t  n;    /* Payload bytes (str, bin, ext) or children count. */
} scan_head;

/* Size of the length field that follows a marker byte, for 8/16/32. */
static const uint8_t scan_len_bytes[3] = { 1, 2, 4 };

static uint64_t
scan_read_len(const uint8_t *p, size_t nbytes)
{
	switch (nbytes) {
	case 1:
		return (p[0]);
	case 2:
		return (evb_get_be16(p));
	default:
		return (evb_get_be32(p));
	}
}

/*
 * scan_read_head decodes the header at p[0..avail). It checks that the
 * header itself is present; the caller checks the payload.
 */
static int
scan_read_head(const uint8_t *p, size_t avail, scan_head *h)
{
	uint8_t b = p[0];
	size_t  lb;

	h->n = 0;
	if (b <= 0x7f || b >= 0xe0) {
		h->kind = SK_INT;
		h->size = 1;
		return (EVB_OK);
	}
	if (b <= 0x8f || (b >= 0x90 && b <= 0x9f)) {
		h->kind = b <= 0x8f ? SK_MAP : SK_ARRAY;
		h->n    = b & 0x0f;
		h->size = 1;
		return (EVB_OK);
	}
	if (b <= 0xbf) {
		h->kind = SK_STR;
		h->n    = b & 0x1f;
		h->size = 1 + h->n;
		return (EVB_OK);
	}
	switch (b) {
	case 0xc0:
		h->kind = SK_NIL;
		h->size = 1;
		return (EVB_OK);
	case 0xc2:
	case 0xc3:
		h->kind = SK_BOOL;
		h->size = 1;
		return (EVB_OK);
	case 0xca:
		h->kind = SK_FLOAT32;
		h->size = 5;
		return (EVB_OK);
	case 0xcb:
		h->kind = SK_FLOAT64;
		h->size = 9;
		return (EVB_OK);
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		h->kind = SK_INT;
		h->size = 1 + ((size_t) 1 << (b - 0xcc));
		return (EVB_OK);
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		h->kind = SK_INT;
		h->size = 1 + ((size_t) 1 << (b - 0xd0));
		return (EVB_OK);
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		h->kind = SK_EXT;
		h->n    = (uint64_t) 1 << (b - 0xd4);
		h->size = 2 + h->n;
		return (EVB_OK);
	case 0xc4: case 0xc5: case 0xc6:
	case 0xd9: case 0xda: case 0xdb:
	case 0xc7: case 0xc8: case 0xc9:
		// Length-prefixed payloads: bin 8/16/32, str 8/16/32, ext 8/16/32.
		if (b <= 0xc6) {
			h->kind = SK_BIN;
			lb      = scan_len_bytes[b - 0xc4];
		} else if (b >= 0xd9) {
			h->kind = SK_STR;
			lb      = scan_len_bytes[b - 0xd9];
		} else {
			h->kind = SK_EXT;
			lb      = scan_len_bytes[b - 0xc7];
		}
		if (avail < 1 + lb) {
			return (EVB_EMALFORMED);
		}
		h->n    = scan_read_len(p + 1, lb);
		h->size = 1 + lb + (h->kind == SK_EXT ? 1 : 0) + (size_t) h->n;
		return (EVB_OK);
	case 0xdc: case 0xdd: case 0xde: case 0xdf:
		h->kind = (b <= 0xdd) ? SK_ARRAY : SK_MAP;
		lb      = (b == 0xdc || b == 0xde) ? 2 : 4;
		if (avail < 1 + lb) {
			return (EVB_EMALFORMED);
		}
		h->n    = scan_read_len(p + 1, lb);
		h->size = 1 + lb;
		return (EVB_OK);
	default:
		// 0xc1 is the one byte the spec never uses. It is one byte
		// long, so a batch can still step over the event holding it.
		h->kind = SK_INVALID;
		h->size = 1;
		return (EVB_OK);
	}
}

/*
 * scan_utf8 returns the offset of the first invalid byte of s, or len if
 * s is valid UTF-8 without NUL (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 */
static size_t
scan_utf8(const uint8_t *s, size_t len)
{
	size_t   i    = 0;
	uint64_t high = 0;
	uint64_t zero = 0;
	uint64_t w;

	// Fast path for the common case, an ASCII string: fold all bytes,
	// then test once for a high bit (non-ASCII) or a zero byte.
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, 8);
		high |= w;
		zero |= (w - 0x0101010101010101ull) & ~w;
	}
	for (; i < len; i++) {
		high |= s[i];
		zero |= (uint64_t) (s[i] == 0) << 7;
	}
	if (((high | zero) & 0x8080808080808080ull) == 0) {
		return (len);
	}
	i = 0;
	while (i < len) {
		uint8_t  c = s[i];
		size_t   need;
		uint32_t cp;
		uint32_t min;

		if (c >= 0x01 && c <= 0x7f) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return (i); // NUL, continuation byte, or 0xc0/0xc1/0xf5+.
		}
		if (len - i - 1 < need) {
			return (i);
		}
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80) {
				return (i);
			}
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			return (i);
		}
		i += need + 1;
	}
	return (len);
}

/* The open containers of the extent pass: items each still owes. */
typedef struct extent_stack {
	uint64_t left[EVB_PROTO_MAX_DEPTH + 2];  /* Per depth, items pending. */
	uint64_t count[EVB_PROTO_MAX_DEPTH + 2]; /* Per depth, items in all. */
	const char *key[EVB_PROTO_MAX_DEPTH + 2]; /* Per map depth, last key. */
	size_t key_len[EVB_PROTO_MAX_DEPTH + 2];  /* Its length in bytes. */
	size_t   depth;   /* Open containers. */
	uint64_t pending; /* Sum of left[]. */
	uint32_t is_map;  /* Bit per depth: a map. */
} extent_stack;

/*
 * extent_path writes where the item being checked sits, "data.bid" or
 * "data.tags[3]", for messages. Keys were recorded as they were read;
 * the deepest level has not yet counted the current item.
 */
static void
extent_path(const extent_stack *st, bool is_key, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t lv = 1; lv <= st->depth && n < cap; lv++) {
		bool last = lv == st->depth;

		if (st->is_map >> lv & 1) {
			if (last && is_key) {
				break;
			}
			n += (size_t) snprintf(buf + n, cap - n, "%s%.*s",
			    n == 0 ? "" : ".",
			    (int) (st->key_len[lv] > 40 ? 40 : st->key_len[lv]),
			    st->key[lv] != NULL ? st->key[lv] : "");
		} else {
			n += (size_t) snprintf(buf + n, cap - n, "[%llu]",
			    (unsigned long long) (st->count[lv] - st->left[lv] -
			        (last ? 0 : 1)));
		}
	}
}

static int
extent_limits(const scan_head *h, size_t depth, const proto_scan_opts *o,
    size_t at, evb_diag *d)
{
	uint64_t max;

	switch (h->kind) {
	case SK_STR:
	case SK_BIN:
		if (h->n > EVB_PROTO_MAX_STR) {
			evb_diag_set(d,
			    "string at byte %zu is %llu bytes, over the limit "
			    "of %d",
			    at, (unsigned long long) h->n, EVB_PROTO_MAX_STR);
			return (EVB_ETOOBIG);
		}
		return (EVB_OK);
	case SK_MAP:
	case SK_ARRAY:
		max = h->kind == SK_MAP ? EVB_PROTO_MAX_FIELDS
		    : depth == 0        ? o->top_array_max
		                        : EVB_PROTO_MAX_ARRAY;
		if (h->n > max) {
			evb_diag_set(d,
			    "%s at byte %zu has %llu entries, over the limit "
			    "of %llu",
			    h->kind == SK_MAP ? "map" : "array", at,
			    (unsigned long long) h->n, (unsigned long long) max);
			return (EVB_ETOOBIG);
		}
		return (EVB_OK);
	default:
		return (EVB_OK);
	}
}

/*
 * extent_content checks what one item's own bytes show: keys are strings,
 * strings are UTF-8 without NUL, floats are finite, no bin values and no
 * ext types. Checking here, in the pass that reads every header anyway,
 * costs far less than a second walk over msgpack-c's tree.
 */
static int
extent_content(const uint8_t *p, size_t at, const scan_head *h, bool is_key,
    evb_diag *d)
{
	const uint8_t *body = p + at + h->size - (size_t) h->n;
	size_t         bad;

	if (is_key && h->kind != SK_STR && h->kind != SK_BIN) {
		evb_diag_set(d, "map key at byte %zu is not a string", at);
		return (EVB_EMALFORMED);
	}
	switch (h->kind) {
	case SK_BIN:
		if (!is_key) {
			evb_diag_set(d,
			    "binary value at byte %zu: only str values are "
			    "supported",
			    at);
			return (EVB_EMALFORMED);
		}
		// A bin key must read as a string, like a str.
		/* FALLTHROUGH */
	case SK_STR:
		if ((bad = scan_utf8(body, (size_t) h->n)) != h->n) {
			evb_diag_set(d, "string at byte %zu has %s at its byte %zu",
			    at, body[bad] == 0 ? "a NUL character" : "invalid UTF-8",
			    bad);
			return (EVB_EMALFORMED);
		}
		return (EVB_OK);
	case SK_FLOAT32:
		// A float is finite unless all its exponent bits are set.
		if ((evb_get_be32(p + at + 1) & 0x7f800000u) == 0x7f800000u) {
			evb_diag_set(d, "number at byte %zu is NaN or infinite", at);
			return (EVB_EMALFORMED);
		}
		return (EVB_OK);
	case SK_FLOAT64:
		if ((evb_get_be64(p + at + 1) & 0x7ff0000000000000ull) ==
		    0x7ff0000000000000ull) {
			evb_diag_set(d, "number at byte %zu is NaN or infinite", at);
			return (EVB_EMALFORMED);
		}
		return (EVB_OK);
	case SK_EXT:
		evb_diag_set(d, "extension type at byte %zu is not supported", at);
		return (EVB_EMALFORMED);
	case SK_INVALID:
		evb_diag_set(d, "invalid MessagePack at byte %zu (0x%02x)", at,
		    p[at]);
		return (EVB_EMALFORMED);
	default:
		return (EVB_OK);
	}
}

/*
 * extent_skip delimits the rest of an object once it is known to be bad,
 * with a plain count of pending items: no limits, no stack, any depth.
 * Returns EVB_OK with *off at the object's end, or EVB_EMALFORMED when
 * the bytes end first.
 */
static int
extent_skip(const uint8_t *p, size_t len, size_t *off, uint64_t pending)
{
	scan_head h;

	while (pending > 0) {
		if (pending > len - *off ||
		    scan_read_head(p + *off, len - *off, &h) != EVB_OK ||
		    h.size > len - *off) {
			return (EVB_EMALFORMED);
		}
		*off += h.size;
		pending--;
		if (h.kind == SK_ARRAY || h.kind == SK_MAP) {
			pending += h.kind == SK_MAP ? 2 * h.n : h.n;
		}
	}
	return (EVB_OK);
}

/*
 * extent_item checks one item: depth, size limits (before truncation, as
 * "over the limit" says more than "truncated" about a header that claims
 * 2^32 entries), that the item and all it claims fit in what remains,
 * then its content (extent_content).
 */
static int
extent_item(const uint8_t *p, size_t len, size_t off, const scan_head *h,
    const extent_stack *st, const proto_scan_opts *o, evb_diag *d)
{
	// In a map, an even count of items left means a key comes next.
	bool     is_key = (st->is_map >> st->depth & 1) &&
	    st->left[st->depth] % 2 == 0;
	uint64_t claims = h->kind == SK_MAP ? 2 * h->n
	    : h->kind == SK_ARRAY           ? h->n
	                                    : 0;
	int      rv;

	if ((h->kind == SK_MAP || h->kind == SK_ARRAY) &&
	    st->depth + 1 > o->max_depth) {
		evb_diag_set(d, "nesting at byte %zu is deeper than the limit of %zu",
		    off, o->max_depth);
		return (EVB_ETOOBIG);
	}
	if ((rv = extent_limits(h, st->depth, o, off, d)) != EVB_OK) {
		return (rv);
	}
	// Every item takes at least one byte: a header that claims more
	// items than bytes remain is truncated, whatever it says.
	if (h->size > len - off ||
	    st->pending - 1 + claims > len - off - h->size) {
		evb_diag_set(d,
		    "truncated MessagePack: the item at byte %zu needs more "
		    "than the %zu bytes that remain",
		    off, len - off);
		return (EVB_EMALFORMED);
	}
	if (h->kind <= SK_INT) {
		if (is_key) {
			evb_diag_set(d, "map key at byte %zu is not a string", off);
			return (EVB_EMALFORMED);
		}
		return (EVB_OK);
	}
	return (extent_content(p, off, h, is_key, d));
}

/* extent_fail prefixes the diag with the path of the bad item. */
static void
extent_fail(const extent_stack *st, evb_diag *d)
{
	char path[128];
	char msg[EVB_DIAG_MAX];

	if (d == NULL) {
		return;
	}
	extent_path(st,
	    (st->is_map >> st->depth & 1) && st->left[st->depth] % 2 == 0, path,
	    sizeof(path));
	if (path[0] != '\0') {
		(void) snprintf(msg, sizeof(msg), "%s", d->msg);
		evb_diag_set(d, "%s: %s", path, msg);
	}
}

int
proto_scan_extent(const uint8_t *p, size_t len, const proto_scan_opts *o,
    proto_scan_result *res, evb_diag *d)
{
	extent_stack st  = { .left = { 1 }, .pending = 1 };
	size_t       off = 0;
	size_t       zone = 0;
	scan_head    h;
	int          rv;

	res->len        = 0;
	res->zone_bytes = 0;
	while (st.pending > 0) {
		while (st.left[st.depth] == 0) {
			st.depth--;
		}
		if (off == len || scan_read_head(p + off, len - off, &h) != EVB_OK) {
			evb_diag_set(d,
			    "truncated MessagePack: the item at byte %zu is cut "
			    "short",
			    off);
			extent_fail(&st, d);
			return (EVB_EMALFORMED);
		}
		if ((rv = extent_item(p, len, off, &h, &st, o, d)) != EVB_OK) {
			extent_fail(&st, d);
			goto bad;
		}
		if ((st.is_map >> st.depth & 1) && st.left[st.depth] % 2 == 0) {
			st.key[st.depth]     = (const char *) p + off + h.size - h.n;
			st.key_len[st.depth] = (size_t) h.n;
		}
		st.left[st.depth]--;
		st.pending--;
		off += h.size;
		if (h.kind == SK_ARRAY || h.kind == SK_MAP) {
			uint64_t items = h.kind == SK_MAP ? 2 * h.n : h.n;

			// What msgpack-c's unpacker will allocate for this
			// container, with its alignment.
			zone += (size_t) h.n * (h.kind == SK_MAP
			                               ? sizeof(msgpack_object_kv)
			                               : sizeof(msgpack_object)) +
			    sizeof(void *);
			st.depth++;
			st.left[st.depth]  = items;
			st.count[st.depth] = h.n;
			st.pending += items;
			st.is_map &= ~(1u << st.depth);
			if (h.kind == SK_MAP) {
				st.is_map |= 1u << st.depth;
			}
		}
	}
	res->len        = off;
	res->zone_bytes = zone;
	return (EVB_OK);

bad:
	// The object is rejected, but if it can still be delimited a batch
	// loses only this element: report its length with the error.
	if (extent_skip(p, len, &off, st.pending) == EVB_OK) {
		res->len = off;
	}
	return (rv);
}

/* The path from the root to the value being checked, for messages. */
typedef struct tree_path {
	const msgpack_object *keys[EVB_PROTO_MAX_DEPTH + 2]; /* NULL: index. */
	uint32_t              index[EVB_PROTO_MAX_DEPTH + 2]; /* Array index. */
	size_t                depth; /* Entries in use. */
	evb_diag             *d;     /* Where the first problem goes. */
} tree_path;

static int
tree_fail(tree_path *tp, int rv, const char *what)
{
	char   path[160] = "";
	size_t n         = 0;

	if (tp->d == NULL) {
		return (rv);
	}
	for (size_t i = 0; i < tp->depth && n < sizeof(path); i++) {
		if (tp->keys[i] == NULL) {
			n += (size_t) snprintf(path + n, sizeof(path) - n, "[%u]",
			    tp->index[i]);
		} else {
			evb_str k = proto_obj_key(tp->keys[i]);

			n += (size_t) snprintf(path + n, sizeof(path) - n, "%s%.*s",
			    i == 0 ? "" : ".", (int) (k.len > 40 ? 40 : k.len),
			    k.ptr);
		}
	}
	evb_diag_set(tp->d, "%s%s%s", path, n > 0 ? ": " : "", what);
	return (rv);
}

static int tree_value(tree_path *tp, const msgpack_object *o);

/*
 * tree_is_event_map is true for the envelope and its data map, whose
 * duplicate keys the envelope reader and the schema find more cheaply
 * (known keys by a bit mask, only unknown keys pairwise).
 */
static bool
tree_is_event_map(const tree_path *tp)
{
	return (tp->depth == 0 ||
	    (tp->depth == 1 && tp->keys[0] != NULL &&
	        proto_key_is(tp->keys[0], "data")));
}

static int
tree_map(tree_path *tp, const msgpack_object *o)
{
	bool check_dups = !tree_is_event_map(tp);

	const msgpack_object_kv *kv = o->via.map.ptr;
	int                      rv;

	for (uint32_t i = 0; i < o->via.map.size; i++) {
		evb_str k = proto_obj_key(&kv[i].key);

		// Pairwise, but EVB_PROTO_MAX_FIELDS bounds it, and most
		// pairs differ in length or first byte.
		for (uint32_t j = 0; check_dups && j < i; j++) {
			evb_str kj = proto_obj_key(&kv[j].key);

			if (proto_bytes_eq(kj.ptr, kj.len, k.ptr, k.len)) {
				char msg[96];

				(void) snprintf(msg, sizeof(msg),
				    "duplicate key \"%.*s\"",
				    (int) (k.len > 40 ? 40 : k.len), k.ptr);
				return (tree_fail(tp, EVB_EMALFORMED, msg));
			}
		}
		tp->keys[tp->depth++] = &kv[i].key;
		rv                    = tree_value(tp, &kv[i].val);
		tp->depth--;
		if (rv != EVB_OK) {
			return (rv);
		}
	}
	return (EVB_OK);
}

static int
tree_value(tree_path *tp, const msgpack_object *o)
{
	int rv;

	if (o->type == MSGPACK_OBJECT_MAP) {
		return (tree_map(tp, o));
	}
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		return (EVB_OK);
	}
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		tp->keys[tp->depth]    = NULL;
		tp->index[tp->depth++] = i;
		rv                     = tree_value(tp, &o->via.array.ptr[i]);
		tp->depth--;
		if (rv != EVB_OK) {
			return (rv);
		}
	}
	return (EVB_OK);
}

int
proto_scan_tree(const msgpack_object *o, evb_diag *d)
{
	tree_path tp = { .depth = 0, .d = d };

	return (tree_value(&tp, o));
}

int
evb_proto_msg_extent(const void *buf, size_t len, size_t *n, evb_diag *diag)
{
	size_t off = 0;

	if (extent_skip(buf, len, &off, 1) != EVB_OK) {
		evb_diag_set(diag,
		    "truncated MessagePack: the input ends inside the object "
		    "that starts at byte 0 (%zu bytes)",
		    len);
		return (EVB_EMALFORMED);
	}
	*n = off;
	return (EVB_OK);
}
