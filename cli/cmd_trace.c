/*
 * cmd_trace.c: `evbus trace ID`, the chain signal_generated ->
 * fire_command -> trade_executed of a signal, command or trade, from the
 * compactor's tables (evb_compactor_tables_trace), with the time between
 * the steps.
 *
 * The library hands over the chain's events grouped by step (signals,
 * then commands, then trades) and leaves the times to the caller. A chain
 * fans out (several users fire one signal; a command may fill in several
 * trades), so each step is timed against its own predecessor, found by
 * id among the events already seen: a command's signal by signal_id, a
 * trade's command by command_id (else its signal by signal_id). The
 * seen signals and commands are few (one chain), so they are kept in
 * small arrays and searched linearly.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "compactor/compactor.h"

static int trace_run(int argc, char **argv);

const cli_cmd cli_cmd_trace = {
	.name    = "trace",
	.summary = "Follow a signal to its commands and trades, timed.",
	.help =
	    "usage: evbus trace ID [--format F] [--data DIR]\n"
	    "\n"
	    "Follow the chain signal_generated -> fire_command ->\n"
	    "trade_executed that ID belongs to, from the compactor's tables\n"
	    "in DIR/tables (read-only, so the bus may be running). ID is\n"
	    "tried as a signal_id, then a command_id, then (if it is a\n"
	    "number) a trade ticket; the whole chain is followed from what\n"
	    "is found (one signal may be fired by several users, and a\n"
	    "command may fill in several trades). The signals come first,\n"
	    "then the commands, then the trades, each in ts order, one line\n"
	    "of JSON per step:\n"
	    "{\"step\":TYPE,\"after_us\":N,\"signal_to_fill_us\":N,\"event\":{."
	    "..}}\n"
	    "after_us is the time since the step before (a command's\n"
	    "signal; a trade's command, or its signal when it names no\n"
	    "command), signal_to_fill_us (trades only) the time since the\n"
	    "signal, in microseconds; each is left out when that step is\n"
	    "not in the tables. event is the full envelope, as 'evbus\n"
	    "replay' prints it.\n"
	    "\n"
	    "Options:\n"
	    "  --format F    json (default) or table: aligned columns for\n"
	    "                people, times in milliseconds.\n"
	    "  --data DIR    The data directory (default ./evbus-data).\n"
	    "  -h, --help    Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success, 1 no signal, command or trade has ID\n"
	    "(or a stored event did not decode), 2 usage error, no tables\n"
	    "in DIR yet, or standard output cannot be written.\n",
	.run = trace_run,
};

#define TRACE_ID_MAX 160  /* Ids kept for matching, bytes with the NUL. */
#define TRACE_NCOLS 10    /* Columns of the table. */
#define TRACE_CELL_MAX 64 /* Longest data cell shown, bytes. */

/* One signal or command seen, for the steps after it. */
typedef struct trace_seen {
	char    id[TRACE_ID_MAX];     /* Its signal_id or command_id. */
	char    signal[TRACE_ID_MAX]; /* A command's signal_id. */
	int64_t ts_ns;                /* Its time. */
} trace_seen;

/* A growable array of trace_seen. */
typedef struct trace_list {
	trace_seen *v;   /* Entries; owned. */
	size_t      n;   /* Entries used. */
	size_t      cap; /* Entries allocated. */
} trace_list;

/* The state of one trace. */
typedef struct trace_state {
	cli_format fmt;      /* JSON lines or a table. */
	int        t_signal; /* Type index of signal_generated. */
	int        t_cmd;    /* ... fire_command. */
	int        t_trade;  /* ... trade_executed. */
	trace_list signals;  /* Signals seen. */
	trace_list cmds;     /* Commands seen. */
	evb_buf    json;     /* Scratch for one event's JSON. */
	cli_table  table;    /* Cells (CLI_FORMAT_TABLE). */
	uint64_t   rows;     /* Steps printed. */
	int        worst;    /* Worst CLI_EXIT_* met. */
} trace_state;

/* The timing of one step; has_* is false when that step is unknown. */
typedef struct trace_times {
	bool    has_after;
	int64_t after_ns; /* Since the step before. */
	bool    has_fill;
	int64_t fill_ns; /* Since the signal (trades). */
} trace_times;

/* trace_add remembers an id (truncated ids never match: that is safe,
 * the step is then just untimed). Returns false when out of memory. */
static bool
trace_add(trace_list *l, const char *id, const char *signal, int64_t ts)
{
	if (l->n == l->cap) {
		size_t      cap = l->cap == 0 ? 8 : l->cap * 2;
		trace_seen *nv  = realloc(l->v, cap * sizeof(*nv));

		if (nv == NULL) {
			return false;
		}
		l->v   = nv;
		l->cap = cap;
	}
	(void) snprintf(l->v[l->n].id, TRACE_ID_MAX, "%s", id);
	(void) snprintf(l->v[l->n].signal, TRACE_ID_MAX, "%s", signal);
	l->v[l->n].ts_ns = ts;
	l->n++;
	return true;
}

