/*
 * proto_testlib.h: helpers shared by the proto_*_test.c files.
 *
 * One valid event per type, in the order of the type table, and a packer
 * that turns a jansson value into MessagePack with a chosen shape (integer
 * widths, float32 or float64, str or bin keys), so each schema case can be
 * fed through evb_proto_event_from_json and through several encodings that
 * another producer might send. Everything is static inline: each test
 * file is its own executable and uses a different subset.
 */
#ifndef EVB_PROTO_TESTLIB_H
#define EVB_PROTO_TESTLIB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "proto/proto.h"

/* The type table, in its stable order. */
#define PTL_NTYPES 8
static const char *const ptl_type_names[PTL_NTYPES] = {
	"signal_generated",
	"fire_command",
	"trade_executed",
	"balance_update",
	"system_health",
	"user_action",
	"market_data",
	"pattern_detected",
};

/* A valid event of each type with its required data fields only. */
static const char *const ptl_valid_json[PTL_NTYPES] = {
	"{\"type\":\"signal_generated\",\"data\":{\"signal_id\":\"sig-1\","
	"\"symbol\":\"EURUSD\",\"direction\":\"BUY\",\"confidence\":75}}",
	"{\"type\":\"fire_command\",\"data\":{\"command_id\":\"cmd-1\","
	"\"user_id\":\"u-1\",\"signal_id\":\"sig-1\",\"symbol\":\"EURUSD\","
	"\"direction\":\"SELL\",\"volume\":1.5}}",
	"{\"type\":\"trade_executed\",\"data\":{\"ticket\":12345,"
	"\"user_id\":\"u-1\",\"symbol\":\"EURUSD\",\"direction\":\"BUY\","
	"\"volume\":1.25,\"price\":1.0842}}",
	"{\"type\":\"balance_update\",\"data\":{\"user_id\":\"u-1\","
	"\"balance\":1000.5,\"equity\":990.25}}",
	"{\"type\":\"system_health\",\"data\":{\"component\":\"broker\","
	"\"status\":\"healthy\"}}",
	"{\"type\":\"user_action\",\"data\":{\"user_id\":\"u-1\","
	"\"action\":\"login\"}}",
	"{\"type\":\"market_data\",\"data\":{\"symbol\":\"EURUSD\","
	"\"bid\":1.0841,\"ask\":1.0843}}",
	"{\"type\":\"pattern_detected\",\"data\":{\"symbol\":\"EURUSD\","
	"\"pattern_type\":\"head_shoulders\",\"confidence\":60}}",
};

/* The same events with every optional field set as well. */
static const char *const ptl_full_json[PTL_NTYPES] = {
	"{\"type\":\"signal_generated\",\"id\":\"ev-1\",\"ts\":"
	"1764035435123456789,\"source\":\"scanner\",\"corr\":\"c-1\","
	"\"data\":{\"signal_id\":\"sig-1\",\"symbol\":\"EURUSD\","
	"\"direction\":\"BUY\",\"confidence\":75.5,\"pattern_type\":\"flag\","
	"\"entry_price\":1.0842,\"stop_loss\":1.0811,\"take_profit\":1.0901,"
	"\"timeframe\":\"H1\"}}",
	"{\"type\":\"fire_command\",\"id\":\"ev-2\",\"data\":{\"command_id\":"
	"\"cmd-1\",\"user_id\":\"u-1\",\"signal_id\":\"sig-1\",\"symbol\":"
	"\"GBPUSD\",\"direction\":\"SELL\",\"volume\":0.5,\"stop_loss\":1.2711,"
	"\"take_profit\":1.2601}}",
	"{\"type\":\"trade_executed\",\"ts\":42,\"data\":{\"ticket\":987654321,"
	"\"user_id\":\"u-1\",\"symbol\":\"XAU_USD\",\"direction\":\"BUY\","
	"\"volume\":0.75,\"price\":2034.55,\"signal_id\":\"sig-1\","
	"\"command_id\":\"cmd-1\",\"commission\":-3.5,\"slippage_pips\":0.25}}",
	"{\"type\":\"balance_update\",\"source\":\"ledger\",\"data\":{"
	"\"user_id\":\"u-1\",\"balance\":-12.5,\"equity\":0,\"account_id\":"
	"\"acc-7\",\"margin\":0,\"currency\":\"USD\"}}",
	"{\"type\":\"system_health\",\"data\":{\"component\":\"collector\","
	"\"status\":\"degraded\",\"cpu_percent\":99.5,\"memory_mb\":512.25,"
	"\"uptime_s\":3600,\"message\":\"lagging\"}}",
	"{\"type\":\"user_action\",\"corr\":\"c-9\",\"seq\":7,\"epoch\":1,"
	"\"data\":{\"user_id\":"
	"\"u-2\",\"action\":\"settings\",\"details\":{\"theme\":\"dark\","
	"\"lots\":[1,2.5,\"x\",null,true],\"nested\":{\"a\":{\"b\":false}}}}}",
	"{\"type\":\"market_data\",\"data\":{\"symbol\":\"BRK.B\",\"bid\":412."
	"5,"
	"\"ask\":412.5,\"volume\":0}}",
	"{\"type\":\"pattern_detected\",\"data\":{\"symbol\":\"US500\","
	"\"pattern_type\":\"double_top\",\"confidence\":100,\"timeframe\":"
	"\"MN1\",\"direction\":\"SELL\"}}",
};

