/*
 * proto_hostile_test: bytes an attacker or a broken producer sends.
 *
 * Every case asserts the exact error code, a non-empty diag, and that the
 * out-param is untouched. Inputs are copied into a heap block of exactly
 * their length first, so the sanitizer build (EVB_SANITIZE=address,
 * undefined) catches a read one byte past the end, and a decoder that
 * trusted a length header (a map of 2^32-1 entries, a 4 GiB string) would
 * fail that build by allocating it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto/proto.h"
#include "tests/unit/proto_testlib.h"

/* Out-params start as this, to prove a failed call leaves them alone. */
static int sentinel_storage;
#define SENTINEL ((evb_event *) (void *) &sentinel_storage)

/* ---- Byte building ---------------------------------------------------- */

typedef struct bb {
	msgpack_sbuffer sb;
	msgpack_packer  pk;
} bb;

static void
bb_init(bb *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void
bb_fini(bb *b)
{
	msgpack_sbuffer_destroy(&b->sb);
}

static void
bb_raw(bb *b, const void *p, size_t n)
{
	(void) msgpack_sbuffer_write(&b->sb, p, n);
}

static void
bb_str(bb *b, const char *s)
{
	(void) msgpack_pack_str_with_body(&b->pk, s, strlen(s));
}

/*
 * bb_md writes a market_data envelope with room for more entries: the
 * caller writes extra_data data entries, then extra_env envelope entries.
 */
static void
bb_md(bb *b, size_t extra_data, size_t extra_env)
{
	(void) msgpack_pack_map(&b->pk, 2 + extra_env);
	bb_str(b, "type");
	bb_str(b, "market_data");
	bb_str(b, "data");
	(void) msgpack_pack_map(&b->pk, 3 + extra_data);
	bb_str(b, "symbol");
	bb_str(b, "EURUSD");
	bb_str(b, "bid");
	(void) msgpack_pack_double(&b->pk, 1.0841);
	bb_str(b, "ask");
	(void) msgpack_pack_double(&b->pk, 1.0843);
}

/* bb_md_value: market_data with data.x set to the raw bytes v. */
static void
bb_md_value(bb *b, const void *v, size_t n)
{
	bb_md(b, 1, 0);
	bb_str(b, "x");
	bb_raw(b, v, n);
}

/* bb_md_key: market_data with a data entry whose key is the raw bytes k. */
static void
bb_md_key(bb *b, const void *k, size_t n)
{
	bb_md(b, 1, 0);
	bb_raw(b, k, n);
	(void) msgpack_pack_true(&b->pk);
}

/* ---- Checks ----------------------------------------------------------- */

/* heap_copy returns a malloc'd block of exactly n bytes (ASan bounds). */
static uint8_t *
heap_copy(const void *p, size_t n)
{
	uint8_t *c = malloc(n > 0 ? n : 1);

	cr_assert_not_null(c);
	if (n > 0) {
		memcpy(c, p, n);
	}
	return (c);
}

/* expect_decode decodes p[0..n) and asserts want (and a diag if failing). */
static void
expect_decode(const void *p, size_t n, int want, const char *what)
{
	uint8_t   *c   = heap_copy(p, n);
	evb_event *got = SENTINEL;
	evb_diag   d   = { { 0 } };
	int        rc;

	rc = evb_proto_event_decode(&got, c, n, &d);
	cr_assert_eq(
	    rc, want, "%s: want %d, got %d (%s)", what, want, rc, d.msg);
	if (want == EVB_OK) {
		cr_assert_neq(got, SENTINEL);
		evb_proto_event_free(got);
	} else {
		cr_assert_eq(got, SENTINEL, "%s: out written on failure", what);
		cr_assert_neq(d.msg[0], '\0', "%s: empty diag", what);
	}
	/* The same input without a diag must behave the same. */
	got = SENTINEL;
	cr_assert_eq(
	    evb_proto_event_decode(&got, c, n, NULL), want, "%s", what);
	if (want == EVB_OK) {
		evb_proto_event_free(got);
	}
	free(c);
}

/* expect_frame_bytes frame-decodes p[0..n) and asserts want. */
static void
expect_frame_bytes(const void *p, size_t n, int want, const char *what)
{
	uint8_t   *c   = heap_copy(p, n);
	evb_event *got = SENTINEL;
	evb_diag   d   = { { 0 } };
	int        rc;

	rc = evb_proto_frame_decode(&got, c, n, &d);
	cr_assert_eq(
	    rc, want, "%s: want %d, got %d (%s)", what, want, rc, d.msg);
	if (rc == EVB_OK) {
		evb_proto_event_free(got);
	} else {
		cr_assert_eq(got, SENTINEL);
		cr_assert_neq(d.msg[0], '\0');
	}
	free(c);
}

static void
expect_bb(bb *b, int want, const char *what)
{
	expect_decode(b->sb.data, b->sb.size, want, what);
	bb_fini(b);
}

/* valid_md returns a valid market_data event's bytes in b. */
static void
valid_md(bb *b)
{
	bb_init(b);
	bb_md(b, 0, 0);
}

/*
 * expect_in_batch puts the element bytes between two valid events in an
 * array of three and asserts that the middle one gives want and that its
 * neighbours still decode.
 */
static void
expect_in_batch(const void *el, size_t n, int want, const char *what)
{
	bb               b;
	bb               v;
	uint8_t         *c;
	evb_proto_ingest it;
	evb_event       *got;
	evb_diag         d = { { 0 } };
	int              rc;

	valid_md(&v);
	bb_init(&b);
	(void) msgpack_pack_array(&b.pk, 3);
	bb_raw(&b, v.sb.data, v.sb.size);
	bb_raw(&b, el, n);
	bb_raw(&b, v.sb.data, v.sb.size);
	c = heap_copy(b.sb.data, b.sb.size);
	cr_assert_eq(evb_proto_ingest_begin(&it, c, b.sb.size, &d), EVB_OK,
	    "%s: %s", what, d.msg);
	cr_assert_eq(it.count, 3);
	got = NULL;
	cr_assert_eq(evb_proto_ingest_next(&it, &got, &d), EVB_OK, "%s", d.msg);
	evb_proto_event_free(got);
	got = SENTINEL;
	memset(&d, 0, sizeof(d));
	rc = evb_proto_ingest_next(&it, &got, &d);
	cr_assert_eq(rc, want, "%s in a batch: want %d, got %d (%s)", what,
	    want, rc, d.msg);
	cr_assert_eq(it.index - 1, 1);
	if (want == EVB_OK) {
		evb_proto_event_free(got);
	} else {
		cr_assert_eq(got, SENTINEL);
		cr_assert_neq(d.msg[0], '\0');
	}
	got = NULL;
	cr_assert_eq(evb_proto_ingest_next(&it, &got, &d), EVB_OK,
	    "%s: the event after the bad one: %s", what, d.msg);
	evb_proto_event_free(got);
	cr_assert_eq(evb_proto_ingest_next(&it, &got, &d), EVB_EOF);
	free(c);
	bb_fini(&b);
	bb_fini(&v);
}

/* expect_value checks data.x = v alone, and inside a batch. */
static void
expect_value(const void *v, size_t n, int want, const char *what)
{
	bb b;

	bb_init(&b);
	bb_md_value(&b, v, n);
	expect_in_batch(b.sb.data, b.sb.size, want, what);
	expect_bb(&b, want, what);
}

/* expect_key checks a data key k alone, and inside a batch. */
static void
expect_key(const void *k, size_t n, int want, const char *what)
{
	bb b;

	bb_init(&b);
	bb_md_key(&b, k, n);
	expect_in_batch(b.sb.data, b.sb.size, want, what);
	expect_bb(&b, want, what);
}

/* ---- Truncation and trailing bytes ------------------------------------ */

Test(hostile, every_prefix_of_a_valid_event_is_malformed, .timeout = 60)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		msgpack_sbuffer sb;

		msgpack_sbuffer_init(&sb);
		ptl_sbuf_json(&sb, ptl_full_json[t], &ptl_shapes[0]);
		expect_decode(sb.data, sb.size, EVB_OK, ptl_type_names[t]);
		for (size_t k = 0; k < sb.size; k++) {
			char what[64];

			(void) snprintf(what, sizeof(what), "%s prefix %zu/%zu",
			    ptl_type_names[t], k, sb.size);
			expect_decode(sb.data, k, EVB_EMALFORMED, what);
		}
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(hostile, every_prefix_fails_extent, .timeout = 60)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	ptl_sbuf_json(&sb, ptl_full_json[5], &ptl_shapes[1]);
	for (size_t k = 0; k < sb.size; k++) {
		uint8_t *c = heap_copy(sb.data, k);
		size_t   n = 12345;
		evb_diag d = { { 0 } };

		cr_assert_eq(evb_proto_msg_extent(c, k, &n, &d), EVB_EMALFORMED,
		    "prefix %zu: %s", k, d.msg);
		cr_assert_eq(n, 12345);
		cr_assert_neq(d.msg[0], '\0');
		free(c);
	}
	msgpack_sbuffer_destroy(&sb);
}

