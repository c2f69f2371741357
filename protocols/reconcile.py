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
sender is done on sending it, its receiver on reading it. Each reply is filled up to the
limits of the negotiated protocol version (``limits``: `V1_0` by default, `V1_1` fills by
bytes); the unanswered rest is folded into fingerprints and handled in later rounds
(protocols/reconcile_session.py). A session that runs out of rounds ends cleanly: the
initiator's ``complete`` is False and ``resume_from`` says where a new session continues.

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
    init.complete, init.resume_from       # False / a bound if the session ran out of rounds
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from protocols.reconcile_fill import Out
from protocols.reconcile_limits import (
    SYNC_PROTOCOL_ID_1_0,
    SYNC_PROTOCOL_ID_1_1,
    SYNC_PROTOCOL_IDS,
    V1_0,
    V1_1,
    Limits,
    limits_for,
)
from protocols.reconcile_session import Session, short_id
from protocols.reconcile_store import (
    INFINITY,
    MIN_BOUND,
    Aggregate,
    Bound,
    ItemStore,
    Key,
    SortedItems,
    Windowed,
    fingerprint,
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
    "SYNC_PROTOCOL_IDS",
    "SYNC_PROTOCOL_ID_1_0",
    "SYNC_PROTOCOL_ID_1_1",
    "V1_0",
    "V1_1",
    "Aggregate",
    "Bound",
    "Initiator",
    "ItemStore",
    "Key",
    "Limits",
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
    "limits_for",
    "range_aggregate",
    "reconcile_in_memory",
    "reconcile_until_complete",
    "short_id",
]


class Initiator(Session):
    """Opens a session over ``[lower, upper)`` of ``store`` (the session's window), under
    the ``limits`` of the negotiated protocol version."""

    def __init__(
        self,
        store: ItemStore,
        lower: Bound = MIN_BOUND,
        upper: Bound = INFINITY,
        salt: bytes | None = None,
        limits: Limits = V1_0,
    ) -> None:
        if salt is not None and len(salt) != SALT_BYTES:
            raise ValueError(f"salt must be {SALT_BYTES} bytes")
        salt = salt if salt is not None else os.urandom(SALT_BYTES)
        super().__init__(store, salt, lower, upper, limits=limits)
        self._started = False

    @property
    def complete(self) -> bool:
        """Whether the whole window was reconciled (meaningful once ``done``)."""
        return self._open_from is None

    @property
    def resume_from(self) -> Bound | None:
        """Once ``done``: None if the window was reconciled, else the lowest bound left
        open (the session ran out of rounds). Everything of the window below it is settled,
        so a new session ``Initiator(store, resume_from, upper)`` finishes the work; its
        SyncOpen window is ``[resume_from[0], upper_ts)`` (message 0 may start above the
        window's lower bound, so many items sharing one timestamp do not stall it)."""
        return self._open_from

    def start(self) -> bytes:
        """First message (message 0)."""
        if self._started:
            raise ReconcileError("session already started", SessionCode.MISUSE)
        self._started = True
        out = Out(self._lower)
        agg = self._view.count_and_sum(self._lower, self._upper)
        plan = None
        if agg.count > self.limits.idlist_threshold:
            plan = self._split_plan(self._lower, self._upper)
        self._commit(plan or self._list_plan(self._lower, self._upper), out)
        return self._emit(0, out, self._salt)

    def receive(self, data: bytes) -> bytes | None:
        """Process a responder message; return the next message, or None when done."""
        if not self._started:
            raise ReconcileError("start() first", SessionCode.MISUSE)
        return self._answer(self._decode(data))


class Responder(Session):
    """Answers a session opened by an Initiator over the window ``[lower, upper)`` (from
    the SyncOpen), under the ``limits`` of the negotiated protocol version. Salt and the
    session's bounds come from message 0, which must lie inside the window."""

    def __init__(
        self, store: ItemStore, lower: Bound = MIN_BOUND, upper: Bound = INFINITY,
        need_limit: int | None = None, limits: Limits = V1_0,
    ) -> None:  # fmt: skip
        super().__init__(store, b"", lower, upper, need_limit, limits)

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
    """Outcome of a session (or of resumed sessions), from the initiator's point of view."""

    have: frozenset[bytes]
    need: frozenset[bytes]
    rounds: int
    bytes_sent: tuple[int, int]  # (initiator -> responder, responder -> initiator)
    messages: int
    resume_from: Bound | None = None  # None: the window was reconciled
    sessions: int = 1

    @property
    def complete(self) -> bool:
        return self.resume_from is None


def reconcile_in_memory(
    a: ItemStore,
    b: ItemStore,
    lower: Bound = MIN_BOUND,
    upper: Bound = INFINITY,
    salt: bytes | None = None,
    limits: Limits = V1_0,
) -> Result:
    """Run a whole session between two stores in memory (a initiates)."""
    return _run(Initiator(a, lower, upper, salt, limits), Responder(b, lower, upper, limits=limits))


def _run(init: Initiator, resp: Responder) -> Result:
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
    return Result(
        init.have, init.need, init.rounds, (init.bytes_sent, resp.bytes_sent), messages,
        init.resume_from,
    )  # fmt: skip


def reconcile_until_complete(
    a: ItemStore,
    b: ItemStore,
    lower: Bound = MIN_BOUND,
    upper: Bound = INFINITY,
    salt: bytes | None = None,
    limits: Limits = V1_0,
    max_sessions: int = 16,
) -> Result:
    """Sessions between two stores until the window is reconciled, each one resuming where
    the previous one stopped (as the node does: SyncOpen's lower_ts is the bound's ts, the
    initiator's message 0 starts at the bound). Totals over the sessions; ``resume_from`` is
    set if ``max_sessions`` did not suffice."""
    have: set[bytes] = set()
    need: set[bytes] = set()
    rounds = messages = sent = received = sessions = 0
    resume: Bound | None = lower
    while resume is not None and sessions < max_sessions:
        init = Initiator(a, resume, upper, salt, limits)
        resp = Responder(b, (resume[0], b""), upper, limits=limits)  # the SyncOpen window
        result = _run(init, resp)
        sessions += 1
        have |= result.have
        need |= result.need
        rounds += result.rounds
        messages += result.messages
        sent, received = sent + result.bytes_sent[0], received + result.bytes_sent[1]
        if result.resume_from is not None and not result.resume_from > resume:
            raise ReconcileError("a session settled nothing", SessionCode.INCONSISTENT)
        resume = result.resume_from
    return Result(
        frozenset(have), frozenset(need), rounds, (sent, received), messages, resume, sessions
    )
