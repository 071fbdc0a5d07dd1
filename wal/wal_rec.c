/*
 * wal_rec.c: the stored form of one record, a fixed big-endian header, the
 * event id and the payload (the layout is drawn in wal_int.h and specified
 * byte by byte in docs/wal-format.md). The id is in the record so that the
 * duplicate window can be rebuilt from the log alone (wal_dedup.c).
 *
 * Why an id may be a reference: the collector's payload is the event's
 * envelope, which holds the id as one of its strings. A copy of it took
 * 27 bytes of a 373-byte record and made LMDB fit 10 records in a 4 KiB
 * page instead of 11; the 2-byte place of the id in the payload keeps 11
 * (docs/wal-format.md, "Space"). An id given apart from the payload (a
 * library user's, a test's) is still copied.
 *
 * Every reader that hands a record out goes through evb_wal_record_decode,
 * which trusts nothing in the value: it checks the size before reading the
 * header, the version and flags before the lengths, the lengths and the
 * id's place before the CRC. What must change with the encoder:
 * rec_layout_read, docs/wal-format.md, the byte-exact tests and the fuzz
 * corpus (fuzz/gen_wal_corpus.py).
 */
#include <string.h>

#include "wal/wal_int.h"

/* Where a record's parts lie in its value. */
typedef struct rec_layout {
	uint8_t flags;
	size_t  id_at;  /* Value bytes id_at..id_at + id_len - 1 are the id. */
	size_t  id_len; /* 0: no id. */
	size_t  pay_at; /* Value bytes pay_at.. are the payload. */
	size_t  len;    /* Payload bytes. */
} rec_layout;

/* rec_id_at says whether r's id lies inside its payload within reach of
 * a u16, and at which payload byte. */
static bool
rec_id_at(const evb_wal_rec *r, size_t *at)
{
	return (r->id_len > 0 &&
	    evb_mem_within(r->id, r->id_len, r->payload, r->len, at) &&
	    *at <= WAL_REC_ID_AT_MAX);
}

size_t
evb_wal_record_size(const evb_wal_rec *r)
{
	size_t at;

	return (WAL_REC_HDR_SIZE +
	    (rec_id_at(r, &at) ? WAL_REC_ID_AT_SIZE : r->id_len) + r->len);
}

const uint8_t *
wal_rec_encode(uint8_t *dst, const evb_wal_rec *r, int64_t append_ns)
{
	uint8_t       *p = dst + WAL_REC_HDR_SIZE;
	const uint8_t *id;
	size_t         at;
	bool           ref = rec_id_at(r, &at);
	uint32_t       crc;

	dst[WAL_REC_OFF_VER]   = WAL_REC_VERSION;
	dst[WAL_REC_OFF_FLAGS] = ref ? WAL_REC_FLAG_ID_AT : 0;
	evb_put_be16(dst + WAL_REC_OFF_TYPE, r->type);
	evb_put_be64(dst + WAL_REC_OFF_EPOCH, r->epoch);
	evb_put_be64(dst + WAL_REC_OFF_SEQ, r->seq);
	evb_put_be64(dst + WAL_REC_OFF_TS, (uint64_t) r->ts_ns);
	evb_put_be64(dst + WAL_REC_OFF_APPEND, (uint64_t) append_ns);
	evb_put_be32(dst + WAL_REC_OFF_LEN, (uint32_t) r->len);
	dst[WAL_REC_OFF_IDLEN] = (uint8_t) r->id_len;
	id                     = r->id_len > 0 ? p : NULL;
	if (ref) {
		evb_put_be16(p, (uint16_t) at);
		p += WAL_REC_ID_AT_SIZE;
		id = p + at;
	} else if (r->id_len > 0) {
		memcpy(p, r->id, r->id_len);
		p += r->id_len;
	}
	if (r->len > 0) {
		memcpy(p, r->payload, r->len);
	}
	// The CRC covers the header up to itself, then everything after it
	// (id length, id or its place, payload), so a flipped bit anywhere
	// is caught.
	crc = evb_wal_crc32c(0, dst, WAL_REC_OFF_CRC);
	crc = evb_wal_crc32c(crc, dst + WAL_REC_OFF_IDLEN,
	    (size_t) (p - (dst + WAL_REC_OFF_IDLEN)) + r->len);
	evb_put_be32(dst + WAL_REC_OFF_CRC, crc);
	return (id);
}

void
evb_wal_record_encode(uint8_t *dst, const evb_wal_rec *r, int64_t append_ns)
{
	(void) wal_rec_encode(dst, r, append_ns);
}

/*
 * rec_layout_read checks what comes before the CRC (size, version, flags,
 * id length, payload length, the id's place) and says where the parts
 * lie; EVB_ECORRUPT, with the first problem in d (NULL allowed).
 */
