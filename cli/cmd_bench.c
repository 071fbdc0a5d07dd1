/*
 * cmd_bench.c: `evbus bench`, a load generator for a running bus (the
 * counterpart of `nats bench` and `redis-benchmark`). It sends the
 * realistic signal_generated event of bench/bench_event.h and watches
 * the bus's log to see each event become durable.
 *
 * Threads. The main thread parses the options, opens everything, starts
 * the others and prints the report. N producer threads each own one nng
 * socket: push0 to the ingest endpoint (fire and forget), or req0 to the
 * confirm endpoint with --confirm, where W contexts each carry one
 * request at a time, driven by their aio callback (SEND, then RECV) on
 * nng's threads. One reader thread tails the log.
 *
 * Events. The event is encoded once (bench_tmpl); each event sent is
 * those bytes with its id and ts rewritten in place, which keep their
 * encoded length: the id is 26 characters (as long as the ULID in the
 * JSON, so the stored event stays 302 bytes), TAG PPPP CCCCCCCCCCCC with
 * TAG ten hex digits random per run, P the producer and C its event
 * counter in hex; ts is a uint64 (0xcf and 8 bytes), which every wall
 * clock after 1970-01-01T00:00:04Z needs. tmpl_make checks the
 * rewriting once with proto's decoder. All events of one message carry
 * the wall-clock time at which it was built.
 *
 * Durable. The reader opens the log read-only (wal.h allows that next to
 * the running writer), starts an iterator after the last record there at
 * the start, and calls next until EVB_EOF, then pauses BENCH_IDLE_NS and
 * calls it again (an iterator tails: later calls return newly committed
 * records). A record is this run's when it is a signal_generated event
 * whose payload holds the run's tag as the start of a 26-character
 * string; the id gives producer and counter, a bit per event notes it
 * (so a duplicate is counted, never taken twice), and its latency is the
 * time it was seen minus its ts (the record's ts, which the collector
 * copies from the event). Decoding every payload would cost the reader
 * as much as the collector spends storing it; the string match does not.
 *
 * Ending. Producers stop at S seconds (confirmed ones after their last
 * reply). The main thread then waits until the reader has seen every
 * event that was sent and not rejected, or has seen none for
 * BENCH_DRAIN_IDLE_MS; lost is what it has not seen by then.
 *
 * Locks: a producer's mtx guards its slots and confirm counters; the
 * reader's mtx guards what the main thread polls. No thread holds two.
 */
#include <jansson.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_event.h"
#include "cli/cli.h"
#include "collector/collector.h"
#include "wal/wal.h"

#define BENCH_PRODUCERS_MAX 1024
/* About 2.9 MB per message: under the broker's default --max-msg, 4 MiB. */
#define BENCH_BATCH_MAX 10000
#define BENCH_DURATION_MAX 3600 /* Seconds. */
#define BENCH_INFLIGHT_DEFAULT 1
#define BENCH_INFLIGHT_MAX 1024
#define BENCH_DURATION_DEFAULT 10
#define BENCH_SEND_TIMEOUT_MS 10000    /* The bus takes a message. */
#define BENCH_CONFIRM_TIMEOUT_MS 30000 /* A confirmed request's reply. */
#define BENCH_DRAIN_IDLE_MS 5000       /* No new durable event: stop. */
#define BENCH_IDLE_NS 200000L          /* Reader's pause at the end. */
#define BENCH_SENDBUF 256              /* push0 messages queued to send. */
#define BENCH_PACE_AHEAD_NS 1000000L   /* A paced send may be this early. */
#define BENCH_POLL_NS 10000000L        /* Main thread's drain poll. */
#define BENCH_PUBLISH_EVERY 4096       /* Reader: records per update. */
#define BENCH_TAG_LEN 10               /* Hex digits of the run's tag. */
#define BENCH_ID_LEN 26                /* Tag, 4 + 12 hex digits. */
#define BENCH_BITS_MIN 65536           /* First size of a seen bitmap. */
#define BENCH_NUM_OPTS 5               /* Numeric options (bench_args). */

static int bench_run(int argc, char **argv);

const cli_cmd cli_cmd_bench = {
	.name    = "bench",
	.summary = "Load a running bus and measure what reaches its log.",
	.help =
	    "usage: evbus bench [--producers N] [--batch B] [--rate R]\n"
	    "                   [--duration S] [--confirm] [--inflight W]\n"
	    "                   [--ingest URL] [--confirm-url URL]\n"
	    "                   [--data DIR] [--json]\n"
	    "\n"
	    "Drive a running bus ('evbus run') with the realistic 302-byte\n"
	    "signal_generated event and measure what reaches its log. N\n"
	    "producer threads, each with its own connection, send messages\n"
	    "of B events, paced to R events/s in all (0: as fast as they\n"
	    "can), for S seconds: fire and forget (nng push0 to the ingest\n"
	    "endpoint, up to 256 messages queued in the socket as a\n"
	    "client library would) or, with --confirm, as confirmed\n"
	    "requests (nng req0 to the confirmed ingest endpoint), W in\n"
	    "flight per producer.\n"
	    "Each event gets an id unique to the run and, as ts, the\n"
	    "wall-clock time it was sent. Meanwhile a thread reads the log\n"
	    "in DIR (read-only, from its end at the start) and notes each\n"
	    "event of the run as it becomes durable. After sending, bench\n"
	    "waits until every event is in the log, or none has arrived\n"
	    "for 5 s, and prints on standard output the events/s offered\n"
	    "and durable, the events lost, and the latency from publish to\n"
	    "durable (and, with --confirm, to the reply): p50, p99, p99.9\n"
	    "and max, in microseconds.\n"
	    "\n"
	    "Options:\n"
	    "  --producers N      Producer threads, 1 to 1024 (default 1).\n"
	    "  --batch B          Events per message, 1 to 10000 (default\n"
	    "                     1); with 1, each event is a bare map.\n"
	    "  --rate R           Events/s over all producers, 0 for as\n"
	    "                     fast as possible (default 0).\n"
	    "  --duration S       Seconds of sending, 1 to 3600 (default\n"
	    "                     10).\n"
	    "  --confirm          Send confirmed requests; time the replies.\n"
	    "  --inflight W       Confirmed requests in flight per producer,\n"
	    "                     1 to 1024 (default 1).\n"
	    "  --ingest URL       Ingest URL (default tcp://127.0.0.1:5571).\n"
	    "  --confirm-url URL  Confirmed ingest URL (default\n"
	    "                     tcp://127.0.0.1:5572).\n"
	    "  --data DIR         The bus's log directory (default\n"
	    "                     ./evbus-data).\n"
	    "  --json             Print the results as one JSON object.\n"
	    "  -h, --help         Print this help and exit.\n"
	    "\n"
	    "Exit status: 0 every event sent is in the log, 1 events were\n"
	    "lost or (with --confirm) rejected, 2 usage error, no log in\n"
	    "DIR, or the bus could not be reached, did not take a message\n"
	    "within 10 s or (with --confirm) did not reply within 30 s.\n",
	.run = bench_run,
};

