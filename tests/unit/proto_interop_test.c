/*
 * proto_interop_test: events made by another MessagePack encoder.
 *
 * Producers are not all written in C. This test runs Debian's
 * python3-msgpack (via popen) to pack events the way a Python producer
 * would: str or old raw strings (use_bin_type True/False), bytes keys
 * (bin), float32 (use_single_float) and Python's own integer widths. The
 * bytes go through evb_proto_event_decode, the frame decoder and the
 * ingest iterator. It also runs the other way: our encoding is read back
 * by Python's unpacker.
 *
 * Python with msgpack is a test dependency (scripts/install-deps.sh
 * installs python3-msgpack). When it is missing the test fails, never
 * skips: a skipped interop test would look like a passing one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proto/proto.h"
#include "tests/unit/proto_testlib.h"

/* ---- Running Python --------------------------------------------------- */

/*
 * python_ok says whether py runs and imports msgpack. A Python that
 * shadows Debian's on PATH (a virtualenv, pyenv) may lack the module,
 * so Debian's own interpreter is tried after the one on PATH.
 */
static bool
python_ok(const char *py)
{
	char cmd[512];

	(void) snprintf(
	    cmd, sizeof(cmd), "%s -c 'import msgpack' >/dev/null 2>&1", py);
	return (system(cmd) == 0);
}

static const char *
python(void)
{
	const char *env = getenv("EVB_PYTHON3");

	if (env != NULL && env[0] != '\0' && python_ok(env)) {
		return (env);
	}
	if (python_ok("python3")) {
		return ("python3");
	}
	if (python_ok("/usr/bin/python3")) {
		return ("/usr/bin/python3");
	}
	cr_assert_fail("python3 with the msgpack module is missing; "
	               "run scripts/install-deps.sh (it installs "
	               "python3-msgpack)");
	return (NULL);
}

/*
 * run_python runs a Python program (given as -c text, no single quotes)
 * and returns what it wrote to stdout in a malloc'd block.
 */
static uint8_t *
run_python(const char *prog, size_t *len)
{
	const char *py;
	char       *cmd;
	size_t      cap = 4096;
	size_t      n   = 0;
	uint8_t    *out = malloc(cap);
	FILE       *f;
	int         status;

	cr_assert_not_null(out);
	cr_assert_null(strchr(prog, '\''), "test bug: quote in the program");
	py  = python();
	n   = strlen(py) + strlen(prog) + sizeof(" -c ''");
	cmd = malloc(n);
	cr_assert_not_null(cmd);
	(void) snprintf(cmd, n, "%s -c '%s'", py, prog);
	n = 0;
	f = popen(cmd, "r");
	cr_assert_not_null(f, "popen failed");
	for (;;) {
		size_t got;

		if (n == cap) {
			uint8_t *bigger = realloc(out, cap * 2);

			cr_assert_not_null(bigger);
			out = bigger;
			cap *= 2;
		}
		got = fread(out + n, 1, cap - n, f);
		if (got == 0) {
			break;
		}
		n += got;
	}
	status = pclose(f);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "python failed (status %d) running: %s", status, prog);
	free(cmd);
	*len = n;
	return (out);
}

