/*
 * collector_ops.c: what the collector tells operators. Every heartbeat_ms
 * a system_health event goes to the broker's ingest, and every
 * stats_log_ms one EVB-COLL-STATS line goes to the log (evb_log: stderr,
 * with level and time).
 *
 * Why the heartbeat goes through ingest (push0) and not straight into the
 * broker: the collector may run in its own process, even on another host,
 * and ingest is the one way in that works from everywhere; in `evbus run`
 * the same loopback hop costs one message per period. The broker
 * validates, sequences and publishes it, and the collector then stores it
 * like any event, so `evbus replay --type system_health` shows the
 * collector was alive, or when it was not.
 *
 * Both run on the collector's thread, from coll_ops_tick, which the loops
 * call after each batch and each idle wait (at most idle_ms apart), so
 * there is no timer thread and no lock beyond the counters'. A beat can be
 * late by one idle wait or one append, never lost for that reason: the
 * next deadline is computed from the due time, not from when it ran.
 */
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <stdio.h>
#include <string.h>

#include "collector/collector_int.h"

#define OPS_HB_SOURCE "evbus" /* The heartbeat's envelope source. */
#define OPS_HB_SENDBUF 16     /* Beats queued while the broker is away. */

int
coll_ops_open(evb_collector *c, const evb_collector_opts *o, evb_diag *diag)
{
	coll_ops   *ops  = &c->ops;
	const char *name = o->component != NULL ? o->component : "collector";
	uint64_t    now  = evb_clock_mono_ms();
	int         rv;

	if (name[0] == '\0' || strlen(name) >= sizeof(ops->component)) {
		evb_diag_set(diag, "component: expected 1..%zu bytes",
		    sizeof(ops->component) - 1);
		return EVB_EINVAL;
	}
	(void) snprintf(ops->component, sizeof(ops->component), "%s", name);
	ops->hb_ms       = o->heartbeat_url != NULL ? o->heartbeat_ms : 0;
	ops->stats_ms    = o->stats_log_ms;
	ops->open_ms     = now;
	ops->next_hb     = now + ops->hb_ms;
	ops->next_stats  = now + ops->stats_ms;
	ops->at_stats_ms = now;
	evb_hist_reset(&ops->commit_us);
	if (ops->hb_ms == 0) {
		return EVB_OK;
	}
	if ((rv = nng_push0_open(&ops->hb)) != 0) {
		goto fail;
	}
	ops->has_hb = true;
	// Dial in the background: the broker may start after the collector.
	if ((rv = nng_socket_set_int(
	         ops->hb, NNG_OPT_SENDBUF, OPS_HB_SENDBUF)) != 0 ||
	    (rv = nng_dial(
	         ops->hb, o->heartbeat_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		goto fail;
	}
	return EVB_OK;
fail:
	evb_diag_set(
	    diag, "heartbeat_url %s: %s", o->heartbeat_url, nng_strerror(rv));
	return rv == NNG_ENOMEM ? EVB_ENOMEM : EVB_ETRANSPORT;
}

void
coll_ops_close(evb_collector *c)
{
	if (c->ops.has_hb) {
		(void) nng_close(c->ops.hb);
		c->ops.has_hb = false;
	}
}

void
coll_ops_commit(evb_collector *c, uint64_t took_us)
{
	evb_hist_add(&c->ops.commit_us, took_us);
}

static int
ops_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) != 0 ||
	        msgpack_pack_str_body(pk, s, n) != 0
	    ? EVB_ENOMEM
	    : EVB_OK;
}

/* ops_beat_text picks the heartbeat's status and message. */
static const char *
ops_beat_text(const evb_collector_stat *now, const evb_collector_stat *was,
    char *msg, size_t cap)
{
	uint64_t errors = now->append_errors - was->append_errors;
	uint64_t lost   = now->lost - was->lost;

	if (errors > 0 || lost > 0) {
		(void) snprintf(msg, cap,
		    "since the last heartbeat: %llu failed appends, %llu seqs "
		    "lost; last seq %llu",
		    (unsigned long long) errors, (unsigned long long) lost,
		    (unsigned long long) now->last_seq);
		return "degraded";
	}
	(void) snprintf(msg, cap, "stored %llu events, last seq %llu",
	    (unsigned long long) now->appended,
	    (unsigned long long) now->last_seq);
	return "healthy";
}

