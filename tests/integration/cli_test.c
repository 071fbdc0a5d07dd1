/*
 * cli_test.c: the evbus program's foundation subcommands (help, validate,
 * encode, decode, version), run as a user runs them: the real binary
 * (EVB_BIN) in a child process, its output captured in files of a fresh
 * temporary directory, its exit status checked against docs/cli.md.
 *
 * Fixtures live in tests/integration/data: valid.jsonl has one event of
 * each type (and a blank line), invalid.jsonl a bad volume on line 3.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"
#include "tests/support/support.h"

#define CLI_TEST_TIMEOUT_S 60    /* criterion's limit for one test. */
#define CLI_RUN_TIMEOUT_MS 20000 /* One evbus run; scaled by the env. */
#define CLI_MAX_RUNS 64          /* evbus runs one test may make. */
#define CLI_MAX_ARGS 12          /* Arguments after the binary. */

/* One finished run of evbus. */
typedef struct cli_result {
	int    code;     /* Shell-style exit code (evb_ts_exit_code). */
	char  *out;      /* Its stdout, NUL-terminated. */
	size_t out_len;  /* Bytes in out. */
	char  *err;      /* Its stderr, NUL-terminated. */
	char  *out_path; /* File holding stdout, to feed another run. */
} cli_result;

static char      *test_dir;
static pid_t      test_pid;
static cli_result test_runs[CLI_MAX_RUNS];
static int        test_nruns;

static void
cli_setup(void)
{
	cr_assert_eq(evb_ts_tmpdir_make(&test_dir), EVB_OK);
	cr_assert_not_null(evb_test_bin(), "EVB_BIN is not set");
	cr_assert_not_null(evb_test_source_dir(), "EVB_SOURCE_DIR is not set");
}

static void
cli_teardown(void)
{
	(void) evb_ts_kill(&test_pid);
	for (int i = 0; i < test_nruns; i++) {
		free(test_runs[i].out);
		free(test_runs[i].err);
		free(test_runs[i].out_path);
	}
	test_nruns = 0;
	(void) evb_ts_tmpdir_remove(test_dir);
	test_dir = NULL;
}

TestSuite(cli, .init = cli_setup, .fini = cli_teardown,
    .timeout = CLI_TEST_TIMEOUT_S);

/* test_path returns a new path in the test's directory (freed by exit). */
static char *
test_path(const char *name)
{
	char *p = evb_ts_path(test_dir, name);

	cr_assert_not_null(p);
	return p;
}

/* data_path returns the path of a fixture in tests/integration/data. */
static char *
data_path(const char *name)
{
	char  buf[4096];
	char *p;

	snprintf(buf, sizeof(buf), "%s/tests/integration/data/%s",
	    evb_test_source_dir(), name);
	cr_assert_not_null(p = strdup(buf));
	return p;
}

/* ARGS makes the argument list of cli_run: ARGS("encode", "--batch"). */
#define ARGS(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define ARGS_NONE ((const char *const[]) { NULL })

/*
 * cli_run runs "evbus ARGS..." (args is NULL-terminated) with stdin from
 * stdin_path (NULL: /dev/null) and waits for it to exit.
 */
static const cli_result *
cli_run(const char *stdin_path, const char *const *args)
{
	char       *argv[CLI_MAX_ARGS + 2];
	char        name[32];
	char       *err_path;
	cli_result *r;
	evb_ts_io   io;
	int         argc = 0;
	size_t      len;

	cr_assert_lt(test_nruns, CLI_MAX_RUNS);
	r            = &test_runs[test_nruns];
	argv[argc++] = (char *) evb_test_bin();
	for (; *args != NULL; args++) {
		cr_assert_lt(argc, CLI_MAX_ARGS + 1);
		argv[argc++] = (char *) *args;
	}
	argv[argc] = NULL;

	snprintf(name, sizeof(name), "run%d.out", test_nruns);
	r->out_path = test_path(name);
	snprintf(name, sizeof(name), "run%d.err", test_nruns);
	err_path = test_path(name);
	test_nruns++;
	io.stdin_path  = stdin_path;
	io.stdout_path = r->out_path;
	io.stderr_path = err_path;
	cr_assert_eq(evb_ts_run(&test_pid, argv, &io,
	                 evb_ts_timeout_ms(CLI_RUN_TIMEOUT_MS), &r->code),
	    EVB_OK, "evbus %s did not finish", argv[1]);
	cr_assert_eq(evb_ts_file_read(r->out_path, &r->out, &r->out_len), 0);
	cr_assert_eq(evb_ts_file_read(err_path, &r->err, &len), 0);
	free(err_path);
	return r;
}

