/*
 * raw_bench.c: the raw building block, measured on this machine
 * with nothing of evbus in between: producers push0 messages of B copies
 * of the 302-byte event over loopback TCP, one pull0 thread receives
 * them, and a writer thread stores each event as one LMDB record in
 * group commits (every message queued since the last commit, up to 8192
 * events a commit; MDB_APPEND, integer keys, the environment's default
 * sync: an fdatasync and a synchronous meta page per commit, as the WAL's
 * sync mode).
 *
 *   raw_bench [PRODUCERS] [BATCH] [RATE] [SECS] [URL]
 *
 * Defaults: 2 producers, batches of 64, 500000 events/s in all (0:
 * unpaced), 8 s, tcp://127.0.0.1:25575. The log is a fresh LMDB file in
 * a new directory under $TMPDIR (or /tmp), removed at the end.
 *
 * Why it exists: the pipeline's 500 k target (docs/benchmarks.md) was set
 * against a reference figure for this building block. This program tells
 * what the machine gives the block today, run the same way as `evbus
 * bench` runs against `evbus run` (paced the same way, same event, same
 * two cores), so that the bus's figures can be read against it.
 *
 * It validates nothing, sequences nothing, publishes nothing and reads
 * nothing back: the events are split by their known size. Durable means
 * the commit holding the event returned. It prints offered and durable
 * rates, how long after the last send the last commit returned, and the
 * CPU of the whole process and of its threads per event.
 */
#include <errno.h>
#include <lmdb.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_event.h"
#include "common/common.h"
#include "proto/proto.h"

#define RAW_COMMIT_MAX 8192          /* Events per commit, as the WAL's. */
#define RAW_QUEUE_MAX (256u << 20)   /* Bytes queued before pull0 waits. */
#define RAW_MAP_SIZE (64ull << 30)   /* Room for any run. */
#define RAW_PACE_AHEAD_NS 1000000ull /* As `evbus bench` with batches. */
#define RAW_PRODUCERS_MAX 64

typedef struct raw_msg {
	struct raw_msg *next;
	nng_msg        *msg;
} raw_msg;

typedef struct raw {
	/* Set before the threads start. */
	const char *url;
	unsigned    producers;
	unsigned    batch;
	uint64_t    rate;
	double      secs;
	uint64_t    start_ns;
	size_t      ev_len;
	nng_msg    *tmpl; /* One message of batch events, copied per send. */
	MDB_env    *env;
	MDB_dbi     dbi;
	nng_socket  pull;

	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	raw_msg        *head, *tail; /* Received, not yet stored. */
	size_t          queued;      /* Bytes in that queue. */
	bool            recv_done;   /* The receiver has stopped. */
	uint64_t        sent;        /* Events sent, all producers. */
	uint64_t        last_send_ns;
	uint64_t        durable; /* Events committed. */
	uint64_t        last_commit_ns;
	uint64_t        commits;
	int             err; /* First failure, or 0. */
	const char     *err_what;
	double          cpu_recv, cpu_write, cpu_prod; /* Thread CPU, s. */
} raw;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static double
thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
raw_fail(raw *r, const char *what, int err)
{
	pthread_mutex_lock(&r->mtx);
	if (r->err == 0) {
		r->err      = err;
		r->err_what = what;
	}
	pthread_cond_broadcast(&r->cv); // A waiting receiver gives up.
	pthread_mutex_unlock(&r->mtx);
}

typedef struct prod_arg {
	raw     *r;
	unsigned index;
} prod_arg;

/*
 * producer sends message after message, paced as `evbus bench` paces
 * batches: what is due within the next millisecond goes at once.
 */
