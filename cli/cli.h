/*
 * cli: the internals of the evbus command line program, shared by main.c
 * and the cmd_<name>.c files. Nothing outside cli/ includes this header.
 *
 * A subcommand is one cli_cmd value, defined in cmd_<name>.c, declared
 * below and listed once in the table in main.c. Dispatch, `evbus help`
 * and `evbus help CMD` all read that table, so a new subcommand needs
 * nothing more (and its section in docs/cli.md, which repeats every help
 * text word for word; tests/integration/cli_test.c checks it).
 *
 * Exit codes are the same for every subcommand: CLI_EXIT_OK, CLI_EXIT_DATA
 * for input that was read but is invalid, CLI_EXIT_USAGE for bad usage,
 * unreadable input, write errors and out-of-memory.
 *
 * Thread-safety: none; cli/ code runs on the main thread only (the
 * threads of the broker and of nng never call into it).
 */
#ifndef EVB_CLI_H
#define EVB_CLI_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/proto.h"

#define CLI_EXIT_OK 0    /* Success. */
#define CLI_EXIT_DATA 1  /* Some input was invalid. */
#define CLI_EXIT_USAGE 2 /* Usage, I/O or system error. */

/* cli_opts_parse returns this when the command should go on and run. */
#define CLI_CONTINUE (-1)

/* One subcommand. The table in main.c holds one pointer per command. */
typedef struct cli_cmd {
	const char *name;    /* As typed: "validate". */
	const char *summary; /* One line for the command list of `help`. */
	const char *help;    /* Full help text, ending in a newline. */
	/*
	 * run executes the command. argv[0] is the command's name and
	 * argv[argc] is NULL. It returns a CLI_EXIT_* code.
	 */
	int (*run)(int argc, char **argv);
} cli_cmd;

extern const cli_cmd cli_cmd_help;
extern const cli_cmd cli_cmd_validate;
extern const cli_cmd cli_cmd_encode;
extern const cli_cmd cli_cmd_decode;
extern const cli_cmd cli_cmd_version;
extern const cli_cmd cli_cmd_wal;
extern const cli_cmd cli_cmd_broker;
extern const cli_cmd cli_cmd_publish;
extern const cli_cmd cli_cmd_tail;
extern const cli_cmd cli_cmd_stats;
extern const cli_cmd cli_cmd_run;
extern const cli_cmd cli_cmd_collector;
extern const cli_cmd cli_cmd_replay;
extern const cli_cmd cli_cmd_compactor;
extern const cli_cmd cli_cmd_compact;
extern const cli_cmd cli_cmd_query;
extern const cli_cmd cli_cmd_trace;
extern const cli_cmd cli_cmd_bench;

/* ---- The command table (main.c) ---------------------------------------- */

/* cli_cmd_find returns the command called name, or NULL. */
const cli_cmd *cli_cmd_find(const char *name);

/* cli_overview_print writes the program's usage and command list to f. */
void cli_overview_print(FILE *f);

/* ---- Options (cli_opts.c) ----------------------------------------------- */

/*
 * One option a command accepts besides -h/--help, which every command
 * has. An option is a flag, or takes a value when value is not NULL:
 * "--data DIR", "--data=DIR", "-d DIR" or "-dDIR" (a short option with a
 * value ends a bundle of short flags: "-jd DIR").
 */
typedef struct cli_opt {
	const char  *long_name;  /* "batch" for --batch; never NULL. */
	char         short_name; /* 'b' for -b, or 0 for none. */
	bool        *is_set;     /* Set to true when given; may be NULL. */
	const char **value;      /* NULL for a flag; else gets the value,
	                            borrowed from argv. */
} cli_opt;

