/*
 * proto_schema_test: per-type validation (proto/proto.h).
 *
 * Every case is fed through evb_proto_event_from_json and through each
 * MessagePack shape in proto_testlib.h (integer widths 8..64, signed and
 * unsigned, float32 and float64, str, old raw and bin keys), so a rule
 * that holds for one encoding holds for all. A failing case must return
 * EVB_ESCHEMA with a diag that starts with the field's path,
 * "<type>.data.<field>".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto/proto.h"
#include "tests/unit/proto_testlib.h"

enum {
	T_SIGNAL,
	T_FIRE,
	T_TRADE,
	T_BALANCE,
	T_HEALTH,
	T_ACTION,
	T_MARKET,
	T_PATTERN,
};

/* ---- Case runner ------------------------------------------------------ */

/*
 * A case sets data.<field> of type's valid event to value (JSON text; NULL
 * deletes the field) and expects want. path overrides the diag prefix
 * ("<type>.data.<field>" by default).
 */
typedef struct vcase {
	int         type;
	const char *field;
	const char *value;
	int         want;
	const char *path;
} vcase;

/* case_event builds the event a case describes. */
static json_t *
case_event(const vcase *c)
{
	json_t *ev = ptl_valid_event(c->type);

	cr_assert_not_null(ev, "valid event %d does not parse", c->type);
	if (c->value == NULL) {
		(void) json_object_del(ptl_data(ev), c->field);
	} else {
		json_t *v = ptl_parse(c->value);

		cr_assert_not_null(v, "bad JSON in case: %s", c->value);
		cr_assert_eq(json_object_set_new(ptl_data(ev), c->field, v), 0);
	}
	return (ev);
}

/* check_result asserts one decode result against the case. */
static void
check_result(
    const vcase *c, const char *via, int rc, evb_event *got, const evb_diag *d)
{
	char path[128];

	cr_assert_eq(rc, c->want,
	    "%s.data.%s = %s via %s: want rc %d, got %d (%s)",
	    ptl_type_names[c->type], c->field,
	    c->value ? c->value : "(deleted)", via, c->want, rc, d->msg);
	if (c->want == EVB_OK) {
		cr_assert_not_null(got);
		cr_assert_eq(evb_proto_event_type(got), c->type);
		evb_proto_event_free(got);
		return;
	}
	cr_assert_null(got, "%s via %s: out written on failure",
	    ptl_type_names[c->type], via);
	if (c->path != NULL) {
		(void) snprintf(path, sizeof(path), "%s", c->path);
	} else {
		(void) snprintf(path, sizeof(path), "%s.data.%s",
		    ptl_type_names[c->type], c->field);
	}
	cr_assert(strstr(d->msg, path) == d->msg,
	    "%s = %s via %s: diag does not start with %s: \"%s\"", path,
	    c->value ? c->value : "(deleted)", via, path, d->msg);
	cr_assert(strlen(d->msg) > strlen(path) + 2,
	    "%s via %s: diag says nothing after the path: \"%s\"", path, via,
	    d->msg);
}

/* run_case feeds one case through JSON and every MessagePack shape. */
static void
run_case(const vcase *c)
{
	json_t    *ev = case_event(c);
	evb_event *got;
	evb_diag   d;
	int        rc;

	got = NULL;
	memset(&d, 0, sizeof(d));
	rc = ptl_decode_json(ev, &got, &d);
	check_result(c, "json", rc, got, &d);
	for (size_t i = 0; i < PTL_NSHAPES; i++) {
		got = NULL;
		memset(&d, 0, sizeof(d));
		rc = ptl_decode_shape(ev, &ptl_shapes[i], &got, &d);
		check_result(c, ptl_shapes[i].name, rc, got, &d);
	}
	json_decref(ev);
}

static void
run_cases(const vcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		run_case(&cases[i]);
	}
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))
#define OK EVB_OK
#define BAD EVB_ESCHEMA

/* ---- The field table -------------------------------------------------- */

enum kind {
	K_STR,
	K_SYMBOL,
	K_DIR,
	K_NUM,
	K_INT,
	K_TF,
	K_STATUS,
	K_CUR,
	K_MAP
};

typedef struct field {
	int         type;
	const char *name;
	enum kind   kind;
	bool        required;
} field;

static const field fields[] = {
	{ T_SIGNAL, "signal_id", K_STR, true },
	{ T_SIGNAL, "symbol", K_SYMBOL, true },
	{ T_SIGNAL, "direction", K_DIR, true },
	{ T_SIGNAL, "confidence", K_NUM, true },
	{ T_SIGNAL, "pattern_type", K_STR, false },
	{ T_SIGNAL, "entry_price", K_NUM, false },
	{ T_SIGNAL, "stop_loss", K_NUM, false },
	{ T_SIGNAL, "take_profit", K_NUM, false },
	{ T_SIGNAL, "timeframe", K_TF, false },
	{ T_FIRE, "command_id", K_STR, true },
	{ T_FIRE, "user_id", K_STR, true },
	{ T_FIRE, "signal_id", K_STR, true },
	{ T_FIRE, "symbol", K_SYMBOL, true },
	{ T_FIRE, "direction", K_DIR, true },
	{ T_FIRE, "volume", K_NUM, true },
	{ T_FIRE, "stop_loss", K_NUM, false },
	{ T_FIRE, "take_profit", K_NUM, false },
	{ T_TRADE, "ticket", K_INT, true },
	{ T_TRADE, "user_id", K_STR, true },
	{ T_TRADE, "symbol", K_SYMBOL, true },
	{ T_TRADE, "direction", K_DIR, true },
	{ T_TRADE, "volume", K_NUM, true },
	{ T_TRADE, "price", K_NUM, true },
	{ T_TRADE, "signal_id", K_STR, false },
	{ T_TRADE, "command_id", K_STR, false },
	{ T_TRADE, "commission", K_NUM, false },
	{ T_TRADE, "slippage_pips", K_NUM, false },
	{ T_BALANCE, "user_id", K_STR, true },
	{ T_BALANCE, "balance", K_NUM, true },
	{ T_BALANCE, "equity", K_NUM, true },
	{ T_BALANCE, "account_id", K_STR, false },
	{ T_BALANCE, "margin", K_NUM, false },
	{ T_BALANCE, "currency", K_CUR, false },
	{ T_HEALTH, "component", K_STR, true },
	{ T_HEALTH, "status", K_STATUS, true },
	{ T_HEALTH, "cpu_percent", K_NUM, false },
	{ T_HEALTH, "memory_mb", K_NUM, false },
	{ T_HEALTH, "uptime_s", K_NUM, false },
	{ T_HEALTH, "message", K_STR, false },
	{ T_ACTION, "user_id", K_STR, true },
	{ T_ACTION, "action", K_STR, true },
	{ T_ACTION, "details", K_MAP, false },
	{ T_MARKET, "symbol", K_SYMBOL, true },
	{ T_MARKET, "bid", K_NUM, true },
	{ T_MARKET, "ask", K_NUM, true },
	{ T_MARKET, "volume", K_NUM, false },
	{ T_PATTERN, "symbol", K_SYMBOL, true },
	{ T_PATTERN, "pattern_type", K_STR, true },
	{ T_PATTERN, "confidence", K_NUM, true },
	{ T_PATTERN, "timeframe", K_TF, false },
	{ T_PATTERN, "direction", K_DIR, false },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* ---- Valid events ----------------------------------------------------- */

Test(schema, each_type_accepts_its_valid_event, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		vcase c = { t, "(none)", NULL, OK, NULL };

		run_case(&c);
	}
}

