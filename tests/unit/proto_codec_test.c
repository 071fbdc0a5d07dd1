/*
 * proto_codec_test: the forms of an event and the objects around them
 * (proto/proto.h): JSON and MessagePack round trips, bus frames, the
 * ingest iterator, topics, setters, accessors, msg_extent, evb_buf and
 * the type table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto/proto.h"
#include "tests/unit/proto_testlib.h"

static int sentinel_storage;
#define SENTINEL ((evb_event *) (void *) &sentinel_storage)

/* from_json parses text that must be a valid event. */
static evb_event *
from_json(const char *text)
{
	evb_event *ev = NULL;
	evb_diag   d  = { { 0 } };

	cr_assert_eq(evb_proto_event_from_json(&ev, text, strlen(text), &d),
	    EVB_OK, "%s: %s", text, d.msg);
	cr_assert_not_null(ev);
	return (ev);
}

/* encode_new encodes ev into a fresh buffer. */
static void
encode_new(const evb_event *ev, evb_buf *b)
{
	evb_buf_init(b);
	cr_assert_eq(evb_proto_event_encode(ev, b), EVB_OK);
	cr_assert_gt(b->len, 0);
}

/* to_json_obj renders ev with to_json and parses the result. */
static json_t *
to_json_obj(const evb_event *ev)
{
	evb_buf      b;
	json_error_t err;
	json_t      *o;

	evb_buf_init(&b);
	cr_assert_eq(evb_proto_event_to_json(ev, &b), EVB_OK);
	cr_assert_eq(b.data[b.len], '\0', "to_json must NUL-terminate");
	cr_assert_null(memchr(b.data, '\n', b.len), "to_json wrote a newline");
	o = json_loadb((const char *) b.data, b.len, 0, &err);
	cr_assert_not_null(o, "to_json output is not JSON (%s): %s", err.text,
	    (const char *) b.data);
	evb_buf_fini(&b);
	return (o);
}

/* ---- Round trips ------------------------------------------------------ */

static void
round_trip(const char *text)
{
	json_t    *orig = ptl_parse(text);
	evb_event *a    = from_json(text);
	evb_event *b    = NULL;
	evb_diag   d    = { { 0 } };
	evb_buf    mp;
	evb_buf    mp2;
	json_t    *back;
	char      *got;

	cr_assert_not_null(orig);
	encode_new(a, &mp);
	cr_assert_eq(evb_proto_event_decode(&b, mp.data, mp.len, &d), EVB_OK,
	    "%s", d.msg);
	cr_assert_eq(evb_proto_event_type(b), evb_proto_event_type(a));
	back = to_json_obj(b);
	got  = json_dumps(back, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert(json_equal(orig, back),
	    "JSON round trip changed the event:\n"
	    " in:  %s\n out: %s",
	    text, got);
	free(got);
	/* Encoding is canonical: the decoded copy encodes to the same bytes. */
	encode_new(b, &mp2);
	cr_assert_eq(mp2.len, mp.len);
	cr_assert_arr_eq(mp2.data, mp.data, mp.len);
	evb_buf_fini(&mp);
	evb_buf_fini(&mp2);
	json_decref(back);
	json_decref(orig);
	evb_proto_event_free(a);
	evb_proto_event_free(b);
}

Test(codec, json_msgpack_json_round_trip_for_every_type, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		round_trip(ptl_valid_json[t]);
		round_trip(ptl_full_json[t]);
	}
}

/*
 * oracle_pack writes o as the encoder must: msgpack-c's packer for every
 * scalar and header, map keys as str. Written here from the rule, not
 * from proto's code, so that it checks both of proto's ways to encode
 * data (copying input bytes it found canonical, or packing the tree).
 */
static void
oracle_pack(msgpack_packer *pk, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_MAP:
		cr_assert_eq(msgpack_pack_map(pk, o->via.map.size), 0);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k  = &o->via.map.ptr[i].key;
			const char           *kp = k->type == MSGPACK_OBJECT_BIN
			              ? k->via.bin.ptr
			              : k->via.str.ptr;
			uint32_t              kn = k->type == MSGPACK_OBJECT_BIN
			                 ? k->via.bin.size
			                 : k->via.str.size;

			cr_assert_eq(msgpack_pack_str_with_body(pk, kp, kn), 0);
			oracle_pack(pk, &o->via.map.ptr[i].val);
		}
		break;
	case MSGPACK_OBJECT_ARRAY:
		cr_assert_eq(msgpack_pack_array(pk, o->via.array.size), 0);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			oracle_pack(pk, &o->via.array.ptr[i]);
		}
		break;
	default:
		cr_assert_eq(msgpack_pack_object(pk, *o), 0);
	}
}

/*
 * Whatever shape a producer chose (wide integers, signed markers for
 * positive values, float32, bin keys, old raw strings), the encoding is
 * msgpack-c's canonical form of the same event; and an input already in
 * that form encodes its data to the very same bytes.
 */
Test(codec, encode_is_canonical_for_every_shape, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		for (int si = 0; si < PTL_NSHAPES; si++) {
			const ptl_shape *sh  = &ptl_shapes[si];
			json_t          *v   = ptl_parse(ptl_full_json[t]);
			evb_event       *ev  = NULL;
			evb_event       *ev2 = NULL;
			evb_diag         d   = { { 0 } };
			msgpack_unpacked u;
			msgpack_sbuffer  sb;
			msgpack_packer   pk;
			evb_buf          out;
			json_t          *j1, *j2;

			cr_assert_eq(ptl_decode_shape(v, sh, &ev, &d), EVB_OK,
			    "type %d shape %s: %s", t, sh->name, d.msg);
			encode_new(ev, &out);
			msgpack_unpacked_init(&u);
			cr_assert_eq(
			    msgpack_unpack_next(
			        &u, (const char *) out.data, out.len, NULL),
			    MSGPACK_UNPACK_SUCCESS);
			msgpack_sbuffer_init(&sb);
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			oracle_pack(&pk, &u.data);
			cr_assert_eq(sb.size, out.len,
			    "type %d shape %s: %zu bytes, canonical %zu", t,
			    sh->name, out.len, sb.size);
			cr_assert_arr_eq(sb.data, out.data, out.len,
			    "type %d shape %s: not the canonical bytes", t,
			    sh->name);
			cr_assert_eq(
			    evb_proto_event_decode(&ev2, out.data, out.len, &d),
			    EVB_OK, "%s", d.msg);
			j1 = to_json_obj(ev);
			j2 = to_json_obj(ev2);
			cr_assert(json_equal(j1, j2),
			    "type %d shape %s: the encoding changed the event",
			    t, sh->name);
			json_decref(j1);
			json_decref(j2);
			msgpack_sbuffer_destroy(&sb);
			msgpack_unpacked_destroy(&u);
			evb_buf_fini(&out);
			evb_proto_event_free(ev);
			evb_proto_event_free(ev2);
			json_decref(v);
		}
	}
}

/* oracle_check asserts that ev encodes to msgpack-c's canonical bytes. */
static void
oracle_check(const evb_event *ev, const char *what)
{
	msgpack_unpacked u;
	msgpack_sbuffer  sb;
	msgpack_packer   pk;
	evb_buf          out;

	encode_new(ev, &out);
	msgpack_unpacked_init(&u);
	cr_assert_eq(
	    msgpack_unpack_next(&u, (const char *) out.data, out.len, NULL),
	    MSGPACK_UNPACK_SUCCESS, "%s", what);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	oracle_pack(&pk, &u.data);
	cr_assert_eq(sb.size, out.len, "%s: %zu bytes, canonical %zu", what,
	    out.len, sb.size);
	cr_assert_arr_eq(
	    sb.data, out.data, out.len, "%s: not the canonical bytes", what);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&u);
	evb_buf_fini(&out);
}

/*
 * envelope_values_check asserts that ev's encoding decodes to ev's own
 * envelope values: canonical bytes alone could still carry wrong ones.
 */
