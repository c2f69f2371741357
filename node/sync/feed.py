"""What a session's fetch streams bring, ingested in large calls (node/sync/fetch.py feeds it).

Why not one ingest call per fetched frame: a frame holds at most MAX_FETCH_IDS objects, and
a call that small got a write transaction of its own (at 100k stored, every one of 49 was
2048 objects; `percolab import`'s group commit makes 4,000-32,000, and a transaction's page
writes are shared by its objects: docs/ingest.md) and handed the check workers over at every
call. An empty node catching up ran at ~0.7x the ingest rate of the same machine.

So the fetch streams put what they receive here, and FEED_CALLS tasks take it out in calls
of up to FEED_CALL_OBJECTS objects / FEED_CALL_BYTES: one call's checks run at a time;
the next call starts as soon as the previous one's verdicts are in (`Ingest.ingest`'s
`checked`), while that one's last writes go on, so the workers and the writer stay busy.

Memory is bounded: a fetch stream waits (`put`) while more than FEED_MAX_BYTES are waiting
to be taken, and a call holds at most FEED_CALL_BYTES. What a frame earns is unchanged: one
strike per frame holding invalid objects, its objects stored (or rejected) as one call would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import trio

from node.ingest.pipeline import MAX_WRITE_BATCH_OBJECTS, IngestResult
from node.store import Stored

# Objects and bytes one ingest call of a session takes at most (whole fetch answers of up to
# 2048). A call of ~16,000 ~1 KiB objects is four of the pipeline's write transactions of
# ~4,000, or fewer and larger ones while the writer is busy, and the writes of the two calls
# in flight fit one transaction of MAX_WRITE_BATCH_OBJECTS (group commit: at 1M stored the
# writer is the stage that limits, and a transaction of 32,000 costs it less an object than
# one of 16,000; docs/ingest.md). Two calls of 16,384 would not fit one.
FEED_CALL_OBJECTS = MAX_WRITE_BATCH_OBJECTS // 2
FEED_CALL_BYTES = 16 * 1024 * 1024
# Bytes fetched and not yet taken by a call: the fetch streams wait beyond this. With
# FEED_CALLS calls in flight, a session holds at most FEED_MAX_BYTES + FEED_CALLS x
# FEED_CALL_BYTES of fetched objects (40 MiB), plus the frames being read.
FEED_MAX_BYTES = 8 * 1024 * 1024
# Ingest calls in flight per session: one checking, the other finishing its writes.
FEED_CALLS = 2


class FeedHost(Protocol):
    """What the feed needs of the sync service (node/sync/fetching.py)."""

    def _ingest_from(
        self,
        peer_id: str,
        raws: list[bytes],
        oids: list[bytes],
        checked: Callable[[], None] | None = None,
        *,
        fresh: bool = False,
    ) -> IngestResult: ...

    def _pass_on(self, stored: list[Stored]) -> None: ...

    def _violation(self, peer_id: str, reason: str) -> None: ...


@dataclass
class _Frame:
    raws: list[bytes]
    ids: list[bytes]  # of raws, hashed by the fetch as they arrived
    size: int
    done: Callable[[], None] | None  # called once its objects are ingested


@dataclass
class _Taken:
    raws: list[bytes] = field(default_factory=list)
    ids: list[bytes] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # end index of each frame in raws
    done: list[Callable[[], None]] = field(default_factory=list)
    size: int = 0


class IngestFeed:
    """Frames of one session's fetches, from one peer, ingested by `run` until `close`d."""

    def __init__(self, sync: FeedHost, peer_id: str) -> None:
        self.sync = sync
        self.peer_id = peer_id
        self.stored = 0  # objects newly stored
        self._frames: deque[_Frame] = deque()
        self._waiting_bytes = 0
        self._closed = False
        self._changed = trio.Event()
        self._turn = trio.Semaphore(1)  # the one call checking at a time
        self.on_progress: Callable[[], None] | None = None  # after a call stored objects

    async def put(
        self, raws: list[bytes], ids: list[bytes], done: Callable[[], None] | None = None
    ) -> None:
        """Queue a frame's objects and their ids (the fetch hashed them: ingest does not
        again) for ingest, waiting while the feed is full. `done` is called on the event
        loop once they are ingested."""
        if len(ids) != len(raws):
            raise ValueError(f"{len(ids)} ids for {len(raws)} objects")
        while self._waiting_bytes > FEED_MAX_BYTES:
            await self._wait()
        size = sum(map(len, raws))
        self._frames.append(_Frame(raws, ids, size, done))
        self._waiting_bytes += size
        self._wake()

    def close(self) -> None:
        """No more frames: `run` ends once the queued ones are ingested."""
        self._closed = True
        self._wake()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(FEED_CALLS):
                nursery.start_soon(self._caller)

    def _wake(self) -> None:
        event, self._changed = self._changed, trio.Event()
        event.set()

    async def _wait(self) -> None:
        await self._changed.wait()

    def _take(self) -> _Taken:
        taken = _Taken()
        while self._frames:
            frame = self._frames[0]
            full = len(taken.raws) + len(frame.raws) > FEED_CALL_OBJECTS
            if taken.raws and (full or taken.size + frame.size > FEED_CALL_BYTES):
                break
            self._frames.popleft()
            taken.raws += frame.raws
            taken.ids += frame.ids
            taken.ends.append(len(taken.raws))
            if frame.done is not None:
                taken.done.append(frame.done)
            taken.size += frame.size
        self._waiting_bytes -= taken.size
        self._wake()  # room for the fetch streams
        return taken

    async def _caller(self) -> None:
        token = trio.lowlevel.current_trio_token()
        while True:
            await self._turn.acquire()
            released = False

            def release() -> None:
                nonlocal released
                if not released:
                    released = True
                    self._turn.release()

            try:
                while not self._frames and not self._closed:
                    await self._wait()
                if not self._frames:  # closed and drained
                    release()
                    return
                taken = self._take()
                result = IngestResult()  # ends of fetches alone: nothing to ingest
                if taken.raws:

                    def checked() -> None:  # on the ingest thread: the next call may start
                        token.run_sync_soon(release)

                    # fresh: the fetch asked only for ids found unstored (FetchQueue)
                    ingest = partial(self.sync._ingest_from, fresh=True)
                    result = await trio.to_thread.run_sync(
                        ingest, self.peer_id, taken.raws, taken.ids, checked
                    )
            finally:
                release()
            self._ingested(taken, result)

    def _ingested(self, taken: _Taken, result: IngestResult) -> None:
        self.stored += len(result.stored)
        if result.stored and self.on_progress is not None:
            self.on_progress()
        self.sync._pass_on(result.stored)
        faults: dict[int, list[Any]] = {}  # frame -> its objects' faults
        for rej in result.peer_faults:
            frame = next(i for i, end in enumerate(taken.ends) if rej.index < end)
            faults.setdefault(frame, []).append(rej)
        for bad in faults.values():
            # One strike per frame holding invalid objects (bounded work: the frame was
            # bounded, and a blocked peer's streams end). Deferred objects (ahead of our
            # clock) are nobody's fault: fetched again by a later session in their time.
            self.sync._violation(
                self.peer_id, f"fetch: {len(bad)} invalid objects ({bad[0].reason})"
            )
        for done in taken.done:
            done()