/* ---- Comparing events ---------------------------------------------------- */

/*
 * json_same compares two JSON values: objects ignoring key order, arrays
 * in order, and numbers by value, so that 10301 and 10301.0 are the same
 * field (MessagePack may carry either).
 */
static bool
json_same(json_t *a, json_t *b)
{
	const char *key;
	json_t     *va;

	if (json_is_number(a) && json_is_number(b)) {
		return json_number_value(a) == json_number_value(b);
	}
	if (json_typeof(a) != json_typeof(b)) {
		return false;
	}
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b)) {
			return false;
		}
		json_object_foreach(a, key, va)
		{
			json_t *vb = json_object_get(b, key);

			if (vb == NULL || !json_same(va, vb)) {
				return false;
			}
		}
		return true;
	}
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b)) {
			return false;
		}
		for (size_t i = 0; i < json_array_size(a); i++) {
			if (!json_same(
			        json_array_get(a, i), json_array_get(b, i))) {
				return false;
			}
		}
		return true;
	}
	return json_equal(a, b);
}

/*
 * json_lines parses every non-blank line of text into a JSON array of
 * objects (the caller decrefs it).
 */
static json_t *
json_lines(const char *text)
{
	json_t     *all = json_array();
	const char *p   = text;

	cr_assert_not_null(all);
	while (*p != '\0') {
		const char  *nl = strchr(p, '\n');
		size_t       n  = nl != NULL ? (size_t) (nl - p) : strlen(p);
		json_error_t jerr;
		json_t      *v;

		if (n > 0) {
			v = json_loadb(p, n, 0, &jerr);
			cr_assert_not_null(v, "bad JSON line: %s", jerr.text);
			cr_assert(json_is_object(v));
			cr_assert_eq(json_array_append_new(all, v), 0);
		}
		p += n + (nl != NULL ? 1 : 0);
	}
	return all;
}

/* assert_same_events checks two texts of JSON lines hold equal events. */
static void
assert_same_events(const char *want_text, const char *got_text)
{
	json_t *want = json_lines(want_text);
	json_t *got  = json_lines(got_text);

	cr_assert_eq(json_array_size(got), json_array_size(want),
	    "%zu events came back, %zu went in", json_array_size(got),
	    json_array_size(want));
	for (size_t i = 0; i < json_array_size(want); i++) {
		char *w = json_dumps(json_array_get(want, i), JSON_SORT_KEYS);
		char *g = json_dumps(json_array_get(got, i), JSON_SORT_KEYS);

		cr_assert(
		    json_same(json_array_get(want, i), json_array_get(got, i)),
		    "event %zu differs:\n want %s\n got  %s", i, w, g);
		free(w);
		free(g);
	}
	json_decref(want);
	json_decref(got);
}

/* count_lines counts the newline characters in s. */
static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		n += *s == '\n';
	}
	return n;
}

/* fixture_text returns the content of a fixture (freed by exit). */
static char *
fixture_text(const char *name)
{
	char  *path = data_path(name);
	char  *text;
	size_t len;

	cr_assert_eq(evb_ts_file_read(path, &text, &len), EVB_OK);
	free(path);
	return text;
}

/* ---- validate ------------------------------------------------------------ */

Test(cli, validate_accepts_one_event_of_each_type)
{
	char             *in = data_path("valid.jsonl");
	const cli_result *r  = cli_run(NULL, ARGS("validate", in));

	cr_assert_eq(r->code, 0, "stdout: %s\nstderr: %s", r->out, r->err);
	cr_assert_str_empty(r->out);
	cr_assert_str_eq(r->err, "8 valid, 0 invalid\n");
	free(in);
}