static void
envelope_values_check(const evb_event *ev, const char *what)
{
	evb_event *back = NULL;
	evb_diag   d    = { { 0 } };
	evb_buf    out;
	evb_str    a, b;

	encode_new(ev, &out);
	cr_assert_eq(evb_proto_event_decode(&back, out.data, out.len, &d),
	    EVB_OK, "%s: %s", what, d.msg);
	cr_assert_eq(evb_proto_event_type(back), evb_proto_event_type(ev));
	cr_assert_eq(
	    evb_proto_event_ts(back), evb_proto_event_ts(ev), "%s", what);
	cr_assert_eq(
	    evb_proto_event_seq(back), evb_proto_event_seq(ev), "%s", what);
	cr_assert_eq(
	    evb_proto_event_epoch(back), evb_proto_event_epoch(ev), "%s", what);
	a = evb_proto_event_id(ev), b = evb_proto_event_id(back);
	cr_assert(
	    a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0, "%s: id", what);
	a = evb_proto_event_source(ev), b = evb_proto_event_source(back);
	cr_assert(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0,
	    "%s: source", what);
	a = evb_proto_event_corr(ev), b = evb_proto_event_corr(back);
	cr_assert(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0,
	    "%s: corr", what);
	evb_proto_event_free(back);
	evb_buf_fini(&out);
}

/*
 * The envelope's own fields at each boundary between the forms msgpack-c
 * picks from (fixint, uint8 ... int64; fixstr, str8), since the common
 * envelope is written without msgpack-c's packer (proto_event.c).
 */
Test(codec, envelope_fields_are_canonical_at_every_width, .timeout = 30)
{
	static const int64_t  ts[]   = { 0, 1, 127, 128, 255, 256, 65535, 65536,
		   4294967295LL, 4294967296LL, INT64_MAX, -1, -32, -33, -128, -129,
		   -32768, -32769, INT32_MIN, (int64_t) INT32_MIN - 1, INT64_MIN };
	static const uint64_t u[]    = { 0, 127, 128, 255, 256, 65535, 65536,
		   4294967295u, 4294967296u, (uint64_t) INT64_MAX };
	static const size_t   lens[] = { 1, 31, 32, 127, EVB_PROTO_MAX_ID };
	char                  str[EVB_PROTO_MAX_ID + 1];
	char                  json[1024];
	char                  what[160];

	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		memset(str, 'a' + (int) k, lens[k]);
		str[lens[k]] = '\0';
		(void) snprintf(json, sizeof(json),
		    "{\"type\":\"market_data\",\"source\":\"%s\","
		    "\"corr\":\"%s\",\"data\":{\"symbol\":\"EURUSD\","
		    "\"bid\":1.5,\"ask\":1.75}}",
		    str, str);
		for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
			for (size_t j = 0; j < sizeof(u) / sizeof(u[0]); j++) {
				evb_event *ev = from_json(json);
				uint64_t   epoch =
				    u[(j + 1) % (sizeof(u) / sizeof(u[0]))];

				cr_assert_eq(
				    evb_proto_event_set_id(ev, str, lens[k]),
				    EVB_OK);
				evb_proto_event_set_ts(ev, ts[i]);
				evb_proto_event_set_seq(ev, u[j], epoch);
				(void) snprintf(what, sizeof(what),
				    "strings of %zu, ts %lld, seq %llu, epoch "
				    "%llu",
				    lens[k], (long long) ts[i],
				    (unsigned long long) u[j],
				    (unsigned long long) epoch);
				oracle_check(ev, what);
				if (ts[i] >= 0) {
					// (Decode refuses a negative ts.)
					envelope_values_check(ev, what);
				}
				evb_proto_event_free(ev);
			}
		}
	}
}

Test(codec, round_trip_keeps_unknown_keys_and_published_fields, .timeout = 30)
{
	round_trip(
	    "{\"type\":\"market_data\",\"id\":\"m-1\",\"ts\":5,"
	    "\"seq\":9223372036854775807,\"epoch\":0,\"x_env\":{\"k\":"
	    "[1,\"two\",3.5,null,false]},\"data\":{\"symbol\":\"EURUSD\","
	    "\"bid\":1.5,\"ask\":1.75,\"x_data\":\"kept\",\"x_neg\":-42}}");
}

Test(codec, json_reals_stay_reals_and_ints_stay_ints, .timeout = 30)
{
	static const char text[] =
	    "{\"type\":\"balance_update\",\"data\":{\"user_id\":\"u\","
	    "\"balance\":2.0,\"equity\":2,\"big\":9223372036854775807,"
	    "\"small\":-9223372036854775807}}";
	evb_event *ev   = from_json(text);
	json_t    *o    = to_json_obj(ev);
	json_t    *data = json_object_get(o, "data");

	cr_assert(json_is_real(json_object_get(data, "balance")));
	cr_assert_eq(json_real_value(json_object_get(data, "balance")), 2.0);
	cr_assert(json_is_integer(json_object_get(data, "equity")));
	cr_assert_eq(
	    json_integer_value(json_object_get(data, "big")), INT64_MAX);
	cr_assert_eq(
	    json_integer_value(json_object_get(data, "small")), -INT64_MAX);
	json_decref(o);
	evb_proto_event_free(ev);
}

Test(codec, integers_above_int64_become_json_reals, .timeout = 30)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	evb_event      *ev = NULL;
	evb_diag        d  = { { 0 } };
	json_t         *o;
	json_t         *x;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "type", 4);
	msgpack_pack_str_with_body(&pk, "user_action", 11);
	msgpack_pack_str_with_body(&pk, "data", 4);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "user_id", 7);
	msgpack_pack_str_with_body(&pk, "u", 1);
	msgpack_pack_str_with_body(&pk, "action", 6);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_str_with_body(&pk, "x", 1);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	cr_assert_eq(evb_proto_event_decode(&ev, sb.data, sb.size, &d), EVB_OK,
	    "%s", d.msg);
	o = to_json_obj(ev);
	x = json_object_get(json_object_get(o, "data"), "x");
	cr_assert(json_is_real(x), "uint64 max must be a JSON real");
	cr_assert_eq(json_real_value(x), 18446744073709551615.0);
	json_decref(o);
	evb_proto_event_free(ev);
	msgpack_sbuffer_destroy(&sb);
}

