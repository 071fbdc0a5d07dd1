/*
 * proto_schema.c: the event types and their validation.
 *
 * The whole schema is the table below: a type is a name, a routing-key
 * field and a list of fields with a kind, required/optional and a range.
 * Adding a type is one entry here (append it: indexes are stored in the
 * WAL) plus its line in docs/protocol.md; no new code paths.
 *
 * Validation reports the first problem as "<type>.data.<field>: expected
 * <what>, got <what came>". Fields the table does not name are kept as
 * they came (producers evolve); proto_scan.c has already bounded them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto_int.h"

typedef enum field_kind {
	FK_STR,      /* Non-empty string of at most max_len bytes. */
	FK_SYMBOL,   /* 3-12 chars of A-Z 0-9 . _ */
	FK_ENUM,     /* One of values[]. */
	FK_CURRENCY, /* 3 uppercase letters. */
	FK_NUM,      /* Integer or finite float, within the range flags. */
	FK_INT,      /* Integer only, within the range flags. */
	FK_MAP,      /* A map (content free-form). */
} field_kind;

enum {
	F_REQ      = 1 << 0, /* Required. */
	F_MIN      = 1 << 1, /* value >= min (or > min with F_MIN_EXCL). */
	F_MIN_EXCL = 1 << 2,
	F_MAX      = 1 << 3, /* value <= max (or < max with F_MAX_EXCL). */
	F_MAX_EXCL = 1 << 4,
	F_ROUTE    = 1 << 5, /* The routing key; exactly one, and required. */
};

typedef struct proto_field {
	const char        *name;     /* Key inside data. */
	size_t             name_len; /* strlen(name), to compare keys fast. */
	field_kind         kind;     /* What the value must be. */
	unsigned           flags;    /* F_* bits. */
	double             min;      /* Lower bound, with F_MIN. */
	double             max;      /* Upper bound, with F_MAX. */
	const char *const *values;   /* FK_ENUM: NULL-terminated list. */
	const char        *ge_field; /* Must be >= this field when both set. */
	size_t max_len; /* FK_STR: bytes; 0 means EVB_PROTO_MAX_ID. */
} proto_field;

#define TYPE_MAX_FIELDS 16 /* Fields per type; the seen-mask is 32 bits. */

typedef struct proto_type {
	const char *name; /* Type name, also the topic's first part. */
	proto_field fields[TYPE_MAX_FIELDS]; /* Ends at the first NULL name. */
} proto_type;

static const char *const dir_values[] = { "BUY", "SELL", NULL };
static const char *const tf_values[]  = { "M1", "M5", "M15", "M30", "H1", "H4",
	 "D1", "W1", "MN1", NULL };
static const char *const health_values[] = { "healthy", "degraded", "down",
	NULL };

// Field builders keep the table one line per field.
#define NAME(n) .name = n, .name_len = sizeof(n) - 1
#define STR(n, fl)                                   \
	{                                            \
		NAME(n), .kind = FK_STR, .flags = fl \
	}
#define TEXT(n, fl)                                   \
	{                                             \
		NAME(n), .kind = FK_STR, .flags = fl, \
		         .max_len = EVB_PROTO_MAX_STR \
	}
#define SYMBOL(fl)                                             \
	{                                                      \
		NAME("symbol"), .kind = FK_SYMBOL, .flags = fl \
	}
#define ENUM(n, v, fl)                                             \
	{                                                          \
		NAME(n), .kind = FK_ENUM, .flags = fl, .values = v \
	}
#define NUM(n, fl, lo, hi)                                                 \
	{                                                                  \
		NAME(n), .kind = FK_NUM, .flags = fl, .min = lo, .max = hi \
	}
#define INT(n, fl, lo, hi)                                                 \
	{                                                                  \
		NAME(n), .kind = FK_INT, .flags = fl, .min = lo, .max = hi \
	}
#define GT0 (F_MIN | F_MIN_EXCL)
#define GE0 (F_MIN)
#define PCT (F_MIN | F_MAX)
#define ROUTE (F_REQ | F_ROUTE)