Test(hostile, every_prefix_of_a_frame_is_malformed, .timeout = 60)
{
	static const char topic[] = "user_action.u-2";
	msgpack_sbuffer   sb;

	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_write(&sb, topic, sizeof(topic));
	ptl_sbuf_json(&sb, ptl_full_json[5], &ptl_shapes[1]);
	expect_frame_bytes(sb.data, sb.size, EVB_OK, "whole frame");
	for (size_t k = 0; k < sb.size; k++) {
		char what[48];

		(void) snprintf(what, sizeof(what), "frame prefix %zu", k);
		expect_frame_bytes(sb.data, k, EVB_EMALFORMED, what);
	}
	msgpack_sbuffer_destroy(&sb);
}

Test(hostile, every_prefix_of_an_ingest_message_ends_cleanly, .timeout = 60)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	(void) msgpack_pack_array(&pk, 2);
	ptl_sbuf_json(&sb, ptl_full_json[0], &ptl_shapes[0]);
	ptl_sbuf_json(&sb, ptl_full_json[6], &ptl_shapes[2]);
	for (size_t k = 0; k < sb.size; k++) {
		uint8_t         *c = heap_copy(sb.data, k);
		evb_proto_ingest it;
		evb_diag         d     = { { 0 } };
		size_t           ok    = 0;
		size_t           bad   = 0;
		evb_event       *dummy = SENTINEL;
		int              rc;

		rc = evb_proto_ingest_begin(&it, c, k, &d);
		if (k == 0) {
			cr_assert_eq(rc, EVB_EMALFORMED);
		}
		if (rc != EVB_OK) {
			cr_assert_eq(
			    rc, EVB_EMALFORMED, "prefix %zu: %d", k, rc);
			free(c);
			continue;
		}
		/* Bounded: more than count + 1 calls would be a bug. */
		for (size_t i = 0; i < 4; i++) {
			evb_event *got = SENTINEL;

			rc = evb_proto_ingest_next(&it, &got, &d);
			if (rc == EVB_EOF) {
				break;
			}
			if (rc == EVB_OK) {
				ok++;
				evb_proto_event_free(got);
			} else {
				cr_assert_eq(rc, EVB_EMALFORMED,
				    "prefix %zu: %d %s", k, rc, d.msg);
				cr_assert_eq(got, SENTINEL);
				bad++;
			}
		}
		cr_assert_eq(rc, EVB_EOF, "prefix %zu never ended", k);
		/* A truncated batch loses the cut event and everything after.
		 */
		cr_assert_eq(bad, 1, "prefix %zu: %zu bad", k, bad);
		cr_assert_lt(ok, 2);
		cr_assert_eq(evb_proto_ingest_next(&it, &dummy, &d), EVB_EOF);
		free(c);
	}
	msgpack_sbuffer_destroy(&sb);
}

Test(hostile, trailing_bytes_are_malformed, .timeout = 30)
{
	static const uint8_t tails[][2] = { { 0x00 }, { 0xc0 }, { 0xc1 },
		{ 0x80 }, { 0x91, 0x01 } };
	bb                   v;

	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		bb  b;
		int n = (tails[i][0] == 0x91) ? 2 : 1;

		valid_md(&v);
		bb_init(&b);
		bb_raw(&b, v.sb.data, v.sb.size);
		bb_raw(&b, tails[i], (size_t) n);
		expect_bb(&b, EVB_EMALFORMED, "trailing byte");
		bb_fini(&v);
	}
	/* Two whole events are not one. */
	valid_md(&v);
	{
		bb b;

		bb_init(&b);
		bb_raw(&b, v.sb.data, v.sb.size);
		bb_raw(&b, v.sb.data, v.sb.size);
		expect_bb(&b, EVB_EMALFORMED, "two events");
	}
	bb_fini(&v);
}

Test(hostile, empty_input_is_malformed, .timeout = 30)
{
	evb_event       *got = SENTINEL;
	evb_diag         d   = { { 0 } };
	evb_proto_ingest it;
	size_t           n = 7;

	cr_assert_eq(evb_proto_event_decode(&got, NULL, 0, &d), EVB_EMALFORMED);
	cr_assert_neq(d.msg[0], '\0');
	cr_assert_eq(got, SENTINEL);
	cr_assert_eq(evb_proto_frame_decode(&got, NULL, 0, &d), EVB_EMALFORMED);
	cr_assert_eq(evb_proto_ingest_begin(&it, NULL, 0, &d), EVB_EMALFORMED);
	cr_assert_eq(evb_proto_msg_extent(NULL, 0, &n, &d), EVB_EMALFORMED);
	cr_assert_eq(n, 7);
	cr_assert_eq(
	    evb_proto_event_from_json(&got, "", 0, &d), EVB_EMALFORMED);
	cr_assert_eq(got, SENTINEL);
}

Test(hostile, reserved_byte_0xc1_is_malformed, .timeout = 30)
{
	static const uint8_t c1[] = { 0xc1 };

	expect_decode(c1, 1, EVB_EMALFORMED, "lone 0xc1");
	expect_value(c1, 1, EVB_EMALFORMED, "0xc1 as a value");
	expect_key(c1, 1, EVB_EMALFORMED, "0xc1 as a key");
}

/* ---- Lying length headers --------------------------------------------- */

Test(hostile, map_claiming_2pow32_entries, .timeout = 30)
{
	static const uint8_t map32[]      = { 0xdf, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t map32_some[] = { 0xdf, 0xff, 0xff, 0xff, 0xff,
		0xa1, 'a', 0x01, 0xa1, 'b', 0x02 };
	bb                   b;

	/* Over EVB_PROTO_MAX_FIELDS: refused from the header alone. */
	expect_decode(map32, sizeof(map32), EVB_ETOOBIG, "top map32");
	expect_decode(map32_some, sizeof(map32_some), EVB_ETOOBIG,
	    "top map32 with entries");
	bb_init(&b);
	(void) msgpack_pack_map(&b.pk, 2);
	bb_str(&b, "type");
	bb_str(&b, "market_data");
	bb_str(&b, "data");
	bb_raw(&b, map32, sizeof(map32));
	expect_bb(&b, EVB_ETOOBIG, "data map32");
	bb_init(&b);
	bb_md_value(&b, map32_some, sizeof(map32_some));
	expect_bb(&b, EVB_ETOOBIG, "data.x map32");
}

Test(hostile, array_claiming_2pow32_elements, .timeout = 30)
{
	static const uint8_t arr32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01,
		0x02 };
	evb_proto_ingest     it;
	evb_diag             d = { { 0 } };
	uint8_t             *c = heap_copy(arr32, sizeof(arr32));
	bb                   b;

	/* As an ingest message: more than EVB_PROTO_MAX_BATCH events. */
	cr_assert_eq(evb_proto_ingest_begin(&it, c, sizeof(arr32), &d),
	    EVB_ETOOBIG, "%s", d.msg);
	cr_assert_neq(d.msg[0], '\0');
	free(c);
	/* Inside an event: more than EVB_PROTO_MAX_ARRAY elements. */
	bb_init(&b);
	bb_md_value(&b, arr32, sizeof(arr32));
	expect_bb(&b, EVB_ETOOBIG, "data.x array32");
}