static int
rec_layout_read(
    uint64_t off, const uint8_t *val, size_t len, rec_layout *l, evb_diag *d)
{
	unsigned long long o = (unsigned long long) off;
	uint32_t           plen;
	size_t             idb, rest;

	if (len < WAL_REC_HDR_SIZE) {
		evb_diag_set(d,
		    "offset %llu: record is %zu bytes, shorter than "
		    "its %d-byte header",
		    o, len, WAL_REC_HDR_SIZE);
		return (EVB_ECORRUPT);
	}
	if (val[WAL_REC_OFF_VER] != WAL_REC_VERSION) {
		evb_diag_set(d, "offset %llu: record version %u, expected %d",
		    o, val[WAL_REC_OFF_VER], WAL_REC_VERSION);
		return (EVB_ECORRUPT);
	}
	l->flags = val[WAL_REC_OFF_FLAGS];
	if ((l->flags & ~WAL_REC_FLAGS_KNOWN) != 0) {
		evb_diag_set(
		    d, "offset %llu: unknown record flags 0x%02x", o, l->flags);
		return (EVB_ECORRUPT);
	}
	l->id_len = val[WAL_REC_OFF_IDLEN];
	rest      = len - WAL_REC_HDR_SIZE;
	idb = (l->flags & WAL_REC_FLAG_ID_AT) ? WAL_REC_ID_AT_SIZE : l->id_len;
	if (l->id_len > EVB_WAL_ID_MAX || idb > rest) {
		evb_diag_set(d,
		    "offset %llu: id length %zu (%zu bytes stored), expected "
		    "<= %d and <= the %zu bytes after the header",
		    o, l->id_len, idb, EVB_WAL_ID_MAX, rest);
		return (EVB_ECORRUPT);
	}
	plen = evb_get_be32(val + WAL_REC_OFF_LEN);
	if (plen != rest - idb) {
		evb_diag_set(d,
		    "offset %llu: payload length %lu, but %zu bytes "
		    "are stored after the id",
		    o, (unsigned long) plen, rest - idb);
		return (EVB_ECORRUPT);
	}
	l->pay_at = WAL_REC_HDR_SIZE + idb;
	l->len    = plen;
	l->id_at  = WAL_REC_HDR_SIZE;
	if (l->flags & WAL_REC_FLAG_ID_AT) {
		size_t at = evb_get_be16(val + WAL_REC_HDR_SIZE);

		if (l->id_len == 0 || at > l->len || l->id_len > l->len - at) {
			evb_diag_set(d,
			    "offset %llu: id of %zu bytes at payload byte "
			    "%zu, expected 1.. bytes inside the %zu-byte "
			    "payload",
			    o, l->id_len, at, l->len);
			return (EVB_ECORRUPT);
		}
		l->id_at = l->pay_at + at;
	}
	return (EVB_OK);
}

int
evb_wal_record_decode(
    uint64_t off, const void *v, size_t len, evb_wal_entry *out, evb_diag *d)
{
	const uint8_t *val = v;
	rec_layout     l;
	uint32_t       want, got;
	int            rc;

	if ((val == NULL && len > 0) || out == NULL) {
		evb_diag_set(d, "record decode: expected a value and an entry");
		return (EVB_EINVAL);
	}
	if ((rc = rec_layout_read(off, val, len, &l, d)) != EVB_OK) {
		return (rc);
	}
	want = evb_get_be32(val + WAL_REC_OFF_CRC);
	got  = evb_wal_crc32c(0, val, WAL_REC_OFF_CRC);
	got  = evb_wal_crc32c(
	     got, val + WAL_REC_OFF_IDLEN, len - WAL_REC_OFF_IDLEN);
	if (got != want) {
		evb_diag_set(d,
		    "offset %llu: CRC-32C mismatch, stored 0x%08lx, "
		    "computed 0x%08lx",
		    (unsigned long long) off, (unsigned long) want,
		    (unsigned long) got);
		return (EVB_ECORRUPT);
	}
	out->off       = off;
	out->flags     = l.flags;
	out->type      = evb_get_be16(val + WAL_REC_OFF_TYPE);
	out->epoch     = evb_get_be64(val + WAL_REC_OFF_EPOCH);
	out->seq       = evb_get_be64(val + WAL_REC_OFF_SEQ);
	out->ts_ns     = (int64_t) evb_get_be64(val + WAL_REC_OFF_TS);
	out->append_ns = (int64_t) evb_get_be64(val + WAL_REC_OFF_APPEND);
	out->id        = l.id_len > 0 ? val + l.id_at : NULL;
	out->id_len    = l.id_len;
	out->payload   = l.len > 0 ? val + l.pay_at : NULL;
	out->len       = l.len;
	return (EVB_OK);
}

int
wal_rec_peek(const uint8_t *val, size_t len, int64_t *ns, const uint8_t **id,
    size_t *id_len)
{
	rec_layout l;

	if (rec_layout_read(0, val, len, &l, NULL) != EVB_OK) {
		return (EVB_ECORRUPT);
	}
	*ns = (int64_t) evb_get_be64(val + WAL_REC_OFF_APPEND);
	if (id != NULL) {
		*id     = val + l.id_at;
		*id_len = l.id_len;
	}
	return (EVB_OK);
}
