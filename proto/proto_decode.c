/*
 * proto_decode.c: MessagePack bytes to msgpack-c objects, for untrusted
 * input, in one pass.
 *
 * Why not msgpack_unpack(): msgpack-c's parser allocates what a header
 * claims before it knows the bytes exist (a map32 header claiming 2^32-1
 * entries asks for 64 GiB), and it accepts what our events cannot hold
 * (NaN, integer keys, invalid UTF-8, ext types), so every input would
 * need a guarding pass over the bytes before it and a checking pass over
 * the tree after it. Three passes cost more than twice the whole budget
 * of decode + validate (docs/benchmarks.md). This decoder does all of it
 * in the one walk, and builds the same msgpack_object tree (in the
 * event's own arena, see proto_int.h), so everything downstream (the
 * packer, msgpack_object accessors) is still msgpack-c's.
 *
 * What it enforces, with the first problem named by path ("data.bid"):
 * nesting depth, map/array/string sizes (EVB_PROTO_MAX_*), that every
 * claimed item fits in the bytes that remain (so allocation is bounded by
 * the input length: at most one msgpack_object_kv per two input bytes),
 * string keys, no duplicate keys, UTF-8 without NUL, finite floats, no
 * bin values (bin keys are fine) and no ext types. Recursion is bounded
 * by the depth limit, checked before each descent. On the way it notes
 * whether the envelope's data map is already in msgpack-c's canonical
 * form (dec_is_canonical), so that encoding can copy it.
 *
 * The MessagePack spec is the reference; docs/protocol.md summarises the
 * subset we accept. When this changes, change with it docs/protocol.md,
 * the fuzz corpus (fuzz/gen_corpus.py) and tests/unit/proto_hostile_test.c.
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
 * Every item of every event goes through scan_read_head, so it must be
 * inlined: when the frame-head readers became its callers too, GCC
 * stopped inlining it (and extent_skip) into the decoder, and decode +
 * validate went from 0.41 to 0.47 us per event (proto_bench,
 * docs/benchmarks.md).
 */
#if defined(__GNUC__)
#define SCAN_INLINE inline __attribute__((always_inline))
#else
#define SCAN_INLINE inline
#endif

/*
 * scan_read_head decodes the header at p[0..avail). It checks that the
 * header itself is present; the caller checks the payload.
 */
static SCAN_INLINE int
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
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		h->kind = SK_INT;
		h->size = 1 + ((size_t) 1 << (b - 0xcc));
		return (EVB_OK);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		h->kind = SK_INT;
		h->size = 1 + ((size_t) 1 << (b - 0xd0));
		return (EVB_OK);
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		h->kind = SK_EXT;
		h->n    = (uint64_t) 1 << (b - 0xd4);
		h->size = 2 + h->n;
		return (EVB_OK);
	case 0xc4:
	case 0xc5:
	case 0xc6:
	case 0xd9:
	case 0xda:
	case 0xdb:
	case 0xc7:
	case 0xc8:
	case 0xc9:
		// Length-prefixed payloads: bin 8/16/32, str 8/16/32, ext
		// 8/16/32.
		if (b <= 0xc6) {
			h->kind = SK_BIN;
			lb      = scan_len_bytes[b - 0xc4];
		} else if (b >= 0xd9) {
			h->kind = SK_STR;
			lb      = scan_len_bytes[b - 0xd9];
		} else {
			// The case labels leave b in 0xc7..0xc9 here.
			h->kind = SK_EXT;
			// cppcheck-suppress arrayIndexOutOfBoundsCond
			lb = scan_len_bytes[b - 0xc7];
		}
		if (avail < 1 + lb) {
			return (EVB_EMALFORMED);
		}
		h->n    = scan_read_len(p + 1, lb);
		h->size = 1 + lb + (h->kind == SK_EXT ? 1 : 0) + (size_t) h->n;
		return (EVB_OK);
	case 0xdc:
	case 0xdd:
	case 0xde:
	case 0xdf:
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
 * utf8_check returns the offset of the first invalid byte of s, or len if
 * s is valid UTF-8 without NUL (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF): scan_utf8's path for strings that
 * are not plain ASCII.
 */
static size_t
utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

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
			return (
			    i); // NUL, continuation byte, or 0xc0/0xc1/0xf5+.
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
		if (cp < min || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			return (i);
		}
		i += need + 1;
	}
	return (len);
}

/*
 * scan_utf8 returns the offset of the first invalid byte of s, or len if
 * s is valid UTF-8 without NUL, as utf8_check does, testing first for
 * plain ASCII (nearly every string of an event) a word at a time.
 */