/* The run's settings, read-only once the threads start. */
typedef struct bench_cfg {
	uint64_t    producers;  /* N. */
	uint64_t    batch;      /* B, events per message. */
	uint64_t    rate;       /* R, events/s in all; 0: unpaced. */
	uint64_t    duration_s; /* S. */
	uint64_t    inflight;   /* W, requests per producer (confirm). */
	bool        is_confirm; /* req0 to url, else push0. */
	bool        is_json;    /* Report as JSON. */
	const char *url;        /* The endpoint the producers dial. */
	const char *data;       /* The log's directory. */
} bench_cfg;

/* The encoded event and where its id and ts are. */
typedef struct bench_tmpl {
	evb_buf bytes;                      /* The event's MessagePack map. */
	size_t  id_off;                     /* Offset of the id's characters. */
	size_t  ts_off;                     /* Offset of the ts's 8 bytes. */
	int     type;                       /* Its type index. */
	uint8_t hdr[5];                     /* The array header of a batch. */
	size_t  hdr_len;                    /* 0 when a message is one map. */
	char    tag[BENCH_TAG_LEN];         /* The run's id prefix. */
	uint8_t id_head[1 + BENCH_TAG_LEN]; /* The id's fixstr header and
	                                       tag, as stored. */
} bench_tmpl;

struct bench_producer;

/* One confirmed request in flight (a req0 context and its aio). */
typedef struct bench_slot {
	struct bench_producer *p;       /* Its producer. */
	nng_ctx                ctx;     /* Opened with the producer. */
	nng_aio               *aio;     /* NULL until allocated. */
	bool                   is_recv; /* Waiting for the reply. */
	uint64_t               sent_ns; /* Monotonic send time. */
	size_t                 events;  /* Events in the request. */
} bench_slot;

/* One producer thread and its socket. */
typedef struct bench_producer {
	const bench_cfg  *cfg;
	const bench_tmpl *tmpl;
	unsigned          index;       /* 0..N-1, in its ids. */
	nng_socket        sock;        /* push0 or req0, dialled. */
	bool              is_open;     /* sock needs closing. */
	nng_aio          *send_aio;    /* push0: reused for every send. */
	pthread_t         thread;      /* Valid when is_started. */
	bool              is_started;  /* The thread runs. */
	uint64_t          start_ns;    /* Monotonic start, shared by all. */
	uint64_t          counter;     /* Events made (thread only). */
	uint64_t          messages;    /* Messages sent (thread only). */
	uint64_t          last_ns;     /* Monotonic time of the last send. */
	bench_slot       *slots;       /* W slots with --confirm. */
	size_t            nslots;      /* Slots allocated. */
	pthread_mutex_t   mtx;         /* Guards the fields below. */
	pthread_cond_t    cv;          /* A slot became free. */
	size_t            free_slots;  /* mtx: slots not in flight. */
	bench_slot      **free_list;   /* mtx: those slots. */
	uint64_t          failed;      /* mtx: events not sent. */
	uint64_t          confirmed;   /* mtx: events with a seq. */
	uint64_t          rejected;    /* mtx: events refused. */
	uint64_t          unanswered;  /* mtx: events whose reply never came. */
	int               err;         /* mtx: first nng error, or 0. */
	char              reject[128]; /* mtx: the first refusal's text. */
	evb_hist          confirm;     /* mtx: send to reply, per event. */
} bench_producer;

/* A bitmap of the events of one producer seen in the log. */
typedef struct bench_bits {
	uint8_t *bits; /* Bit c: event c was seen. */
	uint64_t cap;  /* Bits allocated, a multiple of 8. */
} bench_bits;

/* The reader thread, which tails the log. */
typedef struct bench_reader {
	const bench_tmpl *tmpl;
	evb_wal_iter     *it;        /* Started at the log's end. */
	bench_bits       *seen_bits; /* One per producer (thread only). */
	size_t            producers; /* Entries in seen_bits. */
	evb_hist          durable;   /* Publish to durable (thread only). */
	uint64_t          dups;      /* Events seen twice (thread only). */
	uint64_t          gaps;      /* Gap records (thread only). */
	uint64_t          bad;       /* Records failing their check. */
	pthread_t         thread;
	bool              is_started;
	pthread_mutex_t   mtx;     /* Guards the fields below. */
	uint64_t          seen;    /* mtx: distinct events of the run. */
	uint64_t          seen_ns; /* mtx: monotonic time seen grew. */
	bool              is_stop; /* mtx: main asks it to end at EOF. */
	int               err;     /* mtx: the error that stopped it. */
} bench_reader;

/* ---- Latencies ----------------------------------------------------------
 * Latencies are counted in nanoseconds in evb_hist (common.h), whose
 * buckets are at most 12.5% wide; they are printed in microseconds.
 */

/* lat_add counts n events that took ns (0 if the clocks stepped back). */
static void
lat_add(evb_hist *h, int64_t ns, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		evb_hist_add(h, ns > 0 ? (uint64_t) ns : 0);
	}
}

static void
lat_merge(evb_hist *to, const evb_hist *from)
{
	for (size_t i = 0; i < EVB_HIST_BUCKETS; i++) {
		to->count[i] += from->count[i];
	}
	to->n += from->n;
	to->max = from->max > to->max ? from->max : to->max;
}

/* lat_us gives percentile pct of h in microseconds. */
static double
lat_us(const evb_hist *h, double pct)
{
	return (double) evb_hist_pct(h, pct) / 1e3;
}

/*
 * bench_find returns the first place in h[0..n-1] that holds the m bytes
 * of needle (m >= 1), or NULL (memmem is a GNU extension).
 */
static const uint8_t *
bench_find(const uint8_t *h, size_t n, const void *needle, size_t m)
{
	const uint8_t *end = h + n;
	const uint8_t *p   = h;

	while (m <= (size_t) (end - p) &&
	    (p = memchr(p, *(const uint8_t *) needle,
	         (size_t) (end - p) - m + 1)) != NULL) {
		if (memcmp(p, needle, m) == 0) {
			return p;
		}
		p++;
	}
	return NULL;
}

/* tmpl_hex writes v as n lowercase hex digits. */
static void
tmpl_hex(char *out, uint64_t v, int n)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = n - 1; i >= 0; i--, v >>= 4) {
		out[i] = hex[v & 15];
	}
}