Test(schema, each_type_accepts_every_optional_field, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		json_t    *ev  = ptl_parse(ptl_full_json[t]);
		evb_event *got = NULL;
		evb_diag   d   = { { 0 } };
		int        rc;

		cr_assert_not_null(ev);
		rc = ptl_decode_json(ev, &got, &d);
		cr_assert_eq(
		    rc, EVB_OK, "%s: %d %s", ptl_type_names[t], rc, d.msg);
		cr_assert_eq(evb_proto_event_type(got), t);
		evb_proto_event_free(got);
		for (size_t i = 0; i < PTL_NSHAPES; i++) {
			got = NULL;
			rc  = ptl_decode_shape(ev, &ptl_shapes[i], &got, &d);
			cr_assert_eq(rc, EVB_OK, "%s via %s: %d %s",
			    ptl_type_names[t], ptl_shapes[i].name, rc, d.msg);
			evb_proto_event_free(got);
		}
		json_decref(ev);
	}
}

Test(schema, valid_event_routes_by_its_key, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		json_t    *ev  = ptl_valid_event(t);
		evb_event *got = NULL;
		evb_diag   d   = { { 0 } };
		evb_str    r;

		cr_assert_eq(
		    ptl_decode_json(ev, &got, &d), EVB_OK, "%s", d.msg);
		r = evb_proto_event_route(got);
		cr_assert_eq(r.len, strlen(ptl_valid_route[t]));
		cr_assert_arr_eq(r.ptr, ptl_valid_route[t], r.len);
		evb_proto_event_free(got);
		json_decref(ev);
	}
}

/* ---- Required fields and kinds ---------------------------------------- */

Test(schema, each_required_field_missing_is_named, .timeout = 30)
{
	for (size_t i = 0; i < NFIELDS; i++) {
		const field *f = &fields[i];
		vcase        c = { f->type, f->name, NULL, BAD, NULL };
		json_t      *ev;
		evb_event   *got = NULL;
		evb_diag     d   = { { 0 } };
		char         want[128];

		if (!f->required) {
			continue;
		}
		run_case(&c);
		/* The whole message is part of the contract for this case. */
		ev = case_event(&c);
		(void) snprintf(want, sizeof(want),
		    "%s.data.%s: required field missing",
		    ptl_type_names[f->type], f->name);
		cr_assert_eq(ptl_decode_json(ev, &got, &d), EVB_ESCHEMA);
		cr_assert_str_eq(d.msg, want);
		json_decref(ev);
	}
}

/*
 * A key that differs from a required field's name in one byte, at any
 * position, is not that field: names are compared in words, the last
 * overlapping the one before, and every byte must count.
 */
Test(schema, a_key_one_byte_off_is_not_the_field, .timeout = 30)
{
	for (size_t i = 0; i < NFIELDS; i++) {
		const field *f = &fields[i];
		size_t       n = strlen(f->name);

		if (!f->required) {
			continue;
		}
		for (size_t at = 0; at < n; at++) {
			json_t    *ev  = ptl_valid_event(f->type);
			json_t    *v   = json_object_get(ptl_data(ev), f->name);
			evb_event *got = NULL;
			evb_diag   d   = { { 0 } };
			char       key[64];

			cr_assert_not_null(v);
			cr_assert_lt(n, sizeof(key));
			memcpy(key, f->name, n + 1);
			key[at] = key[at] == 'x' ? 'y' : 'x';
			cr_assert_eq(json_object_set(ptl_data(ev), key, v), 0);
			cr_assert_eq(json_object_del(ptl_data(ev), f->name), 0);
			cr_assert_eq(ptl_decode_json(ev, &got, &d), EVB_ESCHEMA,
			    "%s.data.%s as %s: want a schema error (%s)",
			    ptl_type_names[f->type], f->name, key, d.msg);
			cr_assert_null(got);
			json_decref(ev);
		}
	}
}

Test(schema, optional_fields_may_be_absent, .timeout = 30)
{
	/* The full events minus one optional field at a time. */
	for (size_t i = 0; i < NFIELDS; i++) {
		const field *f = &fields[i];
		json_t      *ev;
		evb_event   *got = NULL;
		evb_diag     d   = { { 0 } };

		if (f->required) {
			continue;
		}
		ev = ptl_parse(ptl_full_json[f->type]);
		cr_assert_eq(json_object_del(ptl_data(ev), f->name), 0,
		    "%s missing from the full event", f->name);
		cr_assert_eq(ptl_decode_json(ev, &got, &d), EVB_OK,
		    "without %s.%s: %s", ptl_type_names[f->type], f->name,
		    d.msg);
		evb_proto_event_free(got);
		json_decref(ev);
	}
}

