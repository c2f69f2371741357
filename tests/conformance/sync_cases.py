"""The conformance corpus of the sync and fetch stream messages: docs/conformance/sync.json.

Deterministic: every case is built from constants here. Expected verdicts, error codes and
decoded forms are written down from the rules of docs/sync.md (never computed by running our
decoders, which tests/conformance/test_sync_corpus.py checks against them).

    .venv/bin/python -m tests.conformance.sync_cases      # rewrites docs/conformance/sync.json

JSON forms (docs/sync.md, "Conformance corpus"): a byte string is lowercase hex when it is at
most `INLINE_BYTES` long, else ``{"length": n, "sha256": hex}``. A case's message bytes are
``hex`` with, for each ``[at, count]`` of the optional ``zeros``, ``count`` 0x00 bytes inserted
before byte ``at`` of ``hex``, and for each ``[at, count, unit]`` of the optional ``repeats``,
``count`` copies of the bytes ``unit`` (hex) inserted there (keeps huge messages small in the
file). A reconciliation case names the protocol versions whose limits it is judged under
(``protocols``): most hold under both, the caps of 1.0.0 and 1.1.0 differ.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path
from typing import Any

import msgpack

from p2p.framing import END_MARKER, MAX_FRAME
from protocols.limits import MAX_OBJECT_BYTES
from protocols.reconcile_limits import (
    MAX_RANGES_PER_MESSAGE_1_1,
    SYNC_PROTOCOL_ID_1_0,
    SYNC_PROTOCOL_ID_1_1,
    V1_1,
)
from protocols.reconcile_store import INFINITY, MAX_TS
from protocols.reconcile_wire import (
    IDLIST_THRESHOLD,
    MAX_IDS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    MAX_RANGES_PER_MESSAGE,
    MAX_ROUNDS,
    Message,
    Mode,
    Range,
    encode_message,
)
from protocols.sync_messages import (
    MAX_CONTROL_BYTES,
    MAX_FETCH_FRAME_BYTES,
    MAX_FETCH_IDS,
    MAX_FETCH_REQUEST_BYTES,
    MAX_OBJECTS_PER_BATCH,
)

FORMAT = "percolab-conformance-sync/2"
PATH = Path(__file__).resolve().parents[2] / "docs" / "conformance" / "sync.json"
INLINE_BYTES = 64
ZERO_RUN = 64  # runs of at least this many 0x00 bytes are written as "zeros"
DOC = "docs/sync.md §"
SCOPE = bytes(range(32))
SALT = bytes(16)
BOTH = [SYNC_PROTOCOL_ID_1_0, SYNC_PROTOCOL_ID_1_1]  # judged alike under both versions
ONLY_1_0 = [SYNC_PROTOCOL_ID_1_0]
ONLY_1_1 = [SYNC_PROTOCOL_ID_1_1]


def pk(value: Any) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def bytes_json(data: bytes) -> Any:
    if len(data) <= INLINE_BYTES:
        return data.hex()
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def expand(case: dict[str, Any]) -> bytes:
    """The message bytes of a case (``hex`` plus its ``zeros`` and ``repeats`` runs)."""
    data = bytes.fromhex(case["hex"])
    runs = [(at, bytes(count)) for at, count in case.get("zeros", [])]
    runs += [(at, bytes.fromhex(unit) * count) for at, count, unit in case.get("repeats", [])]
    out, prev = bytearray(), 0
    for at, run in sorted(runs, key=lambda r: r[0]):
        out += data[prev:at] + run
        prev = at
    return bytes(out + data[prev:])


def compress(data: bytes) -> tuple[bytes, list[list[int]]]:
    """``data`` without its long runs of zero bytes, and where they go (inverse of expand)."""
    kept, zeros, prev = bytearray(), [], 0
    for run in re.finditer(b"\x00{%d,}" % ZERO_RUN, data):
        kept += data[prev : run.start()]
        zeros.append([len(kept), run.end() - run.start()])
        prev = run.end()
    return bytes(kept + data[prev:]), zeros


def bound_json(bound: tuple[int, bytes]) -> list[Any]:
    return [bound[0], bound[1].hex()]


def message_json(msg: Message) -> dict[str, Any]:
    """JSON form of a reconciliation message (absolute bounds, payloads as bytes)."""
    ranges = []
    for r in msg.ranges:
        item: dict[str, Any] = {"mode": r.mode.name, "upper": bound_json(r.upper)}
        if r.mode == Mode.DIFF:
            item["bitmap"] = bytes_json(r.bitmap)
        if r.mode != Mode.SKIP:
            item["payload"] = bytes_json(r.data)
        ranges.append(item)
    salt = None if msg.salt is None else msg.salt.hex()
    return {"index": msg.index, "lower": bound_json(msg.lower), "ranges": ranges, "salt": salt}


class Corpus:
    def __init__(self) -> None:
        self.cases: list[dict[str, Any]] = []

    def add(
        self, message: str, name: str, rule: str, data: bytes, *, ok: Any = None,
        error: str | None = None, protocols: list[str] | None = None,
        repeat: tuple[int, int, bytes] | None = None,
    ) -> None:  # fmt: skip
        """``repeat``: (at, count, unit): ``data`` holds ``count`` copies of ``unit`` from
        byte ``at``, written as one ``repeats`` run."""
        assert (ok is None) != (error is None), name
        assert (message == "reconcile") == (protocols is not None), name
        repeats = []
        if repeat is not None:
            at, count, unit = repeat
            assert data[at : at + count * len(unit)] == unit * count, name
            data = data[:at] + data[at + count * len(unit) :]
            repeats = [[at, count, unit.hex()]]
        kept, zeros = compress(data)
        assert not (zeros and repeats), name  # one kind of run per case keeps `at` simple
        case: dict[str, Any] = {"name": name, "rule": DOC + rule, "message": message,
                                "hex": kept.hex()}  # fmt: skip
        if protocols is not None:
            case["protocols"] = protocols
        if zeros:
            case["zeros"] = zeros
        if repeats:
            case["repeats"] = repeats
        case["verdict"] = "error" if error else "ok"
        if error:
            case["error"] = error
        else:
            case["decoded"] = ok
        self.cases.append(case)


def header(length: int) -> bytes:
    return struct.pack(">I", length)


def frames(c: Corpus) -> None:
    end = header(END_MARKER)
    rule = "Framing"

    def ok(name: str, *payloads: bytes) -> None:
        data = b"".join(header(len(p)) + p for p in payloads) + end
        c.add("frame", name, rule, data, ok={"frames": [bytes_json(p) for p in payloads]})

    ok("END alone (an empty stream of frames)")
    ok("an empty DATA frame is allowed", b"")
    ok("one DATA frame then END", b"abc")
    ok("several frames then END", b"\x01", b"", b"x" * 100)
    ok("a DATA frame of exactly MAX_FRAME bytes is allowed", bytes(MAX_FRAME))
    for length in (MAX_FRAME + 1, 0x7FFFFFFF, END_MARKER - 1):
        c.add("frame", f"length {length:#x} > MAX_FRAME: rejected on the header", rule,
              header(length), error="frame_too_large")  # fmt: skip
    c.add("frame", "MAX_FRAME + 1 with its payload present", rule,
          header(MAX_FRAME + 1) + bytes(MAX_FRAME + 1) + end, error="frame_too_large")  # fmt: skip
    truncated = [
        ("no bytes at all: EOF before END", b""),
        ("EOF after a DATA frame, before END", header(1) + b"a"),
        ("EOF inside a header", b"\x00\x00\x00"),
        ("EOF inside a payload", header(5) + b"hi"),
        ("EOF inside the END marker", b"\xff\xff\xff"),
        ("length MAX_FRAME is accepted, then EOF before its payload", header(MAX_FRAME)),
    ]
    for name, data in truncated:
        c.add("frame", name, rule, data, error="truncated")


def open_json(scope: bytes, lower: int, upper: int) -> dict[str, Any]:
    return {"scope": scope.hex(), "lower_ts": lower, "upper_ts": upper}


def control(c: Corpus) -> None:
    rule = "SyncOpen"
    so = "sync_open"
    for lo, hi in ((0, MAX_TS), (0, 1), (MAX_TS - 1, MAX_TS), (500, 1000)):
        c.add(so, f"window [{lo}, {hi})", rule, pk([1, SCOPE, lo, hi]), ok=open_json(SCOPE, lo, hi))
    c.add(so, "public scope (32 zero bytes)", rule, pk([1, bytes(32), 0, MAX_TS]),
          ok=open_json(bytes(32), 0, MAX_TS))  # fmt: skip
    wide = (
        b"\x94\xcf"
        + (1).to_bytes(8, "big")
        + b"\xc5\x00\x20"
        + SCOPE
        + b"\xcc\x05\xd2\x00\x00\x00\x06"
    )
    c.add(so, "any msgpack int and bin encoding (uint64 version, bin16 scope, int32 ts)", rule,
          wide, ok=open_json(SCOPE, 5, 6))  # fmt: skip
    bad = [
        (
            "too_large",
            f"{MAX_CONTROL_BYTES + 1} bytes (over MAX_CONTROL_BYTES)",
            bytes(MAX_CONTROL_BYTES + 1),
        ),
        (
            "undecodable",
            f"exactly MAX_CONTROL_BYTES ({MAX_CONTROL_BYTES}) bytes: parsed, not too_large",
            bytes(MAX_CONTROL_BYTES),
        ),
        ("undecodable", "empty", b""),
        ("undecodable", "reserved byte 0xc1", b"\xc1"),
        ("undecodable", "a byte after the value", pk([1, SCOPE, 0, 10]) + b"\x00"),
        ("undecodable", "str scope", pk([1, "s" * 32, 0, 10])),
        ("undecodable", "empty str scope", pk([1, "", 0, 10])),
        ("undecodable", "nil upper_ts", pk([1, SCOPE, 0, None])),
        ("undecodable", "bool version", pk([True, SCOPE, 0, 10])),
        ("undecodable", "float lower_ts", pk([1, SCOPE, 0.0, 10])),
        ("undecodable", "a map", pk({b"v": 1})),
        ("undecodable", "an empty map as scope", pk([1, {}, 0, 10])),
        ("undecodable", "ext value", b"\x94\x01\xd4\x01\x00\x00\x0a"),
        ("undecodable", "arrays nested 4 deep (MAX_NESTING is 3)", pk([1, [[[SCOPE]]], 0, 10])),
        ("bad_shape", "3 fields", pk([1, SCOPE, 0])),
        ("bad_shape", "5 fields", pk([1, SCOPE, 0, 10, 0])),
        ("bad_shape", "an int, not an array", pk(1)),
        ("bad_version", "version 0", pk([0, SCOPE, 0, 10])),
        ("bad_version", "version 2", pk([2, SCOPE, 0, 10])),
        ("bad_version", "version -1", pk([-1, SCOPE, 0, 10])),
        ("bad_scope", "31-byte scope", pk([1, SCOPE[:31], 0, 10])),
        ("bad_scope", "33-byte scope", pk([1, SCOPE + b"\x00", 0, 10])),
        ("bad_scope", "empty scope", pk([1, b"", 0, 10])),
        ("bad_scope", "int scope", pk([1, 7, 0, 10])),
        ("bad_scope", "scope in arrays nested 3 deep", pk([1, [[SCOPE]], 0, 10])),
        ("bad_timestamp", "lower_ts -1", pk([1, SCOPE, -1, 10])),
        ("bad_timestamp", "upper_ts MAX_TS + 1", pk([1, SCOPE, 0, MAX_TS + 1])),
        ("bad_timestamp", "upper_ts 2^64 - 1", pk([1, SCOPE, 0, 2**64 - 1])),
        ("bad_timestamp", "lower_ts as bin", pk([1, SCOPE, b"\x00", 10])),
        ("bad_window", "lower_ts == upper_ts", pk([1, SCOPE, 10, 10])),
        ("bad_window", "lower_ts > upper_ts", pk([1, SCOPE, 11, 10])),
        ("bad_window", "lower_ts == upper_ts == MAX_TS", pk([1, SCOPE, MAX_TS, MAX_TS])),
    ]
    for code, name, data in bad:
        c.add(so, name, rule, data, error=code)
    rule = "SyncAccept"
    for status in (0, 1, 2):
        c.add("sync_accept", f"status {status}", rule, pk([1, status]), ok={"status": status})
    bad = [
        ("too_large", "over MAX_CONTROL_BYTES", bytes(MAX_CONTROL_BYTES + 1)),
        ("undecodable", "empty", b""),
        ("undecodable", "nil status", pk([1, None])),
        ("bad_shape", "1 field", pk([1])),
        ("bad_shape", "3 fields", pk([1, 0, 0])),
        ("bad_version", "version 2", pk([2, 0])),
        ("bad_status", "status 3", pk([1, 3])),
        ("bad_status", "status -1", pk([1, -1])),
        ("bad_status", "status as bin", pk([1, b"\x00"])),
    ]
    for code, name, data in bad:
        c.add("sync_accept", name, rule, data, error=code)


def ids_of(n: int, seed: int = 0) -> list[bytes]:
    return [hashlib.sha256(b"id %d %d" % (seed, i)).digest() for i in range(n)]


def fetch(c: Corpus) -> None:
    rule, fr = "Fetch request", "fetch_request"
    for n in (1, 2, MAX_FETCH_IDS):
        ids = ids_of(n)
        c.add(fr, f"{n} distinct ids", rule, pk([1, ids]), ok={"ids": [i.hex() for i in ids]})
    two = ids_of(2)
    bad = [
        ("too_large", "over MAX_FETCH_REQUEST_BYTES", bytes(MAX_FETCH_REQUEST_BYTES + 1)),
        (
            "undecodable",
            "exactly MAX_FETCH_REQUEST_BYTES: parsed, not too_large",
            bytes(MAX_FETCH_REQUEST_BYTES),
        ),
        ("undecodable", "a str id", pk([1, ["x" * 32]])),
        ("bad_shape", "ids as bin, not an array", pk([1, b"".join(two)])),
        ("bad_shape", "1 field", pk([1])),
        ("bad_version", "version 2", pk([2, two])),
        ("no_ids", "0 ids", pk([1, []])),
        ("too_many_ids", f"{MAX_FETCH_IDS + 1} distinct ids", pk([1, ids_of(MAX_FETCH_IDS + 1)])),
        ("duplicate_ids", "the same id twice", pk([1, [two[0], two[0]]])),
        ("duplicate_ids", "a repeat, not adjacent", pk([1, [two[0], two[1], two[0]]])),
        ("bad_id", "a 31-byte id", pk([1, [two[0], two[1][:31]]])),
        ("bad_id", "a 33-byte id", pk([1, [two[0] + b"\x01"]])),
        ("bad_id", "an int id", pk([1, [7]])),
        ("bad_id", "an array id", pk([1, [[two[0]]]])),
    ]
    for code, name, data in bad:
        c.add(fr, name, rule, data, error=code)
    rule, fb = "Fetch batch", "fetch_batch"

    def objs(*raws: bytes) -> dict[str, Any]:
        return {"objects": [bytes_json(r) for r in raws]}

    c.add(fb, "two objects", rule, pk([b"\x01" * 100, b"\x02"]), ok=objs(b"\x01" * 100, b"\x02"))
    c.add(fb, "an empty object (left to ingest)", rule, pk([b""]), ok=objs(b""))
    big = bytes(MAX_OBJECT_BYTES)
    c.add(fb, "an object of exactly MAX_OBJECT_BYTES", rule, pk([big]), ok=objs(big))
    many = [b""] * MAX_OBJECTS_PER_BATCH
    c.add(fb, f"{MAX_OBJECTS_PER_BATCH} objects", rule, pk(many), ok=objs(*many))
    bad = [
        ("too_large", "over MAX_FETCH_FRAME_BYTES", bytes(MAX_FETCH_FRAME_BYTES + 1)),
        ("undecodable", "exactly MAX_FETCH_FRAME_BYTES: parsed, not too_large",
         bytes(MAX_FETCH_FRAME_BYTES)),
        ("undecodable", "a str object", pk(["abc"])),
        ("bad_shape", "a bin, not an array", pk(b"abc")),
        ("empty_batch", "an empty array", pk([])),
        ("too_many_objects", f"{MAX_OBJECTS_PER_BATCH + 1} objects",
         pk([b""] * (MAX_OBJECTS_PER_BATCH + 1))),
        ("bad_object", "an int among objects", pk([b"a", 1])),
        ("bad_object", "an array among objects", pk([[b"a"]])),
        ("object_too_large", "an object of MAX_OBJECT_BYTES + 1",
         pk([bytes(MAX_OBJECT_BYTES + 1)])),
    ]  # fmt: skip
    for code, name, data in bad:
        c.add(fb, name, rule, data, error=code)


def reconcile_ok(c: Corpus) -> None:
    rule, rc = "Decoding a message", "reconcile"

    def ok(name: str, msg: Message, data: bytes | None = None, protocols: list[str] = BOTH) -> None:
        data = encode_message(msg, V1_1) if data is None else data
        c.add(rc, name, rule, data, ok=message_json(msg), protocols=protocols)

    # The worked example of docs/sync.md.
    a, b, x = (hashlib.sha256(bytes([i])).digest() for i in (0, 1, 2))
    sid = [hashlib.sha256(SALT + i).digest()[:8] for i in (a, b)]
    ok(
        "worked example m0",
        Message(0, (0, b""), (Range(Mode.IDLIST, INFINITY, sid[0] + sid[1]),), SALT),
    )
    ok("worked example m1", Message(1, (0, b""), (Range(Mode.DIFF, INFINITY, x, b"\x01"),)))
    ok("worked example m2", Message(2, (0, b""), (Range(Mode.HAVE, INFINITY, b),)))
    every = (
        Range(Mode.SKIP, (100, b"")),
        Range(Mode.FINGERPRINT, (100, b"\x80"), bytes(range(16))),
        Range(Mode.IDLIST, (200, b""), b""),
        Range(Mode.IDLIST, (300, b""), bytes(8 * IDLIST_THRESHOLD)),
        Range(Mode.DIFF, (300, b"\x01" * 32), a, b"\xff" * 8),
        Range(Mode.DIFF, (301, b""), b"", b""),
        Range(Mode.HAVE, INFINITY, a + b),
    )
    ok("every mode; bounds with prefixes up to 32 bytes; 64 short ids; 8-byte bitmap",
       Message(5, (10, b"\x05"), every))  # fmt: skip
    ok("no ranges at all (every fingerprint matched)", Message(1, (0, b""), ()))
    ok("lower bound at infinity", Message(3, INFINITY, ()))
    ok(f"last index {2 * MAX_ROUNDS - 1}", Message(2 * MAX_ROUNDS - 1, (0, b""), ()))
    msg = Message(1, (0, b""), ())
    ok("uint64 encodings of small ints", msg, b"\x95\xcf" + (1).to_bytes(8, "big")
       + b"\xcf" + (1).to_bytes(8, "big") + b"\xcc\x00\xc4\x00\x90")  # fmt: skip
    skips = tuple(Range(Mode.SKIP, (i + 1, b"")) for i in range(MAX_RANGES_PER_MESSAGE))
    ok(f"{MAX_RANGES_PER_MESSAGE} ranges", Message(1, (0, b""), skips))
    have = Range(Mode.HAVE, INFINITY, bytes(32 * MAX_IDS_PER_MESSAGE))
    ok(f"{MAX_IDS_PER_MESSAGE} ids (one HAVE)", Message(1, (0, b""), (have,)))
    # 1.1.0: the caps of 1.0.0 no longer apply; the byte limit and the 1.1.0 caps do.
    skips = tuple(Range(Mode.SKIP, (i + 1, b"")) for i in range(MAX_RANGES_PER_MESSAGE + 1))
    ok(f"{MAX_RANGES_PER_MESSAGE + 1} ranges (over the 1.0.0 cap)", Message(1, (0, b""), skips),
       protocols=ONLY_1_1)  # fmt: skip
    have = Range(Mode.HAVE, INFINITY, bytes(32 * (MAX_IDS_PER_MESSAGE + 1)))
    ok(f"{MAX_IDS_PER_MESSAGE + 1} ids in one HAVE (over the 1.0.0 cap)",
       Message(1, (0, b""), (have,)), protocols=ONLY_1_1)  # fmt: skip
    have = Range(Mode.HAVE, INFINITY, bytes(32 * _MOST_FULL_IDS))
    ok(f"{_MOST_FULL_IDS} ids in one HAVE: {MAX_MESSAGE_BYTES:,} bytes hold no more",
       Message(1, (0, b""), (have,)), protocols=ONLY_1_1)  # fmt: skip


# A SKIP one ms above the previous bound, the repeated unit of the 1.1.0 range-cap case (after
# the 6-byte header 95 01 01 00 c4 00 and the 5-byte array32 header of the ranges). (No case
# of exactly the cap: its decoded form would take megabytes; 2,049 ranges show the 1.0.0 cap
# lifted, 65,537 the 1.1.0 cap.)
_SKIP_UNIT = bytes([0x93, 0x00, 0x01, 0xC4, 0x00])
_SKIPS_AT = 11
# A message of one HAVE of n ids takes 17 + 32n bytes (header 6, ranges array 1, range 5,
# bin32 header 5): 16,383 ids at most.
_MOST_FULL_IDS = (MAX_MESSAGE_BYTES - 17) // 32


def reconcile_errors(c: Corpus) -> None:
    rule, rc = "Decoding a message", "reconcile"
    fp = [1, 1, b"", bytes(16)]
    inf = MAX_TS

    def m(*ranges: Any, index: int = 1, lower: Any = 0, prefix: Any = b"") -> bytes:
        return pk([1, index, lower, prefix, list(ranges)])

    bad: list[tuple[str, str, bytes, None]] = [
        ("too_large", "over MAX_MESSAGE_BYTES", bytes(MAX_MESSAGE_BYTES + 1), None),
        ("undecodable", "exactly MAX_MESSAGE_BYTES: parsed, not too_large",
         bytes(MAX_MESSAGE_BYTES), None),
        ("undecodable", "empty", b"", None),
        ("undecodable", "a byte after the value", m(fp) + b"\x00", None),
        ("undecodable", "nil in a range", m([0, None, b""]), None),
        ("undecodable", "str prefix", m([0, 1, ""]), None),
        ("undecodable", "float delta", m([0, 1.0, b""]), None),
        ("undecodable", "a map", pk({}), None),
        ("undecodable", "nested 2000 deep", b"\x91" * 2000 + b"\x00", None),
        ("undecodable", "an empty array as mode: 4 deep", m([[], 1, b"", bytes(16)]), None),
        ("bad_shape", "4 fields", pk([1, 1, 0, b""]), None),
        ("bad_shape", "7 fields", pk([1, 0, 0, b"", [fp], SALT, 0]), None),
        ("bad_shape", "ranges as bin", pk([1, 1, 0, b"", b""]), None),
        ("bad_shape", "a range of 2 fields", m([0, 1]), None),
        ("bad_shape", "a range of 6 fields", m([3, 1, b"", b"", b"", b""]), None),
        ("bad_shape", "a range that is an int", m(5), None),
        ("bad_shape", "SKIP with a payload", m([0, 1, b"", b""]), None),
        ("bad_shape", "FINGERPRINT without payload", m([1, 1, b""]), None),
        ("bad_shape", "DIFF with 4 fields", m([3, 1, b"", b""]), None),
        ("bad_shape", "HAVE with 5 fields", m([4, 1, b"", bytes(32), b""]), None),
        ("bad_version", "version 0", pk([0, 1, 0, b"", []]), None),
        ("bad_version", "version 2", pk([2, 1, 0, b"", []]), None),
        ("bad_index", "index -1", m(index=-1), None),
        ("bad_index", f"index {2 * MAX_ROUNDS}", m(index=2 * MAX_ROUNDS), None),
        ("bad_index", "index as bin", pk([1, b"\x01", 0, b"", []]), None),
        ("bad_salt", "message 0 without salt", m(fp, index=0), None),
        ("bad_salt", "message 1 with a salt", pk([1, 1, 0, b"", [fp], SALT]), None),
        ("bad_salt", "15-byte salt", pk([1, 0, 0, b"", [fp], SALT[:15]]), None),
        ("bad_salt", "17-byte salt", pk([1, 0, 0, b"", [fp], SALT + b"\x00"]), None),
        ("bad_salt", "salt as int", pk([1, 0, 0, b"", [fp], 0]), None),
        ("empty_opening", "message 0 with no range", pk([1, 0, 0, b"", [], SALT]), None),
        ("bad_timestamp", "lower ts -1", m(lower=-1), None),
        ("bad_timestamp", "lower ts MAX_TS + 1", m(lower=inf + 1), None),
        ("bad_timestamp", "negative delta", m([0, -1, b""], lower=5), None),
        ("bad_timestamp", "deltas past MAX_TS", m([0, inf, b""], [0, 1, b""]), None),
        ("bad_timestamp", "delta as bin", m([0, b"\x01", b""]), None),
        ("bad_prefix", "33-byte prefix", m([0, 1, b"\x01" * 33]), None),
        ("bad_prefix", "trailing zero byte", m([0, 1, b"\x01\x00"]), None),
        ("bad_prefix", "a prefix of one zero byte", m(prefix=b"\x00"), None),
        ("bad_prefix", "infinity with a prefix", m([0, inf, b"\x01"]), None),
        ("bad_prefix", "lower prefix as int", m(prefix=1), None),
        ("too_many_ranges", f"{MAX_RANGES_PER_MESSAGE + 1} ranges",
         m(*([0, 1, b""] for _ in range(MAX_RANGES_PER_MESSAGE + 1))), None),
        ("bad_mode", "mode 5", m([5, 1, b"", b""]), None),
        ("bad_mode", "mode -1", m([-1, 1, b""]), None),
        ("bad_mode", "mode as bin", m([b"\x01", 1, b"", bytes(16)]), None),
        ("not_ascending", "an empty range (upper == lower)", m([0, 0, b""], lower=5), None),
        ("not_ascending", "upper below lower by prefix", m([0, 0, b"\x01"], prefix=b"\x02"), None),
        ("not_ascending", "a range ending below the previous one (same ts, smaller prefix)",
         m([0, 2, b"\x05"], [0, 0, b"\x01"]), None),
        ("bad_payload", "15-byte fingerprint", m([1, 1, b"", bytes(15)]), None),
        ("bad_payload", "17-byte fingerprint", m([1, 1, b"", bytes(17)]), None),
        ("bad_payload", "fingerprint as int", m([1, 1, b"", 0]), None),
        ("bad_payload", "IDLIST of 7 bytes", m([2, 1, b"", bytes(7)]), None),
        ("bad_payload", f"IDLIST of {IDLIST_THRESHOLD + 1} short ids",
         m([2, 1, b"", bytes(8 * (IDLIST_THRESHOLD + 1))]), None),
        ("bad_payload", "DIFF ids of 31 bytes", m([3, 1, b"", b"", bytes(31)]), None),
        ("bad_payload", "DIFF bitmap of 9 bytes", m([3, 1, b"", bytes(9), b""]), None),
        ("bad_payload", "DIFF bitmap as int", m([3, 1, b"", 0, b""]), None),
        ("bad_payload", "empty HAVE", m([4, 1, b"", b""]), None),
        ("bad_payload", "HAVE of 33 bytes", m([4, 1, b"", bytes(33)]), None),
        ("too_many_ids", f"{MAX_IDS_PER_MESSAGE + 1} ids in one HAVE",
         m([4, 1, b"", bytes(32 * (MAX_IDS_PER_MESSAGE + 1))]), None),
        ("too_many_ids", f"{IDLIST_THRESHOLD} short ids + {MAX_IDS_PER_MESSAGE - 63} HAVE ids",
         m([2, 1, b"", bytes(8 * IDLIST_THRESHOLD)],
           [4, 1, b"", bytes(32 * (MAX_IDS_PER_MESSAGE - IDLIST_THRESHOLD + 1))]), None),
    ]  # fmt: skip
    for code, name, data, _ in bad:
        only_1_0 = code in ("too_many_ranges", "too_many_ids")  # the 1.0.0 caps
        c.add(rc, name, rule, data, error=code, protocols=ONLY_1_0 if only_1_0 else BOTH)
    over = MAX_RANGES_PER_MESSAGE_1_1 + 1
    data = m(*([0, 1, b""] for _ in range(over)))
    c.add(rc, f"{over} ranges (over the 1.1.0 cap)", rule, data, error="too_many_ranges",
          protocols=ONLY_1_1, repeat=(_SKIPS_AT, over, _SKIP_UNIT))  # fmt: skip
    have = m([4, 1, b"", bytes(32 * (_MOST_FULL_IDS + 1))])
    c.add(rc, f"{_MOST_FULL_IDS + 1} ids in one HAVE: over the byte limit", rule, have,
          error="too_large", protocols=ONLY_1_1)  # fmt: skip


def corpus() -> dict[str, Any]:
    c = Corpus()
    frames(c)
    control(c)
    fetch(c)
    reconcile_ok(c)
    reconcile_errors(c)
    return {"format": FORMAT, "cases": c.cases}


def render() -> str:
    """The JSON text: one case per line (diffs stay readable, the file stays small)."""
    data = corpus()
    cases = ",\n".join(json.dumps(case, ensure_ascii=False) for case in data["cases"])
    return f'{{"format": {json.dumps(data["format"])}, "cases": [\n{cases}\n]}}\n'


def main() -> None:
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