static size_t
scan_utf8(const uint8_t *s, size_t len)
{
	size_t   i    = 0;
	uint64_t high = 0;
	uint64_t zero = 0;
	uint64_t w;

	// Fast path for the common case, an ASCII string: fold all bytes,
	// then test once for a high bit (non-ASCII) or a zero byte. The
	// bytes after the last whole word are folded as one more word that
	// overlaps it (or, under 8 bytes, as two overlapping halves): a
	// byte loop over them cost more than the words before them, as
	// most names and values are short.
	if (len >= 8) {
		for (; i + 8 <= len; i += 8) {
			memcpy(&w, s + i, 8);
			high |= w;
			zero |= (w - 0x0101010101010101ull) & ~w;
		}
		if (i < len) {
			memcpy(&w, s + (len - 8), 8);
			high |= w;
			zero |= (w - 0x0101010101010101ull) & ~w;
		}
	} else if (len >= 4) {
		uint32_t a, b;

		memcpy(&a, s, 4);
		memcpy(&b, s + (len - 4), 4);
		high |= a | b;
		zero |= ((a - 0x01010101u) & ~a) | ((b - 0x01010101u) & ~b);
	} else {
		for (; i < len; i++) {
			high |= s[i];
			zero |= (uint64_t) (s[i] == 0) << 7;
		}
	}
	if (((high | zero) & 0x8080808080808080ull) == 0) {
		return (len);
	}
	return (utf8_check(s, len));
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
	size_t    o  = *off; // Kept in a register: p's bytes may alias *off.
	int       rv = EVB_OK;

	while (pending > 0) {
		uint8_t b;

		if (pending > len - o) {
			rv = EVB_EMALFORMED;
			break;
		}
		// Fixints and fixstrs, most of an event's items, are sized by
		// their first byte alone (as scan_read_head would size them).
		b = p[o];
		if (b <= 0x7f || b >= 0xe0) {
			o++;
			pending--;
			continue;
		}
		if ((b & 0xe0) == 0xa0) {
			if ((size_t) (b & 0x1f) >= len - o) {
				rv = EVB_EMALFORMED;
				break;
			}
			o += 1 + (size_t) (b & 0x1f);
			pending--;
			continue;
		}
		if (scan_read_head(p + o, len - o, &h) != EVB_OK ||
		    h.size > len - o) {
			rv = EVB_EMALFORMED;
			break;
		}
		o += h.size;
		pending--;
		if (h.kind == SK_ARRAY || h.kind == SK_MAP) {
			pending += h.kind == SK_MAP ? 2 * h.n : h.n;
		}
	}
	*off = o;
	return (rv);
}

/* The decoder's state: input, output zone, and the path for messages. */
typedef struct dec {
	const uint8_t         *p;     /* The bytes (the event's own copy). */
	size_t                 len;   /* Their length. */
	size_t                 off;   /* Next byte to read. */
	proto_arena           *arena; /* Where the tree is allocated. */
	const proto_scan_opts *o;     /* Limits. */
	evb_diag              *d;     /* Where the first problem goes. */
	size_t                 depth; /* Open containers. */
	const msgpack_object  *key[EVB_PROTO_MAX_DEPTH + 2]; /* NULL: array. */
	uint32_t               idx[EVB_PROTO_MAX_DEPTH + 2]; /* Array index. */
	bool       canon; /* Every item so far is as the packer writes it. */
	proto_span data;  /* The root's data map, if canonical. */
} dec;

/* dec_fail records the first problem, prefixed by the path to it. */
static int dec_fail(dec *c, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
dec_fail(dec *c, int rv, const char *fmt, ...)
{
	char    path[128];
	char    msg[EVB_DIAG_MAX];
	size_t  n = 0;
	va_list ap;

	if (c->d == NULL) {
		return (rv);
	}
	path[0] = '\0';
	for (size_t lv = 1; lv <= c->depth && n < sizeof(path); lv++) {
		if (c->key[lv] == NULL) {
			n += (size_t) snprintf(
			    path + n, sizeof(path) - n, "[%u]", c->idx[lv]);
		} else {
			char k[PROTO_QUOTE_CAP];

			n += (size_t) snprintf(path + n, sizeof(path) - n,
			    "%s%s", n == 0 ? "" : ".",
			    proto_key_text(c->key[lv], k));
		}
	}
	va_start(ap, fmt);
	(void) vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	evb_diag_set(c->d, "%s%s%s", path, path[0] != '\0' ? ": " : "", msg);
	return (rv);
}

/* Bytes msgpack-c's packer gives a header for n items or str bytes. */
static size_t
canon_len_size(uint64_t n, uint64_t fix_max)
{
	return (n <= fix_max ? 1 : n <= 0xffff ? 3 : 5);
}

/* Bytes msgpack-c's packer gives integer v (as dec_int classifies it). */
static size_t
canon_int_size(const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		uint64_t u = o->via.u64;

		return (u <= 0x7f          ? 1
		        : u <= 0xff        ? 2
		        : u <= 0xffff      ? 3
		        : u <= 0xffffffffu ? 5
		                           : 9);
	}
	int64_t v = o->via.i64;

	return (v >= -32         ? 1
	        : v >= INT8_MIN  ? 2
	        : v >= INT16_MIN ? 3
	        : v >= INT32_MIN ? 5
	                         : 9);
}

