#!/usr/bin/env python3
"""Write the named seeds of fuzz/corpus/fuzz_wal_record/.

Each seed is one stored WAL record value (docs/wal-format.md, record
version 4). A name says what it must do, and tests/unit/wal_corpus_test.c
checks it: valid-* decodes, hostile-* is refused with EVB_ECORRUPT.
Needs only the standard library: python3 fuzz/gen_wal_corpus.py
Run it again after a change to the record format.
"""
import os
import struct

VERSION = 4
HDR = 45
ID_AT = 0x01  # flag: the id is in the payload, at the u16 after id_len


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def record(type_, epoch, seq, ts, append, payload, version=VERSION,
           flags=0, length=None, id_=b"", id_len=None, id_at=None):
    """id_at: the id is payload[id_at:id_at + id_len], not stored apart."""
    if length is None:
        length = len(payload)
    if id_len is None:
        id_len = len(id_)
    if id_at is not None:
        flags |= ID_AT
        id_ = struct.pack(">H", id_at)
    head = struct.pack(">BBHQQqqI", version, flags, type_, epoch, seq, ts,
                       append, length)
    tail = bytes([id_len]) + id_ + payload
    crc = crc32c(tail, crc32c(head))
    return head + struct.pack(">I", crc) + tail


def event_302():
    """Stands in for the 302-byte event the benchmarks use."""
    return bytes((i * 131 + 7) & 0xFF for i in range(302))


APPEND = 1764035435123456789
ULID = b"01KAW7Q3ZK8F9V2M4N6P8R0T2W"
# The 302 bytes with a ULID at byte 40, where an envelope would hold it.
EVENT_WITH_ID = event_302()[:40] + ULID + event_302()[40 + len(ULID):]
SEEDS = {
    "valid-empty-payload.rec": record(0, 0, 0, 0, 0, b""),
    "valid-event-302.rec": record(3, 1, 42, APPEND - 1000, APPEND,
                                  event_302(), id_=ULID),
    "valid-event-302-id-at.rec": record(3, 1, 42, APPEND - 1000, APPEND,
                                        EVENT_WITH_ID, id_len=len(ULID),
                                        id_at=40),
    "valid-id-at-whole-payload.rec": record(2, 1, 1, 1, 1, ULID,
                                            id_len=len(ULID), id_at=0),
    "valid-id-max.rec": record(2, 1, 1, 1, 1, b"p", id_=b"i" * 128),
    "valid-id-no-payload.rec": record(2, 1, 1, 1, 1, b"", id_=ULID),
    "valid-extremes.rec": record(0xFFFF, 2**64 - 1, 2**64 - 1, -2**63,
                                 2**63 - 1, b"\x81\xa1k\x01\x00"),
    "valid-negative-times.rec": record(1, 7, 8, -2, -1, b"x" * 9),
    "hostile-short.rec": record(3, 1, 1, 1, 1, b"")[:HDR - 1],
    "hostile-empty.rec": b"",
    "hostile-version-1.rec": record(3, 1, 1, 1, 1, b"abc", version=1),
    "hostile-version-2.rec": record(3, 1, 1, 1, 1, b"abc", version=2),
    "hostile-version-3.rec": record(3, 1, 1, 1, 1, b"abc", version=3),
    "hostile-id-at-past-end.rec": record(3, 1, 1, 1, 1, b"abcdef",
                                         id_len=4, id_at=3),
    "hostile-id-at-far.rec": record(3, 1, 1, 1, 1, b"abcdef", id_len=1,
                                    id_at=0xFFFF),
    "hostile-id-at-no-id.rec": record(3, 1, 1, 1, 1, b"abc", id_len=0,
                                      id_at=0),
    "hostile-id-at-cut.rec": record(3, 1, 1, 1, 1, b"", id_len=1,
                                    id_at=0)[:HDR + 1],
    "hostile-id-too-long.rec": record(3, 1, 1, 1, 1, b"", id_=b"i" * 129),
    "hostile-id-past-end.rec": record(3, 1, 1, 1, 1, b"abc", id_=b"ab",
                                      id_len=6, length=0),
    "hostile-flags.rec": record(3, 1, 1, 1, 1, b"abc", flags=0x80),
    "hostile-length-long.rec": record(3, 1, 1, 1, 1, b"abc", length=4),
    "hostile-length-short.rec": record(3, 1, 1, 1, 1, b"abc", length=2),
    "hostile-length-huge.rec": record(3, 1, 1, 1, 1, b"abc",
                                      length=0xFFFFFFFF),
    "hostile-crc.rec": (lambda r: r[:-1] + bytes([r[-1] ^ 1]))(
        record(3, 1, 42, 5, 6, event_302())),
    "hostile-crc-field.rec": (lambda r: r[:40] + bytes([r[40] ^ 0x80])
                              + r[41:])(record(3, 1, 1, 1, 1, b"abc")),
}


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "corpus", "fuzz_wal_record")
    os.makedirs(here, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(here, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