Test(hostile, batch_just_over_max_batch, .timeout = 30)
{
	uint8_t          hdr[5] = { 0xdd };
	evb_proto_ingest it;
	evb_diag         d = { { 0 } };
	uint8_t         *c;

	evb_put_be32(hdr + 1, EVB_PROTO_MAX_BATCH + 1);
	c = heap_copy(hdr, sizeof(hdr));
	cr_assert_eq(
	    evb_proto_ingest_begin(&it, c, sizeof(hdr), &d), EVB_ETOOBIG);
	free(c);
}

Test(hostile, batch_claiming_max_batch_but_holding_one, .timeout = 30)
{
	bb               b;
	bb               v;
	uint8_t          hdr[5] = { 0xdd };
	uint8_t         *c;
	evb_proto_ingest it;
	evb_event       *got = NULL;
	evb_diag         d   = { { 0 } };
	int              rc;

	evb_put_be32(hdr + 1, EVB_PROTO_MAX_BATCH);
	valid_md(&v);
	bb_init(&b);
	bb_raw(&b, hdr, sizeof(hdr));
	bb_raw(&b, v.sb.data, v.sb.size);
	c  = heap_copy(b.sb.data, b.sb.size);
	rc = evb_proto_ingest_begin(&it, c, b.sb.size, &d);
	if (rc == EVB_OK) {
		cr_assert_eq(evb_proto_ingest_next(&it, &got, &d), EVB_OK);
		evb_proto_event_free(got);
		got = SENTINEL;
		cr_assert_eq(
		    evb_proto_ingest_next(&it, &got, &d), EVB_EMALFORMED);
		cr_assert_eq(got, SENTINEL);
		cr_assert_eq(evb_proto_ingest_next(&it, &got, &d), EVB_EOF);
	} else {
		/* Refusing a header that cannot fit the bytes is also fine. */
		cr_assert_eq(rc, EVB_EMALFORMED, "%d %s", rc, d.msg);
	}
	free(c);
	bb_fini(&b);
	bb_fini(&v);
}

Test(hostile, str32_claiming_4gib, .timeout = 30)
{
	static const uint8_t str32[] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a',
		'b' };
	static const uint8_t bin32[] = { 0xc6, 0xff, 0xff, 0xff, 0xff, 'a' };
	bb                   b;

	bb_init(&b);
	bb_md_value(&b, str32, sizeof(str32));
	expect_bb(&b, EVB_ETOOBIG, "data.x str32 4 GiB");
	bb_init(&b);
	bb_md_key(&b, str32, sizeof(str32));
	expect_bb(&b, EVB_ETOOBIG, "key str32 4 GiB");
	bb_init(&b);
	bb_md_key(&b, bin32, sizeof(bin32));
	expect_bb(&b, EVB_ETOOBIG, "key bin32 4 GiB");
	expect_decode(str32, sizeof(str32), EVB_ETOOBIG, "top str32 4 GiB");
}

/* ---- Depth ------------------------------------------------------------ */

/* deep_value writes n nested containers (arrays or 1-entry maps). */
static uint8_t *
deep_value(size_t n, bool maps, size_t *len)
{
	size_t   per = maps ? 3 : 1;
	uint8_t *p   = malloc(n * per + 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++) {
		if (maps) {
			p[i * 3]     = 0x81;
			p[i * 3 + 1] = 0xa1;
			p[i * 3 + 2] = 'k';
		} else {
			p[i] = 0x91;
		}
	}
	p[n * per] = maps ? 0x80 : 0x90; /* innermost: empty */
	*len       = n * per + 1;
	return (p);
}

Test(hostile, nesting_10000_deep, .timeout = 30)
{
	for (int maps = 0; maps < 2; maps++) {
		size_t           n;
		uint8_t         *v = deep_value(10000, maps, &n);
		evb_proto_ingest it;
		evb_diag         d   = { { 0 } };
		size_t           ext = 0;
		evb_event       *got = SENTINEL;
		bb               b;

		bb_init(&b);
		bb_md_value(&b, v, n);
		expect_in_batch(
		    b.sb.data, b.sb.size, EVB_ETOOBIG, "deep in data");
		expect_bb(&b, EVB_ETOOBIG, maps ? "deep maps" : "deep arrays");
		/* The same at the top of every entry point. */
		expect_decode(v, n, EVB_ETOOBIG, "deep at the top");
		cr_assert_eq(
		    evb_proto_msg_extent(v, n, &ext, &d), EVB_OK, "%s", d.msg);
		cr_assert_eq(ext, n);
		cr_assert_eq(evb_proto_ingest_begin(&it, v, n, &d), EVB_OK);
		cr_assert_eq(evb_proto_ingest_next(&it, &got, &d), EVB_ETOOBIG,
		    "%s", d.msg);
		cr_assert_eq(got, SENTINEL);
		free(v);
	}
}

Test(hostile, depth_limit_is_exact, .timeout = 30)
{
	/*
	 * The envelope is depth 1 and data depth 2, so data.x can open
	 * EVB_PROTO_MAX_DEPTH - 2 containers and no more.
	 */
	for (int maps = 0; maps < 2; maps++) {
		size_t   n;
		uint8_t *v = deep_value(EVB_PROTO_MAX_DEPTH - 3, maps, &n);
		bb       b;

		bb_init(&b);
		bb_md_value(&b, v, n);
		expect_bb(&b, EVB_OK, "data.x at the depth limit");
		free(v);
		v = deep_value(EVB_PROTO_MAX_DEPTH - 2, maps, &n);
		bb_init(&b);
		bb_md_value(&b, v, n);
		expect_bb(&b, EVB_ETOOBIG, "data.x one past the depth limit");
		free(v);
	}
}

/* ---- Keys ------------------------------------------------------------- */

Test(hostile, non_string_keys_are_malformed, .timeout = 30)
{
	static const struct {
		uint8_t     bytes[8];
		size_t      n;
		const char *what;
	} keys[] = {
		{ { 0x07 }, 1, "int key" },
		{ { 0xcd, 0x01, 0x00 }, 3, "uint16 key" },
		{ { 0xff }, 1, "negative int key" },
		{ { 0xc0 }, 1, "nil key" },
		{ { 0xc3 }, 1, "true key" },
		{ { 0x80 }, 1, "map key" },
		{ { 0x81, 0xa1, 'a', 0x01 }, 4, "non-empty map key" },
		{ { 0x91, 0xa1, 'a' }, 3, "array key" },
		{ { 0xca, 0x3f, 0x80, 0x00, 0x00 }, 5, "float32 key" },
		{ { 0xc4, 0x01, 'a' }, 0, "bin key with a value" },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		bb b;

		if (keys[i].n == 0) {
			/* Sanity: a bin key is a valid name. */
			expect_key(keys[i].bytes, 3, EVB_OK, keys[i].what);
			continue;
		}
		expect_key(
		    keys[i].bytes, keys[i].n, EVB_EMALFORMED, keys[i].what);
		/* And as an envelope key. */
		bb_init(&b);
		bb_md(&b, 0, 1);
		bb_raw(&b, keys[i].bytes, keys[i].n);
		bb_str(&b, "v");
		expect_bb(&b, EVB_EMALFORMED, keys[i].what);
	}
}