/*
 * dec_is_canonical tells whether the item o, decoded from header h at
 * byte at, is written exactly as proto_pack_object writes it back (with
 * msgpack-c's packer): keys as str, and every integer, string, map and
 * array header in its shortest form. Most producers write exactly that,
 * and then encoding an event copies its data's bytes instead of walking
 * the tree (dec_map notes where data lies).
 */
static bool
dec_is_canonical(
    const dec *c, size_t at, const scan_head *h, const msgpack_object *o)
{
	uint8_t b = c->p[at];

	switch (h->kind) {
	case SK_INT:
		// A non-negative value in a signed marker is written back
		// unsigned, whatever its size.
		if (b >= 0xd0 && b <= 0xd3 &&
		    o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			return (false);
		}
		return (canon_int_size(o) == h->size);
	case SK_STR:
		// Strings have an 8-bit length form (str8); maps and arrays
		// do not, hence not canon_len_size.
		return (h->n <= 31       ? h->size - h->n == 1
		        : h->n <= 0xff   ? h->size - h->n == 2
		        : h->n <= 0xffff ? h->size - h->n == 3
		                         : h->size - h->n == 5);
	case SK_MAP:
	case SK_ARRAY:
		return (canon_len_size(h->n, 15) == h->size);
	case SK_BIN:
		return (false); // A bin key is written back as str.
	default:
		return (true);
	}
}

/* dec_int decodes the integer whose header is h at c->p + at. */
static void
dec_int(const dec *c, size_t at, const scan_head *h, msgpack_object *o)
{
	const uint8_t *q = c->p + at;
	uint8_t        b = q[0];
	int64_t        v;

	if (b <= 0x7f || (b >= 0xcc && b <= 0xcf)) {
		uint64_t u = b <= 0x7f ? b
		    : h->size == 2     ? q[1]
		    : h->size == 3     ? evb_get_be16(q + 1)
		    : h->size == 5     ? evb_get_be32(q + 1)
		                       : evb_get_be64(q + 1);

		o->type    = MSGPACK_OBJECT_POSITIVE_INTEGER;
		o->via.u64 = u;
		return;
	}
	v = b >= 0xe0      ? (int8_t) b
	    : h->size == 2 ? (int8_t) q[1]
	    : h->size == 3 ? (int16_t) evb_get_be16(q + 1)
	    : h->size == 5 ? (int32_t) evb_get_be32(q + 1)
	                   : (int64_t) evb_get_be64(q + 1);
	// msgpack-c's convention: a non-negative value is a positive
	// integer whatever its wire type, so re-encoding is canonical.
	if (v >= 0) {
		o->type    = MSGPACK_OBJECT_POSITIVE_INTEGER;
		o->via.u64 = (uint64_t) v;
	} else {
		o->type    = MSGPACK_OBJECT_NEGATIVE_INTEGER;
		o->via.i64 = v;
	}
}

/* scan_float reads the float32 or float64 whose header h is at p. */
static double
scan_float(const uint8_t *p, const scan_head *h)
{
	if (h->kind == SK_FLOAT32) {
		uint32_t bits = evb_get_be32(p + 1);
		float    f;

		memcpy(&f, &bits, sizeof(f));
		return (f);
	}
	uint64_t bits = evb_get_be64(p + 1);
	double   v;

	memcpy(&v, &bits, sizeof(v));
	return (v);
}

static int
dec_float(dec *c, size_t at, const scan_head *h, msgpack_object *o)
{
	o->type    = h->kind == SK_FLOAT32 ? MSGPACK_OBJECT_FLOAT32
	                                   : MSGPACK_OBJECT_FLOAT64;
	o->via.f64 = scan_float(c->p + at, h);
	if (!isfinite(o->via.f64)) {
		return (dec_fail(c, EVB_EMALFORMED,
		    "number at byte %zu is NaN or infinite", at));
	}
	return (EVB_OK);
}

