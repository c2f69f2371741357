"""The one ingest pipeline. Every path that brings objects in (CLI, import, gossip, sync, HTTP)
calls `Ingest.ingest`:

    size check -> id (hash) -> known-id short-cut -> decode -> validate -> verify -> store

The known-id check comes right after hashing (not after validation as first sketched): an id
is the hash of the bytes, so a known id means these exact bytes were verified before, and a
re-delivery costs one hash and one lookup. Bad objects are rejected with a typed reason; the
good objects of the same batch are kept. Signature checks of large batches run on a small
thread pool: libsodium (through cffi) releases the GIL, so two cores verify at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from node.store import Store, Stored
from protocols import errors, kinds
from protocols.limits import MAX_OBJECT_BYTES
from protocols.objects import SignedObject, decode, object_id, verify

log = logging.getLogger(__name__)

# Objects per durable write transaction (DESIGN.md: commit per <= 1000 objects).
BATCH_OBJECTS = 1000
# Batches smaller than this verify inline: a thread hand-off costs more than it saves.
PARALLEL_VERIFY_MIN = 64
VERIFY_THREADS = 2


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    reason: str
    oid: bytes | None = None


@dataclass
class IngestResult:
    stored: list[Stored] = field(default_factory=list)
    known: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def extend(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.known += other.known
        self.rejected += other.rejected


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _verify_chunk(objs: Sequence[SignedObject]) -> list[bool]:
    return [verify(o) for o in objs]


class Ingest:
    def __init__(self, store: Store, *, verify_threads: int = VERIFY_THREADS) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(verify_threads, thread_name_prefix="verify")
        self._threads = verify_threads
        self.listeners: list[Callable[[list[Stored]], None]] = []

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def ingest(self, raws: Sequence[bytes], *, now: int | None = None) -> IngestResult:
        """Run `raws` through the pipeline; blocking (call it off the event loop).

        Batches are pipelined: while the pool verifies batch N, this thread decodes and
        validates batch N+1, then stores batch N.
        """
        result = IngestResult()
        t = now_ms() if now is None else now
        seen: set[bytes] = set()  # ids already candidates in this call
        bad: dict[bytes, str] = {}  # ids whose signature failed in this call -> reason
        pending: _Prepared | None = None
        for start in range(0, len(raws), BATCH_OBJECTS):
            prepared = self._prepare(raws[start : start + BATCH_OBJECTS], start, t, seen)
            if pending is not None:
                result.extend(self._finish(pending, bad))
            pending = prepared
        if pending is not None:
            result.extend(self._finish(pending, bad))
        for rej in result.rejected:
            log.info("rejected object #%d: %s (%s)", rej.index, rej.reason, rej.code)
        return result

    def _prepare(
        self, raws: Sequence[bytes], offset: int, now: int, seen: set[bytes]
    ) -> _Prepared:
        prep = _Prepared(IngestResult())
        with self.store.read() as txn:
            for i, raw in enumerate(raws, offset):
                if len(raw) > MAX_OBJECT_BYTES:
                    reason = f"object is {len(raw)} bytes; the limit is {MAX_OBJECT_BYTES}"
                    prep.result.rejected.append(Rejection(i, errors.TooLarge.code, reason))
                    continue
                oid = object_id(raw)
                if oid in seen:  # a second copy: its fate is the first copy's (see _finish)
                    prep.copies.append((i, oid))
                    continue
                if self.store.has(oid, txn):
                    prep.result.known += 1
                    continue
                try:
                    obj = decode(raw, oid=oid)
                    spec = kinds.validate(obj, now)
                except errors.ObjectError as exc:
                    prep.result.rejected.append(Rejection(i, exc.code, str(exc), oid))
                    continue
                seen.add(oid)
                prep.candidates.append((i, obj, spec))
        objs = [obj for _, obj, _ in prep.candidates]
        if len(objs) < PARALLEL_VERIFY_MIN or self._threads < 2:
            prep.verdicts = [_done(_verify_chunk(objs))]
        else:
            step = -(-len(objs) // self._threads)
            prep.verdicts = [
                self._pool.submit(_verify_chunk, objs[i : i + step])
                for i in range(0, len(objs), step)
            ]
        return prep

    def _finish(self, prep: _Prepared, bad: dict[bytes, str]) -> IngestResult:
        result = prep.result
        oks = [ok for fut in prep.verdicts for ok in fut.result()]
        good = []
        reason = "signature does not match the author's key"
        for (i, obj, spec), ok in zip(prep.candidates, oks, strict=True):
            if ok:
                good.append((obj, spec))
            else:
                bad[obj.id] = reason
                result.rejected.append(Rejection(i, errors.BadSignature.code, reason, obj.id))
        for i, oid in prep.copies:  # copies of an earlier candidate (same or earlier batch)
            if oid in bad:
                result.rejected.append(Rejection(i, errors.BadSignature.code, bad[oid], oid))
            else:
                result.known += 1
        if good:
            result.stored = self.store.write_batch(good)
            result.known += len(good) - len(result.stored)
        if result.stored:
            for listener in self.listeners:
                listener(result.stored)
        return result


@dataclass
class _Prepared:
    result: IngestResult
    candidates: list[tuple[int, SignedObject, kinds.KindSpec]] = field(default_factory=list)
    copies: list[tuple[int, bytes]] = field(default_factory=list)
    verdicts: list[Future[list[bool]]] = field(default_factory=list)


def _done(value: list[bool]) -> Future[list[bool]]:
    fut: Future[list[bool]] = Future()
    fut.set_result(value)
    return fut