/* ops_beat sends one heartbeat; false if the socket did not take it. */
static bool
ops_beat(evb_collector *c, const evb_collector_stat *st, uint64_t now_ms)
{
	coll_ops       *ops = &c->ops;
	msgpack_sbuffer sb;
	msgpack_packer  pk;
	char            msg[160];
	const char *status = ops_beat_text(st, &ops->at_hb, msg, sizeof(msg));
	int         rv     = NNG_ENOMEM;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 3) == 0 && ops_pack_str(&pk, "type") == 0 &&
	    ops_pack_str(&pk, "system_health") == 0 &&
	    ops_pack_str(&pk, "source") == 0 &&
	    ops_pack_str(&pk, OPS_HB_SOURCE) == 0 &&
	    ops_pack_str(&pk, "data") == 0 && msgpack_pack_map(&pk, 4) == 0 &&
	    ops_pack_str(&pk, "component") == 0 &&
	    ops_pack_str(&pk, ops->component) == 0 &&
	    ops_pack_str(&pk, "status") == 0 &&
	    ops_pack_str(&pk, status) == 0 &&
	    ops_pack_str(&pk, "uptime_s") == 0 &&
	    msgpack_pack_uint64(&pk, (now_ms - ops->open_ms) / 1000) == 0 &&
	    ops_pack_str(&pk, "message") == 0 && ops_pack_str(&pk, msg) == 0) {
		rv = nng_send(ops->hb, sb.data, sb.size, NNG_FLAG_NONBLOCK);
	}
	msgpack_sbuffer_destroy(&sb);
	ops->at_hb = *st;
	return rv == 0;
}

/* ops_stats_line logs the counters and the rates since the last line. */
static void
ops_stats_line(evb_collector *c, const evb_collector_stat *st, uint64_t now_ms)
{
	coll_ops *ops  = &c->ops;
	double    secs = (double) (now_ms - ops->at_stats_ms) / 1000.0;
	double    rate = secs > 0
	       ? (double) (st->appended - ops->at_stats.appended) / secs
	       : 0.0;

	evb_log(EVB_LOG_INFO, "EVB-COLL-STATS",
	    "epoch=%llu last_seq=%llu appended=%llu rate=%.0f/s bytes=%llu "
	    "batches=%llu duplicates=%llu stale=%llu gaps=%llu "
	    "gap_events=%llu lost=%llu repairs=%llu repaired=%llu "
	    "bad_frames=%llu append_errors=%llu commit_p50_us=%llu "
	    "commit_p99_us=%llu commit_max_us=%llu",
	    (unsigned long long) st->last_epoch,
	    (unsigned long long) st->last_seq,
	    (unsigned long long) st->appended, rate,
	    (unsigned long long) st->bytes, (unsigned long long) st->batches,
	    (unsigned long long) st->duplicates, (unsigned long long) st->stale,
	    (unsigned long long) st->gaps, (unsigned long long) st->gap_events,
	    (unsigned long long) st->lost, (unsigned long long) st->repairs,
	    (unsigned long long) st->repaired,
	    (unsigned long long) st->bad_frames,
	    (unsigned long long) st->append_errors,
	    (unsigned long long) evb_hist_pct(&ops->commit_us, 50),
	    (unsigned long long) evb_hist_pct(&ops->commit_us, 99),
	    (unsigned long long) ops->commit_us.max);
	ops->at_stats    = *st;
	ops->at_stats_ms = now_ms;
	evb_hist_reset(&ops->commit_us);
}

void
coll_ops_tick(evb_collector *c)
{
	coll_ops          *ops = &c->ops;
	uint64_t           now = evb_clock_mono_ms();
	evb_collector_stat st;

	if ((ops->hb_ms == 0 || now < ops->next_hb) &&
	    (ops->stats_ms == 0 || now < ops->next_stats)) {
		return;
	}
	evb_collector_stats(c, &st);
	if (ops->hb_ms > 0 && now >= ops->next_hb) {
		bool sent = ops_beat(c, &st, now);

		coll_bump(
		    c, sent ? &c->st.heartbeats : &c->st.heartbeat_errors, 1);
		// After a long append, do not send the missed beats in a row.
		ops->next_hb += ops->hb_ms;
		if (ops->next_hb <= now) {
			ops->next_hb = now + ops->hb_ms;
		}
	}
	if (ops->stats_ms > 0 && now >= ops->next_stats) {
		ops_stats_line(c, &st, now);
		ops->next_stats += ops->stats_ms;
		if (ops->next_stats <= now) {
			ops->next_stats = now + ops->stats_ms;
		}
	}
}
