/*
 * wal_verify.c: the full check behind `evbus wal verify`. It reads the log
 * through an iterator's raw path (chunked, so it never holds a long read
 * txn against the writer) and checks what the format promises: 8-byte
 * keys, offsets ascending with no gaps, and every record valid per
 * evb_wal_record_decode (size, version, flags, lengths, the id's place,
 * CRC-32C). It keeps going
 * after a problem so that the report counts them all; the diag describes
 * the first.
 */
#include "wal/wal_int.h"

typedef struct verify_state {
	evb_wal_verify_report r;      /* Built up as the scan goes. */
	uint64_t              expect; /* Offset the next key should have. */
	evb_diag             *d;      /* First problem only. */
} verify_state;

/* verify_bad records count bad offsets starting at off. */
static void
verify_bad(verify_state *vs, uint64_t off, uint64_t count)
{
	if (vs->r.bad_count == 0) {
		vs->r.first_bad_off = off;
	}
	vs->r.bad_count += count;
}

static void
verify_one(
    verify_state *vs, uint64_t off, bool key_ok, const uint8_t *val, size_t len)
{
	evb_wal_entry e;
	bool          first = vs->r.bad_count == 0;

	vs->r.record_count++;
	if (!key_ok) {
		if (first) {
			evb_diag_set(vs->d,
			    "a key of the wrong size follows "
			    "offset %llu",
			    (unsigned long long) vs->r.last_off);
		}
		verify_bad(vs, vs->expect, 1);
		return;
	}
	if (vs->r.first_off == 0) {
		vs->r.first_off = off;
	} else if (off != vs->expect) {
		// LMDB keeps keys sorted, so off > expect: a gap.
		if (first) {
			evb_diag_set(vs->d, "offsets %llu..%llu are missing",
			    (unsigned long long) vs->expect,
			    (unsigned long long) off - 1);
		}
		verify_bad(vs, vs->expect, off - vs->expect);
		first = false;
	}
	if (evb_wal_record_decode(off, val, len, &e, first ? vs->d : NULL) !=
	    EVB_OK) {
		verify_bad(vs, off, 1);
	}
	vs->r.last_off = off;
	vs->expect     = off + 1;
}

int
evb_wal_verify(evb_wal *w, evb_wal_verify_report *out, evb_diag *d)
{
	verify_state   vs = { { 0, 0, 0, 0, 0 }, 0, d };
	evb_wal_iter  *it;
	const uint8_t *val;
	uint64_t       off;
	size_t         len;
	bool           key_ok;
	int            rc;

	if (w == NULL || out == NULL) {
		return (EVB_EINVAL);
	}
	if ((rc = evb_wal_iter_open(w, 0, &it)) != EVB_OK) {
		return (rc);
	}
	while (
	    (rc = wal_iter_next_raw(it, &off, &key_ok, &val, &len)) == EVB_OK) {
		verify_one(&vs, off, key_ok, val, len);
	}
	evb_wal_iter_close(it);
	if (rc != EVB_EOF) {
		return (rc);
	}
	*out = vs.r;
	return (vs.r.bad_count == 0 ? EVB_OK : EVB_ECORRUPT);
}
