/*
 * proto_buf.c: the growable byte buffer the encoders append to.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/proto_int.h"

#define BUF_MIN_CAP 256 /* First allocation; most events fit. */

void
evb_buf_init(evb_buf *b)
{
	b->data = NULL;
	b->len  = 0;
	b->cap  = 0;
}

void
evb_buf_fini(evb_buf *b)
{
	free(b->data);
	evb_buf_init(b);
}

void
evb_buf_reset(evb_buf *b)
{
	b->len = 0;
}

int
proto_buf_reserve(evb_buf *b, size_t n)
{
	if (n > b->cap - b->len) {
		size_t   cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
		uint8_t *nd;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				return (EVB_ENOMEM);
			}
			cap *= 2;
		}
		if ((nd = realloc(b->data, cap)) == NULL) {
			return (EVB_ENOMEM);
		}
		b->data = nd;
		b->cap  = cap;
	}
	return (EVB_OK);
}

int
evb_buf_append(evb_buf *b, const void *p, size_t n)
{
	if (proto_buf_reserve(b, n) != EVB_OK) {
		return (EVB_ENOMEM);
	}
	if (n > 0) {
		memcpy(b->data + b->len, p, n);
	}
	b->len += n;
	return (EVB_OK);
}

int
proto_buf_write(void *data, const char *buf, size_t len)
{
	// msgpack-c's packer treats any non-zero return as a failure and
	// passes it through to the caller of msgpack_pack_*.
	return (evb_buf_append(data, buf, len) == EVB_OK ? 0 : -1);
}