Test(schema, wrong_kind_is_named, .timeout = 60)
{
	static const char *const not_str[] = { "42", "1.5", "true", "[\"a\"]",
		"{\"a\":\"b\"}" };
	static const char *const not_num[] = { "\"42\"", "true", "[1]",
		"{\"v\":1}" };
	static const char *const not_map[] = { "\"x\"", "7", "[1,2]", "false" };

	for (size_t i = 0; i < NFIELDS; i++) {
		const field       *f = &fields[i];
		const char *const *bad;
		size_t             nbad;

		switch (f->kind) {
		case K_NUM:
		case K_INT:
			bad  = not_num;
			nbad = sizeof(not_num) / sizeof(not_num[0]);
			break;
		case K_MAP:
			bad  = not_map;
			nbad = sizeof(not_map) / sizeof(not_map[0]);
			break;
		default:
			bad  = not_str;
			nbad = sizeof(not_str) / sizeof(not_str[0]);
			break;
		}
		for (size_t j = 0; j < nbad; j++) {
			vcase c = { f->type, f->name, bad[j], BAD, NULL };

			run_case(&c);
		}
		if (f->required) {
			/* null is not a value: a required field stays missing.
			 */
			vcase c = { f->type, f->name, "null", BAD, NULL };

			run_case(&c);
		}
	}
}

/* ---- Ranges ----------------------------------------------------------- */

Test(schema, confidence_edges, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_SIGNAL, "confidence", "0", OK, NULL },
		{ T_SIGNAL, "confidence", "0.0", OK, NULL },
		{ T_SIGNAL, "confidence", "100", OK, NULL },
		{ T_SIGNAL, "confidence", "100.0", OK, NULL },
		{ T_SIGNAL, "confidence", "99.5", OK, NULL },
		{ T_SIGNAL, "confidence", "-0.0001", BAD, NULL },
		{ T_SIGNAL, "confidence", "100.0001", BAD, NULL },
		{ T_SIGNAL, "confidence", "-1", BAD, NULL },
		{ T_SIGNAL, "confidence", "101", BAD, NULL },
		{ T_SIGNAL, "confidence", "255", BAD, NULL },
		{ T_SIGNAL, "confidence", "-128", BAD, NULL },
		{ T_PATTERN, "confidence", "0", OK, NULL },
		{ T_PATTERN, "confidence", "100", OK, NULL },
		{ T_PATTERN, "confidence", "-0.0001", BAD, NULL },
		{ T_PATTERN, "confidence", "100.0001", BAD, NULL },
		{ T_HEALTH, "cpu_percent", "0", OK, NULL },
		{ T_HEALTH, "cpu_percent", "100", OK, NULL },
		{ T_HEALTH, "cpu_percent", "-0.0001", BAD, NULL },
		{ T_HEALTH, "cpu_percent", "100.0001", BAD, NULL },
	};

	RUN(cases);
}

Test(schema, positive_fields_reject_zero, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_SIGNAL, "entry_price", "0", BAD, NULL },
		{ T_SIGNAL, "entry_price", "0.0", BAD, NULL },
		{ T_SIGNAL, "entry_price", "-0.0001", BAD, NULL },
		{ T_SIGNAL, "entry_price", "0.0001", OK, NULL },
		{ T_SIGNAL, "stop_loss", "0", BAD, NULL },
		{ T_SIGNAL, "stop_loss", "1", OK, NULL },
		{ T_SIGNAL, "take_profit", "0", BAD, NULL },
		{ T_SIGNAL, "take_profit", "-5", BAD, NULL },
		{ T_FIRE, "stop_loss", "0", BAD, NULL },
		{ T_FIRE, "take_profit", "0.0", BAD, NULL },
		{ T_FIRE, "take_profit", "2.5", OK, NULL },
		{ T_TRADE, "ticket", "0", BAD, NULL },
		{ T_TRADE, "ticket", "-1", BAD, NULL },
		{ T_TRADE, "ticket", "1", OK, NULL },
		{ T_TRADE, "ticket", "4294967296", OK, NULL },
		{ T_TRADE, "ticket", "9223372036854775807", OK, NULL },
		{ T_TRADE, "volume", "0", BAD, NULL },
		{ T_TRADE, "volume", "-0.0001", BAD, NULL },
		{ T_TRADE, "volume", "1000", OK, NULL },
		{ T_TRADE, "price", "0", BAD, NULL },
		{ T_TRADE, "price", "0.0", BAD, NULL },
		{ T_TRADE, "price", "0.0001", OK, NULL },
		{ T_MARKET, "bid", "0", BAD, NULL },
		{ T_MARKET, "bid", "-1.5", BAD, NULL },
		/* ask >= bid is checked too; 0 is below any valid bid. */
		{ T_MARKET, "ask", "0", BAD, NULL },
	};

	RUN(cases);
}

Test(schema, fire_command_volume_edges, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_FIRE, "volume", "0", BAD, NULL },
		{ T_FIRE, "volume", "0.0", BAD, NULL },
		{ T_FIRE, "volume", "-0.0001", BAD, NULL },
		{ T_FIRE, "volume", "0.01", OK, NULL },
		{ T_FIRE, "volume", "1", OK, NULL },
		{ T_FIRE, "volume", "100", OK, NULL },
		{ T_FIRE, "volume", "100.0", OK, NULL },
		{ T_FIRE, "volume", "100.0001", BAD, NULL },
		{ T_FIRE, "volume", "100.5", BAD, NULL },
		{ T_FIRE, "volume", "101", BAD, NULL },
		{ T_FIRE, "volume", "250", BAD, NULL },
		{ T_FIRE, "volume", "65536", BAD, NULL },
	};

	RUN(cases);
}