/*
 * cli_opts_parse reads the options of cmd from argv[1..argc-1]. opts is
 * an array ended by an entry whose long_name is NULL (opts may be NULL
 * for a command with no options). Options come before operands; "--"
 * ends them, and "-" alone is an operand (standard input).
 * Returns CLI_CONTINUE with *first set to the index of the first operand;
 * CLI_EXIT_OK after printing the help text on stdout for -h/--help; or
 * CLI_EXIT_USAGE after printing why on stderr. OUT: *first.
 */
int cli_opts_parse(
    const cli_cmd *cmd, int argc, char **argv, const cli_opt *opts, int *first);

/*
 * cli_opts_parse_max is cli_opts_parse for a command that takes at most
 * max_operands operands: more is a usage error ("too many arguments").
 * Returns as cli_opts_parse does. OUT: *first, when it returns
 * CLI_CONTINUE.
 */
int cli_opts_parse_max(const cli_cmd *cmd, int argc, char **argv,
    const cli_opt *opts, int max_operands, int *first);

/*
 * cli_opts_parse_mixed is cli_opts_parse for a command whose operands and
 * options may come in any order ("evbus query TYPE --limit 5"): each
 * operand goes, in order, to operands[], which holds max_operands; more
 * is a usage error ("too many arguments"). "--" ends the options: what
 * follows it is all operands. Returns as cli_opts_parse does.
 * OUT: operands[0..*n-1] (borrowed from argv) and *n, when it returns
 * CLI_CONTINUE.
 */
int cli_opts_parse_mixed(const cli_cmd *cmd, int argc, char **argv,
    const cli_opt *opts, const char **operands, int max_operands, int *n);

/*
 * cli_usage_error prints "evbus <cmd>: <message>" and a pointer to the
 * command's help on stderr, and returns CLI_EXIT_USAGE.
 */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * cli_error prints "evbus <cmd>: <message>" on stderr. For errors that are
 * not about usage (invalid data, I/O).
 */
