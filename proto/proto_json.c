/*
 * proto_json.c: events to and from JSON, for the command line.
 *
 * JSON in: jansson parses the text, the value is packed to MessagePack
 * with msgpack-c, and those bytes take the ordinary decode path, so JSON
 * and MessagePack input are validated by the same code.
 *
 * JSON out is written here rather than through jansson's dumper, because
 * jansson prints reals with 17 significant digits (0.1 becomes
 * 0.10000000000000001); we print the shortest form that reads back to
 * the same value, so JSON -> event -> JSON is the identity.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/proto_int.h"

static int
json_pack_value(msgpack_packer *pk, json_t *v)
{
	const char *key;
	json_t     *val;
	size_t      i;
	int         rv = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		rv = msgpack_pack_map(pk, json_object_size(v));
		json_object_foreach(v, key, val)
		{
			if (rv == 0) {
				rv = msgpack_pack_str_with_body(
				    pk, key, strlen(key));
			}
			if (rv == 0) {
				rv = json_pack_value(pk, val);
			}
		}
		return (rv);
	case JSON_ARRAY:
		rv = msgpack_pack_array(pk, json_array_size(v));
		json_array_foreach(v, i, val)
		{
			if (rv == 0) {
				rv = json_pack_value(pk, val);
			}
		}
		return (rv);
	case JSON_STRING:
		return (msgpack_pack_str_with_body(
		    pk, json_string_value(v), json_string_length(v)));
	case JSON_INTEGER:
		return (msgpack_pack_int64(pk, json_integer_value(v)));
	case JSON_REAL:
		return (msgpack_pack_double(pk, json_real_value(v)));
	case JSON_TRUE:
		return (msgpack_pack_true(pk));
	case JSON_FALSE:
		return (msgpack_pack_false(pk));
	default:
		return (msgpack_pack_nil(pk));
	}
}

int
evb_proto_event_from_json(
    evb_event **out, const char *text, size_t len, evb_diag *diag)
{
	json_error_t   jerr;
	json_t        *root;
	evb_buf        buf;
	msgpack_packer pk;
	int            rv;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		evb_diag_set(diag, "json: line %d column %d: %s", jerr.line,
		    jerr.column, jerr.text);
		return (EVB_EMALFORMED);
	}
	if (!json_is_object(root)) {
		evb_diag_set(diag, "json: expected an object, got %s",
		    json_is_array(root) ? "an array" : "a scalar");
		json_decref(root);
		return (EVB_EMALFORMED);
	}
	evb_buf_init(&buf);
	msgpack_packer_init(&pk, &buf, proto_buf_write);
	// jansson bounds nesting (2048 levels), so this recursion is bounded;
	// the decoder then applies EVB_PROTO_MAX_DEPTH with its usual message.
	rv = json_pack_value(&pk, root);
	json_decref(root);
	if (rv != 0) {
		rv = EVB_ENOMEM;
	} else {
		rv = evb_proto_event_decode(out, buf.data, buf.len, diag);
	}
	evb_buf_fini(&buf);
	return (rv);
}

/* ---- JSON writer --------------------------------------------------------- */

/*
 * The writer uses a sticky error: appends after a failure are skipped and
 * the caller checks jw.err once at the end.
 */
typedef struct json_writer {
	evb_buf *out; /* Destination. */
	int      err; /* First error, EVB_OK while all is well. */
} json_writer;

static void
jw_raw(json_writer *w, const char *s, size_t n)
{
	if (w->err == EVB_OK) {
		w->err = evb_buf_append(w->out, s, n);
	}
}

static void
jw_lit(json_writer *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

static void
jw_str(json_writer *w, const char *s, size_t n)
{
	size_t run = 0;

	jw_raw(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];
		char          esc[8];

		if (c >= 0x20 && c != '"' && c != '\\') {
			continue;
		}
		jw_raw(w, s + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			(void) snprintf(esc, sizeof(esc), "\\%c", c);
		} else if (c == '\n') {
			(void) snprintf(esc, sizeof(esc), "\\n");
		} else if (c == '\t') {
			(void) snprintf(esc, sizeof(esc), "\\t");
		} else {
			(void) snprintf(esc, sizeof(esc), "\\u%04x", c);
		}
		jw_lit(w, esc);
	}
	jw_raw(w, s + run, n - run);
	jw_raw(w, "\"", 1);
}