Test(hostile, non_string_keys_in_nested_maps, .timeout = 30)
{
	static const uint8_t nested[] = { 0x81, 0x01, 0xa1, 'v' };
	bb                   b;

	expect_value(nested, sizeof(nested), EVB_EMALFORMED, "int key nested");
	/* user_action details is a free map; its keys are strings too. */
	bb_init(&b);
	(void) msgpack_pack_map(&b.pk, 2);
	bb_str(&b, "type");
	bb_str(&b, "user_action");
	bb_str(&b, "data");
	(void) msgpack_pack_map(&b.pk, 3);
	bb_str(&b, "user_id");
	bb_str(&b, "u-1");
	bb_str(&b, "action");
	bb_str(&b, "login");
	bb_str(&b, "details");
	bb_raw(&b, nested, sizeof(nested));
	expect_bb(&b, EVB_EMALFORMED, "int key in details");
}

Test(hostile, duplicate_keys_are_malformed, .timeout = 30)
{
	bb b;

	/* Envelope: type twice, with different values. */
	bb_init(&b);
	(void) msgpack_pack_map(&b.pk, 3);
	bb_str(&b, "type");
	bb_str(&b, "market_data");
	bb_str(&b, "type");
	bb_str(&b, "user_action");
	bb_str(&b, "data");
	(void) msgpack_pack_map(&b.pk, 3);
	bb_str(&b, "symbol");
	bb_str(&b, "EURUSD");
	bb_str(&b, "bid");
	(void) msgpack_pack_double(&b.pk, 1.0841);
	bb_str(&b, "ask");
	(void) msgpack_pack_double(&b.pk, 1.0843);
	expect_bb(&b, EVB_EMALFORMED, "type twice");
	/* Data: symbol twice, the second one invalid. */
	bb_init(&b);
	bb_md(&b, 1, 0);
	bb_str(&b, "symbol");
	bb_str(&b, "x");
	expect_in_batch(b.sb.data, b.sb.size, EVB_EMALFORMED, "symbol twice");
	expect_bb(&b, EVB_EMALFORMED, "symbol twice");
	/* An unknown key twice, once as str and once as bin. */
	bb_init(&b);
	bb_md(&b, 2, 0);
	bb_str(&b, "note");
	bb_str(&b, "a");
	(void) msgpack_pack_bin_with_body(&b.pk, "note", 4);
	bb_str(&b, "b");
	expect_bb(&b, EVB_EMALFORMED, "note twice (str, bin)");
}

Test(hostile, duplicate_empty_keys_in_a_nested_map, .timeout = 30)
{
	/*
	 * Found by fuzz_proto_decode (corpus crash-duplicate-empty-keys.mp):
	 * the pairwise check compared two empty keys with memcmp(NULL, ...).
	 */
	static const uint8_t dup[] = { 0x82, 0xa0, 0x01, 0xa0, 0x02 };
	static const uint8_t top[] = { 0x91, 0x82, 0xa0, 0x01, 0xa0, 0x02 };

	expect_value(dup, sizeof(dup), EVB_EMALFORMED, "{\"\":1,\"\":2}");
	expect_decode(top, sizeof(top), EVB_EMALFORMED, "[{\"\":1,\"\":2}]");
}

/* ---- UTF-8 ------------------------------------------------------------ */

static const struct {
	const char *bytes;
	const char *what;
} bad_utf8[] = {
	{ "\xff", "0xff" },
	{ "\xfe", "0xfe" },
	{ "\x80", "lone continuation" },
	{ "ab\xc3", "truncated 2-byte" },
	{ "\xe2\x82", "truncated 3-byte" },
	{ "\xc3\x28", "bad continuation" },
	{ "\xc0\x80", "overlong NUL" },
	{ "\xc1\xbf", "overlong 2-byte" },
	{ "\xe0\x80\xaf", "overlong 3-byte" },
	{ "\xf0\x80\x80\xaf", "overlong 4-byte" },
	{ "\xed\xa0\x80", "high surrogate" },
	{ "\xed\xbf\xbf", "low surrogate" },
	{ "\xed\xa0\xbd\xed\xb8\x80", "surrogate pair (CESU-8)" },
	{ "\xf4\x90\x80\x80", "above U+10FFFF" },
	{ "\xf5\x80\x80\x80", "lead 0xf5" },
	{ "\xf8\x88\x80\x80\x80", "5-byte form" },
};

Test(hostile, invalid_utf8_in_a_value, .timeout = 30)
{
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		bb b;

		bb_init(&b);
		(void) msgpack_pack_str_with_body(
		    &b.pk, bad_utf8[i].bytes, strlen(bad_utf8[i].bytes));
		expect_value(
		    b.sb.data, b.sb.size, EVB_EMALFORMED, bad_utf8[i].what);
		bb_fini(&b);
	}
}

/*
 * The ASCII check reads strings in words, the tail as a word that
 * overlaps the one before: a NUL or a non-ASCII byte must be found at
 * every position of every length around the word sizes, and a clean
 * string of each length must pass.
 */
Test(hostile, nul_and_high_bytes_found_at_every_position, .timeout = 30)
{
	char s[40];
	char what[64];

	for (size_t len = 1; len <= 33; len++) {
		bb b;

		memset(s, 'a', len);
		bb_init(&b);
		(void) msgpack_pack_str_with_body(&b.pk, s, len);
		(void) snprintf(what, sizeof(what), "clean, %zu bytes", len);
		expect_value(b.sb.data, b.sb.size, EVB_OK, what);
		bb_fini(&b);
		for (size_t at = 0; at < len; at++) {
			static const char bad[] = { '\0', '\x80', '\xff' };

			for (size_t k = 0; k < sizeof(bad); k++) {
				memset(s, 'a', len);
				s[at] = bad[k];
				bb_init(&b);
				(void) msgpack_pack_str_with_body(
				    &b.pk, s, len);
				(void) snprintf(what, sizeof(what),
				    "byte 0x%02x at %zu of %zu",
				    (unsigned) (uint8_t) bad[k], at, len);
				expect_value(
				    b.sb.data, b.sb.size, EVB_EMALFORMED, what);
				bb_fini(&b);
			}
		}
	}
}

/*
 * Keys of a map below data are compared with each other for duplicates
 * in words, the last overlapping the one before: two keys one byte apart,
 * at any position of any length to 40, are distinct, and equal keys of
 * every length are a duplicate.
 */
Test(hostile, keys_one_byte_apart_are_distinct_at_every_length, .timeout = 30)
{
	char k1[41], k2[41];
	char what[64];

	for (size_t len = 1; len <= 40; len++) {
		memset(k1, 'k', len);
		for (size_t at = 0; at <= len; at++) {
			bb b;

			memcpy(k2, k1, len);
			if (at < len) {
				k2[at] = 'j';
			}
			bb_init(&b);
			(void) msgpack_pack_map(&b.pk, 2);
			(void) msgpack_pack_str_with_body(&b.pk, k1, len);
			(void) msgpack_pack_int(&b.pk, 1);
			(void) msgpack_pack_str_with_body(&b.pk, k2, len);
			(void) msgpack_pack_int(&b.pk, 2);
			(void) snprintf(what, sizeof(what),
			    "%zu-byte keys, %s %zu", len,
			    at < len ? "differing at" : "equal,", at);
			expect_value(b.sb.data, b.sb.size,
			    at < len ? EVB_OK : EVB_EMALFORMED, what);
			bb_fini(&b);
		}
	}
}

/*
 * expect_diag decodes p[0..n), expects EVB_EMALFORMED, and asserts that
 * the diag holds want.
 */
static void
expect_diag(const void *p, size_t n, const char *want)
{
	uint8_t   *c   = heap_copy(p, n);
	evb_event *got = SENTINEL;
	evb_diag   d   = { { 0 } };

	cr_assert_eq(evb_proto_event_decode(&got, c, n, &d), EVB_EMALFORMED);
	cr_assert_not_null(
	    strstr(d.msg, want), "want '%s' in '%s'", want, d.msg);
	free(c);
}