Test(cli, validate_reads_stdin_when_no_file_is_given)
{
	char             *in = data_path("valid.jsonl");
	const cli_result *r  = cli_run(in, ARGS("validate"));
	const cli_result *d  = cli_run(in, ARGS("validate", "-"));

	cr_assert_eq(r->code, 0);
	cr_assert_str_eq(r->err, "8 valid, 0 invalid\n");
	cr_assert_eq(d->code, 0);
	cr_assert_str_eq(d->err, "8 valid, 0 invalid\n");
	free(in);
}

Test(cli, validate_names_line_and_field_of_invalid_event)
{
	char             *in   = data_path("invalid.jsonl");
	const cli_result *r    = cli_run(NULL, ARGS("validate", in));
	const char       *want = "line 3: fire_command.data.volume: ";

	cr_assert_eq(r->code, 1, "stderr: %s", r->err);
	cr_assert_eq(
	    strncmp(r->out, want, strlen(want)), 0, "stdout: %s", r->out);
	cr_assert_not_null(strstr(r->out, "250"), "stdout: %s", r->out);
	cr_assert_eq(count_lines(r->out), 1, "stdout: %s", r->out);
	cr_assert_str_eq(r->err, "3 valid, 1 invalid\n");
	free(in);
}

Test(cli, validate_reports_malformed_json_by_line)
{
	char       *in   = test_path("bad.jsonl");
	const char *text = "\n{\"type\":\"user_action\",\"data\":{\"user_id\""
	                   ":\"u\",\"action\":\"a\"}}\n{not json\n";
	const cli_result *r;

	cr_assert_eq(evb_ts_file_write(in, text, strlen(text)), EVB_OK);
	r = cli_run(NULL, ARGS("validate", in));
	cr_assert_eq(r->code, 1);
	cr_assert_eq(strncmp(r->out, "line 3: ", 8), 0, "stdout: %s", r->out);
	cr_assert_str_eq(r->err, "1 valid, 1 invalid\n");
	free(in);
}

Test(cli, validate_missing_file_is_a_usage_error)
{
	char             *in = test_path("no-such-file.jsonl");
	const cli_result *r  = cli_run(NULL, ARGS("validate", in));

	cr_assert_eq(r->code, 2);
	cr_assert_str_empty(r->out);
	cr_assert_not_null(strstr(r->err, "no-such-file.jsonl"), "%s", r->err);
	free(in);
}

Test(cli, bad_option_unknown_command_and_extra_operand_exit_2)
{
	const cli_result *opt  = cli_run(NULL, ARGS("validate", "--bogus"));
	const cli_result *sh   = cli_run(NULL, ARGS("encode", "-x"));
	const cli_result *cmd  = cli_run(NULL, ARGS("no-such-command"));
	const cli_result *two  = cli_run(NULL, ARGS("decode", "a", "b"));
	const cli_result *none = cli_run(NULL, ARGS_NONE);

	cr_assert_eq(opt->code, 2);
	cr_assert_not_null(strstr(opt->err, "--bogus"), "%s", opt->err);
	cr_assert_eq(sh->code, 2);
	cr_assert_not_null(strstr(sh->err, "-x"), "%s", sh->err);
	cr_assert_eq(cmd->code, 2);
	cr_assert_not_null(strstr(cmd->err, "no-such-command"), "%s", cmd->err);
	cr_assert_eq(two->code, 2);
	cr_assert_eq(none->code, 2);
	cr_assert_not_null(strstr(none->err, "usage: evbus"), "%s", none->err);
}

/* An option whose value is left out does not take the next option as its
   value (QA finding: "--since --data DIR" set the time to "--data" and
   then complained of too many arguments). */
Test(cli, an_option_without_its_value_does_not_swallow_the_next_option)
{
	const cli_result *lng = cli_run(
	    NULL, ARGS("query", "all", "--since", "--data", "no-such-dir"));
	const cli_result *inl = cli_run(NULL,
	    ARGS("query", "all", "--corr=--data", "--data", "no-such-dir"));
	const cli_result *neg = cli_run(
	    NULL, ARGS("replay", "--since", "-15m", "--data", "no-such-dir"));

	cr_assert_eq(lng->code, 2);
	cr_assert_not_null(strstr(lng->err,
	                       "option '--since' needs a value, got the "
	                       "option '--data'"),
	    "%s", lng->err);
	// Written inline, a value may start with "--"; the command then
	// gets as far as the missing directory.
	cr_assert_not_null(strstr(inl->err, "no-such-dir"), "%s", inl->err);
	cr_assert_null(strstr(inl->err, "needs a value"), "%s", inl->err);
	// A value with one dash is a value ("-15m", a relative time).
	cr_assert_not_null(strstr(neg->err, "no-such-dir"), "%s", neg->err);
}