/* unpack_root unpacks buf into *res and returns the root map. */
static msgpack_object
unpack_root(msgpack_unpacked *res, const void *buf, size_t len)
{
	size_t off = 0;

	msgpack_unpacked_init(res);
	cr_assert_eq(
	    msgpack_unpack_next(res, buf, len, &off), MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(off, len, "encode wrote more than one object");
	cr_assert_eq(res->data.type, MSGPACK_OBJECT_MAP);
	return (res->data);
}

static bool
key_is(const msgpack_object *k, const char *name)
{
	return (k->type == MSGPACK_OBJECT_STR &&
	    k->via.str.size == strlen(name) &&
	    memcmp(k->via.str.ptr, name, k->via.str.size) == 0);
}

Test(codec, encode_writes_canonical_key_order_as_str, .timeout = 30)
{
	/* Keys arrive scrambled and as bin; they leave in the fixed order. */
	static const char *const order[] = { "type", "id", "ts", "source",
		"corr", "seq", "epoch", "data", "zz_first", "aa_second" };
	static const char        text[] =
	    "{\"zz_first\":1,\"data\":{\"component\":\"c\",\"status\":\"down\"}"
	    ","
	    "\"epoch\":2,\"corr\":\"k\",\"aa_second\":2,\"seq\":1,"
	    "\"source\":\"s\",\"ts\":3,\"id\":\"i\",\"type\":\"system_"
	    "health\"}";
	static const ptl_shape bin = { PTL_KEYS_BIN, 0, "bin" };
	json_t                *v   = ptl_parse(text);
	evb_event             *ev  = NULL;
	evb_diag               d   = { { 0 } };
	evb_buf                b;
	msgpack_unpacked       res;
	msgpack_object         root;

	cr_assert_eq(ptl_decode_shape(v, &bin, &ev, &d), EVB_OK, "%s", d.msg);
	encode_new(ev, &b);
	root = unpack_root(&res, b.data, b.len);
	cr_assert_eq(root.via.map.size, sizeof(order) / sizeof(order[0]));
	for (size_t i = 0; i < root.via.map.size; i++) {
		cr_assert(key_is(&root.via.map.ptr[i].key, order[i]),
		    "key %zu is not %s", i, order[i]);
	}
	/* Data keys are written as str too. */
	root = root.via.map.ptr[7].val;
	cr_assert_eq(root.type, MSGPACK_OBJECT_MAP);
	for (size_t i = 0; i < root.via.map.size; i++) {
		cr_assert_eq(root.via.map.ptr[i].key.type, MSGPACK_OBJECT_STR);
	}
	msgpack_unpacked_destroy(&res);
	evb_buf_fini(&b);
	evb_proto_event_free(ev);
	json_decref(v);
}

Test(codec, encode_and_to_json_append_to_what_is_there, .timeout = 30)
{
	evb_event *ev = from_json(ptl_valid_json[4]);
	evb_buf    b;
	evb_buf    alone;

	encode_new(ev, &alone);
	evb_buf_init(&b);
	cr_assert_eq(evb_buf_append(&b, "XY", 2), EVB_OK);
	cr_assert_eq(evb_proto_event_encode(ev, &b), EVB_OK);
	cr_assert_eq(b.len, alone.len + 2);
	cr_assert_arr_eq(b.data, "XY", 2);
	cr_assert_arr_eq(b.data + 2, alone.data, alone.len);
	evb_buf_reset(&b);
	cr_assert_eq(evb_buf_append(&b, "Z", 1), EVB_OK);
	cr_assert_eq(evb_proto_event_to_json(ev, &b), EVB_OK);
	cr_assert_arr_eq(b.data, "Z{\"type\":\"system_health\"", 24,
	    "to_json must start with type: %s", (const char *) b.data);
	cr_assert_eq(b.data[b.len], '\0');
	evb_buf_fini(&b);
	evb_buf_fini(&alone);
	evb_proto_event_free(ev);
}

Test(codec, from_json_rejects_what_is_not_one_object, .timeout = 30)
{
	static const char *const bad[] = {
		"",
		"   ",
		"{",
		"[]",
		"[{\"type\":\"user_action\",\"data\":{\"user_id\":\"u\","
		"\"action\":\"a\"}}]",
		"\"text\"",
		"42",
		"{\"type\":\"user_action\",\"data\":{\"user_id\":\"u\","
		"\"action\":\"a\"}} {}",
		"{\"type\":\"user_action\",\"data\":{\"user_id\":\"u\","
		"\"action\":\"a\"}} x",
		"{\"type\":'user_action'}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		evb_event *ev = SENTINEL;
		evb_diag   d  = { { 0 } };
		int        rc;

		rc = evb_proto_event_from_json(&ev, bad[i], strlen(bad[i]), &d);
		cr_assert_eq(rc, EVB_EMALFORMED, "case %zu (%s): %d %s", i,
		    bad[i], rc, d.msg);
		cr_assert_eq(ev, SENTINEL);
		cr_assert_neq(d.msg[0], '\0');
	}
}

Test(codec, from_json_reads_only_len_bytes, .timeout = 30)
{
	const char *text = ptl_valid_json[5];
	size_t      n    = strlen(text);
	char       *buf  = malloc(n + 8);
	evb_event  *ev   = NULL;
	evb_diag    d    = { { 0 } };

	/* No NUL after the object: the length alone bounds it. */
	cr_assert_not_null(buf);
	memcpy(buf, text, n);
	memcpy(buf + n, "garbage!", 8);
	cr_assert_eq(
	    evb_proto_event_from_json(&ev, buf, n, &d), EVB_OK, "%s", d.msg);
	evb_proto_event_free(ev);
	free(buf);
}

/* ---- Frames ----------------------------------------------------------- */

Test(codec, frame_is_topic_nul_envelope, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		evb_event *ev   = from_json(ptl_full_json[t]);
		evb_event *back = NULL;
		evb_diag   d    = { { 0 } };
		evb_buf    frame;
		evb_buf    body;
		char       topic[EVB_PROTO_MAX_TOPIC];
		size_t     tlen = 0;

		evb_proto_event_set_seq(ev, 100 + (uint64_t) t, 7);
		cr_assert_eq(
		    evb_proto_event_topic(ev, topic, sizeof(topic), &tlen),
		    EVB_OK);
		encode_new(ev, &body);
		evb_buf_init(&frame);
		cr_assert_eq(evb_proto_frame_encode(ev, &frame), EVB_OK);
		cr_assert_eq(frame.len, tlen + 1 + body.len);
		cr_assert_arr_eq(frame.data, topic, tlen);
		cr_assert_eq(frame.data[tlen], 0x00);
		cr_assert_arr_eq(frame.data + tlen + 1, body.data, body.len);
		cr_assert_eq(
		    evb_proto_frame_decode(&back, frame.data, frame.len, &d),
		    EVB_OK, "%s", d.msg);
		cr_assert_eq(evb_proto_event_type(back), t);
		cr_assert(evb_proto_event_has_seq(back));
		cr_assert_eq(evb_proto_event_seq(back), 100 + (uint64_t) t);
		cr_assert_eq(evb_proto_event_epoch(back), 7);
		evb_proto_event_free(back);
		evb_buf_fini(&frame);
		evb_buf_fini(&body);
		evb_proto_event_free(ev);
	}
}

/* frame_of writes topic, 0x00 and ev's envelope into b. */
static void
frame_of(evb_buf *b, const char *topic, const evb_event *ev)
{
	evb_buf_init(b);
	cr_assert_eq(evb_buf_append(b, topic, strlen(topic) + 1), EVB_OK);
	cr_assert_eq(evb_proto_event_encode(ev, b), EVB_OK);
}

Test(codec, frame_decode_rejects_a_topic_that_does_not_match, .timeout = 30)
{
	static const char *const wrong[] = {
		"market_data.GBPUSD",
		"pattern_detected.EURUSD",
		"market_data.eurusd",
		"market_data",
		"market_data.",
		"market_data.EURUSD.",
		".EURUSD",
		"market_dataEURUSD",
	};
	evb_event *ev = from_json(ptl_valid_json[6]);
	evb_buf    b;

	evb_proto_event_set_seq(ev, 11, 2); // Frames carry seq and epoch.

	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		evb_event *got = SENTINEL;
		evb_diag   d   = { { 0 } };

		frame_of(&b, wrong[i], ev);
		cr_assert_eq(evb_proto_frame_decode(&got, b.data, b.len, &d),
		    EVB_EMALFORMED, "topic %s", wrong[i]);
		cr_assert_eq(got, SENTINEL);
		cr_assert_neq(d.msg[0], '\0');
		evb_buf_fini(&b);
	}
	frame_of(&b, "market_data.EURUSD", ev);
	{
		evb_event *got = NULL;
		evb_diag   d   = { { 0 } };

		cr_assert_eq(evb_proto_frame_decode(&got, b.data, b.len, &d),
		    EVB_OK, "%s", d.msg);
		evb_proto_event_free(got);
	}
	evb_buf_fini(&b);
	evb_proto_event_free(ev);
}

Test(codec, frame_without_nul_is_malformed, .timeout = 30)
{
	evb_event *ev  = from_json(ptl_valid_json[6]);
	evb_event *got = SENTINEL;
	evb_diag   d   = { { 0 } };
	evb_buf    b;

	/* The envelope right after the topic, with no 0x00 between. */
	evb_buf_init(&b);
	cr_assert_eq(evb_buf_append(&b, "market_data.EURUSD", 18), EVB_OK);
	cr_assert_eq(evb_proto_event_encode(ev, &b), EVB_OK);
	cr_assert_eq(
	    evb_proto_frame_decode(&got, b.data, b.len, &d), EVB_EMALFORMED);
	cr_assert_eq(got, SENTINEL);
	cr_assert_neq(d.msg[0], '\0');
	/* A bare envelope is not a frame either. */
	evb_buf_reset(&b);
	cr_assert_eq(evb_proto_event_encode(ev, &b), EVB_OK);
	cr_assert_eq(
	    evb_proto_frame_decode(&got, b.data, b.len, &d), EVB_EMALFORMED);
	cr_assert_eq(got, SENTINEL);
	evb_buf_fini(&b);
	evb_proto_event_free(ev);
}