static void
jw_double(json_writer *w, double v, bool is_float32)
{
	char tmp[40];

	proto_fmt_double(v, is_float32, tmp, sizeof(tmp));
	jw_lit(w, tmp);
}

static void
jw_object(json_writer *w, const msgpack_object *o)
{
	char tmp[32];

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		jw_lit(w, "null");
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		jw_lit(w, o->via.boolean ? "true" : "false");
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX) {
			jw_double(w, (double) o->via.u64, false);
			break;
		}
		(void) snprintf(tmp, sizeof(tmp), "%" PRIu64, o->via.u64);
		jw_lit(w, tmp);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		(void) snprintf(tmp, sizeof(tmp), "%" PRId64, o->via.i64);
		jw_lit(w, tmp);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		jw_double(w, o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32);
		break;
	case MSGPACK_OBJECT_STR:
		jw_str(w, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		jw_lit(w, "[");
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			jw_lit(w, i == 0 ? "" : ",");
			jw_object(w, &o->via.array.ptr[i]);
		}
		jw_lit(w, "]");
		break;
	case MSGPACK_OBJECT_MAP:
		jw_lit(w, "{");
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			evb_str k = proto_obj_key(&o->via.map.ptr[i].key);

			jw_lit(w, i == 0 ? "" : ",");
			jw_str(w, k.ptr, k.len);
			jw_lit(w, ":");
			jw_object(w, &o->via.map.ptr[i].val);
		}
		jw_lit(w, "}");
		break;
	default:
		// The scan admits no bin or ext values.
		jw_lit(w, "null");
		break;
	}
}

static void
jw_key(json_writer *w, const char *k)
{
	jw_lit(w, ",\"");
	jw_lit(w, k);
	jw_lit(w, "\":");
}

static void
jw_str_field(json_writer *w, const char *k, evb_str s)
{
	if (s.len > 0) {
		jw_key(w, k);
		jw_str(w, s.ptr, s.len);
	}
}

int
evb_proto_event_to_json(const evb_event *ev, evb_buf *out)
{
	json_writer w    = { .out = out, .err = EVB_OK };
	size_t      mark = out->len;
	char        num[32];

	jw_lit(&w, "{\"type\":");
	jw_lit(&w, "\"");
	jw_lit(&w, evb_proto_type_name(ev->type));
	jw_lit(&w, "\"");
	jw_str_field(&w, "id", ev->id);
	if (ev->has_ts) {
		jw_key(&w, "ts");
		(void) snprintf(num, sizeof(num), "%" PRId64, ev->ts);
		jw_lit(&w, num);
	}
	jw_str_field(&w, "source", ev->source);
	jw_str_field(&w, "corr", ev->corr);
	if (ev->has_seq) {
		jw_key(&w, "seq");
		(void) snprintf(num, sizeof(num), "%" PRIu64, ev->seq);
		jw_lit(&w, num);
		jw_key(&w, "epoch");
		(void) snprintf(num, sizeof(num), "%" PRIu64, ev->epoch);
		jw_lit(&w, num);
	}
	jw_key(&w, "data");
	jw_object(&w, ev->data);
	for (uint32_t i = 0; i < ev->root->via.map.size; i++) {
		if (ev->extra_mask & ((uint64_t) 1 << i)) {
			evb_str k =
			    proto_obj_key(&ev->root->via.map.ptr[i].key);

			jw_lit(&w, ",");
			jw_str(&w, k.ptr, k.len);
			jw_lit(&w, ":");
			jw_object(&w, &ev->root->via.map.ptr[i].val);
		}
	}
	jw_raw(&w, "}\0", 2);
	if (w.err != EVB_OK) {
		out->len = mark;
		return (w.err);
	}
	out->len--; // The NUL is written but not counted.
	return (EVB_OK);
}