/*
 * The words and offsets of a bad string's message, for a fixstr (which
 * the decoder's fast path leaves to the general one when it is not valid
 * UTF-8) and a str8, as a value and as a key: where the string's header
 * is in the input, and which of its bytes is the first bad one.
 */
Test(hostile, a_bad_string_is_named_by_its_offset_and_its_bad_byte,
    .timeout = 30)
{
	static const struct {
		const char *bytes;
		size_t      n;
		size_t      bad; /* Offset of the first bad byte. */
		const char *what;
	} cases[] = {
		{ "ab\377cd", 5, 2, "invalid UTF-8" },
		{ "abc\0d", 5, 3, "a NUL character" },
		{ "\xc3\x28", 2, 0, "invalid UTF-8" },
		{ "0123456789012345678901234567890123456789\xed\xa0\x80", 43,
		    40, "invalid UTF-8" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[128];
		bb   s;
		bb   b;

		bb_init(&s);
		(void) msgpack_pack_str_with_body(
		    &s.pk, cases[i].bytes, cases[i].n);
		// As the last value of the event: its header is s.sb.size bytes
		// before the end.
		bb_init(&b);
		bb_md_value(&b, s.sb.data, s.sb.size);
		(void) snprintf(want, sizeof(want),
		    "string at byte %zu has %s at its byte %zu",
		    b.sb.size - s.sb.size, cases[i].what, cases[i].bad);
		expect_diag(b.sb.data, b.sb.size, want);
		bb_fini(&b);
		// As a key, followed by its one-byte value (true).
		bb_init(&b);
		bb_md_key(&b, s.sb.data, s.sb.size);
		(void) snprintf(want, sizeof(want),
		    "string at byte %zu has %s at its byte %zu",
		    b.sb.size - s.sb.size - 1, cases[i].what, cases[i].bad);
		expect_diag(b.sb.data, b.sb.size, want);
		bb_fini(&b);
		bb_fini(&s);
	}
}

Test(hostile, invalid_utf8_in_a_known_field, .timeout = 30)
{
	/* system_health.message is free text, so only UTF-8 can refuse it. */
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		bb b;

		bb_init(&b);
		(void) msgpack_pack_map(&b.pk, 2);
		bb_str(&b, "type");
		bb_str(&b, "system_health");
		bb_str(&b, "data");
		(void) msgpack_pack_map(&b.pk, 3);
		bb_str(&b, "component");
		bb_str(&b, "broker");
		bb_str(&b, "status");
		bb_str(&b, "down");
		bb_str(&b, "message");
		(void) msgpack_pack_str_with_body(
		    &b.pk, bad_utf8[i].bytes, strlen(bad_utf8[i].bytes));
		expect_bb(&b, EVB_EMALFORMED, bad_utf8[i].what);
	}
}

Test(hostile, invalid_utf8_in_a_key, .timeout = 30)
{
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		bb  b;
		bb  k;
		int rc;

		bb_init(&b);
		(void) msgpack_pack_str_with_body(
		    &b.pk, bad_utf8[i].bytes, strlen(bad_utf8[i].bytes));
		expect_key(
		    b.sb.data, b.sb.size, EVB_EMALFORMED, bad_utf8[i].what);
		bb_fini(&b);
		/* A bin key is still a name, so it must be UTF-8 too. */
		bb_init(&k);
		rc = msgpack_pack_bin_with_body(
		    &k.pk, bad_utf8[i].bytes, strlen(bad_utf8[i].bytes));
		cr_assert_eq(rc, 0);
		expect_key(
		    k.sb.data, k.sb.size, EVB_EMALFORMED, bad_utf8[i].what);
		bb_fini(&k);
	}
}

/*
 * A lead byte at the end of a string is invalid whatever byte follows
 * the string in the message: here the next key's fixstr header (0xa1),
 * which reads as a continuation byte if the check looks past the string.
 */
Test(hostile, a_truncated_sequence_ends_no_string, .timeout = 30)
{
	static const char *const cut[] = { "ab\xc3", "\xe2\x82",
		"\xf0\x9f\x98" };

	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		bb b;

		bb_init(&b);
		bb_md(&b, 2, 0);
		bb_str(&b, "x");
		bb_str(&b, cut[i]);
		bb_str(&b, "y");
		(void) msgpack_pack_true(&b.pk);
		expect_bb(&b, EVB_EMALFORMED, cut[i]);
		/* The same as a key, followed by its value's fixstr. */
		bb_init(&b);
		bb_md(&b, 1, 0);
		bb_str(&b, cut[i]);
		bb_str(&b, "z");
		expect_bb(&b, EVB_EMALFORMED, cut[i]);
	}
}

/* Binary values are refused wherever they are: only str values are
 * supported (a bin key is read as a name, invalid_utf8_in_a_key). */
Test(hostile, a_binary_value_is_malformed, .timeout = 30)
{
	bb b;

	bb_init(&b);
	(void) msgpack_pack_bin_with_body(&b.pk, "abc", 3);
	expect_value(b.sb.data, b.sb.size, EVB_EMALFORMED, "bin in data");
	bb_fini(&b);
	bb_init(&b);
	bb_md(&b, 1, 0);
	bb_str(&b, "x");
	(void) msgpack_pack_map(&b.pk, 1);
	bb_str(&b, "inner");
	(void) msgpack_pack_bin_with_body(&b.pk, "abc", 3);
	expect_bb(&b, EVB_EMALFORMED, "bin in a nested map");
	bb_init(&b);
	bb_md(&b, 1, 0);
	bb_str(&b, "x");
	(void) msgpack_pack_array(&b.pk, 1);
	(void) msgpack_pack_bin_with_body(&b.pk, "", 0);
	expect_bb(&b, EVB_EMALFORMED, "empty bin in an array");
}

Test(hostile, valid_multibyte_utf8_is_kept, .timeout = 30)
{
	static const char *const good[] = { "caf\xc3\xa9", "\xe2\x82\xac 5",
		"\xf0\x9f\x98\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
		"\xed\x9f\xbf" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		bb b;

		bb_init(&b);
		(void) msgpack_pack_str_with_body(
		    &b.pk, good[i], strlen(good[i]));
		expect_value(b.sb.data, b.sb.size, EVB_OK, good[i]);
		bb_fini(&b);
		bb_init(&b);
		(void) msgpack_pack_str_with_body(
		    &b.pk, good[i], strlen(good[i]));
		expect_key(b.sb.data, b.sb.size, EVB_OK, good[i]);
		bb_fini(&b);
	}
}

/* ---- NaN and infinities ----------------------------------------------- */

static void
pack_nonfinite(bb *b, int which, bool f32)
{
	double v = which == 0 ? NAN : which == 1 ? INFINITY : -INFINITY;

	if (f32) {
		(void) msgpack_pack_float(&b->pk, (float) v);
	} else {
		(void) msgpack_pack_double(&b->pk, v);
	}
}

