/*
 * cmd_query.c: `evbus query`, questions answered from the compactor's
 * tables (compactor/compactor.h): the events of a type, or of every type
 * (`query all`, the all-events index), by time, symbol, correlation id or
 * user; the latest state per key; per-minute statistics; and the
 * compactor's own position and counters.
 *
 * The tables are opened read-only (a tables handle), so a query runs
 * beside the process that projects them, and each answer is one read
 * transaction: one consistent snapshot. The library picks the index that
 * fits the filters; this file only parses, and prints each row as it
 * comes: an event as the same JSON line `evbus replay` prints (the stored
 * envelope decoded and written by evb_proto_event_to_json), so that the
 * two can be compared line for line; or, with --format table, as aligned
 * columns (cli_table.c), which are held until the end because a column
 * is as wide as its widest cell.
 *
 * The helpers that `evbus trace` shares (opening the tables, decoding a
 * row, a field as text) live here too; cli.h declares them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "compactor/compactor.h"
#include "wal/wal.h"

static int query_run(int argc, char **argv);

const cli_cmd cli_cmd_query = {
	.name    = "query",
	.summary = "Query the compactor's tables (events, latest, stats).",
	.help =
	    "usage: evbus query TYPE|all [--symbol S] [--since T] [--until T]\n"
	    "                   [--corr ID] [--user U] [--limit N] [--desc]\n"
	    "                   [--explain] [--format F] [--data DIR]\n"
	    "       evbus query latest balance|account|health|quote [KEY]\n"
	    "                   [--format F] [--data DIR]\n"
	    "       evbus query stats [--type T] [--since T] [--until T]\n"
	    "                   [--format F] [--data DIR]\n"
	    "       evbus query status [--format F] [--data DIR]\n"
	    "\n"
	    "Answer from the compactor's tables in DIR/tables, read-only,\n"
	    "so the bus may be running; each answer is one consistent\n"
	    "snapshot of what the compactor had projected by then. Options\n"
	    "and operands may come in any order.\n"
	    "\n"
	    "  TYPE    The events of type TYPE (a type name, such as\n"
	    "          signal_generated, or its table's name, such as\n"
	    "          signal_events) in ts order, oldest first, each as\n"
	    "          one line of JSON with its full envelope, exactly as\n"
	    "          'evbus replay' prints it. --corr, --user and\n"
	    "          --symbol are answered from an index.\n"
	    "  all     The events of every type, merged in ts order\n"
	    "          (then log order) from the all-events index,\n"
	    "          printed as for TYPE; with --symbol, --corr or\n"
	    "          --user, from that index over every type. With\n"
	    "          --format table: time, type, id and routing key.\n"
	    "  latest  The newest event per key: balance (balance_update\n"
	    "          per user_id), account (balance_update per\n"
	    "          account_id), health (system_health per component)\n"
	    "          or quote (market_data per symbol); for every key,\n"
	    "          in key order, or for KEY only.\n"
	    "  stats   Events per minute and type, one line for each\n"
	    "          minute and type that has events, with the volume\n"
	    "          traded for trade_executed:\n"
	    "          {\"minute\":\"...\",\"type\":\"...\",\"count\":N}.\n"
	    "  status  The compactor's position (the last log offset it\n"
	    "          projected), the log's last offset, the lag between\n"
	    "          them, and its counters: events per type, gap\n"
	    "          records, bad records and records missed.\n"
	    "\n"
	    "Options:\n"
	    "  --symbol S    Only events whose data.symbol is S.\n"
	    "  --corr ID     Only events whose corr (correlation id) is ID.\n"
	    "  --user U      Only events whose data.user_id is U.\n"
	    "  --since T     Only events at or after T (stats: the minutes\n"
	    "                from the one T falls in): ISO 8601 with Z or a\n"
	    "                UTC offset, to the minute or finer\n"
	    "                (2026-11-25T01:50:35Z,\n"
	    "                2026-11-25T03:50:35.250+02:00), a date\n"
	    "                (2026-11-25: midnight UTC) or relative, such\n"
	    "                as -15m (s, m, h or d ago).\n"
	    "  --until T     Only events before T (stats: minutes that start\n"
	    "                before T), in the same forms.\n"
	    "  --type T      stats: only events of type T.\n"
	    "  --limit N     At most N events.\n"
	    "  --desc        Newest first.\n"
	    "  --explain     TYPE and all: after the answer, print on\n"
	    "                standard error the table or index read and\n"
	    "                how many rows it examined and returned:\n"
	    "                plan: ix.symbol, examined 100, returned 100\n"
	    "  --format F    json (default) or table: aligned columns for\n"
	    "                people.\n"
	    "  --data DIR    The data directory (default ./evbus-data).\n"
	    "  -h, --help    Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success, 1 nothing matched (or a stored event\n"
	    "did not decode: reported on standard error), 2 usage error\n"
	    "(an unknown type, a bad time, an option that does not\n"
	    "apply, such as --type with all), no tables in DIR yet, or\n"
	    "standard output cannot be written.\n",
	.run = query_run,
};

#define QUERY_MAX_OPERANDS 3 /* "latest", the kind and a key. */
#define QUERY_MAX_COLS 8     /* Data fields shown per type in a table. */
#define QUERY_CELL_MAX 256   /* Longest cell shown, bytes. */