/* The Python side's events: every type, with producer-style values. */
#define PY_EVENTS                                                            \
	"evs = ["                                                            \
	"{\"type\": \"signal_generated\", \"ts\": 1764035435123456789, "     \
	"\"data\": {\"signal_id\": \"s-1\", \"symbol\": \"EURUSD\", "        \
	"\"direction\": \"BUY\", \"confidence\": 87.5, \"timeframe\": "      \
	"\"M15\", \"entry_price\": 1.0842}},"                                \
	"{\"type\": \"fire_command\", \"data\": {\"command_id\": \"c-1\", "  \
	"\"user_id\": \"u-1\", \"signal_id\": \"s-1\", \"symbol\": "         \
	"\"EURUSD\", \"direction\": \"SELL\", \"volume\": 100}},"            \
	"{\"type\": \"trade_executed\", \"id\": \"py-3\", \"data\": "        \
	"{\"ticket\": 2**40, \"user_id\": \"u-1\", \"symbol\": \"EURUSD\", " \
	"\"direction\": \"BUY\", \"volume\": 0.5, \"price\": 1.0842, "       \
	"\"commission\": -1}},"                                              \
	"{\"type\": \"balance_update\", \"data\": {\"user_id\": \"u-1\", "   \
	"\"balance\": -2**40, \"equity\": 0.25, \"currency\": \"EUR\"}},"    \
	"{\"type\": \"system_health\", \"seq\": 2**63 - 1, \"epoch\": 1, "   \
	"\"data\": {\"component\": \"broker\", \"status\": \"degraded\", "   \
	"\"message\": \"x\" * 40, \"uptime_s\": 65536}},"                    \
	"{\"type\": \"user_action\", \"x_env\": [1, None, True], \"data\": " \
	"{\"user_id\": \"u-\\u00e9\", \"action\": \"login\", \"details\": "  \
	"{\"ip\": \"127.0.0.1\", \"n\": -129, \"tags\": [\"a\", 1.5]}}},"    \
	"{\"type\": \"market_data\", \"data\": {\"symbol\": \"BRK.B\", "     \
	"\"bid\": 412.5, \"ask\": 413, \"volume\": 0}},"                     \
	"{\"type\": \"pattern_detected\", \"data\": {\"symbol\": "           \
	"\"XAU_USD\", \"pattern_type\": \"flag\", \"confidence\": 0, "       \
	"\"direction\": \"SELL\"}}"                                          \
	"]\n"

/* Each event packed alone, length-prefixed (4 bytes big-endian). */
#define PY_EACH(opts)                                               \
	"import msgpack, struct, sys\n" PY_EVENTS "for e in evs:\n" \
	"    b = msgpack.packb(e, " opts ")\n"                      \
	"    sys.stdout.buffer.write(struct.pack(\">I\", len(b)) + b)\n"

/* decode_each decodes every length-prefixed event in out. */
static void
decode_each(const uint8_t *out, size_t len, const char *what)
{
	size_t off = 0;
	int    t   = 0;

	while (off < len) {
		uint32_t   n;
		evb_event *ev = NULL;
		evb_diag   d  = { { 0 } };
		int        rc;

		cr_assert_leq(off + 4, len);
		n = evb_get_be32(out + off);
		off += 4;
		cr_assert_leq(off + n, len);
		rc = evb_proto_event_decode(&ev, out + off, n, &d);
		cr_assert_eq(
		    rc, EVB_OK, "%s: event %d: %d %s", what, t, rc, d.msg);
		cr_assert_eq(evb_proto_event_type(ev), t, "%s", what);
		evb_proto_event_free(ev);
		off += n;
		t++;
	}
	cr_assert_eq(t, PTL_NTYPES, "%s: python wrote %d events", what, t);
}

/* ---- Python to evbus -------------------------------------------------- */

Test(interop, python_str_types_decode, .timeout = 60)
{
	size_t   len = 0;
	uint8_t *out = run_python(PY_EACH("use_bin_type=True"), &len);

	decode_each(out, len, "use_bin_type=True");
	free(out);
}

Test(interop, python_raw_strings_decode, .timeout = 60)
{
	/* The old spec: no str8, 40-byte strings become raw16. */
	size_t   len = 0;
	uint8_t *out = run_python(PY_EACH("use_bin_type=False"), &len);

	decode_each(out, len, "use_bin_type=False");
	free(out);
}

Test(interop, python_float32_decodes, .timeout = 60)
{
	size_t   len = 0;
	uint8_t *out = run_python(
	    PY_EACH("use_bin_type=True, use_single_float=True"), &len);

	decode_each(out, len, "use_single_float=True");
	free(out);
}

