"""One sync session's fetch queue, and small helpers of the sync service (node/sync/service.py).

Ids a session learns it lacks are queued here while reconciliation goes on and fetched in
batches from the same peer; a peer that serves much less than it claimed gets a strike.

What the fetches bring is ingested through the session's feed (node/sync/feed.py), in
calls large enough for the ingest pipeline's group commit.

Memory is bounded whatever the peer claims: the session waits (`wait_for_room`) while more
than MAX_FETCH_BACKLOG of its ids are queued, being fetched or waiting to be ingested, so a
peer naming made-up ids round after round gets no further than one backlog before its first
batch goes unserved (a violation) or times out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import trio

from node.sync.feed import FEED_CALL_OBJECTS, FEED_CALLS, FeedHost, IngestFeed
from p2p.sync_transport import PeerViolation, SessionIO
from protocols.sync_messages import MAX_FETCH_IDS


@dataclass
class SyncStats:
    sessions_done: int = 0
    sessions_failed: int = 0
    fetched: int = 0  # objects newly stored through sync or reference fetches
    refs_fetched: int = 0
    served: int = 0  # objects sent to peers
    violations: int = 0
    last: dict[str, Any] = field(default_factory=dict)


class Fetcher(FeedHost, Protocol):
    """What a fetch queue needs of the sync service (node/sync/service.py), which owns the
    ids wanted by all its sessions and fetches batches from peers."""

    _wanted: dict[bytes, int]

    def _want(self, ids: Iterable[bytes]) -> None: ...

    def _unwant(self, ids: Iterable[bytes]) -> None: ...

    def _unknown(self, ids: Sequence[bytes]) -> list[bytes]: ...

    async def fetch_from(
        self, peer_id: str, ids: Sequence[bytes], io: SessionIO
    ) -> tuple[int, int]: ...

    async def fetch_frames(
        self,
        peer_id: str,
        ids: Sequence[bytes],
        io: SessionIO,
        on_frame: Callable[[list[bytes], list[bytes]], Awaitable[None]],
    ) -> int: ...

FETCH_BATCH = MAX_FETCH_IDS  # ids per fetch request
FETCH_DEADLINE_S = 60.0  # one fetch request, all its frames
# Fetch streams per session at once: while one fetch's objects are written, the next ones
# are checked (node/ingest/writer.py) and served. bench/sync.py at 100k, B empty: catch-up at
# 0.56x the ingest rate with two, 0.74x with four (the server's per-peer limit). A peer of
# the first release (it speaks only sync 1.0.0) serves at most 4 fetch streams per peer, one
# of which a reference or responder fetch may take: two for it. Peers of this release serve 8.
FETCH_PARALLEL = 4
FETCH_PARALLEL_FIRST_RELEASE = 2
MIN_SERVED_FRACTION = 0.5  # a peer serving less than this of what it claimed gets a strike
# ... judged per batch of at least MIN_JUDGED_IDS ids, and over the session so far (so that
# many small unserved batches count too).
MIN_JUDGED_IDS = 16
# Ids one session may have queued, in flight or not yet ingested before its reconciliation
# waits for the fetch to catch up: bounds what a peer can make a session remember (~100 B an
# id with the bookkeeping: ~3.2 MB), and MAX_PARALLEL_PEERS sessions bound the node's total.
# An honest catch-up loses nothing: fetching, not reconciling, is the slow part. Room for
# the feed's calls in flight (node/sync/feed.py) and as many again queued and being fetched,
# so that the next call's objects are there when the one checking is done.
MAX_FETCH_BACKLOG = FEED_CALLS * FEED_CALL_OBJECTS + 8 * FETCH_BATCH


class FetchQueue:
    """Ids one session will fetch from one peer: added while reconciling, fetched in
    batches by ``run`` (a task of the session's nursery) until ``close``d and drained."""

    def __init__(self, sync: Fetcher, peer_id: str) -> None:
        self.sync = sync
        self.peer_id = peer_id
        self.queue: list[bytes] = []
        self.io = SessionIO()
        self.feed = IngestFeed(sync, peer_id)  # what the fetches bring is ingested there
        self.requested = 0  # ids asked of the peer (not known here when asked)
        self.unserved = 0
        self._closed = False
        self._event = trio.Event()
        self._claimed: dict[bytes, None] = {}  # ids of this session wanted (ordered)
        self.parallel = FETCH_PARALLEL  # set before `run` (FETCH_PARALLEL_FIRST_RELEASE)

    def add(self, ids: Iterable[bytes]) -> None:
        """Queue ids to fetch. Ids some session is fetching already are skipped; ids fetched
        already are dropped when their batch is taken (`SyncService._unknown`)."""
        fresh = [oid for oid in dict.fromkeys(ids) if oid not in self.sync._wanted]
        if not fresh:
            return
        self.sync._want(fresh)
        self._claimed.update(dict.fromkeys(fresh))
        self.queue += fresh
        self._wake()

    @property
    def stored(self) -> int:
        """Objects this session's fetches newly stored."""
        return self.feed.stored

    @property
    def backlog(self) -> int:
        """Ids of this session queued, being fetched or not yet ingested."""
        return len(self._claimed)

    async def wait_for_room(self) -> None:
        """Wait until the backlog is at most MAX_FETCH_BACKLOG (the fetch drains it; a fetch
        that fails ends the session, and so this wait)."""
        while self.backlog > MAX_FETCH_BACKLOG:
            await self._event.wait()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        event, self._event = self._event, trio.Event()
        event.set()

    def release(self) -> None:
        self.sync._unwant(self._claimed)
        self._claimed = {}

    async def run(self) -> None:
        async with trio.open_nursery() as outer:
            outer.start_soon(self.feed.run)
            try:
                async with trio.open_nursery() as nursery:
                    for _ in range(self.parallel):
                        nursery.start_soon(self._worker)
            finally:
                self.feed.close()  # the feed ingests what is left, then `run` returns

    async def _worker(self) -> None:
        while True:
            if not self.queue:
                if self._closed:
                    return
                await self._event.wait()
                continue
            batch, self.queue = self.queue[:FETCH_BATCH], self.queue[FETCH_BATCH:]
            todo = await trio.to_thread.run_sync(self.sync._unknown, batch)
            if not todo:
                self._done(batch)
                continue
            received = await self.sync.fetch_frames(self.peer_id, todo, self.io, self.feed.put)
            self.requested += len(todo)
            self.unserved += len(todo) - received
            for asked, missed in ((len(todo), len(todo) - received),
                                  (self.requested, self.unserved)):  # fmt: skip
                if asked >= MIN_JUDGED_IDS and asked - missed < MIN_SERVED_FRACTION * asked:
                    raise PeerViolation(
                        f"served {asked - missed} of {asked} objects it claimed to hold"
                    )
            # Wanted until ingested, so that no other session fetches them meanwhile.
            await self.feed.put([], [], partial(self._done, batch))

    def _done(self, batch: list[bytes]) -> None:
        """A batch is fetched and ingested (or was known already): no longer wanted."""
        self.sync._unwant(batch)
        for oid in batch:
            self._claimed.pop(oid, None)
        self._wake()  # room for the session (wait_for_room)


async def reset_stream(stream: Any) -> None:
    try:
        with trio.move_on_after(1):
            await stream.reset()
    except Exception:
        pass


def unwrap(exc: BaseException) -> BaseException:
    """The interesting exception inside (nested) exception groups from nurseries: a
    PeerViolation if there is one, else the first leaf."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [unwrap(e) for e in exc.exceptions]
    for leaf in leaves:
        if isinstance(leaf, PeerViolation):
            return leaf
    return leaves[0]