/* Retention's options name what was wrong and exit 2 before anything
   opens (the data directory is never created). */
Test(cli, retention_options_refuse_bad_values)
{
	const char       *dir = test_path("retention-data");
	const cli_result *unit =
	    cli_run(NULL, ARGS("run", "--data", dir, "--retain-age", "7x"));
	const cli_result *zero = cli_run(
	    NULL, ARGS("collector", "--data", dir, "--retain-age", "0s"));
	const cli_result *tiny =
	    cli_run(NULL, ARGS("run", "--data", dir, "--retain-bytes", "10"));

	cr_assert_eq(unit->code, 2);
	cr_assert_not_null(strstr(unit->err,
	                       "--retain-age: expected N followed "
	                       "by s, m, h or d"),
	    "%s", unit->err);
	cr_assert_eq(zero->code, 2);
	cr_assert_not_null(
	    strstr(zero->err, "--retain-age: expected 1s..3650d"), "%s",
	    zero->err);
	cr_assert_eq(tiny->code, 2);
	cr_assert_not_null(
	    strstr(tiny->err, "--retain-bytes: expected 1048576"), "%s",
	    tiny->err);
	cr_assert_neq(access(dir, F_OK), 0, "a usage error created --data");
}

/*
 * A number too large for 64 bits is out of range, and says which range;
 * it used to be refused as no number at all ("expected a non-negative
 * integer"), naming no range, and a duration or relative time as one of
 * the wrong form. Each exits 2 before anything opens.
 */
Test(cli, numbers_too_large_for_64_bits_name_the_option_and_range)
{
	const char       *huge = "99999999999999999999999";
	const char       *dir  = test_path("huge-data");
	const cli_result *off =
	    cli_run(NULL, ARGS("replay", "--from-offset", huge, "--data", dir));
	const cli_result *size = cli_run(
	    NULL, ARGS("publish", "--max-msg", "99999999999999999999K", "-"));
	const cli_result *age   = cli_run(NULL,
	      ARGS("collector", "--data", dir, "--retain-age",
	          "99999999999999999999999d"));
	const cli_result *since = cli_run(NULL,
	    ARGS("replay", "--since", "-99999999999999999d", "--data", dir));

	cr_assert_eq(off->code, 2, "%s", off->err);
	cr_assert_not_null(strstr(off->err,
	                       "--from-offset: expected "
	                       "1..18446744073709551615, got '"
	                       "99999999999999999999999'"),
	    "%s", off->err);
	cr_assert_eq(size->code, 2, "%s", size->err);
	cr_assert_not_null(
	    strstr(size->err, "--max-msg: expected 1..1073741824"), "%s",
	    size->err);
	cr_assert_eq(age->code, 2, "%s", age->err);
	cr_assert_not_null(strstr(age->err, "--retain-age: expected 1s..3650d"),
	    "%s", age->err);
	cr_assert_eq(since->code, 2, "%s", since->err);
	cr_assert_not_null(strstr(since->err, "--since: "), "%s", since->err);
	cr_assert_not_null(
	    strstr(since->err, "too long ago"), "%s", since->err);
	cr_assert_neq(access(dir, F_OK), 0, "a usage error created --data");
}

/*
 * Every option that takes a URL names itself when given an address
 * without a scheme, and exits 2 before anything opens or connects; they
 * used to pass it to nng, whose "Invalid argument" named no option
 * ("cannot connect to 127.0.0.1:5570: Invalid argument").
 */
