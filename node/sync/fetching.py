"""The fetching half of the sync service (node/sync/service.py): serving fetches to peers
within their budgets, fetching batches of objects from peers and ingesting them, passing
fetched objects on, and the ids wanted or deferred. `SyncService` adds the sessions."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any

import trio

from node.ingest.pipeline import IngestResult
from node.store import Store, Stored
from node.sync.fetch import FETCH_DEADLINE_S, SyncStats, reset_stream
from node.sync.host import SyncHost
from node.sync.serve import PeerServeBudget, ServeBudgets
from p2p.framing import FrameError
from p2p.sync_transport import (
    PeerViolation,
    SessionIO,
    fetch_objects_with_ids,
    peer_of,
    serve_fetch,
)
from protocols import errors
from protocols.limits import MAX_FUTURE_SKEW_MS
from protocols.objects import decode
from protocols.sync_messages import FETCH_PROTOCOL_ID, MAX_FETCH_FRAME_BYTES, MAX_FETCH_IDS

log = logging.getLogger(__name__)

MAX_FETCH_SERVES_PER_PEER = 8  # incoming fetch streams at once, per peer (4 before 1.1.0) ...
MAX_FETCH_SERVES_TOTAL = 16  # ... and in total
# Ids looked up at a time when serving a fetch (one LMDB read transaction, one hand-off to
# a thread: at 256 a time, a quarter of the serving node's profile samples in bench/sync.py
# were hand-offs), reading at most LOOKUP_BYTES (a bound on memory whatever the objects'
# sizes; an answer frame is sent from half a frame's bytes on).
LOOKUP_CHUNK = MAX_FETCH_IDS
LOOKUP_BYTES = MAX_FETCH_FRAME_BYTES // 2
GOSSIP_RECENT_MS = 60_000  # fetched objects younger than this are passed on by gossip ...
MAX_GOSSIP_PASS_ON = 16  # ... when a fetch brought no more than this many (else: news)
# Objects deferred by their timestamp, remembered so as not to fetch them before their time.
MAX_DEFERRED_IDS = 65_536


class Fetching(ABC):
    def __init__(self, node: SyncHost) -> None:
        self.node = node
        self.store: Store = node.store
        self.stats = SyncStats()
        self._serving_fetch: dict[str, int] = {}
        self._wanted: dict[bytes, int] = {}  # ids some session will fetch (refcount)
        self._fetch_serve_limit = trio.CapacityLimiter(MAX_FETCH_SERVES_TOTAL)
        # .peer: the peer whose fetched objects this thread is ingesting (`_ingesting_from`)
        self._ingesting = threading.local()
        self._deferred: dict[bytes, int] = {}  # id -> ts of objects deferred (too far ahead)
        self._budgets = ServeBudgets()  # what serving fetches may cost, per peer

    @abstractmethod
    def news(self) -> None:
        """New objects arrived outside gossip: reconcile with every peer soon."""

    # ---- fetch server ------------------------------------------------------------------

    async def _handle_fetch(self, stream: Any) -> None:
        peer_id = peer_of(stream)
        if self._serving_fetch.get(peer_id, 0) >= MAX_FETCH_SERVES_PER_PEER:
            await reset_stream(stream)
            return
        self._serving_fetch[peer_id] = self._serving_fetch.get(peer_id, 0) + 1
        try:
            async with self._fetch_serve_limit:
                with trio.move_on_after(FETCH_DEADLINE_S) as deadline:
                    budget = self._budgets.of(peer_id)
                    sent = await serve_fetch(
                        stream, partial(self._lookup, budget), chunk=LOOKUP_CHUNK
                    )
                    self.stats.served += sent
                if deadline.cancelled_caught:
                    await reset_stream(stream)
        except PeerViolation as exc:
            self._violation(peer_id, f"fetch request: {exc}")
            await reset_stream(stream)
        except FrameError:
            await reset_stream(stream)
        finally:
            self._serving_fetch[peer_id] -= 1
            if not self._serving_fetch[peer_id]:
                del self._serving_fetch[peer_id]

    async def _lookup(
        self, budget: PeerServeBudget, ids: Sequence[bytes]
    ) -> tuple[list[bytes], int]:
        """The objects we hold of the first ids of `ids`, up to LOOKUP_BYTES, and how many
        ids that took (`serve_fetch`), within the asking peer's budget (node/sync/serve.py:
        a repeat-asking peer is a violation, a fast one waits)."""

        def read() -> tuple[list[bytes], int, int]:
            out: list[bytes] = []
            size = n = 0
            with self.store.read() as txn:
                for oid in ids:
                    n += 1
                    raw = self.store.get_raw(txn, oid)
                    if raw is not None:
                        out.append(raw)
                        size += len(raw)
                        if size >= LOOKUP_BYTES:
                            break
            return out, size, n

        found, size, through = await trio.to_thread.run_sync(read)
        budget.note_asked(ids[:through])  # only those: the rest are asked of us next
        await budget.take(size)
        return found, through

    # ---- fetching ----------------------------------------------------------------------

    def _want(self, ids: Iterable[bytes]) -> None:
        for oid in ids:
            self._wanted[oid] = self._wanted.get(oid, 0) + 1

    def _unwant(self, ids: Iterable[bytes]) -> None:
        for oid in ids:
            n = self._wanted.get(oid, 0) - 1
            if n > 0:
                self._wanted[oid] = n
            else:
                self._wanted.pop(oid, None)

    async def fetch_from(
        self, peer_id: str, ids: Sequence[bytes], io: SessionIO
    ) -> tuple[int, int]:
        """Fetch ``ids`` (≤ FETCH_BATCH) from the peer and ingest them as frames arrive.
        Returns (objects received, objects newly stored). Raises PeerViolation."""
        stored = 0

        async def ingest(raws: list[bytes], oids: list[bytes]) -> None:
            nonlocal stored
            result = await trio.to_thread.run_sync(self._ingest_from, peer_id, raws, oids)
            stored += len(result.stored)
            self._pass_on(result.stored)
            faults = result.peer_faults
            if faults:
                # One strike per frame holding invalid objects (bounded work: the frame was
                # bounded, and a blocked peer's streams end). Deferred objects (ahead of our
                # clock) are nobody's fault: fetched again by a later session once their
                # time has come.
                self._violation(
                    peer_id, f"fetch: {len(faults)} invalid objects ({faults[0].reason})"
                )

        received = await self.fetch_frames(peer_id, ids, io, ingest)
        return received, stored

    async def fetch_frames(
        self,
        peer_id: str,
        ids: Sequence[bytes],
        io: SessionIO,
        on_frame: Callable[[list[bytes], list[bytes]], Awaitable[None]],
    ) -> int:
        """Fetch ``ids`` (≤ FETCH_BATCH) from the peer, handing each frame's objects and
        their ids (hashed on arrival, to check them) to `on_frame` as they arrive (a
        session's feed: node/sync/feed.py). Returns the number of objects received. Raises
        PeerViolation."""
        p2p = self.node.p2p
        assert p2p is not None
        received = 0
        with trio.fail_after(FETCH_DEADLINE_S):
            stream = await p2p.new_stream(peer_id, [FETCH_PROTOCOL_ID])
            try:
                async for raws, oids in fetch_objects_with_ids(stream, ids, io=io):
                    received += len(raws)
                    await on_frame(raws, oids)
            except BaseException:
                await reset_stream(stream)
                raise
        return received

    def _pass_on(self, stored: list[Stored]) -> None:
        """Spread what a session fetched. Recent objects go out by gossip: either gossip
        is delivering them anyway (we caught them in flight; the duplicate is dropped by
        message id) or they come from a part of the network we just joined, and gossip
        carries them across ours. Older ones set off reconciliation with every peer (bulk
        belongs on sync). Publishing every fetched object, or reconciling after every fetch,
        measured far costlier: a periodic session during live traffic catches objects in
        flight, and a round with all peers caught more, in a cascade."""
        if len(stored) > MAX_GOSSIP_PASS_ON:  # many (a catch-up's call): not even looked at
            self.news()
            return
        horizon = time.time_ns() // 1_000_000 - GOSSIP_RECENT_MS
        recent = [s.obj for s in stored if s.obj.ts >= horizon]
        if len(recent) < len(stored) or len(recent) > MAX_GOSSIP_PASS_ON:
            self.news()  # old or many: a catch-up, not a few objects in flight
            return
        for obj in recent:
            self.node.publish_object(obj)

    def _ingest_from(
        self,
        peer_id: str,
        raws: list[bytes],
        oids: list[bytes],
        checked: Callable[[], None] | None = None,
        *,
        fresh: bool = False,
    ) -> IngestResult:
        """Ingest objects fetched from the peer (on a worker thread). `oids`: their ids, as
        the fetch hashed them on arrival (`Ingest.ingest`'s `ids`: not hashed again);
        `checked` and `fresh` as in `Ingest.ingest`."""
        # Where these came from, so that missing references are asked of the same peer:
        # the ingest listeners run on this thread (node/sync/refs.py).
        self._ingesting.peer = peer_id
        try:
            result = self.node.ingest.ingest(raws, ids=oids, checked=checked, fresh=fresh)
        finally:
            self._ingesting.peer = None
        self.stats.fetched += len(result.stored)
        for rej in result.rejected:
            if rej.code == errors.FutureTimestamp.code and rej.oid is not None:
                self._defer(rej.oid, raws[rej.index])
        return result

    def _ingesting_from(self) -> str | None:
        """The peer whose fetched objects this thread is ingesting (None: not a fetch's)."""
        peer: str | None = getattr(self._ingesting, "peer", None)
        return peer

    def _defer(self, oid: bytes, raw: bytes) -> None:
        """Remember not to fetch a deferred object again before its time (docs/protocol.md
        §4): every session would re-fetch it, and its server would see repeats."""
        try:
            ts = decode(raw, oid=oid).ts
        except errors.ObjectError:
            return
        self._deferred[oid] = ts
        while len(self._deferred) > MAX_DEFERRED_IDS:
            self._deferred.pop(next(iter(self._deferred)))

    def _unknown(self, ids: Sequence[bytes]) -> list[bytes]:
        """Ids to fetch: not stored here, and not deferred to a time still to come."""
        deferred = self._deferred
        if deferred:
            horizon = time.time_ns() // 1_000_000 + MAX_FUTURE_SKEW_MS
            for oid in [o for o in ids if o in deferred and deferred[o] <= horizon]:
                del deferred[oid]  # its time has come: fetch it again
        with self.store.read() as txn:
            return [
                oid for oid in ids if oid not in deferred and not self.store.has(oid, txn)
            ]

    def _violation(self, peer_id: str, reason: str) -> None:
        self.stats.violations += 1
        log.info("peer %s violated the sync protocol: %s", peer_id, reason)
        if self.node.p2p is not None:
            self.node.p2p.report_invalid(peer_id, reason)