// Changing an index breaks existing logs: append new types at the end.
static const proto_type proto_types[] = {
	{ "signal_generated",
	    { STR("signal_id", F_REQ), SYMBOL(ROUTE),
	        ENUM("direction", dir_values, F_REQ),
	        NUM("confidence", F_REQ | PCT, 0, 100), STR("pattern_type", 0),
	        NUM("entry_price", GT0, 0, 0), NUM("stop_loss", GT0, 0, 0),
	        NUM("take_profit", GT0, 0, 0),
	        ENUM("timeframe", tf_values, 0) } },
	{ "fire_command",
	    { STR("command_id", F_REQ), STR("user_id", F_REQ),
	        STR("signal_id", F_REQ), SYMBOL(ROUTE),
	        ENUM("direction", dir_values, F_REQ),
	        NUM("volume", F_REQ | GT0 | F_MAX, 0, 100),
	        NUM("stop_loss", GT0, 0, 0), NUM("take_profit", GT0, 0, 0) } },
	{ "trade_executed",
	    { INT("ticket", F_REQ | GT0, 0, 0), STR("user_id", F_REQ),
	        SYMBOL(ROUTE), ENUM("direction", dir_values, F_REQ),
	        NUM("volume", F_REQ | GT0, 0, 0),
	        NUM("price", F_REQ | GT0, 0, 0), STR("signal_id", 0),
	        STR("command_id", 0), NUM("commission", 0, 0, 0),
	        NUM("slippage_pips", 0, 0, 0) } },
	{ "balance_update",
	    { STR("user_id", ROUTE), NUM("balance", F_REQ, 0, 0),
	        NUM("equity", F_REQ, 0, 0), STR("account_id", 0),
	        NUM("margin", GE0, 0, 0),
	        { NAME("currency"), .kind = FK_CURRENCY } } },
	{ "system_health",
	    { STR("component", ROUTE), ENUM("status", health_values, F_REQ),
	        NUM("cpu_percent", PCT, 0, 100), NUM("memory_mb", GE0, 0, 0),
	        NUM("uptime_s", GE0, 0, 0), TEXT("message", 0) } },
	{ "user_action",
	    { STR("user_id", ROUTE), TEXT("action", F_REQ),
	        { NAME("details"), .kind = FK_MAP } } },
	{ "market_data",
	    { SYMBOL(ROUTE), NUM("bid", F_REQ | GT0, 0, 0),
	        { NAME("ask"), .kind = FK_NUM, .flags = F_REQ | GT0,
	            .ge_field = "bid" },
	        NUM("volume", GE0, 0, 0) } },
	{ "pattern_detected",
	    { SYMBOL(ROUTE), STR("pattern_type", F_REQ),
	        NUM("confidence", F_REQ | PCT, 0, 100),
	        ENUM("timeframe", tf_values, 0),
	        ENUM("direction", dir_values, 0) } },
};

#define NTYPES (sizeof(proto_types) / sizeof(proto_types[0]))

size_t
evb_proto_type_count(void)
{
	return (NTYPES);
}

const char *
evb_proto_type_name(int type)
{
	if (type < 0 || (size_t) type >= NTYPES) {
		return (NULL);
	}
	return (proto_types[type].name);
}

int
evb_proto_type_find(const char *name, size_t len, int *type)
{
	// The first byte rules out most names before any strlen: this runs
	// once per event in ingest, the collector and the compactor.
	for (size_t i = 0; i < NTYPES; i++) {
		if (len > 0 && proto_types[i].name[0] == name[0] &&
		    proto_bytes_eq(proto_types[i].name,
		        strlen(proto_types[i].name), name, len)) {
			*type = (int) i;
			return (EVB_OK);
		}
	}
	return (EVB_ENOTFOUND);
}

bool
proto_key_is(const msgpack_object *k, const char *name)
{
	evb_str s = proto_obj_key(k);

	return (proto_bytes_eq(s.ptr, s.len, name, strlen(name)));
}

const msgpack_object *
evb_proto_map_get(const msgpack_object *m, const char *key)
{
	size_t n = strlen(key);

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP) {
		return (NULL);
	}
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR &&
		    proto_bytes_eq(k->via.str.ptr, k->via.str.size, key, n)) {
			return (&m->via.map.ptr[i].val);
		}
	}
	return (NULL);
}