Test(schema, canonical_volume_message_is_exact, .timeout = 30)
{
	static const ptl_shape int_shapes[] = {
		{ 0, 0, "compact" },
		{ PTL_UNSIGNED, 8, "uint8" },
		{ 0, 16, "int16" },
		{ PTL_UNSIGNED | PTL_KEYS_BIN, 64, "uint64+bin" },
	};
	static const char want[] =
	    "fire_command.data.volume: expected number in (0, 100], got 250";
	vcase      c   = { T_FIRE, "volume", "250", BAD, NULL };
	json_t    *ev  = case_event(&c);
	evb_event *got = NULL;
	evb_diag   d   = { { 0 } };

	cr_assert_eq(ptl_decode_json(ev, &got, &d), EVB_ESCHEMA);
	cr_assert_str_eq(d.msg, want);
	for (size_t i = 0; i < sizeof(int_shapes) / sizeof(int_shapes[0]);
	     i++) {
		memset(&d, 0, sizeof(d));
		cr_assert_eq(ptl_decode_shape(ev, &int_shapes[i], &got, &d),
		    EVB_ESCHEMA, "via %s", int_shapes[i].name);
		cr_assert_str_eq(d.msg, want, "via %s", int_shapes[i].name);
	}
	json_decref(ev);
}

Test(schema, non_negative_fields_accept_zero, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_BALANCE, "margin", "0", OK, NULL },
		{ T_BALANCE, "margin", "0.0", OK, NULL },
		{ T_BALANCE, "margin", "-0.0001", BAD, NULL },
		{ T_BALANCE, "margin", "-1", BAD, NULL },
		{ T_BALANCE, "balance", "-1000000", OK, NULL },
		{ T_BALANCE, "equity", "0", OK, NULL },
		{ T_BALANCE, "equity", "-0.5", OK, NULL },
		{ T_HEALTH, "memory_mb", "0", OK, NULL },
		{ T_HEALTH, "memory_mb", "-0.0001", BAD, NULL },
		{ T_HEALTH, "memory_mb", "-1", BAD, NULL },
		{ T_HEALTH, "uptime_s", "0", OK, NULL },
		{ T_HEALTH, "uptime_s", "-0.0001", BAD, NULL },
		{ T_HEALTH, "uptime_s", "4294967296", OK, NULL },
		{ T_MARKET, "volume", "0", OK, NULL },
		{ T_MARKET, "volume", "-0.0001", BAD, NULL },
		{ T_MARKET, "volume", "-1", BAD, NULL },
		{ T_TRADE, "commission", "-3.5", OK, NULL },
		{ T_TRADE, "commission", "0", OK, NULL },
		{ T_TRADE, "slippage_pips", "-0.25", OK, NULL },
	};

	RUN(cases);
}

Test(schema, ask_below_bid_fails_naming_ask, .timeout = 30)
{
	static const vcase cases[] = {
		/* bid is 1.0841 in the valid event. */
		{ T_MARKET, "ask", "1.0840", BAD, NULL },
		{ T_MARKET, "ask", "1", BAD, NULL },
		{ T_MARKET, "ask", "1.0841", OK, NULL },
		{ T_MARKET, "ask", "1.0842", OK, NULL },
		{ T_MARKET, "ask", "2", OK, NULL },
	};

	RUN(cases);
}

/* ---- Enumerations and shapes ------------------------------------------ */

Test(schema, symbol_is_3_to_12_of_upper_digits_dot_underscore, .timeout = 30)
{
	static const char *const good[] = { "\"EUR\"", "\"ABCDEFGHIJKL\"",
		"\"BRK.B\"", "\"XAU_USD\"", "\"US500\"", "\"123\"", "\"A.B\"",
		"\"___\"" };
	static const char *const bad[]  = { "\"EU\"", "\"\"",
		 "\"ABCDEFGHIJKLM\"", "\"eurusd\"", "\"EURusd\"", "\"EUR/USD\"",
		 "\"EUR USD\"", "\"EUR-USD\"", "\"EURÜSD\"" };
	static const int types[]        = { T_SIGNAL, T_FIRE, T_TRADE, T_MARKET,
		       T_PATTERN };

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			vcase c = { types[t], "symbol", good[i], OK, NULL };

			run_case(&c);
		}
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			vcase c = { types[t], "symbol", bad[i], BAD, NULL };

			run_case(&c);
		}
	}
}

Test(schema, direction_is_buy_or_sell, .timeout = 30)
{
	static const char *const bad[] = { "\"buy\"", "\"Sell\"", "\"LONG\"",
		"\"\"", "\"BUY \"", "\"HOLD\"" };
	static const int types[] = { T_SIGNAL, T_FIRE, T_TRADE, T_PATTERN };

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		vcase buy  = { types[t], "direction", "\"BUY\"", OK, NULL };
		vcase sell = { types[t], "direction", "\"SELL\"", OK, NULL };

		run_case(&buy);
		run_case(&sell);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			vcase c = { types[t], "direction", bad[i], BAD, NULL };

			run_case(&c);
		}
	}
}

Test(schema, timeframe_is_one_of_nine, .timeout = 30)
{
	static const char *const good[]  = { "\"M1\"", "\"M5\"", "\"M15\"",
		 "\"M30\"", "\"H1\"", "\"H4\"", "\"D1\"", "\"W1\"", "\"MN1\"" };
	static const char *const bad[]   = { "\"m1\"", "\"H2\"", "\"M10\"",
		  "\"1M\"", "\"\"", "\"MN\"", "\"D1 \"", "\"MN12\"" };
	static const int         types[] = { T_SIGNAL, T_PATTERN };

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			vcase c = { types[t], "timeframe", good[i], OK, NULL };

			run_case(&c);
		}
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			vcase c = { types[t], "timeframe", bad[i], BAD, NULL };

			run_case(&c);
		}
	}
}

Test(schema, currency_is_three_uppercase_letters, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_BALANCE, "currency", "\"USD\"", OK, NULL },
		{ T_BALANCE, "currency", "\"EUR\"", OK, NULL },
		{ T_BALANCE, "currency", "\"JPY\"", OK, NULL },
		{ T_BALANCE, "currency", "\"usd\"", BAD, NULL },
		{ T_BALANCE, "currency", "\"Usd\"", BAD, NULL },
		{ T_BALANCE, "currency", "\"US\"", BAD, NULL },
		{ T_BALANCE, "currency", "\"USDT\"", BAD, NULL },
		{ T_BALANCE, "currency", "\"U1D\"", BAD, NULL },
		{ T_BALANCE, "currency", "\"U.D\"", BAD, NULL },
		{ T_BALANCE, "currency", "\"\"", BAD, NULL },
	};

	RUN(cases);
}

