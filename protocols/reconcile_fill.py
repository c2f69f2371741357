"""Filling a reconciliation reply within the limits of its protocol version: encoded sizes,
the outgoing message, folds and what they cost (used by protocols/reconcile_session.py).

A reply answers the peer's ranges in order while the answer, plus a *reserve* for folding
everything after it, fits the message (bytes, ranges and ids: `Limits`). From the first range
that does not fit, the rest is *folded*: each group of up to ``group`` consecutive request
ranges becomes one FINGERPRINT of my own items over the group. A group of 1 is an *echo* (the
peer gets the range back at its size and splits it itself); larger groups cost less but the
peer's split of a group only gives back ranges about the size of the ones folded, one level
of splitting lost. Folds stop at every DIFF/HAVE range (their answers stay exact), or, when
even that does not fit at the start of a message, only at my HAVEs (one fold per gap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protocols.reconcile_limits import Limits
from protocols.reconcile_store import ID_BYTES, Bound, Key
from protocols.reconcile_wire import Mode, Range

Cost = tuple[int, int, int]  # (bytes, ranges, ids)
NO_COST: Cost = (0, 0, 0)

# Upper bound of a message's encoded size besides its ranges: array header, version, index,
# lower ts (9), lower prefix (2 + 32), ranges array header (5), salt (2 + 16).
MESSAGE_HEADER_BYTES = 80
# A range's fixed part at worst: array header, mode, ts delta (9), prefix bin header (2).
RANGE_BYTES = 13
FP_PAYLOAD_BYTES = 18  # bin8 header + 16-byte fingerprint
# What I owe (HAVE ranges, and the fold and skip around each) takes at most 1/OWED_SHARE of
# a message, so that requests always have the rest.
OWED_SHARE = 2
# Plan with echoes (fold groups below `Limits.buckets`) only while folding all requests of a
# message that way would take at most 1/PLAN_SHARE of a reply: an echo keeps a range at its
# size, but a range that waits several messages costs its echo in each. (Measured on 100k-1M
# items with 1% scattered differences: 2-8 are within a round of each other.)
PLAN_SHARE = 4
GROUPS = (1, 2, 4, 8)  # fold group sizes tried, smallest first, before `Limits.buckets`

# Kinds of the peer's ranges: a request (SKIP, FINGERPRINT, IDLIST, or a DIFF whose HAVE did
# not fit and is re-opened), a DIFF I answer with a HAVE, a DIFF/HAVE needing no answer.
REQUEST, OWED_HAVE, QUIET = 0, 1, 2


def int_bytes(value: int) -> int:
    """Encoded size of a non-negative msgpack int (the smallest encoding, as msgpack writes)."""
    if value < 0x80:
        return 1
    if value < 0x100:
        return 2
    if value < 0x10000:
        return 3
    return 5 if value < 0x100000000 else 9


def bin_bytes(length: int) -> int:
    return length + (2 if length < 0x100 else 3 if length < 0x10000 else 5)


def range_bytes(rng: Range, delta: int) -> int:
    """Encoded size of one range whose upper ts is ``delta`` above the previous bound's."""
    size = 2 + int_bytes(delta) + bin_bytes(len(rng.upper[1]))
    if rng.mode == Mode.DIFF:
        return size + bin_bytes(len(rng.bitmap)) + bin_bytes(len(rng.data))
    return size if rng.mode == Mode.SKIP else size + bin_bytes(len(rng.data))


def have_cost(upper: Bound, ids: int) -> Cost:
    """At most what a HAVE of ``ids`` full ids ending at ``upper`` costs."""
    return RANGE_BYTES + len(upper[1]) + bin_bytes(ID_BYTES * ids), 1, ids


def fold_bytes(lower: Bound, uppers: list[Bound]) -> int:
    """At most what one fold (a FINGERPRINT) ending at any of these bounds costs."""
    longest = max([len(lower[1]), *(len(u[1]) for u in uppers)])
    return RANGE_BYTES + FP_PAYLOAD_BYTES + longest