static int
dec_string(
    dec *c, size_t at, const scan_head *h, bool is_key, msgpack_object *o)
{
	const char *body = (const char *) c->p + at + h->size - (size_t) h->n;
	size_t      bad;

	if (h->kind == SK_BIN && !is_key) {
		return (dec_fail(c, EVB_EMALFORMED,
		    "binary value at byte %zu: only str values are supported",
		    at));
	}
	if ((bad = scan_utf8((const uint8_t *) body, (size_t) h->n)) != h->n) {
		return (dec_fail(c, EVB_EMALFORMED,
		    "string at byte %zu has %s at its byte %zu", at,
		    body[bad] == 0 ? "a NUL character" : "invalid UTF-8", bad));
	}
	// A bin key stays bin in the tree; proto_obj_key reads either.
	o->type = h->kind == SK_BIN ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR;
	o->via.str.ptr  = body;
	o->via.str.size = (uint32_t) h->n;
	return (EVB_OK);
}

static int dec_value(dec *c, msgpack_object *o, bool is_key);

/*
 * dec_claims checks a container's size against its limit and against the
 * bytes that remain (each item takes at least one), before anything is
 * allocated for it.
 */
static int
dec_claims(dec *c, size_t at, const scan_head *h)
{
	uint64_t max   = h->kind == SK_MAP ? EVB_PROTO_MAX_FIELDS
	      : c->depth == 0              ? c->o->top_array_max
	                                   : EVB_PROTO_MAX_ARRAY;
	uint64_t items = h->kind == SK_MAP ? 2 * h->n : h->n;

	if (c->depth + 1 > c->o->max_depth) {
		return (dec_fail(c, EVB_ETOOBIG,
		    "nesting at byte %zu is deeper than the limit of %zu", at,
		    c->o->max_depth));
	}
	if (h->n > max) {
		return (dec_fail(c, EVB_ETOOBIG,
		    "%s at byte %zu has %llu entries, over the limit of %llu",
		    h->kind == SK_MAP ? "map" : "array", at,
		    (unsigned long long) h->n, (unsigned long long) max));
	}
	if (items > c->len - c->off) {
		return (dec_fail(c, EVB_EMALFORMED,
		    "truncated MessagePack: the %s at byte %zu claims %llu "
		    "items, %zu bytes remain",
		    h->kind == SK_MAP ? "map" : "array", at,
		    (unsigned long long) items, c->len - c->off));
	}
	return (EVB_OK);
}

/*
 * dec_is_event_map is true for the envelope and its data map, whose
 * duplicate keys the envelope reader and the schema find more cheaply
 * (known keys by a bit mask, only unknown keys pairwise).
 */
static bool
dec_is_event_map(const dec *c)
{
	return (c->depth == 1 ||
	    (c->depth == 2 && c->key[1] != NULL &&
	        proto_bytes_eq(proto_obj_key(c->key[1]).ptr,
	            proto_obj_key(c->key[1]).len, "data", 4)));
}

/*
 * dec_fixstr decodes the item at c->off when it is a fixstr (1 to 31
 * bytes, or empty) of valid UTF-8, the form of nearly every key and
 * string value of an event, and says whether it did. It is dec_value's
 * result for such an item without the general header read, the limit
 * checks a fixstr cannot fail, or the call: a fixstr is always in its
 * canonical form and within EVB_PROTO_MAX_STR. Anything else, a bad
 * string included, is left to dec_value, which also words the error.
 */
static SCAN_INLINE bool
dec_fixstr(dec *c, msgpack_object *o)
{
	size_t      at = c->off;
	size_t      n;
	const char *body;

	if (at == c->len || (c->p[at] & 0xe0) != 0xa0) {
		return (false);
	}
	n = c->p[at] & 0x1f;
	if (n >= c->len - at) {
		return (false);
	}
	body = (const char *) c->p + at + 1;
	if (scan_utf8((const uint8_t *) body, n) != n) {
		return (false);
	}
	o->type         = MSGPACK_OBJECT_STR;
	o->via.str.ptr  = body;
	o->via.str.size = (uint32_t) n;
	c->off          = at + 1 + n;
	return (true);
}