Test(schema, status_is_healthy_degraded_or_down, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_HEALTH, "status", "\"healthy\"", OK, NULL },
		{ T_HEALTH, "status", "\"degraded\"", OK, NULL },
		{ T_HEALTH, "status", "\"down\"", OK, NULL },
		{ T_HEALTH, "status", "\"Healthy\"", BAD, NULL },
		{ T_HEALTH, "status", "\"DOWN\"", BAD, NULL },
		{ T_HEALTH, "status", "\"up\"", BAD, NULL },
		{ T_HEALTH, "status", "\"\"", BAD, NULL },
		{ T_HEALTH, "status", "\"healthy \"", BAD, NULL },
	};

	RUN(cases);
}

Test(schema, details_is_any_map, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_ACTION, "details", "{}", OK, NULL },
		{ T_ACTION, "details", "{\"page\":\"/a\",\"n\":3,\"x\":null}",
		    OK, NULL },
		{ T_ACTION, "details", "{\"a\":{\"b\":[1,{\"c\":2}]}}", OK,
		    NULL },
		{ T_ACTION, "details", "[]", BAD, NULL },
		{ T_ACTION, "details", "\"{}\"", BAD, NULL },
	};

	RUN(cases);
}

Test(schema, string_fields_hold_1_to_max_str_bytes, .timeout = 30)
{
	/* Every schema string is 1..EVB_PROTO_MAX_STR bytes, free text too. */
	static const vcase cases[] = {
		{ T_HEALTH, "message", "\"\"", BAD, NULL },
		{ T_HEALTH, "message", "\"all good\"", OK, NULL },
		{ T_HEALTH, "component", "\"\"", BAD, NULL },
		{ T_SIGNAL, "signal_id", "\"\"", BAD, NULL },
		{ T_SIGNAL, "pattern_type", "\"\"", BAD, NULL },
		{ T_FIRE, "command_id", "\"\"", BAD, NULL },
		{ T_TRADE, "command_id", "\"\"", BAD, NULL },
		{ T_BALANCE, "account_id", "\"\"", BAD, NULL },
		{ T_ACTION, "action", "\"\"", BAD, NULL },
		{ T_ACTION, "user_id", "\"\"", BAD, NULL },
		{ T_PATTERN, "pattern_type", "\"\"", BAD, NULL },
	};

	RUN(cases);
}

/* quoted_run returns a JSON string of n copies of c, to be freed. */
static char *
quoted_run(char c, size_t n)
{
	char *q = malloc(n + 3);

	cr_assert_not_null(q);
	q[0] = '"';
	memset(q + 1, c, n);
	q[n + 1] = '"';
	q[n + 2] = '\0';
	return (q);
}

Test(schema, string_fields_hold_their_longest_value, .timeout = 30)
{
	/* Free text holds EVB_PROTO_MAX_STR bytes (more is refused by the
	 * decoder before the schema); names and ids EVB_PROTO_MAX_ID. */
	char *text    = quoted_run('t', EVB_PROTO_MAX_STR);
	char *id      = quoted_run('u', EVB_PROTO_MAX_ID);
	char *over    = quoted_run('u', EVB_PROTO_MAX_ID + 1);
	vcase cases[] = {
		{ T_HEALTH, "message", text, OK, NULL },
		{ T_ACTION, "action", text, OK, NULL },
		{ T_ACTION, "user_id", id, OK, NULL },
		{ T_ACTION, "user_id", over, BAD, NULL },
		{ T_TRADE, "user_id", id, OK, NULL },
		{ T_TRADE, "user_id", over, BAD, NULL },
	};

	RUN(cases);
	free(text);
	free(id);
	free(over);
}

/* ---- Numbers ---------------------------------------------------------- */

Test(schema, integers_accepted_for_numbers, .timeout = 30)
{
	/* The shapes write these as every integer width, signed and not. */
	static const vcase cases[] = {
		{ T_SIGNAL, "confidence", "75", OK, NULL },
		{ T_SIGNAL, "entry_price", "2", OK, NULL },
		{ T_FIRE, "volume", "1", OK, NULL },
		{ T_FIRE, "volume", "100", OK, NULL },
		{ T_TRADE, "volume", "3", OK, NULL },
		{ T_TRADE, "price", "2034", OK, NULL },
		{ T_TRADE, "commission", "-7", OK, NULL },
		{ T_BALANCE, "balance", "-300", OK, NULL },
		{ T_BALANCE, "balance", "70000", OK, NULL },
		{ T_BALANCE, "equity", "-70000", OK, NULL },
		{ T_BALANCE, "margin", "5000000000", OK, NULL },
		{ T_HEALTH, "cpu_percent", "12", OK, NULL },
		{ T_HEALTH, "memory_mb", "65535", OK, NULL },
		{ T_MARKET, "bid", "1", OK, NULL },
		{ T_MARKET, "ask", "3", OK, NULL },
		{ T_PATTERN, "confidence", "100", OK, NULL },
	};

	RUN(cases);
}

/* pack_balance packs a balance_update whose balance is written by fn. */
typedef void (*pack_num_fn)(msgpack_packer *pk);

static int
decode_balance(pack_num_fn fn, evb_event **out, evb_diag *d)
{
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	int             rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "type", 4);
	msgpack_pack_str_with_body(&pk, "balance_update", 14);
	msgpack_pack_str_with_body(&pk, "data", 4);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "user_id", 7);
	msgpack_pack_str_with_body(&pk, "u-1", 3);
	msgpack_pack_str_with_body(&pk, "equity", 6);
	msgpack_pack_fix_int8(&pk, -1);
	msgpack_pack_str_with_body(&pk, "balance", 7);
	fn(&pk);
	rc = evb_proto_event_decode(out, sb.data, sb.size, d);
	msgpack_sbuffer_destroy(&sb);
	return (rc);
}

static void
pack_u64_max(msgpack_packer *pk)
{
	msgpack_pack_fix_uint64(pk, UINT64_MAX);
}