Test(hostile, nan_and_inf_are_malformed_everywhere, .timeout = 30)
{
	static const char *const names[] = { "NaN", "+Inf", "-Inf" };

	for (int which = 0; which < 3; which++) {
		for (int f32 = 0; f32 < 2; f32++) {
			char what[64];
			bb   b;

			/* In a known number field (market_data.bid). */
			(void) snprintf(what, sizeof(what), "bid %s %s",
			    names[which], f32 ? "float32" : "float64");
			bb_init(&b);
			(void) msgpack_pack_map(&b.pk, 2);
			bb_str(&b, "type");
			bb_str(&b, "market_data");
			bb_str(&b, "data");
			(void) msgpack_pack_map(&b.pk, 3);
			bb_str(&b, "symbol");
			bb_str(&b, "EURUSD");
			bb_str(&b, "bid");
			pack_nonfinite(&b, which, f32 != 0);
			bb_str(&b, "ask");
			(void) msgpack_pack_double(&b.pk, 1.0843);
			expect_in_batch(
			    b.sb.data, b.sb.size, EVB_EMALFORMED, what);
			expect_bb(&b, EVB_EMALFORMED, what);
			/* In an unknown data field. */
			(void) snprintf(what, sizeof(what), "data.x %s %s",
			    names[which], f32 ? "float32" : "float64");
			bb_init(&b);
			bb_md(&b, 1, 0);
			bb_str(&b, "x");
			pack_nonfinite(&b, which, f32 != 0);
			expect_bb(&b, EVB_EMALFORMED, what);
			/* In an unknown envelope field, inside an array. */
			(void) snprintf(what, sizeof(what), "envelope.y %s %s",
			    names[which], f32 ? "float32" : "float64");
			bb_init(&b);
			bb_md(&b, 0, 1);
			bb_str(&b, "y");
			(void) msgpack_pack_array(&b.pk, 2);
			(void) msgpack_pack_double(&b.pk, 1.0);
			pack_nonfinite(&b, which, f32 != 0);
			expect_bb(&b, EVB_EMALFORMED, what);
		}
	}
}

Test(hostile, extremes_that_are_finite_pass, .timeout = 30)
{
	bb b;

	bb_init(&b);
	bb_md(&b, 3, 0);
	bb_str(&b, "max");
	(void) msgpack_pack_double(&b.pk, 1.7976931348623157e308);
	bb_str(&b, "tiny");
	(void) msgpack_pack_double(&b.pk, 4.9406564584124654e-324);
	bb_str(&b, "negzero");
	(void) msgpack_pack_float(&b.pk, -0.0f);
	expect_bb(&b, EVB_OK, "finite extremes");
}

/* ---- Size limits ------------------------------------------------------ */

static void
expect_str_len(size_t n, bool as_key, int want)
{
	char *s = malloc(n);
	char  what[64];
	bb    b;

	cr_assert_not_null(s);
	memset(s, 's', n);
	bb_init(&b);
	(void) msgpack_pack_str_with_body(&b.pk, s, n);
	(void) snprintf(
	    what, sizeof(what), "%s of %zu bytes", as_key ? "key" : "value", n);
	if (as_key) {
		expect_key(b.sb.data, b.sb.size, want, what);
	} else {
		expect_value(b.sb.data, b.sb.size, want, what);
	}
	bb_fini(&b);
	free(s);
}

Test(hostile, string_limit_is_exact, .timeout = 30)
{
	expect_str_len(EVB_PROTO_MAX_STR, false, EVB_OK);
	expect_str_len(EVB_PROTO_MAX_STR + 1, false, EVB_ETOOBIG);
	expect_str_len(EVB_PROTO_MAX_STR, true, EVB_OK);
	expect_str_len(EVB_PROTO_MAX_STR + 1, true, EVB_ETOOBIG);
}

/* fields_event: market_data whose data map has n entries in total. */
static void
fields_event(bb *b, size_t n)
{
	bb_init(b);
	bb_md(b, n - 3, 0);
	for (size_t i = 3; i < n; i++) {
		char k[24]; // "f" and any size_t.

		(void) snprintf(k, sizeof(k), "f%zu", i);
		bb_str(b, k);
		(void) msgpack_pack_uint64(&b->pk, i);
	}
}

Test(hostile, map_entry_limit_is_exact, .timeout = 30)
{
	bb b;

	fields_event(&b, EVB_PROTO_MAX_FIELDS);
	expect_bb(&b, EVB_OK, "data with MAX_FIELDS entries");
	fields_event(&b, EVB_PROTO_MAX_FIELDS + 1);
	expect_in_batch(b.sb.data, b.sb.size, EVB_ETOOBIG, "MAX_FIELDS + 1");
	expect_bb(&b, EVB_ETOOBIG, "data with MAX_FIELDS + 1 entries");
	/* The envelope itself. */
	bb_init(&b);
	bb_md(&b, 0, EVB_PROTO_MAX_FIELDS - 1);
	for (size_t i = 0; i < EVB_PROTO_MAX_FIELDS - 1; i++) {
		char k[16];

		(void) snprintf(k, sizeof(k), "e%zu", i);
		bb_str(&b, k);
		(void) msgpack_pack_nil(&b.pk);
	}
	expect_bb(&b, EVB_ETOOBIG, "envelope with MAX_FIELDS + 1 entries");
}

Test(hostile, array_limit_is_exact, .timeout = 30)
{
	for (size_t n = EVB_PROTO_MAX_ARRAY; n <= EVB_PROTO_MAX_ARRAY + 1;
	     n++) {
		bb b;

		bb_init(&b);
		(void) msgpack_pack_array(&b.pk, n);
		for (size_t i = 0; i < n; i++) {
			(void) msgpack_pack_uint8(&b.pk, 1);
		}
		expect_value(b.sb.data, b.sb.size,
		    n > EVB_PROTO_MAX_ARRAY ? EVB_ETOOBIG : EVB_OK, "array");
		bb_fini(&b);
	}
}

Test(hostile, event_over_max_event_bytes, .timeout = 30)
{
	/* 17 strings of 4000 bytes: every one in limits, the sum is not. */
	size_t n = EVB_PROTO_MAX_EVENT_BYTES / 4000 + 1;
	char  *s = malloc(4000);
	bb     b;

	cr_assert_not_null(s);
	memset(s, 'z', 4000);
	bb_init(&b);
	bb_md(&b, n, 0);
	for (size_t i = 0; i < n; i++) {
		char k[16];

		(void) snprintf(k, sizeof(k), "big%zu", i);
		bb_str(&b, k);
		(void) msgpack_pack_str_with_body(&b.pk, s, 4000);
	}
	cr_assert_gt(b.sb.size, EVB_PROTO_MAX_EVENT_BYTES);
	expect_in_batch(b.sb.data, b.sb.size, EVB_ETOOBIG, "big event");
	expect_bb(&b, EVB_ETOOBIG, "event over MAX_EVENT_BYTES");
	free(s);
}

/* ---- Other kinds ------------------------------------------------------ */

Test(hostile, ext_types_are_malformed, .timeout = 30)
{
	static const struct {
		uint8_t     bytes[8];
		size_t      n;
		const char *what;
	} exts[] = {
		{ { 0xd4, 0x01, 0xaa }, 3, "fixext1" },
		{ { 0xd5, 0x01, 0xaa, 0xbb }, 4, "fixext2" },
		{ { 0xd6, 0xff, 1, 2, 3, 4 }, 6, "fixext4 timestamp32" },
		{ { 0xc7, 0x00, 0x05 }, 3, "ext8 empty" },
		{ { 0xc7, 0x02, 0x05, 1, 2 }, 5, "ext8" },
		{ { 0xc8, 0x00, 0x01, 0x05, 9 }, 5, "ext16" },
		{ { 0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 9 }, 7, "ext32" },
	};

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		bb b;

		expect_value(
		    exts[i].bytes, exts[i].n, EVB_EMALFORMED, exts[i].what);
		expect_key(
		    exts[i].bytes, exts[i].n, EVB_EMALFORMED, exts[i].what);
		/* As the envelope ts, where a timestamp ext might sneak in. */
		bb_init(&b);
		bb_md(&b, 0, 1);
		bb_str(&b, "ts");
		bb_raw(&b, exts[i].bytes, exts[i].n);
		expect_bb(&b, EVB_EMALFORMED, exts[i].what);
	}
}

Test(hostile, ext_claiming_4gib, .timeout = 30)
{
	static const uint8_t ext32[] = { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01 };
	bb                   b;

	bb_init(&b);
	bb_md_value(&b, ext32, sizeof(ext32));
	expect_bb(&b, EVB_EMALFORMED, "ext32 of 4 GiB");
}

