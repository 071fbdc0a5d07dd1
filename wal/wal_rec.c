/*
 * wal_rec.c: the stored form of one record, a fixed big-endian header and
 * the payload (the layout is drawn in wal_int.h and specified byte by byte
 * in docs/wal-format.md).
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
evb_wal_record_size(size_t len)
{
	return (WAL_REC_HDR_SIZE + len);
}

void
evb_wal_record_encode(uint8_t *dst, const evb_wal_rec *r, int64_t append_ns)
{
	uint32_t crc;

	dst[WAL_REC_OFF_VER]   = WAL_REC_VERSION;
	dst[WAL_REC_OFF_FLAGS] = 0;
	evb_put_be16(dst + WAL_REC_OFF_TYPE, r->type);
	evb_put_be64(dst + WAL_REC_OFF_EPOCH, r->epoch);
	evb_put_be64(dst + WAL_REC_OFF_SEQ, r->seq);
	evb_put_be64(dst + WAL_REC_OFF_TS, (uint64_t) r->ts_ns);
	evb_put_be64(dst + WAL_REC_OFF_APPEND, (uint64_t) append_ns);
	evb_put_be32(dst + WAL_REC_OFF_LEN, (uint32_t) r->len);
	if (r->len > 0) {
		memcpy(dst + WAL_REC_HDR_SIZE, r->payload, r->len);
	}
	// The CRC covers the header up to itself, then the payload, so a
	// flipped bit anywhere in the value is caught.
	crc = evb_wal_crc32c(0, dst, WAL_REC_OFF_CRC);
	crc = evb_wal_crc32c(crc, dst + WAL_REC_HDR_SIZE, r->len);
	evb_put_be32(dst + WAL_REC_OFF_CRC, crc);
}

/* rec_check_header checks what comes before the CRC; EVB_ECORRUPT. */
static int
rec_check_header(uint64_t off, const uint8_t *val, size_t len, evb_diag *d)
{
	unsigned long long o = (unsigned long long) off;
	uint32_t           plen;

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
	plen = evb_get_be32(val + WAL_REC_OFF_LEN);
	if (plen != len - WAL_REC_HDR_SIZE) {
		evb_diag_set(d,
		    "offset %llu: payload length %lu, but %zu bytes "
		    "are stored",
		    o, (unsigned long) plen, len - WAL_REC_HDR_SIZE);
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
	size_t         plen;
	int            rc;

	if ((val == NULL && len > 0) || out == NULL) {
		evb_diag_set(d, "record decode: expected a value and an entry");
		return (EVB_EINVAL);
	}
	if ((rc = rec_check_header(off, val, len, d)) != EVB_OK) {
		return (rc);
	}
	plen = len - WAL_REC_HDR_SIZE;
	want = evb_get_be32(val + WAL_REC_OFF_CRC);
	got  = evb_wal_crc32c(0, val, WAL_REC_OFF_CRC);
	got  = evb_wal_crc32c(got, val + WAL_REC_HDR_SIZE, plen);
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
	out->payload   = plen > 0 ? val + WAL_REC_HDR_SIZE : NULL;
	out->len       = plen;
	return (EVB_OK);
}

int
wal_rec_append_ns(const uint8_t *val, size_t len, int64_t *ns)
{
	if (len < WAL_REC_HDR_SIZE || val[WAL_REC_OFF_VER] != WAL_REC_VERSION) {
		return (EVB_ECORRUPT);
	}
	*ns = (int64_t) evb_get_be64(val + WAL_REC_OFF_APPEND);
	return (EVB_OK);
}
