"""The ingest writer: a thread that stores checked objects, with group commit across calls.

Every large ingest call hands its checked objects here (node/ingest/pipeline.py). Requests that
queue while a transaction is being written are stored together in the next one, up to
`most_objects` (MAX_WRITE_BATCH_OBJECTS), whichever call they came from. Why: the bulk paths
(sync fetches, `percolab import`) call ingest with a few thousand objects at a time; each
call alone ended in one small transaction, and at 1M stored a transaction's page writes are
shared by its objects (docs/ingest.md). Two calls in flight now make one large transaction
instead of two small ones. Each request still gets its own result, and its future completes
only once its objects are durable.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future

from node.store import Store, Stored, StoreError
from protocols import kinds
from protocols.objects import SignedObject

log = logging.getLogger(__name__)

Checked = Sequence[tuple[SignedObject, kinds.KindSpec | str]]  # see Store.write_batch


class WriterClosed(RuntimeError):
    pass


class IngestWriter:
    """One thread, one transaction at a time; `submit` returns the objects newly stored."""

    def __init__(self, store: Store, *, most_objects: int) -> None:
        self._store = store
        self._most = most_objects
        self._cond = threading.Condition()
        self._queue: deque[tuple[Checked, Future[list[Stored]]]] = deque()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def submit(self, good: Checked) -> Future[list[Stored]]:
        fut: Future[list[Stored]] = Future()
        with self._cond:
            if self._closed:
                raise WriterClosed("the ingest writer is closed")
            self._queue.append((good, fut))
            self._cond.notify()
        return fut

    def close(self) -> None:
        """Store what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _next_group(self) -> list[tuple[Checked, Future[list[Stored]]]]:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            group: list[tuple[Checked, Future[list[Stored]]]] = []
            n = 0
            while self._queue and (not group or n + len(self._queue[0][0]) <= self._most):
                item = self._queue.popleft()
                group.append(item)
                n += len(item[0])
            return group

    def _run(self) -> None:
        group: list[tuple[Checked, Future[list[Stored]]]] = []
        try:
            while group := self._next_group():
                self._write(group)
        except BaseException:  # the thread ends either way: say so, where it is seen
            log.critical("the ingest writer stopped; every later write fails", exc_info=True)
        finally:
            # Nothing may wait forever on a writer that stopped (only a bug stops it early):
            # what it held and what is queued fail, and later submits raise WriterClosed.
            with self._cond:
                self._closed = True
                group += self._queue
                self._queue.clear()
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(WriterClosed("the ingest writer stopped"))

    def _write(self, group: list[tuple[Checked, Future[list[Stored]]]]) -> None:
        """Store one group; every request of it gets its own objects, or the error."""
        try:
            stored = self._store.write_batch([pair for good, _ in group for pair in good])
            self._hand_back(group, stored)
        except StoreError as exc:  # disk full, read-only, damaged: the callers report it
            log.info("ingest write failed: %s", exc)
            self._fail(group, exc)
        except Exception as exc:
            log.exception("ingest write failed")
            self._fail(group, exc)

    @staticmethod
    def _fail(group: list[tuple[Checked, Future[list[Stored]]]], exc: Exception) -> None:
        for _, fut in group:
            if not fut.done():
                fut.set_exception(exc)

    @staticmethod
    def _hand_back(group: list[tuple[Checked, Future[list[Stored]]]], stored: list[Stored]) -> None:
        if len(group) == 1:
            group[0][1].set_result(stored)
            return
        # Back to each request, in its own order: write_batch keeps the order it was given,
        # so a request's stored objects are the next ones in line that are its own (by
        # identity: no per-object dict). An object in two requests of the group was stored
        # once: the first request has it, the second counts it as known.
        nxt = iter(stored)
        pending = next(nxt, None)
        for good, fut in group:
            mine = []
            for obj, _ in good:
                if pending is not None and pending.obj is obj:
                    mine.append(pending)
                    pending = next(nxt, None)
            fut.set_result(mine)
