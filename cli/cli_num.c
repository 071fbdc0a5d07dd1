/*
 * cli_num.c: option values that are numbers: counts, milliseconds and
 * byte sizes. One parser, so every command refuses "12x", "-1" and
 * overflow the same way and names the option that was wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "cli/cli.h"

/*
 * num_read parses decimal digits at text and an optional K, M or G
 * (powers of 1024) when has_suffix. Returns false unless the whole text
 * is that, without overflow.
 */
static bool
num_read(const char *text, bool has_suffix, uint64_t *out)
{
	char              *end;
	unsigned long long v;
	unsigned           shift = 0;

	if (!isdigit((unsigned char) text[0])) {
		return false;
	}
	errno = 0;
	v     = strtoull(text, &end, 10);
	if (errno != 0) {
		return false;
	}
	if (has_suffix && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'K':
		case 'k':
			shift = 10;
			break;
		case 'M':
		case 'm':
			shift = 20;
			break;
		case 'G':
		case 'g':
			shift = 30;
			break;
		default:
			return false;
		}
		end++;
	}
	if (*end != '\0' || (shift > 0 && v > (UINT64_MAX >> shift))) {
		return false;
	}
	*out = (uint64_t) v << shift;
	return true;
}

/* num_parse is cli_parse_u64 and cli_parse_bytes. */
static int
num_parse(const cli_cmd *cmd, const char *name, const char *text,
    bool has_suffix, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (!num_read(text, has_suffix, &v)) {
		return cli_usage_error(cmd, "--%s: expected %s, got '%s'", name,
		    has_suffix ? "a size in bytes (e.g. 4096, 64K, 4M)"
		               : "a non-negative integer",
		    text);
	}
	if (v < min || v > max) {
		return cli_usage_error(cmd,
		    "--%s: expected %llu..%llu, got '%s'", name,
		    (unsigned long long) min, (unsigned long long) max, text);
	}
	*out = v;
	return CLI_CONTINUE;
}

int
cli_parse_u64(const cli_cmd *cmd, const char *name, const char *text,
    uint64_t min, uint64_t max, uint64_t *out)
{
	return num_parse(cmd, name, text, false, min, max, out);
}

int
cli_parse_bytes(const cli_cmd *cmd, const char *name, const char *text,
    uint64_t min, uint64_t max, uint64_t *out)
{
	return num_parse(cmd, name, text, true, min, max, out);
}