/* The operand for every type. Neither a proto type nor a table is named
 * so; query_events tries it first, so one would be shadowed. */
#define QUERY_ALL "all"

/* The options as typed; NULL (false) when not given. */
typedef struct query_args {
	const char *symbol;
	const char *since;
	const char *until;
	const char *corr;
	const char *user;
	const char *limit;
	const char *type;
	const char *format;
	const char *data;
	bool        desc;
	bool        explain;
} query_args;

/* The data fields a table shows for one type, for people. */
typedef struct query_cols {
	const char *type;                   /* Type name. */
	const char *fields[QUERY_MAX_COLS]; /* NULL-terminated. */
} query_cols;

static const query_cols query_columns[] = {
	{ "signal_generated",
	    { "signal_id", "symbol", "direction", "confidence", "timeframe",
	        NULL } },
	{ "fire_command",
	    { "command_id", "user_id", "signal_id", "symbol", "direction",
	        "volume", NULL } },
	{ "trade_executed",
	    { "ticket", "user_id", "symbol", "direction", "volume", "price",
	        NULL } },
	{ "balance_update",
	    { "user_id", "account_id", "balance", "equity", "currency",
	        NULL } },
	{ "system_health",
	    { "component", "status", "cpu_percent", "memory_mb", "message",
	        NULL } },
	{ "user_action", { "user_id", "action", NULL } },
	{ "market_data", { "symbol", "bid", "ask", "volume", NULL } },
	{ "pattern_detected",
	    { "symbol", "pattern_type", "confidence", "direction", NULL } },
};

/* A type the list above does not know yet shows its routing key. */
static const query_cols query_cols_other = { NULL, { NULL } };

/* The latest-state tables, by the name typed. */
static const struct {
	const char          *name; /* As typed after "latest". */
	evb_compactor_latest kind; /* The table. */
	const char          *type; /* The type of its events. */
	const char          *what; /* Its key, for messages. */
} query_latest_kinds[] = {
	{ "balance", EVB_COMPACTOR_LATEST_BALANCE, "balance_update", "user" },
	{ "account", EVB_COMPACTOR_LATEST_ACCOUNT, "balance_update",
	    "account" },
	{ "health", EVB_COMPACTOR_LATEST_HEALTH, "system_health", "component" },
	{ "quote", EVB_COMPACTOR_LATEST_QUOTE, "market_data", "symbol" },
};

#define QUERY_NKINDS \
	(sizeof(query_latest_kinds) / sizeof(query_latest_kinds[0]))