Test(codec, frame_decode_reports_the_event_error, .timeout = 30)
{
	static const char bad[] = "{\"type\":\"market_data\",\"data\":{"
	                          "\"symbol\":\"EURUSD\",\"bid\":2,\"ask\":1}}";
	json_t           *v     = ptl_parse(bad);
	msgpack_sbuffer   sb;
	msgpack_packer    pk;
	evb_event        *got = SENTINEL;
	evb_diag          d   = { { 0 } };

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_sbuffer_write(&sb, "market_data.EURUSD", 19);
	ptl_pack_json(&pk, v, &ptl_shapes[0]);
	cr_assert_eq(
	    evb_proto_frame_decode(&got, sb.data, sb.size, &d), EVB_ESCHEMA);
	cr_assert(strstr(d.msg, "market_data.data.ask") == d.msg, "%s", d.msg);
	cr_assert_eq(got, SENTINEL);
	msgpack_sbuffer_destroy(&sb);
	json_decref(v);
}

/* ---- Frame heads ------------------------------------------------------ */

Test(codec, frame_head_agrees_with_frame_decode_for_every_type, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		evb_event     *ev   = from_json(ptl_full_json[t]);
		evb_event     *back = NULL;
		evb_proto_head h;
		evb_diag       d = { { 0 } };
		evb_buf        frame;
		size_t         tlen;

		evb_proto_event_set_seq(ev, 1000 + (uint64_t) t, 42);
		evb_buf_init(&frame);
		cr_assert_eq(evb_proto_frame_encode(ev, &frame), EVB_OK);
		cr_assert_eq(
		    evb_proto_frame_decode(&back, frame.data, frame.len, &d),
		    EVB_OK, "%s", d.msg);
		cr_assert_eq(
		    evb_proto_frame_head(frame.data, frame.len, &h, &d), EVB_OK,
		    "%s", d.msg);
		cr_assert_eq(h.type, t);
		cr_assert_eq(h.seq, 1000 + (uint64_t) t);
		cr_assert_eq(h.epoch, 42);
		cr_assert_eq(h.has_ts, evb_proto_event_has_ts(back));
		cr_assert_eq(h.ts, evb_proto_event_ts(back));
		cr_assert_eq(h.id.len, evb_proto_event_id(back).len);
		if (h.id.len > 0) {
			cr_assert_arr_eq(
			    h.id.ptr, evb_proto_event_id(back).ptr, h.id.len);
		}
		// The envelope is the frame after the topic's 0x00.
		tlen = strlen((const char *) frame.data);
		cr_assert_eq(h.env, frame.data + tlen + 1);
		cr_assert_eq(h.env_len, frame.len - tlen - 1);
		evb_proto_event_free(back);
		evb_buf_fini(&frame);
		evb_proto_event_free(ev);
	}
}

/* head_agrees checks every data field of v through the head and ev. */
static void
head_agrees(const evb_proto_head *h, const evb_event *ev, json_t *data,
    const char *what)
{
	const char *key;
	json_t     *item;

	json_object_foreach(data, key, item)
	{
		evb_str hs = { 0 }, es = { 0 };
		double  hn = 0, en = 0;
		int64_t hi = 0, ei = 0;
		int     hrc, erc;

		hrc = evb_proto_head_get_str(h, key, &hs);
		erc = evb_proto_event_get_str(ev, key, &es);
		cr_assert_eq(hrc, erc, "%s: get_str %s", what, key);
		if (hrc == EVB_OK) {
			cr_assert_eq(hs.len, es.len, "%s: %s", what, key);
			if (hs.len > 0) {
				cr_assert_arr_eq(hs.ptr, es.ptr, hs.len);
			}
		}
		hrc = evb_proto_head_get_num(h, key, &hn);
		erc = evb_proto_event_get_num(ev, key, &en);
		cr_assert_eq(hrc, erc, "%s: get_num %s", what, key);
		cr_assert(hrc != EVB_OK || hn == en, "%s: %s %g != %g", what,
		    key, hn, en);
		hrc = evb_proto_head_get_int(h, key, &hi);
		erc = evb_proto_event_get_int(ev, key, &ei);
		cr_assert_eq(hrc, erc, "%s: get_int %s", what, key);
		cr_assert(hrc != EVB_OK || hi == ei, "%s: %s", what, key);
	}
	cr_assert_eq(
	    evb_proto_head_get_str(h, "no_such_field", &(evb_str) { 0 }),
	    EVB_ENOTFOUND);
}

/*
 * The head of an envelope, read in place, says what the full decode says
 * of it: type, id, corr, ts, and every data field through each accessor,
 * in every encoding a producer may use.
 */
Test(codec, env_head_agrees_with_decode_for_every_type_and_shape, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		for (int si = 0; si < PTL_NSHAPES; si++) {
			json_t         *v = ptl_parse(ptl_full_json[t]);
			msgpack_sbuffer sb;
			msgpack_packer  pk;
			evb_event      *ev = NULL;
			evb_proto_head  h;
			evb_diag        d = { { 0 } };
			evb_str         a, b;

			msgpack_sbuffer_init(&sb);
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			ptl_pack_json(&pk, v, &ptl_shapes[si]);
			cr_assert_eq(
			    evb_proto_event_decode(&ev, sb.data, sb.size, &d),
			    EVB_OK, "%s", d.msg);
			cr_assert_eq(
			    evb_proto_env_head(sb.data, sb.size, &h, &d),
			    EVB_OK, "type %d shape %s: %s", t,
			    ptl_shapes[si].name, d.msg);
			cr_assert_eq(h.type, t);
			cr_assert_eq(h.has_ts, evb_proto_event_has_ts(ev));
			cr_assert_eq(h.ts, evb_proto_event_ts(ev));
			a = evb_proto_event_id(ev);
			cr_assert_eq(h.id.len, a.len);
			if (a.len > 0) {
				cr_assert_arr_eq(h.id.ptr, a.ptr, a.len);
			}
			b = evb_proto_event_corr(ev);
			cr_assert_eq(h.corr.len, b.len);
			if (b.len > 0) {
				cr_assert_arr_eq(h.corr.ptr, b.ptr, b.len);
			}
			cr_assert_eq(
			    (const void *) h.env, (const void *) sb.data);
			cr_assert_eq(h.env_len, sb.size);
			head_agrees(&h, ev, ptl_data(v), ptl_shapes[si].name);
			evb_proto_event_free(ev);
			msgpack_sbuffer_destroy(&sb);
			json_decref(v);
		}
	}
}

Test(codec, env_head_refuses_what_is_not_an_envelope, .timeout = 30)
{
	static const uint8_t junk[]   = "not msgpack";
	static const uint8_t notype[] = { 0x81, 0xa2, 'i', 'd', 0xa1, 'x' };
	evb_proto_head       h        = { .type = -7 };
	evb_diag             d        = { { 0 } };

	cr_assert_eq(
	    evb_proto_env_head(junk, sizeof(junk) - 1, &h, &d), EVB_EMALFORMED);
	cr_assert_eq(
	    evb_proto_env_head(notype, sizeof(notype), &h, &d), EVB_EMALFORMED);
	cr_assert_eq(evb_proto_env_head(notype, 0, &h, &d), EVB_EMALFORMED);
	cr_assert_eq(h.type, -7, "out-param written on failure");
	cr_assert_neq(d.msg[0], '\0');
}

