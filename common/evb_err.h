/*
 * evb_err: the one error enum of evbus, shared by every component and by
 * libevbus (this header is installed with the client library).
 *
 * Codes are stable: add new ones at the end, never renumber. Every code is
 * described in docs/errors.md with what to do about it. Functions return
 * EVB_OK (0) or one of these; results travel through out-params.
 *
 * Thread-safety: everything here is reentrant.
 */
#ifndef EVB_ERR_H
#define EVB_ERR_H

typedef enum evb_err {
	EVB_OK         = 0,  /* Success. */
	EVB_EINVAL     = 1,  /* Invalid argument (a caller's mistake). */
	EVB_ENOMEM     = 2,  /* Out of memory. */
	EVB_EMALFORMED = 3,  /* Bytes are not well-formed MessagePack/JSON. */
	EVB_ESCHEMA    = 4,  /* Well-formed, but the event breaks its schema. */
	EVB_ETOOBIG    = 5,  /* Input exceeds a documented limit. */
	EVB_ENOTFOUND  = 6,  /* No such object (cursor, record, file). */
	EVB_EEXIST     = 7,  /* Object already exists. */
	EVB_ECLOSED    = 8,  /* Handle or socket is closed. */
	EVB_ETIMEDOUT  = 9,  /* Deadline passed. */
	EVB_EFULL      = 10, /* Storage is full (map or disk). */
	EVB_ECORRUPT   = 11, /* Stored data fails its checksum or format. */
	EVB_EBUSY      = 12, /* Resource in use (a lock, a writer). */
	EVB_EAGAIN     = 13, /* Try again later (no data yet, would block). */
	EVB_EVERSION   = 14, /* Unknown format version. */
	EVB_ETRANSPORT = 15, /* Network transport failure (see the diag). */
	EVB_ESTORAGE   = 16, /* Storage engine failure (see the diag). */
	EVB_EUSAGE     = 17, /* Bad command-line usage. */
	EVB_EOF        = 18, /* End of input or of an iteration. */
	/*
	 * An OS errno e is reported as EVB_ESYSERR + e, like NNG_ESYSERR.
	 */
	EVB_ESYSERR = 0x10000000,
} evb_err;

/*
 * evb_strerror returns a static, human-readable message for err. It never
 * returns NULL: unknown codes give "Unknown error".
 */
const char *evb_strerror(int err);

#endif /* EVB_ERR_H */
