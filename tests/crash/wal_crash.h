/*
 * wal_crash.h: what the WAL crash test and its child agree on: the batch
 * and record contents derived from the offset alone, so the parent can
 * check every byte after a kill -9 without being told what was written.
 */
#ifndef EVB_WAL_CRASH_H
#define EVB_WAL_CRASH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wal/wal.h"

#define WAL_CRASH_MAX_BATCH 64 /* Records per batch, at most. */
#define WAL_CRASH_MAX_LEN 400  /* Payload bytes, at most. */
#define WAL_CRASH_ID_MAX 32    /* Id bytes, with room for the NUL. */

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

/* wal_crash_id writes the id of the record at off (WAL_CRASH_ID_MAX
 * bytes) and returns its length. */
static inline size_t
wal_crash_id(char *id, uint64_t off)
{
	return (size_t) snprintf(
	    id, WAL_CRASH_ID_MAX, "crash-%llu", (unsigned long long) off);
}

/*
 * wal_crash_id_at is where the payload of the record at off holds its id
 * (of id_len bytes), or SIZE_MAX where the id is apart: odd offsets with
 * room, so that the log has both forms of id (docs/wal-format.md, flag
 * ID_AT).
 */
static inline size_t
wal_crash_id_at(uint64_t off, size_t id_len)
{
	size_t at = (size_t) (off % 8);

	return off % 2 == 1 && wal_crash_len(off) >= at + id_len ? at
	                                                         : SIZE_MAX;
}

/* wal_crash_fill writes the payload of the record at off. */
static inline void
wal_crash_fill(uint8_t *p, uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull + 1;
	char     id[WAL_CRASH_ID_MAX];
	size_t   n = wal_crash_id(id, off), at = wal_crash_id_at(off, n);

	for (size_t i = 0; i < wal_crash_len(off); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t) x;
	}
	if (at != SIZE_MAX) {
		memcpy(p + at, id, n);
	}
}

/*
 * wal_crash_first is the first offset of the batch that holds off (the
 * child's batches tile the log from offset 1).
 */
static inline uint64_t
wal_crash_first(uint64_t off)
{
	uint64_t b = 1;

	while (b + wal_crash_batch(b) <= off) {
		b += wal_crash_batch(b);
	}
	return (b);
}

/*
 * wal_crash_rec fills the record at off; payload and id (WAL_CRASH_ID_MAX
 * bytes) are the caller's buffers, payload filled by wal_crash_fill. The
 * id is the payload's own bytes where it holds it (wal_crash_id_at).
 */
static inline void
wal_crash_rec(evb_wal_rec *r, uint64_t off, const uint8_t *payload, char *id)
{
	size_t n  = wal_crash_id(id, off);
	size_t at = wal_crash_id_at(off, n);

	r->type    = (uint16_t) (off % 65521);
	r->epoch   = 1;
	r->seq     = off;
	r->ts_ns   = (int64_t) off * 1000;
	r->payload = payload;
	r->len     = wal_crash_len(off);
	r->id      = at == SIZE_MAX ? (const void *) id : payload + at;
	r->id_len  = n;
}

#endif /* EVB_WAL_CRASH_H */