/* head_of packs the JSON object text after "t.k" 0x00 and reads the head. */
static int
head_of(const char *json, evb_proto_head *h, evb_diag *d)
{
	json_t         *v = ptl_parse(json);
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	int             rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_sbuffer_write(&sb, "t.k", 4);
	ptl_pack_json(&pk, v, &ptl_shapes[0]);
	rc = evb_proto_frame_head(sb.data, sb.size, h, d);
	msgpack_sbuffer_destroy(&sb);
	json_decref(v);
	return rc;
}

Test(codec, frame_head_refuses_what_it_cannot_read, .timeout = 30)
{
	static const char *const bad[] = {
		"{\"type\":\"market_data\",\"seq\":1}",         /* no epoch */
		"{\"type\":\"market_data\",\"epoch\":1}",       /* no seq */
		"{\"seq\":1,\"epoch\":1}",                      /* no type */
		"{\"type\":\"no_such\",\"seq\":1,\"epoch\":1}", /* unknown */
		"{\"type\":7,\"seq\":1,\"epoch\":1}",
		"{\"type\":\"market_data\",\"seq\":-1,\"epoch\":1}",
		"{\"type\":\"market_data\",\"seq\":\"1\",\"epoch\":1}",
		"{\"type\":\"market_data\",\"seq\":1,\"epoch\":1,"
		"\"ts\":-5}",
		"{\"type\":\"market_data\",\"seq\":1,\"epoch\":1,"
		"\"id\":\"\"}",
		"{\"type\":\"market_data\",\"seq\":1,\"epoch\":1,"
		"\"id\":5}",
		"{\"type\":\"market_data\",\"seq\":1,\"epoch\":1,"
		"\"corr\":\"\"}",
		"{\"type\":\"market_data\",\"seq\":1,\"epoch\":1,"
		"\"data\":7}",
		"[1,2]",
	};
	evb_proto_head h;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		evb_diag d = { { 0 } };

		h.type = -7;
		cr_assert_eq(
		    head_of(bad[i], &h, &d), EVB_EMALFORMED, "%s", bad[i]);
		cr_assert_eq(h.type, -7, "out-param written for %s", bad[i]);
		cr_assert_neq(d.msg[0], '\0', "no diag for %s", bad[i]);
	}
	{
		evb_diag d = { { 0 } };

		// Only the fields the head reads are checked: data may hold
		// anything, and unknown keys are skipped.
		cr_assert_eq(head_of("{\"type\":\"market_data\",\"seq\":9,"
		                     "\"x\":[1,{\"a\":null}],\"epoch\":3,"
		                     "\"data\":{\"bid\":\"high\"}}",
		                 &h, &d),
		    EVB_OK, "%s", d.msg);
		cr_assert_eq(h.seq, 9);
		cr_assert_eq(h.epoch, 3);
		cr_assert_not(h.has_ts);
		cr_assert_eq(h.id.len, 0);
		cr_assert_eq(h.corr.len, 0);
		cr_assert_not_null(h.data);
	}
}

Test(codec, frame_head_refuses_truncated_and_trailing_bytes, .timeout = 30)
{
	evb_event     *ev = from_json(ptl_full_json[0]);
	evb_proto_head h;
	evb_diag       d = { { 0 } };
	evb_buf        frame;

	evb_proto_event_set_seq(ev, 5, 6);
	evb_buf_init(&frame);
	cr_assert_eq(evb_proto_frame_encode(ev, &frame), EVB_OK);
	// Every proper prefix is refused, and never read past.
	for (size_t n = 0; n < frame.len; n++) {
		uint8_t *copy = malloc(n > 0 ? n : 1);

		memcpy(copy, frame.data, n);
		cr_assert_eq(evb_proto_frame_head(copy, n, &h, &d),
		    EVB_EMALFORMED, "prefix of %zu bytes", n);
		free(copy);
	}
	cr_assert_eq(evb_buf_append(&frame, "\xc0", 1), EVB_OK);
	cr_assert_eq(evb_proto_frame_head(frame.data, frame.len, &h, &d),
	    EVB_EMALFORMED);
	cr_assert(strstr(d.msg, "after the envelope") != NULL, "%s", d.msg);
	evb_buf_fini(&frame);
	evb_proto_event_free(ev);
}

/* ---- Ingest ----------------------------------------------------------- */

Test(codec, ingest_single_map_yields_one_event, .timeout = 30)
{
	msgpack_sbuffer  sb;
	evb_proto_ingest it;
	evb_event       *ev = NULL;
	evb_diag         d  = { { 0 } };

	msgpack_sbuffer_init(&sb);
	ptl_sbuf_json(&sb, ptl_full_json[2], &ptl_shapes[0]);
	cr_assert_eq(evb_proto_ingest_begin(&it, sb.data, sb.size, &d), EVB_OK);
	cr_assert_not(it.is_batch);
	cr_assert_eq(it.count, 1);
	cr_assert_eq(it.index, 0);
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(it.index, 1);
	cr_assert_eq(evb_proto_event_type(ev), 2);
	evb_proto_event_free(ev);
	ev = SENTINEL;
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_EOF);
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_EOF);
	cr_assert_eq(ev, SENTINEL);
	msgpack_sbuffer_destroy(&sb);
}

Test(codec, ingest_single_bad_map_then_eof, .timeout = 30)
{
	msgpack_sbuffer  sb;
	evb_proto_ingest it;
	evb_event       *ev = SENTINEL;
	evb_diag         d  = { { 0 } };

	msgpack_sbuffer_init(&sb);
	ptl_sbuf_json(
	    &sb, "{\"type\":\"user_action\",\"data\":{}}", &ptl_shapes[0]);
	cr_assert_eq(evb_proto_ingest_begin(&it, sb.data, sb.size, &d), EVB_OK);
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_ESCHEMA);
	cr_assert(strstr(d.msg, "user_action.data.") == d.msg, "%s", d.msg);
	cr_assert_eq(ev, SENTINEL);
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_EOF);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * batch_of packs n events (type i % 8, in varied shapes) as one array;
 * the event at index bad (if < n) is a fire_command with volume 250.
 */
static void
batch_of(msgpack_sbuffer *sb, size_t n, size_t bad)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	(void) msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++) {
		const ptl_shape *s = &ptl_shapes[i % PTL_NSHAPES];

		if (i == bad) {
			ptl_sbuf_json(sb,
			    "{\"type\":\"fire_command\",\"data\":{\"command_"
			    "id\":"
			    "\"c\",\"user_id\":\"u\",\"signal_id\":\"s\","
			    "\"symbol\":\"EURUSD\",\"direction\":\"BUY\","
			    "\"volume\":250}}",
			    s);
		} else {
			ptl_sbuf_json(sb, ptl_valid_json[i % PTL_NTYPES], s);
		}
	}
}