/* How rows are printed, and what came of it. */
typedef struct query_out {
	cli_format        fmt;     /* JSON lines or a table. */
	evb_buf           json;    /* Scratch for one JSON line. */
	cli_table         table;   /* The table's cells (CLI_FORMAT_TABLE). */
	const query_cols *cols;    /* The rows' columns (table). */
	bool              has_key; /* latest: a KEY column first. */
	bool              is_all;  /* query all: TYPE, ID, ROUTE columns. */
	uint64_t          rows;    /* Rows printed. */
	int               worst;   /* Worst CLI_EXIT_* met so far. */
} query_out;

/* ---- Helpers shared with trace (cli.h) ----------------------------------- */

int
cli_parse_format(const cli_cmd *cmd, const char *text, cli_format *fmt)
{
	if (text == NULL || strcmp(text, "json") == 0) {
		*fmt = CLI_FORMAT_JSON;
	} else if (strcmp(text, "table") == 0) {
		*fmt = CLI_FORMAT_TABLE;
	} else {
		return cli_usage_error(
		    cmd, "--format: expected json or table, got '%s'", text);
	}
	return CLI_CONTINUE;
}

int
cli_tables_open(const cli_cmd *cmd, const char *data, evb_compactor_tables **t)
{
	evb_diag d = { "" };
	int      rc;

	rc = evb_compactor_tables_open(t, data, &d);
	switch (rc) {
	case EVB_OK:
		return CLI_CONTINUE;
	case EVB_ENOTFOUND:
		// The diag says no more than this.
		cli_error(cmd,
		    "no tables in %s yet: the compactor has not run there; "
		    "start 'evbus run' or 'evbus compactor' on it, or run "
		    "'evbus compact --data %s'",
		    data, data);
		break;
	case EVB_EVERSION:
	case EVB_ECORRUPT:
		cli_error(cmd,
		    "cannot read the tables in %s: %s; rebuild them with "
		    "'evbus compact --rebuild --data %s'",
		    data, cli_diag_text(&d, rc), data);
		break;
	default:
		cli_error(cmd, "cannot open the tables in %s: %s", data,
		    cli_diag_text(&d, rc));
		break;
	}
	return CLI_EXIT_USAGE;
}

int
cli_row_decode(const cli_cmd *cmd, uint64_t off, const void *envelope,
    size_t len, evb_event **ev)
{
	evb_diag d = { "" };
	int      rc;

	if ((rc = evb_proto_event_decode(ev, envelope, len, &d)) != EVB_OK) {
		cli_error(cmd, "the event of log offset %llu: %s",
		    (unsigned long long) off, cli_diag_text(&d, rc));
		return cli_is_fatal(rc) ? CLI_EXIT_USAGE : CLI_EXIT_DATA;
	}
	return CLI_EXIT_OK;
}

/*
 * query_double writes v in the shortest form that reads back as v, as
 * proto's JSON writer does, so a table shows 0.1 and not
 * 0.10000000000000001.
 */
static void
query_double(double v, char *buf, size_t cap)
{
	for (int prec = 1; prec <= 17; prec++) {
		(void) snprintf(buf, cap, "%.*g", prec, v);
		if (strtod(buf, NULL) == v) {
			return;
		}
	}
}

void
cli_field_text(const evb_event *ev, const char *field, char *buf, size_t cap)
{
	evb_str s;
	int64_t i;
	double  d;

	if (evb_proto_event_get_str(ev, field, &s) == EVB_OK) {
		(void) snprintf(buf, cap, "%.*s", (int) s.len, s.ptr);
	} else if (evb_proto_event_get_int(ev, field, &i) == EVB_OK) {
		(void) snprintf(buf, cap, "%" PRId64, i);
	} else if (evb_proto_event_get_num(ev, field, &d) == EVB_OK) {
		query_double(d, buf, cap);
	} else {
		buf[0] = '\0';
	}
}

/* ---- Rows ---------------------------------------------------------------- */