static void
pack_i64_min(msgpack_packer *pk)
{
	msgpack_pack_fix_int64(pk, INT64_MIN);
}

static void
pack_f32(msgpack_packer *pk)
{
	msgpack_pack_float(pk, 1000.5f);
}

static void
pack_i8(msgpack_packer *pk)
{
	msgpack_pack_fix_int8(pk, -128);
}

static void
pack_neg_fixint(msgpack_packer *pk)
{
	msgpack_pack_int64(pk, -32);
}

Test(schema, any_integer_width_reads_as_its_value, .timeout = 30)
{
	static const struct {
		pack_num_fn fn;
		double      want;
	} cases[] = {
		{ pack_u64_max, 18446744073709551615.0 },
		{ pack_i64_min, -9223372036854775808.0 },
		{ pack_f32, 1000.5 },
		{ pack_i8, -128.0 },
		{ pack_neg_fixint, -32.0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		evb_event *ev = NULL;
		evb_diag   d  = { { 0 } };
		double     v  = 0;

		cr_assert_eq(decode_balance(cases[i].fn, &ev, &d), EVB_OK,
		    "case %zu: %s", i, d.msg);
		cr_assert_eq(
		    evb_proto_event_get_num(ev, "balance", &v), EVB_OK);
		cr_assert_eq(v, cases[i].want, "case %zu: %g", i, v);
		cr_assert_eq(evb_proto_event_get_num(ev, "equity", &v), EVB_OK);
		cr_assert_eq(v, -1.0);
		evb_proto_event_free(ev);
	}
}

/*
 * An integer field holds an int64: a uint64 above INT64_MAX is refused,
 * naming the field, though no range is set on it. JSON cannot carry such
 * a number (jansson reads int64), so the MessagePack is written here.
 */
Test(schema, an_integer_above_int64_max_is_refused, .timeout = 30)
{
	static const uint64_t tickets[] = { (uint64_t) INT64_MAX + 1,
		UINT64_MAX };

	for (size_t i = 0; i < 2; i++) {
		json_t         *ev = ptl_valid_event(T_TRADE);
		msgpack_sbuffer sb;
		msgpack_packer  pk;
		evb_event      *got = NULL;
		evb_diag        d   = { { 0 } };
		const char     *key;
		json_t         *v;

		cr_assert_not_null(ev);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 2);
		msgpack_pack_str_with_body(&pk, "type", 4);
		msgpack_pack_str_with_body(&pk, "trade_executed", 14);
		msgpack_pack_str_with_body(&pk, "data", 4);
		msgpack_pack_map(&pk, json_object_size(ptl_data(ev)));
		json_object_foreach(ptl_data(ev), key, v)
		{
			msgpack_pack_str_with_body(&pk, key, strlen(key));
			if (strcmp(key, "ticket") == 0) {
				msgpack_pack_fix_uint64(&pk, tickets[i]);
			} else {
				ptl_pack_json(&pk, v, &ptl_shapes[0]);
			}
		}
		cr_assert_eq(evb_proto_event_decode(&got, sb.data, sb.size, &d),
		    EVB_ESCHEMA, "ticket %llu: %s",
		    (unsigned long long) tickets[i], d.msg);
		cr_assert_null(got);
		cr_assert(strstr(d.msg, "trade_executed.data.ticket") == d.msg,
		    "%s", d.msg);
		msgpack_sbuffer_destroy(&sb);
		json_decref(ev);
	}
}

Test(schema, ticket_must_be_an_integer, .timeout = 30)
{
	static const vcase cases[] = {
		{ T_TRADE, "ticket", "2.0", BAD, NULL },
		{ T_TRADE, "ticket", "12345.0", BAD, NULL },
		{ T_TRADE, "ticket", "12345.5", BAD, NULL },
		{ T_TRADE, "ticket", "1e3", BAD, NULL },
		{ T_TRADE, "ticket", "\"12345\"", BAD, NULL },
	};

	RUN(cases);
}

Test(schema, ticket_reads_back_with_get_int, .timeout = 30)
{
	for (size_t i = 0; i < PTL_NSHAPES; i++) {
		json_t    *ev     = ptl_valid_event(T_TRADE);
		evb_event *got    = NULL;
		evb_diag   d      = { { 0 } };
		int64_t    ticket = 0;
		double     price  = 0;

		cr_assert_eq(ptl_decode_shape(ev, &ptl_shapes[i], &got, &d),
		    EVB_OK, "via %s: %s", ptl_shapes[i].name, d.msg);
		cr_assert_eq(
		    evb_proto_event_get_int(got, "ticket", &ticket), EVB_OK);
		cr_assert_eq(ticket, 12345);
		cr_assert_eq(
		    evb_proto_event_get_num(got, "price", &price), EVB_OK);
		if ((ptl_shapes[i].flags & PTL_FLOAT32) != 0) {
			cr_assert_eq(price, (double) 1.0842f);
		} else {
			cr_assert_eq(price, 1.0842);
		}
		evb_proto_event_free(got);
		json_decref(ev);
	}
}

/* ---- Envelope --------------------------------------------------------- */

/* env_case replaces (or with NULL deletes) envelope key of a valid event. */
static void
env_case(int type, const char *key, const char *value, int want)
{
	json_t    *ev  = ptl_valid_event(type);
	evb_event *got = NULL;
	evb_diag   d   = { { 0 } };
	char       path[64];
	int        rc;

	if (value == NULL) {
		(void) json_object_del(ev, key);
	} else {
		json_t *v = ptl_parse(value);

		cr_assert_not_null(v, "bad JSON in case: %s", value);
		cr_assert_eq(json_object_set_new(ev, key, v), 0);
	}
	(void) snprintf(path, sizeof(path), "envelope.%s", key);
	rc = ptl_decode_json(ev, &got, &d);
	cr_assert_eq(rc, want, "%s = %s: want %d, got %d (%s)", path,
	    value ? value : "(deleted)", want, rc, d.msg);
	if (want == EVB_OK) {
		evb_proto_event_free(got);
	} else {
		cr_assert(strstr(d.msg, path) == d.msg,
		    "%s = %s: diag does not start with %s: \"%s\"", path,
		    value ? value : "(deleted)", path, d.msg);
	}
	for (size_t i = 0; i < PTL_NSHAPES; i++) {
		got = NULL;
		memset(&d, 0, sizeof(d));
		rc = ptl_decode_shape(ev, &ptl_shapes[i], &got, &d);
		cr_assert_eq(rc, want, "%s = %s via %s: want %d, got %d (%s)",
		    path, value ? value : "(deleted)", ptl_shapes[i].name, want,
		    rc, d.msg);
		if (want == EVB_OK) {
			evb_proto_event_free(got);
		} else {
			cr_assert(strstr(d.msg, path) == d.msg,
			    "%s via %s: diag \"%s\"", path, ptl_shapes[i].name,
			    d.msg);
		}
	}
	json_decref(ev);
}