/* tmpl_fill writes event counter of producer p, sent at ts_ns, to out. */
static void
tmpl_fill(const bench_tmpl *t, uint8_t *out, unsigned p, uint64_t counter,
    int64_t ts_ns)
{
	memcpy(out, t->bytes.data, t->bytes.len);
	memcpy(out + t->id_off, t->tag, BENCH_TAG_LEN);
	tmpl_hex((char *) out + t->id_off + BENCH_TAG_LEN, p, 4);
	tmpl_hex((char *) out + t->id_off + BENCH_TAG_LEN + 4, counter, 12);
	evb_put_be64(out + t->ts_off, (uint64_t) ts_ns);
}

/* tmpl_check decodes one rewritten event and compares its id and ts. */
static int
tmpl_check(const bench_tmpl *t)
{
	uint8_t   *buf = malloc(t->bytes.len);
	char       want[BENCH_ID_LEN];
	int64_t    ts = evb_clock_real_ns() + 1;
	evb_event *ev = NULL;
	evb_str    id;
	int        rc = EVB_ENOMEM;

	if (buf != NULL) {
		tmpl_fill(t, buf, 7, 0x123456789aull, ts);
		rc = evb_proto_event_decode(&ev, buf, t->bytes.len, NULL);
	}
	if (rc == EVB_OK) {
		memcpy(want, t->tag, BENCH_TAG_LEN);
		memcpy(want + BENCH_TAG_LEN, "000700123456789a", 16);
		id = evb_proto_event_id(ev);
		if (id.len != BENCH_ID_LEN ||
		    memcmp(id.ptr, want, id.len) != 0 ||
		    evb_proto_event_ts(ev) != ts) {
			rc = EVB_EINVAL;
		}
	}
	evb_proto_event_free(ev);
	free(buf);
	return rc;
}

/* tmpl_locate finds the id and ts written into the encoded event. */
static int
tmpl_locate(bench_tmpl *t, const char *id, int64_t ts)
{
	const uint8_t *b = t->bytes.data;
	const uint8_t *p;
	uint8_t        ts_enc[9] = { 0xcf };

	evb_put_be64(ts_enc + 1, (uint64_t) ts);
	// The reader looks for the id's fixstr header too (id_head).
	if ((p = bench_find(b, t->bytes.len, id, BENCH_ID_LEN)) == NULL ||
	    p == b || p[-1] != t->id_head[0]) {
		return EVB_EINVAL;
	}
	t->id_off = (size_t) (p - b);
	if ((p = bench_find(b, t->bytes.len, ts_enc, sizeof(ts_enc))) == NULL) {
		return EVB_EINVAL;
	}
	t->ts_off = (size_t) (p - b) + 1;
	return tmpl_check(t);
}

/* tmpl_header makes the array header of a batch of n events. */
static void
tmpl_header(bench_tmpl *t, uint64_t n)
{
	if (n == 1) {
		t->hdr_len = 0; // A bare map, as `evbus publish --batch 1`.
	} else if (n < 16) {
		t->hdr[0]  = (uint8_t) (0x90 | n);
		t->hdr_len = 1;
	} else {
		t->hdr[0] = 0xdc; // BENCH_BATCH_MAX fits 16 bits.
		evb_put_be16(t->hdr + 1, (uint16_t) n);
		t->hdr_len = 3;
	}
}

/*
 * tmpl_make encodes the event with a placeholder id and ts, finds them
 * and checks the rewriting. Release with evb_buf_fini(&t->bytes).
 */
