"""Keys, bounds, fingerprints and the storage interface of set reconciliation (sans-I/O).

An item is keyed by ``(ts, id)``: ``ts`` integer milliseconds (``0 <= ts < MAX_TS``) and ``id``
a 32-byte SHA-256. Items are ordered by ``(ts, id)``. A *bound* ``(ts, prefix)`` (prefix of at
most 32 bytes, no trailing zero byte) names a point between keys: a key is ``>=`` the bound
iff ``(key.ts, key.id) >= (ts, prefix)`` with plain lexicographic byte comparison, which is
what Python tuple comparison does. ``INFINITY = (MAX_TS, b"")`` lies above every key.

The fingerprint of a range is additive, so a store can maintain it incrementally:
``SHA-256(sum_le256(ids) mod 2**256 || varint(count))[:16]`` (the negentropy v1 definition).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

ID_BYTES = 32
FINGERPRINT_BYTES = 16
TS_BITS = 48
MAX_TS = 1 << TS_BITS  # exclusive: a key's ts is < MAX_TS; MAX_TS itself only appears in INFINITY
SUM_MODULUS = 1 << 256

Key = tuple[int, bytes]  # (ts, 32-byte id)
Bound = tuple[int, bytes]  # (ts, id prefix of 0..32 bytes)

MIN_BOUND: Bound = (0, b"")
INFINITY: Bound = (MAX_TS, b"")


@dataclass(frozen=True)
class Aggregate:
    """Count and sum (mod 2**256, ids read as little-endian integers) of a set of ids."""

    count: int = 0
    total: int = 0

    def __add__(self, other: Aggregate) -> Aggregate:
        return Aggregate(self.count + other.count, (self.total + other.total) % SUM_MODULUS)

    def __sub__(self, other: Aggregate) -> Aggregate:
        return Aggregate(self.count - other.count, (self.total - other.total) % SUM_MODULUS)

    @staticmethod
    def of_id(item_id: bytes) -> Aggregate:
        return Aggregate(1, int.from_bytes(item_id, "little"))

    @staticmethod
    def of_ids(ids: Iterable[bytes]) -> Aggregate:
        count = 0
        total = 0
        for item_id in ids:
            count += 1
            total += int.from_bytes(item_id, "little")
        return Aggregate(count, total % SUM_MODULUS)


def encode_varint(value: int) -> bytes:
    """Base-128, most significant group first, high bit set on every byte but the last."""
    if value < 0:
        raise ValueError("varint must be non-negative")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def fingerprint(agg: Aggregate) -> bytes:
    """16-byte fingerprint of a range from its aggregate (negentropy v1 compatible)."""
    data = agg.total.to_bytes(ID_BYTES, "little") + encode_varint(agg.count)
    return hashlib.sha256(data).digest()[:FINGERPRINT_BYTES]


def minimal_bound(prev: Key, key: Key) -> Bound:
    """The shortest bound ``b`` with ``prev < b <= key`` (requires ``prev < key``)."""
    if prev[0] != key[0]:
        return (key[0], b"")
    a, b = prev[1], key[1]
    shared = 0
    while shared < ID_BYTES and a[shared] == b[shared]:
        shared += 1
    return (key[0], b[: shared + 1])


def is_valid_key(key: Key) -> bool:
    ts, item_id = key
    return 0 <= ts < MAX_TS and len(item_id) == ID_BYTES


class ItemStore(Protocol):
    """What the reconciliation machine needs from a set of keys.

    All ranges are half-open ``[lower, upper)`` between bounds. Implementations must answer
    from one consistent view for the duration of a call; the machine tolerates the set
    changing between calls (new items simply show up as differences in a later session).
    """

    def count_and_sum(self, lower: Bound, upper: Bound) -> Aggregate:
        """Aggregate of all keys in the range. Should cost O(log n) or O(buckets)."""
        ...

    def iter_keys(self, lower: Bound, upper: Bound, limit: int) -> Iterator[Key]:
        """Up to ``limit`` keys of the range in ascending order."""
        ...

    def split_points(self, lower: Bound, upper: Bound, parts: int) -> Sequence[Bound]:
        """Up to ``parts - 1`` strictly ascending bounds strictly inside ``(lower, upper)``
        cutting the range into pieces of roughly equal count (exactness is not required:
        an LMDB store may cut at its pre-aggregated bucket edges)."""
        ...


class SortedItems:
    """In-memory ``ItemStore``: sorted keys, bisect, prefix sums. O(log n) per query.

    Adding keys invalidates the prefix sums, which are rebuilt lazily on the next query.
    """

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._keys: list[Key] = sorted(set(keys))
        for key in self._keys:
            if not is_valid_key(key):
                raise ValueError(f"invalid key {key!r}")
        self._prefix: list[int] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple):
            return False
        i = bisect_left(self._keys, key)
        return i < len(self._keys) and self._keys[i] == key

    def keys(self) -> list[Key]:
        return list(self._keys)

    def add(self, key: Key) -> None:
        if not is_valid_key(key):
            raise ValueError(f"invalid key {key!r}")
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            return
        self._keys.insert(i, key)
        self._prefix = None

    def _sums(self) -> list[int]:
        if self._prefix is None:
            prefix = [0]
            acc = 0
            for _, item_id in self._keys:
                acc += int.from_bytes(item_id, "little")
                prefix.append(acc)
            self._prefix = prefix
        return self._prefix

    def _span(self, lower: Bound, upper: Bound) -> tuple[int, int]:
        i = bisect_left(self._keys, lower)
        j = bisect_left(self._keys, upper)
        return i, max(i, j)

    def count_and_sum(self, lower: Bound, upper: Bound) -> Aggregate:
        i, j = self._span(lower, upper)
        sums = self._sums()
        return Aggregate(j - i, (sums[j] - sums[i]) % SUM_MODULUS)

    def iter_keys(self, lower: Bound, upper: Bound, limit: int) -> Iterator[Key]:
        i, j = self._span(lower, upper)
        return iter(self._keys[i : min(j, i + max(0, limit))])

    def split_points(self, lower: Bound, upper: Bound, parts: int) -> Sequence[Bound]:
        i, j = self._span(lower, upper)
        n = j - i
        points: list[Bound] = []
        for p in range(1, parts):
            k = i + n * p // parts
            if k <= i or k >= j:
                continue
            bound = minimal_bound(self._keys[k - 1], self._keys[k])
            if not points or bound > points[-1]:
                points.append(bound)
        return points


class Windowed:
    """``store`` seen through the window ``[lower, upper)``: every query is clamped to it,
    so items outside the window are neither counted, listed nor used as cuts.

    A sync session covers only the keys of its scope with ``lower_ts <= ts < upper_ts``
    (the SyncOpen window); both sides reconcile through this view.
    """

    def __init__(self, store: ItemStore, lower: Bound, upper: Bound) -> None:
        if not lower < upper:
            raise ValueError("lower must be below upper")
        self.store = store
        self.lower = lower
        self.upper = upper

    def _clamp(self, lower: Bound, upper: Bound) -> tuple[Bound, Bound] | None:
        lo, hi = max(lower, self.lower), min(upper, self.upper)
        return (lo, hi) if lo < hi else None

    def count_and_sum(self, lower: Bound, upper: Bound) -> Aggregate:
        span = self._clamp(lower, upper)
        return self.store.count_and_sum(*span) if span else Aggregate()

    def iter_keys(self, lower: Bound, upper: Bound, limit: int) -> Iterator[Key]:
        span = self._clamp(lower, upper)
        return self.store.iter_keys(*span, limit) if span else iter(())

    def split_points(self, lower: Bound, upper: Bound, parts: int) -> Sequence[Bound]:
        span = self._clamp(lower, upper)
        if span is None:
            return []
        return [p for p in self.store.split_points(*span, parts) if lower < p < upper]


# --- Pre-aggregated buckets: how a persistent store answers range queries in O(buckets) ---


def bucket_of(ts: int, bucket_ms: int) -> int:
    """Index of the fixed-width time bucket holding ``ts``."""
    return ts // bucket_ms


def range_aggregate(
    lower: Bound,
    upper: Bound,
    bucket_ms: int,
    bucket_aggregates: Callable[[int, int], Iterable[Aggregate]],
    edge_keys: Callable[[Bound, Bound], Iterable[Key]],
) -> Aggregate:
    """Aggregate of ``[lower, upper)`` from per-time-bucket aggregates plus edge items.

    The store keeps, for every time bucket ``b`` (keys with ``b*bucket_ms <= ts <
    (b+1)*bucket_ms``), the pair ``(count, sum mod 2**256)``, updated in the same write
    transaction as each insert (``+= (1, id)``) or delete (``-= (1, id)``).
    ``bucket_aggregates(first, last)`` yields the aggregates of the whole buckets
    ``first..last-1`` (absent buckets may be skipped); ``edge_keys(lo, hi)`` yields the keys
    in ``[lo, hi)`` and is only asked about the partial buckets at the two ends, so a query
    costs O(buckets in range + items in two buckets) instead of O(items).
    """
    if not lower < upper:
        return Aggregate()
    first_full = bucket_of(lower[0], bucket_ms)
    if lower > (first_full * bucket_ms, b""):
        first_full += 1  # lower sits inside a bucket: that bucket is an edge
    last_full = bucket_of(upper[0], bucket_ms)  # buckets < last_full lie fully below upper's ts
    if first_full >= last_full:
        return Aggregate.of_ids(k[1] for k in edge_keys(lower, upper))
    agg = Aggregate()
    for bucket in bucket_aggregates(first_full, last_full):
        agg = agg + bucket
    head_end: Bound = (first_full * bucket_ms, b"")
    tail_start: Bound = (last_full * bucket_ms, b"")
    if lower < head_end:
        agg = agg + Aggregate.of_ids(k[1] for k in edge_keys(lower, head_end))
    if tail_start < upper:
        agg = agg + Aggregate.of_ids(k[1] for k in edge_keys(tail_start, upper))
    return agg