static int
dec_map(dec *c, size_t at, const scan_head *h, msgpack_object *o)
{
	msgpack_object_kv *kv = NULL;
	uint32_t           n  = (uint32_t) h->n;
	bool               check_dups;
	bool               is_data;
	bool               outer_canon = false;
	int                rv;

	if ((rv = dec_claims(c, at, h)) != EVB_OK) {
		return (rv);
	}
	if (n > 0 &&
	    (kv = proto_arena_alloc(c->arena, n * sizeof(*kv))) == NULL) {
		return (EVB_ENOMEM);
	}
	o->type         = MSGPACK_OBJECT_MAP;
	o->via.map.size = n;
	o->via.map.ptr  = kv;
	c->depth++;
	check_dups = !dec_is_event_map(c);
	is_data    = c->depth == 2 && !check_dups;
	if (is_data) {
		outer_canon = c->canon;
		c->canon    = canon_len_size(h->n, 15) == h->size;
	}
	for (uint32_t i = 0; i < n; i++) {
		c->key[c->depth] = NULL;
		c->idx[c->depth] = i;
		if (!dec_fixstr(c, &kv[i].key) &&
		    (rv = dec_value(c, &kv[i].key, true)) != EVB_OK) {
			return (rv);
		}
		for (uint32_t j = 0; check_dups && j < i; j++) {
			evb_str a = proto_obj_key(&kv[i].key);
			evb_str b = proto_obj_key(&kv[j].key);

			if (proto_bytes_eq(a.ptr, a.len, b.ptr, b.len)) {
				char k[PROTO_QUOTE_CAP];

				return (dec_fail(c, EVB_EMALFORMED,
				    "duplicate key \"%s\"",
				    proto_key_text(&kv[i].key, k)));
			}
		}
		c->key[c->depth] = &kv[i].key;
		if (!dec_fixstr(c, &kv[i].val) &&
		    (rv = dec_value(c, &kv[i].val, false)) != EVB_OK) {
			return (rv);
		}
	}
	c->depth--;
	if (is_data) {
		c->data.off = at;
		c->data.len = c->canon ? c->off - at : 0;
		c->canon    = outer_canon && c->canon;
	}
	return (EVB_OK);
}

static int
dec_array(dec *c, size_t at, const scan_head *h, msgpack_object *o)
{
	msgpack_object *el = NULL;
	uint32_t        n  = (uint32_t) h->n;
	int             rv;

	if ((rv = dec_claims(c, at, h)) != EVB_OK) {
		return (rv);
	}
	if (n > 0 &&
	    (el = proto_arena_alloc(c->arena, n * sizeof(*el))) == NULL) {
		return (EVB_ENOMEM);
	}
	o->type           = MSGPACK_OBJECT_ARRAY;
	o->via.array.size = n;
	o->via.array.ptr  = el;
	c->depth++;
	c->key[c->depth] = NULL;
	for (uint32_t i = 0; i < n; i++) {
		c->idx[c->depth] = i;
		if ((rv = dec_value(c, &el[i], false)) != EVB_OK) {
			return (rv);
		}
	}
	c->depth--;
	return (EVB_OK);
}

static int
dec_value(dec *c, msgpack_object *o, bool is_key)
{
	size_t    at = c->off;
	scan_head h;

	if (at == c->len ||
	    scan_read_head(c->p + at, c->len - at, &h) != EVB_OK) {
		return (dec_fail(c, EVB_EMALFORMED,
		    "truncated MessagePack: the item at byte %zu is cut short",
		    at));
	}
	// Limits first: "over the limit" says more than "truncated" about
	// a header that claims 4 GiB.
	if ((h.kind == SK_STR || h.kind == SK_BIN) && h.n > EVB_PROTO_MAX_STR) {
		return (dec_fail(c, EVB_ETOOBIG,
		    "string at byte %zu is %llu bytes, over the limit of %d",
		    at, (unsigned long long) h.n, EVB_PROTO_MAX_STR));
	}
	if (h.size > c->len - at) {
		return (dec_fail(c, EVB_EMALFORMED,
		    "truncated MessagePack: the item at byte %zu is cut short",
		    at));
	}
	c->off += h.size;
	if (is_key && h.kind != SK_STR && h.kind != SK_BIN) {
		return (dec_fail(c, EVB_EMALFORMED,
		    "map key at byte %zu is not a string", at));
	}
	switch (h.kind) {
	case SK_NIL:
		o->type = MSGPACK_OBJECT_NIL;
		return (EVB_OK);
	case SK_BOOL:
		o->type        = MSGPACK_OBJECT_BOOLEAN;
		o->via.boolean = c->p[at] == 0xc3;
		return (EVB_OK);
	case SK_INT:
		dec_int(c, at, &h, o);
		c->canon = c->canon && dec_is_canonical(c, at, &h, o);
		return (EVB_OK);
	case SK_FLOAT32:
	case SK_FLOAT64:
		return (dec_float(c, at, &h, o));
	case SK_STR:
	case SK_BIN:
		c->canon = c->canon && dec_is_canonical(c, at, &h, o);
		return (dec_string(c, at, &h, is_key, o));
	case SK_MAP:
		c->canon = c->canon && dec_is_canonical(c, at, &h, o);
		return (dec_map(c, at, &h, o));
	case SK_ARRAY:
		c->canon = c->canon && dec_is_canonical(c, at, &h, o);
		return (dec_array(c, at, &h, o));
	case SK_EXT:
		return (dec_fail(c, EVB_EMALFORMED,
		    "extension type at byte %zu is not supported", at));
	default:
		return (dec_fail(c, EVB_EMALFORMED,
		    "invalid MessagePack at byte %zu (0x%02x)", at, c->p[at]));
	}
}