Test(schema, unknown_type_fails_naming_envelope_type, .timeout = 30)
{
	env_case(T_MARKET, "type", "\"market_datum\"", EVB_ESCHEMA);
	env_case(T_MARKET, "type", "\"MARKET_DATA\"", EVB_ESCHEMA);
	env_case(T_MARKET, "type", "\"\"", EVB_ESCHEMA);
	env_case(T_MARKET, "type", "\"market_data \"", EVB_ESCHEMA);
	env_case(T_MARKET, "type", "7", EVB_ESCHEMA);
	env_case(T_MARKET, "type", "null", EVB_ESCHEMA);
	env_case(T_MARKET, "type", NULL, EVB_ESCHEMA);
}

Test(schema, type_decides_which_schema_applies, .timeout = 30)
{
	/* market_data's data under another type name is checked as that. */
	json_t    *ev  = ptl_valid_event(T_MARKET);
	evb_event *got = NULL;
	evb_diag   d   = { { 0 } };

	json_object_set_new(ev, "type", json_string("pattern_detected"));
	cr_assert_eq(ptl_decode_json(ev, &got, &d), EVB_ESCHEMA);
	cr_assert(
	    strstr(d.msg, "pattern_detected.data.") == d.msg, "%s", d.msg);
	json_decref(ev);
}

Test(schema, data_must_be_a_map, .timeout = 30)
{
	env_case(T_ACTION, "data", NULL, EVB_ESCHEMA);
	env_case(T_ACTION, "data", "[]", EVB_ESCHEMA);
	env_case(T_ACTION, "data", "\"x\"", EVB_ESCHEMA);
	env_case(T_ACTION, "data", "null", EVB_ESCHEMA);
}

Test(schema, optional_envelope_fields_have_kinds, .timeout = 30)
{
	env_case(T_HEALTH, "id", "\"a\"", EVB_OK);
	env_case(T_HEALTH, "id", "\"\"", EVB_ESCHEMA);
	env_case(T_HEALTH, "id", "5", EVB_ESCHEMA);
	env_case(T_HEALTH, "ts", "0", EVB_OK);
	/* ts counts from the Unix epoch: nothing before 1970. */
	env_case(T_HEALTH, "ts", "-1", EVB_ESCHEMA);
	env_case(T_HEALTH, "ts", "9223372036854775807", EVB_OK);
	env_case(T_HEALTH, "ts", "1.5", EVB_ESCHEMA);
	env_case(T_HEALTH, "ts", "\"2026-01-01\"", EVB_ESCHEMA);
	env_case(T_HEALTH, "source", "\"svc\"", EVB_OK);
	env_case(T_HEALTH, "source", "5", EVB_ESCHEMA);
	env_case(T_HEALTH, "corr", "\"c\"", EVB_OK);
	env_case(T_HEALTH, "corr", "[]", EVB_ESCHEMA);
	env_case(T_HEALTH, "seq", "-1", EVB_ESCHEMA);
	env_case(T_HEALTH, "seq", "1.0", EVB_ESCHEMA);
	env_case(T_HEALTH, "epoch", "-3", EVB_ESCHEMA);
	env_case(T_HEALTH, "epoch", "\"3\"", EVB_ESCHEMA);
}

/* seq_epoch_case decodes a system_health event with the given seq/epoch. */
static void
seq_epoch_case(const char *seq, const char *epoch, int want, const char *path)
{
	json_t    *ev  = ptl_valid_event(T_HEALTH);
	evb_event *got = NULL;
	evb_diag   d   = { { 0 } };
	int        rc;

	if (seq != NULL) {
		json_object_set_new(ev, "seq", ptl_parse(seq));
	}
	if (epoch != NULL) {
		json_object_set_new(ev, "epoch", ptl_parse(epoch));
	}
	for (size_t i = 0; i < PTL_NSHAPES; i++) {
		rc = ptl_decode_shape(ev, &ptl_shapes[i], &got, &d);
		cr_assert_eq(rc, want, "seq %s epoch %s via %s: %d %s",
		    seq ? seq : "-", epoch ? epoch : "-", ptl_shapes[i].name,
		    rc, d.msg);
		if (rc == EVB_OK) {
			cr_assert(evb_proto_event_has_seq(got));
			evb_proto_event_free(got);
		} else {
			cr_assert(strstr(d.msg, path) == d.msg, "%s", d.msg);
		}
		got = NULL;
	}
	json_decref(ev);
}

Test(schema, seq_and_epoch_come_together, .timeout = 30)
{
	seq_epoch_case("0", "0", EVB_OK, NULL);
	seq_epoch_case("9223372036854775807", "3", EVB_OK, NULL);
	seq_epoch_case("5", NULL, EVB_ESCHEMA, "envelope.epoch");
	seq_epoch_case(NULL, "5", EVB_ESCHEMA, "envelope.seq");
}

Test(schema, id_is_1_to_128_bytes, .timeout = 30)
{
	char id[EVB_PROTO_MAX_ID + 4];
	char quoted[EVB_PROTO_MAX_ID + 8];

	memset(id, 'i', sizeof(id));
	id[EVB_PROTO_MAX_ID] = '\0';
	(void) snprintf(quoted, sizeof(quoted), "\"%s\"", id);
	env_case(T_HEALTH, "id", quoted, EVB_OK);
	id[EVB_PROTO_MAX_ID]     = 'i';
	id[EVB_PROTO_MAX_ID + 1] = '\0';
	(void) snprintf(quoted, sizeof(quoted), "\"%s\"", id);
	env_case(T_HEALTH, "id", quoted, EVB_ESCHEMA);
}