static void *
producer(void *arg)
{
	prod_arg  *pa  = arg;
	raw       *r   = pa->r;
	uint64_t   end = r->start_ns + (uint64_t) (r->secs * 1e9);
	double     gap = r->rate == 0
	        ? 0
	        : (double) r->batch * r->producers * 1e9 / (double) r->rate;
	nng_socket s;
	uint64_t   k = 0, sent = 0, done;
	int        rv;

	if ((rv = nng_push0_open(&s)) != 0) {
		raw_fail(r, "nng_push0_open", rv);
		return NULL;
	}
	if ((rv = nng_dial(s, r->url, NULL, 0)) != 0) {
		raw_fail(r, "nng_dial", rv);
		goto out;
	}
	for (;; k++) {
		uint64_t due = r->start_ns +
		    (uint64_t) (gap *
		        ((double) k +
		            (double) pa->index / (double) r->producers));
		uint64_t now = now_ns();
		nng_msg *m;

		if (due >= end || now >= end) {
			break;
		}
		if (due > now + RAW_PACE_AHEAD_NS) {
			struct timespec ts = { (time_t) (due / 1000000000u),
				(long) (due % 1000000000u) };

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
			           &ts, NULL) != 0) {
				// EINTR: sleep again until the same instant.
			}
		}
		if ((rv = nng_msg_dup(&m, r->tmpl)) != 0) {
			raw_fail(r, "nng_msg_dup", rv);
			break;
		}
		if ((rv = nng_sendmsg(s, m, 0)) != 0) {
			nng_msg_free(m);
			raw_fail(r, "nng_sendmsg", rv);
			break;
		}
		sent += r->batch;
	}
	done = now_ns();
	pthread_mutex_lock(&r->mtx);
	r->sent += sent;
	if (done > r->last_send_ns) {
		r->last_send_ns = done;
	}
	r->cpu_prod += thread_cpu_s();
	pthread_mutex_unlock(&r->mtx);
out:
	// Closing a push0 socket may drop what it still buffers: linger
	// until the receiver has taken everything sent.
	nng_msleep(2000);
	nng_close(s);
	return NULL;
}

/* receiver queues every message for the writer; stops on a timeout. */
static void *
receiver(void *arg)
{
	raw *r = arg;

	for (;;) {
		nng_msg *m;
		raw_msg *q;
		int      rv = nng_recvmsg(r->pull, &m, 0);

		if (rv == NNG_ETIMEDOUT || rv == NNG_ECLOSED) {
			break;
		}
		if (rv != 0) {
			raw_fail(r, "nng_recvmsg", rv);
			break;
		}
		if ((q = malloc(sizeof(*q))) == NULL) {
			nng_msg_free(m);
			raw_fail(r, "malloc", ENOMEM);
			break;
		}
		q->msg  = m;
		q->next = NULL;
		pthread_mutex_lock(&r->mtx);
		while (r->queued >= RAW_QUEUE_MAX && r->err == 0) {
			pthread_cond_wait(&r->cv, &r->mtx);
		}
		if (r->err != 0) {
			pthread_mutex_unlock(&r->mtx);
			nng_msg_free(m);
			free(q);
			break;
		}
		if (r->tail != NULL) {
			r->tail->next = q;
		} else {
			r->head = q;
		}
		r->tail = q;
		r->queued += nng_msg_len(m);
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mtx);
	}
	pthread_mutex_lock(&r->mtx);
	r->recv_done = true;
	r->cpu_recv  = thread_cpu_s();
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mtx);
	return NULL;
}

/*
 * store_batch puts every event of the messages in q (a list taken from
 * the queue) into one write txn and commits it. Returns an LMDB code.
 */
static int
store_batch(raw *r, raw_msg *q, uint64_t *key, uint64_t *n)
{
	MDB_txn *txn;
	int      rc;

	if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) != MDB_SUCCESS) {
		return rc;
	}
	*n = 0;
	for (; q != NULL; q = q->next) {
		// A msgpack array of 16-bit length: 3 bytes of head, then the
		// events at their known size.
		const uint8_t *p   = (const uint8_t *) nng_msg_body(q->msg) + 3;
		size_t         len = nng_msg_len(q->msg) - 3;

		for (size_t off = 0; off + r->ev_len <= len; off += r->ev_len) {
			MDB_val k = { sizeof(*key), key };
			MDB_val v = { r->ev_len, (void *) (p + off) };

			// k points at *key: bump it only once the put is done.
			rc = mdb_put(txn, r->dbi, &k, &v, MDB_APPEND);
			if (rc != MDB_SUCCESS) {
				mdb_txn_abort(txn);
				return rc;
			}
			(*key)++;
			(*n)++;
		}
	}
	return mdb_txn_commit(txn);
}

