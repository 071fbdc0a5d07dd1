/*
 * fuzz_check.h: the property check every fuzz target in fuzz/ uses.
 *
 * fuzz_check(x, what) abort()s when x is false, after printing the
 * target's name (FUZZ_TARGET, a string literal the target defines before
 * it includes this header), what failed and the line, so libFuzzer saves
 * the input and a replay in tests/unit/ names the broken property.
 */
#ifndef EVB_FUZZ_CHECK_H
#define EVB_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET (the target's name) before including fuzz_check.h"
#endif

#define fuzz_check(x, what)                            \
	do {                                           \
		if (!(x)) {                            \
			fuzz_fail(what, #x, __LINE__); \
		}                                      \
	} while (0)

static inline _Noreturn void
fuzz_fail(const char *what, const char *expr, int line)
{
	(void) fprintf(
	    stderr, FUZZ_TARGET ": %s: %s (line %d)\n", what, expr, line);
	abort();
}

#endif /* EVB_FUZZ_CHECK_H */
