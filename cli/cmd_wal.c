/*
 * cmd_wal.c: `evbus wal verify|stats --data DIR`, checking and describing
 * a write-ahead log (wal/wal.h) from outside the process that writes it.
 *
 * The log is opened read-only: LMDB lets any number of readers in other
 * processes share the environment with its writer, and a read-only handle
 * never takes the write lock, so both commands are safe beside a running
 * evbus. What they report is one consistent snapshot per query; verify
 * reads in chunks (evb_wal_verify), so it never holds a long transaction.
 *
 * Output is what the user asked for, so it goes to stdout; errors go to
 * stderr. Exit codes follow cli.h: CLI_EXIT_DATA when verify finds
 * corruption (the data was read and is bad), CLI_EXIT_USAGE for usage,
 * a missing log and I/O errors.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "wal/wal.h"

static int wal_run(int argc, char **argv);

const cli_cmd cli_cmd_wal = {
	.name    = "wal",
	.summary = "Check or describe a write-ahead log (verify, stats).",
	.help =
	    "usage: evbus wal verify --data DIR\n"
	    "       evbus wal stats --data DIR [--json]\n"
	    "\n"
	    "Check or describe the write-ahead log in DIR. The log is opened\n"
	    "read-only, so both work beside a running evbus.\n"
	    "\n"
	    "  verify  Check every record (its key, header, length and\n"
	    "          CRC-32C) and that offsets have no gaps. Print\n"
	    "          'ok: N records, offsets F..L', or 'corrupt:' with the\n"
	    "          first problem and its offset, and a count of problems.\n"
	    "  stats   Print the first and last offset, the record count, the\n"
	    "          bytes on disk and in use, the map size, the ids in the\n"
	    "          duplicate index, and each consumer cursor with its lag\n"
	    "          (records after it).\n"
	    "\n"
	    "Options:\n"
	    "  -d, --data DIR  The log's directory (required).\n"
	    "  -j, --json      stats: print one JSON object instead.\n"
	    "  -h, --help      Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 success (verify: the log is clean), 1 verify\n"
	    "found corruption, 2 usage error, no log in DIR, or I/O error.\n",
	.run = wal_run,
};

/* wal_open_ro opens dir read-only, reporting a failure on stderr. */
static int
wal_open_ro(const char *dir, evb_wal **w)
{
	evb_wal_opts o;
	evb_diag     d = { { 0 } };
	int          rc;

	evb_wal_opts_default(&o);
	o.read_only = true;
	if ((rc = evb_wal_open(w, dir, &o, &d)) != EVB_OK) {
		cli_error(&cli_cmd_wal, "cannot open the log: %s",
		    cli_diag_text(&d, rc));
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int
wal_verify(evb_wal *w)
{
	evb_wal_verify_report r;
	evb_diag              d = { { 0 } };
	int                   rc;

	rc = evb_wal_verify(w, &r, &d);
	if (rc == EVB_OK) {
		if (r.record_count == 0) {
			printf("ok: 0 records\n");
		} else {
			printf("ok: %" PRIu64 " records, offsets %" PRIu64
			       "..%" PRIu64 "\n",
			    r.record_count, r.first_off, r.last_off);
		}
		return CLI_EXIT_OK;
	}
	if (rc != EVB_ECORRUPT) {
		cli_error(&cli_cmd_wal, "verify: %s", cli_diag_text(&d, rc));
		return CLI_EXIT_USAGE;
	}
	printf("corrupt: %s\n", cli_diag_text(&d, rc));
	printf("%" PRIu64 " bad records or missing offsets in %" PRIu64
	       " records (offsets %" PRIu64 "..%" PRIu64
	       "); first bad offset %" PRIu64 "\n",
	    r.bad_count, r.record_count, r.first_off, r.last_off,
	    r.first_bad_off);
	return CLI_EXIT_DATA;
}

static uint64_t
wal_lag(const evb_wal_stat *s, uint64_t off)
{
	return off < s->last_off ? s->last_off - off : 0;
}

static void
wal_stats_text(
    const evb_wal_stat *s, const evb_wal_cursor_info *cur, size_t ncur)
{
	printf("first offset:   %" PRIu64 "\n", s->first_off);
	printf("last offset:    %" PRIu64 "\n", s->last_off);
	printf("records:        %" PRIu64 "\n", s->record_count);
	printf("bytes on disk:  %" PRIu64 "\n", s->file_bytes);
	printf("bytes in use:   %" PRIu64 "\n", s->bytes_used);
	printf("log bytes:      %" PRIu64 "\n", s->log_bytes);
	printf("map size:       %" PRIu64 "\n", s->map_size);
	printf("dedup ids:      %" PRIu64 "\n", s->id_count);
	printf("cursors:        %zu\n", ncur);
	for (size_t i = 0; i < ncur; i++) {
		printf("  %s: offset %" PRIu64 ", lag %" PRIu64 "\n",
		    cur[i].name, cur[i].off, wal_lag(s, cur[i].off));
	}
}

/* wal_json_cursor builds one cursor's object; NULL when out of memory.
 * A name that is not UTF-8 (JSON strings must be) goes out in hex. */
static json_t *
wal_json_cursor(const evb_wal_stat *s, const evb_wal_cursor_info *c)
{
	json_t *name = json_stringn(c->name, strlen(c->name));
	char    hex[2 * EVB_WAL_CURSOR_NAME_MAX + 1];

	if (name != NULL) {
		return json_pack("{s:o, s:I, s:I}", "name", name, "off",
		    (json_int_t) c->off, "lag",
		    (json_int_t) wal_lag(s, c->off));
	}
	for (size_t i = 0; c->name[i] != '\0'; i++) {
		(void) snprintf(hex + 2 * i, 3, "%02x",
		    (unsigned) (unsigned char) c->name[i]);
	}
	return json_pack("{s:s, s:I, s:I}", "name_hex", hex, "off",
	    (json_int_t) c->off, "lag", (json_int_t) wal_lag(s, c->off));
}

static int
wal_stats_json(
    const evb_wal_stat *s, const evb_wal_cursor_info *cur, size_t ncur)
{
	json_t *arr = json_array();
	json_t *obj;
	int     rc = CLI_EXIT_USAGE;

	for (size_t i = 0; arr != NULL && i < ncur; i++) {
		if (json_array_append_new(arr, wal_json_cursor(s, &cur[i])) !=
		    0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	obj = arr == NULL
	    ? NULL
	    : json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	                "s:I, s:o}",
	          "first_off", (json_int_t) s->first_off, "last_off",
	          (json_int_t) s->last_off, "record_count",
	          (json_int_t) s->record_count, "file_bytes",
	          (json_int_t) s->file_bytes, "bytes_used",
	          (json_int_t) s->bytes_used, "log_bytes",
	          (json_int_t) s->log_bytes, "map_size",
	          (json_int_t) s->map_size, "id_count",
	          (json_int_t) s->id_count, "cursors", arr);
	if (obj == NULL || json_dumpf(obj, stdout, JSON_SORT_KEYS) != 0) {
		cli_error(&cli_cmd_wal, "stats: out of memory");
	} else {
		putchar('\n');
		rc = CLI_EXIT_OK;
	}
	json_decref(obj);
	return rc;
}

static int
wal_stats(evb_wal *w, bool is_json)
{
	evb_wal_stat         s;
	evb_wal_cursor_info *cur  = NULL;
	size_t               ncur = 0;
	int                  rc;

	if ((rc = evb_wal_stats(w, &s)) != EVB_OK ||
	    (rc = evb_wal_cursor_list(w, &cur, &ncur)) != EVB_OK) {
		cli_error(&cli_cmd_wal, "stats: %s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	if (is_json) {
		rc = wal_stats_json(&s, cur, ncur);
	} else {
		wal_stats_text(&s, cur, ncur);
		rc = CLI_EXIT_OK;
	}
	evb_wal_cursor_list_free(cur);
	return rc;
}

static int
wal_run(int argc, char **argv)
{
	const char   *dir     = NULL;
	bool          is_json = false;
	const cli_opt opts[]  = {
		 { "data", 'd', NULL, &dir },
		 { "json", 'j', &is_json, NULL },
		 { NULL, 0, NULL, NULL },
	};
	const char *sub;
	evb_wal    *w = NULL;
	int         first;
	int         rc;

	// Options before the subcommand: only -h/--help.
	rc = cli_opts_parse(&cli_cmd_wal, argc, argv, NULL, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (first != 1 || argc < 2) {
		return cli_usage_error(
		    &cli_cmd_wal, "expected a subcommand: verify or stats");
	}
	sub = argv[1];
	if (strcmp(sub, "verify") != 0 && strcmp(sub, "stats") != 0) {
		return cli_usage_error(&cli_cmd_wal,
		    "unknown subcommand '%s': expected verify or stats", sub);
	}
	// The subcommand is argv[1]; its options follow, and no operands.
	rc = cli_opts_parse_max(
	    &cli_cmd_wal, argc - 1, argv + 1, opts, 0, &first);
	if (rc != CLI_CONTINUE) {
		return rc;
	}
	if (dir == NULL || dir[0] == '\0') {
		return cli_usage_error(&cli_cmd_wal, "--data DIR is required");
	}
	if (is_json && strcmp(sub, "stats") != 0) {
		return cli_usage_error(&cli_cmd_wal, "--json is for stats");
	}
	if ((rc = wal_open_ro(dir, &w)) != CLI_EXIT_OK) {
		return rc;
	}
	rc = strcmp(sub, "verify") == 0 ? wal_verify(w) : wal_stats(w, is_json);
	evb_wal_close(w);
	return cli_output_finish(&cli_cmd_wal, rc);
}
