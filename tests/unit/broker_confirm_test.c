/*
 * broker_confirm_test: confirmed ingest's replies (broker/broker.h),
 * through the broker library on loopback ports, with the test standing
 * in for the collector (evb_broker_durable):
 *   - a request whose events become durable between evb_broker_stop and
 *     evb_broker_close (the collector storing what the ring holds, as
 *     `evbus run` does at a signal) still gets its reply;
 *   - a requester with many requests in flight that reads its replies
 *     late gets every one of them, and the counters agree.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "broker/broker.h"
#include "proto_testlib.h"
#include "tests/support/support.h"

/* The broker's URLs and port of confirmed ingest. */
typedef struct bct_urls {
	char     pub[64], ingest[64], ctl[64], confirm[64];
	uint16_t confirm_port;
} bct_urls;

static void
bct_url(char *out, size_t n, uint16_t *port_out)
{
	uint16_t port;

	cr_assert_eq(evb_ts_port_pick(&port), 0);
	(void) snprintf(out, n, "tcp://127.0.0.1:%u", (unsigned) port);
	if (port_out != NULL) {
		*port_out = port;
	}
}

/* bct_open starts a broker with confirmed ingest and no heartbeat, so
 * that the test's events are the only seqs. */
static evb_broker *
bct_open(bct_urls *u)
{
	evb_broker_opts o;
	evb_broker     *b = NULL;
	evb_diag        d = { { 0 } };

	bct_url(u->pub, sizeof(u->pub), NULL);
	bct_url(u->ingest, sizeof(u->ingest), NULL);
	bct_url(u->ctl, sizeof(u->ctl), NULL);
	bct_url(u->confirm, sizeof(u->confirm), &u->confirm_port);
	evb_broker_opts_default(&o);
	o.pub_url      = u->pub;
	o.ingest_url   = u->ingest;
	o.ctl_url      = u->ctl;
	o.confirm_url  = u->confirm;
	o.ring_bytes   = 4 << 20;
	o.heartbeat_ms = 0;
	o.stats_log_ms = 0;
	cr_assert_eq(evb_broker_open(&b, &o, &d), EVB_OK, "%s", d.msg);
	cr_assert_eq(evb_broker_start(b), EVB_OK);
	return b;
}

static void
bct_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	(void) nanosleep(&ts, NULL);
}

/* bct_wait_published waits up to 5 s for seq last to be published. */
static uint64_t
bct_wait_published(evb_broker *b, uint64_t last)
{
	evb_broker_stat st;

	for (int i = 0; i < 500; i++) {
		evb_broker_stats(b, &st);
		if (st.last_seq >= last) {
			return st.epoch;
		}
		bct_sleep_ms(10);
	}
	cr_assert_fail("seq %llu was not published", (unsigned long long) last);
	return 0;
}

/* bct_events packs an array of n valid events of the first type. */
static void
bct_events(msgpack_sbuffer *sb, size_t n)
{
	char text[4096];
	int  len = 0;

	cr_assert_lt(n, 8);
	len += snprintf(text + len, sizeof(text) - (size_t) len, "[");
	for (size_t i = 0; i < n; i++) {
		len += snprintf(text + len, sizeof(text) - (size_t) len, "%s%s",
		    i == 0 ? "" : ",", ptl_valid_json[0]);
	}
	(void) snprintf(text + len, sizeof(text) - (size_t) len, "]");
	msgpack_sbuffer_init(sb);
	ptl_sbuf_json(sb, text, &ptl_shapes[0]);
	cr_assert_gt(sb->size, 0);
}