Test(hostile, top_level_must_be_a_map, .timeout = 30)
{
	static const struct {
		uint8_t     bytes[4];
		size_t      n;
		const char *what;
	} tops[] = {
		{ { 0x05 }, 1, "fixint" },
		{ { 0xc0 }, 1, "nil" },
		{ { 0xa1, 'a' }, 2, "str" },
		{ { 0x90 }, 1, "empty array" },
		{ { 0x91, 0x80 }, 2, "array of a map" },
		{ { 0x80 }, 1, "empty map" },
	};

	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		uint8_t   *c   = heap_copy(tops[i].bytes, tops[i].n);
		evb_event *got = SENTINEL;
		evb_diag   d   = { { 0 } };
		int        rc;

		/* An empty map is a map that lacks type: a schema error. */
		rc = evb_proto_event_decode(&got, c, tops[i].n, &d);
		if (tops[i].bytes[0] == 0x80) {
			cr_assert_eq(rc, EVB_ESCHEMA, "%s: %d %s", tops[i].what,
			    rc, d.msg);
			cr_assert(strstr(d.msg, "envelope.type") == d.msg, "%s",
			    d.msg);
		} else {
			cr_assert_eq(rc, EVB_EMALFORMED, "%s: %d %s",
			    tops[i].what, rc, d.msg);
		}
		cr_assert_eq(got, SENTINEL);
		cr_assert_neq(d.msg[0], '\0');
		free(c);
	}
}

Test(hostile, ingest_rejects_scalars_and_empty_arrays, .timeout = 30)
{
	static const uint8_t scalars[][2] = { { 0x05 }, { 0xc0 }, { 0xa0 },
		{ 0x90 }, { 0xc1 } };

	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		evb_proto_ingest it;
		evb_diag         d = { { 0 } };
		uint8_t         *c = heap_copy(scalars[i], 1);

		cr_assert_eq(evb_proto_ingest_begin(&it, c, 1, &d),
		    EVB_EMALFORMED, "0x%02x", scalars[i][0]);
		cr_assert_neq(d.msg[0], '\0');
		free(c);
	}
}

Test(hostile, batch_element_that_is_not_a_map, .timeout = 30)
{
	static const uint8_t five[] = { 0x05 };
	static const uint8_t arr[]  = { 0x91, 0x80 };

	expect_in_batch(five, sizeof(five), EVB_EMALFORMED, "int element");
	expect_in_batch(arr, sizeof(arr), EVB_EMALFORMED, "nested batch");
}

Test(hostile, empty_keys_are_ordinary_unknown_keys, .timeout = 30)
{
	/* Found by fuzz_proto_decode (corpus crash-envelope-empty-key.mp). */
	static const uint8_t lone[]  = { 0x81, 0xa0, 0x01 };
	static const uint8_t bin0[]  = { 0x81, 0xc4, 0x00, 0x01 };
	static const uint8_t empty[] = { 0xa0 };
	bb                   b;

	expect_decode(lone, sizeof(lone), EVB_ESCHEMA, "{\"\": 1}");
	expect_decode(bin0, sizeof(bin0), EVB_ESCHEMA, "{bin \"\": 1}");
	expect_key(empty, sizeof(empty), EVB_OK, "empty data key");
	bb_init(&b);
	bb_md(&b, 0, 1);
	bb_raw(&b, empty, sizeof(empty));
	bb_str(&b, "v");
	expect_bb(&b, EVB_OK, "empty envelope key");
}

Test(hostile, nul_inside_a_string_is_malformed, .timeout = 30)
{
	static const uint8_t nul[] = { 0xa3, 'a', 0x00, 'b' };

	expect_value(nul, sizeof(nul), EVB_EMALFORMED, "NUL in a value");
	expect_key(nul, sizeof(nul), EVB_EMALFORMED, "NUL in a key");
}

/* ---- Messages stay one line ------------------------------------------- */

/*
 * A key may be any UTF-8 but NUL, so a producer could put a newline and
 * a whole forged log line in one; the broker logs the decoder's message
 * (EVB-BROKER-REJECT). Keys are escaped as values are (review finding 6).
 */
#define FORGED "k\n2026-12-04T00:00:00.000Z NOTICE EVB-BROKER-STOPPED\r\x1b"
/* Its first 40 bytes (PROTO_QUOTE_MAX), as a message quotes them. */
#define FORGED_TEXT "k\\x0a2026-12-04T00:00:00.000Z NOTICE EVB-BR"

/* expect_one_line asserts that decoding b fails with want and a message
 * holding needle and no control byte, alone and in a batch. */
static void
expect_one_line(bb *b, int want, const char *needle, const char *what)
{
	uint8_t         *c = heap_copy(b->sb.data, b->sb.size);
	evb_event       *got;
	evb_diag         d = { { 0 } };
	evb_proto_ingest it;
	uint8_t          hdr = 0x91;
	bb               batch;

	cr_assert_eq(evb_proto_event_decode(&got, c, b->sb.size, &d), want,
	    "%s: %s", what, d.msg);
	for (int pass = 0; pass < 2; pass++) {
		for (const char *p = d.msg; *p != '\0'; p++) {
			cr_assert(*p >= 0x20 && *p != 0x7f,
			    "%s: byte 0x%02x in \"%s\"", what,
			    (unsigned) (unsigned char) *p, d.msg);
		}
		cr_assert_not_null(strstr(d.msg, needle), "%s: \"%s\" lacks %s",
		    what, d.msg, needle);
		if (pass == 1) {
			break;
		}
		// The same event as the one element of a batch, as the broker
		// reads it.
		bb_init(&batch);
		bb_raw(&batch, &hdr, 1);
		bb_raw(&batch, b->sb.data, b->sb.size);
		free(c);
		c = heap_copy(batch.sb.data, batch.sb.size);
		memset(&d, 0, sizeof(d));
		cr_assert_eq(
		    evb_proto_ingest_begin(&it, c, batch.sb.size, &d), EVB_OK);
		cr_assert_eq(evb_proto_ingest_next(&it, &got, &d), want,
		    "%s in a batch: %s", what, d.msg);
		bb_fini(&batch);
	}
	free(c);
	bb_fini(b);
}

Test(hostile, control_bytes_in_keys_are_escaped_in_messages, .timeout = 30)
{
	bb b;

	/* The path to a bad value names the key (data.<key>: ...). */
	bb_init(&b);
	bb_md(&b, 1, 0);
	bb_str(&b, FORGED);
	pack_nonfinite(&b, 0, false);
	expect_one_line(&b, EVB_EMALFORMED, "data." FORGED_TEXT, "NaN");
	/* A duplicate key in a map below data. */
	bb_init(&b);
	bb_md(&b, 1, 0);
	bb_str(&b, "x");
	(void) msgpack_pack_map(&b.pk, 2);
	bb_str(&b, FORGED);
	(void) msgpack_pack_int(&b.pk, 1);
	bb_str(&b, FORGED);
	(void) msgpack_pack_int(&b.pk, 2);
	expect_one_line(&b, EVB_EMALFORMED, "duplicate key \"" FORGED_TEXT,
	    "duplicate below data");
	/* A duplicate unknown key of data (the schema's check). */
	bb_init(&b);
	bb_md(&b, 2, 0);
	bb_str(&b, FORGED);
	(void) msgpack_pack_int(&b.pk, 1);
	bb_str(&b, FORGED);
	(void) msgpack_pack_int(&b.pk, 2);
	expect_one_line(&b, EVB_EMALFORMED,
	    "market_data.data: duplicate key \"" FORGED_TEXT,
	    "duplicate in data");
	/* A duplicate unknown envelope key. */
	bb_init(&b);
	bb_md(&b, 0, 2);
	bb_str(&b, FORGED);
	(void) msgpack_pack_int(&b.pk, 1);
	bb_str(&b, FORGED);
	(void) msgpack_pack_int(&b.pk, 2);
	expect_one_line(&b, EVB_EMALFORMED,
	    "envelope: duplicate key \"" FORGED_TEXT, "duplicate envelope");
}