int
proto_decode(const uint8_t *p, size_t len, const proto_scan_opts *o,
    proto_arena *arena, msgpack_object *out, size_t *used, proto_span *data,
    evb_diag *d)
{
	dec c = {
		.p     = p,
		.len   = len,
		.off   = 0,
		.arena = arena,
		.o     = o,
		.d     = d,
		.depth = 0,
	};
	int rv;

	if ((rv = dec_value(&c, out, false)) != EVB_OK) {
		return (rv);
	}
	*used = c.off;
	*data = c.data;
	return (EVB_OK);
}

int
proto_delimit(const uint8_t *p, size_t len, size_t *n)
{
	size_t off = 0;

	if (extent_skip(p, len, &off, 1) != EVB_OK) {
		return (EVB_EMALFORMED);
	}
	*n = off;
	return (EVB_OK);
}

int
evb_proto_msg_extent(const void *buf, size_t len, size_t *n, evb_diag *diag)
{
	if (proto_delimit(buf, len, n) != EVB_OK) {
		evb_diag_set(diag,
		    "truncated MessagePack: the input ends inside the object "
		    "that starts at byte 0 (%zu bytes)",
		    len);
		return (EVB_EMALFORMED);
	}
	return (EVB_OK);
}

/* ---- Frame heads: the envelope fields, for trusted frames ------------- */

int
proto_frame_topic(
    const uint8_t *p, size_t len, const uint8_t **nul, evb_diag *d)
{
	const uint8_t *z = len == 0
	    ? NULL
	    : memchr(p, 0,
	          len < EVB_PROTO_MAX_TOPIC + 1 ? len
	                                        : EVB_PROTO_MAX_TOPIC + 1);

	if (z == NULL) {
		evb_diag_set(d, "frame: no 0x00 after the topic");
		return (EVB_EMALFORMED);
	}
	*nul = z;
	return (EVB_OK);
}

/*
 * head_int reads the integer whose header h is at p (h->size bytes, in
 * bounds). EVB_EMALFORMED for any other kind. OUT: *neg (the value is
 * negative), *v (its bits: two's complement when negative).
 */
static int
head_int(const uint8_t *p, const scan_head *h, bool *neg, uint64_t *v)
{
	uint8_t b = p[0];

	if (h->kind != SK_INT) {
		return (EVB_EMALFORMED);
	}
	*neg = false;
	if (b <= 0x7f) {
		*v = b;
	} else if (b >= 0xe0) {
		*neg = true;
		*v   = (uint64_t) (int64_t) (int8_t) b;
	} else if (b >= 0xcc && b <= 0xcf) {
		*v = b == 0xcc  ? p[1]
		    : b == 0xcd ? evb_get_be16(p + 1)
		    : b == 0xce ? evb_get_be32(p + 1)
		                : evb_get_be64(p + 1);
	} else {
		int64_t s = b == 0xd0 ? (int8_t) p[1]
		    : b == 0xd1       ? (int16_t) evb_get_be16(p + 1)
		    : b == 0xd2       ? (int32_t) evb_get_be32(p + 1)
		                      : (int64_t) evb_get_be64(p + 1);

		*neg = s < 0;
		*v   = (uint64_t) s;
	}
	return (EVB_OK);
}

/* head_key_is says whether the key's bytes k[0..n) spell name. */
static bool
head_key_is(const uint8_t *k, size_t n, const char *name)
{
	return (n == strlen(name) && memcmp(k, name, n) == 0);
}

/* head_id reads a string value of 1..EVB_PROTO_MAX_ID bytes (id, corr). */
static int
head_id(const uint8_t *s, const scan_head *vh, const char *name, evb_str *out,
    evb_diag *d)
{
	if (vh->kind != SK_STR || vh->n == 0 || vh->n > EVB_PROTO_MAX_ID) {
		evb_diag_set(d, "envelope.%s: expected a string of 1..%d bytes",
		    name, EVB_PROTO_MAX_ID);
		return (EVB_EMALFORMED);
	}
	*out = (evb_str) { (const char *) s, (size_t) vh->n };
	return (EVB_OK);
}

/*
 * head_field reads one envelope value (header vh at v, vlen bytes in all,
 * in bounds) into out when its key k[0..kn) is one the head holds; *seen
 * gets bit 1 for type, 2 for seq and 4 for epoch.
 */
