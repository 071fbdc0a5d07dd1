#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_proto_decode (see fuzz/README.md).

Run from the repository top with Debian's python3-msgpack installed
(scripts/install-deps.sh):  python3 fuzz/gen_corpus.py

The output is committed. File names say what each seed must do, and
tests/unit/proto_corpus_test.c checks it: valid-* decode as one event,
batch-* are ingest arrays, frame-* decode as bus frames, hostile-* are
refused. Rerunning the script rewrites these files only; inputs that
libFuzzer found (crash-*, hashes) are left alone.
"""
import os
import struct
import sys

import msgpack

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "corpus", "fuzz_proto_decode")

# One event per type, every optional field set, in the type table's order.
EVENTS = [
    {"type": "signal_generated", "id": "ev-1", "ts": 1764035435123456789,
     "source": "scanner", "corr": "c-1",
     "data": {"signal_id": "sig-1", "symbol": "EURUSD", "direction": "BUY",
              "confidence": 75.5, "pattern_type": "flag",
              "entry_price": 1.0842, "stop_loss": 1.0811,
              "take_profit": 1.0901, "timeframe": "H1"}},
    {"type": "fire_command",
     "data": {"command_id": "cmd-1", "user_id": "u-1", "signal_id": "sig-1",
              "symbol": "GBPUSD", "direction": "SELL", "volume": 100,
              "stop_loss": 1.2711, "take_profit": 1.2601}},
    {"type": "trade_executed", "ts": 42,
     "data": {"ticket": 2**40, "user_id": "u-1", "symbol": "XAU_USD",
              "direction": "BUY", "volume": 0.75, "price": 2034.55,
              "signal_id": "sig-1", "command_id": "cmd-1",
              "commission": -3, "slippage_pips": 0.25}},
    {"type": "balance_update", "x_env": "kept",
     "data": {"user_id": "u-1", "balance": -12.5, "equity": 0,
              "account_id": "acc-7", "margin": 0, "currency": "USD"}},
    {"type": "system_health", "seq": 2**63 - 1, "epoch": 3,
     "data": {"component": "collector", "status": "degraded",
              "cpu_percent": 100, "memory_mb": 512.25, "uptime_s": 3600,
              "message": "lagging \u00e9"}},
    {"type": "user_action",
     "data": {"user_id": "u-2", "action": "settings",
              "details": {"theme": "dark", "lots": [1, 2.5, "x", None, True],
                          "nested": {"a": {"b": False}}}}},
    {"type": "market_data",
     "data": {"symbol": "BRK.B", "bid": 412.5, "ask": 412.5, "volume": 0}},
    {"type": "pattern_detected",
     "data": {"symbol": "US500", "pattern_type": "double_top",
              "confidence": 0, "timeframe": "MN1", "direction": "SELL"}},
]

BAD = {"type": "fire_command",
       "data": {"command_id": "c", "user_id": "u", "signal_id": "s",
                "symbol": "EURUSD", "direction": "BUY", "volume": 250}}


def bin_keys(o):
    """The same value with every map key as bytes (packed as bin)."""
    if isinstance(o, dict):
        return {k.encode(): bin_keys(v) for k, v in o.items()}
    if isinstance(o, list):
        return [bin_keys(v) for v in o]
    return o


def pack(o, **kw):
    return msgpack.packb(o, use_bin_type=kw.pop("bin_type", True), **kw)


def seeds():
    s = {}
    for i, ev in enumerate(EVENTS):
        # Vary the encoder's choices across the seeds.
        if i % 3 == 1:
            b = pack(bin_keys(ev))
        elif i % 3 == 2:
            b = pack(ev, bin_type=False, use_single_float=True)
        else:
            b = pack(ev)
        s["valid-%s.mp" % ev["type"]] = b
    s["batch-every-type.mp"] = pack(EVENTS)
    s["batch-bad-in-middle.mp"] = pack([EVENTS[6], BAD, EVENTS[0]])
    md = dict(EVENTS[6], seq=7, epoch=1)
    s["frame-market_data.bin"] = b"market_data.BRK.B\x00" + pack(md)
    ua = dict(EVENTS[5], seq=8, epoch=1)
    s["frame-user_action.bin"] = b"user_action.u-2\x00" + pack(ua)

    good = pack(EVENTS[6])
    s["hostile-truncated.mp"] = good[:len(good) // 2]
    s["hostile-trailing.mp"] = good + b"\xc0"
    s["hostile-map32.mp"] = b"\xdf\xff\xff\xff\xff\xa1a\x01"
    s["hostile-str32.mp"] = (b"\x82\xa4type\xabmarket_data\xa4data\x84"
                             b"\xa6symbol\xa6EURUSD\xa3bid\x01\xa3ask\x02"
                             b"\xa1x\xdb\xff\xff\xff\xff")
    s["hostile-array32-batch.mp"] = b"\xdd\xff\xff\xff\xff\x80"
    s["hostile-deep.mp"] = b"\x91" * 200 + b"\x90"
    s["hostile-nan.mp"] = (b"\x82\xa4type\xabmarket_data\xa4data\x83"
                           b"\xa6symbol\xa6EURUSD\xa3bid\xcb"
                           + struct.pack(">d", float("nan"))
                           + b"\xa3ask\x02")
    s["hostile-int-key.mp"] = (b"\x82\xa4type\xabuser_action\xa4data\x83"
                               b"\xa7user_id\xa1u\xa6action\xa1a\x07\xc3")
    s["hostile-bad-utf8.mp"] = (b"\x82\xa4type\xabuser_action\xa4data\x82"
                                b"\xa7user_id\xa2\xc0\x80\xa6action\xa1a")
    s["hostile-dup-key.mp"] = (b"\x83\xa4type\xabuser_action\xa4type"
                               b"\xabmarket_data\xa4data\x82\xa7user_id"
                               b"\xa1u\xa6action\xa1a")
    s["hostile-ext.mp"] = (b"\x83\xa4type\xabuser_action\xa2ts\xd6\xff"
                           b"\x00\x00\x00\x01\xa4data\x82\xa7user_id\xa1u"
                           b"\xa6action\xa1a")
    s["hostile-schema.mp"] = pack(BAD)
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    total = sum(len(d) for d in seeds().values())
    sys.stdout.write("%d seeds, %d bytes in %s\n"
                     % (len(seeds()), total, os.path.relpath(OUT)))


if __name__ == "__main__":
    main()