/* query_cols_of returns the columns shown for type. */
static const query_cols *
query_cols_of(int type)
{
	const char *name = evb_proto_type_name(type);

	for (size_t i = 0; name != NULL &&
	     i < sizeof(query_columns) / sizeof(query_columns[0]);
	     i++) {
		if (strcmp(query_columns[i].type, name) == 0) {
			return &query_columns[i];
		}
	}
	return &query_cols_other;
}

/*
 * query_out_init prepares o for rows of type (a table's columns), or of
 * every type (-1: the type and id, then the routing key, as for a type
 * the column list does not know, since the types share no other field).
 */
static void
query_out_init(query_out *o, cli_format fmt, int type, bool has_key)
{
	size_t ncols = 1 + (has_key ? 1 : 0);

	memset(o, 0, sizeof(*o));
	o->fmt     = fmt;
	o->cols    = type < 0 ? &query_cols_other : query_cols_of(type);
	o->has_key = has_key;
	o->is_all  = type < 0;
	evb_buf_init(&o->json);
	if (fmt != CLI_FORMAT_TABLE) {
		return;
	}
	for (const char *const *f = o->cols->fields; *f != NULL; f++) {
		ncols++;
	}
	ncols += o->cols->fields[0] == NULL ? 1 : 0;
	ncols += o->is_all ? 2 : 0;
	cli_table_init(&o->table, ncols);
	if (has_key) {
		cli_table_add(&o->table, "KEY");
	}
	cli_table_add(&o->table, "TIME");
	if (o->is_all) {
		cli_table_add(&o->table, "TYPE");
		cli_table_add(&o->table, "ID");
	}
	if (o->cols->fields[0] == NULL) {
		cli_table_add(&o->table, "ROUTE");
	}
	for (const char *const *f = o->cols->fields; *f != NULL; f++) {
		char   up[64];
		size_t i;

		for (i = 0; (*f)[i] != '\0' && i + 1 < sizeof(up); i++) {
			up[i] = (char) ((*f)[i] >= 'a' && (*f)[i] <= 'z'
			        ? (*f)[i] - 'a' + 'A'
			        : (*f)[i]);
		}
		up[i] = '\0';
		cli_table_add(&o->table, "%s", up);
	}
}

/* query_out_fini prints the table, if any, and frees o. */
static int
query_out_fini(query_out *o, int rc)
{
	if (o->fmt == CLI_FORMAT_TABLE) {
		if (rc != CLI_EXIT_USAGE && o->rows > 0) {
			int prc = cli_table_print(&cli_cmd_query, &o->table);

			rc = prc > rc ? prc : rc;
		}
		cli_table_fini(&o->table);
	}
	evb_buf_fini(&o->json);
	return rc;
}

/* query_table_row adds one event's cells. */
static void
query_table_row(query_out *o, const evb_compactor_row *row, const evb_event *ev)
{
	char iso[EVB_CLOCK_ISO_MAX];
	char cell[QUERY_CELL_MAX];

	if (o->has_key) {
		cli_table_add(&o->table, "%.*s", (int) row->key_len,
		    row->key != NULL ? row->key : "");
	}
	evb_clock_format_iso(row->ts_ns, iso, sizeof(iso));
	cli_table_add(&o->table, "%s", iso);
	if (o->is_all) {
		const char *name = evb_proto_type_name(row->type);
		evb_str     id   = evb_proto_event_id(ev);

		cli_table_add(&o->table, "%s", name != NULL ? name : "?");
		cli_table_add(&o->table, "%.*s", (int) id.len,
		    id.ptr != NULL ? id.ptr : "");
	}
	if (o->cols->fields[0] == NULL) {
		evb_str r = evb_proto_event_route(ev);

		cli_table_add(
		    &o->table, "%.*s", (int) r.len, r.ptr != NULL ? r.ptr : "");
	}
	for (const char *const *f = o->cols->fields; *f != NULL; f++) {
		cli_field_text(ev, *f, cell, sizeof(cell));
		cli_table_add(&o->table, "%s", cell);
	}
}