static int
head_field(const uint8_t *k, size_t kn, const uint8_t *v, const scan_head *vh,
    size_t vlen, evb_proto_head *out, unsigned *seen, evb_diag *d)
{
	// A string's body follows its header; for other kinds n counts
	// items, not bytes, and size - n would point before v.
	const uint8_t *s =
	    vh->kind == SK_STR ? v + (vh->size - (size_t) vh->n) : v;
	bool     neg;
	uint64_t u;

	if (head_key_is(k, kn, "type")) {
		if (vh->kind != SK_STR ||
		    evb_proto_type_find((const char *) s, (size_t) vh->n,
		        &out->type) != EVB_OK) {
			evb_diag_set(
			    d, "envelope.type is not a known type name");
			return (EVB_EMALFORMED);
		}
		*seen |= 1u;
	} else if (head_key_is(k, kn, "id")) {
		return (head_id(s, vh, "id", &out->id, d));
	} else if (head_key_is(k, kn, "corr")) {
		return (head_id(s, vh, "corr", &out->corr, d));
	} else if (head_key_is(k, kn, "data")) {
		if (vh->kind != SK_MAP) {
			evb_diag_set(d, "envelope.data is not a map");
			return (EVB_EMALFORMED);
		}
		out->data     = v;
		out->data_len = vlen;
	} else if (head_key_is(k, kn, "ts") || head_key_is(k, kn, "seq") ||
	    head_key_is(k, kn, "epoch")) {
		// As the decoder: all three are integers in [0, 2^63).
		if (head_int(v, vh, &neg, &u) != EVB_OK || neg ||
		    u > INT64_MAX) {
			evb_diag_set(d,
			    "envelope.%.*s: expected an integer in [0, 2^63)",
			    (int) kn, (const char *) k);
			return (EVB_EMALFORMED);
		}
		if (kn == 2) {
			out->ts     = (int64_t) u;
			out->has_ts = true;
		} else if (kn == 3) {
			out->seq = u;
			*seen |= 2u;
		} else {
			out->epoch = u;
			*seen |= 4u;
		}
	}
	return (EVB_OK);
}

/*
 * head_env reads the envelope map at h->env (h->env_len bytes, which it
 * must fill exactly) into h. OUT: *seen, as head_field.
 */
static int
head_env(evb_proto_head *h, unsigned *seen, evb_diag *diag)
{
	scan_head mh;
	size_t    off;
	int       rv;

	if (h->env_len == 0 ||
	    scan_read_head(h->env, h->env_len, &mh) != EVB_OK ||
	    mh.kind != SK_MAP || mh.n > EVB_PROTO_MAX_FIELDS) {
		evb_diag_set(diag, "the envelope is not a map");
		return (EVB_EMALFORMED);
	}
	off = mh.size;
	for (uint64_t i = 0; i < mh.n; i++) {
		scan_head kh, vh;
		size_t    koff, voff;

		koff = off;
		if (off >= h->env_len ||
		    scan_read_head(h->env + off, h->env_len - off, &kh) !=
		        EVB_OK ||
		    (kh.kind != SK_STR && kh.kind != SK_BIN) ||
		    kh.size > h->env_len - off) {
			evb_diag_set(diag,
			    "envelope key %llu is not a string in bounds",
			    (unsigned long long) i);
			return (EVB_EMALFORMED);
		}
		off += kh.size;
		voff = off;
		if (off >= h->env_len ||
		    scan_read_head(h->env + off, h->env_len - off, &vh) !=
		        EVB_OK ||
		    vh.size > h->env_len - off) {
			evb_diag_set(diag, "the envelope is truncated");
			return (EVB_EMALFORMED);
		}
		// A scalar ends with its header's size; only a container's
		// items need delimiting.
		off += vh.size;
		if ((vh.kind == SK_ARRAY || vh.kind == SK_MAP) &&
		    extent_skip(h->env, h->env_len, &off,
		        vh.kind == SK_MAP ? 2 * vh.n : vh.n) != EVB_OK) {
			evb_diag_set(diag, "the envelope is truncated");
			return (EVB_EMALFORMED);
		}
		rv = head_field(h->env + koff + (kh.size - (size_t) kh.n),
		    (size_t) kh.n, h->env + voff, &vh, off - voff, h, seen,
		    diag);
		if (rv != EVB_OK) {
			return (rv);
		}
	}
	if (off != h->env_len) {
		evb_diag_set(diag, "bytes after the envelope");
		return (EVB_EMALFORMED);
	}
	if ((*seen & 1u) == 0) {
		evb_diag_set(diag, "the envelope lacks type");
		return (EVB_EMALFORMED);
	}
	return (EVB_OK);
}

