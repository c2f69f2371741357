"""Range-based set reconciliation (sans-I/O), in the spirit of negentropy / NIP-77.

Two peers each hold a set of keys ``(ts, id)``. The initiator opens with fingerprints of
ranges of its set; each side answers every range it receives:

* matching fingerprint -> SKIP;
* differing fingerprint -> its own items as an IDLIST of salted 8-byte short ids when it has
  at most ``IDLIST_THRESHOLD`` items there, else ``BUCKETS`` sub-ranges (FINGERPRINT, or an
  empty IDLIST for an empty sub-range);
* IDLIST -> DIFF: a bitmap of the listed entries it has, plus the full ids of its own items
  the list did not contain (the lister lacks those);
* DIFF -> HAVE: the full ids of the listed entries the DIFF sender lacked.

The exchange is symmetric: at the end BOTH sides know ``have`` (ids it holds that the peer
lacks) and ``need`` (ids the peer holds that it lacks), with full 32-byte ids. A message that
contains no FINGERPRINT, no IDLIST and no DIFF with a missing entry expects no reply; its
sender is done on sending it, its receiver on reading it. When a reply would exceed the
per-message limits, the unanswered rest is folded into one fingerprint and handled in later
rounds, so large differences stream over several rounds within ``MAX_ROUNDS``.

Usage::

    init = Initiator(store_a)
    resp = Responder(store_b)
    msg: bytes | None = init.start()
    while msg is not None:                # in real life: send, receive, alternate
        msg = resp.receive(msg)
        if msg is None:
            break
        msg = init.receive(msg)
    init.have, init.need, resp.have, resp.need
"""

from __future__ import annotations

import hashlib
import itertools
import os
from bisect import bisect_left
from dataclasses import dataclass

from protocols.reconcile_store import (
    ID_BYTES,
    INFINITY,
    MIN_BOUND,
    Aggregate,
    Bound,
    ItemStore,
    Key,
    SortedItems,
    Windowed,
    fingerprint,
    minimal_bound,
    range_aggregate,
)
from protocols.reconcile_wire import (
    BUCKETS,
    IDLIST_THRESHOLD,
    MAX_IDS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    MAX_RANGES_PER_MESSAGE,
    MAX_ROUNDS,
    SALT_BYTES,
    SHORT_ID_BYTES,
    DecodeCode,
    Message,
    Mode,
    Range,
    ReconcileError,
    SessionCode,
    decode_message,
    encode_message,
)

__all__ = [
    "BUCKETS",
    "IDLIST_THRESHOLD",
    "INFINITY",
    "MAX_IDS_PER_MESSAGE",
    "MAX_MESSAGE_BYTES",
    "MAX_RANGES_PER_MESSAGE",
    "MAX_ROUNDS",
    "MIN_BOUND",
    "Aggregate",
    "Bound",
    "Initiator",
    "ItemStore",
    "Key",
    "Message",
    "Mode",
    "Range",
    "ReconcileError",
    "Responder",
    "Result",
    "SortedItems",
    "Windowed",
    "decode_message",
    "encode_message",
    "fingerprint",
    "range_aggregate",
    "reconcile_in_memory",
    "short_id",
]

_RANGES_PER_CLOSER = 2  # a DIFF/HAVE in the input may cost a tail FINGERPRINT plus its answer


def short_id(salt: bytes, item_id: bytes) -> bytes:
    """Salted short id used in IDLIST ranges: SHA-256(salt || id)[:SHORT_ID_BYTES]."""
    return hashlib.sha256(salt + item_id).digest()[:SHORT_ID_BYTES]


class _Out:
    """Accumulates the ranges of an outgoing message; merges consecutive SKIPs."""

    def __init__(self, lower: Bound) -> None:
        self.lower = lower
        self.ranges: list[Range] = []

    def add(self, rng: Range) -> None:
        if rng.mode == Mode.SKIP and self.ranges and self.ranges[-1].mode == Mode.SKIP:
            self.ranges[-1] = rng
        else:
            self.ranges.append(rng)

    def skip(self, upper: Bound) -> None:
        self.add(Range(Mode.SKIP, upper))

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