/* The routing key of each valid event above. */
static const char *const ptl_valid_route[PTL_NTYPES] = {
	"EURUSD",
	"EURUSD",
	"EURUSD",
	"u-1",
	"broker",
	"u-1",
	"EURUSD",
	"EURUSD",
};

/*
 * Packing shapes. Integers are written with the narrowest fixed width that
 * holds them but at least int_width bits (8, 16, 32 or 64; 0 picks
 * msgpack-c's compact form, fixints included).
 */
#define PTL_KEYS_BIN 0x1u  /* Map keys as bin instead of str. */
#define PTL_FLOAT32 0x2u   /* Reals as float32 instead of float64. */
#define PTL_UNSIGNED 0x4u  /* Non-negative integers as uint, not int. */
#define PTL_STR_V4RAW 0x8u /* Strings in the old raw family (no str8). */

typedef struct ptl_shape {
	unsigned    flags;     /* PTL_* bits. */
	int         int_width; /* Minimum integer width in bits, 0: compact. */
	const char *name;      /* For failure messages. */
} ptl_shape;

/* Shapes every schema case is fed through, besides JSON. */
#define PTL_NSHAPES 7
static const ptl_shape ptl_shapes[PTL_NSHAPES] = {
	{ 0, 0, "compact" },
	{ PTL_UNSIGNED, 8, "uint8+float64" },
	{ PTL_FLOAT32 | PTL_KEYS_BIN, 8, "int8+float32+bin" },
	{ PTL_UNSIGNED | PTL_FLOAT32 | PTL_KEYS_BIN, 16, "uint16+float32+bin" },
	{ 0, 32, "int32+float64" },
	{ PTL_KEYS_BIN | PTL_STR_V4RAW, 64, "int64+bin+v4raw" },
	{ PTL_UNSIGNED | PTL_FLOAT32, 64, "uint64+float32" },
};

static inline void
ptl_pack_int(msgpack_packer *pk, json_int_t v, const ptl_shape *s)
{
	int w = s->int_width;

	if (w == 0) {
		(void) msgpack_pack_int64(pk, (int64_t) v);
		return;
	}
	if (v >= 0 && (s->flags & PTL_UNSIGNED) != 0) {
		if (w <= 8 && v <= UINT8_MAX) {
			(void) msgpack_pack_fix_uint8(pk, (uint8_t) v);
		} else if (w <= 16 && v <= UINT16_MAX) {
			(void) msgpack_pack_fix_uint16(pk, (uint16_t) v);
		} else if (w <= 32 && v <= UINT32_MAX) {
			(void) msgpack_pack_fix_uint32(pk, (uint32_t) v);
		} else {
			(void) msgpack_pack_fix_uint64(pk, (uint64_t) v);
		}
		return;
	}
	if (w <= 8 && v >= INT8_MIN && v <= INT8_MAX) {
		(void) msgpack_pack_fix_int8(pk, (int8_t) v);
	} else if (w <= 16 && v >= INT16_MIN && v <= INT16_MAX) {
		(void) msgpack_pack_fix_int16(pk, (int16_t) v);
	} else if (w <= 32 && v >= INT32_MIN && v <= INT32_MAX) {
		(void) msgpack_pack_fix_int32(pk, (int32_t) v);
	} else {
		(void) msgpack_pack_fix_int64(pk, (int64_t) v);
	}
}