/* bct_result_seq is the seq of result i of a reply, 0 when it has none. */
static uint64_t
bct_result_seq(const msgpack_object *reply, size_t i)
{
	const msgpack_object *res = NULL;

	cr_assert_eq(reply->type, MSGPACK_OBJECT_MAP);
	for (uint32_t k = 0; k < reply->via.map.size; k++) {
		const msgpack_object_kv *kv = &reply->via.map.ptr[k];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == 7 &&
		    memcmp(kv->key.via.str.ptr, "results", 7) == 0) {
			res = &kv->val;
		}
	}
	cr_assert_not_null(res, "the reply has no results");
	cr_assert_eq(res->type, MSGPACK_OBJECT_ARRAY);
	cr_assert_lt(i, res->via.array.size);
	const msgpack_object *r = &res->via.array.ptr[i];
	for (uint32_t k = 0; k < r->via.map.size; k++) {
		const msgpack_object_kv *kv = &r->via.map.ptr[k];

		if (kv->key.via.str.size == 3 &&
		    memcmp(kv->key.via.str.ptr, "seq", 3) == 0) {
			return kv->val.via.u64;
		}
	}
	return 0;
}

/*
 * `evbus run` stops the broker at a signal, then lets the collector store
 * what the ring holds and report it durable, then closes the broker. A
 * request published before the stop and made durable after it must get
 * its reply, not be dropped as if it had never been stored.
 */
Test(broker_confirm, a_request_made_durable_after_stop_is_answered_at_close,
    .timeout = 30)
{
	bct_urls         u;
	evb_broker      *b = bct_open(&u);
	evb_broker_stat  st;
	nng_socket       req;
	nng_msg         *reply = NULL;
	msgpack_sbuffer  sb;
	msgpack_unpacked up;
	uint64_t         epoch;

	cr_assert_eq(nng_req0_open(&req), 0);
	cr_assert_eq(nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000), 0);
	cr_assert_eq(nng_dial(req, u.confirm, NULL, 0), 0);
	bct_events(&sb, 3);
	cr_assert_eq(nng_send(req, sb.data, sb.size, 0), 0);
	msgpack_sbuffer_destroy(&sb);
	epoch = bct_wait_published(b, 3);

	evb_broker_stop(b);
	evb_broker_durable(b, epoch, 3); // The collector, draining.
	evb_broker_stats(b, &st);
	evb_broker_close(b);

	cr_assert_eq(nng_recvmsg(req, &reply, 0), 0, "no reply after close");
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(
	                 &up, nng_msg_body(reply), nng_msg_len(reply), NULL),
	    MSGPACK_UNPACK_SUCCESS);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(bct_result_seq(&up.data, i), i + 1);
	}
	msgpack_unpacked_destroy(&up);
	nng_msg_free(reply);
	(void) nng_close(req);
	cr_assert_eq(st.confirm_msgs, 1);
}

/* ---- A requester that reads late, over a plain TCP socket ---------------- */

/* bct_tcp connects to the broker's confirmed ingest as an SP req0 peer
 * with a small receive buffer, so that unread replies back up. */