Test(cli, url_options_without_a_scheme_are_named)
{
	static const struct {
		const char *cmd;
		const char *opt;
	} urls[] = {
		{ "tail", "bus" },
		{ "stats", "ctl" },
		{ "publish", "ingest" },
		{ "collector", "connect" },
		{ "collector", "ctl" },
		{ "collector", "ingest" },
		{ "broker", "pub" },
		{ "broker", "ingest" },
		{ "broker", "ctl" },
		{ "run", "pub" },
		{ "run", "ingest" },
		{ "run", "confirm" },
		{ "run", "ctl" },
		{ "bench", "ingest" },
		{ "bench", "confirm-url" },
	};
	const char *dir = test_path("url-data");

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char        opt[32];
		char        want[160];
		const char *addr =
		    i % 2 == 0 ? "127.0.0.1:36999" : "localhost:36999";
		const cli_result *r;

		snprintf(opt, sizeof(opt), "--%s", urls[i].opt);
		snprintf(want, sizeof(want),
		    "%s: '%s' is not a URL (expected tcp://HOST:PORT, "
		    "ipc://PATH or inproc://NAME)",
		    opt, addr);
		if (strcmp(urls[i].cmd, "publish") == 0 ||
		    strcmp(urls[i].cmd, "tail") == 0 ||
		    strcmp(urls[i].cmd, "broker") == 0) {
			// They take no --data.
			r = cli_run(NULL, ARGS(urls[i].cmd, opt, addr));
		} else {
			r = cli_run(
			    NULL, ARGS(urls[i].cmd, opt, addr, "--data", dir));
		}
		cr_assert_eq(r->code, 2, "%s %s: %s", urls[i].cmd, opt, r->err);
		cr_assert_not_null(strstr(r->err, want), "%s %s: %s",
		    urls[i].cmd, opt, r->err);
	}
	cr_assert_neq(access(dir, F_OK), 0, "a usage error created --data");
}

/*
 * An empty --data (an unset variable in --data "$DIR") is named as such
 * and exits 2 before anything opens; it used to reach the log's open and
 * come back as "cannot open the log in : dir: expected a directory path",
 * naming no option. run listens on ports the kernel picks, in case the
 * check comes too late.
 */
Test(cli, an_empty_data_option_is_named_and_exits_2)
{
	const char       *any = "tcp://127.0.0.1:0";
	const cli_result *r[8];

	r[0] = cli_run(NULL, ARGS("replay", "--data", ""));
	r[1] = cli_run(NULL, ARGS("stats", "--data", "", "--json"));
	r[2] = cli_run(NULL,
	    ARGS("run", "--data", "", "--pub", any, "--ingest", any,
	        "--confirm", any, "--ctl", any));
	r[3] = cli_run(NULL, ARGS("collector", "--data", ""));
	r[4] = cli_run(NULL, ARGS("query", "all", "--data", ""));
	r[5] = cli_run(NULL, ARGS("trace", "sig-1", "--data", ""));
	r[6] = cli_run(NULL, ARGS("compact", "--data", ""));
	r[7] = cli_run(NULL, ARGS("compactor", "--data", ""));
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(r[i]->code, 2, "%d: %s", i, r[i]->err);
		cr_assert_str_eq(r[i]->out, "");
		cr_assert_not_null(
		    strstr(r[i]->err, "--data: expected a directory, got ''"),
		    "%d: %s", i, r[i]->err);
	}
}

/* ---- encode and decode --------------------------------------------------- */

Test(cli, encode_then_decode_gives_back_every_field)
{
	char             *in  = data_path("valid.jsonl");
	char             *txt = fixture_text("valid.jsonl");
	const cli_result *enc = cli_run(NULL, ARGS("encode", in));
	const cli_result *dec;

	cr_assert_eq(enc->code, 0, "stderr: %s", enc->err);
	cr_assert_str_empty(enc->err);
	// A stream of maps: the first byte is a map header, not an array's.
	cr_assert_gt(enc->out_len, 0);
	cr_assert_eq((uint8_t) enc->out[0] & 0xf0, 0x80);
	dec = cli_run(enc->out_path, ARGS("decode"));
	cr_assert_eq(dec->code, 0, "stderr: %s", dec->err);
	cr_assert_str_empty(dec->err);
	assert_same_events(txt, dec->out);
	free(in);
	free(txt);
}