Test(codec, ingest_batch_of_1000, .timeout = 60)
{
	msgpack_sbuffer  sb;
	evb_proto_ingest it;
	evb_diag         d = { { 0 } };

	batch_of(&sb, 1000, SIZE_MAX);
	cr_assert_eq(evb_proto_ingest_begin(&it, sb.data, sb.size, &d), EVB_OK,
	    "%s", d.msg);
	cr_assert(it.is_batch);
	cr_assert_eq(it.count, 1000);
	for (size_t i = 0; i < 1000; i++) {
		evb_event *ev = NULL;

		cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_OK,
		    "event %zu: %s", i, d.msg);
		cr_assert_eq(it.index - 1, i);
		cr_assert_eq(evb_proto_event_type(ev), (int) (i % PTL_NTYPES));
		evb_proto_event_free(ev);
	}
	cr_assert_eq(
	    evb_proto_ingest_next(&it, &(evb_event *) { NULL }, &d), EVB_EOF);
	cr_assert_eq(it.off, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

Test(codec, ingest_bad_event_in_the_middle_rejects_only_it, .timeout = 60)
{
	msgpack_sbuffer  sb;
	evb_proto_ingest it;
	evb_diag         d  = { { 0 } };
	size_t           ok = 0;
	int              rc;

	batch_of(&sb, 1000, 500);
	cr_assert_eq(evb_proto_ingest_begin(&it, sb.data, sb.size, &d), EVB_OK);
	for (size_t i = 0; i < 1000; i++) {
		evb_event *ev = SENTINEL;

		memset(&d, 0, sizeof(d));
		rc = evb_proto_ingest_next(&it, &ev, &d);
		cr_assert_eq(it.index - 1, i);
		if (i == 500) {
			cr_assert_eq(rc, EVB_ESCHEMA);
			cr_assert_eq(ev, SENTINEL);
			cr_assert_str_eq(d.msg,
			    "fire_command.data.volume: expected number in "
			    "(0, 100], got 250");
			continue;
		}
		cr_assert_eq(rc, EVB_OK, "event %zu: %d %s", i, rc, d.msg);
		cr_assert_eq(evb_proto_event_type(ev), (int) (i % PTL_NTYPES));
		evb_proto_event_free(ev);
		ok++;
	}
	cr_assert_eq(ok, 999);
	cr_assert_eq(
	    evb_proto_ingest_next(&it, &(evb_event *) { NULL }, &d), EVB_EOF);
	msgpack_sbuffer_destroy(&sb);
}

Test(codec, ingest_truncated_batch_ends_with_malformed_then_eof, .timeout = 30)
{
	msgpack_sbuffer  sb;
	evb_proto_ingest it;
	evb_event       *ev = NULL;
	evb_diag         d  = { { 0 } };
	size_t           first;

	/* Three events; the cut lands in the middle of the second. */
	msgpack_sbuffer_init(&sb);
	ptl_sbuf_json(&sb, ptl_valid_json[0], &ptl_shapes[0]);
	first = sb.size;
	msgpack_sbuffer_destroy(&sb);
	batch_of(&sb, 3, SIZE_MAX);
	cr_assert_eq(evb_proto_ingest_begin(&it, sb.data, 1 + first + 10, &d),
	    EVB_OK, "%s", d.msg);
	cr_assert_eq(it.count, 3);
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_OK, "%s", d.msg);
	evb_proto_event_free(ev);
	ev = SENTINEL;
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_EMALFORMED);
	cr_assert_eq(it.index - 1, 1);
	cr_assert_eq(ev, SENTINEL);
	cr_assert_neq(d.msg[0], '\0');
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_EOF);
	cr_assert_eq(evb_proto_ingest_next(&it, &ev, &d), EVB_EOF);
	cr_assert_eq(ev, SENTINEL);
	msgpack_sbuffer_destroy(&sb);
}