static int
tmpl_make(bench_tmpl *t, uint64_t batch)
{
	static const char json[] = BENCH_EVENT_JSON;
	char              id[BENCH_ID_LEN + 1];
	int64_t           ts = evb_clock_real_ns();
	uint64_t          x  = (uint64_t) ts ^ ((uint64_t) getpid() << 32);
	evb_event        *ev;
	evb_diag          diag = { "" };
	int               rc;

	// splitmix64's finaliser spreads clock and pid over the tag.
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	tmpl_hex(t->tag, x ^ (x >> 31), BENCH_TAG_LEN);
	t->id_head[0] = 0xa0 | BENCH_ID_LEN;
	memcpy(t->id_head + 1, t->tag, BENCH_TAG_LEN);
	memcpy(id, t->tag, BENCH_TAG_LEN);
	memset(id + BENCH_TAG_LEN, '0', BENCH_ID_LEN - BENCH_TAG_LEN);
	id[BENCH_ID_LEN] = '\0';
	tmpl_header(t, batch);
	evb_buf_init(&t->bytes);
	if ((rc = evb_proto_event_from_json(
	         &ev, json, sizeof(json) - 1, &diag)) != EVB_OK) {
		cli_error(&cli_cmd_bench, "the sample event: %s",
		    cli_diag_text(&diag, rc));
		return CLI_EXIT_USAGE;
	}
	t->type = evb_proto_event_type(ev);
	if ((rc = evb_proto_event_set_id(ev, id, BENCH_ID_LEN)) == EVB_OK) {
		evb_proto_event_set_ts(ev, ts);
		rc = evb_proto_event_encode(ev, &t->bytes);
	}
	evb_proto_event_free(ev);
	if (rc == EVB_OK) {
		rc = tmpl_locate(t, id, ts);
	}
	if (rc != EVB_OK) {
		// The encoding changed under this code: a bug, not input.
		cli_error(&cli_cmd_bench, "cannot prepare the event: %s",
		    evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

/* tmpl_msg builds a message of n events from producer p's counter on. */
static int
tmpl_msg(
    const bench_tmpl *t, size_t n, unsigned p, uint64_t *counter, nng_msg **out)
{
	nng_msg *m;
	uint8_t *b;
	int64_t  ts = evb_clock_real_ns();
	int      rv;

	if ((rv = nng_msg_alloc(&m, t->hdr_len + n * t->bytes.len)) != 0) {
		return rv;
	}
	b = nng_msg_body(m);
	memcpy(b, t->hdr, t->hdr_len);
	b += t->hdr_len;
	for (size_t i = 0; i < n; i++, b += t->bytes.len) {
		tmpl_fill(t, b, p, (*counter)++, ts);
	}
	*out = m;
	return 0;
}

/* ---- Producers ----------------------------------------------------------- */

/* prod_end_ns is when p stops sending (monotonic). */
static uint64_t
prod_end_ns(const bench_producer *p)
{
	return p->start_ns + p->cfg->duration_s * 1000000000ull;
}

/*
 * prod_wait_turn sleeps until message k of p is due (its share of the
 * rate, producers staggered) and reports whether it is still before the
 * end of the run. With batches (B > 1), a message due within
 * BENCH_PACE_AHEAD_NS goes at once: a producer wakes about once a
 * millisecond and sends what is due by then, rather than once per
 * message. Why: on the project's VM a sleep and its wakeup cost tens of
 * microseconds of CPU (docs/benchmarks.md), and at 500 k events/s in
 * batches of 64 a producer slept 3,900 times a second on the cores the
 * bus needs. The rate over a millisecond and more is the one asked for;
 * each event's ts is still the time its message was built. Single events
 * (B = 1) stay evenly spaced: those runs measure latency (the p99 target
 * at 10 k/s, docs/benchmarks.md), and bursts would change what they
 * measure.
 */

static bool
prod_wait_turn(const bench_producer *p, uint64_t k)
{
	const bench_cfg *c   = p->cfg;
	uint64_t         end = prod_end_ns(p);
	uint64_t         due = p->start_ns;
	uint64_t         now;
	struct timespec  ts;

	if (c->rate > 0) {
		double gap = (double) c->batch * (double) c->producers * 1e9 /
		    (double) c->rate;

		due += (uint64_t) (gap *
		    ((double) k + (double) p->index / (double) c->producers));
	}
	now = evb_clock_mono_ns();
	if (due >= end || now >= end) {
		return false;
	}
	if (due <= now + (c->batch > 1 ? BENCH_PACE_AHEAD_NS : 0)) {
		// Due now or soon, behind, or unpaced: no sleep.
		// clock_nanosleep with a past instant still arms a timer and
		// enters the scheduler, which took a third of an unpaced
		// producer's CPU.
		return true;
	}
	ts.tv_sec  = (time_t) (due / 1000000000u);
	ts.tv_nsec = (long) (due % 1000000000u);
	while (
	    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
		// EINTR: sleep again until the same instant.
	}
	return true;
}

/* prod_fail notes an error of p (the first one is reported). */
static void
prod_fail(bench_producer *p, int rv, uint64_t events)
{
	pthread_mutex_lock(&p->mtx);
	p->failed += events;
	if (p->err == 0) {
		p->err = rv;
	}
	pthread_mutex_unlock(&p->mtx);
}

/* prod_push is a fire-and-forget producer: push0, one message a turn. */
static void *
prod_push(void *arg)
{
	bench_producer *p = arg;
	nng_msg        *m;
	int             rv;

	evb_thread_name("evb:producer");
	for (uint64_t k = 0; prod_wait_turn(p, k); k++) {
		if ((rv = tmpl_msg(p->tmpl, p->cfg->batch, p->index,
		         &p->counter, &m)) != 0) {
			prod_fail(p, rv, 0);
			break;
		}
		// One aio for every send: nng_sendmsg allocates one per
		// call, which costs a getrandom(2) in nng 1.5.
		nng_aio_set_msg(p->send_aio, m);
		nng_send_aio(p->sock, p->send_aio);
		nng_aio_wait(p->send_aio);
		if ((rv = nng_aio_result(p->send_aio)) != 0) {
			// nng took the message only if the send succeeded.
			nng_msg_free(nng_aio_get_msg(p->send_aio));
			prod_fail(p, rv, p->cfg->batch);
			break;
		}
		p->messages++;
		p->last_ns = evb_clock_mono_ns();
	}
	return NULL;
}

/* prod_release returns slot s to its producer's free list. */
static void
prod_release(bench_slot *s)
{
	bench_producer *p = s->p;

	pthread_mutex_lock(&p->mtx);
	p->free_list[p->free_slots++] = s;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mtx);
}

/* reply_error returns the "error" string of map o, or NULL. */
static const msgpack_object_str *
reply_error(const msgpack_object *o)
{
	const msgpack_object *e = evb_proto_map_get(o, "error");

	return e != NULL && e->type == MSGPACK_OBJECT_STR ? &e->via.str : NULL;
}

/* reply_result counts one event's result (p->mtx held). */
static void
reply_result(bench_producer *p, const msgpack_object_str *err)
{
	if (err == NULL) {
		p->confirmed++;
		return;
	}
	if (err->size >= 5 && memcmp(err->ptr, "lost:", 5) == 0) {
		// Published, then evicted from the ring before it was stored:
		// not a rejection; the log lacks it, so it counts as lost.
		return;
	}
	if (p->rejected == 0) {
		(void) snprintf(p->reject, sizeof(p->reject), "%.*s",
		    (int) err->size, err->ptr);
	}
	p->rejected++;
}

/*
 * reply_count counts the results of a confirm reply to n events
 * (docs/protocol.md "Confirmed ingest"), and times the confirmed ones.
 */
static void
reply_count(bench_producer *p, nng_msg *m, size_t n, uint64_t took_ns)
{
	msgpack_unpacked         u;
	const msgpack_object    *res = NULL;
	const msgpack_object_str no  = { 27, "the reply is not understood" };
	uint64_t                 before;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, nng_msg_body(m), nng_msg_len(m), NULL) ==
	        MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 1 &&
	    u.data.via.map.ptr[0].val.type == MSGPACK_OBJECT_ARRAY) {
		res = &u.data.via.map.ptr[0].val;
	}
	pthread_mutex_lock(&p->mtx);
	before = p->confirmed;
	for (size_t i = 0; i < n; i++) {
		if (res != NULL && i < res->via.array.size) {
			reply_result(p, reply_error(&res->via.array.ptr[i]));
		} else {
			// A refusal of the whole message, or a short reply.
			const msgpack_object_str *e = reply_error(&u.data);

			reply_result(p, e != NULL ? e : &no);
		}
	}
	lat_add(&p->confirm, (int64_t) took_ns, p->confirmed - before);
	pthread_mutex_unlock(&p->mtx);
	msgpack_unpacked_destroy(&u);
}

/* slot_cb advances a request: sent, then replied (or failed). */
static void
slot_cb(void *arg)
{
	bench_slot *s  = arg;
	int         rv = nng_aio_result(s->aio);
	nng_msg    *m;

	if (rv != 0) {
		if (!s->is_recv) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			prod_fail(s->p, rv, s->events);
		} else {
			pthread_mutex_lock(&s->p->mtx);
			s->p->unanswered += s->events;
			s->p->err = s->p->err != 0 ? s->p->err : rv;
			pthread_mutex_unlock(&s->p->mtx);
		}
		prod_release(s);
		return;
	}
	if (!s->is_recv) {
		s->is_recv = true;
		nng_ctx_recv(s->ctx, s->aio);
		return;
	}
	m = nng_aio_get_msg(s->aio);
	reply_count(s->p, m, s->events, evb_clock_mono_ns() - s->sent_ns);
	nng_msg_free(m);
	prod_release(s);
}

/* prod_take waits for a free slot; NULL once every slot is free again
 * and the run is over (drain true). */
static bench_slot *
prod_take(bench_producer *p, bool drain)
{
	bench_slot *s = NULL;

	pthread_mutex_lock(&p->mtx);
	while (drain ? p->free_slots < p->nslots : p->free_slots == 0) {
		pthread_cond_wait(&p->cv, &p->mtx);
	}
	if (!drain) {
		s = p->free_list[--p->free_slots];
	}
	pthread_mutex_unlock(&p->mtx);
	return s;
}

