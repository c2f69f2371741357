"""Living projects in the node: each project's revision DAG replayed into its current state
(`protocols.project_history.ProjectHistory`), kept per store and fed by ingest.

Built like node/service/members.py: one registry per store (`attach`), an ingest listener,
one lock. The registry holds an LRU of at most MAX_CACHED_PROJECTS histories, each built on
demand from the store's `revisions` index (a project's revisions, by time) and then fed
incrementally by every stored batch: a new revision of a cached project is added (an edit on
top is applied in O(changes) by the history's fast path), a
retraction of one removes its effect, and an object or retraction that settles a superseded
link the history was waiting for marks it met ("gone") or forged ("foreign").

Authority depends on attribution (who a revision speaks for), which identity objects change:
every history remembers the `Members.generation` it was built under and is rebuilt when that
moved. A history is built under the lock the listener takes after each commit, so a batch
committed during a build is fed to it afterwards (adding a revision twice is harmless).
A revision arriving for a project that is here but not cached builds its history at once
(reading what is stored so far), so the project of a busy co-design stays cached.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from node.ingest.pipeline import Ingest
from node.service.members import Members
from node.service.registry import PerStore
from node.store.read import prefix_items
from node.store.store import Store, Stored
from protocols.living import project_fields
from protocols.objects import SignedObject, decode_checked, object_id
from protocols.project_history import (
    HistoryEntry,
    ProjectHistory,
    ProjectState,
    RevisionRecord,
)

log = logging.getLogger(__name__)

# Project histories kept in memory (least recently used dropped first): a history of n
# revisions holds n small records, so 512 ordinary projects cost a few MB.
MAX_CACHED_PROJECTS = 512
# Histories a stored batch may build for projects not cached (those it revises most): a
# catch-up bringing the revisions of thousands of projects must not read each of them again
# batch after batch as they push each other out of the cache; the rest are built on demand.
MAX_WARM_PER_BATCH = 8




class _Entry:
    __slots__ = ("generation", "history", "revisions")

    def __init__(self, history: ProjectHistory, generation: int) -> None:
        self.history = history
        self.generation = generation
        self.revisions: set[bytes] = set()  # ids added (to know what a retraction touches)


class Living:
    """Thread-safe histories of one store's projects (ingest thread and query threads)."""

    def __init__(self, store: Store, members: Members) -> None:
        self.store, self.members = store, members
        self._lock = threading.RLock()
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._ingests: weakref.WeakSet[Ingest] = weakref.WeakSet()
        self.builds = 0  # histories built from the store (tests and the benchmark read it)

    # ---- queries (each under the lock: a history recomputes lazily) --------------------

    def state(self, project: SignedObject) -> ProjectState:
        with self._lock:
            return self._entry(project).history.state()

    def history(self, project: SignedObject) -> list[HistoryEntry]:
        with self._lock:
            return self._entry(project).history.history()

    def state_and_history(self, project: SignedObject) -> tuple[ProjectState, list[HistoryEntry]]:
        with self._lock:
            h = self._entry(project).history
            return h.state(), h.history()

    def page(self, project: SignedObject, limit: int,
             before: int | None) -> tuple[ProjectState, int, int, list[HistoryEntry]]:  # fmt: skip
        """(state, total, start, entries): the newest `limit` history entries before position
        `before` (all: None), oldest first, starting at `start` of `total`. Built alone: a
        page of a long history costs the page, not the history."""
        with self._lock:
            h = self._entry(project).history
            total = h.history_len()
            end = total if before is None else max(0, min(before, total))
            start = max(0, end - limit)
            return h.state(), total, start, h.history_slice(start, end)

    def cached(self, project_id: bytes) -> bool:
        with self._lock:
            return project_id in self._cache

    def forget(self, project_id: bytes | None = None) -> None:
        """Drop one cached history (or all): the next query builds it again."""
        with self._lock:
            if project_id is None:
                self._cache.clear()
            else:
                self._cache.pop(project_id, None)

    def _entry(self, project: SignedObject) -> _Entry:
        entry = self._cache.get(project.id)
        if entry is not None and entry.generation == self.members.generation:
            self._cache.move_to_end(project.id)
            return entry
        entry = self._build(project)
        self._cache[project.id] = entry
        while len(self._cache) > MAX_CACHED_PROJECTS:
            self._cache.popitem(last=False)
        return entry

    # ---- building ----------------------------------------------------------------------

    def _build(self, project: SignedObject) -> _Entry:
        """A project's history from the store. Runs under the lock (the listener waits for
        it: a few ms for ordinary projects, ~0.1 s for 10,000 revisions)."""
        generation = self.members.generation
        creator = self.members.attribute(project).member
        history = ProjectHistory(
            project.id, creator, project.body["lab"], project_fields(project.body)
        )
        entry = _Entry(history, generation)
        records = []
        with self.store.read() as txn:
            objects, unindexed = self.store.db["objects"], self.store.db["unindexed"]
            for key, _ in prefix_items(txn, self.store.db["revisions"], project.id):
                seq = key[-8:]
                raw = txn.get(seq, db=objects)
                if not raw or txn.get(seq, db=unindexed) is not None:
                    continue
                obj = decode_checked(raw, object_id(raw))
                records.append(RevisionRecord.of(obj, self.members.attribute(obj).member))
                entry.revisions.add(obj.id)
            for rec in records:
                history.add(rec)
            self._settle(txn, history, history.unresolved())
        self.builds += 1
        return entry

    def _settle(self, txn: Any, history: ProjectHistory, ids: Iterable[bytes]) -> None:
        """Superseded ids the history waits for that the store can settle: withdrawn ones
        are met ("gone"), ones held here as anything but a revision of it are forged."""
        gone, foreign = [], []
        for oid in ids:
            if txn.get(oid, db=self.store.db["tomb"]) is not None:
                gone.append(oid)
            elif self.store.seq_of(txn, oid) is not None:
                foreign.append(oid)
        if gone:
            history.mark_gone(gone)
        if foreign:
            history.mark_foreign(foreign)

    # ---- input -------------------------------------------------------------------------

    def listen(self, ingest: Ingest) -> None:
        with self._lock:
            if ingest not in self._ingests:
                self._ingests.add(ingest)
                ingest.listeners.append(self.on_stored)

    def on_stored(self, stored: list[Stored]) -> None:
        """Ingest listener: feed the batch to the cached histories it concerns. A revision
        of a project not cached (whose project is here) makes its history now, so that a
        project revised from afar shows at once, not after reading all its revisions."""
        with self._lock:
            revisions: dict[bytes, list[SignedObject]] = {}
            retracted: set[bytes] = set()
            arrived: set[bytes] = set()
            for st in stored:
                obj = st.obj
                arrived.add(obj.id)
                if not st.visible:
                    continue
                target = obj.body.get("target") if obj.kind in ("revision", "retraction") else None
                if not isinstance(target, bytes):
                    continue
                if obj.kind == "revision":
                    revisions.setdefault(target, []).append(obj)
                else:
                    retracted.add(target)
            for pid in retracted & self._cache.keys():  # a project withdrawn: no history
                del self._cache[pid]
            cold = sorted(revisions.keys() - self._cache.keys(), key=lambda p: -len(revisions[p]))
            fresh = self._warm(cold[:MAX_WARM_PER_BATCH])
            if not self._cache:
                return
            with self.store.read() as txn:
                for pid, entry in list(self._cache.items()):
                    if pid not in fresh:  # a history made now read this batch already
                        self._feed(txn, entry, revisions.get(pid, ()), retracted, arrived)

    def _warm(self, pids: Iterable[bytes]) -> set[bytes]:
        """Make the histories of these projects (those held here, live) and cache them."""
        made: set[bytes] = set()
        if not self._ingests:
            return made
        for pid in pids:
            with self.store.read() as txn:
                project = self.store.get(txn, pid)
            if project is not None and project.kind == "project":
                self._entry(project)
                made.add(pid)
        return made

    def _feed(
        self, txn: Any, entry: _Entry, revisions: Iterable[SignedObject], retracted: set[bytes],
        arrived: set[bytes],
    ) -> None:  # fmt: skip
        history, tomb = entry.history, self.store.db["tomb"]
        added: set[bytes] = set()
        links: set[bytes] = set()  # what the new revisions supersede: held here, or gone?
        for obj in revisions:
            if txn.get(obj.id, db=tomb) is not None:
                retracted.add(obj.id)  # withdrawn before it arrived: stored as withdrawn
                continue
            history.add(RevisionRecord.of(obj, self.members.attribute(obj).member))
            entry.revisions.add(obj.id)
            added.add(obj.id)
            links.update(x for x in obj.body["supersedes"] if x not in history)
        for rid in retracted & entry.revisions:
            history.remove(rid)
            entry.revisions.discard(rid)
        settle = (arrived - added) | retracted | links
        if settle:
            waiting = history.unresolved()
            if waiting:
                self._settle(txn, history, waiting & settle)


_REGISTRIES = PerStore(Living)
# The store's registry, made at the first call and fed by `ingest` (node/service/registry.py).
attach = _REGISTRIES.attach
# The store's attached registry; for a bare store (a tool, a test) one made now and not kept.
of_store = _REGISTRIES.of_store