/*
 * query_row prints one row (an evb_compactor_row_fn). An envelope that
 * does not decode is reported and skipped; a failure to print stops the
 * query (EVB_EOF, with o->worst saying why).
 */
static int
query_row(void *arg, const evb_compactor_row *row)
{
	query_out *o = arg;
	evb_event *ev;
	int        rc;

	rc = cli_row_decode(
	    &cli_cmd_query, row->off, row->envelope, row->len, &ev);
	if (rc == CLI_EXIT_OK) {
		o->rows++;
		if (o->fmt == CLI_FORMAT_JSON) {
			rc = cli_event_print(&cli_cmd_query, ev, &o->json);
		} else {
			query_table_row(o, row, ev);
		}
		evb_proto_event_free(ev);
	}
	o->worst = rc > o->worst ? rc : o->worst;
	return rc == CLI_EXIT_USAGE ? EVB_EOF : EVB_OK;
}

/*
 * query_done turns a query's code into an exit status: a library error
 * is reported (2), a row that failed is already reported, and no row at
 * all is 1.
 */
static int
query_done(query_out *o, int rc, const evb_diag *d)
{
	if (rc != EVB_OK) {
		cli_error(&cli_cmd_query, "%s", cli_diag_text(d, rc));
		o->worst = CLI_EXIT_USAGE;
	} else if (o->rows == 0 && o->worst == CLI_EXIT_OK) {
		o->worst = CLI_EXIT_DATA;
	}
	return query_out_fini(o, o->worst);
}

/* ---- Options ------------------------------------------------------------- */

/*
 * query_only refuses the options that mode does not use. allowed lists
 * the ones it does, each between spaces: " since until ".
 */
static int
query_only(const query_args *a, const char *mode, const char *allowed)
{
	const struct {
		const char *name;
		bool        given;
	} opts[] = {
		{ "symbol", a->symbol != NULL },
		{ "since", a->since != NULL },
		{ "until", a->until != NULL },
		{ "corr", a->corr != NULL },
		{ "user", a->user != NULL },
		{ "limit", a->limit != NULL },
		{ "type", a->type != NULL },
		{ "desc", a->desc },
		{ "explain", a->explain },
	};
	char want[16];

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		(void) snprintf(want, sizeof(want), " %s ", opts[i].name);
		if (opts[i].given && strstr(allowed, want) == NULL) {
			return cli_usage_error(&cli_cmd_query,
			    "--%s does not apply to 'query %s'", opts[i].name,
			    mode);
		}
	}
	return CLI_CONTINUE;
}

/* query_type reads a type name, or its table's name. */
static int
query_type(const char *what, const char *name, int *type)
{
	if (evb_proto_type_find(name, strlen(name), type) == EVB_OK) {
		return CLI_CONTINUE;
	}
	for (int i = 0; (size_t) i < evb_proto_type_count(); i++) {
		const char *t = evb_compactor_table_name(i);

		if (t != NULL && strcmp(t, name) == 0) {
			*type = i;
			return CLI_CONTINUE;
		}
	}
	return cli_usage_error(&cli_cmd_query,
	    "%sunknown type '%s' (expected a type name such as "
	    "signal_generated, or a table name such as signal_events)",
	    what, name);
}

/* query_times reads --since and --until into *since and *until. */
static int
query_times(const query_args *a, int64_t *since, int64_t *until)
{
	int64_t now = evb_clock_real_ns();
	int     rc;

	if (a->since != NULL &&
	    (rc = cli_parse_time(&cli_cmd_query, "since", a->since, now,
	         since)) != CLI_CONTINUE) {
		return rc;
	}
	if (a->until != NULL &&
	    (rc = cli_parse_time(&cli_cmd_query, "until", a->until, now,
	         until)) != CLI_CONTINUE) {
		return rc;
	}
	return CLI_CONTINUE;
}

/* ---- The four questions ------------------------------------------------- */