/* writer commits what is queued, as a group commit, until all is stored. */
static void *
writer(void *arg)
{
	raw     *r   = arg;
	uint64_t key = 1;

	for (;;) {
		raw_msg *q, *last, *rest;
		size_t   bytes = 0, events = 0;
		uint64_t n = 0;
		int      rc;

		pthread_mutex_lock(&r->mtx);
		while (r->head == NULL && !r->recv_done) {
			pthread_cond_wait(&r->cv, &r->mtx);
		}
		if (r->head == NULL) {
			pthread_mutex_unlock(&r->mtx);
			break;
		}
		// Take whole messages up to the commit's size.
		q = last = r->head;
		for (;;) {
			bytes += nng_msg_len(last->msg);
			events += r->batch;
			if (last->next == NULL || events >= RAW_COMMIT_MAX) {
				break;
			}
			last = last->next;
		}
		rest       = last->next;
		last->next = NULL;
		r->head    = rest;
		if (rest == NULL) {
			r->tail = NULL;
		}
		r->queued -= bytes;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mtx);

		rc = store_batch(r, q, &key, &n);
		while (q != NULL) {
			raw_msg *next = q->next;

			nng_msg_free(q->msg);
			free(q);
			q = next;
		}
		if (rc != MDB_SUCCESS) {
			raw_fail(r, mdb_strerror(rc), rc);
			break;
		}
		pthread_mutex_lock(&r->mtx);
		r->durable += n;
		r->commits++;
		r->last_commit_ns = now_ns();
		pthread_mutex_unlock(&r->mtx);
	}
	r->cpu_write = thread_cpu_s();
	return NULL;
}

static int
usage(const char *prog)
{
	fprintf(stderr, "usage: %s [PRODUCERS] [BATCH] [RATE] [SECS] [URL]\n",
	    prog);
	return 2;
}

/* arg_num reads argv[i], if given, into *v when it is an integer in
   [lo, hi]; false when it is given and is not. */
static bool
arg_num(int argc, char **argv, int i, uint64_t lo, uint64_t hi, uint64_t *v)
{
	char              *end;
	unsigned long long n;

	if (i >= argc) {
		return true;
	}
	errno = 0;
	n     = strtoull(argv[i], &end, 10);
	if (errno != 0 || end == argv[i] || *end != '\0' || n < lo || n > hi) {
		return false;
	}
	*v = n;
	return true;
}

/* make_template encodes the message every producer sends. */
static int
make_template(raw *r)
{
	evb_event *ev;
	evb_buf    one;
	evb_diag   d = { { 0 } };
	int        rv;

	rv = evb_proto_event_from_json(
	    &ev, BENCH_EVENT_JSON, strlen(BENCH_EVENT_JSON), &d);
	if (rv != EVB_OK) {
		fprintf(stderr, "raw_bench: sample event: %s\n", d.msg);
		return rv;
	}
	evb_proto_event_set_seq(ev, 123456789, 1764035400000000000ull);
	evb_buf_init(&one);
	if ((rv = evb_proto_event_encode(ev, &one)) != EVB_OK) {
		goto out;
	}
	r->ev_len = one.len;
	if (nng_msg_alloc(&r->tmpl, 0) != 0) {
		rv = EVB_ENOMEM;
		goto out;
	}
	// msgpack array 16: 0xdc, count big-endian.
	if (nng_msg_append(r->tmpl, "\xdc", 1) != 0 ||
	    nng_msg_append_u16(r->tmpl, (uint16_t) r->batch) != 0) {
		rv = EVB_ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < r->batch; i++) {
		if (nng_msg_append(r->tmpl, one.data, one.len) != 0) {
			rv = EVB_ENOMEM;
			goto out;
		}
	}
out:
	evb_buf_fini(&one);
	evb_proto_event_free(ev);
	return rv;
}