Test(hostile, control_bytes_in_a_topic_are_escaped_in_messages, .timeout = 30)
{
	/* user_action's topic is its user_id, which may hold a newline. */
	static const char json[] =
	    "{\"type\":\"user_action\",\"seq\":1,\"epoch\":1,"
	    "\"data\":{\"user_id\":\"u\\nX\",\"action\":\"a\"}}";
	static const char topic[] = "user_action.u\nY";
	evb_event        *ev;
	evb_diag          d = { { 0 } };
	evb_buf           frame;
	uint8_t          *c;

	cr_assert_eq(evb_proto_event_from_json(&ev, json, sizeof(json) - 1, &d),
	    EVB_OK, "%s", d.msg);
	evb_buf_init(&frame);
	cr_assert_eq(evb_buf_append(&frame, topic, sizeof(topic)), EVB_OK);
	cr_assert_eq(evb_proto_event_encode(ev, &frame), EVB_OK);
	evb_proto_event_free(ev);
	c = heap_copy(frame.data, frame.len);
	cr_assert_eq(
	    evb_proto_frame_decode(&ev, c, frame.len, &d), EVB_EMALFORMED);
	cr_assert_str_eq(d.msg,
	    "frame: topic \"user_action.u\\x0aY\" does not match the "
	    "event's \"user_action.u\\x0aX\"");
	free(c);
	evb_buf_fini(&frame);
}

/* ---- Frames ----------------------------------------------------------- */

Test(hostile, frames_with_broken_topics, .timeout = 30)
{
	static const char topic[] = "market_data.EURUSD";
	char              longt[EVB_PROTO_MAX_TOPIC + 2];
	bb                v;
	bb                b;

	/* A published event: frames carry seq and epoch. */
	bb_init(&v);
	bb_md(&v, 0, 2);
	bb_str(&v, "seq");
	(void) msgpack_pack_uint64(&v.pk, 7);
	bb_str(&v, "epoch");
	(void) msgpack_pack_uint64(&v.pk, 1);
	/* Well-formed, as a baseline. */
	bb_init(&b);
	bb_raw(&b, topic, strlen(topic) + 1);
	bb_raw(&b, v.sb.data, v.sb.size);
	expect_frame_bytes(b.sb.data, b.sb.size, EVB_OK, "good frame");
	bb_fini(&b);
	/* No topic at all. */
	bb_init(&b);
	bb_raw(&b, "", 1);
	bb_raw(&b, v.sb.data, v.sb.size);
	expect_frame_bytes(b.sb.data, b.sb.size, EVB_EMALFORMED, "empty topic");
	bb_fini(&b);
	/* No 0x00 anywhere. */
	expect_frame_bytes(topic, strlen(topic), EVB_EMALFORMED, "topic only");
	/* A topic longer than any real one, then a valid event. */
	memset(longt, 'a', sizeof(longt) - 1);
	longt[sizeof(longt) - 1] = '\0';
	bb_init(&b);
	bb_raw(&b, longt, sizeof(longt));
	bb_raw(&b, v.sb.data, v.sb.size);
	expect_frame_bytes(b.sb.data, b.sb.size, EVB_EMALFORMED, "long topic");
	bb_fini(&b);
	/* Topic and a truncated event. */
	bb_init(&b);
	bb_raw(&b, topic, strlen(topic) + 1);
	bb_raw(&b, v.sb.data, v.sb.size - 1);
	expect_frame_bytes(
	    b.sb.data, b.sb.size, EVB_EMALFORMED, "truncated event");
	bb_fini(&b);
	/* Topic and nothing after the 0x00. */
	expect_frame_bytes(
	    topic, strlen(topic) + 1, EVB_EMALFORMED, "no event");
	/* A topic that is the event's with a trailing byte. */
	bb_init(&b);
	bb_raw(&b, "market_data.EURUSDX", strlen("market_data.EURUSDX") + 1);
	bb_raw(&b, v.sb.data, v.sb.size);
	expect_frame_bytes(
	    b.sb.data, b.sb.size, EVB_EMALFORMED, "topic + 1 byte");
	bb_fini(&b);
	/* A hostile event inside a good topic keeps its own error. */
	bb_init(&b);
	bb_raw(&b, topic, strlen(topic) + 1);
	bb_raw(&b, "\xdf\xff\xff\xff\xff", 5);
	expect_frame_bytes(
	    b.sb.data, b.sb.size, EVB_ETOOBIG, "map32 in a frame");
	bb_fini(&b);
	bb_fini(&v);
}

/* ---- msg_extent ------------------------------------------------------- */

Test(hostile, extent_refuses_bytes_that_end_too_soon, .timeout = 30)
{
	static const struct {
		uint8_t     bytes[8];
		size_t      n;
		const char *what;
	} cases[] = {
		{ { 0xdb, 0xff, 0xff, 0xff, 0xff }, 5, "str32 of 4 GiB" },
		{ { 0xdb, 0x00, 0x00, 0x00, 0x05, 'a' }, 6, "str32 short" },
		{ { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0 }, 6,
		    "map32 of 2^32-1" },
		{ { 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0 }, 6,
		    "array32 of 2^32-1" },
		{ { 0x82, 0xa1, 'a', 0x01 }, 4, "map short" },
		{ { 0xcb, 0x3f, 0xf0 }, 3, "float64 short" },
		{ { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01 }, 6, "ext32 of 4 GiB" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *c = heap_copy(cases[i].bytes, cases[i].n);
		size_t   n = 99;
		evb_diag d = { { 0 } };

		cr_assert_eq(evb_proto_msg_extent(c, cases[i].n, &n, &d),
		    EVB_EMALFORMED, "%s: %s", cases[i].what, d.msg);
		cr_assert_eq(n, 99);
		cr_assert_neq(d.msg[0], '\0');
		free(c);
	}
}

Test(hostile, extent_delimits_without_judging_content, .timeout = 30)
{
	/* Content is the decoder's job; extent only finds the end. */
	static const struct {
		uint8_t     bytes[8];
		size_t      n;
		size_t      want;
		const char *what;
	} cases[] = {
		{ { 0x81, 0x01, 0x01, 0xc0 }, 4, 3, "int key" },
		{ { 0xa2, 0xc3, 0x28, 0xc0 }, 4, 3, "bad UTF-8" },
		{ { 0xd4, 0x01, 0xaa, 0xc0 }, 4, 3, "fixext1" },
		{ { 0xca, 0x7f, 0xc0, 0x00, 0x00 }, 5, 5, "float32 NaN" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *c = heap_copy(cases[i].bytes, cases[i].n);
		size_t   n = 0;
		evb_diag d = { { 0 } };

		cr_assert_eq(evb_proto_msg_extent(c, cases[i].n, &n, &d),
		    EVB_OK, "%s: %s", cases[i].what, d.msg);
		cr_assert_eq(n, cases[i].want, "%s", cases[i].what);
		free(c);
	}
}

Test(hostile, extent_walks_10000_deep_without_recursing, .timeout = 30)
{
	for (int maps = 0; maps < 2; maps++) {
		size_t   len;
		uint8_t *v = deep_value(100000, maps, &len);
		size_t   n = 0;
		evb_diag d = { { 0 } };

		cr_assert_eq(
		    evb_proto_msg_extent(v, len, &n, &d), EVB_OK, "%s", d.msg);
		cr_assert_eq(n, len);
		n = 7;
		cr_assert_eq(
		    evb_proto_msg_extent(v, len - 1, &n, &d), EVB_EMALFORMED);
		cr_assert_eq(n, 7);
		free(v);
	}
}