class Out:
    """The ranges of an outgoing message, with its encoded size (at most `size`: the header
    bound plus the exact size of each range), range and id counts. Merges consecutive SKIPs."""

    def __init__(self, lower: Bound) -> None:
        self.lower = lower
        self.ranges: list[Range] = []
        self._sizes: list[int] = []
        self.size = MESSAGE_HEADER_BYTES
        self.ids = 0

    def _last_ts(self) -> int:
        return self.ranges[-1].upper[0] if self.ranges else self.lower[0]

    def add(self, rng: Range) -> None:
        if rng.mode == Mode.SKIP and self.ranges and self.ranges[-1].mode == Mode.SKIP:
            self.ranges.pop()
            self.size -= self._sizes.pop()
        size = range_bytes(rng, rng.upper[0] - self._last_ts())
        self.ranges.append(rng)
        self._sizes.append(size)
        self.size += size
        self.ids += rng.id_count

    def skip(self, upper: Bound) -> None:
        self.add(Range(Mode.SKIP, upper))

    def cost(self, ranges: list[Range]) -> Cost:
        """What adding ``ranges`` would take at most."""
        size, ts = 0, self._last_ts()
        for rng in ranges:
            size += range_bytes(rng, rng.upper[0] - ts)
            ts = rng.upper[0]
        return size, len(ranges), sum(r.id_count for r in ranges)

    def fits(self, limits: Limits, cost: Cost, reserve: Cost = NO_COST) -> bool:
        """Whether ``cost`` more, and then ``reserve``, stay within the limits."""
        return (
            self.size + cost[0] + reserve[0] <= limits.max_message_bytes
            and len(self.ranges) + cost[1] + reserve[1] <= limits.max_ranges
            and self.ids + cost[2] + reserve[2] <= limits.max_ids
        )

    def __len__(self) -> int:
        return len(self.ranges)

    def finish(self) -> tuple[Bound, tuple[Range, ...]]:
        ranges = self.ranges
        lower = self.lower
        if ranges and ranges[0].mode == Mode.SKIP:
            lower = ranges[0].upper
            ranges = ranges[1:]
        if ranges and ranges[-1].mode == Mode.SKIP:
            ranges = ranges[:-1]
        return lower, tuple(ranges)


@dataclass
class Plan:
    """My answer to one request range, not yet committed to the message."""

    ranges: list[Range]
    lists: list[tuple[Bound, Bound, list[Key]]] = field(default_factory=list)  # my IDLISTs
    diff: tuple[Bound, Bound, set[bytes]] | None = None  # my DIFF awaiting a HAVE
    have: list[bytes] = field(default_factory=list)  # DIFF extras: ids the peer lacks
    cut: Bound | None = None  # a partial DIFF: where the rest of its range starts
    requests: bool = False  # contains a FINGERPRINT or an IDLIST


def fold_reserve(
    uppers: list[Bound], kinds: list[int], owed: dict[int, int], fold: int, group: int,
    by_closers: bool,
) -> list[Cost]:  # fmt: skip
    """For each position s, at most what folding the ranges from s on costs: the HAVEs I owe
    (``owed``: position -> ids), a SKIP per DIFF/HAVE needing nothing, one fold (``fold``
    bytes) per ``group`` requests of a run. Runs end at my HAVEs and, ``by_closers``, at every
    DIFF/HAVE (else those are folded over)."""
    n = len(kinds)
    reserve: list[Cost] = [NO_COST] * (n + 1)
    after = NO_COST  # from the end of the current run on
    run = 0
    for s in range(n - 1, -1, -1):
        kind = kinds[s]
        if kind == OWED_HAVE or (kind == QUIET and by_closers):
            folds = -(-run // group)
            own = have_cost(uppers[s], owed[s]) if kind == OWED_HAVE else (
                RANGE_BYTES + len(uppers[s][1]), 1, 0)  # fmt: skip
            after = (after[0] + folds * fold + own[0], after[1] + folds + own[1], after[2] + own[2])
            run = 0
            reserve[s] = after
            continue
        run += 1
        folds = -(-run // group)
        reserve[s] = (after[0] + folds * fold, after[1] + folds, after[2])
    return reserve


class Folder:
    """The folds of one reply: request ranges are added in order and each group of
    ``group`` of them (or the run up to a DIFF/HAVE answer) becomes one FINGERPRINT of my
    items (``own_fingerprint``)."""

    def __init__(self, out: Out, own_fingerprint: Callable[[Bound, Bound], Range]) -> None:
        self.out = out
        self._own = own_fingerprint
        self.active = False
        self.by_closers = True  # runs end at every DIFF/HAVE (else only at my HAVEs)
        self.group = 1
        self._tail: Bound | None = None  # start of the fold being built
        self._members = 0  # ranges in it

    def start(self, group: int, by_closers: bool) -> None:
        self.active, self.group, self.by_closers = True, group, by_closers

    def add(self, lower: Bound, upper: Bound) -> None:
        if self._tail is None:
            self._tail = lower
        self._members += 1
        if self._members >= self.group:
            self.close(upper)

    def close(self, upper: Bound) -> None:
        if self._tail is not None and self._tail < upper:
            self.out.add(self._own(self._tail, upper))
        self._tail, self._members = None, 0
