/*
 * wal_crash.h: what the WAL crash test and its child agree on: the batch
 * and record contents derived from the offset alone, so the parent can
 * check every byte after a kill -9 without being told what was written.
 */
#ifndef EVB_WAL_CRASH_H
#define EVB_WAL_CRASH_H

#include <stddef.h>
#include <stdint.h>

#include "wal/wal.h"

#define WAL_CRASH_MAX_BATCH 64 /* Records per batch, at most. */
#define WAL_CRASH_MAX_LEN 400  /* Payload bytes, at most. */

/* wal_crash_batch is the size of the batch that starts at off. */
static inline size_t
wal_crash_batch(uint64_t off)
{
	return (size_t) (1 + (off * 7919) % WAL_CRASH_MAX_BATCH);
}

/* wal_crash_len is the payload length of the record at off. */
static inline size_t
wal_crash_len(uint64_t off)
{
	return (size_t) (off * 31 % WAL_CRASH_MAX_LEN);
}

/* wal_crash_fill writes the payload of the record at off. */
static inline void
wal_crash_fill(uint8_t *p, uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < wal_crash_len(off); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t) x;
	}
}

/* wal_crash_rec fills the header fields of the record at off. */
static inline void
wal_crash_rec(evb_wal_rec *r, uint64_t off, const uint8_t *payload)
{
	r->type    = (uint16_t) (off % 65521);
	r->epoch   = 1;
	r->seq     = off;
	r->ts_ns   = (int64_t) off * 1000;
	r->payload = payload;
	r->len     = wal_crash_len(off);
}

#endif /* EVB_WAL_CRASH_H */