static int
bct_tcp(uint16_t port)
{
	struct sockaddr_in sa    = { 0 };
	struct timeval     tv    = { 10, 0 };
	uint8_t            hs[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
	uint8_t            peer[8];
	int                fd    = socket(AF_INET, SOCK_STREAM, 0);
	int                small = 4096;

	cr_assert_geq(fd, 0);
	cr_assert_eq(
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	cr_assert_eq(
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	sa.sin_family      = AF_INET;
	sa.sin_port        = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	cr_assert_eq(write(fd, hs, sizeof(hs)), (ssize_t) sizeof(hs));
	cr_assert_eq(
	    recv(fd, peer, sizeof(peer), MSG_WAITALL), (ssize_t) sizeof(peer));
	cr_assert_eq(peer[5], 0x31, "the peer is not rep0");
	return fd;
}

/* bct_tcp_send writes one SP message: request id id, then body. */
static void
bct_tcp_send(int fd, uint32_t id, const uint8_t *body, size_t n)
{
	uint8_t head[12];
	size_t  len = 4 + n;

	for (int i = 0; i < 8; i++) {
		head[i] = (uint8_t) (len >> (56 - 8 * i));
	}
	head[8]  = (uint8_t) ((id >> 24) | 0x80);
	head[9]  = (uint8_t) (id >> 16);
	head[10] = (uint8_t) (id >> 8);
	head[11] = (uint8_t) id;
	cr_assert_eq(write(fd, head, sizeof(head)), (ssize_t) sizeof(head));
	cr_assert_eq(write(fd, body, n), (ssize_t) n);
}

/* bct_tcp_recv reads one SP message and returns its request id. */
static uint32_t
bct_tcp_recv(int fd, uint8_t **buf, size_t *cap)
{
	uint8_t  head[8];
	uint64_t len = 0;

	cr_assert_eq(recv(fd, head, sizeof(head), MSG_WAITALL),
	    (ssize_t) sizeof(head), "a reply did not come");
	for (int i = 0; i < 8; i++) {
		len = len << 8 | head[i];
	}
	cr_assert_geq(len, 4);
	cr_assert_lt(len, (uint64_t) 64 << 20);
	if (len > *cap) {
		*buf = realloc(*buf, (size_t) len);
		cr_assert_not_null(*buf);
		*cap = (size_t) len;
	}
	cr_assert_eq(recv(fd, *buf, (size_t) len, MSG_WAITALL), (ssize_t) len);
	return ((uint32_t) (*buf)[0] & 0x7f) << 24 |
	    (uint32_t) (*buf)[1] << 16 | (uint32_t) (*buf)[2] << 8 | (*buf)[3];
}

/*
 * Three requests whose replies are megabytes (40,000 events, each
 * refused) fill the connection, then 100 small ones follow, all before
 * the requester reads a byte. Reading a second later, it must get all
 * 103 replies, and the broker must count 103 sent, none unsent. (nng's
 * raw rep0 freed replies that found its per-connection queue of 64 full,
 * and counted them sent.)
 */
Test(
    broker_confirm, a_requester_that_reads_late_gets_every_reply, .timeout = 60)
{
	static uint8_t  big[40003];
	const uint8_t   small[] = { 0x91, 0xc0 }; // [nil]: one refused.
	bct_urls        u;
	evb_broker     *b = bct_open(&u);
	evb_broker_stat st;
	uint8_t        *buf       = NULL;
	size_t          cap       = 0;
	bool            seen[103] = { false };
	int             fd;

	big[0] = 0xdc; // array 16 of 40,000 nils.
	big[1] = (uint8_t) (40000 >> 8);
	big[2] = (uint8_t) (40000 & 0xff);
	memset(big + 3, 0xc0, 40000);
	fd = bct_tcp(u.confirm_port);
	for (uint32_t id = 0; id < 103; id++) {
		if (id < 3) {
			bct_tcp_send(fd, id, big, sizeof(big));
		} else {
			bct_tcp_send(fd, id, small, sizeof(small));
		}
	}
	bct_sleep_ms(1000);
	for (int i = 0; i < 103; i++) {
		uint32_t id = bct_tcp_recv(fd, &buf, &cap);

		cr_assert_lt(id, 103);
		cr_assert(!seen[id], "reply %u came twice", id);
		seen[id] = true;
	}
	// A reply is counted when nng completes its send, on nng's thread,
	// which may be after its bytes reached the requester: wait for the
	// count of all 103, sent or unsent, before looking at it.
	for (int i = 0; i < 500; i++) {
		evb_broker_stats(b, &st);
		if (st.confirm_replies + st.confirm_unsent >= 103) {
			break;
		}
		bct_sleep_ms(10);
	}
	cr_assert_eq(st.confirm_msgs, 103);
	cr_assert_eq(st.confirm_replies, 103);
	cr_assert_eq(st.confirm_unsent, 0);
	free(buf);
	(void) close(fd);
	evb_broker_close(b);
}