static inline void
ptl_pack_text(msgpack_packer *pk, const char *p, size_t n, const ptl_shape *s)
{
	if ((s->flags & PTL_STR_V4RAW) != 0) {
		(void) msgpack_pack_v4raw(pk, n);
		(void) msgpack_pack_v4raw_body(pk, p, n);
	} else {
		(void) msgpack_pack_str_with_body(pk, p, n);
	}
}

/* ptl_pack_json writes v in shape s. */
static inline void
ptl_pack_json(msgpack_packer *pk, const json_t *v, const ptl_shape *s)
{
	const char *key;
	json_t     *item;
	size_t      i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		(void) msgpack_pack_map(pk, json_object_size(v));
		json_object_foreach((json_t *) v, key, item)
		{
			if ((s->flags & PTL_KEYS_BIN) != 0) {
				(void) msgpack_pack_bin_with_body(
				    pk, key, strlen(key));
			} else {
				ptl_pack_text(pk, key, strlen(key), s);
			}
			ptl_pack_json(pk, item, s);
		}
		break;
	case JSON_ARRAY:
		(void) msgpack_pack_array(pk, json_array_size(v));
		json_array_foreach(v, i, item)
		{
			ptl_pack_json(pk, item, s);
		}
		break;
	case JSON_STRING:
		ptl_pack_text(
		    pk, json_string_value(v), json_string_length(v), s);
		break;
	case JSON_INTEGER:
		ptl_pack_int(pk, json_integer_value(v), s);
		break;
	case JSON_REAL:
		if ((s->flags & PTL_FLOAT32) != 0) {
			(void) msgpack_pack_float(
			    pk, (float) json_real_value(v));
		} else {
			(void) msgpack_pack_double(pk, json_real_value(v));
		}
		break;
	case JSON_TRUE:
		(void) msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		(void) msgpack_pack_false(pk);
		break;
	case JSON_NULL:
		(void) msgpack_pack_nil(pk);
		break;
	}
}

/* ptl_decode_shape packs v in shape s and decodes it. */
static inline int
ptl_decode_shape(
    const json_t *v, const ptl_shape *s, evb_event **out, evb_diag *d)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	int             rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	ptl_pack_json(&pk, v, s);
	rc = evb_proto_event_decode(out, sb.data, sb.size, d);
	msgpack_sbuffer_destroy(&sb);
	return (rc);
}

/* ptl_decode_json dumps v as compact JSON and parses it with proto. */
static inline int
ptl_decode_json(const json_t *v, evb_event **out, evb_diag *d)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	int   rc;

	if (text == NULL) {
		return (EVB_ENOMEM);
	}
	rc = evb_proto_event_from_json(out, text, strlen(text), d);
	free(text);
	return (rc);
}

/* ptl_parse parses JSON text known to be valid (NULL on a test bug). */
static inline json_t *
ptl_parse(const char *text)
{
	return (json_loads(text, JSON_DECODE_ANY, NULL));
}

/* ptl_valid_event returns a fresh copy of type t's valid event. */
static inline json_t *
ptl_valid_event(int t)
{
	return (ptl_parse(ptl_valid_json[t]));
}

/* ptl_data returns the borrowed data object of an event. */
static inline json_t *
ptl_data(json_t *ev)
{
	return (json_object_get(ev, "data"));
}

/* ptl_sbuf_json appends JSON text packed in shape s to sb. */
static inline void
ptl_sbuf_json(msgpack_sbuffer *sb, const char *json_text, const ptl_shape *s)
{
	msgpack_packer pk;
	json_t        *v = ptl_parse(json_text);

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (v != NULL) {
		ptl_pack_json(&pk, v, s);
		json_decref(v);
	}
}

#endif /* EVB_PROTO_TESTLIB_H */