Test(interop, python_bytes_keys_decode, .timeout = 60)
{
	/* Keys given as bytes are packed as bin. */
	static const char prog[] =
	    "import msgpack, sys\n"
	    "def keys(o):\n"
	    "    if isinstance(o, dict):\n"
	    "        return {k.encode(): keys(v) for k, v in o.items()}\n"
	    "    return o\n"
	    "ev = {\"type\": \"market_data\", \"x_note\": \"n\", \"data\": "
	    "{\"symbol\": \"EURUSD\", \"bid\": 1.0841, \"ask\": 1.0843}}\n"
	    "b = msgpack.packb(keys(ev), use_bin_type=True)\n"
	    "assert b[1] == 0xc4\n"
	    "sys.stdout.buffer.write(b)\n";
	size_t     len = 0;
	uint8_t   *out = run_python(prog, &len);
	evb_event *ev  = NULL;
	evb_diag   d   = { { 0 } };
	evb_str    route;
	double     ask = 0;

	cr_assert_eq(
	    evb_proto_event_decode(&ev, out, len, &d), EVB_OK, "%s", d.msg);
	route = evb_proto_event_route(ev);
	cr_assert_eq(route.len, 6);
	cr_assert_arr_eq(route.ptr, "EURUSD", 6);
	cr_assert_eq(evb_proto_event_get_num(ev, "ask", &ask), EVB_OK);
	cr_assert_eq(ask, 1.0843);
	evb_proto_event_free(ev);
	free(out);
}