Test(cli, encode_batch_writes_one_array_that_decode_reads)
{
	char             *in  = data_path("valid.jsonl");
	char             *txt = fixture_text("valid.jsonl");
	const cli_result *enc = cli_run(in, ARGS("encode", "--batch"));
	const cli_result *dec;
	uint8_t           b;

	cr_assert_eq(enc->code, 0, "stderr: %s", enc->err);
	cr_assert_gt(enc->out_len, 0);
	b = (uint8_t) enc->out[0];
	cr_assert(b == 0x98, "first byte 0x%02x, want fixarray of 8", b);
	dec = cli_run(NULL, ARGS("decode", enc->out_path));
	cr_assert_eq(dec->code, 0, "stderr: %s", dec->err);
	assert_same_events(txt, dec->out);
	free(in);
	free(txt);
}

Test(cli, encode_batch_of_many_events_uses_array16)
{
	char             *in = test_path("many.jsonl");
	FILE             *f  = fopen(in, "w");
	const cli_result *enc;
	const cli_result *dec;

	cr_assert_not_null(f);
	for (int i = 0; i < 300; i++) {
		fprintf(f,
		    "{\"type\":\"user_action\",\"data\":{\"user_id\":"
		    "\"u-%d\",\"action\":\"click\"}}\n",
		    i);
	}
	cr_assert_eq(fclose(f), 0);
	enc = cli_run(NULL, ARGS("encode", "-b", in));
	cr_assert_eq(enc->code, 0, "stderr: %s", enc->err);
	cr_assert_geq(enc->out_len, 3);
	cr_assert_eq((uint8_t) enc->out[0], 0xdc);
	cr_assert_eq((uint8_t) enc->out[1], 300 >> 8);
	cr_assert_eq((uint8_t) enc->out[2], 300 & 0xff);
	dec = cli_run(enc->out_path, ARGS("decode"));
	cr_assert_eq(dec->code, 0, "stderr: %s", dec->err);
	cr_assert_eq(count_lines(dec->out), 300);
	free(in);
}

Test(cli, encode_leaves_out_invalid_line_and_exits_1)
{
	char             *in  = data_path("invalid.jsonl");
	const cli_result *enc = cli_run(NULL, ARGS("encode", in));
	const cli_result *bat = cli_run(NULL, ARGS("encode", "--batch", in));
	const cli_result *dec;

	cr_assert_eq(enc->code, 1);
	cr_assert_not_null(strstr(enc->err, "line 3: fire_command.data.volume"),
	    "%s", enc->err);
	dec = cli_run(enc->out_path, ARGS("decode"));
	cr_assert_eq(dec->code, 0, "stderr: %s", dec->err);
	cr_assert_eq(count_lines(dec->out), 3);

	cr_assert_eq(bat->code, 1);
	cr_assert_gt(bat->out_len, 0);
	cr_assert_eq((uint8_t) bat->out[0], 0x93);
	free(in);
}

/*
 * stream_add_json encodes one JSON event with proto and appends its map
 * to out (the test builds inputs the CLI refuses to write).
 */
static void
stream_add_json(evb_buf *out, const char *json)
{
	evb_event *ev;

	cr_assert_eq(
	    evb_proto_event_from_json(&ev, json, strlen(json), NULL), EVB_OK);
	cr_assert_eq(evb_proto_event_encode(ev, out), EVB_OK);
	evb_proto_event_free(ev);
}

Test(cli, decode_reports_bad_event_by_index_and_goes_on)
{
	// {"type": "no_such_type", "data": {}}: well-formed, wrong schema.
	static const uint8_t bad[] = { 0x82, 0xa4, 't', 'y', 'p', 'e', 0xac,
		'n', 'o', '_', 's', 'u', 'c', 'h', '_', 't', 'y', 'p', 'e',
		0xa4, 'd', 'a', 't', 'a', 0x80 };
	const char *ok = "{\"type\":\"system_health\",\"data\":{\"component\":"
	                 "\"wal\",\"status\":\"down\"}}";
	char       *in = test_path("stream.mp");
	evb_buf     b;
	const cli_result *dec;

	evb_buf_init(&b);
	stream_add_json(&b, ok);
	cr_assert_eq(evb_buf_append(&b, bad, sizeof(bad)), EVB_OK);
	stream_add_json(&b, ok);
	cr_assert_eq(evb_ts_file_write(in, b.data, b.len), EVB_OK);
	evb_buf_fini(&b);

	dec = cli_run(in, ARGS("decode"));
	cr_assert_eq(dec->code, 1);
	cr_assert_eq(count_lines(dec->out), 2, "stdout: %s", dec->out);
	cr_assert_not_null(strstr(dec->err, "message 1: "), "%s", dec->err);
	cr_assert_eq(count_lines(dec->err), 1, "stderr: %s", dec->err);
	free(in);
}