void cli_error(const cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * cli_error_not_taken reports that nothing at url took a message (what,
 * e.g. "sending 8 events") within secs: a broker busy for that long is
 * rare, while an endpoint of another protocol (the bus or control port),
 * which nng 1.5 connects to and then refuses in silence, is not. It says
 * which endpoint url should be (is_confirm: the confirmed ingest) and
 * its default.
 */
void cli_error_not_taken(const cli_cmd *cmd, const char *what, const char *url,
    bool is_confirm, int secs);

/*
 * cli_diag_text returns the diag's message, or evb_strerror(rc) when the
 * diag was left empty. The string lives as long as diag.
 */
const char *cli_diag_text(const evb_diag *diag, int rc);

/*
 * cli_is_fatal reports whether rc stops a command (out of memory, an OS
 * error) rather than condemning one piece of input.
 */
static inline bool
cli_is_fatal(int rc)
{
	return rc == EVB_ENOMEM || rc >= EVB_ESYSERR;
}

/* ---- Numbers (cli_num.c) ------------------------------------------------ */

/*
 * cli_parse_u64 reads text, the value of option --name, as a decimal
 * integer in min..max. Returns CLI_CONTINUE with *out set, or
 * CLI_EXIT_USAGE after printing what was wrong: the form expected, or
 * "--NAME: expected MIN..MAX" for a number out of range, one too large
 * for 64 bits included. OUT: *out.
 */
int cli_parse_u64(const cli_cmd *cmd, const char *name, const char *text,
    uint64_t min, uint64_t max, uint64_t *out);

/*
 * cli_parse_bytes is cli_parse_u64 for sizes: the number may end in K, M
 * or G (KiB, MiB, GiB), so "4M" is 4194304.
 */
int cli_parse_bytes(const cli_cmd *cmd, const char *name, const char *text,
    uint64_t min, uint64_t max, uint64_t *out);

/*
 * cli_parse_time reads text, the value of option --name, as a time: ISO
 * 8601 with Z or a UTC offset ("2026-11-25T01:50:35Z",
 * "2026-11-25T03:50:35.25+02:00"; seconds and fraction optional), a date
 * alone for midnight UTC ("2026-11-25"), or relative to now_ns ("-15m":
 * N seconds, minutes, hours or days ago, with s, m, h or d). Impossible
 * dates and times are refused with the reason. Returns CLI_CONTINUE with *out
 * set to ns since the Unix epoch, or CLI_EXIT_USAGE after printing what was
 * wrong. OUT: *out.
 */
int cli_parse_time(const cli_cmd *cmd, const char *name, const char *text,
    int64_t now_ns, int64_t *out);

/*
 * cli_parse_duration reads text, the value of option --name, as a length
 * of time: N seconds, minutes, hours or days ("90s", "15m", "24h", "7d").
 * Returns CLI_CONTINUE with *ms set (milliseconds), or CLI_EXIT_USAGE
 * after printing what was wrong. A duration of that form too long for 64
 * bits of ns sets *ms to UINT64_MAX: the caller checks its range and
 * names it. OUT: *ms.
 */
int cli_parse_duration(
    const cli_cmd *cmd, const char *name, const char *text, uint64_t *ms);

/* ---- Events (cli_event.c) ----------------------------------------------- */

/*
 * cli_event_match says whether ev passes the --type and --symbol filter:
 * type is a type index or -1 for any; symbol, when not NULL, must equal
 * the event's routing key exactly (evb_proto_event_route).
 */
bool cli_event_match(const evb_event *ev, int type, const char *symbol);

/*
 * cli_event_print writes ev to stdout as one line of JSON, its full
 * envelope (evb_proto_event_to_json), using json as scratch space (the
 * caller's, reused across calls; it is reset first). Returns CLI_EXIT_OK,
 * or CLI_EXIT_USAGE after reporting why on stderr. A write error is left
 * for cli_output_finish (or the caller's fflush) to find.
 */
int cli_event_print(const cli_cmd *cmd, const evb_event *ev, evb_buf *json);

/* ---- Signals (cli_sig.c) ------------------------------------------------ */

/*
 * cli_sig_open makes SIGINT and SIGTERM write a byte to a pipe, whose
 * read end it returns in *fd: poll it for POLLIN to learn that the user
 * asked to stop. Once per process, before any thread starts (nng's
 * included), so that every thread inherits the unblocked signals.
 * Returns CLI_CONTINUE, or
 * CLI_EXIT_USAGE after printing why. Undo with cli_sig_close.
 */
int cli_sig_open(const cli_cmd *cmd, int *fd);

/* cli_sig_close restores the default actions and closes the pipe. */
void cli_sig_close(void);

/*
 * cli_close_deadline flushes stdout and stderr and gives the rest of the
 * process CLI_CLOSE_GRACE_S seconds: if it has not exited by then, it
 * exits with status, after a line on standard error. Call it once the
 * command's work is done and its data safe (logs closed), just before
 * closing its nng sockets: nng 1.5's nng_close can hang for good in a
 * race with a socket's reconnect task (nanomsg/nng#1543, fixed in later
 * releases), and a stop that never ends is worse than skipping a close
 * at exit.
 */
void cli_close_deadline(int status);

/* ---- Broker options (cmd_broker.c) --------------------------------------
 * `evbus broker` and `evbus run` take the same broker options.
 */

/* The largest --max-msg, of a broker (as broker.c allows) and publish. */
#define CLI_MAX_MSG_LIMIT ((uint64_t) 1 << 30)

/* The broker options as typed; NULL when not given. */
typedef struct cli_broker_args {
	const char *pub;       /* --pub URL */
	const char *ingest;    /* --ingest URL */
	const char *ctl;       /* --ctl URL */
	const char *max_msg;   /* --max-msg BYTES */
	const char *ring;      /* --ring BYTES */
	const char *heartbeat; /* --heartbeat MS */
	const char *stats_log; /* --stats-log MS */
} cli_broker_args;

struct evb_broker_opts;

/*
 * cli_broker_opts_fill turns the typed options into broker options (the
 * defaults for those not given). Returns CLI_CONTINUE, or CLI_EXIT_USAGE
 * after printing what was wrong, naming cmd. OUT: *o.
 */
int cli_broker_opts_fill(
    const cli_cmd *cmd, const cli_broker_args *a, struct evb_broker_opts *o);

/* ---- Retention options (cmd_collector.c) --------------------------------
 * `evbus collector` and `evbus run` take the same retention options.
 */

/* Their help lines, for both commands' --help. */
#define CLI_RETAIN_HELP                                                    \
	"  --retain-age AGE   Remove records appended more than AGE ago\n" \
	"                     (N followed by s, m, h or d, from 1s to\n"   \
	"                     3650d, e.g. 7d) from the log, oldest\n"      \
	"                     first (default: keep them).\n"               \
	"  --retain-bytes BYTES\n"                                         \
	"                     Remove the oldest records while the log\n"   \
	"                     takes more than BYTES, at least 1M\n"        \
	"                     (default: no limit). Retention runs once\n"  \
	"                     a second and never removes the newest\n"     \
	"                     record, nor one the compactor has not\n"     \
	"                     projected yet.\n"

struct evb_collector_opts;

/*
 * cli_retain_fill reads --retain-age (age, NULL when not given) and
 * --retain-bytes (bytes) into o. Returns CLI_CONTINUE, or CLI_EXIT_USAGE
 * after printing what was wrong. OUT: o's retain_age_ms and retain_bytes.
 */
int cli_retain_fill(const cli_cmd *cmd, const char *age, const char *bytes,
    struct evb_collector_opts *o);

/*
 * cli_signal_wait sleeps until a signal byte arrives on sig_fd
 * (cli_sig_open).
 */
void cli_signal_wait(int sig_fd);

/*
 * cli_parse_durability reads "sync", "periodic" or "none" (the value of
 * --durability) into *mode as an evb_wal_durability. Returns CLI_CONTINUE,
 * or CLI_EXIT_USAGE after printing what was wrong. OUT: *mode.
 */
int cli_parse_durability(const cli_cmd *cmd, const char *text, int *mode);

/*
 * cli_check_dir refuses an empty --NAME (an unset shell variable, as in
 * --data "$DIR"), which would otherwise fail later with a message that
 * names no option. text may be NULL (not given). Returns CLI_CONTINUE, or
 * CLI_EXIT_USAGE after printing "--NAME: expected a directory, got ''".
 */
int cli_check_dir(const cli_cmd *cmd, const char *name, const char *text);

/* CLI_DATA_DEFAULT is the data directory when --data is not given. */
#define CLI_DATA_DEFAULT "./evbus-data"

/* ---- URLs (cli_url.c) --------------------------------------------------- */

/*
 * cli_url_check refuses text, the value of option --name, unless it
 * starts with a URL scheme and "://" (tcp://HOST:PORT, ipc://PATH,
 * inproc://NAME, ...): "127.0.0.1:5570" and "localhost:5570" are not
 * URLs. The rest is nng's to judge when it dials or listens. text may be
 * NULL (not given). Returns CLI_CONTINUE, or CLI_EXIT_USAGE after
 * printing "--NAME: 'TEXT' is not a URL (expected tcp://HOST:PORT,
 * ipc://PATH or inproc://NAME)". Every option that takes a URL calls it.
 */
int cli_url_check(const cli_cmd *cmd, const char *name, const char *text);

/*
 * cli_url_dialable writes into out (cap bytes) a URL that reaches, from
 * this host, the endpoint listening on listen_url: a host that names no
 * one address, "*", an empty one, or 0.0.0.0, becomes 127.0.0.1, and
 * [::] becomes [::1] (also "*" and an empty host with a tcp6-like
 * scheme, which listens on IPv6 only); any other URL (a host or address,
 * ipc://, inproc://) is copied as it is. Returns EVB_OK, or EVB_ETOOBIG
 * when the result does not fit in cap bytes (out then holds a truncated
 * string). OUT: out.
 */
int cli_url_dialable(const char *listen_url, char *out, size_t cap);

/* ---- The peer of a dialled socket (cli_peer.c) -------------------------- */

/*
 * The default URLs of the broker's endpoints, for messages that say where
 * a command should have pointed.
 */
#define CLI_BUS_URL_DEFAULT "tcp://127.0.0.1:5570"
#define CLI_INGEST_URL_DEFAULT "tcp://127.0.0.1:5571"
#define CLI_CONFIRM_URL_DEFAULT "tcp://127.0.0.1:5572"
#define CLI_CTL_URL_DEFAULT "tcp://127.0.0.1:5573"

/*
 * The endpoint a command dials, for the messages of cli_peer_error: kind
 * ("a pub0 bus endpoint"), others (what else answers on the broker's
 * ports, "the broker's ingest, confirm or control endpoint"), noun
 * ("bus"), opt (the command's option, "--bus"), run_opt (the option of
 * 'evbus run' and 'evbus broker' that sets it, "--pub") and def (its
 * default URL).
 */
typedef struct cli_peer_want {
	const char *kind;
	const char *others;
	const char *noun;
	const char *opt;
	const char *run_opt;
	const char *def;
} cli_peer_want;

/*
 * A watch on the pipes of one socket, which tells a peer of the wrong
 * protocol (nng 1.5 refuses its connections silently, and redials them
 * forever) from no peer at all. Caller-allocated: cli_peer_watch before
 * dialling, cli_peer_fini after nng_close (no callback runs after it).
 * The callbacks run on nng's threads; the rest on the command's thread.
 */
typedef struct cli_peer {
	pthread_mutex_t mtx;     /* Guards st. */
	evb_peer        st;      /* mtx: what the pipe events told. */
	bool            has_mtx; /* mtx was initialised. */
	int             fds[2];  /* A byte arrives on fds[0] when a pipe
	                            starts or goes; -1 when not open. */
} cli_peer;

/*
 * cli_peer_watch sets up p and registers its pipe callbacks on sock,
 * before any dial. Returns CLI_CONTINUE, or CLI_EXIT_USAGE after printing
 * why, naming cmd. Call cli_peer_fini in both cases, after nng_close.
 */
int cli_peer_watch(const cli_cmd *cmd, nng_socket sock, cli_peer *p);

/*
 * cli_peer_get reads what the callbacks have seen so far, and empties
 * the descriptor p->fds[0], which turns readable (poll) after a change.
 */
evb_peer_state cli_peer_get(cli_peer *p);

/* cli_peer_fini releases what cli_peer_watch set up; call it once. */
void cli_peer_fini(cli_peer *p);

/*
 * cli_peer_error reports that url answers, but not as the endpoint w
 * describes: with is_sp, an nng endpoint of another protocol (cli_peer_get
 * said EVB_PEER_WRONG); without, no nng endpoint at all (nng_dial gave
 * NNG_EPROTO: the peer sent no SP header). Names the option to fix and
 * its default. Returns CLI_EXIT_USAGE.
 */
int cli_peer_error(
    const cli_cmd *cmd, const cli_peer_want *w, const char *url, bool is_sp);

/* ---- Input (cli_io.c) --------------------------------------------------- */

/*
 * cli_input_open opens path for reading; NULL or "-" is standard input.
 * On failure it prints the reason on stderr (naming cmd and path) and
 * returns CLI_EXIT_USAGE. Release the stream with cli_input_close.
 * OUT: *f, on success only.
 */
int cli_input_open(const cli_cmd *cmd, const char *path, FILE **f);

/* cli_input_close closes f unless it is stdin; NULL is ok. */
void cli_input_close(FILE *f);

struct evb_wal;

/*
 * cli_wal_open_ro opens the write-ahead log in dir read-only (wal.h lets
 * it share the log with a running writer). On failure it prints "cannot
 * open the log in DIR" and why on stderr, naming cmd, and returns
 * CLI_EXIT_USAGE. Release the log with evb_wal_close.
 * OUT: *w, on success only.
 */
int cli_wal_open_ro(const cli_cmd *cmd, const char *dir, struct evb_wal **w);

/*
 * A line reader for arbitrarily long lines (it grows its buffer as
 * getline does). Caller-allocated: cli_lines_init, cli_lines_next until it
 * returns false, then cli_lines_fini.
 */
typedef struct cli_lines {
	FILE  *f;      /* The stream (borrowed). */
	char  *line;   /* The current line, NUL-terminated, no newline. */
	size_t len;    /* Its length in bytes (it may hold NUL bytes). */
	size_t cap;    /* Bytes allocated for line. */
	size_t lineno; /* 1-based number of the current line. */
	int    err;    /* EVB_OK, or EVB_ESYSERR + errno of a read failure. */
} cli_lines;

void cli_lines_init(cli_lines *r, FILE *f);
void cli_lines_fini(cli_lines *r);

/*
 * cli_lines_next reads the next line, without its "\n" or "\r\n", into
 * r->line and r->len, and counts it in r->lineno. Returns false at end of
 * input or on a read error; then r->err tells which (0 at end of input).
 */
bool cli_lines_next(cli_lines *r);

/*
 * cli_lines_next_event reads lines up to the next one that is not blank
 * and parses it with evb_proto_event_from_json. Returns EVB_OK with *ev
 * set (free it with evb_proto_event_free); EVB_EOF at the end of input;
 * the proto error of an invalid line, whose number is r->lineno and whose
 * problem is in diag; or r->err after a read error. EVB_ENOMEM may come
 * from either. OUT: *ev, on success only.
 */
int cli_lines_next_event(cli_lines *r, evb_event **ev, evb_diag *diag);

/*
 * cli_lines_fatal reports a fatal rc from cli_lines_next_event on stderr,
 * naming the line, and returns CLI_EXIT_USAGE.
 */
int cli_lines_fatal(const cli_cmd *cmd, const cli_lines *r, int rc);

/*
 * cli_blank reports whether the n bytes at p are only spaces and tabs (an
 * empty line is blank).
 */
bool cli_blank(const char *p, size_t n);

/*
 * cli_input_read_all reads f to its end into a new buffer, refusing
 * inputs longer than max_bytes. Returns EVB_OK, EVB_ENOMEM, EVB_ETOOBIG
 * (longer than max_bytes) or EVB_ESYSERR + errno of a read failure.
 * OUT: *data (free it) and *len, on success only.
 */
int cli_input_read_all(FILE *f, size_t max_bytes, uint8_t **data, size_t *len);

/*
 * cli_output_finish flushes stdout and reports a write error on stderr.
 * Returns rc unchanged when the output is complete, CLI_EXIT_USAGE if it
 * is not. Every command that writes to stdout returns through it.
 */
int cli_output_finish(const cli_cmd *cmd, int rc);

/* ---- Aligned columns (cli_table.c) -------------------------------------
 * Rows of text cells printed with each column as wide as its widest cell
 * (`--format table`). Caller-allocated: cli_table_init, cli_table_add for
 * each cell (row by row, ncols cells a row; the first row is the header),
 * cli_table_print, cli_table_fini.
 */
typedef struct cli_table {
	size_t  ncols;  /* Cells per row. */
	char  **cells;  /* Every cell, row after row; owned. */
	size_t  ncells; /* Cells added. */
	size_t  cap;    /* Cells allocated. */
	size_t *width;  /* Widest cell of each column, bytes; owned. */
	bool    failed; /* An allocation failed (sticky). */
} cli_table;

void cli_table_init(cli_table *t, size_t ncols);
void cli_table_fini(cli_table *t);

/* cli_table_add appends one cell, formatted as printf does, with its
 * control characters escaped (\n, \t, \r, \xHH) so that a row stays one
 * line. A failure is kept for cli_table_print to report. */
void cli_table_add(cli_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * cli_table_print writes the rows to stdout, columns padded to their
 * widest cell plus two spaces (the last column unpadded), in characters
 * (UTF-8 code points). Returns
 * CLI_EXIT_OK, or CLI_EXIT_USAGE after reporting, naming cmd, that an
 * add ran out of memory.
 */
int cli_table_print(const cli_cmd *cmd, const cli_table *t);

/* ---- Compactor tables (cmd_query.c) ------------------------------------
 * `evbus query` and `evbus trace` read the compactor's tables
 * (compactor/compactor.h) read-only and print what they find alike.
 */

/* What --format asks for. */
typedef enum cli_format {
	CLI_FORMAT_JSON  = 0, /* One JSON object per line (the default). */
	CLI_FORMAT_TABLE = 1, /* Aligned columns with a header row. */
} cli_format;

/*
 * cli_parse_format reads text, the value of --format: "json" or "table".
 * NULL means the default, json. Returns CLI_CONTINUE, or CLI_EXIT_USAGE
 * after printing what was wrong. OUT: *fmt.
 */
int cli_parse_format(const cli_cmd *cmd, const char *text, cli_format *fmt);

struct evb_compactor_tables;

/*
 * cli_tables_open opens the tables of the data directory data read-only.
 * When it cannot (no tables yet, another format version, not tables at
 * all), it prints why and what to run on stderr, naming cmd, and returns
 * CLI_EXIT_USAGE; else CLI_CONTINUE. OUT: *t, on CLI_CONTINUE only;
 * release it with evb_compactor_tables_close.
 */
int cli_tables_open(
    const cli_cmd *cmd, const char *data, struct evb_compactor_tables **t);

/*
 * cli_row_decode decodes a row's envelope (bytes borrowed from a query
 * callback). Returns CLI_EXIT_OK with *ev set (free it with
 * evb_proto_event_free), or, after reporting the row's offset and problem
 * on stderr, CLI_EXIT_DATA (the stored envelope is invalid) or
 * CLI_EXIT_USAGE (out of memory). OUT: *ev, on CLI_EXIT_OK only.
 */
int cli_row_decode(const cli_cmd *cmd, uint64_t off, const void *envelope,
    size_t len, evb_event **ev);

/*
 * cli_field_text writes field of ev's data as text into buf (cap bytes,
 * truncated to fit): a string as is, an integer in decimal, any other
 * number with up to 10 significant digits, and "" when ev has no such
 * field.
 */
void cli_field_text(
    const evb_event *ev, const char *field, char *buf, size_t cap);

/* ---- The compactor's operations (cmd_compactor.c) --------------------- */

struct evb_compactor;

/*
 * The compactor's counters at its last statistics line, so that the next
 * one can give a rate. Zero it, then pass it to every cli_compactor_log.
 */
typedef struct cli_compactor_prev {
	uint64_t events; /* Events projected at the last line. */
	uint64_t at_ms;  /* Monotonic ms of the last line; 0: none yet. */
} cli_compactor_prev;

/*
 * cli_compactor_log logs one line with the id msg_id at level: the
 * compactor's position, the log's end and the lag between them, its
 * stored counters and, when prev is not NULL, the projection rate since
 * the last line (prev is then updated). A failure to read the counters is
 * logged instead.
 */
void cli_compactor_log(struct evb_compactor *c, evb_log_level level,
    const char *msg_id, cli_compactor_prev *prev);

/*
 * cli_signal_wait_ms sleeps until a signal byte arrives on sig_fd
 * (cli_sig_open) or timeout_ms pass (0: wait for the signal only).
 * Returns true when a signal came.
 */
bool cli_signal_wait_ms(int sig_fd, uint64_t timeout_ms);

#endif /* EVB_CLI_H */