/*
 * query_events answers `query TYPE` and `query all`. For all the type
 * stays -1 (every type): the library then walks the all-events index, or
 * with --corr, --user or --symbol that index's run of each type, merged
 * in (ts, offset) order, so every filter of a typed query applies.
 */
static int
query_events(const query_args *a, const char *name, cli_format fmt)
{
	evb_compactor_query      q;
	evb_compactor_query_stat st;
	evb_compactor_tables    *t;
	query_out                o;
	evb_diag                 d = { "" };
	int                      rc;

	evb_compactor_query_init(&q);
	if ((rc = query_only(a, name,
	         " symbol since until corr user limit desc explain ")) !=
	        CLI_CONTINUE ||
	    (strcmp(name, QUERY_ALL) != 0 &&
	        (rc = query_type("", name, &q.type)) != CLI_CONTINUE) ||
	    (rc = query_times(a, &q.since_ns, &q.until_ns)) != CLI_CONTINUE ||
	    (a->limit != NULL &&
	        (rc = cli_parse_u64(&cli_cmd_query, "limit", a->limit, 1,
	             UINT64_MAX, &q.limit)) != CLI_CONTINUE)) {
		return rc;
	}
	q.symbol     = a->symbol;
	q.corr       = a->corr;
	q.user       = a->user;
	q.descending = a->desc;
	q.stat       = &st;
	if ((rc = cli_tables_open(&cli_cmd_query, a->data, &t)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	query_out_init(&o, fmt, q.type, false);
	rc = evb_compactor_tables_query(t, &q, query_row, &o, &d);
	rc = query_done(&o, rc, &d);
	evb_compactor_tables_close(t);
	if (a->explain) {
		(void) fprintf(stderr,
		    "plan: %s, examined %" PRIu64 ", returned %" PRIu64 "\n",
		    st.source != NULL ? st.source : "none (empty range)",
		    st.examined, st.returned);
	}
	return rc;
}

/* query_latest answers `query latest KIND [KEY]`. */
static int
query_latest(const query_args *a, const char *const *ops, int n, cli_format fmt)
{
	evb_compactor_tables *t;
	query_out             o;
	evb_diag              d = { "" };
	size_t                k;
	int                   type;
	int                   rc;

	if ((rc = query_only(a, "latest", " ")) != CLI_CONTINUE) {
		return rc;
	}
	if (n < 2) {
		return cli_usage_error(&cli_cmd_query,
		    "latest: expected balance, account, health or quote");
	}
	for (k = 0; k < QUERY_NKINDS; k++) {
		if (strcmp(ops[1], query_latest_kinds[k].name) == 0) {
			break;
		}
	}
	if (k == QUERY_NKINDS) {
		return cli_usage_error(&cli_cmd_query,
		    "latest: unknown table '%s' (expected balance, account, "
		    "health or quote)",
		    ops[1]);
	}
	if ((rc = query_type("", query_latest_kinds[k].type, &type)) !=
	        CLI_CONTINUE ||
	    (rc = cli_tables_open(&cli_cmd_query, a->data, &t)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	query_out_init(&o, fmt, type, true);
	rc = evb_compactor_tables_latest(t, query_latest_kinds[k].kind,
	    n > 2 ? ops[2] : NULL, query_row, &o, &d);
	if (rc == EVB_ENOTFOUND && n > 2) {
		cli_error(&cli_cmd_query, "latest %s: no %s '%s'", ops[1],
		    query_latest_kinds[k].what, ops[2]);
		rc = EVB_OK;
	}
	rc = query_done(&o, rc, &d);
	evb_compactor_tables_close(t);
	return rc;
}

/* query_minute prints one statistics row (an evb_compactor_minute_fn). */
static int
query_minute(void *arg, const evb_compactor_minute *m)
{
	query_out  *o    = arg;
	const char *name = evb_proto_type_name(m->type);
	bool is_trade    = name != NULL && strcmp(name, "trade_executed") == 0;
	char iso[EVB_CLOCK_ISO_MAX];
	char vol[32] = "";

	evb_clock_format_iso(m->minute_ns, iso, sizeof(iso));
	if (is_trade) {
		query_double(m->volume_sum, vol, sizeof(vol));
	}
	o->rows++;
	if (o->fmt == CLI_FORMAT_TABLE) {
		cli_table_add(&o->table, "%s", iso);
		cli_table_add(&o->table, "%s", name != NULL ? name : "?");
		cli_table_add(&o->table, "%" PRIu64, m->count);
		cli_table_add(&o->table, "%s", is_trade ? vol : "-");
		return EVB_OK;
	}
	printf("{\"minute\":\"%s\",\"type\":\"%s\",\"count\":%" PRIu64
	       "%s%s}\n",
	    iso, name != NULL ? name : "?", m->count,
	    is_trade ? ",\"volume\":" : "", vol);
	return EVB_OK;
}

/* query_stats answers `query stats`. */
static int
query_stats(const query_args *a, cli_format fmt)
{
	evb_compactor_tables *t;
	query_out             o;
	evb_diag              d     = { "" };
	int64_t               since = INT64_MIN;
	int64_t               until = INT64_MAX;
	int                   type  = -1;
	int                   rc;

	if ((rc = query_only(a, "stats", " since until type ")) !=
	        CLI_CONTINUE ||
	    (a->type != NULL &&
	        (rc = query_type("--type: ", a->type, &type)) !=
	            CLI_CONTINUE) ||
	    (rc = query_times(a, &since, &until)) != CLI_CONTINUE ||
	    (rc = cli_tables_open(&cli_cmd_query, a->data, &t)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	memset(&o, 0, sizeof(o));
	o.fmt = fmt;
	evb_buf_init(&o.json);
	if (fmt == CLI_FORMAT_TABLE) {
		cli_table_init(&o.table, 4);
		cli_table_add(&o.table, "MINUTE");
		cli_table_add(&o.table, "TYPE");
		cli_table_add(&o.table, "COUNT");
		cli_table_add(&o.table, "VOLUME");
	}
	rc = evb_compactor_tables_minutes(
	    t, type, since, until, query_minute, &o, &d);
	rc = query_done(&o, rc, &d);
	evb_compactor_tables_close(t);
	return rc;
}

/* query_log_end reads the last offset of the log in data. */
static int
query_log_end(const char *data, uint64_t *last)
{
	evb_wal_opts wo;
	evb_wal     *w;
	evb_diag     d = { "" };
	int          rc;

	evb_wal_opts_default(&wo);
	wo.read_only = true;
	if ((rc = evb_wal_open(&w, data, &wo, &d)) == EVB_OK) {
		rc = evb_wal_last(w, last);
		evb_wal_close(w);
	}
	if (rc != EVB_OK) {
		cli_error(&cli_cmd_query, "cannot read the log in %s: %s", data,
		    cli_diag_text(&d, rc));
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

/* query_status_print prints the position, lag and counters. */
static void
query_status_print(const evb_compactor_stat *s, cli_format fmt)
{
	size_t ntypes = evb_proto_type_count();

	ntypes =
	    ntypes < EVB_COMPACTOR_MAX_TYPES ? ntypes : EVB_COMPACTOR_MAX_TYPES;
	if (fmt == CLI_FORMAT_TABLE) {
		printf("position      %" PRIu64 "\n", s->position);
		printf("log last      %" PRIu64 "\n", s->wal_last_off);
		printf("lag           %" PRIu64 "\n", s->lag);
		printf("events        %" PRIu64 "\n", s->events);
		printf("gaps          %" PRIu64 "\n", s->gaps);
		printf("bad           %" PRIu64 "\n", s->bad);
		printf("missed        %" PRIu64 "\n", s->missed);
		for (size_t i = 0; i < ntypes; i++) {
			printf("  %-18s %" PRIu64 "\n",
			    evb_proto_type_name((int) i), s->per_type[i]);
		}
		return;
	}
	printf("{\"position\":%" PRIu64 ",\"log_last\":%" PRIu64
	       ",\"lag\":%" PRIu64 ",\"events\":%" PRIu64 ",\"gaps\":%" PRIu64
	       ",\"bad\":%" PRIu64 ",\"missed\":%" PRIu64 ",\"per_type\":{",
	    s->position, s->wal_last_off, s->lag, s->events, s->gaps, s->bad,
	    s->missed);
	for (size_t i = 0; i < ntypes; i++) {
		printf("%s\"%s\":%" PRIu64, i > 0 ? "," : "",
		    evb_proto_type_name((int) i), s->per_type[i]);
	}
	printf("}}\n");
}

/* query_status answers `query status`. */
static int
query_status(const query_args *a, cli_format fmt)
{
	evb_compactor_tables *t;
	evb_compactor_stat    s;
	evb_diag              d    = { "" };
	uint64_t              last = 0;
	int                   rc;

	if ((rc = query_only(a, "status", " ")) != CLI_CONTINUE ||
	    (rc = cli_tables_open(&cli_cmd_query, a->data, &t)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	if ((rc = evb_compactor_tables_counters(t, &s, &d)) != EVB_OK) {
		cli_error(&cli_cmd_query,
		    "cannot read the counters in the tables of %s: %s", a->data,
		    cli_diag_text(&d, rc));
		evb_compactor_tables_close(t);
		return CLI_EXIT_USAGE;
	}
	evb_compactor_tables_close(t);
	// Read after the tables, so the lag is never below the truth.
	if ((rc = query_log_end(a->data, &last)) != CLI_CONTINUE) {
		return rc;
	}
	s.wal_last_off = last;
	s.lag          = last > s.position ? last - s.position : 0;
	query_status_print(&s, fmt);
	return CLI_EXIT_OK;
}

static int
query_run(int argc, char **argv)
{
	query_args    a      = { 0 };
	const cli_opt opts[] = {
		{ "symbol", 0, NULL, &a.symbol },
		{ "since", 0, NULL, &a.since },
		{ "until", 0, NULL, &a.until },
		{ "corr", 0, NULL, &a.corr },
		{ "user", 0, NULL, &a.user },
		{ "limit", 0, NULL, &a.limit },
		{ "desc", 0, &a.desc, NULL },
		{ "explain", 0, &a.explain, NULL },
		{ "type", 0, NULL, &a.type },
		{ "format", 0, NULL, &a.format },
		{ "data", 0, NULL, &a.data },
		{ NULL, 0, NULL, NULL },
	};
	const char *ops[QUERY_MAX_OPERANDS];
	cli_format  fmt;
	int         n;
	int         rc;

	rc = cli_opts_parse_mixed(
	    &cli_cmd_query, argc, argv, opts, ops, QUERY_MAX_OPERANDS, &n);
	if (rc != CLI_CONTINUE ||
	    (rc = cli_parse_format(&cli_cmd_query, a.format, &fmt)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	if (n == 0) {
		return cli_usage_error(&cli_cmd_query,
		    "expected a type, all, latest, stats or status");
	}
	if ((rc = cli_check_dir(&cli_cmd_query, "data", a.data)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	a.data = a.data != NULL ? a.data : CLI_DATA_DEFAULT;
	if (strcmp(ops[0], "latest") == 0) {
		rc = query_latest(&a, ops, n, fmt);
	} else if (n > 1) {
		return cli_usage_error(&cli_cmd_query, "too many arguments");
	} else if (strcmp(ops[0], "stats") == 0) {
		rc = query_stats(&a, fmt);
	} else if (strcmp(ops[0], "status") == 0) {
		rc = query_status(&a, fmt);
	} else {
		rc = query_events(&a, ops[0], fmt);
	}
	return cli_output_finish(&cli_cmd_query, rc);
}