Test(interop, python_values_read_back_exactly, .timeout = 60)
{
	static const char prog[] =
	    "import msgpack, sys\n" PY_EVENTS
	    "sys.stdout.buffer.write(msgpack.packb(evs[2], "
	    "use_single_float=True))\n"
	    "sys.stdout.buffer.write(msgpack.packb(evs[4]))\n";
	size_t     len    = 0;
	uint8_t   *out    = run_python(prog, &len);
	size_t     n      = 0;
	evb_event *ev     = NULL;
	evb_diag   d      = { { 0 } };
	int64_t    ticket = 0;
	double     v      = 0;
	evb_str    s;

	cr_assert_eq(
	    evb_proto_msg_extent(out, len, &n, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(
	    evb_proto_event_decode(&ev, out, n, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_proto_event_get_int(ev, "ticket", &ticket), EVB_OK);
	cr_assert_eq(ticket, 1099511627776LL);
	cr_assert_eq(evb_proto_event_get_num(ev, "price", &v), EVB_OK);
	cr_assert_eq(v, (double) 1.0842f, "price went through float32");
	cr_assert_eq(evb_proto_event_get_num(ev, "commission", &v), EVB_OK);
	cr_assert_eq(v, -1.0);
	cr_assert_eq(evb_proto_event_id(ev).len, 4);
	evb_proto_event_free(ev);
	cr_assert_eq(evb_proto_event_decode(&ev, out + n, len - n, &d), EVB_OK,
	    "%s", d.msg);
	cr_assert(evb_proto_event_has_seq(ev));
	cr_assert_eq(evb_proto_event_seq(ev), INT64_MAX);
	cr_assert_eq(evb_proto_event_epoch(ev), 1);
	cr_assert_eq(evb_proto_event_get_str(ev, "message", &s), EVB_OK);
	cr_assert_eq(s.len, 40);
	evb_proto_event_free(ev);
	free(out);
}

Test(interop, python_batch_through_the_ingest_iterator, .timeout = 60)
{
	/* Every type, then a bad event (confidence 101), then every type. */
	static const char prog[] =
	    "import msgpack, sys\n" PY_EVENTS
	    "bad = {\"type\": \"pattern_detected\", \"data\": {\"symbol\": "
	    "\"EURUSD\", \"pattern_type\": \"flag\", \"confidence\": 101}}\n"
	    "sys.stdout.buffer.write(msgpack.packb(evs + [bad] + evs, "
	    "use_bin_type=False, use_single_float=True))\n";
	size_t           len = 0;
	uint8_t         *out = run_python(prog, &len);
	evb_proto_ingest it;
	evb_diag         d  = { { 0 } };
	size_t           ok = 0;

	cr_assert_eq(
	    evb_proto_ingest_begin(&it, out, len, &d), EVB_OK, "%s", d.msg);
	cr_assert(it.is_batch);
	cr_assert_eq(it.count, 2 * PTL_NTYPES + 1);
	for (size_t i = 0; i < 2 * PTL_NTYPES + 1; i++) {
		evb_event *ev = NULL;
		int        rc = evb_proto_ingest_next(&it, &ev, &d);

		cr_assert_eq(it.index - 1, i);
		if (i == PTL_NTYPES) {
			cr_assert_eq(rc, EVB_ESCHEMA);
			cr_assert(
			    strstr(d.msg, "pattern_detected.data.confidence") ==
			        d.msg,
			    "%s", d.msg);
			continue;
		}
		cr_assert_eq(rc, EVB_OK, "element %zu: %d %s", i, rc, d.msg);
		cr_assert_eq(
		    evb_proto_event_type(ev), (int) (i % (PTL_NTYPES + 1)));
		evb_proto_event_free(ev);
		ok++;
	}
	cr_assert_eq(ok, 2 * PTL_NTYPES);
	cr_assert_eq(
	    evb_proto_ingest_next(&it, &(evb_event *) { NULL }, &d), EVB_EOF);
	free(out);
}

Test(interop, python_frame_decodes, .timeout = 60)
{
	static const char prog[] =
	    "import msgpack, sys\n" PY_EVENTS
	    "sys.stdout.buffer.write(b\"user_action.u-\\xc3\\xa9\\x00\" + "
	    "msgpack.packb(dict(evs[5], seq=9, epoch=2)))\n";
	size_t     len = 0;
	uint8_t   *out = run_python(prog, &len);
	evb_event *ev  = NULL;
	evb_diag   d   = { { 0 } };

	cr_assert_eq(
	    evb_proto_frame_decode(&ev, out, len, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_proto_event_type(ev), 5);
	evb_proto_event_free(ev);
	free(out);
}

/* ---- evbus to Python -------------------------------------------------- */

static char tmpdir[512];

static void
tmp_init(void)
{
	const char *base = getenv("TMPDIR");

	(void) snprintf(tmpdir, sizeof(tmpdir), "%s/evb-interop-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void
tmp_fini(void)
{
	char path[600];

	(void) snprintf(path, sizeof(path), "%s/ev.mp", tmpdir);
	(void) unlink(path);
	(void) rmdir(tmpdir);
}

Test(interop, python_reads_our_encoding, .init = tmp_init, .fini = tmp_fini,
    .timeout = 60)
{
	for (int t = 0; t < PTL_NTYPES; t++) {
		evb_event *ev = NULL;
		evb_diag   d  = { { 0 } };
		evb_buf    b;
		char       path[600];
		char       prog[1024];
		FILE      *f;
		uint8_t   *out;
		size_t     len = 0;
		json_t    *want;
		json_t    *got;

		cr_assert_eq(evb_proto_event_from_json(&ev, ptl_full_json[t],
		                 strlen(ptl_full_json[t]), &d),
		    EVB_OK, "%s", d.msg);
		evb_buf_init(&b);
		cr_assert_eq(evb_proto_event_encode(ev, &b), EVB_OK);
		(void) snprintf(path, sizeof(path), "%s/ev.mp", tmpdir);
		f = fopen(path, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(fwrite(b.data, 1, b.len, f), b.len);
		cr_assert_eq(fclose(f), 0);
		/* strict: one object, str keys, no trailing bytes. */
		(void) snprintf(prog, sizeof(prog),
		    "import msgpack, json, sys\n"
		    "raw = open(\"%s\", \"rb\").read()\n"
		    "ev = msgpack.unpackb(raw, raw=False, "
		    "strict_map_key=True)\n"
		    "sys.stdout.write(json.dumps(ev))\n",
		    path);
		out  = run_python(prog, &len);
		got  = json_loadb((const char *) out, len, 0, NULL);
		want = ptl_parse(ptl_full_json[t]);
		cr_assert_not_null(got);
		cr_assert(json_equal(want, got), "python read %.*s", (int) len,
		    (const char *) out);
		json_decref(want);
		json_decref(got);
		free(out);
		evb_buf_fini(&b);
		evb_proto_event_free(ev);
	}
}