static int
open_env(raw *r, const char *dir)
{
	MDB_txn *txn;
	int      rc;

	if ((rc = mdb_env_create(&r->env)) != MDB_SUCCESS ||
	    (rc = mdb_env_set_mapsize(r->env, RAW_MAP_SIZE)) != MDB_SUCCESS ||
	    (rc = mdb_env_open(r->env, dir, MDB_NOTLS, 0644)) != MDB_SUCCESS ||
	    (rc = mdb_txn_begin(r->env, NULL, 0, &txn)) != MDB_SUCCESS) {
		return rc;
	}
	if ((rc = mdb_dbi_open(txn, NULL, MDB_INTEGERKEY, &r->dbi)) !=
	    MDB_SUCCESS) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

int
main(int argc, char **argv)
{
	raw           r = { .rate = 500000, .url = "tcp://127.0.0.1:25575" };
	uint64_t      producers = 2, batch = 64, secs = 8;
	const char   *tmp = getenv("TMPDIR");
	char          dir[4096];
	char          path[4200];
	pthread_t     th[RAW_PRODUCERS_MAX + 2];
	prod_arg      pa[RAW_PRODUCERS_MAX];
	unsigned      nth = 0;
	struct rusage ru;
	double        cpu;
	int           rv;

	if (!arg_num(argc, argv, 1, 1, RAW_PRODUCERS_MAX, &producers) ||
	    !arg_num(argc, argv, 2, 1, RAW_COMMIT_MAX, &batch) ||
	    !arg_num(argc, argv, 3, 0, UINT32_MAX, &r.rate) ||
	    !arg_num(argc, argv, 4, 1, 3600, &secs) || argc > 6) {
		return usage(argv[0]);
	}
	r.producers = (unsigned) producers;
	r.batch     = (unsigned) batch;
	r.secs      = (double) secs;
	if (argc > 5) {
		r.url = argv[5];
	}
	// mkdtemp replaces the six X with a unique name.
	snprintf(dir, sizeof(dir), "%s/raw_bench.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("raw_bench: mkdtemp");
		return 1;
	}
	pthread_mutex_init(&r.mtx, NULL);
	pthread_cond_init(&r.cv, NULL);
	if ((rv = make_template(&r)) != EVB_OK) {
		fprintf(stderr, "raw_bench: %s\n", evb_strerror(rv));
		goto rmdir;
	}
	if ((rv = open_env(&r, dir)) != MDB_SUCCESS) {
		fprintf(stderr, "raw_bench: lmdb: %s\n", mdb_strerror(rv));
		goto rmdir;
	}
	if ((rv = nng_pull0_open(&r.pull)) != 0 ||
	    (rv = nng_socket_set_ms(r.pull, NNG_OPT_RECVTIMEO, 1000)) != 0 ||
	    (rv = nng_listen(r.pull, r.url, NULL, 0)) != 0) {
		fprintf(stderr, "raw_bench: %s: %s\n", r.url, nng_strerror(rv));
		goto close;
	}
	r.start_ns = now_ns();
	rv         = pthread_create(&th[nth], NULL, receiver, &r);
	nth += rv == 0;
	if (rv == 0 && (rv = pthread_create(&th[nth], NULL, writer, &r)) == 0) {
		nth++;
	}
	for (unsigned i = 0; rv == 0 && i < r.producers; i++) {
		pa[i] = (prod_arg) { &r, i };
		if ((rv = pthread_create(&th[nth], NULL, producer, &pa[i])) ==
		    0) {
			nth++;
		}
	}
	if (rv != 0) {
		// The threads started stop on the error and the closed socket.
		raw_fail(&r, "pthread_create", rv);
		nng_close(r.pull);
	}
	for (unsigned i = 0; i < nth; i++) {
		pthread_join(th[i], NULL);
	}
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (r.err != 0) {
		fprintf(
		    stderr, "raw_bench: %s failed (%d)\n", r.err_what, r.err);
		rv = 1;
		goto close;
	}
	{
		double send_s = (double) (r.last_send_ns - r.start_ns) / 1e9;
		double dur_s  = (double) (r.last_commit_ns - r.start_ns) / 1e9;

		printf("raw: %u producers, batch %u, rate %llu/s, %.0f s, "
		       "%zu-byte events\n",
		    r.producers, r.batch, (unsigned long long) r.rate, r.secs,
		    r.ev_len);
		printf("offered  %llu events, %.3f s, %.0f events/s\n",
		    (unsigned long long) r.sent, send_s,
		    (double) r.sent / send_s);
		printf("durable  %llu events, %.3f s, %.0f events/s, %llu "
		       "commits, last %.3f s after the last send\n",
		    (unsigned long long) r.durable, dur_s,
		    (double) r.durable / dur_s, (unsigned long long) r.commits,
		    dur_s - send_s);
		printf("cpu      %.2f us per event (process); receiver %.2f, "
		       "writer %.2f, producers %.2f\n",
		    cpu * 1e6 / (double) r.durable,
		    r.cpu_recv * 1e6 / (double) r.durable,
		    r.cpu_write * 1e6 / (double) r.durable,
		    r.cpu_prod * 1e6 / (double) r.durable);
	}
	rv = r.durable == r.sent ? 0 : 1;
close:
	nng_close(r.pull);
	if (r.env != NULL) {
		mdb_env_close(r.env);
	}
rmdir:
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
	if (r.tmpl != NULL) {
		nng_msg_free(r.tmpl);
	}
	return rv;
}