Test(cli, decode_names_bad_event_inside_a_batch)
{
	char             *in  = data_path("valid.jsonl");
	const cli_result *enc = cli_run(NULL, ARGS("encode", "--batch", in));
	char             *bad = test_path("bad-batch.mp");
	const cli_result *dec;
	int               seen = 0;
	size_t            i;

	cr_assert_eq(enc->code, 0);
	// Turn the second event's "BUY" into "BUZ": a direction outside the
	// enum, changed in place so that every length stays right.
	for (i = 0; i + 4 <= enc->out_len; i++) {
		if (memcmp(enc->out + i,
		        "\xa3"
		        "BUY",
		        4) == 0 &&
		    ++seen == 2) {
			enc->out[i + 3] = 'Z';
			break;
		}
	}
	cr_assert_eq(seen, 2);
	cr_assert_eq(evb_ts_file_write(bad, enc->out, enc->out_len), EVB_OK);
	dec = cli_run(bad, ARGS("decode"));
	cr_assert_eq(dec->code, 1);
	cr_assert_eq(count_lines(dec->out), 7, "stdout: %s", dec->out);
	cr_assert_not_null(
	    strstr(dec->err, "message 0, event 1: "), "%s", dec->err);
	free(in);
	free(bad);
}

Test(cli, decode_refuses_hostile_and_truncated_input)
{
	// An array32 header claiming 2^32-1 elements and nothing after it.
	static const uint8_t huge[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	// A map16 claiming 65535 entries, truncated.
	static const uint8_t cut[] = { 0xde, 0xff, 0xff, 0xa1, 'x' };
	char                *h     = test_path("huge.mp");
	char                *c     = test_path("cut.mp");
	const cli_result    *rh;
	const cli_result    *rc;

	cr_assert_eq(evb_ts_file_write(h, huge, sizeof(huge)), EVB_OK);
	cr_assert_eq(evb_ts_file_write(c, cut, sizeof(cut)), EVB_OK);
	rh = cli_run(h, ARGS("decode"));
	rc = cli_run(c, ARGS("decode"));
	cr_assert_eq(rh->code, 1, "stderr: %s", rh->err);
	cr_assert_str_empty(rh->out);
	cr_assert_not_null(strstr(rh->err, "message 0"), "%s", rh->err);
	cr_assert_eq(rc->code, 1, "stderr: %s", rc->err);
	cr_assert_str_empty(rc->out);
	free(h);
	free(c);
}

/* frame_write writes the bus frame of a market_data event to path. */
static void
frame_write(const char *path)
{
	const char *json = "{\"type\":\"market_data\",\"data\":{\"symbol\":"
	                   "\"EURUSD\",\"bid\":1.1,\"ask\":1.2}}";
	evb_event  *ev;
	evb_buf     b;

	cr_assert_eq(
	    evb_proto_event_from_json(&ev, json, strlen(json), NULL), EVB_OK);
	evb_proto_event_set_seq(ev, 42, 3);
	evb_buf_init(&b);
	cr_assert_eq(evb_proto_frame_encode(ev, &b), EVB_OK);
	evb_proto_event_free(ev);
	cr_assert_eq(memcmp(b.data, "market_data.EURUSD\0", 19), 0);
	cr_assert_eq(evb_ts_file_write(path, b.data, b.len), EVB_OK);
	evb_buf_fini(&b);
}

Test(cli, decode_reads_a_bus_frame)
{
	char             *in = test_path("frame.bin");
	const cli_result *dec;
	json_t           *got;
	json_t           *ev;

	frame_write(in);
	dec = cli_run(in, ARGS("decode"));
	cr_assert_eq(dec->code, 0, "stderr: %s", dec->err);
	got = json_lines(dec->out);
	cr_assert_eq(json_array_size(got), 1);
	ev = json_array_get(got, 0);
	cr_assert_str_eq(
	    json_string_value(json_object_get(ev, "type")), "market_data");
	cr_assert_eq(json_integer_value(json_object_get(ev, "seq")), 42);
	cr_assert_eq(json_integer_value(json_object_get(ev, "epoch")), 3);
	json_decref(got);
	free(in);
}

Test(cli, decode_refuses_frame_whose_topic_is_not_the_events)
{
	char             *in = test_path("frame.bin");
	char             *bytes;
	size_t            len;
	const cli_result *dec;

	frame_write(in);
	cr_assert_eq(evb_ts_file_read(in, &bytes, &len), EVB_OK);
	memcpy(bytes + strlen("market_data."), "GBPUSD", 6);
	cr_assert_eq(evb_ts_file_write(in, bytes, len), EVB_OK);
	free(bytes);
	dec = cli_run(NULL, ARGS("decode", in));
	cr_assert_eq(dec->code, 1);
	cr_assert_str_empty(dec->out);
	cr_assert_not_null(strstr(dec->err, "frame"), "%s", dec->err);
	free(in);
}

Test(cli, decode_of_empty_input_prints_nothing)
{
	const cli_result *dec = cli_run(NULL, ARGS("decode"));

	cr_assert_eq(dec->code, 0, "stderr: %s", dec->err);
	cr_assert_str_empty(dec->out);
}

/* ---- help and version ------------------------------------------------------
 */

static const char *const cli_commands[] = { "help", "validate", "encode",
	"decode", "wal", "broker", "run", "collector", "compactor", "publish",
	"tail", "replay", "query", "trace", "compact", "stats", "bench",
	"version" };
#define CLI_NCOMMANDS (sizeof(cli_commands) / sizeof(cli_commands[0]))

Test(cli, help_lists_every_command)
{
	const cli_result *r = cli_run(NULL, ARGS("help"));
	const cli_result *h = cli_run(NULL, ARGS("--help"));

	cr_assert_eq(r->code, 0);
	for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
		char want[64];

		snprintf(want, sizeof(want), "\n  %s ", cli_commands[i]);
		cr_assert_not_null(
		    strstr(r->out, want), "'%s' missing", cli_commands[i]);
	}
	cr_assert_eq(h->code, 0);
	cr_assert_str_eq(h->out, r->out);
}

