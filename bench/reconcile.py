"""Set reconciliation in process (issue 21): rounds and bytes with 1% scattered differences.

Pure protocols (no node, no LMDB, no transport): `SortedItems` stores on both sides and the
sans-I/O `Initiator` / `Responder` of protocols/reconcile.py passing messages in memory.
Items are keyed like real objects (ts about 5 minutes apart, random 32-byte ids). Cases:

* ``both_sides``: each side misses a different 0.5% (two nodes that missed different gossip);
* ``one_side``: the responder misses 1%.

Beside ours, the same sets go through a faithful model of the negentropy reference
(``NegentropyModel``: hoytech/negentropy cpp/negentropy.h, protocol v1, ported line by line;
checked byte for byte against the C++ build on these very cases, 100k-1M) with its
``frameSizeLimit`` at our message limit (512 KiB). Target (issue 21): with 1.1.0, rounds <=
the reference's + 2 and bytes <= the reference's; both ratios are printed (<= 1 is met).

Rounds are round trips (messages the initiator sends); bytes are all messages both ways
(no framing). Ours is symmetric (both sides learn both lists, the last HAVE included);
negentropy's responder learns nothing.

    .venv/bin/python bench/reconcile.py            # 100k, 300k and 1M items
    .venv/bin/python bench/reconcile.py --quick    # 100k and 300k (< 1 min)
    .venv/bin/python bench/reconcile.py --json     # the figures as JSON on the last line
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols.reconcile import (
    MAX_MESSAGE_BYTES,
    V1_0,
    V1_1,
    Limits,
    SortedItems,
    reconcile_in_memory,
    reconcile_until_complete,
)
from protocols.reconcile_store import Key

T0 = 1_700_000_000_000
MEAN_GAP_MS = 300_000
SIZES = (100_000, 300_000, 1_000_000)
QUICK_SIZES = (100_000, 300_000)
EXTRA_ROUNDS = 2  # target: rounds <= the reference's + 2 ...
# ... and bytes <= the reference's, at the same frame limit:
FRAME_LIMIT = MAX_MESSAGE_BYTES
# The resume case: 1.1.0 limited to this many round trips a session, sessions resumed.
RESUME_ROUNDS = 4


# ----------------------------------------------------------------- negentropy v1 model

NEG_VERSION = 0x61
NEG_MAX_U64 = 2**64 - 1
NEG_BUCKETS = 16
NEG_ID_BYTES = 32
NEG_FP_BYTES = 16
NEG_FRAME_SLACK = 200  # exceededFrameSizeLimit(n): n > frameSizeLimit - 200
NEG_MIN_FRAME = 4096
NEG_SKIP, NEG_FINGERPRINT, NEG_IDLIST = 0, 1, 2
NegBound = tuple[int, bytes]


def neg_varint(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def more(self) -> bool:
        return self.pos < len(self.data)

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("parse ends prematurely")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def varint(self) -> int:
        res = 0
        while True:
            b = self.take(1)[0]
            res = (res << 7) | (b & 0x7F)
            if not b & 0x80:
                return res


class NegentropyModel:
    """One side of a negentropy v1 session over a sorted ``(ts, id)`` vector, following
    cpp/negentropy.h (``Negentropy::initiate``, ``reconcileAux``, ``splitRange``) line by
    line, so message sizes and rounds are the reference's. Bounds compare as ``(ts, id
    prefix)`` tuples, which orders like the reference's zero-padded ids (a minimal bound's
    prefix never ends in a zero byte)."""

    def __init__(self, keys: Iterable[Key], frame_size_limit: int = 0) -> None:
        if frame_size_limit and frame_size_limit < NEG_MIN_FRAME:
            raise ValueError("frameSizeLimit too small")
        self.items = sorted(keys)
        self.limit = frame_size_limit
        self.prefix = [0]
        for _, item_id in self.items:
            self.prefix.append(self.prefix[-1] + int.from_bytes(item_id, "little"))
        self.is_initiator = False
        self.last_in = self.last_out = 0

    def _fingerprint(self, lo: int, hi: int) -> bytes:
        total = (self.prefix[hi] - self.prefix[lo]) % 2**256
        data = total.to_bytes(32, "little") + neg_varint(hi - lo)
        return hashlib.sha256(data).digest()[:NEG_FP_BYTES]

    def _exceeded(self, n: int) -> bool:
        return bool(self.limit) and n > self.limit - NEG_FRAME_SLACK

    def _encode_bound(self, bound: NegBound) -> bytes:
        ts, prefix = bound
        if ts == NEG_MAX_U64:
            self.last_out = NEG_MAX_U64
            encoded = neg_varint(0)
        else:
            encoded = neg_varint(ts - self.last_out + 1)
            self.last_out = ts
        return encoded + neg_varint(len(prefix)) + prefix

    def _decode_bound(self, r: _Reader) -> NegBound:
        ts = r.varint()
        ts = NEG_MAX_U64 if ts == 0 else min(NEG_MAX_U64, ts - 1 + self.last_in)
        self.last_in = ts
        return (ts, r.take(r.varint()))

    def _minimal_bound(self, prev: Key, cur: Key) -> NegBound:
        if cur[0] != prev[0]:
            return (cur[0], b"")
        shared = 0
        while shared < NEG_ID_BYTES and cur[1][shared] == prev[1][shared]:
            shared += 1
        return (cur[0], cur[1][: shared + 1])

    def _split(self, lo: int, hi: int, upper: NegBound) -> bytes:
        n = hi - lo
        if n < NEG_BUCKETS * 2:
            ids = b"".join(item_id for _, item_id in self.items[lo:hi])
            return self._encode_bound(upper) + neg_varint(NEG_IDLIST) + neg_varint(n) + ids
        out = bytearray()
        per, extra = divmod(n, NEG_BUCKETS)
        cur = lo
        for i in range(NEG_BUCKETS):
            size = per + (1 if i < extra else 0)
            fp = self._fingerprint(cur, cur + size)
            cur += size
            bound = (
                upper if cur == hi else self._minimal_bound(self.items[cur - 1], self.items[cur])
            )
            out += self._encode_bound(bound) + neg_varint(NEG_FINGERPRINT) + fp
        return bytes(out)

    def initiate(self) -> bytes:
        self.is_initiator = True
        return bytes([NEG_VERSION]) + self._split(0, len(self.items), (NEG_MAX_U64, b""))

    def reconcile(self, query: bytes) -> tuple[bytes | None, list[bytes], list[bytes]]:
        """The reply (None: the initiator is done) and, for the initiator, have/need ids."""
        self.last_in = self.last_out = 0
        have: list[bytes] = []
        need: list[bytes] = []
        full = bytearray([NEG_VERSION])
        r = _Reader(query)
        if r.take(1)[0] != NEG_VERSION:
            raise ValueError("unsupported negentropy version")
        size = len(self.items)
        prev_bound: NegBound = (0, b"")
        prev_index = 0
        skip = False
        while r.more():
            o = bytearray()
            cur_bound = self._decode_bound(r)
            mode = r.varint()
            lower = prev_index
            upper = bisect_left(self.items, cur_bound, prev_index, size)
            if mode == NEG_SKIP:
                skip = True
            elif mode == NEG_FINGERPRINT:
                if r.take(NEG_FP_BYTES) != self._fingerprint(lower, upper):
                    if skip:
                        skip = False
                        o += self._encode_bound(prev_bound) + neg_varint(NEG_SKIP)
                    o += self._split(lower, upper, cur_bound)
                else:
                    skip = True
            elif mode == NEG_IDLIST:
                theirs = {r.take(NEG_ID_BYTES) for _ in range(r.varint())}
                if self.is_initiator:
                    skip = True
                    for _, item_id in self.items[lower:upper]:
                        if item_id in theirs:
                            theirs.discard(item_id)
                        else:
                            have.append(item_id)
                    need.extend(theirs)
                else:
                    if skip:
                        skip = False
                        o += self._encode_bound(prev_bound) + neg_varint(NEG_SKIP)
                    ids = bytearray()
                    end_bound: NegBound = cur_bound
                    for index in range(lower, upper):
                        if self._exceeded(len(full) + len(ids)):
                            end_bound = self.items[index]
                            upper = index  # the rest of the range gets the fingerprint
                            break
                        ids += self.items[index][1]
                    count = len(ids) // NEG_ID_BYTES
                    o += self._encode_bound(end_bound) + neg_varint(NEG_IDLIST)
                    o += neg_varint(count) + ids
                    full += o
                    o.clear()
            else:
                raise ValueError("unexpected mode")
            if self._exceeded(len(full) + len(o)):
                # As the reference: stop, and one fingerprint for the rest to infinity.
                rest = self._fingerprint(upper, size)
                full += self._encode_bound((NEG_MAX_U64, b"")) + neg_varint(NEG_FINGERPRINT)
                full += rest
                break
            full += o
            prev_index = upper
            prev_bound = cur_bound
        if self.is_initiator and len(full) == 1:
            return None, have, need
        return bytes(full), have, need


def negentropy_session(a: list[Key], b: list[Key], frame_limit: int) -> dict[str, Any]:
    """A whole reference session, ``a`` initiating (its client) and ``b`` answering."""
    started = time.perf_counter()
    client, server = NegentropyModel(a, frame_limit), NegentropyModel(b, frame_limit)
    first = client.initiate()
    query: bytes | None = first
    rounds, up, down = 1, len(first), 0
    have: list[bytes] = []
    need: list[bytes] = []
    while query is not None:
        reply, _, _ = server.reconcile(query)
        assert reply is not None
        down += len(reply)
        query, h, n = client.reconcile(reply)
        have += h
        need += n
        if query is not None:
            rounds += 1
            up += len(query)
    return {"rounds": rounds, "bytes": up + down, "bytes_up": up, "bytes_down": down,
            "have": len(have), "need": len(need),
            "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip


# ------------------------------------------------------------------------ the cases


def make_keys(n: int, seed: int) -> list[Key]:
    rng = random.Random(seed)
    ts, keys = T0, []
    for _ in range(n):
        ts += rng.randint(0, 2 * MEAN_GAP_MS)
        keys.append((ts, rng.randbytes(32)))
    return keys


def scattered_pair(n: int, one_sided: bool, seed: int = 1) -> tuple[list[Key], list[Key]]:
    """1% of n items missing at random places: from the responder only, or each side
    missing a different half of them."""
    base = make_keys(n, seed)
    out = random.Random(seed + 1).sample(range(n), n // 100)
    half, rest = set(out[: len(out) // 2]), set(out[len(out) // 2 :])
    if one_sided:
        return base, [k for i, k in enumerate(base) if i not in half and i not in rest]
    a = [k for i, k in enumerate(base) if i not in half]
    return a, [k for i, k in enumerate(base) if i not in rest]


def ours(a_store: SortedItems, b_store: SortedItems, limits: Limits, expect: tuple[set[bytes],
         set[bytes]]) -> dict[str, Any]:  # fmt: skip
    """One session (resumed until complete if it ran out of rounds), checked exact."""
    started = time.perf_counter()
    result = reconcile_in_memory(a_store, b_store, salt=bytes(16), limits=limits)
    if not result.complete:
        result = reconcile_until_complete(a_store, b_store, salt=bytes(16), limits=limits)
    seconds = time.perf_counter() - started
    if (set(result.have), set(result.need)) != expect:
        raise AssertionError(f"{limits.protocol_id}: wrong difference")
    return {"protocol": limits.protocol_id, "rounds": result.rounds,
            "bytes": sum(result.bytes_sent), "bytes_up": result.bytes_sent[0],
            "bytes_down": result.bytes_sent[1], "sessions": result.sessions,
            "have": len(result.have), "need": len(result.need),
            "seconds": round(seconds, 2)}  # fmt: skip


def run_case(n: int, one_sided: bool) -> dict[str, Any]:
    a, b = scattered_pair(n, one_sided)
    a_ids, b_ids = {k[1] for k in a}, {k[1] for k in b}
    expect = (a_ids - b_ids, b_ids - a_ids)
    ref = negentropy_session(a, b, FRAME_LIMIT)
    if (ref["have"], ref["need"]) != tuple(map(len, expect)):
        raise AssertionError("negentropy model: wrong difference")
    a_store, b_store = SortedItems(a), SortedItems(b)
    v11 = ours(a_store, b_store, V1_1, expect)
    v10 = ours(a_store, b_store, V1_0, expect)
    short = Limits("1.1.0/resume", V1_1.max_ranges, V1_1.max_ids, True, max_rounds=RESUME_ROUNDS)
    resumed = ours(a_store, b_store, short, expect)
    return {
        "items": n, "case": "one_side" if one_sided else "both_sides",
        "differences": len(expect[0]) + len(expect[1]), "reference": ref,
        "v1_1": v11, "v1_0": v10, "v1_1_resumed": resumed,
        "rounds_ratio": round(v11["rounds"] / (ref["rounds"] + EXTRA_ROUNDS), 3),
        "bytes_ratio": round(v11["bytes"] / ref["bytes"], 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k and 300k items only")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else SIZES
    started = time.perf_counter()
    print(f"frame limit {FRAME_LIMIT:,} B (ours: MAX_MESSAGE_BYTES; negentropy: frameSizeLimit)")
    print(
        "rounds = round trips, bytes = all messages both ways; ratios: ours (1.1.0) / target "
        f"(rounds: reference + {EXTRA_ROUNDS}; bytes: reference), <= 1 met"
    )
    header = (
        f"{'items':>9} {'case':<10} | {'ref rnd':>7} {'ref bytes':>10} {'ref s':>5} | "
        f"{'1.1 rnd':>7} {'1.1 bytes':>10} {'1.1 s':>5} | {'rnd/tgt':>7} {'B/tgt':>6} | "
        f"{'1.0 rnd':>7} {'1.0 bytes':>10} | resumed ({RESUME_ROUNDS} a session)"
    )
    print(header)
    cases = []
    for n in sizes:
        for one_sided in (False, True):
            c = run_case(n, one_sided)
            cases.append(c)
            ref, v11, v10, res = c["reference"], c["v1_1"], c["v1_0"], c["v1_1_resumed"]
            print(f"{n:>9,} {c['case']:<10} | {ref['rounds']:>7} {ref['bytes']:>10,} "
                  f"{ref['seconds']:>5.1f} | {v11['rounds']:>7} {v11['bytes']:>10,} "
                  f"{v11['seconds']:>5.1f} | {c['rounds_ratio']:>7.2f} {c['bytes_ratio']:>6.2f} | "
                  f"{v10['rounds']:>7} {v10['bytes']:>10,} | {res['sessions']} sessions, "
                  f"{res['rounds']} rounds, {res['bytes']:,} B", flush=True)  # fmt: skip
    met = all(c["rounds_ratio"] <= 1 and c["bytes_ratio"] <= 1 for c in cases)
    print(
        f"targets met (1.1.0 rounds <= reference + {EXTRA_ROUNDS}, bytes <= reference): {met}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    if args.json:
        print(json.dumps({"frame_limit": FRAME_LIMIT, "extra_rounds": EXTRA_ROUNDS,
                          "resume_rounds": RESUME_ROUNDS, "cases": cases, "targets_met": met,
                          "cpus": os.cpu_count()}))  # fmt: skip


if __name__ == "__main__":
    main()
