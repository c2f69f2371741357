"""Incremental reconciliation fingerprints in LMDB: an `ItemStore` per sync scope.

The store's ``sync`` database holds one key per live object: ``scope(32) + ts(8) + id(32)``.
Next to it, ``sync_agg`` holds pre-aggregated **hierarchical time buckets**::

    sync_agg   scope(32) + level(1) + bucket(8)  -> count(8) + sum(32, little-endian)
               scope(32) + 0xFF + 8 zero bytes   -> the same, for the whole scope

Level ``i`` has buckets of ``2**LEVEL_SHIFTS[i]`` ms (bucket number = ``ts >> shift``); the
sum is the sum of the ids read as little-endian integers mod 2**256 (docs/sync.md), so the
fingerprint of any union of buckets is their summed aggregate. Buckets whose count falls to
zero are deleted.

Maintenance: `Store._index` reports every add/remove of a ``sync`` entry to a `BucketDeltas`
accumulator; `Store._flush` applies the accumulated per-bucket deltas in the same write
transaction (one read-modify-write per touched bucket per batch).

Queries (`LmdbItems`): ``count_and_sum(lo, hi)`` decomposes the range into the raw items of
its two ragged edges (less than one finest bucket wide each), then at each level the partial
runs of buckets not covered by the next coarser level (< fanout buckets per side), then the
coarsest run: O(levels x fanout) bucket reads plus the edge items. ``split_points`` walks the
same decomposition and descends into a bucket only where a cut falls inside it. Every call
uses its own short read transaction.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from node.store.read import StoreReader
from protocols.reconcile_store import (
    ID_BYTES,
    MAX_TS,
    SUM_MODULUS,
    Aggregate,
    Bound,
    Key,
    minimal_bound,
)

SCOPE_BYTES = 32
# Bucket widths (log2 ms) from finest to coarsest: 16 ms .. 2**44 ms (~557 years); fanout 16.
LEVEL_SHIFTS: tuple[int, ...] = (4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44)
TOTAL_LEVEL = 0xFF  # the per-scope total lives at this pseudo level, bucket 0
AGG_DB = "sync_agg"
SYNC_DB = "sync"
BUILT_MARKER = "sync_agg:v1"  # meta key: the aggregates cover every sync entry
_U64 = struct.Struct(">Q")
_COUNT = struct.Struct(">Q")


def _pack(count: int, total: int) -> bytes:
    return _COUNT.pack(count) + total.to_bytes(ID_BYTES, "little")


def _unpack(value: bytes) -> tuple[int, int]:
    return _COUNT.unpack(value[:8])[0], int.from_bytes(value[8:], "little")


def bucket_key(scope: bytes, level: int, bucket: int) -> bytes:
    return scope + bytes((level,)) + _U64.pack(bucket)


def total_key(scope: bytes) -> bytes:
    return bucket_key(scope, TOTAL_LEVEL, 0)


class BucketDeltas:
    """Per-batch bucket deltas, fed by `Store._index` and applied by `Store._flush`.

    `note` only records the finest-level delta (one dict update per object, on the ingest
    hot path); `apply` rolls those up level by level (fanout 16, so each coarser level has
    far fewer buckets) and writes every touched bucket once.
    """

    def __init__(self) -> None:
        self._finest: dict[tuple[bytes, int], list[int]] = {}

    def clear(self) -> None:
        self._finest = {}

    def __bool__(self) -> bool:
        return bool(self._finest)

    def note(self, sync_key: bytes, add: bool) -> None:
        """Account one ``sync`` entry (``scope + ts + id``) being added or removed."""
        scope = sync_key[:SCOPE_BYTES]
        ts = _U64.unpack(sync_key[SCOPE_BYTES : SCOPE_BYTES + 8])[0]
        value = int.from_bytes(sync_key[SCOPE_BYTES + 8 :], "little")
        key = (scope, ts >> LEVEL_SHIFTS[0])
        d = self._finest.get(key)
        if d is None:
            self._finest[key] = [1, value] if add else [-1, -value]
        elif add:
            d[0] += 1
            d[1] += value
        else:
            d[0] -= 1
            d[1] -= value

    def _rolled_up(self) -> dict[bytes, list[int]]:
        deltas: dict[bytes, list[int]] = {}
        current = self._finest  # (scope, bucket) -> [count delta, sum delta] at one level
        for level, shift in enumerate(LEVEL_SHIFTS):
            if level:
                step = shift - LEVEL_SHIFTS[level - 1]
                coarser: dict[tuple[bytes, int], list[int]] = {}
                for (scope, bucket), (dc, ds) in current.items():
                    acc = coarser.get((scope, bucket >> step))
                    if acc is None:
                        coarser[(scope, bucket >> step)] = [dc, ds]
                    else:
                        acc[0] += dc
                        acc[1] += ds
                current = coarser
            for (scope, bucket), delta in current.items():
                deltas[bucket_key(scope, level, bucket)] = delta
        for (scope, _), (dc, ds) in current.items():
            acc = deltas.setdefault(total_key(scope), [0, 0])
            acc[0] += dc
            acc[1] += ds
        return deltas

    def apply(self, txn: Any, db: Any) -> None:
        """Add the deltas to the stored buckets (in the caller's write transaction)."""
        deltas = self._rolled_up()
        for key in sorted(deltas):
            dc, ds = deltas[key]
            if dc == 0 and ds % SUM_MODULUS == 0:
                continue
            raw = txn.get(key, db=db)
            count, total = _unpack(raw) if raw is not None else (0, 0)
            count += dc
            total = (total + ds) % SUM_MODULUS
            if count < 0:
                raise RuntimeError("sync bucket count below zero: index out of step")
            if count == 0:
                txn.delete(key, db=db)
            else:
                txn.put(key, _pack(count, total), db=db)
        self._finest = {}


def rebuild(store: StoreReader) -> None:
    """(Re)compute every bucket from the ``sync`` index, in one write transaction."""
    agg_db, sync_db = store.db[AGG_DB], store.db[SYNC_DB]
    with store.env.begin(write=True) as txn:
        txn.drop(agg_db, delete=False)
        deltas = BucketDeltas()
        for n, key in enumerate(txn.cursor(db=sync_db).iternext(values=False), 1):
            deltas.note(bytes(key), True)
            if n % 100_000 == 0:
                deltas.apply(txn, agg_db)
        deltas.apply(txn, agg_db)
        txn.put(BUILT_MARKER.encode(), b"1", db=store.db["meta"])


def ensure_built(store: StoreReader) -> None:
    """Build the aggregates of a store created before they existed (once)."""
    with store.read() as txn:
        if txn.get(BUILT_MARKER.encode(), db=store.db["meta"]) is not None:
            return
    store.require_writable("to build its reconciliation index")
    rebuild(store)


def scope_totals(store: StoreReader, txn: Any) -> dict[bytes, Aggregate]:
    """The aggregate of every scope that holds items."""
    out: dict[bytes, Aggregate] = {}
    cur = txn.cursor(db=store.db[AGG_DB])
    key = bytes(SCOPE_BYTES)
    while cur.set_range(key):
        k = bytes(cur.key())
        scope = k[:SCOPE_BYTES]
        raw = txn.get(total_key(scope), db=store.db[AGG_DB])
        if raw is not None:
            out[scope] = Aggregate(*_unpack(raw))
        nxt = int.from_bytes(scope, "big") + 1
        if nxt >= 1 << (8 * SCOPE_BYTES):
            break
        key = nxt.to_bytes(SCOPE_BYTES, "big")
    return out


def digest(store: StoreReader, txn: Any) -> tuple[int, int]:
    """(count, sum of all ids mod 2**256) over every scope, from the totals alone."""
    count, total = 0, 0
    for agg in scope_totals(store, txn).values():
        count += agg.count
        total += agg.total
    return count, total % SUM_MODULUS


# --- queries ------------------------------------------------------------------------------


@dataclass
class _Piece:
    """A run of the decomposition: one raw key (level -1) or one bucket."""

    level: int  # -1 = raw item
    start: int  # raw: ts; bucket: bucket number
    count: int
    total: int
    key: Key | None = None

    def lower(self) -> Bound:
        """Bound at which the piece starts (a bucket: its first ms)."""
        if self.level < 0:
            assert self.key is not None
            return (self.key[0], b"")
        return (self.start << LEVEL_SHIFTS[self.level], b"")


def _align_up(ts: int, shift: int) -> int:
    return -(-ts >> shift) << shift


def _align_down(ts: int, shift: int) -> int:
    return ts >> shift << shift


class LmdbItems:
    """`protocols.reconcile_store.ItemStore` over one scope of a `Store`'s sync index."""

    def __init__(self, store: StoreReader, scope: bytes) -> None:
        if len(scope) != SCOPE_BYTES:
            raise ValueError("scope must be 32 bytes")
        self._store = store
        self._scope = scope
        self._sync = store.db[SYNC_DB]
        self._agg = store.db[AGG_DB]
        self.reads = 0  # bucket + item reads, for tests and benchmarks

    # --- low-level readers (inside one txn) ---

    def _key(self, bound: Bound) -> bytes:
        return self._scope + _U64.pack(bound[0]) + bound[1]

    def _raw(self, txn: Any, lower: Bound, upper: Bound) -> Iterator[Key]:
        if not lower < upper:
            return
        lo, hi = self._key(lower), self._key(upper)
        cur = txn.cursor(db=self._sync)
        if not cur.set_range(lo):
            return
        for key in cur.iternext(values=False):
            if key >= hi:
                return
            self.reads += 1
            yield _U64.unpack(key[SCOPE_BYTES : SCOPE_BYTES + 8])[0], bytes(key[SCOPE_BYTES + 8 :])

    def _buckets(self, txn: Any, level: int, first: int, end: int) -> Iterator[_Piece]:
        """Non-empty buckets ``first <= b < end`` of a level, ascending."""
        if first >= end:
            return
        lo = bucket_key(self._scope, level, first)
        hi = bucket_key(self._scope, level, end)
        cur = txn.cursor(db=self._agg)
        if not cur.set_range(lo):
            return
        for key, value in cur:
            if key >= hi:
                return
            self.reads += 1
            count, total = _unpack(value)
            yield _Piece(level, _U64.unpack(key[SCOPE_BYTES + 1 :])[0], count, total)

    def _raw_pieces(self, txn: Any, lower: Bound, upper: Bound) -> list[_Piece]:
        return [
            _Piece(-1, k[0], 1, int.from_bytes(k[1], "little"), k)
            for k in self._raw(txn, lower, upper)
        ]

    def _decompose(self, txn: Any, lower: Bound, upper: Bound) -> list[_Piece]:
        """Ordered pieces (raw edge items and buckets) covering exactly ``[lower, upper)``."""
        if not lower < upper:
            return []
        upper = min(upper, (MAX_TS, b""))
        # Whole milliseconds [a, b): everything else is a raw edge.
        a = lower[0] + (1 if lower[1] else 0)
        b = upper[0]
        s0 = LEVEL_SHIFTS[0]
        a0, b0 = _align_up(a, s0), _align_down(b, s0)
        if a0 >= b0:
            return self._raw_pieces(txn, lower, upper)
        head = self._raw_pieces(txn, lower, (a0, b""))
        tail = self._raw_pieces(txn, (b0, b""), upper)
        mids_head: list[_Piece] = []
        mids_tail: list[list[_Piece]] = []
        lo, hi = a0, b0  # aligned to the current level
        for i, shift in enumerate(LEVEL_SHIFTS):
            nxt = LEVEL_SHIFTS[i + 1] if i + 1 < len(LEVEL_SHIFTS) else None
            if nxt is not None:
                lo2, hi2 = _align_up(lo, nxt), _align_down(hi, nxt)
                if lo2 < hi2:
                    mids_head += self._buckets(txn, i, lo >> shift, lo2 >> shift)
                    mids_tail.append(list(self._buckets(txn, i, hi2 >> shift, hi >> shift)))
                    lo, hi = lo2, hi2
                    continue
            mids_head += self._buckets(txn, i, lo >> shift, hi >> shift)
            break
        out = head + mids_head
        for run in reversed(mids_tail):
            out += run
        return out + tail

    def _children(self, txn: Any, piece: _Piece) -> list[_Piece]:
        if piece.level < 0:
            return [piece]
        shift = LEVEL_SHIFTS[piece.level]
        start, end = piece.start << shift, (piece.start + 1) << shift
        if piece.level == 0:
            return self._raw_pieces(txn, (start, b""), (min(end, MAX_TS), b""))
        child = piece.level - 1
        cs = LEVEL_SHIFTS[child]
        return list(self._buckets(txn, child, start >> cs, end >> cs))

    # --- ItemStore ---

    def count_and_sum(self, lower: Bound, upper: Bound) -> Aggregate:
        with self._store.read() as txn:
            count, total = 0, 0
            for p in self._decompose(txn, lower, upper):
                count += p.count
                total += p.total
        return Aggregate(count, total % SUM_MODULUS)

    def iter_keys(self, lower: Bound, upper: Bound, limit: int) -> Iterator[Key]:
        out: list[Key] = []
        if limit > 0:
            with self._store.read() as txn:
                for key in self._raw(txn, lower, upper):
                    out.append(key)
                    if len(out) >= limit:
                        break
        return iter(out)

    def split_points(self, lower: Bound, upper: Bound, parts: int) -> Sequence[Bound]:
        if parts < 2 or not lower < upper:
            return []
        with self._store.read() as txn:
            pieces = self._decompose(txn, lower, upper)
            n = sum(p.count for p in pieces)
            if n < 2:
                return []
            # Descend into a bucket only while a cut target falls strictly inside it and it
            # holds more than half a part: the cut then lands on a finer edge.
            slack = max(1, n // (2 * parts))
            targets = [n * k // parts for k in range(1, parts)]
            changed = True
            while changed:
                changed = False
                acc = 0
                t = 0
                for i, p in enumerate(pieces):
                    while t < len(targets) and targets[t] <= acc:
                        t += 1
                    if t >= len(targets):
                        break
                    if p.level >= 0 and p.count > slack and acc < targets[t] < acc + p.count:
                        pieces[i : i + 1] = self._children(txn, p)
                        changed = True
                        break
                    acc += p.count
        # Cut before the piece whose start is nearest each target.
        starts: list[int] = []  # cumulative count before piece j
        acc = 0
        for p in pieces:
            starts.append(acc)
            acc += p.count
        points: list[Bound] = []
        j = 1
        for target in targets:
            while j + 1 < len(pieces) and abs(starts[j + 1] - target) <= abs(starts[j] - target):
                j += 1
            if j >= len(pieces):
                break
            bound = self._cut(pieces[j - 1], pieces[j])
            if (not points or bound > points[-1]) and lower < bound < upper:
                points.append(bound)
        return points

    @staticmethod
    def _cut(prev: _Piece, piece: _Piece) -> Bound:
        """A bound above everything in ``prev`` and at or below everything in ``piece``."""
        if piece.level < 0 and prev.level < 0:
            assert prev.key is not None and piece.key is not None
            return minimal_bound(prev.key, piece.key)
        return piece.lower()