const char *
proto_obj_kind(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return ("nil");
	case MSGPACK_OBJECT_BOOLEAN:
		return ("boolean");
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return ("integer");
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return ("number");
	case MSGPACK_OBJECT_STR:
		return ("string");
	case MSGPACK_OBJECT_ARRAY:
		return ("array");
	case MSGPACK_OBJECT_MAP:
		return ("map");
	default:
		return ("binary");
	}
}

void
proto_fmt_double(double v, bool is_float32, char *buf, size_t cap)
{
	// %.17g always reads back, but prints 0.1 as 0.10000000000000001;
	// the shortest precision that reads back is what a person wrote.
	for (int prec = is_float32 ? 6 : 15; prec <= 17; prec++) {
		(void) snprintf(buf, cap, "%.*g", prec, v);
		if (is_float32 ? (float) strtod(buf, NULL) == (float) v
		               : strtod(buf, NULL) == v) {
			break;
		}
	}
	if (strpbrk(buf, ".eEn") == NULL) {
		size_t n = strlen(buf);

		(void) snprintf(buf + n, cap - n, ".0");
	}
}

/*
 * describe_str quotes up to PROTO_QUOTE_MAX bytes of s for a one-line
 * message (evb_diag_escape: control characters become \xNN, and the cut
 * never splits a UTF-8 character), with "..." after the quote when s was
 * cut.
 */
static void
describe_str(const char *s, size_t len, char *buf, size_t cap)
{
	char   body[PROTO_QUOTE_CAP];
	size_t room = sizeof(body);
	bool   cut;

	// Leave room in buf for both quotes, "..." and the NUL.
	if (cap < room + 5) {
		room = cap > 6 ? cap - 5 : 1;
	}
	cut = evb_diag_escape(body, room, s, len, PROTO_QUOTE_MAX);
	(void) snprintf(buf, cap, "\"%s\"%s", body, cut ? "..." : "");
}

void
proto_obj_describe(const msgpack_object *o, char *buf, size_t cap)
{
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		(void) snprintf(
		    buf, cap, "%llu", (unsigned long long) o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		(void) snprintf(buf, cap, "%lld", (long long) o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		proto_fmt_double(
		    o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32, buf, cap);
		break;
	case MSGPACK_OBJECT_STR:
		describe_str(o->via.str.ptr, o->via.str.size, buf, cap);
		break;
	default:
		(void) snprintf(buf, cap, "%s", proto_obj_kind(o));
		break;
	}
}

static bool
obj_is_num(const msgpack_object *o)
{
	return (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
	    o->type == MSGPACK_OBJECT_FLOAT32 ||
	    o->type == MSGPACK_OBJECT_FLOAT64);
}

static double
obj_num(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return ((double) o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return ((double) o->via.i64);
	default:
		return (o->via.f64);
	}
}

/* schema_expected writes what a field accepts: "number in (0, 100]". */
static void
schema_expected(const proto_field *f, char *buf, size_t cap)
{
	const char *what = f->kind == FK_INT ? "integer" : "number";
	size_t      n;

	switch (f->kind) {
	case FK_STR:
		(void) snprintf(buf, cap, "string of 1..%zu bytes",
		    f->max_len != 0 ? f->max_len : (size_t) EVB_PROTO_MAX_ID);
		return;
	case FK_SYMBOL:
		(void) snprintf(buf, cap, "symbol (3-12 of A-Z 0-9 . _)");
		return;
	case FK_CURRENCY:
		(void) snprintf(buf, cap, "currency (3 uppercase letters)");
		return;
	case FK_MAP:
		(void) snprintf(buf, cap, "map");
		return;
	case FK_ENUM:
		n = (size_t) snprintf(buf, cap, "one of");
		for (size_t i = 0; f->values[i] != NULL && n < cap; i++) {
			n += (size_t) snprintf(buf + n, cap - n, "%s %s",
			    i == 0 ? "" : ",", f->values[i]);
		}
		return;
	default:
		break;
	}
	if ((f->flags & F_MIN) && (f->flags & F_MAX)) {
		(void) snprintf(buf, cap, "%s in %c%g, %g%c", what,
		    (f->flags & F_MIN_EXCL) ? '(' : '[', f->min, f->max,
		    (f->flags & F_MAX_EXCL) ? ')' : ']');
	} else if (f->flags & F_MIN) {
		(void) snprintf(buf, cap, "%s %s %g", what,
		    (f->flags & F_MIN_EXCL) ? ">" : ">=", f->min);
	} else {
		(void) snprintf(buf, cap, "%s", what);
	}
}

static bool
schema_in_range(const proto_field *f, double v)
{
	if ((f->flags & F_MIN) &&
	    ((f->flags & F_MIN_EXCL) ? !(v > f->min) : !(v >= f->min))) {
		return (false);
	}
	if ((f->flags & F_MAX) &&
	    ((f->flags & F_MAX_EXCL) ? !(v < f->max) : !(v <= f->max))) {
		return (false);
	}
	return (true);
}

static bool
schema_is_symbol(const char *s, size_t len)
{
	if (len < 3 || len > 12) {
		return (false);
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '.' || c == '_')) {
			return (false);
		}
	}
	return (true);
}

