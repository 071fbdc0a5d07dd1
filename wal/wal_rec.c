/*
 * wal_rec.c: the stored form of one record, a fixed big-endian header, the
 * event id and the payload (the layout is drawn in wal_int.h and specified
 * byte by byte in docs/wal-format.md). The id is in the record so that the
 * duplicate window can be rebuilt from the log alone (wal_dedup.c).
 *
 * Every reader that hands a record out goes through evb_wal_record_decode,
 * which trusts nothing in the value: it checks the size before reading the
 * header, the version and flags before the length, and the length before
 * the CRC. What must change with the encoder: evb_wal_record_decode,
 * wal_rec_append_ns, evb_wal_verify, docs/wal-format.md, the byte-exact
 * test and the fuzz corpus (fuzz/gen_wal_corpus.py).
 */
#include <string.h>

#include "wal/wal_int.h"

size_t
evb_wal_record_size(size_t id_len, size_t len)
{
	return (WAL_REC_HDR_SIZE + id_len + len);
}

void
evb_wal_record_encode(uint8_t *dst, const evb_wal_rec *r, int64_t append_ns)
{
	uint8_t *id = dst + WAL_REC_HDR_SIZE;
	uint32_t crc;

	dst[WAL_REC_OFF_VER]   = WAL_REC_VERSION;
	dst[WAL_REC_OFF_FLAGS] = 0;
	evb_put_be16(dst + WAL_REC_OFF_TYPE, r->type);
	evb_put_be64(dst + WAL_REC_OFF_EPOCH, r->epoch);
	evb_put_be64(dst + WAL_REC_OFF_SEQ, r->seq);
	evb_put_be64(dst + WAL_REC_OFF_TS, (uint64_t) r->ts_ns);
	evb_put_be64(dst + WAL_REC_OFF_APPEND, (uint64_t) append_ns);
	evb_put_be32(dst + WAL_REC_OFF_LEN, (uint32_t) r->len);
	dst[WAL_REC_OFF_IDLEN] = (uint8_t) r->id_len;
	if (r->id_len > 0) {
		memcpy(id, r->id, r->id_len);
	}
	if (r->len > 0) {
		memcpy(id + r->id_len, r->payload, r->len);
	}
	// The CRC covers the header up to itself, then everything after it
	// (id length, id, payload), so a flipped bit anywhere is caught.
	crc = evb_wal_crc32c(0, dst, WAL_REC_OFF_CRC);
	crc = evb_wal_crc32c(
	    crc, dst + WAL_REC_OFF_IDLEN, 1 + r->id_len + r->len);
	evb_put_be32(dst + WAL_REC_OFF_CRC, crc);
}

/* rec_check_header checks what comes before the CRC; EVB_ECORRUPT. */
static int
rec_check_header(uint64_t off, const uint8_t *val, size_t len, evb_diag *d)
{
	unsigned long long o = (unsigned long long) off;
	uint32_t           plen;
	size_t             id_len;

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
	if ((val[WAL_REC_OFF_FLAGS] & ~WAL_REC_FLAGS_KNOWN) != 0) {
		evb_diag_set(d, "offset %llu: unknown record flags 0x%02x", o,
		    val[WAL_REC_OFF_FLAGS]);
		return (EVB_ECORRUPT);
	}
	id_len = val[WAL_REC_OFF_IDLEN];
	if (id_len > EVB_WAL_ID_MAX || id_len > len - WAL_REC_HDR_SIZE) {
		evb_diag_set(d,
		    "offset %llu: id length %zu, expected <= %d and <= the "
		    "%zu bytes after the header",
		    o, id_len, EVB_WAL_ID_MAX, len - WAL_REC_HDR_SIZE);
		return (EVB_ECORRUPT);
	}
	plen = evb_get_be32(val + WAL_REC_OFF_LEN);
	if (plen != len - WAL_REC_HDR_SIZE - id_len) {
		evb_diag_set(d,
		    "offset %llu: payload length %lu, but %zu bytes "
		    "are stored after the id",
		    o, (unsigned long) plen, len - WAL_REC_HDR_SIZE - id_len);
		return (EVB_ECORRUPT);
	}
	return (EVB_OK);
}

int
evb_wal_record_decode(
    uint64_t off, const void *v, size_t len, evb_wal_entry *out, evb_diag *d)
{
	const uint8_t *val = v;
	uint32_t       want, got;
	size_t         id_len, plen;
	int            rc;

	if ((val == NULL && len > 0) || out == NULL) {
		evb_diag_set(d, "record decode: expected a value and an entry");
		return (EVB_EINVAL);
	}
	if ((rc = rec_check_header(off, val, len, d)) != EVB_OK) {
		return (rc);
	}
	id_len = val[WAL_REC_OFF_IDLEN];
	plen   = len - WAL_REC_HDR_SIZE - id_len;
	want   = evb_get_be32(val + WAL_REC_OFF_CRC);
	got    = evb_wal_crc32c(0, val, WAL_REC_OFF_CRC);
	got    = evb_wal_crc32c(
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
	out->flags     = val[WAL_REC_OFF_FLAGS];
	out->type      = evb_get_be16(val + WAL_REC_OFF_TYPE);
	out->epoch     = evb_get_be64(val + WAL_REC_OFF_EPOCH);
	out->seq       = evb_get_be64(val + WAL_REC_OFF_SEQ);
	out->ts_ns     = (int64_t) evb_get_be64(val + WAL_REC_OFF_TS);
	out->append_ns = (int64_t) evb_get_be64(val + WAL_REC_OFF_APPEND);
	out->id        = id_len > 0 ? val + WAL_REC_HDR_SIZE : NULL;
	out->id_len    = id_len;
	out->payload   = plen > 0 ? val + WAL_REC_HDR_SIZE + id_len : NULL;
	out->len       = plen;
	return (EVB_OK);
}

int
wal_rec_peek(const uint8_t *val, size_t len, int64_t *ns, const uint8_t **id,
    size_t *id_len)
{
	size_t n;

	if (len < WAL_REC_HDR_SIZE || val[WAL_REC_OFF_VER] != WAL_REC_VERSION) {
		return (EVB_ECORRUPT);
	}
	n = val[WAL_REC_OFF_IDLEN];
	if (n > EVB_WAL_ID_MAX || n > len - WAL_REC_HDR_SIZE) {
		return (EVB_ECORRUPT);
	}
	*ns = (int64_t) evb_get_be64(val + WAL_REC_OFF_APPEND);
	if (id != NULL) {
		*id     = val + WAL_REC_HDR_SIZE;
		*id_len = n;
	}
	return (EVB_OK);
}
