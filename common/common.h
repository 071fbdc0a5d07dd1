/*
 * common: the few things two or more components need. Error codes and
 * diagnostics, logging, clocks, ULIDs and big-endian helpers. No
 * business logic.
 *
 * Thread-safety: every function is thread-safe, except evb_log_set_sink
 * and evb_log_set_level, which are called once before threads start.
 */
#ifndef EVB_COMMON_H
#define EVB_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/evb_err.h"

/* ---- Diagnostics -------------------------------------------------------
 * Input errors fill an optional evb_diag (NULL is allowed everywhere) with
 * a one-line message naming the field, what was expected and what came.
 */
#define EVB_DIAG_MAX 256 /* Longest message kept, bytes with the NUL. */

typedef struct evb_diag {
	char msg[EVB_DIAG_MAX]; /* NUL-terminated message; "" when unset. */
} evb_diag;

/* evb_diag_set formats into d (no-op when d is NULL); truncates safely. */
void evb_diag_set(evb_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * evb_diag_escape writes bytes that came from input (a map key, a
 * string, an op name) into buf for a one-line message: at most max_bytes
 * of s (len bytes; s may be NULL when len is 0), cut at the start of a
 * UTF-8 character, with every byte below 0x20 and 0x7f written as \xNN,
 * so that input quoted in a diagnostic or a log line can never start a
 * line of its own. A character or escape that does not fit in cap
 * bytes ends the copy there. buf is always NUL-terminated (cap >= 1).
 * Returns true when not all of s was written (the caller may mark the
 * cut, e.g. with "...").
 */
bool evb_diag_escape(
    char *buf, size_t cap, const char *s, size_t len, size_t max_bytes);

/* evb_err_errno converts an errno value to EVB_ESYSERR + e. */
int evb_err_errno(int e);

/*
 * evb_assert checks a programmer's invariant and aborts with its text when
 * it fails. It stays in release builds; never use it for input, I/O or
 * out-of-memory.
 */
#define evb_assert(x) ((x) ? (void) 0 : evb_assert_fail(#x, __FILE__, __LINE__))
_Noreturn void evb_assert_fail(const char *expr, const char *file, int line);

/* ---- Logging -----------------------------------------------------------
 * One line per event: "<UTC time> <LEVEL> <ID> <message>" on stderr by
 * default. IDs are stable ("EVB-WAL-TRUNC") so tests and operators grep
 * them. Levels follow RFC 5424.
 */
typedef enum evb_log_level {
	EVB_LOG_ERR     = 3,
	EVB_LOG_WARNING = 4,
	EVB_LOG_NOTICE  = 5,
	EVB_LOG_INFO    = 6,
	EVB_LOG_DEBUG   = 7,
} evb_log_level;

/* A sink receives the formatted message (no trailing newline). */
typedef void (*evb_log_sink)(
    void *arg, evb_log_level level, const char *id, const char *msg);

/*
 * evb_log_set_sink replaces the sink; NULL restores the stderr sink.
 * Call before threads start (tests use it to capture lines).
 */
void evb_log_set_sink(evb_log_sink sink, void *arg);

/* evb_log_set_level drops messages above level (default EVB_LOG_INFO). */
void evb_log_set_level(evb_log_level level);

/* evb_log formats and sends one message to the sink. */
void evb_log(evb_log_level level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* evb_log_level_name returns "ERR", "WARNING", ... (never NULL). */
const char *evb_log_level_name(evb_log_level level);

/*
 * A rate limiter for log lines about bad input: at most burst lines per
 * window; the rest are counted in suppressed and reported by the caller.
 * Caller-allocated; zero-initialise, then set window_ms and burst.
 * Not thread-safe: one per thread or under the caller's lock.
 */
typedef struct evb_ratelimit {
	uint64_t window_ms;    /* Window length, milliseconds. */
	uint32_t burst;        /* Lines allowed per window. */
	uint64_t window_start; /* Monotonic ms when the window began. */
	uint32_t used;         /* Lines allowed in this window so far. */
	uint64_t suppressed;   /* Lines refused since the last allowed one. */
} evb_ratelimit;

/*
 * evb_ratelimit_allow returns true if a line may be logged at now_ms. When
 * it returns true after refusals, *suppressed_out (if not NULL) gets how
 * many lines were refused since, and the count restarts.
 */
bool evb_ratelimit_allow(
    evb_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed_out);

/* ---- Latency histogram --------------------------------------------------
 * A fixed-size log-linear histogram of unsigned values (e.g. microseconds):
 * values below 8 are counted exactly, larger ones in 8 buckets per power
 * of two, so a percentile is reported within 12.5% of the true value.
 * 4 KiB, no allocation. Not thread-safe: one writer, or the caller's lock.
 */
#define EVB_HIST_BUCKETS 496

typedef struct evb_hist {
	uint64_t n;                       /* Values added. */
	uint64_t max;                     /* Largest value added. */
	uint64_t count[EVB_HIST_BUCKETS]; /* Per bucket. */
} evb_hist;

/* evb_hist_reset empties h. */
void evb_hist_reset(evb_hist *h);

/* evb_hist_add counts v. */
void evb_hist_add(evb_hist *h, uint64_t v);

/*
 * evb_hist_pct returns the upper bound of the bucket that holds the value
 * at percentile pct (0 < pct <= 100) -- at most max -- so the true
 * percentile is at most the result and at least 8/9 of it. 0 when empty.
 */
uint64_t evb_hist_pct(const evb_hist *h, double pct);

/* ---- Clocks ------------------------------------------------------------ */

/* evb_clock_mono_ns: CLOCK_MONOTONIC in nanoseconds (for durations). */
uint64_t evb_clock_mono_ns(void);

/* evb_clock_mono_ms: CLOCK_MONOTONIC in milliseconds. */
uint64_t evb_clock_mono_ms(void);

/* evb_clock_real_ns: CLOCK_REALTIME, nanoseconds since the Unix epoch. */
int64_t evb_clock_real_ns(void);

/*
 * evb_clock_format_iso writes ns (since the epoch) as UTC ISO 8601 with
 * millisecond precision, "2026-11-25T01:50:35.123Z", into buf (at least
 * EVB_CLOCK_ISO_MAX bytes).
 */
#define EVB_CLOCK_ISO_MAX 32
void evb_clock_format_iso(int64_t ns, char *buf, size_t cap);

/* ---- ULIDs -------------------------------------------------------------
 * Sortable unique ids (the broker stamps them on events sent without an
 * id): a 48-bit millisecond time and 80 random bits in 26 characters of
 * Crockford base32. A generator's ids strictly increase: within one
 * millisecond (or when the clock steps back) the random part of the last
 * id is incremented instead of drawn again.
 * Caller-allocated; not thread-safe: one per thread or under a lock.
 */
#define EVB_ULID_LEN 26 /* Characters in a ULID, without the NUL. */

typedef struct evb_ulid {
	uint64_t rng;      /* splitmix64 state. */
	uint64_t last_ms;  /* Time part of the last id, ms since the epoch. */
	uint64_t rand_lo;  /* Low 64 of the last id's 80 random bits. */
	uint16_t rand_hi;  /* High 16 of the last id's 80 random bits. */
	bool     has_last; /* False until the first id is made. */
} evb_ulid;

/*
 * evb_ulid_init prepares a generator. seed 0 draws the seed from
 * getrandom() (what production code wants); any other value makes the
 * sequence reproducible (tests).
 */
void evb_ulid_init(evb_ulid *u, uint64_t seed);

/*
 * evb_ulid_next writes the next id for the time ts_ns (ns since the
 * epoch; negative counts as 0) and a NUL into out.
 */
void evb_ulid_next(evb_ulid *u, int64_t ts_ns, char out[EVB_ULID_LEN + 1]);

/* ---- Threads -----------------------------------------------------------
 * Names and priorities for the threads components start, so that `top
 * -H`, `perf` and /proc show which component uses the CPU, and so that
 * background work yields to the live path.
 */
#define EVB_THREAD_NAME_MAX 15 /* Linux keeps 15 bytes of a name. */

/*
 * evb_thread_name names the calling thread ("evb:ingest"); longer names
 * are cut to EVB_THREAD_NAME_MAX bytes. Best effort: a name is a
 * diagnostic, so a platform without thread names is not an error.
 */
void evb_thread_name(const char *name);

/*
 * evb_thread_nice lowers the calling thread's scheduling priority by inc
 * (1..19, as nice(1)), so other threads of the process run first when
 * the CPU is short. Linux keeps a priority per thread. Returns EVB_OK or
 * EVB_ESYSERR + errno.
 */
int evb_thread_nice(int inc);

/* ---- Peers of another protocol -------------------------------------------
 * nng 1.5 connects a socket to a peer of another protocol (a sub0 to the
 * broker's ingest pull0, say), then refuses the connection in the
 * socket's protocol, tells nobody, and dials again 0.1 s later, forever
 * (nanomsg/nng#599). The one trace is in the pipe events: such a pipe
 * gets NNG_PIPE_EV_ADD_PRE and then NNG_PIPE_EV_REM_POST, never
 * NNG_PIPE_EV_ADD_POST. evb_peer counts those pipes. The caller feeds it
 * the events of its nng_pipe_notify callback, under a lock of its own,
 * and asks for the verdict; common/ itself does not use nng.
 */
typedef enum evb_peer_ev {
	EVB_PEER_ADD_PRE,  /* NNG_PIPE_EV_ADD_PRE. */
	EVB_PEER_ADD_POST, /* NNG_PIPE_EV_ADD_POST. */
	EVB_PEER_REM_POST, /* NNG_PIPE_EV_REM_POST. */
} evb_peer_ev;

typedef enum evb_peer_state {
	EVB_PEER_NONE,  /* No connection yet (or none refused). */
	EVB_PEER_UP,    /* A connection was taken by the socket's protocol. */
	EVB_PEER_WRONG, /* Connections are made, and refused by the socket's
	                   protocol: the peer speaks another one. */
} evb_peer_state;

/* What evb_peer_note has seen; zero-initialise. */
typedef struct evb_peer {
	uint32_t pending; /* The pipe added but not started, or 0. */
	int      rejects; /* Pipes refused in a row, up to a few. */
	bool     is_up;   /* A pipe was started. */
} evb_peer;

/*
 * evb_peer_note takes event ev of the pipe whose nng_pipe_id is id, and
 * returns the state after it.
 */
evb_peer_state evb_peer_note(evb_peer *p, uint32_t id, evb_peer_ev ev);

/* evb_peer_get returns the state evb_peer_note last left. */
evb_peer_state evb_peer_get(const evb_peer *p);

/* ---- Writer locks ------------------------------------------------------
 * One writer at a time in a directory: the collector in the log's, the
 * compactor in the tables'.
 */
#define EVB_DIR_LOCK_FILE "writer.lock"

/*
 * evb_dir_lock takes an exclusive flock on DIR/writer.lock without
 * waiting, creating DIR (mode 0700) and the file (0600) when missing. It
 * lasts until evb_dir_unlock(*fd), or until the process dies. what names
 * the directory's contents in messages ("log", "tables"). Returns EVB_OK
 * with *fd set; EVB_EBUSY when another open of the file holds the lock
 * (in this process or another), with diag saying so, for the caller to
 * replace with advice of its own; otherwise an error code with diag, and
 * *fd is -1.
 */
int evb_dir_lock(const char *dir, const char *what, int *fd, evb_diag *diag);

/* evb_dir_unlock releases what evb_dir_lock took; -1 is ok. */
void evb_dir_unlock(int fd);

/* ---- Large tables ------------------------------------------------------
 * Memory for the big preallocated tables of the hot path (the broker's
 * ring, the WAL's duplicate window): zeroed and faulted in when it is
 * allocated, so that no page is first touched under a later append.
 */
#define EVB_MEM_HUGE_MIN ((size_t) 2 << 20) /* One transparent huge page. */

/*
 * evb_mem_table_new returns bytes of zeroed memory, or NULL when there is
 * not enough. From EVB_MEM_HUGE_MIN it is its own mapping, asked for
 * transparent huge pages and touched now; below, plain calloc. Free it
 * with evb_mem_table_free and the same size.
 */
void *evb_mem_table_new(size_t bytes);

/* evb_mem_table_free releases what evb_mem_table_new returned (NULL ok). */
void evb_mem_table_free(void *p, size_t bytes);

/*
 * evb_mem_within says whether the n bytes at p lie inside the len bytes
 * at buf, and at which byte of buf they start (*at, when true). The
 * pointers are compared as integers, as they may point into unrelated
 * objects.
 */
static inline bool
evb_mem_within(const void *p, size_t n, const void *buf, size_t len, size_t *at)
{
	uintptr_t a = (uintptr_t) p, b = (uintptr_t) buf;

	if (n > len || a < b || a - b > len - n) {
		return (false);
	}
	*at = (size_t) (a - b);
	return (true);
}

/* ---- Big-endian helpers ------------------------------------------------
 * Formats (WAL keys, record headers) are big-endian so that byte order
 * equals numeric order.
 */
static inline void
evb_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

static inline void
evb_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static inline void
evb_put_be64(uint8_t *p, uint64_t v)
{
	evb_put_be32(p, (uint32_t) (v >> 32));
	evb_put_be32(p + 4, (uint32_t) v);
}

static inline uint16_t
evb_get_be16(const uint8_t *p)
{
	return (uint16_t) (((uint16_t) p[0] << 8) | p[1]);
}

static inline uint32_t
evb_get_be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
	    ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

static inline uint64_t
evb_get_be64(const uint8_t *p)
{
	return ((uint64_t) evb_get_be32(p) << 32) | evb_get_be32(p + 4);
}

#endif /* EVB_COMMON_H */