Test(codec, ingest_batch_with_trailing_bytes, .timeout = 30)
{
	msgpack_sbuffer  sb;
	evb_proto_ingest it;
	evb_diag         d = { { 0 } };
	int              rc;

	batch_of(&sb, 2, SIZE_MAX);
	msgpack_sbuffer_write(&sb, "\xc0", 1);
	rc = evb_proto_ingest_begin(&it, sb.data, sb.size, &d);
	if (rc == EVB_OK) {
		/* Both events may still be delivered, but the end must say. */
		evb_event *ev   = NULL;
		size_t     ok   = 0;
		int        last = EVB_OK;

		for (size_t i = 0; i < 4 && last != EVB_EOF; i++) {
			last = evb_proto_ingest_next(&it, &ev, &d);
			if (last == EVB_OK) {
				evb_proto_event_free(ev);
				ok++;
			} else if (last != EVB_EOF) {
				cr_assert_eq(last, EVB_EMALFORMED);
			}
		}
		cr_assert_eq(last, EVB_EOF);
		cr_assert_lt(ok, 3);
	} else {
		cr_assert_eq(rc, EVB_EMALFORMED, "%s", d.msg);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* ---- Topics ----------------------------------------------------------- */

Test(codec, topic_for_each_type, .timeout = 30)
{
	static const char *const want[PTL_NTYPES] = {
		"signal_generated.EURUSD",
		"fire_command.GBPUSD",
		"trade_executed.XAU_USD",
		"balance_update.u-1",
		"system_health.collector",
		"user_action.u-2",
		"market_data.BRK.B",
		"pattern_detected.US500",
	};

	for (int t = 0; t < PTL_NTYPES; t++) {
		evb_event *ev = from_json(ptl_full_json[t]);
		char       topic[EVB_PROTO_MAX_TOPIC];
		size_t     len = 0;
		size_t     n   = strlen(want[t]);

		cr_assert_eq(
		    evb_proto_event_topic(ev, topic, sizeof(topic), &len),
		    EVB_OK);
		cr_assert_eq(len, n, "%s", want[t]);
		cr_assert_arr_eq(topic, want[t], n);
		/* Exactly enough room works; one byte less does not. */
		len = 0;
		cr_assert_eq(evb_proto_event_topic(ev, topic, n, &len), EVB_OK);
		cr_assert_eq(len, n);
		len = 999;
		cr_assert_eq(
		    evb_proto_event_topic(ev, topic, n - 1, &len), EVB_ETOOBIG);
		cr_assert_eq(len, 999);
		evb_proto_event_free(ev);
	}
}

Test(codec, longest_route_fits_max_topic, .timeout = 30)
{
	/* A 4096-byte user_id is a valid string; the topic must still fit. */
	char      *uid = malloc(EVB_PROTO_MAX_STR + 1);
	json_t    *v   = ptl_valid_event(5);
	evb_event *ev  = NULL;
	evb_diag   d   = { { 0 } };
	char       topic[EVB_PROTO_MAX_TOPIC];
	size_t     len = 0;
	int        rc;

	cr_assert_not_null(uid);
	memset(uid, 'u', EVB_PROTO_MAX_STR);
	uid[EVB_PROTO_MAX_STR] = '\0';
	json_object_set_new(ptl_data(v), "user_id", json_string(uid));
	rc = ptl_decode_json(v, &ev, &d);
	if (rc == EVB_OK) {
		cr_assert_eq(
		    evb_proto_event_topic(ev, topic, sizeof(topic), &len),
		    EVB_OK, "header: EVB_PROTO_MAX_TOPIC always suffices");
		cr_assert_leq(len, sizeof(topic));
		evb_proto_event_free(ev);
	} else {
		/* Or the decoder bounds routing keys so that it does. */
		cr_assert(rc == EVB_ESCHEMA || rc == EVB_ETOOBIG, "%d", rc);
		cr_assert(strstr(d.msg, "user_action.data.user_id") == d.msg,
		    "%s", d.msg);
	}
	json_decref(v);
	free(uid);
}

/* ---- Setters ---------------------------------------------------------- */

Test(codec, setters_show_in_encode_and_to_json, .timeout = 30)
{
	evb_event *ev   = from_json(ptl_valid_json[1]);
	evb_event *back = NULL;
	evb_diag   d    = { { 0 } };
	evb_buf    b;
	json_t    *o;
	evb_str    id;

	cr_assert_not(evb_proto_event_has_ts(ev));
	cr_assert_not(evb_proto_event_has_seq(ev));
	cr_assert_eq(evb_proto_event_set_id(ev, "broker-1", 8), EVB_OK);
	evb_proto_event_set_ts(ev, 1764035435000000001LL);
	evb_proto_event_set_seq(ev, INT64_MAX, 3);
	id = evb_proto_event_id(ev);
	cr_assert_eq(id.len, 8);
	cr_assert_arr_eq(id.ptr, "broker-1", 8);
	cr_assert(evb_proto_event_has_ts(ev));
	cr_assert_eq(evb_proto_event_ts(ev), 1764035435000000001LL);
	cr_assert(evb_proto_event_has_seq(ev));
	cr_assert_eq(evb_proto_event_seq(ev), INT64_MAX);
	cr_assert_eq(evb_proto_event_epoch(ev), 3);
	encode_new(ev, &b);
	cr_assert_eq(evb_proto_event_decode(&back, b.data, b.len, &d), EVB_OK,
	    "%s", d.msg);
	id = evb_proto_event_id(back);
	cr_assert_eq(id.len, 8);
	cr_assert_arr_eq(id.ptr, "broker-1", 8);
	cr_assert_eq(evb_proto_event_ts(back), 1764035435000000001LL);
	cr_assert_eq(evb_proto_event_seq(back), INT64_MAX);
	cr_assert_eq(evb_proto_event_epoch(back), 3);
	o = to_json_obj(ev);
	cr_assert_str_eq(
	    json_string_value(json_object_get(o, "id")), "broker-1");
	cr_assert_eq(json_integer_value(json_object_get(o, "ts")),
	    1764035435000000001LL);
	/* seq stays below 2^63, so JSON readers hold it exactly. */
	cr_assert_eq(json_integer_value(json_object_get(o, "seq")), INT64_MAX);
	cr_assert_eq(json_integer_value(json_object_get(o, "epoch")), 3);
	json_decref(o);
	evb_buf_fini(&b);
	evb_proto_event_free(back);
	evb_proto_event_free(ev);
}

Test(codec, setters_replace_decoded_values, .timeout = 30)
{
	evb_event *ev   = from_json(ptl_full_json[0]);
	evb_event *back = NULL;
	evb_diag   d    = { { 0 } };
	evb_buf    b;
	char       id[EVB_PROTO_MAX_ID];

	memset(id, 'q', sizeof(id));
	cr_assert_eq(evb_proto_event_set_id(ev, id, sizeof(id)), EVB_OK);
	evb_proto_event_set_ts(ev, 5);
	evb_proto_event_set_seq(ev, 9, 1);
	/* The id was copied: changing the caller's bytes changes nothing. */
	memset(id, 'z', sizeof(id));
	encode_new(ev, &b);
	cr_assert_eq(evb_proto_event_decode(&back, b.data, b.len, &d), EVB_OK,
	    "%s", d.msg);
	cr_assert_eq(evb_proto_event_id(back).len, EVB_PROTO_MAX_ID);
	cr_assert_eq(evb_proto_event_id(back).ptr[0], 'q');
	cr_assert_eq(evb_proto_event_ts(back), 5);
	cr_assert_eq(evb_proto_event_seq(back), 9);
	cr_assert_eq(evb_proto_event_epoch(back), 1);
	/* The other envelope fields are untouched. */
	cr_assert_eq(evb_proto_event_source(back).len, 7);
	cr_assert_arr_eq(evb_proto_event_source(back).ptr, "scanner", 7);
	cr_assert_eq(evb_proto_event_corr(back).len, 3);
	evb_buf_fini(&b);
	evb_proto_event_free(back);
	evb_proto_event_free(ev);
}

Test(codec, set_id_rejects_empty_and_long_ids, .timeout = 30)
{
	evb_event *ev = from_json(ptl_full_json[0]);
	char       id[EVB_PROTO_MAX_ID + 1];
	evb_str    kept;

	memset(id, 'i', sizeof(id));
	cr_assert_eq(evb_proto_event_set_id(ev, id, 0), EVB_EINVAL);
	cr_assert_eq(evb_proto_event_set_id(ev, id, sizeof(id)), EVB_EINVAL);
	kept = evb_proto_event_id(ev);
	cr_assert_eq(kept.len, 4, "a refused id must not change the event");
	cr_assert_arr_eq(kept.ptr, "ev-1", 4);
	evb_proto_event_free(ev);
}

/* ---- Accessors -------------------------------------------------------- */

Test(codec, get_accessors_report_absent_and_wrong_kind, .timeout = 30)
{
	evb_event *ev = from_json(
	    "{\"type\":\"trade_executed\",\"data\":{\"ticket\":12345,"
	    "\"user_id\":\"u-1\",\"symbol\":\"EURUSD\",\"direction\":\"BUY\","
	    "\"volume\":1.25,\"price\":1.5,\"x_map\":{},\"x_null\":null,"
	    "\"x_big\":9223372036854775807}}");
	evb_str s = { "untouched", 9 };
	double  n = -1;
	int64_t i = -1;

	cr_assert_eq(evb_proto_event_get_str(ev, "user_id", &s), EVB_OK);
	cr_assert_eq(s.len, 3);
	cr_assert_arr_eq(s.ptr, "u-1", 3);
	s.len = 9;
	cr_assert_eq(evb_proto_event_get_str(ev, "nope", &s), EVB_ENOTFOUND);
	cr_assert_eq(evb_proto_event_get_str(ev, "ticket", &s), EVB_ESCHEMA);
	cr_assert_eq(evb_proto_event_get_str(ev, "x_map", &s), EVB_ESCHEMA);
	cr_assert_eq(evb_proto_event_get_str(ev, "x_null", &s), EVB_ESCHEMA);
	cr_assert_eq(s.len, 9, "get_str wrote *val on failure");

	cr_assert_eq(evb_proto_event_get_num(ev, "volume", &n), EVB_OK);
	cr_assert_eq(n, 1.25);
	cr_assert_eq(evb_proto_event_get_num(ev, "ticket", &n), EVB_OK);
	cr_assert_eq(n, 12345.0);
	n = -1;
	cr_assert_eq(evb_proto_event_get_num(ev, "nope", &n), EVB_ENOTFOUND);
	cr_assert_eq(evb_proto_event_get_num(ev, "symbol", &n), EVB_ESCHEMA);
	cr_assert_eq(evb_proto_event_get_num(ev, "x_map", &n), EVB_ESCHEMA);
	cr_assert_eq(n, -1, "get_num wrote *val on failure");

	cr_assert_eq(evb_proto_event_get_int(ev, "ticket", &i), EVB_OK);
	cr_assert_eq(i, 12345);
	cr_assert_eq(evb_proto_event_get_int(ev, "x_big", &i), EVB_OK);
	cr_assert_eq(i, INT64_MAX);
	i = -1;
	cr_assert_eq(evb_proto_event_get_int(ev, "nope", &i), EVB_ENOTFOUND);
	cr_assert_eq(evb_proto_event_get_int(ev, "volume", &i), EVB_ESCHEMA);
	cr_assert_eq(evb_proto_event_get_int(ev, "user_id", &i), EVB_ESCHEMA);
	cr_assert_eq(i, -1, "get_int wrote *val on failure");
	/* Accessors read data only, not the envelope. */
	cr_assert_eq(evb_proto_event_get_str(ev, "type", &s), EVB_ENOTFOUND);
	evb_proto_event_free(ev);
}

Test(codec, get_int_refuses_uint64_above_int64_max, .timeout = 30)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	evb_event      *ev = NULL;
	evb_diag        d  = { { 0 } };
	int64_t         i  = -1;
	double          n  = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "type", 4);
	msgpack_pack_str_with_body(&pk, "user_action", 11);
	msgpack_pack_str_with_body(&pk, "data", 4);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "user_id", 7);
	msgpack_pack_str_with_body(&pk, "u", 1);
	msgpack_pack_str_with_body(&pk, "action", 6);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_str_with_body(&pk, "big", 3);
	msgpack_pack_fix_uint64(&pk, (uint64_t) INT64_MAX + 1);
	msgpack_pack_str_with_body(&pk, "edge", 4);
	msgpack_pack_fix_uint64(&pk, (uint64_t) INT64_MAX);
	cr_assert_eq(evb_proto_event_decode(&ev, sb.data, sb.size, &d), EVB_OK,
	    "%s", d.msg);
	cr_assert_eq(evb_proto_event_get_int(ev, "big", &i), EVB_ESCHEMA);
	cr_assert_eq(i, -1);
	cr_assert_eq(evb_proto_event_get_num(ev, "big", &n), EVB_OK);
	cr_assert_eq(n, 9223372036854775808.0);
	cr_assert_eq(evb_proto_event_get_int(ev, "edge", &i), EVB_OK);
	cr_assert_eq(i, INT64_MAX);
	evb_proto_event_free(ev);
	msgpack_sbuffer_destroy(&sb);
}

