/*
 * fuzz_wal_record: libFuzzer target for the WAL record decoder,
 * evb_wal_record_decode (wal/wal.h), which reads whatever LMDB hands back
 * from data.mdb: after a disk error or a bad copy, any bytes at all.
 *
 * The input is one stored value. Besides "no crash, no sanitizer report",
 * it checks, and abort()s when one fails so that libFuzzer saves the
 * input:
 *   - a refused value gives EVB_ECORRUPT, a non-empty diag, and leaves
 *     the entry alone; the answer does not depend on the diag;
 *   - an accepted value has the header's lengths, a payload inside the
 *     input, an id after the header (flags 0) or inside the payload
 *     (flags ID_AT), and encodes back to exactly the input (the id's
 *     place decides its form, so decode then encode is exact);
 *   - the input taken as a payload, with header fields and an id from its
 *     first bytes (the payload's own first bytes, or a copy of them, as
 *     the second byte's low bit says), encodes to a record that decodes
 *     back to the same fields;
 *   - CRC-32C over the input in one call equals the CRC extended over
 *     two pieces split anywhere (the incremental form the decoder uses).
 *
 * tests/unit/wal_corpus_test.c links this file into a criterion test
 * that replays fuzz/corpus/fuzz_wal_record/ in every normal build;
 * fuzz/gen_wal_corpus.py writes the named seeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_wal_record"
#include "fuzz/fuzz_check.h"
#include "wal/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_OFF 7             /* The offset the value is read at. */
#define FUZZ_HDR 45            /* The record header (docs). */
#define FUZZ_ID_AT 0x01        /* Flag: the id is in the payload. */
#define FUZZ_ID_AT_SIZE 2      /* Its place, stored after id_len. */
#define FUZZ_MAX_PAYLOAD 65536 /* Cap for the encode round trip. */

static uint64_t
fuzz_be64(const uint8_t *p, size_t size, size_t at)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 8; i++) {
		v = v << 8 | (at + i < size ? p[at + i] : 0);
	}
	return (v);
}

/* fuzz_decode: the stored-value properties. */
static void
fuzz_decode(const uint8_t *data, size_t size)
{
	evb_wal_entry e, sentinel;
	evb_diag      d = { { 0 } };
	uint8_t      *enc;
	evb_wal_rec   r;
	size_t        idb;
	int           rc, rc2;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	e   = sentinel;
	rc  = evb_wal_record_decode(FUZZ_OFF, data, size, &e, &d);
	rc2 = evb_wal_record_decode(FUZZ_OFF, data, size, &e, NULL);
	fuzz_check(rc == rc2, "the diag changed the answer");
	if (rc != EVB_OK) {
		fuzz_check(rc == EVB_ECORRUPT, "refusal code");
		fuzz_check(d.msg[0] != '\0', "refusal diag");
		fuzz_check(memchr(d.msg, '\0', sizeof(d.msg)) != NULL, "NUL");
		fuzz_check(memcmp(&e, &sentinel, sizeof(e)) == 0,
		    "a refused decode wrote the entry");
		return;
	}
	fuzz_check(e.off == FUZZ_OFF && (e.flags & ~FUZZ_ID_AT) == 0,
	    "offset and flags");
	idb = (e.flags & FUZZ_ID_AT) ? FUZZ_ID_AT_SIZE : e.id_len;
	fuzz_check(size >= FUZZ_HDR + idb && e.id_len <= EVB_WAL_ID_MAX &&
	        e.len == size - FUZZ_HDR - idb,
	    "lengths");
	fuzz_check(e.len == 0
	        ? e.payload == NULL
	        : (const uint8_t *) e.payload == data + FUZZ_HDR + idb,
	    "payload inside the value");
	if (e.flags & FUZZ_ID_AT) {
		fuzz_check(e.id_len > 0 && e.id_len <= e.len &&
		        (const uint8_t *) e.id >= (const uint8_t *) e.payload &&
		        (size_t) ((const uint8_t *) e.id -
		            (const uint8_t *) e.payload) <= e.len - e.id_len,
		    "id inside the payload");
	} else {
		fuzz_check(e.id_len == 0
		        ? e.id == NULL
		        : (const uint8_t *) e.id == data + FUZZ_HDR,
		    "id after the header");
	}
	r = (evb_wal_rec) { e.type, e.epoch, e.seq, e.ts_ns, e.payload, e.len,
		e.id, e.id_len };
	fuzz_check(evb_wal_record_size(&r) == size, "record size");
	if ((enc = malloc(size)) == NULL) {
		return;
	}
	evb_wal_record_encode(enc, &r, e.append_ns);
	fuzz_check(memcmp(enc, data, size) == 0, "decode then encode differs");
	free(enc);
}

/* fuzz_encode: the input as a payload survives encode and decode. */
static void
fuzz_encode(const uint8_t *data, size_t size)
{
	size_t        len = size < FUZZ_MAX_PAYLOAD ? size : FUZZ_MAX_PAYLOAD;
	size_t        idn = size == 0 ? 0 : data[0] % (EVB_WAL_ID_MAX + 1);
	evb_wal_rec   r   = { (uint16_t) fuzz_be64(data, size, 0),
		    fuzz_be64(data, size, 1), fuzz_be64(data, size, 2),
		    (int64_t) fuzz_be64(data, size, 3), data, len, data,
                idn < size ? idn : size };
	int64_t       at  = (int64_t) fuzz_be64(data, size, 4);
	evb_wal_entry e;
	uint8_t      *enc, id[EVB_WAL_ID_MAX];

	if (size > 1 && (data[1] & 1) != 0) {
		memcpy(id, data, r.id_len);
		r.id = id;
	}
	if ((enc = malloc(evb_wal_record_size(&r))) == NULL) {
		return;
	}
	evb_wal_record_encode(enc, &r, at);
	fuzz_check(evb_wal_record_decode(FUZZ_OFF, enc, evb_wal_record_size(&r),
	               &e, NULL) == EVB_OK,
	    "our own record must decode");
	fuzz_check(e.type == r.type && e.epoch == r.epoch && e.seq == r.seq &&
	        e.ts_ns == r.ts_ns && e.append_ns == at && e.len == len &&
	        e.id_len == r.id_len,
	    "fields changed in a round trip");
	fuzz_check(len == 0 || memcmp(e.payload, data, len) == 0, "payload");
	fuzz_check(r.id_len == 0 || memcmp(e.id, data, r.id_len) == 0, "id");
	free(enc);
}

/* fuzz_crc: one call equals two calls split at every 8th place. */
static void
fuzz_crc(const uint8_t *data, size_t size)
{
	uint32_t whole = evb_wal_crc32c(0, data, size);

	for (size_t cut = 0; cut <= size; cut += cut < 16 ? 1 : 8) {
		uint32_t c = evb_wal_crc32c(0, data, cut);

		c = evb_wal_crc32c(c, data + cut, size - cut);
		fuzz_check(c == whole, "CRC split differs");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	fuzz_encode(data, size);
	fuzz_crc(data, size);
	return (0);
}