int
evb_proto_frame_head(
    const void *buf, size_t len, evb_proto_head *out, evb_diag *diag)
{
	const uint8_t *p = buf;
	const uint8_t *nul;
	evb_proto_head h    = { .type = -1 };
	unsigned       seen = 0;
	int            rv;

	if ((rv = proto_frame_topic(p, len, &nul, diag)) != EVB_OK) {
		return (rv);
	}
	h.env     = nul + 1;
	h.env_len = len - (size_t) (h.env - p);
	if ((rv = head_env(&h, &seen, diag)) != EVB_OK) {
		return (rv);
	}
	if ((seen & 6u) != 6u) {
		evb_diag_set(diag, "frame: the envelope lacks seq and epoch");
		return (EVB_EMALFORMED);
	}
	*out = h;
	return (EVB_OK);
}

int
evb_proto_env_head(
    const void *buf, size_t len, evb_proto_head *out, evb_diag *diag)
{
	evb_proto_head h    = { .type = -1, .env = buf, .env_len = len };
	unsigned       seen = 0;
	int            rv;

	if ((rv = head_env(&h, &seen, diag)) != EVB_OK) {
		return (rv);
	}
	*out = h;
	return (EVB_OK);
}

/*
 * head_find finds field in the head's data map. OUT: *v and *vh, the
 * value's bytes and header, on success only. EVB_ENOTFOUND when absent.
 * The map was delimited when the head was read, so every item is in
 * bounds.
 */
static int
head_find(const evb_proto_head *h, const char *field, const uint8_t **v,
    scan_head *vh)
{
	const uint8_t *p   = h->data;
	size_t         len = h->data_len;
	size_t         fn  = strlen(field);
	scan_head      mh, kh;
	size_t         off;

	if (p == NULL || scan_read_head(p, len, &mh) != EVB_OK) {
		return (EVB_ENOTFOUND);
	}
	off = mh.size;
	for (uint64_t i = 0; i < mh.n && off < len; i++) {
		if (scan_read_head(p + off, len - off, &kh) != EVB_OK ||
		    kh.size > len - off) {
			return (EVB_ENOTFOUND);
		}
		off += kh.size;
		if ((kh.kind == SK_STR || kh.kind == SK_BIN) && kh.n == fn &&
		    memcmp(p + off - fn, field, fn) == 0) {
			if (off >= len ||
			    scan_read_head(p + off, len - off, vh) != EVB_OK ||
			    vh->size > len - off) {
				return (EVB_ENOTFOUND);
			}
			*v = p + off;
			return (EVB_OK);
		}
		if (extent_skip(p, len, &off, 1) != EVB_OK) {
			return (EVB_ENOTFOUND);
		}
	}
	return (EVB_ENOTFOUND);
}

int
evb_proto_head_get_str(const evb_proto_head *h, const char *field, evb_str *val)
{
	const uint8_t *v;
	scan_head      vh;

	if (head_find(h, field, &v, &vh) != EVB_OK) {
		return (EVB_ENOTFOUND);
	}
	if (vh.kind != SK_STR) {
		return (EVB_ESCHEMA);
	}
	val->ptr = (const char *) v + (vh.size - (size_t) vh.n);
	val->len = (size_t) vh.n;
	return (EVB_OK);
}

/*
 * head_find_num finds a numeric field of the head's data. OUT, on
 * success only: *is_float, then *f; else *neg and *u as head_int.
 * EVB_ENOTFOUND, or EVB_ESCHEMA when it is not a number.
 */
static int
head_find_num(const evb_proto_head *h, const char *field, bool *is_float,
    double *f, bool *neg, uint64_t *u)
{
	const uint8_t *v;
	scan_head      vh;

	if (head_find(h, field, &v, &vh) != EVB_OK) {
		return (EVB_ENOTFOUND);
	}
	*is_float = vh.kind == SK_FLOAT32 || vh.kind == SK_FLOAT64;
	if (*is_float) {
		*f = scan_float(v, &vh);
		return (EVB_OK);
	}
	return (head_int(v, &vh, neg, u) == EVB_OK ? EVB_OK : EVB_ESCHEMA);
}

int
evb_proto_head_get_num(const evb_proto_head *h, const char *field, double *val)
{
	bool     is_float, neg = false;
	double   f = 0;
	uint64_t u = 0;
	int      rc;

	if ((rc = head_find_num(h, field, &is_float, &f, &neg, &u)) != EVB_OK) {
		return (rc);
	}
	*val = is_float ? f : neg ? (double) (int64_t) u : (double) u;
	return (EVB_OK);
}

int
evb_proto_head_get_int(const evb_proto_head *h, const char *field, int64_t *val)
{
	bool     is_float, neg = false;
	double   f = 0;
	uint64_t u = 0;
	int      rc;

	if ((rc = head_find_num(h, field, &is_float, &f, &neg, &u)) != EVB_OK) {
		return (rc);
	}
	if (is_float || (!neg && u > INT64_MAX)) {
		return (EVB_ESCHEMA);
	}
	*val = (int64_t) u;
	return (EVB_OK);
}
