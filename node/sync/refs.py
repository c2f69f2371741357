"""Missing references: objects that stored objects point at and this node lacks.

Every stored object (whatever path it came by) whose referenced objects
(``kind_spec(kind).refs``: a comment's project, a project's lab...) are unknown gets them
fetched by id over ``/percolab/fetch/1.0.0``: from the peer it came from when known, else
from connected peers. Requests are batched (``REF_DELAY_S``) and a reference nobody served
is not asked for again for a while (``REF_RETRY_S``). Owned by ``SyncService``
(node/sync/service.py), which runs ``RefResolver.run`` in its nursery.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

import trio

from node.store.store import Store, Stored
from node.sync.fetch import FETCH_BATCH, FETCH_DEADLINE_S, Fetcher, SyncStats
from p2p.sync_transport import PeerViolation, SessionIO
from protocols import kinds
from protocols.reconcile_store import ID_BYTES
from protocols.sync_messages import MAX_FETCH_IDS


class RefHost(Fetcher, Protocol):
    """What the resolver needs of the sync service (node/sync/service.py), beyond fetching."""

    store: Store
    stats: SyncStats
    _token: trio.lowlevel.TrioToken | None

    def peers(self) -> list[str]: ...

    def _ingesting_from(self) -> str | None: ...

    def _violation(self, peer_id: str, reason: str) -> None: ...

log = logging.getLogger(__name__)

REF_DELAY_S = 0.5  # batch missing references (and let running fetches land first)
MAX_PENDING_REFS = 10_000  # queued missing references (more are dropped: sync repairs them)
REF_PEERS = 3  # peers asked for a missing reference before giving up for a while
REF_RETRY_S = 300.0  # a reference nobody served is not asked for again before this
MAX_NOT_FOUND = 50_000  # size of that negative cache


class RefResolver:
    def __init__(self, sync: RefHost) -> None:
        self.sync = sync
        self._not_found: OrderedDict[bytes, float] = OrderedDict()
        self._send, self._recv = trio.open_memory_channel[tuple[list[bytes], str | None]](
            MAX_PENDING_REFS
        )

    def on_stored(self, stored: list[Stored]) -> None:
        """From the ingest listener (worker thread): queue unknown referenced ids."""
        sync = self.sync
        refs: set[bytes] = set()
        names_of: dict[str, tuple[str, ...]] = {}  # kind -> its reference fields
        for s in stored:  # every object a catch-up stores: kept lean (the writer waits)
            if not s.visible:  # opaque or hidden: its references are not read
                continue
            obj = s.obj
            names = names_of.get(obj.kind)
            if names is None:
                names = names_of[obj.kind] = tuple(kinds.kind_spec(obj.kind).refs)
            body = obj.body
            for name in names:
                value = body.get(name)
                if type(value) is bytes and len(value) == ID_BYTES:
                    refs.add(value)
        if not refs:
            return
        with sync.store.read() as txn:
            missing = [oid for oid in refs if not sync.store.has(oid, txn)]
        if missing and sync._token is not None:
            # One peer for the whole call: the one whose fetch this thread ingests, if any.
            sync._token.run_sync_soon(self._queue, missing, sync._ingesting_from())

    def _queue(self, ids: list[bytes], peer: str | None) -> None:
        try:
            self._send.send_nowait((ids, peer))
        except trio.WouldBlock:
            log.info("dropping %d missing references: queue full", len(ids))

    async def run(self) -> None:
        while True:
            batch: dict[bytes, str | None] = {}
            ids, peer = await self._recv.receive()
            for oid in ids:
                batch.setdefault(oid, peer)
            await trio.sleep(REF_DELAY_S)
            while len(batch) < MAX_FETCH_IDS:
                try:
                    ids, peer = self._recv.receive_nowait()
                except trio.WouldBlock:
                    break
                for oid in ids:
                    batch.setdefault(oid, peer)
            await self._fetch(batch)

    async def _fetch(self, batch: dict[bytes, str | None]) -> None:
        sync = self.sync
        now = time.monotonic()
        candidates = [
            oid
            for oid in batch
            if oid not in sync._wanted and now - self._not_found.get(oid, -1e18) > REF_RETRY_S
        ]
        todo = await trio.to_thread.run_sync(sync._unknown, candidates)
        peers = sync.peers()
        if not todo or not peers:
            return
        preferred = {p for p in batch.values() if p}
        order = [p for p in peers if p in preferred] + [p for p in peers if p not in preferred]
        sync._want(todo)
        try:
            left = list(todo)
            for peer in order[: max(REF_PEERS, len(preferred))]:
                if not left:
                    break
                io = SessionIO()
                try:
                    with trio.move_on_after(FETCH_DEADLINE_S):
                        _, stored = await sync.fetch_from(peer, left[:FETCH_BATCH], io)
                        sync.stats.refs_fetched += stored
                except PeerViolation as exc:
                    sync._violation(peer, f"fetch: {exc}")
                except Exception as exc:
                    log.info("reference fetch from %s failed: %s", peer, exc)
                still = set(await trio.to_thread.run_sync(sync._unknown, left))
                left = [oid for oid in left if oid in still]
            for oid in left:
                self._not_found[oid] = now
                self._not_found.move_to_end(oid)
            while len(self._not_found) > MAX_NOT_FOUND:
                self._not_found.popitem(last=False)
        finally:
            sync._unwant(todo)