Test(schema, ts_and_seq_read_back, .timeout = 30)
{
	json_t    *ev  = ptl_valid_event(T_HEALTH);
	evb_event *got = NULL;
	evb_diag   d   = { { 0 } };

	json_object_set_new(ev, "ts", json_integer(1764035435123456789LL));
	json_object_set_new(ev, "seq", json_integer(77));
	json_object_set_new(ev, "epoch", json_integer(2));
	json_object_set_new(ev, "id", json_string("ev-9"));
	for (size_t i = 0; i < PTL_NSHAPES; i++) {
		evb_str id;

		cr_assert_eq(ptl_decode_shape(ev, &ptl_shapes[i], &got, &d),
		    EVB_OK, "via %s: %s", ptl_shapes[i].name, d.msg);
		cr_assert(evb_proto_event_has_ts(got));
		cr_assert_eq(evb_proto_event_ts(got), 1764035435123456789LL);
		cr_assert(evb_proto_event_has_seq(got));
		cr_assert_eq(evb_proto_event_seq(got), 77);
		cr_assert_eq(evb_proto_event_epoch(got), 2);
		id = evb_proto_event_id(got);
		cr_assert_eq(id.len, 4);
		cr_assert_arr_eq(id.ptr, "ev-9", 4);
		evb_proto_event_free(got);
	}
	json_decref(ev);
}

Test(schema, absent_envelope_fields_read_as_absent, .timeout = 30)
{
	json_t    *ev  = ptl_valid_event(T_HEALTH);
	evb_event *got = NULL;
	evb_diag   d   = { { 0 } };

	cr_assert_eq(ptl_decode_json(ev, &got, &d), EVB_OK, "%s", d.msg);
	cr_assert_not(evb_proto_event_has_seq(got));
	cr_assert_not(evb_proto_event_has_ts(got));
	cr_assert_eq(evb_proto_event_ts(got), 0);
	cr_assert_eq(evb_proto_event_id(got).len, 0);
	cr_assert_eq(evb_proto_event_source(got).len, 0);
	cr_assert_eq(evb_proto_event_corr(got).len, 0);
	evb_proto_event_free(got);
	json_decref(ev);
}

/* ---- Unknown keys ----------------------------------------------------- */

Test(schema, extra_fields_survive_a_round_trip, .timeout = 30)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		json_t    *ev = ptl_valid_event(t);
		evb_event *a  = NULL;
		evb_event *b  = NULL;
		evb_diag   d  = { { 0 } };
		evb_buf    buf;
		evb_str    s;
		double     n = 0;
		char      *json_out;
		json_t    *back;

		json_object_set_new(ptl_data(ev), "note", json_string("kept"));
		json_object_set_new(ptl_data(ev), "x_count", json_integer(-9));
		json_object_set_new(ev, "x_trace", json_string("t-1"));
		for (size_t i = 0; i < PTL_NSHAPES; i++) {
			cr_assert_eq(
			    ptl_decode_shape(ev, &ptl_shapes[i], &a, &d),
			    EVB_OK, "%s via %s: %s", ptl_type_names[t],
			    ptl_shapes[i].name, d.msg);
			evb_buf_init(&buf);
			cr_assert_eq(evb_proto_event_encode(a, &buf), EVB_OK);
			cr_assert_eq(
			    evb_proto_event_decode(&b, buf.data, buf.len, &d),
			    EVB_OK, "%s", d.msg);
			cr_assert_eq(
			    evb_proto_event_get_str(b, "note", &s), EVB_OK);
			cr_assert_eq(s.len, 4);
			cr_assert_arr_eq(s.ptr, "kept", 4);
			cr_assert_eq(
			    evb_proto_event_get_num(b, "x_count", &n), EVB_OK);
			cr_assert_eq(n, -9.0);
			/* The unknown envelope key comes back in the JSON form.
			 */
			evb_buf_reset(&buf);
			cr_assert_eq(evb_proto_event_to_json(b, &buf), EVB_OK);
			json_out = (char *) buf.data;
			back     = json_loadb(json_out, buf.len, 0, NULL);
			cr_assert_not_null(back, "to_json gave: %s", json_out);
			cr_assert_str_eq(
			    json_string_value(json_object_get(back, "x_trace")),
			    "t-1");
			json_decref(back);
			evb_buf_fini(&buf);
			evb_proto_event_free(a);
			evb_proto_event_free(b);
		}
		json_decref(ev);
	}
}

Test(schema, nan_and_inf_never_pass_json, .timeout = 30)
{
	/* JSON has no NaN; proto must not invent one from big exponents. */
	static const char *const texts[] = {
		"{\"type\":\"market_data\",\"data\":{\"symbol\":\"EURUSD\","
		"\"bid\":1e999,\"ask\":1e999}}",
		"{\"type\":\"market_data\",\"data\":{\"symbol\":\"EURUSD\","
		"\"bid\":NaN,\"ask\":1}}",
		"{\"type\":\"market_data\",\"data\":{\"symbol\":\"EURUSD\","
		"\"bid\":Infinity,\"ask\":1}}",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		evb_event *got = NULL;
		evb_diag   d   = { { 0 } };
		int        rc;

		rc = evb_proto_event_from_json(
		    &got, texts[i], strlen(texts[i]), &d);
		cr_assert_eq(
		    rc, EVB_EMALFORMED, "case %zu: %d %s", i, rc, d.msg);
		cr_assert_null(got);
		cr_assert_neq(d.msg[0], '\0');
	}
}

Test(schema, diag_may_be_null, .timeout = 30)
{
	static const char bad[] = "{\"type\":\"fire_command\",\"data\":{}}";
	evb_event        *got   = NULL;

	cr_assert_eq(evb_proto_event_from_json(&got, bad, strlen(bad), NULL),
	    EVB_ESCHEMA);
	cr_assert_null(got);
}