/* prod_req is a confirmed producer: W requests in flight on req0. */
static void *
prod_req(void *arg)
{
	bench_producer *p = arg;
	bench_slot     *s;
	nng_msg        *m;
	int             rv;

	evb_thread_name("evb:producer");
	for (uint64_t k = 0; prod_wait_turn(p, k); k++) {
		s = prod_take(p, false);
		if (evb_clock_mono_ns() >= prod_end_ns(p)) {
			// All slots were busy until after the end.
			prod_release(s);
			break;
		}
		if ((rv = tmpl_msg(p->tmpl, p->cfg->batch, p->index,
		         &p->counter, &m)) != 0) {
			prod_fail(p, rv, 0);
			prod_release(s);
			break;
		}
		s->is_recv = false;
		s->events  = p->cfg->batch;
		s->sent_ns = evb_clock_mono_ns();
		nng_aio_set_msg(s->aio, m);
		nng_ctx_send(s->ctx, s->aio);
		p->messages++;
		p->last_ns = s->sent_ns;
	}
	(void) prod_take(p, true);
	return NULL;
}

/* prod_slots makes p's W contexts, each with its aio. */
static int
prod_slots(bench_producer *p)
{
	int rv;

	p->nslots    = p->cfg->inflight;
	p->slots     = calloc(p->nslots, sizeof(*p->slots));
	p->free_list = calloc(p->nslots, sizeof(*p->free_list));
	if (p->slots == NULL || p->free_list == NULL) {
		p->nslots = 0;
		return NNG_ENOMEM;
	}
	for (size_t i = 0; i < p->nslots; i++) {
		bench_slot *s = &p->slots[i];

		s->p = p;
		if ((rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) {
			return rv;
		}
		nng_aio_set_timeout(s->aio, BENCH_CONFIRM_TIMEOUT_MS);
		if ((rv = nng_ctx_open(&s->ctx, p->sock)) != 0) {
			nng_aio_free(s->aio);
			s->aio = NULL;
			return rv;
		}
		// Never resend: a slow fsync is not a lost request.
		if ((rv = nng_ctx_set_ms(s->ctx, NNG_OPT_REQ_RESENDTIME,
		         NNG_DURATION_INFINITE)) != 0) {
			return rv;
		}
		p->free_list[p->free_slots++] = s;
	}
	return 0;
}

/* prod_open opens p's socket, its slots with --confirm, and dials. */
static int
prod_open(bench_producer *p)
{
	const bench_cfg *c = p->cfg;
	int              rv;

	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((rv = c->is_confirm ? nng_req0_open(&p->sock)
	                        : nng_push0_open(&p->sock)) != 0) {
		cli_error(&cli_cmd_bench, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	p->is_open = true;
	if ((rv = nng_socket_set_ms(
	         p->sock, NNG_OPT_SENDTIMEO, BENCH_SEND_TIMEOUT_MS)) != 0 ||
	    (!c->is_confirm &&
	        (rv = nng_socket_set_int(
	             p->sock, NNG_OPT_SENDBUF, BENCH_SENDBUF)) != 0) ||
	    (c->is_confirm && (rv = prod_slots(p)) != 0) ||
	    (!c->is_confirm &&
	        (rv = nng_aio_alloc(&p->send_aio, NULL, NULL)) != 0)) {
		cli_error(&cli_cmd_bench, "%s", nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	if (p->send_aio != NULL) {
		nng_aio_set_timeout(p->send_aio, BENCH_SEND_TIMEOUT_MS);
	}
	if ((rv = nng_dial(p->sock, c->url, NULL, 0)) != 0) {
		cli_error(&cli_cmd_bench, "cannot connect to %s: %s", c->url,
		    nng_strerror(rv));
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

/* prod_close stops p's requests and closes its socket; p may be
 * half-opened (zeroed fields are skipped). */
static void
prod_close(bench_producer *p)
{
	for (size_t i = 0; i < p->nslots; i++) {
		if (p->slots[i].aio != NULL) {
			nng_aio_stop(p->slots[i].aio);
		}
	}
	for (size_t i = 0; i < p->nslots; i++) {
		if (p->slots[i].aio != NULL) {
			(void) nng_ctx_close(p->slots[i].ctx);
			nng_aio_free(p->slots[i].aio);
		}
	}
	if (p->is_open) {
		(void) nng_close(p->sock);
	}
	if (p->send_aio != NULL) {
		nng_aio_free(p->send_aio);
	}
	free(p->slots);
	free(p->free_list);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mtx);
}

/* ---- Reader -------------------------------------------------------------- */

/* reader_hex reads n hex digits; false if one is not. */
static bool
reader_hex(const uint8_t *s, int n, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		uint8_t ch = s[i];

		if (ch >= '0' && ch <= '9') {
			*v = *v << 4 | (uint64_t) (ch - '0');
		} else if (ch >= 'a' && ch <= 'f') {
			*v = *v << 4 | (uint64_t) (ch - 'a' + 10);
		} else {
			return false;
		}
	}
	return true;
}

/* reader_mark sets bit c of b, growing it; EVB_EEXIST if it was set. */
static int
reader_mark(bench_bits *b, uint64_t c)
{
	if (c >= b->cap) {
		uint64_t cap =
		    b->cap < BENCH_BITS_MIN ? BENCH_BITS_MIN : b->cap;
		uint8_t *nb;

		while (cap <= c) {
			cap *= 2;
		}
		if ((nb = realloc(b->bits, cap / 8)) == NULL) {
			return EVB_ENOMEM;
		}
		memset(nb + b->cap / 8, 0, (cap - b->cap) / 8);
		b->bits = nb;
		b->cap  = cap;
	}
	if (b->bits[c / 8] & (1u << (c % 8))) {
		return EVB_EEXIST;
	}
	b->bits[c / 8] |= (uint8_t) (1u << (c % 8));
	return EVB_OK;
}

/*
 * reader_take looks at one record: a gap, or an event of this run
 * (counted in *seen and timed), or something else. Returns EVB_OK, or
 * EVB_ENOMEM.
 */
static int
reader_take(bench_reader *r, const evb_wal_entry *e, uint64_t *seen)
{
	const uint8_t *b = e->payload;
	const uint8_t *id;
	uint64_t       p, c;
	int            rc;

	if (e->type == EVB_COLLECTOR_GAP_TYPE) {
		r->gaps++;
		return EVB_OK;
	}
	// The id is a fixstr of 26 bytes that starts with the run's tag.
	if (e->type != r->tmpl->type ||
	    (id = bench_find(b, e->len, r->tmpl->id_head, 1 + BENCH_TAG_LEN)) ==
	        NULL ||
	    (size_t) (id - b) + 1 + BENCH_ID_LEN > e->len ||
	    !reader_hex(id + 1 + BENCH_TAG_LEN, 4, &p) ||
	    !reader_hex(id + 1 + BENCH_TAG_LEN + 4, 12, &c) ||
	    p >= r->producers) {
		return EVB_OK;
	}
	if ((rc = reader_mark(&r->seen_bits[p], c)) == EVB_EEXIST) {
		r->dups++;
		return EVB_OK;
	}
	if (rc == EVB_OK) {
		lat_add(&r->durable, evb_clock_real_ns() - e->ts_ns, 1);
		(*seen)++;
	}
	return rc;
}

/* reader_publish hands the new count to the main thread. */
static bool
reader_publish(bench_reader *r, uint64_t *seen, int err)
{
	bool stop;

	pthread_mutex_lock(&r->mtx);
	if (*seen > 0) {
		r->seen += *seen;
		r->seen_ns = evb_clock_mono_ns();
	}
	r->err = r->err != 0 ? r->err : err;
	stop   = r->is_stop || r->err != 0;
	pthread_mutex_unlock(&r->mtx);
	*seen = 0;
	return stop;
}

static void *
reader_main(void *arg)
{
	bench_reader   *r      = arg;
	struct timespec idle   = { 0, BENCH_IDLE_NS };
	uint64_t        seen   = 0;
	uint64_t        unsent = 0;
	evb_wal_entry   e;
	int             rc;

	evb_thread_name("evb:reader");
	for (;;) {
		rc = evb_wal_iter_next(r->it, &e);
		if (rc == EVB_OK) {
			rc = reader_take(r, &e, &seen);
		} else if (rc == EVB_ECORRUPT) {
			r->bad++;
			rc = EVB_OK;
		} else if (rc == EVB_EOF) {
			if (reader_publish(r, &seen, EVB_OK)) {
				break;
			}
			unsent = 0;
			(void) nanosleep(&idle, NULL);
			continue;
		}
		if (rc != EVB_OK) {
			(void) reader_publish(r, &seen, rc);
			break;
		}
		if (++unsent == BENCH_PUBLISH_EVERY) {
			(void) reader_publish(r, &seen, EVB_OK);
			unsent = 0;
		}
	}
	return NULL;
}

/* reader_open opens an iterator at the end of the log in dir. */
static int
reader_open(bench_reader *r, evb_wal *w, const char *dir)
{
	uint64_t last;
	int      rc;

	pthread_mutex_init(&r->mtx, NULL);
	if ((rc = evb_wal_last(w, &last)) != EVB_OK ||
	    (rc = evb_wal_iter_open(w, last + 1, &r->it)) != EVB_OK) {
		cli_error(&cli_cmd_bench, "cannot read the log in %s: %s", dir,
		    evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	if ((r->seen_bits = calloc(r->producers, sizeof(bench_bits))) == NULL) {
		cli_error(&cli_cmd_bench, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

/* reader_stop asks the reader to finish at the end of the log and
 * joins it. */
static void
reader_stop(bench_reader *r)
{
	if (r->is_started) {
		pthread_mutex_lock(&r->mtx);
		r->is_stop = true;
		pthread_mutex_unlock(&r->mtx);
		(void) pthread_join(r->thread, NULL);
		r->is_started = false;
	}
}

/* reader_close stops the reader and releases it. */
static void
reader_close(bench_reader *r)
{
	reader_stop(r);
	evb_wal_iter_close(r->it);
	for (size_t i = 0; r->seen_bits != NULL && i < r->producers; i++) {
		free(r->seen_bits[i].bits);
	}
	free(r->seen_bits);
	pthread_mutex_destroy(&r->mtx);
}

/* ---- The run ------------------------------------------------------------- */

/* The outcome of a run. */
typedef struct bench_result {
	uint64_t sent;        /* Events sent. */
	uint64_t messages;    /* Messages sent. */
	uint64_t failed;      /* Events that could not be sent. */
	uint64_t rejected;    /* Refused, by the confirm replies. */
	uint64_t unanswered;  /* Confirmed requests without a reply. */
	uint64_t seen;        /* Events of the run found in the log. */
	uint64_t lost;        /* Sent, not rejected, not in the log. */
	double   send_s;      /* Start to the last send. */
	double   durable_s;   /* Start to the last event seen. */
	double   cpu_s;       /* CPU time of this process over the run. */
	int      err;         /* First nng error of a producer, or 0. */
	char     reject[128]; /* The first refusal's text. */
	evb_hist confirm;     /* Send to reply, confirmed events. */
} bench_result;

/* bench_drain waits until the reader saw want events or stalled. */
static void
bench_drain(bench_reader *r, uint64_t want)
{
	struct timespec poll = { 0, BENCH_POLL_NS };
	uint64_t        seen = 0, at = evb_clock_mono_ns();
	int             err = 0;

	for (;;) {
		pthread_mutex_lock(&r->mtx);
		if (r->seen > seen) {
			seen = r->seen;
			at   = evb_clock_mono_ns();
		}
		err = r->err;
		pthread_mutex_unlock(&r->mtx);
		if (seen >= want || err != 0 ||
		    evb_clock_mono_ns() - at >=
		        BENCH_DRAIN_IDLE_MS * 1000000ull) {
			return;
		}
		(void) nanosleep(&poll, NULL);
	}
}

/* bench_collect sums the producers into res (threads joined). */
static void
bench_collect(
    bench_producer *ps, size_t n, uint64_t start_ns, bench_result *res)
{
	uint64_t last = start_ns;

	for (size_t i = 0; i < n; i++) {
		bench_producer *p = &ps[i];

		res->sent += p->counter;
		res->messages += p->messages;
		res->failed += p->failed;
		res->rejected += p->rejected;
		res->unanswered += p->unanswered;
		if (res->err == 0) {
			res->err = p->err;
		}
		if (res->reject[0] == '\0') {
			memcpy(res->reject, p->reject, sizeof(res->reject));
		}
		lat_merge(&res->confirm, &p->confirm);
		last = p->last_ns > last ? p->last_ns : last;
	}
	res->sent -= res->failed;
	res->send_s = (double) (last - start_ns) / 1e9;
}

/*
 * bench_cpu_s is the CPU time of this process so far, all its threads, in
 * seconds. The bench shares the machine with the bus it drives, so the
 * report gives what it took itself.
 */
static double
bench_cpu_s(void)
{
	struct timespec ts;

	// Fails only for a clock the kernel lacks; every Linux has this one.
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
		return 0;
	}
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* bench_start starts the reader and the producers. */
static int
bench_start(bench_reader *r, bench_producer *ps, size_t n)
{
	uint64_t start = evb_clock_mono_ns();
	int      rv;

	if ((rv = pthread_create(&r->thread, NULL, reader_main, r)) != 0) {
		cli_error(
		    &cli_cmd_bench, "cannot start a thread: %s", strerror(rv));
		return CLI_EXIT_USAGE;
	}
	r->is_started = true;
	for (size_t i = 0; i < n; i++) {
		ps[i].start_ns = start;
		if ((rv = pthread_create(&ps[i].thread, NULL,
		         ps[i].cfg->is_confirm ? prod_req : prod_push,
		         &ps[i])) != 0) {
			cli_error(&cli_cmd_bench, "cannot start a thread: %s",
			    strerror(rv));
			return CLI_EXIT_USAGE;
		}
		ps[i].is_started = true;
	}
	return CLI_CONTINUE;
}

/* bench_finish joins the producers, drains and fills res. */
static void
bench_finish(bench_reader *r, bench_producer *ps, size_t n, bench_result *res)
{
	uint64_t start = n > 0 ? ps[0].start_ns : evb_clock_mono_ns();
	uint64_t want;

	for (size_t i = 0; i < n; i++) {
		if (ps[i].is_started) {
			(void) pthread_join(ps[i].thread, NULL);
			ps[i].is_started = false;
		}
	}
	bench_collect(ps, n, start, res);
	want = res->sent - res->rejected;
	if (r->is_started) {
		bench_drain(r, want);
	}
	reader_stop(r);
	res->seen = r->seen;
	res->lost = want > res->seen ? want - res->seen : 0;
	res->durable_s =
	    r->seen_ns > start ? (double) (r->seen_ns - start) / 1e9 : 0;
}

/* ---- Report -------------------------------------------------------------- */

static double
bench_per_s(uint64_t n, double secs)
{
	return secs > 0 ? (double) n / secs : 0;
}

/* bench_cpu_us is the bench's own CPU time per event sent, in us. */
static double
bench_cpu_us(const bench_result *res)
{
	return res->sent > 0 ? res->cpu_s * 1e6 / (double) res->sent : 0;
}

/* bench_lat_json makes {"p50":..,"p99":..,"p999":..,"max":..} in us. */
static json_t *
bench_lat_json(const evb_hist *h)
{
	return json_pack("{s:f,s:f,s:f,s:f}", "p50", lat_us(h, 50), "p99",
	    lat_us(h, 99), "p999", lat_us(h, 99.9), "max",
	    (double) h->max / 1e3);
}

static int
bench_print_json(const bench_cfg *c, const bench_tmpl *t, const bench_reader *r,
    const bench_result *res)
{
	json_t *j = json_pack(
	    "{s:s#,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:f,s:f,s:I,s:f,s:f,s:I,s:I,"
	    "s:I,s:I,s:o,s:f,s:f}",
	    "tag", t->tag, (int) BENCH_TAG_LEN, "producers",
	    (json_int_t) c->producers, "batch", (json_int_t) c->batch, "rate",
	    (json_int_t) c->rate, "duration_s", (json_int_t) c->duration_s,
	    "confirm", c->is_confirm, "sent", (json_int_t) res->sent,
	    "messages", (json_int_t) res->messages, "send_s", res->send_s,
	    "offered_per_s", bench_per_s(res->sent, res->send_s), "durable",
	    (json_int_t) res->seen, "durable_s", res->durable_s,
	    "durable_per_s", bench_per_s(res->seen, res->durable_s), "lost",
	    (json_int_t) res->lost, "duplicates", (json_int_t) r->dups, "gaps",
	    (json_int_t) r->gaps, "bad_records", (json_int_t) r->bad,
	    "durable_latency_us", bench_lat_json(&r->durable), "cpu_s",
	    res->cpu_s, "cpu_us_per_event", bench_cpu_us(res));
	int rc = CLI_EXIT_OK;

	if (j != NULL && c->is_confirm &&
	    (json_object_set_new(j, "rejected",
	         json_integer((json_int_t) res->rejected)) != 0 ||
	        json_object_set_new(j, "unanswered",
	            json_integer((json_int_t) res->unanswered)) != 0 ||
	        json_object_set_new(j, "confirm_latency_us",
	            bench_lat_json(&res->confirm)) != 0)) {
		json_decref(j);
		j = NULL;
	}
	if (j == NULL ||
	    json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9)) != 0) {
		cli_error(&cli_cmd_bench, "%s", evb_strerror(EVB_ENOMEM));
		rc = CLI_EXIT_USAGE;
	}
	putchar('\n');
	json_decref(j);
	return rc;
}

static void
bench_print_lat(const char *what, const evb_hist *h)
{
	printf("%s latency us: p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n", what,
	    lat_us(h, 50), lat_us(h, 99), lat_us(h, 99.9),
	    (double) h->max / 1e3);
}

static int
bench_print(const bench_cfg *c, const bench_tmpl *t, const bench_reader *r,
    const bench_result *res)
{
	if (c->is_json) {
		return bench_print_json(c, t, r, res);
	}
	printf("bench: run %.*s, %llu producers, batch %llu, rate ",
	    BENCH_TAG_LEN, t->tag, (unsigned long long) c->producers,
	    (unsigned long long) c->batch);
	if (c->rate > 0) {
		printf("%llu/s", (unsigned long long) c->rate);
	} else {
		printf("max");
	}
	printf(", %llu s, %s\n", (unsigned long long) c->duration_s,
	    c->is_confirm ? "confirmed" : "fire and forget");
	printf("offered    %llu events in %llu messages, %.3f s, %.0f "
	       "events/s\n",
	    (unsigned long long) res->sent, (unsigned long long) res->messages,
	    res->send_s, bench_per_s(res->sent, res->send_s));
	printf("durable    %llu events, %.3f s, %.0f events/s\n",
	    (unsigned long long) res->seen, res->durable_s,
	    bench_per_s(res->seen, res->durable_s));
	printf("lost       %llu\n", (unsigned long long) res->lost);
	if (c->is_confirm) {
		printf("rejected   %llu%s%s\n",
		    (unsigned long long) res->rejected,
		    res->rejected > 0 ? ", first: " : "", res->reject);
		printf(
		    "unanswered %llu\n", (unsigned long long) res->unanswered);
	}
	printf("duplicates %llu\ngaps       %llu\n",
	    (unsigned long long) r->dups, (unsigned long long) r->gaps);
	if (r->bad > 0) {
		printf("bad records %llu\n", (unsigned long long) r->bad);
	}
	printf("bench cpu  %.3f s, %.2f us per event sent (this process's "
	       "own threads)\n",
	    res->cpu_s, bench_cpu_us(res));
	bench_print_lat("durable", &r->durable);
	if (c->is_confirm) {
		bench_print_lat("confirm", &res->confirm);
	}
	return CLI_EXIT_OK;
}

/* ---- Options and main ---------------------------------------------------- */

/*
 * bench_args reads the numeric options, typed in v in the order of nums
 * below (NULL when not given), into c.
 */
static int
bench_args(const char *const v[BENCH_NUM_OPTS], bench_cfg *c)
{
	static const struct {
		const char *name;
		uint64_t    min, max, def;
	} nums[] = {
		{ "producers", 1, BENCH_PRODUCERS_MAX, 1 },
		{ "batch", 1, BENCH_BATCH_MAX, 1 },
		{ "rate", 0, 1000000000, 0 },
		{ "duration", 1, BENCH_DURATION_MAX, BENCH_DURATION_DEFAULT },
		{ "inflight", 1, BENCH_INFLIGHT_MAX, BENCH_INFLIGHT_DEFAULT },
	};
	uint64_t *out[] = { &c->producers, &c->batch, &c->rate, &c->duration_s,
		&c->inflight };
	int       rc;

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		*out[i] = nums[i].def;
		if (v[i] != NULL &&
		    (rc = cli_parse_u64(&cli_cmd_bench, nums[i].name, v[i],
		         nums[i].min, nums[i].max, out[i])) != CLI_CONTINUE) {
			return rc;
		}
	}
	return CLI_CONTINUE;
}

/* bench_status reports what went wrong, if anything; the exit status. */
static int
bench_status(const bench_cfg *c, const bench_reader *r, const bench_result *res)
{
	// A confirmed request's one timeout covers its send and its reply,
	// so only a fire-and-forget send that timed out is known to have
	// been taken by nothing.
	if (res->err == NNG_ETIMEDOUT && !c->is_confirm) {
		cli_error_not_taken(&cli_cmd_bench, "a producer's message",
		    c->url, false, BENCH_SEND_TIMEOUT_MS / 1000);
		return CLI_EXIT_USAGE;
	}
	if (res->err == NNG_ETIMEDOUT) {
		cli_error(&cli_cmd_bench,
		    "a request to %s got no reply within %d s: is it the "
		    "confirmed ingest endpoint of a running 'evbus run' "
		    "(--confirm, default %s)?",
		    c->url, BENCH_CONFIRM_TIMEOUT_MS / 1000,
		    CLI_CONFIRM_URL_DEFAULT);
		return CLI_EXIT_USAGE;
	}
	if (res->err != 0) {
		cli_error(&cli_cmd_bench, "a producer's message to %s: %s",
		    c->url, nng_strerror(res->err));
		return CLI_EXIT_USAGE;
	}
	if (r->err != 0) {
		cli_error(&cli_cmd_bench, "reading the log: %s",
		    evb_strerror(r->err));
		return CLI_EXIT_USAGE;
	}
	return res->lost + res->rejected > 0 ? CLI_EXIT_DATA : CLI_EXIT_OK;
}

/* bench_load opens the producers, runs them and reports. */
static int
bench_load(const bench_cfg *c, const bench_tmpl *t, bench_reader *r)
{
	bench_producer *ps;
	bench_result    res = { 0 };
	size_t          n   = 0;
	int             rc  = CLI_CONTINUE;

	if ((ps = calloc(c->producers, sizeof(*ps))) == NULL) {
		cli_error(&cli_cmd_bench, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	while (n < c->producers && rc == CLI_CONTINUE) {
		ps[n].cfg   = c;
		ps[n].tmpl  = t;
		ps[n].index = (unsigned) n;
		rc          = prod_open(&ps[n++]);
	}
	if (rc == CLI_CONTINUE) {
		double cpu = bench_cpu_s();

		rc = bench_start(r, ps, n);
		bench_finish(r, ps, n, &res);
		res.cpu_s = bench_cpu_s() - cpu;
	}
	if (rc == CLI_CONTINUE) {
		rc = bench_print(c, t, r, &res);
		rc = rc != CLI_EXIT_OK ? rc : bench_status(c, r, &res);
	}
	for (size_t i = 0; i < n; i++) {
		prod_close(&ps[i]);
	}
	free(ps);
	return rc;
}

/* bench_go prepares the event and the reader, then runs the load. */
static int
bench_go(const bench_cfg *c)
{
	bench_tmpl    t = { 0 };
	bench_reader *r;
	evb_wal      *w = NULL;
	evb_wal_opts  o;
	evb_diag      diag = { "" };
	int           rc;

	// The reader holds a histogram: keep it off the stack.
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		cli_error(&cli_cmd_bench, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	if ((rc = tmpl_make(&t, c->batch)) != CLI_CONTINUE) {
		goto tmpl_fini;
	}
	evb_wal_opts_default(&o);
	o.read_only = true;
	if ((rc = evb_wal_open(&w, c->data, &o, &diag)) != EVB_OK) {
		cli_error(&cli_cmd_bench, "cannot open the log in %s: %s",
		    c->data, cli_diag_text(&diag, rc));
		rc = CLI_EXIT_USAGE;
		goto tmpl_fini;
	}
	r->tmpl      = &t;
	r->producers = c->producers;
	if ((rc = reader_open(r, w, c->data)) == CLI_CONTINUE) {
		rc = bench_load(c, &t, r);
	}
	reader_close(r);
	evb_wal_close(w);
tmpl_fini:
	evb_buf_fini(&t.bytes);
	free(r);
	return rc;
}

static int
bench_run(int argc, char **argv)
{
	const char   *num[BENCH_NUM_OPTS] = { NULL };
	const char   *ingest              = NULL;
	const char   *confirm_url         = NULL;
	const char   *data                = NULL;
	bench_cfg     c                   = { 0 };
	const cli_opt opts[]              = {
		             { "producers", 0, NULL, &num[0] },
		             { "batch", 0, NULL, &num[1] },
		             { "rate", 0, NULL, &num[2] },
		             { "duration", 0, NULL, &num[3] },
		             { "inflight", 0, NULL, &num[4] },
		             { "confirm", 0, &c.is_confirm, NULL },
		             { "ingest", 0, NULL, &ingest },
		             { "confirm-url", 0, NULL, &confirm_url },
		             { "data", 0, NULL, &data },
		             { "json", 0, &c.is_json, NULL },
		             { NULL, 0, NULL, NULL },
	};
	int first;
	int rc;

	rc = cli_opts_parse_max(&cli_cmd_bench, argc, argv, opts, 0, &first);
	if (rc != CLI_CONTINUE || (rc = bench_args(num, &c)) != CLI_CONTINUE ||
	    (rc = cli_url_check(&cli_cmd_bench, "ingest", ingest)) !=
	        CLI_CONTINUE ||
	    (rc = cli_url_check(&cli_cmd_bench, "confirm-url", confirm_url)) !=
	        CLI_CONTINUE) {
		return rc;
	}
	if (c.is_confirm) {
		c.url =
		    confirm_url != NULL ? confirm_url : CLI_CONFIRM_URL_DEFAULT;
	} else {
		c.url = ingest != NULL ? ingest : CLI_INGEST_URL_DEFAULT;
	}
	c.data = data != NULL ? data : CLI_DATA_DEFAULT;
	return cli_output_finish(&cli_cmd_bench, bench_go(&c));
}