Test(codec, accessors_on_a_fully_stamped_event, .timeout = 30)
{
	evb_event *ev = from_json(ptl_full_json[0]);

	cr_assert_eq(evb_proto_event_type(ev), 0);
	cr_assert_eq(evb_proto_event_id(ev).len, 4);
	cr_assert_arr_eq(evb_proto_event_id(ev).ptr, "ev-1", 4);
	cr_assert_eq(evb_proto_event_source(ev).len, 7);
	cr_assert_arr_eq(evb_proto_event_source(ev).ptr, "scanner", 7);
	cr_assert_eq(evb_proto_event_corr(ev).len, 3);
	cr_assert_arr_eq(evb_proto_event_corr(ev).ptr, "c-1", 3);
	cr_assert(evb_proto_event_has_ts(ev));
	cr_assert_eq(evb_proto_event_ts(ev), 1764035435123456789LL);
	cr_assert_eq(evb_proto_event_route(ev).len, 6);
	cr_assert_arr_eq(evb_proto_event_route(ev).ptr, "EURUSD", 6);
	evb_proto_event_free(ev);
	evb_proto_event_free(NULL);
}

/* ---- msg_extent ------------------------------------------------------- */

Test(codec, extent_splits_concatenated_messages, .timeout = 30)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer batch;
	size_t          sizes[PTL_NTYPES + 1];
	size_t          off = 0;
	size_t          k   = 0;

	msgpack_sbuffer_init(&sb);
	for (int t = 0; t < PTL_NTYPES; t++) {
		size_t before = sb.size;

		ptl_sbuf_json(
		    &sb, ptl_full_json[t], &ptl_shapes[t % PTL_NSHAPES]);
		sizes[t] = sb.size - before;
	}
	/* A batch is one object too. */
	batch_of(&batch, 10, 3);
	msgpack_sbuffer_write(&sb, batch.data, batch.size);
	sizes[PTL_NTYPES] = batch.size;
	while (off < sb.size) {
		size_t   n = 0;
		evb_diag d = { { 0 } };

		cr_assert_lt(k, PTL_NTYPES + 1);
		cr_assert_eq(
		    evb_proto_msg_extent(sb.data + off, sb.size - off, &n, &d),
		    EVB_OK, "object %zu: %s", k, d.msg);
		cr_assert_eq(n, sizes[k], "object %zu", k);
		off += n;
		k++;
	}
	cr_assert_eq(k, PTL_NTYPES + 1);
	cr_assert_eq(off, sb.size);
	msgpack_sbuffer_destroy(&batch);
	msgpack_sbuffer_destroy(&sb);
}

Test(codec, extent_checks_structure_not_schema, .timeout = 30)
{
	static const struct {
		const char *bytes;
		size_t      n;
		size_t      want;
	} cases[] = {
		{ "\x05", 1, 1 },
		{ "\xc0\xc0", 2, 1 },
		{ "\xa3"
		  "abc"
		  "\x01",
		    5, 4 },
		{ "\x81\xa4type\xa4nope", 11, 11 },
		{ "\x80\x80", 2, 1 },
		{ "\x92\x01\x02\x03", 4, 3 },
		{ "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9, 9 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t   n = 0;
		evb_diag d = { { 0 } };

		cr_assert_eq(
		    evb_proto_msg_extent(cases[i].bytes, cases[i].n, &n, &d),
		    EVB_OK, "case %zu: %s", i, d.msg);
		cr_assert_eq(n, cases[i].want, "case %zu", i);
	}
}

/* ---- evb_buf ---------------------------------------------------------- */

Test(codec, buf_grows_resets_and_frees, .timeout = 30)
{
	evb_buf b;
	uint8_t chunk[1000];
	size_t  cap;

	evb_buf_init(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
	cr_assert_eq(evb_buf_append(&b, "", 0), EVB_OK);
	cr_assert_eq(b.len, 0);
	for (size_t i = 0; i < 1000; i++) {
		memset(chunk, (int) (i & 0xff), sizeof(chunk));
		cr_assert_eq(evb_buf_append(&b, chunk, sizeof(chunk)), EVB_OK);
		cr_assert_eq(b.len, (i + 1) * sizeof(chunk));
		cr_assert_geq(b.cap, b.len);
	}
	for (size_t i = 0; i < 1000; i++) {
		cr_assert_eq(b.data[i * sizeof(chunk)], (uint8_t) (i & 0xff));
		cr_assert_eq(
		    b.data[i * sizeof(chunk) + 999], (uint8_t) (i & 0xff));
	}
	cap = b.cap;
	evb_buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, cap);
	cr_assert_not_null(b.data);
	cr_assert_eq(evb_buf_append(&b, "ab", 2), EVB_OK);
	cr_assert_arr_eq(b.data, "ab", 2);
	evb_buf_fini(&b);
	evb_buf_init(&b);
	evb_buf_fini(&b);
}

/* ---- The type table --------------------------------------------------- */

Test(codec, type_table_is_stable, .timeout = 30)
{
	cr_assert_eq(evb_proto_type_count(), PTL_NTYPES);
	for (int t = 0; t < PTL_NTYPES; t++) {
		int found = -1;

		cr_assert_str_eq(evb_proto_type_name(t), ptl_type_names[t]);
		cr_assert_eq(evb_proto_type_find(ptl_type_names[t],
		                 strlen(ptl_type_names[t]), &found),
		    EVB_OK);
		cr_assert_eq(found, t);
	}
	cr_assert_null(evb_proto_type_name(-1));
	cr_assert_null(evb_proto_type_name(PTL_NTYPES));
	cr_assert_null(evb_proto_type_name(1 << 20));
}

Test(codec, type_find_uses_exactly_len_bytes, .timeout = 30)
{
	int t = -1;

	cr_assert_eq(evb_proto_type_find("market_dataXYZ", 11, &t), EVB_OK);
	cr_assert_eq(t, 6);
	t = -1;
	cr_assert_eq(evb_proto_type_find("market_data", 6, &t), EVB_ENOTFOUND);
	cr_assert_eq(evb_proto_type_find("market", 6, &t), EVB_ENOTFOUND);
	cr_assert_eq(evb_proto_type_find("", 0, &t), EVB_ENOTFOUND);
	cr_assert_eq(evb_proto_type_find("MARKET_DATA", 11, &t), EVB_ENOTFOUND);
	cr_assert_eq(
	    evb_proto_type_find("market_data\0", 12, &t), EVB_ENOTFOUND);
	cr_assert_eq(t, -1, "find wrote *type on failure");
}

/* ---- Maps ------------------------------------------------------------- */

/*
 * evb_proto_map_get finds a str key, the first of equal ones, and never a
 * key of another kind; anything but a map has no keys.
 */
Test(codec, map_get_finds_str_keys_only)
{
	msgpack_sbuffer       sb;
	msgpack_packer        pk;
	msgpack_unpacked      u;
	const msgpack_object *v;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	(void) msgpack_pack_map(&pk, 4);
	(void) msgpack_pack_int(&pk, 7); // An int key: never a match.
	(void) msgpack_pack_int(&pk, 1);
	(void) msgpack_pack_bin_with_body(&pk, "seq", 3); // Nor a bin one.
	(void) msgpack_pack_int(&pk, 2);
	(void) msgpack_pack_str_with_body(&pk, "seq", 3);
	(void) msgpack_pack_int(&pk, 3);
	(void) msgpack_pack_str_with_body(&pk, "seq", 3);
	(void) msgpack_pack_int(&pk, 4);
	msgpack_unpacked_init(&u);
	cr_assert_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	v = evb_proto_map_get(&u.data, "seq");
	cr_assert_not_null(v);
	cr_assert_eq(v->via.u64, 3);
	cr_assert_null(evb_proto_map_get(&u.data, "se"));
	cr_assert_null(evb_proto_map_get(&u.data, "seq2"));
	cr_assert_null(evb_proto_map_get(&u.data.via.map.ptr[0].val, "seq"));
	cr_assert_null(evb_proto_map_get(NULL, "seq"));
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}