static bool
schema_in_enum(const char *const *values, const char *s, size_t len)
{
	for (size_t i = 0; values[i] != NULL; i++) {
		if (proto_bytes_eq(values[i], strlen(values[i]), s, len)) {
			return (true);
		}
	}
	return (false);
}

/* schema_field_ok returns true when v is acceptable for f. */
static bool
schema_field_ok(const proto_field *f, const msgpack_object *v)
{
	const char *s = v->via.str.ptr;
	size_t      n = v->via.str.size;

	switch (f->kind) {
	case FK_STR:
		return (v->type == MSGPACK_OBJECT_STR && n >= 1 &&
		    n <= (f->max_len != 0 ? f->max_len : EVB_PROTO_MAX_ID));
	case FK_SYMBOL:
		return (
		    v->type == MSGPACK_OBJECT_STR && schema_is_symbol(s, n));
	case FK_ENUM:
		return (v->type == MSGPACK_OBJECT_STR &&
		    schema_in_enum(f->values, s, n));
	case FK_CURRENCY:
		return (v->type == MSGPACK_OBJECT_STR && n == 3 &&
		    s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
		    s[2] >= 'A' && s[2] <= 'Z');
	case FK_MAP:
		return (v->type == MSGPACK_OBJECT_MAP);
	case FK_INT:
		if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			return (v->via.u64 <= INT64_MAX &&
			    schema_in_range(f, (double) v->via.u64));
		}
		return (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
		    schema_in_range(f, (double) v->via.i64));
	case FK_NUM:
		return (obj_is_num(v) && schema_in_range(f, obj_num(v)));
	}
	return (false);
}

static int
schema_fail(const proto_type *t, const proto_field *f, const msgpack_object *v,
    evb_diag *d)
{
	char want[128];
	char got[64];

	schema_expected(f, want, sizeof(want));
	proto_obj_describe(v, got, sizeof(got));
	evb_diag_set(
	    d, "%s.data.%s: expected %s, got %s", t->name, f->name, want, got);
	return (EVB_ESCHEMA);
}

/*
 * schema_unknown_dup reports a duplicate among keys no field names (the
 * known ones are caught by the seen-mask). Pairwise, but only over the
 * unknown keys, which are few, and EVB_PROTO_MAX_FIELDS bounds them.
 */
static int
schema_unknown_dup(const proto_type *t, const msgpack_object_kv *kv,
    const uint8_t *unknown, size_t nunknown, evb_diag *d)
{
	for (size_t i = 1; i < nunknown; i++) {
		evb_str a = proto_obj_key(&kv[unknown[i]].key);

		for (size_t j = 0; j < i; j++) {
			evb_str b = proto_obj_key(&kv[unknown[j]].key);

			if (proto_bytes_eq(a.ptr, a.len, b.ptr, b.len)) {
				char k[PROTO_QUOTE_CAP];

				evb_diag_set(d, "%s.data: duplicate key \"%s\"",
				    t->name,
				    proto_key_text(&kv[unknown[i]].key, k));
				return (EVB_EMALFORMED);
			}
		}
	}
	return (EVB_OK);
}