Test(cli, command_help_option_equals_help_command)
{
	for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
		const char       *c    = cli_commands[i];
		const cli_result *opt  = cli_run(NULL, ARGS(c, "--help"));
		const cli_result *sh   = cli_run(NULL, ARGS(c, "-h"));
		const cli_result *help = cli_run(NULL, ARGS("help", c));

		cr_assert_eq(opt->code, 0);
		cr_assert_eq(sh->code, 0);
		cr_assert_eq(help->code, 0);
		cr_assert_str_eq(opt->out, help->out);
		cr_assert_str_eq(sh->out, help->out);
		cr_assert(strncmp(help->out, "usage: evbus ", 13) == 0);
	}
	cr_assert_eq(cli_run(NULL, ARGS("help", "nope"))->code, 2);
}

Test(cli, docs_cli_md_holds_every_help_text)
{
	char   path[4096];
	char  *doc;
	size_t len;

	snprintf(path, sizeof(path), "%s/docs/cli.md", evb_test_source_dir());
	cr_assert_eq(evb_ts_file_read(path, &doc, &len), EVB_OK);
	for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
		const cli_result *r =
		    cli_run(NULL, ARGS("help", cli_commands[i]));

		cr_assert_gt(r->out_len, 0);
		cr_assert_not_null(strstr(doc, r->out),
		    "docs/cli.md lacks the help text of '%s':\n%s",
		    cli_commands[i], r->out);
	}
	cr_assert_not_null(strstr(doc, cli_run(NULL, ARGS("help"))->out),
	    "docs/cli.md lacks the output of 'evbus help'");
	free(doc);
}

Test(cli, version_prints_the_project_version)
{
	const cli_result *r = cli_run(NULL, ARGS("version"));

	cr_assert_eq(r->code, 0);
	cr_assert_str_eq(r->out, "evbus " EVB_VERSION "\n");
}
