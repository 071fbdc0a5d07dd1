/*
 * evb_mem.c: memory for large preallocated tables (common.h, "Large
 * tables").
 *
 * Why fault it in at once: in a VM a page's first touch also costs the
 * host's allocation, and a table touched as it fills makes the hot path
 * pay that a page at a time. The WAL's duplicate window (24 MiB at its
 * default) cost about 70 ns of system time per id over its first million
 * ids that way, and the broker's 256 MiB ring cost the ingest thread a
 * tenth of its time over its first fill (docs/benchmarks.md). Touching it
 * here moves that cost to open, once.
 *
 * Why huge pages: probes of a hash index land anywhere, so with 4 KiB
 * pages nearly every probe of a large one also misses the TLB, and in a
 * VM a page walk costs dozens of memory reads. madvise is only a hint:
 * without transparent huge pages it changes nothing but speed, so its
 * failure is ignored.
 *
 * The cost at open, measured for a 256 MiB ring: 30-50 ms when the host
 * has backed that memory before, up to 0.5 s on a VM's first use of it
 * (which the hot path would otherwise pay over the ring's first fill).
 */
// MAP_ANONYMOUS and madvise are not POSIX; glibc shows them with this.
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/common.h"

void *
evb_mem_table_new(size_t bytes)
{
	void *p;

	if (bytes < EVB_MEM_HUGE_MIN) {
		return calloc(1, bytes);
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		return NULL;
	}
	(void) madvise(p, bytes, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
	// The kernel faults it in and zeroes it once; the memset below would
	// zero it a second time. Kernels before 5.14 refuse the advice.
	if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) {
		return p;
	}
#endif
	memset(p, 0, bytes);
	return p;
}

void
evb_mem_table_free(void *p, size_t bytes)
{
	if (p == NULL) {
		return;
	}
	if (bytes < EVB_MEM_HUGE_MIN) {
		free(p);
	} else {
		(void) munmap(p, bytes);
	}
}