class _Session:
    """State and logic shared by both sides (the protocol is symmetric after message 0)."""

    def __init__(
        self, store: ItemStore, salt: bytes, lower: Bound, upper: Bound,
        need_limit: int | None = None,
    ) -> None:  # fmt: skip
        if not lower < upper:
            raise ValueError("lower must be below upper")
        # Ids the peer says we lack are the one thing a peer can make us remember without
        # bound (a liar names made-up ids round after round): `need_limit` caps how many this
        # side keeps at once (None: no cap); `take_need` hands them over and forgets them.
        self._need_limit = need_limit
        self._fresh_need: list[bytes] = []
        self.need_learnt = 0  # ids learnt as needed over the session (taken or not)
        self.need_dropped = 0  # ids learnt beyond need_limit, not kept
        self._store = store  # as given
        # Every query goes through the window: nothing outside it is offered or compared.
        self._view: ItemStore = Windowed(store, lower, upper)
        self._salt = salt
        self._have: set[bytes] = set()
        self._need: set[bytes] = set()
        self._lower: Bound = lower  # the session's bounds (the responder narrows them to
        self._upper: Bound = upper  # what message 0 covers)
        self._lists: dict[Bound, tuple[Bound, list[Key]]] = {}  # my IDLISTs awaiting a DIFF
        self._diffs: dict[Bound, tuple[Bound, set[bytes]]] = {}  # my DIFFs awaiting a HAVE
        self._ids_used = 0
        self._next_index = 0
        self._last_index = -1
        self.done = False
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def have(self) -> frozenset[bytes]:
        """Ids this side holds that the peer lacks (complete once ``done``)."""
        return frozenset(self._have)

    @property
    def need(self) -> frozenset[bytes]:
        """Ids the peer holds that this side lacks and that were not taken with `take_need`
        (complete once ``done`` if nothing was taken and no `need_limit` was hit)."""
        return frozenset(self._need)

    def take_need(self) -> list[bytes]:
        """The needed ids learnt since the last call, in order; this side forgets them
        (the caller owns them now, and a repeat is the caller's to spot)."""
        fresh, self._fresh_need = self._fresh_need, []
        self._need.difference_update(fresh)
        return fresh

    def _add_need(self, ids: list[bytes]) -> None:
        for item_id in ids:
            if item_id in self._need:
                continue
            self.need_learnt += 1
            if self._need_limit is not None and len(self._need) >= self._need_limit:
                self.need_dropped += 1
                continue
            self._need.add(item_id)
            self._fresh_need.append(item_id)

    @property
    def rounds(self) -> int:
        """Round trips so far (= initiator messages sent)."""
        return self._last_index // 2 + 1 if self._last_index >= 0 else 0

    # --- outgoing ---------------------------------------------------------------------

    def _emit(self, index: int, out: _Out, salt: bytes | None = None) -> bytes:
        if index >= 2 * MAX_ROUNDS:
            raise ReconcileError(
                "reconciliation did not finish within MAX_ROUNDS", SessionCode.TOO_MANY_ROUNDS
            )
        lower, ranges = out.finish()
        data = encode_message(Message(index, lower, ranges, salt))
        expects_reply = bool(self._diffs) or any(
            r.mode in (Mode.FINGERPRINT, Mode.IDLIST) for r in ranges
        )
        self.done = not expects_reply
        self._last_index = index
        self._next_index = index + 1
        self.bytes_sent += len(data)
        return data

    def _send_list(self, lo: Bound, up: Bound, out: _Out) -> None:
        keys = list(self._view.iter_keys(lo, up, IDLIST_THRESHOLD))
        out.add(Range(Mode.IDLIST, up, b"".join(short_id(self._salt, k[1]) for k in keys)))
        self._lists[lo] = (up, keys)
        self._ids_used += len(keys)

    def _split(self, lo: Bound, up: Bound, out: _Out) -> bool:
        """Cut a range into up to BUCKETS sub-ranges; False if the store found no cut."""
        points = [p for p in self._view.split_points(lo, up, BUCKETS) if lo < p < up]
        if not points or any(a >= b for a, b in itertools.pairwise(points)):
            return False
        edges = [lo, *points, up]
        for a, b in itertools.pairwise(edges):
            sub = self._view.count_and_sum(a, b)
            if sub.count == 0:
                self._send_list(a, b, out)  # an empty list costs less than a fingerprint
            else:
                out.add(Range(Mode.FINGERPRINT, b, fingerprint(sub)))
        return True

    def _own_fingerprint(self, lo: Bound, up: Bound, out: _Out) -> None:
        if lo < up:
            out.add(Range(Mode.FINGERPRINT, up, fingerprint(self._view.count_and_sum(lo, up))))

    # --- incoming ---------------------------------------------------------------------

    def _decode(self, data: bytes) -> Message:
        if self.done:
            raise ReconcileError(
                "message received after the session finished", SessionCode.AFTER_DONE
            )
        msg = decode_message(data)
        self.bytes_received += len(data)
        if msg.index != self._next_index:
            raise ReconcileError(
                f"expected message {self._next_index}, got {msg.index}", SessionCode.WRONG_INDEX
            )
        self._last_index = msg.index
        if msg.index > 0:
            self._check_scope(msg)
        return msg

    def _check_scope(self, msg: Message) -> None:
        if msg.lower < self._lower or (msg.ranges and msg.ranges[-1].upper > self._upper):
            raise ReconcileError("ranges outside the session's bounds", SessionCode.OUT_OF_BOUNDS)

    def _answer(self, msg: Message) -> bytes | None:
        """Answer every range of ``msg`` within the per-message limits.

        Budget (ranges): while not coalescing, every remaining input range is assumed to
        cost one output range (a skip, an echo of my own fingerprint, an IDLIST, a DIFF or a
        HAVE all cost one), so a split (BUCKETS ranges) is only made if it still leaves room
        for that. If not even the first split of the message fits, it is made anyway and the
        rest of the message is coalesced: requests and skips fold into one FINGERPRINT per
        gap between DIFF/HAVE ranges (which still get answered), so progress never stops.
        """
        lists, diffs = self._lists, self._diffs
        self._lists, self._diffs = {}, {}
        self._ids_used = 0
        n = len(msg.ranges)
        closers = [0] * (n + 1)  # DIFF/HAVE ranges from i on
        have_ids = [0] * (n + 1)  # upper bound of the HAVE ids those DIFFs may require
        lower = msg.lower
        lowers = []
        for r in msg.ranges:
            lowers.append(lower)
            lower = r.upper
        for i in range(n - 1, -1, -1):
            r = msg.ranges[i]
            closers[i] = closers[i + 1] + (r.mode in (Mode.DIFF, Mode.HAVE))
            entry = lists.get(lowers[i]) if r.mode == Mode.DIFF else None
            have_ids[i] = have_ids[i + 1] + (len(entry[1]) if entry else 0)
        out = _Out(msg.lower)
        must_reply = False  # FINGERPRINT or IDLIST received, or HAVE to send
        tail: Bound | None = None  # start of the range being coalesced
        coalesce = False
        split_done = False
        for i, r in enumerate(msg.ranges):
            lo, up = lowers[i], r.upper
            must_reply = must_reply or r.mode in (Mode.FINGERPRINT, Mode.IDLIST)
            if r.mode in (Mode.DIFF, Mode.HAVE):
                if tail is not None:
                    self._own_fingerprint(tail, lo, out)
                    tail = None
                if r.mode == Mode.DIFF:
                    self._on_diff(lo, r, lists, out)
                else:
                    self._on_have(lo, r, diffs)
                    out.skip(up)
                continue
            if tail is not None:
                continue
            if coalesce:
                tail = lo
                continue
            rest = n - i - 1
            coalesced = _RANGES_PER_CLOSER * closers[i + 1] + 1
            ids_limit = MAX_IDS_PER_MESSAGE - have_ids[i + 1]
            if r.mode == Mode.SKIP:
                out.skip(up)
            elif r.mode == Mode.IDLIST:
                partial_ok = len(out) + 1 + coalesced <= MAX_RANGES_PER_MESSAGE
                tail = self._on_idlist(lo, r, out, ids_limit, partial_ok)
                coalesce = tail is not None
            else:
                agg = self._view.count_and_sum(lo, up)
                room = MAX_RANGES_PER_MESSAGE - len(out)
                if fingerprint(agg) == r.data:
                    out.skip(up)
                elif agg.count <= IDLIST_THRESHOLD:
                    if self._ids_used + agg.count <= ids_limit:
                        self._send_list(lo, up, out)
                    else:
                        self._own_fingerprint(lo, up, out)  # echo: answered next round
                elif room >= BUCKETS + rest and self._split(lo, up, out):
                    split_done = True
                elif not split_done and room >= BUCKETS + coalesced and self._split(lo, up, out):
                    split_done = coalesce = True
                else:
                    self._own_fingerprint(lo, up, out)
        if tail is not None:
            self._own_fingerprint(tail, msg.ranges[-1].upper, out)
        must_reply = must_reply or any(r.mode == Mode.HAVE for r in out.ranges)
        if not must_reply:
            self.done = True
            return None
        return self._emit(msg.index + 1, out)

    def _on_idlist(
        self, lo: Bound, r: Range, out: _Out, ids_limit: int, partial_ok: bool
    ) -> Bound | None:
        """Answer an IDLIST with a DIFF (or echo my fingerprint if over budget); return
        where a coalesced tail starts if the DIFF had to stop early (partial DIFF)."""
        theirs = r.chunks(SHORT_ID_BYTES)
        index: dict[bytes, int] = {}
        for j, sid in enumerate(theirs):
            if index.setdefault(sid, j) != j:
                raise ReconcileError("duplicate short id in IDLIST", SessionCode.DUPLICATE_SHORT_ID)
        budget = ids_limit - self._ids_used
        if budget <= 0:
            self._own_fingerprint(lo, r.upper, out)
            return None
        bits = bytearray((len(theirs) + 7) // 8)
        extras: list[bytes] = []
        prev: Key | None = None
        cut: Key | None = None
        for key in self._view.iter_keys(lo, r.upper, len(theirs) + budget + 1):
            hit = index.get(short_id(self._salt, key[1]))
            if hit is not None:
                bits[hit >> 3] |= 1 << (hit & 7)
            elif len(extras) < budget:
                extras.append(key[1])
            else:
                cut = key
                break
            prev = key
        if cut is not None and (prev is None or not partial_ok):
            self._own_fingerprint(lo, r.upper, out)
            return None
        up = r.upper if cut is None or prev is None else minimal_bound(prev, cut)
        out.add(Range(Mode.DIFF, up, b"".join(extras), bytes(bits)))
        self._have.update(extras)
        self._ids_used += len(extras)
        unmatched = {sid for j, sid in enumerate(theirs) if not bits[j >> 3] >> (j & 7) & 1}
        if unmatched:
            self._diffs[lo] = (up, unmatched)
        return None if cut is None else up

    def _on_diff(
        self, lo: Bound, r: Range, lists: dict[Bound, tuple[Bound, list[Key]]], out: _Out
    ) -> None:
        entry = lists.pop(lo, None)
        if entry is None or r.upper > entry[0]:
            raise ReconcileError("DIFF does not answer an IDLIST of ours", SessionCode.BAD_DIFF)
        keys = entry[1]
        if len(r.bitmap) != (len(keys) + 7) // 8:
            raise ReconcileError(
                "DIFF bitmap length does not match our IDLIST", SessionCode.BAD_DIFF
            )
        if len(keys) % 8 and r.bitmap[-1] >> (len(keys) % 8):
            raise ReconcileError("DIFF bitmap has bits beyond our IDLIST", SessionCode.BAD_DIFF)
        covered = bisect_left(keys, r.upper)
        missing = [keys[j][1] for j in range(covered) if not r.bitmap[j >> 3] >> (j & 7) & 1]
        listed = {k[1] for k in keys}
        extras = r.chunks(ID_BYTES)
        if any(x in listed for x in extras):
            raise ReconcileError("DIFF claims we lack an id we listed", SessionCode.BAD_DIFF)
        self._add_need(extras)
        self._have.update(missing)
        if missing:
            out.add(Range(Mode.HAVE, r.upper, b"".join(missing)))
            self._ids_used += len(missing)
        else:
            out.skip(r.upper)

    def _on_have(self, lo: Bound, r: Range, diffs: dict[Bound, tuple[Bound, set[bytes]]]) -> None:
        entry = diffs.pop(lo, None)
        if entry is None or entry[0] != r.upper:
            raise ReconcileError("HAVE does not answer a DIFF of ours", SessionCode.BAD_HAVE)
        unmatched = entry[1]
        for item_id in r.chunks(ID_BYTES):
            sid = short_id(self._salt, item_id)
            if sid not in unmatched:
                raise ReconcileError("HAVE lists an id we did not ask for", SessionCode.BAD_HAVE)
            unmatched.discard(sid)
            self._add_need([item_id])


class Initiator(_Session):
    """Opens a session over ``[lower, upper)`` of ``store`` (the session's window)."""

    def __init__(
        self,
        store: ItemStore,
        lower: Bound = MIN_BOUND,
        upper: Bound = INFINITY,
        salt: bytes | None = None,
    ) -> None:
        if salt is not None and len(salt) != SALT_BYTES:
            raise ValueError(f"salt must be {SALT_BYTES} bytes")
        super().__init__(store, salt if salt is not None else os.urandom(SALT_BYTES), lower, upper)
        self._started = False

    def start(self) -> bytes:
        """First message (message 0)."""
        if self._started:
            raise ReconcileError("session already started", SessionCode.MISUSE)
        self._started = True
        out = _Out(self._lower)
        agg = self._view.count_and_sum(self._lower, self._upper)
        if agg.count <= IDLIST_THRESHOLD or not self._split(self._lower, self._upper, out):
            self._send_list(self._lower, self._upper, out)
        return self._emit(0, out, self._salt)

    def receive(self, data: bytes) -> bytes | None:
        """Process a responder message; return the next message, or None when done."""
        if not self._started:
            raise ReconcileError("start() first", SessionCode.MISUSE)
        return self._answer(self._decode(data))


class Responder(_Session):
    """Answers a session opened by an Initiator over the window ``[lower, upper)`` (from
    the SyncOpen). Salt and the session's bounds come from message 0, which must lie
    inside the window."""

    def __init__(
        self, store: ItemStore, lower: Bound = MIN_BOUND, upper: Bound = INFINITY,
        need_limit: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(store, b"", lower, upper, need_limit)

    def receive(self, data: bytes) -> bytes | None:
        """Process an initiator message; return the reply, or None when done."""
        msg = self._decode(data)
        if msg.index == 0:
            if msg.salt is None or not msg.ranges:  # the decoder already refuses both
                raise ReconcileError("message 0 without salt or range", DecodeCode.EMPTY_OPENING)
            if msg.lower < self._lower or msg.ranges[-1].upper > self._upper:
                raise ReconcileError(
                    "message 0 names ranges outside the session's window",
                    SessionCode.OUT_OF_BOUNDS,
                )
            self._salt = msg.salt
            self._lower, self._upper = msg.lower, msg.ranges[-1].upper
        return self._answer(msg)


@dataclass(frozen=True)
class Result:
    """Outcome of a session, from the initiator's point of view."""

    have: frozenset[bytes]
    need: frozenset[bytes]
    rounds: int
    bytes_sent: tuple[int, int]  # (initiator -> responder, responder -> initiator)
    messages: int


def reconcile_in_memory(
    a: ItemStore,
    b: ItemStore,
    lower: Bound = MIN_BOUND,
    upper: Bound = INFINITY,
    salt: bytes | None = None,
) -> Result:
    """Run a whole session between two stores in memory (a initiates)."""
    init = Initiator(a, lower, upper, salt)
    resp = Responder(b, lower, upper)
    messages = 1
    msg: bytes | None = init.start()
    while msg is not None:
        msg = resp.receive(msg)
        if msg is None:
            break
        messages += 1
        msg = init.receive(msg)
        messages += msg is not None
    if not (init.done and resp.done):
        raise ReconcileError("session ended with a side not done", SessionCode.INCONSISTENT)
    if init.have != resp.need or init.need != resp.have:
        raise ReconcileError("the two sides disagree on the differences", SessionCode.INCONSISTENT)
    return Result(init.have, init.need, init.rounds, (init.bytes_sent, resp.bytes_sent), messages)
