/*
 * wal_crc_test: CRC-32C, the record checksum (evb_wal_crc32c, wal/wal.h),
 * against an independent bit-at-a-time reference over many lengths and
 * alignments, so that every tail of the 8-byte loops, every lane length
 * of the three-lane path (up to 256 bytes a lane) and runs of more than
 * one set of lanes are covered.
 *
 * This file builds twice (tests/unit/CMakeLists.txt): wal_crc_test links
 * evb_wal and checks the path the CPU picks (the crc32 instruction on
 * x86-64 with SSE4.2); wal_crc_portable_test compiles wal/wal_crc.c with
 * EVB_WAL_CRC_PORTABLE and checks the slicing-by-8 tables that every
 * other CPU uses.
 */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "tests/support/wal_testlib.h"
#include "wal/wal.h"

TestSuite(wal_crc, .timeout = 30);

Test(wal_crc, check_value_of_123456789)
{
	cr_assert_eq(
	    wtl_ref_crc32c(0, (const uint8_t *) "123456789", 9), 0xE3069283u);
	cr_assert_eq(evb_wal_crc32c(0, "123456789", 9), 0xE3069283u);
	cr_assert_eq(evb_wal_crc32c(0, "", 0), 0);
}

Test(wal_crc, matches_the_reference_at_every_length_and_alignment)
{
	uint8_t  buf[1700];
	uint64_t x = 0x9E3779B97F4A7C15ull;

	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t) x;
	}
	for (size_t start = 0; start < 8; start++) {
		for (size_t len = 0; len + start <= sizeof(buf); len++) {
			cr_assert_eq(evb_wal_crc32c(0, buf + start, len),
			    wtl_ref_crc32c(0, buf + start, len),
			    "start %zu, length %zu", start, len);
		}
	}
	// Extending over pieces equals one pass.
	cr_assert_eq(evb_wal_crc32c(evb_wal_crc32c(0, buf, 13), buf + 13,
	                 sizeof(buf) - 13),
	    wtl_ref_crc32c(0, buf, sizeof(buf)));
}