/* trace_find returns the first entry with this id, or NULL. */
static const trace_seen *
trace_find(const trace_list *l, const char *id)
{
	for (size_t i = 0; id[0] != '\0' && i < l->n; i++) {
		if (strcmp(l->v[i].id, id) == 0) {
			return &l->v[i];
		}
	}
	return NULL;
}

/* trace_time works out a step's times and remembers it for later ones.
 * Returns false when out of memory. */
static bool
trace_time(
    trace_state *s, int type, const evb_event *ev, int64_t ts, trace_times *tt)
{
	char              sig[TRACE_ID_MAX], cmd[TRACE_ID_MAX];
	const trace_seen *from = NULL;
	const trace_seen *root = NULL;

	memset(tt, 0, sizeof(*tt));
	cli_field_text(ev, "signal_id", sig, sizeof(sig));
	cli_field_text(ev, "command_id", cmd, sizeof(cmd));
	if (type == s->t_signal) {
		return trace_add(&s->signals, sig, "", ts);
	}
	if (type == s->t_cmd) {
		from = trace_find(&s->signals, sig);
		if (!trace_add(&s->cmds, cmd, sig, ts)) {
			return false;
		}
	} else if (type == s->t_trade) {
		const trace_seen *c = trace_find(&s->cmds, cmd);

		root = trace_find(&s->signals, sig);
		if (root == NULL && c != NULL) {
			root = trace_find(&s->signals, c->signal);
		}
		// A trade that names a command is timed from that command
		// alone: from its signal only when it names none.
		from = cmd[0] != '\0' ? c : root;
	}
	if (from != NULL) {
		tt->has_after = true;
		tt->after_ns  = ts - from->ts_ns;
	}
	if (root != NULL) {
		tt->has_fill = true;
		tt->fill_ns  = ts - root->ts_ns;
	}
	return true;
}

/* trace_ms writes a duration in ms with three decimals ("+250.125 ms"). */
static void
trace_ms(bool has, int64_t ns, char *buf, size_t cap)
{
	int64_t us  = ns / 1000;
	int64_t abs = us < 0 ? -us : us;

	if (!has) {
		(void) snprintf(buf, cap, "-");
		return;
	}
	(void) snprintf(buf, cap, "%s%" PRId64 ".%03" PRId64 " ms",
	    us < 0 ? "-" : "+", abs / 1000, abs % 1000);
}

/* trace_table_row adds one step's cells. */
static void
trace_table_row(trace_state *s, int type, const evb_event *ev, int64_t ts,
    const trace_times *tt)
{
	static const char *const fields[] = { "user_id", "symbol", "direction",
		"volume", "price" };
	const char              *id_field = type == s->t_signal ? "signal_id"
	                 : type == s->t_cmd                     ? "command_id"
	                                                        : "ticket";
	char                     cell[TRACE_CELL_MAX];
	char                     iso[EVB_CLOCK_ISO_MAX];

	evb_clock_format_iso(ts, iso, sizeof(iso));
	cli_table_add(&s->table, "%s", evb_proto_type_name(type));
	cli_table_add(&s->table, "%s", iso);
	trace_ms(tt->has_after, tt->after_ns, cell, sizeof(cell));
	cli_table_add(&s->table, "%s", cell);
	trace_ms(tt->has_fill, tt->fill_ns, cell, sizeof(cell));
	cli_table_add(&s->table, "%s", type == s->t_trade ? cell : "");
	cli_field_text(ev, id_field, cell, sizeof(cell));
	cli_table_add(&s->table, "%s", cell);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		cli_field_text(ev, fields[i], cell, sizeof(cell));
		cli_table_add(&s->table, "%s", cell);
	}
}