/*
 * schema_match returns the index of the field named by key among t's nf
 * fields, or -1. It tries field from first and goes round from there:
 * the caller passes the one after the previous key's, so the keys of a
 * producer that sends a type's fields in the table's order each match at
 * the first try, not after a scan of the fields before them
 * (proto_bench's decode and validate of the realistic event: 0.49 ->
 * 0.475 us). Keys in another order cost what they did before.
 */
static int
schema_match(const proto_type *t, int nf, const msgpack_object *key, int from)
{
	evb_str k = proto_obj_key(key);
	int     j = from;

	for (int tries = 0; tries < nf; tries++, j = j + 1 == nf ? 0 : j + 1) {
		const proto_field *f = &t->fields[j];

		if (proto_bytes_eq(f->name, f->name_len, k.ptr, k.len)) {
			return (j);
		}
	}
	return (-1);
}

/* schema_field_index finds a field by name; the table guarantees it. */
static int
schema_field_index(const proto_type *t, const char *name)
{
	int j = 0;

	while (strcmp(t->fields[j].name, name) != 0) {
		j++;
	}
	return (j);
}

/* schema_cross checks required fields and cross-field rules. */
static int
schema_cross(const proto_type *t, const msgpack_object **vals, uint32_t seen,
    evb_diag *d)
{
	for (int j = 0; t->fields[j].name != NULL; j++) {
		const proto_field *f = &t->fields[j];
		int                o;

		if (!(seen & (1u << j))) {
			if (f->flags & F_REQ) {
				evb_diag_set(d,
				    "%s.data.%s: required field missing",
				    t->name, f->name);
				return (EVB_ESCHEMA);
			}
			continue;
		}
		if (f->ge_field == NULL) {
			continue;
		}
		o = schema_field_index(t, f->ge_field);
		if ((seen & (1u << o)) && obj_num(vals[j]) < obj_num(vals[o])) {
			char got[64], lim[64];

			proto_obj_describe(vals[j], got, sizeof(got));
			proto_obj_describe(vals[o], lim, sizeof(lim));
			evb_diag_set(d,
			    "%s.data.%s: expected number >= %s (%s), got %s",
			    t->name, f->name, f->ge_field, lim, got);
			return (EVB_ESCHEMA);
		}
	}
	return (EVB_OK);
}

int
proto_schema_validate(
    int type, const msgpack_object *data, evb_str *route, evb_diag *d)
{
	const proto_type        *t  = &proto_types[type];
	const msgpack_object_kv *kv = data->via.map.ptr;
	const msgpack_object    *vals[TYPE_MAX_FIELDS];
	uint8_t                  unknown[EVB_PROTO_MAX_FIELDS];
	size_t                   nunknown = 0;
	uint32_t                 seen     = 0;
	int                      route_j  = -1;
	int                      nf       = 0;
	int                      next     = 0;
	int                      rv;

	while (nf < TYPE_MAX_FIELDS && t->fields[nf].name != NULL) {
		nf++;
	}
	for (uint32_t i = 0; i < data->via.map.size; i++) {
		int j = schema_match(t, nf, &kv[i].key, next);

		if (j < 0) {
			unknown[nunknown++] = (uint8_t) i;
			continue;
		}
		next = j + 1 == nf ? 0 : j + 1;
		if (seen & (1u << j)) {
			evb_diag_set(d, "%s.data: duplicate key \"%s\"",
			    t->name, t->fields[j].name);
			return (EVB_EMALFORMED);
		}
		if (!schema_field_ok(&t->fields[j], &kv[i].val)) {
			return (schema_fail(t, &t->fields[j], &kv[i].val, d));
		}
		seen |= 1u << j;
		vals[j] = &kv[i].val;
		if (t->fields[j].flags & F_ROUTE) {
			route_j = j;
		}
	}
	if ((rv = schema_unknown_dup(t, kv, unknown, nunknown, d)) != EVB_OK) {
		return (rv);
	}
	if ((rv = schema_cross(t, vals, seen, d)) != EVB_OK) {
		return (rv);
	}
	// The routing field is required, so schema_cross saw it.
	evb_assert(route_j >= 0);
	route->ptr = vals[route_j]->via.str.ptr;
	route->len = vals[route_j]->via.str.size;
	return (EVB_OK);
}
