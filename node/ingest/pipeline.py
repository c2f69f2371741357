"""The one ingest pipeline. Every path that brings objects in (CLI, import, gossip, sync, HTTP)
calls `Ingest.ingest`:

    size check -> id (hash) -> known-id short-cut -> decode -> verify -> validate -> store

The known-id check comes right after hashing (not after validation as first sketched): an id
is the hash of the bytes, so a known id means these exact bytes were verified before, and a
re-delivery costs one hash and one lookup. Bad objects are rejected with a typed reason; the
good objects of the same batch are kept.

Large calls run as a pipeline over batches of BATCH_OBJECTS: this thread hashes
batch N+CHECKS_AHEAD and sorts out known ids and copies, worker processes decode, validate and
verify the batches in between (node/ingest/check_pool.py: the same checks, off this interpreter's
GIL), this thread then collects batch N's verdicts and decodes its good bytes, and the writer
thread (node/ingest/writer.py, shared by all calls) stores them, WRITE_BATCH_OBJECTS or more to
a durable transaction (group commit, within a call and across calls; LMDB's commit releases
the GIL, so its disk wait overlaps the Python work). Small calls run every check inline, and
so does a small call that finds the workers busy; a large call waits for them (POOL_WAIT_S).
Listeners are called on the caller's thread, in order, once per write request, before
`ingest` returns.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from node.ingest.check_pool import UNCHECKED, CheckPool, PendingVerdicts, Unchecked
from node.ingest.writer import IngestWriter
from node.store.store import Store, Stored
from protocols import errors, kinds, validity
from protocols.limits import MAX_OBJECT_BYTES
from protocols.objects import SignedObject, decode_checked, object_id

log = logging.getLogger(__name__)

# Objects per check batch (one hand-off to the workers), and the most a small call stores.
BATCH_OBJECTS = 1000
# Objects per durable transaction of a large call. DESIGN.md said <= 1000; measured here, the
# hash-keyed indexes (ids, by_target, label_target) dirty ~one page per object once they are
# larger than a batch, and a commit of 4000 shares those pages: write_batch at 100k stored
# went from 83 to 48 us an object (docs/ingest.md). The cost: a small call waits behind at
# most one such transaction, and a crash loses at most one (unconfirmed: sync fetches it again).
WRITE_BATCH_OBJECTS = 4000
# While the writer is still busy with earlier transactions, the next one grows instead of
# queueing (group commit), up to this: a commit's pages are shared by more objects exactly
# when the store is large and commits are slow. At 1M stored, write_batch per object:
# 87 us at 4000 a transaction, ~70 at 16000, 56-63 at 32000; 64000 was slower again (LMDB
# spills dirty pages past 128k of them). docs/ingest.md. A small call waits behind at most
# one such transaction (~2 s at 1M stored).
MAX_WRITE_BATCH_OBJECTS = 32000
# Batches smaller than this are checked inline: a hand-off to the workers costs more.
PARALLEL_CHECK_MIN = 64
# Object-checking processes for large batches (0: always inline).
CHECK_WORKERS = min(2, os.cpu_count() or 1)
# A large call waits this long for the check workers while another call has them (then it
# checks inline): the other call lets them go once its last verdicts are in, before its last
# writes, so two bulk calls in flight (sync fetches, import chunks) overlap instead of one
# checking inline on the GIL beside the other.
POOL_WAIT_S = 30.0
# Check batches handed to the workers before the oldest one's verdicts are collected.
CHECKS_AHEAD = 2
# Transactions handed to the writer thread and not yet stored: bounds memory and lets a small
# ingest from another thread (a gossip message) wait behind at most this much bulk work.
MAX_WRITES_IN_FLIGHT = 2


# Checked objects, ready to store: with their kind's spec, or the code that keeps one from
# view (an OPAQUE or HIDE verdict: stored, relayed and reconciled, not indexed for views).
_Good = list[tuple[SignedObject, "kinds.KindSpec | str"]]


@dataclass(frozen=True)
class Rejection:
    """A verdict other than "visible" on one object of a call (index into the call)."""

    index: int
    code: str
    reason: str
    oid: bytes | None = None

    @property
    def blames_peer(self) -> bool:
        """The peer that sent these bytes broke the protocol (a deferral is nobody's fault)."""
        return errors.blames_peer(self.code)


@dataclass
class IngestResult:
    stored: list[Stored] = field(default_factory=list)
    known: int = 0
    # Not stored: REJECT (the sender's fault) and DEFER (a timestamp too far ahead) verdicts.
    rejected: list[Rejection] = field(default_factory=list)
    # Stored but not shown: OPAQUE and HIDE verdicts (also counted in `stored` when new).
    unindexed: list[Rejection] = field(default_factory=list)

    def extend(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.known += other.known
        self.rejected += other.rejected
        self.unindexed += other.unindexed

    @property
    def peer_faults(self) -> list[Rejection]:
        return [r for r in self.rejected if r.blames_peer]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Ingest:
    def __init__(self, store: Store, *, check_workers: int = CHECK_WORKERS) -> None:
        self.store = store
        self._pool = CheckPool(check_workers)
        self._writer = IngestWriter(store, most_objects=MAX_WRITE_BATCH_OBJECTS)
        self.listeners: list[Callable[[list[Stored]], None]] = []

    def close(self) -> None:
        self._writer.close()
        self._pool.close()

    def ingest(
        self,
        raws: Sequence[bytes],
        *,
        now: int | None = None,
        ids: Sequence[bytes] | None = None,
        checked: Callable[[], None] | None = None,
        fresh: bool = False,
    ) -> IngestResult:
        """Run `raws` through the pipeline; blocking (call it off the event loop).

        `ids`: the objects' ids (`object_id` of each of `raws`, in order), when the caller
        hashed the bytes already (a fetch checks every object's id as it arrives): the
        pipeline then does not hash them again. They are trusted: pass only ids computed
        from these very bytes.

        `checked`: called once (on this thread) when every verdict of the call is in and the
        check workers are free for the next call, before the call's last writes (or when it
        fails): a caller with more objects starts its next call then (node/sync/feed.py).

        `fresh`: the caller found these objects unstored just before (a sync fetch asks only
        for ids it lacks: `Fetching._unknown`), so the known-id look-ups are skipped: two
        LMDB reads an object, made once already (at 1M stored, ~16 us of this thread's time
        an object in bench/sync.py: py-lmdb lets go of the GIL at every call and takes it
        back behind the writer). One stored meanwhile by another path is checked again for
        nothing; the write still finds it and counts it as known, not stored."""
        if ids is not None and len(ids) != len(raws):
            raise ValueError(f"{len(ids)} ids for {len(raws)} objects")
        result = IngestResult()
        call = _Call(now_ms() if now is None else now, ids, fresh)
        large = len(raws) > BATCH_OBJECTS
        pool = _PoolHold(
            self._pool, len(raws) >= PARALLEL_CHECK_MIN, POOL_WAIT_S if large else 0, checked
        )
        try:
            if not large:  # one batch: no hand-off to the writer
                part = IngestResult()
                good: _Good = []
                self._checked(self._prepare(raws, 0, call, pool.held), call, part, good)
                pool.release()
                self._deliver(result, self._store(part, good))
            else:
                with cyclic_gc_paused():
                    self._pipelined(raws, call, pool, result)
        finally:
            pool.release()
        for rej in result.rejected:
            log.info("rejected object #%d: %s (%s)", rej.index, rej.reason, rej.code)
        for rej in result.unindexed:
            log.debug("stored object #%d unindexed: %s (%s)", rej.index, rej.reason, rej.code)
        return result

    def _pipelined(
        self, raws: Sequence[bytes], call: _Call, pool: _PoolHold, result: IngestResult
    ) -> None:
        inflight: deque[_Write] = deque()
        checking: deque[_Prepared] = deque()  # with the workers, verdicts not collected yet
        per_write = max(1, WRITE_BATCH_OBJECTS // BATCH_OBJECTS)
        most_per_write = max(per_write, MAX_WRITE_BATCH_OBJECTS // BATCH_OBJECTS)
        part, batches, objects = IngestResult(), 0, 0
        good: _Good = []
        try:
            for start, end in check_batches(len(raws)):
                checking.append(self._prepare(raws[start:end], start, call, pool.held))
                last = end >= len(raws)
                while len(checking) > (0 if last else CHECKS_AHEAD):
                    # Verdicts are collected and the good bytes decoded here, not on the
                    # writer: the writer is the stage that limits a large store.
                    prep = checking.popleft()
                    self._checked(prep, call, part, good)
                    batches, objects = batches + 1, objects + prep.size
                    while inflight and inflight[0].fut.done():  # listeners hear promptly
                        self._deliver(result, inflight.popleft().finish())
                    writer_busy = bool(inflight) and not inflight[-1].fut.done()
                    # Less than a write batch left in the call: it joins this write rather
                    # than make a small one of its own (a sync feed's call of 8192: writes
                    # of 4000 and 4192, not 4000, 4000 and 192).
                    rest = len(raws) - prep.end
                    fold = rest < WRITE_BATCH_OBJECTS and objects + rest <= MAX_WRITE_BATCH_OBJECTS
                    if (checking or not last) and (
                        fold
                        or batches < per_write
                        or (batches < most_per_write and writer_busy)
                    ):
                        continue
                    inflight.append(_Write(part, good, self._writer))
                    part, good, batches, objects = IngestResult(), [], 0, 0
                    while len(inflight) >= MAX_WRITES_IN_FLIGHT:
                        self._deliver(result, inflight.popleft().finish())
            pool.release()  # every verdict is in: the next call may check while we write
            while inflight:
                self._deliver(result, inflight.popleft().finish())
        finally:  # on an error, let the writer finish what it has before the pool is released
            for prep in checking:  # read the workers' answers, so the next call gets its own
                if prep.verdicts is not None:
                    self._pool.collect(prep.verdicts)
            for w in inflight:
                w.fut.exception()

    def _deliver(self, result: IngestResult, part: IngestResult) -> None:
        result.extend(part)
        if part.stored:
            for listener in self.listeners:
                listener(part.stored)

    def _prepare(self, raws: Sequence[bytes], offset: int, call: _Call, pooled: bool) -> _Prepared:
        """Size, hash, known ids and copies; then hand the candidates to the workers."""
        prep = _Prepared(IngestResult(), offset + len(raws), len(raws))
        seen, ids = call.seen, call.ids
        # No read transaction for a fresh call: it looks nothing up (`ingest`).
        with contextlib.nullcontext() if call.fresh else self.store.read() as txn:
            for i, raw in enumerate(raws, offset):
                if len(raw) > MAX_OBJECT_BYTES:
                    reason = f"object is {len(raw)} bytes; the limit is {MAX_OBJECT_BYTES}"
                    prep.result.rejected.append(Rejection(i, errors.TooLarge.code, reason))
                    continue
                oid = object_id(raw) if ids is None else ids[i]
                if oid in seen:  # a second copy: its fate is the first copy's (see _checked)
                    prep.copies.append((i, oid))
                    continue
                if txn is not None and self.store.has(oid, txn):
                    prep.result.known += 1
                    continue
                seen.add(oid)
                prep.candidates.append((i, raw, oid))
        if pooled and len(prep.candidates) >= PARALLEL_CHECK_MIN:
            prep.verdicts = self._pool.submit(call.now, [raw for _, raw, _ in prep.candidates])
        return prep

    def _store(self, result: IngestResult, good: _Good) -> IngestResult:
        """Store the checked objects in one durable transaction."""
        if good:
            result.stored = self.store.write_batch(good)
            result.known += len(good) - len(result.stored)
        return result

    def _checked(self, prep: _Prepared, call: _Call, result: IngestResult, good: _Good) -> None:
        """Collect the verdicts of `prep` (or check it inline): its rejections, known ids
        and copies go to `result`, its good objects, decoded, to `good`."""
        result.extend(prep.result)
        verdicts = self._pool.collect(prep.verdicts) if prep.verdicts else None
        for n, (i, raw, oid) in enumerate(prep.candidates):
            verdict = verdicts[n] if verdicts is not None else UNCHECKED
            try:
                if verdict is None:
                    obj = decode_checked(raw, oid)
                    good.append((obj, kinds.kind_spec(obj.kind)))
                    continue
                if isinstance(verdict, Unchecked):
                    checked = validity.check(raw, call.now, oid=oid)
                else:
                    code, reason = verdict
                    if errors.layer_of(code) not in _STORED_LAYERS:
                        raise _Verdict(code, reason)
                    # Envelope and signature passed in the worker; an extension kind the
                    # worker does not know is read here against this process's registry.
                    checked = validity.understood(decode_checked(raw, oid))
                if checked.code is None:
                    assert checked.spec is not None
                    good.append((checked.obj, checked.spec))
                else:
                    good.append((checked.obj, checked.code))
                    result.unindexed.append(Rejection(i, checked.code, checked.reason, oid))
                continue
            except _Verdict as v:
                code, reason = v.code, v.reason
            except errors.ObjectError as exc:
                code, reason = exc.code, str(exc)
            call.bad[oid] = (code, reason)
            result.rejected.append(Rejection(i, code, reason, oid))
        for i, oid in prep.copies:  # copies of an earlier candidate (same or earlier batch)
            if oid in call.bad:
                code, reason = call.bad[oid]
                result.rejected.append(Rejection(i, code, reason, oid))
            else:
                result.known += 1


def check_batches(n: int) -> Iterator[tuple[int, int]]:
    """[start, end) of each check batch of a large call of `n` objects: BATCH_OBJECTS each,
    the last one taking in a remainder under PARALLEL_CHECK_MIN (which would be checked
    inline, on this interpreter, instead of by the workers: a sync fetch of 2048 objects
    is two batches, 1000 and 1048, not three with 48 checked inline)."""
    start = 0
    while start < n:
        end = start + BATCH_OBJECTS
        if n - end < PARALLEL_CHECK_MIN:
            end = n
        yield start, end
        start = end


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large call runs.

    A large call keeps every stored object (and its decoded body) in its result, so the
    tracked-object count grows by thousands a batch and each full collection walks all of
    them, to find nothing: ingest makes no reference cycles. Measured on bench/ingest.py's
    100k objects: 7 full collections of ~190 ms each, ~17 us an object. Reference counting
    still frees everything; cycles made elsewhere meanwhile are collected when it resumes.
    Nested and concurrent calls (several ingest threads) share one pause.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


_STORED_LAYERS = (errors.Layer.OPAQUE, errors.Layer.HIDE)


class _Verdict(Exception):
    """A worker's REJECT or DEFER verdict, carried to the rejection list."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class _Call:
    """State of one `ingest` call, shared by its batches."""

    now: int
    ids: Sequence[bytes] | None = None  # the objects' ids, hashed by the caller (`ingest`)
    fresh: bool = False  # no known-id look-ups (`ingest`)
    seen: set[bytes] = field(default_factory=set)  # ids already candidates in this call
    # ids rejected in this call -> (code, reason): copies later in the call share the fate
    bad: dict[bytes, tuple[str, str]] = field(default_factory=dict)


class _PoolHold:
    """This call's hold on the check workers, let go at most once; `on_release` is called
    at the first release, held or not (the call's `checked`)."""

    def __init__(
        self, pool: CheckPool, want: bool, wait_s: float, on_release: Callable[[], None] | None
    ) -> None:
        self._pool = pool
        self._on_release = on_release
        self.held = want and pool.acquire(wait_s)

    def release(self) -> None:
        if self.held:
            self.held = False
            self._pool.release()
        if self._on_release is not None:
            on_release, self._on_release = self._on_release, None
            on_release()


class _Write:
    """One hand-off to the writer: the checked objects and the result they complete."""

    def __init__(self, part: IngestResult, good: _Good, writer: IngestWriter) -> None:
        self.part, self.n = part, len(good)
        if good:
            self.fut = writer.submit(good)
        else:
            self.fut = Future()
            self.fut.set_result([])

    def finish(self) -> IngestResult:
        """The part's result once stored (raises what the write raised)."""
        self.part.stored = self.fut.result()
        self.part.known += self.n - len(self.part.stored)
        return self.part


@dataclass
class _Prepared:
    result: IngestResult
    end: int  # the batch is objects [end - size, end) of its call
    size: int
    candidates: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # index, raw, id
    copies: list[tuple[int, bytes]] = field(default_factory=list)
    verdicts: PendingVerdicts | None = None  # None: check inline in _checked