/* trace_json_row prints one step as a JSON line. */
static int
trace_json_row(
    trace_state *s, int type, const evb_event *ev, const trace_times *tt)
{
	int rc;

	evb_buf_reset(&s->json);
	if ((rc = evb_proto_event_to_json(ev, &s->json)) != EVB_OK) {
		cli_error(&cli_cmd_trace, "%s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	printf("{\"step\":\"%s\"", evb_proto_type_name(type));
	if (tt->has_after) {
		printf(",\"after_us\":%" PRId64, tt->after_ns / 1000);
	}
	if (tt->has_fill && type == s->t_trade) {
		printf(",\"signal_to_fill_us\":%" PRId64, tt->fill_ns / 1000);
	}
	printf(",\"event\":%s}\n", (const char *) s->json.data);
	return CLI_EXIT_OK;
}

/* trace_row handles one event of the chain (an evb_compactor_row_fn). */
static int
trace_row(void *arg, const evb_compactor_row *row)
{
	trace_state *s = arg;
	trace_times  tt;
	evb_event   *ev;
	int          rc;

	rc = cli_row_decode(
	    &cli_cmd_trace, row->off, row->envelope, row->len, &ev);
	if (rc == CLI_EXIT_OK) {
		s->rows++;
		if (!trace_time(s, row->type, ev, row->ts_ns, &tt)) {
			cli_error(
			    &cli_cmd_trace, "%s", evb_strerror(EVB_ENOMEM));
			rc = CLI_EXIT_USAGE;
		} else if (s->fmt == CLI_FORMAT_JSON) {
			rc = trace_json_row(s, row->type, ev, &tt);
		} else {
			trace_table_row(s, row->type, ev, row->ts_ns, &tt);
		}
		evb_proto_event_free(ev);
	}
	s->worst = rc > s->worst ? rc : s->worst;
	return rc == CLI_EXIT_USAGE ? EVB_EOF : EVB_OK;
}

/* trace_types looks up the three types of a chain. */
static int
trace_types(trace_state *s)
{
	static const char *const names[] = { "signal_generated", "fire_command",
		"trade_executed" };
	int *const out[] = { &s->t_signal, &s->t_cmd, &s->t_trade };

	for (size_t i = 0; i < 3; i++) {
		if (evb_proto_type_find(names[i], strlen(names[i]), out[i]) !=
		    EVB_OK) {
			cli_error(&cli_cmd_trace, "this build has no type %s",
			    names[i]);
			return CLI_EXIT_USAGE;
		}
	}
	return CLI_CONTINUE;
}

/* trace_chain runs the trace of id on open tables. */
static int
trace_chain(evb_compactor_tables *t, const char *id, trace_state *s)
{
	static const char *const head[TRACE_NCOLS] = { "STEP", "TIME", "AFTER",
		"SIGNAL TO FILL", "ID", "USER", "SYMBOL", "DIRECTION", "VOLUME",
		"PRICE" };
	evb_diag                 d                 = { "" };
	int                      rc;

	if (s->fmt == CLI_FORMAT_TABLE) {
		cli_table_init(&s->table, TRACE_NCOLS);
		for (size_t i = 0; i < TRACE_NCOLS; i++) {
			cli_table_add(&s->table, "%s", head[i]);
		}
	}
	rc = evb_compactor_tables_trace(t, id, trace_row, s, &d);
	if (rc == EVB_ENOTFOUND) {
		cli_error(&cli_cmd_trace,
		    "no signal_id, command_id or ticket '%s' in the tables",
		    id);
		s->worst = CLI_EXIT_DATA;
	} else if (rc != EVB_OK) {
		cli_error(&cli_cmd_trace, "%s", cli_diag_text(&d, rc));
		s->worst = CLI_EXIT_USAGE;
	} else if (s->rows == 0 && s->worst == CLI_EXIT_OK) {
		s->worst = CLI_EXIT_DATA;
	}
	if (s->fmt == CLI_FORMAT_TABLE) {
		if (s->worst != CLI_EXIT_USAGE && s->rows > 0) {
			rc       = cli_table_print(&cli_cmd_trace, &s->table);
			s->worst = rc > s->worst ? rc : s->worst;
		}
		cli_table_fini(&s->table);
	}
	return s->worst;
}

static int
trace_run(int argc, char **argv)
{
	const char   *data   = NULL;
	const char   *format = NULL;
	const cli_opt opts[] = {
		{ "format", 0, NULL, &format },
		{ "data", 0, NULL, &data },
		{ NULL, 0, NULL, NULL },
	};
	const char           *id;
	trace_state           s;
	evb_compactor_tables *t;
	int                   n;
	int                   rc;

	memset(&s, 0, sizeof(s));
	rc = cli_opts_parse_mixed(&cli_cmd_trace, argc, argv, opts, &id, 1, &n);
	if (rc != CLI_CONTINUE ||
	    (rc = cli_parse_format(&cli_cmd_trace, format, &s.fmt)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	if (n == 0 || id[0] == '\0') {
		return cli_usage_error(&cli_cmd_trace,
		    "expected an ID: a signal_id, command_id or ticket");
	}
	if ((rc = cli_check_dir(&cli_cmd_trace, "data", data)) !=
	    CLI_CONTINUE) {
		return rc;
	}
	data = data != NULL ? data : CLI_DATA_DEFAULT;
	if ((rc = trace_types(&s)) != CLI_CONTINUE ||
	    (rc = cli_tables_open(&cli_cmd_trace, data, &t)) != CLI_CONTINUE) {
		return rc;
	}
	evb_buf_init(&s.json);
	rc = trace_chain(t, id, &s);
	evb_buf_fini(&s.json);
	free(s.signals.v);
	free(s.cmds.v);
	evb_compactor_tables_close(t);
	return cli_output_finish(&cli_cmd_trace, rc);
}
